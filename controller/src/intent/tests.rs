//! Table tests: one rule per test, built from readable fixtures.

use std::collections::BTreeMap;

use bgpintent_api::{Family, RouterId, ServiceIpType, Source};

use super::*;
use crate::fixtures::*;

fn prefixes(res: &Resolution, node: &str) -> Vec<String> {
    res.logical_intent(node)
        .map(|i| i.prefixes.keys().map(|p| p.to_string()).collect())
        .unwrap_or_default()
}

fn sources(res: &Resolution, node: &str, prefix: &str) -> Vec<String> {
    let intent = res.logical_intent(node).unwrap();
    intent.prefixes[&prefix.parse().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn owner(res: &Resolution, node: &str) -> Option<String> {
    res.nodes.get(node).map(|n| n.intent.policy.name.clone())
}

fn dual(name: &str, i: u8) -> Node {
    node(name)
        .label("bgp", "on")
        .ipv4(&format!("10.0.0.{i}"))
        .ipv6(&format!("fd00::{i}"))
        .pod_cidr(&format!("10.244.{i}.0/24"))
        .pod_cidr(&format!("fd00:244:{i}::/64"))
        .build()
}

fn all_types() -> PolicyBuilder {
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

// ---------------------------------------------------------------- Services

fn service_case(services: Vec<Service>, slices: Vec<EndpointSlice>) -> Resolution {
    resolve(&Snapshot {
        policies: vec![all_types().build()],
        nodes: vec![dual("n1", 1), dual("n2", 2), dual("n3", 3)],
        services,
        endpoint_slices: slices,
        ..Snapshot::default()
    })
}

#[test]
fn cluster_ips_go_to_every_node_dual_stack_as_host_prefixes() {
    let res = service_case(
        vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10", "fd00:96::a"])
                .build(),
        ],
        vec![],
    );
    for n in ["n1", "n2", "n3"] {
        let p = prefixes(&res, n);
        assert!(
            p.contains(&"10.96.0.10/32".into()) && p.contains(&"fd00:96::a/128".into()),
            "{n}: {p:?}"
        );
    }
    assert_eq!(
        sources(&res, "n1", "10.96.0.10/32"),
        ["Service ns/web (ClusterIP)"]
    );
    // Shared, not node-specific.
    assert!(res.nodes["n1"].intent.prefixes.keys().all(|p| !p.is_host()));
}

#[test]
fn headless_and_external_name_services_have_no_cluster_ip() {
    let res = service_case(
        vec![
            service("ns", "headless").headless().build(),
            service("ns", "ext")
                .type_("ExternalName")
                .cluster_ips(&["10.96.0.11"])
                .build(),
        ],
        vec![],
    );
    assert!(res.services.values().all(|r| r.routes.is_empty()));
    assert!(
        prefixes(&res, "n1")
            .iter()
            .all(|p| !p.ends_with("/32") && !p.ends_with("/128"))
    );
}

#[test]
fn internal_traffic_policy_local_needs_a_ready_local_endpoint() {
    let cases: [(&str, Cond, bool); 5] = [
        ("ready", READY, true),
        ("conditions unset (ready defaults to true)", UNSET, true),
        ("not ready", NOT_READY, false),
        (
            "terminating but serving, no ready endpoint anywhere",
            TERMINATING_SERVING,
            true,
        ),
        ("terminating, not serving", TERMINATING_NOT_SERVING, false),
    ];
    for (what, cond, announced) in cases {
        let res = service_case(
            vec![
                service("ns", "web")
                    .cluster_ips(&["10.96.0.10"])
                    .itp_local()
                    .build(),
            ],
            vec![
                slice("ns", "web", "web-1", "IPv4")
                    .endpoint("10.244.1.5", Some("n1"), cond)
                    .build(),
            ],
        );
        assert_eq!(
            prefixes(&res, "n1").contains(&"10.96.0.10/32".into()),
            announced,
            "{what}"
        );
        assert!(
            !prefixes(&res, "n2").contains(&"10.96.0.10/32".into()),
            "{what}: no endpoint on n2"
        );
    }
}

#[test]
fn terminating_endpoints_count_only_when_none_is_ready() {
    let res = service_case(
        vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10"])
                .itp_local()
                .build(),
        ],
        vec![
            slice("ns", "web", "web-1", "IPv4")
                .endpoint("10.244.1.5", Some("n1"), TERMINATING_SERVING)
                .endpoint("10.244.2.5", Some("n2"), READY)
                .build(),
        ],
    );
    assert!(!prefixes(&res, "n1").contains(&"10.96.0.10/32".into()));
    assert!(prefixes(&res, "n2").contains(&"10.96.0.10/32".into()));
}

#[test]
fn slices_join_by_label_in_the_same_namespace_and_need_a_node_name() {
    let res = service_case(
        vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10"])
                .itp_local()
                .build(),
        ],
        vec![
            slice("other", "web", "web-x", "IPv4")
                .endpoint("10.244.1.5", Some("n1"), READY)
                .build(),
            slice("ns", "web", "web-1", "IPv4")
                .endpoint("10.244.9.9", None, READY)
                .build(),
            slice("ns", "api", "api-1", "IPv4")
                .endpoint("10.244.3.5", Some("n3"), READY)
                .build(),
        ],
    );
    for n in ["n1", "n2", "n3"] {
        assert!(!prefixes(&res, n).contains(&"10.96.0.10/32".into()), "{n}");
    }
}

