//! Mystic's `/v4` over HTTP against a started server: pipelines pushed with the CLI, runs with
//! values and files, async runs, errors in the run object, signed file links.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::BIN;
use crate::harness::{call, Backend, TestServer};
use crate::on_both_stores;

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
    let artifact = format!(
        "{}/example_{}.wasm",
        pipewright::plugins::builtin::GUEST_ARTIFACT_DIR,
        example.replace('-', "_")
    );
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

async fn run(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    server.post("/v4/runs", token, body).await
}

on_both_stores!(
    pushed_pipeline_runs_sync_and_async,
    run_errors_are_in_the_run_object,
    files_in_files_out_and_bundled_files,
    uppercase_names_are_refused,
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
    // Runs belong to their account.
    let bob = server.token("bob").await;
    let (status, _) = server.get(&format!("/v4/runs/{id}"), &bob).await;
    assert_eq!(status, 404);
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
    // A tampered or unsigned link is refused.
    let tampered = url.replace("signature=", "signature=00");
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
    let unsigned = url.split('?').next().unwrap();
    assert_eq!(reqwest::get(unsigned).await.unwrap().status(), 400);
}

async fn uppercase_names_are_refused(backend: Backend) {
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
}
