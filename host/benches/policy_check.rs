//! A warm `policy-semver` check through the plugin host, beside a bare wasmtime call of the same
//! export on the same engine, in the same run. Prints p50/p99 of each and their ratio.
//!
//! The host path pays what every request pays: taking a warm instance from the pool, setting the
//! epoch deadline, the memory limiter, and returning the instance. The bare path is one instance
//! called in a loop with nothing around it. Run with `cargo bench -p pipewright`.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use pipewright::plugins::bindings::v0_1_0::policy::ValidationPolicy;
use pipewright::plugins::limits::PluginState;
use pipewright::plugins::{Limits, PluginHost, PluginId};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Store;

const WARMUP: usize = 2_000;
const SAMPLES: usize = 50_000;

fn main() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let host = PluginHost::new(cache.path(), Limits::default())?;
    host.load_builtins()?;
    let policy = host
        .policy("policy-semver")
        .expect("built-in policy-semver");

    let (candidate, existing, context) = common::policy_check_input("task", "bench");

    // Through the host.
    let through_host = measure(|| {
        let verdict = policy
            .check(&candidate, &existing, &context)
            .expect("no trap");
        assert!(verdict.is_ok());
    });

    // Bare: the same component bytes, same engine, one instance, no pool, limiter or deadline.
    let (_, _, bytes) = pipewright::plugins::builtin::BUILTIN_PLUGINS
        .iter()
        .find(|(n, _, _)| *n == "policy-semver")
        .unwrap();
    let engine = host.engine();
    let component = Component::new(engine, bytes)?;
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    ValidationPolicy::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    let id = std::sync::Arc::new(PluginId {
        name: "policy-semver".into(),
        version: "bare".into(),
    });
    let mut store = Store::new(engine, PluginState::new(id, &Limits::default()));
    store.set_epoch_deadline(u64::MAX / 2);
    let bare_instance = ValidationPolicy::instantiate(&mut store, &component, &linker)?;
    let bare = measure(|| {
        let verdict = bare_instance
            .pipewright_plugin_policy()
            .call_check(&mut store, &candidate, &existing, &context)
            .expect("no trap");
        assert!(verdict.is_ok());
    });

    println!("policy-semver check, 10 existing versions, {SAMPLES} samples each");
    println!(
        "  through the host: p50 {:>8.2?}  p99 {:>8.2?}",
        through_host.0, through_host.1
    );
    println!(
        "  bare wasmtime:    p50 {:>8.2?}  p99 {:>8.2?}",
        bare.0, bare.1
    );
    println!(
        "  ratio host/bare:  p50 {:.2}x      p99 {:.2}x   (target: p50 < 10 µs and ≤ 2x)",
        through_host.0.as_secs_f64() / bare.0.as_secs_f64(),
        through_host.1.as_secs_f64() / bare.1.as_secs_f64()
    );
    Ok(())
}

/// (p50, p99) of `call` after a warm-up.
fn measure(mut call: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..WARMUP {
        call();
    }
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect();
    samples.sort();
    (samples[SAMPLES / 2], samples[SAMPLES * 99 / 100])
}
