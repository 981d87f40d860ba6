//! `/v1`'s lists a page at a time: `limit` and `cursor`, the next page announced in a
//! `Link: <…>; rel="next"` header. Pages joined are the whole list in its order; a version
//! registered or deleted between two pages moves no other version across the cursor; bad limits
//! and cursors are 400s in `/v1`'s shape; a cursor carries no one's permission.

use reqwest::Method;
use serde_json::Value;

use crate::bindings::put_binding;
use crate::harness::{code, Backend, TestServer, ADMIN_ACCOUNT};
use crate::on_both_stores;

on_both_stores!(
    pages_joined_are_the_whole_list_in_order,
    writes_between_pages_neither_repeat_nor_skip,
    bad_limits_and_cursors_are_refused_in_the_v1_shape,
    another_accounts_cursor_reveals_nothing,
);

/// One page: status, body, and the path of the next page from `Link` (None without one).
async fn page(server: &TestServer, path: &str, token: &str) -> (u16, Value, Option<String>) {
    let response = server
        .request(Method::GET, path, Some(token))
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let next = response.headers().get("link").map(|link| {
        let link = link.to_str().expect("a Link header is ASCII");
        let (target, rel) = link.split_once("; ").expect("`<target>; rel`");
        assert_eq!(rel, r#"rel="next""#, "{link}");
        target
            .strip_prefix('<')
            .and_then(|t| t.strip_suffix('>'))
            .unwrap_or_else(|| panic!("not `<target>`: {link}"))
            .to_string()
    });
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, next)
}

/// Follows `Link` from `path` to the last page: each page's values of `field`, in order.
async fn pages(server: &TestServer, path: &str, token: &str, field: &str) -> Vec<Vec<String>> {
    let (mut found, mut next) = (Vec::new(), Some(path.to_string()));
    while let Some(path) = next {
        let (status, body, link) = page(server, &path, token).await;
        assert_eq!(status, 200, "{path}: {body}");
        found.push(values(&body, field));
        assert!(found.len() < 1000, "the pages do not end");
        next = link;
    }
    found
}

fn values(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item[field].as_str().unwrap().to_string())
        .collect()
}

/// A server where alice's namespace has no policy: any version text, in any order.
async fn server_without_policies(backend: Backend) -> (TestServer, String) {
    let server = TestServer::start_with_admin(backend).await;
    let admin = server.token_in("ops", Some(ADMIN_ACCOUNT)).await;
    let alice = server.token("alice").await;
    let (status, body) = put_binding(&server, &admin, "namespace:alice", &[]).await;
    assert_eq!(status, 200, "{body}");
    (server, alice)
}

async fn register(server: &TestServer, token: &str, name: &str, version: &str) {
    let (status, body) = server
        .register_notebook(token, "alice", name, version)
        .await;
    assert_eq!(status, 201, "{version}: {body}");
}

