//! The ML Workbench's pipeline records and projects: the core behind the Acumos surface, also
//! reachable through `/v1`.
//!
//! A workbench pipeline differs from a registry version: it is one mutable record, owned by the
//! user who created it, named `name` with an optional version label, unique per owner. An update
//! may rename and re-version it (DESIGN.md invariant 2: the earlier name and version go to its
//! history); it may be archived and unarchived; members of the owner's account may act on it and
//! become its collaborators when they update it. It belongs to any number of projects (the
//! seed's "a pipeline may belong to multiple projects"): created in one, added to more by an
//! update made in a project, dropped from one by the association's delete, from all by its own.
//! Archiving is refused while it is shared: referenced by another user, or by a project other
//! than the one it is archived from (or, archived from no project, by more than one). Each record has a git working copy in the
//! pipeline store ([`crate::workcopies`]) seeded with its type handler's `scaffold`, and
//! launching it asks the type handler's `launch` for a service URL.
//!
//! Rules are checked in the order of the Acumos seed, so that each surface can word the first
//! failure its own way: name and version (the policy chain bound to the surface, `policy-acumos`
//! by default), type, project, uniqueness. Every change commits the record and its working copy
//! together or neither.
//!
//! Here: the errors, the wire-neutral views and the records' operations; [`projects`] holds the
//! projects, [`approval`] the policy chain on a record's name and version and the type handler
//! a record is of.

use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::plugins::{self, WORKING_COPY_PROPERTY};
use crate::store::{self, workbench as rows};
use crate::workcopies::{SeedFile, WorkingCopies};

use super::accounts::Caller;
use super::{candidate, check_paths, names, Registry, RegistryError};
use approval::{audit, existing_versions};
use projects::find_project;
pub use projects::ProjectInfo;

mod approval;
mod projects;

/// Why a workbench operation was refused. Each surface words these its own way.
#[derive(Debug, thiserror::Error)]
pub enum WorkbenchError {
    #[error("pipeline not found")]
    PipelineNotFound,
    #[error("project {0} does not exist")]
    ProjectNotFound(String),
    /// Removing a pipeline from a project, by someone who owns neither.
    #[error("{user} owns neither the project nor the pipeline")]
    OwnsNeither { user: String },
    /// Acting on a pipeline of someone outside the caller's account.
    #[error("pipeline {pipeline} belongs to {owner}; {user} may not act on it")]
    NotAllowed {
        pipeline: String,
        owner: String,
        user: String,
    },
    #[error("pipeline {0} is archived")]
    Archived(String),
    /// A request made in a project, on a pipeline that does not belong to it.
    #[error("pipeline {pipeline} does not belong to project {project}")]
    NotInProject { project: String, pipeline: String },
    /// Archiving a pipeline that other users or other projects refer to.
    #[error("pipeline {pipeline} is referenced by other users or projects")]
    Shared { pipeline: String },
    #[error("a pipeline named {name}{} exists already for {user}", version.as_deref().map(|v| format!(" version {v}")).unwrap_or_default())]
    Duplicate {
        name: String,
        version: Option<String>,
        user: String,
    },
    /// The type handler answered `launch` with an error of its own.
    #[error("launch failed ({code}): {message}")]
    LaunchFailed { code: String, message: String },
    /// Name, version or type broke a rule (findings carry the codes), or a plugin or the store
    /// failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<sqlx::Error> for WorkbenchError {
    fn from(error: sqlx::Error) -> Self {
        WorkbenchError::Registry(error.into())
    }
}

impl From<plugins::PluginError> for WorkbenchError {
    fn from(error: plugins::PluginError) -> Self {
        WorkbenchError::Registry(error.into())
    }
}

/// A project a workbench pipeline belongs to.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProjectRef {
    pub id: String,
    pub name: String,
}

/// A user who collaborates on a workbench pipeline.
#[derive(Clone, Debug)]
pub struct Collaborator {
    /// The user's id (the Acumos `userId.uuid`).
    pub id: String,
    pub name: String,
}

/// `/v1` shows collaborators by name.
fn collaborator_names<S: serde::Serializer>(
    collaborators: &[Collaborator],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(collaborators.iter().map(|c| &c.name))
}

