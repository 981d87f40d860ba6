//! Pointers: names of a pipeline that each name one of its versions and can be moved to another
//! (Mystic's `account/hello:prod`). A locked pointer is neither moved nor deleted until it is
//! unlocked. A pointer is its owner's: only members of the account that owns the pipeline
//! see or change its pointers.
//!
//! A pointer's name and its pipeline's version names are one set of names: a pointer may not
//! take a version's name, nor a version a pointer's ([`Refusal::NameIsAVersion`],
//! [`Refusal::NameIsAPointer`]). Otherwise `hello:1.0.0` could mean two things, and which one a
//! run got would depend on a lookup order; a version's name must keep meaning that version
//! (its content never changes, invariant 2), which a pointer of the same name would undo. Runs
//! resolve a name as a version first, then as a pointer ([`Registry::resolve_reference`]); with
//! the names disjoint the order never matters.
//!
//! A pointer names its version by number: when that version is deleted it dangles (listed
//! only when asked for, and a run of it is "not found"), and if the number is registered again
//! it names that. Every change to pointers moves the namespace's change counter in its commit,
//! so a run resolves a moved pointer at once here and within the change poll on other servers
//! (see `runs::targets`), and claims the pipeline's version-set revision, so a pointer and a
//! version registered at the same moment cannot take one name.

use serde::Serialize;
use sqlx::AnyConnection;

use super::{names, Caller, Finding, Page, Refusal, Registry, RegistryError, VersionInfo};
use crate::store::{self, pipelines as rows, pointers as pointer_rows};

/// A pointer as callers see it.
#[derive(Clone, Debug, Serialize)]
pub struct PointerInfo {
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub pointer: String,
    /// The version it names.
    pub version: String,
    pub locked: bool,
    /// The version it names no longer exists.
    pub dangling: bool,
}

impl From<pointer_rows::PointerRow> for PointerInfo {
    fn from(row: pointer_rows::PointerRow) -> Self {
        PointerInfo {
            id: row.id,
            namespace: row.namespace,
            name: row.name,
            pointer: row.pointer,
            version: row.version,
            locked: row.locked != 0,
            dangling: row.live == 0,
        }
    }
}

/// `namespace/name:tag`, a version or a pointer of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaggedName {
    pub namespace: String,
    pub name: String,
    pub tag: String,
}

impl std::fmt::Display for TaggedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.name, self.tag)
    }
}

/// A change to a pointer: what it names next, and whether it is locked.
#[derive(Clone, Debug, Default)]
pub struct PointerChange {
    pub target: Option<TaggedName>,
    pub locked: Option<bool>,
}

/// The violation code of a pointer aimed at another pipeline's version.
pub const OTHER_PIPELINE: &str = "pointer-to-another-pipeline";

impl Registry {
    /// Creates `pointer`, naming the version `target` names (a version of the same pipeline, or
    /// another pointer of it, whose version it takes).
    pub async fn create_pointer(
        &self,
        caller: &Caller,
        pointer: &TaggedName,
        target: &TaggedName,
        locked: bool,
    ) -> Result<PointerInfo, RegistryError> {
        names::check("pointer", &pointer.tag).map_err(RegistryError::invalid)?;
        let mut tx = self.store.begin().await?;
        let pipeline = self.owned_pipeline(&mut tx, caller, pointer).await?;
        let version = self
            .target_version(&mut tx, &pipeline, pointer, target)
            .await?;
        let key = names::key(&pointer.tag);
        if rows::version_by_key(&mut tx, &pipeline.id, &key)
            .await?
            .is_some()
        {
            return Err(Refusal::NameIsAVersion {
                namespace: pipeline.namespace,
                name: pipeline.name,
                pointer: pointer.tag.clone(),
            }
            .into());
        }
        let exists = || {
            RegistryError::from(Refusal::PointerExists {
                namespace: pipeline.namespace.clone(),
                name: pipeline.name.clone(),
                pointer: pointer.tag.clone(),
            })
        };
        if pointer_rows::exists(&mut tx, &pipeline.id, &key).await? {
            return Err(exists());
        }
        let id = uuid::Uuid::new_v4().to_string();
        let new = pointer_rows::NewPointer {
            id: &id,
            pipeline_id: &pipeline.id,
            pointer: &pointer.tag,
            pointer_key: &key,
            version: &version.version,
            version_key: &names::key(&version.version),
            locked,
            now: store::now_millis(),
        };
        match pointer_rows::insert(&mut tx, &new).await {
            Err(e) if store::is_unique_violation(&e) => return Err(exists()),
            other => other?,
        }
        self.commit_pointer_change(tx, &pipeline).await?;
        tracing::info!(pointer = %pointer, version = %version.version, locked, "pointer created");
        self.pointer(caller, pointer).await
    }

