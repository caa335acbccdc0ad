//! Properties of the engine over random small clusters: order independence, idempotence,
//! every prefix has a source, no intent for an unselected Node, no password byte anywhere,
//! the incremental path (one Service, one Pod) equals a full recompute, and intent + sets
//! equals the logical list (prefixes and their path attributes, which every group holding a
//! prefix agrees on).

use std::collections::{BTreeMap, BTreeSet};

use bgpintent_controller::{
    cli::render_yaml,
    fixtures::*,
    intent::{PodKey, ServiceKey, Snapshot, pod_route, resolve, service_routes, slices_by_service},
    materialize::{Layout, diff, materialize},
};
use bgpintent_crd::convert::parse_prefix_groups;
use proptest::prelude::*;

const PASSWORD_MARK: &str = "Pw-7c1f";

#[derive(Debug, Clone)]
struct NodeGen {
    bgp: bool,
    zone: u8,
    v4: bool,
    v6: bool,
    annotated: bool,
}

#[derive(Debug, Clone)]
struct PolicyGen {
    created: i64,
    by_zone: Option<u8>,
    types: u8,
    pod: bool,
    egress: bool,
    invalid: bool,
    peers: u8,
    /// `pathAttributes`: communities and a MED.
    attrs: bool,
}

#[derive(Debug, Clone)]
struct ServiceGen {
    dual: bool,
    ext: bool,
    lb: bool,
    itp_local: bool,
    etp_local: bool,
    headless: bool,
    /// (node index, condition index, family v6)
    endpoints: Vec<(usize, u8, bool)>,
    /// Which `bgpintent.io/*` annotations (see `ANNOTATIONS`).
    annotations: u8,
}

/// Annotation sets a generated Service may carry; the last one is invalid.
const ANNOTATIONS: [&[(&str, &str)]; 5] = [
    &[],
    &[("bgpintent.io/communities", "64512:1, no-export")],
    &[("bgpintent.io/med", "10"), ("bgpintent.io/local-pref", "300")],
    &[
        ("bgpintent.io/communities", "64512:2"),
        ("bgpintent.io/large-communities", "64512:0:2"),
        ("bgpintent.io/med", "20"),
    ],
    &[("bgpintent.io/communities", "64512:3"), ("bgpintent.io/med", "x")],
];

/// A labelled Pod: node index, scope (0 cluster, 1 local, 2 another value), Ready, families.
#[derive(Debug, Clone)]
struct PodGen {
    node: usize,
    scope: u8,
    ready: bool,
    v4: bool,
    v6: bool,
}

fn pod_gen() -> impl Strategy<Value = PodGen> {
    (
        0usize..7,
        0u8..3,
        prop::bool::weighted(0.8),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(node, scope, ready, v4, v6)| PodGen {
            node,
            scope,
            ready,
            v4: v4 || !v6,
            v6,
        })
}

/// Pod `pod-i`; its IPs depend on `i % 3`, so Pods share IPs on purpose (and `variant`
/// gives a changed Pod other IPs).
fn build_pod(i: usize, g: &PodGen, nodes: usize, variant: usize) -> k8s_openapi::api::core::v1::Pod {
    let scope = ["cluster", "local", "elsewhere"][g.scope as usize];
    let mut ips = Vec::new();
    let n = i % 3 + 10 * variant;
    if g.v4 {
        ips.push(format!("198.51.100.{}", n + 1));
    }
    if g.v6 {
        ips.push(format!("2001:db8:244::{:x}", n + 1));
    }
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    pod("ns", &format!("pod-{i}"), scope)
        .on(&format!("n{}", g.node % nodes.max(1)))
        .ips(&ips)
        .ready(if g.ready { "True" } else { "False" })
        .build()
}

fn node_gen() -> impl Strategy<Value = NodeGen> {
    (any::<bool>(), 0u8..3, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(bgp, zone, v4, v6, annotated)| NodeGen {
            bgp,
            zone,
            v4: v4 || !v6,
            v6,
            annotated,
        },
    )
}

