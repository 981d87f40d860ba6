//! A runnable pipeline that misbehaves on request, for the run engine's tests. Input `mode`:
//! `trap` panics, `loop` never returns, `alloc` asks for 1 GiB, `sleep:MS` sleeps then answers,
//! `escape` tries to read outside its preopened directories, `say:TEXT` prints `TEXT` on
//! stdout and `TEXT (stderr)` on stderr, `flood:BYTES` prints that many bytes on stdout (past
//! the host's capture bound, to see it cut), `nap:MS` says so on stdout and then sleeps (to be
//! stopped midway), `count` answers how many runs this instance has served (`run 1` when each
//! run has an instance of its own); anything else is echoed.

use pipewright_sdk::runnable::{string, Guest, NamedValue, RunError, Value};

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Hostile;

impl Guest for Hostile {
    fn run(inputs: Vec<NamedValue>) -> Result<Vec<NamedValue>, RunError> {
        let mode = string(&inputs, "mode")?;
        let answer = match mode.as_str() {
            "trap" => panic!("hostile pipeline asked to trap"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let big = vec![1u8; 1 << 30];
                format!("allocated {}", big.len())
            }
            "count" => {
                static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let runs = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                format!("run {runs}")
            }
            "escape" => match std::fs::read_to_string("/etc/passwd") {
                Ok(_) => "read /etc/passwd".to_string(),
                Err(e) => format!("refused: {e}"),
            },
            other if other.starts_with("say:") => {
                let text = &other["say:".len()..];
                println!("{text}");
                eprintln!("{text} (stderr)");
                format!("said {text}")
            }
            other if other.starts_with("flood:") => {
                let bytes: usize = other["flood:".len()..].parse().unwrap_or(0);
                let line = "x".repeat(1023) + "\n";
                let mut written = 0;
                while written < bytes {
                    print!("{}", &line[..line.len().min(bytes - written)]);
                    written += line.len();
                }
                format!("flooded {bytes} bytes")
            }
            other if other.starts_with("nap:") => {
                let ms: u64 = other["nap:".len()..].parse().unwrap_or(0);
                println!("napping {ms} ms");
                std::thread::sleep(std::time::Duration::from_millis(ms));
                format!("napped {ms} ms")
            }
            other => match other.strip_prefix("sleep:").and_then(|ms| ms.parse().ok()) {
                Some(ms) => {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    format!("slept {ms} ms")
                }
                None => other.to_string(),
            },
        };
        Ok(vec![NamedValue::new("result", Value::String(answer))])
    }
}

pipewright_sdk::export_runnable!(Hostile);
