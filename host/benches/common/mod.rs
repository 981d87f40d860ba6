//! What the bench binaries share: percentiles of timed samples and their ratios, and a server
//! started in the bench's own process as the end-to-end tests start it.

// Each bench uses the part it needs.
#![allow(dead_code)]

pub mod raw_http;
pub mod wrk;

use std::time::Duration;

use pipewright::api::ApiConfig;
use pipewright::plugins::{Pipeline, PolicyContext};
use pipewright::server::Services;

/// What the policy benches check: `name` at 1.0.10 of a jupyter pipeline, with ten versions
/// before it, asked through `surface`.
pub fn policy_check_input(name: &str, surface: &str) -> (Pipeline, Vec<String>, PolicyContext) {
    let candidate = Pipeline {
        namespace: "bench".into(),
        name: name.into(),
        version: Some("1.0.10".into()),
        type_: "jupyter".into(),
        description: None,
        inputs: vec![],
        outputs: vec![],
        properties: vec![],
    };
    let existing = (0..10).map(|i| format!("1.0.{i}")).collect();
    let context = PolicyContext {
        surface: surface.into(),
        account: "bench".into(),
        user: "bench".into(),
        config: vec![],
    };
    (candidate, existing, context)
}

/// The body of `POST /v1/pipelines/{ns}/{name}/versions` registering `version` of a jupyter
/// pipeline with an empty notebook: what the registry benches register.
pub fn notebook_version(version: &str) -> serde_json::Value {
    use base64::Engine as _;
    const NOTEBOOK: &str = r#"{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}"#;
    let content = base64::engine::general_purpose::STANDARD.encode(NOTEBOOK);
    serde_json::json!({
        "version": version,
        "files": [{"path": "notebook.ipynb", "content_base64": content}],
    })
}

/// A server on a loopback port, serving until dropped.
pub struct Served {
    pub base: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Serves `services` on a free loopback port (with its background workers, as `serve` does).
pub async fn serve(services: Services, api: ApiConfig) -> anyhow::Result<Served> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let stopped = async {
            let _ = rx.await;
        };
        if let Err(error) = pipewright::server::serve_on(listener, services, api, stopped).await {
            eprintln!("the server stopped: {error:#}");
        }
    });
    Ok(Served {
        base,
        shutdown: Some(tx),
    })
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// p50 and p99 (nearest rank) of some samples.
#[derive(Clone, Copy)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
}

impl Percentiles {
    pub fn of(mut samples: Vec<Duration>) -> Percentiles {
        samples.sort();
        let rank = |q: f64| {
            samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1]
        };
        Percentiles {
            p50: rank(0.50),
            p99: rank(0.99),
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {:>10.2?}  p99 {:>10.2?}", self.p50, self.p99)
    }
}

/// How many times `b` fits in `a`.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// Appends `value` as unsigned LEB128, the integer encoding of WebAssembly binaries (the benches
/// write modules and sections by hand).
pub fn uleb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Ratios of two sides measured in interleaved rounds (one ratio per round, both sides of a
/// round measured back to back under the same neighbours): their median and spread, so one
/// noisy burst cannot decide the figure.
pub struct RoundRatios {
    sorted: Vec<f64>,
}

impl RoundRatios {
    pub fn of(mut ratios: Vec<f64>) -> RoundRatios {
        assert!(!ratios.is_empty(), "no rounds");
        ratios.sort_by(f64::total_cmp);
        RoundRatios { sorted: ratios }
    }

    /// p50 of each block of `per_block` samples of `a` over the same block of `b` (samples of
    /// index i of both sides were taken in the same round).
    pub fn of_blocks(a: &[Duration], b: &[Duration], per_block: usize) -> RoundRatios {
        let p50 = |block: &[Duration]| Percentiles::of(block.to_vec()).p50;
        RoundRatios::of(
            a.chunks(per_block)
                .zip(b.chunks(per_block))
                .map(|(a, b)| ratio(p50(a), p50(b)))
                .collect(),
        )
    }

    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    /// Linear interpolation between the nearest ranks.
    fn quantile(&self, q: f64) -> f64 {
        let position = q * (self.sorted.len() - 1) as f64;
        let (low, high) = (position.floor() as usize, position.ceil() as usize);
        let weight = position - low as f64;
        self.sorted[low] * (1.0 - weight) + self.sorted[high] * weight
    }
}

impl std::fmt::Display for RoundRatios {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:.2}x (min-max {:.2}-{:.2}x, IQR {:.2}-{:.2}x, {} rounds)",
            self.median(),
            self.sorted[0],
            self.sorted[self.sorted.len() - 1],
            self.quantile(0.25),
            self.quantile(0.75),
            self.sorted.len()
        )
    }
}

/// The 1-, 5- and 15-minute load averages (Linux) and the cores: how much a neighbour's work
/// may have weighed on the figures.
pub fn load_average() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    match std::fs::read_to_string("/proc/loadavg") {
        Ok(load) => {
            let averages: Vec<&str> = load.split_whitespace().take(3).collect();
            format!("load average {} on {cores} cores", averages.join(" "))
        }
        Err(_) => format!("load average unknown on {cores} cores"),
    }
}

/// Prints [`load_average`], saying when.
pub fn print_load_average(when: &str) {
    use std::io::Write as _;
    println!("{} ({when})", load_average());
    let _ = std::io::stdout().flush();
}
