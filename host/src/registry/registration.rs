//! Durable registration (DESIGN.md invariant 5): a version whose content comes from elsewhere
//! is `registering` until a worker has fetched it from its [`ContentSource`], verified its
//! digest, passed its type handler's `validate` and, for a component, compiled it ahead of time
//! into the plugin cache; then it is `ready`.
//!
//! The state lives in the store, not in memory: a worker leases one row at a time
//! ([`crate::store::registrations`]) and renews the lease while it works, so a server killed
//! mid-attempt leaves a lease that lapses and is taken again after a restart (or by another
//! replica). An attempt that runs past [`RegistrationConfig::attempt_timeout`] or fails is
//! retried with exponential backoff until the version's retry window closes; then the version is
//! `failed` with the last error. A failure no later attempt can mend (a URL the
//! [`FetchPolicy`] refuses, say after its DNS changed) fails the version at once.
//!
//! Every http(s) fetch goes through the [`FetchPolicy`]'s agent, which connects only to admitted
//! addresses, redirects included; [`Registry::check_fetchable`] makes the same check at the
//! request, so what is refused is answered there and never queued.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::outbound::{self, FetchPolicy};
use crate::plugins;
use crate::store::registrations::{self as jobs, LeasedJob, Outcome};
use crate::store::{self, pipelines as rows};

use super::{manifest_digest, Finding, Registry, RegistryError};

/// The violation code of a URL this server will not fetch from.
pub const FETCH_REFUSED: &str = "fetch-refused";

/// Where a registering version's content comes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContentSource {
    pub location: SourceLocation,
    /// `sha256:<hex>` the fetched bytes must have.
    pub digest: Option<String>,
    /// The path the fetched bytes take in the version's content (`component.wasm`).
    pub path: String,
    /// Compile the bytes ahead of time as a WebAssembly component.
    pub compile: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SourceLocation {
    /// `http://`, `https://`, or `file://` under the operator's allowed root.
    Url { url: String },
    /// Bytes uploaded with the request, already in the blob store.
    Blob { digest: String },
    /// Nothing to fetch (say, a container image this server cannot run): validation only.
    Nothing,
}

/// Timings of the registration workers. Tests shorten them to seconds.
#[derive(Clone, Debug)]
pub struct RegistrationConfig {
    /// One attempt may take this long (the seed's 30 minutes).
    pub attempt_timeout: Duration,
    /// Attempts are retried until this long after submission (the seed's two hours).
    pub retry_window: Duration,
    /// A worker's claim on a job, renewed every third of it while the attempt runs; after a
    /// crash the job is taken again once it lapses.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs (a submission on this server wakes it at once).
    pub poll_interval: Duration,
    /// The first retry waits this long; each later one twice as long, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Attempts run at once by one server.
    pub workers: usize,
    /// The largest content accepted from a source.
    pub max_content_bytes: u64,
    /// `file://` sources must lie under this directory; none: `file://` is refused.
    pub file_root: Option<std::path::PathBuf>,
    /// Where http(s) sources may be fetched from (`--allow-fetch`). The default: global
    /// addresses only. Also what plugins added by URL are fetched under.
    pub fetch_policy: FetchPolicy,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            attempt_timeout: Duration::from_secs(30 * 60),
            retry_window: Duration::from_secs(2 * 60 * 60),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(5 * 60),
            workers: 4,
            max_content_bytes: 256 << 20,
            file_root: None,
            fetch_policy: FetchPolicy::default(),
        }
    }
}

impl RegistrationConfig {
    /// The wait before attempt `attempts + 1`.
    fn backoff(&self, attempts: i64) -> Duration {
        let doublings = attempts.clamp(1, 20) as u32 - 1;
        self.backoff_base
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.backoff_max)
    }
}