fn policy_gen() -> impl Strategy<Value = PolicyGen> {
    (
        0i64..4,
        proptest::option::of(0u8..3),
        0u8..8,
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
        0u8..3,
        any::<bool>(),
    )
        .prop_map(
            |(created, by_zone, types, pod, egress, invalid, peers, attrs)| PolicyGen {
                created,
                by_zone,
                types,
                pod,
                egress,
                invalid,
                peers,
                attrs,
            },
        )
}

fn service_gen() -> impl Strategy<Value = ServiceGen> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::collection::vec((0usize..6, 0u8..5, any::<bool>()), 0..4),
        0u8..ANNOTATIONS.len() as u8,
    )
        .prop_map(
            |(dual, ext, lb, itp_local, etp_local, headless, endpoints, annotations)| ServiceGen {
                dual,
                ext,
                lb,
                itp_local,
                etp_local,
                headless,
                endpoints,
                annotations,
            },
        )
}

const CONDS: [Cond; 5] = [
    READY,
    UNSET,
    NOT_READY,
    TERMINATING_SERVING,
    TERMINATING_NOT_SERVING,
];

fn build_service(
    i: usize,
    g: &ServiceGen,
    nodes: usize,
) -> (
    k8s_openapi::api::core::v1::Service,
    Vec<k8s_openapi::api::discovery::v1::EndpointSlice>,
) {
    let name = format!("svc-{i}");
    let mut b = service("ns", &name);
    let v4 = format!("10.96.0.{}", i + 1);
    let v6 = format!("fd00:96::{:x}", i + 1);
    b = if g.headless {
        b.headless()
    } else if g.dual {
        b.cluster_ips(&[&v4, &v6])
    } else {
        b.cluster_ips(&[&v4])
    };
    if g.ext {
        // Shared between Services on purpose: i % 3.
        b = b.external_ips(&[&format!("198.51.100.{}", i % 3)]);
    }
    if g.lb {
        b = b.lb_ips(&[
            &format!("203.0.113.{}", i + 1),
            &format!("2001:db8:100::{:x}", i + 1),
        ]);
    }
    if g.itp_local {
        b = b.itp_local();
    }
    if g.etp_local {
        b = b.etp_local();
    }
    for (k, v) in ANNOTATIONS[g.annotations as usize] {
        b = b.annotation(k, v);
    }
    let mut v4s = slice("ns", &name, &format!("{name}-v4"), "IPv4");
    let mut v6s = slice("ns", &name, &format!("{name}-v6"), "IPv6");
    for (j, (n, c, fam6)) in g.endpoints.iter().enumerate() {
        let node = format!("n{}", n % nodes.max(1));
        if *fam6 {
            v6s = v6s.endpoint(&format!("fd00:244::{j:x}"), Some(&node), CONDS[*c as usize]);
        } else {
            v4s = v4s.endpoint(&format!("10.244.0.{j}"), Some(&node), CONDS[*c as usize]);
        }
    }
    (b.build(), vec![v4s.build(), v6s.build()])
}

