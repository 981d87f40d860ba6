//! Runs: `POST /v4/runs` (and `/v3/runs`), `GET /v4/runs/{id}`, and the streamed run
//! `POST /v4/runs/stream`, each answered as Mystic's `ClusterRunResult`; the client's inputs
//! read as run arguments; what a run printed (`GET /v4/logs/run/{id}`).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json_;
use utoipa::ToSchema;

use super::files::FileLinks;
use super::{caller, json_body, Detail, DetailBody};
use crate::api::time::iso_instant;
use crate::api::AppState;
use crate::runs::{RunArgument, RunRecord, RunState, RunSubmission, Value};

/// Seconds a client is told to wait when capacity is exhausted.
const RETRY_AFTER_SECS: u64 = 5;

/// Mystic's `RunCreate`.
#[derive(Deserialize, ToSchema)]
pub(super) struct RunRequest {
    /// `account/name`, `account/name:version` or `account/name:pointer`.
    #[schema(pattern = r"^[^/]+/[^/:]+(:.*)?$")]
    pipeline: String,
    #[serde(default)]
    inputs: Vec<RunInput>,
    /// Answer at once (202) and run in the background; poll `GET /v4/runs/{id}`.
    #[serde(default)]
    async_run: bool,
    /// Wait for capacity instead of answering 503 `no_resources_available`.
    #[serde(default)]
    wait_for_resources: Option<bool>,
}

/// Mystic's `RunInput`: a value, or a file given by an upload's `file_path` (from
/// `POST /v4/files`) or by an http(s) URL in `file_path` (fetched where the operator allows).
#[derive(Deserialize, Serialize, Clone, ToSchema)]
pub(super) struct RunInput {
    /// integer, string, fp, dictionary, boolean, array or file (`pkl`, `none` and `stream`
    /// are refused as the run's `input_error`).
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    #[schema(value_type = Object, nullable)]
    value: Json_,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    file_path: Option<String>,
    #[serde(default)]
    file_url: Option<String>,
}

/// One input of the client as a run argument; Err: one this server cannot take (the run records
/// an `input_error`).
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
        "file" => file_argument(input)?,
        other => return Err(format!("inputs of type `{other}` are not supported here")),
    })
}

/// A file input: an upload by its path `files/sha256:<hex>/<name>` (see `files::upload_file`;
/// the client sends it back as `file_path`, its last segment as `file_name`), or a `File(url=…)`,
/// whose raw URL the client sends as `file_path` (with `file_url` null).
fn file_argument(input: &RunInput) -> Result<RunArgument, String> {
    let path = input.file_path.as_deref().unwrap_or_default();
    if let Some(digest) = path
        .strip_prefix("files/")
        .and_then(|rest| rest.split('/').next())
        .filter(|d| d.starts_with("sha256:"))
    {
        return Ok(RunArgument::File {
            file_name: input
                .file_name
                .clone()
                .or_else(|| path.rsplit('/').next().map(str::to_string))
                .unwrap_or_else(|| "input".into()),
            digest: digest.to_string(),
        });
    }
    match url::Url::parse(path) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            // The URL's last path segment names the file (the client's `file_name` keeps the
            // query string too).
            let file_name = url
                .path_segments()
                .and_then(|mut segments| segments.next_back())
                .filter(|name| !name.is_empty() && *name != "." && *name != "..")
                .unwrap_or("input")
                .to_string();
            Ok(RunArgument::FileAt {
                file_name,
                url: path.to_string(),
            })
        }
        _ => Err(format!(
            "a file input is an upload's path (POST /v4/files) or an http(s) URL; `{path}` is neither"
        )),
    }
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

