//! Version states and ordering: which version is "latest".
//!
//! Latest = the highest-precedence *ready* version by semver, pre-releases only when no ready
//! release exists; a version still registering, or failed, is never latest. When no ready version
//! is semver, the most recently registered one is latest. Equal precedence (build metadata
//! differs) is settled by registration time.

use std::cmp::Ordering;

use semver::Version;

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