fn build(
    nodes: &[NodeGen],
    policies: &[PolicyGen],
    services: &[ServiceGen],
    egress_nodes: &[usize],
    pods: &[PodGen],
) -> Snapshot {
    let mut s = Snapshot::default();
    for (i, g) in nodes.iter().enumerate() {
        let mut b = node(&format!("n{i}")).label("zone", &format!("z{}", g.zone));
        if g.bgp {
            b = b.label("bgp", "on");
        }
        if g.v4 {
            b = b
                .ipv4(&format!("10.0.0.{}", i + 1))
                .pod_cidr(&format!("10.244.{i}.0/24"));
        }
        if g.v6 {
            b = b
                .ipv6(&format!("fd00::{:x}", i + 1))
                .pod_cidr(&format!("fd00:244:{i:x}::/64"));
        }
        if g.annotated {
            b = b.annotation("bgpintent.io/router-id", "192.0.2.200");
        }
        s.nodes.push(b.build());
    }
    let all = ["ClusterIP", "ExternalIP", "LoadBalancerIP"];
    for (i, g) in policies.iter().enumerate() {
        let mut b = policy(&format!("p{i}")).created(g.created);
        b = match g.by_zone {
            Some(z) => b.select("zone", &format!("z{z}")),
            None => b.select("bgp", "on"),
        };
        let types: Vec<&str> = (0..3)
            .filter(|t| g.types & (1 << t) != 0)
            .map(|t| all[t])
            .collect();
        if !types.is_empty() {
            b = b.ip_types(&types);
        }
        if g.pod {
            b = b.pod();
        }
        if g.egress {
            b = b.egress();
        }
        if g.invalid {
            b = b.asn(23456);
        }
        if g.attrs {
            b = b.communities(&["64512:100", "64512:1"]).med(50);
        }
        for p in 0..g.peers {
            b = if p == 0 {
                b.peer("192.0.2.1", 65000)
            } else {
                b.peer("2001:db8::1", 65001)
            };
        }
        s.policies.push(b.build());
    }
    for (i, g) in services.iter().enumerate() {
        let (svc, slices) = build_service(i, g, nodes.len());
        s.services.push(svc);
        s.endpoint_slices.extend(slices);
    }
    for (i, n) in egress_nodes.iter().enumerate() {
        s.egresses.push(Egress::assigned(
            &format!("e{i}"),
            &format!("n{}", n % nodes.len().max(1)),
            &format!("192.0.2.{}", 50 + i),
        ));
    }
    for (i, g) in pods.iter().enumerate() {
        s.pods.push(build_pod(i, g, nodes.len(), 0));
    }
    s.passwords = Some(secret(
        "bgp-passwords",
        "uid-secret",
        &[
            ("192.0.2.1-65000", &format!("{PASSWORD_MARK}-a")),
            ("2001:0db8::0001-65001", &format!("{PASSWORD_MARK}-b")),
        ],
    ));
    s
}

fn cluster() -> impl Strategy<Value = (Snapshot, Vec<ServiceGen>, usize, u64)> {
    (
        prop::collection::vec(node_gen(), 1..7),
        prop::collection::vec(policy_gen(), 1..4),
        prop::collection::vec(service_gen(), 0..8),
        prop::collection::vec(0usize..7, 0..3),
        any::<u64>(),
        prop::collection::vec(pod_gen(), 0..5),
    )
        .prop_map(|(n, p, s, e, seed, pods)| {
            let snap = build(&n, &p, &s, &e, &pods);
            (snap, s, n.len(), seed)
        })
}

