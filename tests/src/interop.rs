//! What the interop tests share: the three routers of the standard lab started together,
//! the speaker's peers to them, and waits on "the routes the speaker sent".
//!
//! ```text
//!   Routers::start(lab, |node, neighbor| ..)   BIRD, GoBGP, FRR with sessions to spk
//!   peer_routers(&mut intent, lab, |peer| ..)   the speaker's six peers (v4 + v6 each)
//!   wait_ours(router, family, want, spk)        routes from the speaker == want
//! ```

use std::{
    collections::BTreeSet,
    net::IpAddr,
    time::{Duration, Instant},
};

use bgpintent_api::{Family, NodeIntent, PeerIntent, PeerKey};
use bgpintent_crd::{BGPNodeIntentStatus, node_intent::SessionStateName};

use crate::{
    lab::{
        BIRD, BIRD_AS, Bird, BirdConfig, FRR, FRR_AS, Frr, FrrConfig, GOBGP, GOBGP_AS, Gobgp, GobgpConfig,
        Lab, Neighbor, Route, Router, SPEAKER,
    },
    speaker::{self, Speaker},
};

/// How long a session may take to come up in the lab (BIRD retries every 5 s, GoBGP
/// refuses for a few seconds after a Cease).
pub const UP: Duration = Duration::from_secs(30);
/// How long routes may take to show up once a session is up.
pub const ROUTES: Duration = Duration::from_secs(15);

/// BIRD, GoBGP and FRR on their standard nodes.
#[derive(Debug)]
pub struct Routers {
    pub bird: Bird,
    pub gobgp: Gobgp,
    pub frr: Frr,
}

impl Routers {
    /// Starts the three routers with the standard speaker sessions (`spk4`, `spk6`), each
    /// passed through `f(node, neighbor)` first (passwords, GTSM, passive...).
    pub fn start(lab: &Lab, f: impl Fn(&str, Neighbor) -> Neighbor) -> Self {
        let map = |node: &str, ns: Vec<Neighbor>| ns.into_iter().map(|n| f(node, n)).collect();
        let mut bird = lab.bird_config();
        bird.neighbors = map(BIRD, bird.neighbors);
        bird.debug = true;
        let mut gobgp = lab.gobgp_config();
        gobgp.neighbors = map(GOBGP, gobgp.neighbors);
        let mut frr = lab.frr_config();
        frr.neighbors = map(FRR, frr.neighbors);
        Self::start_configs(lab, &bird, &gobgp, &frr)
    }

    /// Starts the three routers with configs the test built (from `lab.bird_config()` and
    /// friends) when changing the sessions is not enough.
    pub fn start_configs(lab: &Lab, bird: &BirdConfig, gobgp: &GobgpConfig, frr: &FrrConfig) -> Self {
        Self {
            bird: lab.start_bird(BIRD, bird).unwrap_or_else(|e| panic!("{e}")),
            gobgp: lab.start_gobgp(GOBGP, gobgp).unwrap_or_else(|e| panic!("{e}")),
            frr: lab.start_frr(FRR, frr).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    pub fn all(&self) -> [&dyn Router; 3] {
        [&self.bird, &self.gobgp, &self.frr]
    }
}

/// The lab nodes of the three routers with their ASNs.
pub const ROUTER_NODES: [(&str, u32); 3] = [(BIRD, BIRD_AS), (GOBGP, GOBGP_AS), (FRR, FRR_AS)];

/// Adds the speaker's peers to the three routers (IPv4 and IPv6 session each), every
/// [`PeerIntent`] passed through `f(address, peer)`.
pub fn peer_routers(intent: &mut NodeIntent, lab: &Lab, f: impl Fn(IpAddr, &mut PeerIntent)) -> Vec<PeerKey> {
    let mut keys = Vec::new();
    for (node, asn) in ROUTER_NODES {
        for address in [lab.v4(node), lab.v6(node)] {
            let key = speaker::add_peer(intent, &address.to_string(), asn);
            f(address, intent.peers.get_mut(&key).expect("just added"));
            keys.push(key);
        }
    }
    keys
}

/// Prefixes of the routes a router learned from a BGP neighbour (not its own).
pub fn learned(routes: &[Route]) -> BTreeSet<String> {
    routes
        .iter()
        .filter(|r| r.from.is_some() || !r.as_path.is_empty())
        .map(|r| r.prefix.to_string())
        .collect()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Waits until the routes `router` learned for `family` are exactly `want`; panics with
/// the router's and the speaker's log otherwise.
pub fn wait_learned(router: &dyn Router, family: Family, want: &[&str], spk: &Speaker) -> Vec<Route> {
    let want = set(want);
    router
        .wait_routes(family, ROUTES, &format!("learned {want:?}"), &|r| {
            learned(r) == want
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", spk.log_tail(40)))
}

/// Waits until every router has its sessions to the speaker (IPv4 and IPv6) Established.
pub fn wait_established(lab: &Lab, routers: &[&dyn Router], families: &[Family], spk: &Speaker) {
    for router in routers {
        for family in families {
            let address = match family {
                Family::Ipv4 => lab.v4(SPEAKER),
                Family::Ipv6 => lab.v6(SPEAKER),
            };
            router
                .wait_established(address, UP)
                .unwrap_or_else(|e| panic!("{e}\n{}", spk.log_tail(40)));
        }
    }
}

/// The speaker's status entry for `peer`.
pub fn peer_status(
    status: &BGPNodeIntentStatus,
    peer: IpAddr,
) -> Option<&bgpintent_crd::node_intent::PeerStatus> {
    status.peers.iter().find(|p| p.address == peer.to_string())
}

/// Whether the speaker reports `peer` Established.
pub fn is_established(status: &BGPNodeIntentStatus, peer: IpAddr) -> bool {
    peer_status(status, peer).is_some_and(|p| p.state == SessionStateName::Established)
}

/// Runs `f` every `every` until `until` passes; the results in order. For "at no poll"
/// assertions (the routes never disappear, the session never comes up).
pub fn poll_for<T>(until: Duration, every: Duration, mut f: impl FnMut() -> T) -> Vec<(Duration, T)> {
    let start = Instant::now();
    let mut out = Vec::new();
    while start.elapsed() < until {
        let at = start.elapsed();
        out.push((at, f()));
        let next = every.saturating_sub(start.elapsed() - at);
        std::thread::sleep(next);
    }
    out
}

/// Prints how long a test took (shown with `--nocapture`, and in failures).
pub fn took(test: &str, start: Instant) {
    eprintln!("{test}: {:.1} s", start.elapsed().as_secs_f64());
}
