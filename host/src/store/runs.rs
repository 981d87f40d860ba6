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
    /// JSON, as in [`set_state`].
    pub logs: Option<&'a str>,
}

const INSERT_RUN: &str = "INSERT INTO runs (id, pipeline_id, version, submitted_by, account_id,
        state, inputs, outputs, error, lease_until, created_at, updated_at, finished_at, logs)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

const SET_STATE: &str = "UPDATE runs SET state = $2, outputs = $3, error = $4, lease_until = $5,
        updated_at = $6, finished_at = $7, logs = $8
    WHERE id = $1";

pub async fn insert_run(conn: &mut AnyConnection, r: &NewRun<'_>) -> sqlx::Result<()> {
    let finished = is_final(r.state);
    sqlx::query(INSERT_RUN)
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
        .bind(r.logs)
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

/// Runs of the accounts `user_id` is a member of, newest first (ids are time-ordered), those
/// older than `before` when given, at most `limit`.
pub async fn runs_of_member(
    conn: &mut AnyConnection,
    user_id: &str,
    before: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as(
        "SELECT r.id, r.pipeline_id, p.namespace || '/' || p.name AS pipeline, r.version,
            r.account_id, r.state, r.inputs, r.outputs, r.error, r.created_at, r.updated_at
         FROM runs r JOIN pipelines p ON p.id = r.pipeline_id
         WHERE r.account_id IN (SELECT m.account_id FROM account_members m WHERE m.user_id = $1)
           AND ($2 IS NULL OR r.id < $2)
         ORDER BY r.id DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A run's new state; `outputs`, `error` and `logs` (`{"stdout", "stderr"}`, once it ended)
/// are JSON.
pub struct StateChange<'a> {
    pub id: &'a str,
    pub state: &'a str,
    pub outputs: Option<&'a str>,
    pub error: Option<&'a str>,
    pub lease_until: Option<i64>,
    pub now: i64,
    pub logs: Option<&'a str>,
}

/// Records a run's new state.
pub async fn set_state(conn: &mut AnyConnection, c: &StateChange<'_>) -> sqlx::Result<()> {
    let finished = is_final(c.state);
    sqlx::query(SET_STATE)
        .bind(c.id)
        .bind(c.state)
        .bind(c.outputs)
        .bind(c.error)
        .bind(c.lease_until)
        .bind(c.now)
        .bind(finished.then_some(c.now))
        .bind(c.logs)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The account that submitted run `id` and its logs (JSON), if the run exists.
pub async fn logs(
    conn: &mut AnyConnection,
    id: &str,
) -> sqlx::Result<Option<(String, Option<String>)>> {
    sqlx::query_as("SELECT account_id, logs FROM runs WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
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

/// The two writes of run records on a SQLite connection of their own, called synchronously on
/// the caller's thread: what `runs::writes` commits runs with on SQLite (its module
/// doc says why). The SQL is the pool's, above.
pub mod direct {
    use std::path::Path;
    use std::time::Duration;

    use rusqlite::{named_params, Connection, OpenFlags};

    use super::{is_final, NewRun, StateChange, INSERT_RUN, SET_STATE};

    /// Opens the database file that the store's pool uses, set up as the pool's connections
    /// are (WAL, foreign keys) except for three things: it never waits for the write lock (the
    /// caller decides what to do when another connection holds it), it never checkpoints by
    /// itself (a commit on it stays a WAL append; see [`checkpoint`]), and it syncs at
    /// checkpoints only (`synchronous = NORMAL`, where the pool's are `FULL`): run records are
    /// the one thing a power loss may lose the last of (README says so), and a sync per run
    /// would cost more than the run.
    pub fn open(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA wal_autocheckpoint = 0;",
        )?;
        conn.busy_timeout(Duration::ZERO)?;
        Ok(conn)
    }

    pub fn insert_run(conn: &Connection, r: &NewRun<'_>) -> rusqlite::Result<()> {
        let finished = is_final(r.state).then_some(r.now);
        conn.prepare_cached(INSERT_RUN)?.execute(named_params! {
            "$1": r.id, "$2": r.pipeline_id, "$3": r.version, "$4": r.submitted_by,
            "$5": r.account_id, "$6": r.state, "$7": r.inputs, "$8": r.outputs, "$9": r.error,
            "$10": r.lease_until, "$11": r.created_at, "$12": r.now, "$13": finished,
            "$14": r.logs,
        })?;
        Ok(())
    }

    pub fn set_state(conn: &Connection, c: &StateChange<'_>) -> rusqlite::Result<()> {
        let finished = is_final(c.state).then_some(c.now);
        conn.prepare_cached(SET_STATE)?.execute(named_params! {
            "$1": c.id, "$2": c.state, "$3": c.outputs, "$4": c.error, "$5": c.lease_until,
            "$6": c.now, "$7": finished, "$8": c.logs,
        })?;
        Ok(())
    }

    /// Whether `error` means another connection holds the write lock (nothing was written).
    pub fn is_busy(error: &rusqlite::Error) -> bool {
        matches!(
            error.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }

    /// Copies what the WAL holds into the database file as far as readers allow, without
    /// waiting for them: the checkpoint that a connection opened by [`open`] does not do by
    /// itself. Blocking (it writes and syncs the database file).
    pub fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
    }
}
