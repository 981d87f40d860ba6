//! How many runs may execute at once: `--max-runs` in all on this server, and
//! `--max-runs-per-pipeline` for one pipeline across every server on the store.
//!
//! Both limits are semaphores in this process. On PostgreSQL, where several replicas share the
//! store, a run also holds one of its pipeline's slots in the store ([`store::run_slots`]) while
//! it executes, so the per-pipeline limit holds across replicas: a replica that stops leaves its
//! slots to lapse after the run deadline plus [`SLOT_LEASE_MARGIN`]. On SQLite one server owns
//! the database, and the semaphores alone are the limit (no store round trip per run).
//!
//! `/v4` runs and workflow tasks take the same capacity. Not covered: `--max-runs` stays per
//! server (it bounds this process's instance pool).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::{self, run_slots, Store};

use super::RunLimits;
use crate::registry::RegistryError;

/// A slot held in the store outlives its run's deadline by this much before another server may
/// take it over (a run is stopped at its deadline, so only a stopped server leaves one held).
const SLOT_LEASE_MARGIN: Duration = Duration::from_secs(30);
/// How often a run waiting for a slot held by another server asks again.
const SLOT_POLL: Duration = Duration::from_millis(100);

pub struct RunCapacity {
    total: Arc<Semaphore>,
    per_pipeline: usize,
    pipelines: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The store whose slots bound each pipeline across servers; None on SQLite.
    shared: Option<Store>,
    /// How long a slot is held at most: the run deadline and the margin.
    slot_lease: Duration,
}

/// What an executing run holds; dropping it frees the capacity.
pub struct RunPermits {
    _pipeline: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
    _shared: Option<SharedSlot>,
}

/// One of a pipeline's slots in the store, released (on a task of its own) when dropped.
struct SharedSlot {
    store: Store,
    pipeline_id: String,
    slot: i64,
    holder: String,
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        let (store, pipeline_id, holder) = (
            self.store.clone(),
            std::mem::take(&mut self.pipeline_id),
            std::mem::take(&mut self.holder),
        );
        let slot = self.slot;
        // Should this fail, the slot lapses with its lease.
        tokio::spawn(async move {
            let released = async {
                let mut conn = store.pool().acquire().await?;
                run_slots::release(&mut conn, &pipeline_id, slot, &holder).await
            };
            if let Err(error) = released.await {
                tracing::warn!(%error, pipeline_id, slot, "releasing a run slot");
            }
        });
    }
}

impl RunCapacity {
    /// The capacity of a server on `store`: shared through it on PostgreSQL.
    pub fn on(store: &Store, limits: &RunLimits) -> Self {
        let shared = (store.backend() == store::Backend::Postgres).then(|| store.clone());
        Self::new(limits, shared)
    }

    pub fn new(limits: &RunLimits, shared: Option<Store>) -> Self {
        RunCapacity {
            total: Arc::new(Semaphore::new(limits.max_total.max(1))),
            per_pipeline: limits.max_per_pipeline.max(1),
            pipelines: Mutex::default(),
            shared,
            slot_lease: limits.timeout + SLOT_LEASE_MARGIN,
        }
    }

    fn of(&self, pipeline_id: &str) -> Arc<Semaphore> {
        self.pipelines
            .lock()
            .unwrap()
            .entry(pipeline_id.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_pipeline)))
            .clone()
    }

    /// Every permit now, or None.
    pub(super) async fn try_take(
        &self,
        pipeline_id: &str,
    ) -> Result<Option<RunPermits>, RegistryError> {
        let Ok(pipeline) = self.of(pipeline_id).try_acquire_owned() else {
            return Ok(None);
        };
        let Ok(total) = self.total.clone().try_acquire_owned() else {
            return Ok(None);
        };
        let shared = match &self.shared {
            None => None,
            Some(store) => match self.claim(store, pipeline_id).await? {
                Some(slot) => Some(slot),
                None => return Ok(None),
            },
        };
        Ok(Some(RunPermits {
            _pipeline: pipeline,
            _total: total,
            _shared: shared,
        }))
    }

    /// Every permit, waiting for them.
    pub(super) async fn take(&self, pipeline_id: &str) -> Result<RunPermits, RegistryError> {
        let pipeline = self
            .of(pipeline_id)
            .acquire_owned()
            .await
            .expect("never closed");
        let total = self
            .total
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let shared = match &self.shared {
            None => None,
            Some(store) => loop {
                if let Some(slot) = self.claim(store, pipeline_id).await? {
                    break Some(slot);
                }
                tokio::time::sleep(SLOT_POLL).await;
            },
        };
        Ok(RunPermits {
            _pipeline: pipeline,
            _total: total,
            _shared: shared,
        })
    }

    async fn claim(
        &self,
        store: &Store,
        pipeline_id: &str,
    ) -> Result<Option<SharedSlot>, RegistryError> {
        let holder = uuid::Uuid::new_v4().to_string();
        let now = store::now_millis();
        let mut conn = store.pool().acquire().await?;
        let claimed = run_slots::claim(
            &mut conn,
            pipeline_id,
            self.per_pipeline as i64,
            &holder,
            now,
            now + self.slot_lease.as_millis() as i64,
        )
        .await?;
        Ok(claimed.map(|slot| SharedSlot {
            store: store.clone(),
            pipeline_id: pipeline_id.to_string(),
            slot,
            holder,
        }))
    }
}
