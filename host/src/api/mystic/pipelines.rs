//! Pipelines: `POST /v4/pipelines` registers a pushed pipeline directory as a version (what
//! `pipewright pipeline push` sends); `GET /v4/pipelines` lists the account's runnable versions
//! as Mystic's pipelines (`pipeline get pipelines`); `DELETE /v4/pipelines/{id}` deletes one
//! (`pipeline delete pipeline ID`); `PATCH` is `pipeline edit pipeline`, of which nothing
//! applies here (see [`change_pipeline`]).
//!
//! A pipeline's id is `account/name:version`, the name it runs by; its `image` is the digest of
//! its content, which, as an image digest does, changes with any file.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json_;
use utoipa::ToSchema;

use super::{caller, json_body, query, Detail, DetailBody, Paging};
use crate::api::AppState;
use crate::registry::{Surface, VersionInfo, VersionState};

/// A pipeline directory, pushed.
#[derive(Deserialize, ToSchema)]
pub(super) struct PushRequest {
    /// The pipeline's `pipeline.yaml`, as JSON: `name`, `version`, `component`, `inputs`,
    /// `outputs`, `description`; or Mystic's own (`pipeline_name`, `pipeline_graph`,
    /// `runtime`, ...: a Python pipeline).
    #[schema(value_type = Object)]
    manifest: Json_,
    /// Every file of the pipeline's directory, the component included.
    files: Vec<PushedFile>,
    /// The version of a Python pipeline whose `pipeline_name` has no semver tag (none: the
    /// next patch after the latest). Ignored for a manifest that names its version.
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub(super) struct PushedFile {
    path: String,
    content_base64: String,
}

/// What a push registered.
#[derive(Serialize, ToSchema)]
pub(super) struct Pushed {
    /// `account/name:version`: the pipeline's id, and the name it runs by.
    pointer: String,
    state: VersionState,
    /// `plugin@version` of every policy that approved it.
    approved_by: Vec<String>,
}

/// Registers `account/name:version` (the token's account) from a pushed pipeline directory
/// (what `pipewright pipeline push` sends). Names must be lowercase. A Mystic pipeline
/// directory (`pipeline_graph` and no `component`) runs on the Python runtime; its name,
/// version and ports are derived (`crate::registry::python_pipelines`).
#[utoipa::path(post, path = "/v4/pipelines", tag = "pipelines", request_body = PushRequest,
    responses((status = 201, body = Pushed),
        (status = 400, description = "the manifest or a file is refused", body = DetailBody),
        (status = 401, body = DetailBody), (status = 403, body = DetailBody),
        (status = 409, description = "the version, or a pointer of that name, exists", body = DetailBody),
        (status = 413, description = "larger than the server takes", body = DetailBody),
        (status = 422, description = "not a push", body = DetailBody),
        (status = 502, description = "a plugin failed", body = DetailBody)))]
pub(super) async fn push_pipeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Pushed>), Detail> {
    use base64::Engine as _;
    let caller = caller(&state, &headers).await?;
    let mut request: PushRequest = json_body(&body, "push")?;
    let mut manifest =
        pipewright_manifest::RunManifest::from_json(&request.manifest).unwrap_or_default();
    let mut files = Vec::with_capacity(request.files.len() + 1);
    for file in request.files {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&file.content_base64)
            .map_err(|e| {
                Detail(
                    StatusCode::BAD_REQUEST,
                    format!("{}: not base64: {e}", file.path),
                )
            })?;
        files.push((file.path, bytes));
    }
    if manifest.python_graph().is_some() {
        let python = state
            .registry
            .python_version(
                &caller,
                &caller.account,
                &request.manifest,
                &files,
                request.version.as_deref(),
            )
            .await?;
        request.manifest = python.definition;
        manifest =
            pipewright_manifest::RunManifest::from_json(&request.manifest).unwrap_or_default();
    }
    let field = |key: &str, value: Option<String>| {
        value.ok_or_else(|| {
            Detail(
                StatusCode::BAD_REQUEST,
                format!("the manifest needs `{key}`"),
            )
        })
    };
    let (name, version) = (
        field("name", manifest.name)?,
        field("version", manifest.version)?,
    );
    files.retain(|(path, _)| path != RUNNABLE_MANIFEST);
    files.push((
        RUNNABLE_MANIFEST.into(),
        request.manifest.to_string().into_bytes(),
    ));
    let new = crate::registry::NewVersion {
        version,
        description: manifest.description,
        definition: request.manifest,
        files,
        source: None,
        source_upload: None,
        create_as_type: Some(RUNNABLE_TYPE.into()),
    };
    let registered = state
        .registry
        .register_version(&caller, &caller.account, &name, new, Surface::Mystic)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Pushed {
            pointer: pipeline_id(&registered),
            state: registered.state,
            approved_by: registered.approved_by,
        }),
    ))
}

