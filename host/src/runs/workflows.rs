//! Workflows: a set of tasks (registered versions) wired output port → input port, run in
//! dependency order through the run engine ([`super::engine`]).
//!
//! At submission every task is resolved ([`crate::registry::resolve`]) and pinned to one ready version
//! (the latest when none is named), the wiring is checked (known tasks and ports, no cycle),
//! and the workflow is recorded `pending`. It then runs on the server that accepted it, which
//! renews a lease meanwhile; a workflow whose lease lapsed (that server died) is failed by any
//! server's sweep, so none stays `running` forever. A task whose content is not a runnable
//! component (a `DOCKER` task) fails the workflow with a message saying so.
//!
//! Every change of a task's state is recorded with an event ([`TaskEvent`]: submitted,
//! scheduled, started, then how it ended), in the same transaction, and what each task wrote on
//! stdout and stderr is kept with it ([`super::engine::RunLogs`]).
//!
//! A cancel may come to any server. It moves the workflow and its unfinished tasks to
//! `cancelled` in one transaction, and only from states they have not left: the server running
//! the workflow moves a task only from the state it left it in, so of a cancel and a task's end
//! whichever commits first wins, and the other writes nothing. The running server learns of the
//! cancel at once when it took the cancel itself, otherwise within [`CANCEL_POLL`], and stops
//! the task's execution (keeping what it wrote).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::plugins::PluginError;
use crate::registry::{Caller, Refusal, RegistryError, VersionInfo};
use crate::store::{self, workflows as rows};

use super::engine::{value_as_text, Execution, InputValue, RunFailure, RunsOn};
use super::{Runs, Value};

/// How often the server running a workflow looks in the store for a cancel taken by another
/// server (one it took itself stops the workflow at once).
pub const CANCEL_POLL: Duration = Duration::from_secs(1);

/// The file of a version that a workflow runs.
pub const COMPONENT_FILE: &str = "component.wasm";

/// What to run, as a surface parsed it.
#[derive(Clone, Debug)]
pub struct WorkflowSpec {
    pub name: Option<String>,
    pub tasks: Vec<TaskSpec>,
}

#[derive(Clone, Debug)]
pub struct TaskSpec {
    /// The task's name within the workflow.
    pub name: String,
    /// The registered name, and a version when pinned by the caller.
    pub task: String,
    pub version: Option<String>,
    pub inputs: Vec<PortInput>,
}

/// Where an input port's value comes from.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PortInput {
    Value {
        name: String,
        value: String,
    },
    /// `source` is `task:port`, an output of another task of the workflow.
    Source {
        name: String,
        source: String,
    },
}

