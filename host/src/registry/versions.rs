//! Version states and ordering: which version is "latest".
//!
//! Latest = the highest-precedence *ready* version by semver, pre-releases only when no ready
//! release exists; a version still registering, or failed, is never latest. When no ready version
//! is semver, the most recently registered one is latest. Equal precedence (build metadata
//! differs) is settled by registration time.
//!
//! Also the wire-neutral view of a version ([`VersionInfo`]) that every surface maps to its own
//! shape.

use std::cmp::Ordering;

use semver::Version;
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::pipelines as rows;

/// `registering → ready | failed`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum VersionState {
    Registering,
    Ready,
    Failed,
}

impl VersionState {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Registering => "registering",
            VersionState::Ready => "ready",
            VersionState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "registering" => Some(VersionState::Registering),
            "ready" => Some(VersionState::Ready),
            "failed" => Some(VersionState::Failed),
            _ => None,
        }
    }
}

/// What ordering needs to know of a version.
pub trait Versioned {
    fn version(&self) -> &str;
    fn state(&self) -> VersionState;
    fn registered_at(&self) -> i64;
}

/// The total order versions are listed in: non-semver versions first, by registration time;
/// then semver versions by precedence (registration time breaks ties).
pub fn listing_order<V: Versioned>(a: &V, b: &V) -> Ordering {
    let (x, y) = (
        Version::parse(a.version()).ok(),
        Version::parse(b.version()).ok(),
    );
    compare_parsed((x.as_ref(), a), (y.as_ref(), b))
}

/// `versions` in [`listing_order`], each version parsed once (for long lists).
pub fn sorted_for_listing<V: Versioned>(versions: Vec<V>) -> Vec<V> {
    let mut parsed: Vec<(Option<Version>, V)> = versions
        .into_iter()
        .map(|v| (Version::parse(v.version()).ok(), v))
        .collect();
    parsed.sort_by(|(x, a), (y, b)| compare_parsed((x.as_ref(), a), (y.as_ref(), b)));
    parsed.into_iter().map(|(_, v)| v).collect()
}

fn compare_parsed<V: Versioned>(
    (x, a): (Option<&Version>, &V),
    (y, b): (Option<&Version>, &V),
) -> Ordering {
    match (x, y) {
        (Some(x), Some(y)) => x
            .cmp_precedence(y)
            .then(a.registered_at().cmp(&b.registered_at())),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.registered_at().cmp(&b.registered_at()),
    }
}

/// The latest version of `versions` (see the module doc), if any is ready.
pub fn latest<V: Versioned>(versions: &[V]) -> Option<&V> {
    let ready = || versions.iter().filter(|v| v.state() == VersionState::Ready);
    let semver = || ready().filter_map(|v| Version::parse(v.version()).ok().map(|s| (s, v)));
    let by_precedence = |(a, va): &(Version, &V), (b, vb): &(Version, &V)| {
        a.cmp_precedence(b)
            .then(va.registered_at().cmp(&vb.registered_at()))
    };
    let release = semver()
        .filter(|(s, _)| s.pre.is_empty())
        .max_by(by_precedence);
    let best_semver = release.or_else(|| semver().max_by(by_precedence));
    match best_semver {
        Some((_, v)) => Some(v),
        None => ready().max_by_key(|v| v.registered_at()),
    }
}

/// A file of a version's content; the bytes are in the blob store under `digest`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FileInfo {
    pub path: String,
    pub digest: String,
    pub size: i64,
}

/// Where a version is in `registering → ready | failed`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Registration {
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_deadline_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_until_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<i64>,
    /// What registration noticed about a ready version, when anything: that wasmtime's fast
    /// baseline compiler (Winch) could not compile its component, so it waited for Cranelift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One version of a pipeline.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VersionInfo {
    pub namespace: String,
    pub name: String,
    pub version: String,
    #[serde(rename = "type")]
    pub pipeline_type: String,
    pub state: VersionState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The definition given at registration (free JSON: ports, properties, ...); null when
    /// none was given.
    #[schema(value_type = Option<Object>)]
    pub definition: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    pub files: Vec<FileInfo>,
    /// `plugin@version` of every policy that approved this version.
    pub approved_by: Vec<String>,
    pub registered_by: String,
    pub registered_at_ms: i64,
    pub registration: Registration,
}

