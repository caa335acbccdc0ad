//! Announcement benchmark against a real BIRD 2 (root, network namespaces; prints figures,
//! asserts nothing). `cargo bench -p bgpintent-tests --bench announce`
//!
//! 1. Full table: N IPv4 /32s from 198.18.0.0/15 (RFC 2544 benchmarking range, routes only)
//!    loaded into the sender while its session to BIRD is down; then the session comes up
//!    and we time, as BIRD sees it, from Established to BIRD holding all N. Senders: our
//!    speaker (the real binary, intent file) and gobgpd (routes injected from an MRT file
//!    with `gobgp mrt inject`, neighbour added afterwards). Same host, same run, same
//!    polling (`birdc show protocols all`, back to back); VmHWM of both senders.
//! 2. Intent change → UPDATE on the wire: the speaker in Kubernetes mode (fake API server
//!    in its namespace), one prefix added to / removed from a BGPAdvertisementSet at a
//!    time; latency from the write to BIRD's trace of the route change (µs
//!    timestamps, same clock).
//!
//! Environment: `N` (default 100000, at most 131072), `RUNS` (default 3), `CHANGES`
//! (default 40).

use std::{
    net::IpAddr,
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use bgpintent_api::{Family, Prefix, Source};
use bgpintent_tests::{
    apiserver::{API_VERSION, ApiServer},
    lab::{
        BIRD, BIRD_AS, GOBGP, GOBGP_AS, Lab, Neighbor, Router, SPEAKER, SPEAKER_AS, Topology, bgp_state_in,
        imported_in, require,
    },
    speaker::{self, Options, Speaker},
};
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `i`-th address of 198.18.0.0/15.
fn bulk_addr(i: usize) -> std::net::Ipv4Addr {
    let base = u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0));
    std::net::Ipv4Addr::from(base + u32::try_from(i).expect("fits"))
}

/// One measurement.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Established → BIRD holds all N, seconds.
    secs: f64,
    /// Sender's VmHWM, KiB.
    sender_kib: u64,
    /// BIRD's VmHWM, KiB.
    bird_kib: u64,
}

/// Polls BIRD's session `protocol` back to back: the instant it is first seen Established
/// and the instant it first holds `n` imported routes; their distance in seconds.
fn time_full_table(bird: &bgpintent_tests::lab::Bird, peer: IpAddr, n: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut established: Option<Instant> = None;
    loop {
        assert!(Instant::now() < deadline, "BIRD never got {n} routes from {peer}");
        let info = bird.protocol_info(peer).unwrap_or_default();
        let now = Instant::now();
        if established.is_none() && bgp_state_in(&info) == Some("Established") {
            established = Some(now);
        }
        if let Some(t0) = established
            && imported_in(&info).unwrap_or(0) >= n
        {
            return now.duration_since(t0).as_secs_f64();
        }
    }
}

fn ours(run: usize, n: usize) -> Sample {
    let lab = Lab::standard(
        &format!("bench-ours-{run}"),
        Topology {
            bird: true,
            ..Topology::default()
        },
    )
    .unwrap();
    let mut bird_config = lab.bird_config();
    bird_config.neighbors = vec![
        Neighbor::new("spk4", lab.v4(BIRD), lab.v4(SPEAKER), SPEAKER_AS)
            .no_export()
            .passive()
            .families(&[Family::Ipv4]),
    ];
    let bird = lab.start_bird(BIRD, &bird_config).unwrap();

    // Loaded first, without the peer: the speaker parses and holds the table.
    let mut intent = speaker::intent();
    for i in 0..n {
        intent
            .prefixes
            .entry(Prefix::host(bulk_addr(i).into()))
            .or_default()
            .insert(Source::Egress { name: "bench".into() });
    }
    let mut spk = Speaker::start(&lab, &intent).unwrap();
    spk.wait_status("the intent loaded", Duration::from_secs(60), |s| {
        s.observed_generation == Some(1)
    })
    .unwrap();
    speaker::add_peer(&mut intent, &lab.v4(BIRD).to_string(), BIRD_AS);
    spk.write_intent(&intent).unwrap();
    let secs = time_full_table(&bird, lab.v4(SPEAKER), n as u64);
    Sample {
        secs,
        sender_kib: spk.vm_hwm_kib().unwrap_or(0),
        bird_kib: speaker::vm_hwm_kib(bird.process().pid()).unwrap_or(0),
    }
}

