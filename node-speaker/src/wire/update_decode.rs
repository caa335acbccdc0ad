//! Receiving an UPDATE: every length checked, and each error sorted into the RFC 7606
//! outcome it deserves.
//!
//! We never install routes, so the verdict only decides whether the session survives and
//! what the counters say. That is still worth getting right: resetting a session over an
//! attribute RFC 7606 says to ignore would flap a peer on every route a third party sends
//! (FRR reflects our own routes back, gotcha 12); not resetting over a broken NLRI would
//! desynchronize the stream.
//!
//! | what is wrong                                 | outcome (RFC 7606 section)       |
//! |-----------------------------------------------|----------------------------------|
//! | withdrawn/attribute lengths exceed the message | reset, Malformed Attribute List (4271 §6.3) |
//! | IPv4 NLRI or withdrawn prefix malformed        | reset, Invalid Network Field (§5.3) |
//! | attribute header/length overruns the list      | treat-as-withdraw (§4)           |
//! | MP_REACH / MP_UNREACH malformed or repeated    | reset (§7.11, §3.g)              |
//! | other attribute repeated                       | discard the repeats (§3.g)       |
//! | unknown well-known attribute                   | reset, Unrecognized Well-known (4271 §6.3) |
//! | well-known flags wrong                         | treat-as-withdraw (§3.c)         |
//! | ORIGIN, AS_PATH, NEXT_HOP, MED, COMMUNITIES, LARGE_COMMUNITY, ORIGINATOR_ID, CLUSTER_LIST malformed | treat-as-withdraw (§7) |
//! | LOCAL_PREF from an external peer              | discard (§7.5)                   |
//! | ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR malformed | discard (§7.6, §7.7, RFC 6793 §6) |
//! | ORIGIN/AS_PATH/NEXT_HOP missing with NLRI     | treat-as-withdraw (§3.d)         |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgpintent_api::{Family, Prefix};
use ipnet::{Ipv4Net, Ipv6Net};

use super::{
    DecodeCtx, DecodeError,
    error::{AttrAction, AttrError, UpdateError, UpdateSubcode},
    iana::{afi, as_path_segment, attr, attr_flag, safi},
    update::{AsSegment, AttrValue, LargeCommunity, MpReach, MpUnreach, PathAttribute, Update, flags_for},
};

use UpdateSubcode as S;

/// Parses an UPDATE body (after the header).
pub(super) fn decode_body(body: &[u8], ctx: &DecodeCtx) -> Result<Update, DecodeError> {
    let list = || UpdateError::new(S::MalformedAttributeList, "lengths exceed the message");
    let (wlen, rest) = body.split_first_chunk::<2>().ok_or_else(list)?;
    let wlen = usize::from(u16::from_be_bytes(*wlen));
    let withdrawn_raw = rest.get(..wlen).ok_or_else(list)?;
    let rest = &rest[wlen..];
    let (alen, rest) = rest.split_first_chunk::<2>().ok_or_else(list)?;
    let alen = usize::from(u16::from_be_bytes(*alen));
    let attrs_raw = rest.get(..alen).ok_or_else(list)?;
    let nlri_raw = &rest[alen..];

    let mut update = Update {
        withdrawn: parse_nlri(withdrawn_raw, Family::Ipv4)?,
        nlri: parse_nlri(nlri_raw, Family::Ipv4)?,
        ..Update::default()
    };
    parse_attributes(attrs_raw, ctx, &mut update)?;

    // RFC 7606 §3.d: mandatory attributes missing while routes are announced.
    let has_mp_reach = update.mp_reach().is_some();
    if !update.nlri.is_empty() || has_mp_reach {
        let mut missing = vec![attr::ORIGIN, attr::AS_PATH];
        if !update.nlri.is_empty() {
            missing.push(attr::NEXT_HOP);
        }
        if let Some(code) = missing.into_iter().find(|c| update.attribute(*c).is_none()) {
            withdraw(
                &mut update,
                code,
                S::MissingWellKnownAttribute,
                "mandatory attribute missing",
            );
        }
    }
    Ok(update)
}

fn withdraw(update: &mut Update, type_code: u8, subcode: UpdateSubcode, reason: &'static str) {
    if update.treat_as_withdraw.is_none() {
        update.treat_as_withdraw = Some(AttrError {
            action: AttrAction::TreatAsWithdraw,
            type_code,
            subcode,
            reason,
        });
    }
}

fn discard(update: &mut Update, type_code: u8, subcode: UpdateSubcode, reason: &'static str) {
    update.discarded.push(AttrError {
        action: AttrAction::Discard,
        type_code,
        subcode,
        reason,
    });
}

