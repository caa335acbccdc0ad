//! Prefixes announced over BGP, and their address families.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::FieldError;

/// An address family we carry (unicast SAFI only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "IPv4")]
    Ipv4,
    #[serde(rename = "IPv6")]
    Ipv6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Ipv4, Family::Ipv6];

    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "IPv4" => Ok(Family::Ipv4),
            "IPv6" => Ok(Family::Ipv6),
            _ => Err(format!("{s:?} is not an address family (IPv4 or IPv6)")),
        }
    }
}

/// A unicast prefix with no host bits set: a network (`10.0.1.0/24`) or a host
/// (`192.0.2.10/32`, `2001:db8::10/128`).
///
/// Parsing refuses host bits rather than silently truncating them: `10.0.1.5/24` in a
/// manifest is almost always a typo, and announcing `10.0.1.0/24` instead would be a
/// surprise. Ordering is IPv4 before IPv6, then by address, then by length, so sorted
/// collections read naturally and encode deterministically.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prefix(IpNet);

impl Prefix {
    pub const RULE: &'static str = "must be an IPv4 or IPv6 prefix in CIDR notation with no host bits set";

    /// The host prefix of one address: /32 or /128.
    pub fn host(addr: IpAddr) -> Self {
        Self(IpNet::from(addr))
    }

    /// A network prefix; `None` when `net` has host bits set.
    pub fn new(net: IpNet) -> Option<Self> {
        (net.trunc() == net).then_some(Self(net))
    }

    pub fn net(self) -> IpNet {
        self.0
    }

    pub fn addr(self) -> IpAddr {
        self.0.addr()
    }

    /// The prefix length (`24` in `10.0.1.0/24`); a prefix is never "empty".
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> u8 {
        self.0.prefix_len()
    }

    pub fn family(self) -> Family {
        Family::of(self.0.addr())
    }

    pub fn is_host(self) -> bool {
        self.0.prefix_len() == self.0.max_prefix_len()
    }

    pub fn contains(self, addr: IpAddr) -> bool {
        self.0.contains(&addr)
    }

    /// Parses a CIDR (`10.0.0.0/24`) or a bare address (a host prefix), naming `field`.
    pub fn from_field(field: &str, value: &str) -> Result<Self, FieldError> {
        value
            .parse()
            .map_err(|_| FieldError::new(field, Self::RULE).with_value(format!("{value:?}")))
    }

    /// Parses an address into its host prefix, naming `field`.
    pub fn host_from_field(field: &str, value: &str) -> Result<Self, FieldError> {
        parse_ip(field, value).map(Self::host)
    }
}

/// Parses an IP address in any textual form (`2001:0db8::0001` is `2001:db8::1`).
pub fn parse_ip(field: &str, value: &str) -> Result<IpAddr, FieldError> {
    value.parse::<IpAddr>().map_err(|_| {
        FieldError::new(field, "must be an IPv4 or IPv6 address").with_value(format!("{value:?}"))
    })
}

impl FromStr for Prefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Self::host(addr));
        }
        let net: IpNet = s.parse().map_err(|_| format!("{s:?} {}", Self::RULE))?;
        Self::new(net).ok_or_else(|| format!("{s:?} has host bits set; the network is {}", net.trunc()))
    }
}

impl TryFrom<String> for Prefix {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Prefix> for String {
    fn from(p: Prefix) -> String {
        p.to_string()
    }
}

impl From<Ipv4Net> for Prefix {
    fn from(net: Ipv4Net) -> Self {
        Self(IpNet::V4(net.trunc()))
    }
}

impl From<Ipv6Net> for Prefix {
    fn from(net: Ipv6Net) -> Self {
        Self(IpNet::V6(net.trunc()))
    }
}

impl Ord for Prefix {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        sort_key(self.0).cmp(&sort_key(other.0))
    }
}

impl PartialOrd for Prefix {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn sort_key(net: IpNet) -> (u8, u128, u8) {
    match net {
        IpNet::V4(n) => (4, u128::from(u32::from(n.addr())), n.prefix_len()),
        IpNet::V6(n) => (6, u128::from(n.addr()), n.prefix_len()),
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prefix({})", self.0)
    }
}

/// The local addresses a Node puts in NEXT_HOP (IPv4) and MP_REACH (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NextHops {
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

impl NextHops {
    pub fn for_family(&self, family: Family) -> Option<IpAddr> {
        match family {
            Family::Ipv4 => self.ipv4.map(IpAddr::V4),
            Family::Ipv6 => self.ipv6.map(IpAddr::V6),
        }
    }

    pub fn families(&self) -> impl Iterator<Item = Family> + '_ {
        Family::ALL.into_iter().filter(|f| self.for_family(*f).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_host_and_network() {
        assert_eq!("192.0.2.1".parse::<Prefix>().unwrap().to_string(), "192.0.2.1/32");
        assert_eq!(
            "2001:0db8::0001".parse::<Prefix>().unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!("10.0.1.0/24".parse::<Prefix>().unwrap().len(), 24);
        assert!(
            "10.0.1.0/24"
                .parse::<Prefix>()
                .unwrap()
                .contains("10.0.1.9".parse().unwrap())
        );
        assert!("198.51.100.0/24".parse::<Prefix>().unwrap().family() == Family::Ipv4);
    }

    #[test]
    fn refuse_host_bits_with_hint() {
        let err = "10.0.1.5/24".parse::<Prefix>().unwrap_err();
        assert!(err.contains("host bits"), "{err}");
        assert!(err.contains("10.0.1.0/24"), "{err}");
        let err = Prefix::from_field("spec.podCIDRs[0]", "nope").unwrap_err();
        assert_eq!(err.field, "spec.podCIDRs[0]");
    }

    #[test]
    fn order_is_v4_then_v6_then_address_then_length() {
        let mut v: Vec<Prefix> = ["2001:db8::/32", "192.0.2.0/24", "192.0.2.0/25", "10.0.0.1", "::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            s,
            [
                "10.0.0.1/32",
                "192.0.2.0/24",
                "192.0.2.0/25",
                "::1/128",
                "2001:db8::/32"
            ]
        );
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let p: Prefix = serde_json::from_str("\"203.0.113.0/24\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"203.0.113.0/24\"");
        assert!(serde_json::from_str::<Prefix>("\"203.0.113.1/24\"").is_err());
    }
}
