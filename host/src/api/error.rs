//! The native API's one error type: `{ "error": { "code", "message", "details"?, "request_id"? } }`
//! with the status its kind calls for. A 5xx tells the client little and logs the detail; its
//! `request_id` (see [`super::request_id`]) is what finds that detail in the log.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::registry::workbench::WorkbenchError;
use crate::registry::{Finding, RegistryError, VersionState};

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
            RegistryError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            RegistryError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("{what} not found"),
            ),
            RegistryError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
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
            RegistryError::NotReady { ref state, .. } => {
                let code = match state {
                    VersionState::Failed => "version-failed",
                    _ => "version-registering",
                };
                ApiError::new(StatusCode::CONFLICT, code, error.to_string())
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

impl From<WorkbenchError> for ApiError {
    fn from(error: WorkbenchError) -> Self {
        let message = error.to_string();
        match error {
            WorkbenchError::PipelineNotFound | WorkbenchError::ProjectNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
            }
            WorkbenchError::PermissionDenied(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            WorkbenchError::Archived(_) => ApiError::new(StatusCode::CONFLICT, "archived", message),
            WorkbenchError::Duplicate { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            WorkbenchError::LaunchFailed { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "launch-failed", message)
            }
            WorkbenchError::Registry(error) => error.into(),
        }
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
