//! The registry's storage: SQLite (the embedded default) or PostgreSQL, through one sqlx
//! `AnyPool` and one set of portable SQL (`$1` placeholders, which both accept).
//!
//! Migrations are embedded (`host/migrations/`) and run at start. Functions here take an
//! `&mut AnyConnection` so the registry composes them inside one transaction: every request
//! commits completely or changes nothing.

pub mod accounts;
pub mod bindings;
pub mod counters;
pub mod leases;
pub mod pipelines;
pub mod plugins;
pub mod pointers;
pub mod precedence;
pub mod registrations;
pub mod run_slots;
pub mod runs;
pub mod secrets;
pub mod sessions;
pub mod uploads;
pub mod workbench;
pub mod workflows;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

/// The key a name is stored and looked up by: case-folded, so `Test-Success` and
/// `test-success` are one name (DESIGN invariant 1). Every `*_key` column holds it.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("unsupported database URL `{url}`: use sqlite://PATH or postgres://…")
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Kept for what the pool cannot do: a PostgreSQL `LISTEN` connection.
    url: String,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Connects, creating a SQLite file if absent, and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("parsing database URL for {backend:?}"))?
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            // Checking a connection before handing it out is a round trip per acquire; an
            // embedded SQLite connection does not go stale the way a network one does.
            .test_before_acquire(backend != Backend::Sqlite)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; wait for the writer lock
                        // instead of failing with SQLITE_BUSY.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        // FULL: a commit is on disk (the WAL synced) before it is acknowledged,
                        // so what the server answered for (versions, registration states,
                        // plugins, bindings, accounts, tokens, uploads, Acumos records) survives
                        // a power loss, as on PostgreSQL. Run records are written on a
                        // connection of their own at NORMAL instead (see `runs::direct`): a
                        // power loss may lose the last of them, never the database's consistency.
                        sqlx::query("PRAGMA synchronous = FULL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to the {backend:?} database"))?;
        MIGRATOR
            .run(&pool)
            .await
            .context("applying database migrations")?;
        let store = Store {
            pool,
            backend,
            url: url.to_string(),
        };
        pipelines::fill_precedence_keys(&store)
            .await
            .context("computing the precedence keys of versions stored before migration 0022")?;
        Ok(store)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that may write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails with
    /// `SQLITE_BUSY` at once, without waiting, when another connection wrote in between.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database file, on SQLite (None for PostgreSQL and an in-memory database).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url).ok()?;
        let file = options.get_filename();
        let in_memory = file.as_os_str() == ":memory:" || self.url.contains("mode=memory");
        (!in_memory).then(|| file.to_path_buf())
    }

    /// A connection that receives the change notifications of [`counters::bump`]; PostgreSQL
    /// only (None on SQLite, where servers sharing a file poll).
    pub async fn change_listener(&self) -> Option<sqlx::postgres::PgListener> {
        if self.backend != Backend::Postgres {
            return None;
        }
        let mut listener = match sqlx::postgres::PgListener::connect(&self.url).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for changes; polling only");
                return None;
            }
        };
        match listener.listen(counters::CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for changes; polling only");
                None
            }
        }
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// Milliseconds since the Unix epoch: the store's one time format.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Whether `error` is a uniqueness violation (a concurrent insert of the same key).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the server acknowledges survives a power loss: the pool's commits are synced
    /// (`FULL`). Run records, group-committed on a connection of their own, sync at checkpoints
    /// (`NORMAL`).
    #[tokio::test]
    async fn acknowledged_writes_are_synced_and_run_records_at_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        let (pool_level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let direct = runs::direct::open(&path).unwrap();
        let runs_level: i64 = direct
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap();
        // SQLite's numbers: 1 NORMAL, 2 FULL.
        assert_eq!((pool_level, runs_level), (2, 1));
    }

    /// A SQLite database in a folder of its own, migrated up to (not including) migration
    /// `version`: the store a server older than that migration left. Its folder, URL and pool.
    async fn migrated_before(version: i64) -> (tempfile::TempDir, String, sqlx::AnyPool) {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("db.sqlite").display()
        );
        let pool = AnyPoolOptions::new().connect(&url).await.unwrap();
        let older = sqlx::migrate::Migrator {
            migrations: MIGRATOR
                .migrations
                .iter()
                .filter(|m| m.version < version)
                .cloned()
                .collect(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        older.run(&pool).await.unwrap();
        (dir, url, pool)
    }

    /// Migration 0018 carries the one project a workbench pipeline had (a column) over to the
    /// associations table, where it may have several, and empties the column.
    #[tokio::test]
    async fn a_pipelines_project_is_carried_over_to_its_associations() {
        let (_dir, url, pool) = migrated_before(18).await;
        for statement in [
            "INSERT INTO accounts (id, name, name_key, created_at) VALUES ('a', 'alice', 'alice', 1)",
            "INSERT INTO users (id, name, name_key, personal_account_id, created_at)
             VALUES ('u', 'alice', 'alice', 'a', 1)",
            "INSERT INTO projects (id, name, name_key, owner_user_id, created_at)
             VALUES ('p', 'study', 'study', 'u', 1)",
            "INSERT INTO workbench_pipelines (id, name, name_key, version_key, pipeline_type,
                owner_user_id, owner_account_id, project_id, artifact_status, repository_url,
                approved_by, created_at, modified_at)
             VALUES ('in', 'churn', 'churn', '', 'jupyter', 'u', 'a', 'p', 'ACTIVE', '/pipelines/in',
                '[]', 1, 7),
                    ('alone', 'other', 'other', '', 'jupyter', 'u', 'a', NULL, 'ACTIVE',
                '/pipelines/alone', '[]', 1, 1)",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let store = Store::connect(&url).await.unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        let associations: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT project_id, pipeline_id, added_at FROM workbench_project_pipelines",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert_eq!(associations, [("p".into(), "in".into(), 7)]);
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM workbench_pipelines WHERE project_id IS NOT NULL",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(left, 0);
    }

    /// Versions stored before migration 0022 get their precedence key when the server starts,
    /// and starting again changes nothing.
    #[tokio::test]
    async fn versions_stored_before_their_key_get_it_at_start() {
        let (_dir, url, pool) = migrated_before(22).await;
        let mut statements = vec![
            "INSERT INTO accounts (id, name, name_key, created_at) VALUES ('a', 'alice', 'alice', 1)".to_string(),
            "INSERT INTO users (id, name, name_key, personal_account_id, created_at)
             VALUES ('u', 'alice', 'alice', 'a', 1)".into(),
            "INSERT INTO pipelines (id, namespace, namespace_key, name, name_key, pipeline_type,
                owner_account_id, created_by, created_at) VALUES ('p', 'alice', 'alice', 'p', 'p', 'jupyter', 'a', 'u', 1)".into(),
        ];
        // More than one batch of the fill.
        let versions: Vec<String> = (0..1_500)
            .map(|i| format!("{}.{}.0", i / 10, i % 10))
            .chain(["legacy".to_string(), "1.0.0-rc.1".into()])
            .collect();
        for (i, version) in versions.iter().enumerate() {
            statements.push(format!(
                "INSERT INTO pipeline_versions (id, pipeline_id, version, version_key, state,
                    definition, approved_by, registered_by, registered_at)
                 VALUES ('v{i}', 'p', '{version}', '{version}', 'ready', 'null', '[]', 'u', {i})"
            ));
        }
        for statement in statements {
            sqlx::query(&statement).execute(&pool).await.unwrap();
        }
        pool.close().await;

        for _ in 0..2 {
            let store = Store::connect(&url).await.unwrap();
            let keys: Vec<(String, Option<String>)> =
                sqlx::query_as("SELECT version, precedence_key FROM pipeline_versions")
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
            assert_eq!(keys.len(), versions.len());
            for (version, key) in keys {
                assert_eq!(key, Some(precedence::precedence_key(&version)), "{version}");
            }
            store.pool().close().await;
        }
    }
}
