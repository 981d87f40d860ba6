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
//!
//! A Mystic pipeline directory (what `pipeline container init` writes: `pipeline_graph`,
//! `pipeline_name`, `runtime.python.requirements`, no `component`) is pushed as it is, to run on
//! the server's Python runtime. Its requirements are installed here with pip (`python3 -m pip
//! install --target`; `PIPEWRIGHT_PYTHON` names another Python) and uploaded under
//! `__pypackages__/`: pure-Python packages only, a package with native code is refused naming
//! it, and `pipeline-ai` is left out (the runtime carries Mystic's authoring API). Its version is
//! `pipeline_name`'s semver tag, else `--version`, else the server's next patch.

use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine as _;
use pipewright_manifest::RunManifest;
use serde_json::{json, Value};

/// Folders never uploaded.
const SKIPPED: &[&str] = &["target", ".git", "__pycache__", ".venv"];

/// Where bundled requirements go (the runtime puts it on `sys.path`).
const BUNDLED_PACKAGES: &str = "__pypackages__";

/// Requirements the runtime satisfies itself.
const PROVIDED: &[&str] = &["pipeline-ai"];
/// Most bytes one push may carry (the server's body limit is 64 MiB, base64 grows by 4/3).
const MAX_PUSH_BYTES: u64 = 40 << 20;

/// Packages and uploads `dir`; prints and returns the pointer. `version` is a Python
/// pipeline's when its `pipeline_name` has no semver tag.
pub fn push(
    dir: &Path,
    server: &str,
    token: &str,
    version: Option<&str>,
) -> anyhow::Result<String> {
    let manifest_path = dir.join("pipeline.yaml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let mut manifest: Value = serde_norway::from_str(&text)
        .with_context(|| format!("parsing {}", manifest_path.display()))?;
    // Read as the server reads it; sent as written (fields it does not name included).
    let read = RunManifest::from_json(&manifest).unwrap_or_default();
    if read.python_graph().is_some() {
        let files = python_pipeline_files(dir, &manifest)?;
        return upload(server, token, manifest, files, version);
    }
    let mut files = collect_files(dir, dir)?;
    let component = read.component.context(
        "pipeline.yaml needs `component` (or, for a Python pipeline, Mystic's `pipeline_graph`)",
    )?;
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
    upload(server, token, manifest, files, None)
}

/// The files a Python pipeline's folder `dir` is pushed as (its own, and its requirements
/// under `__pypackages__/`); `manifest` is its `pipeline.yaml`. `plugin test` runs the same.
pub fn python_pipeline_files(
    dir: &Path,
    manifest: &Value,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = collect_files(dir, dir)?;
    files.retain(|(path, _)| !path.starts_with(&format!("{BUNDLED_PACKAGES}/")));
    files.extend(bundle_requirements(manifest)?);
    Ok(files)
}

/// `POST /v4/pipelines` of the manifest and files; the pointer the server answers.
fn upload(
    server: &str,
    token: &str,
    manifest: Value,
    files: Vec<(String, Vec<u8>)>,
    version: Option<&str>,
) -> anyhow::Result<String> {
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    if total > MAX_PUSH_BYTES {
        bail!("the pipeline's files hold {total} bytes; at most {MAX_PUSH_BYTES} can be pushed");
    }
    let body = json!({
        "version": version,
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

/// A requirement's project name, normalized (PEP 503): `Pipeline_AI>=2` is `pipeline-ai`.
fn project_name(requirement: &str) -> String {
    let end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .unwrap_or(requirement.len());
    requirement[..end]
        .to_ascii_lowercase()
        .replace(['_', '.'], "-")
}

/// The manifest's requirements but those the runtime provides, installed into a scratch folder
/// by pip, as files under `__pypackages__/`. Refuses a package with native code, by name.
fn bundle_requirements(manifest: &Value) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let requirements: Vec<String> = manifest
        .pointer("/runtime/python/requirements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty() && !PROVIDED.contains(&project_name(r).as_str()))
        .map(str::to_string)
        .collect();
    if requirements.is_empty() {
        return Ok(Vec::new());
    }
    let python = std::env::var("PIPEWRIGHT_PYTHON").unwrap_or_else(|_| "python3".into());
    let target = tempfile::tempdir().context("making a folder for the requirements")?;
    let output = std::process::Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-compile", "--no-warn-script-location", "--target"])
        .arg(target.path())
        .args(&requirements)
        .output()
        .with_context(|| {
            format!("running {python} -m pip (install Python 3 with pip, or set PIPEWRIGHT_PYTHON)")
        })?;
    if !output.status.success() {
        bail!(
            "installing the requirements ({}) failed:\n{}",
            requirements.join(", "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if let Some(native) = native_package(target.path())? {
        bail!("{native}; the Python runtime runs pure-Python packages only: remove it from runtime.python.requirements");
    }
    let mut files = collect_files(target.path(), target.path())?;
    // Scripts pip writes for the console are not importable code.
    files.retain(|(path, _)| !path.starts_with("bin/"));
    Ok(files
        .into_iter()
        .map(|(path, bytes)| (format!("{BUNDLED_PACKAGES}/{path}"), bytes))
        .collect())
}

/// The first installed distribution in `dir` built for a platform (a wheel tag other than
/// `*-none-any`, or not pure), as `requirement `NAME` has native code (TAG)`.
fn native_package(dir: &Path) -> anyhow::Result<Option<String>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let folder = entry.file_name().to_string_lossy().into_owned();
        let Some(distribution) = folder.strip_suffix(".dist-info") else {
            continue;
        };
        let name = distribution.split('-').next().unwrap_or(distribution);
        let wheel = std::fs::read_to_string(entry.path().join("WHEEL")).unwrap_or_default();
        let native = wheel.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            let value = value.trim();
            match key.trim() {
                "Root-Is-Purelib" if value.eq_ignore_ascii_case("false") => {
                    Some("not pure Python".to_string())
                }
                "Tag" if !value.ends_with("-none-any") => Some(value.to_string()),
                _ => None,
            }
        });
        if let Some(why) = native {
            return Ok(Some(format!(
                "requirement `{name}` has native code ({why})"
            )));
        }
    }
    Ok(None)
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
