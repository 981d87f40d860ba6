//! Workflows, their tasks, and the tasks' events.
//!
//! A state changes only from the states it may leave ([`move_task`], [`move_workflow`]): the
//! server running a workflow and a cancel (on any server) race for the same rows, and whichever
//! commits first wins; the other sees zero rows moved and knows it lost.

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
    pub id: String,
    pub position: i64,
    pub name: String,
    pub task_name: String,
    pub task_version: String,
    pub inputs: String,
    pub state: String,
    pub outputs: Option<String>,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EventRow {
    pub task_id: String,
    pub task_name: String,
    pub event: String,
    pub note: Option<String>,
    pub at: i64,
}

/// What a task wrote, `None` for a stream of a task that never ran.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TaskOutputRow {
    pub stdout: Option<String>,
    pub stderr: Option<String>,
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

pub struct NewTask<'a> {
    pub workflow_id: &'a str,
    pub id: &'a str,
    pub position: i64,
    pub name: &'a str,
    pub task_name: &'a str,
    pub task_version: &'a str,
    pub inputs: &'a str,
}

pub async fn insert_task(conn: &mut AnyConnection, t: &NewTask<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO workflow_tasks (workflow_id, id, position, name, task_name, task_version, inputs, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending')",
    )
    .bind(t.workflow_id)
    .bind(t.id)
    .bind(t.position)
    .bind(t.name)
    .bind(t.task_name)
    .bind(t.task_version)
    .bind(t.inputs)
    .execute(conn)
    .await
    .map(|_| ())
}

const WORKFLOW_COLUMNS: &str =
    "w.id, w.name, u.name AS submitted_by, w.account_id, w.state, w.error, w.created_at, w.finished_at";

