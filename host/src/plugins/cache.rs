//! Compile cache: each component is compiled once per (digest, engine) and the native artifact is
//! kept under `<cache-dir>/engine-<hash>/<digest>.cwasm`, so a restart pays a file map, not a compile.
//!
//! The directory is trusted: `Component::deserialize_file` runs native code from it, so only this
//! process writes it (atomically, via a temporary file synced before its rename). An artifact that no longer
//! loads (another wasmtime, another CPU) is recompiled and replaced.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use wasmtime::component::Component;
use wasmtime::Engine;

/// How one cache has been used since start; tests read it. `/metrics` counts every cache of the
/// process instead (`pipewright_plugin_compiles_total`, `pipewright_plugin_cache_loads_total`,
/// incremented where the work happens, so they only ever increase).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub compiled: u64,
    pub loaded_from_cache: u64,
}

pub struct CompileCache {
    dir: PathBuf,
    compiled: AtomicU64,
    loaded: AtomicU64,
}

impl CompileCache {
    /// A cache under `root`, in a folder specific to this engine's compilation settings.
    pub fn open(root: &Path, engine: &Engine) -> anyhow::Result<Self> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = root.join(format!("engine-{:016x}", hasher.finish()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating compile cache {}", dir.display()))?;
        Ok(CompileCache {
            dir,
            compiled: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
        })
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            loaded_from_cache: self.loaded.load(Ordering::Relaxed),
        }
    }

    /// The compiled component whose sha256 is `digest` (hex), when this cache holds it.
    pub fn cached(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: the cache directory is written only by `store` below, from our own compiler.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                self.loaded.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("pipewright_plugin_cache_loads_total").increment(1);
                Some(component)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cached artifact unusable; recompiling");
                None
            }
        }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.cwasm"))
    }

    /// The compiled component for `bytes`, whose sha256 is `digest` (hex).
    pub fn component(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: &[u8],
    ) -> anyhow::Result<Component> {
        if let Some(component) = self.cached(engine, digest) {
            return Ok(component);
        }
        let path = self.path(digest);
        let artifact = engine
            .precompile_component(bytes)
            .map_err(anyhow::Error::from)
            .context("compiling the component")?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("pipewright_plugin_compiles_total").increment(1);
        self.store(&path, &artifact)?;
        // SAFETY: `artifact` was produced by this engine a moment ago.
        unsafe { Component::deserialize(engine, &artifact) }
            .map_err(anyhow::Error::from)
            .context("loading the compiled component")
    }

    fn store(&self, path: &Path, artifact: &[u8]) -> anyhow::Result<()> {
        use std::io::Write as _;
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        // Synced before it takes its name: after a power loss the name holds a whole artifact
        // or nothing (then it is compiled again), never a torn one whose header still passes
        // `deserialize_file`'s checks while its code is zeros.
        let write = || {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(artifact)?;
            file.sync_all()
        };
        let stored = write()
            .with_context(|| format!("writing {}", tmp.display()))
            .and_then(|()| {
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("renaming into {}", path.display()))
            });
        if stored.is_err() {
            // A full disk, say: leave no half-written file behind.
            let _ = std::fs::remove_file(&tmp);
        }
        stored
    }
}
