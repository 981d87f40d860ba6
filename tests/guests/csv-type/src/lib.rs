//! `csv-type`: a pipeline type uploaded at run time by the plugin registry's tests, to show a
//! new type becoming valid on every surface without a host change. A `csv` pipeline is a
//! `data.csv` whose first line is a header; it cannot be launched.

// Everything here is reached only through the export glue, which exists on wasm32 alone.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use pipewright_sdk::type_handler::{
    Diagnostic, File, Guest, LaunchContext, LaunchInfo, Pipeline, PluginError, Severity, TypeInfo,
};

const DATA_FILE: &str = "data.csv";

struct Csv;

impl Guest for Csv {
    fn describe() -> TypeInfo {
        TypeInfo {
            id: "csv".into(),
            display_name: "CSV table".into(),
            content_kinds: vec!["text/csv".into()],
            default_files: vec![DATA_FILE.into()],
        }
    }

    fn validate(_pipeline: Pipeline, content: Vec<File>) -> Vec<Diagnostic> {
        let Some(data) = content.iter().find(|f| f.path == DATA_FILE) else {
            return vec![error("missing-data", format!("no `{DATA_FILE}`"))];
        };
        match std::str::from_utf8(&data.contents) {
            Ok(text) if text.lines().next().is_some_and(|h| !h.trim().is_empty()) => Vec::new(),
            Ok(_) => vec![error(
                "missing-header",
                format!("`{DATA_FILE}` has no header line"),
            )],
            Err(_) => vec![error(
                "not-text",
                format!("`{DATA_FILE}` is not UTF-8 text"),
            )],
        }
    }

    fn scaffold(_pipeline: Pipeline) -> Vec<File> {
        vec![File {
            path: DATA_FILE.into(),
            contents: b"id,value\n".to_vec(),
        }]
    }

    fn launch(_context: LaunchContext) -> Result<LaunchInfo, PluginError> {
        Err(PluginError {
            code: "launch-unavailable".into(),
            message: "a CSV table has nothing to launch".into(),
        })
    }
}

fn error(code: &str, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        code: code.into(),
        field: None,
        message,
    }
}

pipewright_sdk::export_type_handler!(Csv);
