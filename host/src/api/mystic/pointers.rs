//! Pointers (Mystic's tags, [`crate::registry::pointers`]): `GET`/`POST /v4/pointers` and
//! `PATCH`/`DELETE /v4/pointers/{pointer}`, what `pipeline get|create|edit|delete pointer`
//! send. A pointer is `account/name:pointer`; it names a pipeline (`account/name:version`) of
//! the same name.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{caller, json_body, query, tagged_name, Detail, DetailBody, Paging};
use crate::api::AppState;
use crate::registry::pointers::{PointerChange, PointerInfo, TaggedName};

/// Mystic's `PointerGet`.
#[derive(Serialize, ToSchema)]
pub(super) struct PointerGet {
    id: String,
    /// `account/name:pointer`.
    pointer: String,
    /// The pipeline it names, `account/name:version` (which may have been deleted).
    pipeline_id: String,
    locked: bool,
}

impl From<PointerInfo> for PointerGet {
    fn from(pointer: PointerInfo) -> Self {
        let pipeline = format!("{}/{}", pointer.namespace, pointer.name);
        PointerGet {
            id: pointer.id,
            pointer: format!("{pipeline}:{}", pointer.pointer),
            pipeline_id: format!("{pipeline}:{}", pointer.version),
            locked: pointer.locked,
        }
    }
}

/// Mystic's `PointerCreate`.
#[derive(Deserialize, ToSchema)]
pub(super) struct PointerCreate {
    /// `account/name:pointer`.
    #[schema(schema_with = super::tagged_name_schema)]
    pointer: String,
    /// What it names: a pipeline id (`account/name:version`) or another pointer of the same
    /// pipeline (it takes that pointer's version).
    #[schema(schema_with = super::tagged_name_schema)]
    pointer_or_pipeline_id: String,
    #[serde(default)]
    locked: Option<bool>,
}

/// Mystic's `PointerPatch`.
#[derive(Deserialize, ToSchema)]
pub(super) struct PointerPatch {
    /// Where to move it; refused while it is locked.
    #[serde(default)]
    #[schema(schema_with = super::optional_tagged_name_schema)]
    pointer_or_pipeline_id: Option<String>,
    #[serde(default)]
    locked: Option<bool>,
}

/// Mystic's `Paginated[PointerGet]`.
#[derive(Serialize, ToSchema)]
pub(super) struct PointerPage {
    skip: u64,
    limit: u64,
    total: u64,
    data: Vec<PointerGet>,
}

/// What `pipeline get pointers` filters by.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PointerFilter {
    /// Only the pointers of this pipeline: `account/name`, or `name` in the caller's account.
    #[serde(default)]
    pipeline_name: Option<String>,
    /// Also the pointers whose pipeline was deleted.
    #[serde(default)]
    show_deleted: bool,
}

/// A pointer as it is written, or 422.
fn pointer_name(text: &str) -> Result<TaggedName, Detail> {
    tagged_name(text).ok_or_else(|| {
        Detail::bad_input(format!("`{text}` is not a pointer (account/name:pointer)"))
    })
}

/// What a pointer is to name: a pipeline id or a pointer; 404 when it can name nothing.
fn target_name(text: &str) -> Result<TaggedName, Detail> {
    tagged_name(text).ok_or_else(|| {
        Detail(
            StatusCode::NOT_FOUND,
            format!("pipeline or pointer {text} not found (account/name:version or account/name:pointer)"),
        )
    })
}

/// The pointers of the caller's account's pipelines, by pipeline and name.
#[utoipa::path(get, path = "/v4/pointers", tag = "pointers", params(PointerFilter, Paging),
    responses((status = 200, body = PointerPage), (status = 401, body = DetailBody),
        (status = 422, description = "a bad filter, `skip` or `limit`", body = DetailBody)))]