impl Versioned for rows::VersionRow {
    fn version(&self) -> &str {
        &self.version
    }
    fn state(&self) -> VersionState {
        VersionState::parse(&self.state).unwrap_or(VersionState::Failed)
    }
    fn registered_at(&self) -> i64 {
        self.registered_at
    }
}

/// A version row with its files, as callers see it.
pub(super) fn version_info(
    pipeline: &rows::PipelineRow,
    row: rows::VersionRow,
    files: Vec<rows::FileRow>,
) -> VersionInfo {
    VersionInfo {
        namespace: pipeline.namespace.clone(),
        name: pipeline.name.clone(),
        state: Versioned::state(&row),
        version: row.version,
        pipeline_type: pipeline.pipeline_type.clone(),
        description: row.description,
        definition: serde_json::from_str(&row.definition).unwrap_or(serde_json::Value::Null),
        content_digest: row.content_digest,
        files: files
            .into_iter()
            .map(|f| FileInfo {
                path: f.path,
                digest: f.digest,
                size: f.size,
            })
            .collect(),
        approved_by: serde_json::from_str(&row.approved_by).unwrap_or_default(),
        registered_by: row.registered_by,
        registered_at_ms: row.registered_at,
        registration: Registration {
            attempts: row.attempts,
            attempt_deadline_ms: row.attempt_deadline,
            retry_until_ms: row.retry_until,
            last_error: row.last_error,
            finished_at_ms: row.finished_at,
            note: row.registration_note,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct V(&'static str, VersionState, i64);
    impl Versioned for V {
        fn version(&self) -> &str {
            self.0
        }
        fn state(&self) -> VersionState {
            self.1
        }
        fn registered_at(&self) -> i64 {
            self.2
        }
    }
    use VersionState::*;

    fn latest_of(vs: &[V]) -> Option<&'static str> {
        latest(vs).map(|v| v.0)
    }

    #[test]
    fn highest_precedence_not_newest_or_lexical() {
        let vs = [
            V("0.10.0", Ready, 1),
            V("0.9.0", Ready, 2),
            V("0.2.0", Ready, 3),
        ];
        assert_eq!(latest_of(&vs), Some("0.10.0"));
    }

    #[test]
    fn registering_and_failed_are_never_latest() {
        let vs = [
            V("0.0.1", Ready, 1),
            V("0.0.2", Registering, 2),
            V("0.0.3", Failed, 3),
        ];
        assert_eq!(latest_of(&vs), Some("0.0.1"));
        assert_eq!(latest_of(&[V("1.0.0", Registering, 1)]), None);
    }

    #[test]
    fn prereleases_only_without_a_release() {
        let vs = [V("1.0.0", Ready, 1), V("2.0.0-rc.1", Ready, 2)];
        assert_eq!(latest_of(&vs), Some("1.0.0"));
        let vs = [
            V("2.0.0-rc.1", Ready, 1),
            V("2.0.0-rc.2", Ready, 2),
            V("3.0.0", Failed, 3),
        ];
        assert_eq!(latest_of(&vs), Some("2.0.0-rc.2"));
    }

    #[test]
    fn non_semver_by_registration_time() {
        let vs = [V("b", Ready, 1), V("a", Ready, 5), V("c", Registering, 9)];
        assert_eq!(latest_of(&vs), Some("a"));
    }

    #[test]
    fn build_metadata_ties_go_to_the_newest() {
        let vs = [V("1.0.0+b", Ready, 2), V("1.0.0+a", Ready, 1)];
        assert_eq!(latest_of(&vs), Some("1.0.0+b"));
    }

    #[test]
    fn listing_order_is_precedence_with_non_semver_first() {
        let mut vs = [
            V("1.0.0", Ready, 1),
            V("legacy", Ready, 2),
            V("0.2.0", Ready, 3),
            V("0.10.0", Ready, 4),
        ];
        vs.sort_by(listing_order);
        let order: Vec<_> = vs.iter().map(|v| v.0).collect();
        assert_eq!(order, ["legacy", "0.2.0", "0.10.0", "1.0.0"]);
    }

    #[test]
    fn states_round_trip() {
        for s in [Registering, Ready, Failed] {
            assert_eq!(VersionState::parse(s.as_str()), Some(s));
        }
    }
}
