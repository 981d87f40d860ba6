//! The registry core: names, versions, states, ownership, resolution and permissions.
//! Every API surface is a thin adapter over the operations here; no rule is written twice.
//!
//! Where each rule is:
//! - [`pipelines`]: a pipeline is `namespace/name` (keyed case-folded, see [`names`]), owned by
//!   an account; who may read and change which namespace; the namespace a surface reserves.
//! - [`version_changes`]: registering, replacing and deleting versions, each through the bound
//!   policy chain ([`policies`]) and the type handler's `validate`, committing the version row,
//!   its files and the audit of approving policies in one transaction. Uploaded content is
//!   registered inline; content fetched from elsewhere goes through the durable workers of
//!   [`registration`] on the same rows.
//! - [`versions`] and [`resolve`]: states and which version "latest" means.
//! - [`paging`]: lists read a page at a time by cursor (`/v1`'s versions and pipelines).
//! - [`pointers`]: movable names of versions (Mystic's tags), and what a run's name resolves to.
//! - [`python_pipelines`]: a Mystic pipeline directory made a version (name, version and ports
//!   derived, its graph described by the Python runtime).
//! - The Acumos records ([`workbench`]), uploads ([`uploads`]), plugins ([`plugin_versions`],
//!   [`policy_admin`]), accounts and tokens ([`accounts`]), the web console's sessions
//!   ([`sessions`]), following other servers and
//!   publishing this one's changes ([`changes`]), and what the surfaces ask of the server itself
//!   ([`service`]).
//!
//! Runs and workflows are not here: [`crate::runs`] uses the registry (to resolve what to run,
//! check the caller, read files) and follows its change generation
//! ([`Registry::change_generation`]); the registry does not know runs exist.
//!
//! This module holds what they share: the errors, the wire-neutral views of versions, and the
//! [`Registry`] handle.

pub mod accounts;
pub mod approval;
pub mod changes;
pub mod content_sources;
pub mod names;
pub mod paging;
pub mod pipelines;
pub mod plugin_versions;
pub mod pointers;
pub mod policies;
pub mod policy_admin;
pub mod python_pipelines;
pub mod refusals;
pub mod registration;
pub mod resolve;
pub mod service;
pub mod sessions;
pub mod uploads;
pub mod version_changes;
pub mod versions;
pub mod workbench;

use std::sync::Arc;

use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::blobs::BlobStore;
use crate::plugins::{PluginError, PluginHost};
use crate::store::{pipelines as rows, Store};
use crate::workcopies::WorkingCopies;
pub use accounts::Caller;
use approval::candidate;
pub use pipelines::{reserving_surface, NewPipeline, PipelineInfo, GBDX_NAMESPACE};
pub use policies::{PolicyBindings, Scope};
pub use refusals::{AdminAction, Refusal, RefusalKind};
use version_changes::{check_paths, manifest_digest};
pub use version_changes::{Definition, NewVersion, MAX_FILES};
use versions::version_info;
pub use versions::{FileInfo, Registration, VersionInfo, VersionState};

/// One reason a request was refused: a machine code, the field, a message, and the policy or
/// type handler that said so (none for the core's structural rules).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Finding {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Finding {
    pub fn new(code: &str, field: &str, message: impl Into<String>) -> Self {
        Finding {
            code: code.into(),
            field: Some(field.into()),
            message: message.into(),
            source: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("a valid API token is required")]
    Unauthenticated,
    /// A rule of the core says no: not allowed, not found, or in conflict (see [`refusals`]).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The candidate breaks a rule: structural, a policy's or the type handler's.
    #[error("{}", .0.first().map(|f| f.message.as_str()).unwrap_or("invalid request"))]
    Invalid(Vec<Finding>),
    /// The version exists but is not ready: surfaces word this their own way.
    #[error("{name} version {version} is {}", state.as_str())]
    NotReady {
        name: String,
        version: String,
        state: VersionState,
    },
    /// An upload past its account's quota.
    #[error("{0}")]
    QuotaExceeded(uploads::QuotaExceeded),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl RegistryError {
    pub fn invalid(finding: Finding) -> Self {
        RegistryError::Invalid(vec![finding])
    }
}

impl From<crate::blobs::BlobError> for RegistryError {
    fn from(error: crate::blobs::BlobError) -> Self {
        RegistryError::Internal(error.into())
    }
}

impl From<sqlx::Error> for RegistryError {
    fn from(error: sqlx::Error) -> Self {
        RegistryError::Internal(anyhow::Error::new(error).context("database"))
    }
}

/// One page of a listing, and how many there are in all.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub total: u64,
    pub items: Vec<T>,
}

