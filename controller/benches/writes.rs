//! Writes and bytes the running controller sends for one Service change, at 100, 1,000 and
//! 5,000 Nodes: the real reconcile loop against the fake API server over HTTP. A bench binary
//! that prints figures, not a timed test:
//!
//! ```text
//! cargo bench -p bgpintent-controller --bench writes
//! BENCH_NODE_COUNTS=100,1000 cargo bench -p bgpintent-controller --bench writes
//! ```
//!
//! Cluster per size: N Nodes, 2N Services (at most 10,000) with 10 endpoints each (see
//! `fixtures::synthetic_cluster`). Two changes are measured after the controller settled:
//! a Cluster-policy Service gets an external IP, and an endpoint of a Local-policy Service
//! moves to another Node.

use std::time::{Duration, Instant};

use bgpintent_controller::{app, fixtures::synthetic_cluster, lease::LeaseConfig, reconcile::Settings};
use fake_apiserver::FakeApiServer;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

fn put_all<T: serde::Serialize>(server: &FakeApiServer, api_version: &str, kind: &str, items: &[T]) {
    for item in items {
        let mut v = serde_json::to_value(item).unwrap();
        v["apiVersion"] = json!(api_version);
        v["kind"] = json!(kind);
        server.put(v);
    }
}

/// Non-lease writes so far: (count, bytes).
fn counted(server: &FakeApiServer) -> (usize, usize) {
    let w: Vec<_> = server
        .writes()
        .into_iter()
        .filter(|w| w.persisted && !w.path.contains("/leases"))
        .collect();
    (w.len(), w.iter().map(|w| w.body.len()).sum())
}

async fn settle(server: &FakeApiServer) {
    let (mut last, mut quiet) = (usize::MAX, 0);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let n = counted(server).0;
        quiet = if n == last { quiet + 1 } else { 0 };
        last = n;
        if quiet >= 10 {
            return;
        }
    }
}

async fn measure(nodes: usize) {
    let services = (2 * nodes).min(10_000);
    let snap = synthetic_cluster(nodes, services, services * 10);
    let mut types = fake_apiserver::default_types();
    types.push(fake_apiserver::antrea_egress_type());
    let server = FakeApiServer::start_with(types).await;
    put_all(&server, "bgpintent.io/v1alpha1", "BGPPolicy", &snap.policies);
    put_all(&server, "v1", "Node", &snap.nodes);
    put_all(&server, "v1", "Service", &snap.services);
    put_all(
        &server,
        "discovery.k8s.io/v1",
        "EndpointSlice",
        &snap.endpoint_slices,
    );
    put_all(&server, "crd.antrea.io/v1beta1", "Egress", &snap.egresses);
    put_all(&server, "v1", "Pod", &snap.pods);
    let mut secret = serde_json::to_value(snap.passwords.as_ref().unwrap()).unwrap();
    secret["metadata"]["namespace"] = json!("kube-system");
    server.put(secret);

    let lease = LeaseConfig {
        name: "bench".into(),
        namespace: "kube-system".into(),
        identity: "bench".into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    };
    let settings = Settings {
        namespace: "kube-system".into(),
        passwords_secret: "bgp-passwords".into(),
        debounce: Duration::from_millis(100),
        retry: Duration::from_secs(1),
    };
    let controller = app::start(server.client(), lease, settings, &mut Registry::default());
    let started = Instant::now();
    // The first pass at 5,000 Nodes takes seconds before its first write: wait for every
    // intent, then for quiet.
    while server.list("bgpintent.io/v1alpha1", "BGPNodeIntent").len() < nodes {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    settle(&server).await;
    let initial = started.elapsed();
    let (initial_writes, initial_bytes) = counted(&server);

    // (a) A Cluster-policy Service (not every 10th: those are Local) gets an external IP.
    server.clear_writes();
    let name = "svc-1";
    let mut svc: Value = server.get("v1", "Service", "ns-1", name).unwrap();
    svc["spec"]["externalIPs"] = json!(["203.0.113.7"]);
    server.put(svc);
    settle(&server).await;
    let (cluster_writes, cluster_bytes) = counted(&server);

    // (b) The endpoint of a Local-policy Service moves to another Node.
    server.clear_writes();
    let mut slice: Value = server
        .get("discovery.k8s.io/v1", "EndpointSlice", "ns-10", "svc-10-abcde")
        .unwrap();
    let old = slice["endpoints"][0]["nodeName"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let moved = if old == "node-0" { "node-1" } else { "node-0" };
    slice["endpoints"][0]["nodeName"] = json!(moved);
    server.put(slice);
    settle(&server).await;
    let (local_writes, local_bytes) = counted(&server);

    println!(
        "{nodes:>5} Nodes {services:>6} Services | initial: {initial_writes:>5} writes {:>8.1} KiB in {:>5.1} s | \
         Cluster Service change: {cluster_writes} writes {cluster_bytes:>6} B | Local endpoint move: {local_writes} writes {local_bytes:>6} B",
        initial_bytes as f64 / 1024.0,
        initial.as_secs_f64(),
    );
    controller.stop().await;
}

fn main() {
    let counts: Vec<usize> = std::env::var("BENCH_NODE_COUNTS")
        .unwrap_or_else(|_| "100,1000,5000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for nodes in counts {
        runtime.block_on(measure(nodes));
    }
}
