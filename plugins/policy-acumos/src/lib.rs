//! `policy-acumos`: the Acumos ML Workbench pipeline name and version rules, from its seed:
//!
//! - "Pipeline name may contain alphanumeric characters and `_` character – no other characters
//!   are allowed. The name must start with an alpha character."
//! - "Pipeline version is optional. It is a string which can contain alphanumeric characters,
//!   zero or more `_` character, and zero or more period character. The version must start with a
//!   numeric character."
//!
//! Codes, in the seed's order: `name-missing`, `invalid-name`, `invalid-version`.
//! "Alphanumeric" is read as ASCII letters and digits.

use pipewright_sdk::policy::{Guest, Pipeline, PolicyContext, Violation};

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct AcumosPolicy;

impl Guest for AcumosPolicy {
    fn check(
        candidate: Pipeline,
        _existing_versions: Vec<String>,
        _context: PolicyContext,
    ) -> Result<Pipeline, Vec<Violation>> {
        let violations = check_pipeline(&candidate.name, candidate.version.as_deref());
        if violations.is_empty() {
            Ok(candidate)
        } else {
            Err(violations)
        }
    }
}

/// The rules themselves, free of WIT so they are unit-tested natively.
pub fn check_pipeline(name: &str, version: Option<&str>) -> Vec<Violation> {
    let mut violations = Vec::new();
    if name.trim().is_empty() {
        violations.push(Violation::new(
            "name-missing",
            Some("name"),
            "pipeline name is missing",
        ));
    } else if !valid_name(name) {
        violations.push(Violation::new(
            "invalid-name",
            Some("name"),
            format!("`{name}` must start with a letter and hold only letters, digits and `_`"),
        ));
    }
    if let Some(version) = version.filter(|v| !v.is_empty()) {
        if !valid_version(version) {
            violations.push(Violation::new(
                "invalid-version",
                Some("version"),
                format!("`{version}` must start with a digit and hold only letters, digits, `_` and `.`"),
            ));
        }
    }
    violations
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_version(version: &str) -> bool {
    let mut chars = version.chars();
    chars.next().is_some_and(|c| c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

pipewright_sdk::export_policy!(AcumosPolicy);

#[cfg(test)]
mod tests {
    use super::check_pipeline;

    fn codes(name: &str, version: Option<&str>) -> Vec<String> {
        check_pipeline(name, version)
            .into_iter()
            .map(|v| v.code)
            .collect()
    }

    #[test]
    fn valid_names_and_versions() {
        assert!(codes("churn_model2", Some("1.0")).is_empty());
        assert!(codes("A", None).is_empty());
        assert!(codes("x", Some("2_rc.1")).is_empty());
        assert!(
            codes("x", Some("")).is_empty(),
            "an empty version is an absent version"
        );
    }

    #[test]
    fn name_rules() {
        assert_eq!(codes("", None), ["name-missing"]);
        assert_eq!(codes("   ", None), ["name-missing"]);
        assert_eq!(codes("1abc", None), ["invalid-name"]);
        assert_eq!(codes("_abc", None), ["invalid-name"]);
        assert_eq!(codes("my-pipeline", None), ["invalid-name"]);
        assert_eq!(codes("my pipeline", None), ["invalid-name"]);
        assert_eq!(codes("café", None), ["invalid-name"]);
    }

    #[test]
    fn version_rules() {
        assert_eq!(codes("x", Some("v1")), ["invalid-version"]);
        assert_eq!(codes("x", Some("1-0")), ["invalid-version"]);
        assert_eq!(codes("x", Some(".1")), ["invalid-version"]);
        assert_eq!(codes("1x", Some("v1")), ["invalid-name", "invalid-version"]);
    }
}
