//! Runs of runnable pipelines (the core behind Mystic's `/v4/runs`): resolve the pipeline,
//! check the inputs against its manifest, record the run, take capacity, execute it through the
//! run engine ([`super::engine`]) and record its outputs or its error.
//!
//! Every run answered is a row in the store. A background run (and one waiting for capacity)
//! is written when accepted, before its answer, `running` or `created` with a lease that the
//! server executing it renews; a run whose server stopped is failed by a sweep. A synchronous
//! run is written once, with its outcome, committed right after its answer (reads of runs on
//! this server wait for that commit: see [`super::writes`]), unless it outlasts
//! [`RECORD_RUNNING_AFTER`]: then it is written `running` with a lease as well, before it goes
//! on, so that a restart fails it. A server that stops within that time leaves no row of a run whose id it
//! never gave out (the client saw its connection drop), never a row `running`. A synchronous
//! run executes on its request's task: a client that hangs up stops it (see [`Abandoned`]).
//!
//! Errors of the pipeline (bad input, trap, timeout, memory) are recorded in the run, in the
//! kinds Mystic's client knows (`input_error`, `pipeline_error`, `timeout`, `oom`, ...), not as
//! HTTP errors.
//!
//! Capacity ([`super::capacity`]): a bounded number of runs at once in total and per
//! pipeline. A request that finds either taken waits (`wait_for_resources`) or is recorded
//! `no_resources_available`.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::plugins::PluginError;
use crate::registry::content_sources::FetchError;
use crate::registry::{Caller, Refusal, RegistryError};
use crate::store::{self, runs as rows};

use super::capacity::RunPermits;
use super::engine::{Execution, InputValue, OutputValue, RunFailure, RunLogs, RunsOn};
use super::targets::{bind_inputs, kind_of, RunTarget};
use super::writes::{NewRunRow, RunWrite, StateChangeRow};
use super::{Runs, Value};

/// How long a synchronous run may go without a row of its own: past this it is written
/// `running` with a lease (a restart then fails it). Shorter runs, the common case, commit once.
const RECORD_RUNNING_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// One input as a surface parsed it.
#[derive(Clone, Debug)]
pub enum RunArgument {
    Value(Value),
    /// A file uploaded before, by its blob digest.
    File {
        file_name: String,
        digest: String,
    },
    /// A file at an http(s) URL: fetched by the server, where its fetch policy admits
    /// (`--allow-fetch`), at most [`RunLimits::max_url_input_bytes`], before the run is bound.
    FileAt {
        file_name: String,
        url: String,
    },
    /// A file's bytes (a `FileAt` once fetched).
    FileBytes {
        file_name: String,
        bytes: Vec<u8>,
    },
}

#[derive(Clone, Debug)]
pub struct RunSubmission {
    pub namespace: String,
    pub name: String,
    pub version: Option<String>,
    /// In the order of the manifest's `inputs`.
    pub inputs: Vec<RunArgument>,
    /// The inputs as the client sent them, kept with the run.
    pub inputs_as_sent: Json,
    /// Answer at once and run in the background.
    pub background: bool,
    /// Wait for capacity instead of answering `no_resources_available`.
    pub wait_for_resources: bool,
    /// An input the surface could not take (an unsupported type): the run is recorded failed
    /// with this `input_error`.
    pub refused_input: Option<String>,
}

/// Where a run is: Mystic's run states, as the store and the wire spell them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Accepted, waiting for capacity.
    Created,
    Running,
    Completed,
    Failed,
    /// Refused for want of capacity (the client did not ask to wait).
    NoResourcesAvailable,
}

