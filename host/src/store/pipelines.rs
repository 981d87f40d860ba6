//! Pipelines, their versions and the files of each version.

use sqlx::AnyConnection;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PipelineRow {
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub pipeline_type: String,
    pub description: Option<String>,
    pub owner_account_id: String,
    pub owner_account: String,
    pub created_by_id: String,
    pub created_by: String,
    pub created_at: i64,
    pub versions_revision: i64,
}

impl PipelineRow {
    /// The row as an insert (the joined names aside).
    pub fn as_new(&self) -> NewPipeline<'_> {
        NewPipeline {
            id: &self.id,
            namespace: &self.namespace,
            namespace_key: super::name_key(&self.namespace),
            name: &self.name,
            name_key: super::name_key(&self.name),
            pipeline_type: &self.pipeline_type,
            description: self.description.as_deref(),
            owner_account_id: &self.owner_account_id,
            created_by: &self.created_by_id,
            created_at: self.created_at,
        }
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct VersionRow {
    pub id: String,
    pub pipeline_id: String,
    pub version: String,
    pub version_key: String,
    /// See [`super::precedence`]; None only before [`fill_precedence_keys`] ran.
    pub precedence_key: Option<String>,
    pub state: String,
    pub description: Option<String>,
    pub definition: String,
    pub content_digest: Option<String>,
    pub approved_by: String,
    pub registered_by: String,
    pub registered_at: i64,
    pub attempts: i64,
    pub attempt_deadline: Option<i64>,
    pub retry_until: Option<i64>,
    pub last_error: Option<String>,
    pub finished_at: Option<i64>,
    pub registration_note: Option<String>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FileRow {
    pub path: String,
    pub digest: String,
    pub size: i64,
}

const PIPELINE_COLUMNS: &str = "p.id, p.namespace, p.name, p.pipeline_type, p.description, p.owner_account_id,
    a.name AS owner_account, p.created_by AS created_by_id, u.name AS created_by, p.created_at,
    p.versions_revision
    FROM pipelines p JOIN accounts a ON a.id = p.owner_account_id JOIN users u ON u.id = p.created_by";

const VERSION_COLUMNS: &str =
    "v.id, v.pipeline_id, v.version, v.version_key, v.precedence_key, v.state, v.description, v.definition,
    v.content_digest, v.approved_by, u.name AS registered_by, v.registered_at, v.attempts,
    v.attempt_deadline, v.retry_until, v.last_error, v.finished_at, v.registration_note
    FROM pipeline_versions v JOIN users u ON u.id = v.registered_by";

pub async fn pipeline_by_key(
    conn: &mut AnyConnection,
    namespace_key: &str,
    name_key: &str,
) -> sqlx::Result<Option<PipelineRow>> {
    sqlx::query_as(&format!(
        "SELECT {PIPELINE_COLUMNS} WHERE p.namespace_key = $1 AND p.name_key = $2"
    ))
    .bind(namespace_key)
    .bind(name_key)
    .fetch_optional(conn)
    .await
}

pub async fn pipeline_by_id(
    conn: &mut AnyConnection,
    id: &str,
) -> sqlx::Result<Option<PipelineRow>> {
    sqlx::query_as(&format!("SELECT {PIPELINE_COLUMNS} WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn version_by_id(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<VersionRow>> {
    sqlx::query_as(&format!("SELECT {VERSION_COLUMNS} WHERE v.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Marks a change to the versions of pipeline `pipeline_id` in namespace `namespace_key`: the
/// namespace's counter moves (migration 0004), and the pipeline is recorded as changed at the
/// new count (migration 0020), so a cached listing re-reads only what changed.
pub async fn bump_namespace_revision(
    conn: &mut AnyConnection,
    namespace_key: &str,
    pipeline_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO namespace_revisions (namespace_key, revision) VALUES ($1, 1)
         ON CONFLICT (namespace_key) DO UPDATE SET revision = namespace_revisions.revision + 1",
    )
    .bind(namespace_key)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO pipeline_listing_revisions (pipeline_id, namespace_key, revision)
         SELECT $1, $2, revision FROM namespace_revisions WHERE namespace_key = $2
         ON CONFLICT (pipeline_id) DO UPDATE
            SET namespace_key = excluded.namespace_key, revision = excluded.revision",
    )
    .bind(pipeline_id)
    .bind(namespace_key)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The same, for the pipeline of the version `version_id`.
pub async fn bump_namespace_revision_of(
    conn: &mut AnyConnection,
    version_id: &str,
) -> sqlx::Result<()> {
    let pipeline: Option<(String, String)> = sqlx::query_as(
        "SELECT p.namespace_key, p.id FROM pipeline_versions v JOIN pipelines p ON p.id = v.pipeline_id
         WHERE v.id = $1",
    )
    .bind(version_id)
    .fetch_optional(&mut *conn)
    .await?;
    match pipeline {
        Some((key, id)) => bump_namespace_revision(conn, &key, &id).await,
        None => Ok(()),
    }
}

/// The change counter of a namespace; 0 before its first change.
pub async fn namespace_revision(
    conn: &mut AnyConnection,
    namespace_key: &str,
) -> sqlx::Result<i64> {
    let revision: Option<i64> =
        sqlx::query_scalar("SELECT revision FROM namespace_revisions WHERE namespace_key = $1")
            .bind(namespace_key)
            .fetch_optional(conn)
            .await?;
    Ok(revision.unwrap_or(0))
}

/// In one read: the change counter of a namespace, and whether `user_id` is a member of
/// `account_id`. What a run checks when it finds its target cached.
pub async fn namespace_revision_and_membership(
    conn: &mut AnyConnection,
    namespace_key: &str,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<(i64, bool)> {
    let (revision, members): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE((SELECT revision FROM namespace_revisions WHERE namespace_key = $1), 0),
            (SELECT COUNT(*) FROM account_members WHERE account_id = $2 AND user_id = $3)",
    )
    .bind(namespace_key)
    .bind(account_id)
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    Ok((revision, members > 0))
}

/// A version with the name of its pipeline.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NamedVersionRow {
    pub pipeline_id: String,
    pub name: String,
    pub version: String,
    pub registered_at: i64,
}

/// Every ready version of a namespace, in no particular order.
pub async fn ready_versions_in(
    conn: &mut AnyConnection,
    namespace_key: &str,
) -> sqlx::Result<Vec<NamedVersionRow>> {
    sqlx::query_as(
        "SELECT p.id AS pipeline_id, p.name, v.version, v.registered_at FROM pipeline_versions v
         JOIN pipelines p ON p.id = v.pipeline_id
         WHERE p.namespace_key = $1 AND v.state = 'ready'",
    )
    .bind(namespace_key)
    .fetch_all(conn)
    .await
}

/// The pipelines of a namespace whose versions changed after its counter was `revision`.
pub async fn pipelines_changed_since(
    conn: &mut AnyConnection,
    namespace_key: &str,
    revision: i64,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT pipeline_id FROM pipeline_listing_revisions
         WHERE namespace_key = $1 AND revision > $2",
    )
    .bind(namespace_key)
    .bind(revision)
    .fetch_all(conn)
    .await
}

/// Every ready version of the pipelines `pipeline_ids`, in no particular order.
pub async fn ready_versions_of(
    conn: &mut AnyConnection,
    pipeline_ids: &[String],
) -> sqlx::Result<Vec<NamedVersionRow>> {
    let mut found = Vec::new();
    // Bound parameters per statement stay well under SQLite's limit. The state is filtered
    // here, not in SQL: with `state = 'ready'` beside the ids, SQLite may walk the index on
    // state (every ready version of every pipeline) instead of the one on the pipeline.
    for ids in pipeline_ids.chunks(500) {
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT p.id, p.name, v.version, v.registered_at, v.state FROM pipeline_versions v
             JOIN pipelines p ON p.id = v.pipeline_id
             WHERE v.pipeline_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, String, String, i64, String)>(&sql);
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        found.extend(rows.into_iter().filter(|row| row.4 == "ready").map(
            |(pipeline_id, name, version, registered_at, _)| NamedVersionRow {
                pipeline_id,
                name,
                version,
                registered_at,
            },
        ));
    }
    Ok(found)
}

/// Every pipeline, or those of one namespace, ordered by namespace and name.
/// The read rule, in SQL: a pipeline `p` is readable by the user whose id is the placeholder
/// `user` when its owning account has that user as a member, or when it lives in a shared
/// namespace (one no account is named after). `Registry::require_readable` says the same for
/// one pipeline.
pub fn readable_by_clause(user: &str) -> String {
    format!(
        "(p.owner_account_id IN (SELECT m.account_id FROM account_members m WHERE m.user_id = {user})
          OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.name_key = p.namespace_key))"
    )
}

/// The pipelines the user may read (see [`readable_by_clause`]), of one namespace if given.
pub async fn list_pipelines_readable_by(
    conn: &mut AnyConnection,
    user_id: &str,
    namespace_key: Option<&str>,
) -> sqlx::Result<Vec<PipelineRow>> {
    let readable = readable_by_clause("$1");
    let query = match namespace_key {
        Some(_) => format!("SELECT {PIPELINE_COLUMNS} WHERE {readable} AND p.namespace_key = $2 ORDER BY p.namespace_key, p.name_key"),
        None => format!("SELECT {PIPELINE_COLUMNS} WHERE {readable} ORDER BY p.namespace_key, p.name_key"),
    };
    let mut query = sqlx::query_as(&query).bind(user_id);
    if let Some(key) = namespace_key {
        query = query.bind(key);
    }
    query.fetch_all(conn).await
}

/// Where a page of pipelines starts: after the one of these keys (pipelines are listed by
/// namespace and name, a unique pair).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelinePosition {
    pub namespace_key: String,
    pub name_key: String,
}

