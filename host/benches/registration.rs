//! Registration through the GBDX surface, request → `ready`, beside a bare
//! `Engine::precompile_component` of the same bytes in the same run; and `GET /workflows/v1/tasks`
//! with 100 000 ready versions. Prints p50/p99 and ratios; asserts no times.
//!
//! The components are generated here (a hand-written binary encoder, no dependency): a component
//! that embeds one core module of many functions with real bodies (arithmetic, locals, branches,
//! loops, loads and stores, calls), about 1 MB and 5 MB. Every sample has its own bytes (a
//! different constant in every function), so the compile cache never answers from a previous
//! sample. Samples of the two sides alternate, so a neighbour's load falls on both.
//!
//! The server runs in this process on SQLite in a temporary directory, as the end-to-end tests
//! start it; the components are served from a second local HTTP server on loopback.
//! Run with `cargo bench -p pipewright --bench registration`.

#[path = "common/mod.rs"]
mod common;

use common::{ratio, uleb, Percentiles};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pipewright::plugins::Limits;
use pipewright::registry::registration::RegistrationConfig;
use pipewright::registry::Registry;
use pipewright::server::{build_services, ServerConfig};
use serde_json::{json, Value};
use wasmtime::{Config, Engine};

/// (label, target size in bytes, measured samples of each side). About 1.4 s and 7 s of compile
/// each on a 2-core machine; one more unmeasured sample of each side warms up first.
const SIZES: [(&str, usize, usize); 2] = [("1 MB", 1 << 20, 12), ("5 MB", 5 << 20, 6)];
/// How often the bench asks whether a version is ready.
/// How often the bench asks whether a version is ready: each poll is an authenticated GET that
/// costs the server and the client CPU the compile would otherwise have (2 cores), so not more
/// often than this; it adds at most this much (1% of a 1 MB compile) to a sample.
const POLL: Duration = Duration::from_millis(10);

const LISTED_TASKS: usize = 1_000;
const LISTED_VERSIONS_PER_TASK: usize = 100;
/// `GET /tasks` samples: up to this many, or as many as fit in `LIST_BUDGET` (at least 100).
const LIST_SAMPLES: usize = 1_000;
const LIST_MIN_SAMPLES: usize = 100;
const LIST_BUDGET: Duration = Duration::from_secs(30);
/// First GETs after a write, each after its own write.
const AFTER_WRITE_SAMPLES: usize = 50;

