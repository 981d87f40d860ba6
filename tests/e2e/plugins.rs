//! The plugin registry, `/v1/plugins`, over HTTP against started servers: components uploaded at
//! run time (a policy a platform team binds to one namespace, a new pipeline type), immutable
//! versions, activation, rollback, replicas following, and components refused or contained.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::guests;
use crate::harness::{call, code, Backend, TestServer, ADMIN_ACCOUNT};
use crate::on_both_stores;

/// The component of a built-in plugin, as embedded in the binary.
fn builtin(name: &str) -> Vec<u8> {
    pipewright::plugins::builtin::BUILTIN_PLUGINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, bytes)| bytes.to_vec())
        .unwrap()
}

/// `POST /v1/plugins/{name}/versions/{version}[?activate=true]` with the component as body.
pub async fn upload(
    server: &TestServer,
    token: &str,
    plugin: &str,
    bytes: Vec<u8>,
    activate: bool,
) -> (u16, Value) {
    let (name, version) = plugin.split_once('@').unwrap();
    let query = if activate { "?activate=true" } else { "" };
    call(
        server
            .request(
                Method::POST,
                &format!("/v1/plugins/{name}/versions/{version}{query}"),
                Some(token),
            )
            .header("content-type", "application/wasm")
            .body(bytes),
    )
    .await
}

async fn bind(server: &TestServer, token: &str, scope: &str, chain: &[&str]) {
    let (status, body) = crate::bindings::put_binding(server, token, scope, chain).await;
    assert_eq!(status, 200, "binding {scope}: {body}");
}

on_both_stores!(
    a_custom_policy_bound_to_one_namespace_changes_what_it_accepts_and_nothing_else,
    versions_are_immutable_and_rollback_restores_the_one_active_before,
    an_uploaded_type_is_live_on_every_surface_without_a_host_change,
    an_uploaded_type_declaring_the_workbench_is_a_pipeline_type_there,
    a_replica_runs_the_version_activated_through_another,
);

async fn a_custom_policy_bound_to_one_namespace_changes_what_it_accepts_and_nothing_else(
    backend: Backend,
) {
    let server = TestServer::start_with_admin(backend).await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);

    // Only the admin account adds plugins.
    let (status, body) = upload(
        &server,
        &alice,
        "release-only@1.0.0",
        guests::read("release_only.wasm"),
        true,
    )
    .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, added) = upload(
        &server,
        &admin,
        "release-only@1.0.0",
        guests::read("release_only.wasm"),
        true,
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["world"], "validation-policy");
    assert_eq!(added["wit"], "pipewright:plugin@0.1.0");
    assert_eq!(added["added_by"], "ops");
    assert_eq!(
        (added["active"].as_bool(), added["builtin"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(added["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(
        added["size"].as_u64(),
        Some(guests::read("release_only.wasm").len() as u64)
    );

    bind(
        &server,
        &admin,
        "namespace:alice",
        &["release-only", "policy-semver"],
    )
    .await;
    for (token, namespace) in [(&alice, "alice"), (&bob, "bob")] {
        server
            .create_pipeline(token, namespace, "churn", "jupyter")
            .await;
    }
    // Alice's namespace now refuses pre-releases, naming the policy that said so...
    let (status, refused) = server
        .register_notebook(&alice, "alice", "churn", "1.0.0-rc.1")
        .await;
    assert_eq!((status, code(&refused)), (400, "pre-release"), "{refused}");
    assert_eq!(
        refused["error"]["details"][0]["source"],
        "release-only@1.0.0"
    );
    assert_eq!(
        server
            .get("/v1/pipelines/alice/churn/versions", &alice)
            .await
            .1,
        json!([])
    );
    // ...while Bob's keeps the global chain and takes it.
    let (status, body) = server
        .register_notebook(&bob, "bob", "churn", "1.0.0-rc.1")
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["approved_by"], json!(["policy-semver@0.1.0"]));
    // A release passes both policies of alice's chain, and the audit says so.
    let (status, body) = server
        .register_notebook(&alice, "alice", "churn", "1.0.0")
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["approved_by"],
        json!(["release-only@1.0.0", "policy-semver@0.1.0"])
    );
    let (_, pinned) = server.get("/v1/pipelines/alice/churn:1.0.0", &alice).await;
    assert_eq!(pinned["approved_by"], body["approved_by"]);

    // Shown where it is bound; listed beside the built-ins, which are versions like any other.
    let (_, shown) = server
        .get("/v1/plugins/release-only/versions/1.0.0", &alice)
        .await;
    assert_eq!(shown["bound_in"], json!(["namespace:alice"]));
    let (status, listed) = server.get("/v1/plugins", &alice).await;
    assert_eq!(status, 200);
    let entry = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
    };
    assert_eq!(entry("release-only")["active_version"], "1.0.0");
    assert_eq!(entry("policy-semver")["active_version"], "0.1.0");
    assert_eq!(entry("jupyter")["world"], "type-handler");
    let (_, semver) = server
        .get("/v1/plugins/policy-semver/versions/0.1.0", &alice)
        .await;
    assert_eq!(
        (semver["builtin"].as_bool(), semver["added_by"].as_str()),
        (Some(true), Some("builtin"))
    );
    assert!(
        semver["bound_in"]
            .as_array()
            .unwrap()
            .contains(&json!("global")),
        "{semver}"
    );
}

