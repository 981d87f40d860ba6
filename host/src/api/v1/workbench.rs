//! `/v1` for projects and workbench pipeline records (the records the Acumos surface edits):
//! create and list projects, read a record and the history of its names and versions.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Authenticated, Json};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::AppState;
use crate::registry::workbench::{HistoryEntry, ProjectInfo, WorkbenchPipeline};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project))
        .routes(routes!(list_workbench_pipelines))
        .routes(routes!(get_workbench_pipeline))
        .routes(routes!(workbench_pipeline_history))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[schema(schema_with = super::name_schema)]
    pub name: String,
    pub description: Option<String>,
}

/// Creates a project owned by the caller. Workbench pipelines name projects by id.
#[utoipa::path(post, path = "/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = ProjectInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn create_project(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Json(body): Json<CreateProject>,
) -> Result<(StatusCode, Json<ProjectInfo>), ApiError> {
    let project = state
        .registry
        .create_project(&caller, &body.name, body.description)
        .await?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// The caller's account's projects, oldest first.
#[utoipa::path(get, path = "/v1/projects", tag = "projects",
    responses((status = 200, body = Vec<ProjectInfo>), (status = 401, body = ErrorBody)))]
async fn list_projects(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Vec<ProjectInfo>>, ApiError> {
    Ok(Json(state.registry.list_projects(&caller).await?))
}

#[utoipa::path(get, path = "/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = ProjectInfo), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_project(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ProjectInfo>, ApiError> {
    let Path(id) = path?;
    Ok(Json(state.registry.project(&caller, &id).await?))
}

/// The caller's workbench pipelines, owned and collaborated, active and archived.
#[utoipa::path(get, path = "/v1/workbench/pipelines", tag = "workbench",
    responses((status = 200, body = Vec<WorkbenchPipeline>), (status = 401, body = ErrorBody)))]
async fn list_workbench_pipelines(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Vec<WorkbenchPipeline>>, ApiError> {
    Ok(Json(state.registry.list_records(&caller, None).await?))
}

#[utoipa::path(get, path = "/v1/workbench/pipelines/{id}", tag = "workbench", params(("id" = String, Path)),
    responses((status = 200, body = WorkbenchPipeline), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn get_workbench_pipeline(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<WorkbenchPipeline>, ApiError> {
    let Path(id) = path?;
    Ok(Json(state.registry.record(&caller, &id, None).await?))
}

/// The names and versions a workbench pipeline had before updates changed them, oldest first.
#[utoipa::path(get, path = "/v1/workbench/pipelines/{id}/history", tag = "workbench", params(("id" = String, Path)),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn workbench_pipeline_history(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let Path(id) = path?;
    Ok(Json(state.registry.record_history(&caller, &id).await?))
}
