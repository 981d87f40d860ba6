//! Mystic's `/v4` API (and its `/v3` leftovers: `/v3/runs`, `/v3/pipeline_files`), so that the
//! real Python client and CLI (`pipeline-ai` 2.8) work unchanged: token validation, pipelines,
//! pointers, runs (synchronous, asynchronous, streamed), their logs, and files.
//!
//! Names: a pipeline here is one version of a runnable pipeline of the caller's account, and its
//! id is its own name, `account/name:version` (what a run's `pipeline_id` says, and what
//! `pipeline delete pipeline` takes). A pointer (Mystic's tag) is `account/name:pointer`,
//! naming a version and movable (see [`crate::registry::pointers`]); a run may name either.
//! Both ids contain a `/`, which the client sends unescaped: their routes take the account and
//! the rest as two path segments.
//!
//! A run answers as Mystic's `ClusterRunResult` whatever its outcome: a pipeline's failure (bad
//! input, trap, timeout, memory) is `state: "failed"` with `error {type, message}` and HTTP 200;
//! only an unknown pipeline or caller is an HTTP error, as `{"detail": …}` (every error of this
//! surface has that shape). When capacity is exhausted and the request does not wait for it,
//! the answer is 503 with `Retry-After` and a run in state `no_resources_available`.
//!
//! File outputs (and uploads) are fetched by URL without credentials, as the client does: the
//! URL carries an expiring HMAC signature ([`files::FileLinks`]), never a guessable path.
//!
//! Where each part is: [`runs`] (runs, streamed runs, results, logs), [`pipelines`] (pushes,
//! listing, deleting), [`pointers`], [`files`] (uploads and signed links), [`openapi`] (the
//! document of every route here); this module holds the routes, the error shape, the caller and
//! the paging every listing shares.

mod files;
mod openapi;
mod pipelines;
mod pointers;
mod runs;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::routes::Routes;
use super::AppState;
use crate::registry::{Caller, RegistryError};
use crate::route;
pub(crate) use files::{upload_path, FileLinks};
pub use openapi::openapi;
pub use pipelines::RUNNABLE_TYPE;

pub fn routes() -> Routes {
    let mut routes = Routes::new("mystic")
        .with_error_shape(|status, message| Detail(status, message).into_response());
    routes = route!(routes, "/v4/tokens/validate", get(validate_token));
    routes = route!(
        routes,
        "/v4/pipelines",
        get(pipelines::list_pipelines).post(pipelines::push_pipeline)
    );
    routes = route!(
        routes,
        "/v4/pipelines/{namespace}/{pipeline}",
        patch(pipelines::change_pipeline).delete(pipelines::delete_pipeline)
    );
    routes = route!(
        routes,
        "/v4/pointers",
        get(pointers::list_pointers).post(pointers::create_pointer)
    );
    routes = route!(
        routes,
        "/v4/pointers/{namespace}/{pointer}",
        patch(pointers::change_pointer).delete(pointers::delete_pointer)
    );
    routes = route!(routes, "/v4/runs", post(runs::submit_run));
    routes = route!(routes, "/v4/runs/{id}", get(runs::get_run));
    routes = route!(routes, "/v4/runs/stream", post(runs::stream_run));
    routes = route!(routes, "/v4/logs/run/{id}", get(runs::run_logs));
    routes = route!(routes, "/v3/runs", post(runs::submit_run_v3));
    routes = route!(routes, "/v3/runs/{id}", get(runs::get_run_v3));
    routes = route!(routes, "/v4/files", post(files::upload_file));
    routes = route!(
        routes,
        "/v3/pipeline_files",
        get(files::list_files).post(files::upload_pipeline_file)
    );
    routes = route!(
        routes,
        "/v3/pipeline-files",
        post(files::upload_pipeline_file_hyphenated)
    );
    routes = route!(routes, "/v3/pipeline_files/{id}", get(files::get_file));
    routes = route!(
        routes,
        "/v3/pipeline_files/download/{id}",
        get(files::download_upload)
    );
    route!(
        routes,
        "/v4/blobs/{hex}/{expires}/{signature}/{name}",
        get(files::download_file)
    )
}

/// `{"detail": …}` with a status: Mystic's error shape.
struct Detail(StatusCode, String);

/// Mystic's error body. The client reads `detail` and ignores the rest.
#[derive(Serialize, ToSchema)]
struct DetailBody {
    detail: String,
    /// The request's id, as in its `x-request-id` answer header.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl Detail {
    fn bad_input(message: impl Into<String>) -> Self {
        Detail(StatusCode::UNPROCESSABLE_ENTITY, message.into())
    }
}

impl IntoResponse for Detail {
    fn into_response(self) -> Response {
        let body = DetailBody {
            detail: self.1,
            request_id: super::request_id::current(),
        };
        (self.0, Json(body)).into_response()
    }
}

