use std::collections::{BTreeMap, BTreeSet};

use bgpintent_api::{
    Asn, Family, NextHops, NodeIntent, PasswordRef, PeerIntent, PeerKey, PolicyRef, Prefix, RouterId,
    ServiceIpType, Source, TtlMode,
};
use proptest::prelude::*;

use super::*;
use crate::policy::{Advertisements, BGPPeer, BGPPolicySpec, ServiceAdvertisement};

fn peer(address: &str, asn: i64) -> BGPPeer {
    BGPPeer::new(address, asn)
}

fn spec(peers: Vec<BGPPeer>) -> BGPPolicySpec {
    BGPPolicySpec {
        node_selector: Default::default(),
        local_asn: 64512,
        listen_port: None,
        confederation: None,
        advertisements: Advertisements {
            service: Some(ServiceAdvertisement {
                ip_types: vec![crate::policy::ServiceIpType::LoadBalancerIP],
            }),
            pod: Some(Default::default()),
            egress: None,
        },
        bgp_peers: peers,
    }
}

fn errors_of(spec: &BGPPolicySpec) -> Vec<String> {
    spec.settings()
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn antrea_defaults_are_applied() {
    let s = spec(vec![peer("192.0.2.2", 65001)]).settings().unwrap();
    assert_eq!(s.local_asn.get(), 64512);
    assert_eq!(s.listen_port, 179);
    assert!(s.advertisements.pod && !s.advertisements.egress);
    assert_eq!(
        s.advertisements.service_ip_types.iter().collect::<Vec<_>>(),
        [&ServiceIpType::LoadBalancerIP]
    );
    let (key, p) = s.peers.iter().next().unwrap();
    assert_eq!(key.address.to_string(), "192.0.2.2");
    assert_eq!(
        (p.port, p.ttl, p.hold_time_secs, p.keepalive_time_secs),
        (179, TtlMode::Multihop { ttl: 1 }, 90, 30)
    );
    assert_eq!(p.graceful_restart.restart_time_secs, 120);
}

#[test]
fn extensions_are_parsed() {
    let mut p = peer("2001:db8::2", 4_200_000_001);
    p.hold_time_seconds = Some(0);
    p.passive = Some(true);
    p.ttl_security = Some(true);
    p.multihop_ttl = Some(2);
    p.connect_retry_seconds = Some(5);
    let s = spec(vec![p]).settings().unwrap();
    let (key, p) = s.peers.iter().next().unwrap();
    assert_eq!(key.asn.get(), 4_200_000_001);
    assert_eq!((p.hold_time_secs, p.keepalive_time_secs), (0, 0));
    assert!(p.passive);
    assert_eq!(p.ttl, TtlMode::Gtsm { hops: 2 });
    assert_eq!(p.connect_retry_secs, 5);
}

#[test]
fn every_invalid_field_is_named() {
    let mut bad = vec![
        peer("192.0.2.1", 0),
        peer("192.0.2.2", 23456),
        peer("not-an-ip", 65001),
        peer("192.0.2.4", 65001),
        peer("192.0.2.5", 65001),
        peer("192.0.2.6", 65001),
        peer("192.0.2.7", 65001),
        peer("192.0.2.8", 65001),
    ];
    bad[3].port = Some(0);
    bad[4].multihop_ttl = Some(256);
    bad[5].graceful_restart_time_seconds = Some(3601);
    bad[6].hold_time_seconds = Some(2);
    bad[7].hold_time_seconds = Some(9);
    bad[7].keepalive_time_seconds = Some(9);
    let mut s = spec(bad);
    s.local_asn = 0;
    let errors = errors_of(&s);
    let expect = [
        "spec.localASN: must be an AS number in 1-4294967294 other than 23456 (AS_TRANS) (got 0)",
        "spec.bgpPeers[0].asn: must be an AS number in 1-4294967294 other than 23456 (AS_TRANS) (got 0)",
        "spec.bgpPeers[1].asn: must be an AS number in 1-4294967294 other than 23456 (AS_TRANS) (got 23456)",
        "spec.bgpPeers[2].address: must be an IPv4 or IPv6 address (got \"not-an-ip\")",
        "spec.bgpPeers[3].port: must be between 1 and 65535 (got 0)",
        "spec.bgpPeers[4].multihopTTL: must be between 1 and 255 (got 256)",
        "spec.bgpPeers[5].gracefulRestartTimeSeconds: must be between 1 and 3600 (got 3601)",
        "spec.bgpPeers[6].holdTimeSeconds: must be 0 (no keepalives) or between 3 and 65535 (got 2)",
        "spec.bgpPeers[7].keepaliveTimeSeconds: must be less than holdTimeSeconds (9) (got 9)",
    ];
    assert_eq!(errors, expect);
}

#[test]
fn duplicate_addresses_are_compared_canonically() {
    let errors = errors_of(&spec(vec![
        peer("2001:db8::1", 65001),
        peer("2001:0db8::0001", 65002),
    ]));
    assert_eq!(
        errors,
        ["spec.bgpPeers[1].address: must be unique: spec.bgpPeers[0] has the same address (got 2001:db8::1)"]
    );
}

#[test]
fn enabled_bfd_is_reported_not_fatal() {
    let mut p = peer("192.0.2.2", 65001);
    p.bfd = Some(crate::policy::Bfd {
        enabled: true,
        min_transmit_interval: None,
        min_receive_interval: None,
        multiplier: None,
    });
    let s = spec(vec![p]).settings().unwrap();
    assert_eq!(s.ignored.len(), 1);
    assert_eq!(s.ignored[0].field, "spec.bgpPeers[0].bfd.enabled");
}

#[test]
fn selector_errors_name_the_expression() {
    let sel: LabelSelector = serde_json::from_value(serde_json::json!({
        "matchExpressions": [{"key": "zone", "operator": "In", "values": []}]
    }))
    .unwrap();
    let e = selector("spec.nodeSelector", &sel).unwrap_err();
    assert_eq!(e.0[0].field, "spec.nodeSelector.matchExpressions[0].values");
}

fn sample_intent() -> NodeIntent {
    let mut peers = BTreeMap::new();
    peers.insert(
        PeerKey {
            address: "192.0.2.2".parse().unwrap(),
            asn: Asn::try_from(65001).unwrap(),
        },
        PeerIntent::new(),
    );
    peers.insert(
        PeerKey {
            address: "2001:db8::2".parse().unwrap(),
            asn: Asn::try_from(4_200_000_001).unwrap(),
        },
        PeerIntent {
            ttl: TtlMode::Gtsm { hops: 1 },
            local_address: Some("2001:db8::10".parse().unwrap()),
            families: vec![Family::Ipv6],
            password: Some(PasswordRef {
                secret_name: "bgp-passwords".into(),
                key: "2001:db8::2-4200000001".into(),
                revision: "r1".into(),
            }),
            ..PeerIntent::new()
        },
    );
    let mut prefixes: BTreeMap<Prefix, BTreeSet<Source>> = BTreeMap::new();
    let svc = Source::Service {
        namespace: "ns".into(),
        name: "web".into(),
        ip_type: ServiceIpType::ExternalIP,
    };
    prefixes
        .entry("203.0.113.10".parse().unwrap())
        .or_default()
        .insert(svc.clone());
    prefixes
        .entry("2001:db8:5::10".parse().unwrap())
        .or_default()
        .insert(svc);
    prefixes
        .entry("10.244.1.0/24".parse().unwrap())
        .or_default()
        .insert(Source::PodCidr);
    prefixes
        .entry("203.0.113.10".parse().unwrap())
        .or_default()
        .insert(Source::Egress { name: "e1".into() });
    NodeIntent {
        node: "node-a".into(),
        policy: PolicyRef {
            name: "p".into(),
            uid: "u".into(),
            generation: 3,
        },
        router_id: RouterId::try_from(std::net::Ipv4Addr::new(192, 0, 2, 10)).unwrap(),
        local_asn: Asn::try_from(64512).unwrap(),
        listen_port: 179,
        confederation: None,
        next_hops: NextHops {
            ipv4: Some("192.0.2.10".parse().unwrap()),
            ipv6: Some("2001:db8::10".parse().unwrap()),
        },
        peers,
        prefixes,
        sets: ["p-0".to_string()].into(),
        attributes: BTreeMap::new(),
        as_path_prepend: None,
    }
}

#[test]
fn node_intent_round_trips() {
    let intent = sample_intent();
    let spec = BGPNodeIntentSpec::from(&intent);
    assert_eq!(spec.peers[0].address, "192.0.2.2");
    // Grouped by source, sorted: Service, PodCIDR, Egress (enum order), prefixes sorted within.
    assert_eq!(spec.prefixes.len(), 3);
    assert_eq!(parse_node_intent("node-a", &spec).unwrap(), intent);
    // Through JSON as the apiserver would store it.
    let json = serde_json::to_value(&spec).unwrap();
    let back: BGPNodeIntentSpec = serde_json::from_value(json).unwrap();
    assert_eq!(parse_node_intent("node-a", &back).unwrap(), intent);
}

#[test]
fn bad_node_intent_names_fields() {
    let mut spec = BGPNodeIntentSpec::from(&sample_intent());
    spec.router_id = "0.0.0.0".into();
    spec.prefixes[0].prefixes[0] = "203.0.113.1/24".into();
    let e = parse_node_intent("n", &spec).unwrap_err();
    let fields: Vec<&str> = e.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.routerID", "spec.prefixes[0].prefixes[0]"]);
}

fn arb_source() -> impl Strategy<Value = Source> {
    prop_oneof![
        Just(Source::PodCidr),
        "[a-c]{1,3}".prop_map(|name| Source::Egress { name }),
        ("[a-c]{1,2}", "[a-c]{1,2}", 0..3u8).prop_map(|(namespace, name, t)| Source::Service {
            namespace,
            name,
            ip_type: [
                ServiceIpType::ClusterIP,
                ServiceIpType::ExternalIP,
                ServiceIpType::LoadBalancerIP
            ][t as usize],
        }),
    ]
}

proptest! {
    #[test]
    fn prefix_groups_round_trip(entries in proptest::collection::vec((any::<u32>(), 8..=32u8, arb_source()), 0..40)) {
        let mut map: BTreeMap<Prefix, BTreeSet<Source>> = BTreeMap::new();
        for (addr, len, source) in entries {
            let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(addr), len).unwrap();
            map.entry(Prefix::from(net)).or_default().insert(source);
        }
        let groups = prefix_groups(&map);
        prop_assert!(groups.windows(2).all(|w| w[0].source < w[1].source));
        prop_assert_eq!(parse_prefix_groups("g", &groups).unwrap(), map);
    }
}

#[test]
fn confederation_is_reported_as_not_acted_on() {
    let mut s = spec(vec![peer("192.0.2.2", 65001)]);
    s.confederation = Some(crate::common::Confederation {
        identifier: 65000,
        member_asns: vec![64513],
    });
    let settings = s.settings().unwrap();
    assert_eq!(settings.confederation.unwrap().identifier.get(), 65000);
    assert_eq!(settings.ignored[0].field, "spec.confederation");
}
