//! Workflows and their tasks.

use sqlx::AnyConnection;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WorkflowRow {
    pub id: String,
    pub name: Option<String>,
    pub submitted_by: String,
    pub account_id: String,
    pub state: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TaskRow {
    pub position: i64,
    pub name: String,
    pub task_name: String,
    pub task_version: String,
    pub inputs: String,
    pub state: String,
    pub outputs: Option<String>,
    pub error: Option<String>,
}

pub struct NewWorkflow<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub submitted_by: &'a str,
    pub account_id: &'a str,
    pub lease_until: i64,
    pub now: i64,
}

pub async fn insert_workflow(conn: &mut AnyConnection, w: &NewWorkflow<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO workflows (id, name, submitted_by, account_id, state, lease_until, created_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
    )
    .bind(w.id)
    .bind(w.name)
    .bind(w.submitted_by)
    .bind(w.account_id)
    .bind(w.lease_until)
    .bind(w.now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn insert_task(
    conn: &mut AnyConnection,
    workflow_id: &str,
    position: i64,
    name: &str,
    task_name: &str,
    task_version: &str,
    inputs: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO workflow_tasks (workflow_id, position, name, task_name, task_version, inputs, state)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
    )
    .bind(workflow_id)
    .bind(position)
    .bind(name)
    .bind(task_name)
    .bind(task_version)
    .bind(inputs)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn workflow(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<WorkflowRow>> {
    sqlx::query_as(
        "SELECT w.id, w.name, u.name AS submitted_by, w.account_id, w.state, w.error, w.created_at,
            w.finished_at
         FROM workflows w JOIN users u ON u.id = w.submitted_by WHERE w.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn tasks(conn: &mut AnyConnection, workflow_id: &str) -> sqlx::Result<Vec<TaskRow>> {
    sqlx::query_as(
        "SELECT position, name, task_name, task_version, inputs, state, outputs, error
         FROM workflow_tasks WHERE workflow_id = $1 ORDER BY position",
    )
    .bind(workflow_id)
    .fetch_all(conn)
    .await
}

/// Moves the workflow to `state` (and renews its lease while it runs).
pub async fn set_workflow_state(
    conn: &mut AnyConnection,
    id: &str,
    state: &str,
    error: Option<&str>,
    lease_until: Option<i64>,
    finished_at: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE workflows SET state = $2, error = $3, lease_until = $4, finished_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(error)
    .bind(lease_until)
    .bind(finished_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn set_task_state(
    conn: &mut AnyConnection,
    workflow_id: &str,
    position: i64,
    state: &str,
    outputs: Option<&str>,
    error: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    let column = if state == "running" {
        "started_at"
    } else {
        "finished_at"
    };
    sqlx::query(&format!(
        "UPDATE workflow_tasks SET state = $3, outputs = $4, error = $5, {column} = $6
         WHERE workflow_id = $1 AND position = $2"
    ))
    .bind(workflow_id)
    .bind(position)
    .bind(state)
    .bind(outputs)
    .bind(error)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Fails every workflow whose runner's lease lapsed (its server died), and their unfinished
/// tasks. Returns how many.
pub async fn fail_abandoned(conn: &mut AnyConnection, now: i64) -> sqlx::Result<u64> {
    let message = "interrupted: the server running it stopped";
    sqlx::query(
        "UPDATE workflow_tasks SET state = 'failed', error = $2, finished_at = $1
         WHERE state IN ('pending', 'running') AND workflow_id IN
            (SELECT id FROM workflows WHERE state IN ('pending', 'running') AND lease_until < $1)",
    )
    .bind(now)
    .bind(message)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query(
        "UPDATE workflows SET state = 'failed', error = $2, finished_at = $1, lease_until = NULL
         WHERE state IN ('pending', 'running') AND lease_until < $1",
    )
    .bind(now)
    .bind(message)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
