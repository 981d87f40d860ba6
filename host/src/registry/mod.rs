//! The registry core: names, versions, states, ownership, resolution and permissions.
//! Every API surface is a thin adapter over the operations here; no rule is written twice.
//!
//! A pipeline is `namespace/name` (keyed case-folded, see [`names`]) and owned by an account.
//! A namespace named after an account is its members' alone: only they read it (anyone else is
//! answered as if it were empty) or write to it, and every refusal there reads the same whether
//! or not the pipeline exists. Any other namespace is shared, readable by every caller, and the
//! first account to create a name there owns it. Only members of the owning account may
//! register or delete versions ([`RegistryError::Forbidden`] otherwise). A namespace a surface
//! reserves (`gbdx`) takes writes from that surface only ([`reserving_surface`]).
//!
//! Registering a version runs the policy chain bound to it ([`policies`]) and the type handler's
//! `validate`, stores the content in the blob store, and commits the version row, its files and
//! the audit of approving policies in one transaction. Uploaded content is registered inline
//! (`registering → ready` in one step); the durable driver for content fetched from elsewhere
//! uses the same rows (`attempts`, `attempt_deadline`, `retry_until`).

pub mod accounts;
pub mod changes;
pub mod names;
pub mod plugin_versions;
pub mod policies;
pub mod policy_admin;
pub mod registration;
pub mod resolve;
pub mod run_capacity;
pub mod run_writes;
pub mod runs;
pub mod service;
pub mod uploads;
pub mod versions;
pub mod workbench;
pub mod workflows;

use std::sync::Arc;

use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::blobs::BlobStore;
use crate::plugins::{self, PluginError, PluginHost};
use crate::store::{self, pipelines as rows, Store};
use crate::workcopies::WorkingCopies;
pub use accounts::Caller;
pub use policies::{PolicyBindings, Scope};
pub use versions::VersionState;

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
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
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

/// A file of a version's content; the bytes are in the blob store under `digest`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FileInfo {
    pub path: String,
    pub digest: String,
    pub size: i64,
}

/// Where a version is in `registering → ready | failed`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Registration {
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_deadline_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_until_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<i64>,
}

/// One version of a pipeline.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VersionInfo {
    pub namespace: String,
    pub name: String,
    pub version: String,
    #[serde(rename = "type")]
    pub pipeline_type: String,
    pub state: VersionState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The definition given at registration (free JSON: ports, properties, ...).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    pub files: Vec<FileInfo>,
    /// `plugin@version` of every policy that approved this version.
    pub approved_by: Vec<String>,
    pub registered_by: String,
    pub registered_at_ms: i64,
    pub registration: Registration,
}

impl versions::Versioned for rows::VersionRow {
    fn version(&self) -> &str {
        &self.version
    }
    fn state(&self) -> VersionState {
        VersionState::parse(&self.state).unwrap_or(VersionState::Failed)
    }
    fn registered_at(&self) -> i64 {
        self.registered_at
    }
}

/// What creating a pipeline needs.
pub struct NewPipeline {
    /// Defaults to the caller's account.
    pub namespace: Option<String>,
    pub name: String,
    pub pipeline_type: String,
    pub description: Option<String>,
}

/// What registering a version needs: its uploaded files and, for content fetched from
/// elsewhere, its source (registered by the workers of [`registration`]).
pub struct NewVersion {
    pub version: String,
    pub description: Option<String>,
    pub definition: serde_json::Value,
    pub files: Vec<(String, Vec<u8>)>,
    pub source: Option<registration::ContentSource>,
    /// The bytes of an uploaded `source` (`SourceLocation::Blob`, named there by digest): kept
    /// in the blob store only once every check has passed, so a refused request stores nothing.
    pub source_upload: Option<Vec<u8>>,
    /// Creates the pipeline, of this type, in the same commit if it does not exist (the GBDX
    /// surface registers names on first use); None: it must exist.
    pub create_as_type: Option<String>,
}