fn parse_attributes(mut raw: &[u8], ctx: &DecodeCtx, update: &mut Update) -> Result<(), DecodeError> {
    let mut seen = [false; 256];
    while !raw.is_empty() {
        // RFC 7606 §4: a header or value that runs past the attribute list is
        // treat-as-withdraw; the Total Attribute Length still locates the NLRI.
        let [flags, code, ..] = *raw else {
            withdraw(update, 0, S::MalformedAttributeList, "truncated attribute header");
            return Ok(());
        };
        let ext = flags & attr_flag::EXTENDED_LENGTH != 0;
        let hdr = if ext { 4 } else { 3 };
        let Some(len) = raw.get(2..hdr).map(|l| {
            if ext {
                usize::from(u16::from_be_bytes([l[0], l[1]]))
            } else {
                usize::from(l[0])
            }
        }) else {
            withdraw(
                update,
                code,
                S::MalformedAttributeList,
                "truncated attribute header",
            );
            return Ok(());
        };
        let Some(whole) = raw.get(..hdr + len) else {
            withdraw(
                update,
                code,
                S::AttributeLengthError,
                "attribute overruns the attribute list",
            );
            return Ok(());
        };
        let value = &whole[hdr..];
        raw = &raw[hdr + len..];

        let is_mp = code == attr::MP_REACH_NLRI || code == attr::MP_UNREACH_NLRI;
        let reset = |subcode, reason| {
            DecodeError::Update(UpdateError::new(subcode, reason).with_data(whole.to_vec()))
        };
        if std::mem::replace(&mut seen[usize::from(code)], true) {
            if is_mp {
                return Err(DecodeError::Update(UpdateError::new(
                    S::MalformedAttributeList,
                    "MP_REACH_NLRI or MP_UNREACH_NLRI repeated",
                )));
            }
            discard(update, code, S::MalformedAttributeList, "attribute repeated");
            continue;
        }
        let flags = flags & !attr_flag::EXTENDED_LENGTH & 0xf0;
        match flags_for(code) {
            None if flags & attr_flag::OPTIONAL == 0 => {
                return Err(reset(
                    S::UnrecognizedWellKnownAttribute,
                    "unrecognized well-known attribute",
                ));
            }
            Some(want) if flags & (attr_flag::OPTIONAL | attr_flag::TRANSITIVE) != want => {
                if is_mp {
                    return Err(reset(S::AttributeFlagsError, "MP attribute flags"));
                }
                withdraw(
                    update,
                    code,
                    S::AttributeFlagsError,
                    "attribute flags conflict with its type",
                );
                continue;
            }
            _ => {}
        }

        let parsed = match code {
            attr::ORIGIN => match value {
                [o] if *o <= 2 => Ok(AttrValue::Origin(*o)),
                [_] => Err((
                    AttrAction::TreatAsWithdraw,
                    S::InvalidOriginAttribute,
                    "undefined ORIGIN",
                )),
                _ => Err((
                    AttrAction::TreatAsWithdraw,
                    S::AttributeLengthError,
                    "ORIGIN length",
                )),
            },
            attr::AS_PATH => parse_as_path(value, if ctx.four_octet_as { 4 } else { 2 }, ctx.ibgp)
                .map(AttrValue::AsPath)
                .map_err(|r| (AttrAction::TreatAsWithdraw, S::MalformedAsPath, r)),
            attr::NEXT_HOP => match value {
                [a, b, c, d] => Ok(AttrValue::NextHop(Ipv4Addr::new(*a, *b, *c, *d))),
                _ => Err((
                    AttrAction::TreatAsWithdraw,
                    S::AttributeLengthError,
                    "NEXT_HOP length",
                )),
            },
            attr::MULTI_EXIT_DISC => u32_value(value).map(AttrValue::Med).ok_or((
                AttrAction::TreatAsWithdraw,
                S::AttributeLengthError,
                "MED length",
            )),
            attr::LOCAL_PREF if !ctx.ibgp => Err((
                AttrAction::Discard,
                S::MalformedAttributeList,
                "LOCAL_PREF from an external peer",
            )),
            attr::LOCAL_PREF => u32_value(value).map(AttrValue::LocalPref).ok_or((
                AttrAction::TreatAsWithdraw,
                S::AttributeLengthError,
                "LOCAL_PREF length",
            )),
            attr::ATOMIC_AGGREGATE if value.is_empty() => Ok(AttrValue::AtomicAggregate),
            attr::ATOMIC_AGGREGATE => Err((
                AttrAction::Discard,
                S::AttributeLengthError,
                "ATOMIC_AGGREGATE length",
            )),
            attr::AGGREGATOR if value.len() == if ctx.four_octet_as { 8 } else { 6 } => {
                Ok(other(code, value))
            }
            attr::AGGREGATOR => Err((AttrAction::Discard, S::AttributeLengthError, "AGGREGATOR length")),
            attr::AS4_AGGREGATOR if value.len() == 8 => Ok(other(code, value)),
            attr::AS4_AGGREGATOR => Err((
                AttrAction::Discard,
                S::AttributeLengthError,
                "AS4_AGGREGATOR length",
            )),
            attr::AS4_PATH => parse_as_path(value, 4, false)
                .map(AttrValue::As4Path)
                .map_err(|r| (AttrAction::Discard, S::MalformedAsPath, r)),
            attr::COMMUNITIES if !value.is_empty() && value.len() % 4 == 0 => Ok(AttrValue::Communities(
                value
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )),
            attr::COMMUNITIES => Err((
                AttrAction::TreatAsWithdraw,
                S::OptionalAttributeError,
                "COMMUNITIES length",
            )),
            attr::LARGE_COMMUNITY if !value.is_empty() && value.len() % 12 == 0 => {
                Ok(AttrValue::LargeCommunities(
                    value
                        .chunks_exact(12)
                        .map(|c| LargeCommunity {
                            global_admin: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                            local_data1: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                            local_data2: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                        })
                        .collect(),
                ))
            }
            attr::LARGE_COMMUNITY => Err((
                AttrAction::TreatAsWithdraw,
                S::OptionalAttributeError,
                "LARGE_COMMUNITY length",
            )),
            attr::ORIGINATOR_ID | attr::CLUSTER_LIST if !ctx.ibgp => Err((
                AttrAction::Discard,
                S::OptionalAttributeError,
                "route reflection attribute from an external peer",
            )),
            attr::ORIGINATOR_ID if value.len() == 4 => Ok(other(code, value)),
            attr::CLUSTER_LIST if !value.is_empty() && value.len() % 4 == 0 => Ok(other(code, value)),
            attr::ORIGINATOR_ID | attr::CLUSTER_LIST => Err((
                AttrAction::TreatAsWithdraw,
                S::AttributeLengthError,
                "route reflection attribute length",
            )),
            attr::MP_REACH_NLRI => Ok(AttrValue::MpReach(
                parse_mp_reach(value).map_err(|(s, r)| reset(s, r))?,
            )),
            attr::MP_UNREACH_NLRI => Ok(AttrValue::MpUnreach(
                parse_mp_unreach(value).map_err(|(s, r)| reset(s, r))?,
            )),
            _ => Ok(other(code, value)),
        };
        match parsed {
            Ok(value) => update.attributes.push(PathAttribute { flags, value }),
            Err((AttrAction::TreatAsWithdraw, subcode, reason)) => withdraw(update, code, subcode, reason),
            Err((AttrAction::Discard, subcode, reason)) => discard(update, code, subcode, reason),
        }
    }
    Ok(())
}

