//! Resolution: which one version a reference (`name`, or `name` at a version) means when a
//! client asks for a task or a workflow runs it, and the list of what is available.
//!
//! A pinned reference resolves to that version only when it is ready. An unpinned one resolves
//! to the latest ready version ([`super::versions::latest`]), so a newer version still
//! registering leaves the previous one in use. When nothing is ready, the answer says why: the
//! newest version is registering, or it failed ([`RegistryError::NotReady`]).

use std::collections::{BTreeMap, HashMap};
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
    /// Every ready version in `namespace`, by pipeline: ordered by name, then
    /// [`versions::listing_order`]. Served from memory while the namespace's change counter
    /// (one indexed read) has not moved; when it has, only the pipelines changed since the
    /// cached listing are read again (each change records its pipeline with the counter, in the
    /// same commit: migration 0020), so the first read after a write costs what that write
    /// changed, not the size of the namespace.
    pub async fn ready_versions_in(&self, namespace: &str) -> Result<Listing, RegistryError> {
        let key = names::key(namespace);
        let mut conn = self.store.pool().acquire().await?;
        let revision = rows::namespace_revision(&mut conn, &key).await?;
        let cached = self.listings.get(&key);
        let listing = match cached {
            Some((at, listing)) if at == revision => return Ok(listing),
            Some((at, listing)) if at < revision => {
                let changed = rows::pipelines_changed_since(&mut conn, &key, at).await?;
                let found = rows::ready_versions_of(&mut conn, &changed).await?;
                Arc::new(listing.with_changes(&changed, found))
            }
            _ => Arc::new(NamespaceListing::of(
                rows::ready_versions_in(&mut conn, &key).await?,
            )),
        };
        drop(conn);
        self.listings.put(key, revision, listing.clone());
        Ok(listing)
    }
}

/// A namespace's ready versions, in listing order.
pub type Listing = Arc<NamespaceListing>;

/// The ready versions of a namespace's pipelines, by name key (each pipeline with ready
/// versions once). Pipelines are shared between successive listings: one unchanged by a write
/// is the same `Arc` before and after it (a surface may keep what it made of it).
#[derive(Clone, Default)]
pub struct NamespaceListing {
    pipelines: BTreeMap<Arc<str>, Arc<ListedPipeline>>,
    /// Pipeline id -> its name key in `pipelines`.
    keys: HashMap<Arc<str>, Arc<str>>,
}

/// One pipeline of a listing.
pub struct ListedPipeline {
    pub pipeline_id: Arc<str>,
    pub name: String,
    /// Its ready versions, in [`versions::listing_order`].
    pub versions: Vec<String>,
}

impl NamespaceListing {
    fn of(found: Vec<rows::NamedVersionRow>) -> NamespaceListing {
        let mut listing = NamespaceListing::default();
        for pipeline in listed_pipelines(found) {
            listing.insert(pipeline);
        }
        listing
    }

    /// This listing with the pipelines `changed` replaced by what `found` (their ready versions
    /// now) says; a changed pipeline with no ready version left leaves the listing.
    fn with_changes(&self, changed: &[String], found: Vec<rows::NamedVersionRow>) -> Self {
        let mut listing = self.clone();
        for id in changed {
            if let Some(key) = listing.keys.remove(id.as_str()) {
                listing.pipelines.remove(&key);
            }
        }
        for pipeline in listed_pipelines(found) {
            listing.insert(pipeline);
        }
        listing
    }

    fn insert(&mut self, pipeline: ListedPipeline) {
        let key: Arc<str> = names::key(&pipeline.name).into();
        self.keys.insert(pipeline.pipeline_id.clone(), key.clone());
        self.pipelines.insert(key, Arc::new(pipeline));
    }

    /// The pipelines, ordered by name key.
    pub fn pipelines(&self) -> impl Iterator<Item = &Arc<ListedPipeline>> {
        self.pipelines.values()
    }

    /// Every (name, version), in listing order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pipelines().flat_map(|pipeline| {
            pipeline
                .versions
                .iter()
                .map(|version| (pipeline.name.as_str(), version.as_str()))
        })
    }
}

/// Rows of ready versions grouped by pipeline, each pipeline's in listing order.
fn listed_pipelines(found: Vec<rows::NamedVersionRow>) -> Vec<ListedPipeline> {
    let mut by_pipeline: HashMap<String, Vec<rows::NamedVersionRow>> = HashMap::new();
    for row in found {
        by_pipeline
            .entry(row.pipeline_id.clone())
            .or_default()
            .push(row);
    }
    by_pipeline
        .into_iter()
        .map(|(pipeline_id, rows)| {
            let sorted = versions::sorted_for_listing(rows);
            ListedPipeline {
                pipeline_id: pipeline_id.into(),
                name: sorted[0].name.clone(),
                versions: sorted.into_iter().map(|row| row.version).collect(),
            }
        })
        .collect()
}

/// Listings by namespace key, each with the change counter it was read at.
#[derive(Default)]
pub struct ListingCache {
    entries: Mutex<HashMap<String, (i64, Listing)>>,
}

impl ListingCache {
    fn get(&self, key: &str) -> Option<(i64, Listing)> {
        let entries = self.entries.lock().unwrap();
        entries.get(key).cloned()
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
