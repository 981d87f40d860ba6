//! Operating the server: request ids (echoed or made, in every surface's error body),
//! `/readyz`, Prometheus metrics that are histograms with buckets and counters that only grow,
//! and a SIGTERM that drains the requests in flight within `--shutdown-grace-secs`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{free_port, token_create, Running, BIN};
use crate::harness::{b64, fresh_database, shared_cache_dir, Backend, TestServer};
use crate::on_both_stores;

on_both_stores!(
    request_ids_are_echoed_or_made,
    request_ids_are_in_every_surfaces_error_body,
    readyz_names_its_checks_and_fails_with_the_blob_store,
    metrics_are_histograms_with_buckets_and_counters_that_grow,
    sigterm_lets_a_request_in_flight_finish_then_exits,
    sigterm_cuts_off_what_outlasts_the_grace_and_exits,
);

/// (status, `x-request-id` of the answer, JSON body or Null).
async fn send(builder: reqwest::RequestBuilder) -> (u16, String, Value) {
    let response = builder.send().await.expect("request sent");
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no x-request-id on a {status} answer"));
    let body = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
    (status, id, body)
}

async fn request_ids_are_echoed_or_made(backend: Backend) {
    let server = TestServer::start(backend).await;
    let healthz = || server.request(Method::GET, "/healthz", None);

    let (status, id, _) = send(healthz().header("x-request-id", "gw-7f3a.b:c_d")).await;
    assert_eq!(
        (status, id.as_str()),
        (200, "gw-7f3a.b:c_d"),
        "a sane id is kept"
    );

    let (_, first, _) = send(healthz()).await;
    let (_, second, _) = send(healthz()).await;
    assert!(uuid::Uuid::parse_str(&first).is_ok(), "made: {first}");
    assert_ne!(first, second, "each request gets its own");

    for insane in ["has space", &"x".repeat(129)] {
        let (_, id, _) = send(healthz().header("x-request-id", insane)).await;
        assert_ne!(id, insane, "replaced");
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "made: {id}");
    }
    let longest = "y".repeat(128);
    let (_, id, _) = send(healthz().header("x-request-id", &longest)).await;
    assert_eq!(id, longest, "128 characters are still kept");
}

async fn request_ids_are_in_every_surfaces_error_body(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;

    // /v1: inside the `error` object.
    let (status, id, body) = send(
        server
            .request(Method::GET, "/v1/pipelines/alice/nothing", Some(&alice))
            .header("x-request-id", "v1-error-id"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(id, "v1-error-id");
    assert_eq!(body["error"]["code"], "not-found", "{body}");
    assert_eq!(body["error"]["request_id"], "v1-error-id", "{body}");

    // A route nobody serves answers in /v1's shape too, with a made id.
    let (status, id, body) = send(server.request(Method::GET, "/no/such/route", None)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["request_id"], json!(id), "{body}");

    // Mystic: beside `detail`.
    let (status, id, body) =
        send(server.request(Method::GET, "/v4/tokens/validate", Some("pw_nope_nope"))).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    assert_eq!(body["request_id"], json!(id), "{body}");

    // GBDX: beside `Error`.
    let (status, id, body) = send(
        server
            .request(Method::GET, "/workflows/v1/tasks", None)
            .header("x-request-id", "gbdx-error-id"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body["Error"].is_string(), "{body}");
    assert_eq!(
        (id.as_str(), &body["request_id"]),
        ("gbdx-error-id", &json!("gbdx-error-id"))
    );

    // Acumos: inside `serviceStatus`, in the surface's camelCase.
    let (status, id, body) = send(server.request(
        Method::GET,
        "/mlWorkbench/v1/pipeline/users/alice/pipelines/",
        None,
    ))
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["serviceStatus"]["status"], "ERROR", "{body}");
    assert_eq!(body["serviceStatus"]["requestId"], json!(id), "{body}");

    // A success carries the header only: its body is the surface's, untouched.
    let (status, _, body) = send(server.request(Method::GET, "/v1/pipelines", Some(&alice))).await;
    assert_eq!(status, 200);
    assert!(!body.to_string().contains("request_id"), "{body}");
}

async fn readyz_names_its_checks_and_fails_with_the_blob_store(backend: Backend) {
    let server = TestServer::start(backend).await;
    let readyz = || send(server.request(Method::GET, "/readyz", None));

    let (status, _, body) = readyz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok", "blob_store": "ok", "builtin_plugins": "ok"}})
    );

    // The blob directory replaced by a file: no blob can be written (even by root).
    let blobs = server.data_dir().join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, b"not a directory").unwrap();
    let (status, _, body) = readyz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        json!({"status": "unavailable", "checks": {"database": "ok", "blob_store": "failed", "builtin_plugins": "ok"}})
    );
    // Liveness is another question: the process and its database are fine.
    let (status, _, _) = send(server.request(Method::GET, "/healthz", None)).await;
    assert_eq!(status, 200);

    std::fs::remove_file(&blobs).unwrap();
    std::fs::create_dir(&blobs).unwrap();
    let (status, _, body) = readyz().await;
    assert_eq!(status, 200, "ready again once repaired: {body}");
}