#[test]
fn local_endpoints_are_per_family() {
    let res = service_case(
        vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10", "fd00:96::a"])
                .itp_local()
                .build(),
        ],
        vec![
            slice("ns", "web", "web-v6", "IPv6")
                .endpoint("fd00:244:1::5", Some("n1"), READY)
                .build(),
        ],
    );
    let p = prefixes(&res, "n1");
    assert!(p.contains(&"fd00:96::a/128".into()));
    assert!(!p.contains(&"10.96.0.10/32".into()), "no IPv4 endpoint on n1");
}

#[test]
fn external_and_load_balancer_ips_follow_external_traffic_policy() {
    let res = service_case(
        vec![
            service("ns", "lb-local")
                .cluster_ips(&["10.96.0.20"])
                .external_ips(&["198.51.100.1"])
                .lb_ips(&["203.0.113.1"])
                .etp_local()
                .build(),
            service("ns", "lb-cluster")
                .cluster_ips(&["10.96.0.21"])
                .lb_ips(&["203.0.113.2"])
                .build(),
        ],
        vec![
            slice("ns", "lb-local", "s1", "IPv4")
                .endpoint("10.244.2.7", Some("n2"), READY)
                .build(),
        ],
    );
    for n in ["n1", "n2", "n3"] {
        let p = prefixes(&res, n);
        let local = n == "n2";
        assert_eq!(p.contains(&"198.51.100.1/32".into()), local, "{n} externalIP");
        assert_eq!(p.contains(&"203.0.113.1/32".into()), local, "{n} LB IP");
        assert!(
            p.contains(&"10.96.0.20/32".into()),
            "{n}: iTP is Cluster, ClusterIP everywhere"
        );
        assert!(p.contains(&"203.0.113.2/32".into()), "{n}: eTP Cluster");
    }
    assert_eq!(
        sources(&res, "n2", "203.0.113.1/32"),
        ["Service ns/lb-local (LoadBalancerIP)"]
    );
}

#[test]
fn only_listed_ip_types_are_announced() {
    let s = Snapshot {
        policies: vec![
            policy("p")
                .select("bgp", "on")
                .ip_types(&["LoadBalancerIP"])
                .build(),
        ],
        nodes: vec![dual("n1", 1)],
        services: vec![
            service("ns", "a")
                .cluster_ips(&["10.96.0.1"])
                .external_ips(&["198.51.100.1"])
                .lb_ips(&["203.0.113.1"])
                .build(),
        ],
        ..Snapshot::default()
    };
    let p = prefixes(&resolve(&s), "n1");
    assert!(p.contains(&"203.0.113.1/32".into()));
    assert!(!p.contains(&"10.96.0.1/32".into()) && !p.contains(&"198.51.100.1/32".into()));
}

#[test]
fn one_ip_from_two_services_carries_both_sources() {
    let res = service_case(
        vec![
            service("ns", "a")
                .cluster_ips(&["10.96.0.1"])
                .external_ips(&["198.51.100.7"])
                .build(),
            service("ns", "b")
                .cluster_ips(&["10.96.0.2"])
                .external_ips(&["198.51.100.7"])
                .build(),
        ],
        vec![],
    );
    assert_eq!(
        sources(&res, "n1", "198.51.100.7/32"),
        ["Service ns/a (ExternalIP)", "Service ns/b (ExternalIP)"]
    );
}

