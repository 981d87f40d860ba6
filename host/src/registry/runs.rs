//! Runs of runnable pipelines (the core behind Mystic's `/v4/runs`): resolve the pipeline,
//! check the inputs against its manifest, record the run, take capacity, execute it through the
//! run engine ([`crate::runs`]) and record its outputs or its error.
//!
//! Every run is a row in the store from the moment it is accepted; the server executing it
//! renews a lease, and a run whose server stopped is failed by a sweep. Errors of the pipeline
//! (bad input, trap, timeout, memory) are recorded in the run, in the kinds Mystic's client
//! knows (`input_error`, `pipeline_error`, `timeout`, `oom`, ...), not as HTTP errors.
//!
//! Capacity: a bounded number of runs at once in total and per pipeline. A request that finds
//! both taken either waits (`wait_for_resources`) or is recorded `no_resources_available`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value as Json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::plugins::runnable::Value;
use crate::plugins::PluginError;
use crate::runs::{InputValue, OutputValue, RunFailure};
use crate::store::{self, runs as rows};

use super::accounts::Caller;
use super::{Registry, RegistryError, VersionInfo};

/// One input as a surface parsed it.
#[derive(Clone, Debug)]
pub enum RunArgument {
    Value(Value),
    /// A file uploaded before, by its blob digest.
    File {
        file_name: String,
        digest: String,
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

/// A run as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub id: String,
    /// `namespace/name`.
    pub pipeline: String,
    pub version: String,
    /// created, running, completed, failed or no_resources_available.
    pub state: String,
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

/// How long a run may take and how many may run at once.
#[derive(Clone, Debug)]
pub struct RunLimits {
    pub timeout: std::time::Duration,
    pub max_total: usize,
    pub max_per_pipeline: usize,
    /// A pipeline not run for this long is scaled to zero (its compiled code leaves memory).
    pub idle_timeout: std::time::Duration,
}

impl Default for RunLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        RunLimits {
            timeout: super::workflows::DEFAULT_RUN_TIMEOUT,
            max_total: 4 * cores,
            max_per_pipeline: 2 * cores,
            idle_timeout: std::time::Duration::from_secs(5 * 60),
        }
    }
}