/// Every sample of a Prometheus text page: `name{labels}` → value.
fn samples(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// `# TYPE name kind` lines: name → kind.
fn types(page: &str) -> HashMap<String, String> {
    page.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| {
            let (name, kind) = rest.split_once(' ')?;
            Some((name.to_string(), kind.to_string()))
        })
        .collect()
}

async fn metrics_page(server: &TestServer) -> String {
    let response = server
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn metrics_are_histograms_with_buckets_and_counters_that_grow(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.registration = crate::gbdx::quick_registration();
    })
    .await;
    let alice = server.token("alice").await;
    let before = metrics_page(&server).await;

    // A registration through the worker (a GBDX task uploaded as a component)...
    let mut task = crate::gbdx::docker_task("counted", "1.0.0");
    task["containerDescriptors"] =
        json!([{"type": "WASM", "properties": {"upload": b64(&crate::gbdx::unique_component())}}]);
    let (status, body) = server.post("/workflows/v1/tasks", &alice, task).await;
    assert_eq!(status, 200, "{body}");
    crate::gbdx::wait_for_state(&server, &alice, "counted", "1.0.0", "ready").await;
    // ...and a run.
    crate::mystic::push_hello(&server, &alice, "0.1.0").await;
    let (status, run) = server
        .post(
            "/v4/runs",
            &alice,
            json!({"pipeline": "alice/hello:0.1.0", "inputs": [{"type": "string", "value": "metrics"}]}),
        )
        .await;
    assert_eq!((status, &run["state"]), (200, &json!("completed")), "{run}");

    let after = metrics_page(&server).await;
    let kinds = types(&after);
    assert!(
        !kinds.values().any(|kind| kind == "summary"),
        "histograms, not summaries: {kinds:?}"
    );
    for (name, kind) in [
        ("pipewright_http_request_duration_seconds", "histogram"),
        ("pipewright_run_duration_seconds", "histogram"),
        ("pipewright_runs_active", "gauge"),
        ("pipewright_registrations_pending", "gauge"),
        ("pipewright_http_requests_in_flight", "gauge"),
        ("pipewright_registration_attempts_total", "counter"),
        ("pipewright_http_requests_total", "counter"),
        ("pipewright_plugin_compiles_total", "counter"),
        ("pipewright_plugin_cache_loads_total", "counter"),
    ] {
        assert_eq!(
            kinds.get(name).map(String::as_str),
            Some(kind),
            "{name}: {after}"
        );
    }
    assert!(
        after.contains("pipewright_http_request_duration_seconds_bucket{"),
        "{after}"
    );
    assert!(
        after.lines().any(
            |line| line.starts_with("pipewright_run_duration_seconds_bucket{")
                && line.contains("state=\"completed\"")
                && line.contains("le=\"+Inf\"")
        ),
        "{after}"
    );
    let now = samples(&after);
    assert!(
        now["pipewright_registration_attempts_total"] >= 1.0,
        "{after}"
    );
    // This server's store has nothing left registering.
    assert_eq!(now["pipewright_registrations_pending"], 0.0, "{after}");

    // Counters only grow (other tests of this process share the recorder: they add, never
    // take away).
    let then = samples(&before);
    for (name, kind) in types(&before) {
        if kind != "counter" {
            continue;
        }
        for (series, value) in then.iter().filter(|(series, _)| {
            series.as_str() == name || series.starts_with(&format!("{name}{{"))
        }) {
            let later = now.get(series).copied().unwrap_or(f64::NAN);
            assert!(later >= *value, "{series} went from {value} to {later}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SIGTERM: the real binary, its JSON log read line by line.

/// A `pipewright serve` child whose JSON log lines arrive on `log`.
struct Served {
    running: Running,
    port: u16,
    log: Log,
    token: String,
    _data: tempfile::TempDir,
    postgres_database: Option<String>,
}

/// The longest a step may take before the test gives up: a guard against a hang, never a
/// measure of anything.
const HANG_GUARD: Duration = Duration::from_secs(120);

impl Served {
    async fn start(backend: Backend, grace_secs: u64) -> Served {
        let data = tempfile::tempdir().unwrap();
        let database_url = fresh_database(backend, data.path()).await;
        let dir = data.path().to_str().unwrap().to_string();
        let storage = ["--data-dir", &dir, "--database-url", &database_url];
        let token = token_create(&[&["--user", "dora"][..], &storage].concat());
        let postgres_database = matches!(backend, Backend::Postgres)
            .then(|| database_url.rsplit_once('/').unwrap().1.to_string());
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(BIN)
                .arg("serve")
                .args(storage)
                .args(["--cache-dir", shared_cache_dir().to_str().unwrap()])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--shutdown-grace-secs", &grace_secs.to_string()])
                .arg("--log-json")
                // tower_http at debug: the request span's own lines (started, finished).
                .env("RUST_LOG", "info,pipewright::access=debug")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = child.stderr.take().unwrap();
            let (lines, log) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(line) = serde_json::from_str::<Value>(&line) {
                        if lines.send(line).is_err() {
                            return;
                        }
                    }
                }
            });
            let mut log = Log {
                lines: log,
                seen: Vec::new(),
            };
            // Listening, or the log ended (the port was taken meanwhile: another one).
            if log.wait_for_message("pipewright listening").is_some() {
                return Served {
                    running: Running(child),
                    port,
                    log,
                    token,
                    _data: data,
                    postgres_database,
                };
            }
            let _ = child.wait();
        }
        panic!("pipewright serve could not start on five free ports");
    }

    fn sigterm(&self) {
        let pid = self.running.0.id() as libc::pid_t;
        // SAFETY: a plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }

    /// Waits for the process to end; its exit status.
    fn exit_status(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.running.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server never exited; its log: {:#?}",
                self.log.seen
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A connection with a `POST /v1/pipelines` whose body the server has started to read:
    /// `Expect: 100-continue` makes it say so (`100 Continue`) when the handler asks for the
    /// body. The body is not sent yet.
    fn request_in_flight(&self, body: &str) -> TcpStream {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        write!(
            stream,
            "POST /v1/pipelines HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\
             x-request-id: drained-request\r\n\r\n",
            self.token,
            body.len()
        )
        .unwrap();
        let interim = read_head(&mut stream);
        assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
        stream
    }
}

/// The server's JSON log lines, as they come.
struct Log {
    lines: mpsc::Receiver<Value>,
    /// Every line read so far, for the failure messages.
    seen: Vec<Value>,
}

impl Log {
    /// The next log line whose message contains `text`; None if the log ended first.
    fn wait_for_message(&mut self, text: &str) -> Option<Value> {
        loop {
            let line = match self.lines.recv_timeout(HANG_GUARD) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("no log line `{text}`; the log so far: {:#?}", self.seen)
                }
            };
            self.seen.push(line.clone());
            if line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(text))
            {
                return Some(line);
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(database) = self.postgres_database.take() {
            let _ = self.running.0.kill();
            let _ = self.running.0.wait();
            crate::harness::drop_postgres_database(database);
        }
    }
}

/// Reads one response head (up to the blank line).
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("reading a response head");
        assert_eq!(
            n,
            1,
            "the connection closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

async fn sigterm_lets_a_request_in_flight_finish_then_exits(backend: Backend) {
    let mut served = Served::start(backend, 60).await;
    let body = json!({"name": "finished-while-draining", "type": "jupyter"}).to_string();
    let mut stream = served.request_in_flight(&body);

    served.sigterm();
    let draining = served
        .log
        .wait_for_message("draining")
        .expect("the server logs that it drains");
    assert_eq!(draining["fields"]["in_flight"], 1, "{draining}");

    // Shutdown has begun; the request in flight still completes.
    stream.write_all(body.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-request-id: drained-request"),
        "{answer}"
    );
    assert!(answer.contains("finished-while-draining"), "{answer}");

    assert!(
        served.log.wait_for_message("drained").is_some(),
        "{:#?}",
        served.log.seen
    );
    // Its log lines carry it (the access log's start and end, at least).
    let of_the_request = served
        .log
        .seen
        .iter()
        .filter(|line| {
            line["request"]["id"] == "drained-request"
                && line["request"]["route"] == "/v1/pipelines"
                && line["request"]["method"] == "POST"
        })
        .count();
    assert!(
        of_the_request >= 2,
        "started and finished: {:#?}",
        served.log.seen
    );
    let status = served.exit_status();
    assert!(status.success(), "{status}; log: {:#?}", served.log.seen);
}

async fn sigterm_cuts_off_what_outlasts_the_grace_and_exits(backend: Backend) {
    let mut served = Served::start(backend, 1).await;
    // Its body never comes: only the grace ends it.
    let body = json!({"name": "never-sent", "type": "jupyter"}).to_string();
    let _stream = served.request_in_flight(&body);

    served.sigterm();
    served.log.wait_for_message("draining").expect("it drains");
    let cut = served
        .log
        .wait_for_message("shutdown grace over")
        .expect("the server logs what it cut off");
    assert_eq!(cut["fields"]["cut_off"], 1, "{cut}");
    let status = served.exit_status();
    assert!(status.success(), "{status}; log: {:#?}", served.log.seen);
}

/// What the framework refuses before a handler runs (a body over the limit, a multipart body
/// that is not one, a path that does not decode) comes in the surface's own error shape, not
/// as plain text. Each row: the request, the status, and where that surface puts the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_errors_come_in_each_surfaces_shape() {
    let server = TestServer::start(Backend::Sqlite).await;
    let alice = server.token("alice").await;
    let over_the_limit = vec![b' '; pipewright::api::MAX_BODY_BYTES + 1];
    let json_body = |bytes: &[u8]| bytes.to_vec();
    let rows: Vec<(Method, &str, Vec<u8>, u16, &str)> = vec![
        (
            Method::POST,
            "/workflows/v1/tasks",
            json_body(&over_the_limit),
            413,
            "/Error",
        ),
        (
            Method::POST,
            "/mlWorkbench/v1/pipeline/users/alice/pipelines",
            json_body(&over_the_limit),
            413,
            "/serviceStatus/statusMessage",
        ),
        (
            Method::POST,
            "/v4/runs",
            json_body(&over_the_limit),
            413,
            "/detail",
        ),
        (Method::POST, "/v4/files", json_body(b"{}"), 400, "/detail"),
        (Method::GET, "/v4/runs/%FF", Vec::new(), 400, "/detail"),
        // A path under a surface that no route matches: 404 in that surface's shape.
        (
            Method::GET,
            "/mlWorkbench/v1/pipeline/nothing",
            Vec::new(),
            404,
            "/serviceStatus/statusMessage",
        ),
        (
            Method::GET,
            "/workflows/v1/nothing",
            Vec::new(),
            404,
            "/Error",
        ),
        (Method::GET, "/v4/nothing", Vec::new(), 404, "/detail"),
        (Method::GET, "/v3/nothing", Vec::new(), 404, "/detail"),
        (Method::GET, "/nothing", Vec::new(), 404, "/error/message"),
    ];
    for (method, path, body, status, message_at) in rows {
        let response = server
            .request(method.clone(), path, Some(&alice))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let content_type = response.headers()["content-type"].clone();
        let text = response.text().await.unwrap();
        assert_eq!(content_type, "application/json", "{method} {path}: {text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert!(
            answer
                .pointer(message_at)
                .and_then(Value::as_str)
                .is_some_and(|message| !message.is_empty()),
            "{method} {path}: {answer}"
        );
    }
}

/// Every surface's document is served, true to what the server routes; the reference a person
/// reads is rendered from the same documents.
#[tokio::test]
async fn every_surface_serves_its_document_and_a_rendered_reference() {
    let server = TestServer::start(Backend::Sqlite).await;
    let surfaces: Vec<&str> = pipewright::api::documents::all()
        .iter()
        .map(|document| document.surface)
        .collect();
    let index = server
        .client
        .get(format!("{}/docs", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for surface in &surfaces {
        let path = format!("/openapi/{surface}.json");
        let (status, _, document) = send(server.request(Method::GET, &path, None)).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            document["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.")),
            "{path}: {document}"
        );
        // Every operation the server routes for the surface is in its document.
        for spec in pipewright::api::route_list()
            .iter()
            .filter(|s| s.surface == *surface)
        {
            let operation = &document["paths"][&spec.path][spec.method.to_lowercase()];
            assert!(
                operation.is_object(),
                "{path} lacks {} {}",
                spec.method,
                spec.path
            );
        }
        assert!(
            index.contains(&format!("href=\"/docs/{surface}\"")),
            "/docs lacks {surface}"
        );
        let page = server
            .client
            .get(format!("{}/docs/{surface}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.text().await.unwrap().contains("<h2><code>GET "),
            "/docs/{surface}"
        );
    }
    let (status, _, body) = send(server.request(Method::GET, "/openapi/nothing.json", None)).await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (404, Some("no such document")),
        "{body}"
    );
    let (status, _, _) = send(server.request(Method::GET, "/docs/nothing", None)).await;
    assert_eq!(status, 404);
}
