//! The GBDX surface's OpenAPI document: every route [`super::routes`] routes, its statuses with
//! their bodies (errors as [`ErrorBody`]), and the bearer token every route needs.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use super::tasks::{
    self, ContainerDescriptor, Deleted, DockerProperties, NotReadyBody, PortDescriptor,
    RegistrationBody, TaskBody, TaskDefinition, TaskList, TaskReplacement, WasmProperties,
};
use super::workflows::{
    self, EventBody, EventsBody, SearchRequest, SearchState, StatePair, WorkflowBody, WorkflowIds,
    WorkflowRequest, WorkflowTaskBody, WorkflowTaskRequest,
};
use super::ErrorBody;
use crate::runs::workflows::{PortInput, PortValue};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pipewright: GBDX task and workflow API",
        description = "GBDX's `/workflows/v1`: versioned tasks in one shared namespace, and workflows of them. Every error is `{\"Error\": \"…\"}`."
    ),
    paths(
        tasks::register,
        tasks::list,
        tasks::get_task,
        tasks::replace,
        tasks::delete,
        workflows::submit_workflow,
        workflows::list_workflows,
        workflows::search_workflows,
        workflows::get_workflow,
        workflows::cancel_workflow,
        workflows::workflow_events,
        workflows::task_stdout,
        workflows::task_stderr,
    ),
    components(schemas(
        ErrorBody,
        TaskDefinition,
        TaskReplacement,
        PortDescriptor,
        ContainerDescriptor,
        DockerProperties,
        WasmProperties,
        TaskBody,
        RegistrationBody,
        NotReadyBody,
        TaskList,
        Deleted,
        WorkflowRequest,
        WorkflowTaskRequest,
        WorkflowBody,
        WorkflowTaskBody,
        StatePair,
        PortInput,
        PortValue,
        EventsBody,
        EventBody,
        WorkflowIds,
        SearchRequest,
        SearchState,
    )),
    tags(
        (name = "tasks", description = "Task versioning (the seed's rules and error table)"),
        (name = "workflows", description = "Workflows of tasks: run, follow, cancel, search"),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct GbdxDoc;

/// `Authorization: Bearer pw_…` on every route.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document of every route of this surface.
pub fn openapi() -> utoipa::openapi::OpenApi {
    GbdxDoc::openapi()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The document describes exactly the routes the surface routes, method by method.
    #[test]
    fn the_document_lists_every_route_and_no_other() {
        let documented: BTreeSet<(String, String)> =
            crate::api::routes::from_openapi("gbdx", &super::openapi())
                .into_iter()
                .map(|spec| (spec.method, spec.path))
                .collect();
        let routed: BTreeSet<(String, String)> = super::super::routes()
            .specs()
            .iter()
            .map(|spec| (spec.method.clone(), spec.path.clone()))
            .collect();
        assert_eq!(documented, routed);
    }
}
