//! Table tests of per-Pod announcements (`bgpintent.io/advertise=cluster|local`): one rule
//! per test, Pod IPs from the documentation ranges.

use std::collections::{BTreeMap, BTreeSet};

use bgpintent_api::Family;
use k8s_openapi::api::core::v1::Pod;

use super::{dual, prefixes, sources};
use crate::{
    fixtures::*,
    intent::*,
    materialize::{Layout, diff, materialize},
};

/// Policy `p` (Pods advertised) owns n1, n2 (dual stack) and v4 (IPv4 only); `lonely` is in
/// no policy.
fn pod_case(pods: Vec<Pod>) -> Resolution {
    resolve(&snapshot(pods))
}

fn snapshot(pods: Vec<Pod>) -> Snapshot {
    Snapshot {
        policies: vec![policy("p").select("bgp", "on").pod().build()],
        nodes: vec![
            dual("n1", 1),
            dual("n2", 2),
            node("v4").label("bgp", "on").ipv4("10.0.0.4").build(),
            node("lonely").ipv4("10.0.0.9").build(),
        ],
        pods,
        ..Snapshot::default()
    }
}

fn announcers(res: &Resolution, prefix: &str) -> Vec<String> {
    res.nodes
        .keys()
        .filter(|n| prefixes(res, n).iter().any(|p| p == prefix))
        .cloned()
        .collect()
}

fn node_local(res: &Resolution, node: &str, prefix: &str) -> bool {
    res.nodes[node]
        .intent
        .prefixes
        .contains_key(&prefix.parse().unwrap())
}

#[test]
fn a_cluster_pod_is_announced_by_every_owned_node_from_the_shared_sets() {
    let res = pod_case(vec![
        pod("ns", "gw-0", "cluster")
            .on("n1")
            .ips(&["198.51.100.7"])
            .build(),
    ]);
    assert_eq!(announcers(&res, "198.51.100.7/32"), ["n1", "n2", "v4"]);
    assert_eq!(sources(&res, "n2", "198.51.100.7/32"), ["Pod ns/gw-0"]);
    // Shared, not node-local: it lives once, in the policy's sets.
    assert!(
        ["n1", "n2", "v4"]
            .iter()
            .all(|n| !node_local(&res, n, "198.51.100.7/32"))
    );
    let m = materialize(&res, &Layout::default());
    let set = &m.sets["p-ipv4-1-0"];
    assert_eq!(set.spec.prefixes.len(), 1);
    assert_eq!(set.spec.prefixes[0].prefixes, ["198.51.100.7/32"]);
    assert!(m.intents["n2"].spec.sets.contains(&"p-ipv4-1-0".to_owned()));
}

#[test]
fn a_local_pod_is_announced_only_by_its_node() {
    let res = pod_case(vec![
        pod("ns", "db-0", "local").on("n2").ips(&["198.51.100.8"]).build(),
    ]);
    assert_eq!(announcers(&res, "198.51.100.8/32"), ["n2"]);
    assert!(node_local(&res, "n2", "198.51.100.8/32"));
    assert_eq!(sources(&res, "n2", "198.51.100.8/32"), ["Pod ns/db-0"]);
    // No cluster Pod and no Service IP type: the policy needs no sets at all.
    assert!(materialize(&res, &Layout::default()).sets.is_empty());
}

