//! Fault injection in the fake API server (its admin API) against the deployed whole (harness:
//! `src/e2e/`): two controller replicas and two speakers as processes started from the chart,
//! BIRD and FRR as routers. Each fault is installed, the API connections are bounced where
//! the fault needs a new request (a watch) to bite, a Service is created during the fault,
//! and then:
//! * the new Service's IP reaches both routers from both Nodes (no lost update), and
//! * at every 250 ms poll before that, the routers showed the old routes unchanged, and the
//!   new prefix at most from the Nodes that announce it in the end (the speakers apply a
//!   change one after the other): no withdrawal, no flap.
//!
//! Faults: 409 on writes, 429 with Retry-After, 500 and 503, slow answers, accepted but
//! silent watches, watches cut mid-event, 410 Gone (and a compacted history): one test,
//! every case reported, failing at the end if any did.
//!
//! A second test takes the Lease (PUT with another holder) while the leader's writes are in
//! flight: the leader steps down and no write of its client is persisted from then until a
//! replica takes the Lease back.

use std::{
    collections::BTreeSet,
    net::IpAddr,
    time::{Duration, Instant},
};

use bgpintent_api::Family;
use bgpintent_tests::e2e::{
    apiserver::fault,
    chart::NAMESPACE,
    cluster::{self, Cluster, NodeSpec},
    objects::{self, CRD_API},
    watch::{Table, Tables, diff},
};
use ipnet::IpNet;
use serde_json::{Value, json};

const AS: u32 = 64512;
/// How long a change made during a fault may take to reach the routers. Silent watches
/// are only noticed by a client-side timeout, hence the margin.
const DURING_FAULT: Duration = Duration::from_secs(90);

fn tables(c: &Cluster, prefixes: &BTreeSet<String>) -> Tables {
    let mut out = Tables::new();
    for router in [cluster::BIRD, cluster::FRR] {
        for family in [Family::Ipv4, Family::Ipv6] {
            let mut t = Table::new();
            for p in prefixes {
                let p: IpNet = p.parse().unwrap();
                if Family::of(p.addr()) != family {
                    continue;
                }
                let hops = c
                    .nodes
                    .iter()
                    .map(|n| match family {
                        Family::Ipv4 => IpAddr::V4(n.v4),
                        Family::Ipv6 => IpAddr::V6(n.v6),
                    })
                    .collect();
                t.insert(p, hops);
            }
            out.insert((router.to_owned(), family), Ok(t));
        }
    }
    out
}

fn apply(c: &Cluster, object: &Value) {
    if let Err(e) = c.api.apply_with_status(object) {
        c.fail("apply", e);
    }
}