impl From<RegistryError> for Detail {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Unauthenticated => {
                Detail(StatusCode::UNAUTHORIZED, "Invalid token".into())
            }
            // The seed words none of them: the native words.
            RegistryError::Refused(refusal) => {
                let (status, _, message) = super::error::refusal_wording(&refusal);
                Detail(status, message)
            }
            RegistryError::NotReady {
                name,
                version,
                state,
            } => Detail(
                StatusCode::NOT_FOUND,
                format!("{name}:{version} is {} and cannot run", state.as_str()),
            ),
            RegistryError::Invalid(findings) => Detail(
                StatusCode::BAD_REQUEST,
                findings
                    .first()
                    .map(|f| f.message.clone())
                    .unwrap_or_default(),
            ),
            RegistryError::QuotaExceeded(quota) => {
                Detail(StatusCode::PAYLOAD_TOO_LARGE, quota.to_string())
            }
            RegistryError::Plugin(error) => Detail(StatusCode::BAD_GATEWAY, error.to_string()),
            RegistryError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Detail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error; see the server log".into(),
                )
            }
        }
    }
}

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Detail> {
    let token = super::bearer_token(headers)
        .ok_or_else(|| Detail(StatusCode::UNAUTHORIZED, "Missing API token".into()))?;
    let caller = state.registry.authenticate(token).await?;
    crate::api::request_id::record_user(&caller.user);
    Ok(caller)
}

/// A JSON object request body as `T`; anything else is a 422, as Mystic's validation errors
/// are. (An array is refused too, though serde would read a struct from one.)
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Detail> {
    let invalid = |e: String| Detail::bad_input(format!("invalid {what}: {e}"));
    match serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))? {
        object @ serde_json::Value::Object(_) => {
            serde_json::from_value(object).map_err(|e| invalid(e.to_string()))
        }
        _ => Err(invalid("expected a JSON object".into())),
    }
}

/// A query string as `T`; a bad one is a 422.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Detail> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| Detail::bad_input(rejection.body_text()))
}

/// Splits `account/name:tag` (a pipeline id or a pointer); None when it is not one.
fn tagged_name(text: &str) -> Option<crate::registry::pointers::TaggedName> {
    let (namespace, rest) = text.split_once('/')?;
    let (name, tag) = rest.split_once(':')?;
    let well_formed = [namespace, name, tag]
        .iter()
        .all(|part| !part.is_empty() && !part.contains(['/', ':']));
    well_formed.then(|| crate::registry::pointers::TaggedName {
        namespace: namespace.to_string(),
        name: name.to_string(),
        tag: tag.to_string(),
    })
}

/// Mystic's most items in one page.
const PAGE_LIMIT_MAX: i64 = 10_000;

/// `skip` and `limit` of a listing, as the client sends them (it always sends both).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Paging {
    /// Items to skip.
    #[serde(default)]
    #[param(minimum = 0)]
    skip: i64,
    /// Most items to return.
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 10000)]
    limit: i64,
}

/// The client's default page (`DEFAULT_LIMIT`).
fn default_limit() -> i64 {
    1000
}

impl Paging {
    /// (skip, limit), or a 422 for a negative `skip` or a `limit` out of 1 to 10000.
    fn checked(self) -> Result<(u64, u64), Detail> {
        if self.skip < 0 {
            return Err(Detail::bad_input("skip must be 0 or more"));
        }
        if !(1..=PAGE_LIMIT_MAX).contains(&self.limit) {
            return Err(Detail::bad_input(format!(
                "limit must be between 1 and {PAGE_LIMIT_MAX}"
            )));
        }
        Ok((self.skip as u64, self.limit as u64))
    }
}

/// A name's characters (a namespace, a pipeline, a version or a pointer) as a JSON Schema
/// pattern: `/v1`'s [`NAME_PATTERN`](crate::api::v1::NAME_PATTERN) without its anchors.
fn name_chars() -> &'static str {
    crate::api::v1::NAME_PATTERN
        .trim_start_matches('^')
        .trim_end_matches('$')
}

/// `account/name:tag`, a pipeline id or a pointer, in a request body.
fn tagged_name_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    let name = name_chars();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^{name}/{name}:{name}$")))
        .build()
}

/// [`tagged_name_schema`], or null.
fn optional_tagged_name_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    use utoipa::openapi::ObjectBuilder;
    let name = name_chars();
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(format!("^{name}/{name}:{name}$")))
        .build()
}

/// What `GET /v4/tokens/validate` answers.
#[derive(Serialize, ToSchema)]
struct TokenValidity {
    valid: bool,
    username: String,
    account: String,
}

/// Answers 2xx for a valid token: what `pipeline cluster login` calls first.
#[utoipa::path(get, path = "/v4/tokens/validate", tag = "tokens",
    responses((status = 200, body = TokenValidity), (status = 401, body = DetailBody)))]
async fn validate_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<TokenValidity>, Detail> {
    let caller = caller(&state, &headers).await?;
    Ok(Json(TokenValidity {
        valid: true,
        username: caller.user,
        account: caller.account,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::error::tests::{answer_of, rows};

    /// The seed words no refusal of the core: every one answers in the native words, as
    /// `{"detail": …}`.
    #[tokio::test]
    async fn every_refusal_of_the_core_answers_in_the_native_words() {
        for (refusal, status, message) in rows(&[]) {
            let code = refusal.code();
            let detail = Detail::from(RegistryError::from(refusal));
            assert_eq!(
                answer_of(detail.into_response()).await,
                (status, json!({ "detail": message })),
                "{code}"
            );
        }
    }

    #[test]
    fn pipeline_ids_and_pointers_split_at_their_one_slash_and_colon() {
        let split = |text: &str| tagged_name(text).map(|t| t.to_string());
        assert_eq!(
            split("alice/hello:prod").as_deref(),
            Some("alice/hello:prod")
        );
        for bad in [
            "alice/hello",
            "hello:1",
            "/hello:1",
            "alice/:1",
            "alice/hello:",
            "a/b/c:1",
            "a/b:c:d",
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }
}
