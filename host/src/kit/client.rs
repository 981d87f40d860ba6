//! The plugin registry of a running server, as `pipewright plugin push|list|show|activate|
//! deactivate|rollback` reach it: `/v1/plugins`, a bearer token, JSON answers. A refusal
//! becomes an error carrying the status and the server's `{"error": {"code", "message"}}`.

use anyhow::Context;
use serde_json::Value;

/// Why the server refused a request (or answered something that is not JSON).
#[derive(Debug, thiserror::Error)]
#[error("{method} {path}: the server answered {status}: {message}{code}", code = code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
pub struct ServerRefused {
    pub method: &'static str,
    pub path: String,
    pub status: ureq::http::StatusCode,
    pub code: Option<String>,
    pub message: String,
}

/// A server's `/v1/plugins`, reached with one token.
pub struct PluginRegistryClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl PluginRegistryClient {
    pub fn new(server: &str, token: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        PluginRegistryClient {
            base: server.trim_end_matches('/').to_string(),
            token: token.to_string(),
            agent,
        }
    }

    /// Uploads a component as `name@version`, activating it when `activate`; the PluginVersion.
    pub fn upload(
        &self,
        name: &str,
        version: &str,
        component: &[u8],
        activate: bool,
    ) -> anyhow::Result<Value> {
        let mut path = format!("/v1/plugins/{name}/versions/{version}");
        if activate {
            path.push_str("?activate=true");
        }
        let request = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Content-Type", "application/wasm");
        let response = request.send(component);
        answer("POST", path, response)
    }

    /// `GET /v1/plugins`: every plugin with its world, active version and versions.
    pub fn list(&self) -> anyhow::Result<Value> {
        self.get("/v1/plugins".into())
    }

    /// One plugin (with all its versions), or one version of it.
    pub fn show(&self, name: &str, version: Option<&str>) -> anyhow::Result<Value> {
        match version {
            Some(version) => self.get(format!("/v1/plugins/{name}/versions/{version}")),
            None => self.get(format!("/v1/plugins/{name}")),
        }
    }

    pub fn activate(&self, name: &str, version: &str) -> anyhow::Result<Value> {
        self.post(format!("/v1/plugins/{name}/versions/{version}/activate"))
    }

    pub fn deactivate(&self, name: &str) -> anyhow::Result<Value> {
        self.post(format!("/v1/plugins/{name}/deactivate"))
    }

    /// Makes the version active before the current one active again; that PluginVersion.
    pub fn rollback(&self, name: &str) -> anyhow::Result<Value> {
        self.post(format!("/v1/plugins/{name}/rollback"))
    }

    fn get(&self, path: String) -> anyhow::Result<Value> {
        let response = self
            .agent
            .get(&format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call();
        answer("GET", path, response)
    }

    fn post(&self, path: String) -> anyhow::Result<Value> {
        let response = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send_empty();
        answer("POST", path, response)
    }
}

/// The JSON of a 2xx answer; otherwise a [`ServerRefused`] with the error body's message.
fn answer(
    method: &'static str,
    path: String,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> anyhow::Result<Value> {
    let mut response = response.with_context(|| format!("{method} {path}: no answer"))?;
    let status = response.status();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let body: Option<Value> = serde_json::from_str(&text).ok();
    if status.is_success() {
        return body.with_context(|| format!("{method} {path}: the server's answer is not JSON"));
    }
    let error = body.as_ref().map(|b| &b["error"]);
    let field = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Err(ServerRefused {
        method,
        path,
        status,
        code: field("code"),
        message: field("message").unwrap_or_else(|| {
            let reason = status.canonical_reason().unwrap_or("no error body");
            if text.trim().is_empty() {
                reason.to_string()
            } else {
                format!("{reason}: {}", text.trim())
            }
        }),
    }
    .into())
}
