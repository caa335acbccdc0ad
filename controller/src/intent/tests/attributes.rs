//! Table tests of path attributes: the policy's, the Services' annotations, the merge rule,
//! invalid annotations, the community bound, and how they land in intents and sets.

use bgpintent_api::{Family, Prefix};
use bgpintent_crd::convert::parse_prefix_groups;

use super::{all_types, dual};
use crate::{
    fixtures::*,
    intent::*,
    materialize::{Layout, materialize},
};

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

/// Attributes of `prefix` on `node` (full logical list), as text.
fn attrs(res: &Resolution, node: &str, prefix: &str) -> String {
    let intent = res.logical_intent(node).unwrap();
    assert!(
        intent.prefixes.contains_key(&p(prefix)),
        "{prefix} not announced from {node}"
    );
    describe(&intent.attributes.get(&p(prefix)).cloned().unwrap_or_default())
}

fn case(policy: PolicyBuilder, services: Vec<Service>) -> (Snapshot, Resolution) {
    let s = Snapshot {
        policies: vec![policy.pod().egress().build()],
        nodes: vec![dual("n1", 1), dual("n2", 2)],
        services,
        egresses: vec![Egress::assigned("e1", "n1", "192.0.2.50")],
        endpoint_slices: vec![
            slice("ns", "local", "l", "IPv4")
                .endpoint("10.244.1.5", Some("n1"), READY)
                .build(),
        ],
        ..Snapshot::default()
    };
    let res = resolve(&s);
    (s, res)
}

const NONE: &str = "no path attributes beyond the defaults";

#[test]
fn policy_attributes_go_on_every_prefix_it_announces() {
    let policy = all_types()
        .communities(&["64512:100", "no-export"])
        .large_communities(&["64512:0:1"])
        .local_pref(150)
        .med(50);
    let (_, res) = case(
        policy,
        vec![
            service("ns", "web").cluster_ips(&["10.96.0.10"]).build(),
            service("ns", "local")
                .cluster_ips(&["10.96.0.11"])
                .itp_local()
                .build(),
        ],
    );
    let want = "communities 64512:100, no-export; large communities 64512:0:1; LOCAL_PREF 150 (iBGP peers only); MED 50";
    for prefix in [
        "10.96.0.10/32",
        "10.96.0.11/32",
        "10.244.1.0/24",
        "fd00:244:1::/64",
        "192.0.2.50/32",
    ] {
        assert_eq!(attrs(&res, "n1", prefix), want, "{prefix}");
    }
    // Node-local prefixes carry them in the intent itself; shared ones only in the sets.
    let own = &res.nodes["n1"].intent;
    assert!(own.attributes.contains_key(&p("10.244.1.0/24")));
    assert!(own.attributes.contains_key(&p("10.96.0.11/32")));
    assert!(!own.attributes.contains_key(&p("10.96.0.10/32")));
    assert!(own.attributes.keys().all(|k| own.prefixes.contains_key(k)));
}

#[test]
fn no_attributes_means_empty_maps() {
    let (_, res) = case(
        all_types(),
        vec![service("ns", "web").cluster_ips(&["10.96.0.10"]).build()],
    );
    assert!(res.nodes.values().all(|n| n.intent.attributes.is_empty()));
    assert!(res.logical_intent("n1").unwrap().attributes.is_empty());
    assert_eq!(attrs(&res, "n1", "10.96.0.10/32"), NONE);
}

