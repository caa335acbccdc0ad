use std::collections::{BTreeMap, BTreeSet};

use bgpintent_api::{
    AsPathPrepend, Asn, Family, NextHops, NodeIntent, PasswordRef, PathAttributes, PeerIntent, PeerKey,
    PolicyRef, Prefix, RouterId, ServiceIpType, Source, TtlMode,
};
use proptest::prelude::*;

use super::*;
use crate::{
    common::{AsPathPrependSpec, PathAttributesSpec, PrefixGroup},
    policy::{Advertisements, BGPPeer, BGPPolicySpec, ServiceAdvertisement},
};

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
        path_attributes: None,
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
    assert!(p.graceful_restart.enabled);
    assert!(s.path_attributes.is_empty());
}

#[test]
fn graceful_restart_can_be_turned_off_per_peer() {
    let mut off = peer("192.0.2.3", 65001);
    off.graceful_restart = Some(false);
    let s = spec(vec![peer("192.0.2.2", 65001), off]).settings().unwrap();
    let enabled: Vec<bool> = s.peers.values().map(|p| p.graceful_restart.enabled).collect();
    assert_eq!(enabled, [true, false]);
}

fn attrs_spec(
    communities: &[&str],
    large: &[&str],
    local_pref: Option<i64>,
    med: Option<i64>,
) -> PathAttributesSpec {
    PathAttributesSpec {
        communities: communities.iter().map(|c| c.to_string()).collect(),
        large_communities: large.iter().map(|c| c.to_string()).collect(),
        local_pref,
        med,
    }
}

#[test]
fn policy_path_attributes_are_parsed() {
    let mut s = spec(vec![peer("192.0.2.2", 65001)]);
    s.path_attributes = Some(attrs_spec(
        &["64512:100", "NO-EXPORT", "65535:65281"],
        &["4200000000:1:2"],
        Some(200),
        Some(0),
    ));
    let a = s.settings().unwrap().path_attributes;
    let shown: Vec<String> = a.communities.iter().map(ToString::to_string).collect();
    // Sorted by value; the two spellings of no-export are one community.
    assert_eq!(shown, ["64512:100", "no-export"]);
    assert_eq!(a.large_communities.len(), 1);
    assert_eq!((a.local_pref, a.med), (Some(200), Some(0)));
    // And back, canonically.
    let back = path_attributes_spec(&a);
    assert_eq!(
        back,
        attrs_spec(
            &["64512:100", "no-export"],
            &["4200000000:1:2"],
            Some(200),
            Some(0)
        )
    );
}

#[test]
fn bad_path_attributes_name_the_field_and_rule() {
    let mut s = spec(vec![peer("192.0.2.2", 65001)]);
    s.path_attributes = Some(attrs_spec(
        &["64512:100", "65536:1", "no_export"],
        &["1:2", "1:2:3"],
        Some(-1),
        Some(4_294_967_296),
    ));
    let errors = errors_of(&s);
    let rule = bgpintent_api::Community::rule();
    assert_eq!(
        errors,
        [
            format!("spec.pathAttributes.communities[1]: {rule} (got \"65536:1\")"),
            format!("spec.pathAttributes.communities[2]: {rule} (got \"no_export\")"),
            "spec.pathAttributes.largeCommunities[0]: must be <uint32>:<uint32>:<uint32> (got \"1:2\")"
                .into(),
            "spec.pathAttributes.localPref: must be between 0 and 4294967295 (got -1)".into(),
            "spec.pathAttributes.med: must be between 0 and 4294967295 (got 4294967296)".into(),
        ]
    );
    let mut many = spec(vec![]);
    many.path_attributes = Some(PathAttributesSpec {
        communities: (0..33).map(|i| format!("1:{i}")).collect(),
        ..Default::default()
    });
    assert_eq!(
        errors_of(&many),
        ["spec.pathAttributes.communities: must have at most 32 items (got 33)"]
    );
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
    let mut attributes: BTreeMap<Prefix, PathAttributes> = BTreeMap::new();
    // The Service's IPv4 address carries attributes (merged over its sources, the Service
    // and the Egress), its IPv6 one none: the Service appears in two groups.
    attributes.insert(
        "203.0.113.10".parse().unwrap(),
        PathAttributes {
            communities: ["64512:7".parse().unwrap(), "no-export".parse().unwrap()].into(),
            large_communities: ["1:2:3".parse().unwrap()].into(),
            local_pref: Some(300),
            med: Some(5),
        },
    );
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
        attributes,
        as_path_prepend: Some(AsPathPrepend {
            asn: Asn::try_from(64512).unwrap(),
            repeat: 3,
        }),
    }
}

