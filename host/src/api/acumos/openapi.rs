//! The OpenAPI document of the Acumos surface: every route [`super::routes`] routes, each
//! status it can answer with its body (the original's error body for every refusal) and the
//! path parameters. [`crate::api::documents`] adds the bearer scheme and the framework's own
//! errors, and serves it at `/openapi/acumos.json`.
//!
//! One handler serves several routes here (the same operation stands alone and under a
//! project, with and without the trailing slash, and under the misspelt `pipeliens`), while
//! utoipa documents one path per function: so each route gets a function of its own below, made
//! by one macro per operation so the operation's statuses are written once. A test keeps the
//! document's paths and methods equal to the route list.

use utoipa::{IntoParams, OpenApi, ToSchema};

use super::wire::{
    ArtifactState, Identifier, Pipeline, ProjectEntry, Projects, Refused, ServiceState, User,
    Users, Version,
};

/// The document: every route of the surface.
pub fn openapi() -> utoipa::openapi::OpenApi {
    AcumosDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pipewright: Acumos ML Workbench pipeline service",
        description = "The routes and wire objects of the Acumos ML Workbench pipeline service \
            (`/mlWorkbench/v1/pipeline`). `{user_id}` is the caller's Acumos login id: a bearer \
            token's user, or a trusted gateway's header when the server is started with \
            `--trust-gateway-header`; another user's id is refused with 403. Every refusal is \
            a Pipeline holding only `serviceStatus` (`status` ERROR, `statusMessage` the \
            seed's words, `requestId`)."
    ),
    paths(
        create_independent, create_independent_slash, list_independent, list_independent_slash,
        launch_independent, archive_independent, get_independent, update_independent,
        delete_independent, delete_misspelt, creation_status_independent,
        create_in_project, create_in_project_slash, list_in_project, list_in_project_slash,
        launch_in_project, archive_in_project, get_in_project, update_in_project,
        delete_association, creation_status_in_project,
    ),
    components(schemas(
        Pipeline, Identifier, Version, User, Users, Projects, ProjectEntry, ServiceState,
        ArtifactState, Refused, requests::NewPipeline, requests::PipelineChange,
        requests::NewPipelineId, requests::PipelineIdChange, requests::VersionLabel,
        requests::WorkbenchType, params::Action
    )),
    // A request without credentials is answered too, in the seed's words ("Acumos User Id
    // missing", 400 on create and 404 elsewhere, never 401): the empty requirement says so.
    security(("bearer" = []), ()),
    tags((name = "pipelines", description = "Workbench pipelines, alone and in projects"))
)]
struct AcumosDoc;

/// The request bodies of create and update: a [`Pipeline`] as the handlers read it, with what
/// they require and the rules names, versions and types follow under the default policy
/// (`policy-acumos`) and type handlers (documentation only: the handlers parse a `Pipeline`).
#[allow(dead_code)]
mod requests {
    use super::super::wire::{ArtifactState, Projects, ServiceState, User, Users};
    use super::ToSchema;

    /// The body of createPipeline.
    #[derive(ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct NewPipeline {
        pub pipeline_id: NewPipelineId,
        pub pipeline_type: WorkbenchType,
        pub description: Option<String>,
        pub kernel_type: Option<String>,
        /// Projects to start in (ignored under `/projects/{project_id}/`, which names one).
        pub projects: Option<Projects>,
        /// Read and ignored.
        pub owner: Option<User>,
        /// Read and ignored.
        pub users: Option<Users>,
        /// Read and ignored.
        pub service_status: Option<ServiceState>,
        /// Read and ignored.
        pub artifact_status: Option<ArtifactState>,
    }

    /// The body of updatePipelines: each field given replaces the current one.
    #[derive(ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct PipelineChange {
        pub pipeline_id: Option<PipelineIdChange>,
        pub description: Option<String>,
        /// Read and ignored: a pipeline keeps its type.
        pub pipeline_type: Option<String>,
        /// Read and ignored.
        pub kernel_type: Option<String>,
        /// Projects to add it to (besides the one of `/projects/{project_id}/`).
        pub projects: Option<Projects>,
        /// Read and ignored.
        pub owner: Option<User>,
        /// Read and ignored.
        pub users: Option<Users>,
        /// Read and ignored.
        pub service_status: Option<ServiceState>,
        /// Read and ignored.
        pub artifact_status: Option<ArtifactState>,
    }

    /// A new pipeline's name and version; its other fields are read and ignored.
    #[derive(ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct NewPipelineId {
        /// A letter, then letters, digits and `_`.
        #[schema(pattern = r"^[A-Za-z][A-Za-z0-9_]*$", max_length = 128)]
        pub name: String,
        pub version_id: Option<VersionLabel>,
        pub uuid: Option<String>,
        pub identifier_type: Option<String>,
        pub repository_url: Option<String>,
        pub service_url: Option<String>,
        #[schema(value_type = Option<Object>)]
        pub metrics: Option<serde_json::Value>,
    }

    /// A changed name and version; blank or absent keeps the current one.
    #[derive(ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct PipelineIdChange {
        /// A letter, then letters, digits and `_`.
        #[schema(pattern = r"^(\s*|[A-Za-z][A-Za-z0-9_]*)$", max_length = 128)]
        pub name: Option<String>,
        pub version_id: Option<VersionLabel>,
        pub uuid: Option<String>,
        pub identifier_type: Option<String>,
        pub repository_url: Option<String>,
        pub service_url: Option<String>,
        #[schema(value_type = Option<Object>)]
        pub metrics: Option<serde_json::Value>,
    }

    /// A version: its `label` (optional: blank is none); the rest is read and ignored.
    #[derive(ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct VersionLabel {
        /// A digit, then letters, digits, `_` and `.`.
        #[schema(pattern = r"^(\s*|[0-9][A-Za-z0-9_.]*)$", max_length = 128)]
        pub label: Option<String>,
        pub comment: Option<String>,
        pub creation_time_stamp: Option<String>,
        pub modified_time_stamp: Option<String>,
        pub user: Option<String>,
    }

    /// The Workbench's pipeline types (the seed's), named by id in any case. A type handler
    /// uploaded to the server that declares the `acumos` surface adds its own.
    #[derive(ToSchema)]
    pub enum WorkbenchType {
        Jupyter,
        Zeppelin,
    }
}

