//! Background pollers that run for a whole test: the routers' tables (what every Node
//! announces, as prefix → next hops) and both binaries' probes. Tests then ask "did
//! anything change between t0 and t1" or "was liveness ever not 200", instead of sampling
//! only at the moments they look.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bgpintent_api::Family;
use ipnet::IpNet;

use super::{chart::Probe, http};
use crate::lab::{Route, Router};

/// One router's view: prefix → the (first) next hops of the paths it learned.
pub type Table = BTreeMap<IpNet, BTreeSet<IpAddr>>;
/// Every router and family: `("bird", Ipv4)` → table; `Err` when the read failed.
pub type Tables = BTreeMap<(String, Family), Result<Table, String>>;

/// The learned (not originated) paths of `routes`, by prefix, with each path's first next hop.
pub fn table_of(routes: &[Route]) -> Table {
    let mut t = Table::new();
    for r in routes
        .iter()
        .filter(|r| r.from.is_some() || !r.as_path.is_empty())
    {
        let entry = t.entry(r.prefix).or_default();
        if let Some(nh) = r.next_hops.first() {
            entry.insert(*nh);
        }
    }
    t
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub tables: Tables,
}

/// Polls every router (both families) in a loop and keeps every sample.
#[derive(Debug)]
pub struct RouteWatch {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub type SharedRouter = Arc<dyn Router + Send + Sync>;

impl RouteWatch {
    pub fn start(routers: Vec<SharedRouter>, every: Duration) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let at = Instant::now();
                let mut tables = Tables::new();
                for r in &routers {
                    for family in [Family::Ipv4, Family::Ipv6] {
                        let t = r.routes(family).map(|r| table_of(&r)).map_err(|e| e.to_string());
                        tables.insert((r.name().to_owned(), family), t);
                    }
                }
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Sample { at, tables });
                std::thread::sleep(every.saturating_sub(at.elapsed()));
            }
        });
        Self {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// The newest sample taken after `after`, waiting for it.
    pub fn next_after(&self, after: Instant) -> Sample {
        loop {
            if let Some(s) = self
                .samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .last()
                .filter(|s| s.at > after)
            {
                return s.clone();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A fresh sample (taken after now).
    pub fn now(&self) -> Tables {
        self.next_after(Instant::now()).tables
    }

    /// Waits until `f(tables)` holds for a sample; the sample, or the last one seen.
    pub fn wait(&self, timeout: Duration, f: impl Fn(&Tables) -> bool) -> Result<Sample, Sample> {
        let start = Instant::now();
        let mut last = self.next_after(start);
        loop {
            if f(&last.tables) {
                return Ok(last);
            }
            if start.elapsed() > timeout {
                return Err(last);
            }
            last = self.next_after(last.at);
        }
    }

    /// Every sample taken in `[from, to]`.
    pub fn between(&self, from: Instant, to: Instant) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.at >= from && s.at <= to)
            .cloned()
            .collect()
    }

    /// The samples in `[from, to]` that differ from `want`, described (at most 10).
    pub fn deviations(&self, from: Instant, to: Instant, want: &Tables) -> (usize, Vec<String>) {
        let samples = self.between(from, to);
        let bad: Vec<String> = samples
            .iter()
            .filter(|s| &s.tables != want)
            .take(10)
            .map(|s| {
                format!(
                    "at +{:.1} s: {}",
                    s.at.duration_since(from).as_secs_f64(),
                    diff(want, &s.tables)
                )
            })
            .collect();
        (samples.len(), bad)
    }
}

impl Drop for RouteWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What differs between two samples, per router and prefix.
pub fn diff(want: &Tables, got: &Tables) -> String {
    let mut out = Vec::new();
    for (key, w) in want {
        let g = got.get(key);
        match (w, g) {
            (Ok(w), Some(Ok(g))) => {
                for (p, nh) in w {
                    match g.get(p) {
                        None => out.push(format!("{}/{:?} lost {p}", key.0, key.1)),
                        Some(n) if n != nh => {
                            out.push(format!("{}/{:?} {p} via {n:?} (want {nh:?})", key.0, key.1))
                        }
                        _ => {}
                    }
                }
                for p in g.keys().filter(|p| !w.contains_key(p)) {
                    out.push(format!("{}/{:?} extra {p} via {:?}", key.0, key.1, g[p]));
                }
            }
            (_, Some(Err(e))) => out.push(format!("{}/{:?} unreadable: {e}", key.0, key.1)),
            (_, None) => out.push(format!("{}/{:?} missing", key.0, key.1)),
            (Err(_), Some(Ok(_))) => out.push(format!("{}/{:?} readable now", key.0, key.1)),
        }
    }
    if out.is_empty() {
        "same".into()
    } else {
        out.join("; ")
    }
}

/// A process whose probes are polled: where, which, and whether it is meant to run now
/// (its pid, 0 while it is stopped on purpose).
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub name: String,
    pub ns: String,
    pub ip: IpAddr,
    pub liveness: Probe,
    pub readiness: Probe,
    pub pid: Arc<AtomicU32>,
}

