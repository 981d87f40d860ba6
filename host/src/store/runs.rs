//! Run records.

use sqlx::AnyConnection;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RunRow {
    pub id: String,
    pub pipeline_id: String,
    pub pipeline: String,
    pub version: String,
    pub account_id: String,
    pub state: String,
    pub inputs: String,
    pub outputs: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A run as first written: at work (`created`, `running`: with a lease), or already finished
/// (with its outputs or error, no lease), which is how a short synchronous run is written once.
pub struct NewRun<'a> {
    pub id: &'a str,
    pub pipeline_id: &'a str,
    pub version: &'a str,
    pub submitted_by: &'a str,
    pub account_id: &'a str,
    pub state: &'a str,
    pub inputs: &'a str,
    /// JSON, as in [`set_state`].
    pub outputs: Option<&'a str>,
    pub error: Option<&'a str>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub now: i64,
}

pub async fn insert_run(conn: &mut AnyConnection, r: &NewRun<'_>) -> sqlx::Result<()> {
    let finished = is_final(r.state);
    sqlx::query(
        "INSERT INTO runs (id, pipeline_id, version, submitted_by, account_id, state, inputs,
            outputs, error, lease_until, created_at, updated_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(r.id)
    .bind(r.pipeline_id)
    .bind(r.version)
    .bind(r.submitted_by)
    .bind(r.account_id)
    .bind(r.state)
    .bind(r.inputs)
    .bind(r.outputs)
    .bind(r.error)
    .bind(r.lease_until)
    .bind(r.created_at)
    .bind(r.now)
    .bind(finished.then_some(r.now))
    .execute(conn)
    .await
    .map(|_| ())
}

/// Whether a run in `state` is over.
fn is_final(state: &str) -> bool {
    matches!(state, "completed" | "failed" | "no_resources_available")
}

pub async fn run(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<RunRow>> {
    sqlx::query_as(
        "SELECT r.id, r.pipeline_id, p.namespace || '/' || p.name AS pipeline, r.version,
            r.account_id, r.state, r.inputs, r.outputs, r.error, r.created_at, r.updated_at
         FROM runs r JOIN pipelines p ON p.id = r.pipeline_id WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Records a run's new state; `outputs` and `error` are JSON.
pub async fn set_state(
    conn: &mut AnyConnection,
    id: &str,
    state: &str,
    outputs: Option<&str>,
    error: Option<&str>,
    lease_until: Option<i64>,
    now: i64,
) -> sqlx::Result<()> {
    let finished = is_final(state);
    sqlx::query(
        "UPDATE runs SET state = $2, outputs = $3, error = $4, lease_until = $5, updated_at = $6,
            finished_at = $7 WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(outputs)
    .bind(error)
    .bind(lease_until)
    .bind(now)
    .bind(finished.then_some(now))
    .execute(conn)
    .await
    .map(|_| ())
}

/// Fails every run whose server stopped running it; how many.
pub async fn fail_abandoned(conn: &mut AnyConnection, error: &str, now: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE runs SET state = 'failed', error = $2, updated_at = $1, finished_at = $1,
            lease_until = NULL
         WHERE state IN ('created', 'running') AND lease_until < $1",
    )
    .bind(now)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
