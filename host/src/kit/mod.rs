//! The plugin author's kit, `pipewright plugin …`: everything between an idea and a live plugin
//! on a server, without rebuilding the host (the walk-through is `sdk/README.md`).
//!
//! - [`templates`]: `plugin new` writes a crate from `sdk/templates/<kind>/`, or a Python
//!   project from `sdk/templates/python/<kind>/` (`--lang python`);
//! - [`build`]: `plugin build` (and `pipeline push`) build a crate into a component;
//! - [`python`]: a Python project's `plugin.yaml`, its build with componentize-py, its unit tests;
//! - [`harness`]: `plugin test` runs the unit tests, then the component in-process on fixtures;
//! - [`client`]: `plugin push|list|show|activate|deactivate|rollback` against `/v1/plugins`.
//!
//! A plugin crate is named and versioned by its `Cargo.toml` (`name@version` on the server), a
//! Python plugin by its `plugin.yaml`; a runnable pipeline's folder also holds `pipeline.yaml`,
//! whose name and version it is pushed as. A Python pipeline is a Mystic pipeline folder
//! (`pipeline.yaml` naming its `pipeline_graph`): nothing to build, its fixtures run on the
//! Python runtime built into pipewright. Every command after `new` works the same on all.

pub mod build;
pub mod client;
pub mod harness;
pub mod python;
pub mod templates;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::cli::{PluginCommand, ServerConnection};
use client::PluginRegistryClient;

/// Runs one `pipewright plugin …` command. Blocking (cargo, HTTP).
pub fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New(args) => {
            let dir = templates::write_project(
                args.kind,
                args.lang,
                &args.name,
                &args.dir,
                args.sdk.as_deref(),
            )?;
            println!("{}", dir.display());
            eprintln!(
                "wrote {}; next: cd {} && pipewright plugin test",
                dir.display(),
                dir.display()
            );
            Ok(())
        }
        PluginCommand::Build(args) => {
            let artifact = PluginProject::read(&args.dir)?.build()?;
            println!("{}", artifact.display());
            Ok(())
        }
        PluginCommand::Test(args) => harness::test_crate(&PluginProject::read(&args.dir)?),
        PluginCommand::Push(args) => push(&args.dir, !args.no_activate, &args.connection),
        PluginCommand::List(connection) => {
            let plugins = client(&connection).list()?;
            print_list(&plugins);
            Ok(())
        }
        PluginCommand::Show(args) => {
            let (name, version) = match args.plugin.split_once('@') {
                Some((name, version)) => (name, Some(version)),
                None => (args.plugin.as_str(), None),
            };
            let shown = client(&args.connection).show(name, version)?;
            println!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(())
        }
        PluginCommand::Activate(args) => {
            let Some((name, version)) = args.plugin.split_once('@') else {
                bail!("activate takes NAME@VERSION, not `{}`", args.plugin);
            };
            let active = client(&args.connection).activate(name, version)?;
            println!("{} is active", version_label(&active));
            Ok(())
        }
        PluginCommand::Deactivate(args) => {
            client(&args.connection).deactivate(&args.name)?;
            println!("{} has no active version", args.name);
            Ok(())
        }
        PluginCommand::Rollback(args) => {
            let active = client(&args.connection).rollback(&args.name)?;
            println!("{} is active again", version_label(&active));
            Ok(())
        }
    }
}

/// A plugin project on disk, Rust crate or Python project: its folder, name, version and how it
/// is built.
pub struct PluginProject {
    pub dir: PathBuf,
    pub name: String,
    pub version: String,
    /// The folder holds a runnable pipeline (`pipeline.yaml`), not a plugin.
    pub runnable: bool,
    pub language: Language,
}

/// What a plugin is written in, and what building it needs.
pub enum Language {
    /// A crate, built by cargo into `target_dir`.
    Rust { target_dir: PathBuf },
    /// A Python project, built by componentize-py.
    Python(python::PythonProject),
    /// A Python pipeline (a Mystic pipeline folder): its files are the version, run by the
    /// Python runtime; nothing is compiled.
    PythonPipeline,
}

