//! Two compilers, one answer: a component is usable as soon as wasmtime's baseline compiler
//! (Winch) has compiled it, and Cranelift's optimized code takes its place in the background.
//!
//! Why: compiling is the one slow step between a push and a first call. Cranelift takes about
//! 10 s for an 18 MB Python component on these machines and Winch under 3 s (both measured in
//! `shared/reference/python-components.md`); a small Rust component compiles in tens of
//! milliseconds with either. So a component whose optimized artifact is not cached yet is
//! compiled by Winch and served at once, while a background thread compiles it with Cranelift
//! and swaps the linked code under the loaded plugin (or runnable pipeline) when it is ready:
//! calls in flight finish on the code they started with, later ones get the optimized code.
//!
//! An engine's compiler is part of its configuration, so each tier is a [`Tier`] of its own:
//! an engine, its linker (the same imports, linked for that engine) and its own compile cache
//! (the cache's folder is keyed by the engine's compatibility hash, so both artifacts of one
//! digest are kept side by side and a restart finds whichever is there). A component Winch
//! cannot compile is compiled by Cranelift at once, and [`Compiled::note`] says so.
//!
//! Winch's instances are allocated on demand, not from a pool, and its memories reserve only
//! what they hold plus room to grow ([`BASELINE_MEMORY_RESERVATION`]), with bounds-checked code:
//! with wasmtime's default a memory reserves 4 GiB and its guard, and a Python instance (a dozen
//! memories) waiting warm for Cranelift's code would hold a hundred GiB of address space.
//! Cranelift's code keeps the 4 GiB reservations that let it skip bounds checks.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use anyhow::Context;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Strategy};

use super::cache::CompileCache;
use super::limits::PluginState;

/// Address space a baseline-tier memory reserves beyond its initial size; past it, a memory
/// that grows is moved (copied) into a new reservation of its size plus this.
pub const BASELINE_MEMORY_RESERVATION: u64 = 64 << 20;

/// Which compiler made a component's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Winch: compiles fast, runs slower.
    Baseline,
    /// Cranelift: what every component ends up running.
    Optimized,
}

impl Level {
    fn strategy(self) -> Strategy {
        match self {
            Level::Baseline => Strategy::Winch,
            Level::Optimized => Strategy::Cranelift,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Baseline => "winch",
            Level::Optimized => "cranelift",
        }
    }
}

/// One compiler's engine, linker and cache.
pub struct Tier {
    pub level: Level,
    pub engine: Engine,
    pub linker: Linker<PluginState>,
    pub cache: CompileCache,
}

/// A compiled component, with the tier that compiled it.
pub struct Compiled {
    pub component: Component,
    pub tier: Arc<Tier>,
    /// Said when the baseline compiler could not compile it (the optimized one did, at once).
    pub note: Option<String>,
}

/// Both tiers of one kind of engine.
#[derive(Clone)]
pub struct Tiers {
    pub optimized: Arc<Tier>,
    pub baseline: Arc<Tier>,
    background: Arc<Background>,
}

/// The optimizing compiles under way: one lock per digest, so a component asked for twice
/// while it compiles is compiled once (the second waits, then finds it in the cache), and a
/// count that [`Tiers::wait_for_optimizing`] waits on.
#[derive(Default)]
struct Background {
    per_digest: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    running: Mutex<usize>,
    finished: Condvar,
}

