//! Decoding what real routers sent (BIRD 2.0.12, GoBGP 3.10, FRR 8.4), recorded by
//! `tests/captures/capture.sh`. One message per line, hex.

use bgpintent_api::Family;
use bgpintent_speaker::wire::{
    AfiSafi, AttrValue, Capability, DecodeCtx, EncodeCtx, LargeCommunity, Message, MpReach, Update,
    iana::attr,
};

const CTX: DecodeCtx = DecodeCtx {
    four_octet_as: true,
    ibgp: false,
};

fn load(name: &str) -> Vec<(Vec<u8>, Message)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/captures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let bytes: Vec<u8> = (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect();
            let m = Message::decode(&bytes, &CTX).unwrap_or_else(|e| panic!("{name}: {e}: {l}"));
            // Our encoding of what we read reads back the same.
            let again = m.to_bytes(&EncodeCtx::default()).unwrap();
            assert_eq!(Message::decode(&again, &CTX).unwrap(), m, "{name}: re-encoding");
            (bytes, m)
        })
        .collect()
}

fn updates(msgs: &[(Vec<u8>, Message)]) -> Vec<&Update> {
    msgs.iter()
        .filter_map(|(_, m)| match m {
            Message::Update(u) => Some(u),
            _ => None,
        })
        .collect()
}

fn clean(u: &Update) {
    assert!(u.treat_as_withdraw.is_none(), "{u:?}");
    assert!(u.discarded.is_empty(), "{u:?}");
}

fn eors(ups: &[&Update]) -> Vec<AfiSafi> {
    ups.iter().filter_map(|u| u.end_of_rib()).collect()
}

#[test]
fn bird_mp_reach_with_link_local_next_hop_and_extended_length() {
    for file in ["bird-ipv6-session.hex", "bird-ipv4-session.hex"] {
        let msgs = load(file);
        let Message::Open(open) = &msgs[0].1 else {
            panic!("OPEN first")
        };
        assert_eq!(open.asn(), 64502);
        assert_eq!(
            open.families(),
            vec![AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]
        );
        assert!(open.graceful_restart().is_some());
        assert!(
            open.capabilities
                .iter()
                .any(|c| matches!(c, Capability::Unknown { .. })),
            "BIRD sends capabilities we keep raw"
        );

        let ups = updates(&msgs);
        ups.iter().for_each(|u| clean(u));
        let (raw, v6) = msgs
            .iter()
            .find_map(|(raw, m)| match m {
                Message::Update(u) if u.mp_reach().is_some() => Some((raw, u)),
                _ => None,
            })
            .expect("an MP_REACH UPDATE");
        let Some(MpReach::Unicast {
            family,
            next_hop,
            link_local,
            nlri,
        }) = v6.mp_reach()
        else {
            panic!()
        };
        assert_eq!(*family, Family::Ipv6);
        assert_eq!(next_hop.to_string(), "2001:db8:1::2");
        assert!(link_local.expect("link-local next hop").segments()[0] == 0xfe80);
        assert_eq!(nlri.len(), 40);
        // BIRD puts MP_REACH first, with Extended Length (0x90).
        assert_eq!(&raw[23..25], &[0x90, attr::MP_REACH_NLRI]);
        assert_eq!(
            v6.attribute(attr::LARGE_COMMUNITY),
            Some(&AttrValue::LargeCommunities(vec![LargeCommunity {
                global_admin: 64502,
                local_data1: 1,
                local_data2: 2
            }]))
        );
        assert_eq!(v6.attribute(attr::MULTI_EXIT_DISC), Some(&AttrValue::Med(50)));
        let v4: usize = ups.iter().map(|u| u.nlri.len()).sum();
        assert_eq!(v4, 2);
        assert_eq!(eors(&ups), vec![AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]);
    }
}

#[test]
fn gobgp_routes_with_communities() {
    let msgs = load("gobgp.hex");
    let Message::Open(open) = &msgs[0].1 else { panic!() };
    assert_eq!(open.asn(), 64503);
    let gr = open.graceful_restart().expect("GR capability");
    assert!(gr.notification, "GoBGP sets the N-bit when notification-enabled");
    let ups = updates(&msgs);
    ups.iter().for_each(|u| clean(u));
    let v4 = ups.iter().find(|u| !u.nlri.is_empty()).unwrap();
    assert_eq!(v4.nlri[0].to_string(), "203.0.113.64/26");
    assert_eq!(
        v4.attribute(attr::COMMUNITIES),
        Some(&AttrValue::Communities(vec![(64503 << 16) | 100]))
    );
    let v6 = ups.iter().find_map(|u| u.mp_reach()).unwrap();
    let MpReach::Unicast {
        next_hop,
        link_local,
        nlri,
        ..
    } = v6
    else {
        panic!()
    };
    assert_eq!(
        (next_hop.to_string(), *link_local),
        ("2001:db8:1::3".to_string(), None)
    );
    assert_eq!(nlri[0].to_string(), "2001:db8:aaaa::/48");
    assert_eq!(eors(&ups).len(), 2);
}

#[test]
fn frr_extended_length_on_a_short_as_path() {
    let msgs = load("frr.hex");
    let Message::Open(open) = &msgs[0].1 else { panic!() };
    assert_eq!(open.asn(), 64504);
    let ups = updates(&msgs);
    ups.iter().for_each(|u| clean(u));
    // FRR sets Extended Length on AS_PATH even for 6 octets (flags 0x50): legal, and
    // must be read with a 2-octet length.
    let (raw, v4) = msgs
        .iter()
        .find_map(|(raw, m)| match m {
            Message::Update(u) if !u.nlri.is_empty() => Some((raw, u)),
            _ => None,
        })
        .unwrap();
    assert_eq!(&raw[27..29], &[0x50, attr::AS_PATH]);
    assert_eq!(v4.nlri[0].to_string(), "203.0.113.128/25");
    let v6 = ups.iter().find_map(|u| u.mp_reach()).expect("IPv6 route");
    let MpReach::Unicast { next_hop, nlri, .. } = v6 else {
        panic!()
    };
    assert_eq!(next_hop.to_string(), "2001:db8:1::4");
    assert_eq!(nlri[0].to_string(), "2001:db8:300::/48");
    assert_eq!(eors(&ups).len(), 2);
}
