//! `bgp-intent-demo`: the whole path on one machine, no cluster, no root.
//!
//! ```text
//!  docs/examples/cluster/*.yaml ──▶ intent engine (resolve + materialize, as the controller)
//!        │ one BGPNodeIntent (+ its BGPAdvertisementSets) per Node, written to files
//!        ▼
//!  speakers (the real agent, standalone mode), one per Node, on 127.0.0.11.. ──BGP──▶ collector
//!                                                                     (our wire codec, 127.0.0.1)
//! ```
//!
//! The sample policies' peers are routers at documentation addresses; the demo points every
//! Node's sessions at the local collector instead (AS 65000) and gives each Node its own
//! loopback address and listen port. Then one Service's only local endpoint moves to another
//! Node and the demo prints what the collector saw change.

mod collector;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bgpintent_api::{Asn, NodeIntent, PeerIntent, PeerKey, Prefix, Source};
use bgpintent_controller::{
    cli::manifests,
    intent::{self, Resolution, Snapshot},
    materialize::{self, Materialized},
};
use bgpintent_crd::{BGPNodeIntentSpec, convert::parse_node_intent};
use bgpintent_speaker::{
    agent::{self, AgentSettings, NodeStatus, Shutdown, file::FileSource, metrics::SpeakerMetrics},
    net::ListenConfig,
};
use collector::{Change, Held, Rib};
use tokio::sync::{mpsc, watch};

const COLLECTOR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 11179);
const COLLECTOR_AS: u32 = 65000;
const WAIT: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(demo()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

struct NodeRun {
    address: Ipv4Addr,
    status: watch::Receiver<NodeStatus>,
}

/// The intent `render` computes for `node`, pointed at the collector.
fn demo_intent(mat: &Materialized, node: &str, index: usize) -> Result<(NodeIntent, Ipv4Addr), String> {
    let object = mat.intents.get(node).ok_or(format!("no intent for {node}"))?;
    let mut intent = parse_node_intent(node, &object.spec).map_err(|e| e.to_string())?;
    let address = Ipv4Addr::new(127, 0, 0, 11 + index as u8);
    let families = intent
        .peers
        .values()
        .next()
        .map(|p| p.families.clone())
        .unwrap_or_default();
    intent.peers = BTreeMap::from([(
        PeerKey {
            address: COLLECTOR.ip(),
            asn: Asn::try_from(COLLECTOR_AS).expect("valid AS"),
        },
        PeerIntent {
            port: COLLECTOR.port(),
            local_address: Some(IpAddr::V4(address)),
            // Loopback is not "directly connected" for TTL 1 purposes on every kernel path.
            ttl: bgpintent_api::TtlMode::Multihop { ttl: 2 },
            connect_retry_secs: 1,
            families,
            ..PeerIntent::new()
        },
    )]);
    intent.listen_port = 11180 + index as u16;
    Ok((intent, address))
}

/// The intent file of a Node: its BGPNodeIntent and the sets it names.
fn write_intent(dir: &Path, mat: &Materialized, intent: &NodeIntent, generation: i64) -> Result<(), String> {
    let mut object = bgpintent_crd::BGPNodeIntent::new(&intent.node, BGPNodeIntentSpec::from(intent));
    object.metadata.generation = Some(generation);
    let mut docs = vec![serde_json::to_value(&object).map_err(|e| e.to_string())?];
    for name in &intent.sets {
        if let Some(set) = mat.sets.get(name) {
            docs.push(serde_json::to_value(set.to_object(name)).map_err(|e| e.to_string())?);
        }
    }
    let text: Vec<String> = docs.iter().map(|d| format!("---\n{d}\n")).collect();
    let path = dir.join(format!("{}.yaml", intent.node));
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text.concat()).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
}

fn resolve(snapshot: &Snapshot, previous: Option<&Materialized>) -> (Resolution, Materialized) {
    let res = intent::resolve(snapshot);
    let layout = previous.map(|m| m.layout.clone()).unwrap_or_default();
    let mat = materialize::materialize(&res, &layout);
    (res, mat)
}

