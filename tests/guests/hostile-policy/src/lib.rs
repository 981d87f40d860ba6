//! A deliberately hostile validation policy for the plugin host's containment tests.
//! What it does depends on the candidate's name:
//! `trap` panics (a trap), `loop` never returns, `alloc` asks for 4 GiB, anything else passes.

use pipewright_sdk::policy::{Guest, Pipeline, PolicyContext, Violation};

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Hostile;

impl Guest for Hostile {
    fn check(
        candidate: Pipeline,
        _existing: Vec<String>,
        _ctx: PolicyContext,
    ) -> Result<Pipeline, Vec<Violation>> {
        match candidate.name.as_str() {
            "trap" => panic!("hostile policy traps on purpose"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                // 4 GiB in 256 MiB pieces (one Vec cannot exceed isize::MAX on wasm32), all kept.
                let mut held: Vec<Vec<u8>> = Vec::new();
                for _ in 0..16 {
                    held.push(vec![1u8; 256 << 20]);
                }
                std::hint::black_box(&held);
                Ok(candidate)
            }
            _ => Ok(candidate),
        }
    }
}

pipewright_sdk::export_policy!(Hostile);
