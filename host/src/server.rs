//! Starting the server: open the store, the blob store (local directory or S3), the working
//! copies and the plugin host, load the built-in plugins, build the registry and the runs over
//! it ([`Services`]), and serve [`crate::api::app`] until Ctrl-C or SIGTERM, with the background
//! work running beside it (registration workers, change following, the upload sweeper, the runs'
//! upkeep).
//!
//! Replicas share the database, the blob store and the working copies; what a server keeps in
//! its data directory (the compile cache, materialized pipeline files, run scratch) is its own.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::ApiConfig;
pub use crate::api::Services;
use crate::blobs::{BlobLocation, BlobStore};
use crate::cli::{ServeArgs, StorageArgs, JUPYTERHUB_TOKEN_ENV, ZEPPELIN_AUTHORIZATION_ENV};
use crate::outbound::FetchPolicy;
use crate::plugins::{Grants, Limits, PluginHost};
use crate::registry::registration::RegistrationConfig;
use crate::registry::uploads::UploadLimits;
use crate::registry::Registry;
use crate::runs::{RunEngine, RunLimits, Runs};
use crate::store::{Backend, Store};
use crate::workcopies::WorkingCopies;

/// What a server needs, resolved from the command line (or built by tests).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub cache_dir: PathBuf,
    pub limits: Limits,
    /// What plugins may reach (HTTP base URLs with secret headers) and their config values.
    /// `Grants::default()` grants nothing.
    pub grants: Grants,
    pub api: ApiConfig,
    pub registration: RegistrationConfig,
    pub runs: RunLimits,
    /// Members of this account may change policy bindings.
    pub admin_account: Option<String>,
    pub uploads: UploadLimits,
    /// Where blobs are kept. None: the local directory `<data-dir>/blobs`.
    pub blob_store: Option<BlobLocation>,
    /// `object_store` S3 settings applied over the `AWS_*` environment (see
    /// [`BlobStore::open`]); the command line sets none.
    pub blob_store_settings: Vec<(String, String)>,
    /// The Acumos working copies. None: `<data-dir>/pipelines`.
    pub workcopy_dir: Option<PathBuf>,
    /// How long requests in flight may take to finish once shutdown starts.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// A server on `data_dir` and `database_url` with every other setting at its default, the
    /// compile cache under `<data-dir>/cache`: what tests and benchmarks start from and adjust.
    pub fn new(data_dir: &std::path::Path, database_url: String) -> Self {
        ServerConfig {
            data_dir: data_dir.to_path_buf(),
            database_url,
            cache_dir: data_dir.join("cache"),
            limits: Limits::default(),
            grants: Grants::default(),
            api: ApiConfig::default(),
            registration: RegistrationConfig::default(),
            runs: RunLimits::default(),
            admin_account: None,
            uploads: UploadLimits::default(),
            blob_store: None,
            blob_store_settings: Vec::new(),
            workcopy_dir: None,
            shutdown_grace: crate::drain::DEFAULT_GRACE,
        }
    }

    /// Resolves the flags; the service grants' secrets come from the environment.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        let secret = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let grants = service_grants(
            args.jupyterhub_url.as_deref(),
            secret(JUPYTERHUB_TOKEN_ENV).as_deref(),
            args.zeppelin_url.as_deref(),
            secret(ZEPPELIN_AUTHORIZATION_ENV).as_deref(),
        )?;
        Ok(ServerConfig {
            data_dir: args.storage.data_dir.clone(),
            database_url: args.storage.database_url(),
            cache_dir: args
                .cache_dir
                .clone()
                .unwrap_or_else(|| args.storage.data_dir.join("cache")),
            limits: Limits {
                call_timeout: Duration::from_millis(args.plugin_timeout_ms),
                memory_bytes: args.plugin_memory_mib << 20,
                ..Limits::default()
            },
            grants,
            api: ApiConfig {
                trust_gateway_header: args.trust_gateway_header.clone(),
                public_url: args.public_url.clone(),
            },
            registration: RegistrationConfig {
                attempt_timeout: Duration::from_secs(args.registration_timeout_secs),
                retry_window: Duration::from_secs(args.registration_retry_window_secs),
                lease: Duration::from_secs(args.registration_lease_secs.max(1)),
                file_root: args.registration_file_root.clone(),
                fetch_policy: FetchPolicy::allowing(args.allow_fetch.iter().cloned()),
                ..RegistrationConfig::default()
            },
            runs: RunLimits {
                timeout: Duration::from_secs(args.run_timeout_secs),
                max_total: args
                    .max_runs
                    .map_or(RunLimits::default().max_total, |n| n as usize),
                max_per_pipeline: args
                    .max_runs_per_pipeline
                    .unwrap_or(RunLimits::default().max_per_pipeline),
                idle_timeout: Duration::from_secs(args.idle_timeout_secs),
                max_url_input_bytes: args.max_url_input_bytes,
            },
            admin_account: args.admin_account.clone(),
            uploads: UploadLimits {
                max_files: args.upload_quota_files,
                max_bytes: args.upload_quota_bytes,
                time_to_live: Duration::from_secs(args.upload_ttl_secs),
            },
            blob_store: args.blob_store.clone(),
            blob_store_settings: Vec::new(),
            workcopy_dir: args.workcopy_dir.clone(),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
        })
    }

    /// Where the blobs are: `--blob-store`, else `<data-dir>/blobs`.
    pub fn blob_location(&self) -> BlobLocation {
        self.blob_store
            .clone()
            .unwrap_or_else(|| BlobLocation::Local(self.data_dir.join("blobs")))
    }

    /// Where the Acumos working copies are: `--workcopy-dir`, else `<data-dir>/pipelines`.
    pub fn workcopy_root(&self) -> PathBuf {
        self.workcopy_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("pipelines"))
    }
}

