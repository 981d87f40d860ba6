//! `/v1/policy-bindings`: the policy chains in force by scope, and (for the server's admin
//! account) setting or clearing one at run time.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Authenticated, Json};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::AppState;
use crate::registry::policy_admin::BindingInfo;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_bindings))
        .routes(routes!(set_binding, clear_binding))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBinding {
    /// Policy plugin names, in the order they run; each must approve.
    pub chain: Vec<String>,
}

/// Every binding in force, the built-in defaults included.
#[utoipa::path(get, path = "/v1/policy-bindings", tag = "policies",
    responses((status = 200, body = Vec<BindingInfo>), (status = 401, body = ErrorBody)))]
async fn list_bindings(
    State(state): State<AppState>,
    _caller: Authenticated,
) -> Result<Json<Vec<BindingInfo>>, ApiError> {
    Ok(Json(state.registry.list_bindings()))
}

/// Replaces the chain of a scope (`global`, `type:<id>`, `namespace:<name>`,
/// `surface:<name>`): the next request uses it, on every server.
#[utoipa::path(put, path = "/v1/policy-bindings/{scope}", tag = "policies", request_body = SetBinding,
    params(("scope" = String, Path, pattern = r"^(global|type:[^/]+|namespace:[^/]+|surface:[^/]+)$", description = "`global`, `type:<id>`, `namespace:<name>` or `surface:<name>`")),
    responses((status = 200, body = BindingInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
async fn set_binding(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<String>, PathRejection>,
    Json(body): Json<SetBinding>,
) -> Result<Json<BindingInfo>, ApiError> {
    let Path(scope) = path?;
    Ok(Json(
        state
            .registry
            .set_binding(&caller, &scope, body.chain)
            .await?,
    ))
}

/// Removes the operator's chain of a scope; its default (if any) applies again.
#[utoipa::path(delete, path = "/v1/policy-bindings/{scope}", tag = "policies",
    params(("scope" = String, Path, pattern = r"^(global|type:[^/]+|namespace:[^/]+|surface:[^/]+)$", description = "`global`, `type:<id>`, `namespace:<name>` or `surface:<name>`")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn clear_binding(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(scope) = path?;
    state.registry.clear_binding(&caller, &scope).await?;
    Ok(StatusCode::NO_CONTENT)
}
