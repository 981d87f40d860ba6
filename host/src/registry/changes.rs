//! Keeping one server in step with changes made through another: policy bindings and plugin
//! activations are stored with a change counter bumped in the same commit, and each server
//! re-reads a kind of setting only when its counter moved past the one it last loaded. It looks
//! every [`CHANGES_POLL`], and on PostgreSQL also as soon as a bump is notified (`LISTEN`), so a
//! change is in force on every replica within milliseconds there; the poll stays as the safety
//! net for a lost listener connection.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::store::{bindings, plugins};

use super::Registry;

/// How often a server checks whether another changed something: a change made through one
/// replica is in force on every replica within this (plus one reload).
pub const CHANGES_POLL: Duration = Duration::from_millis(250);

impl Registry {
    /// A number that moves after every commit through this server that changes some namespace's
    /// versions (set, states, definitions, files). Read it before reading the store: whatever
    /// is kept from that read is stale once the number moved.
    pub fn change_generation(&self) -> u64 {
        self.change_generation.load(Ordering::Acquire)
    }

    /// This server committed a change to some namespace's versions.
    pub(super) fn namespace_changed(&self) {
        self.change_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Follows the store's change counters until the handle is aborted.
    pub fn watch_changes(&self) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            let mut listener = registry.store.change_listener().await;
            loop {
                match listener.as_mut() {
                    Some(connection) => {
                        tokio::select! {
                            notified = connection.recv() => {
                                if let Err(error) = notified {
                                    // PgListener reconnects by itself on the next recv.
                                    tracing::warn!(%error, "change notifications interrupted");
                                    tokio::time::sleep(CHANGES_POLL).await;
                                }
                            }
                            _ = tokio::time::sleep(CHANGES_POLL) => {}
                        }
                    }
                    None => tokio::time::sleep(CHANGES_POLL).await,
                }
                if let Err(error) = registry.catch_up().await {
                    tracing::warn!(%error, "could not check for changes made by other servers");
                }
            }
        })
    }

    /// Reloads whatever another server changed since this one last loaded it.
    async fn catch_up(&self) -> Result<(), super::RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let bindings_revision = bindings::revision(&mut conn).await?;
        let plugins_revision = plugins::revision(&mut conn).await?;
        drop(conn);
        // Plugins first: a new binding may name a policy activated in the same change.
        if plugins_revision != self.plugins_revision.load(Ordering::Acquire) {
            self.sync_plugins().await?;
        }
        if bindings_revision != self.bindings_revision.load(Ordering::Acquire) {
            self.reload_bindings().await?;
        }
        Ok(())
    }
}
