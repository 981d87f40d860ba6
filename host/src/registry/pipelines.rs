//! Pipelines: creating one, finding one, and who may read or change it. A namespace named after
//! an account is its members' alone (others read it as empty, and every refusal there reads the
//! same whether or not a pipeline exists); any other namespace is shared, and the first account
//! to create a name there owns it. A namespace a surface reserves (`gbdx`) takes writes from that
//! surface only.

use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::{names, Caller, Finding, Refusal, Registry, RegistryError, Surface};
use crate::store::{self, pipelines as rows};

/// A pipeline as the registry shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PipelineInfo {
    pub id: String,
    pub namespace: String,
    pub name: String,
    #[serde(rename = "type")]
    pub pipeline_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The account that owns it.
    pub owner: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// What creating a pipeline needs.
pub struct NewPipeline {
    /// Defaults to the caller's account.
    pub namespace: Option<String>,
    pub name: String,
    pub pipeline_type: String,
    pub description: Option<String>,
}

/// Where every GBDX task lives (a shared namespace: the first account to register a name owns it).
pub const GBDX_NAMESPACE: &str = "gbdx";

/// The surface that reserves `namespace`, if any: no other surface may write there, and no
/// account may take its name.
pub fn reserving_surface(namespace: &str) -> Option<Surface> {
    let key = names::key(namespace);
    [Surface::V1, Surface::Acumos, Surface::Gbdx, Surface::Mystic]
        .into_iter()
        .find(|s| s.reserved_namespace().is_some_and(|n| names::key(n) == key))
}

/// Refuses a write into a namespace another surface reserves.
pub(super) fn require_writable_by(namespace: &str, surface: Surface) -> Result<(), RegistryError> {
    match reserving_surface(namespace) {
        Some(owner) if owner != surface => Err(Refusal::NamespaceReserved {
            namespace: namespace.to_string(),
            surface: owner,
        }
        .into()),
        _ => Ok(()),
    }
}

/// The refusal of a non-member. In an account's own namespace it names the namespace only, as
/// [`foreign_namespace`] does for a pipeline that does not exist there.
pub(crate) fn not_a_member(pipeline: &rows::PipelineRow, caller: &Caller) -> RegistryError {
    if names::key(&pipeline.namespace) == names::key(&pipeline.owner_account) {
        return foreign_namespace(&pipeline.namespace);
    }
    Refusal::NotAMember {
        namespace: pipeline.namespace.clone(),
        name: pipeline.name.clone(),
        owner_account: pipeline.owner_account.clone(),
        user: caller.user.clone(),
    }
    .into()
}

pub(super) fn foreign_namespace(namespace: &str) -> RegistryError {
    Refusal::NamespaceOfAnotherAccount {
        namespace: namespace.to_string(),
    }
    .into()
}