/// Why a fetch failed. Its `Display` is the reason recorded for users.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{url}` is not a URL: {error}")]
    NotAUrl { url: String, error: url::ParseError },
    #[error("file URLs are not allowed on this server (`{url}`)")]
    FileUrlsNotAllowed { url: String },
    #[error("`{url}` names no local file")]
    NoLocalFile { url: String },
    #[error("`{url}` is outside the allowed file root")]
    OutsideFileRoot { url: String },
    #[error("`{scheme}` URLs are not supported (http, https, file)")]
    UnsupportedScheme { scheme: String },
    /// The [`FetchPolicy`] refused where `url` leads (also when a redirect led there: every hop
    /// is checked).
    #[error("fetching {url} is refused: {refusal}")]
    Refused {
        url: String,
        refusal: outbound::Refusal,
    },
    #[error("file root: {0}")]
    FileRoot(std::io::Error),
    #[error("reading {url}: {error}")]
    Read { url: String, error: std::io::Error },
    #[error("{url} is larger than {max} bytes")]
    TooLarge { url: String, max: u64 },
    #[error("fetching {url}: {error}")]
    Fetch { url: String, error: ureq::Error },
    #[error("fetching {url}: HTTP {status}")]
    Status {
        url: String,
        status: ureq::http::StatusCode,
    },
    /// The fetch's own deadline is the attempt's: whichever of the two timers fires first, the
    /// attempt fails with the same words.
    #[error(transparent)]
    TooLong(TookTooLong),
    #[error("fetch task failed: {0}")]
    Task(tokio::task::JoinError),
}

impl FetchError {
    /// Refused before anything was connected to or read: another attempt would be refused too.
    /// Anything else (a timeout, an HTTP error status, a reset, a missing file) may pass later.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            FetchError::NotAUrl { .. }
                | FetchError::FileUrlsNotAllowed { .. }
                | FetchError::NoLocalFile { .. }
                | FetchError::OutsideFileRoot { .. }
                | FetchError::UnsupportedScheme { .. }
                | FetchError::Refused { .. }
        )
    }
}

/// An attempt past its deadline, whichever timer noticed it.
#[derive(Debug, thiserror::Error)]
#[error("the attempt took longer than {0:?}")]
pub struct TookTooLong(Duration);

/// Why an attempt failed. Its `Display` is the reason shown to users (the version's last
/// error); what caused it is kept as a value. A final one fails the version now; any other is
/// retried with backoff while the retry window is open.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("unreadable content source: {0}")]
    UnreadableSource(serde_json::Error),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("uploaded content {digest}: {error}")]
    Upload {
        digest: String,
        error: Box<crate::blobs::BlobError>,
    },
    #[error("the content's digest is {actual}, not the expected {expected}")]
    DigestMismatch { actual: String, expected: String },
    #[error("{0}")]
    Database(sqlx::Error),
    #[error("the pipeline was deleted")]
    PipelineDeleted,
    #[error("the version was deleted")]
    VersionDeleted,
    /// Reading the version's stored files, or keeping the fetched bytes.
    #[error("{0:#}")]
    Blobs(anyhow::Error),
    #[error("no type handler for `{0}` is loaded")]
    NoTypeHandler(String),
    /// The type handler's `validate` failed as a plugin (trap, deadline, memory).
    #[error("{0}")]
    Validate(plugins::PluginError),
    /// The type handler's `validate` answered with errors.
    #[error("validation failed: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("the component does not compile: {0:#}")]
    Compile(anyhow::Error),
    #[error("registration task failed: {0}")]
    Task(tokio::task::JoinError),
    #[error(transparent)]
    TooLong(TookTooLong),
}

impl AttemptError {
    fn is_final(&self) -> bool {
        matches!(self, AttemptError::Fetch(fetch) if fetch.is_final())
    }
}

/// What a successful attempt produced, to commit.
struct Fetched {
    file: Option<rows::FileRow>,
    content_digest: String,
}