/// The path parameters of each route shape (documentation only).
#[allow(dead_code)]
mod params {
    use super::{IntoParams, ToSchema};

    /// `A` archives, `UA` unarchives.
    #[derive(ToSchema)]
    pub enum Action {
        A,
        UA,
    }

    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub struct User {
        /// The Acumos login id: must be the caller.
        pub user_id: String,
    }

    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub struct UserPipeline {
        /// The Acumos login id: must be the caller.
        pub user_id: String,
        /// The pipeline's `pipelineId.uuid`.
        #[param(
            pattern = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        )]
        pub pipeline_id: String,
    }

    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub struct UserPipelineAction {
        /// The Acumos login id: must be the caller.
        pub user_id: String,
        /// The pipeline's `pipelineId.uuid`.
        #[param(
            pattern = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        )]
        pub pipeline_id: String,
        /// `A` archives, `UA` unarchives; anything else is refused with 400.
        pub action: Action,
    }

    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub struct Project {
        /// The Acumos login id: must be the caller.
        pub user_id: String,
        /// A project of the caller's account (`POST /v1/projects`).
        #[param(
            pattern = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        )]
        pub project_id: String,
    }

    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub struct ProjectPipeline {
        /// The Acumos login id: must be the caller.
        pub user_id: String,
        /// A project of the caller's account (`POST /v1/projects`).
        #[param(
            pattern = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        )]
        pub project_id: String,
        /// The pipeline's `pipelineId.uuid`.
        #[param(
            pattern = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        )]
        pub pipeline_id: String,
    }

    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub struct ProjectPipelineAction {
        /// The Acumos login id: must be the caller.
        pub user_id: String,
        /// A project of the caller's account (`POST /v1/projects`).
        #[param(
            pattern = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        )]
        pub project_id: String,
        /// The pipeline's `pipelineId.uuid`.
        #[param(
            pattern = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
        )]
        pub pipeline_id: String,
        /// `A` archives, `UA` unarchives; anything else is refused with 400.
        pub action: Action,
    }
}

