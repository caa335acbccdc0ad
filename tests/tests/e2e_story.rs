//! The deployed whole, end to end: the fake API server, two controller replicas and one
//! speaker per Node are separate processes started from `helm template` output, BIRD and
//! FRR are the operator's routers (harness: `src/e2e/`). One story, in order:
//!
//! 1. policies (an older one for the edge Node, a younger cluster-wide one), Nodes, Services
//!    (ClusterIP, LoadBalancer with status ingress, one `externalTrafficPolicy: Local`),
//!    EndpointSlices and the passwords Secret (MD5 to BIRD) → intents → routes at BIRD and
//!    FRR with each Node as next hop;
//! 2. a Service change and a Local endpoint move reach the routers;
//! 3. SIGKILL of the leader: the standby leads (time printed), rewrites no intent or set
//!    that was already correct, and no router sees a change;
//! 4. the API server stopped for 60 s: no withdrawal; after it is back, a new change
//!    reaches the routers (time printed);
//! 5. SIGTERM of one speaker and a new start: graceful restart keeps every route;
//! 6. `kubectl get` against the fake server (printed);
//! 7. SIGTERM of the leader: clean exit within 5 s, Lease released, the other leads;
//! 8. the cluster-wide policy deleted: its Nodes' routes withdrawn, Cease at both routers.
//!
//! Throughout, both routers' tables are polled every 250 ms and every process's probes every
//! second (liveness must always be 200).

use std::{
    collections::BTreeSet,
    net::IpAddr,
    time::{Duration, Instant},
};

use bgpintent_api::Family;
use bgpintent_tests::e2e::{
    chart::NAMESPACE,
    cluster::{self, Cluster, NodeSpec},
    objects::{self, CRD_API},
    watch::{Table, Tables, diff},
};
use bgpintent_tests::lab::Router;
use ipnet::IpNet;
use rustix::process::Signal;
use serde_json::{Value, json};

const ALL_AS: u32 = 64512;
const EDGE_AS: u32 = 64513;
/// How long a change may take to reach the routers.
const CHANGE: Duration = Duration::from_secs(30);
/// How long a change made after the 60 s outage may take (reconnect backoff included).
const RESYNC: Duration = Duration::from_secs(90);

