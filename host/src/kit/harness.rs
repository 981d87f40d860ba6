//! `pipewright plugin test`: the author's harness, no server. It runs the project's own unit
//! tests (`cargo test`, or `python3 -m unittest` for a Python plugin), builds the component,
//! loads it in-process into a [`PluginHost`] exactly as a server would (so a component that implements no known world, or imports what the host does not
//! grant, fails here first), and calls its exports with the cases under `fixtures/`.
//!
//! # Fixture format
//!
//! Every `fixtures/*.json` file holds one case or a list of cases. A case is an object with the
//! export it calls in `"export"`, an optional `"name"` for the report, the call's arguments and
//! what to `"expect"`; unknown keys are errors, so a typo does not pass silently.
//!
//! - Policy, `"export": "check"`: `"candidate"` (a pipeline, below), `"existing_versions"`
//!   (default `[]`), `"context"` (`{"surface", "account", "user", "config": {k: v}}`, each
//!   optional; default `v1`, `test`, `test`, none). `"expect": "approve"`, or
//!   `"expect": {"violations": ["code", ...]}` (the codes, in any order).
//! - Type handler, `"export": "describe"`: `"expect": {"id", "display_name", "content_kinds",
//!   "default_files", "surfaces"}`, each optional; only those given are compared. `surfaces` is
//!   what a `pipewright:plugin@0.3.0` handler declares (`["acumos"]`); `[]` for an older one.
//! - `"export": "validate"`: `"pipeline"` (optional), `"files": {"path": "text", ...}`;
//!   `"expect": {"diagnostics": ["code", ...]}` (every diagnostic's code, any severity, any
//!   order; `[]` accepts).
//! - `"export": "scaffold"`: `"pipeline"` (optional); `"expect": {"files": ["path", ...],
//!   "valid": true}`: the paths, in any order; `valid` (optional) also runs `validate` on the
//!   scaffold and wants no `error` diagnostic.
//! - `"export": "launch"`: `"pipeline"`, `"user"`, `"properties"` (all optional);
//!   `"expect": {"error": "code"}` or `{"service_url": "url"}`.
//! - Runnable, `"export": "run"`: `"inputs": {"name": value, ...}` (a JSON string, integer,
//!   float, boolean, object or array becomes the WIT value of that kind); `"expect":
//!   {"outputs": {"name": value, ...}}` (all outputs, compared as JSON; a file output is
//!   `{"file": "/outputs/…"}`) or `{"error": "code"}`. The crate's folder is `/pipeline`.
//!   A Python pipeline is not built: the files a push would send run on the Python runtime
//!   built into pipewright, on one warm instance for every case; its inputs are named as the
//!   graph describes them (a `Variable`'s title, else `input_N`) and given in the graph's order,
//!   its outputs are `output_N`, its error codes Mystic's kinds (`input_error`).
//!
//! A pipeline is `{"namespace", "name", "version", "type", "description", "properties": {k: v}}`,
//! each optional: default namespace `test`, name `demo`, no version, type the handler's own id
//! (for `check`: `jupyter`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::PluginProject;
use crate::plugins::runnable::{NamedValue, RunnablePipeline, Value as RunValue};
use crate::plugins::{
    File, LaunchContext, Limits, LoadedPlugin, Pipeline, PluginHost, PluginId, PolicyContext,
    PolicyPlugin, Property, Severity, TypeHandlerPlugin,
};

