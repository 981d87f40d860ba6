//! GBDX-style task versioning under `/workflows/v1`: register, list, get, replace and delete
//! tasks, over the registry core. Tasks live in one shared namespace ([`NAMESPACE`]) as
//! pipelines of type `task`: the first account to register a name owns it, and any member of
//! that account may add versions.
//!
//! A task's content is named by its container descriptor: `DOCKER` (kept and checked, but this
//! server cannot run it) or `WASM` with `properties.url` (http, https, or file under the
//! operator's root) or `properties.upload` (base64), and an optional `properties.digest`. Either
//! way the new version is `registering` (the seed's "Docker migration") until the registration
//! workers have fetched, verified, validated and compiled it. A `properties.url` the server will
//! never fetch (not http, https or an allowed file; a host that does not resolve; an address
//! [`crate::outbound`] refuses) is a 400 at the request, and nothing is registered.
//!
//! Errors are `{"Error": "…"}` with the seed's exact text; [`Violation::wording`] is the table.
//! Where the seed is silent on a refusal of the core (a task or workflow not found, a conflict)
//! it answers in the native words (`api::error::refusal_wording`).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};

use super::routes::Routes;
use super::AppState;
use crate::registry::content_sources::{ContentSource, SourceLocation};
use crate::registry::resolve::Listing;
use crate::registry::{
    Caller, Definition, NewVersion, Refusal, RefusalKind, RegistryError, Surface, VersionInfo,
    VersionState,
};
use crate::route;
use crate::runs::workflows::{PortInput, StepState, TaskSpec, WorkflowInfo, WorkflowSpec};

/// The namespace every task lives in.
pub const NAMESPACE: &str = crate::registry::GBDX_NAMESPACE;
/// The pipeline type of a task (`plugins/task`).
pub const TASK_TYPE: &str = "task";
const DEFINITION_FILE: &str = "task.json";
const COMPONENT_FILE: &str = "component.wasm";

pub fn routes() -> Routes {
    let routes = Routes::new("gbdx")
        .with_error_shape(|status, message| Violation::Other(status, message).into_response());
    let routes = route!(routes, "/workflows/v1/tasks", post(register).get(list));
    let routes = route!(
        routes,
        "/workflows/v1/tasks/{task}",
        get(get_task).put(replace).delete(delete)
    );
    let routes = route!(routes, "/workflows/v1/workflows", post(submit_workflow));
    route!(routes, "/workflows/v1/workflows/{id}", get(get_workflow))
}

