//! The native API, `/v1`: pipelines, their versions, types and plugins, in one REST shape;
//! projects and workbench pipeline records in [`workbench`].
//! Every route needs a bearer token (`Authorization: Bearer pw_…`, from `pipewright token create`).

mod bindings;
mod plugins;
mod workbench;

use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::{ApiError, ErrorBody};
use crate::api::AppState;
use crate::registry::paging::{KeysetPage, PageLimit};
use crate::registry::service::PipelineType;
use crate::registry::{self, Caller, PipelineInfo, RegistryError, Surface, VersionInfo};

#[derive(OpenApi)]
#[openapi(
    info(title = "pipewright native API", description = "Registry of versioned pipelines and WebAssembly plugins."),
    components(schemas(ErrorBody)),
    security(("bearer" = []))
)]
struct ApiDoc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_pipeline, list_pipelines))
        .routes(routes!(get_pipeline_version))
        .routes(routes!(register_version, list_versions))
        .routes(routes!(get_version, delete_version))
        .routes(routes!(list_types))
        .routes(routes!(scaffold))
        .merge(workbench::router())
        .merge(bindings::router())
        .merge(plugins::router())
}

/// The structural rules of every name and version ([`registry::names::check`]) as a JSON
/// Schema pattern: 1 to 128 characters, none of them `/`, `:`, whitespace or a control
/// character. What a policy adds (lower case, semver) is not in it: policies are bound at run
/// time.
pub const NAME_PATTERN: &str = r"^[^/:\s\x00-\x1f\x7f-\x9f]{1,128}$";

/// A name or version in a request body: a string matching [`NAME_PATTERN`].
pub fn name_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(NAME_PATTERN))
        .build()
}

/// [`name_schema`], or null.
pub fn optional_name_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    use utoipa::openapi::ObjectBuilder;
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(NAME_PATTERN))
        .build()
}

/// A JSON body whose rejections are this surface's documented errors.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// The caller, from `Authorization: Bearer <token>`.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token =
            crate::api::bearer_token(&parts.headers).ok_or(RegistryError::Unauthenticated)?;
        let caller = state.registry.authenticate(token).await?;
        crate::api::request_id::record_user(&caller.user);
        Ok(Authenticated(caller))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePipeline {
    /// Defaults to the caller's account.
    #[schema(schema_with = optional_name_schema)]
    pub namespace: Option<String>,
    #[schema(schema_with = name_schema)]
    pub name: String,
    /// A registered pipeline type (`jupyter`, `zeppelin`, ...); case-insensitive.
    #[serde(rename = "type")]
    pub pipeline_type: String,
    pub description: Option<String>,
}

