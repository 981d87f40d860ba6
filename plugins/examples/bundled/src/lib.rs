//! `bundled`: a runnable pipeline that reads a file bundled with it. Input `name` (string);
//! output `message` (string): the template in `/pipeline/template.txt` with `{name}` filled in.

use pipewright_sdk::runnable::{string, Guest, NamedValue, RunError, Value, PIPELINE_DIR};

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Bundled;

impl Guest for Bundled {
    fn run(inputs: Vec<NamedValue>) -> Result<Vec<NamedValue>, RunError> {
        let name = string(&inputs, "name")?;
        let path = format!("{PIPELINE_DIR}/template.txt");
        let template = std::fs::read_to_string(&path)
            .map_err(|e| RunError::new("missing-template", format!("{path}: {e}")))?;
        Ok(vec![NamedValue::new(
            "message",
            Value::String(fill(&template, &name)),
        )])
    }
}

pub fn fill(template: &str, name: &str) -> String {
    template.trim_end().replace("{name}", name)
}

pipewright_sdk::export_runnable!(Bundled);

#[cfg(test)]
mod tests {
    #[test]
    fn fills_the_template() {
        assert_eq!(super::fill("Howdy, {name}!\n", "world"), "Howdy, world!");
    }
}