#[test]
fn service_annotations_come_before_the_policy() {
    let policy = all_types().communities(&["64512:100"]).local_pref(150).med(50);
    let (_, res) = case(
        policy,
        vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10"])
                .annotation(COMMUNITIES_ANNOTATION, "64512:1, no-export")
                .annotation(LARGE_COMMUNITIES_ANNOTATION, "64512:7:7")
                .annotation(MED_ANNOTATION, "10")
                .build(),
            service("ns", "other").cluster_ips(&["10.96.0.12"]).build(),
        ],
    );
    // Communities united; MED from the Service; LOCAL_PREF from the policy (the Service
    // sets none).
    assert_eq!(
        attrs(&res, "n1", "10.96.0.10/32"),
        "communities 64512:1, 64512:100, no-export; large communities 64512:7:7; LOCAL_PREF 150 (iBGP peers only); MED 10"
    );
    // Another Service's IP and the PodCIDR: the policy's only.
    let policy_only = "communities 64512:100; LOCAL_PREF 150 (iBGP peers only); MED 50";
    assert_eq!(attrs(&res, "n2", "10.96.0.12/32"), policy_only);
    assert_eq!(attrs(&res, "n2", "10.244.2.0/24"), policy_only);
}

#[test]
fn services_sharing_an_ip_merge_in_namespace_name_order() {
    let (_, res) = case(
        all_types(),
        vec![
            // Listed out of order on purpose: b/x sorts after a/y.
            service("b", "x")
                .cluster_ips(&["10.96.0.20"])
                .external_ips(&["198.51.100.1"])
                .annotation(COMMUNITIES_ANNOTATION, "1:1")
                .annotation(MED_ANNOTATION, "20")
                .annotation(LOCAL_PREF_ANNOTATION, "300")
                .build(),
            service("a", "y")
                .cluster_ips(&["10.96.0.21"])
                .external_ips(&["198.51.100.1"])
                .annotation(COMMUNITIES_ANNOTATION, "2:2")
                .annotation(MED_ANNOTATION, "30")
                .build(),
        ],
    );
    assert_eq!(
        attrs(&res, "n1", "198.51.100.1/32"),
        "communities 1:1, 2:2; LOCAL_PREF 300 (iBGP peers only); MED 30"
    );
    // Each Service's own IP carries only its own.
    assert_eq!(
        attrs(&res, "n1", "10.96.0.20/32"),
        "communities 1:1; LOCAL_PREF 300 (iBGP peers only); MED 20"
    );
    assert_eq!(attrs(&res, "n1", "10.96.0.21/32"), "communities 2:2; MED 30");
}

#[test]
fn only_services_of_announced_ip_types_contribute() {
    // The same address is one Service's ClusterIP and another's external IP; the policy
    // announces ClusterIPs only, so the second Service's communities do not apply.
    let s = Snapshot {
        policies: vec![policy("p").select("bgp", "on").ip_types(&["ClusterIP"]).build()],
        nodes: vec![dual("n1", 1)],
        services: vec![
            service("ns", "a").cluster_ips(&["10.96.0.30"]).build(),
            service("ns", "b")
                .external_ips(&["10.96.0.30"])
                .annotation(COMMUNITIES_ANNOTATION, "9:9")
                .build(),
        ],
        ..Snapshot::default()
    };
    let res = resolve(&s);
    assert_eq!(attrs(&res, "n1", "10.96.0.30/32"), NONE);
}

#[test]
fn an_invalid_annotation_voids_the_services_attributes_and_is_reported() {
    let (s, res) = case(
        all_types().communities(&["64512:100"]),
        vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10"])
                .annotation(COMMUNITIES_ANNOTATION, "64512:1")
                .annotation(MED_ANNOTATION, "ten")
                .build(),
        ],
    );
    // Still announced, with the policy's attributes only (not the valid communities).
    assert_eq!(attrs(&res, "n1", "10.96.0.10/32"), "communities 64512:100");
    let problem = res
        .problems
        .iter()
        .find(|p| p.object == "Service ns/web")
        .expect("a problem");
    assert_eq!(problem.field, "metadata.annotations[bgpintent.io/med]");
    assert_eq!(
        problem.message,
        "metadata.annotations[bgpintent.io/med]: must be an integer between 0 and 4294967295 (got \"ten\"); \
         the Service's attributes are ignored"
    );
    let routes = &res.services[&ServiceKey::new("ns", "web")];
    assert_eq!(routes.invalid_annotations.len(), 1);
    let why = explain::explain(&s, &res, "n1", p("10.96.0.10")).to_string();
    assert!(why.contains("Sent with communities 64512:100."), "{why}");
    assert!(
        why.contains("from Service ns/web: its bgpintent.io annotations are ignored: metadata.annotations[bgpintent.io/med]"),
        "{why}"
    );
}

