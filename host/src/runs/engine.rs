//! The run engine: executes a registered version whose content is a runnable pipeline
//! component, given its inputs, and hands back its outputs.
//!
//! A run sees the version's own files at `/pipeline` (read-only; materialized once per content
//! digest under `<data-dir>/runs/pipelines`), and nothing else but what its manifest declares:
//! its file inputs at `/inputs` when it has any, and an empty `/outputs`, whose files the
//! pipeline may return, when it declares file outputs. Those two live in a scratch folder made
//! and removed per run; the common trivial run (no files) needs none, and opens one folder
//! only. The component runs on the plugin host ([`crate::plugins::runnable`]) under its memory
//! cap and a wall-clock deadline; file outputs go to the blob store.
//!
//! The loaded pipeline is found by its component's stored digest; the component's bytes are
//! read (and hashed) only when it is not in memory.
//!
//! A Python pipeline (a Mystic pipeline directory) runs on the Python runtime instead
//! ([`RunsOn::PythonRuntime`]): on a warm instance of its version when one is idle, whose own
//! scratch folders are its `/inputs` and `/outputs` (see [`crate::plugins::python`]).
//!
//! What the component writes to stdout and stderr is kept ([`RunLogs`], each stream up to
//! [`OUTPUT_CAPTURE_BYTES`]) and handed back beside the outcome, failed or not, for the
//! caller to store.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;

use crate::blobs::BlobStore;
use crate::plugins::runnable::{NamedValue, RunError, Value};
use crate::plugins::{CapturedOutput, PluginError, PluginHost, PluginId, Preopen};
use crate::registry::VersionInfo;

/// A run being executed: counted in the gauge `pipewright_runs_active` while it lives, and its
/// duration recorded in the histogram `pipewright_run_duration_seconds` by the state it ended
/// in: `completed`, `failed` (any [`RunFailure`]: bad input, trap, timeout, memory), or
/// `stopped` when it was dropped before it ended (its client hung up, the server stopped) or
/// stopped by its caller (a cancelled workflow).
/// The time waiting for capacity is not in it: a run starts here once it holds its permits.
struct RunAtWork {
    started: std::time::Instant,
    state: &'static str,
}

impl RunAtWork {
    fn start() -> Self {
        metrics::gauge!("pipewright_runs_active").increment(1.0);
        RunAtWork {
            started: std::time::Instant::now(),
            state: "stopped",
        }
    }
}

impl Drop for RunAtWork {
    fn drop(&mut self) {
        metrics::gauge!("pipewright_runs_active").decrement(1.0);
        metrics::histogram!("pipewright_run_duration_seconds", "state" => self.state)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// An input: a value, or a file (placed under `/inputs`) given by its bytes or by its digest
/// in the blob store.
#[derive(Clone, Debug)]
pub enum InputValue {
    Value(Value),
    File { file_name: String, bytes: Vec<u8> },
    StoredFile { file_name: String, digest: String },
}

/// An output: a value, or a file the pipeline wrote, now in the blob store.
#[derive(Clone, Debug)]
pub enum OutputValue {
    Value(Value),
    File {
        name: String,
        digest: String,
        size: u64,
    },
}

/// Why a run gave no outputs.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    /// The pipeline reported a failure of its own.
    #[error("the pipeline failed ({}): {}", .0.code, .0.message)]
    Pipeline(RunError),
    /// It trapped, ran out of time or memory, or would not load.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The inputs or outputs could not be handled.
    #[error("{0}")]
    Invalid(String),
    /// Its caller stopped it ([`Execution::stop`]) before it ended.
    #[error("stopped before it ended")]
    Stopped,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::blobs::BlobError> for RunFailure {
    fn from(error: crate::blobs::BlobError) -> Self {
        RunFailure::Internal(error.into())
    }
}

/// How much of each of a run's output streams (stdout, stderr) is kept. Past it the guest keeps
/// running; what it writes is counted and not kept, and the kept text ends with a line saying so.
pub const OUTPUT_CAPTURE_BYTES: usize = 1 << 20;

/// What a component wrote while it ran, each stream cut at [`OUTPUT_CAPTURE_BYTES`] (then
/// closed by a `[output truncated: …]` line). Invalid UTF-8 is replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunLogs {
    pub stdout: String,
    pub stderr: String,
}

impl RunLogs {
    fn of(output: &CapturedOutput) -> Self {
        RunLogs {
            stdout: output.stdout.text(),
            stderr: output.stderr.text(),
        }
    }
}

/// One execution's outcome, and what the component wrote meanwhile (empty when it failed
/// before it started).
#[derive(Debug)]
pub struct Executed {
    pub outcome: Result<Vec<(String, OutputValue)>, RunFailure>,
    pub logs: RunLogs,
}

/// Where runs keep their files, and what they run on: the plugin host, and the blob store that
/// holds versions' files, stored inputs and file outputs.
#[derive(Clone)]
pub struct RunEngine {
    root: PathBuf,
    plugins: Arc<PluginHost>,
    blobs: BlobStore,
    /// Content digests whose files are on disk already: a run of one finds its folder without
    /// asking the file system.
    materialized: Arc<RwLock<HashSet<String>>>,
}

/// What a version runs on.
#[derive(Clone, Copy, Debug)]
pub enum RunsOn<'a> {
    /// The component that is its file at this path.
    Component(&'a str),
    /// The Python runtime, importing the pipeline's own files.
    PythonRuntime,
}

/// One run to execute: `version`, on what `runs_on` says, with `inputs`, under a deadline of
/// `timeout`.
pub struct Execution<'a> {
    pub version: &'a VersionInfo,
    pub runs_on: RunsOn<'a>,
    pub inputs: Vec<(String, InputValue)>,
    /// The manifest declares file outputs: `/outputs` is writable. Without it (and without file
    /// inputs) `/outputs` is read-only and empty (see the module doc).
    pub file_outputs: bool,
    pub timeout: Duration,
    /// Stops the run when it resolves (a cancelled workflow): the outcome is
    /// [`RunFailure::Stopped`], with what the component wrote until then.
    pub stop: Option<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>,
}

