//! Files: uploads (`POST /v4/files`, multipart `pfile`, and its `/v3` aliases) and the signed
//! links that download them and the runs' file outputs without credentials.

use std::time::Duration;

use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::{json, Value as Json_};
use sha2::Sha256;

use super::{caller, Detail};
use crate::api::AppState;

/// How long a file link stays valid.
const LINK_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// `POST /v4/files`: multipart field `pfile`. The answer's `path` names the upload in run
/// inputs; its `url` downloads it.
pub(super) async fn upload_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Json<Json_>, Detail> {
    let caller = caller(&state, &headers).await?;
    let bad = |message: String| Detail(StatusCode::BAD_REQUEST, message);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(e.to_string()))?
    {
        if field.name() != Some("pfile") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_string();
        let bytes = field.bytes().await.map_err(|e| bad(e.to_string()))?;
        // The client may send the local path as the file name: keep its last segment.
        let name = name
            .replace('\\', "/")
            .rsplit('/')
            .next()
            .unwrap_or("file")
            .to_string();
        let digest = state
            .registry
            .store_upload(&caller, &name, &bytes)
            .await?
            .digest;
        let url = FileLinks::new(&state).link(&digest, &name);
        let path = format!("files/{digest}/{name}");
        return Ok(Json(json!({ "id": digest, "path": path, "url": url })));
    }
    Err(bad("the upload needs a multipart field `pfile`".into()))
}

/// `GET /v4/blobs/{hex}/{expires}/{signature}/{name}`: no credentials, a valid signature. The
/// signature sits in the path: the client re-quotes URLs it sends back, which would mangle a
/// query string.
pub(super) async fn download_file(
    State(state): State<AppState>,
    Path((hex, expires, signature, name)): Path<(String, u64, String, String)>,
) -> Result<Response, Detail> {
    let digest = format!("sha256:{hex}");
    let links = FileLinks::new(&state);
    if !links.valid(&digest, &name, expires, &signature) {
        return Err(Detail(
            StatusCode::FORBIDDEN,
            "This link is invalid or has expired".into(),
        ));
    }
    let bytes = state
        .registry
        .read_blob(&digest)
        .await
        .map_err(|_| Detail(StatusCode::NOT_FOUND, "File not found".into()))?;
    let disposition = format!("attachment; filename=\"{}\"", name.replace('"', ""));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// Expiring, signed download links: HMAC-SHA256 over digest, name and expiry with the server's
/// link key (one per database, so shared by replicas). Links are absolute (the client
/// downloads them with a plain GET) and built on the operator's `--public-url`, never on request
/// headers: a forged `Host` or `X-Forwarded-Proto` must not get a validly signed link to
/// somewhere else.
pub(super) struct FileLinks<'a> {
    key: &'a [u8],
    public_url: &'a str,
}

impl<'a> FileLinks<'a> {
    pub(super) fn new(state: &'a AppState) -> Self {
        FileLinks {
            key: &state.link_key,
            public_url: state
                .config
                .public_url
                .as_deref()
                .unwrap_or("http://localhost"),
        }
    }

    fn signature(&self, digest: &str, name: &str, expires: u64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key).expect("any key length works");
        mac.update(format!("{digest}\n{name}\n{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub(super) fn link(&self, digest: &str, name: &str) -> String {
        let expires = now_secs() + LINK_LIFETIME.as_secs();
        let signature = self.signature(digest, name, expires);
        let hex = digest.trim_start_matches("sha256:");
        let name: String = url::form_urlencoded::byte_serialize(name.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        format!(
            "{}/v4/blobs/{hex}/{expires}/{signature}/{name}",
            self.public_url
        )
    }

    fn valid(&self, digest: &str, name: &str, expires: u64, signature: &str) -> bool {
        if expires < now_secs() {
            return false;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key).expect("any key length works");
        mac.update(format!("{digest}\n{name}\n{expires}").as_bytes());
        hex::decode(signature).is_ok_and(|given| mac.verify_slice(&given).is_ok())
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

