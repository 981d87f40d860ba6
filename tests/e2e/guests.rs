//! The components the tests load besides the built-ins: the guests of `tests/guests/` (hostile,
//! uploaded at run time, a `wasi:http` proxy) and the examples of `plugins/examples/`.
//!
//! `host/build.rs` builds only the built-ins; these are built here, on first use, once per test
//! process (a `OnceLock`): one `cargo build --target wasm32-wasip2 --profile plugin -p …` of them
//! all, into the target dir the built-ins were built in (`PIPEWRIGHT_PLUGIN_TARGET_DIR`, which
//! host/build.rs exports), so the SDK and the bindings compiled for the built-ins are reused and a
//! build from nothing takes seconds. That target dir is not the one the outer `cargo test` holds
//! locked; cargo's own lock on it orders two processes building at once (the e2e tests and a
//! bench), and the second finds everything fresh.
//!
//! The `runs` bench includes this file too (`#[path]`), for `example_hello.wasm` and
//! `http_hello.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every crate built here; an artifact is `<crate name with `_`>.wasm`.
const GUESTS: &[&str] = &[
    "hostile-policy",
    "hostile-runnable",
    "tail-call-runnable",
    "release-only",
    "csv-type",
    "described-policy",
    "workbench-type",
    "http-hello",
    "example-hello",
    "example-file-io",
    "example-bundled",
];

/// The nested target dir host/build.rs built the built-ins in.
const TARGET_DIR: &str = env!("PIPEWRIGHT_PLUGIN_TARGET_DIR");

/// The path of a built guest, `file` as `hostile_policy.wasm`; builds them all on first use.
pub fn path(file: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build).join(file)
}

/// The bytes of a built guest, `file` as `release_only.wasm`.
#[allow(dead_code)] // the bench reads paths only
pub fn read(file: &str) -> Vec<u8> {
    let path = path(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `cargo build --quiet --target wasm32-wasip2` into [`TARGET_DIR`], without the host's flags
/// and target dir from the environment (they are the host's, not wasm32's).
pub fn wasm32_build() -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(["build", "--quiet", "--target", "wasm32-wasip2"])
        .args(["--target-dir", TARGET_DIR]);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cargo.env_remove(var);
    }
    cargo
}

/// Builds every guest; returns the folder of their artifacts.
fn build() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits in the workspace");
    eprintln!("building the test guests for wasm32-wasip2 (once per test process)");
    let mut cargo = wasm32_build();
    cargo.current_dir(workspace).args(["--profile", "plugin"]);
    for krate in GUESTS {
        cargo.args(["-p", krate]);
    }
    let status = cargo
        .status()
        .expect("running cargo to build the test guests");
    assert!(
        status.success(),
        "building the test guests for wasm32-wasip2 failed (cargo's errors are above)"
    );
    Path::new(TARGET_DIR).join("wasm32-wasip2").join("plugin")
}

/// `component` with a custom section appended (a component may end with one; it changes
/// nothing but the digest): bytes of their own, for which no compile cache has code.
#[allow(dead_code)] // not every includer makes new bytes
pub fn with_custom_section(component: &[u8], tag: &str) -> Vec<u8> {
    fn uleb(out: &mut Vec<u8>, mut value: usize) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                return out.push(byte);
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"pipewright-test";
    let mut payload = Vec::new();
    uleb(&mut payload, name.len());
    payload.extend(name);
    payload.extend(tag.as_bytes());
    let mut out = component.to_vec();
    out.push(0);
    uleb(&mut out, payload.len());
    out.extend(payload);
    out
}