impl PluginProject {
    /// Reads the project in `dir`: a Python project by its `plugin.yaml`, else a crate through
    /// `cargo metadata` (which knows the target dir, whatever `CARGO_TARGET_DIR` or config says);
    /// a runnable's name and version from `pipeline.yaml`.
    pub fn read(dir: &Path) -> anyhow::Result<PluginProject> {
        if let Some(project) = python::PythonProject::read(dir)? {
            return Ok(PluginProject {
                dir: dir.to_path_buf(),
                name: project.name.clone(),
                version: project.version.clone(),
                runnable: false,
                language: Language::Python(project),
            });
        }
        if let Some(project) = read_python_pipeline(dir)? {
            return Ok(project);
        }
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            bail!(
                "{} is not a plugin project (no Cargo.toml, no {}); `pipewright plugin new` makes one",
                dir.display(),
                python::MANIFEST
            );
        }
        let output = build::cargo()
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--manifest-path",
            ])
            .arg(&manifest)
            .output()
            .with_context(|| format!("running cargo metadata for {}", manifest.display()))?;
        if !output.status.success() {
            bail!(
                "cargo cannot read {}:\n{}",
                manifest.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let metadata: Value =
            serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
        let canonical_manifest = manifest.canonicalize()?;
        let package = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["manifest_path"]
                    .as_str()
                    .and_then(|m| Path::new(m).canonicalize().ok())
                    .is_some_and(|m| m == canonical_manifest)
            })
            .with_context(|| format!("{} declares no package", manifest.display()))?;
        let text = |value: &Value, what: &str| {
            value
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("cargo metadata gives no {what}"))
        };
        let target_dir = PathBuf::from(text(&metadata["target_directory"], "target dir")?);
        let mut project = PluginProject {
            dir: dir.to_path_buf(),
            name: text(&package["name"], "package name")?,
            version: text(&package["version"], "package version")?,
            runnable: false,
            language: Language::Rust { target_dir },
        };
        let pipeline_manifest = dir.join("pipeline.yaml");
        if pipeline_manifest.is_file() {
            let text = std::fs::read_to_string(&pipeline_manifest)
                .with_context(|| format!("reading {}", pipeline_manifest.display()))?;
            let pipeline: Value = serde_norway::from_str(&text)
                .with_context(|| format!("parsing {}", pipeline_manifest.display()))?;
            let pipeline =
                pipewright_manifest::RunManifest::from_json(&pipeline).unwrap_or_default();
            let field = |key: &str, value: Option<String>| {
                value.with_context(|| format!("{} needs `{key}`", pipeline_manifest.display()))
            };
            project.name = field("name", pipeline.name)?;
            project.version = field("version", pipeline.version)?;
            project.runnable = true;
        }
        Ok(project)
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Builds the component; returns its path. A Python pipeline has none: it is checked to
    /// load on the Python runtime, and its folder is returned.
    pub fn build(&self) -> anyhow::Result<PathBuf> {
        match &self.language {
            Language::Rust { .. } => build::build_component(&self.dir),
            Language::Python(project) => project.build(&self.dir),
            Language::PythonPipeline => {
                harness::PythonPipelineSubject::load(self)?;
                Ok(self.dir.clone())
            }
        }
    }

    /// Runs the project's own unit tests (`cargo test`, `python3 -m unittest`).
    pub fn unit_tests(&self) -> anyhow::Result<()> {
        match &self.language {
            Language::Rust { .. } => {
                let status = build::cargo()
                    .current_dir(&self.dir)
                    .arg("test")
                    .status()
                    .with_context(|| format!("running cargo test in {}", self.dir.display()))?;
                if !status.success() {
                    bail!("{}: the unit tests failed (cargo test, above)", self.id());
                }
                Ok(())
            }
            Language::Python(_) => python::unit_tests(&self.dir, &self.id()),
            Language::PythonPipeline => {
                eprintln!("{}: a Python pipeline's cases are its fixtures", self.id());
                Ok(())
            }
        }
    }

    /// A folder of the build's own, for the harness's compile cache.
    pub fn scratch_dir(&self) -> PathBuf {
        match &self.language {
            Language::Rust { target_dir } => target_dir.clone(),
            Language::Python(project) => project.build_dir(&self.dir),
            // Not in the folder: a push uploads every file of it. The runtime's compiled code
            // is the same for every pipeline, so one cache serves them all.
            Language::PythonPipeline => user_cache_dir().join("pipewright"),
        }
    }
}

