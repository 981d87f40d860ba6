//! The services the type handlers launch into, as test peers on loopback:
//!
//! - [`JupyterHub`]: a real JupyterHub (with configurable-http-proxy and jupyterhub-singleuser),
//!   configured in a temp dir the way `shared/reference/jupyterhub-for-tests.md` verified: null
//!   authenticator, simple local spawner running as root, named servers, `root_dir` user option,
//!   and a service token with `admin:users`, `admin:servers`, `access:servers`. Found through
//!   `PIPEWRIGHT_TEST_JUPYTERHUB_BIN_DIR` (a venv's bin dir) or `PATH`; when it is missing the
//!   test is skipped with a note, except under `CI=true`, where that fails the run.
//! - [`FakeZeppelin`]: the part of Zeppelin's notebook REST API the `zeppelin` plugin uses
//!   (list, create, get, delete notes), with the documented shapes and status codes, recording
//!   notes and requests so a test can assert what the plugin did.
//!
//! Both are plain blocking values: start one, use `url()`, drop it to stop it. The hub runs in
//! its own process group; dropping it sends SIGTERM (the hub then stops the servers it spawned)
//! and, if it has not exited within a few seconds, SIGKILL to the whole group.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a hub may take to answer `GET /hub/api/` (it takes ~5 s on these machines).
const HUB_START_TIMEOUT: Duration = Duration::from_secs(60);

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `name` in `dir` if given, else on `PATH`.
fn find_program(name: &str, dir: Option<&Path>) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match dir {
        Some(dir) => vec![dir.join(name)],
        None => std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).map(|d| d.join(name)).collect())
            .unwrap_or_default(),
    };
    candidates.into_iter().find(|p| p.is_file())
}