impl RunState {
    const ALL: [RunState; 5] = [
        RunState::Created,
        RunState::Running,
        RunState::Completed,
        RunState::Failed,
        RunState::NoResourcesAvailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Created => "created",
            RunState::Running => "running",
            RunState::Completed => "completed",
            RunState::Failed => "failed",
            RunState::NoResourcesAvailable => "no_resources_available",
        }
    }

    pub fn parse(text: &str) -> Option<RunState> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A run as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub id: String,
    /// `namespace/name`.
    pub pipeline: String,
    pub version: String,
    pub state: RunState,
    pub inputs: Json,
    pub outputs: Vec<RunOutput>,
    pub error: Option<RunErrorRecord>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RunOutput {
    pub name: String,
    /// string, integer, float, boolean, dictionary, array or file.
    pub kind: String,
    pub value: Json,
    pub file: Option<RunFile>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RunFile {
    pub name: String,
    pub digest: String,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RunErrorRecord {
    /// Mystic's kinds: input_error, pipeline_error, pipeline_loading, timeout, oom, unknown.
    pub kind: String,
    pub message: String,
}

/// The deadline of one run (a `/v4` run's or a workflow task's), unless configured otherwise.
pub const DEFAULT_RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a run may take and how many may run at once.
#[derive(Clone, Debug)]
pub struct RunLimits {
    pub timeout: std::time::Duration,
    pub max_total: usize,
    pub max_per_pipeline: usize,
    /// A pipeline not run for this long is scaled to zero (its compiled code leaves memory).
    pub idle_timeout: std::time::Duration,
    /// The largest file an input given by URL may be ([`RunArgument::FileAt`]).
    pub max_url_input_bytes: u64,
}

/// [`RunLimits::max_url_input_bytes`] unless configured otherwise.
pub const DEFAULT_MAX_URL_INPUT_BYTES: u64 = 64 << 20;

impl Default for RunLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        RunLimits {
            timeout: DEFAULT_RUN_TIMEOUT,
            // Each executing run takes a slot of the instance pool.
            max_total: (4 * cores).min(crate::plugins::runnable::RUN_SLOTS as usize),
            max_per_pipeline: 2 * cores,
            idle_timeout: std::time::Duration::from_secs(5 * 60),
            max_url_input_bytes: DEFAULT_MAX_URL_INPUT_BYTES,
        }
    }
}

/// A synchronous run runs on its request's task, so a client that hangs up midway stops it (no
/// one could see its outcome: the client never received its id). Dropped before the run's
/// outcome was queued, this writes what happened to a run that already has a row (one that
/// outlasted [`RECORD_RUNNING_AFTER`]), rather than leave it to the sweep. A run without a row
/// leaves nothing, as one cut short by a crash.
struct Abandoned<'a> {
    runs: &'a Runs,
    run: &'a Arc<AcceptedRun>,
    recorded: bool,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.recorded {
            return;
        }
        let (runs, run) = (self.runs.clone(), self.run.clone());
        runtime.spawn(async move {
            let error = RunErrorRecord {
                kind: "unknown".into(),
                message: "the client went away before the run finished; it was stopped".into(),
            };
            if let Err(error) = runs
                .record_finished(&run, true, Err(Unfinished::Failed(error)), None)
                .await
            {
                tracing::warn!(run = %run.id, %error, "could not record an abandoned run");
            }
        });
    }
}

/// A run accepted by `submit_run`: what its row and its answer are made of.
struct AcceptedRun {
    id: String,
    target: Arc<RunTarget>,
    submitted_by: String,
    account_id: String,
    /// As the client sent them, and as stored.
    inputs: Json,
    inputs_text: String,
    created_at: i64,
}

impl AcceptedRun {
    fn new_row(
        &self,
        state: RunState,
        outputs: Option<String>,
        error: Option<String>,
        lease_until: Option<i64>,
        now: i64,
    ) -> RunWrite {
        RunWrite::Insert(NewRunRow {
            id: self.id.clone(),
            pipeline_id: self.target.pipeline.id.clone(),
            version: self.target.version.version.clone(),
            submitted_by: self.submitted_by.clone(),
            account_id: self.account_id.clone(),
            state: state.as_str(),
            inputs: self.inputs_text.clone(),
            outputs,
            error,
            lease_until,
            created_at: self.created_at,
            now,
            logs: None,
        })
    }

