//! The GBDX surface under `/workflows/v1`: task versioning ([`tasks`]: register, list, get,
//! replace and delete) over the registry core, and workflows of those tasks ([`workflows`]:
//! submit, read, cancel, events, a task's stdout and stderr, list and search) over the runs.
//! Its OpenAPI document is [`openapi`]. Tasks live in one shared namespace ([`NAMESPACE`]) as
//! pipelines of type `task`: the first account to register a name owns it, and any member of
//! that account may add versions.
//!
//! A task's content is named by its container descriptor: `DOCKER` (kept and checked, but this
//! server cannot run it) or `WASM` with `properties.url` (http, https, or file under the
//! operator's root) or `properties.upload` (base64), and an optional `properties.digest`. Either
//! way the new version is `registering` (the seed's "Docker migration") until the registration
//! workers have fetched, verified, validated and compiled it. A `properties.url` the server will
//! never fetch (not http, https or an allowed file; a host that does not resolve; an address
//! [`crate::outbound`] refuses) is a 400 at the request, and nothing is registered.
//!
//! Errors are `{"Error": "…"}` with the seed's exact text; [`Violation::wording`] is the table.
//! Where the seed is silent on a refusal of the core (a task or workflow not found, a conflict)
//! it answers in the native words (`api::error::refusal_wording`).

mod openapi;
mod tasks;
mod workflows;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::routes::Routes;
use super::AppState;
use crate::registry::{Caller, Refusal, RefusalKind, RegistryError, VersionState};
use crate::route;
pub use openapi::openapi;
pub use tasks::ListingBody;
pub(crate) use workflows::{event_words, step_words};

/// The namespace every task lives in.
pub const NAMESPACE: &str = crate::registry::GBDX_NAMESPACE;
/// The pipeline type of a task (`plugins/task`).
pub const TASK_TYPE: &str = "task";
const DEFINITION_FILE: &str = "task.json";
const COMPONENT_FILE: &str = "component.wasm";

pub fn routes() -> Routes {
    use tasks::{delete, get_task, list, register, replace};
    use workflows::{
        cancel_workflow, get_workflow, list_workflows, search_workflows, submit_workflow,
        task_stderr, task_stdout, workflow_events,
    };
    let routes = Routes::new("gbdx")
        .with_error_shape(|status, message| Violation::Other(status, message).into_response());
    let routes = route!(routes, "/workflows/v1/tasks", post(register).get(list));
    let routes = route!(
        routes,
        "/workflows/v1/tasks/{task}",
        get(get_task).put(replace).delete(delete)
    );
    let routes = route!(
        routes,
        "/workflows/v1/workflows",
        post(submit_workflow).get(list_workflows)
    );
    let routes = route!(
        routes,
        "/workflows/v1/workflows/search",
        post(search_workflows)
    );
    let routes = route!(routes, "/workflows/v1/workflows/{id}", get(get_workflow));
    let routes = route!(
        routes,
        "/workflows/v1/workflows/{id}/cancel",
        post(cancel_workflow)
    );
    let routes = route!(
        routes,
        "/workflows/v1/workflows/{id}/events",
        get(workflow_events)
    );
    let routes = route!(
        routes,
        "/workflows/v1/workflows/{id}/tasks/{task_id}/stdout",
        get(task_stdout)
    );
    route!(
        routes,
        "/workflows/v1/workflows/{id}/tasks/{task_id}/stderr",
        get(task_stderr)
    )
}

