//! `jupyter`: the Jupyter notebook pipeline type.
//!
//! Content is one or more `.ipynb` files (nbformat 4 JSON); a new pipeline starts with an empty
//! `notebook.ipynb`. `launch` starts (or finds) a JupyterHub named server for the pipeline: see
//! [`launch`] for the REST sequence and what the operator grants.

pub mod launch;

use pipewright_sdk::type_handler::service::HostTransport;
use pipewright_sdk::type_handler::{
    host, validate_json_documents, Diagnostic, File, Guest, LaunchContext, LaunchInfo, Pipeline,
    PluginError, TypeInfo,
};
use pipewright_sdk::v0_3::{SurfacesGuest, ACUMOS};
use serde_json::{json, Value};

pub const NOTEBOOK_FILE: &str = "notebook.ipynb";

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Jupyter;

impl Guest for Jupyter {
    fn describe() -> TypeInfo {
        TypeInfo {
            id: "jupyter".into(),
            display_name: "Jupyter".into(),
            content_kinds: vec!["application/x-ipynb+json".into()],
            default_files: vec![NOTEBOOK_FILE.into()],
        }
    }

    fn validate(_pipeline: Pipeline, content: Vec<File>) -> Vec<Diagnostic> {
        validate_files(&content)
    }

    fn scaffold(_pipeline: Pipeline) -> Vec<File> {
        vec![File {
            path: NOTEBOOK_FILE.into(),
            contents: empty_notebook(),
        }]
    }

    fn launch(context: LaunchContext) -> Result<LaunchInfo, PluginError> {
        let settings = launch::Settings::from_config(host::config)?;
        launch::launch(&mut HostTransport, &settings, &context)
    }
}

/// An empty nbformat 4.5 notebook with a Python 3 kernel.
pub fn empty_notebook() -> Vec<u8> {
    let notebook = json!({
        "cells": [],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5
    });
    serde_json::to_vec_pretty(&notebook).expect("a literal serializes")
}

/// Every `.ipynb` must be an nbformat 4 notebook with a `cells` list; at least one must exist.
pub fn validate_files(content: &[File]) -> Vec<Diagnostic> {
    validate_json_documents(
        content,
        ".ipynb",
        "missing-notebook",
        "invalid-notebook",
        check_notebook,
    )
}

fn check_notebook(doc: &Value) -> Result<(), String> {
    match doc.get("nbformat").and_then(Value::as_u64) {
        Some(4) => {}
        Some(other) => return Err(format!("nbformat {other} is not supported (4 is)")),
        None => return Err("no `nbformat` number".into()),
    }
    if !doc.get("cells").is_some_and(Value::is_array) {
        return Err("no `cells` list".into());
    }
    Ok(())
}

impl SurfacesGuest for Jupyter {
    /// A Workbench pipeline type (the seed's `Jupyter`): offered as the Acumos `pipelineType` too.
    fn served() -> Vec<String> {
        vec![ACUMOS.into()]
    }
}

pipewright_sdk::export_type_handler_v0_3!(Jupyter);

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
    fn scaffold_is_a_valid_notebook() {
        assert!(validate_files(&[file(NOTEBOOK_FILE, &empty_notebook())]).is_empty());
    }

    #[test]
    fn refuses_missing_or_broken_notebooks() {
        let codes = |files: &[File]| {
            validate_files(files)
                .into_iter()
                .map(|d| d.code)
                .collect::<Vec<_>>()
        };
        assert_eq!(codes(&[file("readme.md", b"hi")]), ["missing-notebook"]);
        assert_eq!(
            codes(&[file("a.ipynb", b"{not json")]),
            ["invalid-notebook"]
        );
        assert_eq!(
            codes(&[file("a.ipynb", br#"{"nbformat": 3, "cells": []}"#)]),
            ["invalid-notebook"]
        );
        assert_eq!(
            codes(&[file("a.ipynb", br#"{"nbformat": 4}"#)]),
            ["invalid-notebook"]
        );
    }
}
