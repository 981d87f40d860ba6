//! GBDX-style task versioning over HTTP, on SQLite and on PostgreSQL: every row of the seed's
//! error table with its exact text, the versioning rules, and durable registration observed
//! through a content source the test holds back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use reqwest::Method;
use serde_json::{json, Value};

use pipewright::outbound::FetchPolicy;
use pipewright::registry::registration::RegistrationConfig;

use crate::harness::{b64, call, code, Backend, TestServer};
use crate::on_both_stores;
use crate::peers::Loopback;

const TASKS: &str = "/workflows/v1/tasks";

/// Registration timings short enough for tests.
pub fn quick_registration() -> RegistrationConfig {
    RegistrationConfig {
        attempt_timeout: Duration::from_secs(20),
        retry_window: Duration::from_secs(2),
        lease: Duration::from_secs(1),
        poll_interval: Duration::from_millis(50),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        ..RegistrationConfig::default()
    }
}

async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |config| {
        config.registration = quick_registration();
    })
    .await
}

/// `--allow-fetch 127.0.0.1`: where the tests' content sources listen.
pub fn loopback_allowed() -> FetchPolicy {
    FetchPolicy::allowing(["127.0.0.1".parse().unwrap()])
}

/// A server that may fetch from the tests' loopback content sources (by default it may not).
pub async fn start_fetching_from_loopback(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |config| {
        config.registration = RegistrationConfig {
            fetch_policy: loopback_allowed(),
            ..quick_registration()
        };
    })
    .await
}

/// The seed's example task, as a DOCKER task.
pub fn docker_task(name: &str, version: &str) -> Value {
    json!({
        "inputPortDescriptors": [
            {"required": true, "description": "A string input.", "name": "inputstring", "type": "string"},
            {"name": "dependency_input", "type": "string"}
        ],
        "outputPortDescriptors": [{"name": "dependency_output", "type": "string"}],
        "containerDescriptors": [{
            "type": "DOCKER", "command": "",
            "properties": {"image": "tdgp/test-success",
                           "mounts": [{"local": "$task_data_dir", "container": "/mnt/work", "read_only": false}]}
        }],
        "description": "Runs a no-op task that writes successful output status.",
        "name": name,
        "taskOwnerEmail": "TEST@TEST.com",
        "version": version,
        "properties": null
    })
}

/// A task whose content is a WebAssembly component at `url`.
pub fn wasm_task(name: &str, version: &str, url: &str) -> Value {
    let mut task = docker_task(name, version);
    task["containerDescriptors"] = json!([{"type": "WASM", "properties": {"url": url}}]);
    task
}

/// A real component (the built-in semver policy) to register as task content.
pub fn component_bytes() -> &'static [u8] {
    pipewright::plugins::builtin::BUILTIN_PLUGINS[0].2
}

/// The same component with a custom section of random bytes appended: valid, and with a digest
/// nothing has compiled yet.
pub fn unique_component() -> Vec<u8> {
    let mut bytes = component_bytes().to_vec();
    let name = b"test";
    let payload = uuid::Uuid::new_v4().into_bytes();
    bytes.push(0); // custom section
    bytes.push((1 + name.len() + payload.len()) as u8); // its size (one LEB128 byte)
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&payload);
    bytes
}

async fn post(server: &TestServer, token: &str, task: &Value) -> (u16, Value) {
    server.post(TASKS, token, task.clone()).await
}