    /// The run as recorded with `state`, as `run_record` would read it back.
    fn record(
        &self,
        state: RunState,
        outputs: Vec<RunOutput>,
        error: Option<RunErrorRecord>,
        updated_at_ms: i64,
    ) -> RunRecord {
        RunRecord {
            id: self.id.clone(),
            pipeline: format!(
                "{}/{}",
                self.target.pipeline.namespace, self.target.pipeline.name
            ),
            version: self.target.version.version.clone(),
            state,
            inputs: self.inputs.clone(),
            outputs,
            error,
            created_at_ms: self.created_at,
            updated_at_ms,
        }
    }
}

/// Renews a run's lease while held. Dropped when the run ends, or with the request that was
/// waiting for capacity when its client went away: the row's lease then lapses and the sweep
/// fails it, instead of a renewal keeping it `created` for ever.
struct Renewing(tokio::task::JoinHandle<()>);

impl Drop for Renewing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A stored run as callers see it.
fn run_record_of(row: rows::RunRow) -> RunRecord {
    RunRecord {
        id: row.id,
        pipeline: row.pipeline,
        version: row.version,
        // A state this server does not know (written by a newer one) reads as failed.
        state: RunState::parse(&row.state).unwrap_or(RunState::Failed),
        inputs: serde_json::from_str(&row.inputs).unwrap_or(Json::Null),
        outputs: row
            .outputs
            .and_then(|o| serde_json::from_str(&o).ok())
            .unwrap_or_default(),
        error: row.error.and_then(|e| serde_json::from_str(&e).ok()),
        created_at_ms: row.created_at,
        updated_at_ms: row.updated_at,
    }
}

/// How a run ended without outputs.
enum Unfinished {
    Failed(RunErrorRecord),
    NoResources,
}

/// How much of each of a run's output streams is kept with its record: the engine captures more
/// ([`super::OUTPUT_CAPTURE_BYTES`]), the store keeps this much per run.
pub const STORED_LOG_BYTES: usize = 64 << 10;

/// A run's logs as its row keeps them.
#[derive(Default, Serialize, serde::Deserialize)]
struct StoredLogs {
    stdout: String,
    stderr: String,
}

/// A run's logs as stored: JSON `{"stdout", "stderr"}`, each stream cut to its first
/// [`STORED_LOG_BYTES`] (at a character boundary, then a line saying so); None when the run
/// printed nothing.
fn stored_logs(logs: &RunLogs) -> Option<String> {
    if logs.stdout.is_empty() && logs.stderr.is_empty() {
        return None;
    }
    let cut = |text: &str| {
        if text.len() <= STORED_LOG_BYTES {
            return text.to_string();
        }
        let mut end = STORED_LOG_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut kept = text[..end].to_string();
        if !kept.ends_with('\n') {
            kept.push('\n');
        }
        kept.push_str(&format!(
            "[log truncated: {} more bytes were written; the first {end} are kept]\n",
            text.len() - end
        ));
        kept
    };
    let stored = StoredLogs {
        stdout: cut(&logs.stdout),
        stderr: cut(&logs.stderr),
    };
    Some(serde_json::to_string(&stored).expect("logs serialize"))
}

/// Mystic's error kind for a failed run.
fn error_of(failure: &RunFailure) -> RunErrorRecord {
    // The Python runtime reports Mystic's own kinds as codes, and Mystic's own message (a
    // pipe's exception as `repr`): both are passed on as they are.
    if let RunFailure::Pipeline(error) = failure {
        if let Some(kind) = MYSTIC_KINDS.iter().find(|k| **k == error.code) {
            return RunErrorRecord {
                kind: kind.to_string(),
                message: error.message.clone(),
            };
        }
    }
    let kind = match failure {
        RunFailure::Pipeline(_) => "pipeline_error",
        RunFailure::Plugin(PluginError::Timeout { .. }) => "timeout",
        RunFailure::Plugin(PluginError::MemoryLimit { .. }) => "oom",
        RunFailure::Plugin(
            PluginError::Load { .. }
            | PluginError::NoKnownWorld { .. }
            | PluginError::Runnable { .. }
            | PluginError::UnknownSurface { .. }
            | PluginError::TypeTaken { .. },
        ) => "pipeline_loading",
        RunFailure::Plugin(PluginError::Instantiate { .. }) => "startup_error",
        RunFailure::Plugin(PluginError::Trap { .. }) => "pipeline_error",
        RunFailure::Invalid(_) => "input_error",
        // Nothing stops a `/v4` run but its caller hanging up, which never reads the outcome.
        RunFailure::Internal(_) | RunFailure::Stopped => "unknown",
    };
    RunErrorRecord {
        kind: kind.into(),
        message: failure.to_string(),
    }
}

