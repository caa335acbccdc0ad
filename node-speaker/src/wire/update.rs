//! UPDATE (RFC 4271 §4.3) as a value: the attributes we send, the ones peers send us,
//! and the RFC 7606 verdict on what we received.
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |   IPv4 only
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |   flags, type, length (1 or 2), value
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |   IPv4 only
//! +-----------------------------------------------------+
//! ```
//!
//! Encoding converts to netgauze and lets it write; the flags we hand it are computed
//! here (well-known/optional/transitive per type, Extended Length whenever a value exceeds
//! 255 octets), because netgauze writes a 2-octet length without the flag otherwise.
//! Decoding is ours, in [`super::update_decode`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgpintent_api::{Family, Prefix};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netgauze_bgp_pkt::{
    community::{Community, LargeCommunity as NgLarge},
    nlri::{Ipv4Unicast, Ipv4UnicastAddress, Ipv6Unicast, Ipv6UnicastAddress},
    path_attribute::{
        As2PathSegment, As4Path, As4PathSegment, AsPath, AsPathSegmentType, Communities, LargeCommunities,
        LocalPreference, MpReach as NgMpReach, MpUnreach as NgMpUnreach, MultiExitDiscriminator, NextHop,
        Origin, PathAttribute as NgAttr, PathAttributeValue, UnknownAttribute,
    },
    update::BgpUpdateMessage,
};

use super::{
    EncodeError,
    error::AttrError,
    iana::{as_path_segment, attr, attr_flag},
    open::AfiSafi,
};

/// A path attribute: its flags (without Extended Length, which is a matter of encoding)
/// and its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathAttribute {
    /// Optional, Transitive and Partial bits as received (or the canonical ones).
    pub flags: u8,
    pub value: AttrValue,
}

impl PathAttribute {
    /// An attribute with the flags its type prescribes.
    pub fn new(value: AttrValue) -> Self {
        Self {
            flags: value.canonical_flags(),
            value,
        }
    }
}

/// An AS_PATH / AS4_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsSegment {
    /// `iana::as_path_segment::*`.
    pub kind: u8,
    pub asns: Vec<u32>,
}

impl AsSegment {
    pub fn sequence(asns: Vec<u32>) -> Self {
        Self {
            kind: as_path_segment::AS_SEQUENCE,
            asns,
        }
    }
}

/// RFC 8092 large community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    pub global_admin: u32,
    pub local_data1: u32,
    pub local_data2: u32,
}

/// MP_REACH_NLRI (RFC 4760 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MpReach {
    Unicast {
        family: Family,
        /// Global next hop. For IPv6, an explicit IPv6 address (bgp-stack gotcha 2).
        next_hop: IpAddr,
        /// Second, link-local IPv6 next hop (32-octet form); only when configured, as
        /// FRR without zebra treats it as withdraw (gotcha 3).
        link_local: Option<Ipv6Addr>,
        nlri: Vec<Prefix>,
    },
    /// Another AFI/SAFI: afi, safi and the rest of the value, verbatim.
    Other { afi: u16, safi: u8, value: Vec<u8> },
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MpUnreach {
    Unicast { family: Family, withdrawn: Vec<Prefix> },
    Other { afi: u16, safi: u8, value: Vec<u8> },
}

/// Path attribute values. The ones we send or check are typed; the rest are kept raw.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttrValue {
    Origin(u8),
    AsPath(Vec<AsSegment>),
    NextHop(Ipv4Addr),
    Med(u32),
    LocalPref(u32),
    AtomicAggregate,
    Communities(Vec<u32>),
    LargeCommunities(Vec<LargeCommunity>),
    MpReach(MpReach),
    MpUnreach(MpUnreach),
    As4Path(Vec<AsSegment>),
    /// AGGREGATOR, ORIGINATOR_ID, CLUSTER_LIST, AS4_AGGREGATOR and unknown types.
    Other {
        code: u8,
        value: Vec<u8>,
    },
}

impl AttrValue {
    pub fn code(&self) -> u8 {
        match self {
            AttrValue::Origin(_) => attr::ORIGIN,
            AttrValue::AsPath(_) => attr::AS_PATH,
            AttrValue::NextHop(_) => attr::NEXT_HOP,
            AttrValue::Med(_) => attr::MULTI_EXIT_DISC,
            AttrValue::LocalPref(_) => attr::LOCAL_PREF,
            AttrValue::AtomicAggregate => attr::ATOMIC_AGGREGATE,
            AttrValue::Communities(_) => attr::COMMUNITIES,
            AttrValue::LargeCommunities(_) => attr::LARGE_COMMUNITY,
            AttrValue::MpReach(_) => attr::MP_REACH_NLRI,
            AttrValue::MpUnreach(_) => attr::MP_UNREACH_NLRI,
            AttrValue::As4Path(_) => attr::AS4_PATH,
            AttrValue::Other { code, .. } => *code,
        }
    }

