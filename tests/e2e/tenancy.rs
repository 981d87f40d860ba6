//! Tenants kept apart: what one account holds, another can neither list, read, use by digest nor
//! build on; a namespace a surface reserves holds only what that surface registers; links are
//! built on the public URL whatever the request's headers say; refused requests store nothing;
//! uploads are bounded by a quota and expire.

use reqwest::Method;
use serde_json::{json, Value};

use crate::gbdx::{docker_task, quick_registration, unique_component};
use crate::harness::{b64, call, code, Backend, TestServer};
use crate::mystic::{pipeline_dir, push};
use crate::on_both_stores;

on_both_stores!(
    a_run_cannot_take_another_accounts_file_by_digest,
    private_pipelines_and_their_digests_are_hidden_from_other_accounts,
    projects_are_their_accounts_own,
    the_gbdx_namespace_holds_gbdx_tasks_only,
    refused_registrations_store_no_blob,
    uploads_are_bounded_by_a_quota,
    expired_uploads_leave_with_their_bytes,
    links_are_built_on_the_public_url_not_on_request_headers,
);

const ACUMOS: &str = "/mlWorkbench/v1/pipeline";

async fn upload(server: &TestServer, token: &str, bytes: &[u8], name: &str) -> (u16, Value) {
    server.upload(token, bytes, name, &[]).await
}

/// Pushes `file-io` (a file in, the file shouted out) as `NAME` for `token`'s account.
fn push_shout(server: &TestServer, token: &str, name: &str) -> String {
    let dir = pipeline_dir(
        "file-io",
        name,
        "1.0.0",
        json!([{"name": "document", "type": "file"}]),
        json!([{"name": "result", "type": "file"}, {"name": "lines", "type": "integer"}]),
        &[],
    );
    let (ok, pointer, stderr) = push(dir.path(), server, token);
    assert!(ok, "push failed: {stderr}");
    pointer
}

