//! What the three routers have in common: how a session and an originated route are
//! described, and how a test reads state and waits for it.

use std::{
    fmt::Debug,
    net::IpAddr,
    time::{Duration, Instant},
};

use bgpintent_api::{Family, SessionState};
use ipnet::IpNet;

use super::{
    LabError, Result,
    process::Process,
    route::{Origin, Route},
};

/// One BGP session of a router, rendered into BIRD, GoBGP or FRR syntax by that router.
#[derive(Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// Identifier (BIRD protocol name, description elsewhere): `[a-z0-9_]`.
    pub name: String,
    pub address: IpAddr,
    pub asn: u32,
    /// The neighbour's TCP port.
    pub port: u16,
    /// Our address for this session (source address, and what the peer must point at).
    pub local_address: IpAddr,
    /// TCP-MD5 password. Lab-only test values; written into the router's config file.
    pub password: Option<String>,
    /// eBGP multihop TTL; `None` = directly connected (TTL 1).
    pub multihop: Option<u8>,
    /// GTSM (RFC 5082) with this many hops; BIRD `ttl security`, FRR `ttl-security hops`,
    /// GoBGP `ttl-security`.
    pub gtsm_hops: Option<u8>,
    /// Never connect, only accept.
    pub passive: bool,
    /// Address families negotiated on this session.
    pub families: Vec<Family>,
    /// Send our routes (statics / injected / learned) to this neighbour.
    pub export: bool,
}

// Hand-written so a password never reaches test output.
impl Debug for Neighbor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neighbor")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("asn", &self.asn)
            .field("port", &self.port)
            .field("local_address", &self.local_address)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("multihop", &self.multihop)
            .field("gtsm_hops", &self.gtsm_hops)
            .field("passive", &self.passive)
            .field("families", &self.families)
            .field("export", &self.export)
            .finish()
    }
}

impl Neighbor {
    /// A directly connected eBGP session on port 179 carrying the family of `address`,
    /// exporting everything.
    pub fn new(name: &str, local_address: IpAddr, address: IpAddr, asn: u32) -> Self {
        Self {
            name: name.to_owned(),
            address,
            asn,
            port: 179,
            local_address,
            password: None,
            multihop: None,
            gtsm_hops: None,
            passive: false,
            families: vec![Family::of(address)],
            export: true,
        }
    }

    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    pub fn multihop(mut self, ttl: u8) -> Self {
        self.multihop = Some(ttl);
        self
    }

    pub fn passive(mut self) -> Self {
        self.passive = true;
        self
    }

    pub fn families(mut self, families: &[Family]) -> Self {
        self.families = families.to_vec();
        self
    }

    pub fn no_export(mut self) -> Self {
        self.export = false;
        self
    }

    pub(crate) fn has(&self, family: Family) -> bool {
        self.families.contains(&family)
    }
}

/// A route a router originates (BIRD static, GoBGP `global rib add`, FRR `network`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub prefix: IpNet,
    /// Next hop to put in the route where the router lets us (GoBGP); BIRD and FRR use
    /// their session address ("next hop self" for eBGP).
    pub next_hop: Option<IpAddr>,
    pub med: Option<u32>,
    /// ORIGIN to set; `None` leaves the router's default (GoBGP's CLI: incomplete).
    pub origin: Option<Origin>,
    pub communities: Vec<(u16, u16)>,
    pub large_communities: Vec<(u32, u32, u32)>,
}

impl Announcement {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.parse().expect("announcement prefix"),
            next_hop: None,
            med: None,
            origin: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
        }
    }

    pub fn next_hop(mut self, next_hop: &str) -> Self {
        self.next_hop = Some(next_hop.parse().expect("next hop"));
        self
    }

    pub fn med(mut self, med: u32) -> Self {
        self.med = Some(med);
        self
    }

    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    pub fn community(mut self, asn: u16, value: u16) -> Self {
        self.communities.push((asn, value));
        self
    }

    pub fn large_community(mut self, global: u32, local1: u32, local2: u32) -> Self {
        self.large_communities.push((global, local1, local2));
        self
    }
}

/// Reading a router's state. Every wait is bounded and its error says what was last seen,
/// plus the tail of the router's log.
pub trait Router: Debug {
    /// Short name for messages ("bird", "gobgp", "frr").
    fn name(&self) -> &str;

    /// The router's daemon process.
    fn process(&self) -> &Process;

    /// The BGP routes the router has for `family` (received and, where the router lists
    /// them with the received ones, originated).
    fn routes(&self, family: Family) -> Result<Vec<Route>>;

    /// RFC 4271 state of the session with `neighbor`.
    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState>;

    /// A token for the current Established period of the session with `neighbor`: equal
    /// tokens mean the session was not reset in between, so a test can prove a change was
    /// applied live. BIRD: the protocol's `Since` (ms); GoBGP: OPENs received and uptime;
    /// FRR: `connectionsEstablished`.
    fn session_generation(&self, neighbor: IpAddr) -> Result<String>;

    /// Waits until the session with `neighbor` is Established; returns how long it took.
    fn wait_established(&self, neighbor: IpAddr, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        let mut last = None;
        wait_until(
            &format!("{} session to {neighbor} Established", self.name()),
            timeout,
            || {
                let state = self.session_state(neighbor)?;
                last = Some(state);
                Ok((state == SessionState::Established).then_some(()))
            },
        )
        .map_err(|e| self.with_log(e.context(format!("last state {last:?}"))))?;
        Ok(start.elapsed())
    }

    /// Waits for a route to `prefix` (any path) and returns the best one (or the first).
    fn wait_route(&self, prefix: &str, timeout: Duration) -> Result<Route> {
        let prefix: IpNet = prefix
            .parse()
            .map_err(|_| LabError::new(format!("bad prefix {prefix}")))?;
        let family = if prefix.addr().is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        wait_until(&format!("{} to have {prefix}", self.name()), timeout, || {
            let mut routes: Vec<Route> = self
                .routes(family)?
                .into_iter()
                .filter(|r| r.prefix == prefix)
                .collect();
            routes.sort_by_key(|r| !r.best);
            Ok(routes.into_iter().next())
        })
        .map_err(|e| self.with_log(e))
    }

    /// Waits until `check` accepts the routes of `family`; returns them.
    fn wait_routes(
        &self,
        family: Family,
        timeout: Duration,
        what: &str,
        check: &dyn Fn(&[Route]) -> bool,
    ) -> Result<Vec<Route>> {
        let mut last = Vec::new();
        wait_until(&format!("{}: {what}", self.name()), timeout, || {
            let routes = self.routes(family)?;
            if check(&routes) {
                return Ok(Some(routes));
            }
            last = routes;
            Ok(None)
        })
        .map_err(|e| self.with_log(e.context(format!("last routes {last:#?}"))))
    }

    /// Adds the tail of the router's log to an error.
    fn with_log(&self, error: LabError) -> LabError {
        error.context(format!("{} log:\n{}", self.name(), self.process().log_tail(30)))
    }
}

/// Polls `f` every 100 ms until it returns `Some`, an error, or `timeout` passes.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            // Routers answer errors while starting up; keep polling, report the last one.
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            let mut err = LabError::new(format!("timed out after {timeout:?} waiting for {what}"));
            if let Some(e) = last_err {
                err = err.context(format!("last error: {e}"));
            }
            return Err(err);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
