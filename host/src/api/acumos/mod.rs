//! The Acumos ML Workbench pipeline service under `/mlWorkbench/v1/pipeline`: the routes and wire
//! objects of the original service, over the registry's workbench core
//! ([`crate::registry::workbench`]).
//!
//! Errors are what the original sends: a Pipeline holding only
//! `serviceStatus { status: "ERROR", statusMessage }`. The message of each check is the seed's,
//! verbatim, per operation: [`refusals::wording`] is that table (one test per row in `tests/e2e`).
//!
//! Who is calling: the `{authenticatedUserId}` of the path must be the caller, known from a
//! bearer token or, only when the server was started with `--trust-gateway-header`, from the
//! gateway's header. A caller who is not that user is refused before anything is read.
//!
//! The routes under `/projects/{projectId}/` act in that project: the project must be the
//! caller's account's, an update there adds the pipeline to it (as the original's does), and a
//! read, launch or creation-status check there wants the pipeline to belong to it.
//! [`openapi()`] describes every route.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::routes::Routes;
use super::AppState;
use crate::registry::workbench::{NewRecord, RecordUpdate};
use crate::registry::{Caller, RegistryError};
use crate::route;
pub use openapi::openapi;
pub use refusals::{wording, Check, Op, Refusal};
use wire::{Pipeline, ServiceState};

mod openapi;
mod refusals;
mod wire;

pub const PREFIX: &str = "/mlWorkbench/v1/pipeline";

pub fn routes() -> Routes {
    let user = format!("{PREFIX}/users/{{user_id}}");
    let project = format!("{user}/projects/{{project_id}}");
    let mut routes = Routes::new("acumos").with_error_shape(|status, message| {
        Refusal {
            status,
            message: message.into(),
        }
        .into_response()
    });
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
    // The Workbench's project page reads a pipeline's creation status with GET here.
    // The original service's delete route was spelled this way; old clients still call it.
    routes = route!(
        routes,
        &format!("{user}/pipeliens/{{pipeline_id}}"),
        delete(delete)
    );
    route!(
        routes,
        &format!("{project}/pipelines/{{pipeline_id}}"),
        get(get_one)
            .put(update)
            .delete(delete_project_association)
            .post(creation_status)
    )
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

    /// The projects a create or update puts the pipeline in: the path's project, or else the
    /// ones the body names.
    fn projects(&self, request: &Pipeline) -> Vec<String> {
        match &self.project_id {
            Some(project) => vec![project.clone()],
            None => request.project_uuids(),
        }
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

/// The request body as a Pipeline; anything else (not JSON, wrong shapes, empty or `null`) is
/// the seed's "Invalid JSON".
fn body(op: Op, bytes: &Bytes) -> Result<Pipeline, Refusal> {
    serde_json::from_slice(bytes)
        .and_then(wire::objects::from_object)
        .map_err(|_| Refusal::of(op, Check::InvalidJson))
}

/// A body that is read by no one (archive's): none at all, or any JSON; anything else is the
/// seed's "Invalid JSON".
fn unread_body(op: Op, bytes: &Bytes) -> Result<(), Refusal> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|_| Refusal::of(op, Check::InvalidJson))
}

/// Who is calling, checked against the path's `authenticatedUserId`.
async fn identify(
    state: &AppState,
    op: Op,
    headers: &HeaderMap,
    path_user: &str,
) -> Result<Caller, Refusal> {
    let registry = &state.registry;
    let gateway_user = super::gateway_user(&state.config, headers);
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
    crate::api::request_id::record_user(&caller.user);
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
    let request = body(op, &bytes)?;
    let caller = identify(&state, op, &headers, &target.user_id).await?;
    let new = NewRecord {
        name: request.name(),
        version: request.version_label(),
        pipeline_type: request.pipeline_type.clone(),
        kernel_type: request.kernel_type.clone(),
        description: request.description.clone(),
        project_ids: target.projects(&request),
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
    let pipeline_id = target.pipeline_id(op)?;
    require_project(&state, op, &caller, &target).await?;
    let record = state
        .registry
        .record(&caller, pipeline_id, target.project_id.as_deref())
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
        .launch_record(&caller, pipeline_id, target.project_id.as_deref())
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
    let request = body(op, &bytes)?;
    let caller = identify(&state, op, &headers, &target.user_id).await?;
    let update = RecordUpdate {
        name: request.name(),
        version: request.version_label(),
        description: request.description.clone(),
        project_ids: target.projects(&request),
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
    unread_body(op, &bytes)?;
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
        .set_record_archived(&caller, pipeline_id, archived, target.project_id.as_deref())
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
