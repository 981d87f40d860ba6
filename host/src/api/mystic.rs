//! Mystic's `/v4` API (and `/v3/runs` as its alias), so that the real Python client
//! (`pipeline-ai` 2.8) works unchanged: token validation, file uploads, runs.
//!
//! A pointer is `account/name[:version]`. A run answers as Mystic's `ClusterRunResult` whatever
//! its outcome: a pipeline's failure (bad input, trap, timeout, memory) is `state: "failed"` with
//! `error {type, message}` and HTTP 200; only an unknown pipeline or caller is an HTTP error,
//! as `{"detail": …}`. When capacity is exhausted and the request does not wait for it, the
//! answer is 503 with `Retry-After` and a run in state `no_resources_available`.
//!
//! File outputs (and uploads) are fetched by URL without credentials, as the client does: the
//! URL carries an expiring HMAC signature ([`FileLinks`]), never a guessable path.

use std::time::Duration;

use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value as Json_};
use sha2::Sha256;

use super::routes::Routes;
use super::time::iso_instant;
use super::AppState;
use crate::registry::{Caller, RegistryError};
use crate::route;
use crate::runs::{RunArgument, RunRecord, RunState, RunSubmission, Value};

pub fn routes() -> Routes {
    let mut routes = Routes::new("mystic")
        .with_error_shape(|status, message| Detail(status, message).into_response());
    routes = route!(routes, "/v4/tokens/validate", get(validate_token));
    routes = route!(routes, "/v4/pipelines", post(push_pipeline));
    for runs in ["/v4/runs", "/v3/runs"] {
        routes = route!(routes, runs, post(submit_run));
        routes = route!(routes, &format!("{runs}/{{id}}"), get(get_run));
    }
    for files in ["/v4/files", "/v3/pipeline_files", "/v3/pipeline-files"] {
        routes = route!(routes, files, post(upload_file));
    }
    route!(
        routes,
        "/v4/blobs/{hex}/{expires}/{signature}/{name}",
        get(download_file)
    )
}

/// Seconds a client is told to wait when capacity is exhausted.
const RETRY_AFTER_SECS: u64 = 5;
/// How long a file link stays valid.
const LINK_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// `{"detail": …}` with a status: Mystic's error shape.
struct Detail(StatusCode, String);

impl IntoResponse for Detail {
    fn into_response(self) -> Response {
        // `request_id` beside `detail`: Mystic's client reads `detail` and ignores the rest.
        let body = match super::request_id::current() {
            Some(request_id) => json!({ "detail": self.1, "request_id": request_id }),
            None => json!({ "detail": self.1 }),
        };
        (self.0, Json(body)).into_response()
    }
}

impl From<RegistryError> for Detail {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Unauthenticated => {
                Detail(StatusCode::UNAUTHORIZED, "Invalid token".into())
            }
            // The seed words none of them: the native words.
            RegistryError::Refused(refusal) => {
                let (status, _, message) = super::error::refusal_wording(&refusal);
                Detail(status, message)
            }
            RegistryError::NotReady {
                name,
                version,
                state,
            } => Detail(
                StatusCode::NOT_FOUND,
                format!("{name}:{version} is {} and cannot run", state.as_str()),
            ),
            RegistryError::Invalid(findings) => Detail(
                StatusCode::BAD_REQUEST,
                findings
                    .first()
                    .map(|f| f.message.clone())
                    .unwrap_or_default(),
            ),
            RegistryError::QuotaExceeded(quota) => {
                Detail(StatusCode::PAYLOAD_TOO_LARGE, quota.to_string())
            }
            RegistryError::Plugin(error) => Detail(StatusCode::BAD_GATEWAY, error.to_string()),
            RegistryError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Detail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error; see the server log".into(),
                )
            }
        }
    }
}

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Detail> {
    let token = super::bearer_token(headers)
        .ok_or_else(|| Detail(StatusCode::UNAUTHORIZED, "Missing API token".into()))?;
    let caller = state.registry.authenticate(token).await?;
    tracing::Span::current().record("user", caller.user.as_str());
    Ok(caller)
}

/// `GET /v4/tokens/validate`: what `pipeline cluster login` calls first.
async fn validate_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Json_>, Detail> {
    let caller = caller(&state, &headers).await?;
    Ok(Json(
        json!({ "valid": true, "username": caller.user, "account": caller.account }),
    ))
}

#[derive(Deserialize)]
struct RunRequest {
    pipeline: String,
    #[serde(default)]
    inputs: Vec<RunInput>,
    #[serde(default)]
    async_run: bool,
    #[serde(default)]
    wait_for_resources: Option<bool>,
}