/// Up to `limit` of the pipelines the user may read (of one namespace if given), by namespace
/// and name, from the first or after `after`.
pub async fn readable_pipelines_page(
    conn: &mut AnyConnection,
    user_id: &str,
    namespace_key: Option<&str>,
    after: Option<&PipelinePosition>,
    limit: i64,
) -> sqlx::Result<Vec<PipelineRow>> {
    let readable = readable_by_clause("$1");
    let mut conditions = vec![readable];
    let mut next = 2;
    if namespace_key.is_some() {
        conditions.push(format!("p.namespace_key = ${next}"));
        next += 1;
    }
    if after.is_some() {
        conditions.push(format!(
            "(p.namespace_key, p.name_key) > (${next}, ${})",
            next + 1
        ));
        next += 2;
    }
    let sql = format!(
        "SELECT {PIPELINE_COLUMNS} WHERE {} ORDER BY p.namespace_key, p.name_key LIMIT ${next}",
        conditions.join(" AND ")
    );
    let mut query = sqlx::query_as(&sql).bind(user_id);
    if let Some(key) = namespace_key {
        query = query.bind(key);
    }
    if let Some(after) = after {
        query = query.bind(&after.namespace_key).bind(&after.name_key);
    }
    query.bind(limit).fetch_all(conn).await
}