/// An MRT TABLE_DUMP_V2 file (RFC 6396) with the N routes, next hop `next_hop`, empty
/// AS_PATH, plus `pad` repeats of the first routes at the end: `gobgp mrt inject` (3.10)
/// exits without draining its queue and loses the last few hundred records.
fn write_mrt(path: &Path, n: usize, next_hop: std::net::Ipv4Addr, pad: usize) {
    fn record(out: &mut Vec<u8>, subtype: u16, body: &[u8]) {
        out.extend_from_slice(&0u32.to_be_bytes()); // timestamp
        out.extend_from_slice(&13u16.to_be_bytes()); // TABLE_DUMP_V2
        out.extend_from_slice(&subtype.to_be_bytes());
        out.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut out = Vec::with_capacity((n + pad) * 40);
    // PEER_INDEX_TABLE: collector id, empty view name, one peer (IPv4, 4-octet AS).
    let mut pit = Vec::new();
    pit.extend_from_slice(&next_hop.octets());
    pit.extend_from_slice(&0u16.to_be_bytes());
    pit.extend_from_slice(&1u16.to_be_bytes());
    pit.push(0x02);
    pit.extend_from_slice(&next_hop.octets());
    pit.extend_from_slice(&next_hop.octets());
    pit.extend_from_slice(&64510u32.to_be_bytes());
    record(&mut out, 1, &pit);
    // ORIGIN IGP, empty AS_PATH, NEXT_HOP.
    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4];
    attrs.extend_from_slice(&next_hop.octets());
    for k in 0..n + pad {
        let i = k % n;
        let mut body = Vec::with_capacity(32);
        body.extend_from_slice(&u32::try_from(i).expect("fits").to_be_bytes());
        body.push(32);
        body.extend_from_slice(&bulk_addr(i).octets());
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes()); // peer index
        body.extend_from_slice(&0u32.to_be_bytes()); // originated time
        body.extend_from_slice(&u16::try_from(attrs.len()).expect("small").to_be_bytes());
        body.extend_from_slice(&attrs);
        record(&mut out, 2, &body); // RIB_IPV4_UNICAST
    }
    std::fs::write(path, out).expect("write MRT file");
}

fn gobgp(run: usize, n: usize) -> Sample {
    let lab = Lab::standard(
        &format!("bench-gobgp-{run}"),
        Topology {
            bird: true,
            gobgp: true,
            ..Topology::default()
        },
    )
    .unwrap();
    let mut bird_config = lab.bird_config();
    bird_config.neighbors = vec![
        Neighbor::new("gobgp4", lab.v4(BIRD), lab.v4(GOBGP), GOBGP_AS)
            .no_export()
            .passive()
            .families(&[Family::Ipv4]),
    ];
    let bird = lab.start_bird(BIRD, &bird_config).unwrap();
    let mut config = lab.gobgp_config();
    config.neighbors.clear();
    let gobgp = lab.start_gobgp(GOBGP, &config).unwrap();
    let IpAddr::V4(next_hop) = lab.v4(GOBGP) else {
        unreachable!()
    };
    let mrt = lab.dir().join("bulk.mrt");
    write_mrt(&mrt, n, next_hop, 4096);
    gobgp
        .cli(&["mrt", "inject", "global", mrt.to_str().unwrap()])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let summary = gobgp.cli(&["global", "rib", "summary", "-a", "ipv4"]).unwrap();
        let held: usize = summary
            .split_whitespace()
            .skip_while(|w| !w.starts_with("Destination"))
            .nth(1)
            .and_then(|v| v.trim_end_matches(',').parse().ok())
            .unwrap_or(0);
        if held >= n {
            break;
        }
        assert!(Instant::now() < deadline, "GoBGP holds {held} of {n}: {summary}");
        std::thread::sleep(Duration::from_millis(200));
    }
    gobgp
        .cli(&[
            "neighbor",
            "add",
            &lab.v4(BIRD).to_string(),
            "as",
            &BIRD_AS.to_string(),
        ])
        .unwrap();
    let secs = time_full_table(&bird, lab.v4(GOBGP), n as u64);
    Sample {
        secs,
        sender_kib: speaker::vm_hwm_kib(gobgp.process().pid()).unwrap_or(0),
        bird_kib: speaker::vm_hwm_kib(bird.process().pid()).unwrap_or(0),
    }
}

/// Microseconds since the epoch of a BIRD log line (`timeformat log "%F %T.%6f"`, local time).
fn bird_log_time(line: &str) -> Option<SystemTime> {
    let stamp = line.get(..26)?;
    let dt: jiff::civil::DateTime = stamp.parse().ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::system()).ok()?.timestamp();
    Some(SystemTime::UNIX_EPOCH + Duration::from_micros(u64::try_from(ts.as_microsecond()).ok()?))
}

