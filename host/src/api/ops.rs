//! Operational routes: `/healthz` (the process answers and its database does), `/readyz` (every
//! dependency a request needs is usable), `/metrics` (Prometheus text) and the served OpenAPI
//! document, generated from the handlers' annotations. None needs a token.
//!
//! `/healthz` is for liveness (restart me if this fails); `/readyz` for traffic (send me
//! requests only when this passes): a blob store that takes no writes makes the server unready,
//! not dead.
//!
//! The metrics are true to their type: histograms are exported with buckets (a summary's
//! quantiles cannot be aggregated across replicas), counters only ever increase (counts since
//! the process started), and a value that goes up and down is a gauge.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::documents;
use super::error::{ApiError, ErrorBody};
use super::reference;
use super::routes::Routes;
use super::AppState;
use crate::route;

pub fn routes() -> Routes {
    let routes = Routes::new("ops");
    let routes = route!(routes, "/healthz", get(healthz));
    let routes = route!(routes, "/readyz", get(readyz));
    let routes = route!(routes, "/metrics", get(metrics_text));
    let routes = route!(routes, "/v1/openapi.json", get(v1_document));
    let routes = route!(routes, "/openapi/{document}", get(document));
    let routes = route!(routes, "/docs", get(reference::index));
    route!(routes, "/docs/{surface}", get(reference::surface))
}

/// The operational routes' own document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(
        info(title = "pipewright operations", description = "Health, readiness, metrics, and the API documents. No route here needs a token."),
        paths(healthz, readyz, metrics_text, v1_document, document, docs_index, docs_surface),
        components(schemas(Health, Readiness, ErrorBody)),
        tags((name = "ops", description = "Operational routes"))
    )]
    struct OpsDoc;
    <OpsDoc as utoipa::OpenApi>::openapi()
}

/// Upper bounds (seconds) of the buckets of every histogram but the run durations': HTTP
/// answers, from a cached read to a large upload.
const REQUEST_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Upper bounds (seconds) of the run durations' buckets: a trivial run takes a millisecond, a
/// long one up to the run timeout (`--run-timeout-secs`).
const RUN_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0,
];

/// How often recorded histogram samples are folded into their buckets when nobody scrapes:
/// without it they pile up in memory until the next scrape.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process-wide Prometheus recorder (installed once, whatever number of apps is built).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(REQUEST_SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("pipewright_run_duration_seconds".into()),
                        RUN_SECONDS_BUCKETS,
                    )
                })
                .expect("the bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed by an embedding program; ours still renders.
            if metrics::set_global_recorder(recorder).is_ok() {
                describe_metrics();
            }
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(METRICS_UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            handle
        })
        .clone()
}

/// HELP lines, and the metrics that must be exported before their first event (a counter of
/// failures that has not failed yet reads 0, not "absent").
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "pipewright_http_requests_total",
        "HTTP requests answered, by method, matched route and status"
    );
    describe_histogram!(
        "pipewright_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (to its headers), by method and matched route"
    );
    describe_gauge!(
        "pipewright_http_requests_in_flight",
        "HTTP requests received and not yet answered"
    );
    describe_gauge!(
        "pipewright_runs_active",
        "Runs of runnable pipelines executing now (not those waiting for capacity)"
    );
    describe_histogram!(
        "pipewright_run_duration_seconds",
        Unit::Seconds,
        "Time a run executed, by the state it ended in (completed, failed, stopped)"
    );
    describe_counter!("pipewright_runs_total", "Runs executed, by outcome");
    describe_gauge!(
        "pipewright_registrations_pending",
        "Versions still registering (in the store: on every replica), read at each scrape"
    );
    describe_counter!(
        "pipewright_registration_attempts_total",
        "Registration attempts started by this process"
    );
    describe_counter!(
        "pipewright_registration_failures_total",
        "Registration attempts that failed, by what followed: retrying, or failed for good"
    );
    describe_counter!(
        "pipewright_plugin_compiles_total",
        "Components compiled (not found in the compile cache)"
    );
    describe_counter!(
        "pipewright_plugin_cache_loads_total",
        "Components loaded from the compile cache"
    );
    describe_counter!(
        "pipewright_plugin_calls_total",
        "Plugin calls, by plugin, export and outcome"
    );
    for counter in [
        "pipewright_registration_attempts_total",
        "pipewright_plugin_compiles_total",
        "pipewright_plugin_cache_loads_total",
    ] {
        metrics::counter!(counter).increment(0);
    }
    metrics::gauge!("pipewright_runs_active").increment(0.0);
    metrics::gauge!("pipewright_http_requests_in_flight").increment(0.0);
}

