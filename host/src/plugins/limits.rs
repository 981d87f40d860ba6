//! What one plugin call may consume, and the store data that enforces it.
//!
//! - **Memory and tables**: [`CallLimiter`], a `ResourceLimiter` that refuses growth past the cap
//!   and remembers that it did, so the error says "memory limit" rather than a bare trap.
//! - **CPU and wall-clock time**: an epoch deadline. A ticker thread (see [`EpochTicker`]) bumps
//!   the engine's epoch every [`EPOCH_TICK`]; each call sets a deadline of `timeout / EPOCH_TICK`
//!   ticks, so a guest that loops is interrupted after about `timeout`, busy or not. (A runnable
//!   pipeline, called asynchronously, yields at every tick instead and is interrupted once past
//!   its deadline: see [`super::runnable`].)
//!
//! What this does *not* cover: time spent blocked inside a host import. Each import bounds its
//! own waiting: `http-fetch` by the call's remaining deadline ([`PluginState::deadline`]), and a
//! WASI sleep (guests sleep between polls) ends by that deadline too (see [`super::clocks`]), so
//! the epoch check right after it stops the guest.

use anyhow::Context;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::clocks::HostMonotonicClock;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::grants::PluginGrants;
use super::output::{CapturedOutput, CapturedStream};
use super::PluginId;

/// How often the epoch advances: the granularity of every call's deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How much of a guest's stderr is kept to explain a trap (a Rust panic message lands there).
const STDERR_CAPTURE_BYTES: usize = 4096;

/// Limits applied to every call into a plugin.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Linear memory a single instance may grow to.
    pub memory_bytes: usize,
    /// Deadline of `describe`, `validate`, `scaffold` and `check`.
    pub call_timeout: Duration,
    /// Deadline of `launch`, which may wait for a notebook server to start.
    pub launch_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_secs(2),
            launch_timeout: Duration::from_secs(120),
        }
    }
}

impl Limits {
    /// Epoch ticks beyond "now" that make up `timeout` (at least one).
    pub fn ticks(timeout: Duration) -> u64 {
        (timeout.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1
    }
}

/// Memory and table cap of one store; remembers a refused growth for the error message.
pub struct CallLimiter {
    memory_bytes: usize,
    pub(super) refused_growth: Option<usize>,
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.refused_growth = Some(desired);
            // Trapping (rather than returning false) stops a guest that ignores a failed grow.
            wasmtime::bail!(
                "memory limit of {} bytes exceeded (asked for {desired})",
                self.memory_bytes
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A host directory a guest sees at `guest` (read-only unless `writable`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preopen {
    pub host: std::path::PathBuf,
    pub guest: &'static str,
    pub writable: bool,
}

/// A monotonic clock counting nanoseconds since `origin` (the store's creation): the
/// guest's `now`, and what the bounded sleeps of [`super::clocks`] measure against.
#[derive(Clone, Copy)]
pub struct CallClock {
    pub origin: Instant,
}

impl CallClock {
    pub fn nanos_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_nanos() as u64
    }
}

impl HostMonotonicClock for CallClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        self.nanos_at(Instant::now())
    }
}

/// The data of every plugin `Store`: WASI with nothing granted, the limiter, and who it is.
pub struct PluginState {
    pub(super) plugin: Arc<PluginId>,
    pub(super) limiter: CallLimiter,
    pub(super) stderr: CapturedStream,
    /// What the operator granted this plugin; refreshed before every call, so a change of
    /// grants applies to warm instances too.
    pub(super) grants: Arc<PluginGrants>,
    /// When the current call must be over; set before every call.
    pub(super) deadline: Option<Instant>,
    /// The guest's monotonic clock (the bounded sleeps read it too).
    pub(super) clock: CallClock,
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
}

impl PluginState {
    /// No preopened directories, no environment, no sockets: std's WASI imports are satisfied
    /// but grant nothing. Stdout goes nowhere; stderr is captured to explain traps.
    pub fn new(plugin: Arc<PluginId>, limits: &Limits) -> Self {
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        let stderr = CapturedStream::new(STDERR_CAPTURE_BYTES);
        builder.stderr(stderr.clone());
        Self::build(plugin, limits, builder, stderr)
    }

    /// The same, with `preopens` as the guest's only file system (a runnable pipeline's
    /// `/pipeline`, `/inputs`, `/outputs`), and its stdout and stderr written to `output`
    /// (which a trap's explanation reads too).
    pub fn with_files(
        plugin: Arc<PluginId>,
        limits: &Limits,
        preopens: &[Preopen],
        output: &CapturedOutput,
    ) -> anyhow::Result<Self> {
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        builder
            .stdout(output.stdout.clone())
            .stderr(output.stderr.clone());
        for preopen in preopens {
            let perms = if preopen.writable {
                wasmtime_wasi::FsPerms::ReadWrite
            } else {
                wasmtime_wasi::FsPerms::ReadOnly
            };
            builder
                .preopened_dir(&preopen.host, preopen.guest, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("opening {} as {}", preopen.host.display(), preopen.guest)
                })?;
        }
        Ok(Self::build(plugin, limits, builder, output.stderr.clone()))
    }

    fn build(
        plugin: Arc<PluginId>,
        limits: &Limits,
        mut builder: wasmtime_wasi::WasiCtxBuilder,
        stderr: CapturedStream,
    ) -> Self {
        let clock = CallClock {
            origin: Instant::now(),
        };
        let wasi = builder.monotonic_clock(clock).build();
        PluginState {
            plugin,
            limiter: CallLimiter {
                memory_bytes: limits.memory_bytes,
                refused_growth: None,
            },
            stderr,
            grants: Arc::default(),
            deadline: None,
            clock,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// Starts a call: its grants and its deadline.
    pub(super) fn begin_call(&mut self, grants: Arc<PluginGrants>, timeout: Duration) {
        self.grants = grants;
        self.deadline = Some(Instant::now() + timeout);
    }

    /// What the guest said on stderr before failing: a Rust panic's message when there is one
    /// (the line after "panicked at"), else its last line that is not a `note:`.
    pub fn stderr_explanation(&self) -> Option<String> {
        let bytes = self.stderr.bytes();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let after_panic = lines
            .iter()
            .position(|l| l.contains("panicked at"))
            .and_then(|i| lines.get(i + 1));
        after_panic
            .or_else(|| lines.iter().rev().find(|l| !l.starts_with("note:")))
            .map(|l| l.to_string())
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Advances the engines' epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engines: Vec<Engine>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("pipewright-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })
            .expect("spawning the epoch ticker thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
