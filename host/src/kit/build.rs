//! Building a guest crate into a WebAssembly component: `cargo build --release --target
//! wasm32-wasip2` in the crate's folder. Shared by `pipewright plugin build|test|push` and
//! `pipewright pipeline push` (a pipeline whose `component` is a crate).
//!
//! Cargo's own progress and diagnostics go to our stderr as they happen (a cold build takes a
//! while); its JSON messages on stdout tell which `.wasm` it produced, so the artifact is found
//! wherever the target dir is (`CARGO_TARGET_DIR` included).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde_json::Value;

/// The WebAssembly target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The cargo the binary was started under (`cargo run`, tests), else the one on `PATH`.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Builds the crate in `dir` for [`TARGET`]; returns the path of its component.
pub fn build_component(dir: &Path) -> anyhow::Result<PathBuf> {
    let output = cargo()
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running cargo in {}", dir.display()))?;
    if !output.status.success() {
        bail!(
            "building {} for {TARGET} failed (cargo's errors are above; is the target installed? \
             `rustup target add {TARGET}`)",
            dir.display()
        );
    }
    let mut artifacts: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .filter(|f| f.extension().is_some_and(|e| e == "wasm"))
        .collect();
    // The crate's own artifact comes last (its dependencies are built first).
    artifacts
        .pop()
        .context("cargo built no .wasm artifact (is the crate a cdylib?)")
}
