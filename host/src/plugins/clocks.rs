//! WASI sleeps that end by the call's deadline.
//!
//! Guests sleep while they poll a service (`launch` waits for a notebook server), through
//! `wasi:clocks/monotonic-clock` `subscribe-duration` / `subscribe-instant` and a blocking
//! `poll`. The epoch deadline interrupts only running WebAssembly, not a host call, so a guest
//! asking to sleep for a year would hold its thread for a year. These two functions shadow
//! wasmtime-wasi's: the same pollables, but a sleep never lasts past the current call's deadline
//! ([`super::limits::PluginState::deadline`]); when it ends, the guest runs again and the epoch
//! check stops it. A zero-length sleep still yields once, as wasmtime-wasi's does (a guest busy
//! polling must not starve the runtime).
//!
//! Instants are read from the store's own monotonic clock ([`super::limits::CallClock`]), so `subscribe-instant`
//! and `now` agree.

use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};

use super::limits::PluginState;

/// The interface the shadowed functions live in: the version wasmtime-wasi 48 defines (guests
/// importing any 0.2.x resolve to it).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// How long a sleep asked for at `now` may last: at most until `deadline`.
pub fn bounded(requested: Duration, now: Instant, deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(deadline) => requested.min(deadline.saturating_duration_since(now)),
        None => requested,
    }
}

/// A pollable ready after a duration (or, for zero, after one yield).
struct Sleep {
    until: Option<tokio::time::Instant>,
    yielded: bool,
}

#[async_trait::async_trait]
impl Pollable for Sleep {
    async fn ready(&mut self) {
        match self.until {
            Some(until) => tokio::time::sleep_until(until).await,
            None if self.yielded => {}
            None => {
                self.yielded = true;
                tokio::task::yield_now().await
            }
        }
    }
}

fn sleep_pollable(
    state: &mut PluginState,
    requested: Duration,
) -> wasmtime::Result<Resource<DynPollable>> {
    let duration = bounded(requested, Instant::now(), state.deadline);
    let sleep = Sleep {
        until: (!duration.is_zero()).then(|| tokio::time::Instant::now() + duration),
        yielded: false,
    };
    let resource = state.table.push(sleep)?;
    subscribe(&mut state.table, resource)
}

/// Shadows wasmtime-wasi's `subscribe-duration` and `subscribe-instant` with bounded ones.
/// Call after `wasmtime_wasi::p2::add_to_linker_sync`.
pub fn add_bounded_sleeps(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, PluginState>, (nanos,): (u64,)| {
            let pollable = sleep_pollable(store.data_mut(), Duration::from_nanos(nanos))?;
            Ok((pollable,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, PluginState>, (when,): (u64,)| {
            let state = store.data_mut();
            let now = state.clock.nanos_at(Instant::now());
            let requested = Duration::from_nanos(when.saturating_sub(now));
            let pollable = sleep_pollable(state, requested)?;
            Ok((pollable,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_end_by_the_deadline() {
        let now = Instant::now();
        let year = Duration::from_secs(365 * 24 * 3600);
        assert_eq!(
            bounded(year, now, Some(now + Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            bounded(
                Duration::from_millis(5),
                now,
                Some(now + Duration::from_secs(2))
            ),
            Duration::from_millis(5)
        );
        assert_eq!(
            bounded(year, now, Some(now - Duration::from_secs(1))),
            Duration::ZERO
        );
        assert_eq!(bounded(year, now, None), year);
    }
}
