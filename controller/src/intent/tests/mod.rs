//! Table tests: one rule per test, built from readable fixtures. Selection, router IDs and
//! passwords here; announcements in `routes`, path attributes in `attributes`, labelled Pods
//! in `pods`; per-Node annotation overrides in `overrides`.

mod attributes;
mod overrides;
mod pods;
mod routes;

use std::collections::BTreeMap;

use bgpintent_api::RouterId;

use super::*;
use crate::fixtures::*;

pub(super) fn prefixes(res: &Resolution, node: &str) -> Vec<String> {
    res.logical_intent(node)
        .map(|i| i.prefixes.keys().map(|p| p.to_string()).collect())
        .unwrap_or_default()
}

pub(super) fn sources(res: &Resolution, node: &str, prefix: &str) -> Vec<String> {
    let intent = res.logical_intent(node).unwrap();
    intent.prefixes[&prefix.parse().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn owner(res: &Resolution, node: &str) -> Option<String> {
    res.nodes.get(node).map(|n| n.intent.policy.name.clone())
}

pub(super) fn dual(name: &str, i: u8) -> Node {
    node(name)
        .label("bgp", "on")
        .ipv4(&format!("10.0.0.{i}"))
        .ipv6(&format!("fd00::{i}"))
        .pod_cidr(&format!("10.244.{i}.0/24"))
        .pod_cidr(&format!("fd00:244:{i}::/64"))
        .build()
}

pub(super) fn all_types() -> PolicyBuilder {
    policy("p")
        .select("bgp", "on")
        .ip_types(&["ClusterIP", "ExternalIP", "LoadBalancerIP"])
}

// ---------------------------------------------------------------- selection

#[test]
fn oldest_policy_owns_and_newer_ones_conflict() {
    let s = Snapshot {
        policies: vec![
            policy("young").created(20).select("bgp", "on").build(),
            policy("old").created(10).select("bgp", "on").build(),
            policy("other").created(0).select("zone", "b").build(),
        ],
        nodes: vec![
            dual("n1", 1),
            node("n2")
                .label("zone", "b")
                .label("bgp", "on")
                .ipv4("10.0.0.2")
                .build(),
        ],
        ..Snapshot::default()
    };
    let res = resolve(&s);
    assert_eq!(owner(&res, "n1").as_deref(), Some("old"));
    assert_eq!(owner(&res, "n2").as_deref(), Some("other"));
    assert_eq!(
        res.policies["young"].conflicts,
        BTreeMap::from([("n1".into(), "old".into()), ("n2".into(), "other".into())])
    );
    assert_eq!(
        res.policies["old"].conflicts,
        BTreeMap::from([("n2".into(), "other".into())])
    );
    assert!(res.policies["young"].effective.is_empty());
    assert_eq!(res.policies["young"].selected.len(), 2);
    assert_eq!(res.policies["old"].effective.iter().collect::<Vec<_>>(), ["n1"]);
}

#[test]
fn equal_timestamps_fall_back_to_name() {
    let s = Snapshot {
        policies: vec![
            policy("b").created(5).select("bgp", "on").build(),
            policy("a").created(5).select("bgp", "on").build(),
        ],
        nodes: vec![dual("n1", 1)],
        ..Snapshot::default()
    };
    assert_eq!(owner(&resolve(&s), "n1").as_deref(), Some("a"));
}

#[test]
fn match_expressions_are_honoured() {
    let cases: [(&str, &[&str], bool); 6] = [
        ("In", &["on", "yes"], true),
        ("In", &["off"], false),
        ("NotIn", &["off"], true),
        ("NotIn", &["on"], false),
        ("Exists", &[], true),
        ("DoesNotExist", &[], false),
    ];
    for (op, values, owned) in cases {
        let s = Snapshot {
            policies: vec![policy("p").expr("bgp", op, values).build()],
            nodes: vec![dual("n1", 1)],
            ..Snapshot::default()
        };
        assert_eq!(resolve(&s).nodes.contains_key("n1"), owned, "{op} {values:?}");
    }
}

#[test]
fn unselected_nodes_get_no_intent() {
    let s = Snapshot {
        policies: vec![policy("p").select("bgp", "on").build()],
        nodes: vec![dual("n1", 1), node("n2").ipv4("10.0.0.2").build()],
        ..Snapshot::default()
    };
    let res = resolve(&s);
    assert!(res.nodes.contains_key("n1"));
    assert!(!res.nodes.contains_key("n2"));
    assert!(!res.router_id_annotations.contains_key("n2"));
}

#[test]
fn invalid_older_policy_holds_its_nodes_and_changes_nothing_else() {
    let valid = policy("valid")
        .created(10)
        .select("bgp", "on")
        .peer("192.0.2.1", 65000)
        .build();
    let nodes = vec![
        dual("n1", 1),
        node("n2")
            .label("bgp", "on")
            .label("rack", "r2")
            .ipv4("10.0.0.2")
            .build(),
    ];
    let base = resolve(&Snapshot {
        policies: vec![valid.clone()],
        nodes: nodes.clone(),
        ..Snapshot::default()
    });
    // Older, selects only n2, and invalid (ASN 23456).
    let invalid = policy("broken")
        .created(0)
        .select("rack", "r2")
        .asn(23456)
        .build();
    let res = resolve(&Snapshot {
        policies: vec![valid, invalid],
        nodes,
        ..Snapshot::default()
    });
    let broken = &res.policies["broken"];
    assert!(!broken.accepted);
    assert_eq!(broken.errors[0].field, "spec.localASN");
    assert_eq!(res.held, BTreeMap::from([("n2".into(), "broken".into())]));
    assert!(!res.nodes.contains_key("n2"), "no new intent for a held Node");
    assert_eq!(
        res.policies["valid"].conflicts.get("n2").map(String::as_str),
        Some("broken")
    );
    // n1's intent is exactly what it is without the invalid policy.
    assert_eq!(res.nodes["n1"], base.nodes["n1"]);
    assert!(!res.router_id_annotations.contains_key("n2"));
}

#[test]
fn invalid_younger_policy_changes_nothing() {
    let valid = policy("valid").created(0).select("bgp", "on").build();
    let nodes = vec![dual("n1", 1)];
    let base = resolve(&Snapshot {
        policies: vec![valid.clone()],
        nodes: nodes.clone(),
        ..Snapshot::default()
    });
    let res = resolve(&Snapshot {
        policies: vec![
            valid,
            policy("broken").created(9).select("bgp", "on").asn(0).build(),
        ],
        nodes,
        ..Snapshot::default()
    });
    assert_eq!(res.nodes, base.nodes);
    assert!(res.held.is_empty());
    assert_eq!(res.policies["broken"].conflicts.len(), 1);
}

#[test]
fn invalid_selector_holds_the_nodes_it_currently_owns() {
    let policies = vec![
        policy("bad-selector").created(0).expr("bgp", "In", &[]).build(),
        policy("fallback").created(5).select("bgp", "on").build(),
    ];
    let nodes = vec![dual("n1", 1), dual("n2", 2)];
    let offline = resolve(&Snapshot {
        policies: policies.clone(),
        nodes: nodes.clone(),
        ..Snapshot::default()
    });
    let bad = &offline.policies["bad-selector"];
    assert_eq!(
        bad.errors[0].field,
        "spec.nodeSelector.matchExpressions[0].values"
    );
    assert!(bad.held.is_empty());
    assert_eq!(owner(&offline, "n1").as_deref(), Some("fallback"));

    let live = resolve(&Snapshot {
        policies,
        nodes,
        current_owners: BTreeMap::from([("n1".into(), "bad-selector".into())]),
        ..Snapshot::default()
    });
    assert_eq!(live.held, BTreeMap::from([("n1".into(), "bad-selector".into())]));
    assert_eq!(owner(&live, "n2").as_deref(), Some("fallback"));
}

// ---------------------------------------------------------------- router IDs

fn router_id(res: &Resolution, node: &str) -> (String, RouterIdSource) {
    let n = &res.nodes[node];
    (n.intent.router_id.to_string(), n.report.router_id_source)
}

#[test]
fn router_id_sources_in_order() {
    let s = Snapshot {
        policies: vec![policy("p").build()],
        nodes: vec![
            node("annotated")
                .annotation(ROUTER_ID_ANNOTATION, "192.0.2.9")
                .ipv4("10.0.0.1")
                .build(),
            node("v4").ipv4("10.0.0.2").ipv6("fd00::2").build(),
            node("v6only").ipv6("fd00::3").build(),
            node("garbage")
                .annotation(ROUTER_ID_ANNOTATION, "not-an-ip")
                .ipv4("10.0.0.4")
                .build(),
        ],
        ..Snapshot::default()
    };
    let res = resolve(&s);
    assert_eq!(
        router_id(&res, "annotated"),
        ("192.0.2.9".into(), RouterIdSource::Annotation)
    );
    assert_eq!(
        router_id(&res, "v4"),
        ("10.0.0.2".into(), RouterIdSource::InternalIp)
    );
    assert_eq!(
        router_id(&res, "v6only"),
        (
            RouterId::from_name_hash("v6only").to_string(),
            RouterIdSource::NameHash { attempt: 0 }
        )
    );
    assert_eq!(
        router_id(&res, "garbage"),
        ("10.0.0.4".into(), RouterIdSource::InternalIp)
    );
    assert!(
        res.nodes["garbage"]
            .report
            .notes
            .iter()
            .any(|n| n.contains("not-an-ip"))
    );
    // Written only where missing; a stored value (even an invalid one) is never changed.
    let written: Vec<(&str, String)> = res
        .router_id_annotations
        .iter()
        .map(|(n, id)| (n.as_str(), id.to_string()))
        .collect();
    assert_eq!(
        written,
        [
            ("v4", "10.0.0.2".to_string()),
            ("v6only", RouterId::from_name_hash("v6only").to_string())
        ]
    );
}

#[test]
fn collisions_are_reported_per_asn() {
    let s = Snapshot {
        policies: vec![
            policy("a").created(0).select("asn", "a").asn(65001).build(),
            policy("b").created(1).select("asn", "b").asn(65002).build(),
        ],
        nodes: vec![
            node("n1")
                .label("asn", "a")
                .annotation(ROUTER_ID_ANNOTATION, "192.0.2.1")
                .build(),
            node("n2").label("asn", "a").ipv4("192.0.2.1").build(),
            node("n3")
                .label("asn", "b")
                .annotation(ROUTER_ID_ANNOTATION, "192.0.2.1")
                .build(),
        ],
        ..Snapshot::default()
    };
    let res = resolve(&s);
    let c = &res.policies["a"].router_id_collisions;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].nodes.iter().collect::<Vec<_>>(), ["n1", "n2"]);
    assert!(
        res.policies["b"].router_id_collisions.is_empty(),
        "another ASN is no collision"
    );
}