fn shuffle<T>(v: &mut [T], seed: &mut u64) {
    for i in (1..v.len()).rev() {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (*seed >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
}

fn shuffled(s: &Snapshot, mut seed: u64) -> Snapshot {
    let mut t = s.clone();
    shuffle(&mut t.policies, &mut seed);
    shuffle(&mut t.nodes, &mut seed);
    shuffle(&mut t.services, &mut seed);
    shuffle(&mut t.endpoint_slices, &mut seed);
    shuffle(&mut t.egresses, &mut seed);
    shuffle(&mut t.pods, &mut seed);
    for slice in &mut t.endpoint_slices {
        shuffle(&mut slice.endpoints, &mut seed);
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn independent_of_input_order((s, _, _, seed) in cluster()) {
        let a = resolve(&s);
        let b = resolve(&shuffled(&s, seed));
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(materialize(&a, &Layout::default()), materialize(&b, &Layout::default()));
    }

    #[test]
    fn rerunning_is_idempotent((s, _, _, _) in cluster()) {
        let a = resolve(&s);
        prop_assert_eq!(&a, &resolve(&s));
        let m = materialize(&a, &Layout::default());
        let again = materialize(&a, &m.layout);
        prop_assert!(diff(&m, &again).is_empty());
        prop_assert_eq!(m, again);
    }

    #[test]
    fn every_prefix_has_a_source_and_only_selected_nodes_get_intents((s, _, _, _) in cluster()) {
        let res = resolve(&s);
        for node in res.nodes.keys() {
            let intent = res.logical_intent(node).unwrap();
            prop_assert!(intent.prefixes.values().all(|src| !src.is_empty()), "{node}");
            // Selected by the owning policy's selector, computed independently here.
            let labels = s.nodes.iter().find(|n| n.metadata.name.as_deref() == Some(node)).unwrap()
                .metadata.labels.clone().unwrap_or_default();
            let p = s.policies.iter().find(|p| p.metadata.name.as_deref() == Some(&intent.policy.name)).unwrap();
            let sel = p.spec.node_selector.match_labels.clone().unwrap_or_default();
            prop_assert!(sel.iter().all(|(k, v)| labels.get(k) == Some(v)), "{node} not selected by {}", intent.policy.name);
        }
        for n in &s.nodes {
            let name = n.metadata.name.clone().unwrap();
            let labels = n.metadata.labels.clone().unwrap_or_default();
            let selected = s.policies.iter().any(|p| p.spec.node_selector.match_labels.clone().unwrap_or_default()
                .iter().all(|(k, v)| labels.get(k) == Some(v)));
            if !selected {
                prop_assert!(!res.nodes.contains_key(&name) && !res.held.contains_key(&name));
                prop_assert!(!res.router_id_annotations.contains_key(&name));
            }
        }
    }

    #[test]
    fn no_password_material_anywhere((s, _, _, _) in cluster()) {
        let res = resolve(&s);
        let m = materialize(&res, &Layout::default());
        let everything = format!("{}\n{res:?}\n{m:?}\n{s:?}", render_yaml(&m));
        prop_assert!(!everything.contains(PASSWORD_MARK));
        // Nor its base64 (the mark is 7 bytes: check the aligned encodings of its prefix).
        for enc in ["UHctN2", "B3LTdj", "Qdy03Y"] {
            prop_assert!(!everything.contains(enc), "{enc}");
        }
    }

    #[test]
    fn intent_plus_sets_is_the_logical_list((s, _, _, _) in cluster()) {
        let res = resolve(&s);
        let m = materialize(&res, &Layout::default());
        for (node, obj) in &m.intents {
            // Every group the speaker reads, parsed as one list: the parser refuses a prefix
            // whose groups disagree on its attributes.
            let mut groups = obj.spec.prefixes.clone();
            for set in &obj.spec.sets {
                groups.extend(m.sets[set].spec.prefixes.iter().cloned());
            }
            let got = parse_prefix_groups("spec.prefixes", &groups).unwrap();
            let logical = res.logical_intent(node).unwrap();
            prop_assert_eq!(&got.prefixes, &logical.prefixes, "{}", node);
            prop_assert_eq!(&got.attributes, &logical.attributes, "{}", node);
        }
    }

    #[test]
    fn one_service_change_incrementally_equals_full_recompute(
        (s, gens, nodes, _) in cluster(),
        new in proptest::option::of(service_gen()),
        pick in any::<prop::sample::Index>(),
    ) {
        let before = resolve(&s);
        let mut mat = materialize(&before, &Layout::default());
        // Change (or delete, or add) one Service.
        let i = if gens.is_empty() { 0 } else { pick.index(gens.len() + 1) };
        let name = format!("svc-{i}");
        let mut after_snap = s.clone();
        after_snap.services.retain(|x| x.metadata.name.as_deref() != Some(&name));
        after_snap.endpoint_slices.retain(|x| x.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")) != Some(&name));
        if let Some(g) = &new {
            let (svc, slices) = build_service(i, g, nodes);
            after_snap.services.push(svc);
            after_snap.endpoint_slices.extend(slices);
        }
        let mut patched = before.clone();
        let routes = after_snap.services.iter().find(|x| x.metadata.name.as_deref() == Some(&name)).map(|svc| {
            let by = slices_by_service(&after_snap.endpoint_slices);
            let slices = by.get(&ServiceKey::new("ns", &name)).cloned().unwrap_or_default();
            service_routes(svc, &slices, &mut vec![])
        });
        let change = patched.set_service(ServiceKey::new("ns", &name), routes);
        let full = resolve(&after_snap);
        prop_assert_eq!(&patched.nodes, &full.nodes);
        prop_assert_eq!(&patched.services, &full.services);
        let touched = mat.apply_service_change(&patched, &change);
        let expected = materialize(&full, &mat.layout);
        prop_assert_eq!(&mat, &expected);
        if !touched.relayout {
            // O(1) objects: at most one shard per (policy, family) set for the Service and
            // for each Service sharing an IP with it, plus the Nodes whose Local routes or
            // attributes changed.
            let policies: BTreeSet<&String> = full.policies.keys().collect();
            prop_assert!(touched.sets.len() <= policies.len() * 2 * (1 + change.shared_others.len()));
            prop_assert!(touched.intents.iter().all(|n| change.nodes.contains(n)));
        }
    }

    #[test]
    fn one_pod_change_incrementally_equals_full_recompute(
        (s, _, nodes, _) in cluster(),
        new in proptest::option::of(pod_gen()),
        variant in 0usize..2,
        pick in any::<prop::sample::Index>(),
    ) {
        let before = resolve(&s);
        let mut mat = materialize(&before, &Layout::default());
        // Change (or delete, or add) one Pod.
        let i = pick.index(s.pods.len() + 1);
        let name = format!("pod-{i}");
        let mut after_snap = s.clone();
        after_snap.pods.retain(|p| p.metadata.name.as_deref() != Some(&name));
        if let Some(g) = &new {
            after_snap.pods.push(build_pod(i, g, nodes, variant));
        }
        let route = after_snap
            .pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(&name))
            .and_then(|p| pod_route(p, &mut vec![]).ok());
        let mut patched = before.clone();
        let change = patched.set_pod(PodKey::new("ns", &name), route);
        let full = resolve(&after_snap);
        prop_assert_eq!(&patched.nodes, &full.nodes);
        prop_assert_eq!(&patched.pods, &full.pods);
        let touched = mat.apply_pod_change(&patched, &change);
        let expected = materialize(&full, &mat.layout);
        prop_assert_eq!(&mat, &expected);
        if !touched.relayout {
            // At most one shard per (policy, family), and only the Pod's old and new Node.
            prop_assert!(touched.sets.len() <= full.policies.len() * 2);
            prop_assert!(touched.intents.len() <= 2);
            prop_assert!(touched.intents.iter().all(|n| change.nodes.contains(n)));
        }
    }
}

#[test]
fn set_shards_stay_bounded_and_a_change_touches_one_shard() {
    // 3,000 dual-stack Cluster Services on 3 Nodes: several shards per family.
    let mut s = Snapshot {
        policies: vec![policy("p").select("bgp", "on").ip_types(&["ClusterIP"]).build()],
        nodes: (0..3)
            .map(|i| {
                node(&format!("n{i}"))
                    .label("bgp", "on")
                    .ipv4(&format!("10.0.0.{i}"))
                    .ipv6(&format!("fd00::{i}"))
                    .build()
            })
            .collect(),
        ..Snapshot::default()
    };
    for i in 0..3000u32 {
        s.services.push(
            service("ns", &format!("s{i}"))
                .cluster_ips(&[
                    &format!("10.96.{}.{}", i / 250, i % 250),
                    &format!("fd00:96::{i:x}"),
                ])
                .build(),
        );
    }
    let res = resolve(&s);
    let mut m = materialize(&res, &Layout::default());
    let per_family: BTreeMap<_, _> = m.layout.shards.clone();
    assert!(per_family.values().all(|n| *n > 4), "{per_family:?}");
    assert!(
        m.sets.values().all(|set| set.bytes <= 16 * 1024),
        "largest {}",
        m.largest_object()
    );
    assert!(m.oversized.is_empty());
    let mut patched = res.clone();
    let svc = service("ns", "s7").cluster_ips(&["10.96.200.7"]).build();
    let change = patched.set_service(
        ServiceKey::new("ns", "s7"),
        Some(service_routes(&svc, &[], &mut vec![])),
    );
    let touched = m.apply_service_change(&patched, &change);
    assert!(!touched.relayout);
    assert_eq!(
        touched.sets.len(),
        2,
        "old IPv6 address gone from one v6 shard, v4 shard changed: {touched:?}"
    );
    assert!(touched.intents.is_empty());
}
