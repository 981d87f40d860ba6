//! The plugin registry's rows: plugin versions (immutable once written) and the append-only
//! log of activations, whose last entry per plugin says which version is active.

use sqlx::AnyConnection;

/// The change counter bumped with every activation.
pub const COUNTER: &str = "plugins";

/// A plugin version as stored, with the name of the user who added it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PluginVersionRow {
    pub name: String,
    pub version: String,
    pub world: String,
    pub wit: String,
    pub digest: String,
    pub size: i64,
    pub type_id: Option<String>,
    /// JSON `{summary, codes}` of a 0.2.0 policy.
    pub about: Option<String>,
    /// JSON list of the surfaces besides `/v1` a 0.3.0 type handler's type is offered on.
    pub surfaces: Option<String>,
    pub builtin: i64,
    /// The user's name; None for built-ins.
    pub added_by: Option<String>,
    pub added_at: i64,
}

/// What adding a version writes.
pub struct NewPluginVersion {
    pub name: String,
    pub version: String,
    pub world: &'static str,
    pub wit: &'static str,
    pub digest: String,
    pub size: i64,
    pub type_id: Option<String>,
    pub about: Option<String>,
    pub surfaces: Option<String>,
    /// None: a built-in.
    pub added_by_user_id: Option<String>,
    pub added_at: i64,
}

const SELECT_VERSIONS: &str =
    "SELECT v.name, v.version, v.world, v.wit, v.digest, v.size, v.type_id, v.about,
            v.surfaces, v.builtin, u.name AS added_by, v.added_at
     FROM plugin_versions v LEFT JOIN users u ON u.id = v.added_by";

/// Inserts a version. An uploaded version that exists is a uniqueness violation (versions are
/// immutable); a built-in that exists is brought in line with this binary, which owns its
/// built-ins (another build of the same version may have recorded other bytes).
pub async fn insert_version(conn: &mut AnyConnection, new: &NewPluginVersion) -> sqlx::Result<()> {
    let builtin = new.added_by_user_id.is_none();
    let on_conflict = if builtin {
        " ON CONFLICT (name, version) DO UPDATE
             SET world = $3, wit = $4, digest = $5, size = $6, type_id = $7, about = $8,
                 surfaces = $12
             WHERE plugin_versions.builtin = 1"
    } else {
        ""
    };
    sqlx::query(&format!(
        "INSERT INTO plugin_versions
             (name, version, world, wit, digest, size, type_id, about, builtin, added_by, added_at,
              surfaces)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12){on_conflict}"
    ))
    .bind(&new.name)
    .bind(&new.version)
    .bind(new.world)
    .bind(new.wit)
    .bind(&new.digest)
    .bind(new.size)
    .bind(&new.type_id)
    .bind(&new.about)
    .bind(i64::from(builtin))
    .bind(&new.added_by_user_id)
    .bind(new.added_at)
    .bind(&new.surfaces)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn version(
    conn: &mut AnyConnection,
    name: &str,
    version: &str,
) -> sqlx::Result<Option<PluginVersionRow>> {
    sqlx::query_as(&format!(
        "{SELECT_VERSIONS} WHERE v.name = $1 AND v.version = $2"
    ))
    .bind(name)
    .bind(version)
    .fetch_optional(conn)
    .await
}

/// Every version of every plugin, ordered by name then when added.
pub async fn all_versions(conn: &mut AnyConnection) -> sqlx::Result<Vec<PluginVersionRow>> {
    sqlx::query_as(&format!(
        "{SELECT_VERSIONS} ORDER BY v.name, v.added_at, v.version"
    ))
    .fetch_all(conn)
    .await
}

/// Every version of plugin `name`, in the order they were added.
pub async fn versions_of(
    conn: &mut AnyConnection,
    name: &str,
) -> sqlx::Result<Vec<PluginVersionRow>> {
    sqlx::query_as(&format!(
        "{SELECT_VERSIONS} WHERE v.name = $1 ORDER BY v.added_at, v.version"
    ))
    .bind(name)
    .fetch_all(conn)
    .await
}

/// The last activation of every plugin that has one: `(name, active version or None)`.
pub async fn current_activations(
    conn: &mut AnyConnection,
) -> sqlx::Result<Vec<(String, Option<String>)>> {
    sqlx::query_as(
        "SELECT a.name, a.version FROM plugin_activations a
         WHERE a.seq = (SELECT MAX(b.seq) FROM plugin_activations b WHERE b.name = a.name)
         ORDER BY a.name",
    )
    .fetch_all(conn)
    .await
}

/// The activations of `name`, newest first.
pub async fn activation_log(
    conn: &mut AnyConnection,
    name: &str,
) -> sqlx::Result<Vec<Option<String>>> {
    sqlx::query_scalar("SELECT version FROM plugin_activations WHERE name = $1 ORDER BY seq DESC")
        .bind(name)
        .fetch_all(conn)
        .await
}

/// Appends an activation of `version` (None: deactivation) and bumps the counter, in the
/// caller's transaction.
pub async fn append_activation(
    conn: &mut AnyConnection,
    name: &str,
    version: Option<&str>,
    user_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO plugin_activations (name, seq, version, changed_by, changed_at)
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM plugin_activations WHERE name = $1),
                 $2, $3, $4)",
    )
    .bind(name)
    .bind(version)
    .bind(user_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    super::counters::bump(conn, COUNTER).await
}

pub async fn revision(conn: &mut AnyConnection) -> sqlx::Result<i64> {
    super::counters::revision(conn, COUNTER).await
}
