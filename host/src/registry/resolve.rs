//! Resolution: which one version a reference (`name`, or `name` at a version) means when a
//! client asks for a task or a workflow runs it, and the list of what is available.
//!
//! A pinned reference resolves to that version only when it is ready. An unpinned one resolves
//! to the latest ready version ([`super::versions::latest`]), so a newer version still
//! registering leaves the previous one in use. When nothing is ready, the answer says why: the
//! newest version is registering, or it failed ([`RegistryError::NotReady`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::versions::{self, VersionState, Versioned};
use super::{names, version_info, Refusal, Registry, RegistryError, VersionInfo};
use crate::store::pipelines as rows;

impl Registry {
    /// The ready version `name` (at `version`) of `namespace` resolves to.
    pub async fn resolve(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<VersionInfo, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        Ok(self
            .resolve_with(&mut conn, namespace, name, version)
            .await?
            .1)
    }

    /// The same on `conn`, with the pipeline's row.
    pub(crate) async fn resolve_with(
        &self,
        conn: &mut sqlx::AnyConnection,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<(rows::PipelineRow, VersionInfo), RegistryError> {
        let pipeline = self.find_pipeline(conn, namespace, name).await?;
        let all = rows::versions_of(conn, &pipeline.id).await?;
        let chosen = match version {
            Some(version) => {
                let key = names::key(version);
                all.into_iter()
                    .find(|v| names::key(&v.version) == key)
                    .ok_or_else(|| Refusal::VersionNotFound {
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                        version: version.to_string(),
                    })?
            }
            None => latest_or_newest(all, namespace, name)?,
        };
        match chosen.state() {
            VersionState::Ready => {
                let files = rows::files_of(conn, &chosen.id).await?;
                let info = version_info(&pipeline, chosen, files);
                Ok((pipeline, info))
            }
            state => Err(RegistryError::NotReady {
                name: pipeline.name,
                version: chosen.version,
                state,
            }),
        }
    }
}

/// The latest ready version of `all` (a pipeline's versions); when none is ready, the newest,
/// whose state tells why ([`latest_or_why`]). NotFound when there is no version at all.
fn latest_or_newest(
    all: Vec<rows::VersionRow>,
    namespace: &str,
    name: &str,
) -> Result<rows::VersionRow, RegistryError> {
    match versions::latest(&all) {
        Some(latest) => Ok(latest.clone()),
        None => all
            .into_iter()
            .max_by_key(|v| v.registered_at)
            .ok_or_else(|| {
                Refusal::NoVersion {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                }
                .into()
            }),
    }
}

/// The latest ready version of `all`, or why there is none: the one resolver of "latest" (a
/// newest version registering or failed is [`RegistryError::NotReady`], whatever surface asks).
pub(super) fn latest_or_why(
    all: Vec<rows::VersionRow>,
    namespace: &str,
    name: &str,
) -> Result<rows::VersionRow, RegistryError> {
    let chosen = latest_or_newest(all, namespace, name)?;
    match chosen.state() {
        VersionState::Ready => Ok(chosen),
        state => Err(RegistryError::NotReady {
            name: name.to_string(),
            version: chosen.version,
            state,
        }),
    }
}

impl Registry {
    /// Every ready version in `namespace` as (name, version), ordered by name, then
    /// [`versions::listing_order`]. Served from memory while the namespace's change counter
    /// (one indexed read) has not moved, so a large registry lists in milliseconds.
    pub async fn ready_versions_in(&self, namespace: &str) -> Result<Listing, RegistryError> {
        let key = names::key(namespace);
        let mut conn = self.store.pool().acquire().await?;
        let revision = rows::namespace_revision(&mut conn, &key).await?;
        if let Some(listing) = self.listings.get(&key, revision) {
            return Ok(listing);
        }
        let found = rows::ready_versions_in(&mut conn, &key).await?;
        drop(conn);
        let listing = Arc::new(sorted_listing(found));
        self.listings.put(key, revision, listing.clone());
        Ok(listing)
    }
}

/// A namespace's ready versions as (name, version), in listing order.
pub type Listing = Arc<Vec<(String, String)>>;

/// Listings by namespace key, each with the change counter it was read at.
#[derive(Default)]
pub struct ListingCache {
    entries: Mutex<HashMap<String, (i64, Listing)>>,
}

impl ListingCache {
    fn get(&self, key: &str, revision: i64) -> Option<Listing> {
        let entries = self.entries.lock().unwrap();
        entries
            .get(key)
            .filter(|(cached, _)| *cached == revision)
            .map(|(_, listing)| listing.clone())
    }

    fn put(&self, key: String, revision: i64, listing: Listing) {
        let mut entries = self.entries.lock().unwrap();
        // Keep the newest: a slow reader must not put back an older listing.
        if entries
            .get(&key)
            .is_none_or(|(cached, _)| *cached <= revision)
        {
            entries.insert(key, (revision, listing));
        }
    }
}

/// Ordered by name key, then [`versions::listing_order`] within a name.
fn sorted_listing(found: Vec<rows::NamedVersionRow>) -> Vec<(String, String)> {
    let mut listing = versions::sorted_for_listing(found);
    // Stable: the version order within each name is kept.
    listing.sort_by_cached_key(|row| names::key(&row.name));
    listing
        .into_iter()
        .map(|row| (row.name, row.version))
        .collect()
}

impl Versioned for rows::NamedVersionRow {
    fn version(&self) -> &str {
        &self.version
    }
    fn state(&self) -> VersionState {
        VersionState::Ready
    }
    fn registered_at(&self) -> i64 {
        self.registered_at
    }
}
