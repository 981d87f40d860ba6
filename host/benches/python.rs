//! Python pipelines on the Python runtime (issue 18), each beside a baseline measured in the
//! same run. Prints figures and ratios; asserts no times.
//!
//! (a) Push → first run `completed`: Mystic's template (what `pipeline container init` writes,
//!     below) pushed as a new version (`POST /v4/pipelines`, the next patch), then
//!     `run_pipeline(pointer, 5)`'s `POST /v4/runs` answered `completed`, p50/p99 (goal: p50 <
//!     100 ms; a push compiles nothing, the runtime was compiled at start). Beside it the push of
//!     `hello`'s component (already compiled) and its first run.
//! (b) Cold start over HTTP (scaled to zero, `PluginHost::drop_idle_runnables(ZERO)` → a run
//!     `completed`) and a warm run, of the template and of `hello`, p50/p99. For the template a
//!     cold start is a fresh instance of the runtime: the module imported, the graph built, the
//!     `on_startup` pipe run, then the run; warm, the instance kept from the last run.
//! (c) Warm runs/s over HTTP on loopback, one connection, of the template against `hello`, in
//!     rounds taking turns, and their ratio.
//! (d) Ready at once: a 5.7 MB Rust component (`benches/big-runnable`) pushed as a new version
//!     (its bytes made new each time by a custom section, so nothing is cached) → its first run
//!     `completed`, against a bare Cranelift `precompile_component` of the same bytes, in rounds
//!     taking turns (goal: ≤ 0.3×); a bare Winch precompile beside them. The push waits for
//!     Winch's code only; Cranelift's compile runs in the background and is waited for, untimed,
//!     before the next round.
//! (e) Winch's code against Cranelift's in this host: runs of the big component (formatting a
//!     Rust file) on the runnable pipeline loaded from Winch's code, then on Cranelift's.
//!
//! The server runs in this process on SQLite, as the end-to-end tests start it; its compile
//! cache is kept in the target dir between runs of the bench (the runtime's compile, seconds,
//! happens once). `hello` is built as the end-to-end tests build it. Needs pipewright built
//! with its Python runtime (componentize-py: README, "Python pipelines"). Run with
//! `cargo bench -p pipewright --bench python` (a few minutes on 2 cores; the first run builds
//! the big component, about 4 minutes more).

#[path = "common/mod.rs"]
mod common;
#[path = "../../tests/e2e/guests.rs"]
mod guests;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::{ratio, Percentiles};
use pipewright::registry::Registry;
use pipewright::server::{build_services, serve_on, ServerConfig};
use serde_json::{json, Value as Json};

/// (a), (b): measured samples of each side, after `WARMUP` unmeasured ones.
const SAMPLES: usize = 100;
const WARMUP: usize = 10;
/// (c): rounds of each side, and how long each round loads it.
const ROUNDS: usize = 3;
const ROUND_TIME: Duration = Duration::from_secs(2);

/// `new_pipeline.py` as `pipeline container init` (pipeline-ai 2.8.0) writes it.
const TEMPLATE_MODULE: &str = r#"from pipeline import Pipeline, Variable, entity, pipe


# Put your model inside of the below entity class
@entity
class MyModelClass:
    @pipe(run_once=True, on_startup=True)
    def load(self) -> None:
        # Perform any operations needed to load your model here
        print("Loading model...")

        ...

        print("Model loaded!")

    @pipe
    def predict(self, output_number: int) -> str:
        # Perform any operations needed to predict with your model here
        print("Predicting...")

        ...

        print("Prediction complete!")

        return f"Your number: {output_number}"


with Pipeline() as builder:
    input_var = Variable(
        int,
        description="A basic input number to do things with",
        title="Input number",
    )

    my_model = MyModelClass()
    my_model.load()

    output_var = my_model.predict(input_var)

    builder.output(output_var)

my_new_pipeline = builder.get_pipeline()
"#;

