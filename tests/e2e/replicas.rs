//! Stateless replicas: every surface's main flow with its requests alternating between two
//! servers, A and B, that share only PostgreSQL, an S3-compatible store (moto on loopback) and
//! the working-copy folder, each with a data directory of its own; and the same flows on the
//! embedded default (SQLite, local blob directory), where A and B are one server.
//!
//! In the shared setup A runs no registration worker, so a registration submitted through A is
//! finished by B's. The kill tests start a third server as a process, kill it (SIGKILL) with a
//! registration or a run in progress, and watch B finish the registration and fail the run.
//!
//! The S3 peer is PyPI `moto[server]`, found through `PIPEWRIGHT_TEST_MOTO_SERVER` (the path of
//! `moto_server`; `.ci/run` installs it). Without it, or without PostgreSQL, the shared tests
//! print a note and pass, except under `CI=true`, where they fail.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{free_port, serve_binary_with_env, Running, BIN};
use crate::gbdx::{hello_component, quick_registration, wait_for_state, wasm_task, HeldSource};
use crate::harness::{b64, call, postgres_admin_url, Backend, TestServer, ADMIN_ACCOUNT};

const TASKS: &str = "/workflows/v1/tasks";
const WORKBENCH: &str = "/mlWorkbench/v1/pipeline";
const BUCKET: &str = "pipewright-test";
const PREFIX: &str = "replicas";

/// The `moto_server` binary.
pub fn moto_server_binary() -> Option<String> {
    crate::harness::peer_from_env(
        "PIPEWRIGHT_TEST_MOTO_SERVER",
        "the tests against an S3 store",
    )
}

