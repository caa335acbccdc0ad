//! The controller end to end against the fake API server over real HTTP: informers, leader
//! election, server-side applies, status and Events. Each test counts the writes the
//! controller sent (the fake records every write request and whether it changed anything).

use std::time::Duration;

use bgpintent_controller::{
    app::{self, Running},
    cli::manifests,
    intent::{self, Snapshot},
    lease::LeaseConfig,
    materialize,
    reconcile::Settings,
};
use fake_apiserver::{FakeApiServer, WriteRecord};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

const INTENT: (&str, &str) = ("bgpintent.io/v1alpha1", "BGPNodeIntent");
const SET: (&str, &str) = ("bgpintent.io/v1alpha1", "BGPAdvertisementSet");
const POLICY: (&str, &str) = ("bgpintent.io/v1alpha1", "BGPPolicy");

/// The sample cluster of docs/examples/cluster in a fresh fake API server.
async fn cluster() -> FakeApiServer {
    let mut types = fake_apiserver::default_types();
    types.push(fake_apiserver::antrea_egress_type());
    let server = FakeApiServer::start_with(types).await;
    for manifest in manifests::sample() {
        let docs: Vec<Value> = serde_saphyr::from_multiple(&manifest.text).unwrap();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            server.put(doc);
        }
    }
    server
}

fn replica(server: &FakeApiServer, identity: &str) -> Running {
    let lease = LeaseConfig {
        name: "bgp-intent-controller".into(),
        namespace: "bgp-intent".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_secs(1),
        retry_period: Duration::from_millis(200),
    };
    let settings = Settings {
        namespace: "bgp-intent".into(),
        passwords_secret: "bgp-passwords".into(),
        debounce: Duration::from_millis(50),
        retry: Duration::from_millis(500),
    };
    app::start(
        server.client_as(identity),
        lease,
        settings,
        &mut Registry::default(),
    )
}

fn writes_to(server: &FakeApiServer, what: &str) -> Vec<WriteRecord> {
    server
        .writes()
        .into_iter()
        .filter(|w| w.persisted && w.path.contains(what))
        .collect()
}

/// Waits until the controller wrote something and then nothing for a while.
async fn settle(server: &FakeApiServer) {
    let mut last = usize::MAX;
    let mut quiet = 0;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Lease renewals are writes too; they never stop.
        let n = server
            .writes()
            .iter()
            .filter(|w| !w.path.contains("/leases"))
            .count();
        if n == last && n > 0 {
            quiet += 1;
            if quiet >= 8 {
                return;
            }
        } else {
            quiet = 0;
        }
        last = n;
    }
    panic!("the controller did not settle: {last} writes");
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn typed<T: serde::de::DeserializeOwned>(server: &FakeApiServer, api: &str, kind: &str) -> Vec<T> {
    server
        .list(api, kind)
        .into_iter()
        .map(|o| serde_json::from_value(o).unwrap())
        .collect()
}

/// What the engine computes offline from the objects the fake holds now.
fn offline(server: &FakeApiServer) -> materialize::Materialized {
    let snapshot = Snapshot {
        policies: typed(server, POLICY.0, POLICY.1),
        nodes: typed(server, "v1", "Node"),
        services: typed(server, "v1", "Service"),
        endpoint_slices: typed(server, "discovery.k8s.io/v1", "EndpointSlice"),
        egresses: typed(server, "crd.antrea.io/v1beta1", "Egress"),
        pods: typed(server, "v1", "Pod"),
        passwords: server
            .get("v1", "Secret", "bgp-intent", "bgp-passwords")
            .map(|s| serde_json::from_value(s).unwrap()),
        current_owners: Default::default(),
    };
    materialize::materialize(&intent::resolve(&snapshot), &Default::default())
}

