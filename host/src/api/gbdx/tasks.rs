//! GBDX tasks: register, list, get, replace and delete versions in the shared namespace
//! ([`NAMESPACE`]), over the registry core.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{
    caller, json_object, reference, Answer, ErrorBody, Violation, COMPONENT_FILE, DEFINITION_FILE,
    NAMESPACE, TASK_TYPE,
};
use crate::api::AppState;
use crate::registry::content_sources::{ContentSource, SourceLocation};
use crate::registry::resolve::{ListedPipeline, Listing};
use crate::registry::{Definition, NewVersion, RegistryError, Surface, VersionInfo, VersionState};

// The patterns below are the core's rules as regular expressions (utoipa takes literals only):
// a name (`registry::names`: 1 to 128 characters, no `/`, `:`, whitespace or control character),
// a semantic version (semver.org's expression, as `policy-semver` takes it), an e-mail address.

/// A task definition, as the seed shows it. The request checks `name`, `version`,
/// `taskOwnerEmail` and, for a `WASM` container, that its `url` may be fetched or its `upload`
/// is base64; the rest (ports, containers: see [`TaskReplacement`]) is checked by the
/// registration, which fails the version when they are wrong. Other fields are kept as given.
#[derive(ToSchema)]
#[allow(dead_code)] // the document's description of what `register` reads
pub struct TaskDefinition {
    /// Case-insensitive; the first account to register it owns it.
    #[schema(pattern = r"^[^/:\s\u0000-\u001f\u007f-\u009f]{1,128}$")]
    name: String,
    /// A string (the seed: "enclosed in quotes"), a semantic version higher than every version
    /// of the name registered before (else 400 "The version number must be incremented").
    #[schema(
        pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
        max_length = 128
    )]
    version: String,
    #[schema(rename = "taskOwnerEmail", pattern = r"^[^@\s]+@[^@\s]+$")]
    task_owner_email: String,
    description: Option<serde_json::Value>,
    #[schema(rename = "inputPortDescriptors")]
    input_port_descriptors: Option<serde_json::Value>,
    #[schema(rename = "outputPortDescriptors")]
    output_port_descriptors: Option<serde_json::Value>,
    /// See [`ContainerDescriptor`].
    #[schema(rename = "containerDescriptors")]
    container_descriptors: Option<serde_json::Value>,
}

/// A new definition for `PUT`, checked in full at the request: `name` and `version` are the
/// path's (others are a 400).
#[derive(ToSchema)]
#[allow(dead_code)] // the document's description of what `replace` reads
pub struct TaskReplacement {
    #[schema(pattern = r"^[^/:\s\u0000-\u001f\u007f-\u009f]{1,128}$")]
    name: Option<String>,
    #[schema(
        pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
        max_length = 128
    )]
    version: Option<String>,
    #[schema(rename = "taskOwnerEmail", pattern = r"^[^@\s]+@[^@\s]+$")]
    task_owner_email: String,
    description: Option<String>,
    #[schema(rename = "inputPortDescriptors")]
    input_port_descriptors: Option<Vec<PortDescriptor>>,
    #[schema(rename = "outputPortDescriptors")]
    output_port_descriptors: Option<Vec<PortDescriptor>>,
    #[schema(rename = "containerDescriptors", min_items = 1)]
    container_descriptors: Vec<ContainerDescriptor>,
}

/// A port: its name, unique among the task's inputs (or outputs) whatever its case.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
pub struct PortDescriptor {
    #[schema(min_length = 1)]
    name: String,
    #[schema(rename = "type")]
    port_type: Option<String>,
    description: Option<String>,
    required: Option<bool>,
}

/// Where a task's content is: a `DOCKER` image (kept and checked, not run here), or a `WASM`
/// component by `url` (http, https, or a file under the operator's root, that the server may
/// fetch) or by `upload` (base64), with an optional `digest` (`sha256:…`).
#[derive(serde::Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documentation only
pub enum ContainerDescriptor {
    #[schema(title = "DOCKER")]
    Docker {
        #[schema(rename = "type", pattern = "^DOCKER$")]
        container_type: String,
        properties: DockerProperties,
    },
    #[schema(title = "WASM")]
    Wasm {
        #[schema(rename = "type", pattern = "^WASM$")]
        container_type: String,
        properties: WasmProperties,
    },
}

#[derive(serde::Deserialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct DockerProperties {
    #[schema(min_length = 1)]
    image: String,
}

/// Exactly one of `url` and `upload`.
#[derive(serde::Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documentation only
pub enum WasmProperties {
    #[schema(title = "url")]
    Url {
        url: String,
        #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
        digest: Option<String>,
    },
    #[schema(title = "upload")]
    Upload {
        #[schema(content_encoding = "base64")]
        upload: String,
        #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
        digest: Option<String>,
    },
}

/// A task as stored: every field of its definition as given (ports, container descriptors,
/// `taskOwnerEmail`, ...), with its `name`, `version` and where its registration is.
#[derive(ToSchema)]
#[allow(dead_code)] // the document's description of `task_body`'s answer
pub struct TaskBody {
    name: String,
    version: String,
    registration: RegistrationBody,
}

/// Where a version's registration is.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationBody {
    state: VersionState,
    attempts: i64,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// The policies (`name@version`) that approved it.
    approved_by: Vec<String>,
    /// `sha256:…` of its content, once fetched.
    content_digest: Option<String>,
}