    /// Moves a pointer, locks or unlocks it. A locked pointer is not moved: unlock it first
    /// (a request that both unlocks and moves it is refused too, so a lock cannot be undone by
    /// the same careless command that moves it).
    pub async fn change_pointer(
        &self,
        caller: &Caller,
        pointer: &TaggedName,
        change: PointerChange,
    ) -> Result<PointerInfo, RegistryError> {
        let mut tx = self.store.begin().await?;
        let pipeline = self.owned_pipeline(&mut tx, caller, pointer).await?;
        let row = self.pointer_row(&mut tx, &pipeline, pointer).await?;
        let (mut version, mut version_key) = (row.version.clone(), names::key(&row.version));
        if let Some(target) = &change.target {
            let target = self
                .target_version(&mut tx, &pipeline, pointer, target)
                .await?;
            if names::key(&target.version) != version_key && row.locked != 0 {
                return Err(Refusal::PointerLocked {
                    namespace: pipeline.namespace,
                    name: pipeline.name,
                    pointer: row.pointer,
                }
                .into());
            }
            version_key = names::key(&target.version);
            version = target.version;
        }
        let locked = change.locked.unwrap_or(row.locked != 0);
        pointer_rows::update(
            &mut tx,
            &row.id,
            &version,
            &version_key,
            locked,
            store::now_millis(),
        )
        .await?;
        self.commit_pointer_change(tx, &pipeline).await?;
        tracing::info!(pointer = %pointer, %version, locked, "pointer changed");
        self.pointer(caller, pointer).await
    }

    /// Deletes an unlocked pointer.
    pub async fn delete_pointer(
        &self,
        caller: &Caller,
        pointer: &TaggedName,
    ) -> Result<(), RegistryError> {
        let mut tx = self.store.begin().await?;
        let pipeline = self.owned_pipeline(&mut tx, caller, pointer).await?;
        let row = self.pointer_row(&mut tx, &pipeline, pointer).await?;
        if row.locked != 0 {
            return Err(Refusal::PointerLocked {
                namespace: pipeline.namespace,
                name: pipeline.name,
                pointer: row.pointer,
            }
            .into());
        }
        pointer_rows::delete(&mut tx, &row.id).await?;
        self.commit_pointer_change(tx, &pipeline).await?;
        tracing::info!(pointer = %pointer, "pointer deleted");
        Ok(())
    }