/// The grants of the built-in type handlers from the operator's service URLs and secrets.
/// A hub URL without a token is refused: every hub API call would fail with 403.
pub fn service_grants(
    jupyterhub_url: Option<&str>,
    jupyterhub_token: Option<&str>,
    zeppelin_url: Option<&str>,
    zeppelin_authorization: Option<&str>,
) -> anyhow::Result<Grants> {
    let mut grants = Grants::default();
    match (jupyterhub_url, jupyterhub_token) {
        (Some(url), Some(token)) => {
            grants = grants
                .with_jupyterhub(url, token)
                .context("--jupyterhub-url")?;
        }
        (Some(_), None) => anyhow::bail!(
            "--jupyterhub-url needs the hub's API token in the environment variable {JUPYTERHUB_TOKEN_ENV}"
        ),
        (None, Some(_)) => tracing::warn!(
            "{JUPYTERHUB_TOKEN_ENV} is set but --jupyterhub-url is not: Jupyter launch stays off"
        ),
        (None, None) => {}
    }
    if let Some(url) = zeppelin_url {
        grants = grants
            .with_zeppelin(url, zeppelin_authorization)
            .context("--zeppelin-url")?;
    }
    Ok(grants)
}

/// Opens the database (creating the data dir), applying migrations.
pub async fn open_store(storage: &StorageArgs) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&storage.data_dir)
        .with_context(|| format!("creating data dir {}", storage.data_dir.display()))?;
    Store::connect(&storage.database_url()).await
}

/// Builds the registry with its store, blobs and plugin host (built-ins loaded).
pub async fn build_registry(config: &ServerConfig) -> anyhow::Result<Registry> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let store = Store::connect(&config.database_url).await?;
    let blob_location = config.blob_location();
    let blobs = BlobStore::open(&blob_location, &config.blob_store_settings)
        .with_context(|| format!("opening the blob store {blob_location}"))?;
    if store.backend() != Backend::Sqlite && !blobs.is_shared() {
        tracing::warn!(
            blob_store = %blob_location,
            "the database can be shared with other replicas, but the blobs are in a local \
             directory they cannot see: pipelines, uploads and plugins stored here fail on them \
             (give every replica the same --blob-store s3://...)"
        );
    }
    let workcopies = WorkingCopies::open(&config.workcopy_root())?;
    let (cache_dir, limits) = (config.cache_dir.clone(), config.limits.clone());
    let grants = config.grants.clone();
    let plugins = tokio::task::spawn_blocking(move || -> anyhow::Result<PluginHost> {
        let host = PluginHost::new(&cache_dir, limits)?;
        host.set_grants(grants);
        host.load_builtins()?;
        Ok(host)
    })
    .await
    .context("plugin loading task")??;
    let plugins = Arc::new(plugins);
    // The Python runtime is compiled (or loaded from the cache) in the background: the server
    // answers meanwhile, and a Python push or run waits for it (`plugins::python`).
    if plugins.has_python_runtime() {
        let host = plugins.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = host.prepare_python_runtime() {
                tracing::error!(%error, "the Python runtime could not be loaded");
            }
        });
    }
    let registry = Registry::new(store, blobs, plugins, workcopies)
        .with_registration(config.registration.clone())
        .with_admin_account(config.admin_account.clone())
        .with_upload_limits(config.uploads.clone());
    registry
        .record_builtin_plugins()
        .await
        .context("recording the built-in plugins")?;
    registry
        .sync_plugins()
        .await
        .context("activating the stored plugin versions")?;
    registry
        .reload_bindings()
        .await
        .context("loading policy bindings")?;
    Ok(registry)
}

