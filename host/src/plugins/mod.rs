//! The plugin host: runs WebAssembly components that implement the worlds of
//! `pipewright:plugin` (`validation-policy` of 0.1.0 and 0.2.0, `type-handler` of 0.1.0 and
//! 0.3.0; each later world includes 0.1.0's and adds one optional export).
//!
//! Life of a plugin: [`PluginHost::load`] hashes the component, compiles it through the
//! [`cache::CompileCache`] (once per digest and engine: Winch's code first when Cranelift's is
//! not cached yet, swapped for Cranelift's in the background, see [`tiers`]), links it against the host's imports
//! (WASI with nothing granted, and `host`) into an `InstancePre`, and probes which world it
//! implements. Each call then takes a warm instance from the plugin's [`pool::InstancePool`]
//! (or instantiates one: no linking, that was paid once), runs under the [`limits`], and hands the
//! instance back. An instance whose call failed is dropped, never reused.
//!
//! What a plugin may reach beyond its sandbox is the operator's [`grants::Grants`] (HTTP base URLs
//! with host-added secret headers, config values), keyed by plugin name and read at each call.
//!
//! Calls are synchronous and may take up to their deadline: async callers run them on
//! `spawn_blocking`. Runnable pipelines ([`runnable`]) are the exception: they run on an engine
//! of their own, called asynchronously.

pub mod bindings;
pub mod builtin;
pub mod cache;
mod clocks;
pub mod grants;
mod imports;
pub mod limits;
pub mod output;
mod pool;
pub mod python;
pub mod runnable;
pub mod tiers;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::HasSelf;
use wasmtime::{Engine, Store};

use bindings::v0_1_0::{policy as policy_world, type_handler as type_world};
pub use cache::CacheStats;
pub use grants::{Grants, HttpGrant, PluginGrants};
use limits::{EpochTicker, PluginState};
pub use limits::{Limits, Preopen};
pub use output::{CapturedOutput, CapturedStream};
use pool::InstancePool;

pub use bindings::v0_2_0::policy::exports::pipewright::plugin0_2_0::about::PolicyAbout;
pub use policy_world::exports::pipewright::plugin::policy::{PolicyContext, Violation};
pub use policy_world::pipewright::plugin::types::{
    Diagnostic, File, LaunchContext, LaunchInfo, Pipeline, PluginError as GuestError, Port,
    Property, Severity, TypeInfo,
};

/// The launch property carrying the absolute path of the pipeline's working copy on this
/// machine; the same key as `pipewright_sdk::type_handler::WORKING_COPY_PROPERTY`, which type
/// handlers read (a test keeps the two equal).
pub const WORKING_COPY_PROPERTY: &str = "working-copy";

/// `name@version` of a loaded plugin.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginId {
    pub name: String,
    pub version: String,
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// The WIT worlds a component may implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    ValidationPolicy,
    TypeHandler,
}

/// The WIT packages a plugin may be built against, as the registry reports them. The host loads
/// them all: 0.2.0's policy world includes 0.1.0's and adds `about`; 0.3.0's type-handler world
/// includes 0.1.0's and adds `surfaces`.
pub const WIT_0_1_0: &str = "pipewright:plugin@0.1.0";
pub const WIT_0_2_0: &str = "pipewright:plugin@0.2.0";
pub const WIT_0_3_0: &str = "pipewright:plugin@0.3.0";

/// The surfaces a type handler may declare in 0.3.0's `surfaces.served`: those that let their
/// callers choose a pipeline type, named as [`crate::registry::Surface`] names them. `/v1`
/// offers every type and is never declared.
pub const DECLARABLE_SURFACES: &[&str] = &["acumos"];

impl World {
    pub fn as_str(self) -> &'static str {
        match self {
            World::ValidationPolicy => "validation-policy",
            World::TypeHandler => "type-handler",
        }
    }

    pub const ACCEPTED: &'static str =
        "pipewright:plugin/validation-policy@0.1.0 or @0.2.0, pipewright:plugin/type-handler@0.1.0, @0.2.0 or @0.3.0";
}

