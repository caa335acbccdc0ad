//! Golden bytes, both ways, for every message type and capability we send.
//!
//! Each case is a hand-checked byte string (field by field in the comments) and the
//! value it stands for: encoding the value must give the bytes, decoding the bytes must
//! give the value back (holo `tests/packet`, GoBGP `Test_Message`).

use std::net::{Ipv4Addr, Ipv6Addr};

use bgpintent_api::{Family, Prefix};
use bgpintent_speaker::wire::{
    AfiSafi, AttrValue, Capability, DecodeCtx, EncodeCtx, GracefulRestartCap, LargeCommunity, Message,
    MpReach, MpUnreach, NextHop, Notification, Open, PathAttribute, RouteAttrs, RouteRefresh, Update,
    build_updates,
};

/// Hex octets, grouped freely with single spaces; two or more spaces start a comment.
fn hex(s: &str) -> Vec<u8> {
    let s: String = s
        .lines()
        .map(|l| l.trim_start().split("  ").next().unwrap_or(""))
        .flat_map(|l| l.split_whitespace())
        .collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

const MARKER: &str = "ffffffff ffffffff ffffffff ffffffff";

const IBGP: DecodeCtx = DecodeCtx {
    four_octet_as: true,
    ibgp: true,
};
const EBGP: DecodeCtx = DecodeCtx {
    four_octet_as: true,
    ibgp: false,
};

/// Encode == bytes, decode(bytes) == value.
fn golden(msg: &Message, bytes: &[u8], ctx: &DecodeCtx) {
    let enc = msg
        .to_bytes(&EncodeCtx {
            four_octet_as: ctx.four_octet_as,
        })
        .unwrap();
    assert_eq!(hexs(&enc), hexs(bytes), "encoding of {msg:?}");
    let dec = Message::decode(bytes, ctx).unwrap();
    assert_eq!(&dec, msg, "decoding");
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

fn open_4200000001() -> Open {
    Open {
        version: 4,
        my_as: 23456,
        hold_time: 90,
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(4_200_000_001),
            Capability::GracefulRestart(GracefulRestartCap {
                restarting: false,
                notification: true,
                time: 120,
                families: vec![(AfiSafi::IPV4_UNICAST, true), (AfiSafi::IPV6_UNICAST, true)],
            }),
        ],
    }
}

#[test]
fn keepalive() {
    golden(&Message::Keepalive, &hex(&format!("{MARKER} 0013 04")), &EBGP);
}

#[test]
fn open_with_every_capability() {
    let bytes = hex(&format!(
        "{MARKER} 003f 01
         04 5ba0 005a c0000201     version 4, my AS = AS_TRANS, hold 90, id 192.0.2.1
         22 02 20                  opt len 34; one capabilities parameter of 32
         01 04 0001 00 01          MP IPv4 unicast
         01 04 0002 00 01          MP IPv6 unicast
         02 00                     route refresh
         41 04 fa56ea01            4-octet AS 4200000001
         40 0a 4078 0001 01 80 0002 01 80   GR: N-bit, 120 s; IPv4 F, IPv6 F"
    ));
    let bytes: Vec<u8> = bytes;
    golden(&Message::Open(open_4200000001()), &bytes, &EBGP);
    let Message::Open(o) = Message::decode(&bytes, &EBGP).unwrap() else {
        panic!()
    };
    assert_eq!(o.asn(), 4_200_000_001);
    assert_eq!(o.families(), vec![AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]);
}

#[test]
fn open_restart_bit_and_unknown_capabilities_round_trip() {
    let mut o = open_4200000001();
    o.capabilities = vec![
        Capability::GracefulRestart(GracefulRestartCap {
            restarting: true,
            notification: false,
            time: 300,
            families: vec![(AfiSafi::IPV4_UNICAST, false)],
        }),
        Capability::Unknown {
            code: 70,
            value: vec![],
        },
        Capability::Unknown {
            code: 73,
            value: b"\x04node\x00".to_vec(),
        },
    ];
    let bytes = hex(&format!(
        "{MARKER} 0031 01 04 5ba0 005a c0000201 14 02 12
         40 06 812c 0001 01 00     GR: R-bit, 300 s (0x12c), IPv4 without F
         46 00                     enhanced route refresh (kept raw)
         49 06 046e6f646500        FQDN (kept raw)"
    ));
    golden(&Message::Open(o), &bytes, &EBGP);
}

#[test]
fn open_without_multiprotocol_means_ipv4_only() {
    let bytes = hex(&format!("{MARKER} 001d 01 04 fde8 00b4 c6336401 00"));
    let Message::Open(o) = Message::decode(&bytes, &EBGP).unwrap() else {
        panic!()
    };
    assert_eq!((o.asn(), o.hold_time), (65000, 180));
    assert_eq!(o.families(), vec![AfiSafi::IPV4_UNICAST]);
}

#[test]
fn open_capabilities_are_bounded_by_the_parameter_length() {
    let mut o = open_4200000001();
    o.capabilities = (0..2)
        .map(|i| Capability::Unknown {
            code: 200 + i,
            value: vec![i; 100],
        })
        .collect();
    let bytes = Message::Open(o.clone()).to_bytes(&EncodeCtx::default()).unwrap();
    assert_eq!(&bytes[28..31], &[206, 2, 204]);
    assert_eq!(Message::decode(&bytes, &EBGP).unwrap(), Message::Open(o.clone()));
    // A third would need RFC 9072 extended parameters: refused, not silently truncated.
    o.capabilities.push(Capability::RouteRefresh);
    o.capabilities.push(Capability::Unknown {
        code: 210,
        value: vec![0; 47],
    });
    assert!(Message::Open(o).to_bytes(&EncodeCtx::default()).is_err());
}

#[test]
fn update_ipv4_ebgp_with_every_attribute() {
    let u = Update {
        attributes: vec![
            PathAttribute::new(AttrValue::Origin(0)),
            PathAttribute::new(AttrValue::AsPath(vec![
                bgpintent_speaker::wire::AsSegment::sequence(vec![64500]),
            ])),
            PathAttribute::new(AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1))),
            PathAttribute::new(AttrValue::Med(50)),
            PathAttribute::new(AttrValue::Communities(vec![(64500 << 16) | 100])),
            PathAttribute::new(AttrValue::LargeCommunities(vec![LargeCommunity {
                global_admin: 64500,
                local_data1: 1,
                local_data2: 2,
            }])),
        ],
        nlri: vec![p("198.51.100.0/24")],
        ..Update::default()
    };
    let bytes = hex(&format!(
        "{MARKER} 004c 02
         0000                      no withdrawn routes
         0031                      49 octets of attributes
         40 01 01 00               ORIGIN IGP
         40 02 06 02 01 0000fbf4   AS_PATH: AS_SEQUENCE of 1, 64500
         40 03 04 c0000201         NEXT_HOP 192.0.2.1
         80 04 04 00000032         MED 50
         c0 08 04 fbf40064         COMMUNITIES 64500:100
         c0 20 0c 0000fbf4 00000001 00000002   LARGE_COMMUNITY 64500:1:2
         18 c63364                 198.51.100.0/24"
    ));
    golden(&Message::Update(u.clone()), &bytes, &EBGP);
    // The builder makes the same message from its inputs.
    let attrs = RouteAttrs {
        as_path: vec![64500],
        med: Some(50),
        communities: vec![(64500 << 16) | 100],
        large_communities: vec![LargeCommunity {
            global_admin: 64500,
            local_data1: 1,
            local_data2: 2,
        }],
        ..RouteAttrs::default()
    };
    let nh = NextHop::new("192.0.2.1".parse().unwrap());
    let built = build_updates(
        Family::Ipv4,
        &attrs,
        Some(nh),
        &[p("198.51.100.0/24")],
        &[],
        &EncodeCtx::default(),
    )
    .unwrap();
    assert_eq!(built.len(), 1);
    assert_eq!(hexs(&built[0]), hexs(&bytes));
}

