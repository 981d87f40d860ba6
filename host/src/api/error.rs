//! The native API's one error type: `{ "error": { "code", "message", "details"?, "request_id"? } }`
//! with the status its kind calls for. A 5xx tells the client little and logs the detail; its
//! `request_id` (see [`super::request_id`]) is what finds that detail in the log.
//!
//! [`refusal_wording`] is the table of the core's refusals: this surface's words for each, and
//! the words the other surfaces use where their seed says nothing of a refusal.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::registry::workbench::WorkbenchError;
use crate::registry::{Finding, Refusal, RefusalKind, RegistryError, VersionState};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Vec<Finding>,
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorObject {
    /// Stable, machine-readable (`invalid-version`, `not-found`, `forbidden`, ...).
    pub code: String,
    pub message: String,
    /// Every rule the request broke, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Finding>,
    /// The request's id, as in its `x-request-id` answer header (absent outside a request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code,
                message: self.message,
                details: self.details,
                request_id: super::request_id::current(),
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                error.to_string(),
            ),
            RegistryError::Refused(refusal) => {
                let (status, code, message) = refusal_wording(&refusal);
                ApiError::new(status, code, message)
            }
            RegistryError::Invalid(findings) => {
                let first = findings.first();
                let code = first
                    .map(|f| f.code.clone())
                    .unwrap_or_else(|| "invalid".into());
                let message = first
                    .map(|f| f.message.clone())
                    .unwrap_or_else(|| "invalid request".into());
                ApiError {
                    status: StatusCode::BAD_REQUEST,
                    code,
                    message,
                    details: findings,
                }
            }
            RegistryError::NotReady {
                name,
                version,
                state,
            } => {
                let code = match state {
                    VersionState::Failed => "version-failed",
                    _ => "version-registering",
                };
                ApiError::new(
                    StatusCode::CONFLICT,
                    code,
                    not_ready_message(&name, &version, state),
                )
            }
            RegistryError::QuotaExceeded(ref quota) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "quota-exceeded",
                quota.to_string(),
            ),
            // A plugin's failure is attributed to it (plugin, version, export), not hidden.
            RegistryError::Plugin(e) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "plugin-failed", e.to_string())
            }
            RegistryError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
        }
    }
}

