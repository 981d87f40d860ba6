//! The native API over HTTP, on SQLite and on PostgreSQL.

use reqwest::Method;
use serde_json::json;

use crate::harness::{call, code, notebook_version, Backend, TestServer};
use crate::on_both_stores;

on_both_stores!(
    create_register_resolve_and_delete,
    names_are_case_insensitive_but_exact,
    latest_skips_prereleases_and_follows_precedence,
    versions_must_increment_through_policy_semver,
    another_account_is_forbidden_and_changes_nothing,
    account_members_share_ownership,
    bad_input_gets_clear_errors_and_writes_nothing,
    content_is_validated_by_the_type_handler,
    types_scaffold_and_plugins_are_listed,
);

async fn create_register_resolve_and_delete(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let created = server
        .create_pipeline(&alice, "alice", "churn", "jupyter")
        .await;
    assert_eq!(created["owner"], "alice");
    assert_eq!(created["type"], "jupyter");

    for version in ["0.1.0", "0.2.0"] {
        let (status, body) = server
            .register_notebook(&alice, "alice", "churn", version)
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["state"], "ready");
        assert_eq!(body["approved_by"], json!(["policy-semver@0.1.0"]));
        assert_eq!(body["registration"]["attempts"], 1);
        assert!(body["content_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
    }

    let (status, latest) = server.get("/v1/pipelines/alice/churn", &alice).await;
    assert_eq!((status, latest["version"].as_str()), (200, Some("0.2.0")));
    let (status, pinned) = server.get("/v1/pipelines/alice/churn:0.1.0", &alice).await;
    assert_eq!((status, pinned["version"].as_str()), (200, Some("0.1.0")));
    let (_, same) = server
        .get("/v1/pipelines/alice/churn/versions/0.1.0", &alice)
        .await;
    assert_eq!(same["content_digest"], pinned["content_digest"]);

    let (status, list) = server
        .get("/v1/pipelines/alice/churn/versions", &alice)
        .await;
    assert_eq!(status, 200);
    let versions: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["0.1.0", "0.2.0"]);

    let (status, pipelines) = server.get("/v1/pipelines?namespace=ALICE", &alice).await;
    assert_eq!(status, 200);
    assert_eq!(pipelines.as_array().unwrap().len(), 1);

    let (status, _) = server
        .delete("/v1/pipelines/alice/churn/versions/0.2.0", &alice)
        .await;
    assert_eq!(status, 204);
    let (_, latest) = server.get("/v1/pipelines/alice/churn", &alice).await;
    assert_eq!(
        latest["version"], "0.1.0",
        "latest falls back after a delete"
    );
    let (status, body) = server.get("/v1/pipelines/alice/churn:0.2.0", &alice).await;
    assert_eq!((status, code(&body)), (404, "not-found"));
    // A deleted version may be registered again with the same number.
    let (status, body) = server
        .register_notebook(&alice, "alice", "churn", "0.2.0")
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .delete("/v1/pipelines/alice/churn/versions/9.9.9", &alice)
        .await;
    assert_eq!((status, code(&body)), (404, "not-found"));
}

