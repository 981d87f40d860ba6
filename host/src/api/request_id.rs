//! Request ids: every request has one, so an answer a user reports can be found in the log.
//!
//! [`assign`] is the outermost layer of [`super::app`]. It keeps the caller's `x-request-id`
//! when it is a sane token (visible ASCII, at most [`MAX_LEN`] bytes: a gateway's id then
//! follows the request through this server) and makes a UUIDv7 otherwise. The id is then
//! - in the request's log context ([`log_context`]), so every log line written while the request
//!   is served carries it (`"request": {"id", …}` beside its method, path, route and user);
//! - the `x-request-id` header of every answer, whatever produced it;
//! - the task-local [`current`] while the request is served, which is how the error
//!   constructors of the surfaces (`error.rs`, `acumos.rs`, `gbdx.rs`, `mystic.rs`) put it in
//!   their bodies without every handler passing it along.
//!
//! Why a task-local rather than rewriting error bodies on the way out: each surface has its own
//! error shape (`{"error": {…}}`, `{"serviceStatus": {…}}`, `{"Error": …}`, `{"detail": …}`),
//! and only its constructor knows where an extra field fits without breaking it; re-parsing
//! and re-serializing every error body would also reorder its fields. The limit of the
//! task-local: work spawned onto another task (a background run) does not see it, and answers
//! made outside a handler (axum's own plain-text rejections, a 405) carry the id in the header
//! only.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header a request id comes in and goes out in.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id kept; a longer one is replaced.
pub const MAX_LEN: usize = 128;

/// The id of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// A fresh id: a UUIDv7, so ids sort by the time their request arrived.
    pub fn new() -> Self {
        RequestId(uuid::Uuid::now_v7().to_string().into())
    }

    /// The caller's id if it is a sane token: 1 to [`MAX_LEN`] bytes of visible ASCII. Spaces
    /// and control characters are refused: they would split or forge log lines.
    pub fn from_incoming(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let sane = !bytes.is_empty()
            && bytes.len() <= MAX_LEN
            && bytes.iter().all(|b| b.is_ascii_graphic());
        // Visible ASCII is UTF-8: `to_str` cannot fail once `sane` holds.
        let text = value.to_str().ok().filter(|_| sane)?;
        Some(RequestId(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// What the log says of the request a line was written in ([`crate::logging`]), and what the
/// surfaces' error bodies take their id from: set by [`assign`] for the rest of the request.
struct RequestContext {
    id: RequestId,
    method: axum::http::Method,
    path: String,
    /// The route's template (`/v4/runs/{id}`), when one matched.
    route: Option<MatchedPath>,
    /// Who called, once a surface has authenticated them ([`record_user`]).
    user: std::sync::OnceLock<String>,
}

/// The id of the request whose handler is running on this task; None outside one.
pub fn current() -> Option<String> {
    CURRENT
        .try_with(|request| request.id.as_str().to_owned())
        .ok()
}

/// Notes who is calling, for the log lines of the rest of the request.
pub fn record_user(user: &str) {
    let _ = CURRENT.try_with(|request| request.user.set(user.to_owned()));
}

/// The request the code running on this task serves, as the log shows it: `{"id", "method",
/// "path", "route", "user"}` (those known). None outside a request.
pub(crate) fn log_context() -> Option<serde_json::Value> {
    CURRENT
        .try_with(|request| {
            let mut context = serde_json::json!({
                "id": request.id.as_str(),
                "method": request.method.as_str(),
                "path": request.path,
            });
            if let Some(route) = &request.route {
                context["route"] = route.as_str().into();
            }
            if let Some(user) = request.user.get() {
                context["user"] = user.as_str().into();
            }
            context
        })
        .ok()
}

/// The middleware: takes or makes the id, scopes the rest of the request in it (and in the
/// request's log context), and answers with it. With `RUST_LOG=pipewright::access=debug`, it
/// logs each request's start and end (an access log).
///
/// Why a task-local read by the log's formatter rather than a tracing span per request: a span
/// has its fields serialized when it is made, whether or not anything is logged in it, and is
/// entered and left at every poll; that took about a tenth of a warm run's time. Nearly every
/// request logs nothing.
pub async fn assign(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(RequestId::from_incoming)
        .unwrap_or_default();
    let context = RequestContext {
        id: id.clone(),
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
        route: request.extensions().get::<MatchedPath>().cloned(),
        user: std::sync::OnceLock::new(),
    };
    let started = Instant::now();
    let mut response = CURRENT
        .scope(context, async move {
            tracing::debug!(target: "pipewright::access", "request started");
            let response = next.run(request).await;
            tracing::debug!(
                target: "pipewright::access",
                status = response.status().as_u16(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "request finished"
            );
            response
        })
        .await;
    let value = HeaderValue::from_str(id.as_str()).expect("a request id is visible ASCII");
    response.headers_mut().insert(HEADER, value);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_incoming_ids_are_kept_and_others_replaced() {
        let kept = |s: &str| RequestId::from_incoming(&HeaderValue::from_str(s).unwrap());
        assert_eq!(kept("abc-123_X.y:z").unwrap().as_str(), "abc-123_X.y:z");
        assert_eq!(kept(&"a".repeat(MAX_LEN)).unwrap().as_str().len(), MAX_LEN);
        assert!(kept(&"a".repeat(MAX_LEN + 1)).is_none());
        assert!(kept("").is_none());
        assert!(kept("two words").is_none());
        assert!(kept("tab\there").is_none());
        assert!(
            RequestId::from_incoming(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_none()
        );
    }

    #[test]
    fn made_ids_are_distinct_uuids() {
        let (a, b) = (RequestId::new(), RequestId::new());
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(a.as_str()).is_ok());
    }
}