/// createPipeline.
macro_rules! create {
    ($name:ident, $path:tt, $params:ident) => {
        /// Creates a pipeline owned by the caller, with a working copy at
        /// `/pipelines/{uuid}` seeded by its type; under a project (or naming projects in
        /// `projects`), in those projects.
        #[utoipa::path(post, path = $path, tag = "pipelines", params(params::$params),
            request_body(content = requests::NewPipeline, content_type = "application/json"),
            responses(
                (status = 201, description = "Created", body = Pipeline),
                (status = 400, description = "Invalid JSON, Acumos User Id missing, Pipeline Name missing, Invalid Pipeline name or version, pipeline type missing or invalid, or a malformed path", body = Refused),
                (status = 403, description = "Permission denied: the path's user is not the caller", body = Refused),
                (status = 404, description = "ProjectId does not exist.", body = Refused),
                (status = 409, description = "Pipeline name and version already exists for this user", body = Refused),
                (status = 413, description = "The body is over the server's limit", body = Refused),
                (status = 500, description = "Internal error", body = Refused),
                (status = 502, description = "A plugin failed", body = Refused)))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

/// ListPipelines.
macro_rules! list {
    ($name:ident, $path:tt, $params:ident) => {
        /// The caller's pipelines, owned and collaborated, active and archived; under a
        /// project, only those in it.
        #[utoipa::path(get, path = $path, tag = "pipelines", params(params::$params),
            responses(
                (status = 200, description = "The pipelines", body = Vec<Pipeline>),
                (status = 400, description = "A malformed path", body = Refused),
                (status = 403, description = "Permissions denied: the path's user is not the caller", body = Refused),
                (status = 404, description = "Acumos User Id missing, or Project Id does not exists", body = Refused),
                (status = 500, description = "Internal error", body = Refused)))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

/// launchPipeline.
macro_rules! launch {
    ($name:ident, $path:tt, $params:ident) => {
        /// Starts (or finds) the pipeline's service through its type handler:
        /// `pipelineId.serviceUrl`. Under a project, the pipeline must be in it.
        #[utoipa::path(get, path = $path, tag = "pipelines", params(params::$params),
            responses(
                (status = 200, description = "Launched", body = Pipeline),
                (status = 400, description = "A malformed path", body = Refused),
                (status = 403, description = "Permissions denied", body = Refused),
                (status = 404, description = "Acumos User Id missing, Pipeline Id missing, Pipeline not found, Project Id does not exists, or Specified Project and Pipeline are not associated", body = Refused),
                (status = 409, description = "Cannot launch – pipeline is archived", body = Refused),
                (status = 500, description = "Internal error", body = Refused),
                (status = 502, description = "The type handler failed or refused to launch", body = Refused)))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

/// archivePipelines, and unarchive.
macro_rules! archive {
    ($name:ident, $path:tt, $params:ident) => {
        /// Archives (`A`) or unarchives (`UA`). Archiving is refused while other users or
        /// other projects refer to the pipeline.
        #[utoipa::path(put, path = $path, tag = "pipelines", params(params::$params),
            request_body(content = Option<serde_json::Value>, content_type = "application/json",
                description = "Optional and unread: none, or any JSON"),
            responses(
                (status = 200, description = "Archived or unarchived", body = Pipeline),
                (status = 400, description = "Invalid JSON, an action other than A or UA, or a malformed path", body = Refused),
                (status = 403, description = "Permission denied", body = Refused),
                (status = 404, description = "Acumos User Id missing, Pipeline Id missing, Requested Pipeline Not found, or Project Id does not exists", body = Refused),
                (status = 409, description = "Pipeline is referenced by other users / projects", body = Refused),
                (status = 413, description = "The body is over the server's limit", body = Refused),
                (status = 500, description = "Internal error", body = Refused)))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

/// The original service's get-one.
macro_rules! get {
    ($name:ident, $path:tt, $params:ident) => {
        /// One pipeline. Under a project, it must be in that project.
        #[utoipa::path(get, path = $path, tag = "pipelines", params(params::$params),
            responses(
                (status = 200, description = "The pipeline", body = Pipeline),
                (status = 400, description = "A malformed path", body = Refused),
                (status = 403, description = "Permission denied", body = Refused),
                (status = 404, description = "Acumos User Id missing, Pipeline Id missing, Requested Pipeline Not found, Project Id does not exists, or Specified Project and Pipeline are not associated", body = Refused),
                (status = 500, description = "Internal error", body = Refused)))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

/// The original service's creation-status check.
macro_rules! creation_status {
    ($name:ident, $path:tt, $params:ident) => {
        /// Whether creating the pipeline is complete: creation here completes before it
        /// answers, so an existing pipeline is 201. Under a project, it must be in that
        /// project.
        #[utoipa::path(post, path = $path, tag = "pipelines", params(params::$params),
            responses(
                (status = 201, description = "Created (complete)", body = Pipeline),
                (status = 400, description = "A malformed path", body = Refused),
                (status = 403, description = "Permission denied", body = Refused),
                (status = 404, description = "Acumos User Id missing, Pipeline Id missing, Requested Pipeline Not found, Project Id does not exists, or Specified Project and Pipeline are not associated", body = Refused),
                (status = 500, description = "Internal error", body = Refused)))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

/// updatePipelines.
macro_rules! update {
    ($name:ident, $path:tt, $params:ident) => {
        /// Renames, re-versions or re-describes (the earlier name and version are kept as
        /// history); under a project, or naming projects in `projects`, also adds the pipeline
        /// to those projects. A caller who is not the owner becomes a collaborator (`users`).
        #[utoipa::path(put, path = $path, tag = "pipelines", params(params::$params),
            request_body(content = requests::PipelineChange, content_type = "application/json"),
            responses(
                (status = 200, description = "Updated", body = Pipeline),
                (status = 400, description = "Invalid JSON, Invalid Pipeline name or version, or a malformed path", body = Refused),
                (status = 403, description = "Permission denied", body = Refused),
                (status = 404, description = "Acumos User Id missing, Pipeline Id missing, Requested Pipeline Not found, or Project Id is invalid", body = Refused),
                (status = 409, description = "Update not allowed – pipeline is archived, or Pipeline name and version already exists for user", body = Refused),
                (status = 413, description = "The body is over the server's limit", body = Refused),
                (status = 500, description = "Internal error", body = Refused),
                (status = 502, description = "A plugin failed", body = Refused)))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

/// The original service's delete.
macro_rules! delete {
    ($name:ident, $path:tt, $params:ident) => {
        /// Deletes the pipeline, its history, its working copy and its place in every
        /// project.
        #[utoipa::path(delete, path = $path, tag = "pipelines", params(params::$params),
            responses(
                (status = 200, description = "Pipeline Deleted successfully.", body = ServiceState),
                (status = 400, description = "A malformed path", body = Refused),
                (status = 403, description = "Permission denied", body = Refused),
                (status = 404, description = "Acumos User Id missing, Pipeline Id missing, or Requested Pipeline Not found", body = Refused),
                (status = 500, description = "Internal error", body = Refused)))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

create!(
    create_independent,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines",
    User
);
create!(
    create_independent_slash,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/",
    User
);
list!(
    list_independent,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines",
    User
);
list!(
    list_independent_slash,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/",
    User
);
launch!(
    launch_independent,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}/launch",
    UserPipeline
);
archive!(
    archive_independent,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}/{action}",
    UserPipelineAction
);
get!(
    get_independent,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}",
    UserPipeline
);
update!(
    update_independent,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}",
    UserPipeline
);
delete!(
    delete_independent,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}",
    UserPipeline
);
// The original service's delete route was spelled this way; its old clients still call it.
delete!(
    delete_misspelt,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipeliens/{pipeline_id}",
    UserPipeline
);
creation_status!(
    creation_status_independent,
    "/mlWorkbench/v1/pipeline/users/{user_id}/pipelines/{pipeline_id}",
    UserPipeline
);

create!(
    create_in_project,
    "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines",
    Project
);
create!(
    create_in_project_slash,
    "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/",
    Project
);
list!(
    list_in_project,
    "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines",
    Project
);
list!(
    list_in_project_slash,
    "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/",
    Project
);
launch!(
    launch_in_project,
    "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}/launch",
    ProjectPipeline
);
archive!(
    archive_in_project,
    "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}/{action}",
    ProjectPipelineAction
);
get!(
    get_in_project,
    "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}",
    ProjectPipeline
);
update!(
    update_in_project,
    "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}",
    ProjectPipeline
);
creation_status!(
    creation_status_in_project,
    "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}",
    ProjectPipeline
);

/// deleteProjectPipelineAssociation.
#[utoipa::path(delete,
    path = "/mlWorkbench/v1/pipeline/users/{user_id}/projects/{project_id}/pipelines/{pipeline_id}",
    tag = "pipelines", params(params::ProjectPipeline),
    responses(
        (status = 200, description = "Project Pipeline Association Deleted successfully.", body = ServiceState),
        (status = 400, description = "A malformed path", body = Refused),
        (status = 403, description = "Permission denied: the caller owns neither the project nor the pipeline", body = Refused),
        (status = 404, description = "Acumos User Id missing, Pipeline Id missing, Requested Pipeline Not found (or not in the project), or Project Id does not exists", body = Refused),
        (status = 500, description = "Internal error", body = Refused)))]
#[allow(dead_code)]
fn delete_association() {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The document describes exactly the routes the surface routes.
    #[test]
    fn the_document_has_every_route_and_no_other() {
        let routed: BTreeSet<(String, String)> = super::super::routes()
            .specs()
            .iter()
            .map(|spec| (spec.method.clone(), spec.path.clone()))
            .collect();
        let documented: BTreeSet<(String, String)> =
            crate::api::routes::from_openapi("acumos", &super::openapi())
                .into_iter()
                .map(|spec| (spec.method, spec.path))
                .collect();
        assert_eq!(documented, routed);
    }

    /// Every refusal is documented with the original's error body.
    #[test]
    fn every_error_answer_has_the_refusal_body() {
        let document = serde_json::to_value(super::openapi()).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    let schema = &response["content"]["application/json"]["schema"];
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            schema["$ref"], "#/components/schemas/Refused",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }
}