impl PortInput {
    fn name(&self) -> &str {
        match self {
            PortInput::Value { name, .. } | PortInput::Source { name, .. } => name,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PortValue {
    pub name: String,
    pub value: String,
}

/// Where a workflow, or one of its tasks, is. A workflow is never `skipped`; a task is, when
/// one before it failed. A workflow `timed_out` when the task that ended it did. Spelled once,
/// for the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Skipped,
}

impl StepState {
    const ALL: [StepState; 7] = [
        StepState::Pending,
        StepState::Running,
        StepState::Succeeded,
        StepState::Failed,
        StepState::TimedOut,
        StepState::Cancelled,
        StepState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::TimedOut => "timed_out",
            StepState::Cancelled => "cancelled",
            StepState::Skipped => "skipped",
        }
    }

    /// Ended: it will not change again.
    pub fn is_complete(self) -> bool {
        !matches!(self, StepState::Pending | StepState::Running)
    }

    /// A state this server does not know (written by a newer one) reads as failed.
    fn read(text: &str) -> StepState {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .unwrap_or(StepState::Failed)
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkflowInfo {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub state: StepState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub submitted_by: String,
    pub created_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<i64>,
    pub tasks: Vec<WorkflowTaskInfo>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkflowTaskInfo {
    /// The task's own id within its workflow (the key of its output streams).
    pub id: String,
    pub name: String,
    pub task: String,
    /// The version pinned at submission.
    pub version: String,
    pub state: StepState,
    pub inputs: Vec<PortInput>,
    pub outputs: Vec<PortValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<i64>,
}

/// What happened to a task, in the order it happened: `submitted` with its workflow,
/// `scheduled` when it is next to run (it may then wait for capacity), `started` when its
/// component runs, then one of the ends. A task is `skipped` when one before it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskEvent {
    Submitted,
    Scheduled,
    Started,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Skipped,
}

impl TaskEvent {
    const ALL: [TaskEvent; 8] = [
        TaskEvent::Submitted,
        TaskEvent::Scheduled,
        TaskEvent::Started,
        TaskEvent::Succeeded,
        TaskEvent::Failed,
        TaskEvent::TimedOut,
        TaskEvent::Cancelled,
        TaskEvent::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskEvent::Submitted => "submitted",
            TaskEvent::Scheduled => "scheduled",
            TaskEvent::Started => "started",
            TaskEvent::Succeeded => "succeeded",
            TaskEvent::Failed => "failed",
            TaskEvent::TimedOut => "timed_out",
            TaskEvent::Cancelled => "cancelled",
            TaskEvent::Skipped => "skipped",
        }
    }

    /// An event this server does not know (written by a newer one) reads as failed.
    fn read(text: &str) -> TaskEvent {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == text)
            .unwrap_or(TaskEvent::Failed)
    }

    /// The event that records a task's move to `state`.
    fn entering(state: StepState) -> TaskEvent {
        match state {
            StepState::Pending => TaskEvent::Scheduled,
            StepState::Running => TaskEvent::Started,
            StepState::Succeeded => TaskEvent::Succeeded,
            StepState::Failed => TaskEvent::Failed,
            StepState::TimedOut => TaskEvent::TimedOut,
            StepState::Cancelled => TaskEvent::Cancelled,
            StepState::Skipped => TaskEvent::Skipped,
        }
    }
}

/// One event of a workflow's task.
#[derive(Clone, Debug)]
pub struct WorkflowEvent {
    pub task_id: String,
    pub task_name: String,
    pub event: TaskEvent,
    pub note: Option<String>,
    pub at_ms: i64,
}

/// What a task wrote on stdout and stderr (each cut at
/// [`OUTPUT_CAPTURE_BYTES`](super::OUTPUT_CAPTURE_BYTES)); None for a task that never ran.
#[derive(Clone, Debug, Default)]
pub struct TaskOutput {
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

/// A workflow as a listing shows it: no tasks.
#[derive(Clone, Debug)]
pub struct WorkflowSummary {
    pub id: String,
    pub name: Option<String>,
    pub state: StepState,
    pub submitted_by: String,
    pub created_at_ms: i64,
}

/// Which of its account's workflows a caller lists: submitted at or after `since_ms`, by the
/// user named `owner`; each when given.
#[derive(Clone, Debug, Default)]
pub struct WorkflowQuery {
    pub since_ms: Option<i64>,
    pub owner: Option<String>,
}

/// How a workflow's run ended, as its runner saw it.
enum WorkflowEnd {
    Succeeded,
    Failed(String),
    TimedOut(String),
    /// A cancel, which wrote the workflow's and its tasks' states itself.
    Cancelled,
}

/// How one task ended.
enum TaskEnd {
    Succeeded(Vec<PortValue>),
    Failed(String),
    TimedOut(String),
    Cancelled,
}

/// The cancels this server took of the workflows it runs, one channel per workflow at work: a
/// cancel taken here stops the workflow without waiting for [`CANCEL_POLL`].
#[derive(Default)]
pub(super) struct CancelSignals(Mutex<HashMap<String, watch::Sender<bool>>>);

impl CancelSignals {
    fn watch(&self, id: &str) -> watch::Receiver<bool> {
        let (sender, receiver) = watch::channel(false);
        self.0.lock().unwrap().insert(id.to_string(), sender);
        receiver
    }

