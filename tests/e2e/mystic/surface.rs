//! Mystic's newer routes over HTTP and through the real client: streamed runs, file inputs by
//! URL (fetched only where the operator allows) and by upload id, and bad input on every route,
//! answered as `{"detail": …}` with nothing changed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::get;
use reqwest::Method;
use serde_json::{json, Value};

use super::{client_python, drive, pipeline_dir, push, push_hello};
use crate::harness::{call, without_links, Backend, TestServer};
use crate::on_both_stores;
use crate::peers::Loopback;

on_both_stores!(
    a_streamed_run_sends_the_run_as_it_starts_and_as_it_ends,
    file_inputs_by_url_are_fetched_only_where_allowed_and_bounded,
    a_file_uploaded_by_the_cli_runs_by_its_id,
    bad_input_on_every_new_route_answers_in_mystics_shape_and_changes_nothing,
);

fn hello(pipeline: &str, text: &str) -> Value {
    json!({"pipeline": pipeline, "inputs": [{"type": "string", "value": text}]})
}

async fn a_streamed_run_sends_the_run_as_it_starts_and_as_it_ends(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    push_hello(&server, &alice, "0.1.0").await;

    // Over HTTP: newline-delimited runs, `running` then `completed`, one id.
    let response = server
        .request(Method::POST, "/v4/runs/stream", Some(&alice))
        .json(&hello("alice/hello:0.1.0", "stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["state"], "running");
    assert_eq!(lines[0]["outputs"], Value::Null);
    assert_eq!(lines[1]["state"], "completed");
    assert_eq!(lines[1]["id"], lines[0]["id"]);
    assert_eq!(lines[1]["outputs"][0]["value"], "Hello, stream!");
    // The streamed run is a run like any: it reads back.
    let (status, read) = server
        .get(
            &format!("/v4/runs/{}", lines[0]["id"].as_str().unwrap()),
            &alice,
        )
        .await;
    assert_eq!((status, &read["state"]), (200, &json!("completed")));

    // A run that ends before it starts is one line; an unknown pipeline is an HTTP error.
    let (status, failed) = call(
        server
            .request(Method::POST, "/v4/runs/stream", Some(&alice))
            .json(&json!({"pipeline": "alice/hello:0.1.0", "inputs": []})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"]["type"], "input_error");
    let (status, missing) = server
        .post("/v4/runs/stream", &alice, hello("alice/nothing:1.0.0", "x"))
        .await;
    assert_eq!(status, 404, "{missing}");
    assert!(missing["detail"].as_str().unwrap().contains("not found"));

    // The real client's `stream_pipeline` reads both results.
    let Some(python) = client_python() else {
        return;
    };
    let streamed = drive(
        &python,
        &server,
        &alice,
        &["stream", "alice/hello:0.1.0", "client"],
    )
    .await;
    assert_eq!(streamed["raised"], Value::Null, "{streamed}");
    let results = streamed["result"].as_array().unwrap();
    let states: Vec<&Value> = results.iter().map(|r| &r["state"]).collect();
    assert_eq!(
        states,
        [&json!("running"), &json!("completed")],
        "{streamed}"
    );
    assert_eq!(
        results[1]["outputs"],
        json!(["Hello, client!"]),
        "{streamed}"
    );
}

/// A file server on loopback serving `/doc.txt` (7 bytes) and `/big.txt` (past the limit
/// below), counting its requests.
fn file_server() -> (Loopback, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (doc, big) = (hits.clone(), hits.clone());
    let app = axum::Router::new()
        .route(
            "/doc.txt",
            get(move || async move {
                doc.fetch_add(1, Ordering::SeqCst);
                "one\ntwo"
            }),
        )
        .route(
            "/big.txt",
            get(move || async move {
                big.fetch_add(1, Ordering::SeqCst);
                "x".repeat(4096)
            }),
        );
    (Loopback::serve(app), hits)
}

const URL_INPUT_LIMIT: u64 = 1024;

async fn file_inputs_by_url_are_fetched_only_where_allowed_and_bounded(backend: Backend) {
    let (allowed, allowed_hits) = file_server();
    let (refused, refused_hits) = file_server();
    let allowed_address = allowed.url().trim_start_matches("http://").to_string();
    let server = TestServer::start_with(backend, |config| {
        config.registration.fetch_policy =
            pipewright::outbound::FetchPolicy::allowing([allowed_address.parse().unwrap()]);
        config.runs.max_url_input_bytes = URL_INPUT_LIMIT;
    })
    .await;
    let alice = server.token("alice").await;
    let dir = pipeline_dir(
        "file-io",
        "shout",
        "1.0.0",
        json!([{"name": "document", "type": "file"}]),
        json!([{"name": "result", "type": "file"}, {"name": "lines", "type": "integer"}]),
        &[],
    );
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(ok, "{stderr}");
    let by_url = |url: &str| {
        json!({"pipeline": "alice/shout:1.0.0", "inputs": [{"type": "file", "value": null,
               "file_name": "doc.txt", "file_path": url, "file_url": null}]})
    };

    // Allowed: fetched, handed to the run as a file.
    let (status, done) = server
        .post(
            "/v4/runs",
            &alice,
            by_url(&format!("{}/doc.txt", allowed.url())),
        )
        .await;
    assert_eq!(
        (status, &done["state"]),
        (200, &json!("completed")),
        "{done}"
    );
    assert_eq!(done["outputs"][1]["value"], 2, "{done}");
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 1);

    // Not allowed: an input_error that says why, and the server never asked.
    let url = format!("{}/doc.txt", refused.url());
    let (status, failed) = server.post("/v4/runs", &alice, by_url(&url)).await;
    assert_eq!(
        (status, &failed["state"]),
        (200, &json!("failed")),
        "{failed}"
    );
    assert_eq!(failed["error"]["type"], "input_error");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("fetching {url} is refused"))
            && message.contains("may not fetch from (loopback)")
            && message.contains("--allow-fetch"),
        "{message}"
    );
    assert_eq!(
        refused_hits.load(Ordering::SeqCst),
        0,
        "a refused URL was fetched"
    );

    // Past the size limit, or not http(s): refused as well.
    let big = format!("{}/big.txt", allowed.url());
    let (_, failed) = server.post("/v4/runs", &alice, by_url(&big)).await;
    assert_eq!(failed["error"]["type"], "input_error", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("larger than {URL_INPUT_LIMIT} bytes")),
        "{failed}"
    );
    for (path, says) in [
        ("file:///etc/passwd", "neither"),
        ("ftp://127.0.0.1/x", "neither"),
        ("/etc/passwd", "neither"),
    ] {
        let (_, failed) = server.post("/v4/runs", &alice, by_url(path)).await;
        assert_eq!(failed["error"]["type"], "input_error", "{path}: {failed}");
        assert!(
            failed["error"]["message"].as_str().unwrap().contains(says),
            "{path}: {failed}"
        );
    }

    // The real client's `File(url=…)`, both ways.
    let Some(python) = client_python() else {
        return;
    };
    let result = drive(
        &python,
        &server,
        &alice,
        &[
            "run-url",
            "alice/shout:1.0.0",
            &format!("{}/doc.txt", allowed.url()),
        ],
    )
    .await;
    assert_eq!(result["raised"], Value::Null, "{result}");
    assert_eq!(result["result"]["state"], "completed", "{result}");
    assert_eq!(
        result["result"]["outputs"][0]["content"], "ONE\nTWO",
        "{result}"
    );
    let result = drive(
        &python,
        &server,
        &alice,
        &["run-url", "alice/shout:1.0.0", &url],
    )
    .await;
    assert_eq!(result["result"]["state"], "failed", "{result}");
    assert_eq!(result["result"]["error"]["type"], "input_error", "{result}");
    assert_eq!(refused_hits.load(Ordering::SeqCst), 0);
}