fn condition(server: &FakeApiServer, policy: &str, ty: &str) -> Value {
    let p = server.get(POLICY.0, POLICY.1, "", policy).unwrap();
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == ty)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn intents_sets_annotations_and_status_appear_as_render_computes_them() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    let expected = offline(&server);
    let intents = server.list(INTENT.0, INTENT.1);
    assert_eq!(intents.len(), expected.intents.len());
    for (name, want) in &expected.intents {
        let got = server
            .get(INTENT.0, INTENT.1, "", name)
            .unwrap_or_else(|| panic!("no intent {name}"));
        assert_eq!(
            got["spec"],
            serde_json::to_value(&want.spec).unwrap(),
            "intent {name}"
        );
        assert_eq!(got["metadata"]["ownerReferences"][0]["kind"], "Node");
    }
    for (name, want) in &expected.sets {
        let got = server
            .get(SET.0, SET.1, "", name)
            .unwrap_or_else(|| panic!("no set {name}"));
        assert_eq!(
            got["spec"],
            serde_json::to_value(&want.spec).unwrap(),
            "set {name}"
        );
        assert_eq!(got["metadata"]["ownerReferences"][0]["kind"], "BGPPolicy");
    }
    // Router IDs were written to the Nodes that had no annotation.
    let node = server.get("v1", "Node", "", "worker-2").unwrap();
    assert!(node["metadata"]["annotations"]["bgpintent.io/router-id"].is_string());
    // Status: accepted, conflicted for the younger policy, counts.
    assert_eq!(condition(&server, "default", "Accepted")["status"], "True");
    assert_eq!(condition(&server, "edge", "Conflicted")["status"], "True");
    let edge = server.get(POLICY.0, POLICY.1, "", "edge").unwrap();
    assert_eq!(
        (
            edge["status"]["selectedNodes"].as_i64(),
            edge["status"]["effectiveNodes"].as_i64()
        ),
        (Some(2), Some(1))
    );
    // No speaker has reported yet: not Ready.
    assert_eq!(
        condition(&server, "default", "Ready")["reason"],
        "SessionsNotEstablished"
    );
    // Every write was a server-side apply under one field manager (deletes aside).
    for w in server.writes().iter().filter(|w| w.method == "PATCH") {
        assert_eq!(w.content_type, "application/apply-patch+yaml", "{}", w.path);
        assert!(
            w.query.contains("fieldManager=bgp-intent-controller") && w.query.contains("force=true"),
            "{}",
            w.query
        );
    }
    // Nothing in any generated object or status is a password.
    let all = serde_json::to_string(&(
        intents,
        server.list(SET.0, SET.1),
        server.list(POLICY.0, POLICY.1),
    ))
    .unwrap();
    assert!(!all.contains("example-only"), "a password leaked into an object");
    controller.stop().await;
}

#[tokio::test]
async fn one_service_change_rewrites_only_its_set() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    server.clear_writes();
    let mut svc = server.get("v1", "Service", "shop", "metrics").unwrap();
    svc["spec"]["externalIPs"] = json!(["203.0.113.99"]);
    server.put(svc);
    settle(&server).await;
    let writes: Vec<WriteRecord> = server
        .writes()
        .into_iter()
        .filter(|w| w.persisted && !w.path.contains("/leases"))
        .collect();
    let paths: Vec<&str> = writes.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(writes.len(), 1, "{paths:?}");
    assert!(
        paths[0].contains("/bgpadvertisementsets/default-ipv4-"),
        "{paths:?}"
    );
    let set: Value = serde_json::from_slice(&writes[0].body).unwrap();
    assert!(set.to_string().contains("203.0.113.99/32"));
    controller.stop().await;
}

#[tokio::test]
async fn a_service_attribute_change_rewrites_its_shards_and_a_bad_annotation_gets_an_event() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    server.clear_writes();
    // shop/web: a dual-stack ClusterIP with the Cluster policy, so in one shard per family.
    let mut svc = server.get("v1", "Service", "shop", "web").unwrap();
    svc["metadata"]["annotations"] = json!({"bgpintent.io/communities": "64512:80, no-export"});
    server.put(svc.clone());
    settle(&server).await;
    let writes: Vec<WriteRecord> = server
        .writes()
        .into_iter()
        .filter(|w| w.persisted && !w.path.contains("/leases") && !w.path.contains("/events"))
        .collect();
    let paths: Vec<&str> = writes.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(writes.len(), 2, "{paths:?}");
    assert!(
        paths.iter().all(|p| p.contains("/bgpadvertisementsets/default-")),
        "{paths:?}"
    );
    let set: Value = serde_json::from_slice(&writes[0].body).unwrap();
    // With the policy's community (the sample's `default` sets 64512:100).
    assert!(
        set.to_string()
            .contains(r#""communities":["64512:80","64512:100","no-export"]"#),
        "{set}"
    );

    // An invalid annotation: the Service's attributes go, a Warning Event says why.
    server.clear_writes();
    svc["metadata"]["annotations"] =
        json!({"bgpintent.io/communities": "64512:80", "bgpintent.io/med": "low"});
    server.put(svc);
    let events = || {
        server
            .list("events.k8s.io/v1", "Event")
            .into_iter()
            .filter(|e| e["reason"] == "InvalidAnnotation")
            .collect::<Vec<_>>()
    };
    wait_until("an InvalidAnnotation Event", || !events().is_empty()).await;
    settle(&server).await;
    let events = events();
    assert_eq!(events.len(), 1, "once per distinct problem: {events:?}");
    let e = &events[0];
    assert_eq!(e["type"], "Warning");
    assert_eq!(
        (
            &e["regarding"]["kind"],
            &e["regarding"]["namespace"],
            &e["regarding"]["name"]
        ),
        (&json!("Service"), &json!("shop"), &json!("web"))
    );
    let uid = server.get("v1", "Service", "shop", "web").unwrap()["metadata"]["uid"].clone();
    assert!(uid.is_string());
    assert_eq!(
        e["regarding"]["uid"], uid,
        "so `kubectl describe service` finds it"
    );
    assert!(
        e["note"].as_str().unwrap().starts_with(
            "metadata.annotations[bgpintent.io/med]: must be an integer between 0 and 4294967295 (got \"low\")"
        ),
        "{e}"
    );
    let sets = writes_to(&server, "/bgpadvertisementsets/");
    assert_eq!(sets.len(), 2, "the communities are gone again");
    assert!(!String::from_utf8_lossy(&sets[0].body).contains("64512:80"));
    assert!(writes_to(&server, "/bgpnodeintents/").is_empty());
    controller.stop().await;
}