    fn tell(&self, id: &str) {
        if let Some(sender) = self.0.lock().unwrap().get(id) {
            sender.send_replace(true);
        }
    }

    fn forget(&self, id: &str) {
        self.0.lock().unwrap().remove(id);
    }
}

fn invalid(message: String) -> RegistryError {
    RegistryError::invalid(crate::registry::Finding::new(
        "invalid-workflow",
        "tasks",
        message,
    ))
}

/// The tasks in an order where every source runs before the tasks it feeds (declaration order
/// otherwise), or why there is none.
fn run_order(tasks: &[TaskSpec]) -> Result<Vec<usize>, RegistryError> {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    if index.len() != tasks.len() {
        return Err(invalid(
            "every task of a workflow needs its own name".into(),
        ));
    }
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (i, task) in tasks.iter().enumerate() {
        for input in &task.inputs {
            if let PortInput::Source { source, name } = input {
                let (from, _port) = source.split_once(':').ok_or_else(|| {
                    invalid(format!(
                        "input `{name}` of task `{}`: source `{source}` is not `task:port`",
                        task.name
                    ))
                })?;
                let &j = index.get(from).ok_or_else(|| {
                    invalid(format!(
                        "input `{name}` of task `{}` comes from unknown task `{from}`",
                        task.name
                    ))
                })?;
                needs[i].push(j);
            }
        }
    }
    let mut order = Vec::with_capacity(tasks.len());
    let mut placed = vec![false; tasks.len()];
    while order.len() < tasks.len() {
        let next = (0..tasks.len())
            .find(|&i| !placed[i] && needs[i].iter().all(|&j| placed[j]))
            .ok_or_else(|| invalid("the tasks' wiring has a cycle".into()))?;
        placed[next] = true;
        order.push(next);
    }
    Ok(order)
}

impl Runs {
    /// Resolves, pins and records a workflow of tasks in `namespace`, then starts running it.
    pub async fn submit_workflow(
        &self,
        caller: &Caller,
        namespace: &str,
        spec: WorkflowSpec,
    ) -> Result<WorkflowInfo, RegistryError> {
        if spec.tasks.is_empty() {
            return Err(invalid("a workflow needs at least one task".into()));
        }
        // Every task resolves before the wiring is looked at: a task that does not exist (or
        // is not ready) is the answer whatever else is wrong.
        let mut resolved = Vec::with_capacity(spec.tasks.len());
        for task in &spec.tasks {
            let version = self
                .registry
                .resolve(namespace, &task.task, task.version.as_deref())
                .await?;
            resolved.push(Some(version));
        }
        let order = run_order(&spec.tasks)?;
        let pinned: Vec<_> = order
            .iter()
            .map(|&i| (&spec.tasks[i], resolved[i].take().expect("each task once")))
            .collect();
        // Ports: a source must name an output the source task declares, when it declares any.
        let outputs_of: HashMap<&str, Vec<String>> = pinned
            .iter()
            .map(|(task, version)| {
                (
                    task.name.as_str(),
                    declared_ports(&version.definition, "outputPortDescriptors"),
                )
            })
            .collect();
        for (task, _) in &pinned {
            for input in &task.inputs {
                if let PortInput::Source { source, .. } = input {
                    let (from, port) = source.split_once(':').unwrap_or_default();
                    let declared = &outputs_of[from];
                    if !declared.is_empty()
                        && !declared.iter().any(|p| p.eq_ignore_ascii_case(port))
                    {
                        return Err(invalid(format!(
                            "task `{from}` has no output port `{port}` (it has {})",
                            declared.join(", ")
                        )));
                    }
                }
            }
        }

        let id = uuid::Uuid::new_v4().to_string();
        let now = store::now_millis();
        let mut tx = self.store().begin().await?;
        rows::insert_workflow(
            &mut tx,
            &rows::NewWorkflow {
                id: &id,
                name: spec.name.as_deref(),
                submitted_by: &caller.user_id,
                account_id: &caller.account_id,
                lease_until: self.lease_until(now),
                now,
            },
        )
        .await?;
        for (position, (task, version)) in pinned.iter().enumerate() {
            let inputs = serde_json::to_string(&task.inputs).expect("inputs serialize");
            let task_id = uuid::Uuid::now_v7().to_string();
            rows::insert_task(
                &mut tx,
                &rows::NewTask {
                    workflow_id: &id,
                    id: &task_id,
                    position: position as i64,
                    name: &task.name,
                    task_name: &version.name,
                    task_version: &version.version,
                    inputs: &inputs,
                },
            )
            .await?;
            record_event(
                &mut tx,
                &id,
                position as i64,
                TaskEvent::Submitted,
                None,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(workflow = %id, tasks = pinned.len(), by = %caller.user, "workflow submitted");

        let (runs, workflow_id, namespace) = (self.clone(), id.clone(), namespace.to_string());
        tokio::spawn(async move {
            if let Err(error) = runs.execute_workflow(&workflow_id, &namespace).await {
                tracing::error!(workflow = %workflow_id, error = format!("{error:#}"), "workflow could not be run; its lease will lapse and it will be failed");
            }
        });
        self.workflow(caller, &id).await
    }

    /// The workflow `id`, when the caller acts for the account that submitted it.
    async fn owned_workflow(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        id: &str,
    ) -> Result<rows::WorkflowRow, RegistryError> {
        let row = rows::workflow(conn, id)
            .await?
            .ok_or_else(|| Refusal::WorkflowNotFound { id: id.to_string() })?;
        if !self
            .registry
            .acts_for(conn, caller, &row.account_id)
            .await?
        {
            return Err(Refusal::WorkflowOfAnotherAccount { id: id.to_string() }.into());
        }
        Ok(row)
    }

    /// A workflow the caller's account submitted.
    pub async fn workflow(&self, caller: &Caller, id: &str) -> Result<WorkflowInfo, RegistryError> {
        let mut conn = self.store().pool().acquire().await?;
        let row = self.owned_workflow(&mut conn, caller, id).await?;
        let tasks = rows::tasks(&mut conn, id).await?;
        Ok(WorkflowInfo {
            id: row.id,
            name: row.name,
            state: StepState::read(&row.state),
            error: row.error,
            submitted_by: row.submitted_by,
            created_at_ms: row.created_at,
            finished_at_ms: row.finished_at,
            tasks: tasks
                .into_iter()
                .map(|t| WorkflowTaskInfo {
                    id: t.id,
                    name: t.name,
                    task: t.task_name,
                    version: t.task_version,
                    state: StepState::read(&t.state),
                    inputs: serde_json::from_str(&t.inputs).unwrap_or_default(),
                    outputs: t
                        .outputs
                        .and_then(|o| serde_json::from_str(&o).ok())
                        .unwrap_or_default(),
                    error: t.error,
                    started_at_ms: t.started_at,
                    finished_at_ms: t.finished_at,
                })
                .collect(),
        })
    }

    /// The events of a workflow the caller's account submitted, in the order they happened.
    pub async fn workflow_events(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Vec<WorkflowEvent>, RegistryError> {
        let mut conn = self.store().pool().acquire().await?;
        self.owned_workflow(&mut conn, caller, id).await?;
        Ok(rows::events(&mut conn, id)
            .await?
            .into_iter()
            .map(|e| WorkflowEvent {
                task_id: e.task_id,
                task_name: e.task_name,
                event: TaskEvent::read(&e.event),
                note: e.note,
                at_ms: e.at,
            })
            .collect())
    }

    /// What task `task_id` of a workflow the caller's account submitted wrote.
    pub async fn task_output(
        &self,
        caller: &Caller,
        id: &str,
        task_id: &str,
    ) -> Result<TaskOutput, RegistryError> {
        let mut conn = self.store().pool().acquire().await?;
        self.owned_workflow(&mut conn, caller, id).await?;
        let row = rows::task_output(&mut conn, id, task_id)
            .await?
            .ok_or_else(|| Refusal::WorkflowTaskNotFound {
                workflow: id.to_string(),
                task: task_id.to_string(),
            })?;
        Ok(TaskOutput {
            stdout: row.stdout,
            stderr: row.stderr,
        })
    }

    /// The workflows of the caller's account that `query` selects, newest first.
    pub async fn workflows(
        &self,
        caller: &Caller,
        query: &WorkflowQuery,
    ) -> Result<Vec<WorkflowSummary>, RegistryError> {
        let mut conn = self.store().pool().acquire().await?;
        let rows = rows::workflows_of_account(
            &mut conn,
            &caller.account_id,
            query.since_ms,
            query.owner.as_deref(),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| WorkflowSummary {
                id: row.id,
                name: row.name,
                state: StepState::read(&row.state),
                submitted_by: row.submitted_by,
                created_at_ms: row.created_at,
            })
            .collect())
    }

    /// Cancels a pending or running workflow the caller's account submitted: it and its
    /// unfinished tasks end `cancelled` (each task with its event), and a running task's
    /// execution is stopped. A complete workflow is refused, and nothing changes.
    pub async fn cancel_workflow(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<WorkflowInfo, RegistryError> {
        let now = store::now_millis();
        let note = format!("canceled by {}", caller.user);
        let mut tx = self.store().begin().await?;
        self.owned_workflow(&mut tx, caller, id).await?;
        let unfinished = [StepState::Pending.as_str(), StepState::Running.as_str()];
        let cancelled = StepState::Cancelled.as_str();
        if !rows::move_workflow(
            &mut tx,
            id,
            &unfinished,
            cancelled,
            Some(&note),
            None,
            Some(now),
        )
        .await?
        {
            return Err(Refusal::WorkflowComplete { id: id.to_string() }.into());
        }
        for task in rows::tasks(&mut tx, id).await? {
            let change = TaskChange {
                from: &[StepState::Pending, StepState::Running],
                to: StepState::Cancelled,
                outputs: None,
                note: Some(&note),
            };
            change.apply(&mut tx, id, task.position, now).await?;
        }
        tx.commit().await?;
        self.cancels.tell(id);
        tracing::info!(workflow = %id, by = %caller.user, "workflow cancelled");
        self.workflow(caller, id).await
    }

    /// Runs the tasks in order, recording each one's state and outputs, then the workflow's end.
    async fn execute_workflow(&self, id: &str, namespace: &str) -> anyhow::Result<()> {
        let signal = self.cancels.watch(id);
        let renewing = self.keep_lease(store::leases::Leased::Workflows, id);
        let end = self.run_tasks(id, namespace, signal).await;
        renewing.abort();
        self.cancels.forget(id);
        let (state, error) = match end? {
            WorkflowEnd::Succeeded => (StepState::Succeeded, None),
            WorkflowEnd::Failed(error) => (StepState::Failed, Some(error)),
            WorkflowEnd::TimedOut(error) => (StepState::TimedOut, Some(error)),
            WorkflowEnd::Cancelled => {
                tracing::info!(workflow = %id, "workflow stopped: it was cancelled");
                return Ok(());
            }
        };
        let mut conn = self.store().pool().acquire().await?;
        let ended = rows::move_workflow(
            &mut conn,
            id,
            &[StepState::Running.as_str()],
            state.as_str(),
            error.as_deref(),
            None,
            Some(store::now_millis()),
        )
        .await?;
        tracing::info!(workflow = %id, state = state.as_str(), ?error, cancelled_meanwhile = !ended, "workflow finished");
        Ok(())
    }

    /// Runs the tasks in order; a task after a failed one is skipped. Stops at a cancel.
    async fn run_tasks(
        &self,
        id: &str,
        namespace: &str,
        signal: watch::Receiver<bool>,
    ) -> anyhow::Result<WorkflowEnd> {
        let mut conn = self.store().pool().acquire().await?;
        let tasks = rows::tasks(&mut conn, id).await?;
        let lease_until = self.lease_until(store::now_millis());
        let pending = [StepState::Pending.as_str()];
        let running = StepState::Running.as_str();
        if !rows::move_workflow(
            &mut conn,
            id,
            &pending,
            running,
            None,
            Some(lease_until),
            None,
        )
        .await?
        {
            return Ok(WorkflowEnd::Cancelled);
        }
        drop(conn);
        let mut outputs: HashMap<String, HashMap<String, String>> = HashMap::new();
        let mut failure: Option<WorkflowEnd> = None;
        for task in &tasks {
            if let Some(WorkflowEnd::Failed(reason) | WorkflowEnd::TimedOut(reason)) = &failure {
                let note = format!("not run: {reason}");
                let change = TaskChange {
                    from: &[StepState::Pending],
                    to: StepState::Skipped,
                    outputs: None,
                    note: Some(&note),
                };
                self.change_task(id, task.position, change).await?;
                continue;
            }
            match self
                .run_task(id, namespace, task, &outputs, &signal)
                .await?
            {
                TaskEnd::Succeeded(produced) => {
                    outputs.insert(
                        task.name.clone(),
                        produced
                            .into_iter()
                            .map(|p| (p.name.to_lowercase(), p.value))
                            .collect(),
                    );
                }
                TaskEnd::Failed(error) => {
                    failure = Some(WorkflowEnd::Failed(format!(
                        "task `{}` failed: {error}",
                        task.name
                    )))
                }
                TaskEnd::TimedOut(error) => {
                    failure = Some(WorkflowEnd::TimedOut(format!(
                        "task `{}` timed out: {error}",
                        task.name
                    )))
                }
                TaskEnd::Cancelled => return Ok(WorkflowEnd::Cancelled),
            }
        }
        Ok(failure.unwrap_or(WorkflowEnd::Succeeded))
    }

    /// One task: scheduled, waits for capacity, started, executed (stopped by a cancel), ended.
    async fn run_task(
        &self,
        id: &str,
        namespace: &str,
        task: &rows::TaskRow,
        outputs: &HashMap<String, HashMap<String, String>>,
        signal: &watch::Receiver<bool>,
    ) -> anyhow::Result<TaskEnd> {
        let position = task.position;
        let pending = &[StepState::Pending][..];
        let scheduled = TaskChange {
            from: pending,
            to: StepState::Pending,
            outputs: None,
            note: None,
        };
        if !self.change_task(id, position, scheduled).await? {
            return Ok(TaskEnd::Cancelled);
        }
        let prepared = self.prepare_task(namespace, task, outputs).await;
        let (pipeline_id, version, inputs) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => return self.end_unstarted(id, position, error).await,
        };
        // A task's run takes capacity as a `/v4` run does, waiting for it: the workflow is
        // already accepted, and its tasks run one after another.
        let permits = tokio::select! {
            permits = self.capacity.take(&pipeline_id) => permits,
            () = self.until_cancelled(id, signal.clone()) => return Ok(TaskEnd::Cancelled),
        };
        let permits = match permits {
            Ok(permits) => permits,
            Err(error) => return self.end_unstarted(id, position, error.to_string()).await,
        };
        let started = TaskChange {
            from: pending,
            to: StepState::Running,
            outputs: None,
            note: None,
        };
        if !self.change_task(id, position, started).await? {
            return Ok(TaskEnd::Cancelled);
        }
        let executed = self
            .engine
            .run(Execution {
                version: &version,
                runs_on: RunsOn::Component(COMPONENT_FILE),
                inputs,
                // A task's ports are strings, but its outputs may name files it wrote.
                file_outputs: true,
                timeout: self.limits.timeout,
                stop: Some(Box::pin(self.until_cancelled(id, signal.clone()))),
            })
            .await;
        drop(permits);
        let (end, to, note) = match executed.outcome {
            Ok(produced) => {
                let produced: Vec<PortValue> = produced
                    .iter()
                    .map(|(name, value)| PortValue {
                        name: name.clone(),
                        value: value_as_text(value),
                    })
                    .collect();
                (TaskEnd::Succeeded(produced), StepState::Succeeded, None)
            }
            Err(RunFailure::Stopped) => (TaskEnd::Cancelled, StepState::Cancelled, None),
            Err(failure @ RunFailure::Plugin(PluginError::Timeout { .. })) => {
                let error = failure.to_string();
                (
                    TaskEnd::TimedOut(error.clone()),
                    StepState::TimedOut,
                    Some(error),
                )
            }
            Err(failure) => {
                let error = failure.to_string();
                (
                    TaskEnd::Failed(error.clone()),
                    StepState::Failed,
                    Some(error),
                )
            }
        };
        let outputs_json = match &end {
            TaskEnd::Succeeded(produced) => {
                Some(serde_json::to_string(produced).expect("outputs serialize"))
            }
            _ => None,
        };
        // What it wrote is kept however it ended, with its end (which a cancel may have
        // written already: then this one moves nothing).
        let mut tx = self.store().begin().await?;
        let logs = &executed.logs;
        rows::set_task_output(&mut tx, id, position, &logs.stdout, &logs.stderr).await?;
        let ended = TaskChange {
            from: &[StepState::Running],
            to,
            outputs: outputs_json.as_deref(),
            note: note.as_deref(),
        };
        let moved = ended
            .apply(&mut tx, id, position, store::now_millis())
            .await?;
        tx.commit().await?;
        Ok(if moved { end } else { TaskEnd::Cancelled })
    }

    /// A task that fails before its component runs (no such version, not a component, an
    /// input from nowhere, no capacity).
    async fn end_unstarted(
        &self,
        id: &str,
        position: i64,
        error: String,
    ) -> anyhow::Result<TaskEnd> {
        let failed = TaskChange {
            from: &[StepState::Pending],
            to: StepState::Failed,
            outputs: None,
            note: Some(&error),
        };
        Ok(if self.change_task(id, position, failed).await? {
            TaskEnd::Failed(error)
        } else {
            TaskEnd::Cancelled
        })
    }

    /// The task's pipeline and pinned version, and its inputs (values, or outputs of the tasks
    /// before it).
    async fn prepare_task(
        &self,
        namespace: &str,
        task: &rows::TaskRow,
        outputs: &HashMap<String, HashMap<String, String>>,
    ) -> Result<(String, VersionInfo, Vec<(String, InputValue)>), String> {
        let (pipeline_id, version) = self
            .registry
            .pinned_version(namespace, &task.task_name, &task.task_version)
            .await
            .map_err(|e| e.to_string())?;
        if !version.files.iter().any(|f| f.path == COMPONENT_FILE) {
            return Err(format!(
                "{}:{} is not a runnable component (a DOCKER task?); this server cannot run container images",
                version.name, version.version
            ));
        }
        let wired: Vec<PortInput> =
            serde_json::from_str(&task.inputs).map_err(|e| e.to_string())?;
        let mut inputs = Vec::with_capacity(wired.len());
        for input in wired {
            let value = match &input {
                PortInput::Value { value, .. } => value.clone(),
                PortInput::Source { source, .. } => {
                    let (from, port) = source.split_once(':').unwrap_or_default();
                    outputs
                        .get(from)
                        .and_then(|ports| ports.get(&port.to_lowercase()))
                        .cloned()
                        .ok_or_else(|| format!("task `{from}` gave no output `{port}`"))?
                }
            };
            inputs.push((
                input.name().to_string(),
                InputValue::Value(Value::String(value)),
            ));
        }
        Ok((pipeline_id, version, inputs))
    }

    /// Applies `change` to task `position` of workflow `id` in a transaction of its own.
    async fn change_task(
        &self,
        id: &str,
        position: i64,
        change: TaskChange<'_>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.store().begin().await?;
        let moved = change
            .apply(&mut tx, id, position, store::now_millis())
            .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Resolves once workflow `id` is cancelled: told by `signal` (a cancel this server took),
    /// or seen in the store (one another server took), looked for every [`CANCEL_POLL`].
    fn until_cancelled(
        &self,
        id: &str,
        mut signal: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (store, id) = (self.store().clone(), id.to_string());
        async move {
            let told = async move {
                // The sender lives while the workflow runs; without it, nothing will tell.
                if signal.wait_for(|cancelled| *cancelled).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let seen = async move {
                loop {
                    tokio::time::sleep(CANCEL_POLL).await;
                    let Ok(mut conn) = store.pool().acquire().await else {
                        continue;
                    };
                    let state = rows::workflow_state(&mut conn, &id).await;
                    if matches!(state, Ok(Some(state)) if state == StepState::Cancelled.as_str()) {
                        return;
                    }
                }
            };
            tokio::select! {
                () = told => {}
                () = seen => {}
            }
        }
    }

    /// Fails the workflows whose server stopped running them. Any server may call it.
    pub async fn fail_abandoned_workflows(&self) -> Result<u64, RegistryError> {
        let mut tx = self.store().begin().await?;
        let failed = rows::fail_abandoned(&mut tx, store::now_millis()).await?;
        tx.commit().await?;
        if failed > 0 {
            tracing::warn!(failed, "workflows interrupted by a server stop were failed");
        }
        Ok(failed)
    }
}

/// A task's move from one of `from` to `to`, with the event that records it (see
/// [`TaskEvent::entering`]; `Pending` to `Pending` is its scheduling). `note` is the event's
/// note and the task's error.
struct TaskChange<'a> {
    from: &'a [StepState],
    to: StepState,
    outputs: Option<&'a str>,
    note: Option<&'a str>,
}

impl TaskChange<'_> {
    /// Moves the task and records the event; false (and nothing written) when the task had left
    /// `from` already.
    async fn apply(
        &self,
        conn: &mut AnyConnection,
        workflow_id: &str,
        position: i64,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let from: Vec<&str> = self.from.iter().map(|s| s.as_str()).collect();
        let moved = rows::move_task(
            conn,
            &rows::TaskMove {
                workflow_id,
                position,
                from: &from,
                to: self.to.as_str(),
                outputs: self.outputs,
                error: self.note,
                now,
            },
        )
        .await?;
        if moved {
            let event = TaskEvent::entering(self.to);
            record_event(conn, workflow_id, position, event, self.note, now).await?;
        }
        Ok(moved)
    }
}

async fn record_event(
    conn: &mut AnyConnection,
    workflow_id: &str,
    task_position: i64,
    event: TaskEvent,
    note: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    rows::insert_event(
        conn,
        &rows::NewEvent {
            workflow_id,
            task_position,
            event: event.as_str(),
            note,
            at,
        },
    )
    .await
}

/// The port names a task definition declares under `field`.
fn declared_ports(definition: &serde_json::Value, field: &str) -> Vec<String> {
    definition
        .get(field)
        .and_then(serde_json::Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("name").and_then(serde_json::Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::StepState;

    #[test]
    fn step_states_read_back_as_written_and_unknown_ones_as_failed() {
        for state in StepState::ALL {
            assert_eq!(StepState::read(state.as_str()), state);
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::json!(state.as_str())
            );
        }
        assert_eq!(StepState::read("paused"), StepState::Failed);
    }
}
