//! The key versions are listed by (`pipeline_versions.precedence_key`, migration 0022): text
//! whose bytewise order is semver precedence, so that the store can sort and page versions by it
//! with an index instead of parsing every version of a pipeline.
//!
//! The order: every version that is not semver (`semver::Version::parse` refuses it; GBDX,
//! Mystic and an unbound namespace may hold such) first, all with one key, so that among
//! themselves the listing's next column, the registration time, orders them (as the listing did
//! before the key existed); then semver versions by precedence: major, minor, patch numerically,
//! a pre-release below its release, pre-release identifiers numeric ones by number,
//! alphanumeric ones by ASCII, numeric below alphanumeric, fewer identifiers below more. Build
//! metadata does not count (versions differing only in it are equal here; registration time
//! orders them too).
//!
//! The key is built as bytes and stored as lowercase hex: `0-9a-f` sort the same under any
//! collation a PostgreSQL database may have been created with, where raw punctuation and case
//! would not.

use semver::Version;

/// The key of a version text (see the module doc).
pub fn precedence_key(version: &str) -> String {
    let bytes = match Version::parse(version) {
        Err(_) => vec![NOT_SEMVER],
        Ok(parsed) => semver_bytes(&parsed),
    };
    let mut key = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// Whether `text` could be a key: what a cursor carrying one is checked against before the
/// store sees it.
pub fn is_precedence_key(text: &str) -> bool {
    !text.is_empty()
        && text.len().is_multiple_of(2)
        && text.len() <= 4096
        && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

const NOT_SEMVER: u8 = 0x00;
const SEMVER: u8 = 0x01;
/// After the patch number: a pre-release sorts below its release.
const PRERELEASE: u8 = 0x01;
const RELEASE: u8 = 0x02;
/// Before each pre-release identifier, and after the last one: the end sorts below another
/// identifier (fewer identifiers first), a numeric one below an alphanumeric one.
const END_OF_IDENTIFIERS: u8 = 0x00;
const NUMERIC: u8 = 0x01;
const ALPHANUMERIC: u8 = 0x02;

fn semver_bytes(version: &Version) -> Vec<u8> {
    let mut out = vec![SEMVER];
    for number in [version.major, version.minor, version.patch] {
        push_number(&mut out, &number.to_string());
    }
    if version.pre.is_empty() {
        out.push(RELEASE);
        return out;
    }
    out.push(PRERELEASE);
    for identifier in version.pre.as_str().split('.') {
        if identifier.bytes().all(|b| b.is_ascii_digit()) {
            out.push(NUMERIC);
            push_number(&mut out, identifier);
        } else {
            out.push(ALPHANUMERIC);
            // Identifiers are `[0-9A-Za-z-]`: no 0x00, so the terminator sorts a prefix first.
            out.extend_from_slice(identifier.as_bytes());
            out.push(0x00);
        }
    }
    out.push(END_OF_IDENTIFIERS);
    out
}

/// A decimal number without leading zeros (semver forbids them), as its digit count then its
/// digits: more digits is a larger number, and equal counts compare digit by digit. Pre-release
/// numbers may exceed 64 bits, so they are not parsed.
fn push_number(out: &mut Vec<u8>, digits: &str) {
    let count = u16::try_from(digits.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(digits.as_bytes());
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;

    /// Versions chosen where a naive key goes wrong: numbers of different lengths, pre-releases
    /// against releases, numeric against alphanumeric identifiers, prefixes, hyphens, case,
    /// numbers past 64 bits, build metadata.
    const TRICKY: &[&str] = &[
        "0.0.0",
        "0.0.1",
        "0.1.0",
        "0.9.0",
        "0.10.0",
        "1.0.0-0",
        "1.0.0-1",
        "1.0.0-2",
        "1.0.0-10",
        "1.0.0-99999999999999999999999",
        "1.0.0-100000000000000000000000",
        "1.0.0--",
        "1.0.0-A",
        "1.0.0-Z",
        "1.0.0-a",
        "1.0.0-a-b",
        "1.0.0-a.0",
        "1.0.0-a.1",
        "1.0.0-a.b",
        "1.0.0-a0",
        "1.0.0-aa",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.1.1",
        "1.0.0-alpha.2",
        "1.0.0-alpha.10",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.0+build.1",
        "1.0.0+0",
        "1.0.1-0",
        "1.0.1",
        "1.2.3",
        "1.10.0",
        "2.0.0",
        "10.0.0",
        "18446744073709551615.0.0",
    ];

    #[test]
    fn the_keys_order_is_semver_precedence() {
        let parsed: Vec<Version> = TRICKY.iter().map(|v| Version::parse(v).unwrap()).collect();
        for (a, x) in TRICKY.iter().zip(&parsed) {
            for (b, y) in TRICKY.iter().zip(&parsed) {
                assert_eq!(
                    precedence_key(a).cmp(&precedence_key(b)),
                    x.cmp_precedence(y),
                    "{a} against {b}: keys {} and {}",
                    precedence_key(a),
                    precedence_key(b)
                );
            }
        }
    }

    #[test]
    fn build_metadata_does_not_count() {
        assert_eq!(precedence_key("1.0.0+a"), precedence_key("1.0.0+b"));
        assert_eq!(precedence_key("1.0.0+a"), precedence_key("1.0.0"));
    }

    #[test]
    fn versions_that_are_not_semver_come_first_with_one_key() {
        let lowest_semver = precedence_key("0.0.0-0");
        for text in [
            "legacy", "v1.0.0", "1.0", "01.0.0", "1.0.0-01", "latest", "zzz",
        ] {
            assert_eq!(precedence_key(text), "00", "{text}");
            assert_eq!(
                precedence_key(text).cmp(&lowest_semver),
                Ordering::Less,
                "{text}"
            );
        }
    }

    #[test]
    fn keys_are_lowercase_hex_and_recognised() {
        for text in TRICKY.iter().chain(&["legacy"]) {
            assert!(is_precedence_key(&precedence_key(text)), "{text}");
        }
        for text in ["", "0", "0A", "zz", "01'", "01\u{0}0"] {
            assert!(!is_precedence_key(text), "{text:?}");
        }
    }
}