/// Runs `pointer` with one file input given by its `files/<digest>/<name>` path.
async fn run_with_file(server: &TestServer, token: &str, pointer: &str, path: &str) -> Value {
    let (status, run) = server
        .post(
            "/v4/runs",
            token,
            json!({"pipeline": pointer, "inputs": [
                {"type": "file", "value": null, "file_name": "x", "file_path": path}]}),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    run
}

/// Every blob file under the data directory's blob store.
fn blob_count(server: &TestServer) -> usize {
    let blobs = server.data_dir().join("blobs");
    server
        .stored_files()
        .iter()
        .filter(|path| path.starts_with(&blobs))
        .count()
}

async fn a_run_cannot_take_another_accounts_file_by_digest(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let bob = server.token("bob").await;
    let (status, secret) = upload(&server, &alice, b"alice's secret", "secret.txt").await;
    assert_eq!(status, 200, "{secret}");
    // Alice's private notebook: its file's digest, as alice sees it.
    let notebook = server.notebook_digest(&alice, "alice", "diary").await;

    let pointer = push_shout(&server, &bob, "shout");
    for path in [
        secret["path"].as_str().unwrap().to_string(),
        format!("files/{notebook}/notebook.ipynb"),
        // A digest nothing holds is answered alike: the refusal tells nothing.
        format!("files/sha256:{}/x", "0".repeat(64)),
    ] {
        let run = run_with_file(&server, &bob, &pointer, &path).await;
        assert_eq!(run["state"], "failed", "{path}: {run}");
        assert_eq!(run["error"]["type"], "input_error", "{run}");
        assert!(
            run["error"]["message"]
                .as_str()
                .unwrap()
                .contains("neither an upload of your account"),
            "{run}"
        );
        assert_eq!(run["outputs"], Value::Null, "nothing read back: {run}");
    }
    // Bob's own upload runs: the refusals above are about whose file it is.
    let (_, own) = upload(&server, &bob, b"bob's own", "own.txt").await;
    let run = run_with_file(&server, &bob, &pointer, own["path"].as_str().unwrap()).await;
    assert_eq!(run["state"], "completed", "{run}");
    // And a file of a version bob may read (a shared namespace's) is his to use.
    let shared = server.notebook_digest(&alice, "commons", "notes").await;
    let run = run_with_file(&server, &bob, &pointer, &format!("files/{shared}/n")).await;
    assert_eq!(run["state"], "completed", "{run}");
}

async fn private_pipelines_and_their_digests_are_hidden_from_other_accounts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let bob = server.token("bob").await;
    server
        .create_pipeline(&alice, "alice", "p", "jupyter")
        .await;
    assert_eq!(
        server
            .register_notebook(&alice, "alice", "p", "1.0.0")
            .await
            .0,
        201
    );
    server
        .create_pipeline(&alice, "commons", "open", "jupyter")
        .await;
    for path in [
        "/v1/pipelines/alice/p",
        "/v1/pipelines/alice/p:1.0.0",
        "/v1/pipelines/alice/p/versions",
        "/v1/pipelines/alice/p/versions/1.0.0",
    ] {
        let (status, body) = server.get(path, &bob).await;
        assert_eq!((status, code(&body)), (404, "not-found"), "{path}: {body}");
        assert!(!body.to_string().contains("sha256:"), "{path}: {body}");
        let (status, _) = server.get(path, &alice).await;
        assert_eq!(status, 200, "alice reads her own {path}");
    }
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p["namespace"].as_str().unwrap(),
                    p["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let (_, listed) = server.get("/v1/pipelines", &bob).await;
    assert_eq!(
        names(&listed),
        ["commons/open"],
        "a shared namespace is everyone's"
    );
    let (_, listed) = server.get("/v1/pipelines?namespace=alice", &bob).await;
    assert_eq!(listed, json!([]));
    let (_, listed) = server.get("/v1/pipelines", &alice).await;
    assert_eq!(names(&listed), ["alice/p", "commons/open"]);
    // Nothing changed for alice by bob's looking.
    let (_, versions) = server.get("/v1/pipelines/alice/p/versions", &alice).await;
    assert_eq!(versions.as_array().unwrap().len(), 1);
}

async fn projects_are_their_accounts_own(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let bob = server.token("bob").await;
    let (status, project) = server
        .post("/v1/projects", &alice, json!({"name": "churn_study"}))
        .await;
    assert_eq!(status, 201, "{project}");
    let id = project["id"].as_str().unwrap();

    let (status, listed) = server.get("/v1/projects", &bob).await;
    assert_eq!((status, listed), (200, json!([])));
    let (status, listed) = server.get("/v1/projects", &alice).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (status, body) = server.get(&format!("/v1/projects/{id}"), &bob).await;
    assert_eq!((status, code(&body)), (404, "not-found"), "{body}");

    // Acumos: another account's project is neither a parent nor a listing.
    let create = json!({"pipelineId": {"name": "intruder", "versionId": {"label": "1"}},
                        "pipelineType": "Jupyter",
                        "projects": {"projects": [{"projectId": {"uuid": id}}]}});
    for path in [
        format!("{ACUMOS}/users/bob/pipelines"),
        format!("{ACUMOS}/users/bob/projects/{id}/pipelines"),
    ] {
        let (status, body) = server.post(&path, &bob, create.clone()).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["serviceStatus"]["status"], "ERROR");
        assert_eq!(
            body["serviceStatus"]["statusMessage"], "ProjectId does not exist.",
            "{path}"
        );
    }
    let answer = server
        .get(&format!("{ACUMOS}/users/bob/projects/{id}/pipelines"), &bob)
        .await;
    assert_eq!(answer.0, 404, "{answer:?}");
    assert_eq!(
        answer.1["serviceStatus"]["statusMessage"],
        "Project Id does not exists"
    );
    // Bob's own pipeline cannot be moved into alice's project either.
    let (status, own) = server
        .post(
            &format!("{ACUMOS}/users/bob/pipelines"),
            &bob,
            json!({"pipelineId": {"name": "mine", "versionId": {"label": "1"}}, "pipelineType": "Jupyter"}),
        )
        .await;
    assert_eq!(status, 201, "{own}");
    let own_id = own["pipelineId"]["uuid"].as_str().unwrap();
    let answer = call(
        server
            .request(
                Method::PUT,
                &format!("{ACUMOS}/users/bob/pipelines/{own_id}"),
                Some(&bob),
            )
            .json(
                &json!({"pipelineId": {"name": "mine", "versionId": {"label": "1"}},
                          "projects": {"projects": [{"projectId": {"uuid": id}}]}}),
            ),
    )
    .await;
    assert_eq!(answer.0, 404, "{answer:?}");
    assert_eq!(
        answer.1["serviceStatus"]["statusMessage"],
        "Project Id is invalid"
    );
    // Nor by an update made in alice's project (the Workbench's way of adding a pipeline to a
    // project), nor read, launched or archived there.
    let in_alices_project = format!("{ACUMOS}/users/bob/projects/{id}/pipelines/{own_id}");
    for (method, path, message) in [
        (
            Method::PUT,
            in_alices_project.clone(),
            "Project Id is invalid",
        ),
        (
            Method::GET,
            in_alices_project.clone(),
            "Project Id does not exists",
        ),
        (
            Method::POST,
            in_alices_project.clone(),
            "Project Id does not exists",
        ),
        (
            Method::GET,
            format!("{in_alices_project}/launch"),
            "Project Id does not exists",
        ),
        (
            Method::PUT,
            format!("{in_alices_project}/A"),
            "Project Id does not exists",
        ),
    ] {
        let answer = call(
            server
                .request(method.clone(), &path, Some(&bob))
                .json(&json!({})),
        )
        .await;
        assert_eq!(answer.0, 404, "{method} {path}: {answer:?}");
        assert_eq!(
            answer.1["serviceStatus"]["statusMessage"], message,
            "{method} {path}"
        );
    }
    let (_, own_after) = server
        .get(&format!("{ACUMOS}/users/bob/pipelines/{own_id}"), &bob)
        .await;
    assert!(own_after.get("projects").is_none(), "{own_after}");
    assert_eq!(own_after["artifactStatus"]["status"], "ACTIVE");
    // Nothing of bob's reached alice's project.
    let (_, in_project) = server
        .get(
            &format!("{ACUMOS}/users/alice/projects/{id}/pipelines"),
            &alice,
        )
        .await;
    assert_eq!(in_project.as_array().map(Vec::len), Some(0), "{in_project}");
}

