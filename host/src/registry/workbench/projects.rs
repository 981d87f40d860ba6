//! Workbench projects: a named group of pipeline records, owned by a user and visible to the
//! members of that user's personal account only (another account's project is answered as
//! absent, so its existence is not revealed).

use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::store::{self, workbench as rows};

use super::super::accounts::Caller;
use super::super::{names, Refusal, Registry, RegistryError};

/// A project, as the registry shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProjectInfo {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub owner: String,
    pub created_at_ms: i64,
}

impl Registry {
    pub async fn create_project(
        &self,
        caller: &Caller,
        name: &str,
        description: Option<String>,
    ) -> Result<ProjectInfo, RegistryError> {
        names::check("name", name).map_err(RegistryError::invalid)?;
        let id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.store.begin().await?;
        match rows::insert_project(
            &mut tx,
            &id,
            name,
            &names::key(name),
            description.as_deref(),
            &caller.user_id,
            store::now_millis(),
        )
        .await
        {
            Err(e) if store::is_unique_violation(&e) => {
                return Err(Refusal::ProjectExists {
                    user: caller.user.clone(),
                    name: name.to_string(),
                }
                .into())
            }
            other => other?,
        }
        let row = rows::project(&mut tx, &id)
            .await?
            .expect("inserted in this transaction");
        tx.commit().await?;
        tracing::info!(project = %id, name, owner = %caller.user, "project created");
        Ok(project_info(row))
    }

    /// The projects the caller may see: those of its own account (see [`find_project`]).
    pub async fn list_projects(&self, caller: &Caller) -> Result<Vec<ProjectInfo>, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        Ok(rows::projects_visible_to(&mut conn, &caller.user_id)
            .await?
            .into_iter()
            .map(project_info)
            .collect())
    }

    pub async fn project(&self, caller: &Caller, id: &str) -> Result<ProjectInfo, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        find_project(&mut conn, caller, id)
            .await?
            .map(project_info)
            .ok_or_else(|| Refusal::ProjectNotFound { id: id.to_string() }.into())
    }
}

/// A project the caller may see or use as a parent: one of its own account's. Another account's
/// project is answered as absent, so its existence is not revealed.
pub(super) async fn find_project(
    conn: &mut AnyConnection,
    caller: &Caller,
    id: &str,
) -> Result<Option<rows::ProjectRow>, RegistryError> {
    Ok(rows::project_visible_to(conn, id, &caller.user_id).await?)
}

fn project_info(row: rows::ProjectRow) -> ProjectInfo {
    ProjectInfo {
        id: row.id,
        name: row.name,
        description: row.description,
        owner: row.owner,
        created_at_ms: row.created_at,
    }
}