/// The error kinds of Mystic's runs a pipeline may report as its `run-error` code.
const MYSTIC_KINDS: &[&str] = &[
    "input_error",
    "pipeline_error",
    "pipeline_loading",
    "startup_error",
];

fn output_of(name: String, value: OutputValue) -> RunOutput {
    let (kind, value, file) = match value {
        OutputValue::Value(value) => {
            let kind = kind_of(&value).to_string();
            let json = match value {
                Value::String(s) | Value::File(s) => json!(s),
                Value::Integer(i) => json!(i),
                Value::Float(f) => json!(f),
                Value::Boolean(b) => json!(b),
                Value::Dictionary(text) | Value::Array(text) => {
                    serde_json::from_str(&text).unwrap_or(Json::String(text))
                }
            };
            (kind, json, None)
        }
        OutputValue::File { name, digest, size } => (
            "file".to_string(),
            Json::Null,
            Some(RunFile { name, digest, size }),
        ),
    };
    RunOutput {
        name,
        kind,
        value,
        file,
    }
}

impl Runs {
    /// Accepts a run and executes it now, or in the background when asked (see the module doc
    /// for when its record is written).
    pub async fn submit_run(
        &self,
        caller: &Caller,
        submission: RunSubmission,
    ) -> Result<RunRecord, RegistryError> {
        self.submit_run_reporting(caller, submission, None).await
    }

    /// [`Self::submit_run`], telling `started` the run as it starts executing (a synchronous
    /// run that got its capacity): what a streaming answer sends first. Nothing is sent when
    /// the run ends before it starts (a refused input, no capacity).
    pub async fn submit_run_reporting(
        &self,
        caller: &Caller,
        submission: RunSubmission,
        started: Option<tokio::sync::oneshot::Sender<RunRecord>>,
    ) -> Result<RunRecord, RegistryError> {
        let target = self.run_target(caller, &submission).await?;
        let now = store::now_millis();
        let run = Arc::new(AcceptedRun {
            // Time-ordered: each new key goes at the end of the runs' key index, in the
            // page the last one went to, not in a random page of an index larger than the
            // cache.
            id: uuid::Uuid::now_v7().to_string(),
            target,
            submitted_by: caller.user_id.clone(),
            account_id: caller.account_id.clone(),
            inputs_text: submission.inputs_as_sent.to_string(),
            inputs: submission.inputs_as_sent,
            created_at: now,
        });
        let prepared = match (&run.target.manifest, submission.refused_input) {
            (Err(message), _) => Err(message.clone()),
            (Ok(_), Some(message)) => Err(message),
            (Ok(manifest), None) => match self.fetch_url_inputs(submission.inputs).await {
                Ok(arguments) => bind_inputs(manifest, arguments),
                Err(message) => Err(message),
            },
        };
        let prepared = match prepared {
            Ok(inputs) => self.check_file_inputs(caller, inputs).await?,
            Err(message) => Err(message),
        };
        let inputs = match prepared {
            Ok(inputs) => inputs,
            Err(message) => {
                let error = RunErrorRecord {
                    kind: "input_error".into(),
                    message,
                };
                return self
                    .record_finished(&run, false, Err(Unfinished::Failed(error)), None)
                    .await;
            }
        };
        let pipeline_id = run.target.pipeline.id.clone();
        // Recorded: a row exists (and holds a lease renewed by `renewing`).
        let (permits, recorded, renewing) = match self.capacity.try_take(&pipeline_id).await? {
            Some(permits) => (permits, false, None),
            None if submission.wait_for_resources => {
                self.insert_at_work(&run, RunState::Created).await?;
                let renewing = self.renew_lease(&run.id);
                let permits = self.capacity.take(&pipeline_id).await?;
                (permits, true, Some(renewing))
            }
            None => {
                return self
                    .record_finished(&run, false, Err(Unfinished::NoResources), None)
                    .await;
            }
        };
        if submission.background {
            // The client polls for it: it must be in the store before the answer.
            let renewing = match renewing {
                Some(renewing) => {
                    self.set_running(&run.id).await?;
                    renewing
                }
                None => {
                    self.insert_at_work(&run, RunState::Running).await?;
                    self.renew_lease(&run.id)
                }
            };
            let (runs, executing) = (self.clone(), run.clone());
            tokio::spawn(async move {
                let _ = runs
                    .execute_run(executing, inputs, permits, true, Some(renewing))
                    .await;
            });
            return Ok(run.record(RunState::Running, Vec::new(), None, store::now_millis()));
        }
        if recorded {
            self.set_running(&run.id).await?;
        }
        if let Some(started) = started {
            let _ =
                started.send(run.record(RunState::Running, Vec::new(), None, store::now_millis()));
        }
        // On the request's own task: a client that hangs up stops its run (see `Abandoned`).
        self.execute_run(run, inputs, permits, recorded, renewing)
            .await
    }