/// The registry ([`build_registry`]) and the runs over it.
pub async fn build_services(config: &ServerConfig) -> anyhow::Result<Services> {
    let registry = build_registry(config).await?;
    let link_key = link_key(registry.store(), &config.data_dir)
        .await
        .context("reading the link-signing key")?;
    let engine = RunEngine::open(
        &config.data_dir.join("runs"),
        registry.plugins().clone(),
        registry.blobs().clone(),
    )?;
    let runs = Runs::new(
        registry.clone(),
        engine,
        config.runs.clone(),
        config.registration.lease,
    );
    Ok(Services {
        registry,
        runs,
        link_key: link_key.into(),
    })
}

/// The key that signs download links: one per database, so a link made by one replica opens on
/// every other. The first server to start stores it; the others read it. A key that an older
/// server kept in `<data-dir>/link.key` is what it offers, so links handed out before the
/// upgrade keep working; the file is no longer written.
async fn link_key(store: &Store, data_dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use rand::RngCore;
    const NAME: &str = "link-key";
    let candidate = match std::fs::read(data_dir.join("link.key")) {
        Ok(key) if key.len() >= 32 => key,
        _ => {
            let mut key = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            key
        }
    };
    let mut conn = store.pool().acquire().await?;
    let stored =
        crate::store::secrets::get_or_insert(&mut conn, NAME, &hex::encode(&candidate)).await?;
    hex::decode(stored.trim()).context("the stored link key is not hex")
}

/// Serves on `listener`, with the registration workers running, until `shutdown` resolves;
/// then drains for at most [`crate::drain::DEFAULT_GRACE`] (see [`serve_draining`]).
pub async fn serve_on(
    listener: TcpListener,
    services: Services,
    api: ApiConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_draining(
        listener,
        services,
        api,
        shutdown,
        crate::drain::DEFAULT_GRACE,
    )
    .await
}

/// [`serve_on`], letting the requests in flight when `shutdown` resolves finish for at most
/// `grace` ([`crate::drain`]).
pub async fn serve_draining(
    listener: TcpListener,
    services: Services,
    mut api: ApiConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> anyhow::Result<()> {
    if api.public_url.is_none() {
        let address = listener.local_addr().context("the listen address")?;
        if address.ip().is_unspecified() {
            tracing::warn!(%address, "listening on every address without --public-url: download links name this address, which clients elsewhere cannot reach");
        }
        api.public_url = Some(format!("http://{address}"));
    }
    // Stopping mid-attempt is safe: the attempt's lease lapses and it runs again.
    let background = [
        services.registry.spawn_registrar(),
        services.registry.watch_changes(),
        services.registry.spawn_upload_sweeper(),
        services.runs.spawn_upkeep(),
    ];
    let runs = services.runs.clone();
    let app = crate::api::app(services, api);
    let served = crate::drain::serve(listener, app, shutdown, grace)
        .await
        .context("serving HTTP");
    for task in background {
        task.abort();
    }
    // The records of the last runs answered, queued behind their answers.
    runs.flush().await;
    served
}

/// `pipewright serve`.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServerConfig::from_args(&args)?;
    tracing::info!(grants = ?config.grants, "plugin grants (secret header values not shown)");
    let exceptions = config.registration.fetch_policy.exceptions();
    let allow_fetch: Vec<String> = exceptions.iter().map(ToString::to_string).collect();
    tracing::info!(
        ?allow_fetch,
        "fetches for callers reach global addresses and these"
    );
    // Before the plugins load: their compiles and cache loads are counted from the start.
    crate::api::ops::metrics_handle();
    let services = build_services(&config).await?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let backend = services.registry.store().backend();
    tracing::info!(address = %listener.local_addr()?, data_dir = %config.data_dir.display(), ?backend, "pipewright listening");
    serve_draining(
        listener,
        services,
        config.api,
        shutdown_signal(),
        config.shutdown_grace,
    )
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_link_key_is_made_once_per_database_and_adopts_an_older_key_file() {
        let shared = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", shared.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.unwrap();
        // The first server had a key file from before the key moved into the database.
        let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let older = vec![7u8; 32];
        std::fs::write(first.path().join("link.key"), &older).unwrap();
        assert_eq!(link_key(&store, first.path()).await.unwrap(), older);
        // Another server, another data directory (no file): the same key.
        assert_eq!(link_key(&store, second.path()).await.unwrap(), older);

        let fresh = Store::connect(&format!(
            "sqlite://{}",
            shared.path().join("other.sqlite").display()
        ))
        .await
        .unwrap();
        let made = link_key(&fresh, second.path()).await.unwrap();
        assert_eq!(made.len(), 32);
        assert_eq!(link_key(&fresh, first.path()).await.unwrap(), made);
    }
}
