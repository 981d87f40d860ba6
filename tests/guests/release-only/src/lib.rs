//! `release-only`: a validation policy a platform team might upload and bind to one namespace.
//! It refuses pre-release versions (`1.0.0-rc.1`) and versions without a number; everything
//! else passes unchanged. The plugin registry's tests upload it at run time.

use pipewright_sdk::policy::{Guest, Pipeline, PolicyContext, Violation};

// Constructed only by the export glue, which exists on wasm32 alone.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct ReleaseOnly;

impl Guest for ReleaseOnly {
    fn check(
        candidate: Pipeline,
        _existing: Vec<String>,
        _ctx: PolicyContext,
    ) -> Result<Pipeline, Vec<Violation>> {
        match candidate.version.as_deref() {
            Some(version) if version.contains('-') => Err(vec![Violation::new(
                "pre-release",
                Some("version"),
                format!(
                    "version `{version}` is a pre-release; only releases may be registered here"
                ),
            )]),
            Some(_) => Ok(candidate),
            None => Err(vec![Violation::new(
                "version-required",
                Some("version"),
                "a version is required",
            )]),
        }
    }
}

pipewright_sdk::export_policy!(ReleaseOnly);