/// Every refusal of this surface.
#[derive(Debug, PartialEq, Eq)]
pub enum Violation {
    Unauthenticated,
    /// Another account owns the name (any refusal of the core's forbidden family).
    NotOwner,
    /// The same version number again (the seed: "doesn't increment").
    NotIncremented,
    /// A number lower than the last registered.
    LowerThanLatest,
    /// GET of a version (or, with nothing ready, of a name) still registering.
    Registering(String),
    DeleteWhileRegistering(String),
    FailedRegistration(String),
    OwnerEmailMissing,
    VersionNotQuoted,
    /// A field the request must carry: `name`, `version`.
    Missing(&'static str),
    DeleteNeedsVersion,
    /// A PUT that would change the name or version.
    NameOrVersionChanged,
    /// Any other refusal of the core: not found, or a conflict.
    Refused(Refusal),
    /// Any other rule, worded by whoever made it (a policy, the type handler, the core).
    Other(StatusCode, String),
}

impl Violation {
    /// The status and the exact text: the seed's wording, its typos kept.
    pub fn wording(&self) -> (StatusCode, String) {
        use Violation::*;
        match self {
            Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "A valid API token is required".into(),
            ),
            NotOwner => (StatusCode::FORBIDDEN, "Forbidden".into()),
            NotIncremented => (
                StatusCode::BAD_REQUEST,
                "The version number must be incremented".into(),
            ),
            LowerThanLatest => (
                StatusCode::BAD_REQUEST,
                "The version number be incremented".into(),
            ),
            Registering(name) => (
                StatusCode::FORBIDDEN,
                format!("{name} has been submitted for registration"),
            ),
            DeleteWhileRegistering(name) => (
                StatusCode::FORBIDDEN,
                format!("Cannot Delete {name} until Migration is Complete"),
            ),
            FailedRegistration(name) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{name} has failed registration."),
            ),
            OwnerEmailMissing => (
                StatusCode::BAD_REQUEST,
                "taskOwnerEmail is a required field".into(),
            ),
            VersionNotQuoted => (
                StatusCode::BAD_REQUEST,
                "The version number must be enclosed in quotes".into(),
            ),
            Missing(field) => (
                StatusCode::BAD_REQUEST,
                format!("{field} is a required field"),
            ),
            DeleteNeedsVersion => (
                StatusCode::BAD_REQUEST,
                "A request to delete a task must include the task's version number".into(),
            ),
            NameOrVersionChanged => (
                StatusCode::BAD_REQUEST,
                "The name and version number of a task cannot be changed".into(),
            ),
            Refused(refusal) => {
                let (status, _, message) = super::error::refusal_wording(refusal);
                (status, message)
            }
            Other(status, message) => (*status, message.clone()),
        }
    }

    /// Words a refusal of the core. `deleting` picks the seed's delete-time message.
    fn from_core(error: RegistryError, deleting: bool) -> Self {
        match error {
            RegistryError::Unauthenticated => Violation::Unauthenticated,
            RegistryError::Refused(refusal) => match refusal.kind() {
                RefusalKind::Forbidden => Violation::NotOwner,
                RefusalKind::NotFound | RefusalKind::Conflict => Violation::Refused(refusal),
            },
            RegistryError::NotReady { name, state, .. } => match state {
                VersionState::Failed => Violation::FailedRegistration(name),
                _ if deleting => Violation::DeleteWhileRegistering(name),
                _ => Violation::Registering(name),
            },
            RegistryError::Invalid(findings) => {
                let first = findings.into_iter().next();
                match first.as_ref().map(|f| f.code.as_str()) {
                    Some("name-or-version-changed") => Violation::NameOrVersionChanged,
                    Some("version-not-incremented") => Violation::NotIncremented,
                    Some("version-lower-than-latest") => Violation::LowerThanLatest,
                    Some("task-owner-email-missing") => Violation::OwnerEmailMissing,
                    _ => Violation::Other(
                        StatusCode::BAD_REQUEST,
                        first
                            .map(|f| f.message)
                            .unwrap_or_else(|| "invalid task".into()),
                    ),
                }
            }
            RegistryError::QuotaExceeded(quota) => {
                Violation::Other(StatusCode::PAYLOAD_TOO_LARGE, quota.to_string())
            }
            RegistryError::Plugin(error) => {
                Violation::Other(StatusCode::BAD_GATEWAY, error.to_string())
            }
            RegistryError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Violation::Other(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error; see the server log".into(),
                )
            }
        }
    }
}

impl IntoResponse for Violation {
    fn into_response(self) -> Response {
        let (status, message) = self.wording();
        // `request_id` beside the seed's one field: clients read `Error` and ignore the rest.
        let body = match super::request_id::current() {
            Some(request_id) => json!({ "Error": message, "request_id": request_id }),
            None => json!({ "Error": message }),
        };
        (status, Json(body)).into_response()
    }
}

type Answer<T> = Result<T, Violation>;

async fn caller(state: &AppState, headers: &HeaderMap) -> Answer<Caller> {
    let token = super::bearer_token(headers).ok_or(Violation::Unauthenticated)?;
    let caller = state
        .registry
        .authenticate(token)
        .await
        .map_err(|e| Violation::from_core(e, false))?;
    tracing::Span::current().record("user", caller.user.as_str());
    Ok(caller)
}

/// `name` or `name:version`.
fn reference(path: Result<Path<String>, PathRejection>) -> Answer<(String, Option<String>)> {
    let Path(task) =
        path.map_err(|rejection| Violation::Other(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    Ok(match task.split_once(':') {
        Some((name, version)) => (name.to_string(), Some(version.to_string())),
        None => (task, None),
    })
}

fn definition(bytes: &Bytes) -> Answer<serde_json::Map<String, Value>> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Violation::Other(
            StatusCode::BAD_REQUEST,
            "The task definition must be a JSON object".into(),
        )),
        Err(e) => Err(Violation::Other(
            StatusCode::BAD_REQUEST,
            format!("The task definition is not valid JSON: {e}"),
        )),
    }
}