fn main() -> anyhow::Result<()> {
    // The machine may be shared: say how busy it was, before and after.
    common::print_load_average("before");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    // `cargo bench -p pipewright --bench registration -- list`: the listing part alone.
    if std::env::args().any(|arg| arg == "list") {
        list_tasks(&runtime, &dir.path().join("list"))?;
        common::print_load_average("after");
        return Ok(());
    }
    let bare = bare_engine()?;

    let (server, content) = runtime.block_on(async {
        let server = TestServer::start(&dir.path().join("registration")).await?;
        let content = ContentServer::start().await?;
        anyhow::Ok((server, content))
    })?;
    // The host's compile path (hash, compile cache, artifact write and load) without the
    // server: its own cache directory, so it compiles the very bytes the server compiles.
    let host =
        pipewright::plugins::PluginHost::new(&dir.path().join("host-cache"), Limits::default())?;

    for (label, size, samples) in SIZES {
        let name = format!("bench-{}", label.replace(' ', "").to_lowercase());
        let mut to_ready = Vec::new();
        let mut to_accepted = Vec::new();
        let mut compile = Vec::new();
        let mut through_host = Vec::new();
        let mut polls = Vec::new();
        let mut last = None;
        // Sample 0 warms every side up (and creates the task); it is not counted.
        for i in 0..=samples {
            let seed = (size as u32).wrapping_add(i as u32);
            let bytes = component(size, seed);
            let url = content.put(&format!("{name}-{i}.wasm"), bytes.clone());
            let version = format!("1.0.{i}");
            let mut registered = None;
            let mut compiled = None;
            let mut hosted = None;
            // Rotate which side goes first, so none always follows another.
            for side in (0..3).map(|k| (k + i) % 3) {
                match side {
                    0 => {
                        registered = Some(
                            runtime.block_on(server.register_until_ready(&name, &version, &url))?,
                        )
                    }
                    1 => {
                        let started = Instant::now();
                        let artifact = bare
                            .precompile_component(&bytes)
                            .map_err(anyhow::Error::from)
                            .context("bare precompile")?;
                        compiled = Some((started.elapsed(), artifact));
                    }
                    _ => {
                        let started = Instant::now();
                        host.precompile(&bytes).context("PluginHost::precompile")?;
                        hosted = Some(started.elapsed());
                    }
                }
            }
            content.remove(&format!("{name}-{i}.wasm"));
            let (registered, (compiled, artifact)) = (registered.unwrap(), compiled.unwrap());
            if i > 0 {
                to_accepted.push(registered.accepted);
                to_ready.push(registered.ready);
                polls.push(registered.polls);
                compile.push(compiled);
                through_host.push(hosted.unwrap());
            }
            last = Some((bytes, artifact));
        }
        let (bytes, artifact) = last.expect("at least one sample");
        // Paired ratios: the two sides of one sample ran seconds apart, under the same neighbours.
        let paired = common::RoundRatios::of(
            to_ready
                .iter()
                .zip(&compile)
                .map(|(ready, bare)| ratio(*ready, *bare))
                .collect(),
        );
        polls.sort();
        let ready = Percentiles::of(to_ready);
        let bare_compile = Percentiles::of(compile);
        let host_compile = Percentiles::of(through_host);
        let accepted = Percentiles::of(to_accepted);
        println!(
            "registration of a {label} component ({} bytes) from a local URL, {samples} samples each (p99 of so few is their maximum)",
            bytes.len()
        );
        println!("  request -> answer:               {accepted}");
        println!(
            "  request -> ready:                {ready}   ({} status polls, p50)",
            polls[polls.len() / 2]
        );
        println!("  bare precompile_component:       {bare_compile}");
        println!("  PluginHost::precompile (cache):  {host_compile}   (compile + artifact write + load, no server)");
        println!(
            "  ratio ready/bare:                p50 {:.3}x    p99 {:.3}x; paired per sample (one round each): {paired}   (target: <= 1.1x)",
            ratio(ready.p50, bare_compile.p50),
            ratio(ready.p99, bare_compile.p99),
        );
        println!("  {}", common::load_average());
        let overhead = ready.p50.saturating_sub(bare_compile.p50);
        println!("  p50 beyond the compile:         {overhead:>10.1?}; where it goes (p50 of 5 runs each, measured apart):");
        runtime.block_on(breakdown(
            &server,
            &content,
            &bare,
            &bytes,
            &artifact,
            dir.path(),
            (&name, &format!("1.0.{samples}")),
        ))?;
    }
    drop(server);
    drop(content);

    list_tasks(&runtime, &dir.path().join("list"))?;
    common::print_load_average("after");
    Ok(())
}

