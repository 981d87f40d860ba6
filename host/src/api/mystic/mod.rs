//! Mystic's `/v4` API (and `/v3/runs` as its alias), so that the real Python client
//! (`pipeline-ai` 2.8) works unchanged: token validation, file uploads, runs.
//!
//! A pointer is `account/name[:version]`. A run answers as Mystic's `ClusterRunResult` whatever
//! its outcome: a pipeline's failure (bad input, trap, timeout, memory) is `state: "failed"` with
//! `error {type, message}` and HTTP 200; only an unknown pipeline or caller is an HTTP error,
//! as `{"detail": …}`. When capacity is exhausted and the request does not wait for it, the
//! answer is 503 with `Retry-After` and a run in state `no_resources_available`.
//!
//! File outputs (and uploads) are fetched by URL without credentials, as the client does: the
//! URL carries an expiring HMAC signature ([`files::FileLinks`]), never a guessable path.
//!
//! Where each part is: [`runs`] (runs and their results), [`pipelines`] (pushes), [`files`]
//! (uploads and signed links); this module holds the routes, the error shape and the caller.

mod files;
mod pipelines;
mod runs;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value as Json_};

use super::routes::Routes;
use super::AppState;
use crate::registry::{Caller, RegistryError};
use crate::route;
use files::{download_file, upload_file};
use pipelines::push_pipeline;
use runs::{get_run, submit_run};

pub fn routes() -> Routes {
    let mut routes = Routes::new("mystic")
        .with_error_shape(|status, message| Detail(status, message).into_response());
    routes = route!(routes, "/v4/tokens/validate", get(validate_token));
    routes = route!(routes, "/v4/pipelines", post(push_pipeline));
    for runs in ["/v4/runs", "/v3/runs"] {
        routes = route!(routes, runs, post(submit_run));
        routes = route!(routes, &format!("{runs}/{{id}}"), get(get_run));
    }
    for files in ["/v4/files", "/v3/pipeline_files", "/v3/pipeline-files"] {
        routes = route!(routes, files, post(upload_file));
    }
    route!(
        routes,
        "/v4/blobs/{hex}/{expires}/{signature}/{name}",
        get(download_file)
    )
}

/// `{"detail": …}` with a status: Mystic's error shape.
struct Detail(StatusCode, String);

impl IntoResponse for Detail {
    fn into_response(self) -> Response {
        // `request_id` beside `detail`: Mystic's client reads `detail` and ignores the rest.
        let body = match super::request_id::current() {
            Some(request_id) => json!({ "detail": self.1, "request_id": request_id }),
            None => json!({ "detail": self.1 }),
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
    tracing::Span::current().record("user", caller.user.as_str());
    Ok(caller)
}

/// `GET /v4/tokens/validate`: what `pipeline cluster login` calls first.
async fn validate_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Json_>, Detail> {
    let caller = caller(&state, &headers).await?;
    Ok(Json(
        json!({ "valid": true, "username": caller.user, "account": caller.account }),
    ))
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
}
