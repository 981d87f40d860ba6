//! Every route the server answers, listed where it is routed: each surface builds its router
//! through [`Routes`] with the [`route!`](crate::route) macro, which records the methods and the
//! path beside the handler, so the list cannot drift from the router. `/v1`'s routes are listed
//! from its OpenAPI document, which utoipa-axum builds from the same `routes!` calls.
//!
//! The list is what the cross-account test matrix (`tests/e2e/tenancy.rs`) walks: a new route
//! without a row there fails that test.

use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::Router;

use super::AppState;

/// One method on one path template (`/v4/runs/{id}`), and the surface that answers it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteSpec {
    pub surface: &'static str,
    /// Upper case: `GET`, `POST`, …
    pub method: String,
    pub path: String,
}

/// How a surface answers an error: its own body for a status and a message.
pub type ErrorShape = fn(StatusCode, String) -> Response;

/// A surface's router under construction, with the list of what it routes.
pub struct Routes {
    surface: &'static str,
    router: Router<AppState>,
    specs: Vec<RouteSpec>,
    error_shape: Option<ErrorShape>,
}

impl Routes {
    pub fn new(surface: &'static str) -> Self {
        Routes {
            surface,
            router: Router::new(),
            specs: Vec::new(),
            error_shape: None,
        }
    }

    /// Errors the framework answers before a handler runs (a body over the limit, a multipart
    /// body that is not one, a path that does not decode) come as plain text: these are
    /// answered in `shape` instead, so every error of the surface has its documented shape.
    pub fn with_error_shape(mut self, shape: ErrorShape) -> Self {
        self.error_shape = Some(shape);
        self
    }

    /// Routes `path` to `handlers`, which answer `methods` (lower case, as axum's routing
    /// functions are named). Use [`route!`](crate::route), which writes both from one
    /// expression.
    pub fn add(
        mut self,
        path: &str,
        methods: &[&'static str],
        handlers: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, handlers);
        self.specs.extend(methods.iter().map(|method| RouteSpec {
            surface: self.surface,
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
        }));
        self
    }

    pub fn router(self) -> Router<AppState> {
        match self.error_shape {
            Some(shape) => {
                self.router
                    .layer(axum::middleware::map_response(move |response: Response| {
                        reshape(response, shape)
                    }))
            }
            None => self.router,
        }
    }

    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    /// The first path segment of each route (`mlWorkbench`, `v4`) with the surface's error shape:
    /// a path under one that no route matches is answered in that shape (see
    /// [`not_found`]). Empty for a surface without a shape of its own.
    pub fn segments_shaped(&self) -> Vec<(String, ErrorShape)> {
        let Some(shape) = self.error_shape else {
            return Vec::new();
        };
        self.specs
            .iter()
            .map(|spec| (first_segment(&spec.path).to_string(), shape))
            .collect()
    }
}

fn first_segment(path: &str) -> &str {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
}

/// The answer to a path no route matches: 404 in the shape of the surface whose first path
/// segment it has (an Acumos client asking for a misspelt route gets Acumos's body), else in
/// `/v1`'s.
pub fn not_found(
    uri: &axum::http::Uri,
    shapes: &std::collections::HashMap<String, ErrorShape>,
) -> Response {
    const MESSAGE: &str = "no such route";
    match shapes.get(first_segment(uri.path())) {
        Some(shape) => shape(StatusCode::NOT_FOUND, MESSAGE.into()),
        None => axum::response::IntoResponse::into_response(super::error::ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            MESSAGE,
        )),
    }
}

/// A plain-text error answered in the surface's shape; any other answer as it is.
async fn reshape(response: Response, shape: ErrorShape) -> Response {
    let status = response.status();
    let plain_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/plain"));
    if !plain_text || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // The framework's messages are one short line.
    let message = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    shape(status, message)
}

/// `route!(routes, "/path", get(a).post(b))`: routes the path to those handlers and records
/// `GET` and `POST` for it.
#[macro_export]
macro_rules! route {
    ($routes:expr, $path:expr, $first:ident($first_handler:expr) $(. $method:ident($handler:expr))*) => {
        $routes.add(
            $path,
            &[stringify!($first) $(, stringify!($method))*],
            axum::routing::$first($first_handler) $(.$method($handler))*,
        )
    };
}

/// The `/v1` routes an OpenAPI document describes.
pub fn from_openapi(surface: &'static str, document: &utoipa::openapi::OpenApi) -> Vec<RouteSpec> {
    let mut specs = Vec::new();
    for (path, item) in &document.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("PATCH", &item.patch),
            ("HEAD", &item.head),
            ("OPTIONS", &item.options),
        ];
        for (method, operation) in operations {
            if operation.is_some() {
                specs.push(RouteSpec {
                    surface,
                    method: method.into(),
                    path: path.clone(),
                });
            }
        }
    }
    specs
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_listed_once() {
        let list = crate::api::route_list();
        for spec in &list {
            println!("{} {} {}", spec.surface, spec.method, spec.path);
        }
        let mut keys: Vec<_> = list.iter().map(|s| (&s.method, &s.path)).collect();
        keys.dedup();
        assert_eq!(keys.len(), list.len(), "a method and path routed twice");
        assert!(list
            .iter()
            .any(|s| s.method == "POST" && s.path == "/v4/runs"));
        assert!(list
            .iter()
            .any(|s| s.method == "GET" && s.path == "/v1/pipelines"));
    }
}
