//! Path attributes an operator sets on announcements: communities (RFC 1997, with the
//! well-known names), large communities (RFC 8092), LOCAL_PREF, MED, and AS-path prepending.
//!
//! ```text
//!   "65000:100" | "no-export" ──FromStr──▶ Community(u32) ──Display──▶ "65000:100" | "no-export"
//!   "65000:1:2"               ──FromStr──▶ LargeCommunity ──Display──▶ "65000:1:2"
//! ```
//!
//! [`PathAttributes::merge`] is the one place that decides what a prefix with several
//! sources carries: communities united, LOCAL_PREF and MED from the first source that sets
//! them (the caller passes sources most specific first).

use std::{collections::BTreeSet, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{Asn, FieldError};

/// A standard community: 16-bit AS, 16-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Community(pub u32);

impl Community {
    /// Well-known communities by the names operators and routers use (IANA registry).
    pub const WELL_KNOWN: [(&'static str, u32); 9] = [
        ("graceful-shutdown", 0xFFFF_0000),
        ("accept-own", 0xFFFF_0001),
        ("llgr-stale", 0xFFFF_0006),
        ("no-llgr", 0xFFFF_0007),
        ("blackhole", 0xFFFF_029A),
        ("no-export", 0xFFFF_FF01),
        ("no-advertise", 0xFFFF_FF02),
        ("no-export-subconfed", 0xFFFF_FF03),
        ("no-peer", 0xFFFF_FF04),
    ];
}

impl Community {
    /// The rule a community's text follows, phrased for "field: rule" messages (the CRD
    /// schema's CEL message says the same).
    pub fn rule() -> String {
        let names: Vec<&str> = Self::WELL_KNOWN.iter().map(|(n, _)| *n).collect();
        format!(
            "must be <0-65535>:<0-65535> or a well-known community ({})",
            names.join(", ")
        )
    }

    /// Parses `value`, naming `field` in the error.
    pub fn from_field(field: &str, value: &str) -> Result<Self, FieldError> {
        value
            .parse()
            .map_err(|_| FieldError::new(field, Self::rule()).with_value(format!("{value:?}")))
    }
}

impl FromStr for Community {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((_, v)) = Self::WELL_KNOWN.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
            return Ok(Self(*v));
        }
        let rule = || {
            format!(
                "{s:?} is not a community: want <0-65535>:<0-65535> or one of {}",
                Self::WELL_KNOWN.map(|(n, _)| n).join(", ")
            )
        };
        let (asn, value) = s.split_once(':').ok_or_else(rule)?;
        let asn: u16 = asn.parse().map_err(|_| rule())?;
        let value: u16 = value.parse().map_err(|_| rule())?;
        Ok(Self((u32::from(asn) << 16) | u32::from(value)))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::WELL_KNOWN.iter().find(|(_, v)| *v == self.0) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}:{}", self.0 >> 16, self.0 & 0xFFFF),
        }
    }
}

/// A large community (RFC 8092): global administrator and two local data parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl LargeCommunity {
    /// The rule a large community's text follows.
    pub const RULE: &'static str = "must be <uint32>:<uint32>:<uint32>";

    /// Parses `value`, naming `field` in the error.
    pub fn from_field(field: &str, value: &str) -> Result<Self, FieldError> {
        value
            .parse()
            .map_err(|_| FieldError::new(field, Self::RULE).with_value(format!("{value:?}")))
    }
}

impl FromStr for LargeCommunity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rule = || format!("{s:?} is not a large community: want <uint32>:<uint32>:<uint32>");
        let mut parts = s.split(':').map(|p| p.parse::<u32>().map_err(|_| rule()));
        let (Some(global), Some(local1), Some(local2), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(rule());
        };
        Ok(Self {
            global: global?,
            local1: local1?,
            local2: local2?,
        })
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

/// Attributes set on announcements beyond what the speaker always sends (ORIGIN IGP,
/// AS_PATH, NEXT_HOP). The default is "nothing extra".
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PathAttributes {
    pub communities: BTreeSet<Community>,
    pub large_communities: BTreeSet<LargeCommunity>,
    /// Sent to iBGP peers only (RFC 4271 §5.1.5); the speaker sends 100 when `None`.
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC, sent to every peer when set.
    pub med: Option<u32>,
}

