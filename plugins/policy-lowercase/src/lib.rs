//! `policy-lowercase`: namespace and name must be lowercase (Mystic's rule: "All usernames,
//! pipeline names, etc. are now required to be lowercase", as Docker image names are).
//!
//! Code: `name-not-lowercase`, with `field` `name` or `namespace`.

use pipewright_sdk::policy::{Guest, Pipeline, PolicyContext, Violation};

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct LowercasePolicy;

impl Guest for LowercasePolicy {
    fn check(
        candidate: Pipeline,
        _existing_versions: Vec<String>,
        _context: PolicyContext,
    ) -> Result<Pipeline, Vec<Violation>> {
        let violations = check_names(&candidate.namespace, &candidate.name);
        if violations.is_empty() {
            Ok(candidate)
        } else {
            Err(violations)
        }
    }
}

/// The rule itself, free of WIT so it is unit-tested natively.
pub fn check_names(namespace: &str, name: &str) -> Vec<Violation> {
    [("namespace", namespace), ("name", name)]
        .into_iter()
        .filter(|(_, value)| value.chars().any(char::is_uppercase))
        .map(|(field, value)| {
            Violation::new(
                "name-not-lowercase",
                Some(field),
                format!("{field} `{value}` must be lowercase"),
            )
        })
        .collect()
}

pipewright_sdk::export_policy!(LowercasePolicy);

#[cfg(test)]
mod tests {
    use super::check_names;

    #[test]
    fn lowercase_passes() {
        assert!(check_names("alice", "hello-world_2").is_empty());
    }

    #[test]
    fn uppercase_in_either_part_is_refused() {
        let v = check_names("alice", "Hello");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].code, "name-not-lowercase");
        assert_eq!(v[0].field.as_deref(), Some("name"));
        let v = check_names("Alice", "hello");
        assert_eq!(v[0].field.as_deref(), Some("namespace"));
    }

    #[test]
    fn non_ascii_uppercase_is_refused_too() {
        assert_eq!(check_names("a", "Ärger").len(), 1);
    }
}
