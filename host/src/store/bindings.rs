//! Policy bindings set by operators, and their change counter.

use sqlx::AnyConnection;

const COUNTER: &str = "policy-bindings";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BindingRow {
    pub scope: String,
    pub chain: String,
}

pub async fn list(conn: &mut AnyConnection) -> sqlx::Result<Vec<BindingRow>> {
    sqlx::query_as("SELECT scope, chain FROM policy_bindings ORDER BY scope")
        .fetch_all(conn)
        .await
}

/// Sets the chain of `scope` and bumps the counter (in the caller's transaction).
pub async fn upsert(
    conn: &mut AnyConnection,
    scope: &str,
    chain: &str,
    user_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO policy_bindings (scope, chain, updated_by, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (scope) DO UPDATE SET chain = $2, updated_by = $3, updated_at = $4",
    )
    .bind(scope)
    .bind(chain)
    .bind(user_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    bump(conn).await
}

/// Removes the operator's chain of `scope` (the default applies again); false if none.
pub async fn delete(conn: &mut AnyConnection, scope: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM policy_bindings WHERE scope = $1")
        .bind(scope)
        .execute(&mut *conn)
        .await?;
    bump(conn).await?;
    Ok(done.rows_affected() == 1)
}

async fn bump(conn: &mut AnyConnection) -> sqlx::Result<()> {
    super::counters::bump(conn, COUNTER).await
}

/// The bindings' change counter; 0 before the first change.
pub async fn revision(conn: &mut AnyConnection) -> sqlx::Result<i64> {
    super::counters::revision(conn, COUNTER).await
}