/// A new definition for an existing version: the definition, its description, and the
/// files it replaces.
pub struct Definition {
    /// Free JSON. When it is an object naming a `name` or `version`, they must be the version's
    /// own (invariant 2: they never change); they are kept spelled as the version spells them.
    pub definition: serde_json::Value,
    pub description: Option<String>,
    pub files: Vec<(String, Vec<u8>)>,
    /// A file whose content is the definition itself (GBDX's `task.json`), written as stored.
    pub definition_file: Option<String>,
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

/// Invariant 2 on a replaced definition: a `name` or `version` it names must be the version's
/// own (case-insensitively, as names are); both are then spelled as stored.
fn keep_identity(
    definition: &mut serde_json::Value,
    name: &str,
    version: &str,
) -> Result<(), RegistryError> {
    let Some(fields) = definition.as_object_mut() else {
        return Ok(());
    };
    for (field, own) in [("name", name), ("version", version)] {
        let given = fields.get(field).and_then(serde_json::Value::as_str);
        if given.is_some_and(|given| names::key(given) != names::key(own)) {
            return Err(RegistryError::invalid(Finding::new(
                "name-or-version-changed",
                field,
                format!("the {field} of a version never changes (it is {own})"),
            )));
        }
        if fields.contains_key(field) {
            fields.insert(field.into(), own.into());
        }
    }
    Ok(())
}

/// A pipeline as policies and type handlers see it: its names, version, type and description
/// (ports and properties stay in the definition). Every check builds it here.
pub(crate) fn candidate(
    namespace: &str,
    name: &str,
    version: Option<&str>,
    type_id: &str,
    description: Option<String>,
) -> plugins::Pipeline {
    plugins::Pipeline {
        namespace: namespace.to_string(),
        name: name.to_string(),
        version: version.map(str::to_string),
        type_: type_id.to_string(),
        description,
        inputs: Vec::new(),
        outputs: Vec::new(),
        properties: Vec::new(),
    }
}

/// Refuses a write into a namespace another surface reserves.
fn require_writable_by(namespace: &str, surface: Surface) -> Result<(), RegistryError> {
    match reserving_surface(namespace) {
        Some(owner) if owner != surface => Err(RegistryError::Forbidden(format!(
            "namespace {namespace} is reserved for the {} surface's own registrations",
            owner.as_str()
        ))),
        _ => Ok(()),
    }
}

/// How many times a registration re-checks when a concurrent one changed the version set.
const REGISTER_RETRIES: usize = 8;
/// Most files one version may hold.
pub const MAX_FILES: usize = 1000;

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
    /// What `/v4` runs resolved to, kept while their namespace's change counter stays.
    run_targets: Arc<runs::RunTargets>,
    /// Every write of a run's row, group-committed.
    run_writes: Arc<run_writes::RunWrites>,
    runs: crate::runs::RunEngine,
    /// The deadline of one run (a workflow task's or a `/v4` run's).
    run_timeout: std::time::Duration,
    run_capacity: Arc<run_capacity::RunCapacity>,
    /// Runnable pipelines idle this long are scaled to zero.
    idle_timeout: std::time::Duration,
    link_key: Arc<[u8]>,
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
        runs: crate::runs::RunEngine,
    ) -> Self {
        let run_capacity = Arc::new(run_capacity::RunCapacity::on(
            &store,
            &runs::RunLimits::default(),
        ));
        Registry {
            run_writes: Arc::new(run_writes::RunWrites::new(store.clone())),
            store,
            blobs,
            plugins,
            bindings: Arc::new(PolicyBindings::default()),
            workcopies,
            registration: Arc::default(),
            registration_wakeup: Arc::default(),
            listings: Arc::default(),
            run_targets: Arc::default(),
            runs,
            run_timeout: runs::DEFAULT_RUN_TIMEOUT,
            run_capacity,
            idle_timeout: runs::RunLimits::default().idle_timeout,
            link_key: Arc::from(uuid::Uuid::new_v4().as_bytes().as_slice()),
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
        let exists =
            || RegistryError::Conflict(format!("pipeline {namespace}/{} exists already", new.name));
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
    async fn plan_pipeline(
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
    async fn namespace_owner(
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

    /// The pipelines the caller may read (see [`Self::require_readable`]).
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
    async fn find_readable(
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
            Err(RegistryError::NotFound(format!(
                "pipeline {namespace}/{name}"
            )))
        }
    }

    async fn find_pipeline(
        &self,
        conn: &mut AnyConnection,
        namespace: &str,
        name: &str,
    ) -> Result<rows::PipelineRow, RegistryError> {
        rows::pipeline_by_key(conn, &names::key(namespace), &names::key(name))
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("pipeline {namespace}/{name}")))
    }

    /// Refuses, before anything is looked up, a caller who is not a member of the account a
    /// namespace is named after: what is in a private namespace is not revealed by a refusal
    /// that differs between a pipeline that exists and one that does not.
    async fn require_namespace_member(
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
    async fn require_owner(
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

    /// Registers a version with uploaded content (see the module doc).
    pub async fn register_version(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        new: NewVersion,
        surface: Surface,
    ) -> Result<VersionInfo, RegistryError> {
        names::check_version(&new.version).map_err(RegistryError::invalid)?;
        require_writable_by(namespace, surface)?;
        check_files(&new.files)?;
        if let Some(source) = &new.source {
            // A URL that can never be fetched is refused now, not queued and retried.
            self.check_source(source, new.source_upload.as_deref())
                .await?;
        }
        let deferred = new.source.is_some();
        let content: Vec<plugins::File> = new
            .files
            .iter()
            .map(|(path, bytes)| plugins::File {
                path: path.clone(),
                contents: bytes.clone(),
            })
            .collect();

        for _ in 0..REGISTER_RETRIES {
            let mut conn = self.store.pool().acquire().await?;
            self.require_namespace_member(&mut conn, caller, namespace)
                .await?;
            let (pipeline, is_new) = match self.find_pipeline(&mut conn, namespace, name).await {
                Ok(pipeline) => {
                    self.require_owner(&mut conn, caller, &pipeline).await?;
                    (pipeline, false)
                }
                Err(RegistryError::NotFound(_)) if new.create_as_type.is_some() => {
                    let pipeline_type = new.create_as_type.as_deref().unwrap_or_default();
                    let planned = self
                        .plan_pipeline(&mut conn, caller, namespace, name, pipeline_type, None)
                        .await?;
                    (planned, true)
                }
                Err(error) => return Err(error),
            };
            let existing: Vec<String> = rows::versions_of(&mut conn, &pipeline.id)
                .await?
                .into_iter()
                .map(|v| v.version)
                .collect();
            drop(conn);

            let candidate = candidate(
                &pipeline.namespace,
                &pipeline.name,
                Some(&new.version),
                &pipeline.pipeline_type,
                new.description
                    .clone()
                    .or_else(|| pipeline.description.clone()),
            );
            let context = plugins::PolicyContext {
                surface: surface.as_str().into(),
                account: caller.account.clone(),
                user: caller.user.clone(),
                config: Vec::new(),
            };
            let chain = self.bindings.chain_for(
                Some(&names::key(&pipeline.namespace)),
                &pipeline.pipeline_type,
                surface,
            );
            let plugins = self.plugins.clone();
            let (content, type_id) = (content.clone(), pipeline.pipeline_type.clone());
            // Content still to be fetched is validated by the registration worker.
            let approvals = tokio::task::spawn_blocking(move || {
                if deferred {
                    policies::evaluate(&plugins, &chain, candidate, &existing, &context)
                        .map(|(_, approvals)| approvals)
                } else {
                    approve(
                        &plugins, &chain, candidate, &existing, &context, &type_id, &content,
                    )
                }
            })
            .await
            .map_err(|e| {
                RegistryError::Internal(anyhow::anyhow!("policy evaluation task failed: {e}"))
            })??;

            let mut files = Vec::with_capacity(new.files.len());
            for (path, bytes) in &new.files {
                let digest = self.blobs.put(bytes).await?;
                files.push(rows::FileRow {
                    path: path.clone(),
                    digest,
                    size: bytes.len() as i64,
                });
            }
            if let Some(bytes) = &new.source_upload {
                self.blobs.put(bytes).await?;
            }
            let content_digest = manifest_digest(&files);
            let approved_by = serde_json::to_string(
                &approvals
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .expect("a list of strings serializes");
            let definition = new.definition.to_string();
            let source = new
                .source
                .as_ref()
                .map(|s| serde_json::to_string(s).expect("a source serializes"));

            let mut tx = self.store.begin().await?;
            let claimed = if is_new {
                // First version of a new name: the pipeline is made in the same commit. If
                // someone made it meanwhile, start over (and meet its owner check).
                match rows::insert_pipeline(&mut tx, &pipeline.as_new()).await {
                    Err(e) if store::is_unique_violation(&e) => false,
                    other => other.map(|()| true)?,
                }
            } else {
                rows::bump_versions_revision(&mut tx, &pipeline.id, pipeline.versions_revision)
                    .await?
            };
            if !claimed {
                // Someone registered or deleted a version meanwhile: the policies saw a stale set.
                tx.rollback().await?;
                continue;
            }
            let now = store::now_millis();
            let version_id = uuid::Uuid::new_v4().to_string();
            let row = rows::NewVersion {
                id: &version_id,
                pipeline_id: &pipeline.id,
                version: &new.version,
                version_key: &names::key(&new.version),
                state: VersionState::Registering.as_str(),
                description: new.description.as_deref(),
                definition: &definition,
                content_digest: Some(&content_digest),
                approved_by: &approved_by,
                registered_by: &caller.user_id,
                registered_at: now,
                attempts: if deferred { 0 } else { 1 },
                attempt_deadline: None,
                retry_until: deferred
                    .then(|| now + self.registration.retry_window.as_millis() as i64),
                finished_at: None,
                source: source.as_deref(),
            };
            match rows::insert_version(&mut tx, &row).await {
                Err(e) if store::is_unique_violation(&e) => {
                    return Err(RegistryError::Conflict(format!(
                        "{}:{} is registered already",
                        pipeline.name, new.version
                    )))
                }
                other => other?,
            }
            for file in &files {
                rows::insert_file(&mut tx, &version_id, file).await?;
            }
            rows::bump_namespace_revision(&mut tx, &names::key(&pipeline.namespace)).await?;
            if !deferred {
                // Uploaded content was validated above: ready in the same commit.
                rows::finish_registration(
                    &mut tx,
                    &version_id,
                    VersionState::Ready.as_str(),
                    None,
                    now,
                )
                .await?;
            }
            let registered = self
                .version_info(&mut tx, &pipeline, &names::key(&new.version))
                .await?;
            tx.commit().await?;
            self.run_targets.namespace_changed();
            if deferred {
                self.registration_wakeup.notify_one();
            }
            tracing::info!(pipeline = %format!("{}/{}", pipeline.namespace, pipeline.name), version = %new.version, approved_by = %approved_by, "version registered");
            return Ok(registered);
        }
        Err(RegistryError::Conflict(format!(
            "{namespace}/{name} is changing too fast; try again"
        )))
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

    /// A version the caller's account owns and that is not registering (the ones that may be
    /// changed or deleted).
    async fn settled_version(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> Result<(rows::PipelineRow, rows::VersionRow), RegistryError> {
        self.require_namespace_member(conn, caller, namespace)
            .await?;
        let pipeline = self.find_pipeline(conn, namespace, name).await?;
        self.require_owner(conn, caller, &pipeline).await?;
        let row = rows::version_by_key(conn, &pipeline.id, &names::key(version))
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("{namespace}/{name}:{version}")))?;
        if row.state == VersionState::Registering.as_str() {
            return Err(RegistryError::NotReady {
                name: pipeline.name,
                version: row.version,
                state: VersionState::Registering,
            });
        }
        Ok((pipeline, row))
    }

    /// Deletes one version; refused while it is registering. The same version may be registered
    /// again afterwards.
    pub async fn delete_version(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        version: &str,
        surface: Surface,
    ) -> Result<(), RegistryError> {
        require_writable_by(namespace, surface)?;
        let mut tx = self.store.begin().await?;
        let (pipeline, row) = self
            .settled_version(&mut tx, caller, namespace, name, version)
            .await?;
        rows::delete_version(&mut tx, &row.id).await?;
        rows::bump_namespace_revision(&mut tx, &names::key(&pipeline.namespace)).await?;
        if !rows::bump_versions_revision(&mut tx, &pipeline.id, pipeline.versions_revision).await? {
            return Err(RegistryError::Conflict(format!(
                "{namespace}/{name} changed meanwhile; try again"
            )));
        }
        tx.commit().await?;
        self.run_targets.namespace_changed();
        tracing::info!(pipeline = %format!("{namespace}/{name}"), version, "version deleted");
        Ok(())
    }

    /// Replaces the definition of a version, and the files `files` name, keeping its name,
    /// version and state; starts no registration. The whole content is validated again by the
    /// type handler. Refused while the version registers.
    pub async fn replace_definition(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        version: &str,
        replacement: Definition,
        surface: Surface,
    ) -> Result<VersionInfo, RegistryError> {
        require_writable_by(namespace, surface)?;
        let Definition {
            mut definition,
            description,
            mut files,
            definition_file,
        } = replacement;
        check_files(&files)?;
        let mut conn = self.store.pool().acquire().await?;
        let (pipeline, row) = self
            .settled_version(&mut conn, caller, namespace, name, version)
            .await?;
        keep_identity(&mut definition, &pipeline.name, &row.version)?;
        if let Some(path) = definition_file {
            files.retain(|(p, _)| *p != path);
            files.push((path, definition.to_string().into_bytes()));
        }
        let mut stored = rows::files_of(&mut conn, &row.id).await?;
        drop(conn);
        let mut content = Vec::with_capacity(stored.len() + files.len());
        for file in stored
            .iter()
            .filter(|f| !files.iter().any(|(p, _)| *p == f.path))
        {
            content.push(plugins::File {
                path: file.path.clone(),
                contents: self.blobs.get(&file.digest).await?,
            });
        }
        let mut replaced = Vec::with_capacity(files.len());
        for (path, bytes) in &files {
            content.push(plugins::File {
                path: path.clone(),
                contents: bytes.clone(),
            });
            // Stored below, once the handler accepted the content: a refusal leaves no blob.
            let row = rows::FileRow {
                path: path.clone(),
                digest: crate::blobs::digest_of(bytes),
                size: bytes.len() as i64,
            };
            stored.retain(|f| f.path != row.path);
            stored.push(row.clone());
            replaced.push(row);
        }
        let handler = self
            .plugins
            .type_handler(&pipeline.pipeline_type)
            .ok_or_else(|| {
                RegistryError::Internal(anyhow::anyhow!(
                    "no handler for type {}",
                    pipeline.pipeline_type
                ))
            })?;
        let candidate = candidate(
            &pipeline.namespace,
            &pipeline.name,
            Some(&row.version),
            &pipeline.pipeline_type,
            description.clone(),
        );
        let findings = tokio::task::spawn_blocking(move || handler.validate(&candidate, &content))
            .await
            .map_err(|e| RegistryError::Internal(anyhow::anyhow!("validation task failed: {e}")))??
            .into_iter()
            .filter(|d| d.severity == plugins::Severity::Error)
            .map(|d| Finding {
                code: d.code,
                field: d.field,
                message: d.message,
                source: Some(pipeline.pipeline_type.clone()),
            })
            .collect::<Vec<_>>();
        if !findings.is_empty() {
            return Err(RegistryError::Invalid(findings));
        }
        for (_, bytes) in &files {
            self.blobs.put(bytes).await?;
        }
        let mut tx = self.store.begin().await?;
        for file in &replaced {
            rows::replace_file(&mut tx, &row.id, file).await?;
        }
        rows::set_definition(
            &mut tx,
            &row.id,
            &definition.to_string(),
            description.as_deref(),
            &manifest_digest(&stored),
        )
        .await?;
        // Cached run targets hold the definition and the files: they re-read on this bump.
        rows::bump_namespace_revision(&mut tx, &names::key(&pipeline.namespace)).await?;
        let updated = self
            .version_info(&mut tx, &pipeline, &names::key(version))
            .await?;
        tx.commit().await?;
        self.run_targets.namespace_changed();
        tracing::info!(pipeline = %format!("{namespace}/{name}"), version, "definition replaced");
        Ok(updated)
    }

    /// Bytes kept in the blob store under `digest`.
    pub async fn read_blob(&self, digest: &str) -> Result<Vec<u8>, RegistryError> {
        Ok(self.blobs.get(digest).await?)
    }

    /// The key that signs download links (see `api::mystic`).
    pub fn link_key(&self) -> &[u8] {
        &self.link_key
    }

    /// The same registry with another link key (the server keeps one in the database, see `store::secrets`).
    pub fn with_link_key(mut self, key: Vec<u8>) -> Self {
        self.link_key = key.into();
        self
    }

    /// Ids of every registered pipeline type.
    pub fn type_ids(&self) -> Vec<String> {
        self.plugins
            .type_handlers()
            .iter()
            .map(|t| t.info.id.clone())
            .collect()
    }

    async fn version_info(
        &self,
        conn: &mut AnyConnection,
        pipeline: &rows::PipelineRow,
        version_key: &str,
    ) -> Result<VersionInfo, RegistryError> {
        let row = rows::version_by_key(conn, &pipeline.id, version_key)
            .await?
            .ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "{}/{}:{version_key}",
                    pipeline.namespace, pipeline.name
                ))
            })?;
        let files = rows::files_of(conn, &row.id).await?;
        Ok(version_info(pipeline, row, files))
    }
}