/// Waits until `name:version` is in `state` (read through `/v1`, which shows any state).
pub async fn wait_for_state(
    server: &TestServer,
    token: &str,
    name: &str,
    version: &str,
    state: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = server
            .get(
                &format!("/v1/pipelines/gbdx/{name}/versions/{version}"),
                token,
            )
            .await;
        if status == 200 && body["state"] == state {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{name}:{version} never became {state}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The request id the server adds beside `Error` (see `ops.rs`) is set aside first.
fn assert_error(answer: &(u16, Value), status: u16, message: &str) {
    let mut body = answer.1.clone();
    if let Some(object) = body.as_object_mut() {
        let id = object.remove("request_id");
        assert!(
            id.as_ref().is_some_and(Value::is_string),
            "a request id: {id:?}"
        );
    }
    assert_eq!(body, json!({"Error": message}), "body");
    assert_eq!(answer.0, status, "status of `{message}`");
}

/// The seed's error for a GET of a version not ready, with its `registration` beside it (the
/// state, attempts and last error say why it is not ready). Returns the registration.
fn assert_not_ready(answer: &(u16, Value), status: u16, message: &str, state: &str) -> Value {
    assert_eq!(answer.1["Error"], message, "body: {}", answer.1);
    assert_eq!(answer.0, status, "status of `{message}`");
    let registration = &answer.1["registration"];
    assert_eq!(registration["state"], state, "body: {}", answer.1);
    registration.clone()
}

/// A content source that answers only when the test says so: the `registering` window is then
/// as long as the test wants, not as long as a timer.
pub struct HeldSource {
    gate: Arc<tokio::sync::Semaphore>,
    hits: Arc<std::sync::atomic::AtomicUsize>,
    server: Option<Loopback>,
}

impl HeldSource {
    pub fn start(bytes: &'static [u8]) -> HeldSource {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new()
            .route(
                "/component.wasm",
                get(
                    move |State(gate): State<Arc<tokio::sync::Semaphore>>| async move {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let _permit = gate.acquire().await;
                        bytes.to_vec()
                    },
                ),
            )
            .with_state(gate.clone());
        HeldSource {
            gate,
            hits,
            server: Some(Loopback::serve(app)),
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("{}/component.wasm", self.server.as_ref().unwrap().url())
    }

    pub fn release(&self) {
        self.gate.add_permits(1000);
    }
}

impl Drop for HeldSource {
    fn drop(&mut self) {
        // A request still held would keep the server from stopping.
        self.release();
        self.server.take();
    }
}

// ---------------------------------------------------------------------------------------------
// The seed's error table, one test per row.

on_both_stores!(
    row_not_owner_is_forbidden,
    row_same_version_must_be_incremented,
    row_lower_version_be_incremented,
    row_get_while_registering,
    row_delete_while_registering,
    row_failed_registration,
);

async fn row_not_owner_is_forbidden(backend: Backend) {
    let server = start(backend).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    assert_eq!(
        post(&server, &alice, &docker_task("test-success", "0.0.1"))
            .await
            .0,
        200
    );
    let answer = post(&server, &bob, &docker_task("Test-Success", "0.0.2")).await;
    assert_error(&answer, 403, "Forbidden");
}

async fn row_same_version_must_be_incremented(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    assert_eq!(
        post(&server, &alice, &docker_task("test-success", "0.0.1"))
            .await
            .0,
        200
    );
    let answer = post(&server, &alice, &docker_task("test-success", "0.0.1")).await;
    assert_error(&answer, 400, "The version number must be incremented");
}

async fn row_lower_version_be_incremented(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    assert_eq!(
        post(&server, &alice, &docker_task("test-success", "0.0.2"))
            .await
            .0,
        200
    );
    let answer = post(&server, &alice, &docker_task("test-success", "0.0.1")).await;
    assert_error(&answer, 400, "The version number be incremented");
}

async fn row_get_while_registering(backend: Backend) {
    let server = start_fetching_from_loopback(backend).await;
    let alice = server.token("alice").await;
    let source = HeldSource::start(component_bytes());
    let (status, body) = post(
        &server,
        &alice,
        &wasm_task("test-success", "0.0.1", &source.url()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["registration"]["state"], "registering");
    for path in ["test-success:0.0.1", "test-success"] {
        let answer = server.get(&format!("{TASKS}/{path}"), &alice).await;
        assert_not_ready(
            &answer,
            403,
            "test-success has been submitted for registration",
            "registering",
        );
    }
    let (_, list) = server.get(TASKS, &alice).await;
    assert_eq!(
        list,
        json!({"tasks": []}),
        "a migrating task is not in the registry yet"
    );
    // One resolver of "latest": /v1 gives the same reason, in its own shape.
    let (status, body) = server.get("/v1/pipelines/gbdx/test-success", &alice).await;
    assert_eq!(
        (status, code(&body)),
        (409, "version-registering"),
        "{body}"
    );
    source.release();
    wait_for_state(&server, &alice, "test-success", "0.0.1", "ready").await;
    let (status, task) = server.get(&format!("{TASKS}/test-success"), &alice).await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["version"], "0.0.1");
}

async fn row_delete_while_registering(backend: Backend) {
    let server = start_fetching_from_loopback(backend).await;
    let alice = server.token("alice").await;
    let source = HeldSource::start(component_bytes());
    post(
        &server,
        &alice,
        &wasm_task("test-success", "0.0.1", &source.url()),
    )
    .await;
    let answer = server
        .delete(&format!("{TASKS}/test-success:0.0.1"), &alice)
        .await;
    assert_error(
        &answer,
        403,
        "Cannot Delete test-success until Migration is Complete",
    );
    source.release();
    wait_for_state(&server, &alice, "test-success", "0.0.1", "ready").await;
    let (status, _) = server
        .delete(&format!("{TASKS}/test-success:0.0.1"), &alice)
        .await;
    assert_eq!(status, 200);
}

async fn row_failed_registration(backend: Backend) {
    let server = start_fetching_from_loopback(backend).await;
    let alice = server.token("alice").await;
    // Content whose digest never matches: every attempt fails until the retry window closes.
    let source = HeldSource::start(component_bytes());
    source.release();
    let mut task = wasm_task("test-success", "0.0.1", &source.url());
    task["containerDescriptors"][0]["properties"]["digest"] =
        json!(format!("sha256:{}", "0".repeat(64)));
    post(&server, &alice, &task).await;
    let failed = wait_for_state(&server, &alice, "test-success", "0.0.1", "failed").await;
    assert!(
        failed["registration"]["attempts"].as_i64().unwrap() >= 2,
        "retried: {failed}"
    );
    assert!(
        failed["registration"]["last_error"]
            .as_str()
            .unwrap()
            .contains("digest"),
        "{failed}"
    );
    for path in ["test-success:0.0.1", "test-success"] {
        let answer = server.get(&format!("{TASKS}/{path}"), &alice).await;
        let registration = assert_not_ready(
            &answer,
            500,
            "test-success has failed registration.",
            "failed",
        );
        assert!(
            registration["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("digest")),
            "{registration}"
        );
    }
    // Re-registering the failed number is the seed's error; an increment is accepted.
    let answer = post(&server, &alice, &docker_task("test-success", "0.0.1")).await;
    assert_error(&answer, 400, "The version number must be incremented");
    assert_eq!(
        post(&server, &alice, &docker_task("test-success", "0.0.2"))
            .await
            .0,
        200
    );
}

// ---------------------------------------------------------------------------------------------
// The rules.

on_both_stores!(
    an_attempt_past_its_timeout_is_retried_then_failed,
    versions_list_get_and_latest,
    previous_version_serves_while_a_new_one_registers,
    account_members_may_version_a_task,
    owner_email_and_quoted_version_are_required,
    put_replaces_the_definition_only,
    delete_needs_a_version_and_frees_it,
    a_deleted_version_is_registered_again_below_a_later_one,
    uploaded_component_is_compiled_and_ready,
    an_upload_that_cannot_register_is_refused_at_the_request,
    the_task_list_follows_each_change_on_every_server,
);

async fn an_attempt_past_its_timeout_is_retried_then_failed(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.registration = RegistrationConfig {
            attempt_timeout: Duration::from_millis(300),
            fetch_policy: loopback_allowed(),
            ..quick_registration()
        };
    })
    .await;
    let alice = server.token("alice").await;
    let source = HeldSource::start(component_bytes()); // never answers in time
    post(
        &server,
        &alice,
        &wasm_task("test-success", "0.0.1", &source.url()),
    )
    .await;
    let failed = wait_for_state(&server, &alice, "test-success", "0.0.1", "failed").await;
    assert!(
        failed["registration"]["attempts"].as_i64().unwrap() >= 2,
        "retried: {failed}"
    );
    let error = failed["registration"]["last_error"].as_str().unwrap();
    assert!(error.contains("took longer than"), "{error}");
    let answer = server.get(&format!("{TASKS}/test-success"), &alice).await;
    assert_not_ready(
        &answer,
        500,
        "test-success has failed registration.",
        "failed",
    );
}

async fn versions_list_get_and_latest(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    for (name, version) in [
        ("test-success", "0.0.1"),
        ("Test-Success", "0.0.2"),
        ("test_success", "5.0.0"),
        ("test-success_beta", "1.0.2"),
    ] {
        let (status, body) = post(&server, &alice, &docker_task(name, version)).await;
        assert_eq!(status, 200, "{body}");
        wait_for_state(&server, &alice, name, version, "ready").await;
    }
    let (status, list) = server.get(TASKS, &alice).await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!({"tasks": ["test-success:0.0.1", "test-success:0.0.2", "test-success_beta:1.0.2", "test_success:5.0.0"]})
    );
    let (_, latest) = server.get(&format!("{TASKS}/TEST-SUCCESS"), &alice).await;
    assert_eq!(latest["version"], "0.0.2");
    assert_eq!(latest["taskOwnerEmail"], "TEST@TEST.com");
    let (_, pinned) = server
        .get(&format!("{TASKS}/test-success:0.0.1"), &alice)
        .await;
    assert_eq!(pinned["version"], "0.0.1");
    assert_eq!(
        pinned["registration"]["approvedBy"],
        json!(["policy-semver@0.1.0"])
    );
    let answer = server.get(&format!("{TASKS}/nothing-here"), &alice).await;
    assert_eq!(answer.0, 404);
}

async fn previous_version_serves_while_a_new_one_registers(backend: Backend) {
    let server = start_fetching_from_loopback(backend).await;
    let alice = server.token("alice").await;
    post(&server, &alice, &docker_task("test-success", "0.0.1")).await;
    wait_for_state(&server, &alice, "test-success", "0.0.1", "ready").await;
    let source = HeldSource::start(component_bytes());
    post(
        &server,
        &alice,
        &wasm_task("test-success", "0.0.2", &source.url()),
    )
    .await;
    let (status, task) = server.get(&format!("{TASKS}/test-success"), &alice).await;
    assert_eq!((status, &task["version"]), (200, &json!("0.0.1")));
    let answer = server
        .get(&format!("{TASKS}/test-success:0.0.2"), &alice)
        .await;
    assert_not_ready(
        &answer,
        403,
        "test-success has been submitted for registration",
        "registering",
    );
    source.release();
    wait_for_state(&server, &alice, "test-success", "0.0.2", "ready").await;
    let (_, task) = server.get(&format!("{TASKS}/test-success"), &alice).await;
    assert_eq!(task["version"], "0.0.2");
}

async fn account_members_may_version_a_task(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    let carol = server.token_in("carol", Some("alice")).await;
    assert_eq!(
        post(&server, &alice, &docker_task("test-success", "0.0.1"))
            .await
            .0,
        200
    );
    let (status, body) = post(&server, &carol, &docker_task("test-success", "0.0.2")).await;
    assert_eq!(
        status, 200,
        "a member of the owning account versions it: {body}"
    );
}

async fn owner_email_and_quoted_version_are_required(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    let mut task = docker_task("test-success", "0.0.1");
    task.as_object_mut().unwrap().remove("taskOwnerEmail");
    assert_error(
        &post(&server, &alice, &task).await,
        400,
        "taskOwnerEmail is a required field",
    );
    let mut task = docker_task("test-success", "0.0.1");
    task["version"] = json!(1.0);
    assert_error(
        &post(&server, &alice, &task).await,
        400,
        "The version number must be enclosed in quotes",
    );
    let answer = post(&server, &alice, &docker_task("test-success", "one")).await;
    assert_eq!(answer.0, 400, "{}", answer.1);
    // Nothing was registered by the refused requests.
    let (status, _) = server
        .get("/v1/pipelines/gbdx/test-success/versions", &alice)
        .await;
    assert_eq!(status, 404);
}

async fn put_replaces_the_definition_only(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    post(&server, &alice, &docker_task("test-success", "0.0.1")).await;
    let before = wait_for_state(&server, &alice, "test-success", "0.0.1", "ready").await;
    let mut changed = docker_task("test-success", "0.0.1");
    changed["description"] = json!("now with a better description");
    let (status, body) = call(
        server
            .request(
                Method::PUT,
                &format!("{TASKS}/test-success:0.0.1"),
                Some(&alice),
            )
            .json(&changed),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, task) = server
        .get(&format!("{TASKS}/test-success:0.0.1"), &alice)
        .await;
    assert_eq!(task["description"], "now with a better description");
    let after = wait_for_state(&server, &alice, "test-success", "0.0.1", "ready").await;
    assert_eq!(
        after["registration"]["attempts"], before["registration"]["attempts"],
        "a PUT starts no registration"
    );
    for (name, version) in [("other-name", "0.0.1"), ("test-success", "0.0.9")] {
        let answer = call(
            server
                .request(
                    Method::PUT,
                    &format!("{TASKS}/test-success:0.0.1"),
                    Some(&alice),
                )
                .json(&docker_task(name, version)),
        )
        .await;
        assert_error(
            &answer,
            400,
            "The name and version number of a task cannot be changed",
        );
    }
    let bob = server.token("bob").await;
    let answer = call(
        server
            .request(
                Method::PUT,
                &format!("{TASKS}/test-success:0.0.1"),
                Some(&bob),
            )
            .json(&changed),
    )
    .await;
    assert_error(&answer, 403, "Forbidden");
}

/// The seed: "Once a task is deleted, it can be re-registered using the same version number",
/// even when a later version exists; a number never registered still has to increment.
async fn a_deleted_version_is_registered_again_below_a_later_one(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    for version in ["1.0.0", "2.0.0"] {
        let (status, body) = post(&server, &alice, &docker_task("test-success", version)).await;
        assert_eq!(status, 200, "{body}");
        wait_for_state(&server, &alice, "test-success", version, "ready").await;
    }
    let (status, _) = server
        .delete(&format!("{TASKS}/test-success:1.0.0"), &alice)
        .await;
    assert_eq!(status, 200);
    let (status, body) = post(&server, &alice, &docker_task("test-success", "1.0.0")).await;
    assert_eq!(status, 200, "the deleted number again: {body}");
    wait_for_state(&server, &alice, "test-success", "1.0.0", "ready").await;
    let (_, latest) = server.get(&format!("{TASKS}/test-success"), &alice).await;
    assert_eq!(latest["version"], "2.0.0", "{latest}");
    let answer = post(&server, &alice, &docker_task("test-success", "0.5.0")).await;
    assert_error(&answer, 400, "The version number be incremented");
    let answer = post(&server, &alice, &docker_task("test-success", "1.0.0")).await;
    assert_error(&answer, 400, "The version number must be incremented");
}

/// The list is kept between changes and brought up to date by what each change touched: every
/// server (this one and a replica, which both listed before) shows each change, in the seed's
/// order, whichever pipeline it touched and whether it added, readied or removed a version.
async fn the_task_list_follows_each_change_on_every_server(backend: Backend) {
    let server = start(backend).await;
    let replica = server.replica().await;
    let alice = server.token("alice").await;
    let listed = |tasks: &[&str]| json!({ "tasks": tasks });
    let both_list = |expected: Value| {
        let (server, replica, alice) = (&server, &replica, &alice);
        async move {
            for (which, on) in [("server", server), ("replica", replica)] {
                let (status, list) = on.get(TASKS, alice).await;
                assert_eq!((status, &list), (200, &expected), "on the {which}");
            }
        }
    };
    both_list(listed(&[])).await;
    for (name, version) in [("beta", "1.0.0"), ("alpha", "0.1.0"), ("gamma", "2.0.0")] {
        post(&server, &alice, &docker_task(name, version)).await;
        wait_for_state(&server, &alice, name, version, "ready").await;
    }
    both_list(listed(&["alpha:0.1.0", "beta:1.0.0", "gamma:2.0.0"])).await;
    // A new version of one task, registered through the replica.
    post(&replica, &alice, &docker_task("Beta", "1.1.0")).await;
    wait_for_state(&replica, &alice, "beta", "1.1.0", "ready").await;
    both_list(listed(&[
        "alpha:0.1.0",
        "beta:1.0.0",
        "beta:1.1.0",
        "gamma:2.0.0",
    ]))
    .await;
    // A task's only version deleted: the task leaves the list; another's stays whole.
    let (status, _) = server.delete(&format!("{TASKS}/gamma:2.0.0"), &alice).await;
    assert_eq!(status, 200);
    let (status, _) = replica.delete(&format!("{TASKS}/beta:1.0.0"), &alice).await;
    assert_eq!(status, 200);
    both_list(listed(&["alpha:0.1.0", "beta:1.1.0"])).await;
    // Back again, and a new task between the others.
    post(&server, &alice, &docker_task("gamma", "2.0.1")).await;
    post(&server, &alice, &docker_task("alphabet", "0.0.1")).await;
    wait_for_state(&server, &alice, "gamma", "2.0.1", "ready").await;
    wait_for_state(&server, &alice, "alphabet", "0.0.1", "ready").await;
    both_list(listed(&[
        "alpha:0.1.0",
        "alphabet:0.0.1",
        "beta:1.1.0",
        "gamma:2.0.1",
    ]))
    .await;
}

async fn delete_needs_a_version_and_frees_it(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    post(&server, &alice, &docker_task("test-success", "0.0.1")).await;
    wait_for_state(&server, &alice, "test-success", "0.0.1", "ready").await;
    let answer = server
        .delete(&format!("{TASKS}/test-success"), &alice)
        .await;
    assert_error(
        &answer,
        400,
        "A request to delete a task must include the task's version number",
    );
    let bob = server.token("bob").await;
    let answer = server
        .delete(&format!("{TASKS}/test-success:0.0.1"), &bob)
        .await;
    assert_error(&answer, 403, "Forbidden");
    // Listed (and so cached) before the delete; the delete must show.
    let (_, list) = server.get(TASKS, &alice).await;
    assert_eq!(list, json!({"tasks": ["test-success:0.0.1"]}));
    let (status, _) = server
        .delete(&format!("{TASKS}/test-success:0.0.1"), &alice)
        .await;
    assert_eq!(status, 200);
    let (_, list) = server.get(TASKS, &alice).await;
    assert_eq!(list, json!({"tasks": []}));
    // The same version can be registered again.
    let (status, body) = post(&server, &alice, &docker_task("test-success", "0.0.1")).await;
    assert_eq!(status, 200, "{body}");
    wait_for_state(&server, &alice, "test-success", "0.0.1", "ready").await;
}

/// What can be told of uploaded bytes at the request is told there (400), never queued: bytes
/// that are no component, and bytes whose digest is not the one the descriptor names.
async fn an_upload_that_cannot_register_is_refused_at_the_request(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    let before = server.stored_files();
    let with_upload = |bytes: &[u8], digest: Option<String>| {
        let mut task = docker_task("uploaded", "1.0.0");
        task["containerDescriptors"] =
            json!([{"type": "WASM", "properties": {"upload": b64(bytes), "digest": digest}}]);
        task
    };
    for (task, says) in [
        (
            with_upload(b"not a component", None),
            "not a WebAssembly component",
        ),
        (
            with_upload(b"\0asm\x01\0\0\0", None),
            "not a WebAssembly component",
        ),
        (
            with_upload(
                component_bytes(),
                Some(format!("sha256:{}", "0".repeat(64))),
            ),
            "digest",
        ),
    ] {
        let (status, body) = post(&server, &alice, &task).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["Error"].as_str().unwrap().contains(says), "{body}");
    }
    let (_, listed) = server.get(TASKS, &alice).await;
    assert_eq!(listed, json!({"tasks": []}));
    let (status, _) = server.get("/v1/pipelines/gbdx/uploaded", &alice).await;
    assert_eq!(status, 404, "no task was made");
    assert_eq!(server.stored_files(), before, "nothing stored");
}

