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

use super::routes::{self, RouteSpec};
use super::{ops, v1};

/// One surface's document.
pub struct SurfaceDocument {
    /// The surface's name, as in [`RouteSpec::surface`] and the document's address.
    pub surface: &'static str,
    pub document: OpenApi,
}

/// Every surface's document, built once.
pub fn all() -> &'static [SurfaceDocument] {
    static DOCUMENTS: OnceLock<Vec<SurfaceDocument>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let (_, v1_document) = v1::router().split_for_parts();
        [
            ("v1", v1_document),
            ("ops", ops::openapi()),
        ]
        .into_iter()
        .map(|(surface, document)| SurfaceDocument {
            surface,
            document: with_server_facts(document),
        })
        .collect()
    })
}

/// The document of `surface`, if there is one.
pub fn find(surface: &str) -> Option<&'static SurfaceDocument> {
    all().iter().find(|d| d.surface == surface)
}

/// The operations a document describes, as route specs of `surface`.
pub fn operations(surface: &'static str, document: &OpenApi) -> Vec<RouteSpec> {
    routes::from_openapi(surface, document)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// A document that misses a route, or describes one nobody answers, is not served.
    #[test]
    fn each_document_describes_exactly_what_its_surface_routes() {
        let routed = crate::api::route_list();
        for SurfaceDocument { surface, document } in all() {
            let documented: BTreeSet<(String, String)> = operations(surface, document)
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