/// The refusal of a caller who is not a member of the account owning `pipeline`.
/// The refusal of a non-member. In an account's own namespace it names the namespace only, as
/// [`foreign_namespace`] does for a pipeline that does not exist there.
fn not_a_member(pipeline: &rows::PipelineRow, caller: &Caller) -> RegistryError {
    if names::key(&pipeline.namespace) == names::key(&pipeline.owner_account) {
        return foreign_namespace(&pipeline.namespace);
    }
    RegistryError::Forbidden(format!(
        "{}/{} is owned by account {}; {} is not a member",
        pipeline.namespace, pipeline.name, pipeline.owner_account, caller.user
    ))
}

fn foreign_namespace(namespace: &str) -> RegistryError {
    RegistryError::Forbidden(format!("namespace {namespace} belongs to another account"))
}

/// Renews the lease of `id` in `table` every third of `lease` until the returned task is
/// aborted (the work is done, or the server stops and the lease lapses).
fn keep_lease(
    store: Store,
    table: store::leases::Leased,
    id: &str,
    lease: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    let id = id.to_string();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(lease / 3).await;
            if let Ok(mut conn) = store.pool().acquire().await {
                let until = store::now_millis() + lease.as_millis() as i64;
                if let Err(error) = store::leases::renew(&mut conn, table, &id, until).await {
                    tracing::warn!(%id, %error, "could not renew a lease");
                }
            }
        }
    })
}

