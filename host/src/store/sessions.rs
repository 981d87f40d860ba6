//! Console sessions (migration 0019): a row per signed-in browser, keyed by the hash of the
//! cookie's secret, naming the API token the session acts as.

use sqlx::AnyConnection;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub token_id: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

pub struct NewSession<'a> {
    pub secret_hash: &'a str,
    pub token_id: &'a str,
    pub csrf_token: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(conn: &mut AnyConnection, session: &NewSession<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO console_sessions (secret_hash, token_id, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(session.secret_hash)
    .bind(session.token_id)
    .bind(session.csrf_token)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn by_secret_hash(
    conn: &mut AnyConnection,
    secret_hash: &str,
) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as(
        "SELECT token_id, csrf_token, expires_at FROM console_sessions WHERE secret_hash = $1",
    )
    .bind(secret_hash)
    .fetch_optional(conn)
    .await
}

pub async fn delete(conn: &mut AnyConnection, secret_hash: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM console_sessions WHERE secret_hash = $1")
        .bind(secret_hash)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Removes the sessions that ended before `now` (ms); how many.
pub async fn delete_expired(conn: &mut AnyConnection, now: i64) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
