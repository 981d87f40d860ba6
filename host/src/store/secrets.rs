//! Server secrets: values every replica on one database must agree on (the key that signs
//! download links), made once by whichever server needs them first and read by all the others.
//! Nobody updates one: a changed key would turn away every link already handed out.

use sqlx::AnyConnection;

/// The secret `name`: the stored one, or `candidate` stored now if there was none. Two
/// servers starting at once both offer a candidate; the first insert wins and both read it.
pub async fn get_or_insert(
    conn: &mut AnyConnection,
    name: &str,
    candidate: &str,
) -> sqlx::Result<String> {
    sqlx::query(
        "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(candidate)
    .bind(super::now_millis())
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(conn)
        .await
}