#[test]
fn update_ipv6_ibgp_with_link_local_next_hop() {
    let u = Update {
        attributes: vec![
            PathAttribute::new(AttrValue::Origin(0)),
            PathAttribute::new(AttrValue::AsPath(vec![])),
            PathAttribute::new(AttrValue::LocalPref(100)),
            PathAttribute::new(AttrValue::MpReach(MpReach::Unicast {
                family: Family::Ipv6,
                next_hop: "2001:db8:1::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
                nlri: vec![p("2001:db8:100::/48")],
            })),
        ],
        ..Update::default()
    };
    let bytes = hex(&format!(
        "{MARKER} 0054 02 0000 003d
         40 01 01 00               ORIGIN IGP
         40 02 00                  AS_PATH empty (iBGP)
         40 05 04 00000064         LOCAL_PREF 100
         80 0e 2c                  MP_REACH_NLRI, 44 octets
           0002 01 20              AFI 2 SAFI 1, next hop length 32
           20010db8000100000000000000000001   global 2001:db8:1::1
           fe800000000000000000000000000001   link-local fe80::1
           00                      reserved
           30 20010db80100         2001:db8:100::/48"
    ));
    golden(&Message::Update(u), &bytes, &IBGP);
    let nh = NextHop {
        addr: "2001:db8:1::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    let attrs = RouteAttrs {
        local_pref: Some(100),
        ..RouteAttrs::default()
    };
    let built = build_updates(
        Family::Ipv6,
        &attrs,
        Some(nh),
        &[p("2001:db8:100::/48")],
        &[],
        &EncodeCtx::default(),
    )
    .unwrap();
    assert_eq!(hexs(&built[0]), hexs(&bytes));
}