/// Why a plugin could not be loaded or a call into it failed. Every variant names the plugin;
/// call failures name the export too.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin} could not be loaded: {detail}")]
    Load { plugin: PluginId, detail: String },
    #[error("plugin {plugin} implements none of the accepted worlds ({accepted})", accepted = World::ACCEPTED)]
    NoKnownWorld { plugin: PluginId },
    #[error("{plugin} implements pipewright:pipeline/runnable@0.1.0: that is a runnable pipeline, not a plugin (register it with `pipewright pipeline push`)")]
    Runnable { plugin: PluginId },
    #[error("plugin {plugin} handles type `{type_id}`, which the active plugin {holder} handles already")]
    TypeTaken {
        plugin: PluginId,
        type_id: String,
        holder: PluginId,
    },
    #[error("plugin {plugin} declares surface `{surface}`, which a type handler cannot serve (it may declare: {declarable}; `/v1` offers every type)", declarable = DECLARABLE_SURFACES.join(", "))]
    UnknownSurface { plugin: PluginId, surface: String },
    #[error("plugin {plugin} could not be instantiated: {detail}")]
    Instantiate { plugin: PluginId, detail: String },
    #[error("plugin {plugin} export `{export}` ran past its {timeout:?} deadline and was stopped")]
    Timeout {
        plugin: PluginId,
        export: &'static str,
        timeout: Duration,
    },
    #[error("plugin {plugin} export `{export}` exceeded its memory limit ({limit} bytes; asked for {asked})")]
    MemoryLimit {
        plugin: PluginId,
        export: &'static str,
        limit: usize,
        asked: usize,
    },
    #[error("plugin {plugin} export `{export}` trapped: {detail}")]
    Trap {
        plugin: PluginId,
        export: &'static str,
        detail: String,
    },
}

/// A loaded validation policy.
pub struct PolicyPlugin {
    pub id: PluginId,
    pub digest: String,
    /// The WIT package version it was built against (`pipewright:plugin@0.1.0`).
    pub wit: &'static str,
    /// What it says it enforces (0.2.0's `about`); None for a 0.1.0 policy.
    pub about: Option<PolicyAbout>,
    pool: InstancePool<policy_world::ValidationPolicyPre<PluginState>>,
}

/// A loaded pipeline-type handler, with its `describe` answer cached at load.
pub struct TypeHandlerPlugin {
    pub id: PluginId,
    pub digest: String,
    /// The WIT package version it was built against.
    pub wit: &'static str,
    pub info: TypeInfo,
    /// The surfaces besides `/v1` that offer its type (0.3.0's `surfaces.served`, checked
    /// against [`DECLARABLE_SURFACES`], lowercased, each once); empty for a 0.1.0 handler.
    pub surfaces: Vec<String>,
    pool: InstancePool<type_world::TypeHandlerPre<PluginState>>,
}

/// What [`PluginHost::load`] made of a component.
#[derive(Clone)]
pub enum LoadedPlugin {
    Policy(Arc<PolicyPlugin>),
    TypeHandler(Arc<TypeHandlerPlugin>),
}

impl LoadedPlugin {
    /// Serves the next calls from `pre`: the same component compiled again (Cranelift's code
    /// replacing Winch's).
    fn upgrade(&self, pre: wasmtime::component::InstancePre<PluginState>) -> anyhow::Result<()> {
        match self {
            LoadedPlugin::Policy(p) => p.pool.upgrade(policy_world::ValidationPolicyPre::new(pre)?),
            LoadedPlugin::TypeHandler(t) => t.pool.upgrade(type_world::TypeHandlerPre::new(pre)?),
        }
        Ok(())
    }

