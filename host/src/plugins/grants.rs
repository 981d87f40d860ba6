//! What the operator grants each plugin beyond its sandbox: HTTP base URLs (with the secret
//! headers the host adds to requests under them) and plain configuration values.
//!
//! Grants are keyed by plugin *name* (`jupyter`, not `jupyter@0.1.0`): a new version of a plugin
//! keeps its operator's grants. A plugin without an entry is granted nothing.
//!
//! The invariants (DESIGN.md §3.7):
//! - `http-fetch` reaches only URLs under a granted base: same scheme, host and port, and a path
//!   under the base's path on a segment boundary (`/hub/api` grants `/hub/api/users`, not
//!   `/hub/apix`). The URL is parsed and normalized first (`..`, `%2e%2e`), and what is sent is
//!   the normalized URL, so a request cannot climb out after the check. URLs with userinfo, and
//!   paths with an encoded `/` or `\` (which a server may decode after our check), are refused.
//! - Secret headers (tokens) live only in [`HttpGrant`], are added by the host after the check,
//!   replace any guest header of the same name, and never reach the guest: `config` reads only
//!   the [`PluginGrants::config`] map, and `Debug` prints the header names, not their values.
//! - A fetch is bounded: its timeout is the call's remaining deadline (capped at
//!   [`MAX_REQUEST_TIME`]), redirects are not followed (a redirect could lead off the grant, with
//!   the secret attached), no proxy from the environment is used, and a response body larger than
//!   [`MAX_RESPONSE_BYTES`] is an error.
//!
//! - Each grant fetches through its own [`FetchPolicy`] agent ([`crate::outbound`]) whose only
//!   exception is the grant's own origin: the operator named that host and port (as
//!   `--jupyterhub-url` or `--zeppelin-url`), so it is allowed even on loopback or a private
//!   network, without an `--allow-fetch` rule. Any other non-global address is refused before
//!   connecting, whatever [`PluginGrants::authorize`] let through.
//!
//! What this does not cover: what a granted service does with the requests (the grant is to the
//! service, with the rights of its token), and DNS (a granted host name is resolved as given, and
//! trusted wherever it leads, as an `--allow-fetch` host rule is).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use url::Url;

use crate::outbound::{self, AllowRule, FetchPolicy};

/// The largest response body handed to a guest.
pub const MAX_RESPONSE_BYTES: u64 = 4 << 20;

/// The longest one request may take, whatever the call's deadline (a launch may have 120 s).
pub const MAX_REQUEST_TIME: Duration = Duration::from_secs(60);

/// The plugin names of the built-in type handlers, as grants key them.
pub const JUPYTER_PLUGIN: &str = "jupyter";
pub const ZEPPELIN_PLUGIN: &str = "zeppelin";

/// The config key under which the service grants give a plugin its service's public base URL.
pub const URL_CONFIG_KEY: &str = "url";

/// Why a grant could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("grant base URL `{url}` is not a URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("grant base URL `{url}` is refused: {reason}")]
    Refused { url: String, reason: String },
    #[error("grant header `{name}` is not a valid HTTP header")]
    BadHeader { name: String },
}

/// One granted base URL and the headers the host adds to every request under it.
#[derive(Clone)]
pub struct HttpGrant {
    base: Url,
    headers: Vec<(String, String)>,
    /// The client of this grant's fetches: reaches global addresses and the base's origin.
    agent: ureq::Agent,
}

impl fmt::Debug for HttpGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are secrets: name them only.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpGrant")
            .field("base", &self.base.as_str())
            .field("headers", &names)
            .finish()
    }
}