fn leader(c: &Cluster, not: Option<&str>, timeout: Duration) -> (String, Duration) {
    let start = Instant::now();
    loop {
        if let Some(h) = c.lease_holder()
            && Some(h.as_str()) != not
            && c.controller_index(&h).is_some()
        {
            return (h, start.elapsed());
        }
        if start.elapsed() > timeout {
            c.fail(
                "leader",
                format!(
                    "no Lease holder other than {not:?} in {timeout:?}: {:?}",
                    c.lease_holder()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One fault scenario: faults installed, the API bounced if `bounce`, a Service created
/// while they are active.
struct Case<'a> {
    name: &'a str,
    faults: Vec<Value>,
    /// Close every API connection after installing the faults, so watches are re-made.
    bounce: bool,
    /// Also expire the watch history (410 on re-watch from an old resourceVersion).
    compact: bool,
}

/// What a case measured: when the controller had written the new IP into a set, when both
/// routers had it (from the start of the fault).
#[derive(Debug)]
struct Outcome {
    controller: Option<Duration>,
    routers: Option<Duration>,
}

/// Whether any BGPAdvertisementSet or BGPNodeIntent mentions `prefix`.
fn written(c: &Cluster, prefix: &str) -> bool {
    let quoted = format!("\"{prefix}\"");
    ["BGPAdvertisementSet", "BGPNodeIntent"].iter().any(|kind| {
        c.api
            .list(CRD_API, kind)
            .unwrap_or_default()
            .iter()
            .any(|o| o["spec"].to_string().contains(&quoted))
    })
}

/// Whether `got` lies on the way from `before` to `after` (where `after` only adds
/// prefixes): every route of `before` as it was, and any other prefix one of `after`'s with
/// a subset of its next hops.
fn transitional(before: &Tables, after: &Tables, got: &Tables) -> bool {
    after.iter().all(|(key, a)| {
        let (Ok(a), Some(Ok(g)), Some(Ok(b))) = (a, got.get(key), before.get(key)) else {
            return false;
        };
        b.iter().all(|(p, nh)| g.get(p) == Some(nh))
            && g.iter()
                .filter(|(p, _)| !b.contains_key(*p))
                .all(|(p, nh)| a.get(p).is_some_and(|want| nh.is_subset(want)))
    })
}

/// Runs one case; `Err` describes what went wrong (the test goes on with the next case
/// and fails at the end, so one run shows every fault that is not ridden through).
fn run_case(c: &Cluster, case: &Case, prefixes: &mut BTreeSet<String>, n: u8) -> Result<Outcome, String> {
    let before = tables(c, prefixes);
    let ids: Vec<u64> = case
        .faults
        .iter()
        .map(|f| c.api.fault(f).unwrap_or_else(|e| c.fail(case.name, e)))
        .collect();
    let start = Instant::now();
    if case.compact {
        c.api.compact().unwrap_or_else(|e| c.fail("compact", e));
    }
    if case.bounce {
        c.api.stop().unwrap_or_else(|e| c.fail("stop", e));
        std::thread::sleep(Duration::from_millis(300));
        c.api.start_api().unwrap_or_else(|e| c.fail("start", e));
    }
    // The change, made while the fault is active (the test's own requests are not
    // matched: every fault names a binary's client).
    let ip = format!("203.0.113.{}", 100 + n);
    let prefix = format!("{ip}/32");
    apply(c, &objects::service(&format!("f{n}"), "ClusterIP", &[&ip], None));
    prefixes.insert(prefix.clone());
    let after = tables(c, prefixes);
    let mut outcome = Outcome {
        controller: None,
        routers: None,
    };
    let mut last = None;
    while start.elapsed() < DURING_FAULT {
        if outcome.controller.is_none() && written(c, &prefix) {
            outcome.controller = Some(start.elapsed());
        }
        let sample = c.routes().next_after(Instant::now());
        if sample.tables == after {
            outcome.routers = Some(sample.at.duration_since(start));
            // Written between our last look and this sample: no later than the routers.
            if outcome.controller.is_none() && written(c, &prefix) {
                outcome.controller = outcome.routers;
            }
            last = Some(sample);
            break;
        }
        last = Some(sample);
    }
    // Faults on status writes bite after the routes are sent (the speaker writes its status
    // then): keep every fault until it has matched once, up to 15 s more.
    let unmatched = |r: &Option<Value>| {
        ids.iter().zip(&case.faults).any(|(id, f)| {
            let left = r
                .as_ref()
                .and_then(|r| r["faults"].as_array())
                .and_then(|fs| fs.iter().find(|x| x["id"].as_u64() == Some(*id)))
                .and_then(|x| x["remaining"].as_u64());
            left.is_some() && left == f["times"].as_u64()
        })
    };
    let mut remaining = c.api.faults().ok();
    let grace = Instant::now();
    while unmatched(&remaining) && grace.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        remaining = c.api.faults().ok();
    }
    for id in &ids {
        let _ = c.api.clear_fault(*id);
    }
    let mut problems = Vec::new();
    // A fault that never matched a request tested nothing (the server reports what is left
    // of `times`).
    for (id, f) in ids.iter().zip(&case.faults) {
        let left = remaining
            .as_ref()
            .and_then(|r| r["faults"].as_array())
            .and_then(|fs| fs.iter().find(|x| x["id"].as_u64() == Some(*id)))
            .and_then(|x| x["remaining"].as_u64());
        if left.is_some() && left == f["times"].as_u64() {
            problems.push(format!("fault never matched a request: {f}"));
        }
    }
    let reached = match (&outcome.routers, &last) {
        (Some(_), Some(s)) => s.at,
        (_, last) => {
            problems.push(format!(
                "the change made during the fault is not at the routers after {DURING_FAULT:?} \
                 (controller wrote it: {:?}): {}",
                outcome.controller,
                last.as_ref().map(|s| diff(&after, &s.tables)).unwrap_or_default()
            ));
            Instant::now()
        }
    };
    // Every poll until then: the routes from before unchanged, and the new prefix, if
    // there, from some of the Nodes that announce it in the end (speakers apply a change
    // one after the other) — no withdrawal, no other change.
    let samples = c.routes().between(start, reached);
    let bad: Vec<String> = samples
        .iter()
        .filter(|s| !transitional(&before, &after, &s.tables))
        .take(5)
        .map(|s| diff(&after, &s.tables))
        .collect();
    if !bad.is_empty() {
        problems.push(format!(
            "routes other than the old ones plus the new prefix at {} of {} polls: {bad:?}",
            bad.len(),
            samples.len()
        ));
    }
    for p in c.controllers.iter().chain(&c.speakers) {
        if !p.is_running() {
            problems.push(format!("{} exited: {:?}", p.name(), p.exit_status()));
        }
    }
    eprintln!(
        "e2e_faults: {:<48} controller wrote it after {:>8} s, both routers had it after {:>8} s",
        case.name,
        outcome
            .controller
            .map(|d| format!("{:.1}", d.as_secs_f64()))
            .unwrap_or("never".into()),
        outcome
            .routers
            .map(|d| format!("{:.1}", d.as_secs_f64()))
            .unwrap_or("never".into()),
    );
    // The speakers' status catches up too: every peer of every Node reports the IPv4 routes
    // sent (a status write refused during the fault is not lost).
    let v4 = prefixes.iter().filter(|p| p.contains('.')).count() as u64;
    let status_ok = bgpintent_tests::lab::wait_until("status prefixesSent", Duration::from_secs(20), || {
        let intents = c.api.list(CRD_API, "BGPNodeIntent").unwrap_or_default();
        let ok = intents.len() == c.nodes.len()
            && intents.iter().all(|i| {
                let peers = i["status"]["peers"].as_array().cloned().unwrap_or_default();
                !peers.is_empty()
                    && peers
                        .iter()
                        .filter(|p| p["address"].as_str().is_some_and(|a| a.contains('.')))
                        .all(|p| p["prefixesSent"]["ipv4"].as_u64() == Some(v4))
            });
        Ok(ok.then_some(()))
    });
    if let Err(e) = status_ok {
        problems.push(format!(
            "speakers' status never showed {v4} IPv4 prefixes sent: {e}"
        ));
    }
    if problems.is_empty() {
        return Ok(outcome);
    }
    // Leave a clean state for the next case: new connections everywhere, all routes back.
    c.api.stop().ok();
    std::thread::sleep(Duration::from_millis(300));
    c.api.start_api().ok();
    if let Err(s) = c.routes().wait(Duration::from_secs(60), |t| *t == after) {
        problems.push(format!(
            "not recovered 60 s after the fault was cleared: {}",
            diff(&after, &s.tables)
        ));
    }
    Err(format!(
        "{}: {}\nfaults (remaining counts): {remaining:?}\n{}",
        case.name,
        problems.join("\n"),
        c.logs(15)
    ))
}

/// Two Nodes of one cluster-wide policy, a dual-stack ClusterIP Service, both controllers
/// and both speakers; returns once the routers have the Service's IPs.
fn setup(test: &str) -> (Cluster, BTreeSet<String>) {
    let mut c =
        Cluster::up(test, vec![NodeSpec::new(1, AS), NodeSpec::new(2, AS)]).unwrap_or_else(|e| panic!("{e}"));
    for ns in [NAMESPACE, "shop"] {
        apply(&c, &objects::namespace(ns));
    }
    apply(&c, &objects::passwords());
    apply(&c, &objects::policy("all", json!({}), AS, &["ClusterIP"], false));
    for n in c.nodes.clone() {
        apply(&c, &objects::node(&n.name, n.v4, n.v6, &[], json!({})));
    }
    apply(
        &c,
        &objects::service("base", "ClusterIP", &["203.0.113.10", "2001:db8:10::10"], None),
    );
    c.watch_routes();
    c.start_controllers().unwrap_or_else(|e| c.fail("controllers", e));
    c.start_speakers().unwrap_or_else(|e| c.fail("speakers", e));
    let prefixes: BTreeSet<String> = ["203.0.113.10/32", "2001:db8:10::10/128"]
        .map(String::from)
        .into();
    let want = tables(&c, &prefixes);
    if let Err(last) = c.routes().wait(Duration::from_secs(60), |t| *t == want) {
        c.fail("first routes", diff(&want, &last.tables));
    }
    (c, prefixes)
}

#[test]
fn e2e_faults() {
    const TEST: &str = "e2e_faults";
    if !cluster::require(TEST) {
        return;
    }
    let suite = Instant::now();
    let (c, mut prefixes) = setup(TEST);
    let (lead, _) = leader(&c, None, Duration::from_secs(30));
    let speakers: Vec<String> = c.speakers.iter().map(|s| s.name().to_owned()).collect();
    let (s1, s2) = (speakers[0].as_str(), speakers[1].as_str());
    let l = lead.as_str();
    let status = |code: u16| json!({"status": code});
    let writes = Some("PATCH");

    let cases = [
        Case {
            name: "409 on writes of both binaries",
            faults: vec![
                fault(writes, Some("/bgp"), None, Some(l), Some(3), status(409)),
                fault(writes, Some("/status"), None, Some(s1), Some(3), status(409)),
            ],
            bounce: false,
            compact: false,
        },
        Case {
            name: "429 Retry-After 2 s on writes of both binaries",
            faults: vec![
                fault(
                    writes,
                    Some("/bgp"),
                    None,
                    Some(l),
                    Some(2),
                    json!({"status": 429, "retryAfterSeconds": 2}),
                ),
                fault(
                    writes,
                    Some("/status"),
                    None,
                    Some(s1),
                    Some(2),
                    json!({"status": 429, "retryAfterSeconds": 2}),
                ),
            ],
            bounce: false,
            compact: false,
        },
        Case {
            // The controller relists after a cut connection, the speakers re-watch from their
            // last resourceVersion: their faults match any GET.
            name: "429 Retry-After 1 s on both binaries' reads",
            faults: vec![
                fault(
                    Some("GET"),
                    None,
                    Some(false),
                    Some(l),
                    Some(2),
                    json!({"status": 429, "retryAfterSeconds": 1}),
                ),
                fault(
                    Some("GET"),
                    None,
                    None,
                    Some(s1),
                    Some(2),
                    json!({"status": 429, "retryAfterSeconds": 1}),
                ),
            ],
            bounce: true,
            compact: false,
        },
        Case {
            name: "500 on writes, 503 on reads (both binaries)",
            faults: vec![
                fault(writes, Some("/bgp"), None, Some(l), Some(2), status(500)),
                fault(writes, Some("/status"), None, Some(s2), Some(2), status(500)),
                fault(Some("GET"), None, Some(false), Some(l), Some(2), status(503)),
                fault(Some("GET"), None, None, Some(s2), Some(2), status(503)),
            ],
            bounce: true,
            compact: false,
        },
        Case {
            name: "every answer 2 s late (both binaries)",
            faults: vec![
                fault(None, None, None, Some(l), Some(20), json!({"delayMs": 2000})),
                fault(None, None, None, Some(s1), Some(20), json!({"delayMs": 2000})),
                fault(None, None, None, Some(s2), Some(20), json!({"delayMs": 2000})),
            ],
            bounce: true,
            compact: false,
        },
        Case {
            name: "watches accepted but silent (both binaries)",
            faults: vec![
                fault(
                    Some("GET"),
                    Some("/services"),
                    Some(true),
                    Some(l),
                    Some(1),
                    json!({"silent": true}),
                ),
                fault(
                    Some("GET"),
                    Some("/bgpadvertisementsets"),
                    Some(true),
                    Some(s1),
                    Some(1),
                    json!({"silent": true}),
                ),
                fault(
                    Some("GET"),
                    Some("/bgpadvertisementsets"),
                    Some(true),
                    Some(s2),
                    Some(1),
                    json!({"silent": true}),
                ),
            ],
            bounce: true,
            compact: false,
        },
        Case {
            name: "watches cut after one event (both binaries)",
            faults: vec![
                fault(
                    Some("GET"),
                    None,
                    Some(true),
                    Some(l),
                    Some(4),
                    json!({"cutAfterEvents": 1}),
                ),
                fault(
                    Some("GET"),
                    None,
                    Some(true),
                    Some(s1),
                    Some(4),
                    json!({"cutAfterEvents": 1}),
                ),
                fault(
                    Some("GET"),
                    None,
                    Some(true),
                    Some(s2),
                    Some(4),
                    json!({"cutAfterEvents": 1}),
                ),
            ],
            bounce: true,
            compact: false,
        },
        Case {
            name: "410 Gone on re-watch, history compacted",
            faults: vec![
                fault(
                    Some("GET"),
                    None,
                    Some(true),
                    Some(l),
                    Some(2),
                    json!({"gone": true}),
                ),
                fault(
                    Some("GET"),
                    None,
                    Some(true),
                    Some(s1),
                    Some(2),
                    json!({"gone": true}),
                ),
                fault(
                    Some("GET"),
                    None,
                    Some(true),
                    Some(s2),
                    Some(2),
                    json!({"gone": true}),
                ),
            ],
            bounce: true,
            compact: true,
        },
    ];
    let mut figures = Vec::new();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        match run_case(&c, case, &mut prefixes, i as u8) {
            Ok(outcome) => figures.push((case.name, outcome)),
            Err(e) => failures.push(e),
        }
    }

    let (n, bad) = c.probes.liveness_failures();
    assert!(bad.is_empty(), "liveness not 200 ({} of {n}): {bad:?}", bad.len());
    let intents = c
        .api
        .list(CRD_API, "BGPNodeIntent")
        .unwrap_or_else(|e| c.fail("list", e));
    assert_eq!(intents.len(), 2);
    eprintln!(
        "e2e_faults: SUMMARY {:.1} s; {figures:?}",
        suite.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} fault cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The Lease PUT with another holder while the leader's writes are in flight: the leader
/// reports follower, and no write of its client is persisted from then until a replica
/// takes the Lease back from the holder that never renews.
#[test]
fn e2e_lease_taken_while_writing() {
    const TEST: &str = "e2e_lease_taken";
    if !cluster::require(TEST) {
        return;
    }
    let (c, mut prefixes) = setup(TEST);
    let mut failures: Vec<String> = Vec::new();
    let (lead, _) = leader(&c, None, Duration::from_secs(30));
    let li = c.controller_index(&lead).unwrap();
    let lease_name = c.chart.controller.flag("--lease-name").unwrap().to_owned();
    let lease_duration =
        bgpintent_api::parse_duration(c.chart.controller.flag("--lease-duration").unwrap()).unwrap();
    // The leader's writes of generated objects answer 1.5 s late, so a pass is still writing
    // when the Lease is taken: a burst of Services starts one that writes two sets, one
    // after the other.
    let slow = c
        .api
        .fault(&fault(
            Some("PATCH"),
            Some("/bgp"),
            None,
            Some(&lead),
            Some(20),
            json!({"delayMs": 1500}),
        ))
        .unwrap_or_else(|e| c.fail("fault", e));
    let burst_index = c.api.writes(u64::MAX).map(|(n, _)| n).unwrap_or_default();
    for k in 0..20u8 {
        // Dual-stack: the pass writes the IPv4 set, then the IPv6 set (1.5 s each).
        let (ip, ip6) = (format!("203.0.113.{}", 200 + k), format!("2001:db8:200::{k}"));
        apply(
            &c,
            &objects::service(&format!("burst{k}"), "ClusterIP", &[&ip, &ip6], None),
        );
        prefixes.insert(format!("{ip}/32"));
        prefixes.insert(format!("{ip6}/128"));
    }
    std::thread::sleep(Duration::from_millis(700)); // debounce (200 ms), then the pass writes
    // GET, then PUT with its resourceVersion; a renewal in between answers 409: again.
    let mut attempts = 0;
    let taken = loop {
        let mut lease = c
            .api
            .get("coordination.k8s.io/v1", "Lease", NAMESPACE, &lease_name)
            .unwrap_or_else(|e| c.fail("lease", e))
            .expect("the Lease exists");
        let now = jiff::Timestamp::now().to_string();
        lease["spec"]["holderIdentity"] = json!("intruder");
        lease["spec"]["renewTime"] = json!(now);
        lease["spec"]["acquireTime"] = json!(now);
        let at = Instant::now();
        let r = c
            .api
            .replace(&lease)
            .unwrap_or_else(|e| c.fail("take the Lease", e));
        attempts += 1;
        match r.status {
            200 => break at,
            409 if attempts < 10 => continue,
            _ => c.fail("take the Lease", format!("PUT answered {}: {}", r.status, r.body)),
        }
    };
    let (_, log) = c.api.writes(0).unwrap_or_else(|e| c.fail("writes", e));
    let taken_ms = log
        .iter()
        .rev()
        .find(|w| w.client == bgpintent_tests::e2e::apiserver::TEST_CLIENT && w.path.contains("/leases/"))
        .map(|w| w.at_ms)
        .expect("our Lease PUT is in the write log");
    // The leader notices on its next renewal and stops.
    let stepped_down = loop {
        if c.controllers[li].metric("bgpintent_controller_leader") == Some(0.0) {
            break taken.elapsed();
        }
        if taken.elapsed() > lease_duration {
            c.fail(
                "step-down",
                format!("{lead} still reports itself leader {lease_duration:?} after losing the Lease"),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Until someone takes the Lease back from "intruder" (it never renews).
    let (back, _) = leader(&c, Some("intruder"), lease_duration * 2 + Duration::from_secs(10));
    let retaken = taken.elapsed();
    let (_, log) = c.api.writes(0).unwrap_or_else(|e| c.fail("writes", e));
    let step_ms = taken_ms + stepped_down.as_millis() as u64;
    let retaken_ms = taken_ms + retaken.as_millis() as u64;
    let late: Vec<String> = log
        .iter()
        .filter(|w| w.client == lead && w.persisted && w.at_ms > step_ms && w.at_ms + 500 < retaken_ms)
        .map(|w| {
            format!(
                "#{} {} {} landed {} ms after the Lease was taken (the server held the leader's \
                 writes 1500 ms: sent at about {} ms)",
                w.index,
                w.method,
                w.path,
                w.at_ms as i64 - taken_ms as i64,
                w.at_ms as i64 - taken_ms as i64 - 1500
            )
        })
        .collect();
    c.api.clear_fault(slow).ok();
    let by_leader = |from: u64, to: u64| {
        log.iter()
            .filter(|w| {
                w.index >= burst_index && w.client == lead && w.persisted && w.at_ms >= from && w.at_ms < to
            })
            .count()
    };
    eprintln!(
        "e2e_faults: Lease taken from {lead} during a pass: it reported follower after {:.1} s; {back} holds it \
         after {:.1} s; persisted writes of {lead} since the burst: {} before the Lease was taken, {} until \
         the step-down, {} after it",
        stepped_down.as_secs_f64(),
        retaken.as_secs_f64(),
        by_leader(0, taken_ms),
        by_leader(taken_ms, step_ms + 1),
        late.len(),
    );
    if !late.is_empty() {
        failures.push(format!(
            "Lease taken: writes of {lead} persisted after its step-down: {late:?}\n{}",
            c.logs(15)
        ));
    }
    let after = tables(&c, &prefixes);
    if let Err(last) = c.routes().wait(Duration::from_secs(60), |t| *t == after) {
        c.fail("the burst after the Lease came back", diff(&after, &last.tables));
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
