//! Starting servers for tests, against either store.

use std::path::PathBuf;

use pipewright::plugins::Grants;
use pipewright::registry::Registry;
use pipewright::server::{build_services, serve_on, ServerConfig};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::Connection;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one async test body against SQLite and against PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::harness::postgres_admin_url().is_some() {
                    super::$name($crate::harness::Backend::Postgres).await
                }
            }
        }
    )*};
}

/// A test peer named by the environment variable `var` (a URL or a program): None, with a note,
/// when it is unset outside CI; under `CI=true` a missing peer fails the run, never skips it.
/// `what` says in a few words which tests need it.
pub fn peer_from_env(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but {var} is unset: {what} cannot run (.ci/run provides it)")
        }
        _ => {
            eprintln!("{var} unset: skipping {what}");
            None
        }
    }
}

/// The PostgreSQL server for tests.
pub fn postgres_admin_url() -> Option<String> {
    peer_from_env("PIPEWRIGHT_TEST_POSTGRES_URL", "the PostgreSQL tests")
}

/// A database URL of a fresh, empty database on `backend`.
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("test.db").display()),
        Backend::Postgres => {
            let admin = postgres_admin_url().expect("checked by the caller");
            let name = format!("pw_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connecting to the test PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("creating a test database");
            let (base, _) = admin.rsplit_once('/').expect("a database URL has a path");
            format!("{base}/{name}")
        }
    }
}

/// Compiled plugin artifacts are shared by every test of the run (the cache is safe for that).
pub fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}

pub struct TestServer {
    pub base: String,
    pub client: Client,
    pub registry: Registry,
    /// The key its download links are signed with.
    pub link_key: std::sync::Arc<[u8]>,
    /// Kept so the directory lives as long as the server (None: a replica's, owned by another).
    _data_dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The per-test database to drop afterwards, on PostgreSQL.
    postgres_database: Option<String>,
    config: ServerConfig,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// A server whose plugins have `grants` (e.g. to a test JupyterHub, see `peers`).
    /// A server whose admin account (`--admin-account`) is [`ADMIN_ACCOUNT`].
    pub async fn start_with_admin(backend: Backend) -> TestServer {
        Self::start_with(backend, |config| {
            config.admin_account = Some(ADMIN_ACCOUNT.into());
        })
        .await
    }

    pub async fn start_with_grants(backend: Backend, grants: Grants) -> TestServer {
        Self::start_with(backend, |config| config.grants = grants).await
    }

    /// Starts a server whose configuration `configure` adjusts first.
    pub async fn start_with(
        backend: Backend,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database(backend, data_dir.path()).await;
        let mut config = ServerConfig::new(data_dir.path(), database_url);
        config.cache_dir = shared_cache_dir();
        configure(&mut config);
        let services = build_services(&config)
            .await
            .expect("building the registry");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = services.clone();
        let api = config.api.clone();
        tokio::spawn(async move {
            serve_on(listener, served, api, async {
                let _ = rx.await;
            })
            .await
            .expect("serving");
        });
        let postgres_database = match backend {
            Backend::Postgres => config
                .database_url
                .rsplit_once('/')
                .map(|(_, name)| name.to_string()),
            Backend::Sqlite => None,
        };
        TestServer {
            base,
            client: Client::new(),
            registry: services.registry,
            link_key: services.link_key,
            _data_dir: Some(data_dir),
            shutdown: Some(tx),
            postgres_database,
            config,
        }
    }

    /// Another server on the same database and data directory (a second replica). It must be
    /// dropped before `self`, which owns the directory and the database.
    pub async fn replica(&self) -> TestServer {
        let services = build_services(&self.config)
            .await
            .expect("building the replica's registry");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (served, api) = (services.clone(), self.config.api.clone());
        tokio::spawn(async move {
            serve_on(listener, served, api, async {
                let _ = rx.await;
            })
            .await
            .expect("serving");
        });
        TestServer {
            base,
            client: Client::new(),
            registry: services.registry,
            link_key: services.link_key,
            _data_dir: None,
            shutdown: Some(tx),
            postgres_database: None,
            config: self.config.clone(),
        }
    }

