//! A runnable pipeline whose code uses WebAssembly tail calls (`return_call_indirect`), which
//! wasmtime's baseline compiler (Winch) does not support: registration compiles it with
//! Cranelift at once and says so in the version's registration details. It greets like `hello`
//! (input `text`, output `greeting`), through a function pointer called in tail position.

use pipewright_sdk::runnable::{string, Guest, NamedValue, RunError, Value};

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct TailCall;

impl Guest for TailCall {
    fn run(inputs: Vec<NamedValue>) -> Result<Vec<NamedValue>, RunError> {
        let text = string(&inputs, "text")?;
        // SAFETY: every wasmtime this runs on supports tail calls, or refuses the component
        // at compile time; nothing is left to fail at run time.
        let greeting = unsafe { through(std::hint::black_box(greet), &text) };
        Ok(vec![NamedValue::new("greeting", Value::String(greeting))])
    }
}

/// Calls `f` in tail position: with the feature on, LLVM emits `return_call_indirect`.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "tail-call"))]
#[inline(never)]
unsafe fn through(f: fn(&str) -> String, text: &str) -> String {
    f(text)
}

#[inline(never)]
fn greet(text: &str) -> String {
    format!("Hello, {text}!")
}

pipewright_sdk::export_runnable!(TailCall);