#[derive(Deserialize, serde::Serialize, Clone)]
struct RunInput {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    value: Json_,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    file_path: Option<String>,
    #[serde(default)]
    file_url: Option<String>,
}

/// One input of the client as a run argument; None: a type this server cannot take (the run
/// records an `input_error`).
fn argument(input: &RunInput) -> Result<RunArgument, String> {
    let value = &input.value;
    let mismatch = || format!("a `{}` input cannot hold {value}", input.kind);
    Ok(match input.kind.as_str() {
        "string" => RunArgument::Value(Value::String(value.as_str().ok_or_else(mismatch)?.into())),
        // The client sends Python's bools as integers with a JSON boolean value.
        "integer" | "boolean" => match value {
            Json_::Bool(b) => RunArgument::Value(Value::Boolean(*b)),
            Json_::Number(n) if input.kind == "integer" => {
                RunArgument::Value(Value::Integer(n.as_i64().ok_or_else(mismatch)?))
            }
            _ => return Err(mismatch()),
        },
        "fp" | "float" => RunArgument::Value(Value::Float(value.as_f64().ok_or_else(mismatch)?)),
        "dictionary" if value.is_object() => {
            RunArgument::Value(Value::Dictionary(value.to_string()))
        }
        "array" if value.is_array() => RunArgument::Value(Value::Array(value.to_string())),
        "file" => {
            // An uploaded file's path is `files/sha256:<hex>/<name>` (see `upload_file`); the
            // client sends it back as `file_path`, its last segment as `file_name`.
            let path = input.file_path.as_deref().unwrap_or_default();
            let digest = path
                .strip_prefix("files/")
                .and_then(|rest| rest.split('/').next())
                .filter(|d| d.starts_with("sha256:"))
                .ok_or_else(|| {
                    "a file input must be uploaded first (POST /v4/files); files by URL are not fetched".to_string()
                })?;
            RunArgument::File {
                file_name: input
                    .file_name
                    .clone()
                    .or_else(|| path.rsplit('/').next().map(str::to_string))
                    .unwrap_or_else(|| "input".into()),
                digest: digest.to_string(),
            }
        }
        other => return Err(format!("inputs of type `{other}` are not supported here")),
    })
}

#[derive(Deserialize)]
struct PushRequest {
    /// The pipeline's `pipeline.yaml`, as JSON.
    manifest: Json_,
    /// Every file of the pipeline's directory, the component included.
    files: Vec<PushedFile>,
}

#[derive(Deserialize)]
struct PushedFile {
    path: String,
    content_base64: String,
}

/// `POST /v4/pipelines`: registers `account/name:version` (the token's account) from a pushed
/// pipeline directory (what `pipewright pipeline push` sends). Names must be lowercase.
async fn push_pipeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Json_>), Detail> {
    use base64::Engine as _;
    let caller = caller(&state, &headers).await?;
    let request: PushRequest = serde_json::from_slice(&body).map_err(|e| {
        Detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid push: {e}"),
        )
    })?;
    let manifest =
        pipewright_manifest::RunManifest::from_json(&request.manifest).unwrap_or_default();
    let field = |key: &str, value: Option<String>| {
        value.ok_or_else(|| {
            Detail(
                StatusCode::BAD_REQUEST,
                format!("the manifest needs `{key}`"),
            )
        })
    };
    let (name, version) = (
        field("name", manifest.name)?,
        field("version", manifest.version)?,
    );
    let mut files = Vec::with_capacity(request.files.len() + 1);
    for file in request.files {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&file.content_base64)
            .map_err(|e| {
                Detail(
                    StatusCode::BAD_REQUEST,
                    format!("{}: not base64: {e}", file.path),
                )
            })?;
        files.push((file.path, bytes));
    }
    files.retain(|(path, _)| path != RUNNABLE_MANIFEST);
    files.push((
        RUNNABLE_MANIFEST.into(),
        request.manifest.to_string().into_bytes(),
    ));
    let new = crate::registry::NewVersion {
        version,
        description: manifest.description,
        definition: request.manifest,
        files,
        source: None,
        source_upload: None,
        create_as_type: Some(RUNNABLE_TYPE.into()),
    };
    let registered = state
        .registry
        .register_version(
            &caller,
            &caller.account,
            &name,
            new,
            crate::registry::Surface::Mystic,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "pointer": format!("{}/{}:{}", registered.namespace, registered.name, registered.version),
            "state": registered.state,
            "approved_by": registered.approved_by,
        })),
    ))
}

