//! `described-policy`: a policy built against `pipewright:plugin@0.2.0`, for the test that a
//! host loads plugins of both WIT versions side by side. It refuses names longer than 12
//! characters, and says so through 0.2.0's `about`.

use pipewright_sdk::v0_2::{AboutGuest, Guest, Pipeline, PolicyAbout, PolicyContext, Violation};

const MAX_NAME: usize = 12;

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct ShortNames;

impl Guest for ShortNames {
    fn check(
        candidate: Pipeline,
        _existing: Vec<String>,
        _ctx: PolicyContext,
    ) -> Result<Pipeline, Vec<Violation>> {
        if candidate.name.chars().count() > MAX_NAME {
            return Err(vec![Violation::new(
                "name-too-long",
                Some("name"),
                format!(
                    "name `{}` is longer than {MAX_NAME} characters",
                    candidate.name
                ),
            )]);
        }
        Ok(candidate)
    }
}

impl AboutGuest for ShortNames {
    fn describe() -> PolicyAbout {
        PolicyAbout {
            summary: format!("pipeline names are at most {MAX_NAME} characters"),
            codes: vec!["name-too-long".into()],
        }
    }
}

pipewright_sdk::export_policy_v0_2!(ShortNames);