#[test]
fn annotation_values_are_parsed_strictly_but_spaced_freely() {
    let parse = |pairs: &[(&str, &str)]| {
        let mut b = service("ns", "s");
        for (k, v) in pairs {
            b = b.annotation(k, v);
        }
        let (a, errors) = service_attributes(&b.build());
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        (describe(&a), errors)
    };
    assert_eq!(
        parse(&[
            (COMMUNITIES_ANNOTATION, " 65000:1 ,NO-EXPORT,, blackhole "),
            (LARGE_COMMUNITIES_ANNOTATION, "4200000000:1:2"),
            (LOCAL_PREF_ANNOTATION, " 0 "),
            (MED_ANNOTATION, "4294967295"),
        ]),
        (
            "communities 65000:1, blackhole, no-export; large communities 4200000000:1:2; \
             LOCAL_PREF 0 (iBGP peers only); MED 4294967295"
                .to_owned(),
            vec![]
        )
    );
    // Unrelated annotations are ignored; an empty value sets nothing.
    assert_eq!(
        parse(&[("example.com/x", "y"), (COMMUNITIES_ANNOTATION, "")]),
        (NONE.to_owned(), vec![])
    );
    let (shown, errors) = parse(&[
        (COMMUNITIES_ANNOTATION, "1:1, 65536:1"),
        (LARGE_COMMUNITIES_ANNOTATION, "1:2"),
        (LOCAL_PREF_ANNOTATION, "-1"),
        (MED_ANNOTATION, "4294967296"),
    ]);
    assert_eq!(shown, NONE, "nothing of an invalid Service applies");
    let rule = bgpintent_api::Community::rule();
    assert_eq!(
        errors,
        [
            format!("metadata.annotations[bgpintent.io/communities]: {rule} (got \"65536:1\")"),
            "metadata.annotations[bgpintent.io/large-communities]: must be <uint32>:<uint32>:<uint32> (got \"1:2\")"
                .to_owned(),
            "metadata.annotations[bgpintent.io/local-pref]: must be an integer between 0 and 4294967295 (got \"-1\")"
                .to_owned(),
            "metadata.annotations[bgpintent.io/med]: must be an integer between 0 and 4294967295 (got \"4294967296\")"
                .to_owned(),
        ]
    );
    let many: Vec<String> = (0..33).map(|i| format!("1:{i}")).collect();
    let (_, errors) = parse(&[(COMMUNITIES_ANNOTATION, &many.join(","))]);
    assert_eq!(
        errors,
        ["metadata.annotations[bgpintent.io/communities]: must list at most 32 values (got 33)"]
    );
}

#[test]
fn merged_communities_are_bounded_most_specific_first() {
    let service_side: Vec<String> = (0..20).map(|i| format!("1:{i}")).collect();
    let policy_side: Vec<String> = (0..20).map(|i| format!("2:{i}")).collect();
    let policy_refs: Vec<&str> = policy_side.iter().map(String::as_str).collect();
    let (_, res) = case(
        all_types().communities(&policy_refs),
        vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10"])
                .annotation(COMMUNITIES_ANNOTATION, &service_side.join(","))
                .build(),
        ],
    );
    let intent = res.logical_intent("n1").unwrap();
    let a = &intent.attributes[&p("10.96.0.10/32")];
    assert_eq!(a.communities.len(), 32);
    // All 20 of the Service's, then the policy's lowest 12.
    assert!(a.communities.iter().filter(|c| c.0 >> 16 == 1).count() == 20);
    assert_eq!(a.communities.iter().filter(|c| c.0 >> 16 == 2).count(), 12);
    let problem = res
        .problems
        .iter()
        .find(|p| p.object == "BGPPolicy p")
        .expect("the truncation is reported");
    assert!(
        problem.message.starts_with("10.96.0.10/32 has more than 32"),
        "{problem}"
    );
    // The PodCIDR (policy only, 20 communities) is untouched.
    assert_eq!(intent.attributes[&p("10.244.1.0/24")].communities.len(), 20);
}