/// The steps of an attempt other than the compile, each measured on its own with the bytes and
/// artifact of the last sample: what the request-to-ready time pays beyond the bare compile.
async fn breakdown(
    server: &TestServer,
    content: &ContentServer,
    bare: &Engine,
    bytes: &[u8],
    artifact: &[u8],
    dir: &std::path::Path,
    (name, version): (&str, &str),
) -> anyhow::Result<()> {
    const RUNS: usize = 5;
    let url = content.put("breakdown.wasm", bytes.to_vec());
    let mut fetch = Vec::new();
    let mut hash = Vec::new();
    let mut blob = Vec::new();
    let mut validate = Vec::new();
    let mut store_artifact = Vec::new();
    let mut load_artifact = Vec::new();
    let handler = server
        .registry
        .plugins()
        .type_handler("task")
        .context("the task type handler")?;
    let definition = json!({
        "name": "breakdown", "version": "1.0.0", "taskOwnerEmail": "alice@example.com",
        "containerDescriptors": [{"type": "WASM", "properties": {"url": url}}],
    });
    let candidate = pipewright::plugins::Pipeline {
        namespace: "gbdx".into(),
        name: "breakdown".into(),
        version: Some("1.0.0".into()),
        type_: "task".into(),
        description: None,
        inputs: vec![],
        outputs: vec![],
        properties: vec![],
    };
    for run in 0..RUNS {
        // The worker's fetch: a blocking ureq agent on the blocking pool.
        let started = Instant::now();
        let fetched = {
            let url = url.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
                let agent = ureq::Agent::config_builder().build().new_agent();
                Ok(agent
                    .get(&url)
                    .call()?
                    .body_mut()
                    .with_config()
                    .limit(256 << 20)
                    .read_to_vec()?)
            })
            .await??
        };
        fetch.push(started.elapsed());
        anyhow::ensure!(fetched == bytes, "the content server changed the bytes");

        let started = Instant::now();
        std::hint::black_box(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        hash.push(started.elapsed());

        let blobs = pipewright::blobs::BlobStore::local(&dir.join(format!("blobs-{run}")))?;
        let started = Instant::now();
        blobs.put(bytes).await?;
        blob.push(started.elapsed());

        let files = vec![
            pipewright::plugins::File {
                path: "task.json".into(),
                contents: definition.to_string().into_bytes(),
            },
            pipewright::plugins::File {
                path: "component.wasm".into(),
                contents: bytes.to_vec(),
            },
        ];
        let started = Instant::now();
        let diagnostics = handler.validate(&candidate, &files)?;
        validate.push(started.elapsed());
        anyhow::ensure!(
            diagnostics.is_empty(),
            "the task handler objects: {diagnostics:?}"
        );

        // What the compile cache adds to a compile: write the artifact, rename, load it.
        let path = dir.join(format!("artifact-{run}.cwasm"));
        let started = Instant::now();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, artifact)?;
        std::fs::rename(&tmp, &path)?;
        store_artifact.push(started.elapsed());
        let started = Instant::now();
        // SAFETY: the artifact was produced by an engine of this configuration in this run.
        let component = unsafe { wasmtime::component::Component::deserialize(bare, artifact) }
            .map_err(anyhow::Error::from)?;
        load_artifact.push(started.elapsed());
        drop(component);
        std::fs::remove_file(&path)?;
    }
    content.remove("breakdown.wasm");
    let mut poll = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        server.version(name, version).await?;
        poll.push(started.elapsed());
    }
    let p50 = |samples: Vec<Duration>| Percentiles::of(samples).p50;
    println!("    fetch over loopback (ureq):     {:>10.1?}", p50(fetch));
    println!("    sha256 of the bytes, per pass:  {:>10.1?}  (an attempt hashes them twice: blob store, compile cache)", p50(hash));
    println!("    blob store put (hash + write):  {:>10.1?}", p50(blob));
    println!(
        "    task handler validate (guest):  {:>10.1?}",
        p50(validate)
    );
    println!(
        "    artifact write + rename:        {:>10.1?}",
        p50(store_artifact)
    );
    println!(
        "    artifact deserialize:           {:>10.1?}",
        p50(load_artifact)
    );
    println!("    one status poll (GET version):  {:>10.1?}  (client and server CPU, every {POLL:?} while registering)", p50(poll));
    Ok(())
}

