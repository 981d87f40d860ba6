//! Runnable pipelines (`pipewright:pipeline@0.1.0`, world `runnable`): compiled through the
//! plugin host's cache, run under the same memory cap and deadline, attributed the same way when
//! they fail. What differs is the file system: each run gets the preopened directories it is
//! given (`/pipeline` read-only, `/inputs`, `/outputs`) and nothing else; no network.
//!
//! A run is one fresh instance (no state carries from one run to the next); the linked
//! `InstancePre` is kept per digest, so an instantiation costs no compile and no link. Python
//! pipelines are the exception: their instances of the shared Python runtime are kept warm
//! between runs (see [`super::python`]).
//!
//! Runs have an engine of their own ([`RunnableEngine`]), for two reasons of speed:
//! - `run` is called asynchronously, on the task that asked for the run: no hand-off to a
//!   blocking thread and back. A run that computes for long yields to the runtime at every
//!   epoch tick ([`super::limits::EPOCH_TICK`]), so it holds no thread, and is interrupted at
//!   its deadline.
//! - Instances come from a pool of slots reused run after run, instead of memory mapped and
//!   unmapped per run (unmapping makes every core flush its TLB, costly on small VMs). A few
//!   slots stay warm with their first pages resident; idle ones are given back to the OS.
//!
//! Like a plugin, a pipeline whose optimized code is not cached yet runs on Winch's code at once,
//! and Cranelift's replaces it in the background ([`super::tiers`]). Only Cranelift's instances
//! are pooled: Winch's are allocated per run, with memories that reserve little address space.
//! Each tier's compilation settings are the plugin engine's of that tier, so both share the
//! compile caches: what registration precompiled runs without a compile.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::Linker;
use wasmtime::UpdateDeadline;
use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use super::bindings::pipeline_v0_1_0_async as world;
use super::limits::{Limits, PluginState, Preopen};
use super::output::CapturedOutput;
use super::tiers::{Level, Tier, Tiers};
use super::{clocks, pool, PluginError, PluginHost, PluginId};

pub use super::bindings::pipeline_v0_1_0::pipewright::pipeline::types::{
    NamedValue, RunError, Value,
};

/// Runs that can execute at once on one server: the instance pool's slots. Each reserves
/// address space (not memory) for a linear memory; a run past them fails to instantiate.
pub const RUN_SLOTS: u32 = 256;

/// Pool slots kept warm (their memory image mapped, their first pages resident) while unused.
const WARM_SLOTS: u32 = 4;

/// Linear memory kept resident in an unused slot, and zeroed by `memset` rather than handed
/// back: enough for a small guest's whole memory.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// The engines, linkers and compile caches of runnable pipelines (see the module doc), one per
/// compiler tier ([`super::tiers`]).
pub(super) struct RunnableEngine {
    pub(super) tiers: Tiers,
}

impl RunnableEngine {
    pub(super) fn new(cache_dir: &Path) -> anyhow::Result<Self> {
        let configure = |config: &mut Config, level: Level| {
            config.wasm_component_model(true).epoch_interruption(true);
            // Only the optimized tier pools its instances: the pool reserves its slots' address
            // space up front (about a TiB for 256 memories), and Winch's code serves a pipeline
            // only until Cranelift's is ready, so its instances are allocated on demand (their
            // memories reserve little, see `tiers`).
            if level == Level::Baseline {
                return;
            }
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(RUN_SLOTS)
                .total_core_instances(4 * RUN_SLOTS)
                .total_memories(RUN_SLOTS)
                .total_tables(4 * RUN_SLOTS)
                .total_stacks(RUN_SLOTS)
                // As many as the memory limiter allows a table to grow to.
                .table_elements(100_000)
                .max_unused_warm_slots(WARM_SLOTS)
                .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
                .table_keep_resident(64 << 10)
                // Where the kernel can say which pages a run touched (Linux 6.7+), only those
                // are reset, not the whole resident part.
                .pagemap_scan(Enabled::Auto);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        };
        let link = |linker: &mut Linker<PluginState>| {
            wasmtime_wasi::p2::add_to_linker_async(linker)
                .map_err(anyhow::Error::from)
                .context("linking WASI")?;
            clocks::add_bounded_sleeps(linker)
                .map_err(anyhow::Error::from)
                .context("linking the deadline-bounded WASI sleeps")
        };
        Ok(RunnableEngine {
            tiers: Tiers::new(cache_dir, configure, link)?,
        })
    }
}

