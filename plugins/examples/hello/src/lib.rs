//! `hello`: the smallest runnable pipeline. Input `text` (string), output `greeting` (string).

use pipewright_sdk::runnable::{string, Guest, NamedValue, RunError, Value};

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Hello;

impl Guest for Hello {
    fn run(inputs: Vec<NamedValue>) -> Result<Vec<NamedValue>, RunError> {
        Ok(vec![NamedValue::new(
            "greeting",
            Value::String(greet(&string(&inputs, "text")?)),
        )])
    }
}

pub fn greet(text: &str) -> String {
    format!("Hello, {text}!")
}

pipewright_sdk::export_runnable!(Hello);

#[cfg(test)]
mod tests {
    #[test]
    fn greets() {
        assert_eq!(super::greet("world"), "Hello, world!");
    }
}