#[test]
fn invalid_service_ips_are_reported_not_fatal() {
    let res = service_case(
        vec![service("ns", "bad").cluster_ips(&["10.96.0.300"]).build()],
        vec![],
    );
    assert_eq!(res.problems.len(), 1);
    assert_eq!(res.problems[0].object, "Service ns/bad");
    assert_eq!(res.problems[0].field, "spec.clusterIPs[0]");
}

// ---------------------------------------------------------------- Pods, Egress, families

#[test]
fn pod_cidrs_only_when_advertised() {
    let nodes = vec![dual("n1", 1)];
    let with = resolve(&Snapshot {
        policies: vec![policy("p").select("bgp", "on").pod().build()],
        nodes: nodes.clone(),
        ..Snapshot::default()
    });
    assert_eq!(prefixes(&with, "n1"), ["10.244.1.0/24", "fd00:244:1::/64"]);
    assert_eq!(sources(&with, "n1", "10.244.1.0/24"), ["PodCIDR"]);
    let without = resolve(&Snapshot {
        policies: vec![policy("p").select("bgp", "on").build()],
        nodes,
        ..Snapshot::default()
    });
    assert!(prefixes(&without, "n1").is_empty());
}

#[test]
fn egress_ips_only_on_their_node_and_only_when_advertised() {
    let egresses = vec![
        Egress::assigned("e1", "n1", "192.0.2.50"),
        Egress::assigned("e2", "n2", "192.0.2.51"),
        Egress {
            metadata: Egress::assigned("pending", "", "").metadata,
            status: None,
        },
    ];
    let s = Snapshot {
        policies: vec![policy("p").select("bgp", "on").egress().build()],
        nodes: vec![dual("n1", 1), dual("n2", 2)],
        egresses: egresses.clone(),
        ..Snapshot::default()
    };
    let res = resolve(&s);
    assert_eq!(prefixes(&res, "n1"), ["192.0.2.50/32"]);
    assert_eq!(prefixes(&res, "n2"), ["192.0.2.51/32"]);
    assert_eq!(sources(&res, "n1", "192.0.2.50/32"), ["Egress e1"]);
    let off = resolve(&Snapshot {
        policies: vec![policy("p").select("bgp", "on").build()],
        ..s
    });
    assert!(prefixes(&off, "n1").is_empty());
}

#[test]
fn families_follow_the_nodes_internal_ips() {
    let s = Snapshot {
        policies: vec![
            all_types()
                .pod()
                .peer("192.0.2.1", 65000)
                .peer("2001:db8::1", 65000)
                .build(),
        ],
        nodes: vec![
            node("v4")
                .label("bgp", "on")
                .ipv4("10.0.0.1")
                .pod_cidr("10.244.1.0/24")
                .pod_cidr("fd00:1::/64")
                .build(),
            node("v6")
                .label("bgp", "on")
                .ipv6("fd00::2")
                .pod_cidr("fd00:2::/64")
                .build(),
        ],
        services: vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10", "fd00:96::a"])
                .build(),
        ],
        ..Snapshot::default()
    };
    let res = resolve(&s);
    assert_eq!(prefixes(&res, "v4"), ["10.96.0.10/32", "10.244.1.0/24"]);
    assert_eq!(prefixes(&res, "v6"), ["fd00:2::/64", "fd00:96::a/128"]);
    let v4 = &res.nodes["v4"];
    assert_eq!(v4.intent.next_hops.ipv4.unwrap().to_string(), "10.0.0.1");
    assert!(v4.intent.next_hops.ipv6.is_none());
    for (key, peer) in &v4.intent.peers {
        assert_eq!(peer.families, [Family::Ipv4]);
        let expect = if key.address.is_ipv4() {
            Some("10.0.0.1".parse().unwrap())
        } else {
            None
        };
        assert_eq!(peer.local_address, expect, "{key}");
    }
    assert!(
        v4.report.notes.iter().any(|n| n.contains("fd00:1::/64")),
        "{:?}",
        v4.report.notes
    );
    assert_eq!(res.unannounced_shared("v4"), BTreeMap::from([(Family::Ipv6, 1)]));
    assert_eq!(
        res.nodes["v6"].intent.peers.values().next().unwrap().families,
        [Family::Ipv6]
    );
}

