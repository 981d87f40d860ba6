//! Resolution: which one version a reference (`name`, or `name` at a version) means when a
//! client asks for a task or a workflow runs it, and the list of what is available.
//!
//! A pinned reference resolves to that version only when it is ready. An unpinned one resolves
//! to the latest ready version ([`super::versions::latest`]), so a newer version still
//! registering leaves the previous one in use. When nothing is ready, the answer says why: the
//! newest version is registering, or it failed ([`RegistryError::NotReady`]).

use super::versions::{self, VersionState, Versioned};
use super::{names, version_info, Registry, RegistryError, VersionInfo};
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
        let pipeline = self.find_pipeline(&mut conn, namespace, name).await?;
        let all = rows::versions_of(&mut conn, &pipeline.id).await?;
        let chosen = match version {
            Some(version) => {
                let key = names::key(version);
                all.into_iter()
                    .find(|v| names::key(&v.version) == key)
                    .ok_or_else(|| {
                        RegistryError::NotFound(format!("{namespace}/{name}:{version}"))
                    })?
            }
            None => match versions::latest(&all) {
                Some(latest) => latest.clone(),
                // Nothing ready: the newest version tells why.
                None => all
                    .into_iter()
                    .max_by_key(|v| v.registered_at)
                    .ok_or_else(|| RegistryError::NotFound(format!("{namespace}/{name}")))?,
            },
        };
        match chosen.state() {
            VersionState::Ready => {
                let files = rows::files_of(&mut conn, &chosen.id).await?;
                Ok(version_info(&pipeline, chosen, files))
            }
            state => Err(RegistryError::NotReady {
                name: pipeline.name,
                version: chosen.version,
                state,
            }),
        }
    }

    /// Every ready version in `namespace` as (name, version), ordered by name, then
    /// [`versions::listing_order`].
    pub async fn ready_versions_in(
        &self,
        namespace: &str,
    ) -> Result<Vec<(String, String)>, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let mut found = rows::ready_versions_in(&mut conn, &names::key(namespace)).await?;
        found.sort_by(|a, b| {
            names::key(&a.name)
                .cmp(&names::key(&b.name))
                .then_with(|| versions::listing_order(a, b))
        });
        Ok(found.into_iter().map(|r| (r.name, r.version)).collect())
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
