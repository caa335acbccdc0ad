//! GoBGP as a private instance: TOML rendered here, gRPC API on loopback inside its own
//! namespace, routes read with `gobgp -j global rib` and injected with `global rib add`.

use std::{fmt::Write as _, net::IpAddr, path::PathBuf, sync::Arc, time::Duration};

use bgpintent_api::{Family, SessionState};
use serde_json::Value;

use super::{
    LabError, Result,
    netns::Netns,
    process::Process,
    route::{Route, parse_gobgp},
    router::{Announcement, Neighbor, Router, wait_until},
};

/// A GoBGP instance's configuration.
#[derive(Debug, Clone)]
pub struct GobgpConfig {
    pub router_id: std::net::Ipv4Addr,
    pub asn: u32,
    /// Addresses gobgpd listens on for BGP (port 179).
    pub listen: Vec<IpAddr>,
    pub neighbors: Vec<Neighbor>,
    /// Injected into the global RIB after start (`gobgp global rib add`).
    pub announcements: Vec<Announcement>,
    /// gRPC API port on 127.0.0.1 of the router's namespace.
    pub api_port: u16,
}

impl GobgpConfig {
    pub fn new(router_id: std::net::Ipv4Addr, asn: u32, listen: Vec<IpAddr>) -> Self {
        Self {
            router_id,
            asn,
            listen,
            neighbors: Vec::new(),
            announcements: Vec::new(),
            api_port: 50051,
        }
    }

    pub fn render(&self) -> String {
        let mut c = String::new();
        let listen: Vec<String> = self.listen.iter().map(|a| format!("\"{a}\"")).collect();
        let _ = writeln!(
            c,
            "# Rendered by bgpintent-tests (lab/gobgp.rs). No zebra: no FIB."
        );
        let _ = writeln!(
            c,
            "[global.config]\n  as = {}\n  router-id = \"{}\"\n  port = 179\n  local-address-list = [{}]",
            self.asn,
            self.router_id,
            listen.join(", ")
        );
        for n in &self.neighbors {
            let _ = writeln!(
                c,
                "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}\n    \
                 description = \"{}\"",
                n.address, n.asn, n.name
            );
            if let Some(pw) = &n.password {
                let _ = writeln!(c, "    auth-password = \"{pw}\"");
            }
            let _ = writeln!(
                c,
                "  [neighbors.transport.config]\n    local-address = \"{}\"\n    remote-port = {}\n    \
                 passive-mode = {}",
                n.local_address, n.port, n.passive
            );
            // GoBGP stays Idle and refuses connections for 30 s after any session loss by
            // default (`idle-hold-time-after-reset`); 1 s keeps reconnect tests short.
            let _ = writeln!(
                c,
                "  [neighbors.timers.config]\n    connect-retry = 5\n    hold-time = 90\n    keepalive-interval = 30\n    \
                 idle-hold-time-after-reset = 1"
            );
            if let Some(ttl) = n.multihop {
                let _ = writeln!(
                    c,
                    "  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = {ttl}"
                );
            }
            if let Some(hops) = n.gtsm_hops {
                let _ = writeln!(
                    c,
                    "  [neighbors.ttl-security.config]\n    enabled = true\n    ttl-min = {}",
                    256 - u16::from(hops)
                );
            }
            if !n.export {
                let _ = writeln!(
                    c,
                    "  [neighbors.apply-policy.config]\n    default-export-policy = \"reject-route\""
                );
            }
            let _ = writeln!(
                c,
                "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120"
            );
            for family in Family::ALL.into_iter().filter(|f| n.has(*f)) {
                let _ = writeln!(
                    c,
                    "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{}\"\n    \
                     [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true",
                    afi_safi(family)
                );
            }
        }
        c
    }
}

fn afi_safi(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4-unicast",
        Family::Ipv6 => "ipv6-unicast",
    }
}