impl HttpGrant {
    /// A grant of `base` (an `http://` URL, or `https://` when built with the `https` feature;
    /// no userinfo, query or fragment) adding `headers` to each request.
    pub fn new(base: &str, headers: Vec<(String, String)>) -> Result<Self, GrantError> {
        let refused = |reason: &str| GrantError::Refused {
            url: base.to_string(),
            reason: reason.to_string(),
        };
        let url = Url::parse(base).map_err(|e| GrantError::BadUrl {
            url: base.to_string(),
            reason: e.to_string(),
        })?;
        match url.scheme() {
            "http" => {}
            "https" if cfg!(feature = "https") => {}
            "https" => {
                return Err(refused(
                    "https needs a server built with `--features https`",
                ))
            }
            _ => return Err(refused("only http and https are granted")),
        }
        if url.host_str().is_none() {
            return Err(refused("it has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refused(
                "credentials go in the grant's headers, not in the URL",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(refused("a base URL has no query or fragment"));
        }
        for (name, value) in &headers {
            let valid = ureq::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && ureq::http::HeaderValue::from_str(value).is_ok();
            if !valid {
                return Err(GrantError::BadHeader { name: name.clone() });
            }
        }
        let origin = AllowRule::for_origin(&url).ok_or_else(|| refused("it has no host"))?;
        let agent = FetchPolicy::default().with(origin).agent(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .user_agent("pipewright-plugin-host"),
        );
        Ok(HttpGrant {
            base: url,
            headers,
            agent,
        })
    }

    pub fn base(&self) -> &str {
        self.base.as_str()
    }

    /// Whether `url` (already parsed and normalized) is under this grant's base.
    fn covers(&self, url: &Url) -> bool {
        if url.scheme() != self.base.scheme()
            || url.host() != self.base.host()
            || url.port_or_known_default() != self.base.port_or_known_default()
        {
            return false;
        }
        let base_path = self.base.path().trim_end_matches('/');
        let path = url.path();
        base_path.is_empty()
            || path == base_path
            || path
                .strip_prefix(base_path)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Everything granted to one plugin name.
#[derive(Clone, Debug, Default)]
pub struct PluginGrants {
    pub http: Vec<HttpGrant>,
    /// What the plugin's `config(key)` answers. Never put a secret here: the guest reads it.
    pub config: BTreeMap<String, String>,
}

/// The grants of every plugin, by plugin name. The default grants nothing to anyone.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    plugins: BTreeMap<String, Arc<PluginGrants>>,
}

impl Grants {
    /// Grants `http` to plugin `plugin` (in addition to what it has).
    pub fn with_http(mut self, plugin: &str, grant: HttpGrant) -> Self {
        Arc::make_mut(self.plugins.entry(plugin.to_string()).or_default())
            .http
            .push(grant);
        self
    }

    /// Sets the value plugin `plugin` reads with `config(key)`. Not for secrets.
    pub fn with_config(mut self, plugin: &str, key: &str, value: &str) -> Self {
        Arc::make_mut(self.plugins.entry(plugin.to_string()).or_default())
            .config
            .insert(key.to_string(), value.to_string());
        self
    }

    /// The `jupyter` plugin's grant: the hub's REST API (`{url}/hub/api`) with
    /// `Authorization: token {token}`, and config `url` = the hub's public base URL.
    pub fn with_jupyterhub(self, url: &str, token: &str) -> Result<Self, GrantError> {
        let base = url.trim_end_matches('/');
        let grant = HttpGrant::new(
            &format!("{base}/hub/api"),
            vec![("Authorization".into(), format!("token {token}"))],
        )?;
        Ok(self
            .with_http(JUPYTER_PLUGIN, grant)
            .with_config(JUPYTER_PLUGIN, URL_CONFIG_KEY, base))
    }

    /// The `zeppelin` plugin's grant: Zeppelin's REST API (`{url}/api`), with an optional
    /// `Authorization` header value (Zeppelin itself authenticates with a login session, not a
    /// header; this is for a proxy in front of it), and config `url` = Zeppelin's public base.
    pub fn with_zeppelin(self, url: &str, authorization: Option<&str>) -> Result<Self, GrantError> {
        let base = url.trim_end_matches('/');
        let headers = authorization
            .map(|value| vec![("Authorization".to_string(), value.to_string())])
            .unwrap_or_default();
        let grant = HttpGrant::new(&format!("{base}/api"), headers)?;
        Ok(self.with_http(ZEPPELIN_PLUGIN, grant).with_config(
            ZEPPELIN_PLUGIN,
            URL_CONFIG_KEY,
            base,
        ))
    }

    /// What plugin `name` is granted (nothing when it has no entry).
    pub fn for_plugin(&self, name: &str) -> Arc<PluginGrants> {
        self.plugins.get(name).cloned().unwrap_or_default()
    }
}

/// A request as the guest asked for it (the WIT `http-request`, without binding types).
pub struct FetchRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// A response as the guest gets it.
#[derive(Debug)]
pub struct FetchResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Headers the guest may not set: the client derives them from the URL and body, and a guest
/// `Host` could steer a virtual-hosting server to another site than the granted one.
const HOST_MANAGED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
];

impl PluginGrants {
    /// The granted `url` (normalized) and the grant covering it, or why not. `plugin` names
    /// the caller in the message.
    pub fn authorize(&self, plugin: &str, url: &str) -> Result<(Url, &HttpGrant), String> {
        let not_granted =
            |why: &str| format!("plugin {plugin} is not granted HTTP access to {url}{why}");
        let parsed = Url::parse(url).map_err(|e| not_granted(&format!(" (not a URL: {e})")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(not_granted(" (a URL with credentials is refused)"));
        }
        let lowered = parsed.path().to_ascii_lowercase();
        if lowered.contains("%2f") || lowered.contains("%5c") || parsed.path().contains('\\') {
            return Err(not_granted(
                " (an encoded `/` or `\\` in the path is refused)",
            ));
        }
        match self.http.iter().find(|grant| grant.covers(&parsed)) {
            Some(grant) => Ok((parsed, grant)),
            None if self.http.is_empty() => Err(not_granted(" (it has no HTTP grant)")),
            None => Err(not_granted(&format!(
                " (granted: {})",
                self.http
                    .iter()
                    .map(HttpGrant::base)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Performs `request` for plugin `plugin` if a grant covers its URL, within `deadline`.
    /// The `Err` is the human-readable reason the guest gets.
    pub fn fetch(
        &self,
        plugin: &str,
        request: FetchRequest,
        deadline: Option<Instant>,
    ) -> Result<FetchResponse, String> {
        let (url, grant) = self.authorize(plugin, &request.url)?;
        let remaining = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => MAX_REQUEST_TIME,
        };
        if remaining.is_zero() {
            return Err(format!(
                "plugin {plugin}: no time left before the call's deadline to fetch {url}"
            ));
        }
        let timeout = remaining.min(MAX_REQUEST_TIME);

        let method = ureq::http::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| format!("`{}` is not an HTTP method", request.method))?;
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(url.as_str());
        for (name, value) in &request.headers {
            let lowered = name.to_ascii_lowercase();
            let replaced_by_grant = grant
                .headers
                .iter()
                .any(|(g, _)| g.eq_ignore_ascii_case(name));
            if replaced_by_grant || HOST_MANAGED_HEADERS.contains(&lowered.as_str()) {
                continue;
            }
            builder = builder.header(name.as_str(), value.as_str());
        }
        for (name, value) in &grant.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = request.body.unwrap_or_default();
        let http_request = builder
            .body(body)
            .map_err(|e| format!("invalid request to {url}: {e}"))?;

        let agent = &grant.agent;
        let http_request = agent
            .configure_request(http_request)
            .timeout_global(Some(timeout))
            .build();
        let started = Instant::now();
        let mut response = agent.run(http_request).map_err(|e| {
            if let Some(refusal) = outbound::refusal_of(&e) {
                return format!("plugin {plugin}: fetching {url} is refused: {refusal}");
            }
            match e {
                ureq::Error::Timeout(_) => format!(
                    "{url} did not answer within {:.1} s (the call's remaining time)",
                    timeout.as_secs_f64()
                ),
                ureq::Error::HostNotFound => format!("{url} is unreachable: host not found"),
                ureq::Error::ConnectionFailed | ureq::Error::Io(_) => {
                    format!("{url} is unreachable: {e}")
                }
                other => format!("fetching {url} failed: {other}"),
            }
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_string(), v.to_string()))
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(limit) => {
                    format!("the response of {url} is too large (over {limit} bytes)")
                }
                ureq::Error::Timeout(_) => format!(
                    "{url} did not finish its response within {:.1} s",
                    timeout.as_secs_f64()
                ),
                other => format!("reading the response of {url} failed: {other}"),
            })?;
        tracing::debug!(plugin, %url, status, elapsed_ms = started.elapsed().as_millis() as u64, "plugin http-fetch");
        Ok(FetchResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(base: &str) -> PluginGrants {
        PluginGrants {
            http: vec![
                HttpGrant::new(base, vec![("Authorization".into(), "token s3cret".into())])
                    .unwrap(),
            ],
            config: BTreeMap::new(),
        }
    }

    #[test]
    fn urls_under_the_base_on_a_segment_boundary_are_granted() {
        let g = grants("http://127.0.0.1:8000/hub/api");
        for ok in [
            "http://127.0.0.1:8000/hub/api",
            "http://127.0.0.1:8000/hub/api/",
            "http://127.0.0.1:8000/hub/api/users/alice",
            "http://127.0.0.1:8000/hub/api/users?x=1",
            "http://127.0.0.1:8000/hub/x/../api/users",
        ] {
            assert!(g.authorize("jupyter", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn other_origins_paths_and_tricks_are_refused() {
        let g = grants("http://127.0.0.1:8000/hub/api/");
        for refused in [
            "http://127.0.0.1:8000/hub/apix",
            "http://127.0.0.1:8000/hub",
            "http://127.0.0.1:8000/hub/api/../admin",
            "http://127.0.0.1:8000/hub/api/%2e%2e/%2e%2e/user/x",
            "http://127.0.0.1:8000/hub/api/users%2F..%2F..%2Fx",
            "http://127.0.0.1:8001/hub/api/users",
            "https://127.0.0.1:8000/hub/api/users",
            "http://localhost:8000/hub/api/users",
            "http://user:pw@127.0.0.1:8000/hub/api/users",
            "http://127.0.0.1:8000@evil.example/hub/api/users",
            "file:///etc/passwd",
            "not a url",
        ] {
            let error = g.authorize("jupyter", refused).unwrap_err();
            assert!(
                error.contains("plugin jupyter is not granted") && error.contains(refused),
                "{refused}: {error}"
            );
        }
        assert!(PluginGrants::default()
            .authorize("zeppelin", "http://127.0.0.1/")
            .unwrap_err()
            .contains("no HTTP grant"));
    }

    #[test]
    fn default_ports_match_explicit_ones() {
        let g = grants("http://example.test/api");
        assert!(g.authorize("p", "http://example.test:80/api/x").is_ok());
        assert!(g.authorize("p", "http://EXAMPLE.test/api/x").is_ok());
    }

    #[test]
    fn bad_bases_are_refused() {
        assert!(HttpGrant::new("http://u:p@h/api", vec![]).is_err());
        assert!(HttpGrant::new("ftp://h/api", vec![]).is_err());
        assert!(HttpGrant::new("http://h/api?x=1", vec![]).is_err());
        assert!(HttpGrant::new("nope", vec![]).is_err());
        assert!(HttpGrant::new("http://h/api", vec![("Bad Name".into(), "v".into())]).is_err());
    }

    #[test]
    fn debug_never_prints_a_secret_and_config_holds_none() {
        let all = Grants::default()
            .with_jupyterhub("http://127.0.0.1:8000/", "s3cret")
            .unwrap();
        assert!(!format!("{all:?}").contains("s3cret"));
        let jupyter = all.for_plugin(JUPYTER_PLUGIN);
        assert_eq!(jupyter.config.get("url").unwrap(), "http://127.0.0.1:8000");
        assert!(jupyter.config.values().all(|v| !v.contains("s3cret")));
        assert_eq!(jupyter.http[0].base(), "http://127.0.0.1:8000/hub/api");
        assert!(all.for_plugin(ZEPPELIN_PLUGIN).http.is_empty());
    }

    /// Serves one HTTP request on loopback with `200 ok`; the port.
    fn answer_once() -> u16 {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        });
        port
    }

    #[test]
    fn a_grant_reaches_its_own_origin_even_on_loopback() {
        let port = answer_once();
        let g = grants(&format!("http://127.0.0.1:{port}/api"));
        let response = g
            .fetch(
                "p",
                FetchRequest {
                    method: "GET".into(),
                    url: format!("http://127.0.0.1:{port}/api/x"),
                    headers: vec![],
                    body: None,
                },
                None,
            )
            .unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"ok"[..])
        );
    }

    #[test]
    fn a_grants_client_refuses_every_other_non_global_address() {
        let g = grants("http://127.0.0.1:8000/api");
        let agent = &g.http[0].agent;
        for (url, class) in [
            (
                "http://127.0.0.1:8001/api",
                outbound::AddressClass::Loopback,
            ),
            (
                "http://169.254.169.254/latest/meta-data",
                outbound::AddressClass::LinkLocal,
            ),
            ("http://10.0.0.1:8000/api", outbound::AddressClass::Private),
            ("http://[::1]:8000/api", outbound::AddressClass::Loopback),
        ] {
            let error = agent.get(url).call().unwrap_err();
            let refusal = outbound::refusal_of(&error).unwrap_or_else(|| panic!("{url}: {error}"));
            assert_eq!(refusal.class, class, "{url}");
        }
    }

    #[test]
    fn an_expired_deadline_fetches_nothing() {
        let g = grants("http://127.0.0.1:9/api");
        let error = g
            .fetch(
                "p",
                FetchRequest {
                    method: "GET".into(),
                    url: "http://127.0.0.1:9/api/x".into(),
                    headers: vec![],
                    body: None,
                },
                Some(Instant::now()),
            )
            .unwrap_err();
        assert!(error.contains("deadline"), "{error}");
    }
}