#[derive(Debug, Clone)]
pub struct ProbeSample {
    pub at: Instant,
    pub pod: String,
    pub liveness: Result<u16, String>,
    /// Whether the liveness probe's `initialDelaySeconds` had passed since this process
    /// started: before that the kubelet does not probe liveness, so no answer there counts.
    pub liveness_due: bool,
    pub readiness: Result<u16, String>,
}

/// Polls every target's liveness and readiness probes every `every` (with the chart's
/// timeouts), skipping targets stopped on purpose.
#[derive(Debug)]
pub struct ProbeWatch {
    targets: Arc<Mutex<Vec<ProbeTarget>>>,
    samples: Arc<Mutex<Vec<ProbeSample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProbeWatch {
    pub fn start(every: Duration) -> Self {
        let targets: Arc<Mutex<Vec<ProbeTarget>>> = Arc::default();
        let samples: Arc<Mutex<Vec<ProbeSample>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s, st) = (targets.clone(), samples.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // When each target's current process was first seen (pid, time).
            let mut started: std::collections::HashMap<String, (u32, Instant)> = Default::default();
            while !st.load(Ordering::Relaxed) {
                let round = Instant::now();
                let targets = t.lock().unwrap_or_else(|p| p.into_inner()).clone();
                for target in targets {
                    let pid = target.pid.load(Ordering::Relaxed);
                    if pid == 0 {
                        continue;
                    }
                    let at = Instant::now();
                    let first = started.entry(target.name.clone()).or_insert((pid, at));
                    if first.0 != pid {
                        *first = (pid, at);
                    }
                    let liveness_due = at.duration_since(first.1) >= target.liveness.initial_delay;
                    let get = |p: &Probe| {
                        http::get(&target.ns, SocketAddr::new(target.ip, p.port), &p.path, p.timeout)
                            .map(|r| r.status)
                            .map_err(|e| e.to_string())
                    };
                    let liveness = get(&target.liveness);
                    let readiness = get(&target.readiness);
                    // Stopped (or restarted) while we asked: not a probe failure.
                    if target.pid.load(Ordering::Relaxed) != pid {
                        continue;
                    }
                    s.lock().unwrap_or_else(|p| p.into_inner()).push(ProbeSample {
                        at,
                        pod: target.name.clone(),
                        liveness,
                        liveness_due,
                        readiness,
                    });
                }
                std::thread::sleep(every.saturating_sub(round.elapsed()));
            }
        });
        Self {
            targets,
            samples,
            stop,
            thread: Some(thread),
        }
    }

    pub fn add(&self, target: ProbeTarget) {
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(target);
    }

    pub fn samples(&self) -> Vec<ProbeSample> {
        self.samples.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Liveness answers other than 200 (at most 10, described) and the number of samples.
    pub fn liveness_failures(&self) -> (usize, Vec<String>) {
        let samples = self.samples();
        let bad = samples
            .iter()
            .filter(|s| s.liveness_due && s.liveness != Ok(200))
            .take(10)
            .map(|s| format!("{} liveness {:?}", s.pod, s.liveness))
            .collect();
        (samples.len(), bad)
    }

    /// The readiness answers of `pod` in `[from, to]`.
    pub fn readiness(&self, pod: &str, from: Instant, to: Instant) -> Vec<Result<u16, String>> {
        self.samples()
            .into_iter()
            .filter(|s| s.pod == pod && s.at >= from && s.at <= to)
            .map(|s| s.readiness)
            .collect()
    }
}

impl Drop for ProbeWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