impl Tiers {
    /// Makes both tiers from one configuration: `configure` sets everything but the compiler
    /// (it is told which tier it configures), `link` adds the imports to each tier's linker.
    pub fn new(
        cache_dir: &std::path::Path,
        configure: impl Fn(&mut Config, Level),
        link: impl Fn(&mut Linker<PluginState>) -> anyhow::Result<()>,
    ) -> anyhow::Result<Tiers> {
        let tier = |level: Level| -> anyhow::Result<Arc<Tier>> {
            let mut config = Config::new();
            configure(&mut config, level);
            config.strategy(level.strategy());
            if level == Level::Baseline {
                config
                    .memory_reservation(0)
                    .memory_reservation_for_growth(BASELINE_MEMORY_RESERVATION)
                    .memory_guard_size(64 << 10)
                    .memory_may_move(true);
            }
            let engine = Engine::new(&config)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("creating the {} engine", level.as_str()))?;
            let mut linker = Linker::new(&engine);
            link(&mut linker)?;
            let cache = CompileCache::open(cache_dir, &engine)?;
            Ok(Arc::new(Tier {
                level,
                engine,
                linker,
                cache,
            }))
        };
        Ok(Tiers {
            optimized: tier(Level::Optimized)?,
            baseline: tier(Level::Baseline)?,
            background: Arc::default(),
        })
    }

    /// Both engines (for the epoch ticker).
    pub fn engines(&self) -> [Engine; 2] {
        [self.optimized.engine.clone(), self.baseline.engine.clone()]
    }

    /// The best code available without waiting for Cranelift: the optimized artifact when it
    /// is cached, else Winch's (compiled now, or cached); Cranelift's now when Winch fails.
    pub fn compile_fast(&self, digest: &str, bytes: &[u8]) -> anyhow::Result<Compiled> {
        if let Some(component) = self.optimized.cache.cached(&self.optimized.engine, digest) {
            return Ok(self.compiled(component, &self.optimized, None));
        }
        match self
            .baseline
            .cache
            .component(&self.baseline.engine, digest, bytes)
        {
            Ok(component) => Ok(self.compiled(component, &self.baseline, None)),
            Err(winch) => {
                let note = format!(
                    "Winch could not compile it ({winch:#}); compiled with Cranelift instead"
                );
                tracing::warn!(digest, "{note}");
                let component = self.compile_optimized(digest, bytes)?;
                Ok(self.compiled(component, &self.optimized, Some(note)))
            }
        }
    }

    /// Cranelift's code for `bytes`, from the cache or compiled now, as a [`Compiled`].
    pub fn compile_optimized_now(&self, digest: &str, bytes: &[u8]) -> anyhow::Result<Compiled> {
        let component = self.compile_optimized(digest, bytes)?;
        Ok(self.compiled(component, &self.optimized, None))
    }

    /// Cranelift's code for `bytes`, from the cache or compiled now.
    pub fn compile_optimized(&self, digest: &str, bytes: &[u8]) -> anyhow::Result<Component> {
        self.optimized
            .cache
            .component(&self.optimized.engine, digest, bytes)
    }

    fn compiled(&self, component: Component, tier: &Arc<Tier>, note: Option<String>) -> Compiled {
        metrics::counter!("pipewright_plugin_loads_total", "compiler" => tier.level.as_str())
            .increment(1);
        Compiled {
            component,
            tier: tier.clone(),
            note,
        }
    }

    /// Compiles `bytes` with Cranelift on a thread of its own, then hands the component to
    /// `swap` (which links it and puts it in place). Failures are logged: the baseline code
    /// keeps serving, which is correct, only slower.
    pub fn optimize_in_background(
        &self,
        what: String,
        digest: String,
        bytes: Arc<[u8]>,
        swap: impl FnOnce(&Tier, Component) -> anyhow::Result<()> + Send + 'static,
    ) {
        // Weak: a host dropped while this waits or before it starts is not kept alive (its
        // runnable engine reserves its instance pool's address space until it is dropped).
        let optimized = Arc::downgrade(&self.optimized);
        let background = self.background.clone();
        *background.running.lock().unwrap() += 1;
        let spawned = std::thread::Builder::new()
            .name("pipewright-optimize".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let digest_lock = background
                    .per_digest
                    .lock()
                    .unwrap()
                    .entry(digest.clone())
                    .or_default()
                    .clone();
                let outcome = {
                    let _compiling = digest_lock.lock().unwrap();
                    match optimized.upgrade() {
                        Some(optimized) => optimized
                            .cache
                            .component(&optimized.engine, &digest, &bytes)
                            .and_then(|component| swap(&optimized, component)),
                        None => Ok(()),
                    }
                };
                match outcome {
                    Ok(()) => tracing::info!(
                        plugin = %what,
                        digest,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "optimized code in place"
                    ),
                    Err(error) => tracing::warn!(
                        plugin = %what,
                        digest,
                        error = %format!("{error:#}"),
                        "optimizing failed; the baseline code keeps serving"
                    ),
                }
                background.done();
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "could not start the optimizing thread");
            self.background.done();
        }
    }

    /// Waits until no optimizing compile is under way (tests and benchmarks, which count
    /// compiles or time the optimized code).
    pub fn wait_for_optimizing(&self) {
        let mut running = self.background.running.lock().unwrap();
        while *running > 0 {
            running = self.background.finished.wait(running).unwrap();
        }
    }
}

impl Background {
    fn done(&self) {
        *self.running.lock().unwrap() -= 1;
        self.finished.notify_all();
    }
}
