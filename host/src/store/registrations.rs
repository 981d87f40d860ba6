//! The job side of `pipeline_versions`: leasing registrations that wait for a worker, renewing
//! a lease while an attempt runs, and recording each attempt's outcome. Every write after the
//! lease is conditional on still holding it, so a worker whose lease lapsed (and was taken by
//! another) cannot overwrite the other's result.

use sqlx::AnyConnection;

use super::Backend;

/// A registration leased to one worker for one attempt.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LeasedJob {
    pub id: String,
    pub pipeline_id: String,
    pub version: String,
    pub source: String,
    pub attempts: i64,
    pub retry_until: Option<i64>,
}

/// Leases the oldest due registration to `owner` until `lease_until`, counting an attempt
/// that must end by `attempt_deadline`. On PostgreSQL `SKIP LOCKED` lets replicas lease
/// different rows at once and never the same one; SQLite has one writer at a time.
pub async fn lease_next(
    conn: &mut AnyConnection,
    backend: Backend,
    owner: &str,
    now: i64,
    lease_until: i64,
    attempt_deadline: i64,
) -> sqlx::Result<Option<LeasedJob>> {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    sqlx::query_as(&format!(
        "UPDATE pipeline_versions
            SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, attempt_deadline = $3
          WHERE id = (SELECT id FROM pipeline_versions
                       WHERE state = 'registering' AND source IS NOT NULL
                         AND (next_attempt_at IS NULL OR next_attempt_at <= $4)
                         AND (lease_until IS NULL OR lease_until < $4)
                       ORDER BY next_attempt_at, registered_at LIMIT 1 {lock})
          RETURNING id, pipeline_id, version, source, attempts, retry_until"
    ))
    .bind(owner)
    .bind(lease_until)
    .bind(attempt_deadline)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// How many versions are `registering` (waiting for an attempt or in one), whichever replica
/// works on them: the registration queue's depth.
pub async fn count_registering(conn: &mut AnyConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM pipeline_versions WHERE state = 'registering'")
        .fetch_one(conn)
        .await
}

/// Extends a held lease; false if it was lost (lapsed and taken, or the version deleted).
pub async fn renew_lease(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    lease_until: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE pipeline_versions SET lease_until = $3
         WHERE id = $1 AND lease_owner = $2 AND state = 'registering'",
    )
    .bind(id)
    .bind(owner)
    .bind(lease_until)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a held attempt: `ready` (with the content's digest) or `failed`, or back to waiting
/// until `next_attempt_at` (state stays `registering`). False if the lease was lost.
pub async fn end_attempt(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    outcome: Outcome<'_>,
    now: i64,
) -> sqlx::Result<bool> {
    let query = match outcome {
        Outcome::Ready {
            content_digest,
            note,
        } => sqlx::query(
            "UPDATE pipeline_versions SET state = 'ready', content_digest = $3, last_error = NULL,
                finished_at = $4, lease_owner = NULL, lease_until = NULL, registration_note = $5
             WHERE id = $1 AND lease_owner = $2 AND state = 'registering'",
        )
        .bind(id)
        .bind(owner)
        .bind(content_digest)
        .bind(now)
        .bind(note),
        Outcome::Failed { error } => sqlx::query(
            "UPDATE pipeline_versions SET state = 'failed', last_error = $3, finished_at = $4,
                lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2 AND state = 'registering'",
        )
        .bind(id)
        .bind(owner)
        .bind(error)
        .bind(now),
        Outcome::RetryAt { error, at } => sqlx::query(
            "UPDATE pipeline_versions SET last_error = $3, next_attempt_at = $4,
                lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2 AND state = 'registering'",
        )
        .bind(id)
        .bind(owner)
        .bind(error)
        .bind(at),
    };
    Ok(query.execute(conn).await?.rows_affected() == 1)
}

/// How an attempt ended.
pub enum Outcome<'a> {
    Ready {
        content_digest: &'a str,
        /// Said of the version once ready (see [`crate::registry::Registration::note`]).
        note: Option<&'a str>,
    },
    Failed {
        error: &'a str,
    },
    RetryAt {
        error: &'a str,
        at: i64,
    },
}
