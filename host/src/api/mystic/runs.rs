//! Runs: `POST /v4/runs` (and `/v3/runs`), `GET /v4/runs/{id}`, answered as Mystic's
//! `ClusterRunResult`; the client's inputs read as run arguments.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value as Json_};

use super::files::FileLinks;
use super::{caller, Detail};
use crate::api::time::iso_instant;
use crate::api::AppState;
use crate::runs::{RunArgument, RunRecord, RunState, RunSubmission, Value};

/// Seconds a client is told to wait when capacity is exhausted.
const RETRY_AFTER_SECS: u64 = 5;

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
pub(super) async fn submit_run(
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
pub(super) async fn get_run(
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

