//! Scale figures of the intent engine on a synthetic cluster (default 5,000 Nodes × 10,000
//! Services × 100,000 endpoints). A bench binary that prints figures, not a timed test:
//!
//! ```text
//! cargo bench -p bgpintent-controller --bench scale
//! BENCH_NODES=500 BENCH_SERVICES=1000 cargo bench -p bgpintent-controller --bench scale
//! ```
//!
//! Peak memory is the process's VmHWM (Linux), read before and after the engine runs, so
//! the figure includes the snapshot itself (the informer caches of the real controller).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use bgpintent_controller::{
    fixtures::*,
    intent::{PodKey, ServiceKey, pod_route, resolve, service_routes, slices_by_service},
    materialize::{Layout, Materialized, Touched, diff, materialize},
};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Bytes of the objects one incremental change rewrote.
fn touched_bytes(mat: &Materialized, touched: &Touched) -> usize {
    let sets = touched.sets.iter().map(|n| mat.sets[n].bytes);
    let intents = touched.intents.iter().map(|n| mat.intents[n].bytes);
    sets.chain(intents).sum()
}

fn main() {
    // Cargo passes `--bench`; ignore arguments.
    let nodes = env("BENCH_NODES", 5_000);
    let services = env("BENCH_SERVICES", 10_000);
    let endpoints = env("BENCH_ENDPOINTS", 100_000);
    let hwm_start = vm_hwm_kib().unwrap_or(0);

    let snap = synthetic_cluster(nodes, services, endpoints);
    let per_service = (endpoints / services.max(1)).max(1);
    let mut rng = Lcg(7);
    let hwm_snapshot = vm_hwm_kib().unwrap_or(0);

    // Full recompute: best of 3 (single thread; the engine does not spawn).
    let mut best_resolve = Duration::MAX;
    let mut best_mat = Duration::MAX;
    let mut res = resolve(&snap);
    let mut mat = materialize(&res, &Layout::default());
    for _ in 0..3 {
        let t = Instant::now();
        res = resolve(&snap);
        best_resolve = best_resolve.min(t.elapsed());
        let t = Instant::now();
        mat = materialize(&res, &mat.layout);
        best_mat = best_mat.min(t.elapsed());
    }
    let hwm_engine = vm_hwm_kib().unwrap_or(0);

    // One Service change, incremental: routes of the changed Service, patch the resolution,
    // re-materialize its shard / Nodes. The slice index is the informer's job.
    let index = slices_by_service(&snap.endpoint_slices);
    let rounds = 1_000;
    let mut cluster_time = Duration::ZERO;
    let mut cluster_bytes = 0usize;
    let mut cluster_max_bytes = 0usize;
    let mut local_time = Duration::ZERO;
    let mut local_bytes = 0usize;
    let mut local_max_bytes = 0usize;
    let mut relayouts = 0;
    let (mut pod_time, mut pod_moves, mut pod_bytes, mut pod_max_bytes) =
        (Duration::ZERO, 0usize, 0usize, 0usize);
    let mut moved_slices: BTreeMap<ServiceKey, k8s_openapi::api::discovery::v1::EndpointSlice> =
        BTreeMap::new();
    for r in 0..rounds {
        // (a) A Cluster-policy Service gets a new external IP.
        let i = 1 + (r * 37) % (services - 1);
        let i = if i.is_multiple_of(10) { i + 1 } else { i };
        let svc = &snap.services[i];
        let key = ServiceKey::of(svc);
        let mut changed = svc.clone();
        changed.spec.as_mut().unwrap().external_ips = Some(vec![ip4(r, 198)]);
        let slices = index.get(&key).cloned().unwrap_or_default();
        let t = Instant::now();
        let routes = service_routes(&changed, &slices, &mut Vec::new());
        let change = res.set_service(key, Some(routes));
        let touched = mat.apply_service_change(&res, &change);
        cluster_time += t.elapsed();
        relayouts += usize::from(touched.relayout);
        let bytes = touched_bytes(&mat, &touched);
        cluster_bytes += bytes;
        cluster_max_bytes = cluster_max_bytes.max(bytes);

        // (b) An endpoint of a Local Service moves to another Node.
        let j = (r * 10) % services;
        let svc = snap.services[j].clone();
        let key = ServiceKey::of(&svc);
        let mut sl = moved_slices
            .get(&key)
            .cloned()
            .unwrap_or_else(|| index.get(&key).unwrap()[0].clone());
        sl.endpoints[0].node_name = Some(format!("node-{}", rng.next(nodes)));
        let t = Instant::now();
        let routes = service_routes(&svc, &[&sl], &mut Vec::new());
        let change = res.set_service(key.clone(), Some(routes));
        let touched = mat.apply_service_change(&res, &change);
        local_time += t.elapsed();
        relayouts += usize::from(touched.relayout);
        let bytes = touched_bytes(&mat, &touched);
        local_bytes += bytes;
        local_max_bytes = local_max_bytes.max(bytes);
        moved_slices.insert(key, sl);

        // (c) A `local` Pod is recreated on another Node (odd Pods are local).
        let locals = snap.pods.len() / 2;
        if locals > 0 {
            let k = 2 * ((r * 13) % locals) + 1;
            let mut p = snap.pods[k].clone();
            p.spec.as_mut().unwrap().node_name = Some(format!("node-{}", rng.next(nodes)));
            let t = Instant::now();
            let route = pod_route(&p, &mut Vec::new()).ok();
            let change = res.set_pod(PodKey::of(&p), route);
            let touched = mat.apply_pod_change(&res, &change);
            pod_time += t.elapsed();
            pod_moves += 1;
            relayouts += usize::from(touched.relayout);
            let bytes = touched_bytes(&mat, &touched);
            pod_bytes += bytes;
            pod_max_bytes = pod_max_bytes.max(bytes);
        }
    }

    // The naive path for comparison: full recompute + materialize + diff for one change.
    let t = Instant::now();
    let res2 = resolve(&snap);
    let mat2 = materialize(&res2, &mat.layout);
    let d = diff(&mat, &mat2);
    let naive = t.elapsed();

    let largest_intent = mat.intents.values().map(|o| o.bytes).max().unwrap_or(0);
    let largest_set = mat.sets.values().map(|o| o.bytes).max().unwrap_or(0);
    let shards: Vec<String> = mat
        .layout
        .shards
        .iter()
        .map(|((p, f), n)| format!("{p}/{f}={n}"))
        .collect();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "cluster: {nodes} Nodes, {services} Services, {} endpoints, {} labelled Pods",
        services * per_service,
        snap.pods.len()
    );
    println!(
        "objects: {} BGPNodeIntents, {} BGPAdvertisementSets ({})",
        mat.intents.len(),
        mat.sets.len(),
        shards.join(", ")
    );
    println!(
        "full resolve:            {:>9.1} ms",
        best_resolve.as_secs_f64() * 1e3
    );
    println!(
        "full materialize:        {:>9.1} ms",
        best_mat.as_secs_f64() * 1e3
    );
    println!(
        "peak memory (VmHWM):     {:>9.1} MiB total, {:.1} MiB for the snapshot, {:.1} MiB more for the engine",
        mib(hwm_engine),
        mib(hwm_snapshot.saturating_sub(hwm_start)),
        mib(hwm_engine.saturating_sub(hwm_snapshot))
    );
    println!(
        "one Cluster Service change (incremental): {:>7.3} ms mean, rewrites {:.0} bytes mean, {} max",
        cluster_time.as_secs_f64() * 1e3 / rounds as f64,
        cluster_bytes as f64 / rounds as f64,
        cluster_max_bytes
    );
    println!(
        "one Local endpoint move (incremental):    {:>7.3} ms mean, rewrites {:.0} bytes mean, {} max",
        local_time.as_secs_f64() * 1e3 / rounds as f64,
        local_bytes as f64 / rounds as f64,
        local_max_bytes
    );
    println!(
        "one local Pod move (incremental):         {:>7.3} ms mean, rewrites {:.0} bytes mean, {} max",
        pod_time.as_secs_f64() * 1e3 / pod_moves.max(1) as f64,
        pod_bytes as f64 / pod_moves.max(1) as f64,
        pod_max_bytes
    );
    println!(
        "re-layouts during {} changes: {relayouts}",
        2 * rounds + pod_moves
    );
    println!(
        "naive full recompute + materialize + diff: {:.1} ms ({} objects differ)",
        naive.as_secs_f64() * 1e3,
        d.apply_sets.len() + d.apply_intents.len()
    );
    println!(
        "largest object: {} bytes (intent {largest_intent}, set {largest_set}); oversized: {}",
        mat.largest_object(),
        mat.oversized.len()
    );
}
