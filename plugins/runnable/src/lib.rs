//! `runnable`: the runnable pipeline type (Mystic's surface, `/v4/runs`). Content: the
//! pipeline's directory as pushed: `pipeline.json` (its `pipeline.yaml` manifest as JSON: `name`,
//! `version`, `component`, `inputs`, `outputs`), the component it names, and any other files,
//! which a run sees read-only at `/pipeline`.

use pipewright_sdk::type_handler::{
    Diagnostic, File, Guest, LaunchContext, LaunchInfo, Pipeline, PluginError, TypeInfo,
};
use serde_json::Value;

pub const MANIFEST_FILE: &str = "pipeline.json";
/// The value types a manifest may declare (Mystic's, minus Python's pickles and streams).
pub const VALUE_TYPES: &[&str] = &[
    "string",
    "integer",
    "float",
    "boolean",
    "dictionary",
    "array",
    "file",
];
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
        let manifest = serde_json::json!({
            "name": pipeline.name,
            "version": pipeline.version.unwrap_or_else(|| "0.1.0".into()),
            "component": "pipeline.wasm",
            "inputs": [{"name": "text", "type": "string"}],
            "outputs": [{"name": "result", "type": "string"}],
        });
        vec![File {
            path: MANIFEST_FILE.into(),
            contents: serde_json::to_vec_pretty(&manifest).expect("a literal serializes"),
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
    let manifest: Value = match serde_json::from_slice(&manifest.contents) {
        Ok(v @ Value::Object(_)) => v,
        _ => return vec![invalid(None, "the manifest is not a JSON object")],
    };
    let mut findings = Vec::new();
    for field in ["name", "version", "component"] {
        if manifest
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            findings.push(invalid(
                Some(field),
                format!("the manifest needs `{field}`"),
            ));
        }
    }
    for field in ["inputs", "outputs"] {
        let ports = match manifest.get(field) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(ports)) => ports,
            Some(_) => {
                findings.push(invalid(Some(field), format!("`{field}` must be a list")));
                continue;
            }
        };
        let mut seen = std::collections::HashSet::new();
        for port in ports {
            let name = port.get("name").and_then(Value::as_str).unwrap_or_default();
            let kind = port.get("type").and_then(Value::as_str).unwrap_or_default();
            if name.is_empty() || !seen.insert(name) {
                findings.push(invalid(
                    Some(field),
                    format!("every entry of `{field}` needs its own name"),
                ));
            }
            if !VALUE_TYPES.contains(&kind) {
                findings.push(invalid(
                    Some(field),
                    format!(
                        "`{name}` has type `{kind}`; the types are {}",
                        VALUE_TYPES.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(component) = manifest.get("component").and_then(Value::as_str) {
        match content.iter().find(|f| f.path == component) {
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

pipewright_sdk::export_type_handler!(Runnable);

#[cfg(test)]
mod tests {
    use super::*;

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
    fn component_and_types_are_checked() {
        assert_eq!(codes(hello(), None), ["missing-component"]);
        assert_eq!(codes(hello(), Some(b"nope")), ["invalid-component"]);
        let mut manifest = hello();
        manifest["inputs"][0]["type"] = "pkl".into();
        assert_eq!(codes(manifest, Some(b"\0asm")), ["invalid-manifest"]);
    }
}
