//! `launch` through JupyterHub's REST API: one named server per pipeline, rooted at the
//! pipeline's working copy.
//!
//! The operator grants this plugin the hub's API (`{url}/hub/api`, with the hub token added by
//! the host) and the config key `url` (the hub's public base). The sequence, each step through
//! the host's `http-fetch`:
//! 1. `POST /users/{user}`: the hub user exists afterwards (201 made, 409 already there). Hub
//!    users are the Acumos user id lowercased (the hub lowercases names too).
//! 2. `GET /users/{user}`: if the pipeline's server ([`server_name`]) is ready, done: a
//!    relaunch reuses it. If it is absent, `POST /users/{user}/servers/{name}` with
//!    `{"user_options": {"root_dir": <working copy>}}` (always explicit: an empty body makes the
//!    hub reuse the last options). 201 is ready, 202 is starting, 400 "already running/pending"
//!    is a race with another launch: all three continue.
//! 3. Poll `GET /users/{user}` every [`POLL_INTERVAL`] until the server is `ready`, giving up after
//!    the spawn timeout (config `spawn-timeout-seconds`, default [`DEFAULT_SPAWN_TIMEOUT`], below
//!    the host's 120 s launch deadline so the user gets this plugin's error, not a timeout trap).
//!
//! The service URL is the hub's origin + the server's path (which carries the hub's base path)
//! + `lab/tree/notebook.ipynb`.

use std::time::Duration;

use pipewright_sdk::type_handler::service::{
    encode_path_segment, excerpt, json_body, json_request, Transport,
};
use pipewright_sdk::type_handler::{
    property, LaunchContext, LaunchInfo, PluginError, Property, WORKING_COPY_PROPERTY,
};
use serde_json::{json, Value};

use crate::NOTEBOOK_FILE;

pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
pub const DEFAULT_SPAWN_TIMEOUT: Duration = Duration::from_secs(90);

/// What the operator configured for this plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The hub's public base URL, without a trailing `/`.
    pub hub_url: String,
    pub spawn_timeout: Duration,
}

impl Settings {
    /// From the plugin's config (`url`, optional `spawn-timeout-seconds`).
    pub fn from_config(config: impl Fn(&str) -> Option<String>) -> Result<Self, PluginError> {
        let hub_url = config("url").filter(|u| !u.trim().is_empty()).ok_or_else(|| {
            PluginError::new(
                "launch-unavailable",
                "no JupyterHub is configured for plugin jupyter (the operator sets --jupyterhub-url and PIPEWRIGHT_JUPYTERHUB_TOKEN)",
            )
        })?;
        let spawn_timeout = match config("spawn-timeout-seconds") {
            None => DEFAULT_SPAWN_TIMEOUT,
            Some(text) => text
                .trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| {
                    PluginError::new(
                        "bad-config",
                        format!("config spawn-timeout-seconds `{text}` is not a number of seconds"),
                    )
                })?,
        };
        Ok(Settings {
            hub_url: hub_url.trim().trim_end_matches('/').to_string(),
            spawn_timeout,
        })
    }

    fn api(&self) -> String {
        format!("{}/hub/api", self.hub_url)
    }
}

/// The hub user of an Acumos user id: lowercased (JupyterHub normalizes names to lowercase).
pub fn hub_user(user: &str) -> Result<String, PluginError> {
    let user = user.trim().to_lowercase();
    if user.is_empty() || user.contains('/') {
        return Err(PluginError::new(
            "invalid-user",
            format!("`{user}` cannot be a JupyterHub user name"),
        ));
    }
    Ok(user)
}

