//! `runnable`: the runnable pipeline type (Mystic's surface, `/v4/runs`). Content: the
//! pipeline's directory as pushed: `pipeline.json` (its `pipeline.yaml` manifest as JSON: `name`,
//! `version`, `component`, `inputs`, `outputs`), the component it names, and any other files,
//! which a run sees read-only at `/pipeline`. A Python pipeline (Mystic's manifest: a
//! `pipeline_graph` of `module:attribute` and no component) names the module that must be among
//! its files instead; it runs on the host's Python runtime.

use pipewright_manifest::{Port, PortType, Ports, RunManifest};
use pipewright_sdk::type_handler::{
    Diagnostic, File, Guest, LaunchContext, LaunchInfo, Pipeline, PluginError, TypeInfo,
};
use pipewright_sdk::v0_3::SurfacesGuest;

pub const MANIFEST_FILE: &str = "pipeline.json";
/// The value types a manifest may declare (Mystic's, minus Python's pickles and streams).
pub const VALUE_TYPES: &[&str] = PortType::NAMES;
const WASM_MAGIC: &[u8] = b"\0asm";

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Runnable;

impl Guest for Runnable {
    fn describe() -> TypeInfo {
        TypeInfo {
            id: "runnable".into(),
            display_name: "Runnable pipeline".into(),
            content_kinds: vec!["application/wasm".into(), "application/json".into()],
            default_files: vec![MANIFEST_FILE.into()],
        }
    }

    fn validate(_pipeline: Pipeline, content: Vec<File>) -> Vec<Diagnostic> {
        validate_files(&content)
    }

    fn scaffold(pipeline: Pipeline) -> Vec<File> {
        let port = |name: &str| Port {
            name: name.into(),
            r#type: PortType::String,
            other: Default::default(),
        };
        let manifest = RunManifest {
            name: Some(pipeline.name),
            version: Some(pipeline.version.unwrap_or_else(|| "0.1.0".into())),
            component: Some("pipeline.wasm".into()),
            inputs: Ports::List(vec![port("text")]),
            outputs: Ports::List(vec![port("result")]),
            ..RunManifest::default()
        };
        // Through a JSON value: its fields in the order every other JSON object here has.
        let manifest = serde_json::to_value(&manifest).expect("a manifest serializes");
        vec![File {
            path: MANIFEST_FILE.into(),
            contents: serde_json::to_vec_pretty(&manifest).expect("a value serializes"),
        }]
    }

    fn launch(_context: LaunchContext) -> Result<LaunchInfo, PluginError> {
        Err(PluginError {
            code: "launch-unavailable".into(),
            message: "runnable pipelines are run (POST /v4/runs), not launched".into(),
        })
    }
}

fn invalid(field: Option<&str>, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error("invalid-manifest", field, message)
}