/// The type of runnable pipelines (`plugins/runnable`) and the file its manifest is kept in.
const RUNNABLE_TYPE: &str = "runnable";
const RUNNABLE_MANIFEST: &str = "pipeline.json";

/// `account/name[:version]`.
fn pointer(text: &str) -> Result<(String, String, Option<String>), Detail> {
    let bad = || {
        Detail(
            StatusCode::BAD_REQUEST,
            format!("`{text}` is not a pipeline pointer (account/name:version)"),
        )
    };
    let (namespace, rest) = text.split_once('/').ok_or_else(bad)?;
    let (name, version) = match rest.split_once(':') {
        Some((name, version)) => (name, Some(version.to_string())),
        None => (rest, None),
    };
    if namespace.is_empty() || name.is_empty() {
        return Err(bad());
    }
    Ok((namespace.to_string(), name.to_string(), version))
}

/// `POST /v4/runs` (and `/v3/runs`).
async fn submit_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Detail> {
    let caller = caller(&state, &headers).await?;
    let request: RunRequest = serde_json::from_slice(&body).map_err(|e| {
        Detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid run request: {e}"),
        )
    })?;
    let (namespace, name, version) = pointer(&request.pipeline)?;
    let mut arguments = Vec::with_capacity(request.inputs.len());
    let mut refused = None;
    for input in &request.inputs {
        match argument(input) {
            Ok(argument) => arguments.push(argument),
            Err(message) => refused = refused.or(Some(message)),
        }
    }
    let submission = RunSubmission {
        namespace,
        name,
        version,
        inputs: arguments,
        inputs_as_sent: serde_json::to_value(&request.inputs).unwrap_or_default(),
        background: request.async_run,
        wait_for_resources: request.wait_for_resources.unwrap_or(false),
        refused_input: refused,
    };
    let record = state.runs.submit_run(&caller, submission).await?;
    let body = Json(run_body(&state, &record));
    Ok(match record.state {
        RunState::NoResourcesAvailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())],
            body,
        )
            .into_response(),
        RunState::Created | RunState::Running => (StatusCode::ACCEPTED, body).into_response(),
        _ => (StatusCode::OK, body).into_response(),
    })
}

/// `GET /v4/runs/{id}`.
async fn get_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Json_>, Detail> {
    let caller = caller(&state, &headers).await?;
    let record = state.runs.run_record(&caller, &id).await?;
    Ok(Json(run_body(&state, &record)))
}

/// Mystic's `ClusterRunResult`.
fn run_body(state: &AppState, run: &RunRecord) -> Json_ {
    let links = FileLinks::new(state);
    let outputs: Vec<Json_> = run
        .outputs
        .iter()
        .map(|output| {
            let kind = if output.kind == "float" {
                "fp"
            } else {
                output.kind.as_str()
            };
            let file = output.file.as_ref().map(|file| {
                json!({
                    "name": file.name,
                    "path": file.digest,
                    "url": links.link(&file.digest, &file.name),
                    "size": file.size,
                })
            });
            json!({ "type": kind, "value": output.value, "file": file })
        })
        .collect();
    let error = run
        .error
        .as_ref()
        .map(|e| json!({ "type": e.kind, "message": e.message, "traceback": null }));
    json!({
        "id": run.id,
        "created_at": iso_instant(run.created_at_ms),
        "updated_at": iso_instant(run.updated_at_ms),
        "pipeline_id": format!("{}:{}", run.pipeline, run.version),
        "state": run.state,
        "queue_position": null,
        "inputs": run.inputs,
        "outputs": if run.state == RunState::Completed { Json_::Array(outputs) } else { Json_::Null },
        "error": error,
    })
}

/// `POST /v4/files`: multipart field `pfile`. The answer's `path` names the upload in run
/// inputs; its `url` downloads it.
async fn upload_file(
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
async fn download_file(
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
struct FileLinks<'a> {
    key: &'a [u8],
    public_url: &'a str,
}

impl<'a> FileLinks<'a> {
    fn new(state: &'a AppState) -> Self {
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

    fn link(&self, digest: &str, name: &str) -> String {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::error::tests::{answer_of, rows};

    /// The seed words no refusal of the core: every one answers in the native words, as
    /// `{"detail": …}`.
    #[tokio::test]
    async fn every_refusal_of_the_core_answers_in_the_native_words() {
        for (refusal, status, message) in rows(&[]) {
            let code = refusal.code();
            let detail = Detail::from(RegistryError::from(refusal));
            assert_eq!(
                answer_of(detail.into_response()).await,
                (status, json!({ "detail": message })),
                "{code}"
            );
        }
    }
}
