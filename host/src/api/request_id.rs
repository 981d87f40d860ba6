//! Request ids: every request has one, so an answer a user reports can be found in the log.
//!
//! [`assign`] is the outermost layer of [`super::app`]. It keeps the caller's `x-request-id`
//! when it is a sane token (visible ASCII, at most [`MAX_LEN`] bytes: a gateway's id then
//! follows the request through this server) and makes a UUIDv7 otherwise. The id is then
//! - in the request's extensions, where the tracing span of `app` reads it, so every log line
//!   of the request carries `request_id`;
//! - the `x-request-id` header of every answer, whatever produced it;
//! - the task-local [`current`] while the request's handler runs, which is how the error
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

use axum::extract::Request;
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
    static CURRENT: RequestId;
}

/// The id of the request whose handler is running on this task; None outside one.
pub fn current() -> Option<String> {
    CURRENT.try_with(|id| id.as_str().to_owned()).ok()
}

/// The middleware: takes or makes the id, scopes the rest of the request in it, and answers
/// with it.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(RequestId::from_incoming)
        .unwrap_or_default();
    request.extensions_mut().insert(id.clone());
    let mut response = CURRENT.scope(id.clone(), next.run(request)).await;
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
