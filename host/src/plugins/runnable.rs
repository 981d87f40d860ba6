//! Runnable pipelines (`pipewright:pipeline@0.1.0`, world `runnable`): compiled through the
//! plugin host's cache, run under the same memory cap and deadline, attributed the same way when
//! they fail. What differs is the file system: each run gets the preopened directories it is
//! given (`/pipeline` read-only, `/inputs`, `/outputs`) and nothing else; no network.
//!
//! A run is one fresh instance (no state carries from one run to the next); the linked
//! `InstancePre` is kept per digest, so an instantiation costs no compile and no link. After a
//! run whose folders outlive it (only `/pipeline`), the next run's instance is made in the
//! background ([`RunnablePipeline::prepare_next`]): still one fresh instance per run, but its
//! instantiation is off the next request's path. At most [`READY_SLOTS`] such instances wait
//! at once, in pool slots of their own. Python pipelines are the exception: their instances of
//! the shared Python runtime are kept warm between runs (see [`super::python`]).
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
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
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

/// Instances made ahead of their run ([`RunnablePipeline::prepare_next`]) that may wait at once,
/// across pipelines: one per recently run pipeline, up to this. Their pool slots are added to
/// [`RUN_SLOTS`], so a waiting instance never takes a run's slot.
pub const READY_SLOTS: u32 = 8;

/// What an instance made ahead may write before its run (a start function that prints) and
/// have kept: it is handed to the run's output with the rest.
const READY_CAPTURE_BYTES: usize = 64 << 10;

/// Pool slots kept warm (their memory image mapped, their first pages resident) while unused.
const WARM_SLOTS: u32 = 4;

/// Linear memory kept resident in an unused slot, and zeroed by `memset` rather than handed
/// back: enough for a small guest's whole memory.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// The engines, linkers and compile caches of runnable pipelines (see the module doc), one per
/// compiler tier ([`super::tiers`]).
pub(super) struct RunnableEngine {
    pub(super) tiers: Tiers,
    /// Instances made ahead of their run, waiting now (at most [`READY_SLOTS`]).
    ready_instances: Arc<AtomicU32>,
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
            let slots = RUN_SLOTS + READY_SLOTS;
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(slots)
                .total_core_instances(4 * slots)
                .total_memories(slots)
                .total_tables(4 * slots)
                .total_stacks(slots)
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
            ready_instances: Arc::default(),
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
    /// The next run's instance, made ahead ([`Self::prepare_next`]).
    ready: Mutex<Option<ReadyInstance>>,
    /// A preparation is under way.
    preparing: AtomicBool,
    /// The count of ready instances across pipelines ([`RunnableEngine::ready_instances`]).
    ready_instances: Arc<AtomicU32>,
}

/// An instance made before its run, for a run that sees the same folders.
struct ReadyInstance {
    store: Store<PluginState>,
    instance: world::Runnable,
    /// The code it was made from: once Cranelift's replaced it, the instance is not used.
    pre: Arc<world::RunnablePre<PluginState>>,
    preopens: Vec<Preopen>,
    /// Where its stdout and stderr went until a run takes it (then to the run's).
    output: CapturedOutput,
    _counted: ReadyCount,
}

/// One of the [`READY_SLOTS`], given back when dropped.
struct ReadyCount(Arc<AtomicU32>);

impl ReadyCount {
    fn take(count: &Arc<AtomicU32>) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < READY_SLOTS).then_some(n + 1)
            })
            .ok()
            .map(|_| ReadyCount(count.clone()))
    }
}