async fn uploaded_component_is_compiled_and_ready(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    let bytes = unique_component();
    let digest = format!("sha256:{}", sha256_hex(&bytes));
    let mut task = docker_task("hello", "1.0.0");
    task["containerDescriptors"] =
        json!([{"type": "WASM", "properties": {"upload": b64(&bytes), "digest": digest}}]);
    let (status, body) = post(&server, &alice, &task).await;
    assert_eq!(status, 200, "{body}");
    let ready = wait_for_state(&server, &alice, "hello", "1.0.0", "ready").await;
    let files: Vec<(&str, i64)> = ready["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["size"].as_i64().unwrap()))
        .collect();
    assert!(
        files.contains(&("component.wasm", bytes.len() as i64)),
        "{files:?}"
    );
    assert!(files.iter().any(|(p, _)| *p == "task.json"));
    // The upload is kept by digest, not inline in the definition.
    let (_, task) = server.get(&format!("{TASKS}/hello"), &alice).await;
    assert_eq!(
        task["containerDescriptors"][0]["properties"]["upload"],
        json!(digest)
    );
    // Compiled ahead of time: the artifact is in the compile cache.
    let cached = std::fs::read_dir(crate::harness::shared_cache_dir())
        .unwrap()
        .flatten()
        .flat_map(|dir| {
            std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .any(|f| {
            f.file_name()
                .to_string_lossy()
                .starts_with(&sha256_hex(&bytes))
        });
    assert!(cached, "the component's compiled artifact is cached");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------------------------
// Durability: a registration survives its server being killed; replicas share the work.

on_both_stores!(
    registration_resumes_after_sigkill,
    replicas_never_run_one_registration_twice,
);

async fn registration_resumes_after_sigkill(backend: Backend) {
    use crate::cli::{serve_binary, token_create};
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let database_url = crate::harness::fresh_database(backend, data.path()).await;
    let storage = ["--data-dir", &dir, "--database-url", &database_url];
    let token = token_create(&[&["--user", "alice"][..], &storage].concat());
    let source = HeldSource::start(component_bytes());
    let serve_args: Vec<&str> = storage
        .iter()
        .copied()
        .chain([
            "--registration-lease-secs",
            "1",
            "--allow-fetch",
            "127.0.0.1",
        ])
        .collect();
    let client = reqwest::Client::new();

    // First server: takes the job and hangs in the fetch; killed there.
    let (mut first, base) = serve_binary(&serve_args).await;
    let (status, body) = call(
        client
            .post(format!("{base}{TASKS}"))
            .bearer_auth(&token)
            .json(&wasm_task("test-success", "0.0.1", &source.url())),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while source.hits() == 0 {
        assert!(Instant::now() < deadline, "the first server never fetched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    source.release();

    // Second server on the same store: the lease lapses and the registration completes.
    let (_second, base) = serve_binary(&serve_args).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let version = loop {
        let (_, version) = call(
            client
                .get(format!(
                    "{base}/v1/pipelines/gbdx/test-success/versions/0.0.1"
                ))
                .bearer_auth(&token),
        )
        .await;
        if version["state"] == "ready" {
            break version;
        }
        assert!(Instant::now() < deadline, "never resumed: {version}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(version["registration"]["attempts"], 2, "{version}");
    assert!(source.hits() >= 2);
    if let Backend::Postgres = backend {
        crate::harness::drop_postgres_database(
            database_url.rsplit_once('/').unwrap().1.to_string(),
        );
    }
}

async fn replicas_never_run_one_registration_twice(backend: Backend) {
    let first = start(backend).await;
    let second = first.replica().await;
    let alice = first.token("alice").await;
    let names: Vec<String> = (0..12).map(|i| format!("task-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let server = if i % 2 == 0 { &first } else { &second };
        let (status, body) = post(server, &alice, &docker_task(name, "1.0.0")).await;
        assert_eq!(status, 200, "{body}");
    }
    for name in &names {
        let ready = wait_for_state(&first, &alice, name, "1.0.0", "ready").await;
        assert_eq!(
            ready["registration"]["attempts"], 1,
            "{name} was leased more than once: {ready}"
        );
    }
    drop(second);
}

// ---------------------------------------------------------------------------------------------
// Workflows: tasks pinned at submission, run in order through the run engine.

pub const WORKFLOWS: &str = "/workflows/v1/workflows";

/// The `hello` example pipeline (input `text`, output `greeting`).
pub fn hello_component() -> Vec<u8> {
    crate::guests::read("example_hello.wasm")
}

/// Registers `hello:version` as a WASM task by upload and waits until it is ready.
async fn register_hello(server: &TestServer, token: &str, version: &str) {
    let mut task = docker_task("hello", version);
    task["inputPortDescriptors"] = json!([{"name": "text", "type": "string"}]);
    task["outputPortDescriptors"] = json!([{"name": "greeting", "type": "string"}]);
    task["containerDescriptors"] =
        json!([{"type": "WASM", "properties": {"upload": b64(&hello_component())}}]);
    let (status, body) = post(server, token, &task).await;
    assert_eq!(status, 200, "{body}");
    wait_for_state(server, token, "hello", version, "ready").await;
}

/// A task whose component Winch cannot compile (it uses tail calls), registered by upload: the
/// registration worker compiles it with Cranelift at once, and its version says so.
async fn a_task_winch_cannot_compile_says_so_in_its_registration(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    // Bytes of their own: with Cranelift's code for them cached by another test, Winch would not
    // be asked.
    let component = crate::guests::with_custom_section(
        &crate::guests::read("tail_call_runnable.wasm"),
        &uuid::Uuid::new_v4().to_string(),
    );
    let mut task = docker_task("tail-call", "1.0.0");
    task["containerDescriptors"] =
        json!([{"type": "WASM", "properties": {"upload": b64(&component)}}]);
    let (status, body) = post(&server, &alice, &task).await;
    assert_eq!(status, 200, "{body}");
    let ready = wait_for_state(&server, &alice, "tail-call", "1.0.0", "ready").await;
    let note = ready["registration"]["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("Winch could not compile it") && note.contains("compiled with Cranelift"),
        "{ready}"
    );
    register_hello(&server, &alice, "1.0.0").await;
    let hello = wait_for_state(&server, &alice, "hello", "1.0.0", "ready").await;
    assert!(hello["registration"].get("note").is_none(), "{hello}");
}

/// Polls a workflow until it is complete.
pub async fn finished_workflow(server: &TestServer, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = server.get(&format!("{WORKFLOWS}/{id}"), token).await;
        assert_eq!(status, 200, "{body}");
        if body["state"]["state"] == "complete" {
            return body;
        }
        assert!(Instant::now() < deadline, "workflow never finished: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_stores!(
    row_workflow_with_a_registering_task,
    a_task_winch_cannot_compile_says_so_in_its_registration,
    workflow_pins_versions_and_feeds_outputs_to_inputs,
    workflow_with_a_docker_task_fails_clearly,
    workflow_wiring_is_checked,
);

async fn row_workflow_with_a_registering_task(backend: Backend) {
    let server = start_fetching_from_loopback(backend).await;
    let alice = server.token("alice").await;
    let source = HeldSource::start(component_bytes());
    post(
        &server,
        &alice,
        &wasm_task("test-success", "0.0.1", &source.url()),
    )
    .await;
    let workflow =
        json!({"name": "wf", "tasks": [{"name": "a", "taskType": "test-success:0.0.1"}]});
    let answer = server.post(WORKFLOWS, &alice, workflow).await;
    assert_error(
        &answer,
        403,
        "test-success has been submitted for registration",
    );
    let workflow = json!({"name": "wf", "tasks": [{"name": "a", "taskType": "test-success"}]});
    let answer = server.post(WORKFLOWS, &alice, workflow).await;
    assert_error(
        &answer,
        403,
        "test-success has been submitted for registration",
    );
}

async fn workflow_pins_versions_and_feeds_outputs_to_inputs(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    register_hello(&server, &alice, "1.0.0").await;
    register_hello(&server, &alice, "1.1.0").await;
    let workflow = json!({
        "name": "greetings",
        "tasks": [
            {"name": "again", "taskType": "hello", "version": "1.0.0",
             "inputs": [{"name": "text", "source": "first:greeting"}]},
            {"name": "first", "taskType": "hello",
             "inputs": [{"name": "text", "value": "world"}]},
            {"name": "pinned", "taskType": "hello:1.0.0",
             "inputs": [{"name": "text", "value": "pinned"}]}
        ]
    });
    let (status, submitted) = server.post(WORKFLOWS, &alice, workflow).await;
    assert_eq!(status, 201, "{submitted}");
    let id = submitted["id"].as_str().unwrap();
    let done = finished_workflow(&server, &alice, id).await;
    assert_eq!(
        done["state"],
        json!({"state": "complete", "event": "succeeded"}),
        "{done}"
    );
    let tasks: Vec<(&str, &str, &Value)> = done["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["taskType"].as_str().unwrap(),
                &t["outputs"],
            )
        })
        .collect();
    assert_eq!(
        tasks,
        [
            (
                "first",
                "hello:1.1.0",
                &json!([{"name": "greeting", "value": "Hello, world!"}])
            ),
            (
                "again",
                "hello:1.0.0",
                &json!([{"name": "greeting", "value": "Hello, Hello, world!!"}])
            ),
            (
                "pinned",
                "hello:1.0.0",
                &json!([{"name": "greeting", "value": "Hello, pinned!"}])
            ),
        ],
        "sources run first; an unpinned task takes the latest ready version"
    );
    // Pinned at submission: a newer version registered later does not change the record.
    register_hello(&server, &alice, "2.0.0").await;
    let (_, again) = server.get(&format!("{WORKFLOWS}/{id}"), &alice).await;
    assert_eq!(again["tasks"][0]["taskType"], "hello:1.1.0");
    // Another account sees nothing of it.
    let bob = server.token("bob").await;
    assert_error(
        &server.get(&format!("{WORKFLOWS}/{id}"), &bob).await,
        403,
        "Forbidden",
    );
}

async fn workflow_with_a_docker_task_fails_clearly(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    register_hello(&server, &alice, "1.0.0").await;
    post(&server, &alice, &docker_task("test-success", "0.0.1")).await;
    wait_for_state(&server, &alice, "test-success", "0.0.1", "ready").await;
    let workflow = json!({"tasks": [
        {"name": "docker", "taskType": "test-success", "inputs": [{"name": "inputstring", "value": "x"}]},
        {"name": "after", "taskType": "hello", "inputs": [{"name": "text", "source": "docker:dependency_output"}]}
    ]});
    let (status, submitted) = server.post(WORKFLOWS, &alice, workflow).await;
    assert_eq!(status, 201, "{submitted}");
    let done = finished_workflow(&server, &alice, submitted["id"].as_str().unwrap()).await;
    assert_eq!(done["state"]["event"], "failed", "{done}");
    let note = done["tasks"][0]["note"].as_str().unwrap();
    assert!(note.contains("cannot run container images"), "{note}");
    // Skipped after a failure: GBDX's `canceled` (one `l`, as gbdxtools reads it).
    assert_eq!(
        done["tasks"][1]["state"],
        json!({"state": "complete", "event": "canceled"})
    );
}

async fn workflow_wiring_is_checked(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    register_hello(&server, &alice, "1.0.0").await;
    let cases = [
        (
            json!({"tasks": [{"name": "a", "taskType": "hello", "inputs": [{"name": "text", "source": "nobody:greeting"}]}]}),
            "unknown task",
        ),
        (
            json!({"tasks": [
            {"name": "a", "taskType": "hello", "inputs": [{"name": "text", "source": "b:greeting"}]},
            {"name": "b", "taskType": "hello", "inputs": [{"name": "text", "source": "a:greeting"}]}]}),
            "cycle",
        ),
        (
            json!({"tasks": [
            {"name": "a", "taskType": "hello", "inputs": [{"name": "text", "value": "x"}]},
            {"name": "b", "taskType": "hello", "inputs": [{"name": "text", "source": "a:nothing"}]}]}),
            "no output port",
        ),
    ];
    for (workflow, expected) in cases {
        let (status, body) = server.post(WORKFLOWS, &alice, workflow).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["Error"].as_str().unwrap().contains(expected), "{body}");
    }
    let (status, _) = server
        .post(
            WORKFLOWS,
            &alice,
            json!({"tasks": [{"name": "a", "taskType": "missing"}]}),
        )
        .await;
    assert_eq!(status, 404);
}

// ---------------------------------------------------------------------------------------------
// Server-side fetches reach only global addresses and what `--allow-fetch` opens.

on_both_stores!(
    a_task_url_the_server_may_not_fetch_is_refused_at_the_request,
    a_redirect_to_a_refused_address_fails_the_version_without_retries,
    a_registering_task_shows_its_last_error,
);

async fn a_task_url_the_server_may_not_fetch_is_refused_at_the_request(backend: Backend) {
    let server = start(backend).await; // no --allow-fetch
    let alice = server.token("alice").await;
    // A loopback port that answers: the refusal must read the same as for one that does not.
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listening.set_nonblocking(true).unwrap();
    let port = listening.local_addr().unwrap().port();
    let before = server.stored_files();
    let refused = |host: &str, verb: &str, class: &str| {
        format!("{host} {verb} an address this server may not fetch from ({class})")
    };
    for (url, reason) in [
        (
            "http://127.0.0.1:5432/x.wasm".to_string(),
            refused("127.0.0.1", "is", "loopback"),
        ),
        (
            format!("http://127.0.0.1:{port}/x.wasm"),
            refused("127.0.0.1", "is", "loopback"),
        ),
        (
            "http://169.254.169.254/latest/meta-data".to_string(),
            refused("169.254.169.254", "is", "link-local"),
        ),
        (
            "http://[::1]:1/x".to_string(),
            refused("::1", "is", "loopback"),
        ),
        (
            "http://10.0.0.1/x".to_string(),
            refused("10.0.0.1", "is", "private"),
        ),
        (
            format!("http://localhost:{port}/x.wasm"),
            refused("localhost", "resolves to", "loopback"),
        ),
        (
            "http://no-such-host.invalid/x.wasm".to_string(),
            "no-such-host.invalid does not resolve to any address".to_string(),
        ),
    ] {
        let answer = post(&server, &alice, &wasm_task("sneaky", "0.0.1", &url)).await;
        assert_error(
            &answer,
            400,
            &format!("fetching {url} is refused: {reason}"),
        );
    }
    let (_, list) = server.get(TASKS, &alice).await;
    assert_eq!(list, json!({"tasks": []}));
    assert_eq!(server.get(&format!("{TASKS}/sneaky"), &alice).await.0, 404);
    let (status, body) = server
        .get("/v1/pipelines/gbdx/sneaky/versions/0.0.1", &alice)
        .await;
    assert_eq!(status, 404, "nothing was registered: {body}");
    assert_eq!(server.stored_files(), before, "nothing was stored");
    assert!(
        listening.accept().is_err(),
        "nothing connected to the loopback port"
    );
}

async fn a_redirect_to_a_refused_address_fails_the_version_without_retries(backend: Backend) {
    // The redirect's target: on loopback, on a port no rule allows. It must never be reached.
    let target = HeldSource::start(component_bytes());
    target.release();
    let location = target.url();
    let redirecting = Loopback::serve(axum::Router::new().route(
        "/component.wasm",
        get(move || async move { axum::response::Redirect::temporary(&location) }),
    ));
    let allowed_port = redirecting.url().rsplit_once(':').unwrap().1.to_string();
    let server = TestServer::start_with(backend, |config| {
        config.registration = RegistrationConfig {
            fetch_policy: FetchPolicy::allowing([format!("127.0.0.1:{allowed_port}")
                .parse()
                .unwrap()]),
            // Long enough that a retried failure would still be registering when the test ends.
            retry_window: Duration::from_secs(600),
            ..quick_registration()
        };
    })
    .await;
    let alice = server.token("alice").await;
    let url = format!("{}/component.wasm", redirecting.url());
    let (status, body) = post(&server, &alice, &wasm_task("hop", "1.0.0", &url)).await;
    assert_eq!(status, 200, "the first hop is allowed: {body}");

    let failed = wait_for_state(&server, &alice, "hop", "1.0.0", "failed").await;
    assert_eq!(
        failed["registration"]["attempts"], 1,
        "not retried: {failed}"
    );
    let error = failed["registration"]["last_error"].as_str().unwrap();
    assert_eq!(
        error,
        format!(
            "fetching {url} is refused: 127.0.0.1 is an address this server may not fetch from (loopback)"
        )
    );
    assert_eq!(
        target.hits(),
        0,
        "the redirect's target was never connected to"
    );
    let answer = server.get(&format!("{TASKS}/hop:1.0.0"), &alice).await;
    let registration = assert_not_ready(&answer, 500, "hop has failed registration.", "failed");
    assert_eq!(registration["lastError"], error);
}

/// A transient failure (here a 503) is retried; meanwhile both surfaces show why.
async fn a_registering_task_shows_its_last_error(backend: Backend) {
    let unavailable = Loopback::serve(axum::Router::new().route(
        "/component.wasm",
        get(|| async { axum::http::StatusCode::SERVICE_UNAVAILABLE }),
    ));
    let server = TestServer::start_with(backend, |config| {
        config.registration = RegistrationConfig {
            fetch_policy: loopback_allowed(),
            retry_window: Duration::from_secs(600),
            ..quick_registration()
        };
    })
    .await;
    let alice = server.token("alice").await;
    let url = format!("{}/component.wasm", unavailable.url());
    let (status, body) = post(&server, &alice, &wasm_task("flaky", "1.0.0", &url)).await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let registration = loop {
        let answer = server.get(&format!("{TASKS}/flaky:1.0.0"), &alice).await;
        let registration = assert_not_ready(
            &answer,
            403,
            "flaky has been submitted for registration",
            "registering",
        );
        if registration["attempts"].as_i64().unwrap_or(0) >= 2 {
            break registration;
        }
        assert!(Instant::now() < deadline, "never retried: {registration}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let expected = format!("fetching {url}: HTTP 503 Service Unavailable");
    assert_eq!(registration["lastError"], expected);
    let (status, version) = server
        .get("/v1/pipelines/gbdx/flaky/versions/1.0.0", &alice)
        .await;
    assert_eq!(status, 200, "{version}");
    assert_eq!(version["state"], "registering");
    assert_eq!(version["registration"]["last_error"], expected);
}

// ---------------------------------------------------------------------------------------------
// What a GBDX client does with a workflow beyond submitting it (gbdxtools' `Workflow`): follow
// its events, read a task's stdout and stderr, cancel it, list and search.

/// Registers the hostile runnable (input `mode`: `say:TEXT` prints, `nap:MS` prints then
/// sleeps, `loop` never ends; output `result`) as `chatty:version`, and waits until it is ready.
pub async fn register_chatty(server: &TestServer, token: &str, version: &str) {
    let mut task = docker_task("chatty", version);
    task["inputPortDescriptors"] = json!([{"name": "mode", "type": "string"}]);
    task["outputPortDescriptors"] = json!([{"name": "result", "type": "string"}]);
    task["containerDescriptors"] = json!([{"type": "WASM", "properties":
        {"upload": b64(&crate::guests::read("hostile_runnable.wasm"))}}]);
    let (status, body) = post(server, token, &task).await;
    assert_eq!(status, 200, "{body}");
    wait_for_state(server, token, "chatty", version, "ready").await;
}

/// A workflow of `chatty` tasks, each `(name, mode)`; a mode `from:TASK` takes TASK's result.
pub fn chatty_workflow(tasks: &[(&str, &str)]) -> Value {
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|(name, mode)| {
            let input = match mode.strip_prefix("from:") {
                Some(task) => json!({"name": "mode", "source": format!("{task}:result")}),
                None => json!({"name": "mode", "value": mode}),
            };
            json!({"name": name, "taskType": "chatty", "inputs": [input]})
        })
        .collect();
    json!({ "tasks": tasks })
}

pub async fn submit(server: &TestServer, token: &str, workflow: Value) -> String {
    let (status, body) = server.post(WORKFLOWS, token, workflow).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

pub async fn events_of(server: &TestServer, token: &str, id: &str) -> Vec<Value> {
    let (status, body) = server.get(&format!("{WORKFLOWS}/{id}/events"), token).await;
    assert_eq!(status, 200, "{body}");
    body["Events"].as_array().unwrap().clone()
}

/// `(event, state)` of each event of task `name`, in order.
pub fn task_events(events: &[Value], name: &str) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["task"] == name)
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(event, state)| (event.to_string(), state.to_string()))
        .collect()
}

/// Polls the events until one of task `name` is `event`.
pub async fn wait_for_event(server: &TestServer, token: &str, id: &str, name: &str, event: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = events_of(server, token, id).await;
        if task_events(&events, name).iter().any(|(e, _)| e == event) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "task {name} never {event}: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A task's output stream as gbdxtools reads it: status, content type and text.
pub async fn stream(server: &TestServer, token: &str, path: &str) -> (u16, String, String) {
    let response = server
        .request(Method::GET, path, Some(token))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

on_both_stores!(
    a_gbdx_client_exercise,
    a_task_past_its_deadline_times_out_its_workflow,
    workflow_routes_answer_bad_input_in_gbdx_shape,
    workflows_are_listed_and_searched_within_the_account,
    a_workflow_whose_server_stopped_is_failed_with_its_events,
    a_task_that_prints_too_much_keeps_its_first_mebibyte,
);

/// The GBDX client's round: register a task and a new version of it, run a workflow and follow
/// its events until it is done, read a task's stdout and stderr; then start a slow workflow
/// and cancel it, and see it cancelled, its running task stopped.
async fn a_gbdx_client_exercise(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.registration = quick_registration();
        // One run of `chatty` at a time: a workflow after the cancel runs only if the
        // cancelled task's execution was stopped and gave its capacity back.
        config.runs.max_per_pipeline = 1;
    })
    .await;
    let alice = server.token("alice").await;
    register_chatty(&server, &alice, "1.0.0").await;
    register_chatty(&server, &alice, "1.1.0").await;
    let (_, listed) = server.get(TASKS, &alice).await;
    assert_eq!(listed, json!({"tasks": ["chatty:1.0.0", "chatty:1.1.0"]}));

    // Run, following the events as they come until the workflow is complete.
    let id = submit(
        &server,
        &alice,
        chatty_workflow(&[("speak", "say:hello gbdx"), ("echo", "from:speak")]),
    )
    .await;
    let done = finished_workflow(&server, &alice, &id).await;
    assert_eq!(
        done["state"],
        json!({"state": "complete", "event": "succeeded"}),
        "{done}"
    );
    assert_eq!(
        done["tasks"][0]["taskType"], "chatty:1.1.0",
        "the latest version"
    );
    assert_eq!(
        done["tasks"][1]["outputs"],
        json!([{"name": "result", "value": "said hello gbdx"}])
    );
    let events = events_of(&server, &alice, &id).await;
    let lifecycle = pairs(&[
        ("submitted", "pending"),
        ("scheduled", "pending"),
        ("started", "running"),
        ("succeeded", "complete"),
    ]);
    for (position, name) in ["speak", "echo"].into_iter().enumerate() {
        assert_eq!(task_events(&events, name), lifecycle, "{events:#?}");
        let task_id = &done["tasks"][position]["id"];
        assert!(
            events
                .iter()
                .filter(|e| e["task"] == name)
                .all(|e| &e["task_id"] == task_id),
            "{events:#?}"
        );
    }
    let stamps: Vec<&str> = events
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    assert!(stamps.iter().all(|s| s.ends_with('Z')), "{stamps:?}");
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "in order: {stamps:?}"
    );
    assert!(events
        .iter()
        .all(|e| e["when"].as_str().unwrap().ends_with(" ago")));

    // The task's output streams, as text.
    let speak = done["tasks"][0]["id"].as_str().unwrap();
    let task_path = format!("{WORKFLOWS}/{id}/tasks/{speak}");
    let (status, content_type, stdout) =
        stream(&server, &alice, &format!("{task_path}/stdout")).await;
    assert_eq!((status, stdout.as_str()), (200, "hello gbdx\n"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let (_, _, stderr) = stream(&server, &alice, &format!("{task_path}/stderr")).await;
    assert_eq!(stderr, "hello gbdx (stderr)\n");
    let echo = done["tasks"][1]["id"].as_str().unwrap();
    let (status, _, silent) = stream(
        &server,
        &alice,
        &format!("{WORKFLOWS}/{id}/tasks/{echo}/stdout"),
    )
    .await;
    assert_eq!(
        (status, silent.as_str()),
        (200, "<empty>"),
        "GBDX's word for nothing"
    );

    // A slow workflow, cancelled while its first task runs.
    let slow = submit(
        &server,
        &alice,
        chatty_workflow(&[("nap", "nap:60000"), ("after", "from:nap")]),
    )
    .await;
    wait_for_event(&server, &alice, &slow, "nap", "started").await;
    let (status, cancelled) = server
        .post(&format!("{WORKFLOWS}/{slow}/cancel"), &alice, json!(null))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    let canceled = json!({"state": "complete", "event": "canceled"});
    assert_eq!(cancelled["state"], canceled, "{cancelled}");
    for task in cancelled["tasks"].as_array().unwrap() {
        assert_eq!(task["state"], canceled, "{cancelled}");
        assert_eq!(task["note"], "canceled by alice", "{cancelled}");
    }
    assert!(cancelled["completed_time"].is_string(), "{cancelled}");
    let events = events_of(&server, &alice, &slow).await;
    assert_eq!(
        task_events(&events, "nap"),
        pairs(&[
            ("submitted", "pending"),
            ("scheduled", "pending"),
            ("started", "running"),
            ("canceled", "complete"),
        ]),
        "{events:#?}"
    );
    assert_eq!(
        task_events(&events, "after"),
        pairs(&[("submitted", "pending"), ("canceled", "complete")]),
        "{events:#?}"
    );
    // What the stopped task wrote before it was stopped is kept.
    let nap = cancelled["tasks"][0]["id"].as_str().unwrap();
    let nap_stdout = format!("{WORKFLOWS}/{slow}/tasks/{nap}/stdout");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, text) = stream(&server, &alice, &nap_stdout).await;
        if text == "napping 60000 ms\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stdout of the stopped task: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its execution stopped and gave its capacity back: the next run of chatty starts at once.
    let started = Instant::now();
    let next = submit(&server, &alice, chatty_workflow(&[("quick", "say:again")])).await;
    let next = finished_workflow(&server, &alice, &next).await;
    assert_eq!(next["state"]["event"], "succeeded", "{next}");
    assert!(started.elapsed() < Duration::from_secs(20));
    // Cancelling it again answers that it is complete, and changes nothing.
    let again = server
        .post(&format!("{WORKFLOWS}/{slow}/cancel"), &alice, json!(null))
        .await;
    assert_error(
        &again,
        409,
        &format!("workflow {slow} is complete already; there is nothing to cancel"),
    );
    assert_eq!(events_of(&server, &alice, &slow).await.len(), events.len());
    let (_, after) = server.get(&format!("{WORKFLOWS}/{slow}"), &alice).await;
    assert_eq!(after["state"], canceled);
    assert_eq!(after["tasks"], cancelled["tasks"]);
}

async fn a_task_past_its_deadline_times_out_its_workflow(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.registration = quick_registration();
        config.runs.timeout = Duration::from_secs(1);
    })
    .await;
    let alice = server.token("alice").await;
    register_chatty(&server, &alice, "1.0.0").await;
    let id = submit(
        &server,
        &alice,
        chatty_workflow(&[("spin", "loop"), ("after", "from:spin")]),
    )
    .await;
    let done = finished_workflow(&server, &alice, &id).await;
    assert_eq!(
        done["state"],
        json!({"state": "complete", "event": "timedout"}),
        "{done}"
    );
    assert_eq!(
        done["tasks"][0]["state"],
        json!({"state": "complete", "event": "timedout"})
    );
    assert_eq!(done["tasks"][1]["state"]["event"], "canceled", "not run");
    let events = events_of(&server, &alice, &id).await;
    let timed_out = events
        .iter()
        .find(|e| e["task"] == "spin" && e["event"] == "timedout")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert!(
        timed_out["note"].as_str().unwrap().contains("deadline"),
        "{timed_out}"
    );
}

async fn workflow_routes_answer_bad_input_in_gbdx_shape(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    post(&server, &alice, &docker_task("test-success", "0.0.1")).await;
    wait_for_state(&server, &alice, "test-success", "0.0.1", "ready").await;
    let id = submit(
        &server,
        &alice,
        json!({"tasks": [{"name": "docker", "taskType": "test-success",
                          "inputs": [{"name": "inputstring", "value": "x"}]}]}),
    )
    .await;
    let done = finished_workflow(&server, &alice, &id).await;
    let task = done["tasks"][0]["id"].as_str().unwrap();

    // Unknown workflows and tasks: GBDX's `{"Error"}` with 404.
    let nobody = "00000000-0000-0000-0000-000000000000";
    for path in [
        format!("{WORKFLOWS}/{nobody}"),
        format!("{WORKFLOWS}/{nobody}/events"),
        format!("{WORKFLOWS}/{nobody}/tasks/{task}/stdout"),
        format!("{WORKFLOWS}/{nobody}/tasks/{task}/stderr"),
    ] {
        assert_error(
            &server.get(&path, &alice).await,
            404,
            &format!("workflow {nobody} not found"),
        );
    }
    assert_error(
        &server
            .post(&format!("{WORKFLOWS}/{nobody}/cancel"), &alice, json!(null))
            .await,
        404,
        &format!("workflow {nobody} not found"),
    );
    for stream in ["stdout", "stderr"] {
        assert_error(
            &server
                .get(&format!("{WORKFLOWS}/{id}/tasks/{nobody}/{stream}"), &alice)
                .await,
            404,
            &format!("workflow {id} has no task {nobody}"),
        );
    }
    // A task that never ran wrote nothing.
    let (status, _, text) = stream(
        &server,
        &alice,
        &format!("{WORKFLOWS}/{id}/tasks/{task}/stderr"),
    )
    .await;
    assert_eq!((status, text.as_str()), (200, "<empty>"));

    // Without a token.
    for (method, path) in [
        (Method::GET, WORKFLOWS.to_string()),
        (Method::POST, format!("{WORKFLOWS}/search")),
        (Method::POST, format!("{WORKFLOWS}/{id}/cancel")),
        (Method::GET, format!("{WORKFLOWS}/{id}/events")),
        (Method::GET, format!("{WORKFLOWS}/{id}/tasks/{task}/stdout")),
    ] {
        let answer = call(server.request(method, &path, None).json(&json!({}))).await;
        assert_error(&answer, 401, "A valid API token is required");
    }

    // Searches that are not GBDX's.
    let search = format!("{WORKFLOWS}/search");
    for body in [
        json!({"lookback_h": "twelve"}),
        json!({"lookback_h": -1}),
        json!({"lookback_h": 1.5}),
        json!({"state": "sleeping"}),
        json!({"owner": 7}),
        json!([]),
    ] {
        let (status, answer) = server.post(&search, &alice, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["Error"].is_string(), "{answer}");
    }
    let answer = call(
        server
            .request(Method::POST, &search, Some(&alice))
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(answer.0, 400, "{answer:?}");
    assert!(answer.1["Error"].is_string());

    // A complete workflow: a cancel is refused, and nothing changes.
    let before = events_of(&server, &alice, &id).await;
    let answer = server
        .post(&format!("{WORKFLOWS}/{id}/cancel"), &alice, json!(null))
        .await;
    assert_error(
        &answer,
        409,
        &format!("workflow {id} is complete already; there is nothing to cancel"),
    );
    assert_eq!(events_of(&server, &alice, &id).await, before);
    let (_, after) = server.get(&format!("{WORKFLOWS}/{id}"), &alice).await;
    assert_eq!(after, done);
}

async fn workflows_are_listed_and_searched_within_the_account(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token_in("alice", Some("acme")).await;
    let carol = server.token_in("carol", Some("acme")).await;
    let bob = server.token("bob").await;
    register_chatty(&server, &alice, "1.0.0").await;
    post(&server, &alice, &docker_task("test-success", "0.0.1")).await;
    wait_for_state(&server, &alice, "test-success", "0.0.1", "ready").await;
    let succeeded = submit(&server, &alice, chatty_workflow(&[("a", "say:hi")])).await;
    finished_workflow(&server, &alice, &succeeded).await;
    let failed = submit(
        &server,
        &carol,
        json!({"tasks": [{"name": "docker", "taskType": "test-success",
                          "inputs": [{"name": "inputstring", "value": "x"}]}]}),
    )
    .await;
    finished_workflow(&server, &carol, &failed).await;
    let bobs = submit(&server, &bob, chatty_workflow(&[("b", "say:bob")])).await;

    let ids = |answer: (u16, Value)| -> Vec<String> {
        assert_eq!(answer.0, 200, "{answer:?}");
        serde_json::from_value(answer.1["Workflows"].clone()).unwrap()
    };
    let both = vec![failed.clone(), succeeded.clone()];
    // The account's, newest first, whoever of it submitted them.
    assert_eq!(ids(server.get(WORKFLOWS, &alice).await), both);
    assert_eq!(ids(server.get(WORKFLOWS, &carol).await), both);
    assert_eq!(ids(server.get(WORKFLOWS, &bob).await), vec![bobs.clone()]);

    let search = format!("{WORKFLOWS}/search");
    let cases = [
        (json!({"lookback_h": 12, "state": "all"}), both.clone()),
        (json!({}), both.clone()),
        (json!({"state": "complete"}), both.clone()),
        (json!({"state": "failed"}), vec![failed.clone()]),
        (json!({"state": "succeeded"}), vec![succeeded.clone()]),
        (json!({"state": "running"}), vec![]),
        (json!({"owner": "carol"}), vec![failed.clone()]),
        (json!({"owner": "alice", "state": "failed"}), vec![]),
        (json!({"owner": "bob"}), vec![]),
    ];
    for (body, expected) in cases {
        assert_eq!(
            ids(server.post(&search, &alice, body.clone()).await),
            expected,
            "{body}"
        );
    }
    // Nothing was submitted in the last zero hours.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        ids(server.post(&search, &alice, json!({"lookback_h": 0})).await),
        Vec::<String>::new()
    );
    // Another account's search finds only its own, whatever owner it names.
    assert_eq!(
        ids(server.post(&search, &bob, json!({"owner": "alice"})).await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(server.post(&search, &bob, json!({"state": "all"})).await),
        vec![bobs]
    );
}

/// A workflow left `running` by a server that stopped (its lease lapsed: here written straight
/// into the store, as that server left it) is failed by the sweep, and its unfinished tasks
/// with it, each with a `failed` event.
async fn a_workflow_whose_server_stopped_is_failed_with_its_events(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    let store = server.registry.store();
    let (user_id, account_id): (String, String) =
        sqlx::query_as("SELECT id, personal_account_id FROM users WHERE name = 'alice'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    let now = pipewright::store::now_millis();
    // In one transaction: the sweep must not find the workflow before its tasks.
    let mut tx = store.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO workflows (id, name, submitted_by, account_id, state, lease_until, created_at)
         VALUES ($1, 'orphan', $2, $3, 'running', $4, $4)",
    )
    .bind(&id)
    .bind(&user_id)
    .bind(&account_id)
    .bind(now - 60_000)
    .execute(&mut *tx)
    .await
    .unwrap();
    for (position, (name, state)) in [
        ("ran", "succeeded"),
        ("running", "running"),
        ("next", "pending"),
    ]
    .into_iter()
    .enumerate()
    {
        sqlx::query(
            "INSERT INTO workflow_tasks (workflow_id, id, position, name, task_name, task_version, inputs, state)
             VALUES ($1, $2, $3, $4, 'chatty', '1.0.0', '[]', $5)",
        )
        .bind(&id)
        .bind(format!("{id}-task-{position}"))
        .bind(position as i64)
        .bind(name)
        .bind(state)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let done = finished_workflow(&server, &alice, &id).await;
    assert_eq!(
        done["state"],
        json!({"state": "complete", "event": "failed"}),
        "{done}"
    );
    let states: Vec<&Value> = done["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["state"]["event"])
        .collect();
    assert_eq!(
        states,
        [&json!("succeeded"), &json!("failed"), &json!("failed")]
    );
    let events = events_of(&server, &alice, &id).await;
    let failed: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["task"].as_str().unwrap(), e["note"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            ("running", "interrupted: the server running it stopped"),
            ("next", "interrupted: the server running it stopped"),
        ]
    );
}

/// Output past the capture bound is cut, with a line saying how much was not kept; the task
/// runs on and succeeds.
async fn a_task_that_prints_too_much_keeps_its_first_mebibyte(backend: Backend) {
    let server = start(backend).await;
    let alice = server.token("alice").await;
    register_chatty(&server, &alice, "1.0.0").await;
    // Whole lines of 1 KiB (a guest's last line without its newline would stay in its own
    // stdout buffer: a component's run ends without the process exit that flushes it).
    let written = pipewright::runs::OUTPUT_CAPTURE_BYTES + 100 * 1024;
    let id = submit(
        &server,
        &alice,
        chatty_workflow(&[("flood", &format!("flood:{written}"))]),
    )
    .await;
    let done = finished_workflow(&server, &alice, &id).await;
    assert_eq!(done["state"]["event"], "succeeded", "{done}");
    let task = done["tasks"][0]["id"].as_str().unwrap();
    let (status, _, stdout) = stream(
        &server,
        &alice,
        &format!("{WORKFLOWS}/{id}/tasks/{task}/stdout"),
    )
    .await;
    assert_eq!(status, 200);
    let (kept, marker) = stdout.split_at(pipewright::runs::OUTPUT_CAPTURE_BYTES);
    assert!(kept.bytes().all(|b| b == b'x' || b == b'\n'));
    assert_eq!(
        marker,
        format!(
            "[output truncated: 102400 more bytes were written and not kept; the first {} are above]\n",
            pipewright::runs::OUTPUT_CAPTURE_BYTES
        )
    );
}