pub struct NewPipeline<'a> {
    pub id: &'a str,
    pub namespace: &'a str,
    pub namespace_key: String,
    pub name: &'a str,
    pub name_key: String,
    pub pipeline_type: &'a str,
    pub description: Option<&'a str>,
    pub owner_account_id: &'a str,
    pub created_by: &'a str,
    pub created_at: i64,
}

pub async fn insert_pipeline(conn: &mut AnyConnection, p: &NewPipeline<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO pipelines (id, namespace, namespace_key, name, name_key, pipeline_type, description,
            owner_account_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(p.id)
    .bind(p.namespace)
    .bind(&p.namespace_key)
    .bind(p.name)
    .bind(&p.name_key)
    .bind(p.pipeline_type)
    .bind(p.description)
    .bind(p.owner_account_id)
    .bind(p.created_by)
    .bind(p.created_at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Claims the next revision of a pipeline's version set; false if someone changed it since
/// `seen` (the caller re-reads and re-checks).
pub async fn bump_versions_revision(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    seen: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE pipelines SET versions_revision = versions_revision + 1 WHERE id = $1 AND versions_revision = $2")
        .bind(pipeline_id)
        .bind(seen)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn versions_of(
    conn: &mut AnyConnection,
    pipeline_id: &str,
) -> sqlx::Result<Vec<VersionRow>> {
    sqlx::query_as(&format!(
        "SELECT {VERSION_COLUMNS} WHERE v.pipeline_id = $1 ORDER BY v.registered_at, v.version"
    ))
    .bind(pipeline_id)
    .fetch_all(conn)
    .await
}

/// Gives every version stored without a precedence key (those written before migration 0022)
/// its key; a no-op once all have one, so every start may run it. Batched, so that a large
/// store is not one long write lock.
pub async fn fill_precedence_keys(store: &super::Store) -> sqlx::Result<u64> {
    const BATCH: i64 = 1_000;
    let mut filled = 0;
    loop {
        let mut tx = store.begin().await?;
        let missing: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, version FROM pipeline_versions WHERE precedence_key IS NULL LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        for (id, version) in &missing {
            sqlx::query(
                "UPDATE pipeline_versions SET precedence_key = $1
                 WHERE id = $2 AND precedence_key IS NULL",
            )
            .bind(super::precedence::precedence_key(version))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        filled += missing.len() as u64;
        if (missing.len() as i64) < BATCH {
            if filled > 0 {
                tracing::info!(versions = filled, "computed the versions' precedence keys");
            }
            return Ok(filled);
        }
    }
}

pub async fn version_by_key(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    version_key: &str,
) -> sqlx::Result<Option<VersionRow>> {
    sqlx::query_as(&format!(
        "SELECT {VERSION_COLUMNS} WHERE v.pipeline_id = $1 AND v.version_key = $2"
    ))
    .bind(pipeline_id)
    .bind(version_key)
    .fetch_optional(conn)
    .await
}

/// Where a page of a pipeline's versions starts: after the version whose listing columns are
/// these. The listing order is `(precedence_key, registered_at, version_key)`, unique within a
/// pipeline, so a version added or deleted elsewhere in the list moves no other one across it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionPosition {
    pub precedence_key: String,
    pub registered_at: i64,
    pub version_key: String,
}

impl VersionPosition {
    pub fn of(row: &VersionRow) -> Self {
        VersionPosition {
            precedence_key: row
                .precedence_key
                .clone()
                .unwrap_or_else(|| super::precedence::precedence_key(&row.version)),
            registered_at: row.registered_at,
            version_key: row.version_key.clone(),
        }
    }
}

/// Up to `limit` versions of a pipeline in listing order (see [`VersionPosition`]), from the
/// first or after `after`: a keyset read of the index of migration 0022, as fast at the millionth
/// version as at the first.
pub async fn versions_page(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    after: Option<&VersionPosition>,
    limit: i64,
) -> sqlx::Result<Vec<VersionRow>> {
    let order = "ORDER BY v.precedence_key, v.registered_at, v.version_key";
    match after {
        None => {
            sqlx::query_as(&format!(
                "SELECT {VERSION_COLUMNS} WHERE v.pipeline_id = $1 {order} LIMIT $2"
            ))
            .bind(pipeline_id)
            .bind(limit)
            .fetch_all(conn)
            .await
        }
        Some(after) => {
            sqlx::query_as(&format!(
                "SELECT {VERSION_COLUMNS} WHERE v.pipeline_id = $1
                    AND (v.precedence_key, v.registered_at, v.version_key) > ($2, $3, $4)
                 {order} LIMIT $5"
            ))
            .bind(pipeline_id)
            .bind(&after.precedence_key)
            .bind(after.registered_at)
            .bind(&after.version_key)
            .bind(limit)
            .fetch_all(conn)
            .await
        }
    }
}

/// The files of several versions, each version's ordered by path: one query for a page.
pub async fn files_of_versions(
    conn: &mut AnyConnection,
    version_ids: &[String],
) -> sqlx::Result<Vec<(String, FileRow)>> {
    let mut found = Vec::new();
    for ids in version_ids.chunks(500) {
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT version_id, path, digest, size FROM version_files
             WHERE version_id IN ({}) ORDER BY version_id, path",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, String, String, i64)>(&sql);
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        found.extend(
            rows.into_iter()
                .map(|(version, path, digest, size)| (version, FileRow { path, digest, size })),
        );
    }
    Ok(found)
}

/// One page of the versions of an account's pipelines of one type, ordered by pipeline and
/// registration, with how many there are in all.
pub async fn owned_versions_page(
    conn: &mut AnyConnection,
    owner_account_id: &str,
    pipeline_type: &str,
    skip: i64,
    limit: i64,
) -> sqlx::Result<(i64, Vec<VersionRow>)> {
    let owned = "JOIN pipelines p ON p.id = v.pipeline_id
        WHERE p.owner_account_id = $1 AND p.pipeline_type = $2";
    let total: i64 =
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM pipeline_versions v {owned}"))
            .bind(owner_account_id)
            .bind(pipeline_type)
            .fetch_one(&mut *conn)
            .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT {VERSION_COLUMNS} {owned}
         ORDER BY p.namespace_key, p.name_key, v.registered_at, v.id LIMIT $3 OFFSET $4"
    ))
    .bind(owner_account_id)
    .bind(pipeline_type)
    .bind(limit)
    .bind(skip)
    .fetch_all(conn)
    .await?;
    Ok((total, rows))
}

pub struct NewVersion<'a> {
    pub id: &'a str,
    pub pipeline_id: &'a str,
    pub version: &'a str,
    pub version_key: &'a str,
    pub state: &'a str,
    pub description: Option<&'a str>,
    pub definition: &'a str,
    pub content_digest: Option<&'a str>,
    pub approved_by: &'a str,
    pub registered_by: &'a str,
    pub registered_at: i64,
    pub attempts: i64,
    pub attempt_deadline: Option<i64>,
    pub retry_until: Option<i64>,
    pub finished_at: Option<i64>,
    /// Where a registration worker fetches the content from (JSON); None: uploaded inline.
    pub source: Option<&'a str>,
    /// What registering uploaded content had to say (see `registration_note` in 0021).
    pub registration_note: Option<&'a str>,
}

pub async fn insert_version(conn: &mut AnyConnection, v: &NewVersion<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO pipeline_versions (id, pipeline_id, version, version_key, state, description, definition,
            content_digest, approved_by, registered_by, registered_at, attempts, attempt_deadline, retry_until,
            finished_at, source, next_attempt_at, registration_note, precedence_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $11, $17, $18)",
    )
    .bind(v.id)
    .bind(v.pipeline_id)
    .bind(v.version)
    .bind(v.version_key)
    .bind(v.state)
    .bind(v.description)
    .bind(v.definition)
    .bind(v.content_digest)
    .bind(v.approved_by)
    .bind(v.registered_by)
    .bind(v.registered_at)
    .bind(v.attempts)
    .bind(v.attempt_deadline)
    .bind(v.retry_until)
    .bind(v.finished_at)
    .bind(v.source)
    .bind(v.registration_note)
    .bind(super::precedence::precedence_key(v.version))
    .execute(conn)
    .await
    .map(|_| ())
}

