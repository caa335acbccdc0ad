//! Autonomous System numbers and BGP identifiers.

use std::{fmt, net::Ipv4Addr, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// A 4-octet AS number (RFC 6793) that may be configured on a session.
///
/// 0 is reserved (RFC 7607), 23456 is `AS_TRANS` (only ever a placeholder in a 2-octet
/// field), and 4294967295 is reserved (RFC 7300); none of them can be an AS we speak for
/// or peer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Asn(u32);

impl Asn {
    /// The placeholder put in 2-octet fields when the real AS does not fit (RFC 6793 §9).
    pub const AS_TRANS: u16 = 23456;
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 4_294_967_294;
    /// The rule, in the words every error message uses.
    pub const RULE: &'static str = "must be an AS number in 1-4294967294 other than 23456 (AS_TRANS)";

    pub const fn get(self) -> u32 {
        self.0
    }

    /// True when the AS does not fit the 2-octet `My Autonomous System` field of OPEN.
    pub const fn is_four_octet(self) -> bool {
        self.0 > u16::MAX as u32
    }

    /// The value for the 2-octet `My Autonomous System` OPEN field.
    pub const fn as_two_octet(self) -> u16 {
        if self.is_four_octet() {
            Self::AS_TRANS
        } else {
            self.0 as u16
        }
    }

    /// Parses a number read from an API field, naming `field` in the error.
    pub fn from_field(field: &str, value: i64) -> Result<Self, FieldError> {
        u32::try_from(value)
            .ok()
            .and_then(|v| Asn::try_from(v).ok())
            .ok_or_else(|| FieldError::new(field, Self::RULE).with_value(value))
    }
}

/// Error for a number that is not a usable AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a usable AS number: {rule}", rule = Asn::RULE)]
pub struct InvalidAsn(pub u32);

impl TryFrom<u32> for Asn {
    type Error = InvalidAsn;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        if !(Self::MIN..=Self::MAX).contains(&value) || value == u32::from(Self::AS_TRANS) {
            Err(InvalidAsn(value))
        } else {
            Ok(Self(value))
        }
    }
}

impl From<Asn> for u32 {
    fn from(asn: Asn) -> u32 {
        asn.0
    }
}

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Asn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n: u32 = s
            .parse()
            .map_err(|_| format!("{s:?} is not a number: {}", Asn::RULE))?;
        Asn::try_from(n).map_err(|e| e.to_string())
    }
}

/// A BGP identifier (RFC 4271 §4.2, RFC 6286): a non-zero 32-bit value written as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Ipv4Addr", into = "Ipv4Addr")]
pub struct RouterId(Ipv4Addr);

impl RouterId {
    pub const RULE: &'static str = "must be a non-zero IPv4 address (BGP identifier)";

    pub const fn addr(self) -> Ipv4Addr {
        self.0
    }

    pub fn to_u32(self) -> u32 {
        u32::from(self.0)
    }

    /// The fallback identifier for a Node without IPv4: FNV-1a-32 of the Node name, read as
    /// an IPv4 address in network byte order. Antrea does the same, so clusters migrating
    /// from it keep their router IDs. A zero hash (one name in four billion) maps to 0.0.0.1.
    pub fn from_name_hash(name: &str) -> Self {
        let hash = fnv1a32(name.as_bytes());
        Self(Ipv4Addr::from(hash.max(1)))
    }

    /// Parses an annotation or field value, naming `field` in the error.
    pub fn from_field(field: &str, value: &str) -> Result<Self, FieldError> {
        value
            .parse::<Ipv4Addr>()
            .ok()
            .and_then(|a| RouterId::try_from(a).ok())
            .ok_or_else(|| FieldError::new(field, Self::RULE).with_value(format!("{value:?}")))
    }
}

/// 32-bit FNV-1a (the `hash/fnv` New32a Antrea uses). Ten lines, so no crate.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    bytes
        .iter()
        .fold(OFFSET, |hash, b| (hash ^ u32::from(*b)).wrapping_mul(PRIME))
}

/// Error for `0.0.0.0` as a router ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a usable BGP identifier: {rule}", rule = RouterId::RULE)]
pub struct InvalidRouterId(pub Ipv4Addr);

impl TryFrom<Ipv4Addr> for RouterId {
    type Error = InvalidRouterId;

    fn try_from(addr: Ipv4Addr) -> Result<Self, Self::Error> {
        if addr.is_unspecified() {
            Err(InvalidRouterId(addr))
        } else {
            Ok(Self(addr))
        }
    }
}

impl From<RouterId> for Ipv4Addr {
    fn from(id: RouterId) -> Ipv4Addr {
        id.0
    }
}

impl fmt::Display for RouterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn_range() {
        assert!(Asn::try_from(0).is_err());
        assert!(Asn::try_from(23456).is_err());
        assert!(Asn::try_from(u32::MAX).is_err());
        assert_eq!(Asn::try_from(1).unwrap().get(), 1);
        assert_eq!(Asn::try_from(4_294_967_294).unwrap().get(), 4_294_967_294);
        assert!(Asn::from_field("x", -1).is_err());
        assert!(Asn::from_field("x", 1 << 32).is_err());
    }

    #[test]
    fn asn_two_octet_field() {
        assert_eq!(Asn::try_from(64512).unwrap().as_two_octet(), 64512);
        assert_eq!(Asn::try_from(65535).unwrap().as_two_octet(), 65535);
        assert_eq!(Asn::try_from(65536).unwrap().as_two_octet(), 23456);
        assert_eq!(Asn::try_from(4_200_000_001).unwrap().as_two_octet(), 23456);
    }

    #[test]
    fn asn_error_names_field_and_rule() {
        let e = Asn::from_field("spec.localASN", 23456).unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.localASN: must be an AS number in 1-4294967294 other than 23456 (AS_TRANS) (got 23456)"
        );
    }

    #[test]
    fn asn_serde_validates() {
        assert!(serde_json::from_str::<Asn>("23456").is_err());
        assert_eq!(serde_json::from_str::<Asn>("65001").unwrap().get(), 65001);
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        // Published FNV-1a 32-bit test vectors.
        assert_eq!(fnv1a32(b""), 0x811c9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9cf968);
    }

    #[test]
    fn router_id_from_name_is_stable() {
        assert_eq!(
            RouterId::from_name_hash("foobar").addr(),
            Ipv4Addr::new(0xbf, 0x9c, 0xf9, 0x68)
        );
    }

    #[test]
    fn router_id_rejects_zero_and_garbage() {
        assert!(RouterId::from_field("a", "0.0.0.0").is_err());
        assert!(RouterId::from_field("a", "2001:db8::1").is_err());
        assert!(RouterId::from_field("a", "192.0.2.300").is_err());
        assert_eq!(
            RouterId::from_field("a", "192.0.2.7").unwrap().to_string(),
            "192.0.2.7"
        );
    }
}