#[test]
fn update_two_octet_peer_gets_as_trans_and_as4_path() {
    let attrs = RouteAttrs {
        as_path: vec![4_200_000_001],
        ..RouteAttrs::default()
    };
    let nh = NextHop::new("192.0.2.1".parse().unwrap());
    let ctx = EncodeCtx { four_octet_as: false };
    let built = build_updates(Family::Ipv4, &attrs, Some(nh), &[p("203.0.113.0/24")], &[], &ctx).unwrap();
    let bytes = hex(&format!(
        "{MARKER} 0036 02 0000 001b
         40 01 01 00
         40 02 04 02 01 5ba0       AS_PATH 2-octet: AS_TRANS
         40 03 04 c0000201
         c0 11 06 02 01 fa56ea01   AS4_PATH 4200000001
         18 cb0071"
    ));
    assert_eq!(hexs(&built[0]), hexs(&bytes));
    let two = DecodeCtx {
        four_octet_as: false,
        ibgp: false,
    };
    let Message::Update(u) = Message::decode(&bytes, &two).unwrap() else {
        panic!()
    };
    assert_eq!(u.announced(), 1);
    assert!(u.treat_as_withdraw.is_none());
}

#[test]
fn end_of_rib_both_families() {
    let v4 = hex(&format!("{MARKER} 0017 02 0000 0000"));
    golden(&Message::Update(Update::end_of_rib_for(Family::Ipv4)), &v4, &EBGP);
    let v6 = hex(&format!("{MARKER} 001d 02 0000 0006 80 0f 03 0002 01"));
    golden(&Message::Update(Update::end_of_rib_for(Family::Ipv6)), &v6, &EBGP);
    for (bytes, af) in [(v4, AfiSafi::IPV4_UNICAST), (v6, AfiSafi::IPV6_UNICAST)] {
        let Message::Update(u) = Message::decode(&bytes, &EBGP).unwrap() else {
            panic!()
        };
        assert_eq!(u.end_of_rib(), Some(af));
    }
}

#[test]
fn withdrawals_ipv4_and_ipv6() {
    let v4 = Update {
        withdrawn: vec![p("192.0.2.10/32")],
        ..Update::default()
    };
    golden(
        &Message::Update(v4),
        &hex(&format!("{MARKER} 001c 02 0005 20c000020a 0000")),
        &EBGP,
    );
    let v6 = Update {
        attributes: vec![PathAttribute::new(AttrValue::MpUnreach(MpUnreach::Unicast {
            family: Family::Ipv6,
            withdrawn: vec![p("2001:db8::10/128")],
        }))],
        ..Update::default()
    };
    golden(
        &Message::Update(v6),
        &hex(&format!(
            "{MARKER} 002e 02 0000 0017 80 0f 14 0002 01 80 20010db8000000000000000000000010"
        )),
        &EBGP,
    );
}