/// The named server of a pipeline: `p` and its id (a uuid) in lowercase base32, 27 characters.
/// JupyterHub accepts only "safe slugs" as new server names (1-30 lowercase letters, digits
/// and single hyphens, starting with a letter), too short for a uuid in hex; base32 keeps all
/// 128 bits, so two pipelines never share a server.
pub fn server_name(pipeline_id: &str) -> Result<String, PluginError> {
    let invalid = || {
        PluginError::new(
            "invalid-pipeline-id",
            format!(
                "pipeline id `{pipeline_id}` is not a uuid: it cannot name a JupyterHub server"
            ),
        )
    };
    let hex: String = pipeline_id.trim().chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let value = u128::from_str_radix(&hex, 16).map_err(|_| invalid())?;
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    // 128 bits in 26 five-bit digits (the first holds the top 3 bits).
    let name: String = (0..26)
        .rev()
        .map(|i| ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect();
    Ok(format!("p{name}"))
}

/// Where one named server stands, from `GET /users/{user}`.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerState {
    /// Not running (a stopped named server is not listed).
    Absent,
    /// Starting or stopping (`pending` is `spawn`, `stop`, ...).
    Pending(String),
    /// Running; `url` is its path on the hub's public URL (`/user/alice/pw-…/`).
    Ready { url: String },
}

/// The state of server `name` in a hub user model.
pub fn server_state(user_model: &Value, name: &str) -> Result<ServerState, String> {
    let servers = user_model
        .get("servers")
        .and_then(Value::as_object)
        .ok_or("the user model has no `servers` (does the token have admin:servers?)")?;
    let Some(server) = servers.get(name) else {
        return Ok(ServerState::Absent);
    };
    if server.get("ready").and_then(Value::as_bool) == Some(true) {
        let url = server
            .get("url")
            .and_then(Value::as_str)
            .ok_or("a ready server without `url`")?;
        return Ok(ServerState::Ready {
            url: url.to_string(),
        });
    }
    match server.get("pending").and_then(Value::as_str) {
        Some(pending) => Ok(ServerState::Pending(pending.to_string())),
        // Listed, not ready, not pending: about to be reported as stopped.
        None => Ok(ServerState::Absent),
    }
}

/// `scheme://host[:port]` of a URL: the hub reports server URLs as absolute paths that already
/// carry its base path (`/jhub/user/alice/…` for a hub at `http://h/jhub`).
pub fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

/// The server's own URL (`origin` + its path, ending in `/`).
pub fn server_url(hub_url: &str, server_path: &str) -> String {
    let path = server_path.trim_start_matches('/').trim_end_matches('/');
    format!("{}/{path}/", origin(hub_url))
}

/// The page a user lands on: the notebook in JupyterLab.
pub fn service_url(hub_url: &str, server_path: &str) -> String {
    format!(
        "{}lab/tree/{NOTEBOOK_FILE}",
        server_url(hub_url, server_path)
    )
}

/// Starts or finds the pipeline's server and waits until it is ready.
pub fn launch(
    http: &mut impl Transport,
    settings: &Settings,
    context: &LaunchContext,
) -> Result<LaunchInfo, PluginError> {
    let user = hub_user(&context.user)?;
    let name = server_name(&context.pipeline_id)?;
    let root_dir = property(&context.properties, WORKING_COPY_PROPERTY);
    let mut hub = Hub {
        http,
        api: settings.api(),
    };
    let user_path = format!("/users/{}", encode_path_segment(&user));
    let server_path = format!("{user_path}/servers/{}", encode_path_segment(&name));

    hub.call("POST", &user_path, None, &[201, 409])?;

    let started_waiting = hub.http.now();
    let mut started = false;
    loop {
        let model = hub.call("GET", &user_path, None, &[200])?;
        let state = server_state(&model, &name)
            .map_err(|why| PluginError::new("hub-error", format!("JupyterHub: {why}")))?;
        match state {
            ServerState::Ready { url } => {
                let server_url = server_url(&settings.hub_url, &url);
                return Ok(LaunchInfo {
                    service_url: service_url(&settings.hub_url, &url),
                    properties: vec![
                        prop("hub-user", &user),
                        prop("server-name", &name),
                        prop("server-url", &server_url),
                        prop("notebook", NOTEBOOK_FILE),
                    ],
                });
            }
            ServerState::Absent if started => {
                return Err(PluginError::new(
                    "spawn-failed",
                    format!("JupyterHub stopped starting server {name} of user {user} (the hub's log says why)"),
                ));
            }
            ServerState::Absent => {
                let options = match root_dir {
                    Some(dir) => json!({"user_options": {"root_dir": dir}}),
                    None => json!({"user_options": {}}),
                };
                let answer = hub.send("POST", &server_path, Some(&options))?;
                let racing = answer.0 == 400 && {
                    let message = hub_message(&answer.1).to_lowercase();
                    message.contains("already running") || message.contains("pending")
                };
                if !(matches!(answer.0, 201 | 202) || racing) {
                    return Err(hub.refusal("POST", &server_path, answer.0, &answer.1));
                }
                started = true;
                continue;
            }
            ServerState::Pending(_) => {}
        }
        let waited = hub.http.now().saturating_duration_since(started_waiting);
        if waited >= settings.spawn_timeout {
            return Err(PluginError::new(
                "launch-timeout",
                format!(
                    "JupyterHub server {name} of user {user} was not ready after {} s",
                    settings.spawn_timeout.as_secs()
                ),
            ));
        }
        hub.http.sleep(POLL_INTERVAL);
    }
}