#[test]
fn hashed_ids_move_to_an_unused_alternative() {
    // n-fixed's annotation takes the hash n-hashed would get.
    let taken = RouterId::from_name_hash("n-hashed").to_string();
    let s = Snapshot {
        policies: vec![policy("p").build()],
        nodes: vec![
            node("n-fixed").annotation(ROUTER_ID_ANNOTATION, &taken).build(),
            node("n-hashed").ipv6("fd00::1").build(),
        ],
        ..Snapshot::default()
    };
    let res = resolve(&s);
    let (id, source) = router_id(&res, "n-hashed");
    assert_ne!(id, taken);
    assert_eq!(source, RouterIdSource::NameHash { attempt: 1 });
    assert!(res.policies["p"].router_id_collisions.is_empty());
    assert_eq!(
        resolve(&s).nodes["n-hashed"].intent.router_id.to_string(),
        id,
        "deterministic"
    );
}

#[test]
fn writing_the_annotations_is_a_fixed_point() {
    let mut s = Snapshot {
        policies: vec![policy("p").build()],
        nodes: vec![
            node("a").ipv6("fd00::1").build(),
            node("b").ipv4("10.0.0.2").build(),
        ],
        ..Snapshot::default()
    };
    let first = resolve(&s);
    for n in &mut s.nodes {
        let name = n.metadata.name.clone().unwrap();
        let id = first.router_id_annotations[&name];
        n.metadata
            .annotations
            .get_or_insert_default()
            .insert(ROUTER_ID_ANNOTATION.into(), id.to_string());
    }
    let second = resolve(&s);
    assert!(second.router_id_annotations.is_empty());
    for n in ["a", "b"] {
        assert_eq!(second.nodes[n].intent.router_id, first.nodes[n].intent.router_id);
    }
}

