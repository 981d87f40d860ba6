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
//! Where content comes from and how it is fetched (confined by the [`FetchPolicy`], and
//! checked at the request too) is [`super::content_sources`].
//!
//! A component uploaded with its request (a pushed runnable pipeline) is compiled ahead of time
//! too, at the request, by [`Registry::precompile_uploaded_component`]: Winch's code is all it
//! waits for, so the version is runnable when the push answers, and one that does not compile
//! is refused there.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::outbound::FetchPolicy;
use crate::plugins;
use crate::store::registrations::{self as jobs, LeasedJob, Outcome};
use crate::store::{self, pipelines as rows};

use super::approval::{validate_content, ValidateError};
use super::content_sources::{ContentSource, FetchError, SourceLocation, TookTooLong};
use super::{manifest_digest, Finding, Registry, RegistryError};

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
    /// The type handler could not give its verdict (none loaded; it trapped, ran out of time
    /// or memory).
    #[error(transparent)]
    Validate(#[from] ValidateError),
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
    /// What compiling the component had to say (see [`super::versions::Registration::note`]).
    note: Option<String>,
}

impl Registry {
    /// Compiles ahead of time the component an uploaded version's manifest names (its
    /// `component` file; a Python pipeline names none), and returns what compiling had to say
    /// for the version's registration details. A component that does not compile is refused
    /// with why, before anything is stored.
    pub(super) async fn precompile_uploaded_component(
        &self,
        new: &super::NewVersion,
    ) -> Result<Option<String>, RegistryError> {
        let Some(manifest) = pipewright_manifest::RunManifest::from_json(&new.definition) else {
            return Ok(None);
        };
        if manifest.python_graph().is_some() {
            return Ok(None);
        }
        let Some(path) = manifest.component else {
            return Ok(None);
        };
        let Some((_, bytes)) = new.files.iter().find(|(p, _)| *p == path) else {
            return Ok(None);
        };
        let plugins = self.plugins.clone();
        let bytes = bytes.clone();
        match tokio::task::spawn_blocking(move || plugins.precompile(&bytes)).await {
            Ok(Ok(precompiled)) => Ok(precompiled.note),
            Ok(Err(error)) => Err(RegistryError::invalid(Finding::new(
                "invalid-component",
                "component",
                format!("`{path}` is not a component that compiles: {error:#}"),
            ))),
            Err(error) => Err(RegistryError::Internal(anyhow::anyhow!(
                "the compile task failed: {error}"
            ))),
        }
    }

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
                    note: fetched.note.as_deref(),
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

        let candidate = super::candidate(
            &pipeline.namespace,
            &pipeline.name,
            Some(&version.version),
            &pipeline.pipeline_type,
            version.description.clone(),
        );
        let plugins = self.plugins.clone();
        let compile = fetched.filter(|_| source.compile);
        let note = tokio::task::spawn_blocking(move || -> Result<_, AttemptError> {
            // The second half of the approval path: the chain approved at the request.
            let findings = validate_content(&plugins, &candidate, &content)?;
            if !findings.is_empty() {
                return Err(AttemptError::Invalid(
                    findings.into_iter().map(|f| f.message).collect(),
                ));
            }
            match compile {
                Some(bytes) => Ok(plugins
                    .precompile(&bytes)
                    .map_err(AttemptError::Compile)?
                    .note),
                None => Ok(None),
            }
        })
        .await
        .map_err(AttemptError::Task)??;

        Ok(Fetched {
            file,
            content_digest: manifest_digest(&file_rows),
            note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                AttemptError::Validate(ValidateError::NoTypeHandler("csv".into())),
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
}
