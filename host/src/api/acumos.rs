//! The Acumos ML Workbench pipeline service under `/mlWorkbench/v1/pipeline`: the routes and wire
//! objects of the original service, over the registry's workbench core
//! ([`crate::registry::workbench`]).
//!
//! Errors are what the original sends: a Pipeline holding only
//! `serviceStatus { status: "ERROR", statusMessage }`. The message of each check is the seed's,
//! verbatim, per operation: [`wording`] is that table (one test per row in `tests/e2e`).
//!
//! Who is calling: the `{authenticatedUserId}` of the path must be the caller, known from a
//! bearer token or, only when the server was started with `--trust-gateway-header`, from the
//! gateway's header. A caller who is not that user is refused before anything is read.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::routes::Routes;
use super::time::{iso_instant, sql_timestamp};
use super::AppState;
use crate::registry::workbench::{NewRecord, RecordUpdate, WorkbenchError, WorkbenchPipeline};
use crate::registry::{Caller, Refusal as CoreRefusal, RefusalKind, RegistryError};
use crate::route;

pub const PREFIX: &str = "/mlWorkbench/v1/pipeline";

pub fn routes() -> Routes {
    let user = format!("{PREFIX}/users/{{user_id}}");
    let project = format!("{user}/projects/{{project_id}}");
    let mut routes = Routes::new("acumos");
    // The same operations stand alone and under a project; list and create also answer with
    // the trailing slash the original's clients send.
    for base in [&user, &project] {
        routes = route!(routes, &format!("{base}/pipelines"), post(create).get(list));
        routes = route!(
            routes,
            &format!("{base}/pipelines/"),
            post(create).get(list)
        );
        routes = route!(
            routes,
            &format!("{base}/pipelines/{{pipeline_id}}/launch"),
            get(launch)
        );
        routes = route!(
            routes,
            &format!("{base}/pipelines/{{pipeline_id}}/{{action}}"),
            put(archive)
        );
    }
    routes = route!(
        routes,
        &format!("{user}/pipelines/{{pipeline_id}}"),
        get(get_one)
            .put(update)
            .delete(delete)
            .post(creation_status)
    );
    // The original service's delete route was spelled this way; old clients still call it.
    routes = route!(
        routes,
        &format!("{user}/pipeliens/{{pipeline_id}}"),
        delete(delete)
    );
    route!(
        routes,
        &format!("{project}/pipelines/{{pipeline_id}}"),
        put(update)
            .delete(delete_project_association)
            .post(creation_status)
    )
}

// ---------------------------------------------------------------------------------------------
// Wire objects (the original's `workbench-common` value objects; nulls omitted).

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<User>,
    /// In: `{"projects": [{"projectId": Identifier}]}`; out: `{"projects": [Identifier]}`, as
    /// the original (de)serializes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Value>,
    /// `Jupyter`, `Zeppelin`, or the display name of any other type handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_status: Option<ServiceState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_status: Option<ArtifactState>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_url: Option<String>,
}

/// All strings, as in the original: `creationTimeStamp` is an ISO-8601 instant,
/// `modifiedTimeStamp` is `yyyy-MM-dd HH:mm:ss.SSS` (UTC here).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time_stamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_time_stamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated_user_id: Option<String>,
}

/// `status` is one of ACTIVE, INACTIVE, FAILED, EXCEPTION, INPROGRESS, COMPLETED, ERROR.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// On an ERROR only: the request's id (`x-request-id`), beside the original's fields, in
    /// their camelCase; what finds the refusal in the server log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `status` is ACTIVE or ARCHIVED.
#[derive(Debug, Deserialize, Serialize)]
pub struct ArtifactState {
    pub status: String,
}

impl Pipeline {
    fn name(&self) -> Option<String> {
        self.pipeline_id.as_ref()?.name.clone()
    }

    fn version_label(&self) -> Option<String> {
        self.pipeline_id
            .as_ref()?
            .version_id
            .as_ref()?
            .label
            .clone()
    }