async fn the_gbdx_namespace_holds_gbdx_tasks_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let (status, body) = server
        .post(
            "/v1/pipelines",
            &alice,
            json!({"namespace": "gbdx", "name": "test-success", "type": "jupyter"}),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reserved"),
        "{body}"
    );
    let (status, body) = server.register_notebook(&alice, "GBDX", "x", "1.0.0").await;
    assert_eq!(status, 403, "{body}");
    // No account can take the name either.
    let refused =
        pipewright::registry::accounts::create_token(server.registry.store(), "gbdx", None).await;
    assert!(
        refused.is_err(),
        "a user named gbdx would own the namespace"
    );
    let refused =
        pipewright::registry::accounts::create_token(server.registry.store(), "eve", Some("Gbdx"))
            .await;
    assert!(refused.is_err());
    // The GBDX task of that name is still free, and the task list shows only tasks.
    let (status, body) = server
        .post(
            "/workflows/v1/tasks",
            &alice,
            docker_task("test-success", "1.0.0"),
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let (_, listed) = server.get("/v1/pipelines?namespace=gbdx", &alice).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["type"], "task");
}

async fn refused_registrations_store_no_blob(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.registration = quick_registration();
    })
    .await;
    let alice = server.token("alice").await;
    let bob = server.token("bob").await;
    let wasm_upload = |name: &str| {
        let mut task = docker_task(name, "1.0.0");
        task["containerDescriptors"] =
            json!([{"type": "WASM", "properties": {"upload": b64(&unique_component())}}]);
        task
    };
    let (status, body) = server
        .post("/workflows/v1/tasks", &alice, wasm_upload("taken"))
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let before = blob_count(&server);
    // A bad name (400) and another account's name (403), each with fresh bytes.
    let (status, body) = server
        .post("/workflows/v1/tasks", &bob, wasm_upload("bad name!"))
        .await;
    assert_eq!(status, 400, "{body}");
    let mut stolen = wasm_upload("taken");
    stolen["version"] = json!("2.0.0");
    let (status, body) = server.post("/workflows/v1/tasks", &bob, stolen).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        blob_count(&server),
        before,
        "a refused registration left a blob"
    );
}

