//! Where a registering version's content comes from ([`ContentSource`]: a URL, an upload
//! already in the blob store, or nothing to fetch) and how it is fetched ([`Registry::fetch_url`]),
//! for the registration worker ([`super::registration`]).
//!
//! Every http(s) fetch goes through the [`outbound::FetchPolicy`]'s agent, which connects only to admitted
//! addresses, redirects included; [`Registry::check_fetchable`] and [`Registry::check_source`]
//! make the same checks at the request, so what is refused is answered there and never queued.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outbound;

use super::{Finding, Registry, RegistryError};

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
    /// A run's input given by a URL that is not http(s).
    #[error("`{scheme}` URLs are not fetched for runs (http, https)")]
    UnsupportedInputScheme { scheme: String },
    /// Found before connecting: the host does not resolve, or no host.
    #[error(transparent)]
    Unreachable { error: outbound::OutboundError },
    /// The [`outbound::FetchPolicy`] refused where `url` leads (also when a redirect led there: every hop
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
                | FetchError::UnsupportedInputScheme { .. }
                | FetchError::Refused { .. }
        )
    }
}

/// An attempt past its deadline, whichever timer noticed it.
#[derive(Debug, thiserror::Error)]
#[error("the attempt took longer than {0:?}")]
pub struct TookTooLong(pub(super) Duration);

impl Registry {
    /// Refuses now what a fetch of `url` would refuse later: not a URL, a scheme this server
    /// does not fetch, `file://` on a server without a file root, a host that does not resolve
    /// or resolves only to addresses the [`outbound::FetchPolicy`] refuses. For answering at the request
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
                fetch_http(
                    &config.fetch_policy,
                    parsed,
                    config.max_content_bytes,
                    config.attempt_timeout,
                )
                .await
            }
            other => Err(FetchError::UnsupportedScheme {
                scheme: other.to_string(),
            }),
        }
    }
}

/// The bytes at an http(s) `url`, through `policy`'s agent (every hop checked), at most
/// `max_bytes`, within `timeout`.
async fn fetch_http(
    policy: &outbound::FetchPolicy,
    url: url::Url,
    max_bytes: u64,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    // What is sent is the parsed URL, the one the policy's resolver sees.
    let url = url.to_string();
    let agent = policy.agent(
        ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false),
    );
    tokio::task::spawn_blocking(move || {
        // The fetch's own deadline is the attempt's: whichever of the two timers fires first,
        // the attempt fails with the same words.
        let failed = |url: &str, error: ureq::Error| match error {
            ureq::Error::Timeout(_) => FetchError::TooLong(TookTooLong(timeout)),
            ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge {
                url: url.to_string(),
                max: max_bytes,
            },
            error => FetchError::Fetch {
                url: url.to_string(),
                error,
            },
        };
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
            .limit(max_bytes)
            .read_to_vec()
            .map_err(|e| failed(&url, e))
    })
    .await
    .map_err(FetchError::Task)?
}

impl Registry {
    /// The bytes at `url` for a run's file input given by URL: http(s) only (never `file://`,
    /// which would read the server's own files), where the operator's fetch policy
    /// (`--allow-fetch`) admits, at most `max_bytes`, within `timeout`. A URL the policy refuses
    /// is refused before anything is connected to.
    pub async fn fetch_run_input(
        &self,
        url: &str,
        max_bytes: u64,
        timeout: Duration,
    ) -> Result<Vec<u8>, FetchError> {
        let parsed = url::Url::parse(url).map_err(|error| FetchError::NotAUrl {
            url: url.to_string(),
            error,
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::UnsupportedInputScheme {
                scheme: parsed.scheme().to_string(),
            });
        }
        let policy = &self.registration.fetch_policy;
        match policy.check_url(url).await {
            Err(outbound::OutboundError::Refused(refusal)) => {
                return Err(FetchError::Refused {
                    url: url.to_string(),
                    refusal,
                })
            }
            Err(error) => return Err(FetchError::Unreachable { error }),
            Ok(()) => {}
        }
        fetch_http(policy, parsed, max_bytes, timeout).await
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
