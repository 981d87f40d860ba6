//! `{{name}}`: a validation policy. Pipeline names must be at least [`MIN_NAME_LENGTH`]
//! characters long (code `name-too-short`, field `name`).
//!
//! Edit the rule below, then `pipewright plugin test` (unit tests and `fixtures/`),
//! `pipewright plugin push`, and bind it to a scope (`PUT /v1/policy-bindings/namespace:NAME`).

use pipewright_sdk::policy::{Guest, Pipeline, PolicyContext, Violation};

/// The shortest pipeline name this policy accepts.
pub const MIN_NAME_LENGTH: usize = 4;

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Plugin;

impl Guest for Plugin {
    fn check(
        candidate: Pipeline,
        _existing_versions: Vec<String>,
        _context: PolicyContext,
    ) -> Result<Pipeline, Vec<Violation>> {
        let violations = check_name(&candidate.name);
        if violations.is_empty() {
            Ok(candidate)
        } else {
            Err(violations)
        }
    }
}

/// The rule itself, free of WIT calls so it is unit-tested natively.
pub fn check_name(name: &str) -> Vec<Violation> {
    if name.chars().count() < MIN_NAME_LENGTH {
        vec![Violation::new(
            "name-too-short",
            Some("name"),
            format!("name `{name}` is shorter than {MIN_NAME_LENGTH} characters"),
        )]
    } else {
        Vec::new()
    }
}

pipewright_sdk::export_policy!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_enough_names_pass() {
        let candidate = Pipeline::new("alice", "churn").with_version("1.0.0");
        let verdict = Plugin::check(candidate, vec![], PolicyContext::for_account("alice"));
        assert!(verdict.is_ok());
    }

    #[test]
    fn short_names_are_refused() {
        let violations = check_name("abc");
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].code, "name-too-short");
        assert_eq!(violations[0].field.as_deref(), Some("name"));
    }
}
