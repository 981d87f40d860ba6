//! Pointers (migration 0014): a name of a pipeline that names one of its versions by number.

use sqlx::AnyConnection;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PointerRow {
    pub id: String,
    pub pipeline_id: String,
    pub namespace: String,
    pub name: String,
    pub pointer: String,
    pub version: String,
    /// 0 or 1.
    pub locked: i64,
    /// 1 while a version of that number exists.
    pub live: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewPointer<'a> {
    pub id: &'a str,
    pub pipeline_id: &'a str,
    pub pointer: &'a str,
    pub pointer_key: &'a str,
    pub version: &'a str,
    pub version_key: &'a str,
    pub locked: bool,
    pub now: i64,
}

const POINTER_COLUMNS: &str = "ptr.id, ptr.pipeline_id, p.namespace, p.name, ptr.pointer,
    ptr.version, ptr.locked,
    CAST(CASE WHEN EXISTS (SELECT 1 FROM pipeline_versions v
        WHERE v.pipeline_id = ptr.pipeline_id AND v.version_key = ptr.version_key)
        THEN 1 ELSE 0 END AS BIGINT) AS live,
    ptr.created_at, ptr.updated_at
    FROM pointers ptr JOIN pipelines p ON p.id = ptr.pipeline_id";

pub async fn insert(conn: &mut AnyConnection, new: &NewPointer<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO pointers (id, pipeline_id, pointer, pointer_key, version, version_key, locked,
            created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(new.id)
    .bind(new.pipeline_id)
    .bind(new.pointer)
    .bind(new.pointer_key)
    .bind(new.version)
    .bind(new.version_key)
    .bind(i64::from(new.locked))
    .bind(new.now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn by_key(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    pointer_key: &str,
) -> sqlx::Result<Option<PointerRow>> {
    sqlx::query_as(&format!(
        "SELECT {POINTER_COLUMNS} WHERE ptr.pipeline_id = $1 AND ptr.pointer_key = $2"
    ))
    .bind(pipeline_id)
    .bind(pointer_key)
    .fetch_optional(conn)
    .await
}

/// Points `id` at another version and sets its lock.
pub async fn update(
    conn: &mut AnyConnection,
    id: &str,
    version: &str,
    version_key: &str,
    locked: bool,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pointers SET version = $2, version_key = $3, locked = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(version)
    .bind(version_key)
    .bind(i64::from(locked))
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM pointers WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Which pointers a listing takes.
pub struct PointerFilter<'a> {
    pub owner_account_id: &'a str,
    /// Only the pointers of this pipeline (namespace and name keys).
    pub pipeline: Option<(&'a str, &'a str)>,
    /// Also those whose version no longer exists.
    pub include_dangling: bool,
}

/// One page of the pointers of the pipelines an account owns, ordered by pipeline and pointer
/// name, with how many there are in all.
pub async fn page(
    conn: &mut AnyConnection,
    filter: &PointerFilter<'_>,
    skip: i64,
    limit: i64,
) -> sqlx::Result<(i64, Vec<PointerRow>)> {
    // Every condition is bound, so one statement serves every filter: `$2 = ''` matches all.
    let conditions = "p.owner_account_id = $1
        AND ($2 = '' OR (p.namespace_key = $2 AND p.name_key = $3))
        AND ($4 = 1 OR EXISTS (SELECT 1 FROM pipeline_versions v
            WHERE v.pipeline_id = ptr.pipeline_id AND v.version_key = ptr.version_key))";
    let (namespace_key, name_key) = filter.pipeline.unwrap_or(("", ""));
    let dangling = i64::from(filter.include_dangling);
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM pointers ptr JOIN pipelines p ON p.id = ptr.pipeline_id WHERE {conditions}"
    ))
    .bind(filter.owner_account_id)
    .bind(namespace_key)
    .bind(name_key)
    .bind(dangling)
    .fetch_one(&mut *conn)
    .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT {POINTER_COLUMNS} WHERE {conditions}
         ORDER BY p.namespace_key, p.name_key, ptr.pointer_key LIMIT $5 OFFSET $6"
    ))
    .bind(filter.owner_account_id)
    .bind(namespace_key)
    .bind(name_key)
    .bind(dangling)
    .bind(limit)
    .bind(skip)
    .fetch_all(conn)
    .await?;
    Ok((total, rows))
}

/// Whether the pipeline has a pointer of this name (a version may not take it).
pub async fn exists(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    pointer_key: &str,
) -> sqlx::Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM pointers WHERE pipeline_id = $1 AND pointer_key = $2")
            .bind(pipeline_id)
            .bind(pointer_key)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}
