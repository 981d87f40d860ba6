//! Mystic's `/v4` over HTTP against a started server: pipelines pushed with the CLI, runs with
//! values and files, async runs, errors in the run object, signed file links. The real client's
//! commands (pipelines, pointers, files, logs) are in [`commands`]; pointers, streamed runs,
//! inputs by URL and bad input over HTTP in [`surface`].

mod commands;
mod python;
mod surface;

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::BIN;
use crate::gbdx;
use crate::harness::{call, Backend, TestServer};
use crate::on_both_stores;
use pipewright::registry::registration::RegistrationConfig;

/// A pipeline directory of an example component (`example_<name>.wasm` as `<file>`), with
/// `extra` files beside it.
pub fn pipeline_dir(
    example: &str,
    name: &str,
    version: &str,
    inputs: Value,
    outputs: Value,
    extra: &[(&str, &str)],
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let artifact = crate::guests::path(&format!("example_{}.wasm", example.replace('-', "_")));
    std::fs::copy(&artifact, dir.path().join(format!("{example}.wasm"))).unwrap();
    let manifest = json!({
        "name": name, "version": version, "component": format!("{example}.wasm"),
        "inputs": inputs, "outputs": outputs,
    });
    // JSON is YAML: the manifest is written as JSON text to pipeline.yaml.
    std::fs::write(dir.path().join("pipeline.yaml"), manifest.to_string()).unwrap();
    for (path, text) in extra {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    dir
}

/// Runs `pipewright pipeline push`; (success, stdout, stderr).
pub fn push(dir: &Path, server: &TestServer, token: &str) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(["pipeline", "push"])
        .arg(dir)
        .args(["--server", &server.base, "--token", token])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

pub async fn push_hello(server: &TestServer, token: &str, version: &str) -> String {
    let dir = pipeline_dir(
        "hello",
        "hello",
        version,
        json!([{"name": "text", "type": "string"}]),
        json!([{"name": "greeting", "type": "string"}]),
        &[],
    );
    let (ok, pointer, stderr) = push(dir.path(), server, token);
    assert!(ok, "push failed: {stderr}");
    pointer
}

pub async fn run(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    server.post("/v4/runs", token, body).await
}

on_both_stores!(
    pushed_pipeline_runs_sync_and_async,
    run_errors_are_in_the_run_object,
    files_in_files_out_and_bundled_files,
    uppercase_names_and_components_that_do_not_compile_are_refused,
    a_new_version_runs_at_once_here_and_soon_through_a_replica,
    a_component_winch_cannot_compile_says_so_in_its_registration,
);

async fn pushed_pipeline_runs_sync_and_async(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let (status, _) = server.get("/v4/tokens/validate", &alice).await;
    assert_eq!(status, 200);
    let (status, body) = server.get("/v4/tokens/validate", "pw_nope_nope").await;
    assert_eq!((status, body["detail"].as_str().is_some()), (401, true));

    assert_eq!(
        push_hello(&server, &alice, "0.1.0").await,
        "alice/hello:0.1.0"
    );
    let (status, done) = run(
        &server,
        &alice,
        json!({"pipeline": "alice/hello:0.1.0", "inputs": [{"type": "string", "value": "world"}], "async_run": false}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "completed");
    assert_eq!(
        done["outputs"],
        json!([{"type": "string", "value": "Hello, world!", "file": null}])
    );
    assert!(done["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(done["error"], Value::Null);

    // Async: accepted at once, polled to completion; the latest version without a tag.
    let (status, accepted) = run(
        &server,
        &alice,
        json!({"pipeline": "alice/hello", "inputs": [{"type": "string", "value": "later"}], "async_run": true}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let finished = loop {
        let (status, polled) = server.get(&format!("/v4/runs/{id}"), &alice).await;
        assert_eq!(status, 200);
        if polled["state"] == "completed" {
            break polled;
        }
        assert!(Instant::now() < deadline, "never completed: {polled}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(finished["outputs"][0]["value"], "Hello, later!");
    // The v3 alias answers the same.
    let (status, v3) = server
        .post(
            "/v3/runs",
            &alice,
            json!({"pipeline": "alice/hello:0.1.0", "inputs": [{"type": "string", "value": "v3"}]}),
        )
        .await;
    assert_eq!(
        (status, &v3["outputs"][0]["value"]),
        (200, &json!("Hello, v3!"))
    );
    // Runs belong to their account; so does running the pipeline.
    let bob = server.token("bob").await;
    let (status, _) = server.get(&format!("/v4/runs/{id}"), &bob).await;
    assert_eq!(status, 404);
    let (status, refused) = run(
        &server,
        &bob,
        json!({"pipeline": "alice/hello:0.1.0", "inputs": [{"type": "string", "value": "x"}]}),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
}

/// Runs find their pipeline in memory (`runs::targets::RunTargets`): a version pushed through
/// the same server is run by the next request, one pushed through another server within the
/// change poll.
async fn a_new_version_runs_at_once_here_and_soon_through_a_replica(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let latest = json!({"pipeline": "alice/hello", "inputs": [{"type": "string", "value": "x"}]});
    push_hello(&server, &alice, "0.1.0").await;
    let (status, first) = run(&server, &alice, latest.clone()).await;
    assert_eq!(
        (status, &first["pipeline_id"]),
        (200, &json!("alice/hello:0.1.0"))
    );

    push_hello(&server, &alice, "0.2.0").await;
    let (status, second) = run(&server, &alice, latest.clone()).await;
    assert_eq!(
        (status, &second["pipeline_id"]),
        (200, &json!("alice/hello:0.2.0"))
    );

    let replica = server.replica().await;
    push_hello(&replica, &alice, "0.3.0").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = run(&server, &alice, latest.clone()).await;
        assert_eq!(status, 200, "{body}");
        if body["pipeline_id"] == "alice/hello:0.3.0" {
            break;
        }
        assert_eq!(body["pipeline_id"], "alice/hello:0.2.0");
        assert!(
            Instant::now() < deadline,
            "the replica's version never ran here"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run_errors_are_in_the_run_object(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    push_hello(&server, &alice, "0.1.0").await;
    for (inputs, expected) in [
        (
            json!([{"type": "integer", "value": 3}]),
            "input `text` is a string, not a integer",
        ),
        (
            json!([]),
            "the pipeline takes 1 input(s) (text: string), not 0",
        ),
        (
            json!([{"type": "pkl", "value": "gASV"}]),
            "inputs of type `pkl` are not supported here",
        ),
    ] {
        let (status, failed) = run(
            &server,
            &alice,
            json!({"pipeline": "alice/hello:0.1.0", "inputs": inputs}),
        )
        .await;
        assert_eq!(status, 200, "{failed}");
        assert_eq!(failed["state"], "failed");
        assert_eq!(failed["error"]["type"], "input_error");
        assert_eq!(failed["error"]["message"], expected);
        assert_eq!(failed["outputs"], Value::Null);
    }
    let (status, missing) = run(
        &server,
        &alice,
        json!({"pipeline": "alice/nothing:1.0.0", "inputs": []}),
    )
    .await;
    assert_eq!(status, 404, "{missing}");
    assert!(missing["detail"].as_str().unwrap().contains("not found"));
}

async fn files_in_files_out_and_bundled_files(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let dir = pipeline_dir(
        "file-io",
        "shout",
        "1.0.0",
        json!([{"name": "document", "type": "file"}]),
        json!([{"name": "result", "type": "file"}, {"name": "lines", "type": "integer"}]),
        &[("header.txt", "# shouted\n")],
    );
    let (ok, pointer, stderr) = push(dir.path(), &server, &alice);
    assert!(ok, "{stderr}");
    // Upload the input as the client does: multipart field `pfile`.
    let form = reqwest::multipart::Form::new().part(
        "pfile",
        reqwest::multipart::Part::bytes(b"one\ntwo".to_vec()).file_name("doc.txt"),
    );
    let (status, uploaded) = call(
        server
            .request(Method::POST, "/v4/files", Some(&alice))
            .multipart(form),
    )
    .await;
    assert_eq!(status, 200, "{uploaded}");
    let (status, done) = run(
        &server,
        &alice,
        json!({"pipeline": pointer, "inputs": [{"type": "file", "value": null, "file_name": "doc.txt",
               "file_path": uploaded["path"], "file_url": uploaded["url"]}]}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        done["outputs"][1],
        json!({"type": "integer", "value": 3, "file": null})
    );
    let file = &done["outputs"][0]["file"];
    assert_eq!(done["outputs"][0]["type"], "file");
    assert_eq!(file["name"], "result.txt");
    // Downloaded without credentials, by the signed link.
    let url = file["url"].as_str().unwrap();
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), file["size"].as_u64());
    assert_eq!(response.text().await.unwrap(), "# shouted\nONE\nTWO");
    // A tampered link is refused; so is a link to another blob with this signature.
    let parts: Vec<&str> = url.rsplitn(3, '/').collect(); // [name, signature, rest]
    let tampered = format!("{}/{}00/{}", parts[2], parts[1], parts[0]);
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
    let renamed = format!("{}/{}/other.txt", parts[2], parts[1]);
    assert_eq!(reqwest::get(&renamed).await.unwrap().status(), 403);
    // The upload's own link serves the input back.
    let upload_url = uploaded["url"].as_str().unwrap();
    assert_eq!(
        reqwest::get(upload_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "one\ntwo"
    );
    assert!(
        uploaded["path"].as_str().unwrap().ends_with("/doc.txt"),
        "{uploaded}"
    );
}

async fn uppercase_names_and_components_that_do_not_compile_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let dir = pipeline_dir(
        "hello",
        "Hello",
        "0.1.0",
        json!([{"name": "text", "type": "string"}]),
        json!([{"name": "greeting", "type": "string"}]),
        &[],
    );
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(!ok);
    assert!(stderr.contains("must be lowercase"), "{stderr}");
    let (status, _) = server.get("/v1/pipelines/alice/hello", &alice).await;
    assert_eq!(status, 404, "nothing was registered");

    // A component that does not compile is refused at the push, saying which file and why.
    let dir = pipeline_dir(
        "hello",
        "hello",
        "0.1.0",
        json!([{"name": "text", "type": "string"}]),
        json!([{"name": "greeting", "type": "string"}]),
        &[("hello.wasm", "\0asm but not a component")],
    );
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(!ok);
    assert!(
        stderr.contains("`hello.wasm` is not a component that compiles"),
        "{stderr}"
    );
    let (status, _) = server.get("/v1/pipelines/alice/hello", &alice).await;
    assert_eq!(status, 404, "nothing was registered");
}

// ---------------------------------------------------------------------------------------------
// Containment, capacity, restarts.

/// Pushes the hostile runnable (input `mode`, output `result`) as `alice/hostile:0.1.0`.
pub async fn push_hostile(server: &TestServer, token: &str) {
    let dir = tempfile::tempdir().unwrap();
    let artifact = crate::guests::path("hostile_runnable.wasm");
    std::fs::copy(&artifact, dir.path().join("hostile.wasm")).unwrap();
    let manifest = json!({"name": "hostile", "version": "0.1.0", "component": "hostile.wasm",
        "inputs": [{"name": "mode", "type": "string"}], "outputs": [{"name": "result", "type": "string"}]});
    std::fs::write(dir.path().join("pipeline.yaml"), manifest.to_string()).unwrap();
    let (ok, _, stderr) = push(dir.path(), server, token);
    assert!(ok, "{stderr}");
}

/// A component that uses tail calls, which Winch does not compile: registration compiles it with
/// Cranelift at once and says so on the version; it runs. One Winch compiles has no such note.
async fn a_component_winch_cannot_compile_says_so_in_its_registration(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let dir = tempfile::tempdir().unwrap();
    // Bytes of its own (a custom section naming this test): with Cranelift's code for them in
    // the shared cache already (another test's push), Winch would not be asked at all.
    let component = crate::guests::with_custom_section(
        &crate::guests::read("tail_call_runnable.wasm"),
        &uuid::Uuid::new_v4().to_string(),
    );
    std::fs::write(dir.path().join("tail-call.wasm"), component).unwrap();
    let manifest = json!({"name": "tail-call", "version": "0.1.0", "component": "tail-call.wasm",
        "inputs": [{"name": "text", "type": "string"}], "outputs": [{"name": "greeting", "type": "string"}]});
    std::fs::write(dir.path().join("pipeline.yaml"), manifest.to_string()).unwrap();
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(ok, "{stderr}");
    let (status, version) = server
        .get("/v1/pipelines/alice/tail-call/versions/0.1.0", &alice)
        .await;
    assert_eq!(
        (status, &version["state"]),
        (200, &json!("ready")),
        "{version}"
    );
    let note = version["registration"]["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("Winch could not compile it") && note.contains("compiled with Cranelift"),
        "{version}"
    );
    let (status, done) = run(
        &server,
        &alice,
        json!({"pipeline": "alice/tail-call:0.1.0", "inputs": [{"type": "string", "value": "tail"}]}),
    )
    .await;
    assert_eq!(
        (status, &done["outputs"][0]["value"]),
        (200, &json!("Hello, tail!")),
        "{done}"
    );

    push_hello(&server, &alice, "0.1.0").await;
    let (_, hello) = server
        .get("/v1/pipelines/alice/hello/versions/0.1.0", &alice)
        .await;
    assert_eq!(hello["state"], "ready", "{hello}");
    assert!(hello["registration"].get("note").is_none(), "{hello}");
}

pub fn hostile(mode: &str) -> Value {
    json!({"pipeline": "alice/hostile:0.1.0", "inputs": [{"type": "string", "value": mode}]})
}

on_both_stores!(
    every_run_has_a_fresh_instance_and_its_own_logs,
    a_trapping_looping_or_greedy_pipeline_fails_its_run_only,
    exhausted_capacity_is_503_unless_the_run_waits,
    a_synchronous_run_whose_client_hangs_up_stops_and_says_so,
);

/// The server makes the next run's instance ahead of it, and commits a run's record just after
/// its answer: still one instance per run, each run's logs its own (not those of the run before
/// or of the instance's making), and each run reads back as it was answered.
async fn every_run_has_a_fresh_instance_and_its_own_logs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    push_hostile(&server, &alice).await;
    let plugins = server.registry.plugins().clone();
    let made_ahead = || async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while plugins.ready_runnable_instances() == 0 {
            assert!(Instant::now() < deadline, "no instance was made ahead");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    for round in 0..3 {
        if round > 0 {
            made_ahead().await;
        }
        let (status, done) = run(&server, &alice, hostile("count")).await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["outputs"][0]["value"], "run 1", "{done}");
        // Its record is committed just after the answer; a read at once finds it all the same.
        let id = done["id"].as_str().unwrap();
        let (status, read) = server.get(&format!("/v4/runs/{id}"), &alice).await;
        assert_eq!((status, &read), (200, &done));
    }
    for word in ["first", "second", "third"] {
        made_ahead().await;
        let (status, done) = run(&server, &alice, hostile(&format!("say:{word}"))).await;
        assert_eq!(status, 200, "{done}");
        let id = done["id"].as_str().unwrap();
        let (status, logs) = server.get(&format!("/v4/logs/run/{id}"), &alice).await;
        assert_eq!(status, 200, "{logs}");
        assert_eq!(
            logs["log_entries"],
            json!([word, format!("{word} (stderr)")]),
            "{logs}"
        );
    }
}

async fn a_trapping_looping_or_greedy_pipeline_fails_its_run_only(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.runs.timeout = Duration::from_secs(1);
    })
    .await;
    let alice = server.token("alice").await;
    push_hostile(&server, &alice).await;
    for (mode, kind, says) in [
        ("trap", "pipeline_error", "hostile pipeline asked to trap"),
        ("loop", "timeout", "deadline"),
        ("alloc", "oom", "memory limit"),
    ] {
        let (status, failed) = run(&server, &alice, hostile(mode)).await;
        assert_eq!(status, 200, "{failed}");
        assert_eq!(failed["state"], "failed", "{mode}: {failed}");
        assert_eq!(failed["error"]["type"], kind, "{mode}: {failed}");
        let message = failed["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{mode}: {message}");
    }
    // No file system but its own: /etc is not there to read.
    let (_, escaped) = run(&server, &alice, hostile("escape")).await;
    let result = escaped["outputs"][0]["value"].as_str().unwrap();
    assert!(result.starts_with("refused"), "{result}");
    // And the server still runs pipelines.
    let (status, fine) = run(&server, &alice, hostile("still here")).await;
    assert_eq!(
        (status, &fine["outputs"][0]["value"]),
        (200, &json!("still here"))
    );
}

async fn exhausted_capacity_is_503_unless_the_run_waits(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.runs.max_per_pipeline = 1;
    })
    .await;
    let alice = server.token("alice").await;
    push_hostile(&server, &alice).await;
    let mut busy = hostile("sleep:1500");
    busy["async_run"] = json!(true);
    let (status, holding) = run(&server, &alice, busy).await;
    assert_eq!(status, 202, "{holding}");
    let response = server
        .request(Method::POST, "/v4/runs", Some(&alice))
        .json(&hostile("now"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["state"], "no_resources_available", "{refused}");
    // Asking to wait: served once the first run ends.
    let mut patient = hostile("waited");
    patient["wait_for_resources"] = json!(true);
    let (status, waited) = run(&server, &alice, patient).await;
    assert_eq!(
        (status, &waited["outputs"][0]["value"]),
        (200, &json!("waited"))
    );
}

/// On PostgreSQL (where replicas share the store) the per-pipeline limit counts the runs of every
/// replica: a run through a second server finds the one slot held by the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_pipeline_limit_holds_across_replicas() {
    if crate::harness::postgres_admin_url().is_none() {
        return;
    }
    let server = TestServer::start_with(Backend::Postgres, |config| {
        config.runs.max_per_pipeline = 1;
    })
    .await;
    let replica = server.replica().await;
    let alice = server.token("alice").await;
    push_hostile(&server, &alice).await;
    let mut busy = hostile("sleep:1500");
    busy["async_run"] = json!(true);
    let (status, holding) = run(&server, &alice, busy).await;
    assert_eq!(status, 202, "{holding}");
    let (status, refused) = run(&replica, &alice, hostile("elsewhere")).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["state"], "no_resources_available", "{refused}");
    // Waiting on the replica: served once the first server's run ends and frees the slot.
    let mut patient = hostile("waited");
    patient["wait_for_resources"] = json!(true);
    let (status, waited) = run(&replica, &alice, patient).await;
    assert_eq!(
        (status, &waited["outputs"][0]["value"]),
        (200, &json!("waited")),
        "{waited}"
    );
    drop(replica);
}

/// A synchronous run executes on its request's task: the client hanging up stops it, and one
/// recorded `running` already (past its first 100 ms) is recorded failed, saying why, at once.
async fn a_synchronous_run_whose_client_hangs_up_stops_and_says_so(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    push_hostile(&server, &alice).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let hung_up = impatient
        .post(format!("{}/v4/runs", server.base))
        .bearer_auth(&alice)
        .json(&hostile("sleep:60000"))
        .send()
        .await;
    assert!(
        hung_up.is_err(),
        "the run cannot have answered: {hung_up:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as("SELECT state, error FROM runs")
            .fetch_all(server.registry.store().pool())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        let (state, error) = &rows[0];
        if state == "failed" {
            let error: Value = serde_json::from_str(error.as_deref().unwrap()).unwrap();
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .contains("client went away"),
                "{error}"
            );
            break;
        }
        assert_eq!(state, "running");
        assert!(Instant::now() < deadline, "never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The capacity it held is free again: the same pipeline runs at once.
    let (status, done) = run(&server, &alice, hostile("sleep:1")).await;
    assert_eq!(
        (status, &done["state"]),
        (200, &json!("completed")),
        "{done}"
    );
}

#[tokio::test]
async fn a_run_interrupted_by_a_restart_is_failed() {
    use crate::cli::{serve_binary, token_create};
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let token = token_create(&["--user", "alice", "--data-dir", &dir]);
    let serve_args = ["--data-dir", &dir, "--registration-lease-secs", "1"];
    let (mut first, base) = serve_binary(&serve_args).await;
    // Push through the CLI against this server.
    let pipeline = tempfile::tempdir().unwrap();
    let artifact = crate::guests::path("hostile_runnable.wasm");
    std::fs::copy(&artifact, pipeline.path().join("hostile.wasm")).unwrap();
    let manifest = json!({"name": "hostile", "version": "0.1.0", "component": "hostile.wasm",
        "inputs": [{"name": "mode", "type": "string"}], "outputs": [{"name": "result", "type": "string"}]});
    std::fs::write(pipeline.path().join("pipeline.yaml"), manifest.to_string()).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["pipeline", "push"])
        .arg(pipeline.path())
        .args(["--server", &base, "--token", &token])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = reqwest::Client::new();
    let mut request = hostile("sleep:60000");
    request["async_run"] = json!(true);
    let (status, accepted) = call(
        client
            .post(format!("{base}/v4/runs"))
            .bearer_auth(&token)
            .json(&request),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_string();
    // A synchronous run too: its answer never comes, but past its first moments it is recorded
    // `running`, so the restart must fail it as well.
    let synchronous = tokio::spawn({
        let (client, url, token) = (client.clone(), format!("{base}/v4/runs"), token.clone());
        async move {
            let _ = client
                .post(url)
                .bearer_auth(token)
                .json(&hostile("sleep:60000"))
                .send()
                .await;
        }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    synchronous.await.unwrap();
    let store = pipewright::store::Store::connect(&format!("sqlite://{dir}/pipewright.db"))
        .await
        .unwrap();
    let recorded: Vec<(String, String)> = sqlx::query_as("SELECT id, state FROM runs")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(recorded.len(), 2, "both runs are recorded: {recorded:?}");
    assert!(
        recorded.iter().any(|(recorded, _)| *recorded == id),
        "{recorded:?}"
    );
    assert!(
        recorded.iter().all(|(_, state)| state == "running"),
        "{recorded:?}"
    );

    let (_second, base) = serve_binary(&serve_args).await;
    for (id, _) in recorded {
        assert_failed_by_a_stopped_server(&client, &base, &token, &id, Duration::from_secs(20))
            .await;
    }
}

/// Polls run `id` through `base` until it is `failed` (within `within`), and checks it was failed
/// because the server running it stopped.
pub async fn assert_failed_by_a_stopped_server(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    let failed = loop {
        let (_, run) = call(
            client
                .get(format!("{base}/v4/runs/{id}"))
                .bearer_auth(token),
        )
        .await;
        if run["state"] == "failed" {
            break run;
        }
        assert!(Instant::now() < deadline, "still {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server stopped"),
        "{failed}"
    );
}

/// Scale-down has a timer of its own: here the only registration worker is busy for the whole
/// test (its content source never answers), and the idle pipeline still leaves memory. The next
/// run starts from the compiled artifact, without the component's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_pipeline_scales_to_zero_and_starts_again_from_the_cache() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.runs.idle_timeout = Duration::from_millis(200);
        config.registration = RegistrationConfig {
            workers: 1,
            attempt_timeout: Duration::from_secs(120),
            fetch_policy: gbdx::loopback_allowed(),
            ..gbdx::quick_registration()
        };
    })
    .await;
    let alice = server.token("alice").await;
    push_hello(&server, &alice, "0.1.0").await;
    let held = gbdx::HeldSource::start(gbdx::component_bytes());
    let task = gbdx::wasm_task("held-task", "0.0.1", &held.url());
    let (status, body) = server.post("/workflows/v1/tasks", &alice, task).await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while held.hits() == 0 {
        assert!(Instant::now() < deadline, "the registration never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let request =
        json!({"pipeline": "alice/hello:0.1.0", "inputs": [{"type": "string", "value": "a"}]});
    let (status, _) = run(&server, &alice, request.clone()).await;
    assert_eq!(status, 200);
    let plugins = server.registry.plugins().clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while plugins.loaded_runnables() > 0 {
        assert!(Instant::now() < deadline, "never scaled to zero");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    plugins.wait_for_optimizing();
    let compiled = plugins.cache_stats().compiled;
    // The compiled artifact is found by the component's stored digest: its bytes are neither
    // read nor hashed again (here they are gone from the blob store, and the run completes).
    let blobs = server.data_dir().join("blobs");
    let removed = server
        .stored_files()
        .into_iter()
        .filter(|file| file.starts_with(&blobs))
        .map(|file| std::fs::remove_file(file).unwrap())
        .count();
    assert!(
        removed > 0,
        "the component is a blob under {}",
        blobs.display()
    );
    let (status, again) = run(&server, &alice, request).await;
    assert_eq!(
        (status, &again["state"]),
        (200, &json!("completed")),
        "{again}"
    );
    assert_eq!(
        plugins.cache_stats().compiled,
        compiled,
        "started from the compiled artifact"
    );
    assert_eq!(plugins.loaded_runnables(), 1);
    assert_eq!(held.hits(), 1, "the registration was at work throughout");
}

// ---------------------------------------------------------------------------------------------
// The real client: PyPI `pipeline-ai` 2.8, driven by tests/e2e/mystic/drive.py.

/// The Python of a venv with `pipeline-ai` 2.8 (`.ci/run` installs it); None (skip) outside CI.
pub fn client_python() -> Option<String> {
    crate::harness::peer_from_env(
        "PIPEWRIGHT_TEST_PIPELINE_AI_PYTHON",
        "the real-client tests",
    )
}

/// Runs one scenario of the driver against `server`; the JSON it printed.
pub async fn drive(python: &str, server: &TestServer, token: &str, args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/mystic/drive.py");
    let mut command = std::process::Command::new(python);
    command
        .arg(script)
        .args(["--url", &server.base, "--token", token])
        .args(args);
    // Blocking, off the runtime that serves the server the client talks to.
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("running the driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "the driver printed no JSON ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

on_both_stores!(the_real_client_runs_every_example_unchanged);

async fn the_real_client_runs_every_example_unchanged(backend: Backend) {
    let Some(python) = client_python() else {
        return;
    };
    let server = TestServer::start_with(backend, |config| {
        config.runs.max_per_pipeline = 1;
        // The run that holds the capacity below sleeps until this deadline stops it.
        config.runs.timeout = Duration::from_secs(20);
    })
    .await;
    let alice = server.token("alice").await;
    let login = drive(&python, &server, &alice, &["login"]).await;
    assert_eq!(login["raised"], Value::Null, "{login}");

    // Strings in and out.
    push_hello(&server, &alice, "0.1.0").await;
    let result = drive(
        &python,
        &server,
        &alice,
        &["run-string", "alice/hello:0.1.0", "world"],
    )
    .await;
    assert_eq!(result["raised"], Value::Null, "{result}");
    assert_eq!(result["result"]["state"], "completed", "{result}");
    assert_eq!(
        result["result"]["outputs"],
        json!(["Hello, world!"]),
        "{result}"
    );

    // A file bundled with the pipeline, read at /pipeline.
    let dir = pipeline_dir(
        "bundled",
        "greeter",
        "1.0.0",
        json!([{"name": "name", "type": "string"}]),
        json!([{"name": "message", "type": "string"}]),
        &[("template.txt", "Howdy, {name}!\n")],
    );
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(ok, "{stderr}");
    let result = drive(
        &python,
        &server,
        &alice,
        &["run-string", "alice/greeter:1.0.0", "world"],
    )
    .await;
    assert_eq!(result["raised"], Value::Null, "{result}");
    assert_eq!(
        result["result"]["outputs"],
        json!(["Howdy, world!"]),
        "{result}"
    );

    // Async, polled to completion by the client.
    let result = drive(
        &python,
        &server,
        &alice,
        &["run-async", "alice/hello:0.1.0", "later"],
    )
    .await;
    assert_eq!(result["raised"], Value::Null, "{result}");
    assert_eq!(
        result["result"]["first"]["outputs"],
        Value::Null,
        "{result}"
    );
    assert_eq!(result["result"]["final"]["state"], "completed", "{result}");
    assert_eq!(
        result["result"]["final"]["outputs"],
        json!(["Hello, later!"]),
        "{result}"
    );

    // A file in, a file out (and a bundled file read by the pipeline).
    let dir = pipeline_dir(
        "file-io",
        "shout",
        "1.0.0",
        json!([{"name": "document", "type": "file"}]),
        json!([{"name": "result", "type": "file"}, {"name": "lines", "type": "integer"}]),
        &[("header.txt", "# shouted\n")],
    );
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(ok, "{stderr}");
    let input = tempfile::tempdir().unwrap();
    let document = input.path().join("doc.txt");
    std::fs::write(&document, "one\ntwo").unwrap();
    let result = drive(
        &python,
        &server,
        &alice,
        &["run-file", "alice/shout:1.0.0", document.to_str().unwrap()],
    )
    .await;
    assert_eq!(result["raised"], Value::Null, "{result}");
    assert_eq!(result["result"]["state"], "completed", "{result}");
    let outputs = &result["result"]["outputs"];
    assert_eq!(outputs[0]["content"], "# shouted\nONE\nTWO", "{result}");
    assert_eq!(outputs[1], json!(3), "{result}");

    // Capacity exhausted: the client raises NoResourcesAvailable.
    push_hostile(&server, &alice).await;
    let mut busy = hostile("sleep:60000");
    busy["async_run"] = json!(true);
    let (status, _) = run(&server, &alice, busy).await;
    assert_eq!(status, 202);
    let result = drive(
        &python,
        &server,
        &alice,
        &["run-expect-no-resources", "alice/hostile:0.1.0", "now"],
    )
    .await;
    assert_eq!(result["raised"], "NoResourcesAvailable", "{result}");
}
