//! The Acumos wire objects: the original service's `workbench-common` value objects (a
//! `Pipeline` with its ids, version, owner, collaborators, projects and service status), nulls
//! omitted, and how a workbench record of the core reads as one.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::time::{iso_instant, sql_timestamp};
use crate::registry::workbench::WorkbenchPipeline;

/// A pipeline of the ML Workbench (`org.acumos.workbench.common.vo.Pipeline`, with the seed's
/// `pipelineType` and `kernelType`). Absent fields are omitted, never `null` (as a request
/// body, its fields may be `null`: absent).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    #[serde(
        default,
        deserialize_with = "objects::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub pipeline_id: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "objects::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub owner: Option<User>,
    /// Its collaborators: the users besides its owner who have worked on it (the original's
    /// `users`). Absent when there are none.
    #[serde(
        default,
        deserialize_with = "objects::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub users: Option<Users>,
    /// The projects it belongs to. Absent when there are none.
    #[serde(
        default,
        deserialize_with = "objects::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub projects: Option<Projects>,
    /// `Jupyter`, `Zeppelin`, or the display name of another type the Workbench offers. In a
    /// request, a type's id in any case (`jupyter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub pipeline_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub kernel_type: Option<String>,
    #[serde(
        default,
        deserialize_with = "objects::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub service_status: Option<ServiceState>,
    #[serde(
        default,
        deserialize_with = "objects::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub artifact_status: Option<ArtifactState>,
}

/// An id with its name and kind (`identifierType`: `PIPELINE`, `USER`, `PROJECT`).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Identifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier_type: Option<String>,
    /// Free-form (`KVPairs` in the original); never set by this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<serde_json::Map<String, Value>>,
    #[serde(
        default,
        deserialize_with = "objects::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub version_id: Option<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_url: Option<String>,
}

/// All strings, as in the original: `creationTimeStamp` is an ISO-8601 instant,
/// `modifiedTimeStamp` is `yyyy-MM-dd HH:mm:ss.SSS` (UTC here).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
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

/// A user: `userId` (`uuid`, `name`, `identifierType` `USER`) and the Acumos login id.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(
        default,
        deserialize_with = "objects::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated_user_id: Option<String>,
}

/// A list of users (`org.acumos.workbench.common.vo.Users`).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct Users {
    #[serde(default, deserialize_with = "objects::list")]
    pub users: Vec<User>,
}

/// A list of projects (`org.acumos.workbench.common.vo.Projects`): written as their ids, as the
/// original's serializer writes them; read in either that shape or the original's `Project`
/// shape (`{"projectId": Identifier}`).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct Projects {
    #[serde(default, deserialize_with = "objects::list")]
    pub projects: Vec<ProjectEntry>,
}

/// One project of a [`Projects`] list: its id, or in a request a `Project` holding it.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectEntry {
    /// A request's `Project` shape; never written.
    #[serde(
        default,
        deserialize_with = "objects::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<Identifier>,
    #[serde(flatten)]
    pub identifier: Identifier,
}

/// `status` is one of ACTIVE, INACTIVE, FAILED, EXCEPTION, INPROGRESS, COMPLETED, ERROR.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
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
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ArtifactState {
    pub status: String,
}

