//! Plugins as registry citizens: every plugin is a set of immutable versions
//! (`name@semver`, digest), the built-ins among them, and at most one version per plugin is
//! active. Adding a version (upload or URL) probes it first, so a component that implements no
//! known world or imports what the host does not grant is refused with the reason and nothing is
//! stored. Activation, deactivation and rollback are appended to a log in the store (so rollback
//! knows what was active before) and bump a change counter that every server follows
//! ([`super::changes`]): all replicas run the same version of a plugin within a poll.
//!
//! Changing what is active is for members of the server's admin account, as binding policies is.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::plugins::{builtin, LoadedPlugin, PluginError};
use crate::store::{self, plugins as rows};

use super::accounts::Caller;
use super::{AdminAction, Finding, Refusal, Registry, RegistryError};

/// One version of a plugin, as `/v1/plugins` shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PluginVersionInfo {
    pub name: String,
    pub version: String,
    /// `validation-policy` or `type-handler`.
    pub world: String,
    /// The WIT package it was built against (`pipewright:plugin@0.1.0`).
    pub wit: String,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// Bytes of the component.
    pub size: i64,
    /// Who added it; `builtin` for the plugins shipped in the binary.
    pub added_by: String,
    pub added_at_ms: i64,
    /// Whether this version is the one this server runs.
    pub active: bool,
    pub builtin: bool,
    /// The pipeline type a type handler adds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_id: Option<String>,
    /// What a policy built against `pipewright:plugin@0.2.0` says it enforces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub about: Option<About>,
    /// A type handler's: the surfaces that offer its type, `v1` first (every type is offered
    /// there) and then those it declares (`pipewright:plugin@0.3.0`'s `surfaces`; a handler of
    /// an older contract declares none). Absent for a policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surfaces: Option<Vec<String>>,
    /// The policy-binding scopes whose chain names this plugin (any version: a chain names
    /// plugins, and runs the active version of each).
    pub bound_in: Vec<String>,
}

/// A 0.2.0 policy's own account of itself (its `about.describe`).
#[derive(Clone, Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct About {
    pub summary: String,
    /// Every violation code it may return.
    pub codes: Vec<String>,
}

impl About {
    fn of(loaded: &LoadedPlugin) -> Option<About> {
        loaded.about().map(|about| About {
            summary: about.summary.clone(),
            codes: about.codes.clone(),
        })
    }
}

/// A plugin with the versions it has.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PluginSummary {
    pub name: String,
    pub world: String,
    pub active_version: Option<String>,
    /// Oldest first.
    pub versions: Vec<String>,
}

/// A plugin with every version in full.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PluginDetail {
    pub name: String,
    pub world: String,
    pub active_version: Option<String>,
    /// Oldest first.
    pub versions: Vec<PluginVersionInfo>,
}

/// Where the bytes of a new version come from.
pub enum PluginSource {
    Upload(Vec<u8>),
    /// Fetched by the server (http, https; `file://` under `--registration-file-root` only),
    /// checked against `digest` (`sha256:<hex>`) when given.
    Url {
        url: String,
        digest: Option<String>,
    },
}