async fn a_file_uploaded_by_the_cli_runs_by_its_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let Some(python) = client_python() else {
        return;
    };
    let dir = pipeline_dir(
        "file-io",
        "shout",
        "1.0.0",
        json!([{"name": "document", "type": "file"}]),
        json!([{"name": "result", "type": "file"}, {"name": "lines", "type": "integer"}]),
        &[],
    );
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(ok, "{stderr}");
    let form = reqwest::multipart::Form::new().part(
        "pfile",
        reqwest::multipart::Part::bytes(b"by id".to_vec()).file_name("/home/me/doc.txt"),
    );
    let (status, uploaded) = call(
        server
            .request(Method::POST, "/v3/pipeline_files", Some(&alice))
            .multipart(form),
    )
    .await;
    assert_eq!(status, 201, "{uploaded}");
    assert!(uploaded["path"].as_str().unwrap().ends_with("/doc.txt"));
    let id = uploaded["id"].as_str().unwrap();
    let result = drive(
        &python,
        &server,
        &alice,
        &["run-remote-file", "alice/shout:1.0.0", id],
    )
    .await;
    assert_eq!(result["raised"], Value::Null, "{result}");
    assert_eq!(
        result["result"]["outputs"][0]["content"], "BY ID",
        "{result}"
    );
    // Bob cannot name alice's file by its id.
    let bob = server.token("bob").await;
    let result = drive(
        &python,
        &server,
        &bob,
        &["run-remote-file", "alice/shout:1.0.0", id],
    )
    .await;
    assert_eq!(result["raised"], "APIError", "{result}");
    assert_eq!(result["status_code"], 404, "{result}");
}

