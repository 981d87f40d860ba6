//! Change counters: one row per kind of server-wide setting (policy bindings, plugin
//! activations), bumped in the same commit as the change. Every server polls them to learn that
//! another server changed something ([`crate::registry::changes`]); on PostgreSQL a bump also
//! notifies [`CHANNEL`] (delivered at commit), so listeners learn it at once.

use sqlx::AnyConnection;

/// The PostgreSQL notification channel of every bump; the payload is the counter's name.
pub const CHANNEL: &str = "pipewright_changes";

/// Bumps the counter `name` (in the caller's transaction).
pub async fn bump(conn: &mut AnyConnection, name: &str) -> sqlx::Result<()> {
    if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "INSERT INTO change_counters (name, revision) VALUES ($1, 1)
         ON CONFLICT (name) DO UPDATE SET revision = change_counters.revision + 1",
    )
    .bind(name)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The counter `name`; 0 before its first change.
pub async fn revision(conn: &mut AnyConnection, name: &str) -> sqlx::Result<i64> {
    let revision: Option<i64> =
        sqlx::query_scalar("SELECT revision FROM change_counters WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(revision.unwrap_or(0))
}