/// Expected routes: prefix → indexes (0-based) of the Nodes announcing it.
type Want = Vec<(&'static str, Vec<usize>)>;

fn tables(c: &Cluster, want: &Want) -> Tables {
    let mut out = Tables::new();
    for router in [cluster::BIRD, cluster::FRR] {
        for family in [Family::Ipv4, Family::Ipv6] {
            let mut t = Table::new();
            for (prefix, nodes) in want {
                let p: IpNet = prefix.parse().unwrap();
                if Family::of(p.addr()) != family {
                    continue;
                }
                let hops: BTreeSet<IpAddr> = nodes
                    .iter()
                    .map(|&i| match family {
                        Family::Ipv4 => IpAddr::V4(c.nodes[i].v4),
                        Family::Ipv6 => IpAddr::V6(c.nodes[i].v6),
                    })
                    .collect();
                t.insert(p, hops);
            }
            out.insert((router.to_owned(), family), Ok(t));
        }
    }
    out
}

/// Waits until both routers show exactly `want`; how long it took.
fn reach(c: &Cluster, want: &Tables, what: &str) -> Duration {
    let start = Instant::now();
    match c.routes().wait(CHANGE, |t| t == want) {
        Ok(_) => start.elapsed(),
        Err(last) => c.fail(
            &format!("{what}: routers never showed the wanted routes"),
            diff(want, &last.tables),
        ),
    }
}

fn assert_steady(c: &Cluster, from: Instant, want: &Tables, what: &str) {
    let (n, bad) = c.routes().deviations(from, Instant::now(), want);
    assert!(n > 0, "{what}: no router poll at all");
    if !bad.is_empty() {
        c.fail(
            &format!("{what}: routes changed at {} of {n} polls", bad.len()),
            bad.join("\n"),
        );
    }
}

fn apply(c: &Cluster, object: &Value) {
    if let Err(e) = c.api.apply_with_status(object) {
        c.fail("apply", e);
    }
}

fn wait_leader(c: &Cluster, not: Option<&str>, timeout: Duration) -> (String, Duration) {
    let start = Instant::now();
    loop {
        if let Some(h) = c.lease_holder()
            && !h.is_empty()
            && Some(h.as_str()) != not
            && c.controller_index(&h).is_some()
        {
            return (h, start.elapsed());
        }
        if start.elapsed() > timeout {
            c.fail(
                "leader election",
                format!(
                    "no new Lease holder (other than {not:?}) within {timeout:?}: {:?}",
                    c.lease_holder()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn duration_flag(c: &Cluster, flag: &str) -> Duration {
    let v = c
        .chart
        .controller
        .flag(flag)
        .unwrap_or_else(|| panic!("chart has no {flag}"));
    bgpintent_api::parse_duration(v).unwrap_or_else(|e| panic!("{flag} {v}: {e}"))
}

/// Persisted writes of intents or sets (not their status) by `client` from write index
/// `since` on.
fn intent_writes(c: &Cluster, since: u64, client: &str) -> Vec<String> {
    let (_, writes) = c.api.writes(since).unwrap_or_else(|e| c.fail("writes", e));
    writes
        .into_iter()
        .filter(|w| w.client == client && w.persisted)
        .filter(|w| {
            (w.path.contains("/bgpnodeintents") || w.path.contains("/bgpadvertisementsets"))
                && !w.path.ends_with("/status")
        })
        .map(|w| format!("#{} {} {}", w.index, w.method, w.path))
        .collect()
}

/// Whether a BGPAdvertisementSet or BGPNodeIntent in the API server mentions `prefix`.
fn mentions(c: &Cluster, prefix: &str) -> bool {
    let quoted = format!("\"{prefix}\"");
    ["BGPAdvertisementSet", "BGPNodeIntent"].iter().any(|kind| {
        c.api
            .list(CRD_API, kind)
            .unwrap_or_default()
            .iter()
            .any(|o| o["spec"].to_string().contains(&quoted))
    })
}

fn write_index(c: &Cluster) -> u64 {
    c.api
        .writes(u64::MAX)
        .map(|(next, _)| next)
        .unwrap_or_else(|e| c.fail("writes", e))
}

#[test]
fn e2e_story() {
    const TEST: &str = "e2e_story";
    if !cluster::require(TEST) {
        return;
    }
    let suite = Instant::now();
    let nodes = vec![
        NodeSpec::new(1, ALL_AS),
        NodeSpec::new(2, ALL_AS),
        NodeSpec::new(3, EDGE_AS),
    ];
    let mut c = Cluster::up(TEST, nodes).unwrap_or_else(|e| panic!("{e}"));
    let lease_duration = duration_flag(&c, "--lease-duration");
    let retry_period = duration_flag(&c, "--retry-period");

    // --- 1. the cluster's objects, then the processes -----------------------------------
    for ns in [NAMESPACE, "shop"] {
        apply(&c, &objects::namespace(ns));
    }
    apply(&c, &objects::passwords());
    // `edge` is older (the API server sets creationTimestamp, whole seconds; a tie would go
    // by name): it owns node-3; `all` (empty selector) owns the others and reports node-3 as
    // a conflict.
    apply(
        &c,
        &objects::policy(
            "edge",
            json!({"matchLabels": {"zone": "edge"}}),
            EDGE_AS,
            &["LoadBalancerIP"],
            false,
        ),
    );
    std::thread::sleep(Duration::from_millis(1100));
    apply(
        &c,
        &objects::policy("all", json!({}), ALL_AS, &["ClusterIP", "LoadBalancerIP"], true),
    );
    let pod_cidrs = [
        ["198.18.1.0/24", "2001:db8:a1::/64"],
        ["198.18.2.0/24", "2001:db8:a2::/64"],
        ["198.18.3.0/24", "2001:db8:a3::/64"],
    ];
    for (i, n) in c.nodes.clone().iter().enumerate() {
        let labels = if i == 2 {
            json!({"zone": "edge"})
        } else {
            json!({})
        };
        apply(&c, &objects::node(&n.name, n.v4, n.v6, &pod_cidrs[i], labels));
    }
    apply(
        &c,
        &objects::service("web", "ClusterIP", &["203.0.113.10", "2001:db8:10::10"], None),
    );
    apply(
        &c,
        &objects::service(
            "lb",
            "LoadBalancer",
            &["203.0.113.20", "2001:db8:20::20"],
            Some("Cluster"),
        ),
    );
    c.api
        .apply_status(&objects::lb_status("lb", &["203.0.113.120", "2001:db8:20::120"]))
        .unwrap_or_else(|e| c.fail("lb status", e));
    apply(
        &c,
        &objects::service("local", "LoadBalancer", &["203.0.113.30"], Some("Local")),
    );
    c.api
        .apply_status(&objects::lb_status("local", &["203.0.113.130"]))
        .unwrap_or_else(|e| c.fail("local status", e));
    apply(
        &c,
        &objects::endpoint_slice("local-v4", "local", "IPv4", &[("198.18.2.5", "node-2")]),
    );

    c.watch_routes();
    let processes = Instant::now();
    c.start_controllers().unwrap_or_else(|e| c.fail("controllers", e));
    c.start_speakers().unwrap_or_else(|e| c.fail("speakers", e));

    let mut want: Want = vec![
        ("203.0.113.10/32", vec![0, 1]),
        ("2001:db8:10::10/128", vec![0, 1]),
        ("203.0.113.20/32", vec![0, 1]),
        ("2001:db8:20::20/128", vec![0, 1]),
        ("203.0.113.120/32", vec![0, 1, 2]),
        ("2001:db8:20::120/128", vec![0, 1, 2]),
        ("203.0.113.30/32", vec![0, 1]),
        ("203.0.113.130/32", vec![1]),
        ("198.18.1.0/24", vec![0]),
        ("2001:db8:a1::/64", vec![0]),
        ("198.18.2.0/24", vec![1]),
        ("2001:db8:a2::/64", vec![1]),
    ];
    let first = reach(&c, &tables(&c, &want), "first routes");
    eprintln!(
        "{TEST}: every route at BIRD and FRR {:.1} s after the processes started",
        processes.elapsed().as_secs_f64()
    );
    let _ = first;
    let pods: Vec<_> = c.controllers.iter().chain(&c.speakers).collect();
    c.wait_ready(&pods, Duration::from_secs(30))
        .unwrap_or_else(|e| c.fail("readiness", e));
    let ready_at = Instant::now();
    let (leader, _) = wait_leader(&c, None, Duration::from_secs(30));
    let intents = c
        .api
        .list(CRD_API, "BGPNodeIntent")
        .unwrap_or_else(|e| c.fail("list", e));
    assert_eq!(intents.len(), 3, "one intent per Node: {intents:?}");

    // --- 2. a Service change and a Local endpoint move ---------------------------------
    let t = Instant::now();
    c.api
        .apply_status(&objects::lb_status(
            "lb",
            &["203.0.113.120", "203.0.113.121", "2001:db8:20::120"],
        ))
        .unwrap_or_else(|e| c.fail("lb status", e));
    want.push(("203.0.113.121/32", vec![0, 1, 2]));
    reach(&c, &tables(&c, &want), "new LoadBalancer IP");
    eprintln!(
        "{TEST}: a new LoadBalancer IP at both routers after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    apply(
        &c,
        &objects::endpoint_slice("local-v4", "local", "IPv4", &[("198.18.1.5", "node-1")]),
    );
    want.retain(|(p, _)| *p != "203.0.113.130/32");
    want.push(("203.0.113.130/32", vec![0]));
    reach(&c, &tables(&c, &want), "Local endpoint moved to node-1");
    eprintln!(
        "{TEST}: the Local Service's IP moved node-2 → node-1 in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let steady = tables(&c, &want);
    std::thread::sleep(Duration::from_secs(2)); // last status writes settle

    // --- 3. SIGKILL of the leader --------------------------------------------------------
    // Readiness 200 at every probe of every process since all were ready.
    for p in c.controllers.iter().chain(&c.speakers) {
        let r = c.probes.readiness(p.name(), ready_at, Instant::now());
        let bad: Vec<_> = r.iter().filter(|r| **r != Ok(200)).collect();
        assert!(
            !r.is_empty() && bad.is_empty(),
            "{} readiness since ready: {bad:?} of {}",
            p.name(),
            r.len()
        );
    }
    let since = write_index(&c);
    // The write log names each client (its kubeconfig token): the leader's writes so far are
    // there, so "no rewrite by the new leader" below can fail.
    assert!(
        !intent_writes(&c, 0, &leader).is_empty(),
        "no write of the leader {leader} in the API server's log: writes are not attributed"
    );
    let from = Instant::now();
    let li = c.controller_index(&leader).unwrap();
    c.controllers[li].kill();
    let (new_leader, failover) = wait_leader(
        &c,
        Some(&leader),
        lease_duration + retry_period + Duration::from_secs(5),
    );
    eprintln!(
        "{TEST}: leader {leader} SIGKILLed; {new_leader} holds the Lease after {:.1} s (lease duration {lease_duration:?}, retry {retry_period:?})",
        failover.as_secs_f64()
    );
    // The standby counts the lease duration from when *it* saw the last renewal (client-go's
    // observed-time rule: no clock shared between replicas), and looks every retry period: it
    // sees the last renewal up to one period late and acts up to one period after expiry.
    // Measured 14.7-16.9 s with the chart's 15 s / 2 s.
    let bound = lease_duration + 2 * retry_period + Duration::from_secs(1);
    assert!(
        failover <= bound,
        "failover took {failover:?}, more than the lease duration {lease_duration:?} + two retry periods"
    );
    // The new leader's first pass: let it run, then nothing correct may have been rewritten.
    std::thread::sleep(Duration::from_secs(5));
    let rewrites = intent_writes(&c, since, &new_leader);
    assert!(
        rewrites.is_empty(),
        "the new leader rewrote objects that were already correct: {rewrites:?}\n{}",
        c.logs(30)
    );
    assert_steady(&c, from, &steady, "leader failover");
    c.controllers[li]
        .start()
        .unwrap_or_else(|e| c.fail("restart replica", e));

    // --- 4. the API server down for 60 s --------------------------------------------------
    c.wait_ready(&[&c.controllers[li]], Duration::from_secs(30))
        .unwrap_or_else(|e| c.fail("restarted replica ready", e));
    let from = Instant::now();
    c.api.stop().unwrap_or_else(|e| c.fail("stop API", e));
    std::thread::sleep(Duration::from_secs(60));
    assert_steady(&c, from, &steady, "API server outage");
    c.api.start_api().unwrap_or_else(|e| c.fail("start API", e));
    let back = Instant::now();
    apply(
        &c,
        &objects::service("web2", "ClusterIP", &["203.0.113.11"], None),
    );
    want.push(("203.0.113.11/32", vec![0, 1]));
    // When the controller has written it, and when both routers have it: the clients'
    // reconnect backoff after 60 s of refused connections decides both.
    let after_outage = tables(&c, &want);
    let mut written = None;
    let resync = loop {
        if written.is_none() && mentions(&c, "203.0.113.11/32") {
            written = Some(back.elapsed());
        }
        let sample = c.routes().next_after(Instant::now());
        if sample.tables == after_outage {
            break sample.at.duration_since(back);
        }
        if back.elapsed() > RESYNC {
            c.fail(
                "change after the outage",
                format!(
                    "not at the routers after {RESYNC:?} (controller wrote it after {written:?}): {}",
                    diff(&after_outage, &sample.tables)
                ),
            );
        }
    };
    eprintln!(
        "{TEST}: API server back; a Service created then was in a set after {} s and at both routers after {:.1} s",
        written
            .map(|w| format!("{:.1}", w.as_secs_f64()))
            .unwrap_or("<= that".into()),
        resync.as_secs_f64()
    );
    let steady = tables(&c, &want);

    // --- 5. SIGTERM one speaker, start it again: graceful restart ------------------------
    let from = Instant::now();
    let stopped = c
        .speaker_mut("node-2")
        .signal(Signal::TERM, Duration::from_secs(10));
    match stopped {
        Ok((took, status)) => {
            eprintln!(
                "{TEST}: speaker on node-2 exited {status} {:.2} s after SIGTERM",
                took.as_secs_f64()
            );
            assert!(
                took <= Duration::from_secs(5),
                "speaker took {took:?} to exit after SIGTERM"
            );
            assert!(status.success(), "speaker exit after SIGTERM: {status}");
        }
        Err(took) => c.fail(
            "speaker SIGTERM",
            format!("still running {took:?} after SIGTERM (killed)"),
        ),
    }
    std::thread::sleep(Duration::from_secs(2));
    c.speaker_mut("node-2")
        .start()
        .unwrap_or_else(|e| c.fail("speaker restart", e));
    // Back: sessions up again (BIRD and FRR on node-2's addresses), then a few quiet seconds.
    let routers: [(&dyn Router, IpAddr); 2] = [
        (&*c.bird, IpAddr::V4(c.nodes[1].v4)),
        (&*c.frr, IpAddr::V6(c.nodes[1].v6)),
    ];
    for (router, addr) in routers {
        if let Err(e) = router.wait_established(addr, Duration::from_secs(30)) {
            c.fail("speaker sessions after restart", e);
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_steady(&c, from, &steady, "speaker graceful restart");

    // --- 6. what kubectl prints -------------------------------------------------------------
    for args in [
        &["get", "bgppolicies"][..],
        &["get", "bni"],
        &["get", "bni", "-o", "wide"],
    ] {
        match c.kubectl(args) {
            Ok(out) => eprintln!("{TEST}: kubectl {}\n{out}", args.join(" ")),
            Err(e) => c.fail("kubectl", e),
        }
    }

    // --- 7. SIGTERM of the leader: clean exit, Lease released --------------------------------
    let (leader, _) = wait_leader(&c, None, Duration::from_secs(5));
    let li = c.controller_index(&leader).unwrap();
    let from = Instant::now();
    match c.controllers[li].signal(Signal::TERM, Duration::from_secs(10)) {
        Ok((took, status)) => {
            eprintln!(
                "{TEST}: leader {leader} exited {status} {:.2} s after SIGTERM",
                took.as_secs_f64()
            );
            assert!(
                took <= Duration::from_secs(5),
                "controller took {took:?} to exit after SIGTERM"
            );
            assert!(status.success(), "controller exit after SIGTERM: {status}");
        }
        Err(took) => c.fail(
            "controller SIGTERM",
            format!("still running {took:?} after SIGTERM (killed)"),
        ),
    }
    let (next, handover) = wait_leader(
        &c,
        Some(&leader),
        lease_duration + retry_period + Duration::from_secs(5),
    );
    eprintln!(
        "{TEST}: after the leader's SIGTERM {next} leads in {:.1} s",
        handover.as_secs_f64()
    );
    assert!(
        handover < lease_duration,
        "the Lease was not released: handover took {handover:?} (lease duration {lease_duration:?})"
    );
    assert_steady(&c, from, &steady, "leader SIGTERM");
    c.controllers[li]
        .start()
        .unwrap_or_else(|e| c.fail("restart replica", e));

    // --- 8. the cluster-wide policy deleted ---------------------------------------------------
    let t = Instant::now();
    c.api
        .delete(CRD_API, "BGPPolicy", "", "all")
        .unwrap_or_else(|e| c.fail("delete policy", e));
    let left: Want = vec![
        ("203.0.113.120/32", vec![2]),
        ("203.0.113.121/32", vec![2]),
        ("2001:db8:20::120/128", vec![2]),
    ];
    reach(&c, &tables(&c, &left), "policy deleted");
    eprintln!(
        "{TEST}: policy `all` deleted; its Nodes' routes gone after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    // A speaker whose intent is gone is not ready (readiness: "a loaded, valid intent").
    let spk1 = c.speaker("node-1");
    if let Err(e) =
        bgpintent_tests::lab::wait_until("node-1 speaker not ready", Duration::from_secs(10), || {
            Ok((spk1.probe(&spk1.container.readiness).ok() == Some(503)).then_some(()))
        })
    {
        c.fail("readiness without an intent", e);
    }
    let node1 = c.nodes[0].v4;
    let ceased = bgpintent_tests::lab::wait_until("Cease at BIRD and FRR", Duration::from_secs(10), || {
        let bird = std::fs::read_to_string(c.bird.process().log_path()).unwrap_or_default();
        let frr = c.frr.neighbor(IpAddr::V4(node1))?;
        let at_frr = frr["lastNotificationHardReset"] == true
            || frr["lastNotificationReason"]
                .as_str()
                .is_some_and(|r| r.contains("Administrative Shutdown"));
        Ok((bird.contains("Received: Administrative shutdown") && at_frr).then_some(()))
    });
    if let Err(e) = ceased {
        c.fail("Cease", e);
    }
    match c.kubectl(&["get", "bni"]) {
        Ok(out) => eprintln!("{TEST}: kubectl get bni (after the deletion)\n{out}"),
        Err(e) => c.fail("kubectl", e),
    }

    // --- probes, all along ----------------------------------------------------------------------
    let (n, bad) = c.probes.liveness_failures();
    assert!(n > 100, "only {n} probe rounds");
    assert!(bad.is_empty(), "liveness not 200: {bad:?}");
    for p in c.controllers.iter().chain(&c.speakers) {
        let r = c.probes.readiness(p.name(), suite, Instant::now());
        let ok = r.iter().filter(|r| **r == Ok(200)).count();
        eprintln!("{TEST}: {} readiness 200 at {ok} of {} probes", p.name(), r.len());
    }
    // node-3 keeps its intent (policy `edge`); node-1 and node-2 have none left.
    let edge = c.speaker("node-3");
    assert_eq!(
        edge.probe(&edge.container.readiness).ok(),
        Some(200),
        "{} not ready at the end",
        edge.name()
    );

    eprintln!(
        "{TEST}: SUMMARY suite {:.1} s; leader failover (SIGKILL) {:.1} s; resync after the 60 s outage {:.1} s",
        suite.elapsed().as_secs_f64(),
        failover.as_secs_f64(),
        resync.as_secs_f64()
    );
}