#[test]
fn extended_length_is_set_when_a_value_exceeds_255() {
    let prefixes: Vec<Prefix> = (0..60u16).map(|i| p(&format!("2001:db8:{i:x}::/64"))).collect();
    let nh = NextHop::new("2001:db8::1".parse().unwrap());
    let built = build_updates(
        Family::Ipv6,
        &RouteAttrs::default(),
        Some(nh),
        &prefixes,
        &[],
        &EncodeCtx::default(),
    )
    .unwrap();
    assert_eq!(built.len(), 1);
    let b = &built[0];
    // ORIGIN (4) + empty AS_PATH (3), then MP_REACH with flags 0x90 and a 2-octet length:
    // 5 + 16 + 60 x 9 = 561 = 0x0231.
    assert_eq!(hexs(&b[23 + 7..23 + 11]), "90 0e 02 31");
    let Message::Update(u) = Message::decode(b, &EBGP).unwrap() else {
        panic!()
    };
    assert_eq!(u.announced(), 60);
    // Just below the threshold the short form is used: 5 + 16 + 26 x 9 = 255.
    let built = build_updates(
        Family::Ipv6,
        &RouteAttrs::default(),
        Some(nh),
        &prefixes[..26],
        &[],
        &EncodeCtx::default(),
    )
    .unwrap();
    assert_eq!(hexs(&built[0][23 + 7..23 + 10]), "80 0e ff");
}

#[test]
fn notification_admin_shutdown_with_message() {
    let bytes = hex(&format!("{MARKER} 0019 03 06 02 03 627965"));
    golden(
        &Message::Notification(Notification::admin_shutdown("bye")),
        &bytes,
        &EBGP,
    );
}

#[test]
fn notification_with_unknown_codes_round_trips() {
    let n = Notification::new(6, 42, vec![1, 2]);
    golden(
        &Message::Notification(n),
        &hex(&format!("{MARKER} 0017 03 06 2a 0102")),
        &EBGP,
    );
    let n = Notification::new(9, 1, vec![]);
    golden(
        &Message::Notification(n),
        &hex(&format!("{MARKER} 0015 03 09 01")),
        &EBGP,
    );
}

#[test]
fn route_refresh() {
    let rr = RouteRefresh {
        afi_safi: AfiSafi::IPV6_UNICAST,
        subtype: 0,
    };
    golden(
        &Message::RouteRefresh(rr),
        &hex(&format!("{MARKER} 0017 05 0002 00 01")),
        &EBGP,
    );
}

#[test]
fn decode_from_a_stream_waits_for_whole_messages() {
    let mut stream = bytes::BytesMut::new();
    let ka = Message::Keepalive.to_bytes(&EncodeCtx::default()).unwrap();
    stream.extend_from_slice(&ka);
    stream.extend_from_slice(&ka[..10]);
    assert_eq!(
        Message::decode_from(&mut stream, &EBGP).unwrap(),
        Some(Message::Keepalive)
    );
    assert_eq!(Message::decode_from(&mut stream, &EBGP).unwrap(), None);
    stream.extend_from_slice(&ka[10..]);
    assert_eq!(
        Message::decode_from(&mut stream, &EBGP).unwrap(),
        Some(Message::Keepalive)
    );
    assert!(stream.is_empty());
}

#[test]
fn ipv6_prefix_host_bits_are_ignored_on_decode() {
    // 2001:db8::1/32 on the wire (host bits set in the trailing octets are not sent at all
    // for /32, so use /33 with a stray bit in the 5th octet).
    let bytes = hex(&format!(
        "{MARKER} 003c 02 0000 0025 40 01 01 00 40 02 00 80 0e 1b 0002 01 10 20010db8000000000000000000000001 00 21 20010db8ff"
    ));
    let Message::Update(u) = Message::decode(&bytes, &EBGP).unwrap() else {
        panic!()
    };
    let Some(MpReach::Unicast { nlri, .. }) = u.mp_reach() else {
        panic!()
    };
    assert_eq!(nlri, &vec![p("2001:db8:8000::/33")]);
    let _ = Ipv6Addr::LOCALHOST;
}