    /// Another server on the same database, blob store and working copies, with a data directory
    /// of its own (a replica on another machine: with the default local blob directory it
    /// cannot see this server's blobs). Without `registration_worker` it takes no registration
    /// jobs (as if its worker were stopped); it still follows plugin and binding changes.
    /// It must be dropped before `self`, which owns the database.
    pub async fn replica_with_own_data_dir(&self, registration_worker: bool) -> TestServer {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = self.config.clone();
        config.data_dir = data_dir.path().to_path_buf();
        config.workcopy_dir = Some(self.config.workcopy_root());
        let services = build_services(&config)
            .await
            .expect("building the replica's registry");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (served, api) = (services.clone(), config.api.clone());
        tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if registration_worker {
                serve_on(listener, served, api, shutdown)
                    .await
                    .expect("serving");
            } else {
                // serve_on without its registration worker.
                let changes = served.registry.watch_changes();
                axum::serve(listener, pipewright::api::app(served, api))
                    .with_graceful_shutdown(shutdown)
                    .await
                    .expect("serving");
                changes.abort();
            }
        });
        TestServer {
            base,
            client: Client::new(),
            registry: services.registry,
            link_key: services.link_key,
            _data_dir: Some(data_dir),
            shutdown: Some(tx),
            postgres_database: None,
            config,
        }
    }

    /// How the server was configured (its database URL, blob store, directories).
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The server's data directory (database, blobs, working copies).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.data_dir
    }

    /// Every file the server keeps under its data directory but the SQLite database (blobs,
    /// working copies, run files, keys), sorted: to show that a refused request stored nothing.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if !entry.file_name().to_string_lossy().starts_with("test.db") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(self.data_dir(), &mut files);
        files.sort();
        files
    }

    /// A token for `user` in their personal account.
    pub async fn token(&self, user: &str) -> String {
        self.token_in(user, None).await
    }

    pub async fn token_in(&self, user: &str, account: Option<&str>) -> String {
        pipewright::registry::accounts::create_token(self.registry.store(), user, account)
            .await
            .expect("creating a token")
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        call(self.request(Method::GET, path, Some(token))).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        call(self.request(Method::POST, path, Some(token)).json(&body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        call(self.request(Method::DELETE, path, Some(token))).await
    }

    /// Uploads `bytes` as `name` to `/v4/files`, as the real client does (multipart `pfile`),
    /// with `headers` added; (status, answer).
    pub async fn upload(
        &self,
        token: &str,
        bytes: &[u8],
        name: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let form = reqwest::multipart::Form::new().part(
            "pfile",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()),
        );
        let mut request = self.request(Method::POST, "/v4/files", Some(token));
        for (header, value) in headers {
            request = request.header(*header, *value);
        }
        call(request.multipart(form)).await
    }

    /// Creates `namespace/name` of `type` as the token's user; panics unless 201.
    pub async fn create_pipeline(
        &self,
        token: &str,
        namespace: &str,
        name: &str,
        pipeline_type: &str,
    ) -> Value {
        let (status, body) = self
            .post(
                "/v1/pipelines",
                token,
                serde_json::json!({"namespace": namespace, "name": name, "type": pipeline_type}),
            )
            .await;
        assert_eq!(status, 201, "creating {namespace}/{name}: {body}");
        body
    }

    /// Creates the jupyter pipeline `namespace/name` with a notebook at 1.0.0; the notebook's
    /// digest, as its owner sees it. Panics unless both are made.
    pub async fn notebook_digest(&self, token: &str, namespace: &str, name: &str) -> String {
        self.create_pipeline(token, namespace, name, "jupyter")
            .await;
        let (status, version) = self
            .register_notebook(token, namespace, name, "1.0.0")
            .await;
        assert_eq!(status, 201, "{version}");
        version["files"][0]["digest"].as_str().unwrap().to_string()
    }

    /// Registers `version` of a jupyter pipeline with a valid empty notebook.
    pub async fn register_notebook(
        &self,
        token: &str,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> (u16, Value) {
        self.post(
            &format!("/v1/pipelines/{namespace}/{name}/versions"),
            token,
            notebook_version(version),
        )
        .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(database) = self.postgres_database.take() {
            drop_postgres_database(database);
        }
    }
}

/// Drops a per-test PostgreSQL database (FORCE: the test's pool may still hold connections).
/// Runs on its own thread and runtime, since `Drop` cannot await.
pub fn drop_postgres_database(name: String) {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        });
    })
    .join();
}

/// Sends and returns (status, JSON body or Null).
pub async fn call(builder: RequestBuilder) -> (u16, Value) {
    let response: Response = builder.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `body` without its signed download links: a link is signed afresh, with a later expiry, on
/// every answer.
pub fn without_links(body: &mut Value) {
    match body {
        Value::Object(fields) => {
            fields.remove("url");
            fields.values_mut().for_each(without_links);
        }
        Value::Array(items) => items.iter_mut().for_each(without_links),
        _ => {}
    }
}

/// The admin account of [`TestServer::start_with_admin`].
pub const ADMIN_ACCOUNT: &str = "platform";

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub const EMPTY_NOTEBOOK: &str =
    r#"{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}"#;

pub fn notebook_version(version: &str) -> Value {
    serde_json::json!({
        "version": version,
        "files": [{"path": "notebook.ipynb", "content_base64": b64(EMPTY_NOTEBOOK.as_bytes())}]
    })
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