async fn names_are_case_insensitive_but_exact(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let created = server
        .create_pipeline(&alice, "alice", "Test-Success", "Jupyter")
        .await;
    assert_eq!(created["name"], "Test-Success", "stored as given");
    let (status, body) = server
        .post(
            "/v1/pipelines",
            &alice,
            json!({"namespace": "alice", "name": "test-success", "type": "jupyter"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "conflict"),
        "Test-Success = test-success"
    );
    server
        .create_pipeline(&alice, "alice", "test_success", "jupyter")
        .await;
    server
        .create_pipeline(&alice, "alice", "test-success_beta", "jupyter")
        .await;

    let (status, _) = server
        .register_notebook(&alice, "ALICE", "TEST-SUCCESS", "1.0.0")
        .await;
    assert_eq!(status, 201);
    let (status, body) = server.get("/v1/pipelines/alice/test-success", &alice).await;
    assert_eq!((status, body["name"].as_str()), (200, Some("Test-Success")));
    let (status, body) = server.get("/v1/pipelines/alice/test_success", &alice).await;
    assert_eq!(
        (status, code(&body)),
        (404, "not-found"),
        "test_success is another pipeline, with no version"
    );
}

async fn latest_skips_prereleases_and_follows_precedence(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    server
        .create_pipeline(&alice, "alice", "p", "jupyter")
        .await;
    assert_eq!(
        server
            .register_notebook(&alice, "alice", "p", "0.9.0")
            .await
            .0,
        201
    );
    assert_eq!(
        server
            .register_notebook(&alice, "alice", "p", "0.10.0-rc.1")
            .await
            .0,
        201
    );
    assert_eq!(
        latest(&server, &alice).await.as_deref(),
        Some("0.9.0"),
        "a pre-release is not latest while a release exists"
    );
    assert_eq!(
        server
            .register_notebook(&alice, "alice", "p", "0.10.0")
            .await
            .0,
        201
    );
    assert_eq!(
        latest(&server, &alice).await.as_deref(),
        Some("0.10.0"),
        "precedence, not string order"
    );
}

async fn latest(server: &TestServer, token: &str) -> Option<String> {
    server.get("/v1/pipelines/alice/p", token).await.1["version"]
        .as_str()
        .map(str::to_string)
}

async fn versions_must_increment_through_policy_semver(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    server
        .create_pipeline(&alice, "alice", "p", "zeppelin")
        .await;
    let note = json!({"version": "1.0.0", "files": [{"path": "note.zpln", "content_base64": crate::harness::b64(br#"{"paragraphs": []}"#)}]});
    let (status, body) = server
        .post("/v1/pipelines/alice/p/versions", &alice, note.clone())
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .post("/v1/pipelines/alice/p/versions", &alice, note.clone())
        .await;
    assert_eq!((status, code(&body)), (400, "version-not-incremented"));
    assert_eq!(body["error"]["details"][0]["source"], "policy-semver@0.1.0");
    let mut lower = note.clone();
    lower["version"] = json!("0.9.0");
    let (status, body) = server
        .post("/v1/pipelines/alice/p/versions", &alice, lower)
        .await;
    assert_eq!((status, code(&body)), (400, "version-lower-than-latest"));
    let mut invalid = note;
    invalid["version"] = json!("1.1");
    let (status, body) = server
        .post("/v1/pipelines/alice/p/versions", &alice, invalid)
        .await;
    assert_eq!((status, code(&body)), (400, "invalid-version"));
    let (_, list) = server.get("/v1/pipelines/alice/p/versions", &alice).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "refused versions leave nothing behind"
    );
}

async fn another_account_is_forbidden_and_changes_nothing(backend: Backend) {
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

    let (status, body) = server.register_notebook(&bob, "alice", "p", "2.0.0").await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (status, body) = server
        .delete("/v1/pipelines/alice/p/versions/1.0.0", &bob)
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (status, body) = server
        .post(
            "/v1/pipelines",
            &bob,
            json!({"namespace": "alice", "name": "q", "type": "jupyter"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "forbidden"),
        "an account's namespace is its own"
    );

    // An account's namespace is private: bob cannot even read it; alice sees nothing changed.
    let (status, body) = server.get("/v1/pipelines/alice/p/versions", &bob).await;
    assert_eq!((status, code(&body)), (404, "not-found"));
    let (status, list) = server.get("/v1/pipelines/alice/p/versions", &alice).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // A shared namespace (no account of that name): the first account to take a name owns it.
    server
        .create_pipeline(&bob, "tasks", "bobs-task", "jupyter")
        .await;
    assert_eq!(
        server
            .register_notebook(&bob, "tasks", "bobs-task", "0.0.1")
            .await
            .0,
        201
    );
    let (status, _) = server
        .register_notebook(&alice, "tasks", "bobs-task", "0.0.2")
        .await;
    assert_eq!(status, 403);
}

async fn account_members_share_ownership(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token_in("alice", Some("acme")).await;
    let carol = server.token_in("carol", Some("acme")).await;
    let created = server
        .create_pipeline(&alice, "tasks", "shared", "jupyter")
        .await;
    assert_eq!(created["owner"], "acme");
    assert_eq!(
        server
            .register_notebook(&alice, "tasks", "shared", "0.0.1")
            .await
            .0,
        201
    );
    let (status, body) = server
        .register_notebook(&carol, "tasks", "shared", "0.0.2")
        .await;
    assert_eq!(
        status, 201,
        "a member of the owning account may version it: {body}"
    );
    assert_eq!(body["registered_by"], "carol");
    // The account's own namespace is open to its members.
    server
        .create_pipeline(&carol, "acme", "tool", "zeppelin")
        .await;
}

async fn bad_input_gets_clear_errors_and_writes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    server
        .create_pipeline(&alice, "alice", "p", "jupyter")
        .await;

    // Authentication.
    let (status, body) = call(server.request(Method::GET, "/v1/pipelines", None)).await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    let (status, body) =
        call(server.request(Method::GET, "/v1/pipelines", Some("pw_0000_0000"))).await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    // The same token id (known to the server: alice's token was just used) with another secret.
    let last = if alice.ends_with('x') { "y" } else { "x" };
    let forged = format!("{}{last}", &alice[..alice.len() - 1]);
    let (status, _) = call(server.request(Method::GET, "/v1/pipelines", Some(&forged))).await;
    assert_eq!(status, 401, "a token with a wrong secret is refused");

    // Malformed JSON, wrong shape, unknown fields.
    let (status, body) = call(
        server
            .request(Method::POST, "/v1/pipelines", Some(&alice))
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid-json"));
    let (status, body) = server
        .post(
            "/v1/pipelines",
            &alice,
            json!({"name": 5, "type": "jupyter"}),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "invalid-json"));
    let (status, body) = server
        .post(
            "/v1/pipelines",
            &alice,
            json!({"name": "x", "type": "jupyter", "color": "red"}),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "invalid-json"));

    // Names.
    let long = "x".repeat(10_000);
    for (name, expected) in [
        ("a/b", "invalid-name"),
        (long.as_str(), "invalid-name"),
        ("", "name-missing"),
        ("a:b", "invalid-name"),
    ] {
        let (status, body) = server
            .post(
                "/v1/pipelines",
                &alice,
                json!({"name": name, "type": "jupyter"}),
            )
            .await;
        assert_eq!((status, code(&body)), (400, expected), "name {:.20}", name);
    }
    let (status, body) = server
        .post(
            "/v1/pipelines",
            &alice,
            json!({"name": "x", "type": "spreadsheet"}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid-type"));

    // Unknown pipeline, version, route.
    let (status, body) = server.get("/v1/pipelines/alice/nope", &alice).await;
    assert_eq!((status, code(&body)), (404, "not-found"));
    let (status, body) = server
        .register_notebook(&alice, "alice", "nope", "1.0.0")
        .await;
    assert_eq!((status, code(&body)), (404, "not-found"));
    let (status, body) = server.get("/v1/pipelines/alice/p", &alice).await;
    assert_eq!(
        (status, code(&body)),
        (404, "not-found"),
        "no ready version yet"
    );
    let (status, body) = server.get("/v1/nothing-here", &alice).await;
    assert_eq!((status, code(&body)), (404, "not-found"));

    // Versions and content.
    let (status, body) = server
        .register_notebook(&alice, "alice", "p", "not-semver")
        .await;
    assert_eq!((status, code(&body)), (400, "invalid-version"));
    let (status, body) = server
        .register_notebook(&alice, "alice", "p", &"1".repeat(10_000))
        .await;
    assert_eq!((status, code(&body)), (400, "invalid-version"));
    let bad_b64 =
        json!({"version": "1.0.0", "files": [{"path": "n.ipynb", "content_base64": "***"}]});
    let (status, body) = server
        .post("/v1/pipelines/alice/p/versions", &alice, bad_b64)
        .await;
    assert_eq!((status, code(&body)), (400, "invalid-content"));
    let escape =
        json!({"version": "1.0.0", "files": [{"path": "../../etc/passwd", "content_base64": ""}]});
    let (status, body) = server
        .post("/v1/pipelines/alice/p/versions", &alice, escape)
        .await;
    assert_eq!((status, code(&body)), (400, "invalid-path"));

    let (_, list) = server.get("/v1/pipelines/alice/p/versions", &alice).await;
    assert_eq!(list, json!([]), "no refused request left a version behind");
    let (_, pipelines) = server.get("/v1/pipelines", &alice).await;
    assert_eq!(
        pipelines.as_array().unwrap().len(),
        1,
        "no refused request left a pipeline behind"
    );
    // And the server still serves.
    assert_eq!(
        server
            .register_notebook(&alice, "alice", "p", "1.0.0")
            .await
            .0,
        201
    );
}

async fn content_is_validated_by_the_type_handler(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    server
        .create_pipeline(&alice, "alice", "nb", "jupyter")
        .await;
    let broken = json!({"version": "1.0.0", "files": [{"path": "n.ipynb", "content_base64": crate::harness::b64(b"{\"cells\": 3")}]});
    let (status, body) = server
        .post("/v1/pipelines/alice/nb/versions", &alice, broken)
        .await;
    assert_eq!((status, code(&body)), (400, "invalid-notebook"));
    assert_eq!(body["error"]["details"][0]["source"], "jupyter@0.1.0");
    let none = json!({"version": "1.0.0", "files": []});
    let (status, body) = server
        .post("/v1/pipelines/alice/nb/versions", &alice, none)
        .await;
    assert_eq!((status, code(&body)), (400, "missing-notebook"));
    let (status, _) = server
        .post(
            "/v1/pipelines/alice/nb/versions",
            &alice,
            notebook_version("1.0.0"),
        )
        .await;
    assert_eq!(status, 201);
}

async fn types_scaffold_and_plugins_are_listed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let (status, types) = server.get("/v1/types", &alice).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["jupyter", "runnable", "task", "zeppelin"]);

    // Scaffold output is content the same handler accepts.
    for (type_id, file) in [("jupyter", "notebook.ipynb"), ("zeppelin", "note.zpln")] {
        let (status, files) = server
            .get(&format!("/v1/types/{type_id}/scaffold?name=demo"), &alice)
            .await;
        assert_eq!(status, 200, "{files}");
        assert_eq!(files[0]["path"], file);
        server
            .create_pipeline(&alice, "alice", &format!("{type_id}-demo"), type_id)
            .await;
        let (status, body) = server
            .post(
                &format!("/v1/pipelines/alice/{type_id}-demo/versions"),
                &alice,
                json!({"version": "0.1.0", "files": files}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = server
        .get("/v1/types/spreadsheet/scaffold?name=x", &alice)
        .await;
    assert_eq!((status, code(&body)), (404, "not-found"));

    let (status, plugins) = server.get("/v1/plugins", &alice).await;
    assert_eq!(status, 200);
    let mut names: Vec<&str> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "jupyter",
            "policy-acumos",
            "policy-lowercase",
            "policy-semver",
            "runnable",
            "task",
            "zeppelin"
        ]
    );
}

#[tokio::test]
async fn healthz_metrics_and_an_openapi_covering_every_route() {
    let server = TestServer::start(Backend::Sqlite).await;
    let alice = server.token("alice").await;
    let (status, body) = call(server.request(Method::GET, "/healthz", None)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));

    server.get("/v1/pipelines", &alice).await;
    let metrics = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pipewright_http_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/v1/pipelines\""), "{metrics}");
    assert!(metrics.contains("pipewright_plugin_compiles"), "{metrics}");

    let (status, doc) = call(server.request(Method::GET, "/v1/openapi.json", None)).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().expect("paths");
    let documented: Vec<String> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    for route in [
        "POST /v1/pipelines",
        "GET /v1/pipelines",
        "GET /v1/pipelines/{namespace}/{name}",
        "POST /v1/pipelines/{namespace}/{name}/versions",
        "GET /v1/pipelines/{namespace}/{name}/versions",
        "GET /v1/pipelines/{namespace}/{name}/versions/{version}",
        "DELETE /v1/pipelines/{namespace}/{name}/versions/{version}",
        "GET /v1/types",
        "GET /v1/types/{type}/scaffold",
        "GET /v1/plugins",
    ] {
        assert!(
            documented.iter().any(|d| d == route),
            "{route} missing from {documented:?}"
        );
    }
    // Every documented route answers (not the fallback's "no such route").
    for entry in &documented {
        let (method, path) = entry.split_once(' ').unwrap();
        let concrete = path
            .replace("{namespace}", "alice")
            .replace("{name}", "x")
            .replace("{version}", "1.0.0")
            .replace("{type}", "jupyter");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (_, body) = call(server.request(method, &concrete, Some(&alice))).await;
        assert_ne!(body["error"]["message"], "no such route", "{entry}");
    }
}

#[tokio::test]
async fn concurrent_registrations_never_break_the_increment_rule() {
    let server = TestServer::start(Backend::Sqlite).await;
    let alice = server.token("alice").await;
    server
        .create_pipeline(&alice, "alice", "race", "jupyter")
        .await;
    let attempts = ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5"];
    let mut tasks = Vec::new();
    for version in attempts {
        let (base, token) = (server.base.clone(), alice.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let builder = client
                .post(format!("{base}/v1/pipelines/alice/race/versions"))
                .bearer_auth(token)
                .json(&notebook_version(version));
            (version, call(builder).await.0)
        }));
    }
    let mut accepted = Vec::new();
    for task in tasks {
        let (version, status) = task.await.unwrap();
        assert!(
            status == 201 || status == 400 || status == 409,
            "{version}: {status}"
        );
        if status == 201 {
            accepted.push(version);
        }
    }
    assert!(!accepted.is_empty());
    // Whatever got in, registration order respects precedence: each accepted version was higher
    // than every version before it.
    let (_, list) = server
        .get("/v1/pipelines/alice/race/versions", &alice)
        .await;
    let mut by_time: Vec<(i64, semver::Version)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["registered_at_ms"].as_i64().unwrap(),
                semver::Version::parse(v["version"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    by_time.sort();
    assert_eq!(by_time.len(), accepted.len());
    for pair in by_time.windows(2) {
        assert!(
            pair[0].1 < pair[1].1,
            "registered {} after {}",
            pair[1].1,
            pair[0].1
        );
    }
}