fn other(code: u8, value: &[u8]) -> AttrValue {
    AttrValue::Other {
        code,
        value: value.to_vec(),
    }
}

fn u32_value(v: &[u8]) -> Option<u32> {
    v.try_into().ok().map(u32::from_be_bytes)
}

/// AS_PATH / AS4_PATH segments of `width`-octet ASNs. RFC 7606 §7.2: a zero-length
/// segment, an unknown type, an overrun, or (from an external peer) a confederation
/// segment makes the path malformed.
fn parse_as_path(mut v: &[u8], width: usize, ibgp: bool) -> Result<Vec<AsSegment>, &'static str> {
    let mut segs = Vec::new();
    while let [kind, count, rest @ ..] = v {
        match *kind {
            as_path_segment::AS_SET | as_path_segment::AS_SEQUENCE => {}
            as_path_segment::AS_CONFED_SEQUENCE | as_path_segment::AS_CONFED_SET if ibgp => {}
            as_path_segment::AS_CONFED_SEQUENCE | as_path_segment::AS_CONFED_SET => {
                return Err("confederation segment from an external peer");
            }
            _ => return Err("unknown AS_PATH segment type"),
        }
        let n = usize::from(*count);
        if n == 0 {
            return Err("empty AS_PATH segment");
        }
        let body = rest.get(..n * width).ok_or("AS_PATH segment overruns")?;
        let asns = body
            .chunks_exact(width)
            .map(|c| match *c {
                [a, b] => u32::from(u16::from_be_bytes([a, b])),
                [a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
                _ => unreachable!("width is 2 or 4"),
            })
            .collect();
        segs.push(AsSegment { kind: *kind, asns });
        v = &rest[n * width..];
    }
    if !v.is_empty() {
        return Err("AS_PATH segment header truncated");
    }
    Ok(segs)
}

