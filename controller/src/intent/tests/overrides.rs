//! Per-Node overrides by annotation: one rule per test. Every Node and peer uses
//! documentation addresses.

use bgpintent_api::{AsPathPrepend, Asn, FieldError, PeerKey};
use bgpintent_crd::policy::BGPPeer;

use super::*;
use crate::{
    fixtures::*,
    materialize::{Layout, diff, materialize},
};

const POLICY_ASN: u32 = 64512;

fn n(name: &str, i: u8) -> NodeBuilder {
    node(name)
        .label("bgp", "on")
        .ipv4(&format!("198.51.100.{i}"))
        .ipv6(&format!("2001:db8:1::{i}"))
}

fn the_policy() -> PolicyBuilder {
    policy("p")
        .select("bgp", "on")
        .asn(i64::from(POLICY_ASN))
        .peer("192.0.2.1", 65001)
        .peer("2001:db8::1", 65001)
        .ip_types(&["ClusterIP"])
}

fn cluster(nodes: Vec<Node>) -> Snapshot {
    Snapshot {
        policies: vec![the_policy().build()],
        nodes,
        services: vec![service("ns", "web").cluster_ips(&["203.0.113.10"]).build()],
        ..Snapshot::default()
    }
}

/// Resolves `n1` (with `annotations`) next to an unannotated `n2`.
fn with(annotations: &[(&str, &str)]) -> Resolution {
    let mut n1 = n("n1", 1);
    for (k, v) in annotations {
        n1 = n1.annotation(k, v);
    }
    resolve(&cluster(vec![n1.build(), n("n2", 2).build()]))
}

fn asn(v: u32) -> Asn {
    Asn::try_from(v).unwrap()
}

fn key(address: &str, a: u32) -> PeerKey {
    PeerKey {
        address: address.parse().unwrap(),
        asn: asn(a),
    }
}

/// The errors of `n1`, which must be held.
fn errors(res: &Resolution) -> Vec<FieldError> {
    assert_eq!(
        res.held.get("n1").map(String::as_str),
        Some("p"),
        "n1 must be held"
    );
    assert!(!res.nodes.contains_key("n1"), "no new intent for a held Node");
    let invalid = &res.policies["p"].invalid_overrides["n1"];
    invalid.errors.values().flatten().cloned().collect()
}

fn fields(res: &Resolution) -> Vec<String> {
    errors(res).into_iter().map(|e| e.field).collect()
}

/// `n2` never depends on `n1`'s annotations.
fn n2_unaffected(res: &Resolution) {
    let plain = resolve(&cluster(vec![n("n1", 1).build(), n("n2", 2).build()]));
    assert_eq!(res.nodes["n2"], plain.nodes["n2"]);
}

// ---------------------------------------------------------------- local ASN

#[test]
fn local_asn_overrides_the_policy_for_that_node_only() {
    let res = with(&[(LOCAL_ASN_ANNOTATION, "4200000001")]);
    assert_eq!(res.nodes["n1"].intent.local_asn, asn(4_200_000_001));
    assert_eq!(res.nodes["n2"].intent.local_asn, asn(POLICY_ASN));
    assert!(
        res.nodes["n1"].report.overrides[0].contains("local ASN 4200000001"),
        "{:?}",
        res.nodes["n1"].report.overrides
    );
    assert!(res.held.is_empty());
    assert!(res.policies["p"].invalid_overrides.is_empty());
    n2_unaffected(&res);
}

#[test]
fn local_asn_follows_the_policy_rules() {
    for bad in [
        "0",
        "23456",
        "4294967295",
        "4294967296",
        "-1",
        "+65000",
        " 65000",
        "65000.0",
        "AS65000",
        "",
    ] {
        let res = with(&[(LOCAL_ASN_ANNOTATION, bad)]);
        let e = errors(&res);
        assert_eq!(e.len(), 1, "{bad:?}: {e:?}");
        assert_eq!(
            e[0].field, "metadata.annotations[bgpintent.io/local-asn]",
            "{bad:?}"
        );
        assert_eq!(e[0].rule, Asn::RULE, "{bad:?}");
        n2_unaffected(&res);
    }
}

