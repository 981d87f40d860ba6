//! Runs beside the registry: executing registered versions on demand (Mystic's `/v4/runs`)
//! and GBDX workflows of tasks. The registry ([`crate::registry`]) says what exists and who may
//! use it; this module runs it, and records what happened.
//!
//! Where each part is:
//! - [`submit`]: a `/v4` run from its submission to its record: inputs checked against the
//!   manifest, capacity taken, executed, outputs or error recorded (and when its row is written).
//! - [`targets`]: what a submission runs (pipeline, ready version, manifest), kept in memory
//!   while neither the store's change counter nor the registry's change generation moved.
//! - [`capacity`]: how many runs at once, in all and per pipeline (across replicas on
//!   PostgreSQL); `/v4` runs and workflow tasks take the same capacity.
//! - [`writes`]: the group commit of run rows.
//! - [`workflows`]: GBDX workflows, submitted, pinned and executed task by task, their events,
//!   their tasks' output, and cancels.
//! - [`engine`]: one execution of a runnable component, with its files and folders.
//! - [`upkeep`]: on its own timer, idle pipelines scaled to zero and the runs and workflows of
//!   a stopped server failed.
//!
//! How it is wired: [`Runs`] is the one handle the surfaces and the server hold. It uses the
//! [`Registry`] (resolution, permissions, files, the blob store, the plugin host); nothing in
//! the registry refers back here.

pub mod capacity;
pub mod engine;
pub mod submit;
pub mod targets;
pub mod upkeep;
pub mod workflows;
pub mod writes;

use std::sync::Arc;
use std::time::Duration;

pub use crate::plugins::runnable::Value;
use crate::registry::Registry;
use crate::store::{self, Store};
pub use engine::{
    run_preopens, value_as_text, Executed, InputValue, OutputValue, RunEngine, RunFailure, RunLogs,
    OUTPUT_CAPTURE_BYTES,
};
pub use submit::{
    RunArgument, RunErrorRecord, RunFile, RunLimits, RunOutput, RunRecord, RunState, RunSubmission,
    DEFAULT_MAX_URL_INPUT_BYTES, DEFAULT_RUN_TIMEOUT, STORED_LOG_BYTES,
};

/// Runs and workflows, over a registry. Cheap to clone: every clone shares the same caches,
/// capacity and writer.
#[derive(Clone)]
pub struct Runs {
    registry: Registry,
    engine: RunEngine,
    /// What `/v4` runs resolved to, kept while their namespace's change counter stays.
    targets: Arc<targets::RunTargets>,
    /// Every write of a run's row, group-committed.
    writes: Arc<writes::RunWrites>,
    capacity: Arc<capacity::RunCapacity>,
    limits: RunLimits,
    /// The lease a server holds on a run or workflow at work while it renews it; one that
    /// lapsed means that server stopped (see [`upkeep`]).
    lease: Duration,
    /// Cancels taken here of the workflows running here.
    cancels: Arc<workflows::CancelSignals>,
}

impl Runs {
    /// Runs over `registry`, executed by `engine` within `limits`, leased for `lease` at a time.
    pub fn new(registry: Registry, engine: RunEngine, limits: RunLimits, lease: Duration) -> Self {
        let store = registry.store().clone();
        Runs {
            targets: Arc::default(),
            writes: Arc::new(writes::RunWrites::new(store.clone())),
            capacity: Arc::new(capacity::RunCapacity::on(&store, &limits)),
            registry,
            engine,
            limits,
            lease,
            cancels: Arc::default(),
        }
    }

    /// Commits the run records still queued behind their answers (see [`writes`]): what a
    /// server does last when it stops.
    pub async fn flush(&self) {
        self.writes.flush().await;
    }

    fn store(&self) -> &Store {
        self.registry.store()
    }

    /// When a row leased now lapses unless renewed.
    fn lease_until(&self, now: i64) -> i64 {
        now + self.lease.as_millis() as i64
    }

    /// Renews the lease of `id` in `table` every third of the lease until the returned task is
    /// aborted (the work is done, or the server stops and the lease lapses).
    fn keep_lease(&self, table: store::leases::Leased, id: &str) -> tokio::task::JoinHandle<()> {
        let (store, id, lease) = (self.store().clone(), id.to_string(), self.lease);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                if let Ok(mut conn) = store.pool().acquire().await {
                    let until = store::now_millis() + lease.as_millis() as i64;
                    if let Err(error) = store::leases::renew(&mut conn, table, &id, until).await {
                        tracing::warn!(%id, %error, "could not renew a lease");
                    }
                }
            }
        })
    }
}
