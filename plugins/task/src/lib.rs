//! `task`: the GBDX task pipeline type (the `/workflows/v1/tasks` surface).
//!
//! Content: `task.json`, the task definition in the GBDX shape (`name`, `version`,
//! `taskOwnerEmail`, `inputPortDescriptors`, `outputPortDescriptors`, `containerDescriptors`),
//! and, when a container descriptor is of type `WASM`, the component it names, fetched by the
//! host into `component.wasm`. A `DOCKER` descriptor is kept and checked but names an image this
//! server cannot run. Tasks run in workflows; they are not launched.

use pipewright_sdk::type_handler::{
    Diagnostic, File, Guest, LaunchContext, LaunchInfo, Pipeline, PluginError, TypeInfo,
};
use pipewright_sdk::v0_3::SurfacesGuest;
use serde_json::{json, Map, Value};

pub const DEFINITION_FILE: &str = "task.json";
pub const COMPONENT_FILE: &str = "component.wasm";
const WASM_MAGIC: &[u8] = b"\0asm";

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Task;

impl Guest for Task {
    fn describe() -> TypeInfo {
        TypeInfo {
            id: "task".into(),
            display_name: "GBDX task".into(),
            content_kinds: vec!["application/json".into(), "application/wasm".into()],
            default_files: vec![DEFINITION_FILE.into()],
        }
    }

    fn validate(_pipeline: Pipeline, content: Vec<File>) -> Vec<Diagnostic> {
        validate_files(&content)
    }

    fn scaffold(pipeline: Pipeline) -> Vec<File> {
        let definition = json!({
            "name": pipeline.name,
            "version": pipeline.version.unwrap_or_else(|| "0.0.1".into()),
            "description": pipeline.description.unwrap_or_default(),
            "taskOwnerEmail": "owner@example.com",
            "inputPortDescriptors": [],
            "outputPortDescriptors": [],
            "containerDescriptors": [{"type": "WASM", "properties": {"url": "https://example.com/task.wasm"}}],
            "properties": null
        });
        vec![File {
            path: DEFINITION_FILE.into(),
            contents: serde_json::to_vec_pretty(&definition).expect("a literal serializes"),
        }]
    }

    fn launch(_context: LaunchContext) -> Result<LaunchInfo, PluginError> {
        Err(PluginError {
            code: "launch-unavailable".into(),
            message: "GBDX tasks run in workflows; they are not launched".into(),
        })
    }
}

/// Checks the definition and, for a `WASM` container, that its component is there.
pub fn validate_files(content: &[File]) -> Vec<Diagnostic> {
    let Some(definition) = content.iter().find(|f| f.path == DEFINITION_FILE) else {
        return vec![Diagnostic::error(
            "missing-task-definition",
            None,
            format!("the content holds no `{DEFINITION_FILE}`"),
        )];
    };
    let definition: Value = match serde_json::from_slice(&definition.contents) {
        Ok(Value::Object(map)) => Value::Object(map),
        Ok(_) => {
            return vec![invalid(None, "the task definition is not a JSON object")];
        }
        Err(e) => {
            return vec![invalid(
                None,
                format!("the task definition is not JSON: {e}"),
            )]
        }
    };
    let mut findings = check_definition(&definition);
    let wants_component = containers(&definition)
        .iter()
        .any(|c| c.get("type").and_then(Value::as_str) == Some("WASM"));
    if wants_component {
        match content.iter().find(|f| f.path == COMPONENT_FILE) {
            None => findings.push(Diagnostic::error(
                "missing-component",
                Some("containerDescriptors"),
                format!("a WASM container needs its component in `{COMPONENT_FILE}`"),
            )),
            Some(component) if !component.contents.starts_with(WASM_MAGIC) => {
                findings.push(Diagnostic::error(
                    "invalid-component",
                    Some("containerDescriptors"),
                    "the fetched content is not WebAssembly",
                ))
            }
            Some(_) => {}
        }
    }
    findings
}

fn invalid(field: Option<&str>, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error("invalid-task-definition", field, message)
}

fn containers(definition: &Value) -> Vec<Map<String, Value>> {
    definition
        .get("containerDescriptors")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|c| c.as_object().cloned()).collect())
        .unwrap_or_default()
}