    /// Optional/Transitive bits the RFCs prescribe for a type; unknown types are
    /// optional transitive (the only kind one would originate).
    pub fn canonical_flags(&self) -> u8 {
        flags_for(self.code()).unwrap_or(attr_flag::OPTIONAL | attr_flag::TRANSITIVE)
    }
}

/// The prescribed Optional/Transitive bits of the types we know.
pub(super) fn flags_for(code: u8) -> Option<u8> {
    const WELL_KNOWN: u8 = attr_flag::TRANSITIVE;
    const OPT_TRANS: u8 = attr_flag::OPTIONAL | attr_flag::TRANSITIVE;
    const OPT_NON_TRANS: u8 = attr_flag::OPTIONAL;
    Some(match code {
        attr::ORIGIN | attr::AS_PATH | attr::NEXT_HOP | attr::LOCAL_PREF | attr::ATOMIC_AGGREGATE => {
            WELL_KNOWN
        }
        attr::AGGREGATOR
        | attr::COMMUNITIES
        | attr::AS4_PATH
        | attr::AS4_AGGREGATOR
        | attr::LARGE_COMMUNITY => OPT_TRANS,
        attr::MULTI_EXIT_DISC
        | attr::ORIGINATOR_ID
        | attr::CLUSTER_LIST
        | attr::MP_REACH_NLRI
        | attr::MP_UNREACH_NLRI => OPT_NON_TRANS,
        _ => return None,
    })
}

/// A decoded or to-be-encoded UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// IPv4 withdrawn routes.
    pub withdrawn: Vec<Prefix>,
    pub attributes: Vec<PathAttribute>,
    /// IPv4 NLRI.
    pub nlri: Vec<Prefix>,
    /// RFC 7606 treat-as-withdraw: set on a received UPDATE whose announcements must be
    /// taken as withdrawals. The first such error; later ones are not kept.
    pub treat_as_withdraw: Option<AttrError>,
    /// RFC 7606 attribute discard: attributes that were dropped from `attributes`.
    pub discarded: Vec<AttrError>,
}

impl Update {
    pub fn attribute(&self, code: u8) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .map(|a| &a.value)
            .find(|v| v.code() == code)
    }

    pub fn mp_reach(&self) -> Option<&MpReach> {
        match self.attribute(attr::MP_REACH_NLRI) {
            Some(AttrValue::MpReach(r)) => Some(r),
            _ => None,
        }
    }

    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        match self.attribute(attr::MP_UNREACH_NLRI) {
            Some(AttrValue::MpUnreach(r)) => Some(r),
            _ => None,
        }
    }

    /// The End-of-RIB marker of RFC 4724 §2: an empty UPDATE (IPv4), or one carrying only
    /// an empty MP_UNREACH (other families).
    pub fn end_of_rib(&self) -> Option<AfiSafi> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(AfiSafi::IPV4_UNICAST),
            [only] => match &only.value {
                AttrValue::MpUnreach(MpUnreach::Unicast { family, withdrawn }) if withdrawn.is_empty() => {
                    Some(AfiSafi::of(*family))
                }
                AttrValue::MpUnreach(MpUnreach::Other { afi, safi, value }) if value.is_empty() => {
                    Some(AfiSafi {
                        afi: *afi,
                        safi: *safi,
                    })
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// The End-of-RIB marker for a family.
    pub fn end_of_rib_for(family: Family) -> Self {
        match family {
            Family::Ipv4 => Update::default(),
            Family::Ipv6 => Update {
                attributes: vec![PathAttribute::new(AttrValue::MpUnreach(MpUnreach::Unicast {
                    family,
                    withdrawn: vec![],
                }))],
                ..Update::default()
            },
        }
    }

    /// Prefixes announced (IPv4 NLRI and unicast MP_REACH), zero under treat-as-withdraw.
    pub fn announced(&self) -> usize {
        if self.treat_as_withdraw.is_some() {
            return 0;
        }
        self.nlri.len()
            + match self.mp_reach() {
                Some(MpReach::Unicast { nlri, .. }) => nlri.len(),
                _ => 0,
            }
    }

    /// Prefixes withdrawn, including announcements turned into withdrawals by RFC 7606.
    pub fn withdrawn_count(&self) -> usize {
        let explicit = self.withdrawn.len()
            + match self.mp_unreach() {
                Some(MpUnreach::Unicast { withdrawn, .. }) => withdrawn.len(),
                _ => 0,
            };
        let implied = if self.treat_as_withdraw.is_some() {
            self.nlri.len()
                + match self.mp_reach() {
                    Some(MpReach::Unicast { nlri, .. }) => nlri.len(),
                    _ => 0,
                }
        } else {
            0
        };
        explicit + implied
    }

    pub(super) fn to_netgauze(&self, four_octet_as: bool) -> Result<BgpUpdateMessage, EncodeError> {
        let withdrawn = v4_nlri(&self.withdrawn)?;
        let nlri = v4_nlri(&self.nlri)?;
        let attrs = self
            .attributes
            .iter()
            .map(|a| attr_to_netgauze(a, four_octet_as))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BgpUpdateMessage::new(withdrawn, attrs, nlri))
    }
}

