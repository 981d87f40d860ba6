//! Leases on rows being worked on (runs, workflows): the server at work renews `lease_until`;
//! a row whose lease lapsed is known to have lost its server.

use sqlx::AnyConnection;

/// The tables whose rows are leased while a server works on them.
#[derive(Clone, Copy, Debug)]
pub enum Leased {
    Runs,
    Workflows,
}

impl Leased {
    /// The table, and the states in which its rows are at work.
    fn table_and_states(self) -> (&'static str, &'static str) {
        match self {
            Leased::Runs => ("runs", "'created', 'running'"),
            Leased::Workflows => ("workflows", "'pending', 'running'"),
        }
    }
}

/// Extends the lease of a row still at work.
pub async fn renew(
    conn: &mut AnyConnection,
    table: Leased,
    id: &str,
    lease_until: i64,
) -> sqlx::Result<()> {
    let (table, states) = table.table_and_states();
    sqlx::query(&format!(
        "UPDATE {table} SET lease_until = $2 WHERE id = $1 AND state IN ({states})"
    ))
    .bind(id)
    .bind(lease_until)
    .execute(conn)
    .await
    .map(|_| ())
}
