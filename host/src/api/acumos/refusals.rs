//! The Acumos surface's refusals: the seed's checks ([`Check`]) per operation ([`Op`]), each
//! with its exact status and message ([`wording`], the table), and how the core's errors map
//! onto those checks ([`Refusal::from_core`], [`Refusal::from_registry`]). The answer is the
//! original's: a Pipeline holding only `serviceStatus { status: "ERROR", statusMessage }`.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::wire::{Refused, ServiceState};
use crate::registry::workbench::WorkbenchError;
use crate::registry::{Refusal as CoreRefusal, RefusalKind, RegistryError};

/// The operations of the seed (and the original service's get-one and delete).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Launch,
    List,
    Update,
    Archive,
    Get,
    Delete,
    DeleteProjectAssociation,
}

/// Every check of the seed that refuses a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    InvalidJson,
    UserIdMissing,
    PermissionDenied,
    PipelineIdMissing,
    NameMissing,
    InvalidName,
    InvalidVersion,
    TypeMissing,
    InvalidType,
    ProjectNotFound,
    Duplicate,
    Archived,
    PipelineNotFound,
    InvalidAction,
    /// A request made in a project, on a pipeline that is not in it (the original's
    /// `AssociationNotFoundException`).
    NotAssociated,
    /// Archiving a pipeline other users or projects refer to.
    ReferencedElsewhere,
}

/// The status and the exact message of a refused check, per operation: the seed's words where
/// it has them (with its 404 where it says so, another fitting 4xx where it says "4xx"), the
/// original service's where the seed is silent.
pub fn wording(op: Op, check: Check) -> (StatusCode, &'static str) {
    use Check::*;
    use Op::*;
    const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;
    const CONFLICT: StatusCode = StatusCode::CONFLICT;
    match (op, check) {
        (_, InvalidJson) => (BAD, "Incorrectly formatted input – Invalid JSON"),
        // Create says 4xx; every other operation says 404.
        (Create, UserIdMissing) => (BAD, "Acumos User Id missing"),
        (_, UserIdMissing) => (NOT_FOUND, "Acumos User Id missing"),
        (Launch | List, PermissionDenied) => (FORBIDDEN, "Permissions denied"),
        (_, PermissionDenied) => (FORBIDDEN, "Permission denied"),
        (_, PipelineIdMissing) => (NOT_FOUND, "Pipeline Id missing"),
        (_, NameMissing) => (BAD, "Pipeline Name missing"),
        (_, InvalidName) => (BAD, "Invalid Pipeline name"),
        (_, InvalidVersion) => (BAD, "Invalid Pipeline version"),
        (_, TypeMissing) => (BAD, "Missing mandatory field – pipeline type"),
        (_, InvalidType) => (BAD, "Invalid pipeline type provided"),
        (Create, ProjectNotFound) => (NOT_FOUND, "ProjectId does not exist."),
        (Update, ProjectNotFound) => (NOT_FOUND, "Project Id is invalid"),
        (_, ProjectNotFound) => (NOT_FOUND, "Project Id does not exists"),
        (Update, Duplicate) => (
            CONFLICT,
            "Pipeline name and version already exists for user",
        ),
        (_, Duplicate) => (
            CONFLICT,
            "Pipeline name and version already exists for this user",
        ),
        (Update, Archived) => (CONFLICT, "Update not allowed – pipeline is archived"),
        (_, Archived) => (CONFLICT, "Cannot launch – pipeline is archived"),
        (Launch, PipelineNotFound) => (NOT_FOUND, "Pipeline not found"),
        (_, PipelineNotFound) => (NOT_FOUND, "Requested Pipeline Not found"),
        (_, InvalidAction) => (
            BAD,
            "Invalid action type: use A to archive or UA to unarchive",
        ),
        (_, NotAssociated) => (
            NOT_FOUND,
            "Specified Project and Pipeline are not associated",
        ),
        (_, ReferencedElsewhere) => (CONFLICT, "Pipeline is referenced by other users / projects"),
    }
}

/// A refused request: `{"serviceStatus": {"status": "ERROR", "statusMessage": …}}`.
#[derive(Debug)]
pub struct Refusal {
    pub(super) status: StatusCode,
    pub(super) message: Cow<'static, str>,
}

impl Refusal {
    pub(super) fn of(op: Op, check: Check) -> Self {
        let (status, message) = wording(op, check);
        Refusal {
            status,
            message: message.into(),
        }
    }

    /// Words a refusal of the core.
    pub(super) fn from_core(op: Op, error: WorkbenchError) -> Self {
        Refusal::worded(op, error).1
    }