#[test]
fn router_id_collisions_are_counted_in_the_overridden_asn() {
    // Both Nodes claim one router ID; in different ASes that is no collision.
    let s = Snapshot {
        policies: vec![the_policy().build()],
        nodes: vec![
            n("n1", 1)
                .annotation(ROUTER_ID_ANNOTATION, "192.0.2.200")
                .annotation(LOCAL_ASN_ANNOTATION, "65100")
                .build(),
            n("n2", 2).annotation(ROUTER_ID_ANNOTATION, "192.0.2.200").build(),
        ],
        ..Snapshot::default()
    };
    assert!(resolve(&s).policies["p"].router_id_collisions.is_empty());
    let mut same = s.clone();
    same.nodes[0] = n("n1", 1).annotation(ROUTER_ID_ANNOTATION, "192.0.2.200").build();
    assert_eq!(resolve(&same).policies["p"].router_id_collisions.len(), 1);
}

// ---------------------------------------------------------------- peers

#[test]
fn peers_annotation_adds_a_peer_with_the_policy_defaults() {
    let res = with(&[(PEERS_ANNOTATION, r#"[{"address": "192.0.2.9", "asn": 65009}]"#)]);
    let peers = &res.nodes["n1"].intent.peers;
    let keys: Vec<PeerKey> = peers.keys().copied().collect();
    assert_eq!(
        keys,
        [
            key("192.0.2.1", 65001),
            key("192.0.2.9", 65009),
            key("2001:db8::1", 65001)
        ]
    );
    // Defaults exactly as for a policy peer with the same two fields, on the same Node.
    let as_policy_peer = resolve(&Snapshot {
        policies: vec![the_policy().peer("192.0.2.9", 65009).build()],
        nodes: vec![n("n1", 1).build()],
        ..Snapshot::default()
    });
    assert_eq!(
        peers[&key("192.0.2.9", 65009)],
        as_policy_peer.nodes["n1"].intent.peers[&key("192.0.2.9", 65009)]
    );
    assert_eq!(res.nodes["n2"].intent.peers.len(), 2);
    assert!(
        res.nodes["n1"].report.overrides[0].contains("peer 192.0.2.9 AS65009 added"),
        "{:?}",
        res.nodes["n1"].report.overrides
    );
    n2_unaffected(&res);
}

#[test]
fn peers_annotation_replaces_the_policy_peer_with_the_same_address() {
    let res = with(&[(
        PEERS_ANNOTATION,
        r#"[{"address": "192.0.2.1", "asn": 65002, "holdTimeSeconds": 30, "passive": true}]"#,
    )]);
    let peers = &res.nodes["n1"].intent.peers;
    assert_eq!(
        peers.keys().copied().collect::<Vec<_>>(),
        [key("192.0.2.1", 65002), key("2001:db8::1", 65001)],
        "the policy's 192.0.2.1 AS65001 is replaced, not kept next to it"
    );
    let p = &peers[&key("192.0.2.1", 65002)];
    assert_eq!(
        (p.hold_time_secs, p.keepalive_time_secs, p.passive),
        (30, 10, true)
    );
    // The address compares canonically.
    let res = with(&[(
        PEERS_ANNOTATION,
        r#"[{"address": "2001:0db8::0001", "asn": 65003}]"#,
    )]);
    assert_eq!(
        res.nodes["n1"].intent.peers.keys().copied().collect::<Vec<_>>(),
        [key("192.0.2.1", 65001), key("2001:db8::1", 65003)]
    );
    assert!(
        res.nodes["n1"].report.overrides[0]
            .contains("replaces the peer [2001:db8::1] AS65001 of BGPPolicy p")
    );
}

#[test]
fn an_empty_peer_list_changes_nothing() {
    let res = with(&[(PEERS_ANNOTATION, "[]")]);
    let plain = resolve(&cluster(vec![n("n1", 1).build(), n("n2", 2).build()]));
    assert_eq!(res.nodes["n1"].intent, plain.nodes["n1"].intent);
}

#[test]
fn annotation_peers_use_the_passwords_secret_like_policy_peers() {
    let mut s = cluster(vec![
        n("n1", 1)
            .annotation(
                PEERS_ANNOTATION,
                r#"[{"address": "192.0.2.9", "asn": 65009}, {"address": "192.0.2.10", "asn": 65010}]"#,
            )
            .build(),
    ]);
    s.passwords = Some(secret(
        "bgp-passwords",
        "uid-s",
        &[("192.0.2.9-65009", "Pw-annotation")],
    ));
    let res = resolve(&s);
    let peers = &res.nodes["n1"].intent.peers;
    let pw = peers[&key("192.0.2.9", 65009)].password.as_ref().unwrap();
    assert_eq!(
        (pw.secret_name.as_str(), pw.key.as_str()),
        ("bgp-passwords", "192.0.2.9-65009")
    );
    assert!(peers[&key("192.0.2.10", 65010)].password.is_none());
    // Reported like a policy peer without a key.
    assert!(
        res.policies["p"]
            .unauthenticated_peers
            .contains(&key("192.0.2.10", 65010))
    );
    assert!(!format!("{res:?}").contains("Pw-annotation"));
}

#[test]
fn peers_annotation_errors_name_the_entry_and_field() {
    let base = "metadata.annotations[bgpintent.io/peers]";
    let cases: [(&str, &[&str], &str); 12] = [
        ("not json", &[""], "must be an array of bgpPeers entries in JSON"),
        (
            r#"{"address": "192.0.2.9", "asn": 65009}"#,
            &[""],
            "must be a JSON array",
        ),
        (
            r#"["192.0.2.9"]"#,
            &["[0]"],
            "must be a JSON object (a bgpPeers entry)",
        ),
        (r#"[{"address": "192.0.2.9"}]"#, &["[0]"], "missing field `asn`"),
        (
            r#"[{"address": "192.0.2.9", "asn": 65009, "pasive": true}]"#,
            &["[0].pasive"],
            "unknown field",
        ),
        (
            r#"[{"address": "192.0.2.9", "asn": 65009, "bfd": {"enabled": true, "interval": 5}}]"#,
            &["[0].bfd.interval"],
            "unknown field",
        ),
        (
            r#"[{"address": "192.0.2.9", "asn": 65009}, {"address": "192.0.2.10", "asn": 23456}]"#,
            &["[1].asn"],
            Asn::RULE,
        ),
        (
            r#"[{"address": "192.0.2.9", "asn": "65009"}]"#,
            &["[0].asn"],
            "invalid type",
        ),
        (
            r#"[{"address": "192.0.2.300", "asn": 65009}]"#,
            &["[0].address"],
            "IP",
        ),
        (
            r#"[{"address": "192.0.2.9", "asn": 65009, "multihopTTL": 256, "holdTimeSeconds": 2}]"#,
            &["[0].multihopTTL", "[0].holdTimeSeconds"],
            "between",
        ),
        (
            r#"[{"address": "192.0.2.9", "asn": 65009}, {"address": "192.0.2.9", "asn": 65010}]"#,
            &["[1].address"],
            "must be unique: metadata.annotations[bgpintent.io/peers][0] has the same address",
        ),
        (
            r#"[{"address": "192.0.2.9", "asn": 65009, "keepaliveTimeSeconds": 90}]"#,
            &["[0].keepaliveTimeSeconds"],
            "must be less than holdTimeSeconds (90)",
        ),
    ];
    for (value, want, rule) in cases {
        let res = with(&[(PEERS_ANNOTATION, value)]);
        let e = errors(&res);
        let got: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        let want: Vec<String> = want.iter().map(|w| format!("{base}{w}")).collect();
        assert_eq!(got, want, "{value}");
        assert!(e.iter().any(|e| e.rule.contains(rule)), "{value}: {e:?}");
        n2_unaffected(&res);
    }
}

#[test]
fn too_many_annotation_peers_are_refused() {
    let list: Vec<String> = (1..=65)
        .map(|i| format!(r#"{{"address": "203.0.113.{i}", "asn": 65000}}"#))
        .collect();
    let res = with(&[(PEERS_ANNOTATION, &format!("[{}]", list.join(",")))]);
    let e = errors(&res);
    assert_eq!(e[0].field, "metadata.annotations[bgpintent.io/peers]");
    assert!(e[0].rule.contains("at most 64"), "{e:?}");
}

#[test]
fn unknown_field_values_never_reach_a_message() {
    let res = with(&[(
        PEERS_ANNOTATION,
        r#"[{"address": "192.0.2.9", "asn": 65009, "password": "Pw-in-annotation"}]"#,
    )]);
    assert_eq!(
        fields(&res),
        ["metadata.annotations[bgpintent.io/peers][0].password"]
    );
    assert!(!format!("{res:?}").contains("Pw-in-annotation"));
}

#[test]
fn an_enabled_bfd_is_ignored_and_said_so() {
    let res = with(&[(
        PEERS_ANNOTATION,
        r#"[{"address": "192.0.2.9", "asn": 65009, "bfd": {"enabled": true}}]"#,
    )]);
    assert!(res.held.is_empty());
    assert!(
        res.nodes["n1"]
            .report
            .overrides
            .iter()
            .any(|o| o.contains("[0].bfd.enabled: BFD is not supported; ignored")),
        "{:?}",
        res.nodes["n1"].report.overrides
    );
}

// ---------------------------------------------------------------- AS-path prepend

#[test]
fn prepend_defaults_to_the_nodes_effective_asn() {
    let res = with(&[(AS_PATH_PREPEND_ANNOTATION, r#"{"repeat": 3}"#)]);
    assert_eq!(
        res.nodes["n1"].intent.as_path_prepend,
        Some(AsPathPrepend {
            asn: asn(POLICY_ASN),
            repeat: 3
        })
    );
    assert_eq!(res.nodes["n2"].intent.as_path_prepend, None);
    assert_eq!(
        res.logical_intent("n1").unwrap().as_path_prepend,
        res.nodes["n1"].intent.as_path_prepend
    );
    // With a local-ASN override, the override.
    let res = with(&[
        (AS_PATH_PREPEND_ANNOTATION, r#"{"repeat": 1}"#),
        (LOCAL_ASN_ANNOTATION, "4200000001"),
    ]);
    assert_eq!(
        res.nodes["n1"].intent.as_path_prepend,
        Some(AsPathPrepend {
            asn: asn(4_200_000_001),
            repeat: 1
        })
    );
    n2_unaffected(&res);
}

#[test]
fn prepend_with_an_explicit_asn() {
    let res = with(&[(AS_PATH_PREPEND_ANNOTATION, r#"{"asn": 64999, "repeat": 10}"#)]);
    assert_eq!(
        res.nodes["n1"].intent.as_path_prepend,
        Some(AsPathPrepend {
            asn: asn(64999),
            repeat: 10
        })
    );
    assert!(
        res.nodes["n1"]
            .report
            .overrides
            .iter()
            .any(|o| o.contains("AS path prepended with 64999 × 10")),
    );
}

#[test]
fn prepend_errors() {
    let base = "metadata.annotations[bgpintent.io/as-path-prepend]";
    let cases: [(&str, &str, &str); 9] = [
        (r#"{"repeat": 0}"#, ".repeat", "must be between 1 and 10"),
        (r#"{"repeat": 11}"#, ".repeat", "must be between 1 and 10"),
        (r#"{"repeat": -1}"#, ".repeat", "must be between 1 and 10"),
        (r#"{"asn": 23456, "repeat": 2}"#, ".asn", Asn::RULE),
        (r#"{"asn": 0, "repeat": 2}"#, ".asn", Asn::RULE),
        (r#"{"asn": 64512}"#, "", "missing field `repeat`"),
        (r#"{"repeat": 2, "count": 2}"#, ".count", "unknown field `count`"),
        ("3", "", "must be a JSON object"),
        ("{repeat: 3}", "", "in JSON"),
    ];
    for (value, field, rule) in cases {
        let res = with(&[(AS_PATH_PREPEND_ANNOTATION, value)]);
        let e = errors(&res);
        assert_eq!(e.len(), 1, "{value}: {e:?}");
        assert_eq!(e[0].field, format!("{base}{field}"), "{value}");
        assert!(e[0].rule.contains(rule), "{value}: {e:?}");
        n2_unaffected(&res);
    }
}

// ---------------------------------------------------------------- hold

#[test]
fn every_invalid_annotation_is_reported_at_once() {
    let res = with(&[
        (LOCAL_ASN_ANNOTATION, "0"),
        (PEERS_ANNOTATION, "[1]"),
        (AS_PATH_PREPEND_ANNOTATION, r#"{"repeat": 0}"#),
    ]);
    let invalid = &res.policies["p"].invalid_overrides["n1"];
    assert_eq!(
        invalid.errors.keys().map(String::as_str).collect::<Vec<_>>(),
        [AS_PATH_PREPEND_ANNOTATION, LOCAL_ASN_ANNOTATION, PEERS_ANNOTATION]
    );
    assert_eq!(invalid.uid, "uid-n1");
}

#[test]
fn an_invalid_annotation_holds_the_node_and_nothing_else() {
    let res = with(&[(LOCAL_ASN_ANNOTATION, "23456")]);
    let report = &res.policies["p"];
    assert!(report.accepted, "the policy itself is fine");
    assert!(report.effective.contains("n1"), "still owned by p");
    assert!(report.held.contains("n1"));
    assert!(
        !res.router_id_annotations.contains_key("n1"),
        "nothing is written for a held Node"
    );
    assert!(res.router_id_annotations.contains_key("n2"));
    n2_unaffected(&res);
    // Materialized: no intent for n1, and it is never deleted.
    let mat = materialize(&res, &Layout::default());
    assert!(mat.held.contains("n1"));
    assert!(!mat.intents.contains_key("n1"));
    assert!(mat.intents.contains_key("n2"));
}

#[test]
fn a_held_node_keeps_its_last_intent_and_gets_a_new_one_when_fixed() {
    let good = with(&[(LOCAL_ASN_ANNOTATION, "65100")]);
    let before = materialize(&good, &Layout::default());
    assert_eq!(good.nodes["n1"].intent.local_asn, asn(65100));

    // A bad edit: n1 is held, nothing of it is written or deleted.
    let bad = with(&[(LOCAL_ASN_ANNOTATION, "65100x")]);
    let held = materialize(&bad, &before.layout);
    let d = diff(&before, &held);
    assert!(d.is_empty(), "{d:?}");

    // Fixed, to a new value: written again.
    let fixed = with(&[(LOCAL_ASN_ANNOTATION, "65200")]);
    let after = materialize(&fixed, &held.layout);
    let d = diff(&held, &after);
    assert_eq!(d.apply_intents, ["n1"]);
    assert!(d.delete_intents.is_empty());
    assert_eq!(after.intents["n1"].spec.local_asn, 65200);

    // Removing the annotation returns to the policy's ASN.
    let plain = resolve(&cluster(vec![n("n1", 1).build(), n("n2", 2).build()]));
    assert_eq!(plain.nodes["n1"].intent.local_asn, asn(POLICY_ASN));
}

#[test]
fn a_held_node_without_an_intent_gets_none_and_is_not_deleted_from_nothing() {
    let res = resolve(&cluster(vec![
        n("n1", 1).annotation(PEERS_ANNOTATION, "x").build(),
    ]));
    let mat = materialize(&res, &Layout::default());
    assert!(mat.intents.is_empty());
    assert!(mat.held.contains("n1"));
}

#[test]
fn the_sets_a_held_node_names_are_kept() {
    // n1 is the only Node of the policy: its held intent names the policy's sets, which
    // must not be deleted while it is held.
    let good = resolve(&cluster(vec![n("n1", 1).build()]));
    let before = materialize(&good, &Layout::default());
    assert_eq!(before.sets.len(), 2, "one set per family");
    let bad = resolve(&cluster(vec![
        n("n1", 1).annotation(LOCAL_ASN_ANNOTATION, "x").build(),
    ]));
    let held = materialize(&bad, &before.layout);
    let d = diff(&before, &held);
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn a_held_node_keeps_pod_sets_and_takes_no_pod_or_attribute_change() {
    // A policy advertising Pods only (no Service IP type), with path attributes: its sets
    // exist for the `cluster` Pod. n1 is its only Node; while n1 is held, the sets stay,
    // and a `local` Pod on n1 or an attribute change does not touch its kept intent.
    let snapshot = |annotation: Option<&str>, med: i64| {
        let mut n1 = n("n1", 1);
        if let Some(v) = annotation {
            n1 = n1.annotation(LOCAL_ASN_ANNOTATION, v);
        }
        Snapshot {
            policies: vec![the_policy().ip_types(&[]).pod().med(med).build()],
            nodes: vec![n1.build()],
            pods: vec![
                pod("ns", "gw", "cluster").on("n1").ips(&["203.0.113.20"]).build(),
                pod("ns", "solo", "local").on("n1").ips(&["203.0.113.21"]).build(),
            ],
            ..Snapshot::default()
        }
    };
    let good = resolve(&snapshot(None, 10));
    let intent = &good.nodes["n1"].intent;
    assert_eq!(
        intent.attributes[&"203.0.113.21/32".parse().unwrap()].med,
        Some(10)
    );
    let before = materialize(&good, &Layout::default());
    assert_eq!(
        before.sets.len(),
        2,
        "one set per family: {:?}",
        before.sets.keys()
    );

    let mut bad = resolve(&snapshot(Some("x"), 20));
    assert_eq!(bad.held.get("n1").map(String::as_str), Some("p"));
    let mut held = materialize(&bad, &before.layout);
    let d = diff(&before, &held);
    assert!(
        d.delete_sets.is_empty() && d.apply_intents.is_empty() && d.delete_intents.is_empty(),
        "{d:?}"
    );
    // A Pod event while held: nothing for n1.
    let change = bad.set_pod(PodKey::new("ns", "solo"), None);
    assert!(change.nodes.is_empty(), "{change:?}");
    let touched = held.apply_pod_change(&bad, &change);
    assert!(touched.intents.is_empty(), "{touched:?}");
}

#[test]
fn overrides_of_nodes_not_owned_by_a_valid_policy_are_not_evaluated() {
    let s = Snapshot {
        policies: vec![the_policy().asn(0).build()],
        nodes: vec![
            n("n1", 1).annotation(LOCAL_ASN_ANNOTATION, "x").build(),
            node("n3").annotation(LOCAL_ASN_ANNOTATION, "x").build(),
        ],
        ..Snapshot::default()
    };
    let res = resolve(&s);
    assert!(res.policies["p"].invalid_overrides.is_empty());
    assert_eq!(res.held.get("n1").map(String::as_str), Some("p"));
    assert!(!res.held.contains_key("n3"));
}

#[test]
fn resolution_does_not_depend_on_annotation_order_or_other_annotations() {
    let a = with(&[
        (LOCAL_ASN_ANNOTATION, "65100"),
        (AS_PATH_PREPEND_ANNOTATION, r#"{"repeat": 2}"#),
        ("example.com/unrelated", "{not json"),
    ]);
    let b = with(&[
        (AS_PATH_PREPEND_ANNOTATION, r#"{"repeat": 2}"#),
        (LOCAL_ASN_ANNOTATION, "65100"),
    ]);
    assert_eq!(a, b);
}

// ---------------------------------------------------------------- explain

#[test]
fn explain_shows_the_override_and_the_problem() {
    let s = cluster(vec![
        n("n1", 1)
            .annotation(AS_PATH_PREPEND_ANNOTATION, r#"{"repeat": 2}"#)
            .build(),
        n("n2", 2).annotation(LOCAL_ASN_ANNOTATION, "23456").build(),
    ]);
    let res = resolve(&s);
    let prefix = "203.0.113.10/32".parse().unwrap();
    let ok = explain::explain(&s, &res, "n1", prefix).to_string();
    assert!(ok.contains("IS announced"), "{ok}");
    assert!(
        ok.contains(&format!(
            "Node override: AS path prepended with {POLICY_ASN} × 2 on every announcement (annotation \
             {AS_PATH_PREPEND_ANNOTATION})"
        )),
        "{ok}"
    );
    // Once: not repeated next to the prefix.
    assert_eq!(ok.matches("prepended").count(), 1, "{ok}");
    let held = explain::explain(&s, &res, "n2", prefix).to_string();
    assert!(
        held.contains("its override annotations are invalid (metadata.annotations[bgpintent.io/local-asn]: must be an AS number"),
        "{held}"
    );
    assert!(held.contains("keeps the intent already written"), "{held}");
}

#[test]
fn peers_annotation_is_the_policy_peer_type() {
    // The annotation accepts exactly the fields of a policy peer: every field a fully set
    // BGPPeer serializes is accepted.
    let full = BGPPeer {
        port: Some(1179),
        multihop_ttl: Some(3),
        graceful_restart_time_seconds: Some(60),
        hold_time_seconds: Some(30),
        keepalive_time_seconds: Some(10),
        connect_retry_seconds: Some(5),
        passive: Some(false),
        ttl_security: Some(true),
        graceful_restart_deferral_seconds: Some(100),
        bfd: Some(bgpintent_crd::policy::Bfd {
            enabled: false,
            min_transmit_interval: Some(100),
            min_receive_interval: Some(100),
            multiplier: Some(3),
        }),
        ..BGPPeer::new("192.0.2.9", 65009)
    };
    let json = serde_json::to_string(&[&full]).unwrap();
    let res = with(&[(PEERS_ANNOTATION, &json)]);
    assert!(res.held.is_empty(), "{:?}", res.policies["p"].invalid_overrides);
    let (_, want) = full.parse("x").unwrap();
    let got = &res.nodes["n1"].intent.peers[&key("192.0.2.9", 65009)];
    assert_eq!(got.ttl, want.ttl);
    assert_eq!(got.port, 1179);
}