fn sources(res: &Resolution) -> BTreeMap<(String, Prefix), BTreeSet<Source>> {
    let mut out = BTreeMap::new();
    for node in res.nodes.keys() {
        if let Some(intent) = res.logical_intent(node) {
            for (p, s) in intent.prefixes {
                out.insert((node.clone(), p), s);
            }
        }
    }
    out
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) -> Result<(), String> {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > WAIT {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn show_sources(s: Option<&BTreeSet<Source>>) -> String {
    s.map(|s| s.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "?".into())
}

async fn demo() -> Result<(), String> {
    println!("== 1. The sample cluster (docs/examples/cluster) through the intent engine");
    let mut notes = Vec::new();
    let mut snapshot =
        manifests::parse(&manifests::sample(), &Default::default(), &mut notes).map_err(|e| e.to_string())?;
    let (res, mat) = resolve(&snapshot, None);
    for (name, p) in &res.policies {
        println!(
            "   BGPPolicy {name}: owns {:?}, conflicts {:?}",
            p.effective,
            p.conflicts.keys().collect::<Vec<_>>()
        );
    }
    println!(
        "   {} BGPNodeIntents, {} BGPAdvertisementSets",
        mat.intents.len(),
        mat.sets.len()
    );

    println!("== 2. A route collector (our wire codec) on {COLLECTOR}, AS {COLLECTOR_AS}");
    let rib: Rib = Arc::new(Mutex::new(BTreeMap::new()));
    let (changes_tx, mut changes) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collector::run(COLLECTOR, COLLECTOR_AS, rib.clone(), changes_tx));

    println!("== 3. One speaker per Node (standalone mode), sessions to the collector");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut runs: BTreeMap<String, NodeRun> = BTreeMap::new();
    let (stop_tx, stop) = watch::channel(Shutdown::Running);
    let mut intents = BTreeMap::new();
    for (i, node) in mat.intents.keys().enumerate() {
        let (intent, address) = demo_intent(&mat, node, i)?;
        write_intent(dir.path(), &mat, &intent, 1)?;
        let file = FileSource {
            node: node.clone(),
            intent_file: dir.path().join(format!("{node}.yaml")),
            passwords_file: None,
        };
        let desired = file.follow(watch::channel(Default::default()).0);
        let (status_tx, status) = watch::channel(NodeStatus::default());
        let settings = AgentSettings {
            listen: ListenConfig {
                port: 0,
                v4: Some(address),
                v6: None,
            },
            ..AgentSettings::default()
        };
        tokio::spawn(agent::run(
            settings,
            desired,
            status_tx,
            SpeakerMetrics::default(),
            stop.clone(),
        ));
        println!(
            "   {node}: {address}, AS {}, {} prefixes (sets: {:?})",
            intent.local_asn,
            intent.prefixes.len(),
            intent.sets
        );
        runs.insert(node.clone(), NodeRun { address, status });
        intents.insert(node.clone(), intent);
    }
    let established = || runs.values().all(|r| r.status.borrow().established() == 1);
    wait_until("every session to be Established", established).await?;
    let by_address: BTreeMap<IpAddr, String> = runs
        .iter()
        .map(|(n, r)| (IpAddr::V4(r.address), n.clone()))
        .collect();
    let expected: usize = res
        .nodes
        .keys()
        .filter_map(|n| res.logical_intent(n))
        .map(|i| {
            i.prefixes
                .keys()
                .filter(|p| i.next_hops.for_family(p.family()).is_some())
                .count()
        })
        .sum();
    wait_until("the collector to hold every announced route", || {
        rib.lock().expect("rib").len() == expected
    })
    .await?;
    while changes.try_recv().is_ok() {}

    println!("== 4. What the router holds ({expected} routes)");
    let src = sources(&res);
    println!(
        "   {:<10} {:<26} {:<22} {:<8} source",
        "from", "prefix", "next hop", "AS path"
    );
    for ((peer, prefix), Held { next_hop, as_path }) in rib.lock().expect("rib").iter() {
        let node = by_address.get(peer).cloned().unwrap_or_default();
        let nh = next_hop.map(|a| a.to_string()).unwrap_or_default();
        let path: Vec<String> = as_path.iter().map(u32::to_string).collect();
        println!(
            "   {node:<10} {:<26} {nh:<22} {:<8} {}",
            prefix.to_string(),
            path.join(" "),
            show_sources(src.get(&(node.clone(), *prefix)))
        );
    }

    println!(
        "== 5. Change: the only endpoint of Service shop/api (internalTrafficPolicy: Local) moves from worker-1 to worker-3"
    );
    let slice = snapshot
        .endpoint_slices
        .iter_mut()
        .find(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
                .is_some_and(|n| n == "api")
        })
        .ok_or("no EndpointSlice for shop/api in the sample")?;
    for e in &mut slice.endpoints {
        if e.node_name.as_deref() == Some("worker-1") {
            e.node_name = Some("worker-3".into());
        }
    }
    let (res2, mat2) = resolve(&snapshot, Some(&mat));
    let diff = materialize::diff(&mat, &mat2);
    println!(
        "   the controller would rewrite: sets {:?}, intents {:?}",
        diff.apply_sets, diff.apply_intents
    );
    for node in &diff.apply_intents {
        let index = mat.intents.keys().position(|n| n == node).unwrap_or(0);
        let (intent, _) = demo_intent(&mat2, node, index)?;
        write_intent(dir.path(), &mat2, &intent, 2)?;
    }
    let start = Instant::now();
    let mut seen = Vec::new();
    let want = diff.apply_intents.len().max(1);
    while seen.len() < want * 2 && start.elapsed() < WAIT {
        match tokio::time::timeout(Duration::from_millis(1500), changes.recv()).await {
            Ok(Some(c)) => seen.push(c),
            _ => break,
        }
    }
    let src2 = sources(&res2);
    println!("   as the router saw it:");
    for c in &seen {
        match c {
            Change::Announce { peer, prefix, route } => {
                let node = by_address.get(peer).cloned().unwrap_or_default();
                println!(
                    "   + {prefix} from {node} (next hop {}) — {}",
                    route.next_hop.map(|a| a.to_string()).unwrap_or_default(),
                    show_sources(src2.get(&(node.clone(), *prefix)))
                );
            }
            Change::Withdraw { peer, prefix } => {
                println!(
                    "   - {prefix} from {}",
                    by_address.get(peer).cloned().unwrap_or_default()
                );
            }
            Change::Up { .. } => {}
        }
    }
    let flaps: u64 = runs
        .values()
        .map(|r| r.status.borrow().peers.values().map(|p| p.flaps).sum::<u64>())
        .sum();
    collector.abort();
    stop_tx.send_replace(Shutdown::Restart);
    println!(
        "== Summary: {} Nodes, {} routes at the collector, {} UPDATE changes for one endpoint move, {} session resets",
        runs.len(),
        rib.lock().expect("rib").len(),
        seen.len(),
        flaps
    );
    if seen.is_empty() {
        return Err("the collector saw no change".into());
    }
    Ok(())
}