impl Drop for ReadyCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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
            ready: Mutex::default(),
            preparing: AtomicBool::new(false),
            ready_instances: self.runnable_engine.ready_instances.clone(),
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
            ready: Mutex::default(),
            preparing: AtomicBool::new(false),
            ready_instances: self.runnable_engine.ready_instances.clone(),
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
            // What they held is free in the allocators now. The server's own allocator
            // (mimalloc, `main.rs`) gives freed pages back by itself; glibc's, which the C
            // libraries linked in use, keeps them mapped unless asked: ask it.
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only releases free memory; it has no preconditions.
            unsafe {
                libc::malloc_trim(0);
            }
        }
        dropped
    }

    /// Instances made ahead of their run, waiting for it now (see [`RunnablePipeline::prepare_next`]).
    pub fn ready_runnable_instances(&self) -> u32 {
        self.runnable_engine.ready_instances.load(Ordering::Acquire)
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
    /// deadline or the memory cap. Runs on the caller's task, yielding at every epoch tick. Its
    /// instance is the one made ahead for the same folders, if any, else one made now.
    pub async fn run(
        &self,
        preopens: &[Preopen],
        inputs: &[NamedValue],
        timeout: Duration,
        output: &CapturedOutput,
    ) -> Result<Result<Vec<NamedValue>, RunError>, PluginError> {
        self.last_used_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let (mut store, instance) = match self.take_ready(preopens) {
            Some(ready) => {
                metrics::counter!("pipewright_run_instances_total", "made" => "ahead").increment(1);
                ready.output.stdout.hand_over_to(&output.stdout);
                ready.output.stderr.hand_over_to(&output.stderr);
                let mut store = ready.store;
                // Its deadline was its instantiation's: the run's starts now.
                set_deadline(&mut store, timeout);
                store.data_mut().begin_call(Arc::default(), timeout);
                (store, ready.instance)
            }
            None => {
                metrics::counter!("pipewright_run_instances_total", "made" => "at-run")
                    .increment(1);
                // Its deadline, set before its instantiation, bounds the call too.
                self.instantiate(preopens, timeout, output).await?
            }
        };
        let outcome = instance
            .pipewright_pipeline_run()
            .call_run(&mut store, inputs)
            .await;
        metrics::counter!("pipewright_runs_total", "outcome" => match &outcome { Ok(Ok(_)) => "ok", Ok(Err(_)) => "pipeline-error", Err(_) => "trap" }).increment(1);
        outcome.map_err(|error| {
            pool::classify(&self.id, &self.limits, "run", timeout, error, store.data())
        })
    }

    /// Makes the next run's instance in the background, for a run that will see `preopens`
    /// (folders that outlive a run: a run's own scratch folders are gone when it ends), unless
    /// one is ready or on its way, or [`READY_SLOTS`] are waiting. Its instantiation is bounded
    /// by `timeout`, as a run's; one that fails is left to fail again in a run, which says why.
    pub fn prepare_next(self: &Arc<Self>, preopens: Vec<Preopen>, timeout: Duration) {
        if self.ready.lock().unwrap().is_some() || self.preparing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(counted) = ReadyCount::take(&self.ready_instances) else {
            self.preparing.store(false, Ordering::Release);
            return;
        };
        let pipeline = self.clone();
        tokio::spawn(async move {
            let pre = pipeline.linked();
            let output = CapturedOutput::new(READY_CAPTURE_BYTES);
            if let Ok((store, instance)) = pipeline.instantiate(&preopens, timeout, &output).await {
                *pipeline.ready.lock().unwrap() = Some(ReadyInstance {
                    store,
                    instance,
                    pre,
                    preopens,
                    output,
                    _counted: counted,
                });
            }
            pipeline.preparing.store(false, Ordering::Release);
        });
    }

    /// The instance made ahead, if it was made for `preopens` from the code in place now.
    fn take_ready(&self, preopens: &[Preopen]) -> Option<ReadyInstance> {
        let ready = self.ready.lock().unwrap().take()?;
        (ready.preopens == preopens && Arc::ptr_eq(&ready.pre, &self.linked())).then_some(ready)
    }

    /// A fresh instance seeing `preopens`, writing to `output`, its instantiation bounded by
    /// `timeout`.
    async fn instantiate(
        &self,
        preopens: &[Preopen],
        timeout: Duration,
        output: &CapturedOutput,
    ) -> Result<(Store<PluginState>, world::Runnable), PluginError> {
        let instantiate_error = |detail: String| PluginError::Instantiate {
            plugin: self.id.clone(),
            detail,
        };
        let state =
            PluginState::with_files(Arc::new(self.id.clone()), &self.limits, preopens, output)
                .map_err(|e| instantiate_error(format!("{e:#}")))?;
        let pre = self.linked();
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        set_deadline(&mut store, timeout);
        store.data_mut().begin_call(Arc::default(), timeout);
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| instantiate_error(format!("{e:#}")))?;
        Ok((store, instance))
    }
}

/// Interrupts `store` `timeout` from now; until then it yields to the runtime at every epoch
/// tick.
fn set_deadline(store: &mut Store<PluginState>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store.set_epoch_deadline(1);
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