pub async fn workflow(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<WorkflowRow>> {
    sqlx::query_as(&format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows w JOIN users u ON u.id = w.submitted_by WHERE w.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The workflows of `account_id` submitted at or after `since` (all when None), by the user
/// named `owner` when given; newest first.
pub async fn workflows_of_account(
    conn: &mut AnyConnection,
    account_id: &str,
    since: Option<i64>,
    owner: Option<&str>,
) -> sqlx::Result<Vec<WorkflowRow>> {
    sqlx::query_as(&format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows w JOIN users u ON u.id = w.submitted_by
         WHERE w.account_id = $1 AND w.created_at >= $2 AND ($3 IS NULL OR u.name = $3)
         ORDER BY w.created_at DESC, w.id"
    ))
    .bind(account_id)
    .bind(since.unwrap_or(i64::MIN))
    .bind(owner)
    .fetch_all(conn)
    .await
}

/// The workflow's state alone (what a server running it checks for a cancel).
pub async fn workflow_state(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT state FROM workflows WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn tasks(conn: &mut AnyConnection, workflow_id: &str) -> sqlx::Result<Vec<TaskRow>> {
    sqlx::query_as(
        "SELECT id, position, name, task_name, task_version, inputs, state, outputs, error,
            started_at, finished_at
         FROM workflow_tasks WHERE workflow_id = $1 ORDER BY position",
    )
    .bind(workflow_id)
    .fetch_all(conn)
    .await
}

/// The `from` states as SQL literals (they are the core's own words, never a caller's).
fn state_list(from: &[&str]) -> String {
    from.iter()
        .map(|state| format!("'{state}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Moves the workflow from one of `from` to `to`, renewing its lease (while it runs) or
/// clearing it and stamping its end (`finished_at`). False when it was in none of `from`.
pub async fn move_workflow(
    conn: &mut AnyConnection,
    id: &str,
    from: &[&str],
    to: &str,
    error: Option<&str>,
    lease_until: Option<i64>,
    finished_at: Option<i64>,
) -> sqlx::Result<bool> {
    let moved = sqlx::query(&format!(
        "UPDATE workflows SET state = $2, error = $3, lease_until = $4, finished_at = $5
         WHERE id = $1 AND state IN ({})",
        state_list(from)
    ))
    .bind(id)
    .bind(to)
    .bind(error)
    .bind(lease_until)
    .bind(finished_at)
    .execute(conn)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// Where a task moves, and what it leaves there.
pub struct TaskMove<'a> {
    pub workflow_id: &'a str,
    pub position: i64,
    pub from: &'a [&'a str],
    pub to: &'a str,
    pub outputs: Option<&'a str>,
    pub error: Option<&'a str>,
    pub now: i64,
}

/// Moves a task from one of `from` to `to`, stamping `started_at` (to `running`) or
/// `finished_at` (to an end; `pending` stamps nothing). False when it was in none of `from`.
pub async fn move_task(conn: &mut AnyConnection, m: &TaskMove<'_>) -> sqlx::Result<bool> {
    let stamp = match m.to {
        "pending" => None,
        "running" => Some("started_at"),
        _ => Some("finished_at"),
    };
    let query = format!(
        "UPDATE workflow_tasks SET state = $3, outputs = $4, error = $5{}
         WHERE workflow_id = $1 AND position = $2 AND state IN ({})",
        stamp
            .map(|column| format!(", {column} = $6"))
            .unwrap_or_default(),
        state_list(m.from)
    );
    let query = sqlx::query(&query)
        .bind(m.workflow_id)
        .bind(m.position)
        .bind(m.to)
        .bind(m.outputs)
        .bind(m.error);
    let query = match stamp {
        Some(_) => query.bind(m.now),
        None => query,
    };
    Ok(query.execute(conn).await?.rows_affected() == 1)
}

/// Keeps what a task wrote on stdout and stderr.
pub async fn set_task_output(
    conn: &mut AnyConnection,
    workflow_id: &str,
    position: i64,
    stdout: &str,
    stderr: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE workflow_tasks SET stdout = $3, stderr = $4 WHERE workflow_id = $1 AND position = $2",
    )
    .bind(workflow_id)
    .bind(position)
    .bind(stdout)
    .bind(stderr)
    .execute(conn)
    .await
    .map(|_| ())
}

/// What the task `task_id` of the workflow wrote; None when the workflow has no such task.
pub async fn task_output(
    conn: &mut AnyConnection,
    workflow_id: &str,
    task_id: &str,
) -> sqlx::Result<Option<TaskOutputRow>> {
    sqlx::query_as("SELECT stdout, stderr FROM workflow_tasks WHERE workflow_id = $1 AND id = $2")
        .bind(workflow_id)
        .bind(task_id)
        .fetch_optional(conn)
        .await
}

pub struct NewEvent<'a> {
    pub workflow_id: &'a str,
    pub task_position: i64,
    pub event: &'a str,
    pub note: Option<&'a str>,
    pub at: i64,
}

pub async fn insert_event(conn: &mut AnyConnection, e: &NewEvent<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO workflow_events (id, workflow_id, task_position, event, note, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(e.workflow_id)
    .bind(e.task_position)
    .bind(e.event)
    .bind(e.note)
    .bind(e.at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A workflow's events in the order they happened, each with its task's id and name.
pub async fn events(conn: &mut AnyConnection, workflow_id: &str) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT t.id AS task_id, t.name AS task_name, e.event, e.note, e.at
         FROM workflow_events e
         JOIN workflow_tasks t ON t.workflow_id = e.workflow_id AND t.position = e.task_position
         WHERE e.workflow_id = $1 ORDER BY e.at, e.id",
    )
    .bind(workflow_id)
    .fetch_all(conn)
    .await
}

/// Fails every workflow whose runner's lease lapsed (its server died), and their unfinished
/// tasks, each with a `failed` event. Returns how many workflows. The workflows' own update
/// decides which are abandoned (a lease renewed meanwhile keeps its workflow); run it in a
/// transaction.
pub async fn fail_abandoned(conn: &mut AnyConnection, now: i64) -> sqlx::Result<u64> {
    let message = "interrupted: the server running it stopped";
    let abandoned: Vec<String> = sqlx::query_scalar(
        "UPDATE workflows SET state = 'failed', error = $2, finished_at = $1, lease_until = NULL
         WHERE state IN ('pending', 'running') AND lease_until < $1
         RETURNING id",
    )
    .bind(now)
    .bind(message)
    .fetch_all(&mut *conn)
    .await?;
    for id in &abandoned {
        // A task is abandoned once: its event's id says which.
        sqlx::query(
            "INSERT INTO workflow_events (id, workflow_id, task_position, event, note, at)
             SELECT workflow_id || '-' || CAST(position AS TEXT) || '-abandoned',
                 workflow_id, position, 'failed', $2, $3
             FROM workflow_tasks WHERE workflow_id = $1 AND state IN ('pending', 'running')",
        )
        .bind(id)
        .bind(message)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE workflow_tasks SET state = 'failed', error = $2, finished_at = $3
             WHERE workflow_id = $1 AND state IN ('pending', 'running')",
        )
        .bind(id)
        .bind(message)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(abandoned.len() as u64)
}
