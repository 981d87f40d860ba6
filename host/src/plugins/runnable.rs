//! Runnable pipelines (`pipewright:pipeline@0.1.0`, world `runnable`) on the plugin host's
//! engine: compiled through the same cache, run under the same memory cap and epoch deadline,
//! attributed the same way when they fail. What differs is the file system: each run gets the
//! preopened directories it is given (`/pipeline` read-only, `/inputs`, `/outputs`) and nothing
//! else; no network.
//!
//! A run is one fresh instance (no state carries from one run to the next); the linked
//! `InstancePre` is kept per digest, so an instantiation costs no compile and no link.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Store;

use super::bindings::pipeline_v0_1_0 as world;
use super::limits::{Limits, PluginState, Preopen};
use super::{pool, PluginError, PluginHost, PluginId};

pub use world::pipewright::pipeline::types::{NamedValue, RunError, Value};

/// What the world is called, for errors.
pub const WORLD: &str = "pipewright:pipeline/runnable@0.1.0";

/// A compiled and linked runnable pipeline.
pub struct RunnablePipeline {
    pub id: PluginId,
    /// Hex sha256 of the component.
    pub digest: String,
    pre: world::RunnablePre<PluginState>,
    limits: Limits,
    /// When the host started, and the milliseconds since then at the last run: what
    /// scale-to-zero looks at.
    epoch: Instant,
    last_used_ms: AtomicU64,
}

impl PluginHost {
    /// Compiles (or takes from the cache) and links a runnable pipeline. Loaded ones are kept
    /// by digest, so the next run of the same bytes starts at instantiation.
    pub fn load_runnable(
        &self,
        id: PluginId,
        bytes: &[u8],
    ) -> Result<Arc<RunnablePipeline>, PluginError> {
        let digest = hex::encode(Sha256::digest(bytes));
        if let Some(loaded) = self.runnables.read().unwrap().get(&digest) {
            return Ok(loaded.clone());
        }
        let load_error = |detail: String| PluginError::Load {
            plugin: id.clone(),
            detail,
        };
        let component = self
            .cache
            .component(&self.engine, &digest, bytes)
            .map_err(|e| load_error(format!("{e:#}")))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| load_error(format!("it imports what the host does not grant: {e:#}")))?;
        let pre = world::RunnablePre::new(pre)
            .map_err(|e| load_error(format!("it does not implement {WORLD}: {e:#}")))?;
        let loaded = Arc::new(RunnablePipeline {
            id,
            digest: digest.clone(),
            pre,
            limits: self.limits.clone(),
            epoch: self.started,
            last_used_ms: AtomicU64::new(self.uptime_ms()),
        });
        self.runnables
            .write()
            .unwrap()
            .insert(digest, loaded.clone());
        Ok(loaded)
    }

    /// The runnable pipeline loaded from the component whose hex sha256 is `digest`, if it is
    /// in memory: a run finds it without reading or hashing the component.
    pub fn loaded_runnable(&self, digest: &str) -> Option<Arc<RunnablePipeline>> {
        self.runnables.read().unwrap().get(digest).cloned()
    }

    /// Scale to zero: forgets the runnable pipelines not run for `idle`, and with them their
    /// compiled code in memory. The next run loads the compiled artifact from the cache (no
    /// compile). Returns how many were dropped.
    pub fn drop_idle_runnables(&self, idle: Duration) -> usize {
        let now = self.uptime_ms();
        let mut loaded = self.runnables.write().unwrap();
        let before = loaded.len();
        loaded.retain(|_, pipeline| {
            now.saturating_sub(pipeline.last_used_ms.load(Ordering::Relaxed))
                < idle.as_millis() as u64
        });
        let dropped = before - loaded.len();
        if dropped > 0 {
            tracing::info!(dropped, "idle runnable pipelines scaled to zero");
        }
        dropped
    }

    /// Runnable pipelines held in memory.
    pub fn loaded_runnables(&self) -> usize {
        self.runnables.read().unwrap().len()
    }

    fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

impl RunnablePipeline {
    /// Runs once with `inputs`, seeing only `preopens`, stopped after `timeout`. Blocking.
    /// Ok(Err) is the pipeline's own failure; Err is a trap, the deadline or the memory cap.
    pub fn run(
        &self,
        preopens: &[Preopen],
        inputs: &[NamedValue],
        timeout: Duration,
    ) -> Result<Result<Vec<NamedValue>, RunError>, PluginError> {
        self.last_used_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let state = PluginState::with_files(Arc::new(self.id.clone()), &self.limits, preopens)
            .map_err(|e| PluginError::Instantiate {
                plugin: self.id.clone(),
                detail: format!("{e:#}"),
            })?;
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(Limits::ticks(timeout));
        store.data_mut().begin_call(Arc::default(), timeout);
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| PluginError::Instantiate {
                plugin: self.id.clone(),
                detail: format!("{e:#}"),
            })?;
        let outcome = instance
            .pipewright_pipeline_run()
            .call_run(&mut store, inputs);
        metrics::counter!("pipewright_runs_total", "outcome" => match &outcome { Ok(Ok(_)) => "ok", Ok(Err(_)) => "pipeline-error", Err(_) => "trap" }).increment(1);
        outcome.map_err(|error| {
            pool::classify(&self.id, &self.limits, "run", timeout, error, store.data())
        })
    }
}
