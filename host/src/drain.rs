//! Serving HTTP with a bounded graceful shutdown. When the shutdown signal comes the listener
//! is closed (no new connections), idle keep-alive connections are closed, and the requests in
//! flight are let finish, each on its connection, for at most the grace
//! (`--shutdown-grace-secs`). When the grace is over, [`serve`] returns anyway and logs how many
//! requests it cut off; the binary then leaves whatever work remains (see `main.rs`).
//!
//! What the grace does not cover: background work that no request waits for (an async run, a
//! registration attempt). It is stopped, not drained; its lease lapses and another server, or
//! this one after a restart, takes it over or fails it (see [`crate::registry::registration`]
//! and [`crate::runs`]).

use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;

/// The grace when none is configured (`--shutdown-grace-secs`' default).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Requests received and not yet answered (their response headers not yet produced). Also the
/// gauge `pipewright_http_requests_in_flight`, summed over every server of the process.
#[derive(Clone, Default)]
struct InFlight(Arc<AtomicUsize>);

/// One request counted in [`InFlight`] until it is answered or dropped.
struct Counted(InFlight);

impl InFlight {
    fn enter(&self) -> Counted {
        self.0.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("pipewright_http_requests_in_flight").increment(1.0);
        Counted(self.clone())
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("pipewright_http_requests_in_flight").decrement(1.0);
    }
}

async fn count_in_flight(
    State(in_flight): State<InFlight>,
    request: Request,
    next: Next,
) -> Response {
    let _counted = in_flight.enter();
    next.run(request).await
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let in_flight = InFlight::default();
    let app = app.layer(axum::middleware::from_fn_with_state(
        in_flight.clone(),
        count_in_flight,
    ));
    let (draining, drain_started) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = draining.send(());
    };
    let serving = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .into_future();
    tokio::pin!(serving);
    tokio::select! {
        served = &mut serving => return served,
        // Only an error when the signal future was dropped, that is when serving ended: the
        // branch above takes that.
        Ok(()) = drain_started => {}
    }
    tracing::info!(
        in_flight = in_flight.count(),
        ?grace,
        "draining: no new connections; the requests in flight may finish"
    );
    match tokio::time::timeout(grace, &mut serving).await {
        Ok(served) => {
            tracing::info!("drained: every request in flight was answered");
            served
        }
        Err(_) => {
            // Their connections' tasks are left to the runtime's shutdown, which drops them.
            tracing::warn!(
                cut_off = in_flight.count(),
                ?grace,
                "shutdown grace over: cutting off the requests still in flight"
            );
            Ok(())
        }
    }
}
