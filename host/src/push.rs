//! `pipewright pipeline push DIR`: packages a runnable pipeline's directory and registers it on
//! a server (`POST /v4/pipelines`) as `account/name:version`, the account being the token's.
//!
//! The directory holds `pipeline.yaml`:
//!
//! ```yaml
//! name: hello                # lowercase (Mystic's rule)
//! version: 0.1.0             # semver, higher than the last one
//! component: hello.wasm      # the component, or a crate folder that is built for wasm32-wasip2
//! inputs:  [{name: text, type: string}]
//! outputs: [{name: greeting, type: string}]
//! ```
//!
//! Every other file is uploaded too and is readable at `/pipeline` when the pipeline runs.
//! When `component` names a crate, it is built with `cargo build --release --target
//! wasm32-wasip2` (see [`crate::kit::build`]) and its artifact takes the crate's place in the
//! manifest. `component: .` is a crate at the folder's root (what `pipewright plugin new --kind
//! runnable` writes): its sources are then uploaded with the pipeline's other files.

use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine as _;
use pipewright_manifest::RunManifest;
use serde_json::{json, Value};

/// Folders never uploaded.
const SKIPPED: &[&str] = &["target", ".git"];
/// Most bytes one push may carry (the server's body limit is 64 MiB, base64 grows by 4/3).
const MAX_PUSH_BYTES: u64 = 40 << 20;

/// Packages and uploads `dir`; prints and returns the pointer.
pub fn push(dir: &Path, server: &str, token: &str) -> anyhow::Result<String> {
    let manifest_path = dir.join("pipeline.yaml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let mut manifest: Value = serde_norway::from_str(&text)
        .with_context(|| format!("parsing {}", manifest_path.display()))?;
    // Read as the server reads it; sent as written (fields it does not name included).
    let component = RunManifest::from_json(&manifest)
        .unwrap_or_default()
        .component
        .context("pipeline.yaml needs `component`")?;
    let mut files = collect_files(dir, dir)?;
    let component_dir = dir.join(&component);
    if component_dir.join("Cargo.toml").is_file() {
        let artifact = crate::kit::build::build_component(&component_dir)?;
        let name = artifact
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("an artifact has a file name")?;
        let bytes =
            std::fs::read(&artifact).with_context(|| format!("reading {}", artifact.display()))?;
        // The crate's sources are not part of the pipeline: its artifact is.
        files.retain(|(path, _)| !Path::new(path).starts_with(&component));
        manifest["component"] = json!(name);
        files.push((name, bytes));
    } else if !files.iter().any(|(path, _)| *path == component) {
        bail!(
            "the component `{component}` is neither a file nor a crate in {}",
            dir.display()
        );
    }
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    if total > MAX_PUSH_BYTES {
        bail!("the pipeline's files hold {total} bytes; at most {MAX_PUSH_BYTES} can be pushed");
    }
    let body = json!({
        "manifest": manifest,
        "files": files
            .iter()
            .map(|(path, bytes)| json!({
                "path": path,
                "content_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
            }))
            .collect::<Vec<_>>(),
    });
    let url = format!("{}/v4/pipelines", server.trim_end_matches('/'));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut response = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let answer: Value = response
        .body_mut()
        .read_to_string()
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| json!({"detail": "the server's answer is not JSON"}));
    if !status.is_success() {
        bail!(
            "the server refused the pipeline ({status}): {}",
            answer
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("no detail")
        );
    }
    let pointer = answer
        .get("pointer")
        .and_then(Value::as_str)
        .context("the server's answer has no pointer")?
        .to_string();
    Ok(pointer)
}

/// Every file under `dir` (but `target/` and `.git/`), with its `/`-separated path.
fn collect_files(root: &Path, dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            if !SKIPPED.contains(&name.as_str()) {
                files.extend(collect_files(root, &path)?);
            }
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .expect("walked from the root")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        files.push((relative, std::fs::read(&path)?));
    }
    Ok(files)
}