pub(super) fn pipeline_not_found(namespace: &str, name: &str) -> RegistryError {
    Refusal::PipelineNotFound {
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
    .into()
}

pub(super) fn pipeline_info(row: rows::PipelineRow) -> PipelineInfo {
    PipelineInfo {
        id: row.id,
        namespace: row.namespace,
        name: row.name,
        pipeline_type: row.pipeline_type,
        description: row.description,
        owner: row.owner_account,
        created_by: row.created_by,
        created_at_ms: row.created_at,
    }
}

impl Registry {
    pub async fn create_pipeline(
        &self,
        caller: &Caller,
        new: NewPipeline,
    ) -> Result<PipelineInfo, RegistryError> {
        let namespace = new.namespace.unwrap_or_else(|| caller.account.clone());
        require_writable_by(&namespace, Surface::V1)?;
        let mut tx = self.store.begin().await?;
        let planned = self
            .plan_pipeline(
                &mut tx,
                caller,
                &namespace,
                &new.name,
                &new.pipeline_type,
                new.description,
            )
            .await?;
        let exists = || {
            RegistryError::from(Refusal::PipelineExists {
                namespace: namespace.clone(),
                name: new.name.clone(),
            })
        };
        if rows::pipeline_by_key(&mut tx, &names::key(&namespace), &names::key(&new.name))
            .await?
            .is_some()
        {
            return Err(exists());
        }
        match rows::insert_pipeline(&mut tx, &planned.as_new()).await {
            Err(e) if store::is_unique_violation(&e) => return Err(exists()),
            other => other?,
        }
        tx.commit().await?;
        tracing::info!(pipeline = %format!("{namespace}/{}", new.name), owner = %planned.owner_account, "pipeline created");
        Ok(pipeline_info(planned))
    }

    /// A pipeline row ready to insert: names checked, type resolved, owner decided.
    pub(super) async fn plan_pipeline(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        namespace: &str,
        name: &str,
        pipeline_type: &str,
        description: Option<String>,
    ) -> Result<rows::PipelineRow, RegistryError> {
        names::check("namespace", namespace).map_err(RegistryError::invalid)?;
        names::check("name", name).map_err(RegistryError::invalid)?;
        let handler = self.plugins.type_handler(pipeline_type).ok_or_else(|| {
            RegistryError::invalid(Finding::new(
                "invalid-type",
                "type",
                format!(
                    "unknown pipeline type `{pipeline_type}`; known: {}",
                    self.type_ids().join(", ")
                ),
            ))
        })?;
        let owner = self
            .namespace_owner(conn, caller, namespace, &names::key(namespace))
            .await?;
        let owner_account = if owner == caller.account_id {
            caller.account.clone()
        } else {
            namespace.to_string()
        };
        Ok(rows::PipelineRow {
            id: uuid::Uuid::new_v4().to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            pipeline_type: handler.info.id.clone(),
            description,
            owner_account_id: owner,
            owner_account,
            created_by_id: caller.user_id.clone(),
            created_by: caller.user.clone(),
            created_at: store::now_millis(),
            versions_revision: 0,
        })
    }

    /// The account that will own a new pipeline in `namespace`: an account's namespace is its
    /// members' alone; any other namespace is shared and the caller's account takes the name.
    pub(super) async fn namespace_owner(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        namespace: &str,
        namespace_key: &str,
    ) -> Result<String, RegistryError> {
        match store::accounts::account_by_key(conn, namespace_key).await? {
            Some(account) if self.is_member(conn, &account.id, &caller.user_id).await? => {
                Ok(account.id)
            }
            Some(_) => Err(foreign_namespace(namespace)),
            None => Ok(caller.account_id.clone()),
        }
    }

    /// The pipelines the caller may read (see [`Self::find_readable`]).
    pub async fn list_pipelines(
        &self,
        caller: &Caller,
        namespace: Option<&str>,
    ) -> Result<Vec<PipelineInfo>, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let key = namespace.map(names::key);
        Ok(
            rows::list_pipelines_readable_by(&mut conn, &caller.user_id, key.as_deref())
                .await?
                .into_iter()
                .map(pipeline_info)
                .collect(),
        )
    }

    pub async fn pipeline(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
    ) -> Result<PipelineInfo, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        Ok(pipeline_info(
            self.find_readable(&mut conn, caller, namespace, name)
                .await?,
        ))
    }

    /// The pipeline, if the caller may read it: a pipeline in an account's namespace is its
    /// members' alone; one in a shared namespace (no account of that name) is everyone's. Any
    /// other is answered as absent, so that neither it nor its files' digests are revealed.
    pub(crate) async fn find_readable(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        namespace: &str,
        name: &str,
    ) -> Result<rows::PipelineRow, RegistryError> {
        let pipeline = self.find_pipeline(conn, namespace, name).await?;
        let readable = self
            .is_member(conn, &pipeline.owner_account_id, &caller.user_id)
            .await?
            || store::accounts::account_by_key(conn, &names::key(&pipeline.namespace))
                .await?
                .is_none();
        if readable {
            Ok(pipeline)
        } else {
            Err(pipeline_not_found(namespace, name))
        }
    }

    pub(super) async fn find_pipeline(
        &self,
        conn: &mut AnyConnection,
        namespace: &str,
        name: &str,
    ) -> Result<rows::PipelineRow, RegistryError> {
        rows::pipeline_by_key(conn, &names::key(namespace), &names::key(name))
            .await?
            .ok_or_else(|| pipeline_not_found(namespace, name))
    }

    /// Refuses, before anything is looked up, a caller who is not a member of the account a
    /// namespace is named after: what is in a private namespace is not revealed by a refusal
    /// that differs between a pipeline that exists and one that does not.
    pub(crate) async fn require_namespace_member(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        namespace: &str,
    ) -> Result<(), RegistryError> {
        match store::accounts::account_by_key(conn, &names::key(namespace)).await? {
            Some(account) if !self.is_member(conn, &account.id, &caller.user_id).await? => {
                Err(foreign_namespace(namespace))
            }
            _ => Ok(()),
        }
    }

    /// Refuses a caller who is not a member of the pipeline's owning account.
    pub(crate) async fn require_owner(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        pipeline: &rows::PipelineRow,
    ) -> Result<(), RegistryError> {
        if self
            .is_member(conn, &pipeline.owner_account_id, &caller.user_id)
            .await?
        {
            Ok(())
        } else {
            Err(not_a_member(pipeline, caller))
        }
    }
}