    /// Fetches the files given by URL ([`RunArgument::FileAt`]); Err is the `input_error`
    /// message of the first that cannot be fetched. Nothing is connected to where the fetch
    /// policy refuses.
    async fn fetch_url_inputs(
        &self,
        arguments: Vec<RunArgument>,
    ) -> Result<Vec<RunArgument>, String> {
        let mut fetched = Vec::with_capacity(arguments.len());
        for argument in arguments {
            let RunArgument::FileAt { file_name, url } = argument else {
                fetched.push(argument);
                continue;
            };
            let bytes = self
                .registry
                .fetch_run_input(&url, self.limits.max_url_input_bytes, self.limits.timeout)
                .await
                .map_err(|error| match error {
                    FetchError::Refused { .. } => format!(
                        "{error}; the server's operator admits other addresses with --allow-fetch"
                    ),
                    error => format!("the file input at {url} could not be fetched: {error}"),
                })?;
            fetched.push(RunArgument::FileBytes { file_name, bytes });
        }
        Ok(fetched)
    }

    /// Refuses (as an `input_error` message) a file input naming a blob the caller may not use
    /// (see [`crate::registry::Registry::may_use_file`]); the same answer whether or not the blob exists, so a
    /// guessed or leaked digest tells nothing.
    async fn check_file_inputs(
        &self,
        caller: &Caller,
        inputs: Vec<(String, InputValue)>,
    ) -> Result<Result<Vec<(String, InputValue)>, String>, RegistryError> {
        for (name, input) in &inputs {
            if let InputValue::StoredFile { digest, .. } = input {
                if !self.registry.may_use_file(caller, digest).await? {
                    return Ok(Err(format!(
                        "input `{name}`: {digest} is neither an upload of your account nor a file of a pipeline you may read"
                    )));
                }
            }
        }
        Ok(Ok(inputs))
    }

