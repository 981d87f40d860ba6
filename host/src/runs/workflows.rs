//! Workflows: a set of tasks (registered versions) wired output port → input port, run in
//! dependency order through the run engine ([`super::engine`]).
//!
//! At submission every task is resolved ([`crate::registry::resolve`]) and pinned to one ready version
//! (the latest when none is named), the wiring is checked (known tasks and ports, no cycle),
//! and the workflow is recorded `pending`. It then runs on the server that accepted it, which
//! renews a lease meanwhile; a workflow whose lease lapsed (that server died) is failed by any
//! server's sweep, so none stays `running` forever. A task whose content is not a runnable
//! component (a `DOCKER` task) fails the workflow with a message saying so.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::registry::{Caller, Refusal, RegistryError};
use crate::store::{self, workflows as rows};

use super::engine::{value_as_text, Execution, InputValue, RunFailure};
use super::{Runs, Value};

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
/// one before it failed. Spelled once, for the store and the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

impl StepState {
    const ALL: [StepState; 5] = [
        StepState::Pending,
        StepState::Running,
        StepState::Succeeded,
        StepState::Failed,
        StepState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
        }
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
    pub name: String,
    pub task: String,
    /// The version pinned at submission.
    pub version: String,
    pub state: StepState,
    pub inputs: Vec<PortInput>,
    pub outputs: Vec<PortValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
        let order = run_order(&spec.tasks)?;
        let mut pinned = Vec::with_capacity(order.len());
        for &i in &order {
            let task = &spec.tasks[i];
            let version = self
                .registry
                .resolve(namespace, &task.task, task.version.as_deref())
                .await?;
            pinned.push((task, version));
        }
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
            rows::insert_task(
                &mut tx,
                &id,
                position as i64,
                &task.name,
                &version.name,
                &version.version,
                &inputs,
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

    /// A workflow the caller's account submitted.
    pub async fn workflow(&self, caller: &Caller, id: &str) -> Result<WorkflowInfo, RegistryError> {
        let mut conn = self.store().pool().acquire().await?;
        let row = rows::workflow(&mut conn, id)
            .await?
            .ok_or_else(|| Refusal::WorkflowNotFound { id: id.to_string() })?;
        if !self
            .registry
            .acts_for(&mut conn, caller, &row.account_id)
            .await?
        {
            return Err(Refusal::WorkflowOfAnotherAccount { id: id.to_string() }.into());
        }
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
                })
                .collect(),
        })
    }

    /// Runs the tasks in order, recording each one's state and outputs.
    async fn execute_workflow(&self, id: &str, namespace: &str) -> anyhow::Result<()> {
        let renewing = self.keep_lease(store::leases::Leased::Workflows, id);
        let result = self.run_tasks(id, namespace).await;
        renewing.abort();
        let mut conn = self.store().pool().acquire().await?;
        let now = store::now_millis();
        match &result {
            Ok(()) => {
                rows::set_workflow_state(
                    &mut conn,
                    id,
                    StepState::Succeeded.as_str(),
                    None,
                    None,
                    Some(now),
                )
                .await?
            }
            Err(error) => {
                rows::set_workflow_state(
                    &mut conn,
                    id,
                    StepState::Failed.as_str(),
                    Some(error),
                    None,
                    Some(now),
                )
                .await?
            }
        }
        tracing::info!(workflow = %id, outcome = ?result, "workflow finished");
        Ok(())
    }

    /// Ok when every task succeeded; Err is the workflow's error (the failed task's).
    async fn run_tasks(&self, id: &str, namespace: &str) -> Result<(), String> {
        let db = |e: sqlx::Error| format!("database: {e}");
        let mut conn = self.store().pool().acquire().await.map_err(db)?;
        let tasks = rows::tasks(&mut conn, id).await.map_err(db)?;
        let lease_until = self.lease_until(store::now_millis());
        rows::set_workflow_state(
            &mut conn,
            id,
            StepState::Running.as_str(),
            None,
            Some(lease_until),
            None,
        )
        .await
        .map_err(db)?;
        drop(conn);
        let mut outputs: HashMap<String, HashMap<String, String>> = HashMap::new();
        let mut failure = None;
        for task in &tasks {
            let mut conn = self.store().pool().acquire().await.map_err(db)?;
            let now = store::now_millis();
            if let Some(reason) = &failure {
                let skipped = format!("not run: {reason}");
                rows::set_task_state(
                    &mut conn,
                    id,
                    task.position,
                    StepState::Skipped.as_str(),
                    None,
                    Some(&skipped),
                    now,
                )
                .await
                .map_err(db)?;
                continue;
            }
            rows::set_task_state(
                &mut conn,
                id,
                task.position,
                StepState::Running.as_str(),
                None,
                None,
                now,
            )
            .await
            .map_err(db)?;
            drop(conn);
            let outcome = self.run_task(namespace, task, &outputs).await;
            let mut conn = self.store().pool().acquire().await.map_err(db)?;
            let now = store::now_millis();
            match outcome {
                Ok(produced) => {
                    let json = serde_json::to_string(&produced).expect("outputs serialize");
                    rows::set_task_state(
                        &mut conn,
                        id,
                        task.position,
                        StepState::Succeeded.as_str(),
                        Some(&json),
                        None,
                        now,
                    )
                    .await
                    .map_err(db)?;
                    outputs.insert(
                        task.name.clone(),
                        produced
                            .into_iter()
                            .map(|p| (p.name.to_lowercase(), p.value))
                            .collect(),
                    );
                }
                Err(error) => {
                    rows::set_task_state(
                        &mut conn,
                        id,
                        task.position,
                        StepState::Failed.as_str(),
                        None,
                        Some(&error),
                        now,
                    )
                    .await
                    .map_err(db)?;
                    failure = Some(format!("task `{}` failed: {error}", task.name));
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn run_task(
        &self,
        namespace: &str,
        task: &rows::TaskRow,
        outputs: &HashMap<String, HashMap<String, String>>,
    ) -> Result<Vec<PortValue>, String> {
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
        // A task's run takes capacity as a `/v4` run does, waiting for it: the workflow is
        // already accepted, and its tasks run one after another.
        let _permits = self
            .capacity
            .take(&pipeline_id)
            .await
            .map_err(|e| e.to_string())?;
        let produced = self
            .engine
            .run(Execution {
                version: &version,
                component_path: COMPONENT_FILE,
                inputs,
                // A task's ports are strings, but its outputs may name files it wrote.
                file_outputs: true,
                timeout: self.limits.timeout,
            })
            .await
            .outcome
            .map_err(|e: RunFailure| e.to_string())?;
        Ok(produced
            .iter()
            .map(|(name, value)| PortValue {
                name: name.clone(),
                value: value_as_text(value),
            })
            .collect())
    }

    /// Fails the workflows whose server stopped running them. Any server may call it.
    pub async fn fail_abandoned_workflows(&self) -> Result<u64, RegistryError> {
        let mut conn = self.store().pool().acquire().await?;
        let failed = rows::fail_abandoned(&mut conn, store::now_millis()).await?;
        if failed > 0 {
            tracing::warn!(failed, "workflows interrupted by a server stop were failed");
        }
        Ok(failed)
    }
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
