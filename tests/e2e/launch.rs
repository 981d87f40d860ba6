//! The type handlers' `launch` against real peers, through the plugin host with grants: a real
//! JupyterHub (skipped when not installed, outside CI) and a fake Zeppelin. Also the grants'
//! refusals as a guest sees them.

use std::time::{Duration, Instant};

use pipewright::plugins::grants::JUPYTER_PLUGIN;
use pipewright::plugins::{
    Grants, HttpGrant, LaunchContext, LaunchInfo, Limits, Pipeline, PluginError, PluginHost,
    Property, WORKING_COPY_PROPERTY,
};

use crate::harness::shared_cache_dir;
use crate::peers::{http, FakeZeppelin, JupyterHub, Loopback};

fn host_with(grants: Grants) -> PluginHost {
    let host = PluginHost::new(&shared_cache_dir(), Limits::default()).unwrap();
    host.load_builtins().unwrap();
    host.set_grants(grants);
    host
}

fn context(
    pipeline_type: &str,
    name: &str,
    working_copy: Option<&std::path::Path>,
) -> LaunchContext {
    let id = uuid::Uuid::new_v4().to_string();
    LaunchContext {
        pipeline: Pipeline {
            namespace: "alice".into(),
            name: name.into(),
            version: None,
            type_: pipeline_type.into(),
            description: None,
            inputs: vec![],
            outputs: vec![],
            properties: vec![],
        },
        repository_url: format!("/pipelines/{id}"),
        pipeline_id: id,
        user: "Alice".into(),
        properties: working_copy
            .map(|dir| {
                vec![Property {
                    key: WORKING_COPY_PROPERTY.into(),
                    value: dir.display().to_string(),
                }]
            })
            .unwrap_or_default(),
    }
}

fn property<'a>(info: &'a LaunchInfo, key: &str) -> &'a str {
    info.properties
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
        .unwrap_or_else(|| panic!("no launch property {key}: {:?}", info.properties))
}

fn mentions(info: &LaunchInfo, secret: &str) -> bool {
    info.service_url.contains(secret)
        || info
            .properties
            .iter()
            .any(|p| p.key.contains(secret) || p.value.contains(secret))
}

#[test]
fn host_and_sdk_agree_on_the_working_copy_property() {
    assert_eq!(
        WORKING_COPY_PROPERTY,
        pipewright_sdk::type_handler::WORKING_COPY_PROPERTY
    );
}

/// A named server per pipeline, rooted at its working copy; a relaunch finds it running.
#[test]
fn jupyter_launch_starts_a_server_in_the_working_copy_and_relaunch_reuses_it() {
    let Some(hub) = JupyterHub::start() else {
        return;
    };
    let host = host_with(
        Grants::default()
            .with_jupyterhub(hub.url(), hub.token())
            .unwrap(),
    );
    let jupyter = host.type_handler("jupyter").unwrap();
    let working_copy = tempfile::tempdir().unwrap();
    std::fs::write(
        working_copy.path().join("notebook.ipynb"),
        crate::harness::EMPTY_NOTEBOOK,
    )
    .unwrap();
    let ctx = context("jupyter", "churn", Some(working_copy.path()));

    let started = Instant::now();
    let info = jupyter
        .launch(&ctx)
        .unwrap()
        .unwrap_or_else(|e| panic!("launch failed: {e:?}\n{}", hub.log()));
    let first_launch = started.elapsed();
    eprintln!("jupyter launch (hub user + named server spawn): {first_launch:?}");
    assert!(
        info.service_url.starts_with(hub.url()),
        "{}",
        info.service_url
    );
    assert!(
        info.service_url.ends_with("/lab/tree/notebook.ipynb"),
        "{}",
        info.service_url
    );
    assert_eq!(property(&info, "hub-user"), "alice");
    assert!(
        !mentions(&info, hub.token()),
        "the token leaked into {info:?}"
    );

    // The page answers through the proxy, with the token.
    let (status, _) = http("GET", &info.service_url, Some(hub.token()), None);
    assert_eq!(status, 200, "GET {}", info.service_url);

    // A file saved through the server lands in the working copy.
    let server_url = property(&info, "server-url").to_string();
    let notebook = format!(
        r#"{{"type": "notebook", "content": {}}}"#,
        crate::harness::EMPTY_NOTEBOOK
    );
    let (status, body) = http(
        "PUT",
        &format!("{server_url}api/contents/saved.ipynb"),
        Some(hub.token()),
        Some(&notebook),
    );
    assert!(matches!(status, 200 | 201), "{status} {body}");
    assert!(working_copy.path().join("saved.ipynb").is_file());

    // A relaunch reuses the running server: same URL, same start time, no second server.
    let (_, before) = hub.get("/hub/api/users/alice");
    let started = Instant::now();
    let again = jupyter.launch(&ctx).unwrap().unwrap();
    eprintln!(
        "jupyter relaunch (server already running): {:?}",
        started.elapsed()
    );
    assert_eq!(again.service_url, info.service_url);
    let (_, after) = hub.get("/hub/api/users/alice");
    let servers = |body: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(body).unwrap()["servers"].clone()
    };
    assert_eq!(servers(&before), servers(&after));
    assert_eq!(servers(&after).as_object().unwrap().len(), 1);
}