/// Which code [`PluginHost::link_runnable`] starts a pipeline on.
pub(super) enum Compile {
    /// The baseline tier's when the optimized code is not cached (a pushed pipeline: runnable
    /// as soon as possible).
    Fast,
    /// Cranelift's, compiled now when not cached (the Python runtime: its warm instances live
    /// long, and would keep running the code they started on).
    Optimized,
}

/// What the world is called, for errors.
pub const WORLD: &str = "pipewright:pipeline/runnable@0.1.0";

/// A compiled and linked runnable pipeline.
pub struct RunnablePipeline {
    pub id: PluginId,
    /// Hex sha256 of the component.
    pub digest: String,
    /// The linked code: Winch's until Cranelift's replaces it (see [`super::tiers`]).
    pre: RwLock<Arc<world::RunnablePre<PluginState>>>,
    /// Whether `pre` is Cranelift's code yet.
    optimized: AtomicBool,
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
        let loaded = self.link_runnable(id, &digest, bytes, Compile::Fast)?;
        self.runnables
            .write()
            .unwrap()
            .insert(digest, loaded.clone());
        Ok(loaded)
    }

    /// Compiles (or takes from the cache) and links the runnable component `bytes` whose hex
    /// sha256 is `digest`, without keeping it among the loaded ones. [`Compile::Fast`]: Winch's
    /// code at once, and Cranelift's in its place once compiled; [`Compile::Optimized`]:
    /// Cranelift's now.
    pub(super) fn link_runnable(
        &self,
        id: PluginId,
        digest: &str,
        bytes: &[u8],
        compile: Compile,
    ) -> Result<Arc<RunnablePipeline>, PluginError> {
        let load_error = |detail: String| PluginError::Load {
            plugin: id.clone(),
            detail,
        };
        let tiers = &self.runnable_engine.tiers;
        let compiled = match compile {
            Compile::Fast => tiers.compile_fast(digest, bytes),
            Compile::Optimized => tiers.compile_optimized_now(digest, bytes),
        }
        .map_err(|e| load_error(format!("{e:#}")))?;
        let pre = link(&compiled.tier, &compiled.component).map_err(load_error)?;
        let loaded = Arc::new(RunnablePipeline {
            id,
            digest: digest.to_string(),
            pre: RwLock::new(Arc::new(pre)),
            optimized: AtomicBool::new(compiled.tier.level == Level::Optimized),
            limits: self.limits.clone(),
            epoch: self.started,
            last_used_ms: AtomicU64::new(self.uptime_ms()),
        });
        if compiled.tier.level == Level::Baseline {
            let swapped = loaded.clone();
            tiers.optimize_in_background(
                loaded.id.to_string(),
                digest.to_string(),
                bytes.into(),
                move |tier, component| {
                    let pre = link(tier, &component).map_err(anyhow::Error::msg)?;
                    *swapped.pre.write().unwrap() = Arc::new(pre);
                    swapped.optimized.store(true, Ordering::Release);
                    Ok(())
                },
            );
        }
        Ok(loaded)
    }

    /// The runnable pipeline of the component whose hex sha256 is `digest`, when it is loaded
    /// or Cranelift's artifact of it is in the cache: what a run after scale to zero takes,
    /// without reading or hashing the component's bytes (nothing is left to compile in the
    /// background). None: load it with [`Self::load_runnable`].
    pub fn load_compiled_runnable(
        &self,
        id: PluginId,
        digest: &str,
    ) -> Option<Result<Arc<RunnablePipeline>, PluginError>> {
        if let Some(loaded) = self.loaded_runnable(digest) {
            return Some(Ok(loaded));
        }
        let tier = &self.runnable_engine.tiers.optimized;
        let component = tier.cache.cached(&tier.engine, digest)?;
        let pre = match link(tier, &component) {
            Ok(pre) => pre,
            Err(detail) => return Some(Err(PluginError::Load { plugin: id, detail })),
        };
        let loaded = Arc::new(RunnablePipeline {
            id,
            digest: digest.to_string(),
            pre: RwLock::new(Arc::new(pre)),
            optimized: AtomicBool::new(true),
            limits: self.limits.clone(),
            epoch: self.started,
            last_used_ms: AtomicU64::new(self.uptime_ms()),
        });
        self.runnables
            .write()
            .unwrap()
            .insert(digest.to_string(), loaded.clone());
        Some(Ok(loaded))
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
        let dropped = before - loaded.len() + self.drop_idle_python(idle);
        drop(loaded);
        if dropped > 0 {
            tracing::info!(dropped, "idle runnable pipelines scaled to zero");
            // What they held (compiled code, metadata, the compiles' scratch) is free in the
            // allocator now, but glibc keeps freed pages mapped: hand them back, or the
            // memory of scale to zero stays in the process.
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only releases free memory; it has no preconditions.
            unsafe {
                libc::malloc_trim(0);
            }
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

/// A component linked as a runnable pipeline on `tier`; Err says why it cannot run here.
fn link(
    tier: &Tier,
    component: &wasmtime::component::Component,
) -> Result<world::RunnablePre<PluginState>, String> {
    let pre = tier
        .linker
        .instantiate_pre(component)
        .map_err(|e| format!("it imports what the host does not grant: {e:#}"))?;
    world::RunnablePre::new(pre).map_err(|e| format!("it does not implement {WORLD}: {e:#}"))
}

impl RunnablePipeline {
    /// Which compiler made the code the next run starts on.
    pub fn compiled_by(&self) -> Level {
        if self.optimized.load(Ordering::Acquire) {
            Level::Optimized
        } else {
            Level::Baseline
        }
    }

    /// The linked code as it is now (Winch's, or Cranelift's once it replaced it).
    pub(super) fn linked(&self) -> Arc<world::RunnablePre<PluginState>> {
        self.pre.read().unwrap().clone()
    }

    /// Runs once with `inputs`, seeing only `preopens`, stopped after `timeout`, its stdout and
    /// stderr written to `output`. Ok(Err) is the pipeline's own failure; Err is a trap, the
    /// deadline or the memory cap. Runs on the caller's task, yielding at every epoch tick.
    pub async fn run(
        &self,
        preopens: &[Preopen],
        inputs: &[NamedValue],
        timeout: Duration,
        output: &CapturedOutput,
    ) -> Result<Result<Vec<NamedValue>, RunError>, PluginError> {
        self.last_used_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let state =
            PluginState::with_files(Arc::new(self.id.clone()), &self.limits, preopens, output)
                .map_err(|e| PluginError::Instantiate {
                    plugin: self.id.clone(),
                    detail: format!("{e:#}"),
                })?;
        let pre = self.pre.read().unwrap().clone();
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        let deadline = Instant::now() + timeout;
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store.set_epoch_deadline(1);
        store.data_mut().begin_call(Arc::default(), timeout);
        let instance =
            pre.instantiate_async(&mut store)
                .await
                .map_err(|e| PluginError::Instantiate {
                    plugin: self.id.clone(),
                    detail: format!("{e:#}"),
                })?;
        let outcome = instance
            .pipewright_pipeline_run()
            .call_run(&mut store, inputs)
            .await;
        metrics::counter!("pipewright_runs_total", "outcome" => match &outcome { Ok(Ok(_)) => "ok", Ok(Err(_)) => "pipeline-error", Err(_) => "trap" }).increment(1);
        outcome.map_err(|error| {
            pool::classify(&self.id, &self.limits, "run", timeout, error, store.data())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Registration precompiles with the plugin engine; runs load with theirs. One artifact
    /// serves both only while the two compile alike.
    #[test]
    fn the_runnable_engines_share_the_plugin_engines_compile_caches() {
        let dir = tempfile::tempdir().unwrap();
        let host = PluginHost::new(dir.path(), Limits::default()).unwrap();
        let hash = |engine: &wasmtime::Engine| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut hasher);
            hasher.finish()
        };
        let runs = &host.runnable_engine.tiers;
        assert_eq!(hash(host.engine()), hash(&runs.optimized.engine));
        assert_eq!(
            hash(&host.tiers.baseline.engine),
            hash(&runs.baseline.engine)
        );
    }
}