/// Whether `caller` acts for `account_id`: it is their token's account, or one they belong to.
async fn acts_for(
    registry: &Registry,
    conn: &mut AnyConnection,
    caller: &Caller,
    account_id: &str,
) -> Result<bool, RegistryError> {
    Ok(caller.account_id == account_id
        || registry
            .is_member(conn, account_id, &caller.user_id)
            .await?)
}

/// Runs the policy chain, then the type handler's `validate` on the candidate the chain
/// approved. Ok: who approved it. Blocking (plugin calls): run it on `spawn_blocking`.
fn approve(
    plugins: &PluginHost,
    chain: &[String],
    candidate: plugins::Pipeline,
    existing: &[String],
    context: &plugins::PolicyContext,
    type_id: &str,
    content: &[plugins::File],
) -> Result<Vec<plugins::PluginId>, RegistryError> {
    let (candidate, approvals) = policies::evaluate(plugins, chain, candidate, existing, context)?;
    let handler = plugins
        .type_handler(type_id)
        .ok_or_else(|| RegistryError::Internal(anyhow::anyhow!("no handler for type {type_id}")))?;
    let errors: Vec<Finding> = handler
        .validate(&candidate, content)?
        .into_iter()
        .filter(|d| d.severity == plugins::Severity::Error)
        .map(|d| Finding {
            code: d.code,
            field: d.field,
            message: d.message,
            source: Some(handler.id.to_string()),
        })
        .collect();
    if errors.is_empty() {
        Ok(approvals)
    } else {
        Err(RegistryError::Invalid(errors))
    }
}

