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
//! The Python runtime (`plugins/python-runtime`, see its `app.py`) is built too, with
//! componentize-py 0.25.1 (`PIPEWRIGHT_COMPONENTIZE_PY`, else `componentize-py` on PATH), into
//! `<target-dir>/plugins/python-runtime/python_runtime.wasm` beside the built-ins, and embedded like them
//! (`OUT_DIR/python_runtime.rs`). A sha256 of its sources, its WIT and componentize-py's version
//! is kept beside it: an unchanged runtime is not rebuilt (a build takes 5 to 15 s). Without
//! componentize-py the host builds all the same, carrying no runtime: the server then refuses a
//! Python push saying what to install (`pip install componentize-py==0.25.1`).
//!
//! The `wasm32-wasip2` target must be installed (`rustup target add wasm32-wasip2`, as `.ci/run`
//! does); without it this fails saying so, and installs nothing itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

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
        .chain(["sdk", "wit", "Cargo.lock", "Cargo.toml", PYTHON_RUNTIME].map(String::from));
    for path in watched {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    // `sqlx::migrate!` reads these when the crate compiles: a new or renamed migration alone
    // must recompile it too.
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("host/migrations").display()
    );

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

    let runtime = build_python_runtime(&workspace, &target_dir);
    let table = match runtime {
        Some((wasm, digest)) => format!(
            "Some(({digest:?}, include_bytes!({:?})))\n",
            wasm.display().to_string()
        ),
        None => "None\n".to_string(),
    };
    std::fs::write(out_dir.join("python_runtime.rs"), table)
        .expect("writing the Python runtime's table");
}

/// Where the Python runtime's sources are, in the workspace.
const PYTHON_RUNTIME: &str = "plugins/python-runtime";
/// The componentize-py it is built with (the component's Python comes with it).
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// Builds the Python runtime into `<target_dir>/python-runtime/` unless an artifact of the
/// same sources is there; its path and hex sha256, or None (with a cargo warning) without
/// componentize-py.
fn build_python_runtime(workspace: &Path, target_dir: &Path) -> Option<(PathBuf, String)> {
    println!("cargo:rerun-if-env-changed=PIPEWRIGHT_COMPONENTIZE_PY");
    let sources = workspace.join(PYTHON_RUNTIME);
    let wit = workspace.join("wit/pipeline@0.1.0");
    let Some(componentize) = find_componentize_py() else {
        println!("cargo:rerun-if-env-changed=PATH");
        println!(
            "cargo:warning=componentize-py not found (PIPEWRIGHT_COMPONENTIZE_PY or PATH): \
             built without the Python runtime; pip install componentize-py=={COMPONENTIZE_PY_VERSION}"
        );
        return None;
    };
    println!("cargo:rerun-if-changed={}", componentize.display());
    let version = Command::new(&componentize)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !version.ends_with(COMPONENTIZE_PY_VERSION) {
        panic!(
            "{} is `{version}`; the Python runtime is built with componentize-py \
             {COMPONENTIZE_PY_VERSION} (pip install componentize-py=={COMPONENTIZE_PY_VERSION})",
            componentize.display()
        );
    }
    let mut hasher = Sha256::new();
    hasher.update(version.as_bytes());
    for root in [&sources, &wit] {
        for file in python_sources(root) {
            hasher.update(
                file.strip_prefix(workspace)
                    .unwrap()
                    .to_string_lossy()
                    .as_bytes(),
            );
            hasher.update(std::fs::read(&file).expect("reading a Python runtime source"));
        }
    }
    let digest = hex(&hasher.finalize());
    let out = target_dir.join("python-runtime");
    let wasm = out.join("python_runtime.wasm");
    let stamp = out.join("python_runtime.sha256");
    // The stamp: the sources' digest, then the artifact's.
    let stamped = std::fs::read_to_string(&stamp).unwrap_or_default();
    if let Some((sources_digest, artifact_digest)) = stamped.split_once('\n') {
        if wasm.exists() && sources_digest == digest {
            return Some((wasm, artifact_digest.to_string()));
        }
    }
    std::fs::create_dir_all(&out).expect("making the Python runtime's folder");
    let partial = out.join("python_runtime.wasm.partial");
    let output = Command::new(&componentize)
        .current_dir(&out)
        // Its own site-packages must not be bundled: only the runtime's folder is.
        .env_remove("VIRTUAL_ENV")
        .arg("-d")
        .arg(&wit)
        .args(["-w", "runnable", "componentize", "app", "-p"])
        .arg(&sources)
        .arg("-o")
        .arg(&partial)
        .output()
        .expect("running componentize-py");
    if !output.status.success() {
        panic!(
            "componentize-py could not build the Python runtime:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let artifact_digest = hex(&Sha256::digest(
        std::fs::read(&partial).expect("reading the built Python runtime"),
    ));
    std::fs::rename(&partial, &wasm).expect("placing the Python runtime");
    std::fs::write(&stamp, format!("{digest}\n{artifact_digest}"))
        .expect("writing the Python runtime's stamp");
    Some((wasm, artifact_digest))
}

/// `PIPEWRIGHT_COMPONENTIZE_PY`, else `componentize-py` on PATH.
fn find_componentize_py() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PIPEWRIGHT_COMPONENTIZE_PY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("componentize-py"))
        .find(|candidate| candidate.is_file())
}

/// The runtime's source files (what its build reads), sorted; caches and tests left out.
fn python_sources(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("reading the Python runtime's sources") {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "__pycache__" && name != "tests" {
                    dirs.push(path);
                }
            } else if name.ends_with(".py") || name.ends_with(".wit") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