/// One note per pipeline: created on first launch, found on the next.
#[test]
fn zeppelin_launch_creates_one_note_and_relaunch_reuses_it() {
    let zeppelin = FakeZeppelin::start();
    let secret = "Bearer zeppelin-proxy-secret";
    let host = host_with(
        Grants::default()
            .with_zeppelin(zeppelin.url(), Some(secret))
            .unwrap(),
    );
    let handler = host.type_handler("zeppelin").unwrap();
    let ctx = context("zeppelin", "churn", None);

    let info = handler.launch(&ctx).unwrap().unwrap();
    let calls: Vec<String> = zeppelin
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(calls, ["GET /api/notebook", "POST /api/notebook"]);
    let notes = zeppelin.notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].path,
        format!("/pipelines/{}/churn", ctx.pipeline_id)
    );
    assert_eq!(
        info.service_url,
        format!("{}/#/notebook/{}", zeppelin.url(), notes[0].id)
    );
    assert_eq!(property(&info, "created"), "true");

    let again = handler.launch(&ctx).unwrap().unwrap();
    assert_eq!(again.service_url, info.service_url);
    assert_eq!(property(&again, "created"), "false");
    assert_eq!(zeppelin.notes().len(), 1, "a relaunch made a second note");

    // Another pipeline gets its own note.
    handler
        .launch(&context("zeppelin", "other", None))
        .unwrap()
        .unwrap();
    assert_eq!(zeppelin.notes().len(), 2);

    // The host added the secret header to every request; the guest never got it back.
    let requests = zeppelin.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some(secret)),
        "{requests:?}"
    );
    assert!(!mentions(&info, "zeppelin-proxy-secret"));
    let (status, _) = http("GET", &info.service_url, None, None);
    assert_eq!(status, 200);
}