#[test]
fn only_running_ready_live_scheduled_pods_with_ips_are_announced() {
    let base = |scope: &str| pod("ns", "x", scope).on("n1").ips(&["198.51.100.9"]);
    for scope in ["cluster", "local"] {
        let cases: Vec<(&str, Pod, PodSkip)> = vec![
            (
                "not ready",
                base(scope).ready("False").build(),
                PodSkip::NotReady(Some("False".into())),
            ),
            (
                "readiness unknown",
                base(scope).ready("Unknown").build(),
                PodSkip::NotReady(Some("Unknown".into())),
            ),
            (
                "pending",
                base(scope).phase("Pending").build(),
                PodSkip::NotRunning(Some("Pending".into())),
            ),
            (
                "succeeded",
                base(scope).phase("Succeeded").build(),
                PodSkip::NotRunning(Some("Succeeded".into())),
            ),
            (
                "terminating",
                base(scope).terminating().build(),
                PodSkip::Terminating,
            ),
            (
                "no IPs yet",
                pod("ns", "x", scope).on("n1").build(),
                PodSkip::NoIps,
            ),
            (
                "not scheduled",
                pod("ns", "x", scope).ips(&["198.51.100.9"]).build(),
                PodSkip::NotScheduled,
            ),
        ];
        for (what, p, skip) in cases {
            assert_eq!(pod_route(&p, &mut vec![]), Err(skip), "{scope}: {what}");
            let res = pod_case(vec![p]);
            assert!(res.pods.is_empty(), "{scope}: {what}");
            assert!(announcers(&res, "198.51.100.9/32").is_empty(), "{scope}: {what}");
        }
        assert_eq!(
            announcers(&pod_case(vec![base(scope).build()]), "198.51.100.9/32"),
            ["n1", "n2", "v4"][..if scope == "cluster" { 3 } else { 1 }],
            "{scope}: the healthy Pod is announced"
        );
    }
}

#[test]
fn only_the_two_label_values_opt_in() {
    let mut unlabelled = pod("ns", "x", "local").on("n1").ips(&["198.51.100.9"]).build();
    unlabelled.metadata.labels = None;
    assert_eq!(pod_route(&unlabelled, &mut vec![]), Err(PodSkip::NotLabelled));
    let other = pod("ns", "x", "Local").on("n1").ips(&["198.51.100.9"]).build();
    assert_eq!(
        pod_route(&other, &mut vec![]),
        Err(PodSkip::UnknownScope("Local".into()))
    );
    assert!(pod_case(vec![unlabelled, other]).pods.is_empty());
}

#[test]
fn host_network_pods_are_skipped_with_a_problem() {
    let res = pod_case(vec![
        pod("kube-system", "agent", "local")
            .on("n1")
            .host_network()
            .ips(&["10.0.0.1"])
            .build(),
    ]);
    assert!(res.pods.is_empty());
    assert!(!node_local(&res, "n1", "10.0.0.1/32"));
    assert_eq!(res.problems.len(), 1, "{:?}", res.problems);
    assert_eq!(res.problems[0].object, "Pod kube-system/agent");
    assert_eq!(res.problems[0].field, "spec.hostNetwork");
}

#[test]
fn dual_stack_pods_announce_each_family_where_the_node_has_a_next_hop() {
    let res = pod_case(vec![
        pod("ns", "gw-0", "cluster")
            .on("n1")
            .ips(&["203.0.113.5", "2001:db8::5"])
            .build(),
        pod("ns", "db-0", "local")
            .on("v4")
            .ips(&["198.51.100.6", "2001:db8::6"])
            .build(),
        pod("ns", "db-1", "local")
            .on("n1")
            .ips(&["198.51.100.7", "2001:db8::7"])
            .build(),
    ]);
    assert_eq!(announcers(&res, "203.0.113.5/32"), ["n1", "n2", "v4"]);
    assert_eq!(announcers(&res, "2001:db8::5/128"), ["n1", "n2"]);
    assert_eq!(res.unannounced_shared("v4"), BTreeMap::from([(Family::Ipv6, 1)]));
    // A local Pod on an IPv4-only Node: its IPv6 address is announced nowhere.
    assert_eq!(announcers(&res, "198.51.100.6/32"), ["v4"]);
    assert!(announcers(&res, "2001:db8::6/128").is_empty());
    assert_eq!(announcers(&res, "198.51.100.7/32"), ["n1"]);
    assert_eq!(announcers(&res, "2001:db8::7/128"), ["n1"]);
    // The IPv6 shard exists for the dual-stack Nodes; the IPv4-only Node does not list it.
    let m = materialize(&res, &Layout::default());
    assert!(m.intents["v4"].spec.sets.iter().all(|s| s.contains("-ipv4-")));
    assert_eq!(m.intents["n1"].spec.sets.len(), 2);
}

