//! Where the server may connect when it fetches something for a caller: a GBDX task's
//! `properties.url`, a plugin added by URL, a Mystic run's file input given by URL
//! (`File(url=…)`), a plugin's `http` grant. Without this a caller could
//! make the server read its own loopback services, the private network or the cloud metadata
//! address (169.254.169.254), and learn from the error text whether a port answered.
//!
//! The rule: only *global* addresses are fetched from. Loopback, private (10/8, 172.16/12,
//! 192.168/16, fc00::/7), link-local (169.254/16, fe80::/10), shared (CGNAT, 100.64/10),
//! multicast, broadcast, unspecified, documentation, benchmarking and reserved addresses are
//! refused ([`AddressClass`]); IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 addresses are
//! judged as the IPv4 address they carry. The operator opens exceptions with
//! `--allow-fetch` ([`AllowRule`]).
//!
//! The invariant: the check is made on the address that is actually connected to. A
//! [`FetchPolicy::agent`] resolves a name once, keeps only the addresses the policy admits and
//! hands exactly those to the connector, on the first request and on every redirect hop; so a
//! name that resolves to a public address when checked and to a private one when fetched (DNS
//! rebinding) gets nowhere. The agent uses no proxy from the environment: through a proxy, the
//! proxy would resolve and connect, and no check here would see the address.
//! [`FetchPolicy::check_url`] is the same check made at the request, so a refused URL is answered
//! there instead of being queued.
//!
//! What this does not cover: `file://` sources (the registry confines those to
//! `--registration-file-root`), and what an allowed service does with the request.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ureq::config::ConfigBuilder;
use ureq::typestate::AgentScope;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use url::Url;

mod addresses;
mod allow_rules;

pub use addresses::{AddressClass, Network};
pub use allow_rules::{AllowRule, AllowRuleError, AllowTarget};

/// How long [`FetchPolicy::check_url`] waits for a name to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A URL host refused because of where it leads. The wording says why, never whether anything
/// listens there: nothing was connected to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub host: String,
    pub class: AddressClass,
    /// The host is an IP address, not a name.
    literal: bool,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.literal { "is" } else { "resolves to" };
        write!(
            f,
            "{} {verb} an address this server may not fetch from ({})",
            self.host, self.class
        )
    }
}

impl std::error::Error for Refusal {}

/// Why a URL may not be fetched, found before any connection.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("`{url}` is not a URL: {reason}")]
    NotAUrl { url: String, reason: String },
    #[error("`{scheme}` URLs are not fetched by this server (http, https)")]
    UnsupportedScheme { scheme: String },
    #[error("`{url}` names no host")]
    NoHost { url: String },
    #[error("{host} does not resolve to any address")]
    Unresolvable { host: String },
    #[error("{host} did not resolve within {} s", RESOLVE_TIMEOUT.as_secs())]
    ResolveTimeout { host: String },
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// The exceptions the operator allows (`--allow-fetch`); the default allows none, so only
/// global addresses are fetched from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    exceptions: Vec<AllowRule>,
}

impl FetchPolicy {
    pub fn allowing(rules: impl IntoIterator<Item = AllowRule>) -> Self {
        FetchPolicy {
            exceptions: rules.into_iter().collect(),
        }
    }

    /// The same policy, also allowing `rule`.
    pub fn with(mut self, rule: AllowRule) -> Self {
        self.exceptions.push(rule);
        self
    }

    pub fn exceptions(&self) -> &[AllowRule] {
        &self.exceptions
    }