/// The run a request asks for.
fn submission(body: &[u8]) -> Result<RunSubmission, Detail> {
    let request: RunRequest = json_body(body, "run request")?;
    let (namespace, name, version) = pointer(&request.pipeline)?;
    let mut arguments = Vec::with_capacity(request.inputs.len());
    let mut refused = None;
    for input in &request.inputs {
        match argument(input) {
            Ok(argument) => arguments.push(argument),
            Err(message) => refused = refused.or(Some(message)),
        }
    }
    Ok(RunSubmission {
        namespace,
        name,
        version,
        inputs: arguments,
        inputs_as_sent: serde_json::to_value(&request.inputs).unwrap_or_default(),
        background: request.async_run,
        wait_for_resources: request.wait_for_resources.unwrap_or(false),
        refused_input: refused,
    })
}

/// The status a run's answer has: 503 (with `Retry-After`) without capacity, 202 while at work,
/// 200 once over.
fn answer(record: &RunRecord, body: impl IntoResponse) -> Response {
    match record.state {
        RunState::NoResourcesAvailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())],
            body,
        )
            .into_response(),
        RunState::Created | RunState::Running => (StatusCode::ACCEPTED, body).into_response(),
        _ => (StatusCode::OK, body).into_response(),
    }
}

/// Runs a pipeline: at once (the result when it is over), or in the background
/// (`async_run`: 202, then poll `GET /v4/runs/{id}`). A pipeline's own failure is a `failed`
/// run, not an HTTP error.
#[utoipa::path(post, path = "/v4/runs", tag = "runs", request_body = RunRequest,
    responses(
        (status = 200, description = "the run is over (completed or failed)", body = ClusterRunResult),
        (status = 202, description = "accepted, running in the background", body = ClusterRunResult),
        (status = 400, description = "not a pipeline name", body = DetailBody),
        (status = 401, body = DetailBody), (status = 403, body = DetailBody),
        (status = 404, description = "no such pipeline, version or pointer, or not ready", body = DetailBody),
        (status = 422, description = "not a run request", body = DetailBody),
        (status = 503, description = "no capacity; `Retry-After` says when to try again", body = ClusterRunResult,
            headers(("Retry-After" = u64, description = "seconds")))))]
pub(super) async fn submit_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Detail> {
    let caller = caller(&state, &headers).await?;
    let record = state.runs.submit_run(&caller, submission(&body)?).await?;
    Ok(answer(&record, Json(run_body(&state, &record))))
}

/// `POST /v4/runs` under its `/v3` name.
#[utoipa::path(post, path = "/v3/runs", tag = "runs", request_body = RunRequest,
    responses(
        (status = 200, description = "the run is over (completed or failed)", body = ClusterRunResult),
        (status = 202, description = "accepted, running in the background", body = ClusterRunResult),
        (status = 400, description = "not a pipeline name", body = DetailBody),
        (status = 401, body = DetailBody), (status = 403, body = DetailBody),
        (status = 404, description = "no such pipeline, version or pointer, or not ready", body = DetailBody),
        (status = 422, description = "not a run request", body = DetailBody),
        (status = 503, description = "no capacity; `Retry-After` says when to try again", body = ClusterRunResult,
            headers(("Retry-After" = u64, description = "seconds")))))]
pub(super) async fn submit_run_v3(
    state: State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Detail> {
    submit_run(state, headers, body).await
}

/// A run of the caller's account.
#[utoipa::path(get, path = "/v4/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "the run's id")),
    responses((status = 200, body = ClusterRunResult), (status = 401, body = DetailBody),
        (status = 404, body = DetailBody)))]
pub(super) async fn get_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ClusterRunResult>, Detail> {
    let caller = caller(&state, &headers).await?;
    let record = state.runs.run_record(&caller, &id).await?;
    Ok(Json(run_body(&state, &record)))
}

/// `GET /v4/runs/{id}` under its `/v3` name.
#[utoipa::path(get, path = "/v3/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "the run's id")),
    responses((status = 200, body = ClusterRunResult), (status = 401, body = DetailBody),
        (status = 404, body = DetailBody)))]
