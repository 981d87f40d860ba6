//! What a workbench record's name, version and type must pass: the policy chain bound to the
//! Acumos surface (`policy-acumos` by default) on the name and version, the store's rules on
//! both, and for its type a loaded type handler that serves the Workbench.

use std::sync::Arc;

use sqlx::AnyConnection;

use crate::plugins::{self, TypeHandlerPlugin};
use crate::store::workbench as rows;

use super::super::accounts::Caller;
use super::super::approval::Content;
use super::super::{names, Finding, Registry, RegistryError, Surface};

impl Registry {
    /// The policy chain of the Acumos surface on a name and version, then the structural rule
    /// that a record has a name. Ok: who approved.
    pub(super) async fn approve_name(
        &self,
        caller: &Caller,
        candidate: plugins::Pipeline,
        existing: Vec<String>,
    ) -> Result<Vec<plugins::PluginId>, RegistryError> {
        let (name, version) = (candidate.name.clone(), candidate.version.clone());
        let approvals = self
            .approve(
                caller,
                Surface::Acumos,
                None,
                candidate,
                existing,
                Content::None,
            )
            .await?;
        // Whatever chain is bound, a record has a name, and both fit the store's rules.
        names::check("name", &name).map_err(RegistryError::invalid)?;
        if let Some(version) = &version {
            names::check_version(version).map_err(RegistryError::invalid)?;
        }
        Ok(approvals)
    }

    /// The handler of a requested pipeline type, which must be one the Workbench offers (its
    /// handler declares the `acumos` surface): missing and unknown types are findings.
    pub(super) fn resolve_type(
        &self,
        requested: Option<&str>,
    ) -> Result<Arc<TypeHandlerPlugin>, RegistryError> {
        let requested = requested.ok_or_else(|| {
            RegistryError::invalid(Finding::new(
                "type-missing",
                "type",
                "the pipeline type is missing",
            ))
        })?;
        self.plugins
            .type_handler(requested)
            .filter(|handler| serves_the_workbench(handler))
            .ok_or_else(|| {
                RegistryError::invalid(Finding::new(
                    "invalid-type",
                    "type",
                    format!(
                        "`{requested}` is not a pipeline type of the Workbench; its types: {}",
                        self.workbench_type_names().join(", ")
                    ),
                ))
            })
    }

    pub(super) fn record_type_handler(
        &self,
        row: &rows::WorkbenchRow,
    ) -> Result<Arc<TypeHandlerPlugin>, RegistryError> {
        self.plugins
            .type_handler(&row.pipeline_type)
            .ok_or_else(|| {
                RegistryError::Internal(anyhow::anyhow!(
                    "no type handler for `{}` is loaded",
                    row.pipeline_type
                ))
            })
    }

    fn workbench_type_names(&self) -> Vec<String> {
        self.plugins
            .type_handlers()
            .iter()
            .filter(|h| serves_the_workbench(h))
            .map(|h| h.info.display_name.clone())
            .collect()
    }
}

/// Whether a type handler offers its type on the Acumos surface (declared through
/// `pipewright:plugin@0.3.0`'s `surfaces`; a handler of an older contract serves `/v1` only).
fn serves_the_workbench(handler: &TypeHandlerPlugin) -> bool {
    handler
        .surfaces
        .iter()
        .any(|surface| surface == Surface::Acumos.as_str())
}

/// The versions the caller's pipelines of this name have, for policies that compare.
pub(super) async fn existing_versions(
    conn: &mut AnyConnection,
    caller: &Caller,
    name: &str,
) -> Result<Vec<String>, RegistryError> {
    Ok(rows::records_of_user(conn, &caller.user_id, None)
        .await?
        .into_iter()
        .filter(|r| r.owner_user_id == caller.user_id && names::key(&r.name) == names::key(name))
        .filter_map(|r| r.version)
        .collect())
}

pub(super) fn audit(approvals: &[plugins::PluginId]) -> String {
    serde_json::to_string(
        &approvals
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    )
    .expect("a list of strings serializes")
}
