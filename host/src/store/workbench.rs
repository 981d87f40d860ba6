//! Projects and the ML Workbench's pipeline records: the projects each belongs to (any number),
//! their collaborators and rename history.

use sqlx::AnyConnection;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub owner_user_id: String,
    pub owner: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WorkbenchRow {
    pub id: String,
    pub name: String,
    pub version: Option<String>,
    pub pipeline_type: String,
    pub kernel_type: Option<String>,
    pub description: Option<String>,
    pub owner_user_id: String,
    pub owner: String,
    pub owner_account_id: String,
    pub artifact_status: String,
    pub repository_url: String,
    pub service_url: Option<String>,
    pub approved_by: String,
    pub created_at: i64,
    pub modified_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HistoryRow {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub changed_by: String,
    pub changed_at: i64,
}

const PROJECT_COLUMNS: &str =
    "p.id, p.name, p.description, p.owner_user_id, u.name AS owner, p.created_at
    FROM projects p JOIN users u ON u.id = p.owner_user_id";

const WORKBENCH_COLUMNS: &str = "w.id, w.name, w.version, w.pipeline_type, w.kernel_type,
    w.description, w.owner_user_id, u.name AS owner, w.owner_account_id, w.artifact_status,
    w.repository_url, w.service_url, w.approved_by, w.created_at, w.modified_at
    FROM workbench_pipelines w JOIN users u ON u.id = w.owner_user_id";

/// A project a pipeline belongs to, or a user who collaborates on one: its id and name.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Named {
    pub id: String,
    pub name: String,
}

pub async fn insert_project(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    name_key: &str,
    description: Option<&str>,
    owner_user_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO projects (id, name, name_key, description, owner_user_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(name)
    .bind(name_key)
    .bind(description)
    .bind(owner_user_id)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A project belongs to its owner's personal account: its members see it, no one else does.
/// `user` is the placeholder (`$1`, `$2`…) of the user asking.
fn project_visible_to_clause(user: &str) -> String {
    format!(
        "(p.owner_user_id = {user} OR EXISTS (
            SELECT 1 FROM account_members m
            WHERE m.account_id = u.personal_account_id AND m.user_id = {user}))"
    )
}

