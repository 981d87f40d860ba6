//! The Python runtime: one runnable component (`plugins/python-runtime`, built with
//! componentize-py by `host/build.rs` and embedded in the binary) that runs every Python
//! pipeline. A Python pipeline version is its files alone (a Mystic pipeline directory): the
//! runtime imports its module from the read-only `/pipeline` preopen at run time, so pushing a
//! new version compiles nothing. The runtime itself is compiled once into the compile cache, in
//! the background when the server starts ([`PluginHost::prepare_python_runtime`]); one compile
//! per process even when several hosts share it (tests). Unlike a pushed runnable it always
//! runs on Cranelift's code, in the runnable engine's instance pool: a warm instance keeps the
//! code it started with, so one started on Winch's would stay slower for its whole life.
//!
//! **Warm instances.** Unlike a Rust runnable, which gets a fresh instance per run
//! ([`super::runnable`]), a Python pipeline's instance is kept after a run and reused by the
//! next run of the same version (same content digest): its imported module, its built graph and
//! what its `on_startup` pipes loaded stay in it. That is the point of Mystic's load step. Each
//! instance has a scratch folder of its own, preopened as `/inputs` (read-only) and `/outputs`
//! (writable) for its whole life and emptied before every run; its stdout and stderr are
//! forwarded to each run's [`CapturedOutput`] while it runs. An instance is never shared by two
//! runs at once ([`PythonLease`] holds it). One that trapped, ran out of time or memory, or
//! whose run was dropped midway (a client hung up) is dropped, never reused. Idle ones are
//! dropped with scale to zero ([`PluginHost::drop_idle_runnables`]), and at most
//! [`IDLE_PER_VERSION`] are kept per version and [`IDLE_TOTAL`] in all (the least recently used
//! goes first): an idle instance holds slots of the runnable engine's instance pool (a Python
//! component is a dozen core instances), which runs of every pipeline share.
//!
//! What this does not cover: isolation between two runs of one version beyond the emptied
//! folders (a pipeline's module-level state is shared by the runs of one instance, as in a
//! Mystic container), and any Python package with native code (refused at push).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::{Store, UpdateDeadline};

use super::bindings::pipeline_v0_1_0_async as world;
use super::limits::{Limits, PluginState, Preopen};
use super::output::{CapturedOutput, CapturedStream};
use super::runnable::{Compile, NamedValue, RunError, RunnablePipeline, Value};
use super::{pool, PluginError, PluginHost, PluginId};

/// `(hex sha256, component)` of the runtime built into this binary; None when it was built
/// without componentize-py.
pub const RUNTIME: Option<(&str, &[u8])> = include!(concat!(env!("OUT_DIR"), "/python_runtime.rs"));

/// What a server built without the runtime says to a Python push, in one line.
pub const MISSING_RUNTIME: &str = "this pipewright was built without its Python runtime: install componentize-py (pip install componentize-py==0.25.1) and build pipewright again";