impl RunEngine {
    pub fn open(root: &Path, plugins: Arc<PluginHost>, blobs: BlobStore) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root.join("pipelines"))?;
        std::fs::create_dir_all(root.join("scratch"))?;
        Ok(RunEngine {
            root: root.to_path_buf(),
            plugins,
            blobs,
            materialized: Arc::default(),
        })
    }

    /// Executes one run, capturing its stdout and stderr. Counted in the run metrics (see
    /// [`RunAtWork`]), whichever surface asked for it.
    pub async fn run(&self, mut execution: Execution<'_>) -> Executed {
        let mut at_work = RunAtWork::start();
        let output = CapturedOutput::new(OUTPUT_CAPTURE_BYTES);
        let outcome = match execution.stop.take() {
            // Dropping the execution stops the component (at its next epoch tick or await)
            // and removes its scratch folder; what it wrote stays in `output`.
            Some(stop) => tokio::select! {
                outcome = self.execute(execution, &output) => outcome,
                () = stop => Err(RunFailure::Stopped),
            },
            None => self.execute(execution, &output).await,
        };
        at_work.state = match &outcome {
            Ok(_) => "completed",
            Err(RunFailure::Stopped) => "stopped",
            Err(_) => "failed",
        };
        Executed {
            outcome,
            logs: RunLogs::of(&output),
        }
    }

    async fn execute(
        &self,
        Execution {
            version,
            runs_on,
            inputs,
            file_outputs,
            timeout,
            stop: _,
        }: Execution<'_>,
        output: &CapturedOutput,
    ) -> Result<Vec<(String, OutputValue)>, RunFailure> {
        let component_path = match runs_on {
            RunsOn::Component(path) => path,
            RunsOn::PythonRuntime => {
                return self.execute_python(version, inputs, timeout, output).await
            }
        };
        let (plugins, blobs) = (&self.plugins, &self.blobs);
        let component = version
            .files
            .iter()
            .find(|f| f.path == component_path)
            .ok_or_else(|| {
                RunFailure::Invalid(format!(
                    "{}:{} has no component `{component_path}` to run",
                    version.name, version.version
                ))
            })?;
        // The stored digest names the component: a loaded one is found without its bytes.
        let hex_digest = component.digest.trim_start_matches("sha256:");
        let id = PluginId {
            name: version.name.clone(),
            version: version.version.clone(),
        };
        // In memory, else (after scale to zero) from the compile cache by the stored digest:
        // the blob store's name of the bytes, so they need not be read or hashed again. That
        // maps the artifact and links it, a fraction of a millisecond: here, as a run's own
        // slice of the runtime's thread (a hand-off to a blocking thread cost more than the
        // load); only a compile goes off the runtime's threads (below).
        let loaded = plugins
            .load_compiled_runnable(id.clone(), hex_digest)
            .transpose()?;
        let bytes = match loaded {
            Some(_) => Vec::new(),
            None => blobs.get(&component.digest).await?,
        };
        let pipeline_dir = self.materialize(version).await?;
        let file_inputs = inputs.iter().any(|(_, input)| {
            matches!(
                input,
                InputValue::File { .. } | InputValue::StoredFile { .. }
            )
        });
        // Dropped (and removed) when the run ends.
        let scratch = if file_inputs || file_outputs {
            Some(
                tempfile::Builder::new()
                    .prefix("run-")
                    .tempdir_in(self.root.join("scratch"))
                    .context("making a run's scratch folder")?,
            )
        } else {
            None
        };
        let scratch_dir = |name: &str, wanted: bool| -> anyhow::Result<Option<PathBuf>> {
            match &scratch {
                Some(scratch) if wanted => {
                    let dir = scratch.path().join(name);
                    std::fs::create_dir(&dir).with_context(|| format!("making /{name}"))?;
                    Ok(Some(dir))
                }
                _ => Ok(None),
            }
        };
        let inputs_dir = scratch_dir("inputs", file_inputs)?;
        let outputs_dir = scratch_dir("outputs", file_outputs)?;
        let values = self.place_inputs(inputs, inputs_dir.as_deref()).await?;
        let preopens = run_preopens(pipeline_dir, inputs_dir, outputs_dir.clone());
        let pipeline = match loaded {
            Some(pipeline) => pipeline,
            // Loading maps (or compiles) the component: blocking, so off the runtime's threads.
            None => {
                let plugins = plugins.clone();
                tokio::task::spawn_blocking(move || plugins.load_runnable(id, &bytes))
                    .await
                    .map_err(|e| anyhow::anyhow!("loading task failed: {e}"))??
            }
        };
        let outcome = pipeline.run(&preopens, &values, timeout, output).await;
        // Without a scratch folder, the next run sees the same folders: its instance can be
        // made now, off its request's path.
        if scratch.is_none() {
            pipeline.prepare_next(preopens, timeout);
        }
        let outcome = outcome?;
        let outputs = outcome.map_err(RunFailure::Pipeline)?;
        self.collect_outputs(outputs, outputs_dir.as_deref()).await
    }

    /// A Python pipeline's run, on a warm instance of its version (or a fresh one).
    async fn execute_python(
        &self,
        version: &VersionInfo,
        inputs: Vec<(String, InputValue)>,
        timeout: Duration,
        output: &CapturedOutput,
    ) -> Result<Vec<(String, OutputValue)>, RunFailure> {
        let pipeline_dir = self.materialize(version).await?;
        // Its instances serve this content only (another version has other files).
        let key = match &version.content_digest {
            Some(digest) => digest.clone(),
            None => format!("{}/{}:{}", version.namespace, version.name, version.version),
        };
        let mut lease = self
            .plugins
            .python_instance(&key, &pipeline_dir, &self.root.join("scratch"))
            .await?;
        let (inputs_dir, outputs_dir) = (lease.inputs_dir(), lease.outputs_dir());
        let values = self.place_inputs(inputs, Some(&inputs_dir)).await?;
        let outputs = lease
            .run(&values, timeout, output)
            .await?
            .map_err(RunFailure::Pipeline)?;
        // Read before the lease ends: the instance's folders are emptied by its next run.
        let collected = self.collect_outputs(outputs, Some(&outputs_dir)).await;
        drop(lease);
        collected
    }

    /// The inputs as the component takes them: values as they are, files written to
    /// `inputs_dir` (there when any input is a file) and named by their path under `/inputs`.
    async fn place_inputs(
        &self,
        inputs: Vec<(String, InputValue)>,
        inputs_dir: Option<&Path>,
    ) -> Result<Vec<NamedValue>, RunFailure> {
        let blobs = &self.blobs;
        let mut values = Vec::with_capacity(inputs.len());
        for (name, input) in inputs {
            let (file_name, bytes) = match input {
                InputValue::Value(value) => {
                    values.push(NamedValue { name, value });
                    continue;
                }
                InputValue::File { file_name, bytes } => (file_name, bytes),
                InputValue::StoredFile { file_name, digest } => {
                    let bytes = blobs
                        .get(&digest)
                        .await
                        .map_err(|e| RunFailure::Invalid(format!("input `{name}`: {e:#}")))?;
                    (file_name, bytes)
                }
            };
            let file_name = safe_file_name(&file_name)?;
            let inputs_dir = inputs_dir.expect("made for file inputs");
            tokio::fs::write(inputs_dir.join(&file_name), bytes)
                .await
                .context("writing a file input")?;
            let value = Value::File(format!("/inputs/{file_name}"));
            values.push(NamedValue { name, value });
        }
        Ok(values)
    }

    /// The outputs as a run gives them: values as they are, files read from `outputs_dir`
    /// (what the component sees as `/outputs`) into the blob store.
    async fn collect_outputs(
        &self,
        outputs: Vec<NamedValue>,
        outputs_dir: Option<&Path>,
    ) -> Result<Vec<(String, OutputValue)>, RunFailure> {
        let blobs = &self.blobs;
        let mut collected = Vec::with_capacity(outputs.len());
        for output in outputs {
            let value = match output.value {
                Value::File(path) => {
                    let relative = path.strip_prefix("/outputs/").ok_or_else(|| {
                        RunFailure::Invalid(format!(
                            "output `{}` names {path}, which is not under /outputs",
                            output.name
                        ))
                    })?;
                    let file_name = safe_file_name(relative)?;
                    let outputs_dir = outputs_dir.ok_or_else(|| {
                        RunFailure::Invalid(format!(
                            "output `{}` is a file ({path}), but the manifest declares no file output",
                            output.name
                        ))
                    })?;
                    let bytes = tokio::fs::read(outputs_dir.join(&file_name))
                        .await
                        .map_err(|e| {
                            RunFailure::Invalid(format!("output `{}` ({path}): {e}", output.name))
                        })?;
                    OutputValue::File {
                        name: file_name,
                        size: bytes.len() as u64,
                        digest: blobs.put(&bytes).await?,
                    }
                }
                other => OutputValue::Value(other),
            };
            collected.push((output.name, value));
        }
        Ok(collected)
    }

    /// The version's files on disk, written once per content digest.
    async fn materialize(&self, version: &VersionInfo) -> anyhow::Result<PathBuf> {
        let blobs = &self.blobs;
        let digest = version
            .content_digest
            .as_deref()
            .unwrap_or("none")
            .trim_start_matches("sha256:")
            .to_string();
        let target = self.root.join("pipelines").join(&digest);
        if self.materialized.read().unwrap().contains(&digest) {
            return Ok(target);
        }
        if target.is_dir() {
            self.materialized.write().unwrap().insert(digest);
            return Ok(target);
        }
        let staging = tempfile::Builder::new()
            .prefix(".new-")
            .tempdir_in(self.root.join("pipelines"))?;
        for file in &version.files {
            let path = staging.path().join(&file.path);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::write(&path, blobs.get(&file.digest).await?).await?;
        }
        match std::fs::rename(staging.keep(), &target) {
            Ok(()) => {}
            // Another run materialized the same content meanwhile.
            Err(_) if target.is_dir() => {}
            Err(e) => return Err(e).context("placing a pipeline's files"),
        }
        self.materialized.write().unwrap().insert(digest);
        Ok(target)
    }
}

