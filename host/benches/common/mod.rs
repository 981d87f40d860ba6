//! What the bench binaries share: percentiles of timed samples and their ratios, and a server
//! started in the bench's own process as the end-to-end tests start it.

// Each bench uses the part it needs.
#![allow(dead_code)]

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