/// The type of runnable pipelines (`plugins/runnable`): Mystic's pipelines. The file its
/// manifest is kept in.
pub const RUNNABLE_TYPE: &str = "runnable";
const RUNNABLE_MANIFEST: &str = "pipeline.json";

/// A version's id as Mystic's pipeline: `account/name:version`.
fn pipeline_id(version: &VersionInfo) -> String {
    format!("{}/{}:{}", version.namespace, version.name, version.version)
}

/// Mystic's `IOVariable`: one input or output of a pipeline.
#[derive(Serialize, ToSchema)]
pub(super) struct IoVariable {
    /// integer, string, fp, dictionary, boolean, array or file.
    run_io_type: String,
    /// The port's name.
    title: String,
    description: Option<String>,
}

/// Why a pipeline cannot run (Mystic's `PipelineContainerState`).
#[derive(Serialize, ToSchema)]
pub(super) struct FailedState {
    /// `load_failed`: its registration failed.
    state: String,
    message: Option<String>,
    current_run: Option<String>,
}

/// Mystic's `PipelineGet`.
#[derive(Serialize, ToSchema)]
pub(super) struct PipelineGet {
    /// `account/name:version`.
    id: String,
    /// `account/name`.
    name: String,
    /// The digest of its content.
    image: String,
    input_variables: Vec<IoVariable>,
    output_variables: Vec<IoVariable>,
    /// Seconds since the Unix epoch (the CLI reads a number).
    created_at: f64,
    updated_at: f64,
    /// Always `["cpu"]`.
    accelerators: Vec<String>,
    /// The Python that runs it, for a Python pipeline (its `runtime.python.version` is what
    /// was asked); null for a component.
    python_version: Option<String>,
    /// Always null.
    #[schema(value_type = Option<Object>)]
    extras: Option<Json_>,
    /// Always null.
    #[schema(value_type = Option<Object>)]
    cluster: Option<Json_>,
    /// Always null: capacity is the server's (`--max-runs-per-pipeline`, `--idle-timeout-secs`).
    scaling_config: Option<String>,
    failed_state_info: Option<FailedState>,
}

fn pipeline_get(version: VersionInfo) -> PipelineGet {
    let manifest =
        pipewright_manifest::RunManifest::from_json(&version.definition).unwrap_or_default();
    let variables = |ports: &pipewright_manifest::Ports| {
        ports
            .as_slice()
            .iter()
            .map(|port| IoVariable {
                run_io_type: match port.r#type.as_str() {
                    "float" => "fp".to_string(),
                    other => other.to_string(),
                },
                title: port.name.clone(),
                description: None,
            })
            .collect()
    };
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let failed_state_info = (version.state == VersionState::Failed).then(|| FailedState {
        state: "load_failed".into(),
        message: version.registration.last_error.clone(),
        current_run: None,
    });
    PipelineGet {
        id: pipeline_id(&version),
        name: format!("{}/{}", version.namespace, version.name),
        image: version.content_digest.clone().unwrap_or_default(),
        input_variables: variables(&manifest.inputs),
        output_variables: variables(&manifest.outputs),
        created_at: seconds(version.registered_at_ms),
        updated_at: seconds(
            version
                .registration
                .finished_at_ms
                .unwrap_or(version.registered_at_ms),
        ),
        accelerators: vec!["cpu".into()],
        python_version: version
            .definition
            .pointer("/python/version")
            .and_then(Json_::as_str)
            .map(str::to_string),
        extras: None,
        cluster: None,
        scaling_config: None,
        failed_state_info,
    }
}

/// Mystic's `Paginated[PipelineGet]`.
#[derive(Serialize, ToSchema)]
pub(super) struct PipelinePage {
    skip: u64,
    limit: u64,
    total: u64,
    data: Vec<PipelineGet>,
}

/// The caller's account's pipelines (every version of its runnable pipelines), by name and
/// registration.
#[utoipa::path(get, path = "/v4/pipelines", tag = "pipelines", params(Paging),
    responses((status = 200, body = PipelinePage), (status = 401, body = DetailBody),
        (status = 422, description = "a bad `skip` or `limit`", body = DetailBody)))]