/// `GET /workflows/v1/tasks` with 100 000 ready versions, written into the database before the
/// server starts (so a cache built at start-up sees them, as it would after a restart).
fn list_tasks(runtime: &tokio::runtime::Runtime, dir: &std::path::Path) -> anyhow::Result<()> {
    let versions = LISTED_TASKS * LISTED_VERSIONS_PER_TASK;
    let started = Instant::now();
    let server = runtime.block_on(async {
        seed_versions(dir).await?;
        TestServer::start(dir).await
    })?;
    println!(
        "GET /workflows/v1/tasks, {versions} ready versions ({LISTED_TASKS} tasks x {LISTED_VERSIONS_PER_TASK}; setup {:.1?})",
        started.elapsed()
    );
    let samples = runtime.block_on(async {
        for _ in 0..3 {
            let listed = server.list_tasks().await?;
            anyhow::ensure!(
                listed == versions,
                "GET /tasks listed {listed} versions, not {versions}"
            );
        }
        let mut samples = Vec::new();
        let budget = Instant::now();
        while samples.len() < LIST_SAMPLES
            && (samples.len() < LIST_MIN_SAMPLES || budget.elapsed() < LIST_BUDGET)
        {
            let started = Instant::now();
            server.list_tasks().await?;
            samples.push(started.elapsed());
        }
        anyhow::Ok(samples)
    })?;
    let count = samples.len();
    let listed = Percentiles::of(samples);
    println!("  {count} sequential GETs over HTTP, body read and parsed: {listed}   (target: p99 < 20 ms)");
    // Where it goes: the rows alone, as the store read them before any cache (same SQL),
    // interleaved with GETs so a neighbour's load falls on both.
    let (query, http) = runtime.block_on(async {
        let (mut samples, mut http) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            let started = Instant::now();
            server.list_tasks().await?;
            http.push(started.elapsed());
            let started = Instant::now();
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT p.name, v.version, v.registered_at FROM pipeline_versions v
                 JOIN pipelines p ON p.id = v.pipeline_id
                 WHERE p.namespace_key = $1 AND v.state = 'ready'",
            )
            .bind("gbdx")
            .fetch_all(server.registry.store().pool())
            .await?;
            samples.push(started.elapsed());
            anyhow::ensure!(
                rows.len() == versions,
                "the query found {} rows",
                rows.len()
            );
        }
        anyhow::Ok((samples, http))
    })?;
    println!(
        "  10 interleaved pairs: GET p50 {:>10.1?}; the whole store query (what a server without a listing reads; SQLite, sqlx Any, in process) p50 {:>10.1?}",
        Percentiles::of(http).p50,
        Percentiles::of(query).p50
    );
    // The first GET after a write: each sample deletes one version (through the API, as a
    // client would) and then lists.
    let (after_write, second) = runtime.block_on(async {
        let (mut samples, mut second) = (Vec::new(), Vec::new());
        for i in 0..AFTER_WRITE_SAMPLES {
            let (task, version) = (i % LISTED_TASKS, i / LISTED_TASKS);
            server
                .delete_task(&format!(
                    "Task-{task:04}:1.{}.{}",
                    version / 10,
                    version % 10
                ))
                .await?;
            let started = Instant::now();
            let listed = server.list_tasks().await?;
            samples.push(started.elapsed());
            let started = Instant::now();
            server.list_tasks().await?;
            second.push(started.elapsed());
            anyhow::ensure!(
                listed == versions - i - 1,
                "GET /tasks listed {listed} versions after {} deletions",
                i + 1
            );
        }
        anyhow::Ok((samples, second))
    })?;
    println!(
        "  first GET after a write (a version deleted through the API), {AFTER_WRITE_SAMPLES} samples: {}   (target: p99 < 50 ms); the GET right after it: {}",
        Percentiles::of(after_write),
        Percentiles::of(second)
    );
    println!("  {}", common::load_average());
    Ok(())
}