pub(super) async fn get_run_v3(
    state: State<AppState>,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Json<ClusterRunResult>, Detail> {
    get_run(state, headers, id).await
}

/// A run streamed as the client's `stream_pipeline` reads it: newline-delimited
/// `ClusterRunResult`s, the run as it starts (`running`) and then as it ended. A run that ends
/// before it starts (a refused input, no capacity) is one line, with the status a run of
/// `POST /v4/runs` would have. The run executes on the request: a client that hangs up stops
/// it. `async_run` is ignored. The id of the first line reads back with `GET /v4/runs/{id}` once
/// the run is recorded: when it ends, or past its first moments (see `runs::submit`).
#[utoipa::path(post, path = "/v4/runs/stream", tag = "runs", request_body = RunRequest,
    responses(
        (status = 200, description = "one ClusterRunResult per line: `running`, then the run as it ended (or only the ended run)",
            body = ClusterRunResult, content_type = "application/x-ndjson"),
        (status = 400, description = "not a pipeline name", body = DetailBody),
        (status = 401, body = DetailBody), (status = 403, body = DetailBody),
        (status = 404, description = "no such pipeline, version or pointer, or not ready", body = DetailBody),
        (status = 422, description = "not a run request", body = DetailBody),
        (status = 503, description = "no capacity: one line, the run `no_resources_available`",
            body = ClusterRunResult, content_type = "application/x-ndjson",
            headers(("Retry-After" = u64, description = "seconds")))))]
pub(super) async fn stream_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Detail> {
    let caller = caller(&state, &headers).await?;
    let mut submission = submission(&body)?;
    submission.background = false;
    let (started_tx, mut started) = tokio::sync::oneshot::channel();
    let runs = state.runs.clone();
    let mut work = Box::pin(async move {
        runs.submit_run_reporting(&caller, submission, Some(started_tx))
            .await
    });
    // A run that started is streamed as it starts, then as it ended (both at once when it was
    // over before this looked); one that ended without starting is its one line.
    let (started, ended) = tokio::select! {
        ended = &mut work => {
            let ended = ended?;
            match started.try_recv() {
                Ok(started) => (started, Some(ended)),
                Err(_) => {
                    let line = ndjson_line(&Ok(run_body(&state, &ended)));
                    return Ok(answer(&ended, ndjson(Body::from(line))));
                }
            }
        }
        started = &mut started => match started {
            Ok(started) => (started, None),
            Err(_) => {
                let ended = (&mut work).await?;
                let line = ndjson_line(&Ok(run_body(&state, &ended)));
                return Ok(answer(&ended, ndjson(Body::from(line))));
            }
        },
    };
    let first_line = ndjson_line(&Ok(run_body(&state, &started)));
    if let Some(ended) = ended {
        let lines = first_line + &ndjson_line(&Ok(run_body(&state, &ended)));
        return Ok((StatusCode::OK, ndjson(Body::from(lines))).into_response());
    }
    let ended = futures_util::stream::once(async move {
        let ended = work
            .await
            .map(|record| run_body(&state, &record))
            .map_err(Detail::from);
        Ok::<_, Infallible>(Bytes::from(ndjson_line(&ended)))
    });
    let lines = futures_util::stream::once(async move { Ok(Bytes::from(first_line)) }).chain(ended);
    Ok((StatusCode::OK, ndjson(Body::from_stream(lines))).into_response())
}

/// What `GET /v4/logs/run/{id}` answers.
#[derive(Serialize, ToSchema)]
pub(super) struct RunLogEntries {
    /// What the run printed, a line each: its stdout, then its stderr (each kept up to 64 KiB).
    log_entries: Vec<String>,
}

/// What a run of the caller's account printed (`pipeline logs run ID`): empty while it runs.
#[utoipa::path(get, path = "/v4/logs/run/{id}", tag = "runs",
    params(("id" = String, Path, description = "the run's id")),
    responses((status = 200, body = RunLogEntries), (status = 401, body = DetailBody),
        (status = 404, body = DetailBody)))]