#[test]
fn local_pref_is_carried_whatever_the_peers_the_speaker_decides() {
    // The policy peers over eBGP only; LOCAL_PREF still reaches the intent, and the
    // speaker leaves it out for eBGP sessions (node-speaker FSM scenario 19).
    let (_, res) = case(all_types().peer("192.0.2.1", 65000).local_pref(200), vec![]);
    let intent = &res.nodes["n1"].intent;
    assert!(intent.peers.keys().all(|k| k.asn != intent.local_asn));
    assert_eq!(intent.attributes[&p("10.244.1.0/24")].local_pref, Some(200));
}

#[test]
fn sets_and_intents_carry_the_same_merged_attributes() {
    // One IP announced Cluster-wide by `a` (a set) and Local on n1 by `local` (n1's intent).
    let (_, res) = case(
        all_types().med(50),
        vec![
            service("ns", "a")
                .cluster_ips(&["10.96.0.40"])
                .lb_ips(&["203.0.113.7"])
                .annotation(COMMUNITIES_ANNOTATION, "1:1")
                .build(),
            service("ns", "local")
                .cluster_ips(&["10.96.0.11"])
                .lb_ips(&["203.0.113.7"])
                .etp_local()
                .annotation(COMMUNITIES_ANNOTATION, "2:2")
                .build(),
        ],
    );
    let m = materialize(&res, &Layout::default());
    let n1 = &m.intents["n1"].spec;
    let mut groups = n1.prefixes.clone();
    for set in &n1.sets {
        groups.extend(m.sets[set].spec.prefixes.iter().cloned());
    }
    // Parsing every group together checks that they agree on each prefix.
    let table = parse_prefix_groups("all", &groups).unwrap();
    let logical = res.logical_intent("n1").unwrap();
    assert_eq!(table.prefixes, logical.prefixes);
    assert_eq!(table.attributes, logical.attributes);
    assert_eq!(
        describe(&table.attributes[&p("203.0.113.7/32")]),
        "communities 1:1, 2:2; MED 50"
    );
}

#[test]
fn an_attribute_change_rewrites_one_shard_per_family_and_no_intent() {
    let (s, res) = case(
        all_types(),
        (0..200)
            .map(|i| {
                service("ns", &format!("s{i}"))
                    .cluster_ips(&[&format!("10.96.1.{i}"), &format!("fd00:96::{i:x}")])
                    .build()
            })
            .collect(),
    );
    let mut m = materialize(&res, &Layout::default());
    assert!(m.layout.shards.values().all(|n| *n > 1), "{:?}", m.layout);
    let mut patched = res.clone();
    let svc = service("ns", "s7")
        .cluster_ips(&["10.96.1.7", "fd00:96::7"])
        .annotation(COMMUNITIES_ANNOTATION, "64512:7")
        .build();
    let change = patched.set_service(
        ServiceKey::new("ns", "s7"),
        Some(service_routes(&svc, &[], &mut vec![])),
    );
    assert_eq!(change.shared_families, [Family::Ipv4, Family::Ipv6].into());
    assert!(change.shared_others.is_empty() && change.nodes.is_empty());
    let touched = m.apply_service_change(&patched, &change);
    assert_eq!(touched.sets.len(), 2, "{touched:?}");
    assert!(touched.intents.is_empty());
    // And it is what a full recomputation gives.
    let mut after = s.clone();
    after.services[7] = svc;
    let full = resolve(&after);
    assert_eq!(patched, full);
    assert_eq!(m, materialize(&full, &m.layout));
}