// ---------------------------------------------------------------- passwords

#[test]
fn passwords_are_referenced_by_canonical_address() {
    let s = Snapshot {
        policies: vec![
            policy("p")
                .peer("2001:db8::1", 65000)
                .peer("192.0.2.1", 65001)
                .build(),
        ],
        nodes: vec![dual("n1", 1)],
        passwords: Some(secret(
            "bgp-passwords",
            "uid-1",
            &[("2001:0db8::0001-65000", "s3cret")],
        )),
        ..Snapshot::default()
    };
    let res = resolve(&s);
    let peers = &res.nodes["n1"].intent.peers;
    let v6 = peers.iter().find(|(k, _)| k.address.is_ipv6()).unwrap().1;
    let pw = v6.password.as_ref().unwrap();
    assert_eq!(
        (pw.secret_name.as_str(), pw.key.as_str()),
        ("bgp-passwords", "2001:0db8::0001-65000")
    );
    let v4 = peers.iter().find(|(k, _)| k.address.is_ipv4()).unwrap().1;
    assert!(v4.password.is_none());
    let report = &res.policies["p"];
    assert!(report.accepted, "a peer without password is not an error");
    assert_eq!(report.unauthenticated_peers.len(), 1);
    assert!(!format!("{res:?}{s:?}").contains("s3cret"));
}
