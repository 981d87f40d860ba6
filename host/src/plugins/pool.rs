//! Warm instances of one plugin version, reused across calls.
//!
//! A warm call costs a mutex pop, an epoch deadline and the call itself: no linking
//! (the `InstancePre` holds it) and no instantiation. An instance is returned to the pool only
//! after a call that succeeded; after a trap, a timeout or a memory refusal it is dropped, since
//! its state can no longer be trusted.
//!
//! The linked code can be swapped under a pool ([`InstancePool::upgrade`], when Cranelift's
//! optimized code replaces Winch's, see [`super::tiers`]): idle instances of the old code are
//! dropped, and one in use when the swap happens is not taken back.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use wasmtime::component::InstancePre;
use wasmtime::{Store, Trap};

use super::bindings::v0_1_0::{policy as policy_world, type_handler as type_world};
use super::grants::Grants;
use super::limits::{Limits, PluginState};
use super::{new_store, PluginError, PluginId};

/// Idle instances kept per plugin version: enough for every core to have one warm.
const MAX_IDLE: usize = 16;

/// A bindgen-generated `…Pre` that can produce typed bindings for a new instance.
pub trait Prepared: Send + Sync + 'static {
    type Bindings: Send + 'static;
    fn instance_pre(&self) -> &InstancePre<PluginState>;
    fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Self::Bindings>;
}

impl Prepared for policy_world::ValidationPolicyPre<PluginState> {
    type Bindings = policy_world::ValidationPolicy;
    fn instance_pre(&self) -> &InstancePre<PluginState> {
        self.instance_pre()
    }
    fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Self::Bindings> {
        self.instantiate(store)
    }
}

impl Prepared for type_world::TypeHandlerPre<PluginState> {
    type Bindings = type_world::TypeHandler;
    fn instance_pre(&self) -> &InstancePre<PluginState> {
        self.instance_pre()
    }
    fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Self::Bindings> {
        self.instantiate(store)
    }
}

impl Prepared for super::bindings::v0_2_0::policy::ValidationPolicyPre<PluginState> {
    type Bindings = super::bindings::v0_2_0::policy::ValidationPolicy;
    fn instance_pre(&self) -> &InstancePre<PluginState> {
        self.instance_pre()
    }
    fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Self::Bindings> {
        self.instantiate(store)
    }
}

impl Prepared for super::bindings::v0_3_0::type_handler::TypeHandlerPre<PluginState> {
    type Bindings = super::bindings::v0_3_0::type_handler::TypeHandler;
    fn instance_pre(&self) -> &InstancePre<PluginState> {
        self.instance_pre()
    }
    fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Self::Bindings> {
        self.instantiate(store)
    }
}

struct Warm<P: Prepared> {
    store: Store<PluginState>,
    bindings: P::Bindings,
    /// The linked code it was made from.
    from: Arc<P>,
}

pub struct InstancePool<P: Prepared> {
    plugin: Arc<PluginId>,
    pre: RwLock<Arc<P>>,
    limits: Limits,
    /// The host's grants (shared with every pool), read at the start of each call.
    grants: Arc<RwLock<Grants>>,
    idle: Mutex<Vec<Warm<P>>>,
}

impl<P: Prepared> InstancePool<P> {
    pub fn new(plugin: PluginId, pre: P, limits: Limits, grants: Arc<RwLock<Grants>>) -> Self {
        InstancePool {
            plugin: Arc::new(plugin),
            pre: RwLock::new(Arc::new(pre)),
            limits,
            grants,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Serves the next calls from `pre` (the same component, compiled again): the idle
    /// instances of the code it replaces are dropped.
    pub fn upgrade(&self, pre: P) {
        *self.pre.write().unwrap() = Arc::new(pre);
        self.idle.lock().unwrap().clear();
    }

    /// Runs `call` on a warm instance under a deadline of `timeout`.
    pub fn call<R>(
        &self,
        export: &'static str,
        timeout: Duration,
        call: impl FnOnce(&mut Store<PluginState>, &P::Bindings) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let warm = self.idle.lock().unwrap().pop();
        let mut warm = match warm {
            Some(warm) => warm,
            None => self.instantiate()?,
        };
        warm.store.set_epoch_deadline(Limits::ticks(timeout));
        let grants = self.grants.read().unwrap().for_plugin(&self.plugin.name);
        warm.store.data_mut().begin_call(grants, timeout);
        let outcome = call(&mut warm.store, &warm.bindings);
        metrics::counter!("pipewright_plugin_calls_total", "plugin" => self.plugin.name.clone(), "export" => export, "outcome" => if outcome.is_ok() { "ok" } else { "error" }).increment(1);
        match outcome {
            Ok(value) => {
                let current = Arc::ptr_eq(&warm.from, &self.pre.read().unwrap());
                let mut idle = self.idle.lock().unwrap();
                if current && idle.len() < MAX_IDLE {
                    idle.push(warm);
                }
                Ok(value)
            }
            Err(error) => Err(self.classify(export, timeout, error, warm.store.data())),
        }
    }

    fn instantiate(&self) -> Result<Warm<P>, PluginError> {
        let from = self.pre.read().unwrap().clone();
        let mut store = new_store(
            from.instance_pre().engine(),
            self.plugin.clone(),
            &self.limits,
        );
        store.set_epoch_deadline(Limits::ticks(self.limits.call_timeout));
        match from.instantiate(&mut store) {
            Ok(bindings) => Ok(Warm {
                store,
                bindings,
                from,
            }),
            Err(error) => Err(PluginError::Instantiate {
                plugin: (*self.plugin).clone(),
                detail: format!("{error:#}"),
            }),
        }
    }

    /// Turns a failed call into the error that says what happened.
    fn classify(
        &self,
        export: &'static str,
        timeout: Duration,
        error: wasmtime::Error,
        state: &PluginState,
    ) -> PluginError {
        classify(&self.plugin, &self.limits, export, timeout, error, state)
    }
}

/// Turns a failed call of `plugin`'s `export` into the error that says what happened: the
/// memory cap, the deadline, or a trap (with the guest's last words on stderr).
pub(super) fn classify(
    plugin: &PluginId,
    limits: &Limits,
    export: &'static str,
    timeout: Duration,
    error: wasmtime::Error,
    state: &PluginState,
) -> PluginError {
    let plugin = plugin.clone();
    if let Some(asked) = state.limiter.refused_growth {
        return PluginError::MemoryLimit {
            plugin,
            export,
            limit: limits.memory_bytes,
            asked,
        };
    }
    if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return PluginError::Timeout {
            plugin,
            export,
            timeout,
        };
    }
    let trap = error
        .downcast_ref::<Trap>()
        .map(|t| t.to_string())
        .unwrap_or_else(|| format!("{error:#}"));
    let detail = match state.stderr_explanation() {
        Some(line) => format!("{trap} ({line})"),
        None => trap,
    };
    tracing::warn!(%plugin, export, error = %detail, "plugin call failed");
    PluginError::Trap {
        plugin,
        export,
        detail,
    }
}