    /// One pointer of a pipeline the caller's account owns.
    pub async fn pointer(
        &self,
        caller: &Caller,
        pointer: &TaggedName,
    ) -> Result<PointerInfo, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let pipeline = self.owned_pipeline(&mut conn, caller, pointer).await?;
        Ok(self
            .pointer_row(&mut conn, &pipeline, pointer)
            .await?
            .into())
    }

    /// A page of the pointers of the pipelines the caller's account owns, of one pipeline if
    /// given, ordered by pipeline and pointer; dangling ones only when asked for.
    pub async fn list_pointers(
        &self,
        caller: &Caller,
        pipeline: Option<(&str, &str)>,
        include_dangling: bool,
        skip: u64,
        limit: u64,
    ) -> Result<Page<PointerInfo>, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let keys = pipeline.map(|(namespace, name)| (names::key(namespace), names::key(name)));
        let filter = pointer_rows::PointerFilter {
            owner_account_id: &caller.account_id,
            pipeline: keys.as_ref().map(|(n, p)| (n.as_str(), p.as_str())),
            include_dangling,
        };
        let (total, rows) = pointer_rows::page(
            &mut conn,
            &filter,
            i64::try_from(skip).unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
        .await?;
        Ok(Page {
            total: total.max(0) as u64,
            items: rows.into_iter().map(PointerInfo::from).collect(),
        })
    }

    /// The ready version `namespace/name:tag` names, `tag` a version or else a pointer: what a
    /// run of it runs (see the module doc). A dangling pointer is answered as its version
    /// missing.
    pub(crate) async fn resolve_reference(
        &self,
        conn: &mut AnyConnection,
        namespace: &str,
        name: &str,
        tag: Option<&str>,
    ) -> Result<(rows::PipelineRow, VersionInfo), RegistryError> {
        let Some(tag) = tag else {
            return self.resolve_with(conn, namespace, name, None).await;
        };
        match self.resolve_with(conn, namespace, name, Some(tag)).await {
            Err(RegistryError::Refused(Refusal::VersionNotFound { .. })) => {
                let pipeline = self.find_pipeline(conn, namespace, name).await?;
                match pointer_rows::by_key(conn, &pipeline.id, &names::key(tag)).await? {
                    Some(pointer) => {
                        self.resolve_with(conn, namespace, name, Some(&pointer.version))
                            .await
                    }
                    None => Err(Refusal::VersionNotFound {
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                        version: tag.to_string(),
                    }
                    .into()),
                }
            }
            other => other,
        }
    }

    /// The pipeline a pointer belongs to, if the caller's account owns it; the same refusals as
    /// for changing its versions.
    async fn owned_pipeline(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        pointer: &TaggedName,
    ) -> Result<rows::PipelineRow, RegistryError> {
        self.require_namespace_member(conn, caller, &pointer.namespace)
            .await?;
        let pipeline = self
            .find_pipeline(conn, &pointer.namespace, &pointer.name)
            .await?;
        self.require_owner(conn, caller, &pipeline).await?;
        Ok(pipeline)
    }

    async fn pointer_row(
        &self,
        conn: &mut AnyConnection,
        pipeline: &rows::PipelineRow,
        pointer: &TaggedName,
    ) -> Result<pointer_rows::PointerRow, RegistryError> {
        pointer_rows::by_key(conn, &pipeline.id, &names::key(&pointer.tag))
            .await?
            .ok_or_else(|| {
                Refusal::PointerNotFound {
                    namespace: pipeline.namespace.clone(),
                    name: pipeline.name.clone(),
                    pointer: pointer.tag.clone(),
                }
                .into()
            })
    }

    /// The version `target` names for `pointer`: a version of the pointer's own pipeline, or
    /// the version another of its pointers names.
    async fn target_version(
        &self,
        conn: &mut AnyConnection,
        pipeline: &rows::PipelineRow,
        pointer: &TaggedName,
        target: &TaggedName,
    ) -> Result<rows::VersionRow, RegistryError> {
        let same_pipeline = names::key(&target.namespace) == names::key(&pipeline.namespace)
            && names::key(&target.name) == names::key(&pipeline.name);
        if !same_pipeline {
            return Err(RegistryError::invalid(Finding::new(
                OTHER_PIPELINE,
                "target",
                format!(
                    "{pointer} can name only a version of {}/{}; {target} is not one",
                    pipeline.namespace, pipeline.name
                ),
            )));
        }
        let key = names::key(&target.tag);
        if let Some(version) = rows::version_by_key(conn, &pipeline.id, &key).await? {
            return Ok(version);
        }
        let not_found = || Refusal::VersionNotFound {
            namespace: pipeline.namespace.clone(),
            name: pipeline.name.clone(),
            version: target.tag.clone(),
        };
        let other = pointer_rows::by_key(conn, &pipeline.id, &key)
            .await?
            .ok_or_else(not_found)?;
        rows::version_by_key(conn, &pipeline.id, &names::key(&other.version))
            .await?
            .ok_or_else(|| not_found().into())
    }

    /// Commits a change to a pipeline's pointers: its version-set revision claimed (a version
    /// registered meanwhile could take a pointer's name) and its namespace's change counter
    /// moved (runs re-resolve).
    async fn commit_pointer_change(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        pipeline: &rows::PipelineRow,
    ) -> Result<(), RegistryError> {
        if !rows::bump_versions_revision(&mut tx, &pipeline.id, pipeline.versions_revision).await? {
            return Err(Refusal::ChangedMeanwhile {
                namespace: pipeline.namespace.clone(),
                name: pipeline.name.clone(),
            }
            .into());
        }
        rows::bump_namespace_revision(&mut tx, &names::key(&pipeline.namespace), &pipeline.id)
            .await?;
        tx.commit().await?;
        self.namespace_changed();
        Ok(())
    }
}
