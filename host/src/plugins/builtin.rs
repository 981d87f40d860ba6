//! The plugins that ship inside the `pipewright` binary, built from `plugins/<name>` by
//! `host/build.rs` and embedded at compile time: no flag or file is needed to find them.

/// `(name, version, component bytes)`, in load order.
pub const BUILTIN_PLUGINS: &[(&str, &str, &[u8])] =
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