pub(super) async fn run_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RunLogEntries>, Detail> {
    let caller = caller(&state, &headers).await?;
    let logs = state.runs.run_logs(&caller, &id).await?;
    let log_entries = [logs.stdout, logs.stderr]
        .iter()
        .flat_map(|stream| stream.lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    Ok(Json(RunLogEntries { log_entries }))
}

/// A body of newline-delimited JSON.
fn ndjson(body: Body) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body)
}

/// One line of a stream: the run, or the error that ended it (as `{"detail": …}`).
fn ndjson_line(line: &Result<ClusterRunResult, Detail>) -> String {
    let json = match line {
        Ok(run) => serde_json::to_string(run),
        Err(Detail(status, message)) => {
            tracing::warn!(%status, message, "a streamed run ended in an error");
            serde_json::to_string(&DetailBody {
                detail: message.clone(),
                request_id: crate::api::request_id::current(),
            })
        }
    };
    json.expect("a run serializes") + "\n"
}

/// Mystic's `ClusterRunResult`.
#[derive(Serialize, ToSchema)]
pub(super) struct ClusterRunResult {
    id: String,
    /// ISO-8601, UTC.
    created_at: String,
    updated_at: String,
    /// The version run, `account/name:version` (also when the run named a pointer).
    pipeline_id: String,
    /// created, running, completed, failed or no_resources_available.
    state: RunState,
    /// Always null: runs here do not queue behind one another.
    #[schema(value_type = Option<i64>)]
    queue_position: Option<i64>,
    /// The inputs as the client sent them.
    #[schema(value_type = Option<Vec<RunInput>>)]
    inputs: Json_,
    /// Null until the run completed.
    outputs: Option<Vec<RunOutputBody>>,
    error: Option<RunErrorBody>,
}

/// Mystic's `RunOutput`.
#[derive(Serialize, ToSchema)]
pub(super) struct RunOutputBody {
    /// integer, string, fp, dictionary, boolean, array or file.
    #[serde(rename = "type")]
    kind: String,
    #[schema(value_type = Object, nullable)]
    value: Json_,
    file: Option<RunOutputFile>,
}

/// A file output: downloaded from `url` without credentials.
#[derive(Serialize, ToSchema)]
pub(super) struct RunOutputFile {
    name: String,
    /// The blob's digest.
    path: String,
    /// A signed link, valid for a day.
    url: String,
    size: u64,
}

/// Mystic's `ContainerRunError`.
#[derive(Serialize, ToSchema)]
pub(super) struct RunErrorBody {
    /// input_error, pipeline_error, pipeline_loading, startup_error, timeout, oom or unknown.
    #[serde(rename = "type")]
    kind: String,
    message: String,
    /// Always null.
    #[schema(value_type = Option<String>)]
    traceback: Option<String>,
}

/// A run as Mystic's `ClusterRunResult`.
fn run_body(state: &AppState, run: &RunRecord) -> ClusterRunResult {
    let links = FileLinks::new(state);
    let outputs = (run.state == RunState::Completed).then(|| {
        run.outputs
            .iter()
            .map(|output| RunOutputBody {
                kind: if output.kind == "float" {
                    "fp".into()
                } else {
                    output.kind.clone()
                },
                value: output.value.clone(),
                file: output.file.as_ref().map(|file| RunOutputFile {
                    name: file.name.clone(),
                    path: file.digest.clone(),
                    url: links.link(&file.digest, &file.name),
                    size: file.size,
                }),
            })
            .collect()
    });
    ClusterRunResult {
        id: run.id.clone(),
        created_at: iso_instant(run.created_at_ms),
        updated_at: iso_instant(run.updated_at_ms),
        pipeline_id: format!("{}:{}", run.pipeline, run.version),
        state: run.state,
        queue_position: None,
        inputs: run.inputs.clone(),
        outputs,
        error: run.error.as_ref().map(|e| RunErrorBody {
            kind: e.kind.clone(),
            message: e.message.clone(),
            traceback: None,
        }),
    }
}