    /// Executes an accepted run holding its permits and records its outcome. A run without a
    /// row yet gets one (`running`, leased) when it outlasts [`RECORD_RUNNING_AFTER`];
    /// otherwise its one write is its outcome.
    async fn execute_run(
        &self,
        run: Arc<AcceptedRun>,
        inputs: Vec<(String, InputValue)>,
        permits: RunPermits,
        mut recorded: bool,
        mut renewing: Option<Renewing>,
    ) -> Result<RunRecord, RegistryError> {
        let target = &run.target;
        let file_outputs = target.manifest.as_ref().is_ok_and(|m| {
            m.outputs
                .as_slice()
                .iter()
                .any(|p| p.r#type == pipewright_manifest::PortType::File)
        });
        let runs_on = match target.manifest.as_ref() {
            Ok(manifest) if manifest.python_graph().is_some() => RunsOn::PythonRuntime,
            manifest => RunsOn::Component(
                manifest
                    .ok()
                    .and_then(|m| m.component.as_deref())
                    .unwrap_or_default(),
            ),
        };
        let work = self.engine.run(Execution {
            version: &target.version,
            runs_on,
            inputs,
            file_outputs,
            timeout: self.limits.timeout,
            stop: None,
        });
        tokio::pin!(work);
        let mut abandoned = Abandoned {
            runs: self,
            run: &run,
            recorded,
        };
        let outcome = if recorded {
            work.await
        } else {
            tokio::select! {
                outcome = &mut work => outcome,
                _ = tokio::time::sleep(RECORD_RUNNING_AFTER) => {
                    // Queued before the first await: if we are dropped, it is still written.
                    abandoned.recorded = true;
                    match self.insert_at_work(&run, RunState::Running).await {
                        Ok(()) => {
                            recorded = true;
                            renewing = Some(self.renew_lease(&run.id));
                        }
                        // Still recorded at its end, like a short run.
                        Err(error) => tracing::warn!(run = %run.id, %error, "could not record a run as running"),
                    }
                    work.await
                }
            }
        };
        drop(permits);
        drop(renewing);
        let logs = stored_logs(&outcome.logs);
        let outcome = outcome
            .outcome
            .map(|outputs| {
                outputs
                    .into_iter()
                    .map(|(name, value)| output_of(name, value))
                    .collect()
            })
            .map_err(|failure| Unfinished::Failed(error_of(&failure)));
        // The outcome is queued at the first poll of `record_finished`: nothing left to do on
        // a drop from here on.
        std::mem::forget(abandoned);
        let recorded_outcome = self.record_finished(&run, recorded, outcome, logs).await;
        if let Err(error) = &recorded_outcome {
            tracing::error!(run = %run.id, %error, "could not record a run's outcome; the sweep will fail it if it was running");
        }
        recorded_outcome
    }

    /// Writes a run's outcome, with its logs ([`stored_logs`]) when it executed: the update of
    /// its row, or its only insert. The run as recorded.
    async fn record_finished(
        &self,
        run: &AcceptedRun,
        recorded: bool,
        outcome: Result<Vec<RunOutput>, Unfinished>,
        logs: Option<String>,
    ) -> Result<RunRecord, RegistryError> {
        let (state, outputs, error) = match outcome {
            Ok(outputs) => (RunState::Completed, outputs, None),
            Err(Unfinished::Failed(error)) => (RunState::Failed, Vec::new(), Some(error)),
            Err(Unfinished::NoResources) => (RunState::NoResourcesAvailable, Vec::new(), None),
        };
        let outputs_json = (state == RunState::Completed)
            .then(|| serde_json::to_string(&outputs).expect("outputs serialize"));
        let error_json = error
            .as_ref()
            .map(|e| serde_json::to_string(e).expect("an error serializes"));
        let now = store::now_millis();
        // A run without a row until now (a synchronous one, the common case) is answered
        // before its one write commits (see `writes`). Not one with file outputs: their blobs
        // are kept by the row that names them, which must be in the store first.
        let behind = !recorded && outputs.iter().all(|output| output.file.is_none());
        let write = if recorded {
            RunWrite::SetState(StateChangeRow {
                id: run.id.clone(),
                state: state.as_str(),
                outputs: outputs_json,
                error: error_json,
                lease_until: None,
                now,
                logs,
            })
        } else {
            let mut row = run.new_row(state, outputs_json, error_json, None, now);
            if let RunWrite::Insert(row) = &mut row {
                row.logs = logs;
            }
            row
        };
        if behind {
            self.writes.write_behind(write);
        } else {
            self.writes.write(write).await?;
        }
        Ok(run.record(state, outputs, error, now))
    }

    /// Inserts the row of a run at work (`created` or `running`), with a lease.
    async fn insert_at_work(
        &self,
        run: &AcceptedRun,
        state: RunState,
    ) -> Result<(), RegistryError> {
        let now = store::now_millis();
        let lease_until = self.lease_until(now);
        self.writes
            .write(run.new_row(state, None, None, Some(lease_until), now))
            .await
    }

    async fn set_running(&self, id: &str) -> Result<(), RegistryError> {
        let now = store::now_millis();
        let until = self.lease_until(now);
        self.writes
            .write(RunWrite::SetState(StateChangeRow {
                id: id.to_string(),
                state: RunState::Running.as_str(),
                outputs: None,
                error: None,
                lease_until: Some(until),
                now,
                logs: None,
            }))
            .await
    }

    fn renew_lease(&self, id: &str) -> Renewing {
        Renewing(self.keep_lease(store::leases::Leased::Runs, id))
    }

    /// A run the caller's account submitted.
    pub async fn run_record(&self, caller: &Caller, id: &str) -> Result<RunRecord, RegistryError> {
        // What this server answered is read back, even before its commit (see `writes`).
        self.writes.flush().await;
        let mut conn = self.store().pool().acquire().await?;
        let not_found = || Refusal::RunNotFound { id: id.to_string() };
        let row = rows::run(&mut conn, id).await?.ok_or_else(not_found)?;
        if !self
            .registry
            .acts_for(&mut conn, caller, &row.account_id)
            .await?
        {
            return Err(not_found().into());
        }
        Ok(run_record_of(row))
    }

    /// The runs of the accounts the caller is a member of, newest first: those submitted
    /// before run `before` when given, at most `limit`.
    pub async fn list_runs(
        &self,
        caller: &Caller,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunRecord>, RegistryError> {
        // What this server answered is read back, even before its commit (see `writes`).
        self.writes.flush().await;
        let mut conn = self.store().pool().acquire().await?;
        let rows = rows::runs_of_member(&mut conn, &caller.user_id, before, limit.into()).await?;
        Ok(rows.into_iter().map(run_record_of).collect())
    }

    /// What a run of the caller's account wrote to stdout and stderr (as kept: see
    /// [`stored_logs`]); empty while it runs, and for a run that never executed.
    pub async fn run_logs(&self, caller: &Caller, id: &str) -> Result<RunLogs, RegistryError> {
        // What this server answered is read back, even before its commit (see `writes`).
        self.writes.flush().await;
        let mut conn = self.store().pool().acquire().await?;
        let not_found = || Refusal::RunNotFound { id: id.to_string() };
        let (account_id, logs) = rows::logs(&mut conn, id).await?.ok_or_else(not_found)?;
        if !self
            .registry
            .acts_for(&mut conn, caller, &account_id)
            .await?
        {
            return Err(not_found().into());
        }
        let stored: StoredLogs = logs
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Ok(RunLogs {
            stdout: stored.stdout,
            stderr: stored.stderr,
        })
    }

    /// Fails the runs whose server stopped running them. Any server may call it.
    pub async fn fail_abandoned_runs(&self) -> Result<u64, RegistryError> {
        let error = RunErrorRecord {
            kind: "unknown".into(),
            message: "the server stopped while the run was in progress".into(),
        };
        let mut conn = self.store().pool().acquire().await?;
        let failed = rows::fail_abandoned(
            &mut conn,
            &serde_json::to_string(&error).expect("an error serializes"),
            store::now_millis(),
        )
        .await?;
        if failed > 0 {
            tracing::warn!(failed, "runs interrupted by a server stop were failed");
        }
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_kept_to_their_bound_per_stream_and_not_at_all_when_empty() {
        assert_eq!(stored_logs(&RunLogs::default()), None);
        // Two bytes a character after the first: the bound falls mid-character.
        let long = format!("x{}", "é".repeat(STORED_LOG_BYTES));
        let stored = stored_logs(&RunLogs {
            stdout: "hello\n".into(),
            stderr: long.clone(),
        })
        .unwrap();
        let read: StoredLogs = serde_json::from_str(&stored).unwrap();
        assert_eq!(read.stdout, "hello\n");
        let kept = STORED_LOG_BYTES - 1;
        assert_eq!(&read.stderr[..kept], &long[..kept]);
        assert_eq!(
            &read.stderr[kept..],
            format!(
                "\n[log truncated: {} more bytes were written; the first {kept} are kept]\n",
                long.len() - kept
            )
        );
    }

    #[test]
    fn run_states_read_back_as_written_and_serialize_as_mystic_spells_them() {
        for state in RunState::ALL {
            assert_eq!(RunState::parse(state.as_str()), Some(state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::json!(state.as_str())
            );
        }
        assert_eq!(RunState::parse("queued"), None);
    }
}