/// The runtime's name and version, as errors and logs name it.
pub fn runtime_id() -> PluginId {
    PluginId {
        name: "python-runtime".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Idle instances kept per version; a run finding none starts a fresh one.
pub const IDLE_PER_VERSION: usize = 4;

/// Idle instances kept over every version.
pub const IDLE_TOTAL: usize = 16;

/// Linear memory a Python instance may grow to: the interpreter's own heap is some tens of
/// MiB before a pipeline loads anything.
pub const PYTHON_MEMORY_BYTES: usize = 1 << 30;

/// The input name that asks the runtime to describe the graph instead of running it (see
/// `plugins/python-runtime/app.py`).
const DESCRIBE: &str = "pipewright:describe";

/// Serializes the first compile of the runtime across every host of the process: the others
/// then load it from the shared cache instead of compiling it again.
static COMPILING: Mutex<()> = Mutex::new(());

/// The compiled runtime, and the warm instances of the pipelines it runs.
#[derive(Default)]
pub(super) struct PythonRuntime {
    loaded: OnceLock<Result<Arc<RunnablePipeline>, String>>,
    idle: Mutex<HashMap<String, Vec<WarmInstance>>>,
}

/// An instance kept between runs, with its scratch folder and its own output streams.
struct WarmInstance {
    store: Store<PluginState>,
    runnable: world::Runnable,
    stdout: CapturedStream,
    stderr: CapturedStream,
    scratch: tempfile::TempDir,
    last_used: Instant,
}

impl WarmInstance {
    fn inputs_dir(&self) -> PathBuf {
        self.scratch.path().join("inputs")
    }
    fn outputs_dir(&self) -> PathBuf {
        self.scratch.path().join("outputs")
    }
}

/// The scratch folders `/inputs` and `/outputs` emptied for a new run.
fn empty_scratch(instance: &WarmInstance) -> std::io::Result<()> {
    for dir in [instance.inputs_dir(), instance.outputs_dir()] {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

impl PluginHost {
    /// The compiled runtime: compiled (or loaded from the cache) at the first call, which
    /// blocks meanwhile; the server makes that call in the background at start.
    pub fn prepare_python_runtime(&self) -> Result<Arc<RunnablePipeline>, PluginError> {
        let id = runtime_id();
        let loaded = self.python.loaded.get_or_init(|| {
            let (digest, bytes) = RUNTIME.ok_or_else(|| MISSING_RUNTIME.to_string())?;
            let _one_compile = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
            let started = Instant::now();
            let loaded = self
                .link_runnable(id.clone(), digest, bytes, Compile::Optimized)
                .map_err(|e| e.to_string())?;
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Python runtime ready"
            );
            Ok(loaded)
        });
        loaded
            .clone()
            .map_err(|detail| PluginError::Load { plugin: id, detail })
    }

    /// Whether this binary carries the Python runtime.
    pub fn has_python_runtime(&self) -> bool {
        RUNTIME.is_some()
    }

    /// Takes an idle instance of the version whose content digest is `version_key`, or starts
    /// one seeing `pipeline_dir` at `/pipeline` (its scratch folder made under `scratch_root`).
    /// Blocks while the runtime compiles.
    pub async fn python_instance(
        self: &Arc<Self>,
        version_key: &str,
        pipeline_dir: &Path,
        scratch_root: &Path,
    ) -> Result<PythonLease, PluginError> {
        let reused = {
            let mut idle = self.python.idle.lock().unwrap();
            idle.get_mut(version_key).and_then(Vec::pop)
        };
        let instance = match reused {
            Some(instance) => instance,
            None => {
                let output = CapturedOutput::new(4096);
                match self
                    .start_instance(pipeline_dir, Some(scratch_root), &output)
                    .await
                {
                    Ok(instance) => instance,
                    // The pool may be full of idle instances: give their slots back, once.
                    Err(PluginError::Instantiate { .. })
                        if self.drop_idle_python(Duration::ZERO) > 0 =>
                    {
                        self.start_instance(pipeline_dir, Some(scratch_root), &output)
                            .await?
                    }
                    Err(error) => return Err(error),
                }
            }
        };
        let fail = |e: std::io::Error| PluginError::Instantiate {
            plugin: runtime_id(),
            detail: format!("emptying the instance's scratch folders: {e}"),
        };
        empty_scratch(&instance).map_err(fail)?;
        Ok(PythonLease {
            host: self.clone(),
            key: version_key.to_string(),
            instance: Some(instance),
            in_call: false,
        })
    }

    /// A fresh instance seeing `pipeline_dir` at `/pipeline`, with `/inputs` and `/outputs`
    /// under a new scratch folder when `scratch_root` is given (a run's instance; none for a
    /// describe). Writes go to `output` until forwarded elsewhere.
    async fn start_instance(
        self: &Arc<Self>,
        pipeline_dir: &Path,
        scratch_root: Option<&Path>,
        output: &CapturedOutput,
    ) -> Result<WarmInstance, PluginError> {
        let runtime = {
            let host = self.clone();
            match self.python.loaded.get() {
                Some(loaded) => loaded.clone().map_err(|detail| PluginError::Load {
                    plugin: runtime_id(),
                    detail,
                })?,
                None => tokio::task::spawn_blocking(move || host.prepare_python_runtime())
                    .await
                    .map_err(|e| PluginError::Load {
                        plugin: runtime_id(),
                        detail: format!("compiling task failed: {e}"),
                    })??,
            }
        };
        let fail = |detail: String| PluginError::Instantiate {
            plugin: runtime_id(),
            detail,
        };
        let scratch = tempfile::Builder::new()
            .prefix("python-")
            .tempdir_in(scratch_root.unwrap_or(&std::env::temp_dir()))
            .map_err(|e| fail(format!("making the instance's scratch folder: {e}")))?;
        let mut preopens = vec![Preopen {
            host: pipeline_dir.to_path_buf(),
            guest: "/pipeline",
            writable: false,
        }];
        if scratch_root.is_some() {
            for (name, writable) in [("inputs", false), ("outputs", true)] {
                let dir = scratch.path().join(name);
                std::fs::create_dir(&dir).map_err(|e| fail(format!("making /{name}: {e}")))?;
                preopens.push(Preopen {
                    host: dir,
                    guest: if writable { "/outputs" } else { "/inputs" },
                    writable,
                });
            }
        }
        let limits = Limits {
            memory_bytes: self.limits.memory_bytes.max(PYTHON_MEMORY_BYTES),
            ..self.limits.clone()
        };
        let state = PluginState::with_files(Arc::new(runtime_id()), &limits, &preopens, output)
            .map_err(|e| fail(format!("{e:#}")))?;
        let pre = runtime.linked();
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        // The deadline is the current run's (set by `begin_call`), not the store's first.
        store.epoch_deadline_callback(|store| {
            Ok(match store.data().deadline {
                Some(deadline) if Instant::now() >= deadline => UpdateDeadline::Interrupt,
                _ => UpdateDeadline::Yield(1),
            })
        });
        store.set_epoch_deadline(1);
        store.data_mut().begin_call(
            Arc::default(),
            self.limits.call_timeout.max(Duration::from_secs(10)),
        );
        let runnable = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| fail(format!("{e:#}")))?;
        Ok(WarmInstance {
            store,
            runnable,
            stdout: output.stdout.clone(),
            stderr: output.stderr.clone(),
            scratch,
            last_used: Instant::now(),
        })
    }

    /// What the graph of the Python pipeline in `pipeline_dir` takes and gives, as the runtime
    /// answers a describe (JSON text: `{"inputs", "outputs", "python"}`); Ok(Err) when the
    /// pipeline does not load. A fresh instance, dropped after.
    pub async fn describe_python(
        self: &Arc<Self>,
        pipeline_dir: &Path,
        timeout: Duration,
    ) -> Result<Result<String, RunError>, PluginError> {
        let output = CapturedOutput::new(64 << 10);
        let mut instance = self.start_instance(pipeline_dir, None, &output).await?;
        let inputs = [NamedValue {
            name: DESCRIBE.into(),
            value: Value::String(String::new()),
        }];
        let outcome = call(&mut instance, &inputs, timeout).await?;
        Ok(outcome.map(|outputs| match outputs.into_iter().next() {
            Some(NamedValue {
                value: Value::Dictionary(text),
                ..
            }) => text,
            _ => String::new(),
        }))
    }

    /// Drops the idle instances not used for `idle`; how many.
    pub(super) fn drop_idle_python(&self, idle: Duration) -> usize {
        let mut instances = self.python.idle.lock().unwrap();
        let mut dropped = 0;
        instances.retain(|_, kept| {
            let before = kept.len();
            kept.retain(|i| i.last_used.elapsed() < idle);
            dropped += before - kept.len();
            !kept.is_empty()
        });
        dropped
    }

    /// Idle Python instances held, over every version.
    pub fn idle_python_instances(&self) -> usize {
        self.python
            .idle
            .lock()
            .unwrap()
            .values()
            .map(Vec::len)
            .sum()
    }

    fn give_back(&self, key: String, instance: WarmInstance) {
        let mut idle = self.python.idle.lock().unwrap();
        let kept = idle.entry(key).or_default();
        if kept.len() >= IDLE_PER_VERSION {
            return;
        }
        kept.push(instance);
        if idle.values().map(Vec::len).sum::<usize>() > IDLE_TOTAL {
            // The least recently used goes (each list is oldest first).
            let oldest = idle
                .iter()
                .filter_map(|(key, kept)| Some((kept.first()?.last_used, key.clone())))
                .min()
                .map(|(_, key)| key);
            if let Some(key) = oldest {
                let kept = idle.get_mut(&key).expect("found above");
                kept.remove(0);
                if kept.is_empty() {
                    idle.remove(&key);
                }
            }
        }
    }
}

/// Calls `run` on `instance` with `inputs`, stopped after `timeout`.
async fn call(
    instance: &mut WarmInstance,
    inputs: &[NamedValue],
    timeout: Duration,
) -> Result<Result<Vec<NamedValue>, RunError>, PluginError> {
    let store = &mut instance.store;
    store.data_mut().begin_call(Arc::default(), timeout);
    store.data_mut().limiter.refused_growth = None;
    store.set_epoch_deadline(1);
    let outcome = instance
        .runnable
        .pipewright_pipeline_run()
        .call_run(&mut *store, inputs)
        .await;
    let limits = Limits {
        memory_bytes: PYTHON_MEMORY_BYTES,
        ..Limits::default()
    };
    outcome.map_err(|error| {
        pool::classify(&runtime_id(), &limits, "run", timeout, error, store.data())
    })
}

/// One run's hold on a Python instance: its `/inputs` to fill, its `/outputs` to read after
/// [`PythonLease::run`]. Dropped, it gives the instance back for the next run of the version,
/// unless the instance failed or was stopped midway (see the module doc).
pub struct PythonLease {
    host: Arc<PluginHost>,
    key: String,
    instance: Option<WarmInstance>,
    /// A call began and has not returned: the instance is in an unknown state.
    in_call: bool,
}

impl PythonLease {
    /// The host folder the run sees as `/inputs`.
    pub fn inputs_dir(&self) -> PathBuf {
        self.instance.as_ref().expect("held").inputs_dir()
    }

    /// The host folder the run sees as `/outputs`.
    pub fn outputs_dir(&self) -> PathBuf {
        self.instance.as_ref().expect("held").outputs_dir()
    }

    /// Runs once with `inputs`, what it writes going to `output`. Ok(Err) is the pipeline's
    /// own failure (the instance is kept); Err is a trap, the deadline or the memory cap (it is
    /// dropped).
    pub async fn run(
        &mut self,
        inputs: &[NamedValue],
        timeout: Duration,
        output: &CapturedOutput,
    ) -> Result<Result<Vec<NamedValue>, RunError>, PluginError> {
        let instance = self.instance.as_mut().expect("held");
        instance.stdout.forward_to(Some(output.stdout.clone()));
        instance.stderr.forward_to(Some(output.stderr.clone()));
        // A trap's explanation reads this run's stderr.
        instance.store.data_mut().stderr = output.stderr.clone();
        self.in_call = true;
        let outcome = call(instance, inputs, timeout).await;
        self.in_call = false;
        instance.stdout.forward_to(None);
        instance.stderr.forward_to(None);
        metrics::counter!("pipewright_runs_total", "outcome" => match &outcome { Ok(Ok(_)) => "ok", Ok(Err(_)) => "pipeline-error", Err(_) => "trap" }).increment(1);
        if outcome.is_err() {
            self.instance = None;
        }
        outcome
    }
}

impl Drop for PythonLease {
    fn drop(&mut self) {
        if self.in_call {
            return;
        }
        if let Some(mut instance) = self.instance.take() {
            instance.last_used = Instant::now();
            self.host.give_back(std::mem::take(&mut self.key), instance);
        }
    }
}
