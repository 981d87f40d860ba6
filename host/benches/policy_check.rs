//! A warm `policy-semver` check through the plugin host, beside a bare wasmtime call of the same
//! export on the same engine, in the same run. Prints p50/p99 of each and their ratio.
//!
//! The host path pays what every request pays: taking a warm instance from the pool, setting the
//! epoch deadline, the memory limiter, and returning the instance. The bare path is one instance
//! called in a loop with nothing around it. The sides take turns in rounds (in alternating
//! order), so a neighbour's burst falls on both; the ratio is given per round (median and
//! spread) with the load average. Run with `cargo bench -p pipewright --bench policy_check`.

#[path = "common/mod.rs"]
mod common;

use common::{ratio, Percentiles, RoundRatios};

use std::time::{Duration, Instant};

use pipewright::plugins::bindings::v0_1_0::policy::ValidationPolicy;
use pipewright::plugins::limits::PluginState;
use pipewright::plugins::{Limits, PluginHost, PluginId};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Store;

const WARMUP: usize = 2_000;
/// Samples of each side in a round, and rounds.
const PER_ROUND: usize = 2_500;
const ROUNDS: usize = 20;
const SAMPLES: usize = PER_ROUND * ROUNDS;

fn main() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let host = PluginHost::new(cache.path(), Limits::default())?;
    host.load_builtins()?;
    let policy = host
        .policy("policy-semver")
        .expect("built-in policy-semver");

    let (candidate, existing, context) = common::policy_check_input("task", "bench");

    let mut through_host = || {
        let verdict = policy
            .check(&candidate, &existing, &context)
            .expect("no trap");
        assert!(verdict.is_ok());
    };

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
    let mut bare = || {
        let verdict = bare_instance
            .pipewright_plugin_policy()
            .call_check(&mut store, &candidate, &existing, &context)
            .expect("no trap");
        assert!(verdict.is_ok());
    };

    for _ in 0..WARMUP {
        through_host();
        bare();
    }
    let (mut host_samples, mut bare_samples) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            host_samples.extend(measure(&mut through_host));
            bare_samples.extend(measure(&mut bare));
        } else {
            bare_samples.extend(measure(&mut bare));
            host_samples.extend(measure(&mut through_host));
        }
    }
    let per_round = RoundRatios::of_blocks(&host_samples, &bare_samples, PER_ROUND);
    let (through_host, bare) = (Percentiles::of(host_samples), Percentiles::of(bare_samples));

    println!("policy-semver check, 10 existing versions, {SAMPLES} samples each");
    println!("  through the host: {through_host}");
    println!("  bare wasmtime:    {bare}");
    println!(
        "  ratio host/bare:  p50 of all {:.2}x, p99 of all {:.2}x; p50 per round: {per_round}   (target: p50 < 10 µs and <= 2x)",
        ratio(through_host.p50, bare.p50),
        ratio(through_host.p99, bare.p99),
    );
    println!("  {}", common::load_average());
    Ok(())
}

/// One round of `call`: `PER_ROUND` timed samples.
fn measure(call: &mut impl FnMut()) -> Vec<Duration> {
    (0..PER_ROUND)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect()
}