#[tokio::test]
async fn a_node_that_leaves_the_policy_loses_its_intent_and_a_deleted_node_stays_gone() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    let mut node = server.get("v1", "Node", "", "worker-3").unwrap();
    node["metadata"]["labels"] = json!({});
    server.put(node);
    wait_until("worker-3's intent deleted", || {
        server.get(INTENT.0, INTENT.1, "", "worker-3").is_none()
    })
    .await;
    assert!(
        writes_to(&server, "/bgpnodeintents/worker-3")
            .iter()
            .any(|w| w.method == "DELETE")
    );
    server.delete("v1", "Node", "", "worker-2");
    settle(&server).await;
    assert!(server.get(INTENT.0, INTENT.1, "", "worker-2").is_none());
    controller.stop().await;
}

#[tokio::test]
async fn a_deleted_policy_takes_its_intents_and_sets_with_it() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    assert!(server.get(INTENT.0, INTENT.1, "", "edge-2").is_some());
    let edge_sets = |s: &FakeApiServer| {
        s.list(SET.0, SET.1)
            .into_iter()
            .filter(|o| o["spec"]["policy"] == "edge")
            .count()
    };
    assert!(edge_sets(&server) > 0);
    server.delete(POLICY.0, POLICY.1, "", "edge");
    wait_until("edge's objects gone", || {
        server.get(INTENT.0, INTENT.1, "", "edge-2").is_none() && edge_sets(&server) == 0
    })
    .await;
    settle(&server).await;
    assert!(
        server.get(INTENT.0, INTENT.1, "", "worker-1").is_some(),
        "the other policy is untouched"
    );
    controller.stop().await;
}