/// Octets of a prefix in NLRI encoding: length octet + significant address octets.
pub fn nlri_len(p: &Prefix) -> usize {
    1 + usize::from(p.len()).div_ceil(8)
}

fn v4_nlri(prefixes: &[Prefix]) -> Result<Vec<Ipv4UnicastAddress>, EncodeError> {
    prefixes
        .iter()
        .map(|p| match p.net() {
            IpNet::V4(n) => Ok(Ipv4UnicastAddress::new_no_path_id(v4(n)?)),
            IpNet::V6(_) => Err(EncodeError::Invalid(format!("IPv6 prefix {p} in IPv4 NLRI"))),
        })
        .collect()
}

fn v6_nlri(prefixes: &[Prefix]) -> Result<Vec<Ipv6UnicastAddress>, EncodeError> {
    prefixes
        .iter()
        .map(|p| match p.net() {
            IpNet::V6(n) => Ok(Ipv6UnicastAddress::new(None, v6(n)?)),
            IpNet::V4(_) => Err(EncodeError::Invalid(format!("IPv4 prefix {p} in IPv6 NLRI"))),
        })
        .collect()
}

fn v4(n: Ipv4Net) -> Result<Ipv4Unicast, EncodeError> {
    Ipv4Unicast::from_net(n).map_err(|e| EncodeError::Invalid(format!("{n}: {e:?}")))
}

fn v6(n: Ipv6Net) -> Result<Ipv6Unicast, EncodeError> {
    Ipv6Unicast::from_net(n).map_err(|e| EncodeError::Invalid(format!("{n}: {e:?}")))
}

/// Octets of an attribute value as it will be written (to decide Extended Length).
pub(super) fn value_len(v: &AttrValue, four_octet_as: bool) -> usize {
    let seg_len =
        |segs: &[AsSegment], width: usize| -> usize { segs.iter().map(|s| 2 + s.asns.len() * width).sum() };
    match v {
        AttrValue::Origin(_) => 1,
        AttrValue::AsPath(s) => seg_len(s, if four_octet_as { 4 } else { 2 }),
        AttrValue::As4Path(s) => seg_len(s, 4),
        AttrValue::NextHop(_) | AttrValue::Med(_) | AttrValue::LocalPref(_) => 4,
        AttrValue::AtomicAggregate => 0,
        AttrValue::Communities(c) => 4 * c.len(),
        AttrValue::LargeCommunities(c) => 12 * c.len(),
        AttrValue::MpReach(MpReach::Unicast {
            next_hop,
            link_local,
            nlri,
            ..
        }) => {
            let nh = match next_hop {
                IpAddr::V4(_) => 4,
                IpAddr::V6(_) => 16,
            } + if link_local.is_some() { 16 } else { 0 };
            5 + nh + nlri.iter().map(nlri_len).sum::<usize>()
        }
        AttrValue::MpUnreach(MpUnreach::Unicast { withdrawn, .. }) => {
            3 + withdrawn.iter().map(nlri_len).sum::<usize>()
        }
        AttrValue::MpReach(MpReach::Other { value, .. })
        | AttrValue::MpUnreach(MpUnreach::Other { value, .. }) => 3 + value.len(),
        AttrValue::Other { value, .. } => value.len(),
    }
}

fn segments_to_netgauze(segs: &[AsSegment], four_octet_as: bool) -> Result<AsPath, EncodeError> {
    let kind = |k: u8| {
        AsPathSegmentType::from_repr(k)
            .ok_or_else(|| EncodeError::Invalid(format!("AS_PATH segment type {k} cannot be encoded")))
    };
    if four_octet_as {
        let s = segs
            .iter()
            .map(|s| Ok(As4PathSegment::new(kind(s.kind)?, s.asns.clone())))
            .collect::<Result<Vec<_>, EncodeError>>()?;
        Ok(AsPath::As4PathSegments(s.into()))
    } else {
        // RFC 6793 §4.2.2: an AS that does not fit becomes AS_TRANS; the caller adds
        // AS4_PATH with the real path.
        let s = segs
            .iter()
            .map(|s| {
                let asns: Vec<u16> = s
                    .asns
                    .iter()
                    .map(|a| u16::try_from(*a).unwrap_or(bgpintent_api::Asn::AS_TRANS))
                    .collect();
                Ok(As2PathSegment::new(kind(s.kind)?, asns))
            })
            .collect::<Result<Vec<_>, EncodeError>>()?;
        Ok(AsPath::As2PathSegments(s.into()))
    }
}

