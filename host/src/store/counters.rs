//! Change counters: one row per kind of server-wide setting (policy bindings, plugin
//! activations), bumped in the same commit as the change. Every server polls them to learn that
//! another server changed something ([`crate::registry::changes`]).

use sqlx::AnyConnection;

/// Bumps the counter `name` (in the caller's transaction).
pub async fn bump(conn: &mut AnyConnection, name: &str) -> sqlx::Result<()> {
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