/// `pipeline.yaml` as `pipeline container init -n template` writes it, as the CLI sends it.
fn template_manifest() -> Json {
    json!({
        "runtime": {"container_commands": ["apt-get update", "apt-get install -y git"],
            "python": {"version": "3.10", "requirements": ["pipeline-ai"]}},
        "accelerators": [], "accelerator_memory": null,
        "pipeline_graph": "new_pipeline:my_new_pipeline", "pipeline_name": "template",
        "description": null, "readme": "README.md", "extras": {}, "cluster": null,
        "scaling_config_name": null,
    })
}

fn main() -> anyhow::Result<()> {
    if pipewright::plugins::python::RUNTIME.is_none() {
        bail!("{}", pipewright::plugins::python::MISSING_RUNTIME);
    }
    load_average("before");
    let hello_path = guests::path("example_hello.wasm");
    let hello =
        std::fs::read(&hello_path).with_context(|| format!("reading {}", hello_path.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let server = runtime.block_on(InProcessServer::start(scratch.path()))?;
    let token = runtime.block_on(pipewright::registry::accounts::create_token(
        server.registry.store(),
        "bench",
        None,
    ))?;
    let plugins = server.registry.plugins().clone();
    let started = Instant::now();
    plugins.prepare_python_runtime()?;
    let ready = started.elapsed();
    // Timed on Cranelift's code, not Winch's: the optimizing compile finished first.
    plugins.wait_for_optimizing();
    println!(
        "Python runtime ready {ready:.2?} after start, optimized {:.2?} after (each compiled once into the cache, then loaded)",
        started.elapsed()
    );
    let client = Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        token,
    };

    // (a) push → first run completed.
    let mut python_push = Vec::new();
    let mut hello_push = Vec::new();
    for i in 0..WARMUP + SAMPLES {
        let started = Instant::now();
        let pointer = runtime.block_on(client.push_template())?;
        runtime.block_on(client.run_template(&pointer))?;
        let python = started.elapsed();
        let version = format!("0.1.{i}");
        let started = Instant::now();
        runtime.block_on(client.push_hello(&hello, &version))?;
        runtime.block_on(client.run_hello(&format!("bench/hello:{version}")))?;
        if i >= WARMUP {
            python_push.push(python);
            hello_push.push(started.elapsed());
        }
    }
    let (python_push, hello_push) = (Percentiles::of(python_push), Percentiles::of(hello_push));
    println!("(a) push -> first run completed, {SAMPLES} samples each");
    println!("  Python template (new version, no compile): {python_push}   (goal: p50 < 100 ms)");
    println!("  hello (component compiled before):         {hello_push}");
    println!(
        "  ratio template/hello: p50 {:.2}x  p99 {:.2}x",
        ratio(python_push.p50, hello_push.p50),
        ratio(python_push.p99, hello_push.p99)
    );
    load_average("after (a)");

    // (b) cold start (scaled to zero) and warm, of one version of each.
    let template = runtime.block_on(client.push_template())?;
    runtime.block_on(client.push_hello(&hello, "1.0.0"))?;
    let hello_pointer = "bench/hello:1.0.0";
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for i in 0..WARMUP + SAMPLES {
        for side in (0..4).map(|k| (k + i) % 4) {
            if side % 2 == 0 {
                plugins.drop_idle_runnables(Duration::ZERO);
            }
            let started = Instant::now();
            if side < 2 {
                runtime.block_on(client.run_template(&template))?;
            } else {
                runtime.block_on(client.run_hello(hello_pointer))?;
            }
            if i >= WARMUP {
                samples[side].push(started.elapsed());
            }
        }
    }
    let [python_cold, python_warm, hello_cold, hello_warm] = samples.map(Percentiles::of);
    println!("(b) over HTTP, {SAMPLES} samples each");
    println!("  template, scaled to zero -> completed (fresh instance, import, load step): {python_cold}");
    println!(
        "  template, warm instance -> completed:                                    {python_warm}"
    );
    println!(
        "  hello, scaled to zero -> completed:                                      {hello_cold}"
    );
    println!(
        "  hello, warm (a fresh instance per run) -> completed:                     {hello_warm}"
    );
    println!(
        "  ratio template/hello: cold p50 {:.2}x p99 {:.2}x;  warm p50 {:.2}x p99 {:.2}x",
        ratio(python_cold.p50, hello_cold.p50),
        ratio(python_cold.p99, hello_cold.p99),
        ratio(python_warm.p50, hello_warm.p50),
        ratio(python_warm.p99, hello_warm.p99),
    );
    load_average("after (b)");

    // (c) warm runs/s, sides taking turns.
    let mut counts = [0u64; 2];
    for round in 0..ROUNDS {
        for side in (0..2).map(|k| (k + round) % 2) {
            let until = Instant::now() + ROUND_TIME;
            while Instant::now() < until {
                if side == 0 {
                    runtime.block_on(client.run_template(&template))?;
                } else {
                    runtime.block_on(client.run_hello(hello_pointer))?;
                }
                counts[side] += 1;
            }
        }
    }
    let per_second = |count: u64| count as f64 / (ROUND_TIME * ROUNDS as u32).as_secs_f64();
    let (python_rate, hello_rate) = (per_second(counts[0]), per_second(counts[1]));
    println!("(c) warm runs/s over HTTP, one connection, {ROUNDS} rounds of {ROUND_TIME:?} each");
    println!(
        "  template {python_rate:.0}/s, hello {hello_rate:.0}/s, ratio template/hello {:.2}x",
        python_rate / hello_rate
    );
    load_average("after (c)");

    ready_at_once(&runtime, &client, &plugins)?;
    load_average("after");
    drop(server);
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// (d) rounds, and (e) runs on each compiler's code.
const BIG_ROUNDS: usize = 5;
const TIER_RUNS: usize = 20;

/// (d) and (e): see the module doc.
fn ready_at_once(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    plugins: &std::sync::Arc<pipewright::plugins::PluginHost>,
) -> anyhow::Result<()> {
    let big = big_component()?;
    let engine = |strategy| {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).strategy(strategy);
        wasmtime::Engine::new(&config).map_err(anyhow::Error::from)
    };
    let (cranelift, winch) = (
        engine(wasmtime::Strategy::Cranelift)?,
        engine(wasmtime::Strategy::Winch)?,
    );
    let mut pushed = Vec::new();
    let mut bare = Vec::new();
    let mut bare_winch = Vec::new();
    for round in 0..BIG_ROUNDS {
        let bytes =
            guests::with_custom_section(&big, &format!("round {round} {:?}", Instant::now()));
        for side in (0..2).map(|k| (k + round) % 2) {
            if side == 0 {
                let started = Instant::now();
                let version = format!("0.1.{round}");
                runtime.block_on(client.push_big(&bytes, &version))?;
                runtime.block_on(client.run_big(&format!("bench/big:{version}"), "regex"))?;
                pushed.push(started.elapsed());
                // Cranelift's background compile, untimed: not under the next side's feet.
                plugins.wait_for_optimizing();
            } else {
                let started = Instant::now();
                cranelift
                    .precompile_component(&bytes)
                    .map_err(anyhow::Error::from)?;
                bare.push(started.elapsed());
            }
        }
        let started = Instant::now();
        winch
            .precompile_component(&bytes)
            .map_err(anyhow::Error::from)?;
        bare_winch.push(started.elapsed());
    }
    let rounds = common::RoundRatios::of(
        pushed
            .iter()
            .zip(&bare)
            .map(|(pushed, bare)| ratio(*pushed, *bare))
            .collect(),
    );
    println!(
        "(d) a {:.1} MB Rust component, {BIG_ROUNDS} rounds",
        big.len() as f64 / 1e6
    );
    println!("  push -> first run completed: {}", Percentiles::of(pushed));
    println!("  bare Cranelift precompile:   {}", Percentiles::of(bare));
    println!(
        "  bare Winch precompile:       {}",
        Percentiles::of(bare_winch)
    );
    println!("  ratio push->first run / bare Cranelift precompile: {rounds}   (goal: <= 0.3x)");

    // (e) the same runnable on each compiler's code, loaded in the host as a run loads it.
    use pipewright::plugins::runnable::{NamedValue, Value};
    use pipewright::plugins::tiers::Level;
    let bytes = guests::with_custom_section(&big, &format!("tiers {:?}", Instant::now()));
    let id = pipewright::plugins::PluginId {
        name: "big".into(),
        version: "0.2.0".into(),
    };
    let pipeline = plugins.load_runnable(id, &bytes)?;
    let inputs = [
        NamedValue {
            name: "text".into(),
            value: Value::String(RUST_TO_FORMAT.repeat(20)),
        },
        NamedValue {
            name: "mode".into(),
            value: Value::String("rust".into()),
        },
    ];
    let on = |level: Level| -> anyhow::Result<Percentiles> {
        let mut samples = Vec::new();
        for _ in 0..TIER_RUNS {
            let output = pipewright::plugins::output::CapturedOutput::new(4096);
            let started = Instant::now();
            let started_on = pipeline.compiled_by();
            runtime
                .block_on(pipeline.run(&[], &inputs, Duration::from_secs(60), &output))?
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            if started_on == level {
                samples.push(started.elapsed());
            }
        }
        if samples.is_empty() {
            bail!("no run started on {}'s code", level.as_str());
        }
        Ok(Percentiles::of(samples))
    };
    let on_winch = on(Level::Baseline)?;
    plugins.wait_for_optimizing();
    let on_cranelift = on(Level::Optimized)?;
    println!("(e) formatting {} KB of Rust, a fresh instance per run, up to {TIER_RUNS} runs on each compiler's code", RUST_TO_FORMAT.len() * 20 / 1000);
    println!("  on Winch's code:     {on_winch}");
    println!("  on Cranelift's code: {on_cranelift}");
    println!(
        "  ratio Winch/Cranelift: p50 {:.2}x",
        ratio(on_winch.p50, on_cranelift.p50)
    );
    Ok(())
}

/// Rust source the big component formats in (e).
const RUST_TO_FORMAT: &str = "fn fib(n: u64) -> u64 { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }
struct Point { x: f64, y: f64 } impl Point { fn norm(&self) -> f64 { (self.x * self.x + self.y * self.y).sqrt() } }
";

/// Builds `benches/big-runnable` for wasm32-wasip2 (release) into the target dir of the
/// built-ins, and reads it.
fn big_component() -> anyhow::Result<Vec<u8>> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/big-runnable/Cargo.toml");
    let mut cargo = guests::wasm32_build();
    cargo.arg("--release").arg("--manifest-path").arg(&manifest);
    println!("building benches/big-runnable for wasm32-wasip2 (minutes the first time)");
    if !cargo.status()?.success() {
        bail!("building benches/big-runnable failed (cargo's errors are above)");
    }
    let path = Path::new(env!("PIPEWRIGHT_PLUGIN_TARGET_DIR"))
        .join("wasm32-wasip2/release/big_runnable.wasm");
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// Mystic's `/v4` as a client speaks it.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn post(&self, path: &str, body: Json) -> anyhow::Result<(u16, Json)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// The template as `pipewright pipeline push` sends it: its next patch version.
    async fn push_template(&self) -> anyhow::Result<String> {
        use base64::Engine as _;
        let file = |path: &str, text: &str| {
            json!({"path": path,
                "content_base64": base64::engine::general_purpose::STANDARD.encode(text)})
        };
        let body = json!({
            "manifest": template_manifest(),
            "files": [file("new_pipeline.py", TEMPLATE_MODULE), file("README.md", "# template\n"),
                file("pipeline.yaml", &template_manifest().to_string())],
        });
        let (status, answer) = self.post("/v4/pipelines", body).await?;
        if status != 201 {
            bail!("pushing the template: {status} {answer}");
        }
        Ok(answer["pointer"].as_str().unwrap_or_default().to_string())
    }

    async fn push_hello(&self, component: &[u8], version: &str) -> anyhow::Result<()> {
        use base64::Engine as _;
        let body = json!({
            "manifest": {
                "name": "hello", "version": version, "component": "hello.wasm",
                "inputs": [{"name": "text", "type": "string"}],
                "outputs": [{"name": "greeting", "type": "string"}],
            },
            "files": [{"path": "hello.wasm",
                "content_base64": base64::engine::general_purpose::STANDARD.encode(component)}],
        });
        let (status, answer) = self.post("/v4/pipelines", body).await?;
        if status != 201 {
            bail!("pushing hello: {status} {answer}");
        }
        Ok(())
    }

    /// `run_pipeline(pointer, 5)`; an error unless Mystic's answer for the template.
    async fn run_template(&self, pointer: &str) -> anyhow::Result<()> {
        let body = json!({"pipeline": pointer, "inputs": [{"type": "integer", "value": 5}]});
        let (status, run) = self.post("/v4/runs", body).await?;
        if status != 200
            || run["state"] != "completed"
            || run["outputs"][0]["value"] != "Your number: 5"
        {
            bail!("run of {pointer}: {status} {run}");
        }
        Ok(())
    }

    async fn push_big(&self, component: &[u8], version: &str) -> anyhow::Result<()> {
        use base64::Engine as _;
        let body = json!({
            "manifest": {
                "name": "big", "version": version, "component": "big.wasm",
                "inputs": [{"name": "text", "type": "string"}, {"name": "mode", "type": "string"}],
                "outputs": [{"name": "result", "type": "string"}],
            },
            "files": [{"path": "big.wasm",
                "content_base64": base64::engine::general_purpose::STANDARD.encode(component)}],
        });
        let (status, answer) = self.post("/v4/pipelines", body).await?;
        if status != 201 {
            bail!("pushing big: {status} {answer}");
        }
        Ok(())
    }

    async fn run_big(&self, pointer: &str, mode: &str) -> anyhow::Result<()> {
        let body = json!({"pipeline": pointer, "inputs": [{"type": "string", "value": "ready at once"},
            {"type": "string", "value": mode}]});
        let (status, run) = self.post("/v4/runs", body).await?;
        if status != 200 || run["state"] != "completed" {
            bail!("run of {pointer}: {status} {run}");
        }
        Ok(())
    }

    async fn run_hello(&self, pointer: &str) -> anyhow::Result<()> {
        let body = json!({"pipeline": pointer, "inputs": [{"type": "string", "value": "world"}]});
        let (status, run) = self.post("/v4/runs", body).await?;
        if status != 200
            || run["state"] != "completed"
            || run["outputs"][0]["value"] != "Hello, world!"
        {
            bail!("run of {pointer}: {status} {run}");
        }
        Ok(())
    }
}

struct InProcessServer {
    base: String,
    registry: Registry,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl InProcessServer {
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        let database_url = format!("sqlite://{}", dir.join("bench.db").display());
        let mut config = ServerConfig::new(dir, database_url);
        // Kept between runs of the bench: the runtime is compiled once.
        config.cache_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-bench-cache");
        let services = build_services(&config).await?;
        let registry = services.registry.clone();
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
            registry,
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

/// The machine may be shared: how busy it was.
fn load_average(when: &str) {
    if let Ok(text) = std::fs::read_to_string("/proc/loadavg") {
        let figures: Vec<&str> = text.split_whitespace().take(3).collect();
        println!("load average {when}: {}", figures.join(" "));
    }
}