impl Registry {
    /// Every plugin, ordered by name.
    pub async fn list_plugins(&self) -> Result<Vec<PluginSummary>, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let mut by_name: BTreeMap<String, PluginSummary> = BTreeMap::new();
        for row in rows::all_versions(&mut conn).await? {
            let summary = by_name
                .entry(row.name.clone())
                .or_insert_with(|| PluginSummary {
                    active_version: self.active_version(&row.name),
                    name: row.name.clone(),
                    world: row.world.clone(),
                    versions: Vec::new(),
                });
            summary.versions.push(row.version);
        }
        Ok(by_name.into_values().collect())
    }

    /// Plugin `name` with all its versions.
    pub async fn plugin(&self, name: &str) -> Result<PluginDetail, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let versions: Vec<PluginVersionInfo> = rows::versions_of(&mut conn, name)
            .await?
            .into_iter()
            .map(|row| self.plugin_version_info(row))
            .collect();
        let first = versions.first().ok_or_else(|| Refusal::PluginNotFound {
            name: name.to_string(),
        })?;
        Ok(PluginDetail {
            name: name.to_string(),
            world: first.world.clone(),
            active_version: self.active_version(name),
            versions,
        })
    }

    /// Version `version` of plugin `name`.
    pub async fn plugin_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<PluginVersionInfo, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let row = rows::version(&mut conn, name, version)
            .await?
            .ok_or_else(|| plugin_version_not_found(name, version))?;
        Ok(self.plugin_version_info(row))
    }

    /// Adds `name@version` (and makes it active when `activate`). Ok: the version and whether it
    /// was new (adding the same bytes again is not an error; other bytes are: versions are
    /// immutable).
    pub async fn add_plugin(
        &self,
        caller: &Caller,
        name: &str,
        version: &str,
        source: PluginSource,
        activate: bool,
    ) -> Result<(PluginVersionInfo, bool), RegistryError> {
        self.require_admin(caller, AdminAction::AddPlugins).await?;
        check_name_and_version(name, version)?;
        let bytes = match source {
            PluginSource::Upload(bytes) => bytes,
            PluginSource::Url { url, digest } => {
                self.check_fetchable(&url).await?;
                let bytes = self.fetch_url(&url).await.map_err(|detail| {
                    RegistryError::invalid(Finding::new("unfetchable", "url", detail.to_string()))
                })?;
                if let Some(expected) = digest {
                    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
                    if actual != expected {
                        return Err(RegistryError::invalid(Finding::new(
                            "digest-mismatch",
                            "digest",
                            format!("{url} has digest {actual}, not {expected}"),
                        )));
                    }
                }
                bytes
            }
        };
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));

        let mut conn = self.store.pool().acquire().await?;
        if let Some(existing) = rows::version(&mut conn, name, version).await? {
            drop(conn);
            return self
                .add_existing(caller, existing, &digest, activate)
                .await
                .map(|info| (info, false));
        }
        let world_of_name = rows::versions_of(&mut conn, name)
            .await?
            .into_iter()
            .next()
            .map(|row| row.world);
        drop(conn);

        let loaded = self.probe_plugin(name, version, bytes.clone()).await?;
        if let Some(world) = world_of_name.filter(|w| w != loaded.world().as_str()) {
            return Err(RegistryError::invalid(Finding::new(
                "world-mismatch",
                "component",
                format!(
                    "{name}@{version} implements {}, but the other versions of {name} implement {world}",
                    loaded.world().as_str()
                ),
            )));
        }
        if activate {
            self.plugins.can_activate(&loaded).map_err(conflict)?;
        }
        self.blobs.put(&bytes).await?;
        let now = store::now_millis();
        let mut tx = self.store.begin().await?;
        let row = new_row(&loaded, bytes.len(), Some(&caller.user_id), now);
        let inserted = rows::insert_version(&mut tx, &row).await;
        match inserted {
            Err(e) if store::is_unique_violation(&e) => {
                // Added concurrently: answer as if it had been there first.
                drop(tx);
                return Box::pin(self.add_plugin(
                    caller,
                    name,
                    version,
                    PluginSource::Upload(bytes),
                    activate,
                ))
                .await;
            }
            other => other?,
        }
        if activate {
            rows::append_activation(&mut tx, name, Some(version), &caller.user_id, now).await?;
        }
        tx.commit().await?;
        if activate {
            self.plugins.activate(&loaded).map_err(conflict)?;
        }
        tracing::info!(plugin = %loaded.id(), %digest, world = loaded.world().as_str(), activate, by = %caller.user, "plugin version added");
        Ok((self.plugin_version(name, version).await?, true))
    }

    /// Makes `name@version` the active version of its plugin, on every server.
    pub async fn activate_plugin(
        &self,
        caller: &Caller,
        name: &str,
        version: &str,
    ) -> Result<PluginVersionInfo, RegistryError> {
        self.require_admin(caller, AdminAction::ActivatePlugins)
            .await?;
        let mut conn = self.store.pool().acquire().await?;
        let row = rows::version(&mut conn, name, version)
            .await?
            .ok_or_else(|| plugin_version_not_found(name, version))?;
        drop(conn);
        let loaded = self.load_version(&row).await?;
        self.plugins.can_activate(&loaded).map_err(conflict)?;
        let mut tx = self.store.begin().await?;
        rows::append_activation(
            &mut tx,
            name,
            Some(version),
            &caller.user_id,
            store::now_millis(),
        )
        .await?;
        tx.commit().await?;
        self.plugins.activate(&loaded).map_err(conflict)?;
        tracing::info!(plugin = %loaded.id(), by = %caller.user, "plugin activated");
        self.plugin_version(name, version).await
    }

    /// Makes no version of `name` active, on every server. Refused while a policy binding
    /// names it: the chain would have nothing to run.
    pub async fn deactivate_plugin(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<PluginDetail, RegistryError> {
        self.require_admin(caller, AdminAction::DeactivatePlugins)
            .await?;
        if self.plugins.active(name).is_none() {
            self.plugin(name).await?;
            return Err(Refusal::NoActivePluginVersion {
                name: name.to_string(),
            }
            .into());
        }
        let bound = self.bound_in(name);
        if !bound.is_empty() {
            return Err(Refusal::PluginBound {
                name: name.to_string(),
                scopes: bound,
            }
            .into());
        }
        let mut tx = self.store.begin().await?;
        rows::append_activation(&mut tx, name, None, &caller.user_id, store::now_millis()).await?;
        tx.commit().await?;
        self.plugins.deactivate(name);
        tracing::info!(plugin = name, by = %caller.user, "plugin deactivated");
        self.plugin(name).await
    }

    /// Makes the version that was active before the current one active again.
    pub async fn rollback_plugin(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<PluginVersionInfo, RegistryError> {
        self.require_admin(caller, AdminAction::RollBackPlugins)
            .await?;
        let detail = self.plugin(name).await?;
        let mut conn = self.store.pool().acquire().await?;
        let log = rows::activation_log(&mut conn, name).await?;
        drop(conn);
        let builtin = detail
            .versions
            .iter()
            .find(|v| v.builtin)
            .map(|v| v.version.clone());
        let previous =
            previous_version(&log, builtin).ok_or_else(|| Refusal::NoEarlierPluginVersion {
                name: name.to_string(),
            })?;
        self.activate_plugin(caller, name, &previous).await
    }

    /// Records the built-ins of this binary as plugin versions (at start).
    pub async fn record_builtin_plugins(&self) -> Result<(), RegistryError> {
        let now = store::now_millis();
        let mut tx = self.store.begin().await?;
        for (name, version, bytes) in builtin::BUILTIN_PLUGINS {
            // Called before [`Registry::sync_plugins`], while the built-ins are what runs.
            let Some(loaded) = self
                .plugins
                .active(name)
                .filter(|loaded| loaded.id().version == *version)
            else {
                continue;
            };
            rows::insert_version(&mut tx, &new_row(&loaded, bytes.len(), None, now)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Brings the active plugins of this server in line with the store's activations (at start
    /// and whenever another server changed them). A plugin never activated through the API runs
    /// its built-in version. A version that cannot be loaded here is logged and left as is.
    pub async fn sync_plugins(&self) -> Result<i64, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let revision = rows::revision(&mut conn).await?;
        let versions = rows::all_versions(&mut conn).await?;
        let activations = rows::current_activations(&mut conn).await?;
        drop(conn);
        let mut wanted: BTreeMap<String, Option<String>> = versions
            .iter()
            .filter(|row| row.builtin == 1)
            .map(|row| (row.name.clone(), Some(row.version.clone())))
            .collect();
        wanted.extend(activations);
        for (name, version) in wanted {
            let running = self.active_version(&name);
            if running == version {
                continue;
            }
            match version {
                None => {
                    self.plugins.deactivate(&name);
                }
                Some(version) => {
                    let row = versions
                        .iter()
                        .find(|row| row.name == name && row.version == version);
                    let outcome = match row {
                        Some(row) => self.load_version(row).await.and_then(|loaded| {
                            self.plugins.activate(&loaded).map_err(RegistryError::from)
                        }),
                        None => Err(plugin_version_not_found(&name, &version)),
                    };
                    if let Err(error) = outcome {
                        tracing::error!(plugin = %name, %version, %error, "could not activate the stored plugin version");
                    }
                }
            }
        }
        self.plugins_revision
            .store(revision, std::sync::atomic::Ordering::Release);
        Ok(revision)
    }

    fn active_version(&self, name: &str) -> Option<String> {
        self.plugins
            .active(name)
            .map(|loaded| loaded.id().version.clone())
    }

    fn bound_in(&self, name: &str) -> Vec<String> {
        self.bindings
            .snapshot()
            .into_iter()
            .filter(|(_, chain)| chain.iter().any(|n| n == name))
            .map(|(scope, _)| scope.to_string())
            .collect()
    }

    fn plugin_version_info(&self, row: rows::PluginVersionRow) -> PluginVersionInfo {
        let active = self.active_version(&row.name).as_deref() == Some(row.version.as_str());
        let type_handler = row.type_id.is_some();
        PluginVersionInfo {
            bound_in: self.bound_in(&row.name),
            active,
            builtin: row.builtin == 1,
            added_by: row.added_by.unwrap_or_else(|| "builtin".into()),
            name: row.name,
            version: row.version,
            world: row.world,
            wit: row.wit,
            digest: row.digest,
            size: row.size,
            added_at_ms: row.added_at,
            type_id: row.type_id,
            about: row
                .about
                .as_deref()
                .and_then(|json| serde_json::from_str(json).ok()),
            surfaces: type_handler.then(|| {
                let declared: Vec<String> = row
                    .surfaces
                    .as_deref()
                    .and_then(|json| serde_json::from_str(json).ok())
                    .unwrap_or_default();
                offered_on(&declared)
            }),
        }
    }

    /// The same bytes again: fine (and activated if asked); other bytes: refused.
    async fn add_existing(
        &self,
        caller: &Caller,
        existing: rows::PluginVersionRow,
        digest: &str,
        activate: bool,
    ) -> Result<PluginVersionInfo, RegistryError> {
        if existing.digest != digest {
            return Err(Refusal::PluginVersionExists {
                name: existing.name,
                version: existing.version,
                digest: existing.digest,
            }
            .into());
        }
        if activate && self.active_version(&existing.name).as_ref() != Some(&existing.version) {
            return self
                .activate_plugin(caller, &existing.name, &existing.version)
                .await;
        }
        Ok(self.plugin_version_info(existing))
    }

    /// The component of a stored version, compiled (from the cache) and probed.
    async fn load_version(
        &self,
        row: &rows::PluginVersionRow,
    ) -> Result<LoadedPlugin, RegistryError> {
        let bytes = if row.builtin == 1 {
            builtin::BUILTIN_PLUGINS
                .iter()
                .find(|(name, version, _)| *name == row.name && *version == row.version)
                .map(|(_, _, bytes)| bytes.to_vec())
                .ok_or_else(|| {
                    RegistryError::Internal(anyhow::anyhow!(
                        "built-in plugin {}@{} is not in this binary",
                        row.name,
                        row.version
                    ))
                })?
        } else {
            self.blobs.get(&row.digest).await?
        };
        self.probe_plugin(&row.name, &row.version, bytes).await
    }

    async fn probe_plugin(
        &self,
        name: &str,
        version: &str,
        bytes: Vec<u8>,
    ) -> Result<LoadedPlugin, RegistryError> {
        let plugins = self.plugins.clone();
        let (name, version) = (name.to_string(), version.to_string());
        tokio::task::spawn_blocking(move || plugins.probe(&name, &version, &bytes))
            .await
            .map_err(|e| RegistryError::Internal(anyhow::anyhow!("plugin probe task: {e}")))?
            .map_err(|error| match error {
                // The component itself is at fault: the uploader's error, not the server's.
                PluginError::Load { .. }
                | PluginError::NoKnownWorld { .. }
                | PluginError::Runnable { .. }
                | PluginError::UnknownSurface { .. }
                | PluginError::Instantiate { .. }
                | PluginError::Timeout { .. }
                | PluginError::MemoryLimit { .. }
                | PluginError::Trap { .. } => RegistryError::invalid(Finding::new(
                    "invalid-plugin",
                    "component",
                    error.to_string(),
                )),
                PluginError::TypeTaken { .. } => conflict(error),
            })
    }
}

/// The version to roll back to: the last one active before the current, or the built-in.
fn previous_version(log: &[Option<String>], builtin: Option<String>) -> Option<String> {
    let current = match log.first() {
        Some(current) => current.clone(),
        None => builtin.clone(),
    };
    log.iter()
        .skip(1)
        .flatten()
        .find(|version| Some(*version) != current.as_ref())
        .cloned()
        .or(builtin.filter(|b| Some(b) != current.as_ref()))
}

/// The row of a probed component; `added_by` None for a built-in.
fn new_row(
    loaded: &LoadedPlugin,
    size: usize,
    added_by: Option<&str>,
    now: i64,
) -> rows::NewPluginVersion {
    rows::NewPluginVersion {
        name: loaded.id().name.clone(),
        version: loaded.id().version.clone(),
        world: loaded.world().as_str(),
        wit: loaded.wit(),
        digest: format!("sha256:{}", loaded.digest()),
        size: size as i64,
        type_id: match loaded {
            LoadedPlugin::TypeHandler(handler) => Some(handler.info.id.clone()),
            LoadedPlugin::Policy(_) => None,
        },
        about: About::of(loaded)
            .map(|about| serde_json::to_string(&about).expect("About serializes")),
        surfaces: match loaded {
            LoadedPlugin::TypeHandler(handler) if !handler.surfaces.is_empty() => Some(
                serde_json::to_string(&handler.surfaces).expect("a list of strings serializes"),
            ),
            _ => None,
        },
        added_by_user_id: added_by.map(str::to_string),
        added_at: now,
    }
}

/// The surfaces a type is offered on: `/v1` (every type), then those its handler declares.
pub(super) fn offered_on(declared: &[String]) -> Vec<String> {
    std::iter::once(super::Surface::V1.as_str().to_string())
        .chain(declared.iter().cloned())
        .collect()
}

/// Why a plugin cannot be made active: another plugin handles its type.
fn conflict(error: PluginError) -> RegistryError {
    match error {
        PluginError::TypeTaken {
            plugin,
            type_id,
            holder,
        } => Refusal::TypeTaken {
            plugin,
            type_id,
            holder,
        }
        .into(),
        other => other.into(),
    }
}

fn plugin_version_not_found(name: &str, version: &str) -> RegistryError {
    Refusal::PluginVersionNotFound {
        name: name.to_string(),
        version: version.to_string(),
    }
    .into()
}

/// Plugin names are lowercase words joined by `-`; versions are semver.
fn check_name_and_version(name: &str, version: &str) -> Result<(), RegistryError> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        return Err(RegistryError::invalid(Finding::new(
            "invalid-name",
            "name",
            format!("plugin name `{name}` must be lowercase letters, digits and `-`, starting with a letter"),
        )));
    }
    if semver::Version::parse(version).is_err() {
        return Err(RegistryError::invalid(Finding::new(
            "invalid-version",
            "version",
            format!("plugin version `{version}` is not semver (like 1.2.0)"),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(entries: &[Option<&str>]) -> Vec<Option<String>> {
        entries.iter().map(|e| e.map(str::to_string)).collect()
    }

    #[test]
    fn rollback_goes_to_the_version_active_before() {
        let builtin = Some("0.1.0".to_string());
        assert_eq!(previous_version(&[], builtin.clone()), None);
        assert_eq!(
            previous_version(&log(&[Some("2.0.0")]), builtin.clone()).as_deref(),
            Some("0.1.0")
        );
        assert_eq!(
            previous_version(&log(&[Some("3.0.0"), Some("1.0.0"), Some("2.0.0")]), None).as_deref(),
            Some("1.0.0")
        );
        // Deactivated: the last version that ran.
        assert_eq!(
            previous_version(&log(&[None, Some("1.0.0")]), None).as_deref(),
            Some("1.0.0")
        );
        // Re-activating the same version twice does not make it its own predecessor.
        assert_eq!(
            previous_version(&log(&[Some("2.0.0"), Some("2.0.0"), Some("1.0.0")]), None).as_deref(),
            Some("1.0.0")
        );
        assert_eq!(previous_version(&log(&[Some("1.0.0")]), None), None);
    }

    #[test]
    fn names_are_lowercase_words_and_versions_semver() {
        assert!(check_name_and_version("policy-prefix", "1.0.0").is_ok());
        assert!(check_name_and_version("Policy", "1.0.0").is_err());
        assert!(check_name_and_version("-x", "1.0.0").is_err());
        assert!(check_name_and_version("x", "1.0").is_err());
    }
}