async fn bad_input_on_every_new_route_answers_in_mystics_shape_and_changes_nothing(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    push_hello(&server, &alice, "0.1.0").await;
    let (status, _) = server
        .post(
            "/v4/pointers",
            &alice,
            json!({"pointer": "alice/hello:prod", "pointer_or_pipeline_id": "alice/hello:0.1.0"}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, uploaded) = server.upload(&alice, b"kept", "kept.txt", &[]).await;
    let snapshot = || async {
        let mut seen = Vec::new();
        for path in [
            "/v4/pipelines",
            "/v4/pointers?show_deleted=true",
            "/v3/pipeline_files",
        ] {
            let (status, mut body) = server.get(path, &alice).await;
            without_links(&mut body);
            seen.push((status, body));
        }
        seen
    };
    let before = snapshot().await;

    let raw = |method: Method, path: &str, body: &str| {
        server
            .request(method, path, Some(&alice))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "limit 0",
            server.request(Method::GET, "/v4/pipelines?limit=0", Some(&alice)),
            422,
            "limit",
        ),
        (
            "limit past 10000",
            server.request(Method::GET, "/v4/pointers?limit=10001", Some(&alice)),
            422,
            "limit",
        ),
        (
            "negative skip",
            server.request(Method::GET, "/v4/pipelines?skip=-1", Some(&alice)),
            422,
            "skip",
        ),
        (
            "show_deleted not a bool",
            server.request(Method::GET, "/v4/pointers?show_deleted=maybe", Some(&alice)),
            422,
            "show_deleted",
        ),
        (
            "pointer not JSON",
            raw(Method::POST, "/v4/pointers", "{"),
            422,
            "invalid pointer",
        ),
        (
            "pointer without target",
            raw(
                Method::POST,
                "/v4/pointers",
                r#"{"pointer": "alice/hello:x"}"#,
            ),
            422,
            "pointer_or_pipeline_id",
        ),
        (
            "pointer without a tag",
            raw(
                Method::POST,
                "/v4/pointers",
                r#"{"pointer": "alice/hello", "pointer_or_pipeline_id": "alice/hello:0.1.0"}"#,
            ),
            422,
            "is not a pointer",
        ),
        (
            "pointer to nothing",
            raw(
                Method::POST,
                "/v4/pointers",
                r#"{"pointer": "alice/hello:x", "pointer_or_pipeline_id": "hello"}"#,
            ),
            404,
            "not found",
        ),
        (
            "pointer of a missing pipeline",
            raw(
                Method::POST,
                "/v4/pointers",
                r#"{"pointer": "alice/nope:x", "pointer_or_pipeline_id": "alice/nope:1.0.0"}"#,
            ),
            404,
            "not found",
        ),
        (
            "pointer with a space",
            raw(
                Method::POST,
                "/v4/pointers",
                r#"{"pointer": "alice/hello:a b", "pointer_or_pipeline_id": "alice/hello:0.1.0"}"#,
            ),
            400,
            "may not contain",
        ),
        (
            "pointer patch not an object",
            raw(Method::PATCH, "/v4/pointers/alice/hello:prod", "[]"),
            422,
            "invalid pointer patch",
        ),
        (
            "patch of a missing pointer",
            raw(
                Method::PATCH,
                "/v4/pointers/alice/hello:nope",
                r#"{"locked": true}"#,
            ),
            404,
            "not found",
        ),
        (
            "patch moving to nothing",
            raw(
                Method::PATCH,
                "/v4/pointers/alice/hello:prod",
                r#"{"pointer_or_pipeline_id": "alice/hello:9.9.9"}"#,
            ),
            404,
            "not found",
        ),
        (
            "delete of a missing pointer",
            server.request(
                Method::DELETE,
                "/v4/pointers/alice/hello:nope",
                Some(&alice),
            ),
            404,
            "not found",
        ),
        (
            "pipeline patch not JSON",
            raw(Method::PATCH, "/v4/pipelines/alice/hello:0.1.0", "nope"),
            422,
            "invalid pipeline patch",
        ),
        (
            "pipeline patch of its inputs",
            raw(
                Method::PATCH,
                "/v4/pipelines/alice/hello:0.1.0",
                r#"{"input_variables": []}"#,
            ),
            422,
            "manifest",
        ),
        (
            "pipeline patch of a GPU",
            raw(
                Method::PATCH,
                "/v4/pipelines/alice/hello:0.1.0",
                r#"{"accelerators": ["nvidia_a100"]}"#,
            ),
            422,
            "CPU",
        ),
        (
            "patch of a missing pipeline",
            raw(Method::PATCH, "/v4/pipelines/alice/hello:9.9.9", "{}"),
            404,
            "not found",
        ),
        (
            "stream not JSON",
            raw(Method::POST, "/v4/runs/stream", "nope"),
            422,
            "invalid run request",
        ),
        (
            "stream of no pipeline name",
            raw(Method::POST, "/v4/runs/stream", r#"{"pipeline": "hello"}"#),
            400,
            "not a pipeline pointer",
        ),
        (
            "upload not multipart",
            raw(Method::POST, "/v3/pipeline_files", "{}"),
            400,
            "multipart",
        ),
        (
            "upload without pfile",
            server
                .request(Method::POST, "/v3/pipeline_files", Some(&alice))
                .multipart(reqwest::multipart::Form::new().text("other", "x")),
            400,
            "pfile",
        ),
        (
            "upload named with a slash",
            server
                .request(Method::POST, "/v3/pipeline_files?name=a/b", Some(&alice))
                .multipart(reqwest::multipart::Form::new().part(
                    "pfile",
                    reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x"),
                )),
            422,
            "not a file name",
        ),
        (
            "unknown file",
            server.request(Method::GET, "/v3/pipeline_files/nope", Some(&alice)),
            404,
            "file nope not found",
        ),
        (
            "unknown file download",
            server.request(
                Method::GET,
                "/v3/pipeline_files/download/nope",
                Some(&alice),
            ),
            404,
            "not found",
        ),
        (
            "no token",
            server.request(Method::GET, "/v4/pointers", None),
            401,
            "Missing API token",
        ),
        (
            "bad token",
            server.request(Method::GET, "/v3/pipeline_files", Some("pw_nope_nope")),
            401,
            "Invalid token",
        ),
    ];
    for (what, request, status, says) in cases {
        let (got, body) = call(request).await;
        assert_eq!(got, status, "{what}: {body}");
        let detail = body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {body}"));
        assert!(detail.contains(says), "{what}: {detail}");
    }
    assert_eq!(
        snapshot().await,
        before,
        "a refused request changed something"
    );
    assert!(uploaded["id"].is_string());
}