/// The status, `/v1`'s code (the refusal's family) and the message of every refusal of the core.
/// GBDX, Mystic and Acumos answer with its status and message where their seed is silent.
pub(crate) fn refusal_wording(refusal: &Refusal) -> (StatusCode, &'static str, String) {
    use Refusal::*;
    let (status, code) = match refusal.kind() {
        RefusalKind::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        RefusalKind::NotFound => (StatusCode::NOT_FOUND, "not-found"),
        RefusalKind::Conflict => (StatusCode::CONFLICT, "conflict"),
    };
    let message = match refusal {
        NamespaceReserved { namespace, surface } => format!(
            "namespace {namespace} is reserved for the {} surface's own registrations",
            surface.as_str()
        ),
        NotAMember {
            namespace,
            name,
            owner_account,
            user,
        } => format!("{namespace}/{name} is owned by account {owner_account}; {user} is not a member"),
        NamespaceOfAnotherAccount { namespace } => {
            format!("namespace {namespace} belongs to another account")
        }
        NotAnAdmin { action } => format!(
            "only members of the server's admin account (--admin-account) may {}",
            action.as_str()
        ),
        WorkflowOfAnotherAccount { id } => format!("workflow {id} belongs to another account"),
        PipelineNotFound { namespace, name } => format!("pipeline {namespace}/{name} not found"),
        VersionNotFound {
            namespace,
            name,
            version,
        } => format!("{namespace}/{name}:{version} not found"),
        NoVersion { namespace, name } => format!("{namespace}/{name} not found"),
        PluginNotFound { name } => format!("plugin {name} not found"),
        PluginVersionNotFound { name, version } => format!("plugin {name}@{version} not found"),
        BindingNotFound { scope } => format!("a binding set for {scope} not found"),
        RunNotFound { id } => format!("run {id} not found"),
        TypeNotFound { type_id } => format!("pipeline type {type_id} not found"),
        ProjectNotFound { id } => format!("project {id} not found"),
        WorkflowNotFound { id } => format!("workflow {id} not found"),
        PointerNotFound {
            namespace,
            name,
            pointer,
        } => format!("pointer {namespace}/{name}:{pointer} not found"),
        UploadNotFound { id } => format!("file {id} not found"),
        WorkflowTaskNotFound { workflow, task } => format!("workflow {workflow} has no task {task}"),
        AccountNameTaken { user } => format!(
            "an account named `{user}` exists already; it cannot become user {user}'s personal account"
        ),
        PipelineExists { namespace, name } => format!("pipeline {namespace}/{name} exists already"),
        VersionExists { name, version, .. } => format!("{name}:{version} is registered already"),
        ChangingTooFast { namespace, name } => {
            format!("{namespace}/{name} is changing too fast; try again")
        }
        ChangedMeanwhile { namespace, name } => {
            format!("{namespace}/{name} changed meanwhile; try again")
        }
        ProjectExists { user, name } => format!("{user} has a project named {name} already"),
        PluginVersionExists {
            name,
            version,
            digest,
        } => format!(
            "plugin {name}@{version} exists with other content ({digest}); versions are immutable: add a new version"
        ),
        TypeTaken {
            plugin,
            type_id,
            holder,
        } => format!(
            "plugin {plugin} handles type `{type_id}`, which the active plugin {holder} handles already"
        ),
        NoActivePluginVersion { name } => format!("no version of plugin {name} is active"),
        PluginBound { name, scopes } => format!(
            "plugin {name} is bound in {}: bind another chain there first",
            scopes.join(", ")
        ),
        NoEarlierPluginVersion { name } => {
            format!("plugin {name} has no earlier active version to roll back to")
        }
        PointerExists {
            namespace,
            name,
            pointer,
        } => format!("pointer {namespace}/{name}:{pointer} exists already"),
        PointerLocked {
            namespace,
            name,
            pointer,
        } => format!(
            "pointer {namespace}/{name}:{pointer} is locked: unlock it before moving or deleting it"
        ),
        NameIsAVersion {
            namespace,
            name,
            pointer,
        } => format!(
            "{namespace}/{name}:{pointer} is a version; a pointer cannot take a version's name"
        ),
        NameIsAPointer {
            namespace,
            name,
            version,
        } => format!(
            "{namespace}/{name}:{version} is a pointer; a version cannot take a pointer's name (delete the pointer first)"
        ),
        WorkflowComplete { id } => {
            format!("workflow {id} is complete already; there is nothing to cancel")
        }
    };
    (status, code, message)
}

/// A version asked for that is registering or failed, in the native words.
pub(crate) fn not_ready_message(name: &str, version: &str, state: VersionState) -> String {
    format!("{name} version {version} is {}", state.as_str())
}

/// The workbench's refusals, in the native words.
impl From<WorkbenchError> for ApiError {
    fn from(error: WorkbenchError) -> Self {
        use WorkbenchError::*;
        let (status, code, message) = match error {
            PipelineNotFound => (
                StatusCode::NOT_FOUND,
                "not-found",
                "pipeline not found".into(),
            ),
            ProjectNotFound(id) => (
                StatusCode::NOT_FOUND,
                "not-found",
                format!("project {id} does not exist"),
            ),
            OwnsNeither { user } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("{user} owns neither the project nor the pipeline"),
            ),
            NotAllowed {
                pipeline,
                owner,
                user,
            } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("pipeline {pipeline} belongs to {owner}; {user} may not act on it"),
            ),
            Archived(id) => (
                StatusCode::CONFLICT,
                "archived",
                format!("pipeline {id} is archived"),
            ),
            NotInProject { project, pipeline } => (
                StatusCode::NOT_FOUND,
                "not-found",
                format!("pipeline {pipeline} does not belong to project {project}"),
            ),
            Shared { pipeline } => (
                StatusCode::CONFLICT,
                "shared",
                format!("pipeline {pipeline} is referenced by other users or projects"),
            ),
            Duplicate {
                name,
                version,
                user,
            } => {
                let version = version.map(|v| format!(" version {v}")).unwrap_or_default();
                (
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("a pipeline named {name}{version} exists already for {user}"),
                )
            }
            // The type handler's own words, attributed to it.
            LaunchFailed { code, message } => (
                StatusCode::BAD_GATEWAY,
                "launch-failed",
                format!("launch failed ({code}): {message}"),
            ),
            Registry(error) => return error.into(),
        };
        ApiError::new(status, code, message)
    }
}