/// `$XDG_CACHE_HOME`, else `~/.cache`, else the temporary folder.
fn user_cache_dir() -> PathBuf {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_CACHE_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
}

/// The Python pipeline in `dir` (its `pipeline.yaml` names a `pipeline_graph`), named as a push
/// names it: `pipeline_name` without its tag, the tag as version when it is semver (else the
/// server takes the next patch).
fn read_python_pipeline(dir: &Path) -> anyhow::Result<Option<PluginProject>> {
    let path = dir.join("pipeline.yaml");
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Value =
        serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let Some(read) = pipewright_manifest::RunManifest::from_json(&manifest) else {
        return Ok(None);
    };
    if read.python_graph().is_none() {
        return Ok(None);
    }
    let pipeline_name = manifest["pipeline_name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .with_context(|| format!("{} needs `pipeline_name`", path.display()))?;
    let (name, tag) = crate::registry::python_pipelines::name_and_tag(pipeline_name);
    Ok(Some(PluginProject {
        dir: dir.to_path_buf(),
        name,
        version: tag.unwrap_or("next-patch").to_string(),
        runnable: true,
        language: Language::PythonPipeline,
    }))
}

fn client(connection: &ServerConnection) -> PluginRegistryClient {
    PluginRegistryClient::new(&connection.server, &connection.token)
}

/// `plugin push`: build, upload (activating unless told not to); a runnable goes through
/// `pipeline push`.
fn push(dir: &Path, activate: bool, connection: &ServerConnection) -> anyhow::Result<()> {
    let project = PluginProject::read(dir)?;
    if project.runnable {
        let pointer = crate::push::push(dir, &connection.server, &connection.token, None)?;
        println!("{pointer}");
        return Ok(());
    }
    let artifact = project.build()?;
    let component =
        std::fs::read(&artifact).with_context(|| format!("reading {}", artifact.display()))?;
    let pushed =
        client(connection).upload(&project.name, &project.version, &component, activate)?;
    let state = if pushed["active"] == Value::Bool(true) {
        "active"
    } else {
        "not active"
    };
    let type_id = pushed["type_id"]
        .as_str()
        .map(|id| format!(", type `{id}`"))
        .unwrap_or_default();
    println!(
        "pushed {} ({}{type_id}, {state})",
        project.id(),
        pushed["world"].as_str().unwrap_or("unknown world")
    );
    Ok(())
}

/// `name@version` of a PluginVersion answer.
fn version_label(version: &Value) -> String {
    format!(
        "{}@{}",
        version["name"].as_str().unwrap_or("?"),
        version["version"].as_str().unwrap_or("?")
    )
}

/// `GET /v1/plugins` as a table: name, world, active version, every version.
fn print_list(plugins: &Value) {
    let rows: Vec<[String; 4]> = plugins
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let versions = p["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            [
                p["name"].as_str().unwrap_or("?").to_string(),
                p["world"].as_str().unwrap_or("?").to_string(),
                p["active_version"].as_str().unwrap_or("-").to_string(),
                versions,
            ]
        })
        .collect();
    let header = ["NAME", "WORLD", "ACTIVE", "VERSIONS"].map(str::to_string);
    let width = |column: usize| {
        std::iter::once(&header)
            .chain(&rows)
            .map(|row| row[column].len())
            .max()
            .unwrap_or(0)
    };
    let (name_width, world_width, active_width) = (width(0), width(1), width(2));
    for row in std::iter::once(&header).chain(&rows) {
        println!(
            "{:name_width$}  {:world_width$}  {:active_width$}  {}",
            row[0], row[1], row[2], row[3]
        );
    }
}