/// `/healthz`'s answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // Describes the JSON the handler writes.
struct Health {
    /// `ok`, or `unavailable` when the database does not answer.
    status: String,
    /// Why not, when unavailable.
    reason: Option<String>,
}

/// `/readyz`'s answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // Describes the JSON the handler writes.
struct Readiness {
    /// `ready` or `unavailable`.
    status: String,
    /// Each check (`database`, `blob_store`, `builtin_plugins`) and its state, `ok` or `failed`.
    checks: std::collections::BTreeMap<String, String>,
}

/// Liveness: the process answers and its database does.
#[utoipa::path(get, path = "/healthz", tag = "ops", security(()),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.registry.alive().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({"status": "unavailable", "reason": "database unreachable"}),
                ),
            )
        }
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", security(()),
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    match state.registry.registrations_pending().await {
        Ok(pending) => metrics::gauge!("pipewright_registrations_pending").set(pending as f64),
        // The last value read stays; the failure shows in /readyz and the log.
        Err(error) => tracing::warn!(
            error = format!("{error:#}"),
            "metrics: could not count the registering versions"
        ),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// 200 when the store answers a query, the blob store takes a write and the built-in plugins
/// are loaded; 503 otherwise. The body names each check and its state (`ok` or `failed`); why
/// one failed goes to the log only (the route is open to anyone, the reason may name paths).
#[utoipa::path(get, path = "/readyz", tag = "ops", security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = state.registry.readiness().await;
    let mut ready = true;
    let mut checks = serde_json::Map::new();
    for (name, result) in [
        ("database", readiness.database),
        ("blob_store", readiness.blob_store),
        ("builtin_plugins", readiness.builtin_plugins),
    ] {
        let state = match result {
            Ok(()) => "ok",
            Err(error) => {
                tracing::warn!(
                    check = name,
                    error = format!("{error:#}"),
                    "readiness check failed"
                );
                ready = false;
                "failed"
            }
        };
        checks.insert(name.into(), state.into());
    }
    let (status, word) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(serde_json::json!({ "status": word, "checks": checks })),
    )
}

/// The native API's document, at the address it has always had.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "ops", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of /v1", body = Object)))]
async fn v1_document() -> Response {
    surface_document("v1")
}

/// A surface's OpenAPI document: `v1.json`, `acumos.json`, `gbdx.json`, `mystic.json`,
/// `ops.json`.
#[utoipa::path(get, path = "/openapi/{document}", tag = "ops", security(()),
    params(("document" = String, Path, description = "`SURFACE.json`: v1, acumos, gbdx, mystic or ops")),
    responses((status = 200, description = "The surface's OpenAPI 3.1 document", body = Object),
              (status = 404, description = "No such surface", body = ErrorBody)))]
async fn document(Path(document): Path<String>) -> Response {
    match document.strip_suffix(".json") {
        Some(surface) => surface_document(surface),
        None => {
            ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such document").into_response()
        }
    }
}

fn surface_document(surface: &str) -> Response {
    match documents::find(surface) {
        Some(found) => Json(&found.document).into_response(),
        None => {
            ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such document").into_response()
        }
    }
}

/// The reference rendered for people: the list of surfaces.
#[utoipa::path(get, path = "/docs", tag = "ops", security(()),
    responses((status = 200, description = "HTML", body = String, content_type = "text/html")))]
#[allow(dead_code)] // Routed as `reference::index`; this is its description.
async fn docs_index() {}

/// The reference rendered for people: one surface.
#[utoipa::path(get, path = "/docs/{surface}", tag = "ops", security(()),
    params(("surface" = String, Path, description = "v1, acumos, gbdx, mystic or ops")),
    responses((status = 200, description = "HTML", body = String, content_type = "text/html"),
              (status = 404, description = "No such surface", body = String, content_type = "text/html")))]
#[allow(dead_code)] // Routed as `reference::surface`; this is its description.
async fn docs_surface() {}