impl Registry {
    /// Runs registration workers until the returned handle is aborted.
    pub fn spawn_registrar(&self) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move { registry.registrar_loop().await })
    }

    /// Versions still `registering`, in the store (so on every replica): `/metrics` reads it at
    /// each scrape rather than keep a count that a restart or another replica would make wrong.
    pub async fn registrations_pending(&self) -> anyhow::Result<i64> {
        let mut conn = self.store.pool().acquire().await?;
        Ok(jobs::count_registering(&mut conn).await?)
    }

    async fn registrar_loop(self) {
        let owner = format!("worker-{}", uuid::Uuid::new_v4().simple());
        let config = self.registration.clone();
        let slots = Arc::new(tokio::sync::Semaphore::new(config.workers.max(1)));
        tracing::info!(%owner, "registration worker started");
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            match self.lease_job(&owner).await {
                Ok(Some(job)) => {
                    let (registry, owner) = (self.clone(), owner.clone());
                    tokio::spawn(async move {
                        registry.run_job(job, &owner).await;
                        drop(slot);
                    });
                }
                Ok(None) => {
                    drop(slot);
                    tokio::select! {
                        _ = self.registration_wakeup.notified() => {}
                        _ = tokio::time::sleep(config.poll_interval) => {}
                    }
                }
                Err(error) => {
                    drop(slot);
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "could not lease a registration"
                    );
                    tokio::time::sleep(config.poll_interval).await;
                }
            }
        }
    }

    async fn lease_job(&self, owner: &str) -> anyhow::Result<Option<LeasedJob>> {
        let now = store::now_millis();
        let config = &self.registration;
        let mut conn = self.store.pool().acquire().await?;
        Ok(jobs::lease_next(
            &mut conn,
            self.store.backend(),
            owner,
            now,
            now + config.lease.as_millis() as i64,
            now + config.attempt_timeout.as_millis() as i64,
        )
        .await?)
    }

    /// One attempt, with its lease renewed meanwhile; then its outcome recorded.
    async fn run_job(&self, job: LeasedJob, owner: &str) {
        let config = self.registration.clone();
        tracing::info!(version_id = %job.id, version = %job.version, attempt = job.attempts, "registration attempt");
        metrics::counter!("pipewright_registration_attempts_total").increment(1);
        let renewing = {
            let (store, id, owner) = (self.store.clone(), job.id.clone(), owner.to_string());
            let (every, lease) = (config.lease / 3, config.lease);
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    let until = store::now_millis() + lease.as_millis() as i64;
                    let held = match store.pool().acquire().await {
                        Ok(mut conn) => jobs::renew_lease(&mut conn, &id, &owner, until)
                            .await
                            .unwrap_or(true),
                        Err(_) => true,
                    };
                    if !held {
                        return;
                    }
                }
            }
        };
        let result = tokio::select! {
            result = tokio::time::timeout(config.attempt_timeout, self.attempt(&job)) => match result {
                Ok(result) => result,
                Err(_) => Err(AttemptError::TooLong(TookTooLong(config.attempt_timeout))),
            },
            () = renewing => {
                tracing::warn!(version_id = %job.id, "registration lease lost (deleted, or taken after a stall); attempt abandoned");
                return;
            }
        };
        if let Err(error) = self.record_outcome(&job, owner, result).await {
            tracing::error!(version_id = %job.id, error = format!("{error:#}"), "could not record a registration outcome; the lease will lapse and the job run again");
        }
    }

    async fn record_outcome(
        &self,
        job: &LeasedJob,
        owner: &str,
        result: Result<Fetched, AttemptError>,
    ) -> anyhow::Result<()> {
        let now = store::now_millis();
        let mut tx = self.store.begin().await?;
        let (held, state) = match &result {
            Ok(fetched) => {
                if let Some(file) = &fetched.file {
                    rows::insert_file(&mut tx, &job.id, file).await?;
                }
                let outcome = Outcome::Ready {
                    content_digest: &fetched.content_digest,
                };
                (
                    jobs::end_attempt(&mut tx, &job.id, owner, outcome, now).await?,
                    "ready",
                )
            }
            Err(failure) => {
                let error = &failure.to_string();
                let retry_at = now + self.registration.backoff(job.attempts).as_millis() as i64;
                let window_open = job.retry_until.is_none_or(|until| retry_at < until);
                let (outcome, state) = if !failure.is_final() && window_open {
                    (
                        Outcome::RetryAt {
                            error,
                            at: retry_at,
                        },
                        "retrying",
                    )
                } else {
                    (Outcome::Failed { error }, "failed")
                };
                (
                    jobs::end_attempt(&mut tx, &job.id, owner, outcome, now).await?,
                    state,
                )
            }
        };
        if !held {
            tracing::warn!(version_id = %job.id, "registration lease lost before its outcome was recorded; dropped");
            tx.rollback().await?;
            return Ok(());
        }
        if state != "retrying" {
            rows::bump_namespace_revision_of(&mut tx, &job.id).await?;
        }
        tx.commit().await?;
        self.namespace_changed();
        match result {
            Ok(_) => {
                tracing::info!(version_id = %job.id, version = %job.version, state, "registration finished")
            }
            Err(error) => {
                // By what the failure led to: another attempt, or the version `failed`.
                metrics::counter!("pipewright_registration_failures_total", "state" => state)
                    .increment(1);
                tracing::warn!(version_id = %job.id, version = %job.version, state, %error, "registration attempt failed")
            }
        }
        Ok(())
    }

    /// Fetch, verify, validate, compile. The error is the reason shown to users.
    async fn attempt(&self, job: &LeasedJob) -> Result<Fetched, AttemptError> {
        let source: ContentSource =
            serde_json::from_str(&job.source).map_err(AttemptError::UnreadableSource)?;
        let fetched = match &source.location {
            SourceLocation::Url { url } => Some(self.fetch_url(url).await?),
            SourceLocation::Blob { digest } => Some(self.blobs.get(digest).await.map_err(
                |error| AttemptError::Upload {
                    digest: digest.clone(),
                    error: Box::new(error),
                },
            )?),
            SourceLocation::Nothing => None,
        };
        if let (Some(bytes), Some(expected)) = (&fetched, &source.digest) {
            let actual = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(AttemptError::DigestMismatch {
                    actual,
                    expected: expected.clone(),
                });
            }
        }

        let blobs = |e: crate::blobs::BlobError| AttemptError::Blobs(e.into());
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(AttemptError::Database)?;
        let pipeline = rows::pipeline_by_id(&mut conn, &job.pipeline_id)
            .await
            .map_err(AttemptError::Database)?
            .ok_or(AttemptError::PipelineDeleted)?;
        let mut file_rows = rows::files_of(&mut conn, &job.id)
            .await
            .map_err(AttemptError::Database)?;
        let version = rows::version_by_id(&mut conn, &job.id)
            .await
            .map_err(AttemptError::Database)?
            .ok_or(AttemptError::VersionDeleted)?;
        drop(conn);
        let mut content = Vec::with_capacity(file_rows.len() + 1);
        for row in &file_rows {
            content.push(plugins::File {
                path: row.path.clone(),
                contents: self.blobs.get(&row.digest).await.map_err(blobs)?,
            });
        }
        let mut file = None;
        if let Some(bytes) = &fetched {
            let digest = self.blobs.put(bytes).await.map_err(blobs)?;
            let row = rows::FileRow {
                path: source.path.clone(),
                digest,
                size: bytes.len() as i64,
            };
            file_rows.retain(|f| f.path != row.path);
            file_rows.push(row.clone());
            file = Some(row);
            content.push(plugins::File {
                path: source.path.clone(),
                contents: bytes.clone(),
            });
        }

        let handler = self
            .plugins
            .type_handler(&pipeline.pipeline_type)
            .ok_or_else(|| AttemptError::NoTypeHandler(pipeline.pipeline_type.clone()))?;
        let candidate = super::candidate(
            &pipeline.namespace,
            &pipeline.name,
            Some(&version.version),
            &pipeline.pipeline_type,
            version.description.clone(),
        );
        let plugins = self.plugins.clone();
        let compile = fetched.filter(|_| source.compile);
        tokio::task::spawn_blocking(move || -> Result<(), AttemptError> {
            let diagnostics = handler
                .validate(&candidate, &content)
                .map_err(AttemptError::Validate)?;
            let errors: Vec<String> = diagnostics
                .into_iter()
                .filter(|d| d.severity == plugins::Severity::Error)
                .map(|d| d.message)
                .collect();
            if !errors.is_empty() {
                return Err(AttemptError::Invalid(errors));
            }
            if let Some(bytes) = compile {
                plugins.precompile(&bytes).map_err(AttemptError::Compile)?;
            }
            Ok(())
        })
        .await
        .map_err(AttemptError::Task)??;

        Ok(Fetched {
            file,
            content_digest: manifest_digest(&file_rows),
        })
    }

    /// Refuses now what a fetch of `url` would refuse later: not a URL, a scheme this server
    /// does not fetch, `file://` on a server without a file root, a host that does not resolve
    /// or resolves only to addresses the [`FetchPolicy`] refuses. For answering at the request
    /// instead of queueing what can never succeed. The refusal is the core's `fetch-refused` on
    /// field `url`, its message naming `url`.
    pub async fn check_fetchable(&self, url: &str) -> Result<(), RegistryError> {
        let refused =
            |reason: String| RegistryError::invalid(Finding::new(FETCH_REFUSED, "url", reason));
        let parsed =
            url::Url::parse(url).map_err(|e| refused(format!("`{url}` is not a URL: {e}")))?;
        if parsed.scheme() == "file" {
            return match self.registration.file_root {
                Some(_) => Ok(()),
                None => Err(refused(format!(
                    "file URLs are not allowed on this server (`{url}`)"
                ))),
            };
        }
        self.registration
            .fetch_policy
            .check_url(url)
            .await
            .map_err(|refusal| refused(format!("fetching {url} is refused: {refusal}")))
    }

    /// What can be told of a version's source at the request: a URL through
    /// [`Registry::check_fetchable`], uploaded bytes by their digest and their kind. Other
    /// sources pass.
    pub(super) async fn check_source(
        &self,
        source: &ContentSource,
        upload: Option<&[u8]>,
    ) -> Result<(), RegistryError> {
        match (&source.location, upload) {
            (SourceLocation::Url { url }, _) => self.check_fetchable(url).await,
            // Uploaded bytes are here already: what can be told of them is told now.
            (SourceLocation::Blob { digest: stored }, Some(bytes)) => {
                let invalid = |message: String| {
                    RegistryError::invalid(Finding::new("invalid-content", "upload", message))
                };
                if let Some(expected) = &source.digest {
                    if !stored.eq_ignore_ascii_case(expected) {
                        return Err(invalid(format!(
                            "the upload's digest is {stored}, not the expected {expected}"
                        )));
                    }
                }
                if source.compile && !is_component(bytes) {
                    return Err(invalid(
                        "the upload is not a WebAssembly component".to_string(),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The bytes at `url`, at most `max_content_bytes`.
    pub(super) async fn fetch_url(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let config = self.registration.clone();
        let url_of = || url.to_string();
        let parsed = url::Url::parse(url).map_err(|error| FetchError::NotAUrl {
            url: url_of(),
            error,
        })?;
        match parsed.scheme() {
            "file" => {
                let root = config
                    .file_root
                    .as_ref()
                    .ok_or_else(|| FetchError::FileUrlsNotAllowed { url: url_of() })?;
                let path = parsed
                    .to_file_path()
                    .map_err(|()| FetchError::NoLocalFile { url: url_of() })?;
                let read = |error| FetchError::Read {
                    url: url_of(),
                    error,
                };
                let (root, path) = (
                    root.canonicalize().map_err(FetchError::FileRoot)?,
                    path.canonicalize().map_err(read)?,
                );
                if !path.starts_with(&root) {
                    return Err(FetchError::OutsideFileRoot { url: url_of() });
                }
                let bytes = tokio::fs::read(&path).await.map_err(read)?;
                if bytes.len() as u64 > config.max_content_bytes {
                    return Err(FetchError::TooLarge {
                        url: url_of(),
                        max: config.max_content_bytes,
                    });
                }
                Ok(bytes)
            }
            "http" | "https" => {
                // What is sent is the parsed URL, the one the policy's resolver sees.
                let url = parsed.to_string();
                tokio::task::spawn_blocking(move || {
                    // The fetch's own deadline is the attempt's: whichever of the two timers
                    // fires first, the attempt fails with the same words.
                    let failed = |url: &str, error: ureq::Error| match error {
                        ureq::Error::Timeout(_) => {
                            FetchError::TooLong(TookTooLong(config.attempt_timeout))
                        }
                        error => FetchError::Fetch {
                            url: url.to_string(),
                            error,
                        },
                    };
                    let agent = config.fetch_policy.agent(
                        ureq::Agent::config_builder()
                            .timeout_global(Some(config.attempt_timeout))
                            .http_status_as_error(false),
                    );
                    let mut response = agent.get(&url).call().map_err(|e| {
                        match outbound::refusal_of(&e) {
                            // Also when a redirect led there: every hop is checked.
                            Some(refusal) => FetchError::Refused {
                                url: url.clone(),
                                refusal: refusal.clone(),
                            },
                            None => failed(&url, e),
                        }
                    })?;
                    if !response.status().is_success() {
                        return Err(FetchError::Status {
                            url: url.clone(),
                            status: response.status(),
                        });
                    }
                    response
                        .body_mut()
                        .with_config()
                        .limit(config.max_content_bytes)
                        .read_to_vec()
                        .map_err(|e| failed(&url, e))
                })
                .await
                .map_err(FetchError::Task)?
            }
            other => Err(FetchError::UnsupportedScheme {
                scheme: other.to_string(),
            }),
        }
    }
}

/// Whether `bytes` begin as a WebAssembly component does (the magic, then the component
/// layer's version): a cheap check at the request; compiling it is the worker's.
fn is_component(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm") && bytes.get(4..8) == Some(&[0x0d, 0x00, 0x01, 0x00][..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_is_told_from_a_core_module_and_from_garbage() {
        let component = crate::plugins::builtin::BUILTIN_PLUGINS[0].2;
        assert!(is_component(component));
        assert!(!is_component(b"\0asm\x01\0\0\0"), "a core module");
        assert!(!is_component(b"not wasm at all"));
        assert!(!is_component(b""));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let config = RegistrationConfig {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            ..RegistrationConfig::default()
        };
        let waits: Vec<u64> = (1..=6).map(|a| config.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
    }

    /// What users read as the version's last error, and whether the version fails at once.
    #[test]
    fn attempt_errors_keep_their_words_and_their_finality() {
        let url = || "file:///srv/x.wasm".to_string();
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let cases: Vec<(AttemptError, &str, bool)> = vec![
            (
                FetchError::NotAUrl {
                    url: "nope".into(),
                    error: url::Url::parse("nope").unwrap_err(),
                }
                .into(),
                "`nope` is not a URL: relative URL without a base",
                true,
            ),
            (
                FetchError::FileUrlsNotAllowed { url: url() }.into(),
                "file URLs are not allowed on this server (`file:///srv/x.wasm`)",
                true,
            ),
            (
                FetchError::NoLocalFile { url: url() }.into(),
                "`file:///srv/x.wasm` names no local file",
                true,
            ),
            (
                FetchError::OutsideFileRoot { url: url() }.into(),
                "`file:///srv/x.wasm` is outside the allowed file root",
                true,
            ),
            (
                FetchError::UnsupportedScheme {
                    scheme: "ftp".into(),
                }
                .into(),
                "`ftp` URLs are not supported (http, https, file)",
                true,
            ),
            (FetchError::FileRoot(io()).into(), "file root: gone", false),
            (
                FetchError::Read {
                    url: url(),
                    error: io(),
                }
                .into(),
                "reading file:///srv/x.wasm: gone",
                false,
            ),
            (
                FetchError::TooLarge { url: url(), max: 8 }.into(),
                "file:///srv/x.wasm is larger than 8 bytes",
                false,
            ),
            (
                FetchError::TooLong(TookTooLong(Duration::from_secs(2))).into(),
                "the attempt took longer than 2s",
                false,
            ),
            (
                AttemptError::TooLong(TookTooLong(Duration::from_millis(1500))),
                "the attempt took longer than 1.5s",
                false,
            ),
            (
                AttemptError::UnreadableSource(serde_json::from_str::<u8>("x").unwrap_err()),
                "unreadable content source: expected value at line 1 column 1",
                false,
            ),
            (
                AttemptError::DigestMismatch {
                    actual: "sha256:aa".into(),
                    expected: "sha256:bb".into(),
                },
                "the content's digest is sha256:aa, not the expected sha256:bb",
                false,
            ),
            (
                AttemptError::PipelineDeleted,
                "the pipeline was deleted",
                false,
            ),
            (
                AttemptError::VersionDeleted,
                "the version was deleted",
                false,
            ),
            (
                AttemptError::NoTypeHandler("csv".into()),
                "no type handler for `csv` is loaded",
                false,
            ),
            (
                AttemptError::Invalid(vec!["a".into(), "b".into()]),
                "validation failed: a; b",
                false,
            ),
            (
                AttemptError::Compile(anyhow::anyhow!("bad magic").context("compiling")),
                "the component does not compile: compiling: bad magic",
                false,
            ),
        ];
        for (error, words, is_final) in cases {
            assert_eq!(
                (error.to_string().as_str(), error.is_final()),
                (words, is_final)
            );
        }
    }

    #[test]
    fn sources_round_trip_as_json() {
        let source = ContentSource {
            location: SourceLocation::Url {
                url: "http://127.0.0.1:1/x.wasm".into(),
            },
            digest: Some("sha256:00".into()),
            path: "component.wasm".into(),
            compile: true,
        };
        let json = serde_json::to_string(&source).unwrap();
        assert!(json.contains(r#""kind":"url""#), "{json}");
        let back: ContentSource = serde_json::from_str(&json).unwrap();
        assert!(matches!(back.location, SourceLocation::Url { .. }));
    }
}
