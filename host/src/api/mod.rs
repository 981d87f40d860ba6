//! The HTTP surfaces. One module per surface, each exposing `router()`; [`app`] merges them with
//! the operational routes and the layers every request goes through (a request id, a tracing
//! span that carries it, metrics). Handlers are thin: parse the wire shape, call the registry
//! or the runs, map the answer.

pub mod acumos;
pub mod documents;
pub mod error;
pub mod gbdx;
pub mod mystic;
pub mod ops;
pub mod reference;
pub mod request_id;
pub mod routes;
pub mod time;
pub mod v1;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::registry::Registry;
use crate::runs::Runs;

/// What the surfaces adapt: the registry, the runs over it, and the key download links are
/// signed with (Mystic's `/v3/pipeline_files` links, see [`mystic`]). Built by
/// [`crate::server::build_services`].
#[derive(Clone)]
pub struct Services {
    pub registry: Registry,
    pub runs: Runs,
    pub link_key: Arc<[u8]>,
}

/// Everything a handler may reach, behind one `Arc`: axum clones the state for every request,
/// and a clone of the fields themselves (the registry and the runs are dozens of `Arc`s) cost
/// more than a hundredth of a warm run's CPU.
#[derive(Clone)]
pub struct AppState(Arc<Handlers>);

impl std::ops::Deref for AppState {
    type Target = Handlers;

    fn deref(&self) -> &Handlers {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Handlers {
    pub registry: Registry,
    pub runs: Runs,
    /// Signs Mystic's download links.
    pub link_key: Arc<[u8]>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub config: ApiConfig,
    /// The GBDX surface's last task listing, serialized.
    pub gbdx_listing: Arc<gbdx::ListingBody>,
}

/// How the surfaces decide who is calling, beyond bearer tokens.
#[derive(Clone, Debug, Default)]
pub struct ApiConfig {
    /// A header that a gateway in front of this server sets to the authenticated user's name.
    /// Honored (by the Acumos surface and the console) only when set: otherwise anyone could
    /// claim any user.
    pub trust_gateway_header: Option<axum::http::HeaderName>,
    /// The base of the absolute links this server hands out (`--public-url`, no trailing
    /// slash); None until [`crate::server::serve_on`] fills in the listen address.
    pub public_url: Option<String>,
}

/// The token of `Authorization: Bearer <token>`, if the request has one. A bare
/// `Authorization: pw_…` is taken too: the Acumos Workbench's backend sends its token that way.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .or_else(|| value.starts_with("pw_").then_some(value))
        .map(str::trim)
}

/// The user a trusted gateway names in its header, when the server was started with
/// `--trust-gateway-header` and the request carries a non-blank one (Acumos's
/// `authenticatedUserId`, the console's sign-in). Without that flag the header is ignored.
pub fn gateway_user<'a>(config: &ApiConfig, headers: &'a axum::http::HeaderMap) -> Option<&'a str> {
    config
        .trust_gateway_header
        .as_ref()
        .and_then(|header| headers.get(header))
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|user| !user.is_empty())
}

/// Largest request body accepted (version uploads carry their files).
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// The whole server: every surface, `/healthz`, `/readyz`, `/metrics`, the OpenAPI documents and
/// the reference rendered from them, and the web console ([`crate::console`]) at `/`.
pub fn app(services: Services, config: ApiConfig) -> Router {
    let (v1_router, _) = v1::router().split_for_parts();
    let state = AppState(Arc::new(Handlers {
        registry: services.registry,
        runs: services.runs,
        link_key: services.link_key,
        metrics: ops::metrics_handle(),
        config,
        gbdx_listing: Arc::default(),
    }));
    let mut app = Router::new().merge(v1_router);
    let mut shapes = std::collections::HashMap::new();
    for surface in surfaces() {
        shapes.extend(surface.segments_shaped());
        app = app.merge(surface.router());
    }
    let shapes = Arc::new(shapes);
    app.fallback(move |uri: axum::http::Uri| async move { routes::not_found(&uri, &shapes) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Outermost: the request's context (id, method, path: what log lines carry) covers
        // every layer, and every answer (even one a layer made) has the id.
        .layer(axum::middleware::from_fn(request_id::assign))
        .with_state(state)
}

/// The routers of every surface but `/v1` (which utoipa-axum builds with its document), and
/// the web console's.
fn surfaces() -> [routes::Routes; 5] {
    [
        acumos::routes(),
        gbdx::routes(),
        mystic::routes(),
        ops::routes(),
        crate::console::routes(),
    ]
}

/// Every route the server answers (see [`routes`]), sorted.
pub fn route_list() -> Vec<routes::RouteSpec> {
    let (_, openapi) = v1::router().split_for_parts();
    let mut list = routes::from_openapi("v1", &openapi);
    for surface in surfaces() {
        list.extend_from_slice(surface.specs());
    }
    list.sort();
    list
}

/// Counts every request by method, matched route and status, and times it.
async fn record_metrics(State(_): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("pipewright_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("pipewright_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