/// A version still registering, or failed: the seed's error, with the version's registration
/// beside it when it can be read.
#[derive(ToSchema)]
#[allow(dead_code)] // the document's description of `get_task`'s refusal
pub struct NotReadyBody {
    #[schema(rename = "Error")]
    error: String,
    registration: Option<RegistrationBody>,
}

/// `{"tasks": ["name:version", ...]}`.
#[derive(ToSchema)]
#[allow(dead_code)] // the document's description of `ListingBody`'s bytes
pub struct TaskList {
    tasks: Vec<String>,
}

/// `{"deleted": "name:version"}`.
#[derive(ToSchema)]
#[allow(dead_code)] // the document's description of `delete`'s answer
pub struct Deleted {
    deleted: String,
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
#[utoipa::path(post, path = "/workflows/v1/tasks", tag = "tasks",
    request_body(content = TaskDefinition, content_type = "application/json"),
    responses((status = 200, body = TaskBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "another account owns the name", body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 502, description = "a plugin failed", body = ErrorBody)))]
pub(super) async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<(StatusCode, Json<Value>)> {
    let caller = caller(&state, &headers).await?;
    let mut task = json_object(&bytes, "The task definition")?;
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
#[utoipa::path(get, path = "/workflows/v1/tasks", tag = "tasks",
    responses((status = 200, body = TaskList), (status = 401, body = ErrorBody)))]
pub(super) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Answer<Response> {
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
/// a large registry is not formatted and serialized again on every request. After a change,
/// the body is put together again from each pipeline's part, formatted anew only for the
/// pipelines the change replaced (the registry shares the others between listings).
#[derive(Default)]
pub struct ListingBody {
    last: std::sync::Mutex<Option<LastBody>>,
}

struct LastBody {
    listing: Listing,
    body: Bytes,
    /// By pipeline id: the pipeline as listed, and its names as JSON strings, comma-separated.
    parts: HashMap<Arc<str>, (Arc<ListedPipeline>, String)>,
}

impl ListingBody {
    fn body_for(&self, listing: &Listing) -> Bytes {
        let mut last = self.last.lock().unwrap();
        if let Some(last) = last.as_ref() {
            if Arc::ptr_eq(&last.listing, listing) {
                return last.body.clone();
            }
        }
        let mut before = last.take().map(|last| last.parts).unwrap_or_default();
        let mut parts = HashMap::with_capacity(before.len());
        let mut body = String::from("{\"tasks\":[");
        let mut first = true;
        for pipeline in listing.pipelines() {
            let part = match before.remove(&pipeline.pipeline_id) {
                Some((listed, part)) if Arc::ptr_eq(&listed, pipeline) => part,
                _ => task_names(pipeline),
            };
            if part.is_empty() {
                continue;
            }
            if !first {
                body.push(',');
            }
            first = false;
            body.push_str(&part);
            parts.insert(pipeline.pipeline_id.clone(), (pipeline.clone(), part));
        }
        body.push_str("]}");
        let body = Bytes::from(body);
        *last = Some(LastBody {
            listing: listing.clone(),
            body: body.clone(),
            parts,
        });
        body
    }
}

/// A pipeline's `name:version`s as JSON strings, comma-separated.
fn task_names(pipeline: &ListedPipeline) -> String {
    pipeline
        .versions
        .iter()
        .map(|version| Value::String(format!("{}:{version}", pipeline.name)).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `GET /tasks/{name}` (latest ready) or `/tasks/{name}:{version}`. A version still registering
/// (or failed) is the seed's error, with the version's `registration` beside it: its attempts
/// and last error are what the caller needs to see why it is not ready yet.
#[utoipa::path(get, path = "/workflows/v1/tasks/{task}", tag = "tasks",
    params(("task" = String, Path, description = "`name` (the latest ready version) or `name:version`")),
    responses((status = 200, body = TaskBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "the version is still registering", body = NotReadyBody),
              (status = 404, body = ErrorBody),
              (status = 500, description = "the version failed registration", body = NotReadyBody)))]
pub(super) async fn get_task(
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
#[utoipa::path(put, path = "/workflows/v1/tasks/{task}", tag = "tasks",
    params(("task" = String, Path, description = "`name:version`", pattern = r"^[^:]+:.+$")),
    request_body(content = TaskReplacement, content_type = "application/json"),
    responses((status = 200, body = TaskBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "another account's task, or still registering", body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 500, description = "the version failed registration", body = ErrorBody),
              (status = 502, description = "a plugin failed", body = ErrorBody)))]
pub(super) async fn replace(
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
    let mut task = json_object(&bytes, "The task definition")?;
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
#[utoipa::path(delete, path = "/workflows/v1/tasks/{task}", tag = "tasks",
    params(("task" = String, Path, description = "`name:version`", pattern = r"^[^:]+:.+$")),
    responses((status = 200, body = Deleted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "another account's task, or still registering", body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn delete(
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
    let body = RegistrationBody {
        state: version.state,
        attempts: version.registration.attempts,
        last_error: version.registration.last_error.clone(),
        approved_by: version.approved_by.clone(),
        content_digest: version.content_digest.clone(),
    };
    serde_json::to_value(body).expect("a registration serializes")
}