/// What a run sees: its pipeline's files read-only at `/pipeline`, its file inputs (read-only)
/// at `/inputs` and a writable `/outputs` for the files it returns, each when given. Nothing
/// else. The one definition of that layout, for the server and `plugin test`.
pub fn run_preopens(
    pipeline: PathBuf,
    inputs: Option<PathBuf>,
    outputs: Option<PathBuf>,
) -> Vec<Preopen> {
    let mut preopens = vec![Preopen {
        host: pipeline,
        guest: "/pipeline",
        writable: false,
    }];
    if let Some(host) = inputs {
        preopens.push(Preopen {
            host,
            guest: "/inputs",
            writable: false,
        });
    }
    if let Some(host) = outputs {
        preopens.push(Preopen {
            host,
            guest: "/outputs",
            writable: true,
        });
    }
    preopens
}

/// A single path segment, safe to join under a run's folder.
fn safe_file_name(name: &str) -> Result<String, RunFailure> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if ok {
        Ok(name.to_string())
    } else {
        Err(RunFailure::Invalid(format!(
            "`{name}` is not a plain file name"
        )))
    }
}

/// A value as text, for surfaces whose ports carry strings (GBDX workflows).
pub fn value_as_text(value: &OutputValue) -> String {
    match value {
        OutputValue::Value(Value::String(s)) => s.clone(),
        OutputValue::Value(Value::Integer(i)) => i.to_string(),
        OutputValue::Value(Value::Float(f)) => f.to_string(),
        OutputValue::Value(Value::Boolean(b)) => b.to_string(),
        OutputValue::Value(Value::Dictionary(json) | Value::Array(json)) => json.clone(),
        OutputValue::Value(Value::File(path)) => path.clone(),
        OutputValue::File { digest, .. } => digest.clone(),
    }
}
