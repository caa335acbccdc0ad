//! FRR's bgpd alone (no zebra, so nothing reaches a FIB) as a private instance: config
//! rendered here, vty socket in the lab directory, routes read as JSON through vtysh.

use std::{fmt::Write as _, net::IpAddr, path::PathBuf, process::Command, sync::Arc, time::Duration};

use bgpintent_api::{Family, SessionState};
use serde_json::Value;

use super::{
    LabError, Result,
    netns::{Netns, run},
    process::Process,
    route::{Route, parse_frr},
    router::{Announcement, Neighbor, Router, wait_until},
};

/// Where Debian installs the daemon (it is not on `PATH`).
pub const FRR_BGPD: &str = "/usr/lib/frr/bgpd";

/// An FRR bgpd instance's configuration.
#[derive(Debug, Clone)]
pub struct FrrConfig {
    pub router_id: std::net::Ipv4Addr,
    pub asn: u32,
    pub neighbors: Vec<Neighbor>,
    /// `network` statements (with a route-map for MED and communities).
    pub announcements: Vec<Announcement>,
}

impl FrrConfig {
    pub fn new(router_id: std::net::Ipv4Addr, asn: u32) -> Self {
        Self {
            router_id,
            asn,
            neighbors: Vec::new(),
            announcements: Vec::new(),
        }
    }

    /// The bgpd config. `no bgp ebgp-requires-policy`: FRR otherwise exchanges nothing on
    /// eBGP sessions without policy (RFC 8212); `no bgp network import-check`: without
    /// zebra no route would ever "exist" for a `network` statement.
    pub fn render(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(
            c,
            "! Rendered by bgpintent-tests (lab/frr.rs).\nfrr defaults traditional\n!"
        );
        for (i, a) in self.announcements.iter().enumerate() {
            let _ = writeln!(c, "route-map ANN{i} permit 10");
            if let Some(med) = a.med {
                let _ = writeln!(c, " set metric {med}");
            }
            if let Some(origin) = a.origin {
                let _ = writeln!(c, " set origin {}", origin.keyword());
            }
            if !a.communities.is_empty() {
                let list: Vec<String> = a.communities.iter().map(|(x, y)| format!("{x}:{y}")).collect();
                let _ = writeln!(c, " set community {}", list.join(" "));
            }
            if !a.large_communities.is_empty() {
                let list: Vec<String> = a
                    .large_communities
                    .iter()
                    .map(|(x, y, z)| format!("{x}:{y}:{z}"))
                    .collect();
                let _ = writeln!(c, " set large-community {}", list.join(" "));
            }
            let _ = writeln!(c, "exit\n!");
        }
        let _ = writeln!(c, "route-map NONE deny 10\nexit\n!");
        let _ = writeln!(
            c,
            "router bgp {}\n bgp router-id {}\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n \
             no bgp network import-check\n bgp graceful-restart",
            self.asn, self.router_id
        );
        for n in &self.neighbors {
            let a = n.address;
            let _ = writeln!(
                c,
                " neighbor {a} remote-as {}\n neighbor {a} description {}",
                n.asn, n.name
            );
            let _ = writeln!(
                c,
                " neighbor {a} port {}\n neighbor {a} update-source {}",
                n.port, n.local_address
            );
            let _ = writeln!(c, " neighbor {a} timers connect 5");
            if let Some(pw) = &n.password {
                let _ = writeln!(c, " neighbor {a} password {pw}");
            }
            if let Some(hops) = n.gtsm_hops {
                let _ = writeln!(c, " neighbor {a} ttl-security hops {hops}");
            } else if let Some(ttl) = n.multihop {
                let _ = writeln!(c, " neighbor {a} ebgp-multihop {ttl}");
            }
            if n.passive {
                let _ = writeln!(c, " neighbor {a} passive");
            }
        }
        for family in Family::ALL {
            let _ = writeln!(c, " !\n address-family {} unicast", afi(family));
            for (i, ann) in self.announcements.iter().enumerate() {
                if Family::of(ann.prefix.addr()) == family {
                    let _ = writeln!(c, "  network {} route-map ANN{i}", ann.prefix);
                }
            }
            for n in self.neighbors.iter().filter(|n| n.has(family)) {
                let _ = writeln!(c, "  neighbor {} activate", n.address);
                if !n.export {
                    let _ = writeln!(c, "  neighbor {} route-map NONE out", n.address);
                }
            }
            let _ = writeln!(c, " exit-address-family");
        }
        let _ = writeln!(c, "exit\n!");
        c
    }
}

