//! Builds the WebAssembly plugins with the host, the way Substrate's wasm-builder does, so one
//! `cargo build` yields a `pipewright` binary that carries its built-in plugins.
//!
//! It runs a nested `cargo build --target wasm32-wasip2 --profile plugin` for every guest crate
//! of the workspace (the built-in plugins, and the hostile guests the tests use) into
//! `target/plugins`, a target dir of its own: sharing the outer one would deadlock on its lock.
//! The built-ins are embedded with `include_bytes!` (see `src/plugins/builtin.rs`); the path of
//! the artifact folder is exported as `PIPEWRIGHT_GUEST_DIR` for the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Built-in plugins: (crate, artifact file). Order is the order they are loaded.
const BUILTIN: &[&str] = &[
    "policy-semver",
    "policy-lowercase",
    "policy-acumos",
    "jupyter",
    "zeppelin",
    "task",
    "runnable",
];
/// Guests built only for the tests (and as examples); not embedded.
const TEST_GUESTS: &[&str] = &[
    "hostile-policy",
    "hostile-runnable",
    "release-only",
    "csv-type",
    "described-policy",
    "http-hello",
    "example-hello",
    "example-file-io",
    "example-bundled",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    for watched in ["plugins", "wit", "sdk", "tests/guests", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    ensure_wasm_target();
    let target_dir = workspace.join("target").join("plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&workspace)
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "plugin",
            "--target-dir",
        ])
        .arg(&target_dir);
    for krate in BUILTIN.iter().chain(TEST_GUESTS) {
        build.args(["-p", krate]);
    }
    // The outer build's flags are for the host target, not for wasm32.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        build.env_remove(var);
    }
    let status = build.status().expect("running cargo for the plugins");
    if !status.success() {
        panic!(
            "building the WebAssembly plugins failed (is the target installed? `rustup target add wasm32-wasip2`)"
        );
    }

    let artifact_dir = target_dir.join("wasm32-wasip2").join("plugin");
    println!(
        "cargo:rustc-env=PIPEWRIGHT_GUEST_DIR={}",
        artifact_dir.display()
    );
    write_builtin_table(&workspace, &artifact_dir);
}

/// Installs the `wasm32-wasip2` standard library through rustup when it is missing, so that
/// README's two commands work on a machine that has only the Rust toolchain.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    let installed = sysroot
        .map(|o| {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
                .join("lib/rustlib/wasm32-wasip2")
                .is_dir()
        })
        .unwrap_or(false);
    if !installed {
        println!("cargo:warning=installing the wasm32-wasip2 target with rustup (needed to build the plugins)");
        let _ = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status();
    }
}

/// Writes `OUT_DIR/builtin_plugins.rs`: `(name, version, bytes)` for each built-in plugin.
fn write_builtin_table(workspace: &Path, artifact_dir: &Path) {
    let mut table = String::from("&[\n");
    for krate in BUILTIN {
        let wasm = artifact_dir.join(format!("{}.wasm", krate.replace('-', "_")));
        assert!(wasm.exists(), "missing plugin artifact {}", wasm.display());
        let version = crate_version(
            &workspace.join("plugins").join(krate).join("Cargo.toml"),
            workspace,
        );
        table.push_str(&format!(
            "    ({krate:?}, {version:?}, include_bytes!({:?})),\n",
            wasm.display().to_string()
        ));
    }
    table.push_str("]\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtin_plugins.rs");
    std::fs::write(out, table).expect("writing the built-in plugin table");
}

/// The crate's `version`, following `version.workspace = true` to the workspace manifest.
fn crate_version(manifest: &Path, workspace: &Path) -> String {
    let text = std::fs::read_to_string(manifest).expect("reading a plugin manifest");
    let own = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("version = ")
            .map(|v| v.trim_matches('"').to_string())
    });
    own.unwrap_or_else(|| {
        let ws = std::fs::read_to_string(workspace.join("Cargo.toml"))
            .expect("reading the workspace manifest");
        ws.lines()
            .skip_while(|l| l.trim() != "[workspace.package]")
            .find_map(|l| {
                l.trim()
                    .strip_prefix("version = ")
                    .map(|v| v.trim_matches('"').to_string())
            })
            .expect("workspace.package.version")
    })
}