/// Runs the unit tests, loads the component and runs the fixtures; Err when anything failed.
pub fn test_crate(project: &PluginProject) -> anyhow::Result<()> {
    eprintln!("== unit tests");
    project.unit_tests()?;

    let (_host, subject) = match project.language {
        super::Language::PythonPipeline => {
            eprintln!("== pipeline (the first time, the Python runtime compiles: seconds)");
            let pipeline = PythonPipelineSubject::load(project)?;
            (pipeline.host.clone(), Subject::PythonPipeline(pipeline))
        }
        _ => {
            eprintln!("== component");
            let artifact = project.build()?;
            let bytes = std::fs::read(&artifact)
                .with_context(|| format!("reading {}", artifact.display()))?;
            let host = test_host(project)?;
            let subject = Subject::load(&host, project, &bytes)?;
            (std::sync::Arc::new(host), subject)
        }
    };
    println!("{}: loads as {}", project.id(), subject.describe());

    let cases = read_fixtures(&project.dir.join("fixtures"))?;
    if cases.is_empty() {
        println!("{}: no fixtures (add fixtures/*.json)", project.id());
        return Ok(());
    }
    let scratch = tempfile::tempdir().context("making a scratch folder for runs")?;
    let mut failed = 0;
    for case in &cases {
        match subject.run(case, &project.dir, scratch.path()) {
            Ok(()) => println!("ok    {}", case.label),
            Err(why) => {
                failed += 1;
                println!(
                    "FAIL  {} {} export `{}` ({}): {why}",
                    project.id(),
                    subject.world(),
                    case.call.export(),
                    case.label
                );
            }
        }
    }
    if failed > 0 {
        bail!(
            "{}: {failed} of {} fixture cases failed",
            project.id(),
            cases.len()
        );
    }
    println!("{}: {} fixture cases passed", project.id(), cases.len());
    Ok(())
}

/// The in-process plugin host a project is tested in, its compile cache in the build's folder.
fn test_host(project: &PluginProject) -> anyhow::Result<PluginHost> {
    PluginHost::new(
        &project.scratch_dir().join("pipewright-test-cache"),
        Limits::default(),
    )
    .context("starting the in-process plugin host")
}