/// A plugin reaches only its own grants, and the refusal names plugin, version and URL.
#[test]
fn http_fetch_outside_the_grants_is_refused_clearly() {
    let zeppelin = FakeZeppelin::start();
    // jupyter is told to use the fake's address but granted nothing there...
    let host = host_with(
        Grants::default()
            .with_zeppelin(zeppelin.url(), None)
            .unwrap()
            .with_config(JUPYTER_PLUGIN, "url", zeppelin.url()),
    );
    let jupyter = host.type_handler("jupyter").unwrap();
    let refused = jupyter
        .launch(&context("jupyter", "churn", None))
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code, "not-granted", "{refused:?}");
    assert!(
        refused
            .message
            .contains("plugin jupyter@0.1.0 is not granted HTTP access to")
            && refused.message.contains(zeppelin.url()),
        "{}",
        refused.message
    );
    assert!(zeppelin.requests().is_empty(), "a refused request went out");

    // ...and a grant of another path on the same origin does not cover the hub API either.
    let base = format!("{}/api", zeppelin.url());
    host.set_grants(
        Grants::default()
            .with_http(
                JUPYTER_PLUGIN,
                HttpGrant::new(
                    &base,
                    vec![("Authorization".into(), "token hub-secret".into())],
                )
                .unwrap(),
            )
            .with_config(JUPYTER_PLUGIN, "url", zeppelin.url()),
    );
    let refused = jupyter
        .launch(&context("jupyter", "churn", None))
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code, "not-granted");
    assert!(
        refused.message.contains(&format!("granted: {base}")),
        "{}",
        refused.message
    );
    assert!(
        !refused.message.contains("hub-secret"),
        "{}",
        refused.message
    );

    // Without any configuration the handler says launch is unavailable.
    host.set_grants(Grants::default());
    let off = jupyter
        .launch(&context("jupyter", "churn", None))
        .unwrap()
        .unwrap_err();
    assert_eq!(off.code, "launch-unavailable");
}

/// An unreachable service is the plugin's error, not a hang: the fetch fails fast.
#[test]
fn an_unreachable_service_is_reported_quickly() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let host = host_with(Grants::default().with_zeppelin(&url, None).unwrap());
    let started = Instant::now();
    let error = host
        .type_handler("zeppelin")
        .unwrap()
        .launch(&context("zeppelin", "churn", None))
        .unwrap()
        .unwrap_err();
    assert_eq!(error.code, "zeppelin-unreachable", "{error:?}");
    assert!(error.message.contains(&url), "{}", error.message);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A guest polling a server that never gets ready sleeps between polls (WASI clocks work) and is
/// still stopped at its launch deadline, named, and the host carries on.
#[test]
fn a_launch_that_waits_forever_is_stopped_at_its_deadline() {
    use axum::routing::{get, post};
    use serde_json::json;
    // A hub whose server is forever starting.
    let hub = Loopback::serve(
        axum::Router::new()
            .route("/hub/api/users/{user}", post(|| async { (axum::http::StatusCode::CREATED, "{}") }))
            .route(
                "/hub/api/users/{user}",
                get(|| async {
                    axum::Json(json!({"name": "alice", "servers": {
                        "ph7777777777777777777777777": {"ready": false, "pending": "spawn", "url": "/user/alice/x/"}
                    }}))
                }),
            )
            .route(
                "/hub/api/users/{user}/servers/{server}",
                post(|| async { axum::http::StatusCode::ACCEPTED }),
            ),
    );
    let limits = Limits {
        launch_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let host = PluginHost::new(&shared_cache_dir(), limits).unwrap();
    host.load_builtins().unwrap();
    host.set_grants(
        Grants::default()
            .with_jupyterhub(hub.url(), "t")
            .unwrap()
            // The plugin's own patience is longer than the host's deadline.
            .with_config(JUPYTER_PLUGIN, "spawn-timeout-seconds", "1000"),
    );
    let jupyter = host.type_handler("jupyter").unwrap();
    let mut ctx = context("jupyter", "churn", None);
    // The id whose server name the fake hub lists: `p` and 128 one-bits in base32.
    ctx.pipeline_id = "ffffffff-ffff-ffff-ffff-ffffffffffff".into();

    let started = Instant::now();
    let error = jupyter.launch(&ctx).unwrap_err();
    let took = started.elapsed();
    eprintln!("a launch polling forever was stopped after {took:?} (deadline 2 s)");
    assert!(matches!(error, PluginError::Timeout { .. }), "{error}");
    assert!(
        error.to_string().contains("jupyter@0.1.0") && error.to_string().contains("`launch`"),
        "{error}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // The handler still works afterwards (a fresh instance replaced the stopped one).
    host.set_grants(Grants::default());
    assert_eq!(
        jupyter.launch(&ctx).unwrap().unwrap_err().code,
        "launch-unavailable"
    );
}