/// A refused request, as the original answers it: a Pipeline holding only
/// `serviceStatus { status: "ERROR", statusMessage, requestId }`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Refused {
    pub service_status: ServiceState,
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

    /// The projects named in the body, in the original's input shape or its output shape.
    pub(super) fn project_uuids(&self) -> Vec<String> {
        let Some(projects) = &self.projects else {
            return Vec::new();
        };
        projects
            .projects
            .iter()
            .filter_map(|entry| {
                entry
                    .project_id
                    .as_ref()
                    .and_then(|id| id.uuid.clone())
                    .or_else(|| entry.identifier.uuid.clone())
            })
            .filter(|uuid| !uuid.trim().is_empty())
            .collect()
    }

    /// The wire form of a record, with `serviceStatus` COMPLETED: the operation is done.
    pub(super) fn of(record: &WorkbenchPipeline) -> Self {
        let projects = (!record.projects.is_empty()).then(|| Projects {
            projects: record
                .projects
                .iter()
                .map(|project| ProjectEntry {
                    project_id: None,
                    identifier: Identifier {
                        uuid: Some(project.id.clone()),
                        name: Some(project.name.clone()),
                        identifier_type: Some("PROJECT".into()),
                        ..Identifier::default()
                    },
                })
                .collect(),
        });
        let users = (!record.collaborators.is_empty()).then(|| Users {
            users: record
                .collaborators
                .iter()
                .map(|user| User::named(&user.id, &user.name))
                .collect(),
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
            owner: Some(User::named(&record.owner_id, &record.owner)),
            users,
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

/// What serde's derive reads as a struct is also an array of its fields in order; the
/// original's Jackson, and so its clients, know only objects. These read a struct field (or a
/// list's items) from JSON objects alone, so any other shape is "Invalid JSON".
pub(super) mod objects {
    use serde::de::{DeserializeOwned, Deserializer, Error};
    use serde::Deserialize;
    use serde_json::{Map, Value};

    /// A `T` from a JSON object.
    pub fn from_object<T: DeserializeOwned>(object: Map<String, Value>) -> serde_json::Result<T> {
        serde_json::from_value(Value::Object(object))
    }

    /// An optional `T`: absent, `null`, or an object.
    pub fn option<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<Map<String, Value>>::deserialize(deserializer)?
            .map(from_object)
            .transpose()
            .map_err(D::Error::custom)
    }

    /// A list of `T`, each an object.
    pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        Vec::<Map<String, Value>>::deserialize(deserializer)?
            .into_iter()
            .map(from_object)
            .collect::<Result<_, _>>()
            .map_err(D::Error::custom)
    }
}

impl User {
    /// A user as the original writes one: `userId` with the user's id and name, and the login.
    fn named(id: &str, name: &str) -> Self {
        User {
            user_id: Some(Identifier {
                uuid: Some(id.to_string()),
                name: Some(name.to_string()),
                identifier_type: Some("USER".into()),
                ..Identifier::default()
            }),
            authenticated_user_id: Some(name.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_uuids_in_either_shape() {
        let input: Pipeline = serde_json::from_str(
            r#"{"projects": {"projects": [{"projectId": {"uuid": "p1"}}, {"uuid": "p2"}]}}"#,
        )
        .unwrap();
        assert_eq!(input.project_uuids(), ["p1", "p2"]);
        let none: Pipeline = serde_json::from_str(r#"{"projects": {"projects": []}}"#).unwrap();
        assert!(none.project_uuids().is_empty());
        assert!(serde_json::from_str::<Pipeline>(r#"{"projects": 5}"#).is_err());
    }

    /// Objects only, as Jackson reads them: serde's derive alone would take an array of the
    /// fields in order.
    #[test]
    fn structs_are_read_from_objects_only() {
        for wrong in [
            r#"{"pipelineId": ["x"]}"#,
            r#"{"pipelineId": {"versionId": [null, null]}}"#,
            r#"{"users": {"users": [[{"uuid": "u"}]]}}"#,
            r#"{"users": {"users": [{"userId": {"versionId": []}}]}}"#,
            r#"{"projects": {"projects": [["p"]]}}"#,
            r#"{"serviceStatus": ["ERROR"]}"#,
        ] {
            assert!(serde_json::from_str::<Pipeline>(wrong).is_err(), "{wrong}");
        }
        let right: Pipeline = serde_json::from_str(
            r#"{"pipelineId": {"name": "n", "versionId": {"label": "1"}},
                "users": {"users": [{"userId": {"uuid": "u"}}]}}"#,
        )
        .unwrap();
        assert_eq!(right.version_label().as_deref(), Some("1"));
    }
}