#[tokio::test]
async fn of_two_replicas_exactly_one_writes_and_a_successor_rewrites_nothing() {
    let server = cluster().await;
    let a = replica(&server, "a");
    let b = replica(&server, "b");
    settle(&server).await;
    let writers: std::collections::BTreeSet<String> = server
        .writes()
        .iter()
        .filter(|w| !w.path.contains("/leases") && !w.path.contains("/events"))
        .map(|w| w.client.clone())
        .collect();
    assert_eq!(writers.len(), 1, "writers: {writers:?}");
    let (leader, standby) = if writers.contains("a") { (a, b) } else { (b, a) };
    assert!(*standby.ready.borrow(), "the standby keeps warm caches");
    server.clear_writes();
    let crash = std::time::Instant::now();
    leader.abort();
    wait_until("the standby to lead", || *standby.leader.borrow()).await;
    let took = crash.elapsed();
    assert!(took <= Duration::from_secs(4), "took over after {took:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let persisted: Vec<String> = server
        .writes()
        .iter()
        .filter(|w| w.persisted && !w.path.contains("/leases") && !w.path.contains("/events"))
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    assert!(persisted.is_empty(), "the new leader rewrote {persisted:?}");
    standby.stop().await;
}

#[tokio::test]
async fn relist_after_expired_watches_and_an_api_restart_writes_nothing() {
    let mut server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    server.clear_writes();
    server.compact();
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let persisted: Vec<String> = server
        .writes()
        .iter()
        .filter(|w| w.persisted && !w.path.contains("/leases"))
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    assert!(persisted.is_empty(), "{persisted:?}");
    assert!(*controller.leader.borrow());
    controller.stop().await;
}

#[tokio::test]
async fn an_invalid_policy_gets_a_condition_and_an_event_and_others_are_untouched() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    let before = server.get(INTENT.0, INTENT.1, "", "worker-1").unwrap();
    let edge_before = server.get(INTENT.0, INTENT.1, "", "edge-2").unwrap();
    server.clear_writes();
    let mut edge = server.get(POLICY.0, POLICY.1, "", "edge").unwrap();
    edge["spec"]["bgpPeers"][0]["asn"] = json!(23456);
    server.put(edge);
    wait_until("Accepted=False", || {
        condition(&server, "edge", "Accepted")["status"] == "False"
    })
    .await;
    settle(&server).await;
    let accepted = condition(&server, "edge", "Accepted");
    assert_eq!(accepted["reason"], "InvalidSpec");
    assert!(
        accepted["message"]
            .as_str()
            .unwrap()
            .contains("spec.bgpPeers[0].asn"),
        "{accepted}"
    );
    let events = server.list("events.k8s.io/v1", "Event");
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "InvalidSpec" && e["regarding"]["name"] == "edge"),
        "no InvalidSpec Event: {events:?}"
    );
    // The other policy's intents did not change, and the invalid one keeps its last intent.
    assert_eq!(
        server.get(INTENT.0, INTENT.1, "", "worker-1").unwrap()["spec"],
        before["spec"]
    );
    assert_eq!(
        server.get(INTENT.0, INTENT.1, "", "edge-2").unwrap()["spec"],
        edge_before["spec"]
    );
    let intent_writes = writes_to(&server, "/bgpnodeintents/");
    assert!(
        intent_writes.is_empty(),
        "{:?}",
        intent_writes.iter().map(|w| &w.path).collect::<Vec<_>>()
    );
    controller.stop().await;
}

#[tokio::test]
async fn speaker_status_drives_policy_counts_and_ready() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    // Each speaker of policy `default` reports every session Established.
    for intent in server.list(INTENT.0, INTENT.1) {
        if intent["spec"]["policy"]["name"] != "default" {
            continue;
        }
        let peers: Vec<Value> = intent["spec"]["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| json!({"address": p["address"], "asn": p["asn"], "state": "Established"}))
            .collect();
        let mut with_status = intent.clone();
        with_status["status"] = json!({"observedGeneration": intent["metadata"]["generation"], "peers": peers,
            "established": peers.len()});
        server.put(with_status);
    }
    wait_until("Ready=True", || {
        condition(&server, "default", "Ready")["status"] == "True"
    })
    .await;
    let p = server.get(POLICY.0, POLICY.1, "", "default").unwrap();
    let peers = &p["status"]["peers"];
    assert_eq!(peers["established"], peers["total"]);
    assert!(peers["total"].as_i64().unwrap() > 0);
    controller.stop().await;
}