impl From<JsonRejection> for ApiError {
    /// 400 for malformed JSON, 422 for JSON of the wrong shape, 415 without a JSON content type.
    fn from(rejection: JsonRejection) -> Self {
        ApiError::new(rejection.status(), "invalid-json", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid-path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid-query", rejection.body_text())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use axum::response::{IntoResponse, Response};
    use serde_json::{json, Value};

    use super::*;

    /// The native words of every refusal of the core, one row per [`Refusal::examples`]: its
    /// code, status and message. The other surfaces' tables fall back to these rows.
    pub(crate) const NATIVE: &[(&str, u16, &str)] = &[
        ("namespace-reserved", 403, "namespace gbdx is reserved for the gbdx surface's own registrations"),
        ("not-a-member", 403, "shared/p is owned by account acme; bob is not a member"),
        ("namespace-of-another-account", 403, "namespace alice belongs to another account"),
        ("not-an-admin", 403, "only members of the server's admin account (--admin-account) may add plugins"),
        ("workflow-of-another-account", 403, "workflow w1 belongs to another account"),
        ("pipeline-not-found", 404, "pipeline alice/p not found"),
        ("version-not-found", 404, "alice/p:1.0.0 not found"),
        ("no-version", 404, "alice/p not found"),
        ("plugin-not-found", 404, "plugin house not found"),
        ("plugin-version-not-found", 404, "plugin house@1.0.0 not found"),
        ("binding-not-found", 404, "a binding set for namespace:alice not found"),
        ("run-not-found", 404, "run r1 not found"),
        ("type-not-found", 404, "pipeline type csv not found"),
        ("project-not-found", 404, "project pr1 not found"),
        ("workflow-not-found", 404, "workflow w1 not found"),
        ("pointer-not-found", 404, "pointer alice/p:prod not found"),
        ("upload-not-found", 404, "file f1 not found"),
        ("workflow-task-not-found", 404, "workflow w1 has no task t1"),
        ("account-name-taken", 409, "an account named `acme` exists already; it cannot become user acme's personal account"),
        ("pipeline-exists", 409, "pipeline alice/p exists already"),
        ("version-exists", 409, "p:1.0.0 is registered already"),
        ("changing-too-fast", 409, "alice/p is changing too fast; try again"),
        ("changed-meanwhile", 409, "alice/p changed meanwhile; try again"),
        ("project-exists", 409, "alice has a project named demo already"),
        ("plugin-version-exists", 409, "plugin house@1.0.0 exists with other content (sha256:ab); versions are immutable: add a new version"),
        ("type-taken", 409, "plugin my-zeppelin@1.0.0 handles type `zeppelin`, which the active plugin zeppelin@0.1.0 handles already"),
        ("no-active-plugin-version", 409, "no version of plugin house is active"),
        ("plugin-bound", 409, "plugin house is bound in namespace:alice, global: bind another chain there first"),
        ("no-earlier-plugin-version", 409, "plugin house has no earlier active version to roll back to"),
        ("pointer-exists", 409, "pointer alice/p:prod exists already"),
        ("pointer-locked", 409, "pointer alice/p:prod is locked: unlock it before moving or deleting it"),
        ("name-is-a-version", 409, "alice/p:1.0.0 is a version; a pointer cannot take a version's name"),
        ("name-is-a-pointer", 409, "alice/p:prod is a pointer; a version cannot take a pointer's name (delete the pointer first)"),
        ("workflow-complete", 409, "workflow w1 is complete already; there is nothing to cancel"),
    ];

    /// Every refusal with the status and words a surface answers it with: its row of `seed`
    /// (the surface's own words) if it has one, else its row of [`NATIVE`]. Fails unless
    /// [`NATIVE`] has one row per refusal and every row of `seed` names one.
    pub(crate) fn rows(
        seed: &[(&'static str, u16, &'static str)],
    ) -> Vec<(Refusal, u16, &'static str)> {
        let examples = Refusal::examples();
        let codes: Vec<&str> = examples.iter().map(Refusal::code).collect();
        let native: Vec<&str> = NATIVE.iter().map(|row| row.0).collect();
        assert_eq!(
            codes, native,
            "one row per refusal, in the order of the examples"
        );
        for (code, _, _) in seed {
            assert!(codes.contains(code), "no refusal `{code}`");
        }
        examples
            .into_iter()
            .zip(NATIVE)
            .map(|(refusal, native)| {
                let row = seed.iter().find(|row| row.0 == native.0).unwrap_or(native);
                (refusal, row.1, row.2)
            })
            .collect()
    }

    /// The status and JSON body of an answer.
    pub(crate) async fn answer_of(response: Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn every_refusal_answers_with_its_row() {
        for (refusal, status, message) in rows(&[]) {
            let code = refusal.code();
            let family = match status {
                403 => "forbidden",
                404 => "not-found",
                _ => "conflict",
            };
            let response = ApiError::from(RegistryError::from(refusal)).into_response();
            assert_eq!(
                answer_of(response).await,
                (
                    status,
                    json!({"error": {"code": family, "message": message}})
                ),
                "{code}"
            );
        }
    }

    #[tokio::test]
    async fn every_refusal_of_the_workbench_answers_with_its_row() {
        let user = || "bob".to_string();
        let table: Vec<(WorkbenchError, u16, &str, &str)> = vec![
            (
                WorkbenchError::PipelineNotFound,
                404,
                "not-found",
                "pipeline not found",
            ),
            (
                WorkbenchError::ProjectNotFound("pr1".into()),
                404,
                "not-found",
                "project pr1 does not exist",
            ),
            (
                WorkbenchError::OwnsNeither { user: user() },
                403,
                "forbidden",
                "bob owns neither the project nor the pipeline",
            ),
            (
                WorkbenchError::NotAllowed {
                    pipeline: "p1".into(),
                    owner: "alice".into(),
                    user: user(),
                },
                403,
                "forbidden",
                "pipeline p1 belongs to alice; bob may not act on it",
            ),
            (
                WorkbenchError::Archived("p1".into()),
                409,
                "archived",
                "pipeline p1 is archived",
            ),
            (
                WorkbenchError::Duplicate {
                    name: "churn".into(),
                    version: Some("1.0".into()),
                    user: user(),
                },
                409,
                "conflict",
                "a pipeline named churn version 1.0 exists already for bob",
            ),
            (
                WorkbenchError::Duplicate {
                    name: "churn".into(),
                    version: None,
                    user: user(),
                },
                409,
                "conflict",
                "a pipeline named churn exists already for bob",
            ),
            (
                WorkbenchError::LaunchFailed {
                    code: "no-hub".into(),
                    message: "JupyterHub is down".into(),
                },
                502,
                "launch-failed",
                "launch failed (no-hub): JupyterHub is down",
            ),
        ];
        for (error, status, code, message) in table {
            let response = ApiError::from(error).into_response();
            assert_eq!(
                answer_of(response).await,
                (status, json!({"error": {"code": code, "message": message}})),
                "{message}"
            );
        }
    }
}
