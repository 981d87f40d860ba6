//! What the surfaces ask of the server beside pipelines: the pipeline types the loaded type
//! handlers offer and the files a new pipeline of a type starts with (`/v1/types`), and whether
//! the server is alive and ready (`/healthz`, `/readyz`). Here so that no surface reaches into
//! the plugin host or the store itself.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::plugins;

use super::{Caller, Refusal, Registry, RegistryError};

/// A pipeline type, as its handler describes it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PipelineType {
    pub id: String,
    pub display_name: String,
    pub content_kinds: Vec<String>,
    pub default_files: Vec<String>,
    /// `plugin@version` of the handler.
    pub handler: String,
    /// The surfaces that offer the type: `v1` (every type), then those its handler declares
    /// (`pipewright:plugin@0.3.0`'s `surfaces`, e.g. `acumos` for the ML Workbench's
    /// `pipelineType`).
    pub surfaces: Vec<String>,
}

/// What `/readyz` reports: each check, Ok or why it failed.
pub struct Readiness {
    pub database: anyhow::Result<()>,
    pub blob_store: anyhow::Result<()>,
    pub builtin_plugins: anyhow::Result<()>,
}

/// How long one readiness check may take before it counts as failed: a hung database must make
/// `/readyz` answer 503, not hang the prober.
const READINESS_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

impl Registry {
    /// Every pipeline type the active type handlers offer.
    pub fn pipeline_types(&self) -> Vec<PipelineType> {
        self.plugins
            .type_handlers()
            .iter()
            .map(|t| PipelineType {
                id: t.info.id.clone(),
                display_name: t.info.display_name.clone(),
                content_kinds: t.info.content_kinds.clone(),
                default_files: t.info.default_files.clone(),
                handler: t.id.to_string(),
                surfaces: super::plugin_versions::offered_on(&t.surfaces),
            })
            .collect()
    }

    /// The files a new pipeline `name` of `type_id` starts with, from its handler's `scaffold`
    /// (a plugin call: on a blocking thread).
    pub async fn scaffold(
        &self,
        caller: &Caller,
        type_id: &str,
        name: &str,
    ) -> Result<Vec<plugins::File>, RegistryError> {
        let handler = self
            .plugins
            .type_handler(type_id)
            .ok_or_else(|| Refusal::TypeNotFound {
                type_id: type_id.to_string(),
            })?;
        let pipeline = super::candidate(&caller.account, name, None, &handler.info.id, None);
        Ok(
            tokio::task::spawn_blocking(move || handler.scaffold(&pipeline))
                .await
                .map_err(|e| {
                    RegistryError::Internal(anyhow::anyhow!("scaffold task failed: {e}"))
                })??,
        )
    }

    /// Whether the database answers (`/healthz`: the process is alive and can serve).
    pub async fn alive(&self) -> Result<(), sqlx::Error> {
        self.store.ping().await
    }

    /// The database answers a query, the blob store takes a write and the built-in plugins are
    /// loaded; each check within [`READINESS_CHECK_TIMEOUT`].
    pub async fn readiness(&self) -> Readiness {
        let (database, blob_store) = tokio::join!(
            within_deadline(self.store.ping()),
            within_deadline(self.blobs.probe()),
        );
        let builtin_plugins = if self.plugins.builtins_loaded() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("the built-in plugins are not loaded"))
        };
        Readiness {
            database,
            blob_store,
            builtin_plugins,
        }
    }
}

/// A check's result, failed when it takes longer than [`READINESS_CHECK_TIMEOUT`].
async fn within_deadline<E: Into<anyhow::Error>>(
    check: impl std::future::Future<Output = Result<(), E>>,
) -> anyhow::Result<()> {
    match tokio::time::timeout(READINESS_CHECK_TIMEOUT, check).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(anyhow::anyhow!(
            "no answer within {READINESS_CHECK_TIMEOUT:?}"
        )),
    }
}
