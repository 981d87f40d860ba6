//! The OpenAPI document of the Mystic surface: every route [`super::routes`] routes, with the
//! statuses each can answer and `{"detail": …}` for every error.

use utoipa::OpenApi;

use super::{files, pipelines, pointers, runs};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pipewright: Mystic API",
        description = "Mystic's `/v4` API (and its `/v3` leftovers) as the `pipeline-ai` 2.8 client and CLI use it. \
            Every error is `{\"detail\": …}`. A pipeline's id is `account/name:version`; a pointer is `account/name:pointer`."
    ),
    paths(
        super::validate_token,
        pipelines::list_pipelines,
        pipelines::push_pipeline,
        pipelines::change_pipeline,
        pipelines::delete_pipeline,
        pointers::list_pointers,
        pointers::create_pointer,
        pointers::change_pointer,
        pointers::delete_pointer,
        runs::submit_run,
        runs::get_run,
        runs::stream_run,
        runs::run_logs,
        runs::submit_run_v3,
        runs::get_run_v3,
        files::upload_file,
        files::upload_pipeline_file,
        files::upload_pipeline_file_hyphenated,
        files::list_files,
        files::get_file,
        files::download_upload,
        files::download_file,
    ),
    components(schemas(super::DetailBody)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "tokens", description = "What `pipeline cluster login` checks."),
        (name = "pipelines", description = "Versions of the account's runnable pipelines, as Mystic's pipelines."),
        (name = "pointers", description = "Movable names of pipelines (Mystic's tags)."),
        (name = "runs", description = "Runs, synchronous, in the background or streamed, and their logs."),
        (name = "files", description = "Uploads, and the signed links that download files."),
    )
)]
struct MysticApi;

/// Every route but the signed links takes `Authorization: Bearer <token>`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document of every route of this surface.
pub fn openapi() -> utoipa::openapi::OpenApi {
    MysticApi::openapi()
}

#[cfg(test)]
mod tests {
    /// The document names exactly the routes the surface routes, method by method.
    #[test]
    fn the_document_describes_every_route_and_no_other() {
        let document = super::openapi();
        let mut documented = crate::api::routes::from_openapi("mystic", &document);
        let mut routed = super::super::routes().specs().to_vec();
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
    }

    /// Every error answer is documented as `{"detail": …}` (but a run's 503, which is the run,
    /// `no_resources_available`).
    #[test]
    fn every_error_is_documented_in_the_surfaces_shape() {
        let document = serde_json::to_value(super::openapi()).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.starts_with('4') || (status.starts_with('5') && status != "503") {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(
                            schema, "#/components/schemas/DetailBody",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }
}
