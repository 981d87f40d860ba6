//! `big`: a runnable pipeline carrying several real tools, so that its component is about
//! 5 MB of code (what compiling it costs is what the bench measures). Input `text` (string) and
//! `mode` (string): `rust` formats `text` as Rust source, `wasm` prints the WebAssembly module
//! whose bytes `text` holds in hex, `wit` parses `text` as a WIT package and lists its
//! interfaces, `regex` lists the words of `text`; output `result` (string).

use pipewright_sdk::runnable::{string, Guest, NamedValue, RunError, Value};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Big;

impl Guest for Big {
    fn run(inputs: Vec<NamedValue>) -> Result<Vec<NamedValue>, RunError> {
        let text = string(&inputs, "text")?;
        let mode = string(&inputs, "mode")?;
        let failed = |e: String| RunError::new("invalid-input", e);
        let result = match mode.as_str() {
            "rust" => {
                let file = syn::parse_file(&text).map_err(|e| failed(e.to_string()))?;
                prettyplease::unparse(&file)
            }
            "wasm" => {
                let bytes = (0..text.len() / 2)
                    .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|e| failed(e.to_string()))?;
                wasmparser::Validator::new()
                    .validate_all(&bytes)
                    .map_err(|e| failed(e.to_string()))?;
                wasmprinter::print_bytes(&bytes).map_err(|e| failed(e.to_string()))?
            }
            "wit" => {
                let mut resolve = wit_parser::Resolve::default();
                let package = resolve
                    .push_str("input.wit", &text)
                    .map_err(|e| failed(format!("{e:#}")))?;
                let names: Vec<&str> = resolve.packages[package]
                    .interfaces
                    .keys()
                    .map(String::as_str)
                    .collect();
                serde_json::to_string(&names).unwrap_or_default()
            }
            _ => {
                let words = regex::Regex::new(r"\p{L}+").expect("a valid pattern");
                let found: Vec<&str> = words.find_iter(&text).map(|m| m.as_str()).collect();
                serde_json::to_string(&found).unwrap_or_default()
            }
        };
        Ok(vec![NamedValue::new("result", Value::String(result))])
    }
}

pipewright_sdk::export_runnable!(Big);