/// Records the outcome of a registration attempt. Only a `registering` version moves.
pub async fn finish_registration(
    conn: &mut AnyConnection,
    version_id: &str,
    state: &str,
    last_error: Option<&str>,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE pipeline_versions SET state = $1, last_error = $2, finished_at = $3
         WHERE id = $4 AND state = 'registering'",
    )
    .bind(state)
    .bind(last_error)
    .bind(now)
    .bind(version_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_version(conn: &mut AnyConnection, version_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM version_files WHERE version_id = $1")
        .bind(version_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM pipeline_versions WHERE id = $1")
        .bind(version_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Remembers when a deleted version was first registered (a later deletion of the same number,
/// re-registered meanwhile, keeps the first time).
pub async fn remember_deleted(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    version_key: &str,
    registered_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO deleted_versions (pipeline_id, version_key, registered_at) VALUES ($1, $2, $3)
         ON CONFLICT (pipeline_id, version_key) DO NOTHING",
    )
    .bind(pipeline_id)
    .bind(version_key)
    .bind(registered_at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// When a deleted version of this number was first registered, if one was deleted.
pub async fn deleted_version_registered_at(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    version_key: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT registered_at FROM deleted_versions WHERE pipeline_id = $1 AND version_key = $2",
    )
    .bind(pipeline_id)
    .bind(version_key)
    .fetch_optional(conn)
    .await
}

/// Replaces a version's definition (never its name, version or state).
pub async fn set_definition(
    conn: &mut AnyConnection,
    version_id: &str,
    definition: &str,
    description: Option<&str>,
    content_digest: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pipeline_versions SET definition = $2, description = $3, content_digest = $4 WHERE id = $1",
    )
    .bind(version_id)
    .bind(definition)
    .bind(description)
    .bind(content_digest)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Replaces one file of a version (inserting it if absent).
pub async fn replace_file(
    conn: &mut AnyConnection,
    version_id: &str,
    file: &FileRow,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM version_files WHERE version_id = $1 AND path = $2")
        .bind(version_id)
        .bind(&file.path)
        .execute(&mut *conn)
        .await?;
    insert_file(conn, version_id, file).await
}

pub async fn insert_file(
    conn: &mut AnyConnection,
    version_id: &str,
    file: &FileRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO version_files (version_id, path, digest, size) VALUES ($1, $2, $3, $4)",
    )
    .bind(version_id)
    .bind(&file.path)
    .bind(&file.digest)
    .bind(file.size)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn files_of(conn: &mut AnyConnection, version_id: &str) -> sqlx::Result<Vec<FileRow>> {
    sqlx::query_as(
        "SELECT path, digest, size FROM version_files WHERE version_id = $1 ORDER BY path",
    )
    .bind(version_id)
    .fetch_all(conn)
    .await
}
