//! `/v1/plugins`: the plugin registry. Anyone with a token may look; members of the server's
//! admin account add versions (an upload, or a URL the server fetches), activate, deactivate
//! and roll back. The core is [`crate::registry::plugin_versions`].

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Authenticated, Json};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::AppState;
use crate::registry::plugin_versions::{
    PluginDetail, PluginSource, PluginSummary, PluginVersionInfo,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins))
        .routes(routes!(show_plugin))
        .routes(routes!(add_version, show_version))
        .routes(routes!(activate))
        .routes(routes!(deactivate))
        .routes(routes!(rollback))
}

#[derive(Deserialize, IntoParams)]
pub struct AddQuery {
    /// Make the new version the active one in the same step.
    #[serde(default)]
    pub activate: bool,
}

/// A version fetched by the server instead of uploaded (`Content-Type: application/json`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FromUrl {
    /// http(s), or `file://` under the server's `--registration-file-root`.
    pub url: String,
    /// `sha256:<hex>` the fetched bytes must have.
    pub digest: Option<String>,
}

/// Every plugin (the built-ins too), with its versions and which one is active.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins",
    responses((status = 200, body = Vec<PluginSummary>), (status = 401, body = ErrorBody)))]
async fn list_plugins(
    State(state): State<AppState>,
    _caller: Authenticated,
) -> Result<Json<Vec<PluginSummary>>, ApiError> {
    Ok(Json(state.registry.list_plugins().await?))
}

/// One plugin with every version.
#[utoipa::path(get, path = "/v1/plugins/{name}", tag = "plugins", params(("name" = String, Path)),
    responses((status = 200, body = PluginDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show_plugin(
    State(state): State<AppState>,
    _caller: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PluginDetail>, ApiError> {
    let Path(name) = path?;
    Ok(Json(state.registry.plugin(&name).await?))
}

/// One version: world, WIT, digest, size, who added it, whether active, where bound.
#[utoipa::path(get, path = "/v1/plugins/{name}/versions/{version}", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = PluginVersionInfo), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show_version(
    State(state): State<AppState>,
    _caller: Authenticated,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<PluginVersionInfo>, ApiError> {
    let Path((name, version)) = path?;
    Ok(Json(state.registry.plugin_version(&name, &version).await?))
}

/// Adds `name@version`: the body is the component (`application/wasm`), or
/// `{"url", "digest"?}` (`application/json`) for the server to fetch. The component must
/// implement a known world and import only what the host grants. Adding the same bytes again
/// answers 200; other bytes under an existing version, 409 (versions are immutable).
#[utoipa::path(post, path = "/v1/plugins/{name}/versions/{version}", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path), AddQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = PluginVersionInfo), (status = 200, body = PluginVersionInfo),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_version(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<AddQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<PluginVersionInfo>), ApiError> {
    let Path((name, version)) = path?;
    let Query(query) = query?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let source = if is_json {
        let from: FromUrl = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "invalid-body",
                format!("expected {{\"url\", \"digest\"?}}: {e}"),
            )
        })?;
        PluginSource::Url {
            url: from.url,
            digest: from.digest,
        }
    } else if body.is_empty() {
        return Err(ApiError::bad_request(
            "invalid-body",
            "the body must be the component (application/wasm) or {\"url\"} (application/json)",
        ));
    } else {
        PluginSource::Upload(body.to_vec())
    };
    let (info, created) = state
        .registry
        .add_plugin(&caller, &name, &version, source, query.activate)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)))
}

/// Makes this version the active one, on every server (the next request uses it).
#[utoipa::path(post, path = "/v1/plugins/{name}/versions/{version}/activate", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = PluginVersionInfo), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn activate(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<PluginVersionInfo>, ApiError> {
    let Path((name, version)) = path?;
    Ok(Json(
        state
            .registry
            .activate_plugin(&caller, &name, &version)
            .await?,
    ))
}

/// Makes no version of the plugin active (refused while a policy binding names it).
#[utoipa::path(post, path = "/v1/plugins/{name}/deactivate", tag = "plugins",
    params(("name" = String, Path)),
    responses((status = 200, body = PluginDetail), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn deactivate(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PluginDetail>, ApiError> {
    let Path(name) = path?;
    Ok(Json(
        state.registry.deactivate_plugin(&caller, &name).await?,
    ))
}

/// Makes the version that was active before the current one active again.
#[utoipa::path(post, path = "/v1/plugins/{name}/rollback", tag = "plugins",
    params(("name" = String, Path)),
    responses((status = 200, body = PluginVersionInfo), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PluginVersionInfo>, ApiError> {
    let Path(name) = path?;
    Ok(Json(state.registry.rollback_plugin(&caller, &name).await?))
}