    /// Words a refusal of the core, and names the seed's check it failed (None for a refusal
    /// the seed has no check for): the console shows the message beside the field it concerns.
    pub fn worded(op: Op, error: WorkbenchError) -> (Option<Check>, Refusal) {
        match Refusal::core_check(error) {
            Ok(check) => (Some(check), Refusal::of(op, check)),
            Err(refusal) => (None, refusal),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The seed's check a refusal of the core fails; Err: one it has none for, worded.
    fn core_check(error: WorkbenchError) -> Result<Check, Refusal> {
        let check = match error {
            WorkbenchError::PipelineNotFound => Check::PipelineNotFound,
            WorkbenchError::ProjectNotFound(_) => Check::ProjectNotFound,
            WorkbenchError::OwnsNeither { .. } | WorkbenchError::NotAllowed { .. } => {
                Check::PermissionDenied
            }
            WorkbenchError::Archived(_) => Check::Archived,
            WorkbenchError::NotInProject { .. } => Check::NotAssociated,
            WorkbenchError::Shared { .. } => Check::ReferencedElsewhere,
            WorkbenchError::Duplicate { .. } => Check::Duplicate,
            WorkbenchError::LaunchFailed { code, message } => {
                return Err(Refusal {
                    status: StatusCode::BAD_GATEWAY,
                    message: format!("Pipeline launch failed ({code}): {message}").into(),
                })
            }
            WorkbenchError::Registry(error) => return Refusal::registry_check(error),
        };
        Ok(check)
    }

    pub(super) fn from_registry(op: Op, error: RegistryError) -> Self {
        match Refusal::registry_check(error) {
            Ok(check) => Refusal::of(op, check),
            Err(refusal) => refusal,
        }
    }

    /// The seed's check a refusal of the registry fails; Err: one it has none for, worded.
    fn registry_check(error: RegistryError) -> Result<Check, Refusal> {
        let check = match error {
            RegistryError::Invalid(findings) => {
                let Some(first) = findings.into_iter().next() else {
                    return Ok(Check::InvalidJson);
                };
                match (first.code.as_str(), first.field.as_deref()) {
                    ("name-missing", _) => Check::NameMissing,
                    ("type-missing", _) => Check::TypeMissing,
                    ("invalid-type", _) | (_, Some("type")) => Check::InvalidType,
                    ("invalid-version", _) | (_, Some("version")) => Check::InvalidVersion,
                    ("invalid-name", _) | (_, Some("name")) => Check::InvalidName,
                    // A rule of a custom policy that names no field the seed knows.
                    _ => {
                        return Err(Refusal {
                            status: StatusCode::BAD_REQUEST,
                            message: first.message.into(),
                        })
                    }
                }
            }
            RegistryError::Unauthenticated => Check::UserIdMissing,
            RegistryError::Refused(refusal) => match (refusal.kind(), &refusal) {
                (_, CoreRefusal::ProjectNotFound { .. }) => Check::ProjectNotFound,
                (RefusalKind::NotFound, _) => Check::PipelineNotFound,
                (RefusalKind::Forbidden, _) => Check::PermissionDenied,
                // The seed is silent on conflicts of the core: the native words.
                (RefusalKind::Conflict, _) => {
                    let (status, _, message) = crate::api::error::refusal_wording(&refusal);
                    return Err(Refusal {
                        status,
                        message: message.into(),
                    });
                }
            },
            RegistryError::QuotaExceeded(quota) => {
                return Err(Refusal {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: quota.to_string().into(),
                })
            }
            RegistryError::NotReady {
                name,
                version,
                state,
            } => {
                return Err(Refusal {
                    status: StatusCode::CONFLICT,
                    message: crate::api::error::not_ready_message(&name, &version, state).into(),
                })
            }
            RegistryError::Plugin(error) => {
                return Err(Refusal {
                    status: StatusCode::BAD_GATEWAY,
                    message: format!("A plugin failed: {error}").into(),
                })
            }
            RegistryError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                return Err(Refusal {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "Internal error; see the server log".into(),
                });
            }
        };
        Ok(check)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = Refused {
            service_status: ServiceState {
                status: "ERROR".into(),
                status_message: Some(self.message.into_owned()),
                request_id: crate::api::request_id::current(),
            },
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use serde_json::json;

    use super::*;
    use crate::api::error::tests::{answer_of, rows};

    /// The refusals of the core, refused to an update: the seed's words for the checks they
    /// fail (permission, project, pipeline), the native words for the conflicts it is silent on.
    #[tokio::test]
    async fn every_refusal_of_the_core_answers_as_the_table_says() {
        let seed: &[(&str, u16, &str)] = &[
            ("namespace-reserved", 403, "Permission denied"),
            ("not-a-member", 403, "Permission denied"),
            ("namespace-of-another-account", 403, "Permission denied"),
            ("not-an-admin", 403, "Permission denied"),
            ("workflow-of-another-account", 403, "Permission denied"),
            ("pipeline-not-found", 404, "Requested Pipeline Not found"),
            ("version-not-found", 404, "Requested Pipeline Not found"),
            ("no-version", 404, "Requested Pipeline Not found"),
            ("plugin-not-found", 404, "Requested Pipeline Not found"),
            (
                "plugin-version-not-found",
                404,
                "Requested Pipeline Not found",
            ),
            ("binding-not-found", 404, "Requested Pipeline Not found"),
            ("run-not-found", 404, "Requested Pipeline Not found"),
            ("type-not-found", 404, "Requested Pipeline Not found"),
            ("project-not-found", 404, "Project Id is invalid"),
            ("workflow-not-found", 404, "Requested Pipeline Not found"),
            ("pointer-not-found", 404, "Requested Pipeline Not found"),
            ("upload-not-found", 404, "Requested Pipeline Not found"),
            (
                "workflow-task-not-found",
                404,
                "Requested Pipeline Not found",
            ),
        ];
        for (refusal, status, message) in rows(seed) {
            let code = refusal.code();
            let refused = Refusal::from_registry(Op::Update, refusal.into());
            assert_eq!(
                answer_of(refused.into_response()).await,
                (
                    status,
                    json!({"serviceStatus": {"status": "ERROR", "statusMessage": message}})
                ),
                "{code}"
            );
        }
    }
}
