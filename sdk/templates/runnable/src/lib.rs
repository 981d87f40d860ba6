//! `{{name}}`: a runnable pipeline. Input `text` (string), output `words` (integer): how many
//! whitespace-separated words the text has.
//!
//! Edit `run` below (and `pipeline.yaml` if the inputs or outputs change), then
//! `pipewright plugin test` (unit tests and `fixtures/`) and `pipewright plugin push`.

use pipewright_sdk::runnable::{string, Guest, NamedValue, RunError, Value};

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Plugin;

impl Guest for Plugin {
    fn run(inputs: Vec<NamedValue>) -> Result<Vec<NamedValue>, RunError> {
        let text = string(&inputs, "text")?;
        Ok(vec![NamedValue::new(
            "words",
            Value::Integer(count_words(&text)),
        )])
    }
}

/// The pipeline's logic, free of WIT calls so it is unit-tested natively.
pub fn count_words(text: &str) -> i64 {
    text.split_whitespace().count() as i64
}

pipewright_sdk::export_runnable!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use pipewright_sdk::testing::string_input;

    #[test]
    fn counts_words() {
        assert_eq!(count_words("  the quick\tbrown fox "), 4);
        assert_eq!(count_words(""), 0);
    }

    #[test]
    fn a_missing_input_is_an_error() {
        let error = Plugin::run(vec![string_input("other", "x")]).unwrap_err();
        assert_eq!(error.code, "missing-input");
    }
}