/// The version as a quoted string: the seed's rule 2.
fn quoted_version(task: &serde_json::Map<String, Value>) -> Answer<String> {
    match task.get("version") {
        Some(Value::String(version)) if !version.trim().is_empty() => Ok(version.clone()),
        Some(Value::Number(_)) => Err(Violation::VersionNotQuoted),
        _ => Err(Violation::Missing("version")),
    }
}

/// Where a task's content comes from, the definition as stored (an upload's bytes replaced by
/// their digest: the core keeps them in the blob store once the registration is accepted), and
/// those uploaded bytes.
fn content_source(
    task: &mut serde_json::Map<String, Value>,
) -> Answer<(ContentSource, Option<Vec<u8>>)> {
    let containers = task
        .get_mut("containerDescriptors")
        .and_then(Value::as_array_mut);
    let wasm = containers.and_then(|list| {
        list.iter_mut()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("WASM"))
    });
    let Some(wasm) = wasm else {
        // DOCKER: nothing this server can fetch; the definition is still registered and checked.
        let source = ContentSource {
            location: SourceLocation::Nothing,
            digest: None,
            path: COMPONENT_FILE.into(),
            compile: false,
        };
        return Ok((source, None));
    };
    let bad = |message: &str| Violation::Other(StatusCode::BAD_REQUEST, message.into());
    let properties = wasm
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| bad("A WASM container needs properties.url or properties.upload"))?;
    let digest = properties
        .get("digest")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (location, upload) = match (properties.get("url"), properties.get("upload")) {
        (Some(Value::String(url)), None) => (SourceLocation::Url { url: url.clone() }, None),
        (None, Some(Value::String(upload))) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(upload)
                .map_err(|e| bad(&format!("properties.upload is not base64: {e}")))?;
            let digest = crate::blobs::digest_of(&bytes);
            properties.insert("upload".into(), Value::String(digest.clone()));
            (SourceLocation::Blob { digest }, Some(bytes))
        }
        _ => {
            return Err(bad(
                "A WASM container needs exactly one of properties.url and properties.upload",
            ))
        }
    };
    let source = ContentSource {
        location,
        digest,
        path: COMPONENT_FILE.into(),
        compile: true,
    };
    Ok((source, upload))
}

/// `POST /tasks`: registers a task version. 200, as the original service answered (its clients
/// take any other status for a failed registration), while the version is still `registering`.
async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<(StatusCode, Json<Value>)> {
    let caller = caller(&state, &headers).await?;
    let mut task = definition(&bytes)?;
    let name = match task.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        _ => return Err(Violation::Missing("name")),
    };
    let version = quoted_version(&task)?;
    // The task type handler owns this rule (and answers it on PUT), but a registration's content
    // is validated only in the worker, once fetched: the seed's 400 at the request is answered
    // here, before anything is queued.
    if task
        .get("taskOwnerEmail")
        .and_then(Value::as_str)
        .is_none_or(|email| email.trim().is_empty())
    {
        return Err(Violation::OwnerEmailMissing);
    }
    let (source, source_upload) = content_source(&mut task)?;
    let description = task
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let definition = Value::Object(task);
    let new = NewVersion {
        version,
        description,
        files: vec![(DEFINITION_FILE.into(), definition.to_string().into_bytes())],
        definition,
        source: Some(source),
        source_upload,
        create_as_type: Some(TASK_TYPE.into()),
    };
    let registered = state
        .registry
        .register_version(&caller, NAMESPACE, &name, new, Surface::Gbdx)
        .await
        .map_err(|e| Violation::from_core(e, false))?;
    Ok((StatusCode::OK, Json(task_body(&registered))))
}