/// Bounds on runs at once.
pub struct RunCapacity {
    total: Arc<Semaphore>,
    per_pipeline: usize,
    pipelines: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl RunCapacity {
    pub fn new(total: usize, per_pipeline: usize) -> Self {
        RunCapacity {
            total: Arc::new(Semaphore::new(total.max(1))),
            per_pipeline: per_pipeline.max(1),
            pipelines: Mutex::default(),
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

    /// Both permits now, or None.
    fn try_take(&self, pipeline_id: &str) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let pipeline = self.of(pipeline_id).try_acquire_owned().ok()?;
        let total = self.total.clone().try_acquire_owned().ok()?;
        Some((pipeline, total))
    }

    async fn take(&self, pipeline_id: &str) -> (OwnedSemaphorePermit, OwnedSemaphorePermit) {
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
        (pipeline, total)
    }
}

impl Default for RunCapacity {
    fn default() -> Self {
        let limits = RunLimits::default();
        RunCapacity::new(limits.max_total, limits.max_per_pipeline)
    }
}

/// The manifest's declared inputs and component.
struct Manifest {
    component: String,
    inputs: Vec<(String, String)>,
}

fn manifest(version: &VersionInfo) -> Result<Manifest, String> {
    let definition = &version.definition;
    let component = definition
        .get("component")
        .and_then(Json::as_str)
        .ok_or("the pipeline's manifest names no component")?
        .to_string();
    let inputs = definition
        .get("inputs")
        .and_then(Json::as_array)
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    (
                        p.get("name")
                            .and_then(Json::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        p.get("type")
                            .and_then(Json::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Manifest { component, inputs })
}

/// The manifest type a value is of.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Integer(_) => "integer",
        Value::Float(_) => "float",
        Value::Boolean(_) => "boolean",
        Value::Dictionary(_) => "dictionary",
        Value::Array(_) => "array",
        Value::File(_) => "file",
    }
}

/// Pairs the arguments with the manifest's inputs, converting where the manifest is more
/// precise (an integer `1` for a boolean input, an integer for a float). Err is an
/// `input_error` message.
fn bind_inputs(
    manifest: &Manifest,
    arguments: Vec<RunArgument>,
) -> Result<Vec<(String, InputValue)>, String> {
    if arguments.len() != manifest.inputs.len() {
        return Err(format!(
            "the pipeline takes {} input(s) ({}), not {}",
            manifest.inputs.len(),
            manifest
                .inputs
                .iter()
                .map(|(n, t)| format!("{n}: {t}"))
                .collect::<Vec<_>>()
                .join(", "),
            arguments.len()
        ));
    }
    let mut bound = Vec::with_capacity(arguments.len());
    for ((name, expected), argument) in manifest.inputs.iter().zip(arguments) {
        let input = match (expected.as_str(), argument) {
            ("file", RunArgument::File { file_name, digest }) => {
                InputValue::StoredFile { file_name, digest }
            }
            (_, RunArgument::File { .. }) => {
                return Err(format!("input `{name}` is a {expected}, not a file"))
            }
            ("boolean", RunArgument::Value(Value::Integer(i))) if i == 0 || i == 1 => {
                InputValue::Value(Value::Boolean(i == 1))
            }
            ("float", RunArgument::Value(Value::Integer(i))) => {
                InputValue::Value(Value::Float(i as f64))
            }
            (_, RunArgument::Value(value)) if kind_of(&value) == expected => {
                InputValue::Value(value)
            }
            (_, RunArgument::Value(value)) => {
                return Err(format!(
                    "input `{name}` is a {expected}, not a {}",
                    kind_of(&value)
                ))
            }
        };
        bound.push((name.clone(), input));
    }
    Ok(bound)
}

/// Mystic's error kind for a failed run.
fn error_of(failure: &RunFailure) -> RunErrorRecord {
    let kind = match failure {
        RunFailure::Pipeline(_) => "pipeline_error",
        RunFailure::Plugin(PluginError::Timeout { .. }) => "timeout",
        RunFailure::Plugin(PluginError::MemoryLimit { .. }) => "oom",
        RunFailure::Plugin(
            PluginError::Load { .. }
            | PluginError::NoKnownWorld { .. }
            | PluginError::Runnable { .. }
            | PluginError::TypeTaken { .. },
        ) => "pipeline_loading",
        RunFailure::Plugin(PluginError::Instantiate { .. }) => "startup_error",
        RunFailure::Plugin(PluginError::Trap { .. }) => "pipeline_error",
        RunFailure::Invalid(_) => "input_error",
        RunFailure::Internal(_) => "unknown",
    };
    RunErrorRecord {
        kind: kind.into(),
        message: failure.to_string(),
    }
}

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

impl Registry {
    /// The same registry with other run limits.
    pub fn with_run_limits(mut self, limits: RunLimits) -> Self {
        self.run_timeout = limits.timeout;
        self.idle_timeout = limits.idle_timeout;
        self.run_capacity = Arc::new(RunCapacity::new(limits.max_total, limits.max_per_pipeline));
        self
    }

    /// Accepts a run: recorded at once; executed now, or in the background when asked.
    pub async fn submit_run(
        &self,
        caller: &Caller,
        submission: RunSubmission,
    ) -> Result<RunRecord, RegistryError> {
        let version = self
            .resolve(
                &submission.namespace,
                &submission.name,
                submission.version.as_deref(),
            )
            .await?;
        let mut conn = self.store.pool().acquire().await?;
        let pipeline = self
            .find_pipeline(&mut conn, &submission.namespace, &submission.name)
            .await?;
        // Running takes the owner's capacity and sees its files: the owning account's only.
        self.require_owner(&mut conn, caller, &pipeline).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = store::now_millis();
        let lease = self.registration.lease.as_millis() as i64;
        rows::insert_run(
            &mut conn,
            &rows::NewRun {
                id: &id,
                pipeline_id: &pipeline.id,
                version: &version.version,
                submitted_by: &caller.user_id,
                account_id: &caller.account_id,
                state: "created",
                inputs: &submission.inputs_as_sent.to_string(),
                lease_until: now + lease,
                now,
            },
        )
        .await?;
        drop(conn);

        let refused = submission.refused_input.clone();
        let prepared = manifest(&version).and_then(|m| {
            if let Some(message) = refused {
                return Err(message);
            }
            let inputs = bind_inputs(&m, submission.inputs.clone())?;
            Ok((m, inputs))
        });
        let (manifest, inputs) = match prepared {
            Ok(prepared) => prepared,
            Err(message) => {
                let error = RunErrorRecord {
                    kind: "input_error".into(),
                    message,
                };
                self.finish_run(&id, Err(error)).await?;
                return self.run_record(caller, &id).await;
            }
        };
        let permits = match self.run_capacity.try_take(&pipeline.id) {
            Some(permits) => permits,
            None if submission.wait_for_resources => self.run_capacity.take(&pipeline.id).await,
            None => {
                let mut conn = self.store.pool().acquire().await?;
                rows::set_state(
                    &mut conn,
                    &id,
                    "no_resources_available",
                    None,
                    None,
                    None,
                    store::now_millis(),
                )
                .await?;
                return self.run_record(caller, &id).await;
            }
        };
        let execution = {
            let (registry, id) = (self.clone(), id.clone());
            async move {
                let outcome = registry.execute_run(&id, &version, &manifest, inputs).await;
                drop(permits);
                if let Err(error) = registry.finish_run(&id, outcome).await {
                    tracing::error!(run = %id, error = %error, "could not record a run's outcome; the sweep will fail it");
                }
            }
        };
        if submission.background {
            tokio::spawn(execution);
        } else {
            // Run on a task of its own so a client that hangs up does not cancel it midway.
            let _ = tokio::spawn(execution).await;
        }
        self.run_record(caller, &id).await
    }

    async fn execute_run(
        &self,
        id: &str,
        version: &VersionInfo,
        manifest: &Manifest,
        inputs: Vec<(String, InputValue)>,
    ) -> Result<Vec<RunOutput>, RunErrorRecord> {
        let internal = |e: &dyn std::fmt::Display| RunErrorRecord {
            kind: "unknown".into(),
            message: e.to_string(),
        };
        let lease = self.registration.lease;
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(|e| internal(&e))?;
        let until = store::now_millis() + lease.as_millis() as i64;
        rows::set_state(
            &mut conn,
            id,
            "running",
            None,
            None,
            Some(until),
            store::now_millis(),
        )
        .await
        .map_err(|e| internal(&e))?;
        drop(conn);
        let renewing = super::keep_lease(
            self.store.clone(),
            crate::store::leases::Leased::Runs,
            id,
            lease,
        );
        let outcome = self
            .runs
            .run(
                &self.plugins,
                &self.blobs,
                version,
                &manifest.component,
                inputs,
                self.run_timeout,
            )
            .await;
        renewing.abort();
        outcome
            .map(|outputs| {
                outputs
                    .into_iter()
                    .map(|(name, value)| output_of(name, value))
                    .collect()
            })
            .map_err(|failure| error_of(&failure))
    }

    async fn finish_run(
        &self,
        id: &str,
        outcome: Result<Vec<RunOutput>, RunErrorRecord>,
    ) -> Result<(), RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let now = store::now_millis();
        match outcome {
            Ok(outputs) => {
                let outputs = serde_json::to_string(&outputs).expect("outputs serialize");
                rows::set_state(&mut conn, id, "completed", Some(&outputs), None, None, now).await?
            }
            Err(error) => {
                let error = serde_json::to_string(&error).expect("an error serializes");
                rows::set_state(&mut conn, id, "failed", None, Some(&error), None, now).await?
            }
        }
        Ok(())
    }

    /// A run the caller's account submitted.
    pub async fn run_record(&self, caller: &Caller, id: &str) -> Result<RunRecord, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let row = rows::run(&mut conn, id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("run {id}")))?;
        if !super::acts_for(self, &mut conn, caller, &row.account_id).await? {
            return Err(RegistryError::NotFound(format!("run {id}")));
        }
        Ok(RunRecord {
            id: row.id,
            pipeline: row.pipeline,
            version: row.version,
            state: row.state,
            inputs: serde_json::from_str(&row.inputs).unwrap_or(Json::Null),
            outputs: row
                .outputs
                .and_then(|o| serde_json::from_str(&o).ok())
                .unwrap_or_default(),
            error: row.error.and_then(|e| serde_json::from_str(&e).ok()),
            created_at_ms: row.created_at,
            updated_at_ms: row.updated_at,
        })
    }

    /// Fails the runs whose server stopped running them. Any server may call it.
    pub async fn fail_abandoned_runs(&self) -> Result<u64, RegistryError> {
        let error = RunErrorRecord {
            kind: "unknown".into(),
            message: "the server stopped while the run was in progress".into(),
        };
        let mut conn = self.store.pool().acquire().await?;
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
