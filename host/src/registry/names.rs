//! Names of namespaces, pipelines, accounts and users, and the versions' text.
//!
//! A name is stored as given and keyed case-folded: `Test-Success` and `test-success` are one
//! pipeline; `test-success` and `test_success` are two (no other normalization).
//! What a name may contain beyond the structural rules here is each surface's policy's business.

use super::Finding;

/// Longest namespace, name or version accepted.
pub const MAX_NAME_CHARS: usize = 128;

/// The key a name is looked up by (invariant 1: case-insensitive). Defined by the store, which
/// keeps it in every `*_key` column, so that the store depends on nothing above it.
pub use crate::store::name_key as key;

/// The structural rules every name obeys on every surface: 1 to 128 characters, no `/` (it
/// separates namespace and name), no `:` (it separates name and version), no whitespace or
/// control characters.
pub fn check(field: &str, value: &str) -> Result<(), Finding> {
    let invalid = |why: &str| Finding::new("invalid-name", field, format!("{field} {why}"));
    if value.is_empty() {
        return Err(Finding::new(
            "name-missing",
            field,
            format!("{field} is missing"),
        ));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(&format!(
            "is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '/' | ':') || c.is_whitespace() || c.is_control())
    {
        return Err(invalid(&format!("`{value}` may not contain {c:?}")));
    }
    Ok(())
}

/// The structural rules of a version text: the same as a name's (a `:` is refused too, so that
/// `name:version` splits at its one colon), reported as `version-missing` / `invalid-version`.
pub fn check_version(value: &str) -> Result<(), Finding> {
    check("version", value).map_err(|f| Finding {
        code: if f.code == "name-missing" {
            "version-missing".into()
        } else {
            "invalid-version".into()
        },
        ..f
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_case_and_nothing_else() {
        assert_eq!(key("Test-Success"), key("test-success"));
        assert_ne!(key("test-success"), key("test_success"));
        assert_ne!(key("x"), key("x_beta"));
    }

    #[test]
    fn structural_rules() {
        assert!(check("name", "test-success").is_ok());
        assert!(check("name", "Ünïcode_ok").is_ok());
        assert_eq!(check("name", "").unwrap_err().code, "name-missing");
        assert_eq!(check("name", "a/b").unwrap_err().code, "invalid-name");
        assert_eq!(check("name", "a:b").unwrap_err().code, "invalid-name");
        assert_eq!(check("name", "a b").unwrap_err().code, "invalid-name");
        assert_eq!(check("name", "a\u{0}").unwrap_err().code, "invalid-name");
        assert_eq!(
            check("name", &"x".repeat(10_000)).unwrap_err().code,
            "invalid-name"
        );
        assert!(check("name", &"x".repeat(MAX_NAME_CHARS)).is_ok());
    }

    #[test]
    fn version_text_rules() {
        assert!(check_version("1.0.0-rc.1+build.5").is_ok());
        assert_eq!(check_version("").unwrap_err().code, "version-missing");
        assert_eq!(check_version("1.0/2").unwrap_err().code, "invalid-version");
    }
}
