//! UPDATE packing: message counts and bytes for 10,000 prefixes, checked against the
//! arithmetic lower bound, and every message read back.

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, Ipv6Addr},
};

use bgpintent_api::{Family, Prefix};
use bgpintent_speaker::wire::{
    DecodeCtx, EncodeCtx, MAX_MESSAGE_LEN, Message, MpReach, MpUnreach, NextHop, RouteAttrs, build_updates,
};
use bytes::Bytes;

fn v4(n: u32) -> Vec<Prefix> {
    (0..n)
        .map(|i| Prefix::host(Ipv4Addr::from(0xc612_0000 + i).into()))
        .collect()
}

fn v6(n: u32) -> Vec<Prefix> {
    (0..n)
        .map(|i| Prefix::host(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)).into()))
        .collect()
}

fn ebgp() -> RouteAttrs {
    RouteAttrs {
        as_path: vec![64500],
        ..RouteAttrs::default()
    }
}

/// Reads every message back: (announced, withdrawn), each prefix once.
fn read_back(msgs: &[Bytes]) -> (BTreeSet<Prefix>, BTreeSet<Prefix>) {
    let ctx = DecodeCtx {
        four_octet_as: true,
        ibgp: false,
    };
    let (mut ann, mut wd) = (BTreeSet::new(), BTreeSet::new());
    for m in msgs {
        assert!(m.len() <= MAX_MESSAGE_LEN);
        let Message::Update(u) = Message::decode(m, &ctx).unwrap() else {
            panic!()
        };
        assert!(u.treat_as_withdraw.is_none() && u.discarded.is_empty());
        let mut a = u.nlri.clone();
        let mut w = u.withdrawn.clone();
        if let Some(MpReach::Unicast { nlri, .. }) = u.mp_reach() {
            a.extend(nlri);
        }
        if let Some(MpUnreach::Unicast { withdrawn, .. }) = u.mp_unreach() {
            w.extend(withdrawn);
        }
        for p in a {
            assert!(ann.insert(p), "{p} announced twice");
        }
        for p in w {
            assert!(wd.insert(p), "{p} withdrawn twice");
        }
    }
    (ann, wd)
}

#[test]
fn ten_thousand_ipv4_hosts() {
    let prefixes = v4(10_000);
    let nh = NextHop::new("192.0.2.1".parse().unwrap());
    let msgs = build_updates(
        Family::Ipv4,
        &ebgp(),
        Some(nh),
        &prefixes,
        &[],
        &EncodeCtx::default(),
    )
    .unwrap();
    // Fixed part per message: header + 2 length fields (23) + ORIGIN (4) + AS_PATH (9)
    // + NEXT_HOP (7) = 43, leaving 4053 octets = 810 prefixes of 5 octets.
    assert_eq!(msgs.len(), 10_000usize.div_ceil(810));
    assert_eq!(msgs.len(), 13);
    let total: usize = msgs.iter().map(Bytes::len).sum();
    assert_eq!(total, 13 * 43 + 10_000 * 5);
    assert!(
        msgs[..12].iter().all(|m| m.len() == 43 + 810 * 5),
        "all but the last are full"
    );
    let (ann, wd) = read_back(&msgs);
    assert_eq!(ann, prefixes.into_iter().collect());
    assert!(wd.is_empty());
}

#[test]
fn ten_thousand_ipv6_hosts() {
    let prefixes = v6(10_000);
    let nh = NextHop::new("2001:db8::1".parse().unwrap());
    let msgs = build_updates(
        Family::Ipv6,
        &ebgp(),
        Some(nh),
        &prefixes,
        &[],
        &EncodeCtx::default(),
    )
    .unwrap();
    // 23 + ORIGIN 4 + AS_PATH 9 + MP_REACH header 4 (extended length) + AFI/SAFI/NH len 4
    // + next hop 16 + reserved 1 = 61; 4035 octets left = 237 prefixes of 17 octets.
    assert_eq!(msgs.len(), 10_000usize.div_ceil(237));
    assert_eq!(msgs.len(), 43);
    let total: usize = msgs.iter().map(Bytes::len).sum();
    assert_eq!(total, 43 * 61 + 10_000 * 17);
    let (ann, _) = read_back(&msgs);
    assert_eq!(ann.len(), 10_000);
}

#[test]
fn withdrawals_then_announcements_share_the_boundary_message() {
    let old = v4(1_000);
    let new = v4(2_000)[1_000..].to_vec();
    let nh = NextHop::new("192.0.2.1".parse().unwrap());
    let msgs = build_updates(Family::Ipv4, &ebgp(), Some(nh), &new, &old, &EncodeCtx::default()).unwrap();
    // 10,000 octets of NLRI in total; one message carries at most 4073 withdrawn octets.
    // Lower bound: ceil((5000 + 5000 + 20 x 3) / 4073) = 3.
    assert_eq!(msgs.len(), 3);
    let (ann, wd) = read_back(&msgs);
    assert_eq!((ann.len(), wd.len()), (1_000, 1_000));

    let old6 = v6(300);
    let nh6 = NextHop::new("2001:db8::1".parse().unwrap());
    let msgs = build_updates(
        Family::Ipv6,
        &ebgp(),
        Some(nh6),
        &[],
        &old6,
        &EncodeCtx::default(),
    )
    .unwrap();
    // Withdrawals only: MP_UNREACH with no other attribute; 4096 - 23 - 4 - 3 = 4066
    // octets = 239 prefixes per message.
    assert_eq!(msgs.len(), 2);
    let (ann, wd) = read_back(&msgs);
    assert_eq!((ann.len(), wd.len()), (0, 300));
}

#[test]
fn builder_refuses_mixed_families_and_missing_next_hops() {
    let nh = NextHop::new("192.0.2.1".parse().unwrap());
    assert!(
        build_updates(
            Family::Ipv4,
            &ebgp(),
            Some(nh),
            &v6(1),
            &[],
            &EncodeCtx::default()
        )
        .is_err()
    );
    assert!(
        build_updates(
            Family::Ipv6,
            &ebgp(),
            Some(nh),
            &v6(1),
            &[],
            &EncodeCtx::default()
        )
        .is_err()
    );
    assert!(build_updates(Family::Ipv4, &ebgp(), None, &v4(1), &[], &EncodeCtx::default()).is_err());
    // Nothing to do is no message (End-of-RIB is separate).
    assert!(
        build_updates(Family::Ipv4, &ebgp(), None, &[], &[], &EncodeCtx::default())
            .unwrap()
            .is_empty()
    );
}