type MpErr = (UpdateSubcode, &'static str);

fn unicast_family(a: u16, s: u8) -> Option<Family> {
    match (a, s) {
        (afi::IPV4, safi::UNICAST) => Some(Family::Ipv4),
        (afi::IPV6, safi::UNICAST) => Some(Family::Ipv6),
        _ => None,
    }
}

fn parse_mp_reach(v: &[u8]) -> Result<MpReach, MpErr> {
    let short = (S::OptionalAttributeError, "MP_REACH_NLRI too short");
    let [a0, a1, s, nh_len, rest @ ..] = v else {
        return Err(short);
    };
    let (a, s) = (u16::from_be_bytes([*a0, *a1]), *s);
    let Some(family) = unicast_family(a, s) else {
        return Ok(MpReach::Other {
            afi: a,
            safi: s,
            value: v[3..].to_vec(),
        });
    };
    let nh_len = usize::from(*nh_len);
    let nh = rest.get(..nh_len).ok_or(short)?;
    // One reserved octet (RFC 4760 §3, formerly SNPA count) follows the next hop.
    let nlri = rest.get(nh_len + 1..).ok_or(short)?;
    let bad_nh = (S::OptionalAttributeError, "MP_REACH_NLRI next hop length");
    let v6 = |b: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or_default());
    let (next_hop, link_local) = match (family, nh.len()) {
        (Family::Ipv4, 4) => (IpAddr::V4(Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3])), None),
        // RFC 8950 IPv6 next hop for IPv4 routes.
        (_, 16) => (IpAddr::V6(v6(nh)), None),
        (_, 32) => (IpAddr::V6(v6(&nh[..16])), Some(v6(&nh[16..]))),
        _ => return Err(bad_nh),
    };
    Ok(MpReach::Unicast {
        family,
        next_hop,
        link_local,
        nlri: parse_nlri(nlri, family)
            .map_err(|_| (S::InvalidNetworkField, "MP_REACH_NLRI prefix malformed"))?,
    })
}

fn parse_mp_unreach(v: &[u8]) -> Result<MpUnreach, MpErr> {
    let [a0, a1, s, rest @ ..] = v else {
        return Err((S::OptionalAttributeError, "MP_UNREACH_NLRI too short"));
    };
    let (a, s) = (u16::from_be_bytes([*a0, *a1]), *s);
    match unicast_family(a, s) {
        Some(family) => Ok(MpUnreach::Unicast {
            family,
            withdrawn: parse_nlri(rest, family)
                .map_err(|_| (S::InvalidNetworkField, "MP_UNREACH_NLRI prefix malformed"))?,
        }),
        None => Ok(MpUnreach::Other {
            afi: a,
            safi: s,
            value: rest.to_vec(),
        }),
    }
}

/// A sequence of `(length, prefix)` NLRI. Host bits past the length are ignored (RFC 4271
/// §4.3 calls them irrelevant), so `10.0.0.1/24` reads as `10.0.0.0/24`.
pub(super) fn parse_nlri(mut v: &[u8], family: Family) -> Result<Vec<Prefix>, UpdateError> {
    let bad = || UpdateError::new(S::InvalidNetworkField, "malformed prefix");
    let max = match family {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
    };
    let mut out = Vec::with_capacity(v.len() / 5);
    while let [len, rest @ ..] = v {
        let bits = *len;
        if bits > max {
            return Err(bad());
        }
        let n = usize::from(bits).div_ceil(8);
        let addr = rest.get(..n).ok_or_else(bad)?;
        let prefix = match family {
            Family::Ipv4 => {
                let mut a = [0u8; 4];
                a[..n].copy_from_slice(addr);
                Prefix::from(Ipv4Net::new(Ipv4Addr::from(a), bits).map_err(|_| bad())?)
            }
            Family::Ipv6 => {
                let mut a = [0u8; 16];
                a[..n].copy_from_slice(addr);
                Prefix::from(Ipv6Net::new(Ipv6Addr::from(a), bits).map_err(|_| bad())?)
            }
        };
        out.push(prefix);
        v = &rest[n..];
    }
    Ok(out)
}