#[test]
fn a_local_pod_on_a_node_no_policy_owns_is_announced_nowhere() {
    let s = snapshot(vec![
        pod("ns", "db-0", "local")
            .on("lonely")
            .ips(&["198.51.100.10"])
            .build(),
    ]);
    let res = resolve(&s);
    assert!(!res.nodes.contains_key("lonely"));
    assert!(announcers(&res, "198.51.100.10/32").is_empty());
    // The Pod itself is announceable; no Node takes it.
    assert!(res.pods.contains_key(&PodKey::new("ns", "db-0")));
    let ex = explain::explain(&s, &res, "n1", "198.51.100.10".parse().unwrap());
    assert!(!ex.announced);
    assert!(
        ex.to_string()
            .contains("no valid policy owns Node lonely, so the Pod is announced nowhere"),
        "{ex}"
    );
    let ex = explain::explain(&s, &res, "lonely", "198.51.100.10".parse().unwrap());
    assert!(
        ex.to_string().contains("No BGPPolicy selects Node lonely"),
        "{ex}"
    );
    assert!(ex.to_string().contains("announced nowhere"), "{ex}");
}

#[test]
fn a_policy_without_pod_advertisement_announces_no_pod() {
    // p (Pods) owns zone a; q (no Pods, ClusterIP) owns zone b.
    let node_in = |name: &str, zone: &str, i: u8| {
        node(name)
            .label("zone", zone)
            .ipv4(&format!("10.0.0.{i}"))
            .pod_cidr(&format!("10.244.{i}.0/24"))
            .build()
    };
    let res = resolve(&Snapshot {
        policies: vec![
            policy("p").select("zone", "a").pod().build(),
            policy("q").select("zone", "b").ip_types(&["ClusterIP"]).build(),
        ],
        nodes: vec![
            node_in("a1", "a", 1),
            node_in("b1", "b", 2),
            node_in("b2", "b", 3),
        ],
        pods: vec![
            pod("ns", "gw", "cluster").on("b1").ips(&["203.0.113.20"]).build(),
            pod("ns", "db", "local").on("b2").ips(&["198.51.100.20"]).build(),
        ],
        ..Snapshot::default()
    });
    assert_eq!(announcers(&res, "203.0.113.20/32"), ["a1"]);
    assert!(announcers(&res, "198.51.100.20/32").is_empty());
    assert!(!res.policies["q"].pods && res.policies["p"].pods);
    // q's set (it advertises ClusterIPs) holds no Pod.
    let m = materialize(&res, &Layout::default());
    assert!(m.sets["q-ipv4-1-0"].spec.prefixes.is_empty());
    assert_eq!(m.sets["p-ipv4-1-0"].spec.prefixes.len(), 1);
}

#[test]
fn pod_cidrs_stay_and_labelled_pods_add_host_routes() {
    let res = pod_case(vec![
        pod("ns", "db-0", "local").on("n1").ips(&["10.244.1.7"]).build(),
    ]);
    assert_eq!(sources(&res, "n1", "10.244.1.0/24"), ["PodCIDR"]);
    assert_eq!(sources(&res, "n1", "10.244.1.7/32"), ["Pod ns/db-0"]);
}