    pub fn id(&self) -> &PluginId {
        match self {
            LoadedPlugin::Policy(p) => &p.id,
            LoadedPlugin::TypeHandler(t) => &t.id,
        }
    }
    pub fn digest(&self) -> &str {
        match self {
            LoadedPlugin::Policy(p) => &p.digest,
            LoadedPlugin::TypeHandler(t) => &t.digest,
        }
    }
    /// The surfaces besides `/v1` a type handler's type is offered on; none for a policy.
    pub fn surfaces(&self) -> &[String] {
        match self {
            LoadedPlugin::Policy(_) => &[],
            LoadedPlugin::TypeHandler(t) => &t.surfaces,
        }
    }
    /// What a 0.2.0 policy says it enforces.
    pub fn about(&self) -> Option<&PolicyAbout> {
        match self {
            LoadedPlugin::Policy(p) => p.about.as_ref(),
            LoadedPlugin::TypeHandler(_) => None,
        }
    }
    pub fn wit(&self) -> &'static str {
        match self {
            LoadedPlugin::Policy(p) => p.wit,
            LoadedPlugin::TypeHandler(t) => t.wit,
        }
    }
    pub fn world(&self) -> World {
        match self {
            LoadedPlugin::Policy(_) => World::ValidationPolicy,
            LoadedPlugin::TypeHandler(_) => World::TypeHandler,
        }
    }
}

/// A component compiled ahead of time ([`PluginHost::precompile`]).
pub struct Precompiled {
    /// Hex sha256 of the component.
    pub digest: String,
    /// Said when Winch could not compile it and Cranelift did, at once.
    pub note: Option<String>,
}

/// The engines (one per compiler tier, see [`tiers`]) with their linkers and compile caches,
/// and every active plugin.
pub struct PluginHost {
    tiers: tiers::Tiers,
    limits: Limits,
    /// Shared with every plugin's pool; [`PluginHost::set_grants`] swaps it for the next call.
    grants: Arc<RwLock<Grants>>,
    policies: RwLock<BTreeMap<String, Arc<PolicyPlugin>>>,
    /// Keyed by the lowercased type id from `describe`.
    types: RwLock<BTreeMap<String, Arc<TypeHandlerPlugin>>>,
    /// When the host was made (the clock of scale-to-zero).
    started: std::time::Instant,
    /// Runnable pipelines loaded so far, by digest (see [`runnable`]), and what runs them:
    /// engines of their own (async calls, pooled instances) with their linkers and caches.
    runnables: RwLock<std::collections::HashMap<String, Arc<runnable::RunnablePipeline>>>,
    runnable_engine: runnable::RunnableEngine,
    /// The Python runtime, once compiled, and the warm instances of Python pipelines.
    python: python::PythonRuntime,
    /// Set once [`PluginHost::load_builtins`] has loaded every built-in (`/readyz`).
    builtins_loaded: std::sync::atomic::AtomicBool,
    _ticker: EpochTicker,
}

impl PluginHost {
    /// Engines with epoch interruption and compile caches under `cache_dir`. Grants nothing
    /// to any plugin until [`PluginHost::set_grants`].
    pub fn new(cache_dir: &Path, limits: Limits) -> anyhow::Result<Self> {
        let tiers = tiers::Tiers::new(
            cache_dir,
            |config, _| {
                config.wasm_component_model(true).epoch_interruption(true);
            },
            |linker| {
                wasmtime_wasi::p2::add_to_linker_sync(linker)
                    .map_err(anyhow::Error::from)
                    .context("linking WASI")?;
                clocks::add_bounded_sleeps(linker)
                    .map_err(anyhow::Error::from)
                    .context("linking the deadline-bounded WASI sleeps")?;
                policy_world::ValidationPolicy::add_to_linker::<_, HasSelf<_>>(linker, |state| {
                    state
                })
                .map_err(anyhow::Error::from)
                .context("linking the host interface")
            },
        )?;
        let runnable_engine = runnable::RunnableEngine::new(cache_dir)?;
        let ticker = EpochTicker::start(
            tiers
                .engines()
                .into_iter()
                .chain(runnable_engine.tiers.engines())
                .collect(),
        );
        Ok(PluginHost {
            tiers,
            limits,
            grants: Arc::default(),
            policies: RwLock::default(),
            types: RwLock::default(),
            runnables: RwLock::default(),
            runnable_engine,
            python: Default::default(),
            started: std::time::Instant::now(),
            builtins_loaded: Default::default(),
            _ticker: ticker,
        })
    }

