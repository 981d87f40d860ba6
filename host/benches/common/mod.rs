//! What the bench binaries share: percentiles of timed samples and their ratios, and a server
//! started in the bench's own process as the end-to-end tests start it.

// Each bench uses the part it needs.
#![allow(dead_code)]

use std::time::Duration;

use pipewright::api::ApiConfig;
use pipewright::registry::Registry;

/// A server on a loopback port, serving until dropped.
pub struct Served {
    pub base: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Serves `registry` on a free loopback port (with its background workers, as `serve` does).
pub async fn serve(registry: Registry, api: ApiConfig) -> anyhow::Result<Served> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let stopped = async {
            let _ = rx.await;
        };
        if let Err(error) = pipewright::server::serve_on(listener, registry, api, stopped).await {
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
