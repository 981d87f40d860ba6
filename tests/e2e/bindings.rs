//! Policy bindings changed at run time through `/v1/policy-bindings`: the next request uses the
//! new chain, only in its scope; a replica follows within its poll; under concurrent
//! registrations every version is approved by exactly the old chain or the new, as its audit says.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{call, Backend, TestServer, ADMIN_ACCOUNT};
use crate::on_both_stores;

/// `PUT /v1/policy-bindings/{scope}` with `chain`.
pub async fn put_binding(
    server: &TestServer,
    token: &str,
    scope: &str,
    chain: &[&str],
) -> (u16, Value) {
    call(
        server
            .request(
                Method::PUT,
                &format!("/v1/policy-bindings/{scope}"),
                Some(token),
            )
            .json(&json!({ "chain": chain })),
    )
    .await
}

on_both_stores!(
    a_namespace_binding_changes_that_namespace_only,
    only_the_admin_account_changes_bindings,
    a_replica_follows_within_its_poll,
    every_registration_is_approved_by_the_old_chain_or_the_new,
);

async fn a_namespace_binding_changes_that_namespace_only(backend: Backend) {
    let server = TestServer::start_with_admin(backend).await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let (alice, bob) = (server.token("alice").await, server.token("bob").await);
    server
        .create_pipeline(&alice, "alice", "Churn", "jupyter")
        .await;
    server
        .create_pipeline(&bob, "bob", "Churn", "jupyter")
        .await;

    let (status, body) = put_binding(
        &server,
        &admin,
        "namespace:alice",
        &["policy-lowercase", "policy-semver"],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The very next request in alice's namespace uses the new chain.
    let (status, refused) = server
        .register_notebook(&alice, "alice", "Churn", "0.1.0")
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "name-not-lowercase");
    // Bob's namespace keeps the global chain.
    let (status, registered) = server
        .register_notebook(&bob, "bob", "Churn", "0.1.0")
        .await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["approved_by"], json!(["policy-semver@0.1.0"]));
    let (_, listed) = server.get("/v1/policy-bindings", &alice).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["scope"] == "namespace:alice"
                && b["chain"] == json!(["policy-lowercase", "policy-semver"])),
        "{listed}"
    );
    // Cleared: the global chain again.
    let (status, _) = call(server.request(
        Method::DELETE,
        "/v1/policy-bindings/namespace:alice",
        Some(&admin),
    ))
    .await;
    assert_eq!(status, 204);
    let (status, registered) = server
        .register_notebook(&alice, "alice", "Churn", "0.1.0")
        .await;
    assert_eq!(status, 201, "{registered}");
}

async fn only_the_admin_account_changes_bindings(backend: Backend) {
    let server = TestServer::start_with_admin(backend).await;
    let alice = server.token("alice").await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let (status, body) = put_binding(&server, &alice, "global", &["policy-lowercase"]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, body) = put_binding(&server, &admin, "global", &["no-such-policy"]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown-policy"))
    );
    let (status, body) = put_binding(&server, &admin, "planet:mars", &["policy-semver"]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid-scope"))
    );
    let (_, listed) = server.get("/v1/policy-bindings", &alice).await;
    let global = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["scope"] == "global")
        .unwrap();
    assert_eq!(global["chain"], json!(["policy-semver"]), "nothing changed");
}

async fn a_replica_follows_within_its_poll(backend: Backend) {
    let first = TestServer::start_with_admin(backend).await;
    let second = first.replica().await;
    let admin = first.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let alice = first.token("alice").await;
    first
        .create_pipeline(&alice, "alice", "Churn", "jupyter")
        .await;
    let (status, _) = put_binding(&first, &admin, "namespace:alice", &["policy-lowercase"]).await;
    assert_eq!(status, 200);
    let changed_at = Instant::now();
    loop {
        let (status, body) = second
            .register_notebook(&alice, "alice", "Churn", "0.1.0")
            .await;
        if status == 400 && body["error"]["code"] == "name-not-lowercase" {
            break;
        }
        assert_eq!(status, 201, "{body}");
        // The old chain took it: delete it, and look again.
        let (status, _) = second
            .delete("/v1/pipelines/alice/Churn/versions/0.1.0", &alice)
            .await;
        assert_eq!(status, 204);
        assert!(
            changed_at.elapsed() < Duration::from_secs(1),
            "the replica still used the old chain after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(second);
}

async fn every_registration_is_approved_by_the_old_chain_or_the_new(backend: Backend) {
    let server = TestServer::start_with_admin(backend).await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let alice = server.token("alice").await;
    let names: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    for name in &names {
        server
            .create_pipeline(&alice, "alice", name, "jupyter")
            .await;
    }
    // Every registration in flight at once, on tasks of their own, while the chain is swapped.
    let mut registrations = tokio::task::JoinSet::new();
    for name in &names {
        let request = server
            .request(
                Method::POST,
                &format!("/v1/pipelines/alice/{name}/versions"),
                Some(&alice),
            )
            .json(&crate::harness::notebook_version("1.0.0"));
        registrations.spawn(call(request));
    }
    let (status, _) = put_binding(
        &server,
        &admin,
        "namespace:alice",
        &["policy-lowercase", "policy-semver"],
    )
    .await;
    assert_eq!(status, 200);
    let results = registrations.join_all().await;
    let (old, new) = (
        json!(["policy-semver@0.1.0"]),
        json!(["policy-lowercase@0.1.0", "policy-semver@0.1.0"]),
    );
    for (status, version) in results {
        assert_eq!(status, 201, "{version}");
        let audit = &version["approved_by"];
        assert!(
            audit == &old || audit == &new,
            "a mixed chain approved it: {audit}"
        );
    }
    // After the swap, the new chain only.
    server
        .create_pipeline(&alice, "alice", "after", "jupyter")
        .await;
    let (_, version) = server
        .register_notebook(&alice, "alice", "after", "1.0.0")
        .await;
    assert_eq!(version["approved_by"], new);
}