/// Intent change → UPDATE at BIRD, `changes` times; latencies in milliseconds.
fn latency(changes: usize) -> Vec<f64> {
    let lab = Lab::standard(
        "bench-latency",
        Topology {
            bird: true,
            ..Topology::default()
        },
    )
    .unwrap();
    let mut bird_config = lab.bird_config();
    bird_config.neighbors.truncate(1); // spk4
    bird_config.debug = true;
    let bird = lab.start_bird(BIRD, &bird_config).unwrap();
    let api = ApiServer::start(&lab);
    let mut intent = speaker::intent();
    speaker::add_peer(&mut intent, &lab.v4(BIRD).to_string(), BIRD_AS);
    intent.sets.insert("bench-ipv4-1-0".into());
    let set = |prefixes: &[String]| {
        json!({
            "apiVersion": API_VERSION,
            "kind": "BGPAdvertisementSet",
            "metadata": {"name": "bench-ipv4-1-0"},
            "spec": {"policy": "lab", "prefixes": [{
                "source": {"kind": "Egress", "name": "bench"},
                "prefixes": prefixes,
            }]},
        })
    };
    api.put(set(&["203.0.113.1/32".to_owned()]));
    api.put_intent(&intent);
    let spk = api
        .start_speaker(
            &lab,
            Options {
                log_filter: Some("warn".into()),
                ..Options::default()
            },
        )
        .unwrap();
    bird.wait_routes(Family::Ipv4, Duration::from_secs(30), "the first prefix", &|r| {
        r.len() == 1
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", spk.log_tail(20)));
    let log = bird.process().log_path().to_owned();
    let mut out = Vec::new();
    for i in 0..changes {
        std::thread::sleep(Duration::from_millis(300));
        let seen = std::fs::read_to_string(&log).unwrap_or_default().len();
        // Add a second prefix, then take it away again: an UPDATE each time.
        let prefixes: Vec<String> = if i % 2 == 0 {
            vec!["203.0.113.1/32".into(), "203.0.113.2/32".into()]
        } else {
            vec!["203.0.113.1/32".into()]
        };
        let t0 = SystemTime::now();
        api.put(set(&prefixes));
        let deadline = Instant::now() + Duration::from_secs(10);
        let t1 = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            // BIRD's route trace ("spk4.ipv4 > added|removed ... 203.0.113.2/32"), logged as
            // it processes the UPDATE. ("Got UPDATE" lines are identical, and BIRD folds
            // repeated log lines into "...".)
            if let Some(line) = text[seen.min(text.len())..]
                .lines()
                .find(|l| l.contains("203.0.113.2/32") && (l.contains("added") || l.contains("removed")))
            {
                break bird_log_time(line).expect("BIRD log time");
            }
            assert!(Instant::now() < deadline, "no UPDATE at BIRD for change {i}");
            std::thread::sleep(Duration::from_millis(5));
        };
        out.push(t1.duration_since(t0).unwrap_or_default().as_secs_f64() * 1e3);
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if !require("announce benchmark", &["bird", "birdc", "gobgpd", "gobgp"]) {
        std::process::exit(1);
    }
    let n = env("N", 100_000).min(131_072);
    let runs = env("RUNS", 3);
    let changes = env("CHANGES", 40);
    speaker::binary();
    println!("full table: {n} IPv4 /32 to BIRD, from Established until BIRD holds all ({runs} runs each)");
    let mut ours_s = Vec::new();
    let mut gobgp_s = Vec::new();
    for run in 0..runs {
        let o = ours(run, n);
        println!(
            "  run {run}  bgp-intent-speaker {:.3} s  VmHWM {:>7} KiB   (BIRD {} KiB)",
            o.secs, o.sender_kib, o.bird_kib
        );
        let g = gobgp(run, n);
        println!(
            "  run {run}  gobgpd             {:.3} s  VmHWM {:>7} KiB   (BIRD {} KiB)",
            g.secs, g.sender_kib, g.bird_kib
        );
        ours_s.push(o);
        gobgp_s.push(g);
    }
    let o_secs = median(&mut ours_s.iter().map(|s| s.secs).collect::<Vec<_>>());
    let g_secs = median(&mut gobgp_s.iter().map(|s| s.secs).collect::<Vec<_>>());
    let o_kib = median(&mut ours_s.iter().map(|s| s.sender_kib as f64).collect::<Vec<_>>());
    let g_kib = median(&mut gobgp_s.iter().map(|s| s.sender_kib as f64).collect::<Vec<_>>());
    println!(
        "median: ours {o_secs:.3} s ({:.0} prefixes/s), GoBGP {g_secs:.3} s ({:.0} prefixes/s): \
         rate ratio {:.2}x (target >= 2x)",
        n as f64 / o_secs,
        n as f64 / g_secs,
        g_secs / o_secs
    );
    println!(
        "median VmHWM: ours {:.1} MiB, gobgpd {:.1} MiB: {:.2} of gobgpd's (target <= 0.33)",
        o_kib / 1024.0,
        g_kib / 1024.0,
        o_kib / g_kib
    );
    let mut lat = latency(changes);
    let max = lat.iter().copied().fold(0.0, f64::max);
    let med = median(&mut lat);
    let p90 = lat[(lat.len() * 9 / 10).min(lat.len() - 1)];
    println!(
        "intent change -> UPDATE at BIRD ({changes} changes, Kubernetes mode): median {med:.1} ms, \
         p90 {p90:.1} ms, max {max:.1} ms (target <= 50 ms)"
    );
}
