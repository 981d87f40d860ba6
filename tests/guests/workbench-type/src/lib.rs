//! `workbench-type`: a pipeline type uploaded at run time by the plugin registry's tests, built
//! against `pipewright:plugin@0.3.0`, which declares the ML Workbench's surface (`acumos`): an
//! uploaded type the Workbench offers beside its built-in Jupyter and Zeppelin. An `rmarkdown`
//! pipeline is a `report.Rmd`; it cannot be launched.

// Everything here is reached only through the export glue, which exists on wasm32 alone.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use pipewright_sdk::v0_3::{
    Diagnostic, File, Guest, LaunchContext, LaunchInfo, Pipeline, PluginError, SurfacesGuest,
    TypeInfo, ACUMOS,
};

const REPORT_FILE: &str = "report.Rmd";

struct RMarkdown;

impl Guest for RMarkdown {
    fn describe() -> TypeInfo {
        TypeInfo {
            id: "rmarkdown".into(),
            display_name: "R Markdown".into(),
            content_kinds: vec!["text/x-r-markdown".into()],
            default_files: vec![REPORT_FILE.into()],
        }
    }

    fn validate(_pipeline: Pipeline, content: Vec<File>) -> Vec<Diagnostic> {
        if content.iter().any(|f| f.path == REPORT_FILE) {
            Vec::new()
        } else {
            vec![Diagnostic::error(
                "missing-report",
                None,
                format!("no `{REPORT_FILE}`"),
            )]
        }
    }

    fn scaffold(pipeline: Pipeline) -> Vec<File> {
        vec![File {
            path: REPORT_FILE.into(),
            contents: format!("---\ntitle: {}\n---\n", pipeline.name).into_bytes(),
        }]
    }

    fn launch(_context: LaunchContext) -> Result<LaunchInfo, PluginError> {
        Err(PluginError::new(
            "launch-unavailable",
            "an R Markdown report has nothing to launch here",
        ))
    }
}

impl SurfacesGuest for RMarkdown {
    fn served() -> Vec<String> {
        vec![ACUMOS.into()]
    }
}

pipewright_sdk::export_type_handler_v0_3!(RMarkdown);