/// A moto S3 server on a free loopback port with one empty bucket; stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub async fn start(binary: &str) -> Moto {
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
            let mut moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            // Making the bucket is the readiness check.
            let deadline = Instant::now() + Duration::from_secs(30);
            let client = reqwest::Client::new();
            loop {
                if moto.child.try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: another one
                }
                let made = client
                    .put(format!("{}/{BUCKET}", moto.endpoint))
                    .send()
                    .await;
                if made.is_ok_and(|r| r.status().is_success()) {
                    return moto;
                }
                assert!(Instant::now() < deadline, "moto never answered");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("moto_server could not start on five free ports");
    }

    /// The settings a server in this process is given (what `AWS_*` says to a process).
    pub fn settings(&self) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .map(|(key, value)| (key.to_ascii_lowercase(), value))
            .collect()
    }

    /// The `AWS_*` environment of a server process.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// The `--blob-store` of the test bucket.
    pub fn url(&self) -> String {
        format!("s3://{BUCKET}/{PREFIX}")
    }

    /// How many objects the bucket holds under the prefix (moto's ListObjectsV2).
    pub async fn object_count(&self) -> usize {
        let listing = reqwest::get(format!(
            "{}/{BUCKET}?list-type=2&prefix={PREFIX}/",
            self.endpoint
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        listing.matches("<Key>").count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which deployment the flows run against.
#[derive(Clone, Copy, Debug)]
pub enum Setup {
    /// One server, SQLite and the local blob directory: A and B are the same server.
    Embedded,
    /// Two servers with their own data directories on one PostgreSQL database, one S3 bucket
    /// and one working-copy folder.
    Shared,
}

/// Runs one async flow against both setups, as two tests.
macro_rules! on_both_setups {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(super::Setup::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn shared() {
                if super::shared_peers_present() {
                    super::$name(super::Setup::Shared).await
                }
            }
        }
    )*};
}

/// PostgreSQL and moto are both there (a missing one is a failure under CI).
fn shared_peers_present() -> bool {
    let postgres = postgres_admin_url().is_some();
    let moto = moto_server_binary().is_some();
    postgres && moto
}

/// The servers of one test. Fields drop in order: A (a replica) before B, which owns the
/// database, then the S3 server and the shared folder.
pub struct Replicas {
    a: Option<TestServer>,
    b: TestServer,
    moto: Option<Moto>,
    _workcopies: Option<tempfile::TempDir>,
}

impl Replicas {
    /// Starts `setup`, B's registration worker polling every `poll` (A has none when apart).
    pub async fn start_with_poll(setup: Setup, poll: Duration) -> Replicas {
        let configure = |config: &mut pipewright::server::ServerConfig| {
            config.admin_account = Some(ADMIN_ACCOUNT.into());
            config.registration = quick_registration();
            config.registration.poll_interval = poll;
            // The kill test's content source is a loopback server of the test's own.
            config.registration.fetch_policy = crate::gbdx::loopback_allowed();
        };
        match setup {
            Setup::Embedded => Replicas {
                a: None,
                b: TestServer::start_with(Backend::Sqlite, configure).await,
                moto: None,
                _workcopies: None,
            },
            Setup::Shared => {
                let moto = Moto::start(&moto_server_binary().expect("checked")).await;
                let workcopies = tempfile::tempdir().unwrap();
                let b = TestServer::start_with(Backend::Postgres, |config| {
                    configure(config);
                    config.blob_store = Some(moto.url().parse().unwrap());
                    config.blob_store_settings = moto.settings();
                    config.workcopy_dir = Some(workcopies.path().to_path_buf());
                })
                .await;
                let a = b.replica_with_own_data_dir(false).await;
                assert_ne!(a.data_dir(), b.data_dir());
                Replicas {
                    a: Some(a),
                    b,
                    moto: Some(moto),
                    _workcopies: Some(workcopies),
                }
            }
        }
    }

    pub async fn start(setup: Setup) -> Replicas {
        Self::start_with_poll(setup, quick_registration().poll_interval).await
    }

    pub fn a(&self) -> &TestServer {
        self.a.as_ref().unwrap_or(&self.b)
    }

    pub fn b(&self) -> &TestServer {
        &self.b
    }

    /// Starts a third server as a process on the same stores (its own data directory when the
    /// setup is shared; B's when embedded, as a restarted server would).
    async fn spawn_process(&self) -> (Running, String, Option<tempfile::TempDir>) {
        let config = self.b.config();
        let own_dir = self.moto.as_ref().map(|_| tempfile::tempdir().unwrap());
        let data_dir = own_dir
            .as_ref()
            .map_or(config.data_dir.clone(), |d| d.path().to_path_buf());
        let cache_dir = crate::harness::shared_cache_dir();
        let workcopies = config.workcopy_root();
        let mut args: Vec<String> = [
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--database-url",
            &config.database_url,
            "--cache-dir",
            cache_dir.to_str().unwrap(),
            "--workcopy-dir",
            workcopies.to_str().unwrap(),
            "--registration-lease-secs",
            "1",
            "--allow-fetch",
            "127.0.0.1",
        ]
        .map(String::from)
        .to_vec();
        let mut env = Vec::new();
        if let Some(moto) = &self.moto {
            args.extend(["--blob-store".to_string(), moto.url()]);
            env = moto.env();
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (running, base) = serve_binary_with_env(&args, &env).await;
        (running, base, own_dir)
    }
}

/// `url` (a link one server made) pointed at `server` instead.
fn on_server(url: &str, server: &TestServer) -> String {
    let path = url.splitn(4, '/').nth(3).expect("an absolute URL");
    format!("{}/{path}", server.base)
}

/// Runs `pipewright pipeline push DIR` against `base`; the pointer it prints.
fn push_to(dir: &std::path::Path, base: &str, token: &str) -> String {
    let out = Command::new(BIN)
        .args(["pipeline", "push"])
        .arg(dir)
        .args(["--server", base, "--token", token])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A run through `server`, retried while the pipeline is not found there yet (a replica may
/// learn of a new version a moment later).
async fn run_on(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, done) = server.post("/v4/runs", token, body.clone()).await;
        if status != 404 || Instant::now() > deadline {
            return (status, done);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Uploads `bytes` as `/v4/files` does for the Mystic client (multipart field `pfile`).
async fn upload_file(server: &TestServer, token: &str, name: &str, bytes: &[u8]) -> Value {
    let form = reqwest::multipart::Form::new().part(
        "pfile",
        reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()),
    );
    let (status, uploaded) = call(
        server
            .request(Method::POST, "/v4/files", Some(token))
            .multipart(form),
    )
    .await;
    assert_eq!(status, 200, "{uploaded}");
    uploaded
}

/// The `file-io` example as `shout:version` (a file in, a file and a count out).
fn shout_dir(version: &str) -> tempfile::TempDir {
    crate::mystic::pipeline_dir(
        "file-io",
        "shout",
        version,
        json!([{"name": "document", "type": "file"}]),
        json!([{"name": "result", "type": "file"}, {"name": "lines", "type": "integer"}]),
        &[("header.txt", "# shouted\n")],
    )
}

fn file_input(uploaded: &Value, name: &str) -> Value {
    json!({"type": "file", "value": null, "file_name": name,
           "file_path": uploaded["path"], "file_url": uploaded["url"]})
}

on_both_setups!(
    a_pipeline_pushed_on_a_runs_on_b,
    an_upload_on_a_is_a_run_input_on_b_and_links_open_on_either,
    a_plugin_activated_on_a_is_enforced_on_b,
    a_task_uploaded_on_a_is_made_ready_by_b,
    an_acumos_record_made_on_a_is_updated_and_deleted_on_b,
    a_killed_server_s_registration_is_finished_and_its_run_failed_by_another,
    a_workflow_running_on_a_is_cancelled_through_b,
);

async fn a_pipeline_pushed_on_a_runs_on_b(setup: Setup) {
    let servers = Replicas::start(setup).await;
    let (a, b) = (servers.a(), servers.b());
    let alice = a.token("alice").await;
    assert_eq!(
        crate::mystic::push_hello(a, &alice, "0.1.0").await,
        "alice/hello:0.1.0"
    );
    let (status, done) = run_on(
        b,
        &alice,
        json!({"pipeline": "alice/hello:0.1.0", "inputs": [{"type": "string", "value": "B"}]}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["outputs"][0]["value"], "Hello, B!");
    if let Some(moto) = &servers.moto {
        assert!(
            moto.object_count().await >= 2,
            "the version's files are in the bucket"
        );
        let local = a.data_dir().join("blobs");
        assert!(
            !a.stored_files().iter().any(|path| path.starts_with(&local)),
            "nothing in A's local blob directory"
        );
    }
}

async fn an_upload_on_a_is_a_run_input_on_b_and_links_open_on_either(setup: Setup) {
    let servers = Replicas::start(setup).await;
    let (a, b) = (servers.a(), servers.b());
    let alice = a.token("alice").await;
    let dir = shout_dir("1.0.0");
    let pointer = push_to(dir.path(), &a.base, &alice);
    let uploaded = upload_file(a, &alice, "doc.txt", b"one\ntwo").await;
    let (status, done) = run_on(
        b,
        &alice,
        json!({"pipeline": pointer, "inputs": [file_input(&uploaded, "doc.txt")]}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["outputs"][1]["value"], 3);
    // B's output link opens on A, A's upload link on B: one link key for both.
    let output_link = done["outputs"][0]["file"]["url"].as_str().unwrap();
    let fetched = reqwest::get(on_server(output_link, a)).await.unwrap();
    assert_eq!(fetched.status(), 200, "{output_link} through A");
    assert_eq!(fetched.text().await.unwrap(), "# shouted\nONE\nTWO");
    let upload_link = uploaded["url"].as_str().unwrap();
    let fetched = reqwest::get(on_server(upload_link, b)).await.unwrap();
    assert_eq!(fetched.status(), 200, "{upload_link} through B");
    assert_eq!(fetched.text().await.unwrap(), "one\ntwo");
    assert_eq!(a.link_key, b.link_key, "one key in the database");
}

async fn a_plugin_activated_on_a_is_enforced_on_b(setup: Setup) {
    let servers = Replicas::start(setup).await;
    let (a, b) = (servers.a(), servers.b());
    let admin = a.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let alice = a.token("alice").await;
    let (status, added) = crate::plugins::upload(
        a,
        &admin,
        "release-only@1.0.0",
        crate::guests::read("release_only.wasm"),
        true,
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let (status, body) =
        crate::bindings::put_binding(a, &admin, "namespace:alice", &["release-only"]).await;
    assert_eq!(status, 200, "{body}");
    b.create_pipeline(&alice, "alice", "churn", "jupyter").await;
    // B follows the change counters within a moment; it must then load the component that A
    // stored, and refuse a pre-release with it.
    crate::plugins::until_release_only_refuses_a_pre_release(b, &alice, Duration::from_secs(10))
        .await;
    let (_, shown) = b.get("/v1/plugins/release-only", &alice).await;
    assert_eq!(shown["active_version"], "1.0.0", "{shown}");
}

async fn a_task_uploaded_on_a_is_made_ready_by_b(setup: Setup) {
    let servers = Replicas::start(setup).await;
    let (a, b) = (servers.a(), servers.b());
    let alice = a.token("alice").await;
    let mut task = crate::gbdx::docker_task("hello", "1.0.0");
    task["inputPortDescriptors"] = json!([{"name": "text", "type": "string"}]);
    task["outputPortDescriptors"] = json!([{"name": "greeting", "type": "string"}]);
    task["containerDescriptors"] =
        json!([{"type": "WASM", "properties": {"upload": b64(&hello_component())}}]);
    let (status, body) = a.post(TASKS, &alice, task).await;
    assert_eq!(status, 200, "{body}");
    // A has no registration worker when apart: B's reads the upload A stored.
    let ready = wait_for_state(b, &alice, "hello", "1.0.0", "ready").await;
    assert_eq!(ready["registration"]["attempts"], 1, "{ready}");
    let (status, shown) = a.get(&format!("{TASKS}/hello:1.0.0"), &alice).await;
    assert_eq!(status, 200, "{shown}");
}

/// A workflow runs on the server that accepted it; a cancel taken by another server stops it
/// there (found in the store within `CANCEL_POLL`), keeping what the task wrote.
async fn a_workflow_running_on_a_is_cancelled_through_b(setup: Setup) {
    use crate::gbdx::{
        chatty_workflow, events_of, finished_workflow, register_chatty, stream, submit,
        task_events, wait_for_event, WORKFLOWS,
    };
    let servers = Replicas::start(setup).await;
    let (a, b) = (servers.a(), servers.b());
    let alice = a.token("alice").await;
    register_chatty(b, &alice, "1.0.0").await;
    let id = submit(a, &alice, chatty_workflow(&[("nap", "nap:60000")])).await;
    wait_for_event(b, &alice, &id, "nap", "started").await;
    let (status, cancelled) = b
        .post(&format!("{WORKFLOWS}/{id}/cancel"), &alice, json!(null))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"]["event"], "canceled", "{cancelled}");
    // A stops the task and keeps its output: it is there once A has seen the cancel.
    let nap = cancelled["tasks"][0]["id"].as_str().unwrap();
    let path = format!("{WORKFLOWS}/{id}/tasks/{nap}/stdout");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, text) = stream(a, &alice, &path).await;
        if text == "napping 60000 ms\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A never stopped the task: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = events_of(a, &alice, &id).await;
    let nap_events: Vec<String> = task_events(&events, "nap")
        .into_iter()
        .map(|(event, _)| event)
        .collect();
    assert_eq!(
        nap_events,
        ["submitted", "scheduled", "started", "canceled"]
    );
    let next = submit(a, &alice, chatty_workflow(&[("quick", "say:done")])).await;
    let next = finished_workflow(b, &alice, &next).await;
    assert_eq!(next["state"]["event"], "succeeded", "{next}");
}

async fn an_acumos_record_made_on_a_is_updated_and_deleted_on_b(setup: Setup) {
    let servers = Replicas::start(setup).await;
    let (a, b) = (servers.a(), servers.b());
    let alice = a.token("alice").await;
    let (status, created) = call(
        a.request(
            Method::POST,
            &format!("{WORKBENCH}/users/alice/pipelines"),
            Some(&alice),
        )
        .json(
            &json!({"pipelineId": {"name": "churn", "versionId": {"label": "1.0"}},
                      "description": "made on A", "pipelineType": "Jupyter"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["pipelineId"]["uuid"].as_str().unwrap().to_string();
    let workcopies = a.config().workcopy_root();
    assert_eq!(workcopies, b.config().workcopy_root(), "one shared folder");
    let copy = workcopies.join(&id);
    assert!(copy.join("notebook.ipynb").exists(), "A made the copy");

    let (status, updated) = call(
        b.request(
            Method::PUT,
            &format!("{WORKBENCH}/users/alice/pipelines/{id}"),
            Some(&alice),
        )
        .json(
            &json!({"pipelineId": {"name": "churn_v2", "versionId": {"label": "2.0"}},
                      "description": "updated on B"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["pipelineId"]["name"], "churn_v2");
    let (status, state) = call(b.request(
        Method::DELETE,
        &format!("{WORKBENCH}/users/alice/pipelines/{id}"),
        Some(&alice),
    ))
    .await;
    assert_eq!(status, 200, "{state}");
    assert!(!copy.exists(), "B's delete removed A's working copy");
    let left: Vec<_> = std::fs::read_dir(&workcopies)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "no staging folder left: {left:?}");
    let (status, _) = call(a.request(
        Method::GET,
        &format!("{WORKBENCH}/users/alice/pipelines/{id}"),
        Some(&alice),
    ))
    .await;
    assert_eq!(status, 404, "gone for A too");
}

async fn a_killed_server_s_registration_is_finished_and_its_run_failed_by_another(setup: Setup) {
    // B polls slowly, so the killed server's own worker (woken by the submission) takes the job.
    let servers = Replicas::start_with_poll(setup, Duration::from_secs(3)).await;
    let b = servers.b();
    let alice = b.token("alice").await;
    let (mut killed, base, _killed_dir) = servers.spawn_process().await;
    let client = reqwest::Client::new();

    // A run in progress: the hostile pipeline sleeping, pushed and started on the process.
    let hostile = tempfile::tempdir().unwrap();
    let artifact = crate::guests::path("hostile_runnable.wasm");
    std::fs::copy(&artifact, hostile.path().join("hostile.wasm")).unwrap();
    let manifest = json!({"name": "hostile", "version": "0.1.0", "component": "hostile.wasm",
        "inputs": [{"name": "mode", "type": "string"}], "outputs": [{"name": "result", "type": "string"}]});
    std::fs::write(hostile.path().join("pipeline.yaml"), manifest.to_string()).unwrap();
    push_to(hostile.path(), &base, &alice);
    let mut request = crate::mystic::hostile("sleep:60000");
    request["async_run"] = json!(true);
    let (status, accepted) = call(
        client
            .post(format!("{base}/v4/runs"))
            .bearer_auth(&alice)
            .json(&request),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["id"].as_str().unwrap().to_string();

    // A registration in progress: its worker hangs in the fetch.
    let source = HeldSource::start(crate::gbdx::component_bytes());
    let (status, body) = call(
        client
            .post(format!("{base}{TASKS}"))
            .bearer_auth(&alice)
            .json(&wasm_task("held", "0.0.1", &source.url())),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while source.hits() == 0 {
        assert!(Instant::now() < deadline, "the process never fetched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, at_work) = b.get(&format!("/v4/runs/{run_id}"), &alice).await;
    assert!(
        at_work["state"] == "running" || at_work["state"] == "created",
        "{at_work}"
    );
    killed.0.kill().unwrap(); // SIGKILL
    killed.0.wait().unwrap();
    source.release();

    let ready = wait_for_state(b, &alice, "held", "0.0.1", "ready").await;
    assert_eq!(
        ready["registration"]["attempts"], 2,
        "the killed server's attempt, then B's: {ready}"
    );
    crate::mystic::assert_failed_by_a_stopped_server(
        &b.client,
        &b.base,
        &alice,
        &run_id,
        Duration::from_secs(30),
    )
    .await;
}

/// The measurement: a push and a run with a file input, against moto and against the
/// local directory (one server on SQLite each, so only the blob store differs). Prints medians;
/// asserts nothing about time. `cargo test -p pipewright --test e2e replicas::timings -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timings_of_push_and_file_run_against_s3_and_the_local_directory() {
    let Some(moto_binary) = moto_server_binary() else {
        return;
    };
    const REPETITIONS: usize = 7;
    let moto = Moto::start(&moto_binary).await;
    // (push median, run median) of the local directory, the baseline of the ratios.
    let mut baseline: Option<(Duration, Duration)> = None;
    for store in ["local directory", "S3 (moto)"] {
        let server = TestServer::start_with(Backend::Sqlite, |config| {
            if store.starts_with("S3") {
                config.blob_store = Some(moto.url().parse().unwrap());
                config.blob_store_settings = moto.settings();
            }
        })
        .await;
        let alice = server.token("alice").await;
        let (mut pushes, mut runs) = (Vec::new(), Vec::new());
        for i in 0..REPETITIONS {
            let dir = shout_dir(&format!("1.0.{i}"));
            let started = Instant::now();
            let pointer = push_to(dir.path(), &server.base, &alice);
            pushes.push(started.elapsed());
            // A new version and a new upload each time: the run materializes the version's
            // files, reads the input and stores the output through the blob store.
            let started = Instant::now();
            let uploaded = upload_file(
                &server,
                &alice,
                "doc.txt",
                format!("line {i}\nx").as_bytes(),
            )
            .await;
            let (status, done) = server
                .post(
                    "/v4/runs",
                    &alice,
                    json!({"pipeline": pointer, "inputs": [file_input(&uploaded, "doc.txt")]}),
                )
                .await;
            runs.push(started.elapsed());
            assert_eq!(
                (status, &done["state"]),
                (200, &json!("completed")),
                "{done}"
            );
        }
        let (push, run) = (median(&mut pushes), median(&mut runs));
        println!(
            "blob store {store}: push (CLI, end to end) median {push:?}; upload + run with a file input median {run:?} ({REPETITIONS} repetitions)"
        );
        match baseline {
            None => baseline = Some((push, run)),
            Some((local_push, local_run)) => println!(
                "{store} / local directory: push {:.2}x, upload + run {:.2}x",
                push.as_secs_f64() / local_push.as_secs_f64(),
                run.as_secs_f64() / local_run.as_secs_f64()
            ),
        }
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