/// A loopback port that was free a moment ago (the hub binds it by number).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A Python string literal (JSON's escaping is valid Python for these strings).
fn py(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// A JupyterHub on loopback, stopped on drop.
pub struct JupyterHub {
    url: String,
    token: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl JupyterHub {
    /// Starts a hub and waits until its API answers; None (skip) when JupyterHub is not
    /// installed, outside CI.
    pub fn start() -> Option<JupyterHub> {
        let bin_dir = std::env::var_os("PIPEWRIGHT_TEST_JUPYTERHUB_BIN_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        let hub = find_program("jupyterhub", bin_dir.as_deref());
        let singleuser = find_program("jupyterhub-singleuser", bin_dir.as_deref());
        let proxy = find_program("configurable-http-proxy", None);
        let (Some(hub), Some(singleuser), Some(proxy)) = (hub, singleuser, proxy) else {
            let what = "jupyterhub and jupyterhub-singleuser (PIPEWRIGHT_TEST_JUPYTERHUB_BIN_DIR or PATH) and configurable-http-proxy (PATH)";
            if under_ci() {
                panic!("CI=true but {what} are not all installed: the JupyterHub tests cannot run (.ci/run installs them)");
            }
            eprintln!("{what} not found: skipping a JupyterHub test");
            return None;
        };

        let dir = tempfile::tempdir().expect("a temp dir for the hub");
        let (proxy_port, hub_port, api_port) = (free_port(), free_port(), free_port());
        let url = format!("http://127.0.0.1:{proxy_port}");
        let token = format!("pw-test-{}", uuid::Uuid::new_v4().simple());
        let d = |name: &str| dir.path().join(name).display().to_string();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let config = format!(
            r#"import os
c = get_config()  # noqa
c.JupyterHub.bind_url = {url}
c.JupyterHub.hub_bind_url = {hub_url}
c.ConfigurableHTTPProxy.api_url = {api_url}
c.ConfigurableHTTPProxy.command = [{proxy}]
c.ConfigurableHTTPProxy.auth_token = {proxy_token}
c.ConfigurableHTTPProxy.pid_file = {proxy_pid}
c.JupyterHub.db_url = {db_url}
c.JupyterHub.cookie_secret_file = {cookie}
c.JupyterHub.pid_file = {hub_pid}
c.JupyterHub.authenticator_class = "null"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {home}
c.Spawner.cmd = [{singleuser}]
c.Spawner.args = ["--allow-root"]
c.Spawner.ip = "127.0.0.1"
# The suite runs on two busy cores, where a single-user server importing JupyterLab has taken
# more than the hub's default 30 s to answer (it then gives up on it): wait as long as the
# jupyter plugin does (its spawn-timeout-seconds, 90 by default).
c.Spawner.http_timeout = 90
c.Spawner.start_timeout = 90
c.JupyterHub.allow_named_servers = True
c.JupyterHub.services = [{{"name": "pipewright", "api_token": {token}}}]
c.JupyterHub.load_roles = [{{
    "name": "pipewright-launcher",
    "scopes": ["admin:users", "admin:servers", "access:servers"],
    "services": ["pipewright"],
}}]

def apply_user_options(spawner, user_options):
    # The launcher's working copy becomes the server's root, only if it is a real directory:
    # anything else is refused (the hub answers 400 with this message).
    root = user_options.get("root_dir")
    if root is None:
        return
    if not isinstance(root, str) or not os.path.isabs(root) or not os.path.isdir(root):
        raise ValueError("root_dir must be an existing absolute directory: %r" % (root,))
    spawner.notebook_dir = os.path.realpath(root)

c.Spawner.apply_user_options = apply_user_options
"#,
            url = py(&url),
            hub_url = py(&format!("http://127.0.0.1:{hub_port}")),
            api_url = py(&format!("http://127.0.0.1:{api_port}")),
            proxy = py(&proxy.display().to_string()),
            proxy_token = py(&uuid::Uuid::new_v4().simple().to_string()),
            proxy_pid = py(&d("proxy.pid")),
            db_url = py(&format!("sqlite:///{}", d("hub.sqlite"))),
            cookie = py(&d("cookie_secret")),
            hub_pid = py(&d("hub.pid")),
            home = py(&format!("{}/{{username}}", d("home"))),
            singleuser = py(&singleuser.display().to_string()),
            token = py(&token),
        );
        let config_path = dir.path().join("jupyterhub_config.py");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("hub.log")).unwrap();

        let mut command = Command::new(&hub);
        command
            .arg("-f")
            .arg(&config_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // The hub's binary dir first on PATH: the hub and its spawner look up helpers there.
        if let Some(bin) = hub.parent() {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![bin.to_path_buf()];
            dirs.extend(std::env::split_paths(&path));
            command.env("PATH", std::env::join_paths(dirs).unwrap());
        }
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let child = command.spawn().expect("starting jupyterhub");
        let mut hub = JupyterHub {
            url,
            token,
            child,
            dir,
        };
        hub.wait_ready();
        Some(hub)
    }

    /// The hub's public base URL (the proxy), e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The launcher service's API token (send as `Authorization: token …`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The hub's log so far, to explain a failure.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hub.log")).unwrap_or_default()
    }

    /// `GET {url}{path}` with the service token: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http(
            "GET",
            &format!("{}{path}", self.url),
            Some(&self.token),
            None,
        )
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "jupyterhub exited ({status}) before answering:\n{}",
                    self.log()
                );
            }
            let (status, _) = http("GET", &format!("{}/hub/api/", self.url), None, None);
            if status == 200 {
                return;
            }
            if started.elapsed() > HUB_START_TIMEOUT {
                panic!(
                    "jupyterhub did not answer GET /hub/api/ within {HUB_START_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for JupyterHub {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SIGTERM lets the hub stop the servers it spawned (they run in sessions of their own);
        // SIGKILL to the group is for a hub that does not exit.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// One blocking request; status 0 when nothing answered.
pub fn http(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("token {token}"));
    }
    if body.is_some() {
        request = request.header("Content-Type", "application/json");
    }
    let request = request
        .body(body.unwrap_or_default().as_bytes().to_vec())
        .unwrap();
    match agent.run(request) {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            (status, text)
        }
        Err(_) => (0, String::new()),
    }
}

/// A note of [`FakeZeppelin`].
#[derive(Clone, Debug)]
pub struct FakeNote {
    pub id: String,
    /// As Zeppelin 0.9+ stores it: with a leading `/`.
    pub path: String,
    pub paragraphs: Vec<serde_json::Value>,
}

/// A request [`FakeZeppelin`] received.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct ZeppelinState {
    notes: BTreeMap<String, FakeNote>,
    requests: Vec<SeenRequest>,
    next_id: u64,
}