#[test]
fn a_change_reaches_other_services_shards_and_nodes_sharing_the_ip() {
    // `a` and `b` (both Cluster, in different shards) and `l` (Local on n1) share an LB IP,
    // which is also n2's Egress IP. 200 filler Services make several shards.
    let filler: Vec<Service> = (0..200)
        .map(|i| {
            service("fill", &format!("s{i}"))
                .cluster_ips(&[&format!("10.96.1.{i}")])
                .build()
        })
        .collect();
    let count = {
        let s = Snapshot {
            policies: vec![all_types().build()],
            nodes: vec![dual("n1", 1)],
            services: filler.clone(),
            ..Snapshot::default()
        };
        materialize(&resolve(&s), &Layout::default()).layout.shards[&("p".to_owned(), Family::Ipv4)]
    };
    assert!(count > 1);
    let shard = |name: &str| ServiceKey::new("ns", name).shard_hash() % count;
    let b = (0..100)
        .map(|i| format!("b{i}"))
        .find(|b| shard(b) != shard("a"))
        .unwrap();
    let base = |a_communities: &str| Snapshot {
        policies: vec![all_types().egress().build()],
        nodes: vec![dual("n1", 1), dual("n2", 2)],
        services: [
            service("ns", "a")
                .lb_ips(&["203.0.113.9"])
                .annotation(COMMUNITIES_ANNOTATION, a_communities)
                .build(),
            service("ns", &b).lb_ips(&["203.0.113.9"]).build(),
            service("ns", "l").lb_ips(&["203.0.113.9"]).etp_local().build(),
        ]
        .into_iter()
        .chain(filler.clone())
        .collect(),
        endpoint_slices: vec![
            slice("ns", "l", "l", "IPv4")
                .endpoint("10.244.1.9", Some("n1"), READY)
                .build(),
        ],
        egresses: vec![Egress::assigned("e", "n2", "203.0.113.9")],
        ..Snapshot::default()
    };
    let before = base("1:1");
    let after = base("1:2");
    let res = resolve(&before);
    let prefix = p("203.0.113.9/32");
    assert_eq!(
        describe(&res.nodes["n1"].intent.attributes[&prefix]),
        "communities 1:1"
    );
    assert_eq!(
        describe(&res.nodes["n2"].intent.attributes[&prefix]),
        "communities 1:1"
    );
    let mut m = materialize(&res, &Layout::default());
    assert_eq!(m.layout.shards[&("p".to_owned(), Family::Ipv4)], count);
    let mut patched = res.clone();
    let a = &after.services[0];
    let change = patched.set_service(ServiceKey::of(a), Some(service_routes(a, &[], &mut vec![])));
    let full = resolve(&after);
    assert_eq!(patched, full);
    assert_eq!(change.nodes, ["n1".to_owned(), "n2".to_owned()].into());
    assert_eq!(
        change.shared_others.keys().collect::<Vec<_>>(),
        [&ServiceKey::new("ns", &b)]
    );
    let touched = m.apply_service_change(&patched, &change);
    assert_eq!(touched.sets.len(), 2, "a's shard and b's: {touched:?}");
    assert_eq!(m, materialize(&full, &m.layout));
    assert_eq!(
        describe(&full.nodes["n2"].intent.attributes[&prefix]),
        "communities 1:2"
    );
}