fn cli_family(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

/// A running gobgpd.
#[derive(Debug)]
pub struct Gobgp {
    process: Arc<Process>,
    ns: String,
    api_port: u16,
}

impl Gobgp {
    pub(crate) fn start(ns: &Netns, dir: PathBuf, config: &GobgpConfig) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| LabError::new(format!("{}: {e}", dir.display())))?;
        let conf = dir.join("gobgpd.toml");
        std::fs::write(&conf, config.render()).map_err(|e| LabError::new(e.to_string()))?;
        let mut cmd = ns.command("gobgpd");
        cmd.arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(format!("--api-hosts=127.0.0.1:{}", config.api_port))
            .arg("--pprof-disable");
        let process = Process::spawn("gobgpd", cmd, &dir.join("gobgpd.log"))?;
        let gobgp = Self {
            process,
            ns: ns.name().to_owned(),
            api_port: config.api_port,
        };
        wait_until("GoBGP API", Duration::from_secs(10), || {
            if !gobgp.process.is_running() {
                return Err(LabError::new("gobgpd exited"));
            }
            Ok(gobgp.cli(&["global"]).ok())
        })
        .map_err(|e| gobgp.with_log(e))?;
        for a in &config.announcements {
            gobgp.announce(a)?;
        }
        Ok(gobgp)
    }

    /// Runs the `gobgp` CLI against this instance.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let port = self.api_port.to_string();
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "gobgp", "-u", "127.0.0.1", "-p", &port])
            .args(args);
        super::netns::run(&mut cmd)
    }

    /// `gobgp -j neighbor ADDR`: state, timers, graceful-restart and End-of-RIB state per
    /// family (`afi_safis[].mp_graceful_restart.state`).
    pub fn neighbor(&self, neighbor: IpAddr) -> Result<Value> {
        let out = self.cli(&["-j", "neighbor", &neighbor.to_string()])?;
        let v: Value =
            serde_json::from_str(&out).map_err(|e| LabError::new(format!("gobgp neighbor JSON: {e}")))?;
        Ok(if v.is_array() { v[0].clone() } else { v })
    }

    /// Adds a route to the global RIB (`gobgp global rib add`).
    pub fn announce(&self, a: &Announcement) -> Result<()> {
        self.cli_refs(&self.rib_args("add", a)).map(drop)
    }

    /// Removes a route added with [`Gobgp::announce`].
    pub fn withdraw(&self, a: &Announcement) -> Result<()> {
        self.cli_refs(&self.rib_args("del", a)).map(drop)
    }

    fn cli_refs(&self, args: &[String]) -> Result<String> {
        self.cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn rib_args(&self, verb: &str, a: &Announcement) -> Vec<String> {
        let family = Family::of(a.prefix.addr());
        let mut args: Vec<String> = ["global", "rib", verb, "-a", cli_family(family)]
            .map(String::from)
            .to_vec();
        args.push(a.prefix.to_string());
        if verb == "del" {
            return args;
        }
        if let Some(nh) = a.next_hop {
            args.extend(["nexthop".into(), nh.to_string()]);
        }
        if let Some(med) = a.med {
            args.extend(["med".into(), med.to_string()]);
        }
        if let Some(origin) = a.origin {
            args.extend(["origin".into(), origin.keyword().into()]);
        }
        if !a.communities.is_empty() {
            let list: Vec<String> = a.communities.iter().map(|(x, y)| format!("{x}:{y}")).collect();
            args.extend(["community".into(), list.join(",")]);
        }
        if !a.large_communities.is_empty() {
            let list: Vec<String> = a
                .large_communities
                .iter()
                .map(|(x, y, z)| format!("{x}:{y}:{z}"))
                .collect();
            args.extend(["large-community".into(), list.join(",")]);
        }
        args
    }
}

impl Gobgp {
    pub(crate) fn process_arc(&self) -> &Arc<Process> {
        &self.process
    }
}

impl Router for Gobgp {
    fn name(&self) -> &str {
        "gobgp"
    }

    fn process(&self) -> &Process {
        &self.process
    }

    fn routes(&self, family: Family) -> Result<Vec<Route>> {
        parse_gobgp(&self.cli(&["-j", "global", "rib", "-a", cli_family(family)])?)
    }

    fn session_generation(&self, neighbor: IpAddr) -> Result<String> {
        // No "times established" counter in the JSON; OPENs received (cumulative over
        // the neighbour's life) and the uptime timestamp (seconds) change on every reset.
        let v = self.neighbor(neighbor)?;
        let opens = &v["state"]["messages"]["received"]["open"];
        let uptime = &v["timers"]["state"]["uptime"]["seconds"];
        if opens.is_null() && uptime.is_null() {
            return Err(LabError::new(format!(
                "gobgp neighbor {neighbor}: no OPEN count or uptime"
            )));
        }
        Ok(format!("opens={opens} uptime={uptime}"))
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState> {
        let out = self.cli(&["-j", "neighbor", &neighbor.to_string()])?;
        let v: Value =
            serde_json::from_str(&out).map_err(|e| LabError::new(format!("gobgp neighbor JSON: {e}")))?;
        let v = if v.is_array() { v[0].clone() } else { v };
        let state = &v["state"]["session_state"];
        // GoBGP's API enum: 1 idle .. 6 established (some versions print the name).
        let code = state.as_u64().or_else(|| {
            let s = state.as_str()?.to_ascii_lowercase();
            [
                "unknown",
                "idle",
                "connect",
                "active",
                "opensent",
                "openconfirm",
                "established",
            ]
            .iter()
            .position(|n| *n == s)
            .map(|p| p as u64)
        });
        Ok(match code {
            Some(6) => SessionState::Established,
            Some(5) => SessionState::OpenConfirm,
            Some(4) => SessionState::OpenSent,
            Some(3) => SessionState::Active,
            Some(2) => SessionState::Connect,
            _ => SessionState::Idle,
        })
    }
}
