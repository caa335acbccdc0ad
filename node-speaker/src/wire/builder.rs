//! Packing prefixes into as few UPDATEs as fit in 4096 octets.
//!
//! netgauze writes whatever it is given and does not split (bgp-stack gotcha 2), so the
//! arithmetic is here. Each call handles one family and one attribute set: one AFI per
//! UPDATE (FRR mixed next hops otherwise, gotcha 1), and prefixes that share attributes
//! travel together. Withdrawals go first; the announcements start in the last
//! withdrawal message when attributes and at least one prefix still fit, so the result
//! is within one message of the byte lower bound.

use std::net::{IpAddr, Ipv6Addr};

use bgpintent_api::{Family, Prefix};
use bytes::{Bytes, BytesMut};

use super::{
    EncodeCtx, EncodeError, HEADER_LEN, MAX_MESSAGE_LEN, Message,
    iana::origin,
    update::{
        AsSegment, AttrValue, LargeCommunity, MpReach, MpUnreach, PathAttribute, Update, nlri_len, value_len,
    },
};

/// Everything about a group of routes except next hop and prefixes. Ordered, so the
/// Adj-RIB-Out can group prefixes by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteAttrs {
    /// `iana::origin::*`; IGP for everything we originate.
    pub origin: u8,
    /// The AS_SEQUENCE as sent: empty for iBGP, our AS (plus prepends) for eBGP.
    pub as_path: Vec<u32>,
    pub med: Option<u32>,
    /// iBGP only (RFC 4271 §5.1.5); the caller leaves it `None` for eBGP.
    pub local_pref: Option<u32>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<LargeCommunity>,
}

impl Default for RouteAttrs {
    fn default() -> Self {
        Self {
            origin: origin::IGP,
            as_path: Vec::new(),
            med: None,
            local_pref: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
        }
    }
}

/// The next hop of announced routes: NEXT_HOP for IPv4 (an IPv4 address), MP_REACH for
/// IPv6 (an IPv6 address, plus the link-local one only when configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextHop {
    pub addr: IpAddr,
    pub link_local: Option<Ipv6Addr>,
}

impl NextHop {
    pub fn new(addr: IpAddr) -> Self {
        Self {
            addr,
            link_local: None,
        }
    }
}

impl RouteAttrs {
    /// Attributes other than NEXT_HOP / MP_*, in type-code order.
    fn base(&self, ctx: &EncodeCtx) -> Vec<PathAttribute> {
        let mut v = vec![
            PathAttribute::new(AttrValue::Origin(self.origin)),
            PathAttribute::new(AttrValue::AsPath(if self.as_path.is_empty() {
                vec![]
            } else {
                vec![AsSegment::sequence(self.as_path.clone())]
            })),
        ];
        if let Some(m) = self.med {
            v.push(PathAttribute::new(AttrValue::Med(m)));
        }
        if let Some(l) = self.local_pref {
            v.push(PathAttribute::new(AttrValue::LocalPref(l)));
        }
        if !self.communities.is_empty() {
            v.push(PathAttribute::new(AttrValue::Communities(
                self.communities.clone(),
            )));
        }
        // RFC 6793 §4.2.2: a 2-octet peer gets AS_TRANS in AS_PATH and the truth in AS4_PATH.
        if !ctx.four_octet_as && self.as_path.iter().any(|a| *a > u32::from(u16::MAX)) {
            v.push(PathAttribute::new(AttrValue::As4Path(vec![AsSegment::sequence(
                self.as_path.clone(),
            )])));
        }
        if !self.large_communities.is_empty() {
            v.push(PathAttribute::new(AttrValue::LargeCommunities(
                self.large_communities.clone(),
            )));
        }
        v
    }
}

/// Octets of a whole attribute with a value of `v` octets.
fn attr_len(v: usize) -> usize {
    v + if v > 255 { 4 } else { 3 }
}