fn prop(key: &str, value: &str) -> Property {
    Property {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// The `message` of a hub error body (`{"status": 400, "message": "..."}`), else the raw text.
fn hub_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => v
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| excerpt(&text, 300)),
        Err(_) => excerpt(&text, 300),
    }
}

struct Hub<'a, T: Transport> {
    http: &'a mut T,
    api: String,
}

impl<T: Transport> Hub<'_, T> {
    /// Sends; Err only when nothing came back (not granted, unreachable, too large, ...).
    fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Vec<u8>), PluginError> {
        let url = format!("{}{path}", self.api);
        let response = self
            .http
            .fetch(&json_request(method, &url, body))
            .map_err(|why| {
                let code = if why.contains("not granted") {
                    "not-granted"
                } else {
                    "hub-unreachable"
                };
                PluginError::new(code, format!("JupyterHub {method} {url}: {why}"))
            })?;
        Ok((response.status, response.body))
    }

    /// Sends and expects one of `ok`; the JSON body of the answer (Null when empty).
    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<Value, PluginError> {
        let (status, bytes) = self.send(method, path, body)?;
        if !ok.contains(&status) {
            return Err(self.refusal(method, path, status, &bytes));
        }
        let response = pipewright_sdk::type_handler::host::HttpResponse {
            status,
            headers: vec![],
            body: bytes,
        };
        Ok(json_body(&response))
    }

    fn refusal(&self, method: &str, path: &str, status: u16, body: &[u8]) -> PluginError {
        let code = match status {
            401 | 403 => "hub-forbidden",
            404 => "hub-not-found",
            400..=499 => "hub-refused",
            _ => "hub-error",
        };
        PluginError::new(
            code,
            format!(
                "JupyterHub answered {status} to {method} {}{path}: {}",
                self.api,
                hub_message(body)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Instant;

    use pipewright_sdk::type_handler::host::{HttpRequest, HttpResponse};
    use pipewright_sdk::type_handler::Pipeline;

    use super::*;

    /// Answers scripted responses in order and records the requests; time is simulated.
    struct Scripted {
        answers: VecDeque<Result<(u16, Value), String>>,
        requests: Vec<(String, String, Option<Value>)>,
        start: Instant,
        elapsed: Duration,
    }

    impl Scripted {
        fn new(answers: Vec<Result<(u16, Value), String>>) -> Self {
            Scripted {
                answers: answers.into(),
                requests: vec![],
                start: Instant::now(),
                elapsed: Duration::ZERO,
            }
        }
        fn calls(&self) -> Vec<String> {
            self.requests
                .iter()
                .map(|(m, u, _)| format!("{m} {u}"))
                .collect()
        }
    }

    impl Transport for Scripted {
        fn fetch(&mut self, request: &HttpRequest) -> Result<HttpResponse, String> {
            let body = request
                .body
                .as_ref()
                .map(|b| serde_json::from_slice(b).unwrap());
            self.requests
                .push((request.method.clone(), request.url.clone(), body));
            let (status, body) = self.answers.pop_front().expect("a scripted answer")?;
            Ok(HttpResponse {
                status,
                headers: vec![],
                body: serde_json::to_vec(&body).unwrap(),
            })
        }
        fn sleep(&mut self, duration: Duration) {
            self.elapsed += duration;
        }
        fn now(&self) -> Instant {
            self.start + self.elapsed
        }
    }

    const ID: &str = "0F8FAD5B-D9CB-469F-A165-70867728950E";
    const SERVER: &str = "papr6wvxwoli2p2czlqqz3srfio";

    fn settings() -> Settings {
        Settings {
            hub_url: "http://127.0.0.1:8000".into(),
            spawn_timeout: Duration::from_secs(10),
        }
    }

    fn context() -> LaunchContext {
        LaunchContext {
            pipeline: Pipeline {
                namespace: "alice".into(),
                name: "churn".into(),
                version: None,
                type_: "jupyter".into(),
                description: None,
                inputs: vec![],
                outputs: vec![],
                properties: vec![],
            },
            pipeline_id: ID.into(),
            user: "Alice".into(),
            repository_url: format!("/pipelines/{ID}"),
            properties: vec![prop(WORKING_COPY_PROPERTY, "/srv/pipelines/x")],
        }
    }

    fn user_with(server: Option<Value>) -> Value {
        let mut servers = serde_json::Map::new();
        if let Some(s) = server {
            servers.insert(SERVER.into(), s);
        }
        json!({"name": "alice", "servers": servers})
    }

    fn ready() -> Value {
        json!({"name": SERVER, "ready": true, "pending": null, "url": format!("/user/alice/{SERVER}/")})
    }

    fn pending() -> Value {
        json!({"name": SERVER, "ready": false, "pending": "spawn", "url": format!("/user/alice/{SERVER}/")})
    }

    #[test]
    fn config_needs_a_url() {
        let error = Settings::from_config(|_| None).unwrap_err();
        assert_eq!(error.code, "launch-unavailable");
        let s = Settings::from_config(|k| (k == "url").then(|| "http://h:1/".into())).unwrap();
        assert_eq!(s.hub_url, "http://h:1");
        assert_eq!(s.spawn_timeout, DEFAULT_SPAWN_TIMEOUT);
        let bad =
            Settings::from_config(|k| Some(if k == "url" { "http://h" } else { "soon" }.into()));
        assert_eq!(bad.unwrap_err().code, "bad-config");
    }

    #[test]
    fn names_are_derived_and_checked() {
        assert_eq!(hub_user(" Alice ").unwrap(), "alice");
        assert_eq!(hub_user("").unwrap_err().code, "invalid-user");
        assert_eq!(server_name(ID).unwrap(), SERVER);
        assert_eq!(server_name(&ID.to_lowercase()).unwrap(), SERVER);
        assert_eq!(SERVER.len(), 27);
        assert_eq!(
            server_name("00000000-0000-0000-0000-000000000000").unwrap(),
            format!("p{}", "a".repeat(26))
        );
        assert_eq!(server_name("../x").unwrap_err().code, "invalid-pipeline-id");
        assert_eq!(
            service_url("http://h", "/user/alice/p1/"),
            "http://h/user/alice/p1/lab/tree/notebook.ipynb"
        );
        // A hub under a base path reports server paths that already include it.
        assert_eq!(
            service_url("https://h:8443/jhub", "/jhub/user/alice/p1/"),
            "https://h:8443/jhub/user/alice/p1/lab/tree/notebook.ipynb"
        );
        assert_eq!(origin("http://h:1"), "http://h:1");
    }

    #[test]
    fn server_states_are_read_from_the_user_model() {
        assert_eq!(
            server_state(&user_with(None), SERVER),
            Ok(ServerState::Absent)
        );
        assert_eq!(
            server_state(&user_with(Some(pending())), SERVER),
            Ok(ServerState::Pending("spawn".into()))
        );
        assert!(matches!(
            server_state(&user_with(Some(ready())), SERVER),
            Ok(ServerState::Ready { .. })
        ));
        assert!(server_state(&json!({"name": "alice"}), SERVER).is_err());
    }

    #[test]
    fn a_first_launch_creates_user_and_server_then_polls_until_ready() {
        let mut http = Scripted::new(vec![
            Ok((201, json!({"name": "alice"}))),
            Ok((200, user_with(None))),
            Ok((202, Value::Null)),
            Ok((200, user_with(Some(pending())))),
            Ok((200, user_with(Some(ready())))),
        ]);
        let info = launch(&mut http, &settings(), &context()).unwrap();
        assert_eq!(
            info.service_url,
            format!("http://127.0.0.1:8000/user/alice/{SERVER}/lab/tree/notebook.ipynb")
        );
        let api = "http://127.0.0.1:8000/hub/api";
        assert_eq!(
            http.calls(),
            [
                format!("POST {api}/users/alice"),
                format!("GET {api}/users/alice"),
                format!("POST {api}/users/alice/servers/{SERVER}"),
                format!("GET {api}/users/alice"),
                format!("GET {api}/users/alice"),
            ]
        );
        assert_eq!(
            http.requests[2].2,
            Some(json!({"user_options": {"root_dir": "/srv/pipelines/x"}}))
        );
        assert_eq!(http.elapsed, POLL_INTERVAL);
    }

    #[test]
    fn a_relaunch_reuses_the_running_server() {
        let mut http = Scripted::new(vec![
            Ok((
                409,
                json!({"status": 409, "message": "User alice already exists"}),
            )),
            Ok((200, user_with(Some(ready())))),
        ]);
        launch(&mut http, &settings(), &context()).unwrap();
        assert_eq!(http.requests.len(), 2);
    }

    #[test]
    fn hub_refusals_quote_the_hub() {
        let mut http = Scripted::new(vec![
            Ok((201, Value::Null)),
            Ok((200, user_with(None))),
            Ok((
                400,
                json!({"status": 400, "message": "root_dir must be an existing directory"}),
            )),
        ]);
        let error = launch(&mut http, &settings(), &context()).unwrap_err();
        assert_eq!(error.code, "hub-refused");
        assert!(
            error
                .message
                .contains("root_dir must be an existing directory"),
            "{}",
            error.message
        );

        let mut http = Scripted::new(vec![Ok((
            403,
            json!({"status": 403, "message": "Forbidden"}),
        ))]);
        assert_eq!(
            launch(&mut http, &settings(), &context()).unwrap_err().code,
            "hub-forbidden"
        );

        let mut http = Scripted::new(vec![Err(
            "plugin jupyter@0.1.0 is not granted HTTP access to http://127.0.0.1:8000/hub/api/users/alice".into(),
        )]);
        let error = launch(&mut http, &settings(), &context()).unwrap_err();
        assert_eq!(error.code, "not-granted");
        assert!(error.message.contains("not granted"));
    }

    #[test]
    fn a_server_that_never_gets_ready_times_out_and_one_that_vanishes_failed() {
        let mut answers = vec![
            Ok((201, Value::Null)),
            Ok((200, user_with(None))),
            Ok((202, Value::Null)),
        ];
        answers.extend((0..100).map(|_| Ok((200, user_with(Some(pending()))))));
        let mut http = Scripted::new(answers);
        let error = launch(&mut http, &settings(), &context()).unwrap_err();
        assert_eq!(error.code, "launch-timeout");
        assert!(http.elapsed >= settings().spawn_timeout);

        let mut http = Scripted::new(vec![
            Ok((201, Value::Null)),
            Ok((200, user_with(None))),
            Ok((202, Value::Null)),
            Ok((200, user_with(None))),
        ]);
        assert_eq!(
            launch(&mut http, &settings(), &context()).unwrap_err().code,
            "spawn-failed"
        );
    }
}