#[test]
fn every_prefix_has_a_source() {
    let res = service_case(
        vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10"])
                .external_ips(&["198.51.100.1"])
                .build(),
        ],
        vec![],
    );
    for n in res.nodes.keys() {
        let intent = res.logical_intent(n).unwrap();
        assert!(!intent.prefixes.is_empty());
        assert!(intent.prefixes.values().all(|s| !s.is_empty()));
    }
    assert!(matches!(
        res.logical_intent("n1")
            .unwrap()
            .prefixes
            .values()
            .next()
            .unwrap()
            .first(),
        Some(Source::Service {
            ip_type: ServiceIpType::ClusterIP,
            ..
        })
    ));
}

// ---------------------------------------------------------------- incremental

#[test]
fn set_service_equals_full_recompute() {
    let svc_v1 = service("ns", "web")
        .cluster_ips(&["10.96.0.10"])
        .itp_local()
        .build();
    let svc_v2 = service("ns", "web")
        .cluster_ips(&["10.96.0.10"])
        .external_ips(&["198.51.100.1"])
        .build();
    let slices = vec![
        slice("ns", "web", "w", "IPv4")
            .endpoint("10.244.1.5", Some("n1"), READY)
            .build(),
    ];
    let before = service_case(vec![svc_v1], slices.clone());
    let after = service_case(vec![svc_v2.clone()], slices.clone());
    let mut patched = before.clone();
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let change = patched.set_service(
        ServiceKey::new("ns", "web"),
        Some(service_routes(&svc_v2, &refs, &mut vec![])),
    );
    assert_eq!(patched, after);
    assert_eq!(change.nodes.iter().collect::<Vec<_>>(), ["n1"]);
    assert_eq!(change.shared_families.iter().collect::<Vec<_>>(), [&Family::Ipv4]);
    let mut removed = after.clone();
    removed.set_service(ServiceKey::new("ns", "web"), None);
    assert_eq!(removed, service_case(vec![], slices));
}

// ---------------------------------------------------------------- explain

#[test]
fn explain_says_why() {
    let s = Snapshot {
        policies: vec![policy("p").select("bgp", "on").ip_types(&["ClusterIP"]).build()],
        nodes: vec![
            dual("n1", 1),
            dual("n2", 2),
            node("lonely").ipv4("10.0.0.9").build(),
        ],
        services: vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10"])
                .itp_local()
                .build(),
            service("ns", "api").cluster_ips(&["10.96.0.11"]).build(),
            service("ns", "lb")
                .cluster_ips(&["10.96.0.12"])
                .lb_ips(&["203.0.113.1"])
                .build(),
        ],
        endpoint_slices: vec![
            slice("ns", "web", "w", "IPv4")
                .endpoint("10.244.1.5", Some("n1"), READY)
                .endpoint("10.244.2.5", Some("n2"), TERMINATING_SERVING)
                .build(),
        ],
        ..Snapshot::default()
    };
    let res = resolve(&s);
    let ex = |node: &str, p: &str| explain::explain(&s, &res, node, p.parse().unwrap());
    let yes = ex("n1", "10.96.0.10");
    assert!(yes.announced);
    assert!(
        yes.to_string()
            .contains("Service ns/web (ClusterIP) — traffic policy Local"),
        "{yes}"
    );
    let no = ex("n2", "10.96.0.10/32");
    assert!(!no.announced);
    assert!(no.to_string().contains("internalTrafficPolicy: Local"), "{no}");
    assert!(no.to_string().contains("terminating=Some(true)"), "{no}");
    assert!(
        ex("n2", "10.96.0.11")
            .to_string()
            .contains("traffic policy Cluster")
    );
    assert!(
        ex("n1", "203.0.113.1")
            .to_string()
            .contains("does not list LoadBalancerIP")
    );
    assert!(
        ex("n1", "10.244.1.0/24")
            .to_string()
            .contains("does not set advertisements.pod")
    );
    assert!(
        ex("lonely", "10.96.0.11")
            .to_string()
            .contains("No BGPPolicy selects Node lonely")
    );
    assert!(ex("n1", "192.0.2.99").to_string().contains("No source"));
    assert!(ex("ghost", "192.0.2.99").to_string().contains("no Node named"));
}