#[test]
fn pod_ip_falls_back_to_status_pod_ip_and_bad_ips_are_problems() {
    let mut p = pod("ns", "old", "local").on("n1").build();
    p.status.as_mut().unwrap().pod_ip = Some("198.51.100.30".into());
    let mut bad = pod("ns", "bad", "local")
        .on("n1")
        .ips(&["198.51.100.31", "not-an-ip"])
        .build();
    bad.status.as_mut().unwrap().pod_ip = None;
    let res = pod_case(vec![p, bad]);
    assert_eq!(announcers(&res, "198.51.100.30/32"), ["n1"]);
    assert_eq!(announcers(&res, "198.51.100.31/32"), ["n1"]);
    assert_eq!(res.problems.len(), 1, "{:?}", res.problems);
    assert_eq!(res.problems[0].field, "status.podIPs[1].ip");
}

// ---------------------------------------------------------------- changes

#[test]
fn a_local_pod_moved_to_another_node_moves_its_prefix_and_touches_two_intents() {
    let on = |n: &str| {
        pod("ns", "db-0", "local")
            .on(n)
            .ips(&["198.51.100.40", "2001:db8::40"])
            .build()
    };
    let before = pod_case(vec![on("n1")]);
    let after = pod_case(vec![on("n2")]);
    assert_eq!(announcers(&before, "198.51.100.40/32"), ["n1"]);
    assert_eq!(announcers(&after, "198.51.100.40/32"), ["n2"]);
    assert_eq!(announcers(&after, "2001:db8::40/128"), ["n2"]);

    let mut patched = before.clone();
    let mut mat = materialize(&before, &Layout::default());
    let change = patched.set_pod(
        PodKey::new("ns", "db-0"),
        Some(pod_route(&on("n2"), &mut vec![]).unwrap()),
    );
    assert_eq!(patched, after);
    assert_eq!(change.nodes, BTreeSet::from(["n1".into(), "n2".into()]));
    assert!(change.shared_families.is_empty() && !change.shared_layout);
    let touched = mat.apply_pod_change(&patched, &change);
    assert_eq!(touched.intents, ["n1", "n2"]);
    assert!(touched.sets.is_empty() && !touched.relayout);
    assert_eq!(mat, materialize(&after, &mat.layout));
}

#[test]
fn a_cluster_pod_ip_change_rewrites_one_shard_and_no_intent() {
    // With Services the policy has sets already; several shards so "one" means something.
    let mut s = snapshot(vec![
        pod("ns", "gw-0", "cluster")
            .on("n1")
            .ips(&["203.0.113.60"])
            .build(),
    ]);
    s.policies = vec![
        policy("p")
            .select("bgp", "on")
            .pod()
            .ip_types(&["ClusterIP"])
            .build(),
    ];
    for i in 0..600u32 {
        s.services.push(
            service("ns", &format!("s{i}"))
                .cluster_ips(&[&format!("10.96.{}.{}", i / 250, i % 250)])
                .build(),
        );
    }
    let before = resolve(&s);
    let mut mat = materialize(&before, &Layout::default());
    assert!(
        mat.layout.shards[&("p".to_owned(), Family::Ipv4)] > 1,
        "{:?}",
        mat.layout
    );
    let moved = pod("ns", "gw-0", "cluster")
        .on("n1")
        .ips(&["203.0.113.61"])
        .build();
    let mut patched = before.clone();
    let change = patched.set_pod(
        PodKey::new("ns", "gw-0"),
        Some(pod_route(&moved, &mut vec![]).unwrap()),
    );
    assert!(change.nodes.is_empty());
    assert_eq!(change.shared_families, BTreeSet::from([Family::Ipv4]));
    let touched = mat.apply_pod_change(&patched, &change);
    assert_eq!(touched.sets.len(), 1, "{touched:?}");
    assert!(touched.intents.is_empty());
    s.pods = vec![moved];
    assert_eq!(mat, materialize(&resolve(&s), &mat.layout));
}

