//! `file-io`: a runnable pipeline with files. Input `document` (file) is read from `/inputs`,
//! the bundled `/pipeline/header.txt` is put before it, and the upper-cased result is written
//! to `/outputs/result.txt` and returned as output `result` (file), with its `lines` (integer).

use pipewright_sdk::runnable::{
    input, Guest, NamedValue, RunError, Value, OUTPUTS_DIR, PIPELINE_DIR,
};

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct FileIo;

impl Guest for FileIo {
    fn run(inputs: Vec<NamedValue>) -> Result<Vec<NamedValue>, RunError> {
        let Value::File(path) = input(&inputs, "document")? else {
            return Err(RunError::new(
                "wrong-input-type",
                "input `document` must be a file",
            ));
        };
        let io = |what: &str, e: std::io::Error| RunError::new("io", format!("{what}: {e}"));
        let document = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
        let header_path = format!("{PIPELINE_DIR}/header.txt");
        let header = std::fs::read_to_string(&header_path).unwrap_or_default();
        let result = transform(&header, &document);
        let out = format!("{OUTPUTS_DIR}/result.txt");
        std::fs::write(&out, &result).map_err(|e| io(&out, e))?;
        Ok(vec![
            NamedValue::new("result", Value::File(out)),
            NamedValue::new("lines", Value::Integer(result.lines().count() as i64)),
        ])
    }
}

pub fn transform(header: &str, document: &str) -> String {
    format!("{header}{}", document.to_uppercase())
}

pipewright_sdk::export_runnable!(FileIo);

#[cfg(test)]
mod tests {
    #[test]
    fn upper_cases_after_the_header() {
        assert_eq!(super::transform("# ", "ab\ncd"), "# AB\nCD");
    }
}
