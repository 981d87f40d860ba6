//! Talking to the service a type handler launches (a notebook hub, a note server) through the
//! host's `http-fetch`, behind a [`Transport`] so the launch logic can be unit-tested natively
//! with a scripted transport.
//!
//! The host adds the credentials of the granted base URL; a plugin never sets them (and never
//! sees them). Requests outside the plugin's grants come back as `Err` naming the plugin and URL.

use std::time::{Duration, Instant};

use super::host::{self, HttpRequest, HttpResponse};

/// What a launch needs from the outside world: HTTP, sleeping and a clock.
pub trait Transport {
    fn fetch(&mut self, request: &HttpRequest) -> Result<HttpResponse, String>;
    fn sleep(&mut self, duration: Duration);
    fn now(&self) -> Instant;
}

/// The real thing inside a plugin: the host's `http-fetch` and WASI clocks.
pub struct HostTransport;

impl Transport for HostTransport {
    fn fetch(&mut self, request: &HttpRequest) -> Result<HttpResponse, String> {
        host::http_fetch(request)
    }
    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration)
    }
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A request with a JSON body (when given) that asks for JSON back.
pub fn json_request(method: &str, url: &str, body: Option<&serde_json::Value>) -> HttpRequest {
    let mut headers = vec![("Accept".to_string(), "application/json".to_string())];
    if body.is_some() {
        headers.push(("Content-Type".to_string(), "application/json".to_string()));
    }
    HttpRequest {
        method: method.to_string(),
        url: url.to_string(),
        headers,
        body: body.map(|b| serde_json::to_vec(b).unwrap_or_default()),
    }
}

/// A response body as JSON, or `Null` when it is not JSON.
pub fn json_body(response: &HttpResponse) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null)
}

/// `segment` percent-encoded for one URL path segment (RFC 3986 unreserved characters pass).
pub fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// At most `limit` characters of `text`, for quoting a service's answer in an error.
pub fn excerpt(text: &str, limit: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(limit).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_path_segment("alice"), "alice");
        assert_eq!(encode_path_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_path_segment("é"), "%C3%A9");
    }

    #[test]
    fn excerpts_are_cut() {
        assert_eq!(excerpt("abc", 5), "abc");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
