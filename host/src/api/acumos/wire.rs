//! The Acumos wire objects: the original service's `workbench-common` value objects (a
//! `Pipeline` with its ids, version, owner, projects and service status), nulls omitted, and
//! how a workbench record of the core reads as one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::time::{iso_instant, sql_timestamp};
use crate::registry::workbench::WorkbenchPipeline;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<User>,
    /// In: `{"projects": [{"projectId": Identifier}]}`; out: `{"projects": [Identifier]}`, as
    /// the original (de)serializes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Value>,
    /// `Jupyter`, `Zeppelin`, or the display name of any other type handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_status: Option<ServiceState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_status: Option<ArtifactState>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_url: Option<String>,
}

/// All strings, as in the original: `creationTimeStamp` is an ISO-8601 instant,
/// `modifiedTimeStamp` is `yyyy-MM-dd HH:mm:ss.SSS` (UTC here).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time_stamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_time_stamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated_user_id: Option<String>,
}

/// `status` is one of ACTIVE, INACTIVE, FAILED, EXCEPTION, INPROGRESS, COMPLETED, ERROR.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// On an ERROR only: the request's id (`x-request-id`), beside the original's fields, in
    /// their camelCase; what finds the refusal in the server log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `status` is ACTIVE or ARCHIVED.
#[derive(Debug, Deserialize, Serialize)]
pub struct ArtifactState {
    pub status: String,
}

impl Pipeline {
    pub(super) fn name(&self) -> Option<String> {
        self.pipeline_id.as_ref()?.name.clone()
    }

    pub(super) fn version_label(&self) -> Option<String> {
        self.pipeline_id
            .as_ref()?
            .version_id
            .as_ref()?
            .label
            .clone()
    }

    /// The first project named in the body, in the original's input shape or its output shape.
    pub(super) fn project_uuid(&self) -> Option<String> {
        let first = self.projects.as_ref()?.get("projects")?.get(0)?;
        first
            .pointer("/projectId/uuid")
            .or_else(|| first.get("uuid"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The wire form of a record, with `serviceStatus` COMPLETED: the operation is done.
    pub(super) fn of(record: &WorkbenchPipeline) -> Self {
        let projects = record.project_id.as_ref().map(|id| {
            serde_json::json!({ "projects": [{
                "uuid": id,
                "name": record.project_name,
                "identifierType": "PROJECT",
            }]})
        });
        Pipeline {
            pipeline_id: Some(Identifier {
                uuid: Some(record.id.clone()),
                name: Some(record.name.clone()),
                identifier_type: Some("PIPELINE".into()),
                metrics: None,
                version_id: Some(Version {
                    comment: None,
                    label: record.version.clone(),
                    creation_time_stamp: Some(iso_instant(record.created_at_ms)),
                    modified_time_stamp: Some(sql_timestamp(record.modified_at_ms)),
                    user: Some(record.owner_id.clone()),
                }),
                repository_url: Some(record.repository_url.clone()),
                service_url: record.service_url.clone(),
            }),
            description: record.description.clone(),
            owner: Some(User {
                user_id: Some(Identifier {
                    uuid: Some(record.owner_id.clone()),
                    name: Some(record.owner.clone()),
                    identifier_type: Some("USER".into()),
                    ..Identifier::default()
                }),
                authenticated_user_id: Some(record.owner.clone()),
            }),
            projects,
            pipeline_type: Some(record.pipeline_type.clone()),
            kernel_type: record.kernel_type.clone(),
            service_status: Some(ServiceState {
                status: "COMPLETED".into(),
                status_message: None,
                request_id: None,
            }),
            artifact_status: Some(ArtifactState {
                status: if record.archived {
                    "ARCHIVED"
                } else {
                    "ACTIVE"
                }
                .into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_uuid_in_either_shape() {
        let input: Pipeline =
            serde_json::from_str(r#"{"projects": {"projects": [{"projectId": {"uuid": "p1"}}]}}"#)
                .unwrap();
        assert_eq!(input.project_uuid().as_deref(), Some("p1"));
        let output: Pipeline =
            serde_json::from_str(r#"{"projects": {"projects": [{"uuid": "p2"}]}}"#).unwrap();
        assert_eq!(output.project_uuid().as_deref(), Some("p2"));
    }
}