pub(super) async fn list_pipelines(
    State(state): State<AppState>,
    headers: HeaderMap,
    paging: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<PipelinePage>, Detail> {
    let caller = caller(&state, &headers).await?;
    let (skip, limit) = query(paging)?.checked()?;
    let page = state
        .registry
        .list_owned_versions(&caller, RUNNABLE_TYPE, skip, limit)
        .await?;
    Ok(Json(PipelinePage {
        skip,
        limit,
        total: page.total,
        data: page.items.into_iter().map(pipeline_get).collect(),
    }))
}

/// The pipeline `{namespace}/{pipeline}` names (`account` / `name:version`), if it is one of
/// the caller's runnable versions.
async fn owned_pipeline(
    state: &AppState,
    caller: &crate::registry::Caller,
    namespace: &str,
    pipeline: &str,
) -> Result<VersionInfo, Detail> {
    let id = format!("{namespace}/{pipeline}");
    let not_found = || {
        Detail(
            StatusCode::NOT_FOUND,
            format!("pipeline {id} not found (a pipeline id is account/name:version)"),
        )
    };
    let named = super::tagged_name(&id).ok_or_else(not_found)?;
    let version = state
        .registry
        .version(caller, &named.namespace, &named.name, Some(&named.tag))
        .await?;
    if version.pipeline_type != RUNNABLE_TYPE {
        return Err(not_found());
    }
    Ok(version)
}

/// Deletes a pipeline: that version (its pointers stay, dangling, until moved or deleted).
#[utoipa::path(delete, path = "/v4/pipelines/{namespace}/{pipeline}", tag = "pipelines",
    params(("namespace" = String, Path, description = "the account"),
        ("pipeline" = String, Path, description = "`name:version`: with the account, the pipeline's id")),
    responses((status = 204, description = "deleted"), (status = 401, body = DetailBody),
        (status = 403, body = DetailBody), (status = 404, body = DetailBody),
        (status = 409, description = "it is still registering, or changed meanwhile", body = DetailBody)))]
pub(super) async fn delete_pipeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((namespace, pipeline)): Path<(String, String)>,
) -> Result<StatusCode, Detail> {
    let caller = caller(&state, &headers).await?;
    let version = owned_pipeline(&state, &caller, &namespace, &pipeline).await?;
    state
        .registry
        .delete_version(
            &caller,
            &version.namespace,
            &version.name,
            &version.version,
            Surface::Mystic,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mystic's `PipelinePatch` (what `pipeline edit pipeline` sends: every field, null unless
/// given; the CLI's `--cache-number` and `--gpu-memory` never reach the wire). Only what
/// changes nothing here is taken: nulls, `["cpu"]`, and any scaling configuration's name
/// (none exists: 404).
#[derive(Deserialize, ToSchema)]
pub(super) struct PipelinePatch {
    #[serde(default)]
    #[schema(schema_with = only_null)]
    input_variables: Option<Json_>,
    #[serde(default)]
    #[schema(schema_with = only_null)]
    output_variables: Option<Json_>,
    #[serde(default)]
    #[schema(schema_with = cpu_only)]
    accelerators: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = only_null)]
    extras: Option<Json_>,
    #[serde(default)]
    scaling_config: Option<String>,
}

/// A field that may only be null here.
fn only_null() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Null)
        .build()
}

/// `["cpu"]` (or any number of `"cpu"`), or null.
fn cpu_only() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType, Type};
    use utoipa::openapi::ObjectBuilder;
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["cpu"])),
        )
        .build()
}

/// `pipeline edit pipeline`: nothing of a pipeline is edited here. Its inputs and outputs are
/// its manifest's (a version never changes; push a new one), it runs on CPU, and its capacity
/// is the server's, so no named scaling configuration exists: a patch that asks for none of
/// these changes nothing and answers the pipeline; one that does is refused, saying why.
#[utoipa::path(patch, path = "/v4/pipelines/{namespace}/{pipeline}", tag = "pipelines",
    request_body = PipelinePatch,
    params(("namespace" = String, Path, description = "the account"),
        ("pipeline" = String, Path, description = "`name:version`: with the account, the pipeline's id")),
    responses((status = 200, description = "nothing to change", body = PipelineGet),
        (status = 401, body = DetailBody), (status = 403, body = DetailBody),
        (status = 404, description = "no such pipeline, or no such scaling configuration", body = DetailBody),
        (status = 422, description = "not a patch, or a change this server cannot make", body = DetailBody)))]
pub(super) async fn change_pipeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((namespace, pipeline)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<PipelineGet>, Detail> {
    let caller = caller(&state, &headers).await?;
    let patch: PipelinePatch = json_body(&body, "pipeline patch")?;
    let version = owned_pipeline(&state, &caller, &namespace, &pipeline).await?;
    if let Some(name) = patch.scaling_config {
        return Err(Detail(
            StatusCode::NOT_FOUND,
            format!(
                "scaling configuration `{name}` not found: this server has none; its operator sets capacity with --max-runs-per-pipeline and --idle-timeout-secs"
            ),
        ));
    }
    if patch.input_variables.is_some() || patch.output_variables.is_some() {
        return Err(Detail::bad_input(
            "a pipeline's inputs and outputs are its manifest's and never change: push a new version",
        ));
    }
    if patch
        .accelerators
        .is_some_and(|a| a.iter().any(|a| a != "cpu"))
    {
        return Err(Detail::bad_input("pipelines run on CPU only here"));
    }
    if patch.extras.is_some() {
        return Err(Detail::bad_input("pipelines keep no extras here"));
    }
    Ok(Json(pipeline_get(version)))
}