fn afi(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

/// A running FRR bgpd.
#[derive(Debug)]
pub struct Frr {
    process: Arc<Process>,
    vty_dir: PathBuf,
}

impl Frr {
    pub(crate) fn start(ns: &Netns, dir: PathBuf, config: &FrrConfig) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| LabError::new(format!("{}: {e}", dir.display())))?;
        let conf = dir.join("bgpd.conf");
        std::fs::write(&conf, config.render()).map_err(|e| LabError::new(e.to_string()))?;
        // Foreground (no -d) so we hold bgpd itself. -Z: no zebra; -S: stay root (no frr
        // user needed); -P 0: no TCP vty; vtysh talks to the unix socket in `dir`.
        let mut cmd = ns.command(FRR_BGPD);
        cmd.args(["-Z", "-S", "-P", "0", "--log", "stdout", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("bgpd.pid"))
            .arg("--vty_socket")
            .arg(&dir);
        let process = Process::spawn("bgpd", cmd, &dir.join("bgpd.log"))?;
        let frr = Self {
            process,
            vty_dir: dir,
        };
        wait_until("FRR vty", Duration::from_secs(10), || {
            if !frr.process.is_running() {
                return Err(LabError::new("bgpd exited"));
            }
            Ok(frr.vtysh("show version").ok())
        })
        .map_err(|e| frr.with_log(e))?;
        Ok(frr)
    }

    /// Runs one vtysh command against this bgpd.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        let out = run(Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&self.vty_dir)
            .args(["-d", "bgpd", "-c", command]))?;
        if out.starts_with('%') {
            return Err(LabError::new(format!("vtysh `{command}`: {}", out.trim())));
        }
        Ok(out)
    }
}

impl Frr {
    /// `show bgp neighbors ADDR json` for one neighbour (state, graceful restart info,
    /// last notification).
    pub fn neighbor(&self, neighbor: IpAddr) -> Result<Value> {
        let out = self.vtysh(&format!("show bgp neighbors {neighbor} json"))?;
        let v: Value =
            serde_json::from_str(&out).map_err(|e| LabError::new(format!("FRR neighbor JSON: {e}")))?;
        Ok(v[neighbor.to_string()].clone())
    }

    pub(crate) fn process_arc(&self) -> &Arc<Process> {
        &self.process
    }
}

impl Router for Frr {
    fn name(&self) -> &str {
        "frr"
    }

    fn process(&self) -> &Process {
        &self.process
    }

    fn routes(&self, family: Family) -> Result<Vec<Route>> {
        parse_frr(&self.vtysh(&format!("show bgp {} unicast json detail", afi(family)))?)
    }

    fn session_generation(&self, neighbor: IpAddr) -> Result<String> {
        let v = self.neighbor(neighbor)?;
        v["connectionsEstablished"]
            .as_u64()
            .map(|n| format!("established={n}"))
            .ok_or_else(|| LabError::new(format!("FRR neighbour {neighbor}: no connectionsEstablished")))
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState> {
        let out = self.vtysh(&format!("show bgp neighbors {neighbor} json"))?;
        let v: Value =
            serde_json::from_str(&out).map_err(|e| LabError::new(format!("FRR neighbor JSON: {e}")))?;
        let state = v[neighbor.to_string()]["bgpState"]
            .as_str()
            .ok_or_else(|| LabError::new(format!("FRR has no neighbour {neighbor}: {}", out.trim())))?;
        Ok(match state {
            "Established" => SessionState::Established,
            "OpenConfirm" => SessionState::OpenConfirm,
            "OpenSent" => SessionState::OpenSent,
            "Active" => SessionState::Active,
            "Connect" => SessionState::Connect,
            _ => SessionState::Idle,
        })
    }
}