async fn pages_joined_are_the_whole_list_in_order(backend: Backend) {
    let (server, alice) = server_without_policies(backend).await;
    server
        .create_pipeline(&alice, "alice", "p", "jupyter")
        .await;
    // Registered out of order; listed lowest first: versions that are not semver first, in the
    // order they were registered, then semver precedence (numbers numerically, a pre-release
    // below its release, numeric identifiers below alphanumeric ones, fewer below more).
    let registered = [
        "1.0.0",
        "0.10.0",
        "legacy",
        "1.0.0-beta.11",
        "0.9.0",
        "1.0.0-alpha.beta",
        "2.0.0",
        "1.0.0-rc.1",
        "1.0.0-alpha",
        "v3",
        "1.0.0-beta.2",
        "1.0.0-alpha.1",
        "1.0.0-beta",
    ];
    for version in registered {
        register(&server, &alice, "p", version).await;
    }
    let expected = [
        "legacy",
        "v3",
        "0.9.0",
        "0.10.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
    ];

    // No limit: the default (100) holds them all, and there is no next page.
    let (status, whole, next) = page(&server, "/v1/pipelines/alice/p/versions", &alice).await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(values(&whole, "version"), expected);
    assert_eq!(next, None, "a last page has no Link");

    for limit in [1, 2, 5, 12, 13, 1000] {
        let path = format!("/v1/pipelines/alice/p/versions?limit={limit}");
        let found = pages(&server, &path, &alice, "version").await;
        let sizes: Vec<usize> = found.iter().map(Vec::len).collect();
        assert!(
            sizes.iter().all(|&n| n <= limit) && sizes.iter().all(|&n| n > 0),
            "limit {limit}: pages of {sizes:?}"
        );
        assert_eq!(found.concat(), expected, "limit {limit}");
        assert_eq!(found.len(), expected.len().div_ceil(limit), "limit {limit}");
    }
    // The next page's link: the same path, the same limit, a cursor.
    let (_, first, next) = page(&server, "/v1/pipelines/alice/p/versions?limit=2", &alice).await;
    assert_eq!(first.as_array().unwrap().len(), 2);
    let next = next.expect("a next page");
    assert!(
        next.starts_with("/v1/pipelines/alice/p/versions?limit=2&cursor="),
        "{next}"
    );
    // Each page has the versions' full records, files included, as the whole list has them.
    let (_, second, _) = page(&server, &next, &alice).await;
    assert_eq!(second[0], whole[2]);
    assert_eq!(second[0]["files"][0]["path"], "notebook.ipynb");

    // Pipelines, by namespace and name, the namespace filter kept in the link.
    for name in ["e", "a", "d", "b"] {
        server
            .create_pipeline(&alice, "alice", name, "jupyter")
            .await;
    }
    let found = pages(
        &server,
        "/v1/pipelines?namespace=alice&limit=2",
        &alice,
        "name",
    )
    .await;
    assert_eq!(found, [vec!["a", "b"], vec!["d", "e"], vec!["p"]]);
    let (_, _, next) = page(&server, "/v1/pipelines?namespace=ALICE&limit=2", &alice).await;
    assert!(
        next.as_deref()
            .is_some_and(|n| n.starts_with("/v1/pipelines?namespace=ALICE&limit=2&cursor=")),
        "{next:?}"
    );
    let found = pages(&server, "/v1/pipelines?limit=1", &alice, "name").await;
    assert_eq!(found.concat(), ["a", "b", "d", "e", "p"]);
}

async fn writes_between_pages_neither_repeat_nor_skip(backend: Backend) {
    let (server, alice) = server_without_policies(backend).await;
    server
        .create_pipeline(&alice, "alice", "p", "jupyter")
        .await;
    for patch in 0..10 {
        register(&server, &alice, "p", &format!("1.0.{patch}")).await;
    }
    let (status, first, next) =
        page(&server, "/v1/pipelines/alice/p/versions?limit=4", &alice).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        values(&first, "version"),
        ["1.0.0", "1.0.1", "1.0.2", "1.0.3"]
    );
    let next = next.expect("a next page");

    // Between the pages: one version before the cursor and one after it registered, one
    // before it and one after it deleted.
    register(&server, &alice, "p", "0.5.0").await;
    register(&server, &alice, "p", "1.0.5-rc.1").await;
    for deleted in ["1.0.1", "1.0.6"] {
        let (status, body) = server
            .delete(&format!("/v1/pipelines/alice/p/versions/{deleted}"), &alice)
            .await;
        assert_eq!(status, 204, "{body}");
    }
    let rest = pages(&server, &next, &alice, "version").await.concat();
    assert_eq!(
        rest,
        ["1.0.4", "1.0.5-rc.1", "1.0.5", "1.0.7", "1.0.8", "1.0.9"],
        "nothing before the cursor, nothing twice, the deleted one gone and no other skipped"
    );
    // A fresh walk sees the list as it is now.
    let now = pages(
        &server,
        "/v1/pipelines/alice/p/versions?limit=3",
        &alice,
        "version",
    )
    .await
    .concat();
    assert_eq!(
        now,
        [
            "0.5.0",
            "1.0.0",
            "1.0.2",
            "1.0.3",
            "1.0.4",
            "1.0.5-rc.1",
            "1.0.5",
            "1.0.7",
            "1.0.8",
            "1.0.9"
        ]
    );
    // The cursor's own version deleted: the next page still starts right after where it was.
    let (_, _, next) = page(&server, "/v1/pipelines/alice/p/versions?limit=2", &alice).await;
    let (status, body) = server
        .delete("/v1/pipelines/alice/p/versions/1.0.0", &alice)
        .await;
    assert_eq!(status, 204, "{body}");
    let rest = pages(&server, &next.unwrap(), &alice, "version")
        .await
        .concat();
    assert_eq!(rest[..2], ["1.0.2", "1.0.3"]);
}

