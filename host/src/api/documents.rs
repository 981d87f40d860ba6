//! The OpenAPI documents: one per surface, each built from the `#[utoipa::path]` annotations on
//! that surface's handlers, served at `/openapi/{surface}.json` (and `/v1`'s also at its old
//! address, `/v1/openapi.json`) with a reference rendered from them at `/docs`.
//!
//! A document is only worth serving if it is true: the test below holds each document's
//! operations equal to what its surface routes, and CI runs Schemathesis over every document
//! against a live server (`tests/schemathesis/run.sh`).

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;

use super::{acumos, gbdx, mystic, ops, v1};

/// One surface's document.
pub struct SurfaceDocument {
    /// The surface's name, as in [`super::routes::RouteSpec::surface`] and the document's address.
    pub surface: &'static str,
    pub document: OpenApi,
}

/// Every surface's document, built once.
pub fn all() -> &'static [SurfaceDocument] {
    static DOCUMENTS: OnceLock<Vec<SurfaceDocument>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let (_, v1_document) = v1::router().split_for_parts();
        // Each surface with the schema of its own error body.
        [
            ("v1", v1_document, "ErrorBody", AXUM_JSON),
            ("ops", ops::openapi(), "ErrorBody", AXUM_JSON),
            ("mystic", mystic::openapi(), "DetailBody", MYSTIC_JSON),
            ("gbdx", gbdx::openapi(), "ErrorBody", READ_AS_400),
            ("acumos", acumos::openapi(), "Refused", READ_AS_400),
        ]
        .into_iter()
        .map(|(surface, document, error_body, json)| SurfaceDocument {
            surface,
            document: with_framework_errors(with_server_facts(document), error_body, json),
        })
        .collect()
    })
}

/// The document of `surface`, if there is one.
pub fn find(surface: &str) -> Option<&'static SurfaceDocument> {
    all().iter().find(|d| d.surface == surface)
}

/// What every document says the same way: the bearer scheme its `security` names, and the
/// server's version.
fn with_server_facts(mut document: OpenApi) -> OpenApi {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    document.info.version = env!("CARGO_PKG_VERSION").into();
    document
}

/// How a surface refuses a JSON body it cannot take: each status it answers, and why.
type JsonRefusals = &'static [(&'static str, &'static str)];

/// axum's `Json` extractor, as `/v1` uses it.
const AXUM_JSON: JsonRefusals = &[
    ("400", "The body is not JSON"),
    ("415", "The body is not declared `application/json`"),
    ("422", "The JSON is not of the documented shape"),
];

/// Mystic answers every body it cannot read as FastAPI did: 422.
const MYSTIC_JSON: JsonRefusals = &[("422", "The body is not JSON of the documented shape")];

/// GBDX and Acumos read the body whatever its declared type, and answer what they cannot read
/// with their 400.
const READ_AS_400: JsonRefusals = &[("400", "The body is not JSON of the documented shape")];

/// The errors the framework answers before a handler runs, which no handler's annotation
/// lists, added to every operation they can happen to, in the surface's error body (see
/// [`super::routes::Routes::with_error_shape`]):
/// - a body: 413 over [`super::MAX_BODY_BYTES`]; a JSON body also what the surface answers a
///   body it cannot read with ([`JsonRefusals`]); a multipart body 400;
/// - query parameters: 400 when they do not parse;
/// - path parameters: 400 when a segment does not decode.
fn with_framework_errors(mut document: OpenApi, error_body: &str, json: JsonRefusals) -> OpenApi {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(error_body)))
                    .build(),
            )
            .build()
    };
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let mut answers: Vec<(&str, &str)> = Vec::new();
            if let Some(body) = &operation.request_body {
                answers.push(("413", "The body is larger than the server takes"));
                if body.content.contains_key("application/json") {
                    answers.extend_from_slice(json);
                } else {
                    answers.push(("400", "The body is not of its declared type"));
                }
            }
            let parameters = operation.parameters.as_deref().unwrap_or_default();
            if parameters
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Path))
            {
                answers.push(("400", "A parameter does not parse"));
            }
            for (status, description) in answers {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error(description).into());
            }
        }
    }
    document
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every surface that answers routes describes them, but the console, whose pages are for
    /// people (HTML), not an API.
    #[test]
    fn every_api_surface_has_a_document() {
        let surfaces: BTreeSet<&str> = crate::api::route_list()
            .iter()
            .map(|spec| spec.surface)
            .filter(|surface| *surface != "console")
            .collect();
        let documented: BTreeSet<&str> = all().iter().map(|d| d.surface).collect();
        assert_eq!(surfaces, documented);
    }

    /// A document that misses a route, or describes one nobody answers, is not served.
    #[test]
    fn each_document_describes_exactly_what_its_surface_routes() {
        let routed = crate::api::route_list();
        for SurfaceDocument { surface, document } in all() {
            let documented: BTreeSet<(String, String)> =
                crate::api::routes::from_openapi(surface, document)
                    .into_iter()
                    .map(|s| (s.method, s.path))
                    .collect();
            let answered: BTreeSet<(String, String)> = routed
                .iter()
                .filter(|s| s.surface == *surface)
                .map(|s| (s.method.clone(), s.path.clone()))
                .collect();
            assert!(!documented.is_empty(), "the {surface} document is empty");
            assert_eq!(
                documented, answered,
                "the {surface} document and the {surface} routes differ"
            );
        }
    }
}
