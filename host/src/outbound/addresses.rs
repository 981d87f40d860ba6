//! Which addresses are not fetched from, and why ([`AddressClass`]); address ranges
//! ([`Network`]) as `--allow-fetch` names them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::AllowRuleError;

/// Why an address is not fetched from (unless a rule allows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    /// RFC 1918 IPv4, and IPv6 unique-local (fc00::/7) and the old site-local (fec0::/10).
    Private,
    LinkLocal,
    /// 100.64/10, the carrier-grade NAT range (RFC 6598).
    Shared,
    Multicast,
    Broadcast,
    Unspecified,
    Documentation,
    Benchmarking,
    /// Anything else that is not global unicast (240/4, 192.0.0/24, IPv6 outside 2000::/3, …).
    Reserved,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Shared => "shared (CGNAT)",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Documentation => "documentation",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::Reserved => "reserved",
        })
    }
}

impl AddressClass {
    /// What keeps `ip` from being fetched from; None for a global address.
    pub fn of(ip: IpAddr) -> Option<AddressClass> {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => Self::of_v6(v6),
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Option<AddressClass> {
        let [a, b, c, _] = ip.octets();
        Some(match (a, b, c) {
            _ if ip.is_broadcast() => AddressClass::Broadcast,
            (0, _, _) => AddressClass::Unspecified,
            (127, _, _) => AddressClass::Loopback,
            (10, _, _) | (192, 168, _) => AddressClass::Private,
            (172, b, _) if b & 0xf0 == 16 => AddressClass::Private,
            (169, 254, _) => AddressClass::LinkLocal,
            (100, b, _) if b & 0xc0 == 64 => AddressClass::Shared,
            (224..=239, _, _) => AddressClass::Multicast,
            (240..=255, _, _) => AddressClass::Reserved,
            (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
            (198, 18..=19, _) => AddressClass::Benchmarking,
            // IETF protocol assignments, and the retired 6to4 relay anycast.
            (192, 0, 0) | (192, 88, 99) => AddressClass::Reserved,
            _ => return None,
        })
    }

    fn of_v6(ip: Ipv6Addr) -> Option<AddressClass> {
        if ip.is_unspecified() {
            return Some(AddressClass::Unspecified);
        }
        if ip.is_loopback() {
            return Some(AddressClass::Loopback);
        }
        // An address that carries an IPv4 address reaches that address: judge it so.
        if let Some(v4) = embedded_ipv4(ip) {
            return Self::of_v4(v4);
        }
        let s = ip.segments();
        Some(match s[0] {
            0xff00..=0xffff => AddressClass::Multicast,
            0xfe80..=0xfebf => AddressClass::LinkLocal,
            0xfec0..=0xfeff | 0xfc00..=0xfdff => AddressClass::Private,
            0x2001 if s[1] == 0x0db8 => AddressClass::Documentation,
            0x2001 if s[1] == 0x0002 && s[2] == 0 => AddressClass::Benchmarking,
            // 2001::/23: IETF protocol assignments (Teredo among them).
            0x2001 if s[1] < 0x0200 => AddressClass::Reserved,
            0x2000..=0x3fff => return None,
            _ => AddressClass::Reserved,
        })
    }
}

/// The IPv4 address an IPv6 address stands for: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// An address range, `ADDRESS/PREFIX` (host bits zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    pub(super) base: IpAddr,
    pub(super) prefix: u8,
}

impl Network {
    /// Whether `ip` (IPv4-mapped addresses as their IPv4) lies in this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, ip.to_canonical()) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                mask32(self.prefix) & (u32::from(base) ^ u32::from(ip)) == 0
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                mask128(self.prefix) & (u128::from(base) ^ u128::from(ip)) == 0
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Network {
    type Err = AllowRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || AllowRuleError::BadNetwork(text.to_string());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let base: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        let network = Network { base, prefix };
        // `10.0.0.1/8` is most likely a typo for a host or for `10.0.0.0/8`: say so.
        let host_bits_zero = match base {
            IpAddr::V4(v4) => u32::from(v4) & !mask32(prefix) == 0,
            IpAddr::V6(v6) => u128::from(v6) & !mask128(prefix) == 0,
        };
        if !host_bits_zero {
            return Err(AllowRuleError::HostBitsSet(text.to_string()));
        }
        Ok(network)
    }
}