/// The prefixes of one source kind/name in an intent as the fake holds it.
fn pod_prefixes(server: &FakeApiServer, node: &str, pod: &str) -> Vec<String> {
    let Some(intent) = server.get(INTENT.0, INTENT.1, "", node) else {
        return Vec::new();
    };
    intent["spec"]["prefixes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["source"]["kind"] == "Pod" && g["source"]["name"] == pod)
        .flat_map(|g| g["prefixes"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect()
}

/// Persisted writes other than Lease renewals and Events, as "METHOD path".
fn object_writes(server: &FakeApiServer) -> Vec<String> {
    let mut w: Vec<String> = server
        .writes()
        .into_iter()
        .filter(|w| w.persisted && !w.path.contains("/leases") && !w.path.contains("/events"))
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    w.sort();
    w
}

#[tokio::test]
async fn a_local_pod_that_moves_rewrites_exactly_the_two_nodes_intents() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    assert_eq!(
        pod_prefixes(&server, "worker-1", "cache-0"),
        ["198.51.100.21/32", "2001:db8:21::21/128"]
    );
    assert!(pod_prefixes(&server, "worker-2", "cache-0").is_empty());
    server.clear_writes();
    // A StatefulSet Pod is deleted and recreated under its name on another Node, keeping its
    // IP from the pool.
    let mut pod = server.get("v1", "Pod", "shop", "cache-0").unwrap();
    assert!(server.delete("v1", "Pod", "shop", "cache-0"));
    for field in ["uid", "resourceVersion", "deletionTimestamp", "creationTimestamp"] {
        pod["metadata"].as_object_mut().unwrap().remove(field);
    }
    pod["spec"]["nodeName"] = json!("worker-2");
    server.put(pod);
    settle(&server).await;
    // Whether the delete and the create land in one pass or two, each intent is written once.
    assert_eq!(
        object_writes(&server),
        [
            "PATCH /apis/bgpintent.io/v1alpha1/bgpnodeintents/worker-1",
            "PATCH /apis/bgpintent.io/v1alpha1/bgpnodeintents/worker-2",
        ]
    );
    assert!(pod_prefixes(&server, "worker-1", "cache-0").is_empty());
    assert_eq!(
        pod_prefixes(&server, "worker-2", "cache-0"),
        ["198.51.100.21/32", "2001:db8:21::21/128"]
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_cluster_pod_ip_change_rewrites_one_set_and_a_removed_label_withdraws() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    server.clear_writes();
    let mut gw = server.get("v1", "Pod", "shop", "gateway-0").unwrap();
    gw["status"]["podIP"] = json!("203.0.113.51");
    gw["status"]["podIPs"] = json!([{"ip": "203.0.113.51"}, {"ip": "2001:db8:50::50"}]);
    server.put(gw);
    settle(&server).await;
    let writes = object_writes(&server);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(
        writes[0].starts_with("PATCH /apis/bgpintent.io/v1alpha1/bgpadvertisementsets/default-ipv4-"),
        "{writes:?}"
    );
    let sets = server
        .list(SET.0, SET.1)
        .into_iter()
        .map(|s| s.to_string())
        .collect::<String>();
    assert!(sets.contains("203.0.113.51/32") && !sets.contains("203.0.113.50/32"));

    // The label goes: the Pod leaves the controller's watch (a DELETED event for a
    // label-selector watch) and its Node withdraws it.
    server.clear_writes();
    let mut cache = server.get("v1", "Pod", "shop", "cache-0").unwrap();
    cache["metadata"]["labels"] = json!({"app": "cache"});
    server.put(cache);
    wait_until("cache-0 withdrawn", || {
        pod_prefixes(&server, "worker-1", "cache-0").is_empty()
    })
    .await;
    settle(&server).await;
    assert_eq!(
        object_writes(&server),
        ["PATCH /apis/bgpintent.io/v1alpha1/bgpnodeintents/worker-1"]
    );
    controller.stop().await;
}

fn annotate(server: &FakeApiServer, node: &str, key: &str, value: &str) {
    let mut n = server.get("v1", "Node", "", node).unwrap();
    n["metadata"]["annotations"][key] = json!(value);
    server.put(n);
}

fn events_about(server: &FakeApiServer, kind: &str, name: &str, reason: &str) -> Vec<Value> {
    server
        .list("events.k8s.io/v1", "Event")
        .into_iter()
        .filter(|e| e["regarding"]["kind"] == kind && e["regarding"]["name"] == name && e["reason"] == reason)
        .collect()
}

#[tokio::test]
async fn an_invalid_node_annotation_holds_that_node_reports_it_and_a_fix_applies() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    assert_eq!(
        condition(&server, "default", "NodeOverridesValid")["status"],
        "True"
    );
    let worker1 = server.get(INTENT.0, INTENT.1, "", "worker-1").unwrap();
    let worker2 = server.get(INTENT.0, INTENT.1, "", "worker-2").unwrap();
    server.clear_writes();

    // A bad edit on worker-2: AS_TRANS is no local ASN.
    annotate(&server, "worker-2", "bgpintent.io/local-asn", "23456");
    wait_until("NodeOverridesValid=False", || {
        condition(&server, "default", "NodeOverridesValid")["status"] == "False"
    })
    .await;
    settle(&server).await;
    let c = condition(&server, "default", "NodeOverridesValid");
    assert_eq!(c["reason"], "InvalidNodeAnnotation");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.contains(
            "Node worker-2: metadata.annotations[bgpintent.io/local-asn]: must be an AS number in \
             1-4294967294 other than 23456 (AS_TRANS) (got 23456)"
        ),
        "{message}"
    );
    assert_eq!(condition(&server, "default", "Accepted")["status"], "True");
    let events = events_about(&server, "Node", "worker-2", "InvalidAnnotation");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "Warning");
    let note = events[0]["note"].as_str().unwrap();
    assert!(
        note.starts_with("Node worker-2: annotation bgpintent.io/local-asn is invalid")
            && note.contains("must be an AS number"),
        "{note}"
    );
    // worker-2 keeps its intent, and no intent at all was written or deleted.
    assert_eq!(
        server.get(INTENT.0, INTENT.1, "", "worker-2").unwrap()["spec"],
        worker2["spec"]
    );
    assert_eq!(
        server.get(INTENT.0, INTENT.1, "", "worker-1").unwrap()["spec"],
        worker1["spec"]
    );
    let intent_writes = writes_to(&server, "/bgpnodeintents/");
    assert!(
        intent_writes.is_empty(),
        "{:?}",
        intent_writes
            .iter()
            .map(|w| (&w.method, &w.path))
            .collect::<Vec<_>>()
    );

    // Another pass with the problem unchanged (an unrelated label) writes no status, no
    // Event and no intent.
    server.clear_writes();
    let mut n = server.get("v1", "Node", "", "worker-2").unwrap();
    n["metadata"]["labels"]["example.com/unrelated"] = json!("x");
    server.put(n);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let persisted: Vec<String> = server
        .writes()
        .iter()
        .filter(|w| w.persisted && !w.path.contains("/leases") && !w.path.ends_with("/nodes/worker-2"))
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    assert!(persisted.is_empty(), "{persisted:?}");

    // Fixed, to another valid value: worker-2's intent is rewritten, the condition clears.
    annotate(&server, "worker-2", "bgpintent.io/local-asn", "4200000002");
    wait_until("worker-2 runs AS 4200000002", || {
        server.get(INTENT.0, INTENT.1, "", "worker-2").unwrap()["spec"]["localASN"] == 4_200_000_002_i64
    })
    .await;
    settle(&server).await;
    assert_eq!(
        condition(&server, "default", "NodeOverridesValid")["status"],
        "True"
    );
    assert_eq!(
        server.get(INTENT.0, INTENT.1, "", "worker-1").unwrap()["spec"],
        worker1["spec"]
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_new_node_with_an_invalid_annotation_gets_no_intent_until_fixed() {
    let server = cluster().await;
    let controller = replica(&server, "a");
    settle(&server).await;
    let mut fresh = server.get("v1", "Node", "", "worker-3").unwrap();
    fresh["metadata"] = json!({
        "name": "worker-9",
        "labels": {"bgp": "enabled"},
        "annotations": {"bgpintent.io/peers": r#"[{"address": "192.0.2.9", "asn": 65009, "pasive": true}]"#},
    });
    fresh["status"]["addresses"] = json!([{"type": "InternalIP", "address": "198.51.100.9"}]);
    server.put(fresh);
    wait_until("NodeOverridesValid=False", || {
        condition(&server, "default", "NodeOverridesValid")["status"] == "False"
    })
    .await;
    settle(&server).await;
    assert!(server.get(INTENT.0, INTENT.1, "", "worker-9").is_none());
    assert!(
        condition(&server, "default", "NodeOverridesValid")["message"]
            .as_str()
            .unwrap()
            .contains(
                "Node worker-9: metadata.annotations[bgpintent.io/peers][0].pasive: is an unknown field"
            )
    );
    let events = events_about(&server, "Node", "worker-9", "InvalidAnnotation");
    assert_eq!(events.len(), 1, "{events:?}");
    let uid = server.get("v1", "Node", "", "worker-9").unwrap()["metadata"]["uid"].clone();
    assert_eq!(events[0]["regarding"]["uid"], uid);

    annotate(
        &server,
        "worker-9",
        "bgpintent.io/peers",
        r#"[{"address": "192.0.2.9", "asn": 65009, "passive": true}]"#,
    );
    wait_until("worker-9's intent", || {
        server.get(INTENT.0, INTENT.1, "", "worker-9").is_some()
    })
    .await;
    let intent = server.get(INTENT.0, INTENT.1, "", "worker-9").unwrap();
    let peers: Vec<(&str, bool)> = intent["spec"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["address"].as_str().unwrap(), p["passive"].as_bool().unwrap()))
        .collect();
    assert!(peers.contains(&("192.0.2.9", true)), "{peers:?}");
    assert!(peers.contains(&("192.0.2.1", false)), "{peers:?}");
    controller.stop().await;
}