async fn versions_are_immutable_and_rollback_restores_the_one_active_before(backend: Backend) {
    let server = TestServer::start_with_admin(backend).await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let alice = server.token("alice").await;
    // Two versions of one policy that behave differently: 1.0.0 refuses pre-releases, 2.0.0
    // refuses names that are not lowercase.
    let (status, body) = upload(
        &server,
        &admin,
        "house-rules@1.0.0",
        guests::read("release_only.wasm"),
        true,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // The same bytes again: no error, no change. Other bytes under the same version: refused.
    let (status, body) = upload(
        &server,
        &admin,
        "house-rules@1.0.0",
        guests::read("release_only.wasm"),
        false,
    )
    .await;
    assert_eq!(
        (status, body["version"].as_str()),
        (200, Some("1.0.0")),
        "{body}"
    );
    let (status, body) = upload(
        &server,
        &admin,
        "house-rules@1.0.0",
        builtin("policy-lowercase"),
        false,
    )
    .await;
    assert_eq!((status, code(&body)), (409, "conflict"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("immutable"),
        "{body}"
    );
    let (status, body) = upload(
        &server,
        &admin,
        "house-rules@2.0.0",
        builtin("policy-lowercase"),
        false,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["active"], false,
        "uploaded without ?activate: 1.0.0 stays active"
    );

    bind(&server, &admin, "namespace:alice", &["house-rules"]).await;
    server
        .create_pipeline(&alice, "alice", "Churn", "jupyter")
        .await;
    let register = |version: &'static str| {
        let (server, alice) = (&server, &alice);
        async move {
            server
                .register_notebook(alice, "alice", "Churn", version)
                .await
        }
    };
    let (status, body) = register("0.1.0-rc.1").await;
    assert_eq!((status, code(&body)), (400, "pre-release"), "{body}");

    let (status, body) = server
        .post(
            "/v1/plugins/house-rules/versions/2.0.0/activate",
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["active"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let (status, body) = register("0.1.0-rc.1").await;
    assert_eq!((status, code(&body)), (400, "name-not-lowercase"), "{body}");
    assert_eq!(body["error"]["details"][0]["source"], "house-rules@2.0.0");

    let (status, body) = server
        .post("/v1/plugins/house-rules/rollback", &admin, json!({}))
        .await;
    assert_eq!(
        (status, body["version"].as_str()),
        (200, Some("1.0.0")),
        "{body}"
    );
    let (status, body) = register("0.1.0").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["approved_by"], json!(["house-rules@1.0.0"]));

    // Not while bound: the chain would have nothing to run.
    let (status, body) = server
        .post("/v1/plugins/house-rules/deactivate", &admin, json!({}))
        .await;
    assert_eq!((status, code(&body)), (409, "conflict"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("namespace:alice"),
        "{body}"
    );
    let (status, _) = server
        .delete("/v1/policy-bindings/namespace:alice", &admin)
        .await;
    assert_eq!(status, 204);
    let (status, body) = server
        .post("/v1/plugins/house-rules/deactivate", &admin, json!({}))
        .await;
    assert_eq!(
        (status, body["active_version"].clone()),
        (200, Value::Null),
        "{body}"
    );
    // A deactivated policy cannot be bound; rollback brings back the last one that ran.
    let (status, body) = call(
        server
            .request(Method::PUT, "/v1/policy-bindings/global", Some(&admin))
            .json(&json!({"chain": ["house-rules"]})),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "unknown-policy"), "{body}");
    let (status, body) = server
        .post("/v1/plugins/house-rules/rollback", &admin, json!({}))
        .await;
    assert_eq!(
        (status, body["version"].as_str()),
        (200, Some("1.0.0")),
        "{body}"
    );

    // The state is the store's: a server started on it runs the same versions.
    let restarted = server.replica().await;
    let (_, shown) = restarted.get("/v1/plugins/house-rules", &alice).await;
    assert_eq!(shown["active_version"], "1.0.0", "{shown}");
    // Members of other accounts change nothing.
    let (status, body) = server
        .post("/v1/plugins/house-rules/rollback", &alice, json!({}))
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, body) = server
        .post("/v1/plugins/nothing/rollback", &admin, json!({}))
        .await;
    assert_eq!((status, code(&body)), (404, "not-found"), "{body}");
}

async fn an_uploaded_type_is_live_on_every_surface_without_a_host_change(backend: Backend) {
    let server = TestServer::start_with_admin(backend).await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let alice = server.token("alice").await;
    let (status, body) = server
        .post(
            "/v1/pipelines",
            &alice,
            json!({"name": "prices", "type": "csv"}),
        )
        .await;
    assert_eq!(status, 400, "no csv type yet: {body}");

    let (status, added) = upload(
        &server,
        &admin,
        "csv-type@1.0.0",
        guests::read("csv_type.wasm"),
        true,
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(
        (added["world"].as_str(), added["type_id"].as_str()),
        (Some("type-handler"), Some("csv"))
    );
    // Built against the 0.1.0 contract, it declares no surface: `/v1` only.
    assert_eq!(added["wit"], "pipewright:plugin@0.1.0");
    assert_eq!(added["surfaces"], json!(["v1"]));

    // /v1: listed, scaffolded, created, validated by the uploaded handler.
    let (_, types) = server.get("/v1/types", &alice).await;
    let csv = types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "csv")
        .unwrap_or_else(|| panic!("{types}"));
    assert_eq!(csv["surfaces"], json!(["v1"]));
    let (status, scaffold) = server
        .get("/v1/types/csv/scaffold?name=prices", &alice)
        .await;
    assert_eq!(status, 200, "{scaffold}");
    assert_eq!(scaffold[0]["path"], "data.csv");
    server
        .create_pipeline(&alice, "alice", "prices", "csv")
        .await;
    let version = |version: &str, data: &[u8]| json!({"version": version, "files": [{"path": "data.csv", "content_base64": crate::harness::b64(data)}]});
    let (status, body) = server
        .post(
            "/v1/pipelines/alice/prices/versions",
            &alice,
            version("1.0.0", b""),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "missing-header"), "{body}");
    let (status, body) = server
        .post(
            "/v1/pipelines/alice/prices/versions",
            &alice,
            version("1.0.0", b"day,price\n1,10\n"),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Acumos: not a Workbench type (the handler does not declare the surface), in the seed's
    // words.
    let (status, refused) = call(
        server
            .request(Method::POST, "/mlWorkbench/v1/pipeline/users/alice/pipelines", Some(&alice))
            .json(&json!({"pipelineId": {"name": "table", "versionId": {"label": "1"}}, "pipelineType": "CSV"})),
    )
    .await;
    assert_eq!(
        (status, &refused["serviceStatus"]["statusMessage"]),
        (400, &json!("Invalid pipeline type provided")),
        "{refused}"
    );

    // Deactivated: the type is gone again, for new pipelines on every surface.
    let (status, _) = server
        .post("/v1/plugins/csv-type/deactivate", &admin, json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .post(
            "/v1/pipelines",
            &alice,
            json!({"name": "later", "type": "csv"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

/// A type handler built against `pipewright:plugin@0.3.0` that declares the Workbench's surface
/// (`acumos`): once uploaded, the Acumos surface takes its type as a `pipelineType`, scaffolds
/// the pipeline's working copy with it, and shows it by its display name; deactivated, the type
/// is refused there again. The built-ins are on 0.3.0 too, Jupyter and Zeppelin declaring the
/// Workbench, GBDX's `task` and Mystic's `runnable` not.
async fn an_uploaded_type_declaring_the_workbench_is_a_pipeline_type_there(backend: Backend) {
    let server = TestServer::start_with_admin(backend).await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let alice = server.token("alice").await;
    let create = |pipeline_type: &str| {
        call(
            server
                .request(
                    Method::POST,
                    "/mlWorkbench/v1/pipeline/users/alice/pipelines",
                    Some(&alice),
                )
                .json(
                    &json!({"pipelineId": {"name": "quarterly", "versionId": {"label": "1"}},
                               "pipelineType": pipeline_type}),
                ),
        )
    };
    let (status, refused) = create("RMarkdown").await;
    assert_eq!(
        (status, &refused["serviceStatus"]["statusMessage"]),
        (400, &json!("Invalid pipeline type provided")),
        "not loaded yet: {refused}"
    );

    let (status, added) = upload(
        &server,
        &admin,
        "workbench-type@1.0.0",
        guests::read("workbench_type.wasm"),
        true,
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["wit"], "pipewright:plugin@0.3.0");
    assert_eq!(added["surfaces"], json!(["v1", "acumos"]));

    let (_, types) = server.get("/v1/types", &alice).await;
    let surfaces_of = |id: &str| {
        types
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no type {id}: {types}"))["surfaces"]
            .clone()
    };
    assert_eq!(surfaces_of("rmarkdown"), json!(["v1", "acumos"]));
    assert_eq!(surfaces_of("jupyter"), json!(["v1", "acumos"]));
    assert_eq!(surfaces_of("zeppelin"), json!(["v1", "acumos"]));
    assert_eq!(surfaces_of("task"), json!(["v1"]));
    assert_eq!(surfaces_of("runnable"), json!(["v1"]));
    for builtin in ["jupyter", "zeppelin", "task", "runnable"] {
        let (_, shown) = server
            .get(&format!("/v1/plugins/{builtin}/versions/0.1.0"), &alice)
            .await;
        assert_eq!(shown["wit"], "pipewright:plugin@0.3.0", "{shown}");
        assert_eq!(shown["surfaces"], surfaces_of(builtin), "{shown}");
    }
    let (_, policy) = server
        .get("/v1/plugins/policy-acumos/versions/0.1.0", &alice)
        .await;
    assert!(policy.get("surfaces").is_none(), "{policy}");

    let (status, created) = create("RMARKDOWN").await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["pipelineType"], "R Markdown");
    let id = created["pipelineId"]["uuid"].as_str().unwrap();
    let report = server
        .data_dir()
        .join("pipelines")
        .join(id)
        .join("report.Rmd");
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        "---\ntitle: quarterly\n---\n"
    );

    let (status, _) = server
        .post("/v1/plugins/workbench-type/deactivate", &admin, json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, refused) = create("rmarkdown").await;
    assert_eq!(
        (status, &refused["serviceStatus"]["statusMessage"]),
        (400, &json!("Invalid pipeline type provided")),
        "{refused}"
    );
}

async fn a_replica_runs_the_version_activated_through_another(backend: Backend) {
    let server = TestServer::start_with_admin(backend).await;
    let replica = server.replica().await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let alice = server.token("alice").await;
    let (status, body) = upload(
        &server,
        &admin,
        "release-only@1.0.0",
        guests::read("release_only.wasm"),
        true,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    bind(&server, &admin, "namespace:alice", &["release-only"]).await;
    replica
        .create_pipeline(&alice, "alice", "churn", "jupyter")
        .await;

    // The replica polls the store's change counters; it must follow within a second or so.
    until_release_only_refuses_a_pre_release(&replica, &alice, Duration::from_secs(5)).await;
    let (_, shown) = replica.get("/v1/plugins/release-only", &alice).await;
    assert_eq!(shown["active_version"], "1.0.0");
}

/// A component that is not a plugin is refused with the reason, and nothing is stored.
#[tokio::test]
async fn components_that_are_not_plugins_are_refused_with_the_reason() {
    let server = TestServer::start_with_admin(Backend::Sqlite).await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        // Imports wasi:http, which the host grants no plugin.
        ("proxy@1.0.0", guests::read("http_hello.wasm"), "wasi:http"),
        (
            "hello@1.0.0",
            guests::read("example_hello.wasm"),
            "runnable pipeline",
        ),
        (
            "garbage@1.0.0",
            b"\0asm not really a component".to_vec(),
            "could not be loaded",
        ),
        ("empty@1.0.0", Vec::new(), "body must be the component"),
    ];
    for (plugin, bytes, reason) in cases {
        let (status, body) = upload(&server, &admin, plugin, bytes, true).await;
        assert_eq!(status, 400, "{plugin}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{plugin}: {message}");
        let name = plugin.split('@').next().unwrap();
        let (status, _) = server.get(&format!("/v1/plugins/{name}"), &admin).await;
        assert_eq!(status, 404, "{plugin} was stored");
    }
    let (status, body) = upload(
        &server,
        &admin,
        "Shouting@1.0.0",
        guests::read("release_only.wasm"),
        false,
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid-name"), "{body}");
    let (status, body) = upload(
        &server,
        &admin,
        "fine@1.0",
        guests::read("release_only.wasm"),
        false,
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid-version"), "{body}");
    // A type handler may not take a type another plugin handles.
    let (status, body) = upload(
        &server,
        &admin,
        "my-zeppelin@1.0.0",
        builtin("zeppelin"),
        true,
    )
    .await;
    assert_eq!((status, code(&body)), (409, "conflict"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("zeppelin@0.1.0"),
        "{body}"
    );
}

/// An uploaded policy that traps, loops or allocates without bound fails as itself: the request
/// is refused naming plugin, version and export, nothing is written, the server keeps serving.
#[tokio::test]
async fn a_hostile_uploaded_policy_is_contained() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.admin_account = Some(ADMIN_ACCOUNT.into());
        config.limits.call_timeout = Duration::from_millis(500);
    })
    .await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let alice = server.token("alice").await;
    let (status, body) = upload(
        &server,
        &admin,
        "hostile@6.6.6",
        guests::read("hostile_policy.wasm"),
        true,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    bind(&server, &admin, "namespace:alice", &["hostile"]).await;
    for name in ["trap", "loop", "alloc"] {
        server
            .create_pipeline(&alice, "alice", name, "jupyter")
            .await;
        let (status, body) = server
            .register_notebook(&alice, "alice", name, "1.0.0")
            .await;
        assert_eq!(
            (status, code(&body)),
            (502, "plugin-failed"),
            "{name}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("hostile@6.6.6") && message.contains("`check`"),
            "{message}"
        );
        let (_, versions) = server
            .get(&format!("/v1/pipelines/alice/{name}/versions"), &alice)
            .await;
        assert_eq!(versions, json!([]), "{name}");
    }
    server
        .create_pipeline(&alice, "alice", "fine", "jupyter")
        .await;
    let (status, body) = server
        .register_notebook(&alice, "alice", "fine", "1.0.0")
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["approved_by"], json!(["hostile@6.6.6"]));
}

/// WIT versions side by side: a policy built against `pipewright:plugin@0.2.0` (which adds
/// `about`) runs in one chain with a built-in built against 0.1.0; each is shown with its own
/// contract, and the 0.2.0 one with what it says it enforces.
#[tokio::test]
async fn plugins_built_against_both_wit_versions_run_side_by_side() {
    let server = TestServer::start_with_admin(Backend::Sqlite).await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let alice = server.token("alice").await;
    let (status, added) = upload(
        &server,
        &admin,
        "short-names@2.0.0",
        guests::read("described_policy.wasm"),
        true,
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["wit"], "pipewright:plugin@0.2.0");
    assert_eq!(
        added["about"],
        json!({"summary": "pipeline names are at most 12 characters", "codes": ["name-too-long"]})
    );
    let (_, semver) = server
        .get("/v1/plugins/policy-semver/versions/0.1.0", &alice)
        .await;
    assert_eq!(semver["wit"], "pipewright:plugin@0.1.0");
    assert!(semver.get("about").is_none(), "{semver}");

    bind(
        &server,
        &admin,
        "namespace:alice",
        &["short-names", "policy-semver"],
    )
    .await;
    server
        .create_pipeline(&alice, "alice", "quarterly-churn-model", "jupyter")
        .await;
    let (status, body) = server
        .register_notebook(&alice, "alice", "quarterly-churn-model", "1.0.0")
        .await;
    assert_eq!((status, code(&body)), (400, "name-too-long"), "{body}");
    server
        .create_pipeline(&alice, "alice", "churn", "jupyter")
        .await;
    let (status, body) = server
        .register_notebook(&alice, "alice", "churn", "1.0.0")
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["approved_by"],
        json!(["short-names@2.0.0", "policy-semver@0.1.0"])
    );
    let (status, body) = server
        .register_notebook(&alice, "alice", "churn", "0.9.0")
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "version-lower-than-latest"),
        "{body}"
    );
}

/// A version fetched by the server from a URL instead of uploaded, checked against the digest
/// given; a URL the server may not read, or bytes of another digest, are refused.
#[tokio::test]
async fn a_version_is_added_from_a_url_and_checked_against_its_digest() {
    let root = tempfile::tempdir().unwrap();
    let file_root = root.path().to_path_buf();
    let server = TestServer::start_with(Backend::Sqlite, move |config| {
        config.admin_account = Some(ADMIN_ACCOUNT.into());
        config.registration.file_root = Some(file_root);
    })
    .await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let bytes = guests::read("release_only.wasm");
    let path = root.path().join("release_only.wasm");
    std::fs::write(&path, &bytes).unwrap();
    let url = format!("file://{}", path.display());
    let digest = {
        use sha2::Digest as _;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
    };
    let from = |body: Value, version: &str| {
        server
            .request(
                Method::POST,
                &format!("/v1/plugins/release-only/versions/{version}"),
                Some(&admin),
            )
            .json(&body)
    };

    let wrong = format!("sha256:{}", "0".repeat(64));
    let (status, body) = call(from(json!({"url": url, "digest": wrong}), "1.0.0")).await;
    assert_eq!((status, code(&body)), (400, "digest-mismatch"), "{body}");
    let (status, body) = call(from(json!({"url": "file:///etc/hostname"}), "1.0.0")).await;
    assert_eq!((status, code(&body)), (400, "unfetchable"), "{body}");
    let (status, _) = server.get("/v1/plugins/release-only", &admin).await;
    assert_eq!(status, 404, "a refused fetch stored nothing");

    let (status, body) = call(from(json!({"url": url, "digest": digest}), "1.0.0")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["digest"], digest);
    assert_eq!(body["active"], false);
}

on_both_stores!(a_plugin_url_the_server_may_not_fetch_is_refused_and_nothing_stored);

/// A plugin added by URL is fetched only from where the server may fetch: a loopback source
/// without `--allow-fetch` is a 400 before any connection, and nothing is stored; with the rule,
/// the same URL is added.
async fn a_plugin_url_the_server_may_not_fetch_is_refused_and_nothing_stored(backend: Backend) {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let bytes = guests::read("release_only.wasm");
    let source = crate::peers::Loopback::serve(axum::Router::new().route(
        "/release_only.wasm",
        axum::routing::get(move || async move {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            bytes
        }),
    ));
    let url = format!("{}/release_only.wasm", source.url());
    let add = |server: &TestServer, admin: String| {
        server
            .request(
                Method::POST,
                "/v1/plugins/release-only/versions/1.0.0",
                Some(&admin),
            )
            .json(&json!({ "url": url }))
    };

    let server = TestServer::start_with_admin(backend).await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let before = server.stored_files();
    let (status, body) = call(add(&server, admin.clone())).await;
    assert_eq!((status, code(&body)), (400, "fetch-refused"), "{body}");
    assert_eq!(
        body["error"]["message"],
        format!(
            "fetching {url} is refused: 127.0.0.1 is an address this server may not fetch from (loopback)"
        ),
        "{body}"
    );
    let (status, _) = server.get("/v1/plugins/release-only", &admin).await;
    assert_eq!(status, 404, "no version row");
    assert_eq!(server.stored_files(), before, "no blob");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "never connected"
    );
    drop(server);

    let allowed = TestServer::start_with(backend, |config| {
        config.admin_account = Some(ADMIN_ACCOUNT.into());
        config.registration.fetch_policy = crate::gbdx::loopback_allowed();
    })
    .await;
    let admin = allowed.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let (status, body) = call(add(&allowed, admin)).await;
    assert_eq!(status, 201, "{body}");
}

/// Registers a pre-release of `alice/churn` on `server` until the `release-only` policy, bound
/// through another server, refuses it (within `within`); each registration made under the old
/// chain is deleted to make room for the next try.
pub async fn until_release_only_refuses_a_pre_release(
    server: &TestServer,
    token: &str,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = server
            .register_notebook(token, "alice", "churn", "1.0.0-rc.1")
            .await;
        if code(&body) == "pre-release" {
            assert_eq!(status, 400);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server never ran release-only: {body}"
        );
        let _ = server
            .delete("/v1/pipelines/alice/churn/versions/1.0.0-rc.1", token)
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