/// Creates a pipeline (no versions yet).
#[utoipa::path(post, path = "/v1/pipelines", tag = "pipelines", request_body = CreatePipeline,
    responses((status = 201, body = PipelineInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_pipeline(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Json(body): Json<CreatePipeline>,
) -> Result<(StatusCode, Json<PipelineInfo>), ApiError> {
    let new = registry::NewPipeline {
        namespace: body.namespace,
        name: body.name,
        pipeline_type: body.pipeline_type,
        description: body.description,
    };
    Ok((
        StatusCode::CREATED,
        Json(state.registry.create_pipeline(&caller, new).await?),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only pipelines of this namespace.
    pub namespace: Option<String>,
}

/// Which page of a list: every list of `/v1` is paged by cursor (see [`registry::paging`]).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items a page holds, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Where the page starts: the `cursor` of the previous page's `Link: <…>; rel="next"`
    /// (opaque; absent for the first page). A cursor of another list is refused.
    pub cursor: Option<String>,
}

/// `items` as a JSON array, with a `Link` to the page after it when there is one (RFC 8288, as
/// GitHub pages): the request's path, its other query parameters, the same limit and the next
/// page's cursor.
fn paged<T: Serialize>(
    uri: &axum::http::Uri,
    extra: &[(&str, &str)],
    limit: PageLimit,
    page: KeysetPage<T>,
) -> axum::response::Response {
    let mut response = axum::Json(page.items).into_response();
    if let Some(next) = page.next {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in extra {
            query.append_pair(key, value);
        }
        query.append_pair("limit", &limit.get().to_string());
        query.append_pair("cursor", next.as_str());
        let link = format!("<{}?{}>; rel=\"next\"", uri.path(), query.finish());
        // A request's path is ASCII (hyper parsed it) and the query is form-encoded: never
        // dropped, so no one is silently left with the first page.
        let value = axum::http::HeaderValue::from_str(&link)
            .expect("a request path and a form-encoded query make a valid header");
        response
            .headers_mut()
            .insert(axum::http::header::LINK, value);
    }
    response
}

/// Lists the pipelines the caller may read (its accounts' and those of shared namespaces),
/// ordered by namespace and name, a page at a time.
#[utoipa::path(get, path = "/v1/pipelines", tag = "pipelines", params(ListQuery, PageQuery),
    responses((status = 200, body = Vec<PipelineInfo>,
                headers(("link" = String, description = "RFC 8288, when there is a next page: `<PATH?limit=N&cursor=C>; rel=\"next\"`; follow it until an answer has none"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_pipelines(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    OriginalUri(uri): OriginalUri,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
    page: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let (Query(query), Query(page)) = (query?, page?);
    let limit = PageLimit::parse(page.limit.as_deref())?;
    let found = state
        .registry
        .list_pipelines_page(
            &caller,
            query.namespace.as_deref(),
            limit,
            page.cursor.as_deref(),
        )
        .await?;
    let extra: Vec<(&str, &str)> = query
        .namespace
        .iter()
        .map(|n| ("namespace", n.as_str()))
        .collect();
    Ok(paged(&uri, &extra, limit, found))
}

/// `name` gives the latest ready version; `name:version` that version.
#[utoipa::path(get, path = "/v1/pipelines/{namespace}/{name}", tag = "versions",
    params(("namespace" = String, Path), ("name" = String, Path, description = "`name` or `name:version`")),
    responses((status = 200, body = VersionInfo), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_pipeline_version(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> Result<Json<VersionInfo>, ApiError> {
    let Path((namespace, reference)) = path?;
    let (name, version) = match reference.split_once(':') {
        Some((name, version)) => (name, Some(version)),
        None => (reference.as_str(), None),
    };
    Ok(Json(
        state
            .registry
            .version(&caller, &namespace, name, version)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterVersion {
    #[schema(schema_with = name_schema)]
    pub version: String,
    pub description: Option<String>,
    /// Free JSON kept with the version (ports, properties, ...).
    #[schema(value_type = Object)]
    pub definition: Option<serde_json::Value>,
    /// The version's content.
    #[serde(default)]
    pub files: Vec<UploadedFile>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadedFile {
    /// Relative path inside the pipeline (`notebook.ipynb`).
    pub path: String,
    /// The bytes, base64 (standard alphabet, padded).
    pub content_base64: String,
}

/// Registers a version with uploaded content, through the bound policies and the type handler.
#[utoipa::path(post, path = "/v1/pipelines/{namespace}/{name}/versions", tag = "versions", request_body = RegisterVersion,
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 201, body = VersionInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 502, description = "a plugin failed", body = ErrorBody)))]
async fn register_version(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    Json(body): Json<RegisterVersion>,
) -> Result<(StatusCode, Json<VersionInfo>), ApiError> {
    let Path((namespace, name)) = path?;
    let mut files = Vec::with_capacity(body.files.len());
    for file in body.files {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(file.content_base64.as_bytes())
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid-content",
                    format!("{}: content_base64 is not base64: {e}", file.path),
                )
            })?;
        files.push((file.path, bytes));
    }
    let new = registry::NewVersion {
        version: body.version,
        description: body.description,
        definition: body.definition.unwrap_or(serde_json::Value::Null),
        files,
        source: None,
        source_upload: None,
        create_as_type: None,
    };
    let registered = state
        .registry
        .register_version(&caller, &namespace, &name, new, Surface::V1)
        .await?;
    Ok((StatusCode::CREATED, Json(registered)))
}

/// Every version of a pipeline, in any state, lowest first (semver precedence; versions that
/// are not semver first, by registration time), a page at a time.
#[utoipa::path(get, path = "/v1/pipelines/{namespace}/{name}/versions", tag = "versions",
    params(("namespace" = String, Path), ("name" = String, Path), PageQuery),
    responses((status = 200, body = Vec<VersionInfo>,
                headers(("link" = String, description = "RFC 8288, when there is a next page: `<PATH?limit=N&cursor=C>; rel=\"next\"`; follow it until an answer has none"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_versions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    OriginalUri(uri): OriginalUri,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    page: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Path((namespace, name)) = path?;
    let Query(page) = page?;
    let limit = PageLimit::parse(page.limit.as_deref())?;
    let found = state
        .registry
        .list_versions_page(&caller, &namespace, &name, limit, page.cursor.as_deref())
        .await?;
    Ok(paged(&uri, &[], limit, found))
}

/// One version, in any state.
#[utoipa::path(get, path = "/v1/pipelines/{namespace}/{name}/versions/{version}", tag = "versions",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionInfo), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_version(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<(String, String, String)>, axum::extract::rejection::PathRejection>,
) -> Result<Json<VersionInfo>, ApiError> {
    let Path((namespace, name, version)) = path?;
    Ok(Json(
        state
            .registry
            .version(&caller, &namespace, &name, Some(&version))
            .await?,
    ))
}

/// Deletes one version (not while it is registering); it may be registered again afterwards.
#[utoipa::path(delete, path = "/v1/pipelines/{namespace}/{name}/versions/{version}", tag = "versions",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_version(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<(String, String, String)>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((namespace, name, version)) = path?;
    state
        .registry
        .delete_version(&caller, &namespace, &name, &version, Surface::V1)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The registered pipeline types.
#[utoipa::path(get, path = "/v1/types", tag = "types",
    responses((status = 200, body = Vec<PipelineType>), (status = 401, body = ErrorBody)))]
async fn list_types(
    State(state): State<AppState>,
    _caller: Authenticated,
) -> Json<Vec<PipelineType>> {
    Json(state.registry.pipeline_types())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScaffoldQuery {
    /// The pipeline name the files are made for.
    pub name: String,
}

/// The files a new pipeline of this type starts with, from its handler's `scaffold`.
#[utoipa::path(get, path = "/v1/types/{type}/scaffold", tag = "types",
    params(("type" = String, Path), ScaffoldQuery),
    responses((status = 200, body = Vec<UploadedFile>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn scaffold(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<Query<ScaffoldQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<UploadedFile>>, ApiError> {
    let Path(type_id) = path?;
    let Query(query) = query?;
    let files = state
        .registry
        .scaffold(&caller, &type_id, &query.name)
        .await?;
    Ok(Json(
        files
            .into_iter()
            .map(|f| UploadedFile {
                path: f.path,
                content_base64: base64::engine::general_purpose::STANDARD.encode(f.contents),
            })
            .collect(),
    ))
}