    /// The addresses `host` resolved to that a connection may go to, in order; or, when none
    /// may, why (the first refused address's class).
    pub fn admit(&self, host: &str, resolved: &[SocketAddr]) -> Result<Vec<SocketAddr>, Refusal> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let mut first_refused = None;
        let admitted: Vec<SocketAddr> = resolved
            .iter()
            .copied()
            .filter(|addr| match AddressClass::of(addr.ip()) {
                None => true,
                Some(_) if self.exceptions.iter().any(|r| r.admits(&host, *addr)) => true,
                Some(class) => {
                    first_refused.get_or_insert(class);
                    false
                }
            })
            .collect();
        match (admitted.is_empty(), first_refused) {
            (true, Some(class)) => Err(Refusal {
                literal: host.parse::<IpAddr>().is_ok(),
                host,
                class,
            }),
            _ => Ok(admitted),
        }
    }

    /// The check a fetch of `url` would make, made now: an http or https URL whose host
    /// resolves, to at least one address this policy admits. For refusing at the request what
    /// would otherwise be queued and fail later.
    pub async fn check_url(&self, url: &str) -> Result<(), OutboundError> {
        let parsed = Url::parse(url).map_err(|e| OutboundError::NotAUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(OutboundError::UnsupportedScheme {
                scheme: parsed.scheme().to_string(),
            });
        }
        let no_host = || OutboundError::NoHost {
            url: url.to_string(),
        };
        let host = parsed.host().ok_or_else(no_host)?;
        let port = parsed.port_or_known_default().ok_or_else(no_host)?;
        let resolved: Vec<SocketAddr> = match host {
            url::Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            url::Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            url::Host::Domain(name) => {
                let lookup = tokio::net::lookup_host((name, port));
                match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                    Ok(Ok(addrs)) => addrs.collect(),
                    Ok(Err(_)) => Vec::new(),
                    Err(_) => {
                        return Err(OutboundError::ResolveTimeout {
                            host: name.to_string(),
                        })
                    }
                }
            }
        };
        let host = parsed.host_str().unwrap_or_default();
        if resolved.is_empty() {
            return Err(OutboundError::Unresolvable {
                host: host.to_string(),
            });
        }
        self.admit(host, &resolved)?;
        Ok(())
    }

    /// A blocking HTTP client configured by `config` that connects only where this policy
    /// admits (see the module doc), and never through a proxy.
    pub fn agent(&self, config: ConfigBuilder<AgentScope>) -> ureq::Agent {
        ureq::Agent::with_parts(
            config.proxy(None).build(),
            DefaultConnector::default(),
            GuardedResolver {
                policy: self.clone(),
                inner: DefaultResolver::default(),
            },
        )
    }
}

/// The [`Refusal`] behind a failed request of a [`FetchPolicy::agent`], if that was the failure.
pub fn refusal_of(error: &ureq::Error) -> Option<&Refusal> {
    match error {
        ureq::Error::Other(inner) => inner.downcast_ref::<Refusal>(),
        _ => None,
    }
}