async fn uploads_are_bounded_by_a_quota(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.uploads.max_files = 2;
        config.uploads.max_bytes = 10;
    })
    .await;
    let alice = server.token("alice").await;
    let bob = server.token("bob").await;
    assert_eq!(upload(&server, &alice, b"12345", "a").await.0, 200);
    let before = blob_count(&server);
    // Past the bytes, then past the count: Mystic's shape, nothing stored.
    let (status, body) = upload(&server, &alice, b"123456", "b").await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("upload quota exceeded"),
        "{body}"
    );
    assert_eq!(upload(&server, &alice, b"1", "c").await.0, 200);
    let (status, body) = upload(&server, &alice, b"2", "d").await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(blob_count(&server), before + 1);
    // Quotas are per account.
    assert_eq!(upload(&server, &bob, b"bob", "e").await.0, 200);
}

async fn expired_uploads_leave_with_their_bytes(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.uploads.time_to_live = std::time::Duration::ZERO;
    })
    .await;
    let alice = server.token("alice").await;
    let pointer = push_shout(&server, &alice, "shout");
    let before = blob_count(&server);
    let (_, kept) = upload(&server, &alice, b"used by a version", "kept.txt").await;
    let (_, gone) = upload(&server, &alice, b"nothing names me", "gone.txt").await;
    // A version holding the same bytes as `kept` keeps its blob alive past the upload.
    server
        .create_pipeline(&alice, "alice", "nb", "jupyter")
        .await;
    let (status, body) = server
        .post(
            "/v1/pipelines/alice/nb/versions",
            &alice,
            json!({"version": "1.0.0", "files": [{"path": "notebook.ipynb",
                   "content_base64": b64(br#"{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}"#)},
                   {"path": "kept.txt", "content_base64": b64(b"used by a version")}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let expired = server.registry.expire_uploads().await.unwrap();
    assert_eq!(expired, 2);
    assert_eq!(
        blob_count(&server),
        before + 2,
        "the notebook and the kept bytes stay; the unreferenced upload went"
    );
    let run = run_with_file(&server, &alice, &pointer, gone["path"].as_str().unwrap()).await;
    assert_eq!(run["error"]["type"], "input_error", "{run}");
    let link = gone["url"].as_str().unwrap();
    assert_eq!(reqwest::get(link).await.unwrap().status(), 404);
    assert_eq!(
        reqwest::get(kept["url"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn links_are_built_on_the_public_url_not_on_request_headers(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.api.public_url = Some("https://pipelines.example.com".into());
    })
    .await;
    let alice = server.token("alice").await;
    let forged = [
        ("host", "attacker.example"),
        ("x-forwarded-proto", "javascript"),
        ("x-forwarded-host", "attacker.example"),
    ];
    let (status, answer) = server.upload(&alice, b"x", "x.txt", &forged).await;
    assert_eq!(status, 200, "{answer}");
    let url = answer["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://pipelines.example.com/v4/blobs/"),
        "{url}"
    );
    // Default: the listen address, whatever the Host header claims.
    let plain = TestServer::start(backend).await;
    let token = plain.token("alice").await;
    let (_, answer) = plain.upload(&token, b"x", "x.txt", &forged).await;
    let url = answer["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/v4/blobs/", plain.base)),
        "{url}"
    );
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
}