/// The UPDATEs that announce `announce` with `attrs` via `next_hop`, and withdraw
/// `withdraw`, for one family: the fewest messages of at most 4096 octets each.
/// Nothing is returned when both lists are empty (End-of-RIB is
/// [`Update::end_of_rib_for`]).
pub fn build_updates(
    family: Family,
    attrs: &RouteAttrs,
    next_hop: Option<NextHop>,
    announce: &[Prefix],
    withdraw: &[Prefix],
    ctx: &EncodeCtx,
) -> Result<Vec<Bytes>, EncodeError> {
    if let Some(p) = announce.iter().chain(withdraw).find(|p| p.family() != family) {
        return Err(EncodeError::Invalid(format!("{p} is not {family}")));
    }
    let next_hop = match (next_hop, announce.is_empty()) {
        (_, true) => None,
        (None, false) => return Err(EncodeError::Invalid(format!("no {family} next hop"))),
        (Some(nh), false) => {
            match (family, nh.addr) {
                (Family::Ipv4, IpAddr::V4(_)) | (Family::Ipv6, IpAddr::V6(_)) => {}
                _ => return Err(EncodeError::Invalid(format!("next hop {} for {family}", nh.addr))),
            }
            Some(nh)
        }
    };
    let base = attrs.base(ctx);
    let base_len: usize = base
        .iter()
        .map(|a| attr_len(value_len(&a.value, ctx.four_octet_as)))
        .sum();
    let nh_len = match next_hop {
        Some(NextHop {
            addr: IpAddr::V4(_), ..
        }) => 4,
        Some(NextHop { link_local, .. }) => 16 + if link_local.is_some() { 16 } else { 0 },
        None => 0,
    };
    // Total message length for `w` octets of withdrawn NLRI and `a` of announced NLRI.
    let size = |w: usize, a: Option<usize>| -> usize {
        let fixed = HEADER_LEN + 4;
        match family {
            Family::Ipv4 => fixed + w + a.map_or(0, |a| base_len + attr_len(4) + a),
            Family::Ipv6 => {
                fixed
                    + if w > 0 { attr_len(3 + w) } else { 0 }
                    + a.map_or(0, |a| base_len + attr_len(5 + nh_len + a))
            }
        }
    };

    let mut out = Vec::new();
    let (mut wi, mut ai) = (0, 0);
    while wi < withdraw.len() || ai < announce.len() {
        let (w0, a0) = (wi, ai);
        let mut w = 0;
        while let Some(p) = withdraw.get(wi) {
            if size(w + nlri_len(p), None) > MAX_MESSAGE_LEN {
                break;
            }
            w += nlri_len(p);
            wi += 1;
        }
        if wi == withdraw.len() {
            let mut a = 0;
            while let Some(p) = announce.get(ai) {
                if size(w, Some(a + nlri_len(p))) > MAX_MESSAGE_LEN {
                    break;
                }
                a += nlri_len(p);
                ai += 1;
            }
        }
        if (w0, a0) == (wi, ai) {
            return Err(EncodeError::Invalid(format!(
                "attributes of {base_len} octets leave no room for a prefix"
            )));
        }
        let update = assemble(family, &base, next_hop, &announce[a0..ai], &withdraw[w0..wi]);
        let mut buf = BytesMut::with_capacity(size(w, (ai > a0).then_some(0)) + 64);
        Message::Update(update).encode(ctx, &mut buf)?;
        out.push(buf.freeze());
    }
    Ok(out)
}

fn assemble(
    family: Family,
    base: &[PathAttribute],
    nh: Option<NextHop>,
    announce: &[Prefix],
    withdraw: &[Prefix],
) -> Update {
    let mut u = Update::default();
    let reach = !announce.is_empty();
    match family {
        Family::Ipv4 => {
            u.withdrawn = withdraw.to_vec();
            u.nlri = announce.to_vec();
            if reach {
                u.attributes = base.to_vec();
                if let Some(NextHop {
                    addr: IpAddr::V4(a), ..
                }) = nh
                {
                    // NEXT_HOP (3) goes after ORIGIN (1) and AS_PATH (2).
                    u.attributes.insert(2, PathAttribute::new(AttrValue::NextHop(a)));
                }
            }
        }
        Family::Ipv6 => {
            if reach {
                u.attributes = base.to_vec();
                if let Some(nh) = nh {
                    let at = u
                        .attributes
                        .iter()
                        .position(|a| a.value.code() > 14)
                        .unwrap_or(u.attributes.len());
                    u.attributes.insert(
                        at,
                        PathAttribute::new(AttrValue::MpReach(MpReach::Unicast {
                            family,
                            next_hop: nh.addr,
                            link_local: nh.link_local,
                            nlri: announce.to_vec(),
                        })),
                    );
                }
            }
            if !withdraw.is_empty() {
                let at = u
                    .attributes
                    .iter()
                    .position(|a| a.value.code() > 15)
                    .unwrap_or(u.attributes.len());
                u.attributes.insert(
                    at,
                    PathAttribute::new(AttrValue::MpUnreach(MpUnreach::Unicast {
                        family,
                        withdrawn: withdraw.to_vec(),
                    })),
                );
            }
        }
    }
    u
}