async fn bad_limits_and_cursors_are_refused_in_the_v1_shape(backend: Backend) {
    let (server, alice) = server_without_policies(backend).await;
    for name in ["p", "q"] {
        server
            .create_pipeline(&alice, "alice", name, "jupyter")
            .await;
        for version in ["1.0.0", "1.0.1", "1.0.2"] {
            register(&server, &alice, name, version).await;
        }
    }
    let refused = |body: &Value, expected: &str| {
        assert_eq!(code(body), expected, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(body["error"]["request_id"].is_string(), "{body}");
    };
    for list in ["/v1/pipelines/alice/p/versions", "/v1/pipelines"] {
        for limit in ["0", "1001", "-1", "ten", "", "2.5", "99999999999999999999"] {
            let (status, body, next) =
                page(&server, &format!("{list}?limit={limit}"), &alice).await;
            assert_eq!(status, 400, "{list} limit={limit}: {body}");
            refused(&body, "invalid-limit");
            assert_eq!(next, None);
        }
        for cursor in ["garbage", "AAAA", "eyJsaXN0IjoicnVucyJ9", "%00"] {
            let (status, body, _) = page(&server, &format!("{list}?cursor={cursor}"), &alice).await;
            assert_eq!(status, 400, "{list} cursor={cursor}: {body}");
            refused(&body, "invalid-cursor");
        }
    }
    // A cursor is for the list it came from: not another pipeline's versions, not the
    // pipelines, not the pipelines of another namespace filter.
    let (_, _, of_p) = page(&server, "/v1/pipelines/alice/p/versions?limit=1", &alice).await;
    let cursor = of_p.unwrap().split_once("cursor=").unwrap().1.to_string();
    for elsewhere in [
        format!("/v1/pipelines/alice/q/versions?cursor={cursor}"),
        format!("/v1/pipelines?cursor={cursor}"),
    ] {
        let (status, body, _) = page(&server, &elsewhere, &alice).await;
        assert_eq!(status, 400, "{elsewhere}: {body}");
        refused(&body, "invalid-cursor");
    }
    let (_, _, of_alice) = page(&server, "/v1/pipelines?namespace=alice&limit=1", &alice).await;
    let cursor = of_alice
        .unwrap()
        .split_once("cursor=")
        .unwrap()
        .1
        .to_string();
    let (status, body, _) = page(&server, &format!("/v1/pipelines?cursor={cursor}"), &alice).await;
    assert_eq!(status, 400, "{body}");
    refused(&body, "invalid-cursor");
    let (status, body, _) = page(
        &server,
        &format!("/v1/pipelines/alice/p/versions?cursor={cursor}"),
        &alice,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    refused(&body, "invalid-cursor");
}

async fn another_accounts_cursor_reveals_nothing(backend: Backend) {
    let (server, alice) = server_without_policies(backend).await;
    let bob = server.token("bob").await;
    server
        .create_pipeline(&alice, "alice", "secret", "jupyter")
        .await;
    for version in ["1.0.0", "1.0.1", "1.0.2"] {
        register(&server, &alice, "secret", version).await;
    }
    server.create_pipeline(&bob, "bob", "mine", "jupyter").await;
    let (status, body) = server.register_notebook(&bob, "bob", "mine", "1.0.0").await;
    assert_eq!(status, 201, "{body}");

    let (_, _, next) = page(
        &server,
        "/v1/pipelines/alice/secret/versions?limit=1",
        &alice,
    )
    .await;
    let next = next.expect("a next page");
    let cursor = next.split_once("cursor=").unwrap().1.to_string();
    // Alice's private pipeline is absent to bob on every page, as on the first.
    let (status, without, _) = page(&server, "/v1/pipelines/alice/secret/versions", &bob).await;
    assert_eq!((status, code(&without)), (404, "not-found"), "{without}");
    let (status, with, link) = page(&server, &next, &bob).await;
    assert_eq!((status, code(&with)), (404, "not-found"), "{with}");
    assert_eq!(with["error"]["message"], without["error"]["message"]);
    assert_eq!(link, None);
    // On his own pipeline it is a cursor of another list.
    let (status, body, _) = page(
        &server,
        &format!("/v1/pipelines/bob/mine/versions?cursor={cursor}"),
        &bob,
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid-cursor"), "{body}");
    assert!(!body.to_string().contains("secret"), "{body}");

    // Alice's cursor of the pipelines list: bob still sees only what he may read.
    server
        .create_pipeline(&alice, "alice", "z-another", "jupyter")
        .await;
    let (_, _, next) = page(&server, "/v1/pipelines?limit=1", &alice).await;
    let found = pages(&server, &next.expect("a next page"), &bob, "namespace")
        .await
        .concat();
    assert!(
        found.iter().all(|namespace| namespace == "bob"),
        "{found:?}"
    );
    let all = pages(&server, "/v1/pipelines?limit=1", &bob, "name")
        .await
        .concat();
    assert_eq!(all, ["mine"]);
}
