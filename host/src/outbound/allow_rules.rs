//! `--allow-fetch HOST|CIDR[:PORT]`: the operator's exceptions to the address rule, parsed,
//! printed back, and matched against a connection's host and address.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use url::Url;

use super::Network;

/// What one `--allow-fetch` rule names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowTarget {
    /// Any resolved address in the range (an IP address alone is a /32 or /128).
    Network(Network),
    /// The URL's host name, exactly (stored lowercase; compared case-insensitively). Whatever it
    /// resolves to is allowed: the operator trusts that name's DNS.
    Host(String),
}

/// One exception to the address rule: `HOST|CIDR[:PORT]`, IPv6 with a port in brackets
/// (`[fd00::/8]:80`). Without a port, every port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowRule {
    pub target: AllowTarget,
    pub port: Option<u16>,
}

/// Why an `--allow-fetch` rule does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllowRuleError {
    #[error("an --allow-fetch rule is empty")]
    Empty,
    #[error("`{0}` is not an address range (ADDRESS or ADDRESS/PREFIX)")]
    BadNetwork(String),
    #[error(
        "`{0}` has bits set after its prefix: write the range's first address (like 10.0.0.0/8)"
    )]
    HostBitsSet(String),
    #[error("`{0}` is not a port (1-65535)")]
    BadPort(String),
    #[error("`{0}` is not a host name (letters, digits, `-`, `.`; no scheme, path or wildcard)")]
    BadHost(String),
    #[error("`{0}`: an IPv6 address with a port is written in brackets, like [fd00::/8]:80")]
    BadBrackets(String),
}

impl FromStr for AllowRule {
    type Err = AllowRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AllowRuleError::Empty);
        }
        if text.contains("://") {
            return Err(AllowRuleError::BadHost(text.to_string()));
        }
        if let Some(rest) = text.strip_prefix('[') {
            let bad = || AllowRuleError::BadBrackets(text.to_string());
            let (inside, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                _ => Some(parse_port(after.strip_prefix(':').ok_or_else(bad)?)?),
            };
            let network: Network = inside.parse()?;
            if !network.base.is_ipv6() {
                return Err(bad());
            }
            return Ok(AllowRule {
                target: AllowTarget::Network(network),
                port,
            });
        }
        if text.matches(':').count() > 1 {
            // Bare IPv6: no port (that needs brackets).
            return Ok(AllowRule {
                target: AllowTarget::Network(text.parse()?),
                port: None,
            });
        }
        let (target, port) = match text.split_once(':') {
            Some((target, port)) => (target, Some(parse_port(port)?)),
            None => (text, None),
        };
        let looks_numeric = target
            .split('/')
            .next()
            .is_some_and(|a| a.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        let target = if target.contains('/') || looks_numeric {
            AllowTarget::Network(target.parse()?)
        } else {
            AllowTarget::Host(parse_host_name(target)?)
        };
        Ok(AllowRule { target, port })
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.target, self.port) {
            (AllowTarget::Network(n), Some(port)) if n.base.is_ipv6() => write!(f, "[{n}]:{port}"),
            (AllowTarget::Network(n), Some(port)) => write!(f, "{n}:{port}"),
            (AllowTarget::Network(n), None) => write!(f, "{n}"),
            (AllowTarget::Host(h), Some(port)) => write!(f, "{h}:{port}"),
            (AllowTarget::Host(h), None) => f.write_str(h),
        }
    }
}

fn parse_port(text: &str) -> Result<u16, AllowRuleError> {
    text.parse::<u16>()
        .ok()
        .filter(|p| *p != 0 && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| AllowRuleError::BadPort(text.to_string()))
}

fn parse_host_name(text: &str) -> Result<String, AllowRuleError> {
    let valid = text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(AllowRuleError::BadHost(text.to_string()))
    }
}

impl AllowRule {
    /// Exactly the host and port of `url` (an operator's service URL): a name as a host rule,
    /// an IP address as a one-address range. None when the URL has no host or port.
    pub fn for_origin(url: &Url) -> Option<AllowRule> {
        let port = url.port_or_known_default()?;
        let target = match url.host()? {
            url::Host::Domain(name) => AllowTarget::Host(name.to_ascii_lowercase()),
            url::Host::Ipv4(ip) => AllowTarget::Network(Network {
                base: IpAddr::V4(ip),
                prefix: 32,
            }),
            url::Host::Ipv6(ip) => AllowTarget::Network(Network {
                base: IpAddr::V6(ip),
                prefix: 128,
            }),
        };
        Some(AllowRule {
            target,
            port: Some(port),
        })
    }

    /// Whether this rule admits connecting to `addr` for a URL whose host is `host`
    /// (lowercase, without brackets).
    pub(super) fn admits(&self, host: &str, addr: SocketAddr) -> bool {
        if self.port.is_some_and(|port| port != addr.port()) {
            return false;
        }
        match &self.target {
            AllowTarget::Network(network) => network.contains(addr.ip()),
            AllowTarget::Host(name) => name == host,
        }
    }
}