#[test]
fn labelled_pods_carry_the_attributes_of_their_ip() {
    // A `local` Pod on n1 and a `cluster` Pod on n2; one IP of each is also an LB IP of `a`,
    // whose annotation then changes. The Pods' IPs carry the policy's attributes, the
    // shared ones `a`'s first, and the change reaches n1's intent and the cluster Pod's
    // shard without a full recomputation.
    let base = |communities: &str| Snapshot {
        policies: vec![all_types().pod().med(50).build()],
        nodes: vec![dual("n1", 1), dual("n2", 2)],
        services: vec![
            service("ns", "a")
                .lb_ips(&["198.51.100.7", "198.51.100.8"])
                .annotation(COMMUNITIES_ANNOTATION, communities)
                .build(),
        ],
        pods: vec![
            pod("ns", "solo", "local").on("n1").ips(&["198.51.100.7"]).build(),
            pod("ns", "gw", "cluster")
                .on("n2")
                .ips(&["198.51.100.8", "198.51.100.9"])
                .build(),
        ],
        ..Snapshot::default()
    };
    let res = resolve(&base("1:1"));
    assert_eq!(
        describe(&res.nodes["n1"].intent.attributes[&p("198.51.100.7/32")]),
        "communities 1:1; MED 50"
    );
    assert_eq!(attrs(&res, "n2", "198.51.100.8/32"), "communities 1:1; MED 50");
    assert_eq!(attrs(&res, "n2", "198.51.100.9/32"), "MED 50");
    let mut m = materialize(&res, &Layout::default());
    // The cluster Pod's shard holds one group per attribute set.
    let groups: Vec<_> = m
        .sets
        .values()
        .flat_map(|s| s.spec.prefixes.iter())
        .filter(|g| g.source.kind == bgpintent_crd::common::SourceKind::Pod)
        .collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(groups.iter().all(|g| g.attributes.is_some()));

    let after = base("1:2");
    let mut patched = res.clone();
    let a = &after.services[0];
    let change = patched.set_service(ServiceKey::of(a), Some(service_routes(a, &[], &mut vec![])));
    assert_eq!(change.nodes, ["n1".to_owned()].into());
    assert_eq!(
        change.shared_pods.keys().collect::<Vec<_>>(),
        [&PodKey::new("ns", "gw")]
    );
    let full = resolve(&after);
    assert_eq!(patched, full);
    m.apply_service_change(&patched, &change);
    assert_eq!(m, materialize(&full, &m.layout));
    // And a Pod going away takes its node-local attributes with it.
    let change = patched.set_pod(PodKey::new("ns", "solo"), None);
    assert_eq!(change.nodes, ["n1".to_owned()].into());
    let mut gone = after.clone();
    gone.pods.remove(0);
    assert_eq!(patched, resolve(&gone));
}

#[test]
fn explain_shows_what_a_prefix_is_sent_with_and_why() {
    let (s, res) = case(
        all_types().communities(&["64512:100"]).med(50),
        vec![
            service("ns", "web")
                .cluster_ips(&["10.96.0.10"])
                .annotation(MED_ANNOTATION, "10")
                .build(),
        ],
    );
    let why = explain::explain(&s, &res, "n2", p("10.96.0.10")).to_string();
    assert!(
        why.contains("Sent with communities 64512:100; MED 10.\n"),
        "{why}"
    );
    assert!(why.contains("  from Service ns/web: MED 10\n"), "{why}");
    assert!(
        why.contains("  from BGPPolicy p spec.pathAttributes: communities 64512:100; MED 50\n"),
        "{why}"
    );
    // A prepend (from the Node's annotation) is shown once, as a Node override: it applies
    // to every announcement of the Node, whatever the prefix.
    let mut prepended = s.clone();
    prepended.nodes[1]
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(AS_PATH_PREPEND_ANNOTATION.into(), r#"{"repeat": 3}"#.into());
    let why = explain::explain(&prepended, &resolve(&prepended), "n2", p("10.96.0.10")).to_string();
    assert!(
        why.contains("Node override: AS path prepended with 64512 × 3 on every announcement"),
        "{why}"
    );
    assert_eq!(why.matches("prepended").count(), 1, "{why}");
    let plain = Snapshot {
        policies: vec![all_types().pod().build()],
        ..s.clone()
    };
    let why = explain::explain(&plain, &resolve(&plain), "n2", p("10.244.2.0/24")).to_string();
    assert!(why.contains(&format!("Sent with {NONE}.\n")), "{why}");
}
