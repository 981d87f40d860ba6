//! The runs' housekeeping, on a timer of its own: runnable pipelines idle for
//! [`RunLimits::idle_timeout`](super::RunLimits) are scaled to zero (their compiled code leaves
//! memory), and the runs and workflows whose server stopped (their lease lapsed) are failed, so
//! none stays `running` for ever. Any server may fail any server's abandoned work.
//!
//! Why its own timer: scale-down and the sweeps used to wait for the registration worker to go
//! idle, so a busy registration queue kept idle pipelines in memory.

use std::time::{Duration, Instant};

use super::Runs;

/// The longest the timer sleeps between looks (a long idle timeout still scales down within it).
const MAX_TICK: Duration = Duration::from_secs(5);
/// The shortest, so a tiny idle timeout (the tests') does not spin.
const MIN_TICK: Duration = Duration::from_millis(10);

impl Runs {
    /// Runs the housekeeping until the returned handle is aborted.
    pub fn spawn_upkeep(&self) -> tokio::task::JoinHandle<()> {
        let runs = self.clone();
        tokio::spawn(async move { runs.upkeep_loop().await })
    }

    async fn upkeep_loop(self) {
        // A quarter of the idle timeout: a pipeline is dropped at most a quarter late.
        let tick = (self.limits.idle_timeout / 4).clamp(MIN_TICK, MAX_TICK);
        let mut last_sweep: Option<Instant> = None;
        loop {
            self.registry
                .plugins()
                .drop_idle_runnables(self.limits.idle_timeout);
            // A lapsed lease is what the sweeps look for: more often than once a lease finds
            // nothing new.
            if last_sweep.is_none_or(|at| at.elapsed() >= self.lease) {
                last_sweep = Some(Instant::now());
                if let Err(error) = self.fail_abandoned_workflows().await {
                    tracing::warn!(error = %error, "could not sweep abandoned workflows");
                }
                if let Err(error) = self.fail_abandoned_runs().await {
                    tracing::warn!(error = %error, "could not sweep abandoned runs");
                }
            }
            tokio::time::sleep(tick).await;
        }
    }
}