/// A workbench pipeline record.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkbenchPipeline {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The type handler's display name (`Jupyter`).
    #[serde(rename = "type")]
    pub pipeline_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub owner: String,
    /// The owner's user id (the Acumos `userId.uuid`).
    pub owner_id: String,
    /// The projects it belongs to, in the order it joined them.
    pub projects: Vec<ProjectRef>,
    pub archived: bool,
    /// `/pipelines/{id}`: the git working copy in the pipeline store.
    pub repository_url: String,
    /// Where the last launch made it available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_url: Option<String>,
    /// The users besides its owner who have worked on it, by name.
    #[serde(serialize_with = "collaborator_names")]
    #[schema(value_type = Vec<String>)]
    pub collaborators: Vec<Collaborator>,
    /// `plugin@version` of every policy that approved the current name and version.
    pub approved_by: Vec<String>,
    pub created_at_ms: i64,
    pub modified_at_ms: i64,
}

/// An earlier name and version of a workbench pipeline.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who renamed it away from this name and version.
    pub changed_by: String,
    pub changed_at_ms: i64,
}

/// What creating a workbench pipeline takes. Absent fields are the surface's to word.
#[derive(Clone, Debug, Default)]
pub struct NewRecord {
    pub name: Option<String>,
    pub version: Option<String>,
    pub pipeline_type: Option<String>,
    pub kernel_type: Option<String>,
    pub description: Option<String>,
    /// The projects it starts in (each must exist and be the caller's account's).
    pub project_ids: Vec<String>,
}

/// An update: each field given replaces the current one, each absent field is kept; the
/// projects given are added to those it belongs to.
#[derive(Clone, Debug, Default)]
pub struct RecordUpdate {
    pub name: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub project_ids: Vec<String>,
}