/// Every refusal of this surface.
#[derive(Debug, PartialEq, Eq)]
pub enum Violation {
    Unauthenticated,
    /// Another account owns the name (any refusal of the core's forbidden family).
    NotOwner,
    /// The same version number again (the seed: "doesn't increment").
    NotIncremented,
    /// A number lower than the last registered.
    LowerThanLatest,
    /// GET of a version (or, with nothing ready, of a name) still registering.
    Registering(String),
    DeleteWhileRegistering(String),
    FailedRegistration(String),
    OwnerEmailMissing,
    VersionNotQuoted,
    /// A field the request must carry: `name`, `version`.
    Missing(&'static str),
    DeleteNeedsVersion,
    /// A PUT that would change the name or version.
    NameOrVersionChanged,
    /// Any other refusal of the core: not found, or a conflict.
    Refused(Refusal),
    /// Any other rule, worded by whoever made it (a policy, the type handler, the core).
    Other(StatusCode, String),
}

impl Violation {
    /// The status and the exact text: the seed's wording, its typos kept.
    pub fn wording(&self) -> (StatusCode, String) {
        use Violation::*;
        match self {
            Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "A valid API token is required".into(),
            ),
            NotOwner => (StatusCode::FORBIDDEN, "Forbidden".into()),
            NotIncremented => (
                StatusCode::BAD_REQUEST,
                "The version number must be incremented".into(),
            ),
            LowerThanLatest => (
                StatusCode::BAD_REQUEST,
                "The version number be incremented".into(),
            ),
            Registering(name) => (
                StatusCode::FORBIDDEN,
                format!("{name} has been submitted for registration"),
            ),
            DeleteWhileRegistering(name) => (
                StatusCode::FORBIDDEN,
                format!("Cannot Delete {name} until Migration is Complete"),
            ),
            FailedRegistration(name) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{name} has failed registration."),
            ),
            OwnerEmailMissing => (
                StatusCode::BAD_REQUEST,
                "taskOwnerEmail is a required field".into(),
            ),
            VersionNotQuoted => (
                StatusCode::BAD_REQUEST,
                "The version number must be enclosed in quotes".into(),
            ),
            Missing(field) => (
                StatusCode::BAD_REQUEST,
                format!("{field} is a required field"),
            ),
            DeleteNeedsVersion => (
                StatusCode::BAD_REQUEST,
                "A request to delete a task must include the task's version number".into(),
            ),
            NameOrVersionChanged => (
                StatusCode::BAD_REQUEST,
                "The name and version number of a task cannot be changed".into(),
            ),
            Refused(refusal) => {
                let (status, _, message) = super::error::refusal_wording(refusal);
                (status, message)
            }
            Other(status, message) => (*status, message.clone()),
        }
    }

    /// Words a refusal of the core. `deleting` picks the seed's delete-time message.
    fn from_core(error: RegistryError, deleting: bool) -> Self {
        match error {
            RegistryError::Unauthenticated => Violation::Unauthenticated,
            RegistryError::Refused(refusal) => match refusal.kind() {
                RefusalKind::Forbidden => Violation::NotOwner,
                RefusalKind::NotFound | RefusalKind::Conflict => Violation::Refused(refusal),
            },
            RegistryError::NotReady { name, state, .. } => match state {
                VersionState::Failed => Violation::FailedRegistration(name),
                _ if deleting => Violation::DeleteWhileRegistering(name),
                _ => Violation::Registering(name),
            },
            RegistryError::Invalid(findings) => {
                let first = findings.into_iter().next();
                match first.as_ref().map(|f| f.code.as_str()) {
                    Some("name-or-version-changed") => Violation::NameOrVersionChanged,
                    Some("version-not-incremented") => Violation::NotIncremented,
                    Some("version-lower-than-latest") => Violation::LowerThanLatest,
                    Some("task-owner-email-missing") => Violation::OwnerEmailMissing,
                    _ => Violation::Other(
                        StatusCode::BAD_REQUEST,
                        first
                            .map(|f| f.message)
                            .unwrap_or_else(|| "invalid task".into()),
                    ),
                }
            }
            RegistryError::QuotaExceeded(quota) => {
                Violation::Other(StatusCode::PAYLOAD_TOO_LARGE, quota.to_string())
            }
            RegistryError::Plugin(error) => {
                Violation::Other(StatusCode::BAD_GATEWAY, error.to_string())
            }
            RegistryError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Violation::Other(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error; see the server log".into(),
                )
            }
        }
    }
}

/// Every error of this surface: the seed's one field, `Error`, and the request's id beside it
/// (clients read `Error` and ignore the rest).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl IntoResponse for Violation {
    fn into_response(self) -> Response {
        let (status, message) = self.wording();
        let body = ErrorBody {
            error: message,
            request_id: super::request_id::current(),
        };
        (status, Json(body)).into_response()
    }
}

/// A refusal of the core anywhere but a delete (see [`Violation::from_core`]).
impl From<RegistryError> for Violation {
    fn from(error: RegistryError) -> Self {
        Violation::from_core(error, false)
    }
}

type Answer<T> = Result<T, Violation>;

async fn caller(state: &AppState, headers: &HeaderMap) -> Answer<Caller> {
    let token = super::bearer_token(headers).ok_or(Violation::Unauthenticated)?;
    let caller = state
        .registry
        .authenticate(token)
        .await
        .map_err(|e| Violation::from_core(e, false))?;
    crate::api::request_id::record_user(&caller.user);
    Ok(caller)
}

/// `name` or `name:version`.
fn reference(path: Result<Path<String>, PathRejection>) -> Answer<(String, Option<String>)> {
    let Path(task) =
        path.map_err(|rejection| Violation::Other(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    Ok(match task.split_once(':') {
        Some((name, version)) => (name.to_string(), Some(version.to_string())),
        None => (task, None),
    })
}

/// A request body that must be a JSON object; `what` names it in the refusal.
fn json_object(bytes: &Bytes, what: &str) -> Answer<serde_json::Map<String, Value>> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Violation::Other(
            StatusCode::BAD_REQUEST,
            format!("{what} must be a JSON object"),
        )),
        Err(e) => Err(Violation::Other(
            StatusCode::BAD_REQUEST,
            format!("{what} is not valid JSON: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::error::tests::{answer_of, rows};

    /// The refusals of the core this surface words: the seed's where it has words (its
    /// "403: Forbidden" for every refusal of the forbidden family), the native ones elsewhere.
    #[tokio::test]
    async fn every_refusal_of_the_core_answers_as_the_table_says() {
        let seed: &[(&str, u16, &str)] = &[
            ("namespace-reserved", 403, "Forbidden"),
            ("not-a-member", 403, "Forbidden"),
            ("namespace-of-another-account", 403, "Forbidden"),
            ("not-an-admin", 403, "Forbidden"),
            ("workflow-of-another-account", 403, "Forbidden"),
        ];
        for (refusal, status, message) in rows(seed) {
            let code = refusal.code();
            let violation = Violation::from_core(refusal.into(), false);
            assert_eq!(
                answer_of(violation.into_response()).await,
                (status, json!({ "Error": message })),
                "{code}"
            );
        }
    }
}