impl PathAttributes {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// What a prefix announced for several sources carries: the union of their communities
    /// and large communities; LOCAL_PREF and MED from the first source (in the order given,
    /// most specific first) that sets each.
    pub fn merge<'a>(sources: impl IntoIterator<Item = &'a PathAttributes>) -> PathAttributes {
        let mut out = PathAttributes::default();
        for a in sources {
            out.communities.extend(a.communities.iter().copied());
            out.large_communities.extend(a.large_communities.iter().copied());
            out.local_pref = out.local_pref.or(a.local_pref);
            out.med = out.med.or(a.med);
        }
        out
    }
}

/// AS-path prepending on every announcement of a Node, so routers prefer other Nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AsPathPrepend {
    /// The ASN repeated (usually the Node's own).
    pub asn: Asn,
    /// How many times, 1 to [`AsPathPrepend::MAX_REPEAT`].
    pub repeat: u8,
}

impl AsPathPrepend {
    pub const MAX_REPEAT: u8 = 10;

    /// The ASNs put in front of the path.
    pub fn path(&self) -> Vec<u32> {
        vec![self.asn.get(); usize::from(self.repeat)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_parse_and_print_canonically() {
        for (text, value, shown) in [
            ("65000:100", 0xFDE8_0064, "65000:100"),
            ("0:0", 0, "0:0"),
            ("no-export", 0xFFFF_FF01, "no-export"),
            ("NO-ADVERTISE", 0xFFFF_FF02, "no-advertise"),
            ("65535:65281", 0xFFFF_FF01, "no-export"),
            ("blackhole", 0xFFFF_029A, "blackhole"),
        ] {
            let c: Community = text.parse().unwrap();
            assert_eq!(c.0, value, "{text}");
            assert_eq!(c.to_string(), shown, "{text}");
        }
        for bad in ["65536:1", "1:65536", "1", "a:b", "1:2:3", "", "no_export", "-1:2"] {
            let err = bad.parse::<Community>().unwrap_err();
            assert!(err.contains("not a community"), "{bad}: {err}");
        }
    }

    #[test]
    fn field_errors_name_the_field_and_the_rule() {
        let e = Community::from_field("x.communities[1]", "65536:1").unwrap_err();
        assert_eq!(e.field, "x.communities[1]");
        assert!(
            e.to_string()
                .contains("must be <0-65535>:<0-65535> or a well-known community (graceful-shutdown, ")
        );
        assert!(e.to_string().ends_with("(got \"65536:1\")"), "{e}");
        let e = LargeCommunity::from_field("y", "1:2").unwrap_err();
        assert_eq!(
            e.to_string(),
            "y: must be <uint32>:<uint32>:<uint32> (got \"1:2\")"
        );
        assert_eq!(Community::from_field("z", "no-export").unwrap().0, 0xFFFF_FF01);
    }

    #[test]
    fn large_communities_parse_and_print() {
        let l: LargeCommunity = "4200000000:1:2".parse().unwrap();
        assert_eq!((l.global, l.local1, l.local2), (4_200_000_000, 1, 2));
        assert_eq!(l.to_string(), "4200000000:1:2");
        for bad in ["1:2", "1:2:3:4", "4294967296:1:1", "a:1:1", ""] {
            assert!(bad.parse::<LargeCommunity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn merge_unites_communities_and_takes_the_first_local_pref_and_med() {
        let service = PathAttributes {
            communities: ["65000:1".parse().unwrap()].into(),
            med: Some(10),
            ..Default::default()
        };
        let policy = PathAttributes {
            communities: ["65000:2".parse().unwrap()].into(),
            large_communities: ["1:2:3".parse().unwrap()].into(),
            local_pref: Some(200),
            med: Some(50),
        };
        let merged = PathAttributes::merge([&service, &policy]);
        assert_eq!(merged.communities.len(), 2);
        assert_eq!(merged.large_communities.len(), 1);
        assert_eq!(merged.med, Some(10));
        assert_eq!(merged.local_pref, Some(200));
        assert!(PathAttributes::merge([]).is_empty());
    }

    #[test]
    fn prepend_path() {
        let p = AsPathPrepend {
            asn: Asn::try_from(64512).unwrap(),
            repeat: 3,
        };
        assert_eq!(p.path(), vec![64512; 3]);
    }
}