/// A Python pipeline's files laid out as a server lays out a version's: what a push sends
/// (requirements bundled), and `pipeline.json`, the manifest the runtime reads.
fn stage_python_pipeline(project: &PluginProject) -> anyhow::Result<tempfile::TempDir> {
    let manifest_path = project.dir.join("pipeline.yaml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest: Json = serde_norway::from_str(&text)
        .with_context(|| format!("parsing {}", manifest_path.display()))?;
    let build = project.scratch_dir();
    std::fs::create_dir_all(&build).with_context(|| format!("creating {}", build.display()))?;
    let staged = tempfile::tempdir_in(&build).context("making a folder for the pipeline")?;
    let files = crate::push::python_pipeline_files(&project.dir, &manifest)?;
    let manifest_file = (
        "pipeline.json".to_string(),
        manifest.to_string().into_bytes(),
    );
    for (path, bytes) in files.iter().chain([&manifest_file]) {
        let target = staged.path().join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(staged)
}

/// The loaded component under test.
enum Subject {
    Plugin(LoadedPlugin),
    Runnable(std::sync::Arc<RunnablePipeline>),
    PythonPipeline(PythonPipelineSubject),
}

/// A Python pipeline on the Python runtime of an in-process host, as a server runs one.
pub struct PythonPipelineSubject {
    host: std::sync::Arc<PluginHost>,
    /// The pipeline's files as a push sends them, with the manifest the runtime reads
    /// (`pipeline.json`), as a server lays out a version's files.
    staged: tempfile::TempDir,
    /// Its inputs' names, in the graph's order (a run's values are given in that order).
    inputs: Vec<String>,
    outputs: Vec<String>,
    runtime: tokio::runtime::Runtime,
}

impl PythonPipelineSubject {
    /// Starts the runtime on the project's folder and asks it to describe the graph: Err when
    /// the pipeline does not load (an import, a graph that does not build), saying why.
    pub fn load(project: &PluginProject) -> anyhow::Result<Self> {
        let host = std::sync::Arc::new(test_host(project)?);
        if !host.has_python_runtime() {
            bail!("{}", crate::plugins::python::MISSING_RUNTIME);
        }
        let staged = stage_python_pipeline(project)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a runtime")?;
        let described = runtime
            .block_on(host.describe_python(staged.path(), Limits::default().call_timeout))?
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: the pipeline does not load: {} ({})",
                    project.id(),
                    e.message,
                    e.code
                )
            })?;
        let described: Json =
            serde_json::from_str(&described).context("reading the runtime's description")?;
        let names = |ports: &Json| -> Vec<String> {
            ports
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|port| port["name"].as_str().map(str::to_string))
                .collect()
        };
        Ok(PythonPipelineSubject {
            inputs: names(&described["inputs"]),
            outputs: names(&described["outputs"]),
            host,
            staged,
            runtime,
        })
    }

    /// Runs one case on an instance of the runtime (kept warm between cases, as between runs).
    fn run(&self, case: &RunCase, scratch: &Path) -> Result<(), String> {
        if let Some(unknown) = case.inputs.keys().find(|name| !self.inputs.contains(name)) {
            return Err(format!(
                "the pipeline has no input `{unknown}` (its inputs: {})",
                self.inputs.join(", ")
            ));
        }
        // In the graph's order; one left out makes a run with too few, as a client can.
        let inputs = self
            .inputs
            .iter()
            .filter_map(|name| case.inputs.get(name).map(|value| (name, value)))
            .map(|(name, value)| {
                Ok(NamedValue {
                    name: name.clone(),
                    value: run_value(name, value)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let outcome = self.runtime.block_on(async {
            let mut lease = self
                .host
                .python_instance("plugin test", self.staged.path(), scratch)
                .await?;
            lease
                .run(
                    &inputs,
                    Limits::default().call_timeout,
                    &crate::plugins::CapturedOutput::new(crate::runs::OUTPUT_CAPTURE_BYTES),
                )
                .await
        });
        compare_run(&case.expect, outcome.map_err(|e| e.to_string())?)
    }
}

impl Subject {
    fn load(host: &PluginHost, project: &PluginProject, bytes: &[u8]) -> anyhow::Result<Self> {
        let loaded = if project.runnable {
            let id = PluginId {
                name: project.name.clone(),
                version: project.version.clone(),
            };
            host.load_runnable(id, bytes).map(Subject::Runnable)
        } else {
            host.load(&project.name, &project.version, bytes)
                .map(Subject::Plugin)
        };
        // The error names the plugin and says what is wrong (no known world, an import).
        Ok(loaded?)
    }

    fn world(&self) -> &'static str {
        match self {
            Subject::Plugin(LoadedPlugin::Policy(_)) => "validation-policy",
            Subject::Plugin(LoadedPlugin::TypeHandler(_)) => "type-handler",
            Subject::Runnable(_) | Subject::PythonPipeline(_) => "runnable",
        }
    }

    fn describe(&self) -> String {
        match self {
            Subject::Plugin(LoadedPlugin::TypeHandler(t)) => {
                let offered = std::iter::once("v1")
                    .chain(t.surfaces.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "a type-handler of type `{}` ({}), offered on {offered}",
                    t.info.id, t.wit
                )
            }
            Subject::PythonPipeline(p) => format!(
                "a Python pipeline on the Python runtime, inputs [{}], outputs [{}]",
                p.inputs.join(", "),
                p.outputs.join(", ")
            ),
            other => format!("a {}", other.world()),
        }
    }

    /// Runs one case; Err says what differed.
    fn run(&self, case: &Case, crate_dir: &Path, scratch: &Path) -> Result<(), String> {
        match (self, &case.call) {
            (Subject::Plugin(LoadedPlugin::Policy(policy)), Call::Check(call)) => {
                run_check(policy, call)
            }
            (Subject::Plugin(LoadedPlugin::TypeHandler(handler)), call) => {
                run_type_handler_call(handler, call)
            }
            (Subject::Runnable(pipeline), Call::Run(call)) => {
                run_pipeline(pipeline, call, crate_dir, scratch)
            }
            (Subject::PythonPipeline(pipeline), Call::Run(call)) => pipeline.run(call, scratch),
            (subject, call) => Err(format!(
                "the fixture calls `{}`, which a {} does not export",
                call.export(),
                subject.world()
            )),
        }
    }
}

/// One case of a fixture file.
struct Case {
    /// `fixtures/NAME.json`, its index when the file holds a list, and the case's name.
    label: String,
    call: Call,
}

#[derive(Deserialize)]
#[serde(tag = "export", rename_all = "lowercase")]
enum Call {
    Check(CheckCase),
    Describe(DescribeCase),
    Validate(ValidateCase),
    Scaffold(ScaffoldCase),
    Launch(LaunchCase),
    Run(RunCase),
}

impl Call {
    fn export(&self) -> &'static str {
        match self {
            Call::Check(_) => "check",
            Call::Describe(_) => "describe",
            Call::Validate(_) => "validate",
            Call::Scaffold(_) => "scaffold",
            Call::Launch(_) => "launch",
            Call::Run(_) => "run",
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FixturePipeline {
    namespace: Option<String>,
    name: Option<String>,
    version: Option<String>,
    #[serde(rename = "type")]
    type_id: Option<String>,
    description: Option<String>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

impl FixturePipeline {
    fn to_pipeline(&self, default_type: &str) -> Pipeline {
        Pipeline {
            namespace: self.namespace.clone().unwrap_or_else(|| "test".into()),
            name: self.name.clone().unwrap_or_else(|| "demo".into()),
            version: self.version.clone(),
            type_: self.type_id.clone().unwrap_or_else(|| default_type.into()),
            description: self.description.clone(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            properties: properties(&self.properties),
        }
    }
}

fn properties(map: &BTreeMap<String, String>) -> Vec<Property> {
    map.iter()
        .map(|(key, value)| Property {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckCase {
    #[serde(default)]
    candidate: FixturePipeline,
    #[serde(default)]
    existing_versions: Vec<String>,
    #[serde(default)]
    context: FixtureContext,
    expect: CheckExpectation,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FixtureContext {
    surface: Option<String>,
    account: Option<String>,
    user: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CheckExpectation {
    /// `"approve"`.
    Word(String),
    Violations {
        violations: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeCase {
    expect: DescribeExpectation,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeExpectation {
    id: Option<String>,
    display_name: Option<String>,
    content_kinds: Option<Vec<String>>,
    default_files: Option<Vec<String>>,
    surfaces: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateCase {
    #[serde(default)]
    pipeline: FixturePipeline,
    #[serde(default)]
    files: BTreeMap<String, String>,
    expect: ValidateExpectation,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateExpectation {
    diagnostics: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaffoldCase {
    #[serde(default)]
    pipeline: FixturePipeline,
    expect: ScaffoldExpectation,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaffoldExpectation {
    files: Vec<String>,
    #[serde(default)]
    valid: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LaunchCase {
    #[serde(default)]
    pipeline: FixturePipeline,
    user: Option<String>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
    expect: LaunchExpectation,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LaunchExpectation {
    Error(String),
    ServiceUrl(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunCase {
    #[serde(default)]
    inputs: BTreeMap<String, Json>,
    expect: RunExpectation,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RunExpectation {
    Outputs(BTreeMap<String, Json>),
    Error(String),
}

/// Every case of every `*.json` in `dir`, files in name order; none when `dir` is absent.
fn read_fixtures(dir: &Path) -> anyhow::Result<Vec<Case>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    let mut cases = Vec::new();
    for path in paths {
        let file_label = format!(
            "fixtures/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let document: Json =
            serde_json::from_str(&text).with_context(|| format!("{file_label} is not JSON"))?;
        let (items, listed) = match document {
            Json::Array(items) => (items, true),
            single => (vec![single], false),
        };
        for (index, mut item) in items.into_iter().enumerate() {
            let name = item
                .as_object_mut()
                .and_then(|case| case.remove("name"))
                .and_then(|name| name.as_str().map(str::to_string));
            let mut label = file_label.clone();
            if listed {
                label.push_str(&format!(" #{}", index + 1));
            }
            if let Some(name) = name {
                label.push_str(&format!(" \"{name}\""));
            }
            let call: Call = serde_json::from_value(item).with_context(|| {
                format!("{label} is not a valid case (see `pipewright plugin test --help`)")
            })?;
            cases.push(Case { label, call });
        }
    }
    Ok(cases)
}

fn run_check(policy: &PolicyPlugin, case: &CheckCase) -> Result<(), String> {
    let candidate = case.candidate.to_pipeline("jupyter");
    let context = PolicyContext {
        surface: case.context.surface.clone().unwrap_or_else(|| "v1".into()),
        account: case
            .context
            .account
            .clone()
            .unwrap_or_else(|| "test".into()),
        user: case.context.user.clone().unwrap_or_else(|| "test".into()),
        config: properties(&case.context.config),
    };
    let verdict = policy
        .check(&candidate, &case.existing_versions, &context)
        .map_err(|e| e.to_string())?;
    let got = match &verdict {
        Ok(_) => Vec::new(),
        Err(violations) => sorted(violations.iter().map(|v| v.code.clone())),
    };
    let describe_got = || match &verdict {
        Ok(_) => "approval".to_string(),
        Err(violations) => format!(
            "violations {}",
            violations
                .iter()
                .map(|v| format!("{} ({})", v.code, v.message))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    match &case.expect {
        CheckExpectation::Word(word) if word == "approve" => match verdict {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("expected approval, got {}", describe_got())),
        },
        CheckExpectation::Word(other) => Err(format!(
            "`expect` is \"approve\" or {{\"violations\": [...]}}, not \"{other}\""
        )),
        CheckExpectation::Violations { violations } => {
            let expected = sorted(violations.iter().cloned());
            if verdict.is_err() && got == expected {
                Ok(())
            } else {
                Err(format!(
                    "expected violations {expected:?}, got {}",
                    describe_got()
                ))
            }
        }
    }
}

fn run_type_handler_call(handler: &TypeHandlerPlugin, call: &Call) -> Result<(), String> {
    let own_type = handler.info.id.as_str();
    match call {
        Call::Describe(case) => {
            let info = &handler.info;
            let mut differences = Vec::new();
            let mut compare = |field: &str, expected: Json, got: Json| {
                if expected != got {
                    differences.push(format!("{field}: expected {expected}, got {got}"));
                }
            };
            if let Some(id) = &case.expect.id {
                compare("id", json!(id), json!(info.id));
            }
            if let Some(name) = &case.expect.display_name {
                compare("display_name", json!(name), json!(info.display_name));
            }
            if let Some(kinds) = &case.expect.content_kinds {
                compare("content_kinds", json!(kinds), json!(info.content_kinds));
            }
            if let Some(files) = &case.expect.default_files {
                compare("default_files", json!(files), json!(info.default_files));
            }
            if let Some(surfaces) = &case.expect.surfaces {
                compare("surfaces", json!(surfaces), json!(handler.surfaces));
            }
            if differences.is_empty() {
                Ok(())
            } else {
                Err(differences.join("; "))
            }
        }
        Call::Validate(case) => {
            let files: Vec<File> = case
                .files
                .iter()
                .map(|(path, text)| File {
                    path: path.clone(),
                    contents: text.as_bytes().to_vec(),
                })
                .collect();
            let diagnostics = handler
                .validate(&case.pipeline.to_pipeline(own_type), &files)
                .map_err(|e| e.to_string())?;
            let got = sorted(diagnostics.iter().map(|d| d.code.clone()));
            let expected = sorted(case.expect.diagnostics.iter().cloned());
            if got == expected {
                Ok(())
            } else {
                Err(format!(
                    "expected diagnostics {expected:?}, got {got:?} ({})",
                    diagnostics
                        .iter()
                        .map(|d| d.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            }
        }
        Call::Scaffold(case) => {
            let pipeline = case.pipeline.to_pipeline(own_type);
            let files = handler.scaffold(&pipeline).map_err(|e| e.to_string())?;
            let got = sorted(files.iter().map(|f| f.path.clone()));
            let expected = sorted(case.expect.files.iter().cloned());
            if got != expected {
                return Err(format!("expected files {expected:?}, got {got:?}"));
            }
            if case.expect.valid {
                let errors: Vec<String> = handler
                    .validate(&pipeline, &files)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .filter(|d| matches!(d.severity, Severity::Error))
                    .map(|d| format!("{} ({})", d.code, d.message))
                    .collect();
                if !errors.is_empty() {
                    return Err(format!(
                        "the scaffold does not pass `validate`: {}",
                        errors.join(", ")
                    ));
                }
            }
            Ok(())
        }
        Call::Launch(case) => {
            let context = LaunchContext {
                pipeline: case.pipeline.to_pipeline(own_type),
                pipeline_id: "00000000-0000-0000-0000-000000000000".into(),
                user: case.user.clone().unwrap_or_else(|| "test".into()),
                repository_url: "/pipelines/00000000-0000-0000-0000-000000000000".into(),
                properties: properties(&case.properties),
            };
            let outcome = handler.launch(&context).map_err(|e| e.to_string())?;
            match (&case.expect, outcome) {
                (LaunchExpectation::Error(code), Err(error)) if *code == error.code => Ok(()),
                (LaunchExpectation::ServiceUrl(url), Ok(info)) if *url == info.service_url => {
                    Ok(())
                }
                (expected, got) => Err(format!(
                    "expected {}, got {}",
                    match expected {
                        LaunchExpectation::Error(code) => format!("error `{code}`"),
                        LaunchExpectation::ServiceUrl(url) => format!("service URL {url}"),
                    },
                    match got {
                        Ok(info) => format!("service URL {}", info.service_url),
                        Err(error) => format!("error `{}` ({})", error.code, error.message),
                    }
                )),
            }
        }
        other => Err(format!(
            "the fixture calls `{}`, which a type-handler does not export",
            other.export()
        )),
    }
}

fn run_pipeline(
    pipeline: &RunnablePipeline,
    case: &RunCase,
    crate_dir: &Path,
    scratch: &Path,
) -> Result<(), String> {
    let inputs = case
        .inputs
        .iter()
        .map(|(name, value)| {
            Ok(NamedValue {
                name: name.clone(),
                value: run_value(name, value)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    // A fresh /inputs and /outputs per case, as a server gives each run.
    let run_dir = tempfile::tempdir_in(scratch).map_err(|e| format!("scratch folder: {e}"))?;
    let (inputs_dir, outputs_dir) = (
        run_dir.path().join("inputs"),
        run_dir.path().join("outputs"),
    );
    for dir in [&inputs_dir, &outputs_dir] {
        std::fs::create_dir(dir).map_err(|e| format!("scratch folder: {e}"))?;
    }
    let preopens =
        crate::runs::run_preopens(crate_dir.to_path_buf(), Some(inputs_dir), Some(outputs_dir));
    // Runs are async (see `plugins::runnable`); the harness is not.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))?;
    let outcome = runtime
        .block_on(pipeline.run(
            &preopens,
            &inputs,
            Limits::default().call_timeout,
            &crate::plugins::CapturedOutput::new(crate::runs::OUTPUT_CAPTURE_BYTES),
        ))
        .map_err(|e| e.to_string())?;
    compare_run(&case.expect, outcome)
}

/// A run's outcome against what the case expects; Err says what differed.
fn compare_run(
    expect: &RunExpectation,
    outcome: Result<Vec<NamedValue>, crate::plugins::runnable::RunError>,
) -> Result<(), String> {
    match (expect, outcome) {
        (RunExpectation::Error(code), Err(error)) if *code == error.code => Ok(()),
        (RunExpectation::Outputs(expected), Ok(outputs)) => {
            let got: BTreeMap<String, Json> = outputs
                .into_iter()
                .map(|o| (o.name, output_json(o.value)))
                .collect();
            if got == *expected {
                Ok(())
            } else {
                Err(format!(
                    "expected outputs {}, got {}",
                    json!(expected),
                    json!(got)
                ))
            }
        }
        (RunExpectation::Error(code), Ok(outputs)) => Err(format!(
            "expected error `{code}`, got outputs {}",
            json!(outputs
                .into_iter()
                .map(|o| (o.name, output_json(o.value)))
                .collect::<BTreeMap<_, _>>())
        )),
        (_, Err(error)) => Err(format!("got error `{}` ({})", error.code, error.message)),
    }
}

/// A fixture's JSON input as the WIT value of the same kind.
fn run_value(name: &str, value: &Json) -> Result<RunValue, String> {
    Ok(match value {
        Json::String(s) => RunValue::String(s.clone()),
        Json::Bool(b) => RunValue::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => RunValue::Integer(i),
            None => RunValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::Object(_) => RunValue::Dictionary(value.to_string()),
        Json::Array(_) => RunValue::Array(value.to_string()),
        Json::Null => return Err(format!("input `{name}` is null, which has no WIT value")),
    })
}

/// A run's output as JSON, for comparing with a fixture.
fn output_json(value: RunValue) -> Json {
    match value {
        RunValue::String(s) => json!(s),
        RunValue::Integer(i) => json!(i),
        RunValue::Float(f) => json!(f),
        RunValue::Boolean(b) => json!(b),
        RunValue::Dictionary(text) | RunValue::Array(text) => {
            serde_json::from_str(&text).unwrap_or(Json::String(text))
        }
        RunValue::File(path) => json!({ "file": path }),
    }
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.collect();
    items.sort();
    items
}