fn raw_mp(afi: u16, safi: u8, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(3 + value.len());
    v.extend_from_slice(&afi.to_be_bytes());
    v.push(safi);
    v.extend_from_slice(value);
    v
}

fn attr_to_netgauze(a: &PathAttribute, four_octet_as: bool) -> Result<NgAttr, EncodeError> {
    use PathAttributeValue as V;
    let value = match &a.value {
        AttrValue::Origin(o) => {
            V::Origin(Origin::from_repr(*o).ok_or_else(|| EncodeError::Invalid(format!("ORIGIN {o}")))?)
        }
        AttrValue::AsPath(s) => V::AsPath(segments_to_netgauze(s, four_octet_as)?),
        AttrValue::As4Path(s) => match segments_to_netgauze(s, true)? {
            AsPath::As4PathSegments(segs) => V::As4Path(As4Path::new(segs)),
            AsPath::As2PathSegments(_) => unreachable!("four_octet_as = true gives 4-octet segments"),
        },
        AttrValue::NextHop(nh) => V::NextHop(NextHop::new(*nh)),
        AttrValue::Med(m) => V::MultiExitDiscriminator(MultiExitDiscriminator::new(*m)),
        AttrValue::LocalPref(l) => V::LocalPreference(LocalPreference::new(*l)),
        AttrValue::AtomicAggregate => V::AtomicAggregate(netgauze_bgp_pkt::path_attribute::AtomicAggregate),
        AttrValue::Communities(c) => V::Communities(Communities::new(
            c.iter().map(|v| Community::new(*v)).collect::<Vec<_>>(),
        )),
        AttrValue::LargeCommunities(c) => V::LargeCommunities(LargeCommunities::new(
            c.iter()
                .map(|l| NgLarge::new(l.global_admin, l.local_data1, l.local_data2))
                .collect::<Vec<_>>(),
        )),
        AttrValue::MpReach(MpReach::Unicast {
            family,
            next_hop,
            link_local,
            nlri,
        }) => match (family, next_hop) {
            (Family::Ipv6, IpAddr::V6(global)) => V::MpReach(NgMpReach::Ipv6Unicast {
                next_hop_global: *global,
                next_hop_local: *link_local,
                nlri: v6_nlri(nlri)?.into(),
            }),
            (Family::Ipv4, nh) => V::MpReach(NgMpReach::Ipv4Unicast {
                next_hop: *nh,
                next_hop_local: *link_local,
                nlri: v4_nlri(nlri)?.into(),
            }),
            (Family::Ipv6, IpAddr::V4(_)) => {
                // bgp-stack gotcha 2: BIRD treats an IPv4 next hop for IPv6 as withdraw.
                return Err(EncodeError::Invalid("IPv6 routes need an IPv6 next hop".into()));
            }
        },
        AttrValue::MpUnreach(MpUnreach::Unicast { family, withdrawn }) => V::MpUnreach(match family {
            Family::Ipv4 => NgMpUnreach::Ipv4Unicast {
                nlri: v4_nlri(withdrawn)?.into(),
            },
            Family::Ipv6 => NgMpUnreach::Ipv6Unicast {
                nlri: v6_nlri(withdrawn)?.into(),
            },
        }),
        AttrValue::MpReach(MpReach::Other { afi, safi, value }) => V::UnknownAttribute(
            UnknownAttribute::new(attr::MP_REACH_NLRI, raw_mp(*afi, *safi, value)),
        ),
        AttrValue::MpUnreach(MpUnreach::Other { afi, safi, value }) => V::UnknownAttribute(
            UnknownAttribute::new(attr::MP_UNREACH_NLRI, raw_mp(*afi, *safi, value)),
        ),
        AttrValue::Other { code, value } => V::UnknownAttribute(UnknownAttribute::new(*code, value.clone())),
    };
    let len = value_len(&a.value, four_octet_as);
    if len > usize::from(u16::MAX) {
        return Err(EncodeError::Invalid(format!("attribute value of {len} octets")));
    }
    NgAttr::from(
        a.flags & attr_flag::OPTIONAL != 0,
        a.flags & attr_flag::TRANSITIVE != 0,
        a.flags & attr_flag::PARTIAL != 0,
        // The rule netgauze leaves to us (bgp-stack gotcha 1).
        len > 255,
        value,
    )
    .map_err(|(_, e)| EncodeError::Invalid(format!("attribute {} flags: {e:?}", a.value.code())))
}