/// Which API surface is asking; passed to policies as context, and a policy scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Surface {
    V1,
    Acumos,
    Gbdx,
    Mystic,
}

impl Surface {
    pub fn parse(name: &str) -> Option<Surface> {
        [Surface::V1, Surface::Acumos, Surface::Gbdx, Surface::Mystic]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Surface::V1 => "v1",
            Surface::Acumos => "acumos",
            Surface::Gbdx => "gbdx",
            Surface::Mystic => "mystic",
        }
    }

    /// The namespace this surface keeps for itself: only what it registers lives there.
    pub fn reserved_namespace(self) -> Option<&'static str> {
        match self {
            Surface::Gbdx => Some(GBDX_NAMESPACE),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Registry {
    store: Store,
    blobs: BlobStore,
    plugins: Arc<PluginHost>,
    bindings: Arc<PolicyBindings>,
    workcopies: WorkingCopies,
    registration: Arc<registration::RegistrationConfig>,
    /// Wakes this server's registration workers when a job is submitted here.
    registration_wakeup: Arc<tokio::sync::Notify>,
    listings: Arc<resolve::ListingCache>,
    /// Moved after every commit here that changes some namespace's versions (see [`changes`]).
    change_generation: Arc<std::sync::atomic::AtomicU64>,
    /// Members of this account may change policy bindings.
    admin_account: Option<String>,
    /// The stored bindings' change counter when they were last loaded.
    bindings_revision: Arc<std::sync::atomic::AtomicI64>,
    /// The plugin activations' change counter when they were last applied.
    plugins_revision: Arc<std::sync::atomic::AtomicI64>,
    /// Token rows read lately (see [`accounts`]).
    tokens: Arc<accounts::TokenCache>,
    upload_limits: Arc<uploads::UploadLimits>,
}

impl Registry {
    pub fn new(
        store: Store,
        blobs: BlobStore,
        plugins: Arc<PluginHost>,
        workcopies: WorkingCopies,
    ) -> Self {
        Registry {
            store,
            blobs,
            plugins,
            bindings: Arc::new(PolicyBindings::default()),
            workcopies,
            registration: Arc::default(),
            registration_wakeup: Arc::default(),
            listings: Arc::default(),
            change_generation: Arc::default(),
            admin_account: None,
            bindings_revision: Arc::default(),
            plugins_revision: Arc::default(),
            tokens: Arc::default(),
            upload_limits: Arc::default(),
        }
    }

    /// The same registry with other upload quotas and time to live.
    pub fn with_upload_limits(mut self, limits: uploads::UploadLimits) -> Self {
        self.upload_limits = Arc::new(limits);
        self
    }

    /// The same registry with other registration timings.
    pub fn with_registration(mut self, config: registration::RegistrationConfig) -> Self {
        self.registration = Arc::new(config);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn plugins(&self) -> &Arc<PluginHost> {
        &self.plugins
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn bindings(&self) -> &PolicyBindings {
        &self.bindings
    }

    /// `name` at `version`, or its latest ready version when `version` is None.
    pub async fn version(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<VersionInfo, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let pipeline = self
            .find_readable(&mut conn, caller, namespace, name)
            .await?;
        let version_key = match version {
            Some(v) => names::key(v),
            None => {
                let all = rows::versions_of(&mut conn, &pipeline.id).await?;
                names::key(&resolve::latest_or_why(all, namespace, &pipeline.name)?.version)
            }
        };
        self.version_info(&mut conn, &pipeline, &version_key).await
    }

    /// `name` at `version` for the server's own work (a workflow's pinned task), with its
    /// pipeline's id: no caller, so no read check; never answer a caller with it.
    pub(crate) async fn pinned_version(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> Result<(String, VersionInfo), RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let pipeline = self.find_pipeline(&mut conn, namespace, name).await?;
        let info = self
            .version_info(&mut conn, &pipeline, &names::key(version))
            .await?;
        Ok((pipeline.id, info))
    }

    /// Every version of a pipeline, in [`versions::listing_order`].
    pub async fn list_versions(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<VersionInfo>, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let pipeline = self
            .find_readable(&mut conn, caller, namespace, name)
            .await?;
        let mut all = rows::versions_of(&mut conn, &pipeline.id).await?;
        all.sort_by(versions::listing_order);
        let mut out = Vec::with_capacity(all.len());
        for row in all {
            let files = rows::files_of(&mut conn, &row.id).await?;
            out.push(version_info(&pipeline, row, files));
        }
        Ok(out)
    }

    /// A page of the versions of the pipelines of `pipeline_type` that the caller's account
    /// owns, ordered by pipeline and registration.
    pub async fn list_owned_versions(
        &self,
        caller: &Caller,
        pipeline_type: &str,
        skip: u64,
        limit: u64,
    ) -> Result<Page<VersionInfo>, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let (total, found) = rows::owned_versions_page(
            &mut conn,
            &caller.account_id,
            pipeline_type,
            i64::try_from(skip).unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
        .await?;
        let mut pipelines: Vec<rows::PipelineRow> = Vec::new();
        let mut items = Vec::with_capacity(found.len());
        for row in found {
            let pipeline = match pipelines.iter().find(|p| p.id == row.pipeline_id) {
                Some(pipeline) => pipeline.clone(),
                None => {
                    let pipeline = rows::pipeline_by_id(&mut conn, &row.pipeline_id)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("version {} has no pipeline", row.id))?;
                    pipelines.push(pipeline.clone());
                    pipeline
                }
            };
            let files = rows::files_of(&mut conn, &row.id).await?;
            items.push(version_info(&pipeline, row, files));
        }
        Ok(Page {
            total: total.max(0) as u64,
            items,
        })
    }

    /// Bytes kept in the blob store under `digest`.
    pub async fn read_blob(&self, digest: &str) -> Result<Vec<u8>, RegistryError> {
        Ok(self.blobs.get(digest).await?)
    }

    /// Ids of every registered pipeline type.
    pub fn type_ids(&self) -> Vec<String> {
        self.plugins
            .type_handlers()
            .iter()
            .map(|t| t.info.id.clone())
            .collect()
    }

    /// Whether `caller` acts for `account_id`: it is their token's account, or one they belong to.
    pub(crate) async fn acts_for(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        account_id: &str,
    ) -> Result<bool, RegistryError> {
        Ok(caller.account_id == account_id
            || self.is_member(conn, account_id, &caller.user_id).await?)
    }

    async fn version_info(
        &self,
        conn: &mut AnyConnection,
        pipeline: &rows::PipelineRow,
        version_key: &str,
    ) -> Result<VersionInfo, RegistryError> {
        let row = rows::version_by_key(conn, &pipeline.id, version_key)
            .await?
            .ok_or_else(|| Refusal::VersionNotFound {
                namespace: pipeline.namespace.clone(),
                name: pipeline.name.clone(),
                version: version_key.to_string(),
            })?;
        let files = rows::files_of(conn, &row.id).await?;
        Ok(version_info(pipeline, row, files))
    }
}