/// An axum app served on a loopback port from its own thread and runtime (so blocking test code
/// can call it); stopped on drop.
pub struct Loopback {
    url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Loopback {
    pub fn serve(app: axum::Router) -> Loopback {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Loopback {
            url,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Zeppelin's notebook REST API subset; stopped on drop.
pub struct FakeZeppelin {
    server: Loopback,
    state: Arc<Mutex<ZeppelinState>>,
}

impl FakeZeppelin {
    pub fn start() -> FakeZeppelin {
        use axum::routing::get;

        let state = Arc::new(Mutex::new(ZeppelinState::default()));
        let app = axum::Router::new()
            .route(
                "/",
                get(|| async { axum::response::Html("<html>Zeppelin</html>") }),
            )
            .route(
                "/api/notebook",
                get(zeppelin::list_notes).post(zeppelin::create_note),
            )
            .route(
                "/api/notebook/{id}",
                get(zeppelin::get_note).delete(zeppelin::delete_note),
            )
            .fallback(zeppelin::not_found)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                zeppelin::record,
            ))
            .with_state(state.clone());
        FakeZeppelin {
            server: Loopback::serve(app),
            state,
        }
    }

    /// Its base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// Every note, ordered by id.
    pub fn notes(&self) -> Vec<FakeNote> {
        self.state.lock().unwrap().notes.values().cloned().collect()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().requests.clone()
    }
}

/// The handlers, answering as Zeppelin's notebook REST API documents.
mod zeppelin {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, Request, State};
    use axum::http::StatusCode;
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};
    use axum::Json;
    use serde_json::{json, Value};

    use super::{FakeNote, SeenRequest, ZeppelinState};

    type Shared = State<Arc<Mutex<ZeppelinState>>>;

    fn answer(status: StatusCode, body: Value) -> Response {
        (status, Json(body)).into_response()
    }

    fn not_found_note(id: &str) -> Response {
        answer(
            StatusCode::NOT_FOUND,
            json!({"status": "NOT_FOUND", "message": format!("No such note: {id}")}),
        )
    }

    pub async fn record(State(state): Shared, request: Request, next: Next) -> Response {
        let seen = SeenRequest {
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
            authorization: request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        state.lock().unwrap().requests.push(seen);
        next.run(request).await
    }

    pub async fn list_notes(State(state): Shared) -> Response {
        let state = state.lock().unwrap();
        let body: Vec<Value> = state
            .notes
            .values()
            .map(|n| json!({"id": n.id, "path": n.path}))
            .collect();
        answer(
            StatusCode::OK,
            json!({"status": "OK", "message": "", "body": body}),
        )
    }

    pub async fn create_note(State(state): Shared, body: axum::body::Bytes) -> Response {
        let request: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"status": "INTERNAL_SERVER_ERROR", "message": format!("invalid note request: {e}")}),
                )
            }
        };
        let name = request
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
            .unwrap_or("Untitled Note");
        let path = format!("/{}", name.trim_start_matches('/'));
        let mut state = state.lock().unwrap();
        if state.notes.values().any(|n| n.path == path) {
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"status": "INTERNAL_SERVER_ERROR", "message": format!("Note '{path}' existed")}),
            );
        }
        state.next_id += 1;
        // Zeppelin's ids: 9 upper-case alphanumerics.
        let id = format!("2PW{:06}", state.next_id);
        let paragraphs = request
            .get("paragraphs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        state.notes.insert(
            id.clone(),
            FakeNote {
                id: id.clone(),
                path,
                paragraphs,
            },
        );
        answer(
            StatusCode::OK,
            json!({"status": "OK", "message": "", "body": id}),
        )
    }

    pub async fn get_note(State(state): Shared, Path(id): Path<String>) -> Response {
        let state = state.lock().unwrap();
        match state.notes.get(&id) {
            Some(note) => answer(
                StatusCode::OK,
                json!({"status": "OK", "message": "", "body": {
                    "paragraphs": note.paragraphs,
                    "name": note.path.rsplit('/').next().unwrap_or_default(),
                    "path": note.path,
                    "id": note.id,
                    "angularObjects": {},
                    "config": {},
                    "info": {},
                }}),
            ),
            None => not_found_note(&id),
        }
    }

    pub async fn delete_note(State(state): Shared, Path(id): Path<String>) -> Response {
        match state.lock().unwrap().notes.remove(&id) {
            Some(_) => answer(StatusCode::OK, json!({"status": "OK", "message": ""})),
            None => not_found_note(&id),
        }
    }

    pub async fn not_found() -> Response {
        answer(
            StatusCode::NOT_FOUND,
            json!({"status": "NOT_FOUND", "message": "Not found"}),
        )
    }
}