#[test]
fn the_first_cluster_pod_gives_a_pod_only_policy_its_sets_and_the_last_takes_them() {
    let empty = pod_case(vec![]);
    let mut mat = materialize(&empty, &Layout::default());
    assert!(mat.sets.is_empty());
    let gw = pod("ns", "gw-0", "cluster")
        .on("n1")
        .ips(&["203.0.113.70"])
        .build();
    let mut res = empty.clone();
    let change = res.set_pod(
        PodKey::new("ns", "gw-0"),
        Some(pod_route(&gw, &mut vec![]).unwrap()),
    );
    assert!(change.shared_layout);
    let touched = mat.apply_pod_change(&res, &change);
    assert!(touched.relayout);
    assert_eq!(mat, materialize(&pod_case(vec![gw]), &mat.layout));
    assert!(!mat.sets.is_empty());
    // A second cluster Pod is an ordinary shard change.
    let gw1 = pod("ns", "gw-1", "cluster")
        .on("n2")
        .ips(&["203.0.113.71"])
        .build();
    let change = res.set_pod(
        PodKey::new("ns", "gw-1"),
        Some(pod_route(&gw1, &mut vec![]).unwrap()),
    );
    assert!(!change.shared_layout);
    assert!(!mat.apply_pod_change(&res, &change).relayout);
    // Removing both: the sets go again.
    let change = res.set_pod(PodKey::new("ns", "gw-1"), None);
    assert!(!change.shared_layout);
    mat.apply_pod_change(&res, &change);
    let change = res.set_pod(PodKey::new("ns", "gw-0"), None);
    assert!(change.shared_layout);
    mat.apply_pod_change(&res, &change);
    assert_eq!(res, empty);
    assert!(mat.sets.is_empty());
    assert!(diff(&materialize(&empty, &Layout::default()), &mat).is_empty());
}

// ---------------------------------------------------------------- explain

#[test]
fn explain_says_why_a_pod_ip_is_or_is_not_announced() {
    let mut s = snapshot(vec![
        pod("ns", "db-0", "local")
            .on("n1")
            .ips(&["198.51.100.80"])
            .build(),
        pod("ns", "gw-0", "cluster")
            .on("n1")
            .ips(&["203.0.113.80", "2001:db8::80"])
            .build(),
        pod("ns", "wait-0", "local")
            .on("n1")
            .ips(&["198.51.100.81"])
            .ready("False")
            .build(),
    ]);
    let mut plain = pod("ns", "plain", "local")
        .on("n1")
        .ips(&["198.51.100.82"])
        .build();
    plain.metadata.labels = None;
    s.pods.push(plain);
    let res = resolve(&s);
    let ex = |node: &str, p: &str| explain::explain(&s, &res, node, p.parse().unwrap());

    let yes = ex("n1", "198.51.100.80");
    assert!(yes.announced);
    assert!(
        yes.to_string()
            .contains("Source: Pod ns/db-0 — advertise=local: the Pod runs on this Node"),
        "{yes}"
    );
    let no = ex("n2", "198.51.100.80");
    assert!(!no.announced);
    assert!(
        no.to_string()
            .contains("a local Pod is announced only by its own Node; only Node n1 announces it"),
        "{no}"
    );
    assert!(
        ex("n2", "203.0.113.80")
            .to_string()
            .contains("advertise=cluster: announced by every Node of the policy")
    );
    let v6 = ex("v4", "2001:db8::80");
    assert!(!v6.announced);
    assert!(v6.to_string().contains("lack of a IPv6 next hop"), "{v6}");
    let wait = ex("n1", "198.51.100.81");
    assert!(
        wait.to_string()
            .contains("Pod ns/wait-0, which is not announced: its Ready condition is False, not True"),
        "{wait}"
    );
    let plain = ex("n1", "198.51.100.82");
    assert!(
        plain
            .to_string()
            .contains("it has no bgpintent.io/advertise label"),
        "{plain}"
    );

    // The same cluster without Pod advertisement.
    s.policies = vec![policy("p").select("bgp", "on").build()];
    let res = resolve(&s);
    let off = explain::explain(&s, &res, "n1", "198.51.100.80".parse().unwrap());
    assert!(
        off.to_string().contains("but p does not set advertisements.pod"),
        "{off}"
    );
}
