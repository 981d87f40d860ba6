//! Builds the built-in plugins with the host, the way Substrate's wasm-builder does, so one
//! `cargo build` yields a `pipewright` binary that carries them: `plugins/<name>` for each name in
//! [`BUILTIN`], and nothing else. The test guests (`tests/guests/`) and the examples
//! (`plugins/examples/`) are not built here: the tests build the ones they load
//! (`tests/e2e/guests.rs`), and README says how to build an example.
//!
//! It runs a nested `cargo build --target wasm32-wasip2 --profile plugin -p <built-ins>` into
//! `plugins/`, a target dir beside the profile dirs of the target dir cargo builds the host in
//! (`target/plugins` by default; it follows `CARGO_TARGET_DIR`, `--target-dir` and cargo's
//! `build-dir`, since it is found from `OUT_DIR`). Of its own, because the outer cargo holds
//! its own build dir locked while this runs; one for every profile, because the plugins are
//! built with the `plugin` profile whatever the host's is.
//!
//! The built-ins are embedded with `include_bytes!` through `OUT_DIR/builtin_plugins.rs` (see
//! `src/plugins/builtin.rs`), with the versions `cargo metadata` gives. The nested target dir is
//! exported as `PIPEWRIGHT_PLUGIN_TARGET_DIR` for the tests and benches, which build their guests
//! there (reusing the SDK and bindings compiled for the built-ins); the library never reads it, so
//! the binary holds no path into the build machine's tree.
//!
//! The `wasm32-wasip2` target must be installed (`rustup target add wasm32-wasip2`, as `.ci/run`
//! does); without it this fails saying so, and installs nothing itself.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Built-in plugins, by crate name, in the order they are loaded.
const BUILTIN: &[&str] = &[
    "policy-semver",
    "policy-lowercase",
    "policy-acumos",
    "jupyter",
    "zeppelin",
    "task",
    "runnable",
];

/// The target the plugins are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    // What the built-ins are made of: their crates, the SDK and WIT they build against, the
    // lock file, and the workspace manifest (the `plugin` profile).
    let watched = BUILTIN
        .iter()
        .map(|krate| format!("plugins/{krate}"))
        .chain(["sdk", "wit", "Cargo.lock", "Cargo.toml"].map(String::from));
    for path in watched {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }

    require_wasm_target();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_dir = plugin_target_dir(&out_dir);
    build_builtins(&workspace, &target_dir);
    println!(
        "cargo:rustc-env=PIPEWRIGHT_PLUGIN_TARGET_DIR={}",
        target_dir.display()
    );

    let artifact_dir = target_dir.join(WASM_TARGET).join("plugin");
    let versions = builtin_versions(&workspace);
    write_builtin_table(&out_dir, &artifact_dir, &versions);
}

/// Fails the build, naming the command to run, when the standard library for [`WASM_TARGET`]
/// is not installed beside the compiler cargo uses.
fn require_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .unwrap_or_else(|e| panic!("running `{rustc} --print target-libdir`: {e}"));
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !output.status.success() || !libdir.is_dir() {
        panic!(
            "the {WASM_TARGET} target, which the built-in plugins are compiled for, is not \
             installed for {rustc}: run `rustup target add {WASM_TARGET}`"
        );
    }
}

/// `plugins/` beside the profile dir this build script runs under. `OUT_DIR` is
/// `<target>/<profile>/build/pipewright-<hash>/out` (or `<target>/<triple>/<profile>/…` when
/// cross-compiling the host), so every profile of one target dir shares the plugins. Should
/// cargo lay its build dir out otherwise, the plugins go under `OUT_DIR`, which is ours alone.
fn plugin_target_dir(out_dir: &Path) -> PathBuf {
    let mut up = out_dir.ancestors().skip(2);
    match (up.next(), up.next().and_then(Path::parent)) {
        (Some(build), Some(target_dir)) if build.ends_with("build") => target_dir.join("plugins"),
        _ => out_dir.join("plugins"),
    }
}

/// The nested cargo: every built-in in one invocation, so they share their dependencies' builds.
fn build_builtins(workspace: &Path, target_dir: &Path) {
    let mut build = cargo(workspace);
    build
        .args(["build", "--target", WASM_TARGET, "--profile", "plugin"])
        .arg("--target-dir")
        .arg(target_dir);
    for krate in BUILTIN {
        build.args(["-p", krate]);
    }
    let status = build
        .status()
        .expect("running cargo for the built-in plugins");
    if !status.success() {
        panic!("building the built-in plugins for {WASM_TARGET} failed (cargo's errors are above)");
    }
}

/// The built-ins' versions, as cargo reads them (`version.workspace = true` included).
fn builtin_versions(workspace: &Path) -> Vec<String> {
    let output = cargo(workspace)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    BUILTIN
        .iter()
        .map(|krate| {
            packages
                .iter()
                .find(|p| p["name"] == *krate)
                .and_then(|p| p["version"].as_str())
                .unwrap_or_else(|| panic!("the workspace has no package {krate}"))
                .to_string()
        })
        .collect()
}

/// Writes `OUT_DIR/builtin_plugins.rs`: `(name, version, bytes)` for each built-in plugin.
fn write_builtin_table(out_dir: &Path, artifact_dir: &Path, versions: &[String]) {
    let mut table = String::from("&[\n");
    for (krate, version) in BUILTIN.iter().zip(versions) {
        let wasm = artifact_dir.join(format!("{}.wasm", krate.replace('-', "_")));
        assert!(wasm.exists(), "missing plugin artifact {}", wasm.display());
        table.push_str(&format!(
            "    ({krate:?}, {version:?}, include_bytes!({:?})),\n",
            wasm.display().to_string()
        ));
    }
    table.push_str("]\n");
    std::fs::write(out_dir.join("builtin_plugins.rs"), table)
        .expect("writing the built-in plugin table");
}

/// A cargo for the workspace, without what the outer build set for the host: its flags and
/// target are not for wasm32, its target dir is locked, and the nested cargo runs its own jobs.
fn cargo(workspace: &Path) -> Command {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.current_dir(workspace);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cargo.env_remove(var);
    }
    cargo
}
