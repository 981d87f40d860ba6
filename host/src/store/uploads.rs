//! Uploads (`/v4/files`): which account uploaded which blob, for run inputs, quotas and expiry
//! (migration 0010). The bytes are in the blob store under `digest`; a row is what makes them
//! the account's.

use sqlx::AnyConnection;

pub struct NewUpload<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub digest: &'a str,
    pub name: &'a str,
    pub size: i64,
    pub uploaded_by: &'a str,
    pub created_at: i64,
}

pub async fn insert(conn: &mut AnyConnection, upload: &NewUpload<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO uploads (id, account_id, digest, name, size, uploaded_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(upload.id)
    .bind(upload.account_id)
    .bind(upload.digest)
    .bind(upload.name)
    .bind(upload.size)
    .bind(upload.uploaded_by)
    .bind(upload.created_at)
    .execute(conn)
    .await
    .map(|_| ())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UploadRow {
    pub id: String,
    pub account_id: String,
    pub digest: String,
    pub name: String,
    pub size: i64,
    pub created_at: i64,
}

const UPLOAD_COLUMNS: &str = "id, account_id, digest, name, size, created_at FROM uploads";

/// The uploads of an account, oldest first.
pub async fn of_account(
    conn: &mut AnyConnection,
    account_id: &str,
) -> sqlx::Result<Vec<UploadRow>> {
    sqlx::query_as(&format!(
        "SELECT {UPLOAD_COLUMNS} WHERE account_id = $1 ORDER BY created_at, id"
    ))
    .bind(account_id)
    .fetch_all(conn)
    .await
}

pub async fn by_id(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<UploadRow>> {
    sqlx::query_as(&format!("SELECT {UPLOAD_COLUMNS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// How many uploads an account holds, and their bytes.
pub async fn usage(conn: &mut AnyConnection, account_id: &str) -> sqlx::Result<(i64, i64)> {
    // SUM of BIGINT is NUMERIC on PostgreSQL: cast back so both stores answer a BIGINT.
    sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM uploads WHERE account_id = $1",
    )
    .bind(account_id)
    .fetch_one(conn)
    .await
}

/// Whether the user may use the blob `digest` as a run's file input: an upload of one of the
/// user's accounts, or a file of a version the user may read.
pub async fn user_may_use(
    conn: &mut AnyConnection,
    digest: &str,
    user_id: &str,
) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT 1 FROM uploads u
         WHERE u.digest = $1
           AND u.account_id IN (SELECT m.account_id FROM account_members m WHERE m.user_id = $2)
         UNION ALL
         SELECT 1 FROM version_files f
           JOIN pipeline_versions v ON v.id = f.version_id
           JOIN pipelines p ON p.id = v.pipeline_id
         WHERE f.digest = $1 AND {}
         LIMIT 1",
        super::pipelines::readable_by_clause("$2")
    ))
    .bind(digest)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Uploads made before `before` (ms), oldest first, at most `limit`: (id, digest).
pub async fn older_than(
    conn: &mut AnyConnection,
    before: i64,
    limit: i64,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT id, digest FROM uploads WHERE created_at < $1 ORDER BY created_at, id LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Whether anything still names the blob `digest`: an upload, a version's file, a plugin
/// version, a run's outputs, or the inputs of a run still at work (runs keep them as JSON text,
/// so they are matched as text: a scan, asked only for the few digests an expiry releases).
pub async fn blob_referenced(conn: &mut AnyConnection, digest: &str) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM uploads WHERE digest = $1
         UNION ALL SELECT 1 FROM version_files WHERE digest = $1
         UNION ALL SELECT 1 FROM plugin_versions WHERE digest = $1
         UNION ALL SELECT 1 FROM runs WHERE outputs LIKE $2
         UNION ALL SELECT 1 FROM runs WHERE state IN ('created', 'running') AND inputs LIKE $2
         LIMIT 1",
    )
    .bind(digest)
    .bind(format!("%{digest}%"))
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}
