//! Operational routes: `/healthz` (the database answers), `/metrics` (Prometheus text) and the
//! served OpenAPI document, generated from the handlers' annotations.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::error::ApiError;
use super::routes::Routes;
use super::AppState;
use crate::route;

pub fn routes() -> Routes {
    let routes = Routes::new("ops");
    let routes = route!(routes, "/healthz", get(healthz));
    let routes = route!(routes, "/metrics", get(metrics_text));
    route!(routes, "/v1/openapi.json", get(openapi))
}

/// The process-wide Prometheus recorder (installed once, whatever number of apps is built).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed by an embedding program; ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.registry.store().ping().await {
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

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let cache = state.registry.plugins().cache_stats();
    metrics::gauge!("pipewright_plugin_compiles").set(cache.compiled as f64);
    metrics::gauge!("pipewright_plugin_cache_loads").set(cache.loaded_from_cache as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.openapi.as_ref().clone())
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such route")
}