#[test]
fn node_intent_round_trips() {
    let intent = sample_intent();
    let spec = BGPNodeIntentSpec::from(&intent);
    assert_eq!(spec.peers[0].address, "192.0.2.2");
    // Grouped by (source, attributes), sorted: Service without then with attributes,
    // PodCIDR, Egress (enum order), prefixes sorted within.
    assert_eq!(spec.prefixes.len(), 4);
    assert_eq!(spec.prefixes[0].prefixes, ["2001:db8:5::10/128"]);
    assert_eq!(spec.prefixes[0].attributes, None);
    assert_eq!(
        spec.prefixes[1].attributes,
        Some(attrs_spec(
            &["64512:7", "no-export"],
            &["1:2:3"],
            Some(300),
            Some(5)
        ))
    );
    assert_eq!(spec.prefixes[3].attributes, spec.prefixes[1].attributes);
    assert_eq!(
        spec.as_path_prepend,
        Some(AsPathPrependSpec {
            asn: 64512,
            repeat: 3
        })
    );
    assert_eq!(parse_node_intent("node-a", &spec).unwrap(), intent);
    // The speaker's parse: the same intent with every prefix's sources left out.
    let lean = parse_node_intent_without_sources("node-a", &spec).unwrap();
    let mut want = intent.clone();
    want.prefixes.values_mut().for_each(BTreeSet::clear);
    assert_eq!(lean, want);
    assert!(!intent.prefixes.values().any(BTreeSet::is_empty));
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
    spec.prefixes[1]
        .attributes
        .as_mut()
        .unwrap()
        .communities
        .push("x".into());
    spec.as_path_prepend = Some(AsPathPrependSpec {
        asn: 23456,
        repeat: 11,
    });
    let e = parse_node_intent("n", &spec).unwrap_err();
    let fields: Vec<&str> = e.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.routerID",
            "spec.prefixes[0].prefixes[0]",
            "spec.prefixes[1].attributes.communities[2]",
            "spec.asPathPrepend.asn",
            "spec.asPathPrepend.repeat",
        ]
    );
}

/// Every group holding a prefix must carry the same attributes; the error names both
/// groups, once per pair however many prefixes they share.
#[test]
fn groups_disagreeing_on_a_prefix_are_refused() {
    let group = |kind: &str, attrs: Option<PathAttributesSpec>| PrefixGroup {
        source: serde_json::from_value(serde_json::json!({"kind": kind, "name": "e"})).unwrap(),
        prefixes: vec!["192.0.2.1/32".into(), "192.0.2.2/32".into()],
        attributes: attrs,
    };
    let a = attrs_spec(&["1:1"], &[], None, None);
    let ok = [
        group("Egress", Some(a.clone())),
        group("PodCIDR", Some(a.clone())),
    ];
    let table = parse_prefix_groups("spec.prefixes", &ok).unwrap();
    assert_eq!(table.attributes.len(), 2);
    // An empty attributes object is the same as none.
    let empty = [
        group("Egress", Some(PathAttributesSpec::default())),
        group("PodCIDR", None),
    ];
    assert!(
        parse_prefix_groups("spec.prefixes", &empty)
            .unwrap()
            .attributes
            .is_empty()
    );
    let bad = [group("Egress", Some(a)), group("PodCIDR", None)];
    let e = parse_prefix_groups("spec.prefixes", &bad).unwrap_err();
    assert_eq!(
        e.to_string(),
        "spec.prefixes[1].attributes: must equal the attributes of spec.prefixes[0], which also holds 192.0.2.1/32"
    );
    // Dropping sources does not drop the check.
    let lean = parse_prefix_groups_without_sources("spec.prefixes", &bad).unwrap_err();
    assert_eq!(lean.to_string(), e.to_string());
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

fn arb_attributes() -> impl Strategy<Value = PathAttributes> {
    (
        proptest::collection::btree_set(0..4u32, 0..3),
        proptest::option::of(0..3u32),
        proptest::option::of(0..3u32),
    )
        .prop_map(|(c, local_pref, med)| PathAttributes {
            communities: c
                .into_iter()
                .map(|v| bgpintent_api::Community(0xFFFF_FF00 + v))
                .collect(),
            large_communities: Default::default(),
            local_pref,
            med,
        })
}

proptest! {
    #[test]
    fn prefix_groups_round_trip(
        entries in proptest::collection::vec((any::<u32>(), 8..=32u8, arb_source(), arb_attributes()), 0..40)
    ) {
        let mut table = PrefixTable::default();
        for (addr, len, source, attrs) in entries {
            let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(addr), len).unwrap();
            let prefix = Prefix::from(net.trunc());
            table.prefixes.entry(prefix).or_default().insert(source);
            // The first attributes drawn for a prefix stay (a prefix has one set).
            if !attrs.is_empty() && !table.attributes.contains_key(&prefix) && table.prefixes[&prefix].len() == 1 {
                table.attributes.insert(prefix, attrs);
            }
        }
        let groups = prefix_groups(&table.prefixes, &table.attributes);
        // One group per (source, attributes), in that order.
        let keys: Vec<(Source, Option<PathAttributes>)> = groups
            .iter()
            .map(|g| {
                let t = parse_prefix_groups("g", std::slice::from_ref(g)).unwrap();
                let p = t.prefixes.keys().next().copied().unwrap();
                (parse_source("s", &g.source).unwrap(), t.attributes.get(&p).cloned())
            })
            .collect();
        prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        prop_assert_eq!(parse_prefix_groups("g", &groups).unwrap(), table);
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