/// The definition's own rules: the owner's e-mail, ports, containers.
pub fn check_definition(definition: &Value) -> Vec<Diagnostic> {
    let mut findings = Vec::new();
    match definition.get("taskOwnerEmail") {
        Some(Value::String(email)) if email.contains('@') && !email.trim().is_empty() => {}
        Some(Value::String(email)) if !email.trim().is_empty() => findings.push(Diagnostic::error(
            "invalid-task-owner-email",
            Some("taskOwnerEmail"),
            format!("`{email}` is not an e-mail address"),
        )),
        _ => findings.push(Diagnostic::error(
            "task-owner-email-missing",
            Some("taskOwnerEmail"),
            "taskOwnerEmail is a required field",
        )),
    }
    for field in ["inputPortDescriptors", "outputPortDescriptors"] {
        let Some(ports) = definition.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        let Some(ports) = ports.as_array() else {
            findings.push(invalid(Some(field), format!("{field} must be a list")));
            continue;
        };
        let mut seen = std::collections::HashSet::new();
        for port in ports {
            match port.get("name").and_then(Value::as_str) {
                Some(name) if !name.is_empty() => {
                    if !seen.insert(name.to_lowercase()) {
                        findings.push(invalid(Some(field), format!("port `{name}` appears twice")));
                    }
                }
                _ => findings.push(invalid(
                    Some(field),
                    format!("every entry of {field} needs a name"),
                )),
            }
        }
    }
    let list = definition
        .get("containerDescriptors")
        .and_then(Value::as_array);
    if list.is_none_or(|l| l.is_empty()) {
        findings.push(invalid(
            Some("containerDescriptors"),
            "containerDescriptors must list at least one container",
        ));
    }
    for container in list.into_iter().flatten() {
        let properties = container.get("properties");
        match container.get("type").and_then(Value::as_str) {
            Some("DOCKER") => {
                let image = properties
                    .and_then(|p| p.get("image"))
                    .and_then(Value::as_str);
                if image.is_none_or(str::is_empty) {
                    findings.push(invalid(
                        Some("containerDescriptors"),
                        "a DOCKER container needs properties.image",
                    ));
                }
            }
            Some("WASM") => {
                let has = |key: &str| {
                    properties
                        .and_then(|p| p.get(key))
                        .is_some_and(|v| !v.is_null())
                };
                if has("url") == has("upload") {
                    findings.push(invalid(
                        Some("containerDescriptors"),
                        "a WASM container needs exactly one of properties.url and properties.upload",
                    ));
                }
            }
            other => findings.push(invalid(
                Some("containerDescriptors"),
                format!(
                    "container type {} is not DOCKER or WASM",
                    other
                        .map(|t| format!("`{t}`"))
                        .unwrap_or_else(|| "(none)".into())
                ),
            )),
        }
    }
    findings
}

impl SurfacesGuest for Task {
    /// GBDX tasks are registered through `/workflows/v1/tasks`, which names this type itself; no surface lets a caller choose it besides `/v1`.
    fn served() -> Vec<String> {
        Vec::new()
    }
}

pipewright_sdk::export_type_handler_v0_3!(Task);

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(definition: Value, component: Option<&[u8]>) -> Vec<String> {
        let mut files = vec![File {
            path: DEFINITION_FILE.into(),
            contents: serde_json::to_vec(&definition).unwrap(),
        }];
        if let Some(bytes) = component {
            files.push(File {
                path: COMPONENT_FILE.into(),
                contents: bytes.to_vec(),
            });
        }
        validate_files(&files).into_iter().map(|d| d.code).collect()
    }

    fn docker() -> Value {
        json!({
            "name": "test-success", "version": "0.0.1", "taskOwnerEmail": "TEST@TEST.com",
            "inputPortDescriptors": [{"name": "inputstring", "type": "string", "required": true}],
            "outputPortDescriptors": [{"name": "dependency_output", "type": "string"}],
            "containerDescriptors": [{"type": "DOCKER", "command": "", "properties": {"image": "tdgp/test-success"}}],
            "properties": null
        })
    }

    #[test]
    fn the_seed_example_is_valid() {
        assert!(codes(docker(), None).is_empty());
    }

    #[test]
    fn owner_email_is_required() {
        let mut task = docker();
        task.as_object_mut().unwrap().remove("taskOwnerEmail");
        assert_eq!(codes(task.clone(), None), ["task-owner-email-missing"]);
        task["taskOwnerEmail"] = json!("nobody");
        assert_eq!(codes(task, None), ["invalid-task-owner-email"]);
    }

    #[test]
    fn wasm_containers_need_their_component() {
        let mut task = docker();
        task["containerDescriptors"] =
            json!([{"type": "WASM", "properties": {"url": "http://x/c.wasm"}}]);
        assert_eq!(codes(task.clone(), None), ["missing-component"]);
        assert_eq!(codes(task.clone(), Some(b"MZ..")), ["invalid-component"]);
        assert!(codes(task, Some(b"\0asm\x0d\0\x01\0")).is_empty());
    }

    #[test]
    fn containers_and_ports_are_checked() {
        let mut task = docker();
        task["containerDescriptors"] = json!([]);
        assert_eq!(codes(task.clone(), None), ["invalid-task-definition"]);
        task["containerDescriptors"] = json!([{"type": "OCI"}]);
        assert_eq!(codes(task.clone(), None), ["invalid-task-definition"]);
        let mut task = docker();
        task["inputPortDescriptors"] = json!([{"name": "a"}, {"name": "A"}]);
        assert_eq!(codes(task, None), ["invalid-task-definition"]);
    }
}
