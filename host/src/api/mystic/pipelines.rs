//! Pipelines: `POST /v4/pipelines` registers a pushed pipeline directory as a version.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value as Json_};

use super::{caller, Detail};
use crate::api::AppState;

#[derive(Deserialize)]
struct PushRequest {
    /// The pipeline's `pipeline.yaml`, as JSON.
    manifest: Json_,
    /// Every file of the pipeline's directory, the component included.
    files: Vec<PushedFile>,
}

#[derive(Deserialize)]
struct PushedFile {
    path: String,
    content_base64: String,
}

/// `POST /v4/pipelines`: registers `account/name:version` (the token's account) from a pushed
/// pipeline directory (what `pipewright pipeline push` sends). Names must be lowercase.
pub(super) async fn push_pipeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Json_>), Detail> {
    use base64::Engine as _;
    let caller = caller(&state, &headers).await?;
    let request: PushRequest = serde_json::from_slice(&body).map_err(|e| {
        Detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid push: {e}"),
        )
    })?;
    let manifest =
        pipewright_manifest::RunManifest::from_json(&request.manifest).unwrap_or_default();
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
        .register_version(
            &caller,
            &caller.account,
            &name,
            new,
            crate::registry::Surface::Mystic,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "pointer": format!("{}/{}:{}", registered.namespace, registered.name, registered.version),
            "state": registered.state,
            "approved_by": registered.approved_by,
        })),
    ))
}

/// The type of runnable pipelines (`plugins/runnable`) and the file its manifest is kept in.
const RUNNABLE_TYPE: &str = "runnable";
const RUNNABLE_MANIFEST: &str = "pipeline.json";