/// Paths are relative, `/`-separated, without `.`/`..` segments or a `.git` folder, unique;
/// at most [`MAX_FILES`].
fn check_files(files: &[(String, Vec<u8>)]) -> Result<(), RegistryError> {
    check_paths(files.iter().map(|(path, _)| path.as_str()))
}

fn check_paths<'a>(paths: impl ExactSizeIterator<Item = &'a str>) -> Result<(), RegistryError> {
    if paths.len() > MAX_FILES {
        return Err(RegistryError::invalid(Finding::new(
            "invalid-content",
            "files",
            format!("more than {MAX_FILES} files"),
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        let bad_segment = path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
        if path.is_empty()
            || path.len() > 1024
            || bad_segment
            || path.split('/').next() == Some(".git")
            || path.contains('\\')
            || path.chars().any(char::is_control)
        {
            return Err(RegistryError::invalid(Finding::new(
                "invalid-path",
                "files",
                format!("`{path}` is not a relative file path"),
            )));
        }
        if !seen.insert(path) {
            return Err(RegistryError::invalid(Finding::new(
                "invalid-path",
                "files",
                format!("`{path}` appears twice"),
            )));
        }
    }
    Ok(())
}

/// The digest of a version's content: sha256 over its sorted `path digest` lines.
fn manifest_digest(files: &[rows::FileRow]) -> String {
    use sha2::{Digest, Sha256};
    let mut lines: Vec<String> = files
        .iter()
        .map(|f| format!("{} {}\n", f.path, f.digest))
        .collect();
    lines.sort();
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(lines.concat().as_bytes()))
    )
}

fn pipeline_info(row: rows::PipelineRow) -> PipelineInfo {
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

fn version_info(
    pipeline: &rows::PipelineRow,
    row: rows::VersionRow,
    files: Vec<rows::FileRow>,
) -> VersionInfo {
    VersionInfo {
        namespace: pipeline.namespace.clone(),
        name: pipeline.name.clone(),
        state: versions::Versioned::state(&row),
        version: row.version,
        pipeline_type: pipeline.pipeline_type.clone(),
        description: row.description,
        definition: serde_json::from_str(&row.definition).unwrap_or(serde_json::Value::Null),
        content_digest: row.content_digest,
        files: files
            .into_iter()
            .map(|f| FileInfo {
                path: f.path,
                digest: f.digest,
                size: f.size,
            })
            .collect(),
        approved_by: serde_json::from_str(&row.approved_by).unwrap_or_default(),
        registered_by: row.registered_by,
        registered_at_ms: row.registered_at,
        registration: Registration {
            attempts: row.attempts,
            attempt_deadline_ms: row.attempt_deadline,
            retry_until_ms: row.retry_until,
            last_error: row.last_error,
            finished_at_ms: row.finished_at,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(paths: &[&str]) -> Vec<(String, Vec<u8>)> {
        paths.iter().map(|p| (p.to_string(), Vec::new())).collect()
    }

    #[test]
    fn file_paths_must_be_relative_and_unique() {
        assert!(check_files(&files(&["notebook.ipynb", "data/a.csv"])).is_ok());
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "",
            "a\\b",
            "./a",
            ".git/config",
        ] {
            assert!(check_files(&files(&[bad])).is_err(), "{bad} accepted");
        }
        assert!(check_files(&files(&["a", "a"])).is_err());
    }

    #[test]
    fn manifest_digest_ignores_order() {
        let a = rows::FileRow {
            path: "a".into(),
            digest: "sha256:1".into(),
            size: 1,
        };
        let b = rows::FileRow {
            path: "b".into(),
            digest: "sha256:2".into(),
            size: 1,
        };
        assert_eq!(
            manifest_digest(&[a.clone(), b.clone()]),
            manifest_digest(&[b, a])
        );
    }

    #[test]
    fn a_replaced_definition_keeps_its_name_and_version() {
        use serde_json::json;
        let cases = [
            (
                json!({"name": "Hello", "version": "1.0.0", "x": 1}),
                Ok(json!({"name": "hello", "version": "1.0.0", "x": 1})),
            ),
            (json!({"x": 1}), Ok(json!({"x": 1}))),
            (json!({"name": "other"}), Err("name")),
            (json!({"version": "2.0.0"}), Err("version")),
            (
                json!(["not", "an", "object"]),
                Ok(json!(["not", "an", "object"])),
            ),
        ];
        for (mut given, expected) in cases {
            let result = keep_identity(&mut given, "hello", "1.0.0");
            match (result, expected) {
                (Ok(()), Ok(kept)) => assert_eq!(given, kept),
                (Err(RegistryError::Invalid(findings)), Err(field)) => {
                    assert_eq!(findings[0].code, "name-or-version-changed");
                    assert_eq!(findings[0].field.as_deref(), Some(field));
                }
                (result, expected) => panic!("{result:?} where {expected:?} was expected"),
            }
        }
    }
}
