//! The plugins that ship inside the `pipewright` binary, built from `plugins/<name>` by
//! `host/build.rs` and embedded at compile time: no flag or file is needed to find them.

/// `(name, version, component bytes)`, in load order.
pub const BUILTIN_PLUGINS: &[(&str, &str, &[u8])] =
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// Where `host/build.rs` left every guest it built for `wasm32-wasip2`, including the hostile
/// guests the tests load (`hostile_policy.wasm`). Meaningful only on the machine that built it.
pub const GUEST_ARTIFACT_DIR: &str = env!("PIPEWRIGHT_GUEST_DIR");