/// An empty string is an absent value on this surface.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl Registry {
    /// Creates a workbench pipeline owned by the caller, with its working copy.
    pub async fn create_record(
        &self,
        caller: &Caller,
        new: NewRecord,
    ) -> Result<WorkbenchPipeline, WorkbenchError> {
        let name = given(new.name).unwrap_or_default();
        let version = given(new.version);
        // The type is judged after the name and version (the seed's order), but known first:
        // the policy chain is the one bound to a Workbench type, never to another surface's.
        let handler = self.resolve_type(given(new.pipeline_type).as_deref());
        let type_id = handler
            .as_ref()
            .map(|h| h.info.id.clone())
            .unwrap_or_default();

        let mut conn = self.store.pool().acquire().await?;
        let existing = existing_versions(&mut conn, caller, &name).await?;
        drop(conn);
        let candidate = candidate(&caller.user, &name, version.as_deref(), &type_id, None);
        let approvals = self
            .approve_name(caller, candidate.clone(), existing)
            .await?;
        let handler = handler?;

        let mut tx = self.store.begin().await?;
        for project_id in &new.project_ids {
            find_project(&mut tx, caller, project_id)
                .await?
                .ok_or_else(|| WorkbenchError::ProjectNotFound(project_id.clone()))?;
        }
        let duplicate = || WorkbenchError::Duplicate {
            name: name.clone(),
            version: version.clone(),
            user: caller.user.clone(),
        };
        if rows::owned_record_named(&mut tx, &caller.user_id, &name, version.as_deref())
            .await?
            .is_some()
        {
            return Err(duplicate());
        }

        let scaffold_for = plugins::Pipeline {
            type_: handler.info.id.clone(),
            ..candidate
        };
        let scaffolder = handler.clone();
        let files = blocking(move || scaffolder.scaffold(&scaffold_for)).await??;
        check_paths(files.iter().map(|f| f.path.as_str()))?;

        let id = uuid::Uuid::new_v4();
        let repository_url = WorkingCopies::repository_url(&id);
        let kernel_type = given(new.kernel_type);
        let row = rows::NewRecord {
            id: &id.to_string(),
            name: &name,
            version: version.as_deref(),
            pipeline_type: &handler.info.id,
            kernel_type: kernel_type.as_deref(),
            description: new.description.as_deref(),
            owner_user_id: &caller.user_id,
            owner_account_id: &caller.account_id,
            repository_url: &repository_url,
            approved_by: &audit(&approvals),
            now: store::now_millis(),
        };
        match rows::insert_record(&mut tx, &row).await {
            Err(e) if store::is_unique_violation(&e) => return Err(duplicate()),
            other => other?,
        }
        for project_id in &new.project_ids {
            rows::add_to_project(&mut tx, project_id, row.id, row.now).await?;
        }
        // The working copy is made while the record is still uncommitted; if either fails,
        // the other is undone.
        let (copies, author, message) = (
            self.workcopies.clone(),
            caller.user.clone(),
            format!("Create pipeline {name}"),
        );
        blocking(move || {
            let seeds: Vec<SeedFile> = files
                .iter()
                .map(|f| SeedFile {
                    path: &f.path,
                    contents: &f.contents,
                })
                .collect();
            copies.create(&id, &seeds, &author, &message)
        })
        .await?
        .map_err(RegistryError::Internal)?;
        let created = match self.record_in(&mut tx, &id.to_string()).await {
            Ok(created) => created,
            Err(error) => {
                self.workcopies.discard(&id);
                return Err(error);
            }
        };
        if let Err(error) = tx.commit().await {
            self.workcopies.discard(&id);
            return Err(error.into());
        }
        tracing::info!(pipeline = %id, name = %created.name, owner = %caller.user, "workbench pipeline created");
        Ok(created)
    }

    /// One workbench pipeline, if the caller may act on it; asked for in a project, only if it
    /// belongs to that project.
    pub async fn record(
        &self,
        caller: &Caller,
        id: &str,
        project_id: Option<&str>,
    ) -> Result<WorkbenchPipeline, WorkbenchError> {
        let mut conn = self.store.pool().acquire().await?;
        let row = self.accessible_record(&mut conn, caller, id).await?;
        let record = self.record_in(&mut conn, &row.id).await?;
        if !record.seen_from(project_id) {
            return Err(not_in_project(project_id, record.id));
        }
        Ok(record)
    }

    /// The caller's pipelines, owned and collaborated, active and archived; only those of
    /// `project_id` when given (which must exist).
    pub async fn list_records(
        &self,
        caller: &Caller,
        project_id: Option<&str>,
    ) -> Result<Vec<WorkbenchPipeline>, WorkbenchError> {
        let mut conn = self.store.pool().acquire().await?;
        if let Some(project_id) = project_id {
            find_project(&mut conn, caller, project_id)
                .await?
                .ok_or_else(|| WorkbenchError::ProjectNotFound(project_id.into()))?;
        }
        let found = rows::records_of_user(&mut conn, &caller.user_id, project_id).await?;
        let mut out = Vec::with_capacity(found.len());
        for row in found {
            let id = row.id.clone();
            out.push(self.workbench_pipeline(row, &mut conn, &id).await?);
        }
        Ok(out)
    }

    /// Asks the pipeline's type handler to launch it for the caller; records and returns the
    /// service URL. Refused for an archived pipeline, and, launched in a project, for one that
    /// does not belong to it.
    pub async fn launch_record(
        &self,
        caller: &Caller,
        id: &str,
        project_id: Option<&str>,
    ) -> Result<WorkbenchPipeline, WorkbenchError> {
        let mut conn = self.store.pool().acquire().await?;
        let row = rows::record(&mut conn, id)
            .await?
            .ok_or(WorkbenchError::PipelineNotFound)?;
        // The seed's order for a launch: archived before permission.
        if row.artifact_status == ARCHIVED {
            return Err(WorkbenchError::Archived(row.name));
        }
        let row = self.allowed(&mut conn, caller, row).await?;
        if !self
            .record_in(&mut conn, &row.id)
            .await?
            .seen_from(project_id)
        {
            return Err(not_in_project(project_id, row.id));
        }
        drop(conn);
        let handler = self.record_type_handler(&row)?;
        let uuid = parse_id(&row.id)?;
        let context = plugins::LaunchContext {
            pipeline: candidate(
                &caller.user,
                &row.name,
                row.version.as_deref(),
                &row.pipeline_type,
                row.description.clone(),
            ),
            pipeline_id: row.id.clone(),
            user: caller.user.clone(),
            repository_url: row.repository_url.clone(),
            properties: vec![plugins::Property {
                key: WORKING_COPY_PROPERTY.into(),
                value: self.workcopies.path(&uuid).display().to_string(),
            }],
        };
        let launched = blocking(move || handler.launch(&context)).await??;
        let info = launched.map_err(|e| WorkbenchError::LaunchFailed {
            code: e.code,
            message: e.message,
        })?;
        let mut conn = self.store.pool().acquire().await?;
        rows::set_service_url(&mut conn, &row.id, &info.service_url).await?;
        tracing::info!(pipeline = %row.id, user = %caller.user, service_url = %info.service_url, "workbench pipeline launched");
        self.record_in(&mut conn, &row.id).await
    }

    /// Renames, re-versions, re-describes, and adds to projects (as the original service does
    /// for an update made in a project). The earlier name and version go to history; a caller
    /// who is not the owner becomes a collaborator.
    pub async fn update_record(
        &self,
        caller: &Caller,
        id: &str,
        update: RecordUpdate,
    ) -> Result<WorkbenchPipeline, WorkbenchError> {
        let mut conn = self.store.pool().acquire().await?;
        let current = self.accessible_record(&mut conn, caller, id).await?;
        if current.artifact_status == ARCHIVED {
            return Err(WorkbenchError::Archived(current.name));
        }
        let name = given(update.name).unwrap_or_else(|| current.name.clone());
        let version = match update.version {
            Some(v) => given(Some(v)),
            None => current.version.clone(),
        };
        let description = update.description.or_else(|| current.description.clone());
        let renamed = names::key(&name) != names::key(&current.name)
            || version.as_deref().map(names::key) != current.version.as_deref().map(names::key);
        let existing = existing_versions(&mut conn, caller, &name).await?;
        drop(conn);

        let candidate = candidate(
            &caller.user,
            &name,
            version.as_deref(),
            &current.pipeline_type,
            description.clone(),
        );
        let approvals = self.approve_name(caller, candidate, existing).await?;

        let mut tx = self.store.begin().await?;
        let duplicate = || WorkbenchError::Duplicate {
            name: name.clone(),
            version: version.clone(),
            user: caller.user.clone(),
        };
        if renamed {
            // Unique among the owner's pipelines (the stored rule) and, as the seed words it,
            // among the caller's.
            for user_id in [&current.owner_user_id, &caller.user_id] {
                let clash =
                    rows::owned_record_named(&mut tx, user_id, &name, version.as_deref()).await?;
                if clash.is_some_and(|other| other != current.id) {
                    return Err(duplicate());
                }
            }
        }
        for project_id in &update.project_ids {
            find_project(&mut tx, caller, project_id)
                .await?
                .ok_or_else(|| WorkbenchError::ProjectNotFound(project_id.clone()))?;
        }
        let now = store::now_millis();
        if renamed {
            rows::insert_history(&mut tx, &current.id, &current, &caller.user_id, now).await?;
        }
        let change = rows::RecordChange {
            id: &current.id,
            name: &name,
            version: version.as_deref(),
            description: description.as_deref(),
            approved_by: &audit(&approvals),
            now,
        };
        match rows::update_record(&mut tx, &change).await {
            Err(e) if store::is_unique_violation(&e) => return Err(duplicate()),
            other => other?,
        }
        for project_id in &update.project_ids {
            rows::add_to_project(&mut tx, project_id, &current.id, now).await?;
        }
        if caller.user_id != current.owner_user_id {
            rows::add_collaborator(&mut tx, &current.id, &caller.user_id, now).await?;
        }
        let updated = self.record_in(&mut tx, &current.id).await?;
        tx.commit().await?;
        tracing::info!(pipeline = %current.id, name = %name, renamed, by = %caller.user, "workbench pipeline updated");
        Ok(updated)
    }

    /// Archives (`archived = true`) or unarchives a pipeline. Repeating either is harmless.
    /// Archiving is refused while the pipeline is shared (see [`WorkbenchPipeline::shared`]),
    /// judged from the project it is archived from, if any.
    pub async fn set_record_archived(
        &self,
        caller: &Caller,
        id: &str,
        archived: bool,
        project_id: Option<&str>,
    ) -> Result<WorkbenchPipeline, WorkbenchError> {
        let mut tx = self.store.begin().await?;
        let row = self.accessible_record(&mut tx, caller, id).await?;
        if archived
            && self
                .record_in(&mut tx, &row.id)
                .await?
                .shared(caller, project_id)
        {
            return Err(WorkbenchError::Shared { pipeline: row.id });
        }
        let status = if archived { ARCHIVED } else { ACTIVE };
        rows::set_artifact_status(&mut tx, &row.id, status, store::now_millis()).await?;
        let changed = self.record_in(&mut tx, &row.id).await?;
        tx.commit().await?;
        tracing::info!(pipeline = %row.id, status, by = %caller.user, "workbench pipeline archive state set");
        Ok(changed)
    }

    /// Deletes a pipeline record, its history, its associations with projects and its working
    /// copy.
    pub async fn delete_record(&self, caller: &Caller, id: &str) -> Result<(), WorkbenchError> {
        let mut tx = self.store.begin().await?;
        let row = self.accessible_record(&mut tx, caller, id).await?;
        let uuid = parse_id(&row.id)?;
        rows::delete_record(&mut tx, &row.id).await?;
        let removal = self
            .workcopies
            .remove(&uuid)
            .map_err(RegistryError::Internal)?;
        match tx.commit().await {
            Ok(()) => removal.finish(),
            Err(error) => {
                if let Err(undo) = removal.undo() {
                    tracing::error!(pipeline = %row.id, error = format!("{undo:#}"), "could not restore a working copy after a failed delete");
                }
                return Err(error.into());
            }
        }
        tracing::info!(pipeline = %row.id, by = %caller.user, "workbench pipeline deleted");
        Ok(())
    }

    /// Drops the association of a pipeline with a project. The project's owner, or anyone who
    /// may act on the pipeline, may do it.
    pub async fn remove_record_from_project(
        &self,
        caller: &Caller,
        project_id: &str,
        pipeline_id: &str,
    ) -> Result<(), WorkbenchError> {
        let mut tx = self.store.begin().await?;
        // Not `find_project`: whoever may act on the pipeline may drop its association with a
        // project of another account (the refusal below names neither).
        let project = rows::project(&mut tx, project_id)
            .await?
            .ok_or_else(|| WorkbenchError::ProjectNotFound(project_id.into()))?;
        let row = rows::record(&mut tx, pipeline_id).await?;
        let allowed = project.owner_user_id == caller.user_id
            || match &row {
                Some(row) => self.may_act(&mut tx, caller, row).await?,
                None => false,
            };
        if !allowed {
            return Err(WorkbenchError::OwnsNeither {
                user: caller.user.clone(),
            });
        }
        let row = row.ok_or(WorkbenchError::PipelineNotFound)?;
        if !rows::remove_from_project(&mut tx, &project.id, &row.id).await? {
            return Err(WorkbenchError::PipelineNotFound);
        }
        rows::touch(&mut tx, &row.id, store::now_millis()).await?;
        tx.commit().await?;
        tracing::info!(pipeline = %row.id, project = %project.id, by = %caller.user, "pipeline removed from project");
        Ok(())
    }

    /// The earlier names and versions of a pipeline the caller may act on, oldest first.
    pub async fn record_history(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Vec<HistoryEntry>, WorkbenchError> {
        let mut conn = self.store.pool().acquire().await?;
        let row = self.accessible_record(&mut conn, caller, id).await?;
        Ok(rows::history(&mut conn, &row.id)
            .await?
            .into_iter()
            .map(|h| HistoryEntry {
                name: h.name,
                version: h.version,
                description: h.description,
                changed_by: h.changed_by,
                changed_at_ms: h.changed_at,
            })
            .collect())
    }

    /// The record, if it exists and the caller may act on it.
    async fn accessible_record(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        id: &str,
    ) -> Result<rows::WorkbenchRow, WorkbenchError> {
        let row = rows::record(conn, id)
            .await?
            .ok_or(WorkbenchError::PipelineNotFound)?;
        self.allowed(conn, caller, row).await
    }

    /// The record, if the caller may act on it.
    async fn allowed(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        row: rows::WorkbenchRow,
    ) -> Result<rows::WorkbenchRow, WorkbenchError> {
        if self.may_act(conn, caller, &row).await? {
            Ok(row)
        } else {
            Err(WorkbenchError::NotAllowed {
                pipeline: row.id,
                owner: row.owner,
                user: caller.user.clone(),
            })
        }
    }

    /// The owner and the members of the owner's account may act on a pipeline.
    async fn may_act(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        row: &rows::WorkbenchRow,
    ) -> Result<bool, RegistryError> {
        Ok(row.owner_user_id == caller.user_id
            || self
                .is_member(conn, &row.owner_account_id, &caller.user_id)
                .await?)
    }

    async fn record_in(
        &self,
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<WorkbenchPipeline, WorkbenchError> {
        let row = rows::record(conn, id)
            .await?
            .ok_or(WorkbenchError::PipelineNotFound)?;
        Ok(self.workbench_pipeline(row, conn, id).await?)
    }

    /// The view of a record, with its projects and collaborators read on `conn`.
    async fn workbench_pipeline(
        &self,
        row: rows::WorkbenchRow,
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<WorkbenchPipeline, sqlx::Error> {
        let projects = rows::projects_of(conn, id)
            .await?
            .into_iter()
            .map(|p| ProjectRef {
                id: p.id,
                name: p.name,
            })
            .collect();
        let collaborators = rows::collaborators(conn, id)
            .await?
            .into_iter()
            .map(|u| Collaborator {
                id: u.id,
                name: u.name,
            })
            .collect();
        let pipeline_type = self
            .plugins
            .type_handler(&row.pipeline_type)
            .map(|h| h.info.display_name.clone())
            .unwrap_or_else(|| row.pipeline_type.clone());
        Ok(WorkbenchPipeline {
            archived: row.artifact_status == ARCHIVED,
            approved_by: serde_json::from_str(&row.approved_by).unwrap_or_default(),
            id: row.id,
            name: row.name,
            version: row.version,
            pipeline_type,
            kernel_type: row.kernel_type,
            description: row.description,
            owner: row.owner,
            owner_id: row.owner_user_id,
            projects,
            repository_url: row.repository_url,
            service_url: row.service_url,
            collaborators,
            created_at_ms: row.created_at,
            modified_at_ms: row.modified_at,
        })
    }
}

impl WorkbenchPipeline {
    /// Whether it is shared, as the seed's archive check reads it ("referenced by other users /
    /// projects"): a user other than `caller` refers to it (its owner, or a collaborator), or a
    /// project does that is not the one the request is made in. Made in no project, belonging
    /// to one is not sharing: that is where it lives.
    fn shared(&self, caller: &Caller, project_id: Option<&str>) -> bool {
        let other_users = self.owner_id != caller.user_id
            || self.collaborators.iter().any(|c| c.id != caller.user_id);
        let other_projects = match project_id {
            Some(here) => self.projects.iter().any(|p| p.id != here),
            None => self.projects.len() > 1,
        };
        other_users || other_projects
    }

    /// Whether a request made in `project_id` (or in no project) may reach it: made in a
    /// project, only if it belongs to that project.
    fn seen_from(&self, project_id: Option<&str>) -> bool {
        project_id.is_none_or(|project| self.projects.iter().any(|p| p.id == project))
    }
}

/// The refusal of a request made in a project the pipeline does not belong to.
fn not_in_project(project_id: Option<&str>, pipeline: String) -> WorkbenchError {
    WorkbenchError::NotInProject {
        project: project_id.unwrap_or_default().to_string(),
        pipeline,
    }
}

const ACTIVE: &str = "ACTIVE";
const ARCHIVED: &str = "ARCHIVED";

fn parse_id(id: &str) -> Result<uuid::Uuid, RegistryError> {
    uuid::Uuid::parse_str(id)
        .map_err(|e| RegistryError::Internal(anyhow::anyhow!("stored pipeline id `{id}`: {e}")))
}

/// Runs blocking work (plugin calls, git) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RegistryError::Internal(anyhow::anyhow!("blocking task failed: {e}")))
}
