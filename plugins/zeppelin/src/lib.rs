//! `zeppelin`: the Apache Zeppelin note pipeline type.
//!
//! Content is one or more `.zpln` files (Zeppelin 0.9+ note JSON: `name`, `paragraphs`, `config`);
//! a new pipeline starts with an empty `note.zpln`. `launch` finds or creates the pipeline's note
//! through Zeppelin's notebook REST API: see [`launch`].

pub mod launch;

use pipewright_sdk::type_handler::service::HostTransport;
use pipewright_sdk::type_handler::{
    host, validate_json_documents, Diagnostic, File, Guest, LaunchContext, LaunchInfo, Pipeline,
    PluginError, TypeInfo,
};
use pipewright_sdk::v0_3::{SurfacesGuest, ACUMOS};
use serde_json::{json, Value};

pub const NOTE_FILE: &str = "note.zpln";

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Zeppelin;

impl Guest for Zeppelin {
    fn describe() -> TypeInfo {
        TypeInfo {
            id: "zeppelin".into(),
            display_name: "Zeppelin".into(),
            content_kinds: vec!["application/vnd.zeppelin.note+json".into()],
            default_files: vec![NOTE_FILE.into()],
        }
    }

    fn validate(_pipeline: Pipeline, content: Vec<File>) -> Vec<Diagnostic> {
        validate_files(&content)
    }

    fn scaffold(pipeline: Pipeline) -> Vec<File> {
        vec![File {
            path: NOTE_FILE.into(),
            contents: empty_note(&pipeline.name),
        }]
    }

    fn launch(context: LaunchContext) -> Result<LaunchInfo, PluginError> {
        let zeppelin_url = launch::zeppelin_url(host::config("url"))?;
        launch::launch(&mut HostTransport, &zeppelin_url, &context)
    }
}

/// An empty Zeppelin note named after the pipeline.
pub fn empty_note(name: &str) -> Vec<u8> {
    let note = json!({
        "name": name,
        "paragraphs": [],
        "config": {"isZeppelinNotebookCronEnable": false},
        "info": {},
        "noteParams": {},
        "noteForms": {},
        "angularObjects": {},
        "version": "0.10.1"
    });
    serde_json::to_vec_pretty(&note).expect("a literal serializes")
}

/// Every `.zpln` must be a JSON object with a `paragraphs` list; at least one must exist.
pub fn validate_files(content: &[File]) -> Vec<Diagnostic> {
    validate_json_documents(content, ".zpln", "missing-note", "invalid-note", check_note)
}

fn check_note(doc: &Value) -> Result<(), String> {
    if !doc.get("paragraphs").is_some_and(Value::is_array) {
        return Err("no `paragraphs` list".into());
    }
    Ok(())
}

impl SurfacesGuest for Zeppelin {
    /// A Workbench pipeline type (the seed's `Zeppelin`): offered as the Acumos `pipelineType` too.
    fn served() -> Vec<String> {
        vec![ACUMOS.into()]
    }
}

pipewright_sdk::export_type_handler_v0_3!(Zeppelin);

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, contents: &[u8]) -> File {
        File {
            path: path.into(),
            contents: contents.to_vec(),
        }
    }

    #[test]
    fn scaffold_is_a_valid_note() {
        assert!(validate_files(&[file(NOTE_FILE, &empty_note("demo"))]).is_empty());
    }

    #[test]
    fn refuses_missing_or_broken_notes() {
        let codes = |files: &[File]| {
            validate_files(files)
                .into_iter()
                .map(|d| d.code)
                .collect::<Vec<_>>()
        };
        assert_eq!(codes(&[file("a.ipynb", b"{}")]), ["missing-note"]);
        assert_eq!(codes(&[file("n.zpln", b"[")]), ["invalid-note"]);
        assert_eq!(
            codes(&[file("n.zpln", br#"{"name": "x"}"#)]),
            ["invalid-note"]
        );
    }
}