/// Alice's token, and 100 000 ready task versions written straight into the store.
async fn seed_versions(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let store = pipewright::store::Store::connect(&TestServer::database_url(dir)).await?;
    pipewright::registry::accounts::create_token(&store, "alice", None).await?;
    let (user, account): (String, String) =
        sqlx::query_as("SELECT id, personal_account_id FROM users WHERE name_key = 'alice'")
            .fetch_one(store.pool())
            .await?;
    let now = pipewright::store::now_millis();
    let mut tx = store.pool().begin().await?;
    for task in 0..LISTED_TASKS {
        let (id, name) = (format!("bench-task-{task}"), format!("Task-{task:04}"));
        sqlx::query(&format!(
            "INSERT INTO pipelines (id, namespace, namespace_key, name, name_key, pipeline_type,
                owner_account_id, created_by, created_at, versions_revision)
             VALUES ('{id}', 'gbdx', 'gbdx', '{name}', '{key}', 'task', '{account}', '{user}', {now}, {LISTED_VERSIONS_PER_TASK})",
            key = name.to_lowercase()
        ))
        .execute(&mut *tx)
        .await?;
        let rows: Vec<String> = (0..LISTED_VERSIONS_PER_TASK)
            .map(|v| {
                let version = format!("1.{}.{}", v / 10, v % 10);
                let definition = json!({
                    "name": name, "version": version, "taskOwnerEmail": "alice@example.com",
                    "description": "a task of the listing benchmark",
                    "inputPortDescriptors": [{"name": "in", "type": "string"}],
                    "outputPortDescriptors": [{"name": "out", "type": "string"}],
                    "containerDescriptors": [{"type": "WASM", "properties": {"url": "http://127.0.0.1:1/task.wasm"}}],
                });
                format!(
                    "('{id}-{v}', '{id}', '{version}', '{version}', 'ready', '{definition}', \
                     'sha256:{digest:064x}', '[\"policy-semver@0.1.0\"]', '{user}', {at}, 1, {at})",
                    digest = task * LISTED_VERSIONS_PER_TASK + v,
                    at = now + v as i64,
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO pipeline_versions (id, pipeline_id, version, version_key, state, definition,
                content_digest, approved_by, registered_by, registered_at, attempts, finished_at)
             VALUES {}",
            rows.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    store.pool().close().await;
    Ok(())
}

/// One registration: request -> answer (200), request -> first poll that saw `ready`, polls made.
struct Registered {
    accepted: Duration,
    ready: Duration,
    polls: usize,
}

/// The server in this process, as the end-to-end tests start it: SQLite under `dir`, the
/// registration workers polling every 5 ms (a submission also wakes them at once).
struct TestServer {
    base: String,
    client: reqwest::Client,
    token: String,
    registry: Registry,
    _served: common::Served,
}

impl TestServer {
    fn database_url(dir: &std::path::Path) -> String {
        format!("sqlite://{}", dir.join("bench.db").display())
    }

    async fn start(dir: &std::path::Path) -> anyhow::Result<TestServer> {
        std::fs::create_dir_all(dir)?;
        let database_url = Self::database_url(dir);
        let config = ServerConfig {
            registration: RegistrationConfig {
                poll_interval: Duration::from_millis(5),
                // The components are served from loopback (`--allow-fetch 127.0.0.1`).
                fetch_policy: pipewright::outbound::FetchPolicy::allowing(["127.0.0.1"
                    .parse()
                    .expect("an allow rule")]),
                ..RegistrationConfig::default()
            },
            ..ServerConfig::new(dir, database_url)
        };
        let services = build_services(&config).await?;
        let registry = services.registry.clone();
        let token =
            pipewright::registry::accounts::create_token(registry.store(), "alice", None).await?;
        let served = common::serve(services, config.api.clone()).await?;
        Ok(TestServer {
            base: served.base.clone(),
            client: reqwest::Client::new(),
            token,
            registry,
            _served: served,
        })
    }

    /// Registers `name` at `version` from `url`; polls until it is ready. (to the answer, to ready).
    async fn register_until_ready(
        &self,
        name: &str,
        version: &str,
        url: &str,
    ) -> anyhow::Result<Registered> {
        let task = json!({
            "name": name,
            "version": version,
            "taskOwnerEmail": "alice@example.com",
            "description": "a task of the registration benchmark",
            "containerDescriptors": [{"type": "WASM", "properties": {"url": url}}],
        });
        let started = Instant::now();
        let response = self
            .client
            .post(format!("{}/workflows/v1/tasks", self.base))
            .bearer_auth(&self.token)
            .json(&task)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status == 200, "POST /tasks answered {status}: {body}");
        let accepted = started.elapsed();
        let mut polls = 0;
        loop {
            let body = self.version(name, version).await?;
            polls += 1;
            match body["state"].as_str() {
                Some("ready") => {
                    return Ok(Registered {
                        accepted,
                        ready: started.elapsed(),
                        polls,
                    })
                }
                Some("registering") => tokio::time::sleep(POLL).await,
                _ => anyhow::bail!("{name}:{version} did not become ready: {body}"),
            }
        }
    }

    /// `GET /v1/pipelines/gbdx/{name}/versions/{version}`: what a client polls.
    async fn version(&self, name: &str, version: &str) -> anyhow::Result<Value> {
        Ok(self
            .client
            .get(format!(
                "{}/v1/pipelines/gbdx/{name}/versions/{version}",
                self.base
            ))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// `DELETE /workflows/v1/tasks/{task}` (`name:version`).
    async fn delete_task(&self, task: &str) -> anyhow::Result<()> {
        self.client
            .delete(format!("{}/workflows/v1/tasks/{task}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// `GET /workflows/v1/tasks`: how many versions it lists.
    async fn list_tasks(&self) -> anyhow::Result<usize> {
        let body: Value = self
            .client
            .get(format!("{}/workflows/v1/tasks", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        body["tasks"]
            .as_array()
            .map(Vec::len)
            .context("GET /tasks answered no `tasks` list")
    }
}

/// Serves component bytes on loopback, as a registry of artifacts would: `GET /{file}`.
struct ContentServer {
    base: String,
    files: Arc<Mutex<HashMap<String, Bytes>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl ContentServer {
    async fn start() -> anyhow::Result<ContentServer> {
        let files: Arc<Mutex<HashMap<String, Bytes>>> = Arc::default();
        let app = axum::Router::new()
            .route("/{file}", axum::routing::get(Self::serve))
            .with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                let _ = rx.await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await;
        });
        Ok(ContentServer {
            base,
            files,
            _shutdown: tx,
        })
    }

    async fn serve(
        State(files): State<Arc<Mutex<HashMap<String, Bytes>>>>,
        Path(file): Path<String>,
    ) -> Result<Bytes, StatusCode> {
        files
            .lock()
            .unwrap()
            .get(&file)
            .cloned()
            .ok_or(StatusCode::NOT_FOUND)
    }

    /// Serves `bytes` as `file`; its URL.
    fn put(&self, file: &str, bytes: Vec<u8>) -> String {
        self.files
            .lock()
            .unwrap()
            .insert(file.to_string(), Bytes::from(bytes));
        format!("{}/{file}", self.base)
    }

    fn remove(&self, file: &str) {
        self.files.lock().unwrap().remove(file);
    }
}

/// An engine configured as `PluginHost::new` configures the host's: the component model and
/// epoch interruption (which adds a check to every loop header and function entry).
fn bare_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    Ok(Engine::new(&config)?)
}

// ---------------------------------------------------------------------------------------------
// A tiny WebAssembly binary encoder: just what the generated components need.

/// A component whose only content is one core module of about `size` bytes; `seed` is mixed
/// into every function, so two seeds give two different digests and the same amount of code.
fn component(size: usize, seed: u32) -> Vec<u8> {
    let module = core_module(size.saturating_sub(16), seed);
    let mut out = b"\0asm".to_vec();
    out.extend_from_slice(&[0x0d, 0x00, 0x01, 0x00]); // component, layer 1
    section(&mut out, 0x01, &module); // core module section
    out
}

/// Functions of type `(i32, i32) -> i32` with six i32 locals and one page of memory, their
/// bodies drawn from a fixed pseudo-random sequence until the module reaches `size` bytes.
fn core_module(size: usize, seed: u32) -> Vec<u8> {
    let mut rng = Lcg(0x5eed_1234_abcd_0001);
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut total = 64;
    while total < size {
        let body = function_body(&mut rng, bodies.len() as u32, seed);
        total += body.len() + 3 + 1;
        bodies.push(body);
    }

    let mut out = b"\0asm".to_vec();
    out.extend_from_slice(&[0x01, 0x00, 0x00, 0x00]);
    // Type section: one type, (i32, i32) -> i32.
    section(&mut out, 0x01, &[0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f]);
    // Function section: every function has type 0.
    let mut functions = Vec::new();
    uleb(&mut functions, bodies.len() as u64);
    functions.extend(std::iter::repeat_n(0x00, bodies.len()));
    section(&mut out, 0x03, &functions);
    // Memory section: one memory, at least one page.
    section(&mut out, 0x05, &[0x01, 0x00, 0x01]);
    // Code section.
    let mut code = Vec::with_capacity(total);
    uleb(&mut code, bodies.len() as u64);
    for body in &bodies {
        uleb(&mut code, body.len() as u64);
        code.extend_from_slice(body);
    }
    section(&mut out, 0x0a, &code);
    out
}

// Opcodes.
const LOCAL_GET: u8 = 0x20;
const LOCAL_SET: u8 = 0x21;
const LOCAL_TEE: u8 = 0x22;
const I32_CONST: u8 = 0x41;
const I32_LOAD: u8 = 0x28;
const I32_STORE: u8 = 0x36;
const BINARY_OPS: [u8; 9] = [
    0x6a, // add
    0x6b, // sub
    0x6c, // mul
    0x71, // and
    0x72, // or
    0x73, // xor
    0x74, // shl
    0x76, // shr_u
    0x77, // rotl
];
const COMPARE_OPS: [u8; 4] = [0x48, 0x49, 0x4a, 0x4b]; // lt_s, lt_u, gt_s, gt_u
const LOCALS: u32 = 8; // two parameters and six locals, all i32
const LOOP_COUNTER: u32 = 7;

/// About 400 bytes of straight-line arithmetic, if/else, counted loops, memory traffic, selects
/// and calls to earlier functions, ending in a fold of every local.
fn function_body(rng: &mut Lcg, index: u32, seed: u32) -> Vec<u8> {
    let mut b = vec![0x01, 0x06, 0x7f]; // one group of six i32 locals
    let any = |rng: &mut Lcg| rng.below(LOCALS);
    let target = |rng: &mut Lcg| 2 + rng.below(LOCALS - 3); // 2..=6: never a parameter or the counter
                                                            // local2 = param0 ^ seed ^ index: every function differs with the seed.
    op_local(&mut b, LOCAL_GET, 0);
    op_const(&mut b, (seed ^ index.wrapping_mul(0x9e37_79b9)) as i32);
    b.push(0x73);
    op_local(&mut b, LOCAL_SET, 2);
    while b.len() < 380 {
        match rng.below(6) {
            0 => {
                // z = (x op y) op2 k
                op_local(&mut b, LOCAL_GET, any(rng));
                op_local(&mut b, LOCAL_GET, any(rng));
                b.push(BINARY_OPS[rng.below(9) as usize]);
                op_const(&mut b, rng.next() as i32);
                b.push(BINARY_OPS[rng.below(9) as usize]);
                op_local(&mut b, LOCAL_SET, target(rng));
            }
            1 => {
                // w = if x cmp k { y + k2 } else { z * k3 }
                op_local(&mut b, LOCAL_GET, any(rng));
                op_const(&mut b, rng.next() as i32);
                b.push(COMPARE_OPS[rng.below(4) as usize]);
                b.extend_from_slice(&[0x04, 0x7f]); // if (result i32)
                op_local(&mut b, LOCAL_GET, any(rng));
                op_const(&mut b, rng.next() as i32);
                b.push(0x6a);
                b.push(0x05); // else
                op_local(&mut b, LOCAL_GET, any(rng));
                op_const(&mut b, rng.next() as i32);
                b.push(0x6c);
                b.push(0x0b); // end
                op_local(&mut b, LOCAL_SET, target(rng));
            }
            2 => {
                // counter = 0; loop { x = rotl(x + counter, k); counter += 1; br_if counter < n }
                let x = target(rng);
                op_const(&mut b, 0);
                op_local(&mut b, LOCAL_SET, LOOP_COUNTER);
                b.extend_from_slice(&[0x03, 0x40]); // loop
                op_local(&mut b, LOCAL_GET, x);
                op_local(&mut b, LOCAL_GET, LOOP_COUNTER);
                b.push(0x6a);
                op_const(&mut b, rng.below(31) as i32 + 1);
                b.push(0x77);
                op_local(&mut b, LOCAL_SET, x);
                op_local(&mut b, LOCAL_GET, LOOP_COUNTER);
                op_const(&mut b, 1);
                b.push(0x6a);
                op_local(&mut b, LOCAL_TEE, LOOP_COUNTER);
                op_const(&mut b, 2 + rng.below(14) as i32);
                b.push(0x49); // lt_u
                b.extend_from_slice(&[0x0d, 0x00]); // br_if 0
                b.push(0x0b); // end
            }
            3 => {
                // mem[x & mask] = y; w = mem[z & mask + off]
                op_local(&mut b, LOCAL_GET, any(rng));
                op_const(&mut b, 0x7ffc);
                b.push(0x71);
                op_local(&mut b, LOCAL_GET, any(rng));
                b.push(I32_STORE);
                b.push(0x02);
                uleb(&mut b, u64::from(rng.below(256) * 4));
                op_local(&mut b, LOCAL_GET, any(rng));
                op_const(&mut b, 0x7ffc);
                b.push(0x71);
                b.push(I32_LOAD);
                b.push(0x02);
                uleb(&mut b, u64::from(rng.below(256) * 4));
                op_local(&mut b, LOCAL_SET, target(rng));
            }
            4 => {
                // w = select(x, y, z == 0)
                op_local(&mut b, LOCAL_GET, any(rng));
                op_local(&mut b, LOCAL_GET, any(rng));
                op_local(&mut b, LOCAL_GET, any(rng));
                b.push(0x45); // eqz
                b.push(0x1b); // select
                op_local(&mut b, LOCAL_SET, target(rng));
            }
            _ => {
                // w = earlier(x, y): a call graph without recursion
                if index == 0 {
                    continue;
                }
                op_local(&mut b, LOCAL_GET, any(rng));
                op_local(&mut b, LOCAL_GET, any(rng));
                b.push(0x10);
                uleb(&mut b, u64::from(rng.below(index)));
                op_local(&mut b, LOCAL_SET, target(rng));
            }
        }
    }
    // Result: every local folded with xor.
    op_local(&mut b, LOCAL_GET, 0);
    for local in 1..LOCALS {
        op_local(&mut b, LOCAL_GET, local);
        b.push(0x73);
    }
    b.push(0x0b);
    b
}

fn op_local(out: &mut Vec<u8>, op: u8, index: u32) {
    out.push(op);
    uleb(out, u64::from(index));
}

fn op_const(out: &mut Vec<u8>, value: i32) {
    out.push(I32_CONST);
    sleb(out, i64::from(value));
}

fn section(out: &mut Vec<u8>, id: u8, contents: &[u8]) {
    out.push(id);
    uleb(out, contents.len() as u64);
    out.extend_from_slice(contents);
}

fn sleb(out: &mut Vec<u8>, mut value: i64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A fixed pseudo-random sequence (Knuth's MMIX LCG), so every run generates the same code.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}