/// The manifest is well formed and its component is WebAssembly.
pub fn validate_files(content: &[File]) -> Vec<Diagnostic> {
    let Some(manifest) = content.iter().find(|f| f.path == MANIFEST_FILE) else {
        return vec![Diagnostic::error(
            "missing-manifest",
            None,
            format!("the content holds no `{MANIFEST_FILE}`"),
        )];
    };
    let manifest = serde_json::from_slice(&manifest.contents)
        .ok()
        .as_ref()
        .and_then(RunManifest::from_json);
    let Some(manifest) = manifest else {
        return vec![invalid(None, "the manifest is not a JSON object")];
    };
    let mut findings = Vec::new();
    let python = manifest.python_graph();
    if let Some(graph) = python {
        findings.extend(python_module_finding(graph, content));
    }
    let required = [
        ("name", &manifest.name),
        ("version", &manifest.version),
        ("component", &manifest.component),
    ];
    for (field, value) in required
        .into_iter()
        .take(if python.is_some() { 2 } else { 3 })
    {
        if value.as_deref().is_none_or(str::is_empty) {
            findings.push(invalid(
                Some(field),
                format!("the manifest needs `{field}`"),
            ));
        }
    }
    for (field, ports) in [("inputs", &manifest.inputs), ("outputs", &manifest.outputs)] {
        let Ports::List(ports) = ports else {
            findings.push(invalid(Some(field), format!("`{field}` must be a list")));
            continue;
        };
        let mut seen = std::collections::HashSet::new();
        for port in ports {
            let name = port.name.as_str();
            if name.is_empty() || !seen.insert(name) {
                findings.push(invalid(
                    Some(field),
                    format!("every entry of `{field}` needs its own name"),
                ));
            }
            if !port.r#type.is_known() {
                findings.push(invalid(
                    Some(field),
                    format!(
                        "`{name}` has type `{}`; the types are {}",
                        port.r#type.as_str(),
                        PortType::NAMES.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(component) = &manifest.component {
        match content.iter().find(|f| f.path == *component) {
            None => findings.push(Diagnostic::error(
                "missing-component",
                Some("component"),
                format!("the component `{component}` is not in the content"),
            )),
            Some(file) if !file.contents.starts_with(WASM_MAGIC) => {
                findings.push(Diagnostic::error(
                    "invalid-component",
                    Some("component"),
                    format!("`{component}` is not WebAssembly"),
                ))
            }
            Some(_) => {}
        }
    }
    findings
}

/// A Python pipeline's `pipeline_graph` names a module among its files.
fn python_module_finding(graph: &str, content: &[File]) -> Option<Diagnostic> {
    let Some((module, _)) = graph
        .split_once(':')
        .filter(|(m, a)| !m.is_empty() && !a.is_empty() && !a.contains(':'))
    else {
        return Some(invalid(
            Some("pipeline_graph"),
            format!("`pipeline_graph` must be `module:attribute`, not `{graph}`"),
        ));
    };
    let base = module.replace('.', "/");
    let candidates = [format!("{base}.py"), format!("{base}/__init__.py")];
    if content.iter().any(|f| candidates.contains(&f.path)) {
        return None;
    }
    Some(Diagnostic::error(
        "missing-module",
        Some("pipeline_graph"),
        format!(
            "the module `{module}` ({}) is not in the content",
            candidates[0]
        ),
    ))
}

impl SurfacesGuest for Runnable {
    /// Runnable pipelines are pushed through Mystic's `/v4`, which names this type itself; no surface lets a caller choose it besides `/v1`.
    fn served() -> Vec<String> {
        Vec::new()
    }
}

pipewright_sdk::export_type_handler_v0_3!(Runnable);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn codes(manifest: Value, component: Option<&[u8]>) -> Vec<String> {
        let mut files = vec![File {
            path: MANIFEST_FILE.into(),
            contents: serde_json::to_vec(&manifest).unwrap(),
        }];
        if let Some(bytes) = component {
            files.push(File {
                path: "hello.wasm".into(),
                contents: bytes.to_vec(),
            });
        }
        validate_files(&files).into_iter().map(|d| d.code).collect()
    }

    fn hello() -> Value {
        serde_json::json!({"name": "hello", "version": "0.1.0", "component": "hello.wasm",
            "inputs": [{"name": "text", "type": "string"}], "outputs": [{"name": "greeting", "type": "string"}]})
    }

    #[test]
    fn a_complete_pipeline_is_valid() {
        assert!(codes(hello(), Some(b"\0asm\x0d\0\x01\0")).is_empty());
    }

    #[test]
    fn a_python_pipeline_names_its_module_instead_of_a_component() {
        let manifest = serde_json::json!({"name": "p", "version": "0.1.0",
            "pipeline_graph": "new_pipeline:my_new_pipeline",
            "inputs": [{"name": "n", "type": "integer"}], "outputs": []});
        let mut files = vec![File {
            path: MANIFEST_FILE.into(),
            contents: serde_json::to_vec(&manifest).unwrap(),
        }];
        let codes = |files: &[File]| -> Vec<String> {
            validate_files(files).into_iter().map(|d| d.code).collect()
        };
        assert_eq!(codes(&files), ["missing-module"]);
        files.push(File {
            path: "new_pipeline.py".into(),
            contents: b"".to_vec(),
        });
        assert!(codes(&files).is_empty());
        let mut bad = manifest.clone();
        bad["pipeline_graph"] = "nocolon".into();
        files[0].contents = serde_json::to_vec(&bad).unwrap();
        assert_eq!(codes(&files), ["invalid-manifest"]);
    }

    #[test]
    fn component_and_types_are_checked() {
        assert_eq!(codes(hello(), None), ["missing-component"]);
        assert_eq!(codes(hello(), Some(b"nope")), ["invalid-component"]);
        let mut manifest = hello();
        manifest["inputs"][0]["type"] = "pkl".into();
        assert_eq!(codes(manifest, Some(b"\0asm")), ["invalid-manifest"]);
    }

    /// Every finding of a manifest, as (code, field, message).
    fn findings(manifest: &[u8]) -> Vec<(String, Option<String>, String)> {
        let files = [
            File {
                path: MANIFEST_FILE.into(),
                contents: manifest.to_vec(),
            },
            File {
                path: "hello.wasm".into(),
                contents: b"\0asm".to_vec(),
            },
        ];
        validate_files(&files)
            .into_iter()
            .map(|d| (d.code, d.field, d.message))
            .collect()
    }

    #[test]
    fn every_problem_is_named_with_its_field() {
        let types = "string, integer, float, boolean, dictionary, array, file";
        let invalid = |field: Option<&str>, message: &str| {
            (
                "invalid-manifest".to_string(),
                field.map(str::to_string),
                message.to_string(),
            )
        };
        let cases: Vec<(Vec<u8>, Vec<_>)> = vec![
            (
                b"not json".to_vec(),
                vec![invalid(None, "the manifest is not a JSON object")],
            ),
            (
                b"[1]".to_vec(),
                vec![invalid(None, "the manifest is not a JSON object")],
            ),
            (
                json!({"name": 5, "version": "", "component": "hello.wasm", "inputs": {}, "outputs": null})
                    .to_string()
                    .into_bytes(),
                vec![
                    invalid(Some("name"), "the manifest needs `name`"),
                    invalid(Some("version"), "the manifest needs `version`"),
                    invalid(Some("inputs"), "`inputs` must be a list"),
                ],
            ),
            (
                json!({"name": "a", "version": "1", "component": "other.wasm",
                    "inputs": [3, {"name": "x", "type": "pkl"}, {"name": "x", "type": "file"}],
                    "outputs": [{"name": "y", "type": 7}]})
                .to_string()
                .into_bytes(),
                vec![
                    invalid(Some("inputs"), "every entry of `inputs` needs its own name"),
                    invalid(Some("inputs"), &format!("`` has type ``; the types are {types}")),
                    invalid(Some("inputs"), &format!("`x` has type `pkl`; the types are {types}")),
                    invalid(Some("inputs"), "every entry of `inputs` needs its own name"),
                    invalid(Some("outputs"), &format!("`y` has type ``; the types are {types}")),
                    (
                        "missing-component".into(),
                        Some("component".into()),
                        "the component `other.wasm` is not in the content".into(),
                    ),
                ],
            ),
        ];
        for (manifest, expected) in cases {
            assert_eq!(
                findings(&manifest),
                expected,
                "{}",
                String::from_utf8_lossy(&manifest)
            );
        }
    }
}