    /// The first project named in the body, in the original's input shape or its output shape.
    fn project_uuid(&self) -> Option<String> {
        let first = self.projects.as_ref()?.get("projects")?.get(0)?;
        first
            .pointer("/projectId/uuid")
            .or_else(|| first.get("uuid"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The wire form of a record, with `serviceStatus` COMPLETED: the operation is done.
    fn of(record: &WorkbenchPipeline) -> Self {
        let projects = record.project_id.as_ref().map(|id| {
            serde_json::json!({ "projects": [{
                "uuid": id,
                "name": record.project_name,
                "identifierType": "PROJECT",
            }]})
        });
        Pipeline {
            pipeline_id: Some(Identifier {
                uuid: Some(record.id.clone()),
                name: Some(record.name.clone()),
                identifier_type: Some("PIPELINE".into()),
                metrics: None,
                version_id: Some(Version {
                    comment: None,
                    label: record.version.clone(),
                    creation_time_stamp: Some(iso_instant(record.created_at_ms)),
                    modified_time_stamp: Some(sql_timestamp(record.modified_at_ms)),
                    user: Some(record.owner_id.clone()),
                }),
                repository_url: Some(record.repository_url.clone()),
                service_url: record.service_url.clone(),
            }),
            description: record.description.clone(),
            owner: Some(User {
                user_id: Some(Identifier {
                    uuid: Some(record.owner_id.clone()),
                    name: Some(record.owner.clone()),
                    identifier_type: Some("USER".into()),
                    ..Identifier::default()
                }),
                authenticated_user_id: Some(record.owner.clone()),
            }),
            projects,
            pipeline_type: Some(record.pipeline_type.clone()),
            kernel_type: record.kernel_type.clone(),
            service_status: Some(ServiceState {
                status: "COMPLETED".into(),
                status_message: None,
                request_id: None,
            }),
            artifact_status: Some(ArtifactState {
                status: if record.archived {
                    "ARCHIVED"
                } else {
                    "ACTIVE"
                }
                .into(),
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The seed's checks and their wording.

/// The operations of the seed (and the original service's get-one and delete).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Launch,
    List,
    Update,
    Archive,
    Get,
    Delete,
    DeleteProjectAssociation,
}

/// Every check of the seed that refuses a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    InvalidJson,
    UserIdMissing,
    PermissionDenied,
    PipelineIdMissing,
    NameMissing,
    InvalidName,
    InvalidVersion,
    TypeMissing,
    InvalidType,
    ProjectNotFound,
    Duplicate,
    Archived,
    PipelineNotFound,
    InvalidAction,
}

/// The status and the exact message of a refused check, per operation: the seed's words where
/// it has them (with its 404 where it says so, another fitting 4xx where it says "4xx"), the
/// original service's where the seed is silent.
pub fn wording(op: Op, check: Check) -> (StatusCode, &'static str) {
    use Check::*;
    use Op::*;
    const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;
    const CONFLICT: StatusCode = StatusCode::CONFLICT;
    match (op, check) {
        (_, InvalidJson) => (BAD, "Incorrectly formatted input – Invalid JSON"),
        // Create says 4xx; every other operation says 404.
        (Create, UserIdMissing) => (BAD, "Acumos User Id missing"),
        (_, UserIdMissing) => (NOT_FOUND, "Acumos User Id missing"),
        (Launch | List, PermissionDenied) => (FORBIDDEN, "Permissions denied"),
        (_, PermissionDenied) => (FORBIDDEN, "Permission denied"),
        (_, PipelineIdMissing) => (NOT_FOUND, "Pipeline Id missing"),
        (_, NameMissing) => (BAD, "Pipeline Name missing"),
        (_, InvalidName) => (BAD, "Invalid Pipeline name"),
        (_, InvalidVersion) => (BAD, "Invalid Pipeline version"),
        (_, TypeMissing) => (BAD, "Missing mandatory field – pipeline type"),
        (_, InvalidType) => (BAD, "Invalid pipeline type provided"),
        (Create, ProjectNotFound) => (NOT_FOUND, "ProjectId does not exist."),
        (Update, ProjectNotFound) => (NOT_FOUND, "Project Id is invalid"),
        (_, ProjectNotFound) => (NOT_FOUND, "Project Id does not exists"),
        (Update, Duplicate) => (
            CONFLICT,
            "Pipeline name and version already exists for user",
        ),
        (_, Duplicate) => (
            CONFLICT,
            "Pipeline name and version already exists for this user",
        ),
        (Update, Archived) => (CONFLICT, "Update not allowed – pipeline is archived"),
        (_, Archived) => (CONFLICT, "Cannot launch – pipeline is archived"),
        (Launch, PipelineNotFound) => (NOT_FOUND, "Pipeline not found"),
        (_, PipelineNotFound) => (NOT_FOUND, "Requested Pipeline Not found"),
        (_, InvalidAction) => (
            BAD,
            "Invalid action type: use A to archive or UA to unarchive",
        ),
    }
}

/// A refused request: `{"serviceStatus": {"status": "ERROR", "statusMessage": …}}`.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: Cow<'static, str>,
}

impl Refusal {
    fn of(op: Op, check: Check) -> Self {
        let (status, message) = wording(op, check);
        Refusal {
            status,
            message: message.into(),
        }
    }

    /// Words a refusal of the core.
    fn from_core(op: Op, error: WorkbenchError) -> Self {
        let check = match error {
            WorkbenchError::PipelineNotFound => Check::PipelineNotFound,
            WorkbenchError::ProjectNotFound(_) => Check::ProjectNotFound,
            WorkbenchError::OwnsNeither { .. } | WorkbenchError::NotAllowed { .. } => {
                Check::PermissionDenied
            }
            WorkbenchError::Archived(_) => Check::Archived,
            WorkbenchError::Duplicate { .. } => Check::Duplicate,
            WorkbenchError::LaunchFailed { code, message } => {
                return Refusal {
                    status: StatusCode::BAD_GATEWAY,
                    message: format!("Pipeline launch failed ({code}): {message}").into(),
                }
            }
            WorkbenchError::Registry(error) => return Refusal::from_registry(op, error),
        };
        Refusal::of(op, check)
    }

    fn from_registry(op: Op, error: RegistryError) -> Self {
        let check = match error {
            RegistryError::Invalid(findings) => {
                let Some(first) = findings.into_iter().next() else {
                    return Refusal::of(op, Check::InvalidJson);
                };
                match (first.code.as_str(), first.field.as_deref()) {
                    ("name-missing", _) => Check::NameMissing,
                    ("type-missing", _) => Check::TypeMissing,
                    ("invalid-type", _) | (_, Some("type")) => Check::InvalidType,
                    ("invalid-version", _) | (_, Some("version")) => Check::InvalidVersion,
                    ("invalid-name", _) | (_, Some("name")) => Check::InvalidName,
                    // A rule of a custom policy that names no field the seed knows.
                    _ => {
                        return Refusal {
                            status: StatusCode::BAD_REQUEST,
                            message: first.message.into(),
                        }
                    }
                }
            }
            RegistryError::Unauthenticated => Check::UserIdMissing,
            RegistryError::Refused(refusal) => match (refusal.kind(), &refusal) {
                (_, CoreRefusal::ProjectNotFound { .. }) => Check::ProjectNotFound,
                (RefusalKind::NotFound, _) => Check::PipelineNotFound,
                (RefusalKind::Forbidden, _) => Check::PermissionDenied,
                // The seed is silent on conflicts of the core: the native words.
                (RefusalKind::Conflict, _) => {
                    let (status, _, message) = super::error::refusal_wording(&refusal);
                    return Refusal {
                        status,
                        message: message.into(),
                    };
                }
            },
            RegistryError::QuotaExceeded(quota) => {
                return Refusal {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: quota.to_string().into(),
                }
            }
            RegistryError::NotReady {
                name,
                version,
                state,
            } => {
                return Refusal {
                    status: StatusCode::CONFLICT,
                    message: super::error::not_ready_message(&name, &version, state).into(),
                }
            }
            RegistryError::Plugin(error) => {
                return Refusal {
                    status: StatusCode::BAD_GATEWAY,
                    message: format!("A plugin failed: {error}").into(),
                }
            }
            RegistryError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                return Refusal {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "Internal error; see the server log".into(),
                };
            }
        };
        Refusal::of(op, check)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = Pipeline {
            service_status: Some(ServiceState {
                status: "ERROR".into(),
                status_message: Some(self.message.into_owned()),
                request_id: super::request_id::current(),
            }),
            ..Pipeline::default()
        };
        (self.status, Json(body)).into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers: parse, identify, call the core, word the answer.

/// The path parameters of every route; absent ones are None.
#[derive(Debug, Deserialize)]
struct Target {
    user_id: String,
    project_id: Option<String>,
    pipeline_id: Option<String>,
    action: Option<String>,
}

impl Target {
    /// The pipeline id of the path; a blank one is the seed's "Pipeline Id missing".
    fn pipeline_id(&self, op: Op) -> Result<&str, Refusal> {
        self.pipeline_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Refusal::of(op, Check::PipelineIdMissing))
    }
}

/// Parses the path; a malformed one (bad percent-encoding) is refused in this surface's shape.
fn target(path: Result<Path<Target>, PathRejection>) -> Result<Target, Refusal> {
    path.map(|Path(target)| target)
        .map_err(|rejection| Refusal {
            status: StatusCode::BAD_REQUEST,
            message: rejection.body_text().into(),
        })
}

/// The request body as a Pipeline; anything else (not JSON, wrong shapes, empty when one is
/// required) is the seed's "Invalid JSON".
fn body(op: Op, bytes: &Bytes, required: bool) -> Result<Pipeline, Refusal> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(Refusal::of(op, Check::InvalidJson))
        } else {
            Ok(Pipeline::default())
        };
    }
    serde_json::from_slice(bytes).map_err(|_| Refusal::of(op, Check::InvalidJson))
}

/// Who is calling, checked against the path's `authenticatedUserId`.
async fn identify(
    state: &AppState,
    op: Op,
    headers: &HeaderMap,
    path_user: &str,
) -> Result<Caller, Refusal> {
    let registry = &state.registry;
    let gateway_user = state
        .config
        .trust_gateway_header
        .as_ref()
        .and_then(|header| headers.get(header))
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|user| !user.is_empty());
    let bearer = super::bearer_token(headers);
    let caller = match (gateway_user, bearer) {
        (Some(user), _) => registry.caller_for_user(user).await,
        (None, Some(token)) => registry.authenticate(token).await,
        (None, None) => return Err(Refusal::of(op, Check::UserIdMissing)),
    };
    let caller = caller.map_err(|error| match error {
        // A token that names no one, or a header that is no user name: no user id.
        RegistryError::Unauthenticated | RegistryError::Invalid(_) => {
            Refusal::of(op, Check::UserIdMissing)
        }
        other => Refusal::from_registry(op, other),
    })?;
    tracing::Span::current().record("user", caller.user.as_str());
    if crate::registry::names::key(&caller.user) != crate::registry::names::key(path_user) {
        return Err(Refusal::of(op, Check::PermissionDenied));
    }
    Ok(caller)
}

type Answer<T> = Result<T, Refusal>;

async fn create(
    State(state): State<AppState>,
    path: Result<Path<Target>, PathRejection>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<(StatusCode, Json<Pipeline>)> {
    let op = Op::Create;
    let target = target(path)?;
    let request = body(op, &bytes, true)?;
    let caller = identify(&state, op, &headers, &target.user_id).await?;
    let new = NewRecord {
        name: request.name(),
        version: request.version_label(),
        pipeline_type: request.pipeline_type.clone(),
        kernel_type: request.kernel_type.clone(),
        description: request.description.clone(),
        project_id: target.project_id.clone().or_else(|| request.project_uuid()),
    };
    let created = state
        .registry
        .create_record(&caller, new)
        .await
        .map_err(|e| Refusal::from_core(op, e))?;
    Ok((StatusCode::CREATED, Json(Pipeline::of(&created))))
}

/// The original's creation-status check: creation here is complete when it answers, so an
/// existing pipeline is simply 201.
async fn creation_status(
    State(state): State<AppState>,
    path: Result<Path<Target>, PathRejection>,
    headers: HeaderMap,
) -> Answer<(StatusCode, Json<Pipeline>)> {
    let Json(pipeline) = get_one(State(state), path, headers).await?;
    Ok((StatusCode::CREATED, Json(pipeline)))
}

async fn get_one(
    State(state): State<AppState>,
    path: Result<Path<Target>, PathRejection>,
    headers: HeaderMap,
) -> Answer<Json<Pipeline>> {
    let op = Op::Get;
    let target = target(path)?;
    let caller = identify(&state, op, &headers, &target.user_id).await?;
    let record = state
        .registry
        .record(&caller, target.pipeline_id(op)?)
        .await
        .map_err(|e| Refusal::from_core(op, e))?;
    Ok(Json(Pipeline::of(&record)))
}

async fn list(
    State(state): State<AppState>,
    path: Result<Path<Target>, PathRejection>,
    headers: HeaderMap,
) -> Answer<Json<Vec<Pipeline>>> {
    let op = Op::List;
    let target = target(path)?;
    let caller = identify(&state, op, &headers, &target.user_id).await?;
    let records = state
        .registry
        .list_records(&caller, target.project_id.as_deref())
        .await
        .map_err(|e| Refusal::from_core(op, e))?;
    Ok(Json(records.iter().map(Pipeline::of).collect()))
}

async fn launch(
    State(state): State<AppState>,
    path: Result<Path<Target>, PathRejection>,
    headers: HeaderMap,
) -> Answer<Json<Pipeline>> {
    let op = Op::Launch;
    let target = target(path)?;
    let caller = identify(&state, op, &headers, &target.user_id).await?;
    let pipeline_id = target.pipeline_id(op)?;
    require_project(&state, op, &caller, &target).await?;
    let launched = state
        .registry
        .launch_record(&caller, pipeline_id)
        .await
        .map_err(|e| Refusal::from_core(op, e))?;
    Ok(Json(Pipeline::of(&launched)))
}

async fn update(
    State(state): State<AppState>,
    path: Result<Path<Target>, PathRejection>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<Json<Pipeline>> {
    let op = Op::Update;
    let target = target(path)?;
    let request = body(op, &bytes, true)?;
    let caller = identify(&state, op, &headers, &target.user_id).await?;
    let update = RecordUpdate {
        name: request.name(),
        version: request.version_label(),
        description: request.description.clone(),
        project_id: target.project_id.clone().or_else(|| request.project_uuid()),
    };
    let updated = state
        .registry
        .update_record(&caller, target.pipeline_id(op)?, update)
        .await
        .map_err(|e| Refusal::from_core(op, e))?;
    Ok(Json(Pipeline::of(&updated)))
}

/// `A` archives, `UA` unarchives.
async fn archive(
    State(state): State<AppState>,
    path: Result<Path<Target>, PathRejection>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer<Json<Pipeline>> {
    let op = Op::Archive;
    let target = target(path)?;
    body(op, &bytes, false)?;
    let caller = identify(&state, op, &headers, &target.user_id).await?;
    let pipeline_id = target.pipeline_id(op)?;
    let archived = match target.action.as_deref() {
        Some("A") => true,
        Some("UA") => false,
        _ => return Err(Refusal::of(op, Check::InvalidAction)),
    };
    require_project(&state, op, &caller, &target).await?;
    let changed = state
        .registry
        .set_record_archived(&caller, pipeline_id, archived)
        .await
        .map_err(|e| Refusal::from_core(op, e))?;
    Ok(Json(Pipeline::of(&changed)))
}

async fn delete(
    State(state): State<AppState>,
    path: Result<Path<Target>, PathRejection>,
    headers: HeaderMap,
) -> Answer<Json<ServiceState>> {
    let op = Op::Delete;
    let target = target(path)?;
    let caller = identify(&state, op, &headers, &target.user_id).await?;
    state
        .registry
        .delete_record(&caller, target.pipeline_id(op)?)
        .await
        .map_err(|e| Refusal::from_core(op, e))?;
    Ok(Json(completed("Pipeline Deleted successfully.")))
}

async fn delete_project_association(
    State(state): State<AppState>,
    path: Result<Path<Target>, PathRejection>,
    headers: HeaderMap,
) -> Answer<Json<ServiceState>> {
    let op = Op::DeleteProjectAssociation;
    let target = target(path)?;
    let caller = identify(&state, op, &headers, &target.user_id).await?;
    let project_id = target.project_id.as_deref().unwrap_or_default();
    state
        .registry
        .remove_record_from_project(&caller, project_id, target.pipeline_id(op)?)
        .await
        .map_err(|e| Refusal::from_core(op, e))?;
    Ok(Json(completed(
        "Project Pipeline Association Deleted successfully.",
    )))
}

/// Routes under a project need the project to exist and be the caller's account's.
async fn require_project(state: &AppState, op: Op, caller: &Caller, target: &Target) -> Answer<()> {
    match &target.project_id {
        Some(id) => state
            .registry
            .project(caller, id)
            .await
            .map(|_| ())
            .map_err(|e| Refusal::from_registry(op, e)),
        None => Ok(()),
    }
}

fn completed(message: &str) -> ServiceState {
    ServiceState {
        status: "COMPLETED".into(),
        status_message: Some(message.into()),
        request_id: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::error::tests::{answer_of, rows};

    /// The refusals of the core, refused to an update: the seed's words for the checks they
    /// fail (permission, project, pipeline), the native words for the conflicts it is silent on.
    #[tokio::test]
    async fn every_refusal_of_the_core_answers_as_the_table_says() {
        let seed: &[(&str, u16, &str)] = &[
            ("namespace-reserved", 403, "Permission denied"),
            ("not-a-member", 403, "Permission denied"),
            ("namespace-of-another-account", 403, "Permission denied"),
            ("not-an-admin", 403, "Permission denied"),
            ("workflow-of-another-account", 403, "Permission denied"),
            ("pipeline-not-found", 404, "Requested Pipeline Not found"),
            ("version-not-found", 404, "Requested Pipeline Not found"),
            ("no-version", 404, "Requested Pipeline Not found"),
            ("plugin-not-found", 404, "Requested Pipeline Not found"),
            (
                "plugin-version-not-found",
                404,
                "Requested Pipeline Not found",
            ),
            ("binding-not-found", 404, "Requested Pipeline Not found"),
            ("run-not-found", 404, "Requested Pipeline Not found"),
            ("type-not-found", 404, "Requested Pipeline Not found"),
            ("project-not-found", 404, "Project Id is invalid"),
            ("workflow-not-found", 404, "Requested Pipeline Not found"),
        ];
        for (refusal, status, message) in rows(seed) {
            let code = refusal.code();
            let refused = Refusal::from_registry(Op::Update, refusal.into());
            assert_eq!(
                answer_of(refused.into_response()).await,
                (
                    status,
                    json!({"serviceStatus": {"status": "ERROR", "statusMessage": message}})
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn project_uuid_in_either_shape() {
        let input: Pipeline =
            serde_json::from_str(r#"{"projects": {"projects": [{"projectId": {"uuid": "p1"}}]}}"#)
                .unwrap();
        assert_eq!(input.project_uuid().as_deref(), Some("p1"));
        let output: Pipeline =
            serde_json::from_str(r#"{"projects": {"projects": [{"uuid": "p2"}]}}"#).unwrap();
        assert_eq!(output.project_uuid().as_deref(), Some("p2"));
    }
}