/// `GET /tasks`: every ready version, each as `name:version`.
async fn list(State(state): State<AppState>, headers: HeaderMap) -> Answer<Response> {
    caller(&state, &headers).await?;
    let listing = state
        .registry
        .ready_versions_in(NAMESPACE)
        .await
        .map_err(|e| Violation::from_core(e, false))?;
    let body = state.gbdx_listing.body_for(&listing);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The last `GET /tasks` body, kept while the registry hands out the same listing snapshot:
/// a large registry is not formatted and serialized again on every request.
#[derive(Default)]
pub struct ListingBody {
    last: std::sync::Mutex<Option<(Listing, Bytes)>>,
}

impl ListingBody {
    fn body_for(&self, listing: &Listing) -> Bytes {
        let mut last = self.last.lock().unwrap();
        if let Some((cached, body)) = last.as_ref() {
            if std::sync::Arc::ptr_eq(cached, listing) {
                return body.clone();
            }
        }
        let tasks: Vec<String> = listing
            .iter()
            .map(|(name, version)| format!("{name}:{version}"))
            .collect();
        let body = Bytes::from(json!({ "tasks": tasks }).to_string());
        *last = Some((listing.clone(), body.clone()));
        body
    }
}

/// `GET /tasks/{name}` (latest ready) or `/tasks/{name}:{version}`. A version still registering
/// (or failed) is the seed's error, with the version's `registration` beside it: its attempts
/// and last error are what the caller needs to see why it is not ready yet.
async fn get_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Response> {
    let caller = caller(&state, &headers)
        .await
        .map_err(|v| v.into_response())?;
    let (name, version) = reference(path).map_err(|v| v.into_response())?;
    let error = match state
        .registry
        .resolve(NAMESPACE, &name, version.as_deref())
        .await
    {
        Ok(resolved) => return Ok(Json(task_body(&resolved))),
        Err(error) => error,
    };
    let registration = match &error {
        RegistryError::NotReady { name, version, .. } => state
            .registry
            .version(&caller, NAMESPACE, name, Some(version))
            .await
            .ok()
            .map(|info| registration_body(&info)),
        _ => None,
    };
    let violation = Violation::from_core(error, false);
    match registration {
        Some(registration) => {
            let (status, message) = violation.wording();
            let body = json!({ "Error": message, "registration": registration });
            Err((status, Json(body)).into_response())
        }
        None => Err(violation.into_response()),
    }
}

/// `PUT /tasks/{name}:{version}`: a new definition; never a new name or version.
async fn replace(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> Answer<Json<Value>> {
    let caller = caller(&state, &headers).await?;
    let (name, version) = reference(path)?;
    let version = version.ok_or(Violation::Other(
        StatusCode::BAD_REQUEST,
        "A request to update a task must include the task's version number".into(),
    ))?;
    let mut task = definition(&bytes)?;
    // A definition without them gets them; one that names others is refused by the core
    // (`name-or-version-changed`), which stores them spelled as the version is.
    task.entry("name")
        .or_insert_with(|| Value::String(name.clone()));
    task.entry("version")
        .or_insert_with(|| Value::String(version.clone()));
    let description = task
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let definition = Value::Object(task);
    let replacement = Definition {
        files: Vec::new(),
        definition_file: Some(DEFINITION_FILE.into()),
        definition,
        description,
    };
    let updated = state
        .registry
        .replace_definition(
            &caller,
            NAMESPACE,
            &name,
            &version,
            replacement,
            Surface::Gbdx,
        )
        .await
        .map_err(|e| Violation::from_core(e, false))?;
    Ok(Json(task_body(&updated)))
}

/// `DELETE /tasks/{name}:{version}`: the version is mandatory.
async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Answer<Json<Value>> {
    let caller = caller(&state, &headers).await?;
    let (name, version) = reference(path)?;
    let version = version
        .filter(|v| !v.is_empty())
        .ok_or(Violation::DeleteNeedsVersion)?;
    state
        .registry
        .delete_version(&caller, NAMESPACE, &name, &version, Surface::Gbdx)
        .await
        .map_err(|e| Violation::from_core(e, true))?;
    Ok(Json(json!({ "deleted": format!("{name}:{version}") })))
}

/// `POST /workflows`: tasks named by `taskType` (`name` or `name:version`, or `name` with a
/// `version` attribute), inputs given a `value` or wired from a `source` (`task:port`).
async fn submit_workflow(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<(StatusCode, Json<Value>)> {
    let caller = caller(&state, &headers).await?;
    let workflow = definition(&bytes)?;
    let bad = |message: String| Violation::Other(StatusCode::BAD_REQUEST, message);
    let listed = workflow
        .get("tasks")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("A workflow needs a `tasks` list".into()))?;
    let mut tasks = Vec::with_capacity(listed.len());
    for task in listed {
        let field = |key: &str| task.get(key).and_then(Value::as_str).map(str::to_string);
        let task_type =
            field("taskType").ok_or_else(|| bad("Every task needs a `taskType`".into()))?;
        let (registered, pinned) = match task_type.split_once(':') {
            Some((name, version)) => (name.to_string(), Some(version.to_string())),
            None => (task_type.clone(), field("version")),
        };
        let inputs: Vec<PortInput> = match task.get("inputs") {
            None | Some(Value::Null) => Vec::new(),
            Some(inputs) => serde_json::from_value(inputs.clone()).map_err(|_| {
                bad(format!(
                    "The inputs of task `{task_type}` must be a list of {{name, value}} or {{name, source}}"
                ))
            })?,
        };
        tasks.push(TaskSpec {
            name: field("name").unwrap_or_else(|| registered.clone()),
            task: registered,
            version: pinned,
            inputs,
        });
    }
    let spec = WorkflowSpec {
        name: workflow
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string),
        tasks,
    };
    let submitted = state
        .runs
        .submit_workflow(&caller, NAMESPACE, spec)
        .await
        .map_err(|e| Violation::from_core(e, false))?;
    Ok((StatusCode::CREATED, Json(workflow_body(&submitted))))
}

/// `GET /workflows/{id}`: the workflow's state and each task's state and outputs.
async fn get_workflow(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Answer<Json<Value>> {
    let caller = caller(&state, &headers).await?;
    let Path(id) = path.map_err(|r| Violation::Other(StatusCode::BAD_REQUEST, r.body_text()))?;
    let workflow = state
        .runs
        .workflow(&caller, &id)
        .await
        .map_err(|e| Violation::from_core(e, false))?;
    Ok(Json(workflow_body(&workflow)))
}

/// GBDX's `{state, event}` pair for a workflow or task state.
fn gbdx_state(state: StepState) -> Value {
    let (state, event) = match state {
        StepState::Pending => ("pending", "submitted"),
        StepState::Running => ("running", "started"),
        StepState::Succeeded => ("complete", "succeeded"),
        StepState::Skipped => ("complete", "cancelled"),
        StepState::Failed => ("complete", "failed"),
    };
    json!({ "state": state, "event": event })
}

fn workflow_body(workflow: &WorkflowInfo) -> Value {
    let tasks: Vec<Value> = workflow
        .tasks
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "taskType": format!("{}:{}", t.task, t.version),
                "state": gbdx_state(t.state),
                "inputs": t.inputs,
                "outputs": t.outputs,
                "note": t.error,
            })
        })
        .collect();
    json!({
        "id": workflow.id,
        "name": workflow.name,
        "owner": workflow.submitted_by,
        "submitted_time": workflow.created_at_ms,
        "completed_time": workflow.finished_at_ms,
        "state": gbdx_state(workflow.state),
        "error": workflow.error,
        "tasks": tasks,
    })
}

