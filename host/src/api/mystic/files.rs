//! Files: uploads (`POST /v4/files`, multipart `pfile`, what `File(path=…)` sends; and
//! `POST /v3/pipeline_files`, what `pipeline create file` sends), the account's uploads
//! (`GET /v3/pipeline_files[/{id}]`, what `pipeline get files` and `File(remote_id=…)` read;
//! `GET /v3/pipeline_files/download/{id}`), and the signed links that download uploads and the
//! runs' file outputs without credentials.
//!
//! An upload's `path` (`files/sha256:<hex>/<name>`) is what a run's file input names; its `id`
//! is the upload's own, so two uploads of the same bytes are two files.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::{IntoParams, ToSchema};

use super::{caller, query, Detail, DetailBody};
use crate::api::time::iso_instant;
use crate::api::AppState;
use crate::registry::uploads::UploadInfo;
use crate::registry::Caller;

/// How long a file link stays valid.
const LINK_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Mystic's `RemoteFileData` and `FileGet` in one: an upload.
#[derive(Serialize, ToSchema)]
pub(super) struct FileGet {
    /// The upload's id.
    id: String,
    /// `files/sha256:<hex>/<name>`: what a run's file input gives as `file_path`.
    path: String,
    /// A signed link that downloads it without credentials, valid for a day.
    url: String,
    /// ISO-8601, UTC.
    created_at: String,
    updated_at: String,
}

/// An upload's `path`, as a run's file input names it (`files/sha256:<hex>/<name>`; read back
/// by `runs::file_argument`). The console's run form sends its uploads so too.
pub(crate) fn upload_path(upload: &UploadInfo) -> String {
    format!("files/{}/{}", upload.digest, upload.name)
}

fn file_get(state: &AppState, upload: &UploadInfo) -> FileGet {
    let created_at = iso_instant(upload.created_at_ms);
    FileGet {
        id: upload.id.clone(),
        path: upload_path(upload),
        url: FileLinks::new(state).link(&upload.digest, &upload.name),
        updated_at: created_at.clone(),
        created_at,
    }
}

/// A multipart body whose field `pfile` is the file.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) struct FileUpload {
    #[schema(value_type = String, format = Binary)]
    pfile: Vec<u8>,
}

/// Keeps the multipart field `pfile` as an upload of the caller's account, named `name` or
/// else by the file name it was sent with.
async fn store_pfile(
    state: &AppState,
    caller: &Caller,
    mut multipart: Multipart,
    name: Option<String>,
) -> Result<UploadInfo, Detail> {
    let bad = |message: String| Detail(StatusCode::BAD_REQUEST, message);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(e.to_string()))?
    {
        if field.name() != Some("pfile") {
            continue;
        }
        // The client may send the local path as the file name: keep its last segment, with
        // anything that cannot be in a name replaced.
        let sent = field
            .file_name()
            .map(|name| name.replace('\\', "/"))
            .and_then(|name| name.rsplit('/').next().map(plain_file_name))
            .filter(|name| !name.is_empty() && name != "." && name != "..");
        let name = match name.filter(|name| !name.is_empty()) {
            Some(name) if plain_file_name(&name) != name || name == "." || name == ".." => {
                return Err(Detail::bad_input(format!("`{name}` is not a file name")))
            }
            chosen => chosen.or(sent).unwrap_or_else(|| "file".into()),
        };
        let bytes = field.bytes().await.map_err(|e| bad(e.to_string()))?;
        return Ok(state.registry.store_upload(caller, &name, &bytes).await?);
    }
    Err(bad("the upload needs a multipart field `pfile`".into()))
}

/// `name` with each character a file name cannot hold (`/`, `\\`, a control character)
/// replaced by `_`.
fn plain_file_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '/' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

/// Uploads a file for a run's input (`File(path=…)`): its `path` is what the input names.
#[utoipa::path(post, path = "/v4/files", tag = "files",
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses((status = 200, body = FileGet),
        (status = 400, description = "not a multipart body with a field `pfile`", body = DetailBody),
        (status = 401, body = DetailBody),
        (status = 413, description = "past the account's upload quota, or larger than the server takes", body = DetailBody)))]
pub(super) async fn upload_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Json<FileGet>, Detail> {
    let caller = caller(&state, &headers).await?;
    let upload = store_pfile(&state, &caller, multipart, None).await?;
    Ok(Json(file_get(&state, &upload)))
}

/// What `pipeline create file --name` adds.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UploadName {
    /// The file's name (else the name it was sent with): no `/`, `\\` or control character,
    /// not `.` or `..`.
    #[serde(default)]
    #[param(pattern = r"^(?!\.\.?$)[^/\\\x00-\x1f\x7f-\x9f]*$")]
    name: Option<String>,
}

