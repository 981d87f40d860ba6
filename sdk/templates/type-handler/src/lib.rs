//! `{{name}}`: the `{{type_id}}` pipeline type.
//!
//! A pipeline of this type is a list of steps: a file `steps.txt`, one step per line, `#` starts
//! a comment. `validate` wants that file with at least one step; `scaffold` writes it; `launch`
//! has no service to start and says so. `served` offers the type on the ML Workbench's surface
//! (`acumos`) as well as on `/v1`; return no surface to offer it on `/v1` only.
//!
//! Edit the rules below, then `pipewright plugin test` (unit tests and `fixtures/`) and
//! `pipewright plugin push`.

use pipewright_sdk::v0_3::{
    Diagnostic, File, Guest, LaunchContext, LaunchInfo, Pipeline, PluginError, SurfacesGuest,
    TypeInfo, ACUMOS,
};

/// The type id on the wire (`POST /v1/pipelines {"type": "{{type_id}}"}`).
pub const TYPE_ID: &str = "{{type_id}}";
/// The file a pipeline of this type is made of.
pub const STEPS_FILE: &str = "steps.txt";

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Plugin;

impl Guest for Plugin {
    fn describe() -> TypeInfo {
        TypeInfo {
            id: TYPE_ID.into(),
            display_name: "{{display_name}}".into(),
            content_kinds: vec!["text/plain".into()],
            default_files: vec![STEPS_FILE.into()],
        }
    }

    fn validate(_pipeline: Pipeline, content: Vec<File>) -> Vec<Diagnostic> {
        validate_steps(&content)
    }

    fn scaffold(pipeline: Pipeline) -> Vec<File> {
        vec![File::text(STEPS_FILE, &starting_steps(&pipeline.name))]
    }

    fn launch(_context: LaunchContext) -> Result<LaunchInfo, PluginError> {
        Err(PluginError::new(
            "unsupported",
            format!("`{TYPE_ID}` pipelines have no service to launch"),
        ))
    }
}

impl SurfacesGuest for Plugin {
    fn served() -> Vec<String> {
        vec![ACUMOS.into()]
    }
}

/// The rule itself, free of WIT calls so it is unit-tested natively: `steps.txt` must exist
/// (`missing-steps`) and hold at least one step (`no-steps`).
pub fn validate_steps(content: &[File]) -> Vec<Diagnostic> {
    let Some(steps) = content.iter().find(|f| f.path == STEPS_FILE) else {
        return vec![Diagnostic::error(
            "missing-steps",
            None,
            format!("the content holds no `{STEPS_FILE}`"),
        )];
    };
    let has_a_step = steps
        .contents_text()
        .lines()
        .map(str::trim)
        .any(|line| !line.is_empty() && !line.starts_with('#'));
    if has_a_step {
        Vec::new()
    } else {
        vec![Diagnostic::error(
            "no-steps",
            Some(STEPS_FILE),
            format!("`{STEPS_FILE}` lists no step"),
        )]
    }
}

/// What a new pipeline called `name` starts with.
pub fn starting_steps(name: &str) -> String {
    format!("# The steps of {name}, one per line.\nfetch the data\n")
}

pipewright_sdk::export_type_handler_v0_3!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(content: &[File]) -> Vec<String> {
        validate_steps(content).into_iter().map(|d| d.code).collect()
    }

    #[test]
    fn the_scaffold_is_valid() {
        assert!(codes(&[File::text(STEPS_FILE, &starting_steps("demo"))]).is_empty());
    }

    #[test]
    fn a_missing_or_empty_steps_file_is_refused() {
        assert_eq!(codes(&[]), ["missing-steps"]);
        assert_eq!(codes(&[File::text(STEPS_FILE, "# only a comment\n")]), ["no-steps"]);
    }
}