/// The system resolver, filtered by a policy: what it returns is all the connector may use.
#[derive(Debug)]
struct GuardedResolver {
    policy: FetchPolicy,
    inner: DefaultResolver,
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let resolved = self.inner.resolve(uri, config, timeout)?;
        let host = uri.host().unwrap_or_default();
        let admitted = self
            .policy
            .admit(host, &resolved)
            .map_err(|refusal| ureq::Error::Other(Box::new(refusal)))?;
        let mut addrs = self.empty();
        for addr in admitted {
            addrs.push(addr);
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<AddressClass> {
        AddressClass::of(ip.parse().unwrap())
    }

    #[test]
    fn non_global_addresses_are_classified() {
        use AddressClass::*;
        for (ip, expected) in [
            ("127.0.0.1", Some(Loopback)),
            ("127.255.0.9", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("100.64.0.1", Some(Shared)),
            ("100.127.255.255", Some(Shared)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("240.0.0.1", Some(Reserved)),
            ("192.0.0.8", Some(Reserved)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("198.18.0.1", Some(Benchmarking)),
            ("::1", Some(Loopback)),
            ("::", Some(Unspecified)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fec0::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("2001::1", Some(Reserved)),
            ("100::1", Some(Reserved)),
            ("4000::1", Some(Reserved)),
            // IPv6 forms of IPv4 addresses are judged as that address.
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::10.1.2.3", Some(Private)),
            ("::127.0.0.1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            // Global.
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("169.253.0.1", None),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001::200e", None),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", None),
            ("2002:808:808::1", None),
        ] {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    fn rule(text: &str) -> AllowRule {
        text.parse()
            .unwrap_or_else(|e| panic!("`{text}` should parse: {e}"))
    }

    fn network(text: &str) -> AllowTarget {
        AllowTarget::Network(text.parse().unwrap())
    }

    #[test]
    fn allow_rules_parse() {
        for (text, target, port) in [
            ("10.0.0.0/8:443", network("10.0.0.0/8"), Some(443)),
            ("10.0.0.0/8", network("10.0.0.0/8"), None),
            ("127.0.0.1", network("127.0.0.1/32"), None),
            ("127.0.0.1:8080", network("127.0.0.1/32"), Some(8080)),
            ("0.0.0.0/0", network("0.0.0.0/0"), None),
            ("[fd00::/8]:80", network("fd00::/8"), Some(80)),
            ("[::1]:8080", network("::1/128"), Some(8080)),
            ("[::1]", network("::1/128"), None),
            ("fd00::/8", network("fd00::/8"), None),
            ("::1", network("::1/128"), None),
            (
                "host.example",
                AllowTarget::Host("host.example".into()),
                None,
            ),
            (
                "Registry.Internal:5000",
                AllowTarget::Host("registry.internal".into()),
                Some(5000),
            ),
            ("localhost", AllowTarget::Host("localhost".into()), None),
            (" 10.0.0.0/8 ", network("10.0.0.0/8"), None),
        ] {
            assert_eq!(rule(text), AllowRule { target, port }, "{text}");
        }
    }

    #[test]
    fn bad_allow_rules_say_why() {
        use AllowRuleError as E;
        for (text, expected) in [
            ("", E::Empty),
            ("   ", E::Empty),
            ("10.0.0.0/33", E::BadNetwork("10.0.0.0/33".into())),
            ("10.0.0.1/8", E::HostBitsSet("10.0.0.1/8".into())),
            ("10.0.0/8", E::BadNetwork("10.0.0/8".into())),
            ("300.1.1.1", E::BadNetwork("300.1.1.1".into())),
            ("10.0.0.0/", E::BadNetwork("10.0.0.0/".into())),
            ("10.0.0.0/+8", E::BadNetwork("10.0.0.0/+8".into())),
            ("host.example/8", E::BadNetwork("host.example/8".into())),
            ("10.0.0.0/8:0", E::BadPort("0".into())),
            ("10.0.0.0/8:65536", E::BadPort("65536".into())),
            ("host:", E::BadPort("".into())),
            ("host:+80", E::BadPort("+80".into())),
            ("host:http", E::BadPort("http".into())),
            ("*.example", E::BadHost("*.example".into())),
            ("a..b", E::BadHost("a..b".into())),
            ("a b", E::BadHost("a b".into())),
            ("http://x", E::BadHost("http://x".into())),
            ("[fd00::/8", E::BadBrackets("[fd00::/8".into())),
            ("[fd00::/8]80", E::BadBrackets("[fd00::/8]80".into())),
            ("[10.0.0.0/8]:80", E::BadBrackets("[10.0.0.0/8]:80".into())),
            ("[fd00::/7]:80", E::HostBitsSet("fd00::/7".into())),
            ("fd00::/129", E::BadNetwork("fd00::/129".into())),
        ] {
            assert_eq!(text.parse::<AllowRule>(), Err(expected), "`{text}`");
        }
    }

    #[test]
    fn rules_print_as_they_parse() {
        for text in [
            "10.0.0.0/8:443",
            "[fd00::/8]:80",
            "fd00::/8",
            "host.example:80",
        ] {
            assert_eq!(rule(text).to_string(), text);
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn global_addresses_pass_and_others_are_refused() {
        let policy = FetchPolicy::default();
        assert_eq!(
            policy.admit("example.com", &[addr("93.184.215.14:80")]),
            Ok(vec![addr("93.184.215.14:80")])
        );
        let refusal = policy
            .admit("169.254.169.254", &[addr("169.254.169.254:80")])
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "169.254.169.254 is an address this server may not fetch from (link-local)"
        );
        let refusal = policy
            .admit("LocalHost", &[addr("127.0.0.1:5432"), addr("[::1]:5432")])
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "localhost resolves to an address this server may not fetch from (loopback)"
        );
        let refusal = policy.admit("[::1]", &[addr("[::1]:1")]).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "::1 is an address this server may not fetch from (loopback)"
        );
    }

    #[test]
    fn only_the_admitted_addresses_of_a_mixed_answer_are_kept() {
        let policy = FetchPolicy::default();
        assert_eq!(
            policy.admit(
                "mixed.example",
                &[addr("10.0.0.5:80"), addr("8.8.8.8:80"), addr("[::1]:80")]
            ),
            Ok(vec![addr("8.8.8.8:80")])
        );
    }

    #[test]
    fn rules_open_exactly_what_they_name() {
        let policy = FetchPolicy::allowing([
            rule("127.0.0.1:8080"),
            rule("10.0.0.0/8"),
            rule("[fd00::/8]:80"),
            rule("registry.internal:5000"),
        ]);
        let admitted = |host: &str, a: &str| policy.admit(host, &[addr(a)]).is_ok();
        assert!(admitted("127.0.0.1", "127.0.0.1:8080"));
        assert!(!admitted("127.0.0.1", "127.0.0.1:5432"), "other port");
        assert!(!admitted("127.0.0.2", "127.0.0.2:8080"), "other address");
        assert!(admitted("anything", "10.9.8.7:22"), "any port");
        assert!(
            admitted("[::ffff:10.0.0.1]", "[::ffff:10.0.0.1]:1"),
            "mapped"
        );
        assert!(admitted("v6.internal", "[fd12::1]:80"));
        assert!(!admitted("v6.internal", "[fd12::1]:81"));
        assert!(!admitted("v6.internal", "[fe80::1]:80"));
        // A host rule trusts the name's DNS, on its port, and matches the name exactly.
        assert!(admitted("Registry.Internal", "192.168.0.9:5000"));
        assert!(!admitted("registry.internal", "192.168.0.9:5001"));
        assert!(!admitted("x.registry.internal", "192.168.0.9:5000"));
        assert!(!admitted("registry.internal.evil", "192.168.0.9:5000"));
    }

    #[test]
    fn an_origin_rule_allows_exactly_that_origin() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            AllowRule::for_origin(&url("http://127.0.0.1:8000/hub/api")),
            Some(rule("127.0.0.1:8000"))
        );
        assert_eq!(
            AllowRule::for_origin(&url("http://Hub.Internal/api")),
            Some(rule("hub.internal:80"))
        );
        assert_eq!(
            AllowRule::for_origin(&url("http://[::1]:9/api")),
            Some(rule("[::1]:9"))
        );
    }

    #[tokio::test]
    async fn urls_are_checked_before_anything_is_queued() {
        let policy = FetchPolicy::default();
        for (url, expected) in [
            (
                "http://127.0.0.1:5432/x.wasm",
                "127.0.0.1 is an address this server may not fetch from (loopback)",
            ),
            (
                "http://169.254.169.254/latest/meta-data",
                "169.254.169.254 is an address this server may not fetch from (link-local)",
            ),
            (
                "http://[::1]:1/x",
                "::1 is an address this server may not fetch from (loopback)",
            ),
            (
                "http://10.0.0.1/x",
                "10.0.0.1 is an address this server may not fetch from (private)",
            ),
            (
                "http://[::ffff:7f00:1]/x",
                "::ffff:7f00:1 is an address this server may not fetch from (loopback)",
            ),
            (
                "http://localhost:1/x",
                "localhost resolves to an address this server may not fetch from (loopback)",
            ),
            (
                "ftp://example.com/x",
                "`ftp` URLs are not fetched by this server (http, https)",
            ),
            ("nope", "`nope` is not a URL: relative URL without a base"),
            (
                "http://does-not-exist.invalid/x",
                "does-not-exist.invalid does not resolve to any address",
            ),
        ] {
            let error = policy.check_url(url).await.unwrap_err();
            assert_eq!(error.to_string(), expected, "{url}");
        }
        let loopback = FetchPolicy::allowing([rule("127.0.0.0/8")]);
        assert!(loopback
            .check_url("http://127.0.0.1:5432/x.wasm")
            .await
            .is_ok());
    }

    /// The agent refuses before connecting (the listener below never sees a connection), and
    /// the refusal is recognisable among ureq's errors.
    #[test]
    fn the_agent_refuses_before_connecting() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let agent = FetchPolicy::default().agent(ureq::Agent::config_builder());
        let error = agent.get(&url).call().unwrap_err();
        let refusal = refusal_of(&error).expect("a refusal");
        assert_eq!(refusal.class, AddressClass::Loopback);
        assert!(listener.accept().is_err(), "nothing connected");

        let allowed = FetchPolicy::allowing([rule(&format!(
            "127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        ))])
        .agent(ureq::Agent::config_builder().timeout_global(Some(Duration::from_millis(300))));
        let error = allowed.get(&url).call().unwrap_err();
        assert!(refusal_of(&error).is_none(), "{error}");
    }
}