pub(super) async fn list_pointers(
    State(state): State<AppState>,
    headers: HeaderMap,
    filter: Result<Query<PointerFilter>, QueryRejection>,
    paging: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<PointerPage>, Detail> {
    let caller = caller(&state, &headers).await?;
    let (filter, (skip, limit)) = (query(filter)?, query(paging)?.checked()?);
    let pipeline = filter.pipeline_name.as_deref().map(|name| {
        name.split_once('/')
            .unwrap_or((caller.account.as_str(), name))
    });
    let page = state
        .registry
        .list_pointers(&caller, pipeline, filter.show_deleted, skip, limit)
        .await?;
    Ok(Json(PointerPage {
        skip,
        limit,
        total: page.total,
        data: page.items.into_iter().map(PointerGet::from).collect(),
    }))
}

/// Creates a pointer. Its name may not be one of the pipeline's versions'.
#[utoipa::path(post, path = "/v4/pointers", tag = "pointers", request_body = PointerCreate,
    responses((status = 201, body = PointerGet),
        (status = 400, description = "a pointer name this server refuses, or a target of another pipeline", body = DetailBody),
        (status = 401, body = DetailBody), (status = 403, body = DetailBody),
        (status = 404, description = "no such pipeline or pointer to name", body = DetailBody),
        (status = 409, description = "the pointer exists, or its name is a version's", body = DetailBody),
        (status = 422, description = "not a pointer", body = DetailBody)))]
pub(super) async fn create_pointer(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<PointerGet>), Detail> {
    let caller = caller(&state, &headers).await?;
    let request: PointerCreate = json_body(&body, "pointer")?;
    let pointer = pointer_name(&request.pointer)?;
    let target = target_name(&request.pointer_or_pipeline_id)?;
    let created = state
        .registry
        .create_pointer(&caller, &pointer, &target, request.locked.unwrap_or(false))
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The pointer `{namespace}/{pointer}` names: `account` / `name:pointer`.
fn pointer_in_path(namespace: &str, pointer: &str) -> Result<TaggedName, Detail> {
    let text = format!("{namespace}/{pointer}");
    tagged_name(&text).ok_or_else(|| {
        Detail(
            StatusCode::NOT_FOUND,
            format!("pointer {text} not found (account/name:pointer)"),
        )
    })
}

/// Moves a pointer, locks or unlocks it. A locked pointer is not moved, also not by a request
/// that unlocks it: unlock it first.
#[utoipa::path(patch, path = "/v4/pointers/{namespace}/{pointer}", tag = "pointers",
    request_body = PointerPatch,
    params(("namespace" = String, Path, description = "the account"),
        ("pointer" = String, Path, description = "`name:pointer`")),
    responses((status = 200, body = PointerGet),
        (status = 400, description = "a target of another pipeline", body = DetailBody),
        (status = 401, body = DetailBody), (status = 403, body = DetailBody),
        (status = 404, description = "no such pointer, or nothing to move it to", body = DetailBody),
        (status = 409, description = "it is locked", body = DetailBody),
        (status = 422, description = "not a pointer patch", body = DetailBody)))]
pub(super) async fn change_pointer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((namespace, pointer)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<PointerGet>, Detail> {
    let caller = caller(&state, &headers).await?;
    let patch: PointerPatch = json_body(&body, "pointer patch")?;
    let pointer = pointer_in_path(&namespace, &pointer)?;
    let change = PointerChange {
        target: patch
            .pointer_or_pipeline_id
            .as_deref()
            .map(target_name)
            .transpose()?,
        locked: patch.locked,
    };
    let changed = state
        .registry
        .change_pointer(&caller, &pointer, change)
        .await?;
    Ok(Json(changed.into()))
}

/// Deletes an unlocked pointer.
#[utoipa::path(delete, path = "/v4/pointers/{namespace}/{pointer}", tag = "pointers",
    params(("namespace" = String, Path, description = "the account"),
        ("pointer" = String, Path, description = "`name:pointer`")),
    responses((status = 204, description = "deleted"), (status = 401, body = DetailBody),
        (status = 403, body = DetailBody), (status = 404, body = DetailBody),
        (status = 409, description = "it is locked", body = DetailBody)))]
pub(super) async fn delete_pointer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((namespace, pointer)): Path<(String, String)>,
) -> Result<StatusCode, Detail> {
    let caller = caller(&state, &headers).await?;
    let pointer = pointer_in_path(&namespace, &pointer)?;
    state.registry.delete_pointer(&caller, &pointer).await?;
    Ok(StatusCode::NO_CONTENT)
}