    /// Loads the plugins embedded in the binary (see [`builtin`]).
    pub fn load_builtins(&self) -> anyhow::Result<()> {
        for (name, version, bytes) in builtin::BUILTIN_PLUGINS {
            self.load(name, version, bytes)
                .with_context(|| format!("loading built-in plugin {name}@{version}"))?;
        }
        self.builtins_loaded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Whether every built-in plugin has been loaded. A built-in that an admin later deactivates
    /// or replaces by another version still counts: that is a choice, not a fault.
    pub fn builtins_loaded(&self) -> bool {
        self.builtins_loaded
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Replaces what the operator grants plugins (HTTP base URLs with their secret headers,
    /// config values). Takes effect at the next call of every plugin, warm instances included.
    pub fn set_grants(&self, grants: Grants) {
        *self.grants.write().unwrap() = grants;
    }

    /// The engine of optimized (Cranelift) code.
    pub fn engine(&self) -> &Engine {
        &self.tiers.optimized.engine
    }

    /// Waits until Cranelift has compiled everything loaded so far and its code is in place
    /// (plugins and runnable pipelines), for tests and benchmarks.
    pub fn wait_for_optimizing(&self) {
        self.tiers.wait_for_optimizing();
        self.runnable_engine.tiers.wait_for_optimizing();
    }

    /// The optimized tier's cache: what has been compiled by Cranelift, and loaded from disk.
    pub fn cache_stats(&self) -> CacheStats {
        self.tiers.optimized.cache.stats()
    }

    /// The baseline tier's cache: what Winch compiled to be served before Cranelift's code.
    pub fn baseline_cache_stats(&self) -> CacheStats {
        self.tiers.baseline.cache.stats()
    }

    /// The runnable engines' caches (they share the plugin engines' folders, not their
    /// counts): what `level`'s compiler compiled for runnable pipelines, and loaded from disk.
    pub fn runnable_cache_stats(&self, level: tiers::Level) -> CacheStats {
        let tiers = &self.runnable_engine.tiers;
        match level {
            tiers::Level::Optimized => tiers.optimized.cache.stats(),
            tiers::Level::Baseline => tiers.baseline.cache.stats(),
        }
    }

    /// Compiles a component ahead of time into the cache (a no-op when it is there already),
    /// without loading it as a plugin: Winch's code now, Cranelift's in the background.
    pub fn precompile(&self, bytes: &[u8]) -> anyhow::Result<Precompiled> {
        let digest = hex::encode(Sha256::digest(bytes));
        let compiled = self.tiers.compile_fast(&digest, bytes)?;
        if compiled.tier.level == tiers::Level::Baseline {
            self.tiers.optimize_in_background(
                "precompiled component".into(),
                digest.clone(),
                bytes.into(),
                |_, _| Ok(()),
            );
        }
        Ok(Precompiled {
            digest,
            note: compiled.note,
        })
    }

    /// Compiles (or fetches from the cache), links and probes a component, and makes it the
    /// active plugin of its name (a policy) or of its type id (a type handler).
    pub fn load(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<LoadedPlugin, PluginError> {
        let loaded = self.probe(name, version, bytes)?;
        self.activate(&loaded)?;
        Ok(loaded)
    }

    /// Compiles (or fetches from the cache), links and probes a component without making it
    /// active: which world it implements, and for a type handler its `describe`. Refuses a
    /// component that imports what the host does not grant, or implements no known world.
    pub fn probe(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<LoadedPlugin, PluginError> {
        let id = PluginId {
            name: name.to_string(),
            version: version.to_string(),
        };
        let digest = hex::encode(Sha256::digest(bytes));
        let load_error = |e: anyhow::Error| PluginError::Load {
            plugin: id.clone(),
            detail: format!("{e:#}"),
        };
        let compiled = self
            .tiers
            .compile_fast(&digest, bytes)
            .map_err(load_error)?;
        let pre = compiled
            .tier
            .linker
            .instantiate_pre(&compiled.component)
            .map_err(|e| {
                load_error(anyhow::anyhow!(
                    "it imports what the host does not grant: {e:#}"
                ))
            })?;

        let loaded = if let Ok(policy) = policy_world::ValidationPolicyPre::new(pre.clone()) {
            // Newest contract first: a 0.2.0 policy also has 0.1.0's exports.
            let (wit, about) = match bindings::v0_2_0::policy::ValidationPolicyPre::new(pre) {
                Ok(described) => {
                    let pool = InstancePool::new(
                        id.clone(),
                        described,
                        self.limits.clone(),
                        self.grants.clone(),
                    );
                    let about = pool.call(
                        "about.describe",
                        self.limits.call_timeout,
                        |store, guest| guest.pipewright_plugin0_2_0_about().call_describe(store),
                    )?;
                    (WIT_0_2_0, Some(about))
                }
                Err(_) => (WIT_0_1_0, None),
            };
            let pre = policy;
            LoadedPlugin::Policy(Arc::new(PolicyPlugin {
                id: id.clone(),
                digest,
                wit,
                about,
                pool: InstancePool::new(id.clone(), pre, self.limits.clone(), self.grants.clone()),
            }))
        } else if let Ok(handler) = type_world::TypeHandlerPre::new(pre.clone()) {
            // Newest contract first: a 0.3.0 handler also has 0.1.0's exports.
            let (wit, surfaces) = match bindings::v0_3_0::type_handler::TypeHandlerPre::new(pre) {
                Ok(declaring) => {
                    let pool = InstancePool::new(
                        id.clone(),
                        declaring,
                        self.limits.clone(),
                        self.grants.clone(),
                    );
                    let served = pool.call(
                        "surfaces.served",
                        self.limits.call_timeout,
                        |store, guest| guest.pipewright_plugin0_3_0_surfaces().call_served(store),
                    )?;
                    (WIT_0_3_0, declared_surfaces(&id, served)?)
                }
                Err(_) => (WIT_0_1_0, Vec::new()),
            };
            let pool = InstancePool::new(
                id.clone(),
                handler,
                self.limits.clone(),
                self.grants.clone(),
            );
            let info = pool.call("describe", self.limits.call_timeout, |store, guest| {
                guest.pipewright_plugin_pipeline_type().call_describe(store)
            })?;
            LoadedPlugin::TypeHandler(Arc::new(TypeHandlerPlugin {
                id: id.clone(),
                digest,
                wit,
                info,
                surfaces,
                pool,
            }))
        } else if bindings::pipeline_v0_1_0::RunnablePre::new(pre).is_ok() {
            return Err(PluginError::Runnable { plugin: id });
        } else {
            return Err(PluginError::NoKnownWorld { plugin: id });
        };
        tracing::debug!(plugin = %id, digest = loaded.digest(), world = ?loaded.world(), compiler = compiled.tier.level.as_str(), "plugin probed");
        if compiled.tier.level == tiers::Level::Baseline {
            let swapped = loaded.clone();
            self.tiers.optimize_in_background(
                id.to_string(),
                loaded.digest().to_string(),
                bytes.into(),
                move |tier, component| swapped.upgrade(tier.linker.instantiate_pre(&component)?),
            );
        }
        Ok(loaded)
    }

    /// Makes `plugin` the active version of its name (replacing any other version of it).
    /// A type handler cannot take a type id that a plugin of another name handles.
    pub fn activate(&self, plugin: &LoadedPlugin) -> Result<(), PluginError> {
        match plugin {
            LoadedPlugin::Policy(policy) => {
                self.policies
                    .write()
                    .unwrap()
                    .insert(policy.id.name.clone(), policy.clone());
            }
            LoadedPlugin::TypeHandler(handler) => {
                let mut types = self.types.write().unwrap();
                type_free_for(&types, handler)?;
                let key = handler.info.id.to_lowercase();
                // Another version of this plugin may have handled another type id.
                types.retain(|_, t| t.id.name != handler.id.name);
                types.insert(key, handler.clone());
            }
        }
        tracing::info!(plugin = %plugin.id(), digest = plugin.digest(), world = ?plugin.world(), "plugin active");
        Ok(())
    }

    /// Whether `plugin` could be made active now (see [`PluginHost::activate`]).
    pub fn can_activate(&self, plugin: &LoadedPlugin) -> Result<(), PluginError> {
        let LoadedPlugin::TypeHandler(handler) = plugin else {
            return Ok(());
        };
        type_free_for(&self.types.read().unwrap(), handler)
    }

    /// Makes no version of plugin `name` active; what was active, if anything.
    pub fn deactivate(&self, name: &str) -> Option<LoadedPlugin> {
        if let Some(policy) = self.policies.write().unwrap().remove(name) {
            tracing::info!(plugin = %policy.id, "plugin deactivated");
            return Some(LoadedPlugin::Policy(policy));
        }
        let mut types = self.types.write().unwrap();
        let key = types
            .iter()
            .find(|(_, t)| t.id.name == name)
            .map(|(key, _)| key.clone())?;
        let handler = types.remove(&key)?;
        tracing::info!(plugin = %handler.id, "plugin deactivated");
        Some(LoadedPlugin::TypeHandler(handler))
    }

    /// The active version of plugin `name`, of either world.
    pub fn active(&self, name: &str) -> Option<LoadedPlugin> {
        if let Some(policy) = self.policy(name) {
            return Some(LoadedPlugin::Policy(policy));
        }
        self.types
            .read()
            .unwrap()
            .values()
            .find(|t| t.id.name == name)
            .map(|t| LoadedPlugin::TypeHandler(t.clone()))
    }

    /// The active policy called `name`.
    pub fn policy(&self, name: &str) -> Option<Arc<PolicyPlugin>> {
        self.policies.read().unwrap().get(name).cloned()
    }

    /// The handler of pipeline type `type_id` (case-insensitive).
    pub fn type_handler(&self, type_id: &str) -> Option<Arc<TypeHandlerPlugin>> {
        self.types
            .read()
            .unwrap()
            .get(&type_id.to_lowercase())
            .cloned()
    }

    /// Every active type handler, ordered by type id.
    pub fn type_handlers(&self) -> Vec<Arc<TypeHandlerPlugin>> {
        self.types.read().unwrap().values().cloned().collect()
    }

    /// Every active policy, ordered by name.
    pub fn policies(&self) -> Vec<Arc<PolicyPlugin>> {
        self.policies.read().unwrap().values().cloned().collect()
    }
}

impl PolicyPlugin {
    /// `policy.check`: Ok is the (possibly normalized) candidate, Err the violations.
    pub fn check(
        &self,
        candidate: &Pipeline,
        existing_versions: &[String],
        context: &PolicyContext,
    ) -> Result<Result<Pipeline, Vec<Violation>>, PluginError> {
        let timeout = self.pool.limits().call_timeout;
        self.pool.call("check", timeout, |store, guest| {
            guest.pipewright_plugin_policy().call_check(
                store,
                candidate,
                existing_versions,
                context,
            )
        })
    }
}

impl TypeHandlerPlugin {
    /// `pipeline-type.validate`: the diagnostics of a version's content.
    pub fn validate(
        &self,
        pipeline: &Pipeline,
        content: &[File],
    ) -> Result<Vec<Diagnostic>, PluginError> {
        let timeout = self.pool.limits().call_timeout;
        self.pool.call("validate", timeout, |store, guest| {
            guest
                .pipewright_plugin_pipeline_type()
                .call_validate(store, pipeline, content)
        })
    }

    /// `pipeline-type.scaffold`: the files a new pipeline starts with.
    pub fn scaffold(&self, pipeline: &Pipeline) -> Result<Vec<File>, PluginError> {
        let timeout = self.pool.limits().call_timeout;
        self.pool.call("scaffold", timeout, |store, guest| {
            guest
                .pipewright_plugin_pipeline_type()
                .call_scaffold(store, pipeline)
        })
    }

    /// `pipeline-type.launch`, with the longer launch deadline.
    pub fn launch(
        &self,
        context: &LaunchContext,
    ) -> Result<Result<LaunchInfo, GuestError>, PluginError> {
        let timeout = self.pool.limits().launch_timeout;
        self.pool.call("launch", timeout, |store, guest| {
            guest
                .pipewright_plugin_pipeline_type()
                .call_launch(store, context)
        })
    }
}

/// What a 0.3.0 handler's `surfaces.served` declared, lowercased and each once; a name outside
/// [`DECLARABLE_SURFACES`] refuses the plugin, so a typo does not quietly serve `/v1` alone.
fn declared_surfaces(plugin: &PluginId, served: Vec<String>) -> Result<Vec<String>, PluginError> {
    let mut surfaces: Vec<String> = Vec::with_capacity(served.len());
    for surface in served {
        let surface = surface.trim().to_lowercase();
        if !DECLARABLE_SURFACES.contains(&surface.as_str()) {
            return Err(PluginError::UnknownSurface {
                plugin: plugin.clone(),
                surface,
            });
        }
        if !surfaces.contains(&surface) {
            surfaces.push(surface);
        }
    }
    Ok(surfaces)
}

/// Refuses `handler` a type id that a plugin of another name handles in `types`.
fn type_free_for(
    types: &BTreeMap<String, Arc<TypeHandlerPlugin>>,
    handler: &TypeHandlerPlugin,
) -> Result<(), PluginError> {
    match types
        .get(&handler.info.id.to_lowercase())
        .filter(|t| t.id.name != handler.id.name)
    {
        Some(holder) => Err(PluginError::TypeTaken {
            plugin: handler.id.clone(),
            type_id: handler.info.id.clone(),
            holder: holder.id.clone(),
        }),
        None => Ok(()),
    }
}

/// A fresh store for one instance of `plugin`, with its limiter installed.
fn new_store(engine: &Engine, plugin: Arc<PluginId>, limits: &Limits) -> Store<PluginState> {
    let mut store = Store::new(engine, PluginState::new(plugin, limits));
    store.limiter(|state| &mut state.limiter);
    store.epoch_deadline_trap();
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> PluginId {
        PluginId {
            name: "notes".into(),
            version: "1.0.0".into(),
        }
    }

    #[test]
    fn declared_surfaces_are_known_folded_and_each_once() {
        let declared = |names: &[&str]| {
            declared_surfaces(&id(), names.iter().map(|n| n.to_string()).collect())
        };
        assert_eq!(declared(&[]).unwrap(), Vec::<String>::new());
        assert_eq!(declared(&["acumos", " ACUMOS "]).unwrap(), ["acumos"]);
        // A typo, a surface that takes no type, and `/v1` (never declared) are refused, naming
        // what may be declared.
        for wrong in ["acumso", "gbdx", "v1"] {
            let refused = declared(&["acumos", wrong]).unwrap_err().to_string();
            assert!(
                refused.contains(&format!("`{wrong}`")) && refused.contains("may declare: acumos"),
                "{refused}"
            );
        }
    }

    #[test]
    fn declarable_surfaces_are_the_registrys_surfaces() {
        for surface in DECLARABLE_SURFACES {
            assert!(
                crate::registry::Surface::parse(surface).is_some(),
                "{surface}"
            );
        }
    }
}