/// Uploads a file (`pipeline create file PATH`): 201, as the CLI requires.
#[utoipa::path(post, path = "/v3/pipeline_files", tag = "files", params(UploadName),
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = FileGet),
        (status = 400, description = "not a multipart body with a field `pfile`", body = DetailBody),
        (status = 401, body = DetailBody),
        (status = 413, description = "past the account's upload quota, or larger than the server takes", body = DetailBody),
        (status = 422, description = "a bad `name`", body = DetailBody)))]
pub(super) async fn upload_pipeline_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    name: Result<Query<UploadName>, QueryRejection>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<FileGet>), Detail> {
    let caller = caller(&state, &headers).await?;
    let name = query(name)?.name;
    let upload = store_pfile(&state, &caller, multipart, name).await?;
    Ok((StatusCode::CREATED, Json(file_get(&state, &upload))))
}

/// `POST /v3/pipeline_files` under the migration guide's spelling.
#[utoipa::path(post, path = "/v3/pipeline-files", tag = "files", params(UploadName),
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = FileGet),
        (status = 400, description = "not a multipart body with a field `pfile`", body = DetailBody),
        (status = 401, body = DetailBody),
        (status = 413, description = "past the account's upload quota, or larger than the server takes", body = DetailBody),
        (status = 422, description = "a bad `name`", body = DetailBody)))]
pub(super) async fn upload_pipeline_file_hyphenated(
    state: State<AppState>,
    headers: HeaderMap,
    name: Result<Query<UploadName>, QueryRejection>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<FileGet>), Detail> {
    upload_pipeline_file(state, headers, name, multipart).await
}

/// The uploads of the caller's account, oldest first (`pipeline get files`).
#[utoipa::path(get, path = "/v3/pipeline_files", tag = "files",
    responses((status = 200, body = Vec<FileGet>), (status = 401, body = DetailBody)))]
pub(super) async fn list_files(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<FileGet>>, Detail> {
    let caller = caller(&state, &headers).await?;
    let uploads = state.registry.list_uploads(&caller).await?;
    Ok(Json(uploads.iter().map(|u| file_get(&state, u)).collect()))
}

/// One upload of the caller's accounts (`pipeline get files ID`, `File(remote_id=ID)`).
#[utoipa::path(get, path = "/v3/pipeline_files/{id}", tag = "files",
    params(("id" = String, Path, description = "the upload's id")),
    responses((status = 200, body = FileGet), (status = 401, body = DetailBody),
        (status = 404, description = "no such upload of the caller's (or it expired)", body = DetailBody)))]
pub(super) async fn get_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<FileGet>, Detail> {
    let caller = caller(&state, &headers).await?;
    let upload = state.registry.upload(&caller, &id).await?;
    Ok(Json(file_get(&state, &upload)))
}

/// The bytes of an upload of the caller's accounts (`pipeline get files ID -d -o PATH`).
#[utoipa::path(get, path = "/v3/pipeline_files/download/{id}", tag = "files",
    params(("id" = String, Path, description = "the upload's id")),
    responses((status = 200, description = "the file", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 401, body = DetailBody),
        (status = 404, description = "no such upload of the caller's (or it expired)", body = DetailBody)))]
pub(super) async fn download_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Detail> {
    let caller = caller(&state, &headers).await?;
    let upload = state.registry.upload(&caller, &id).await?;
    blob_answer(&state, &upload.digest, &upload.name).await
}

/// The bytes of a blob as a download named `name`.
async fn blob_answer(state: &AppState, digest: &str, name: &str) -> Result<Response, Detail> {
    let bytes = state
        .registry
        .read_blob(digest)
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

/// A file by its signed link: no credentials, a valid signature. The signature sits in the
/// path: the client re-quotes URLs it sends back, which would mangle a query string.
#[utoipa::path(get, path = "/v4/blobs/{hex}/{expires}/{signature}/{name}", tag = "files", security(()),
    params(("hex" = String, Path, description = "the blob's sha256, hex"),
        ("expires" = u64, Path, description = "when the link expires, seconds since the Unix epoch"),
        ("signature" = String, Path, description = "the link's HMAC-SHA256, hex"),
        ("name" = String, Path, description = "the file's name")),
    responses((status = 200, description = "the file", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 400, description = "`expires` is not a number", body = DetailBody),
        (status = 403, description = "an invalid or expired link", body = DetailBody),
        (status = 404, description = "the file is gone", body = DetailBody)))]
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
    blob_answer(&state, &digest, &name).await
}

/// Expiring, signed download links: HMAC-SHA256 over digest, name and expiry with the server's
/// link key (one per database, so shared by replicas). Links are absolute (the client
/// downloads them with a plain GET) and built on the operator's `--public-url`, never on request
/// headers: a forged `Host` or `X-Forwarded-Proto` must not get a validly signed link to
/// somewhere else. The console's run page links file outputs with these too.
pub(crate) struct FileLinks<'a> {
    key: &'a [u8],
    public_url: &'a str,
}

impl<'a> FileLinks<'a> {
    pub(crate) fn new(state: &'a AppState) -> Self {
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

    pub(crate) fn link(&self, digest: &str, name: &str) -> String {
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