/// A task as stored, with where its registration is.
fn task_body(version: &VersionInfo) -> Value {
    let mut body = match &version.definition {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    body.insert("name".into(), Value::String(version.name.clone()));
    body.insert("version".into(), Value::String(version.version.clone()));
    body.insert("registration".into(), registration_body(version));
    Value::Object(body)
}

/// Where a version's registration is: state, attempts, last error, approvals, digest.
fn registration_body(version: &VersionInfo) -> Value {
    json!({
        "state": version.state,
        "attempts": version.registration.attempts,
        "lastError": version.registration.last_error,
        "approvedBy": version.approved_by,
        "contentDigest": version.content_digest,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::error::tests::{answer_of, rows};

    /// The refusals of the core this surface words: the seed's where it has words (its
    /// "403: Forbidden" for every refusal of the forbidden family), the native ones elsewhere.
    #[tokio::test]
    async fn every_refusal_of_the_core_answers_as_the_table_says() {
        let seed: &[(&str, u16, &str)] = &[
            ("namespace-reserved", 403, "Forbidden"),
            ("not-a-member", 403, "Forbidden"),
            ("namespace-of-another-account", 403, "Forbidden"),
            ("not-an-admin", 403, "Forbidden"),
            ("workflow-of-another-account", 403, "Forbidden"),
        ];
        for (refusal, status, message) in rows(seed) {
            let code = refusal.code();
            let violation = Violation::from_core(refusal.into(), false);
            assert_eq!(
                answer_of(violation.into_response()).await,
                (status, json!({ "Error": message })),
                "{code}"
            );
        }
    }
}
