//! `policy-semver`: a version must be a semantic version (`major.minor.patch`) and higher than
//! every version of the same name already registered, in any state (GBDX task versioning).
//!
//! Codes: `invalid-version` (missing or not semver), `version-not-incremented` (equal to an
//! existing version), `version-lower-than-latest` (lower than the highest existing version).
//! Existing versions that are not semver (registered under another policy) are ignored.

use pipewright_sdk::policy::{Guest, Pipeline, PolicyContext, Violation};
use semver::Version;

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct SemverPolicy;

impl Guest for SemverPolicy {
    fn check(
        candidate: Pipeline,
        existing_versions: Vec<String>,
        _context: PolicyContext,
    ) -> Result<Pipeline, Vec<Violation>> {
        match check_version(candidate.version.as_deref(), &existing_versions) {
            None => Ok(candidate),
            Some(violation) => Err(vec![violation]),
        }
    }
}

/// The rule itself, free of WIT so it is unit-tested natively.
pub fn check_version(version: Option<&str>, existing: &[String]) -> Option<Violation> {
    let Some(text) = version else {
        return Some(Violation::new(
            "invalid-version",
            Some("version"),
            "a version is required",
        ));
    };
    let candidate = match Version::parse(text) {
        Ok(v) => v,
        Err(e) => {
            return Some(Violation::new(
                "invalid-version",
                Some("version"),
                format!("`{text}` is not a semantic version (major.minor.patch): {e}"),
            ))
        }
    };
    let highest = existing
        .iter()
        .filter_map(|v| Version::parse(v).ok())
        .max()?;
    match candidate.cmp_precedence(&highest) {
        std::cmp::Ordering::Greater => None,
        std::cmp::Ordering::Equal => Some(Violation::new(
            "version-not-incremented",
            Some("version"),
            format!("version {text} is already registered; it must be incremented"),
        )),
        std::cmp::Ordering::Less => Some(Violation::new(
            "version-lower-than-latest",
            Some("version"),
            format!(
                "version {text} is lower than the registered {highest}; it must be incremented"
            ),
        )),
    }
}

pipewright_sdk::export_policy!(SemverPolicy);

#[cfg(test)]
mod tests {
    use super::check_version;

    fn code(version: Option<&str>, existing: &[&str]) -> Option<String> {
        let existing: Vec<String> = existing.iter().map(|s| s.to_string()).collect();
        check_version(version, &existing).map(|v| v.code)
    }

    #[test]
    fn first_version_must_be_semver() {
        assert_eq!(code(Some("0.0.1"), &[]), None);
        assert_eq!(code(Some("1.0"), &[]).as_deref(), Some("invalid-version"));
        assert_eq!(
            code(Some("v1.0.0"), &[]).as_deref(),
            Some("invalid-version")
        );
        assert_eq!(code(None, &[]).as_deref(), Some("invalid-version"));
    }

    #[test]
    fn must_be_higher_than_every_existing_version() {
        assert_eq!(code(Some("0.0.2"), &["0.0.1"]), None);
        assert_eq!(code(Some("1.0.0"), &["0.0.1", "0.0.2"]), None);
        assert_eq!(
            code(Some("0.0.2"), &["0.0.2"]).as_deref(),
            Some("version-not-incremented")
        );
        assert_eq!(
            code(Some("0.0.1"), &["0.0.2"]).as_deref(),
            Some("version-lower-than-latest")
        );
        // precedence, not string order: 0.10.0 > 0.9.0
        assert_eq!(code(Some("0.10.0"), &["0.9.0"]), None);
        // build metadata does not count for precedence
        assert_eq!(
            code(Some("1.0.0+b2"), &["1.0.0+b1"]).as_deref(),
            Some("version-not-incremented")
        );
    }

    #[test]
    fn non_semver_existing_versions_are_ignored() {
        assert_eq!(code(Some("0.0.1"), &["1.0", "latest"]), None);
    }
}