/// The project, whoever owns it (for rules that look at the owner themselves).
pub async fn project(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<ProjectRow>> {
    sqlx::query_as(&format!("SELECT {PROJECT_COLUMNS} WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The project if `user_id` may see it (see [`project_visible_to_clause`]); None otherwise, as
/// if it did not exist.
pub async fn project_visible_to(
    conn: &mut AnyConnection,
    id: &str,
    user_id: &str,
) -> sqlx::Result<Option<ProjectRow>> {
    sqlx::query_as(&format!(
        "SELECT {PROJECT_COLUMNS} WHERE p.id = $1 AND {}",
        project_visible_to_clause("$2")
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

/// The projects `user_id` may see, oldest first.
pub async fn projects_visible_to(
    conn: &mut AnyConnection,
    user_id: &str,
) -> sqlx::Result<Vec<ProjectRow>> {
    sqlx::query_as(&format!(
        "SELECT {PROJECT_COLUMNS} WHERE {} ORDER BY p.created_at, p.id",
        project_visible_to_clause("$1")
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await
}

pub struct NewRecord<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub version: Option<&'a str>,
    pub pipeline_type: &'a str,
    pub kernel_type: Option<&'a str>,
    pub description: Option<&'a str>,
    pub owner_user_id: &'a str,
    pub owner_account_id: &'a str,
    pub repository_url: &'a str,
    pub approved_by: &'a str,
    pub now: i64,
}

/// The key a name and an optional version are unique under, per owner.
pub fn keys(name: &str, version: Option<&str>) -> (String, String) {
    (
        super::name_key(name),
        version.map(super::name_key).unwrap_or_default(),
    )
}

pub async fn insert_record(conn: &mut AnyConnection, r: &NewRecord<'_>) -> sqlx::Result<()> {
    let (name_key, version_key) = keys(r.name, r.version);
    sqlx::query(
        "INSERT INTO workbench_pipelines (id, name, name_key, version, version_key, pipeline_type,
            kernel_type, description, owner_user_id, owner_account_id, artifact_status,
            repository_url, approved_by, created_at, modified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'ACTIVE', $11, $12, $13, $13)",
    )
    .bind(r.id)
    .bind(r.name)
    .bind(name_key)
    .bind(r.version)
    .bind(version_key)
    .bind(r.pipeline_type)
    .bind(r.kernel_type)
    .bind(r.description)
    .bind(r.owner_user_id)
    .bind(r.owner_account_id)
    .bind(r.repository_url)
    .bind(r.approved_by)
    .bind(r.now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn record(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<WorkbenchRow>> {
    sqlx::query_as(&format!("SELECT {WORKBENCH_COLUMNS} WHERE w.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The id of `user_id`'s own pipeline called `name` at `version`, if there is one.
pub async fn owned_record_named(
    conn: &mut AnyConnection,
    user_id: &str,
    name: &str,
    version: Option<&str>,
) -> sqlx::Result<Option<String>> {
    let (name_key, version_key) = keys(name, version);
    sqlx::query_scalar(
        "SELECT id FROM workbench_pipelines
         WHERE owner_user_id = $1 AND name_key = $2 AND version_key = $3",
    )
    .bind(user_id)
    .bind(name_key)
    .bind(version_key)
    .fetch_optional(conn)
    .await
}

/// The pipelines `user_id` owns or collaborates on, active and archived, optionally only those
/// that belong to one project; newest first.
pub async fn records_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
    project_id: Option<&str>,
) -> sqlx::Result<Vec<WorkbenchRow>> {
    let associated = "(w.owner_user_id = $1 OR EXISTS (SELECT 1 FROM workbench_collaborators c
        WHERE c.pipeline_id = w.id AND c.user_id = $1))";
    let query = match project_id {
        Some(_) => format!(
            "SELECT {WORKBENCH_COLUMNS} WHERE {associated} AND EXISTS (
                SELECT 1 FROM workbench_project_pipelines pp
                WHERE pp.pipeline_id = w.id AND pp.project_id = $2)
             ORDER BY w.created_at DESC, w.id"
        ),
        None => format!(
            "SELECT {WORKBENCH_COLUMNS} WHERE {associated} ORDER BY w.created_at DESC, w.id"
        ),
    };
    let mut query = sqlx::query_as(&query).bind(user_id);
    if let Some(project_id) = project_id {
        query = query.bind(project_id);
    }
    query.fetch_all(conn).await
}

pub struct RecordChange<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub version: Option<&'a str>,
    pub description: Option<&'a str>,
    pub approved_by: &'a str,
    pub now: i64,
}

pub async fn update_record(conn: &mut AnyConnection, c: &RecordChange<'_>) -> sqlx::Result<()> {
    let (name_key, version_key) = keys(c.name, c.version);
    sqlx::query(
        "UPDATE workbench_pipelines SET name = $2, name_key = $3, version = $4, version_key = $5,
            description = $6, approved_by = $7, modified_at = $8 WHERE id = $1",
    )
    .bind(c.id)
    .bind(c.name)
    .bind(name_key)
    .bind(c.version)
    .bind(version_key)
    .bind(c.description)
    .bind(c.approved_by)
    .bind(c.now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn set_artifact_status(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE workbench_pipelines SET artifact_status = $2, modified_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn set_service_url(
    conn: &mut AnyConnection,
    id: &str,
    service_url: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE workbench_pipelines SET service_url = $2 WHERE id = $1")
        .bind(id)
        .bind(service_url)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Associates a pipeline with a project; false if it was associated already.
pub async fn add_to_project(
    conn: &mut AnyConnection,
    project_id: &str,
    pipeline_id: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO workbench_project_pipelines (project_id, pipeline_id, added_at)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(project_id)
    .bind(pipeline_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Drops a pipeline's association with a project; false if there was none.
pub async fn remove_from_project(
    conn: &mut AnyConnection,
    project_id: &str,
    pipeline_id: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "DELETE FROM workbench_project_pipelines WHERE project_id = $1 AND pipeline_id = $2",
    )
    .bind(project_id)
    .bind(pipeline_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The projects a pipeline belongs to, in the order it joined them.
pub async fn projects_of(conn: &mut AnyConnection, pipeline_id: &str) -> sqlx::Result<Vec<Named>> {
    sqlx::query_as(
        "SELECT p.id, p.name FROM workbench_project_pipelines pp JOIN projects p ON p.id = pp.project_id
         WHERE pp.pipeline_id = $1 ORDER BY pp.added_at, p.name, p.id",
    )
    .bind(pipeline_id)
    .fetch_all(conn)
    .await
}

/// Marks the pipeline changed now (an association was added or dropped).
pub async fn touch(conn: &mut AnyConnection, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE workbench_pipelines SET modified_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn delete_record(conn: &mut AnyConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM workbench_pipelines WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn add_collaborator(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    user_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO workbench_collaborators (pipeline_id, user_id, added_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(pipeline_id)
    .bind(user_id)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A pipeline's collaborators (user id and name), in the order they were added.
pub async fn collaborators(
    conn: &mut AnyConnection,
    pipeline_id: &str,
) -> sqlx::Result<Vec<Named>> {
    sqlx::query_as(
        "SELECT u.id, u.name FROM workbench_collaborators c JOIN users u ON u.id = c.user_id
         WHERE c.pipeline_id = $1 ORDER BY c.added_at, u.name",
    )
    .bind(pipeline_id)
    .fetch_all(conn)
    .await
}

pub async fn insert_history(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    previous: &WorkbenchRow,
    changed_by: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO workbench_history (id, pipeline_id, position, name, version, description, changed_by, changed_at)
         VALUES ($1, $2, (SELECT COALESCE(MAX(position), 0) + 1 FROM workbench_history WHERE pipeline_id = $2),
            $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(pipeline_id)
    .bind(&previous.name)
    .bind(&previous.version)
    .bind(&previous.description)
    .bind(changed_by)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A pipeline's earlier names and versions, oldest first.
pub async fn history(conn: &mut AnyConnection, pipeline_id: &str) -> sqlx::Result<Vec<HistoryRow>> {
    sqlx::query_as(
        "SELECT h.name, h.version, h.description, u.name AS changed_by, h.changed_at
         FROM workbench_history h JOIN users u ON u.id = h.changed_by
         WHERE h.pipeline_id = $1 ORDER BY h.position",
    )
    .bind(pipeline_id)
    .fetch_all(conn)
    .await
}
