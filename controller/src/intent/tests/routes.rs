//! Table tests of announcements: Services, Pods, Egress, families, incremental updates,
//! explain.

use std::collections::BTreeMap;

use bgpintent_api::{Family, ServiceIpType, Source};

use super::{all_types, dual, prefixes, sources};
use crate::{fixtures::*, intent::*};

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
