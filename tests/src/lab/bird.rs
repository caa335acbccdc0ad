//! BIRD 2 as a private instance: config rendered here, control socket and logs in the lab
//! directory, routes read with `birdc show route all`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    process::Command,
    sync::Arc,
    time::Duration,
};

use bgpintent_api::{Family, SessionState};

use super::{
    LabError, Result,
    netns::{Netns, run},
    process::Process,
    route::{Route, parse_bird},
    router::{Announcement, Neighbor, Router, wait_until},
};

/// A BIRD instance's configuration.
#[derive(Debug, Clone)]
pub struct BirdConfig {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub neighbors: Vec<Neighbor>,
    /// Static (blackhole) routes with BGP attributes, exported to neighbours with `export`.
    pub announcements: Vec<Announcement>,
    /// Log every BGP message, route change and state change of the sessions (`debug {
    /// states, events, packets, routes }`): shows "Got END-OF-RIB" and the like. Off for
    /// bulk routes.
    pub debug: bool,
}

impl BirdConfig {
    pub fn new(router_id: Ipv4Addr, asn: u32) -> Self {
        Self {
            router_id,
            asn,
            neighbors: Vec::new(),
            announcements: Vec::new(),
            debug: false,
        }
    }

    /// The config file. Timers are lowered from BIRD's defaults (connect retry 120 s,
    /// error wait 60-300 s), which would make every test wait minutes after a failure.
    pub fn render(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "# Rendered by bgpintent-tests (lab/bird.rs).");
        // Microsecond log timestamps: the announce benchmark times UPDATEs by them.
        let _ = writeln!(
            c,
            "log stderr all;\ntimeformat log \"%F %T.%6f\";\nrouter id {};",
            self.router_id
        );
        let _ = writeln!(c, "# No kernel protocol: nothing learned here reaches a FIB.");
        let _ = writeln!(c, "protocol device {{ scan time 10; }}");
        for (name, family) in [("static4", Family::Ipv4), ("static6", Family::Ipv6)] {
            let _ = writeln!(c, "protocol static {name} {{\n  {};", channel(family));
            for a in self
                .announcements
                .iter()
                .filter(|a| Family::of(a.prefix.addr()) == family)
            {
                let mut attrs = String::new();
                if let Some(origin) = a.origin {
                    let _ = write!(attrs, " bgp_origin = ORIGIN_{};", origin.keyword().to_uppercase());
                }
                for (x, y) in &a.communities {
                    let _ = write!(attrs, " bgp_community.add(({x},{y}));");
                }
                for (x, y, z) in &a.large_communities {
                    let _ = write!(attrs, " bgp_large_community.add(({x},{y},{z}));");
                }
                let _ = writeln!(c, "  route {} blackhole {{{attrs} }};", a.prefix);
            }
            let _ = writeln!(c, "}}");
        }
        // BIRD sends MED to an eBGP peer only if the export filter set it ("fresh"), so
        // MEDs of announcements live here rather than on the static routes.
        let _ = writeln!(c, "filter lab_export {{");
        for a in &self.announcements {
            if let Some(med) = a.med {
                let _ = writeln!(c, "  if net = {} then bgp_med = {med};", a.prefix);
            }
        }
        let _ = writeln!(c, "  accept;\n}}");
        let _ = writeln!(
            c,
            "template bgp labpeer {{\n  local as {};\n  hold time 90; keepalive time 30;\n  \
             connect delay time 1; connect retry time 5; error wait time 1, 10;\n  \
             graceful restart on;{}\n}}",
            self.asn,
            if self.debug {
                "\n  debug { states, events, packets, routes };"
            } else {
                ""
            }
        );
        for n in &self.neighbors {
            let _ = writeln!(c, "protocol bgp {} from labpeer {{", n.name);
            let _ = writeln!(c, "  local {} port 179;", n.local_address);
            let _ = writeln!(c, "  neighbor {} port {} as {};", n.address, n.port, n.asn);
            if let Some(pw) = &n.password {
                let _ = writeln!(c, "  password \"{pw}\";");
            }
            if let Some(hops) = n.gtsm_hops {
                let _ = writeln!(c, "  ttl security on;");
                if hops > 1 {
                    let _ = writeln!(c, "  multihop {hops};");
                }
            } else if let Some(ttl) = n.multihop {
                let _ = writeln!(c, "  multihop {ttl};");
            }
            if n.passive {
                let _ = writeln!(c, "  passive on;");
            }
            let export = if n.export { "filter lab_export" } else { "none" };
            for family in Family::ALL.into_iter().filter(|f| n.has(*f)) {
                let _ = writeln!(c, "  {} {{ import all; export {export}; }};", channel(family));
            }
            let _ = writeln!(c, "}}");
        }
        c
    }
}

fn channel(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

/// A running BIRD.
#[derive(Debug)]
pub struct Bird {
    process: Arc<Process>,
    ctl: PathBuf,
    /// neighbour address → protocol name
    protocols: BTreeMap<IpAddr, String>,
}

impl Bird {
    pub(crate) fn start(ns: &Netns, dir: PathBuf, config: &BirdConfig) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| LabError::new(format!("{}: {e}", dir.display())))?;
        let conf = dir.join("bird.conf");
        std::fs::write(&conf, config.render()).map_err(|e| LabError::new(e.to_string()))?;
        let ctl = dir.join("bird.ctl");
        let mut cmd = ns.command("bird");
        // -f: stay in the foreground, so the process we hold is BIRD itself.
        cmd.arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(&ctl)
            .arg("-P")
            .arg(dir.join("bird.pid"));
        let process = Process::spawn("bird", cmd, &dir.join("bird.log"))?;
        let bird = Self {
            process,
            ctl,
            protocols: config
                .neighbors
                .iter()
                .map(|n| (n.address, n.name.clone()))
                .collect(),
        };
        wait_until("BIRD control socket", Duration::from_secs(10), || {
            if !bird.process.is_running() {
                return Err(LabError::new("bird exited"));
            }
            Ok(bird.birdc(&["show", "status"]).ok())
        })
        .map_err(|e| bird.with_log(e))?;
        Ok(bird)
    }

    /// Runs `birdc -s CTL args..` and returns its output.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        run(Command::new("birdc").arg("-s").arg(&self.ctl).args(args))
    }

    /// Path of the control socket (for `birdc -s` by hand).
    pub fn control_socket(&self) -> &std::path::Path {
        &self.ctl
    }

    fn protocol(&self, neighbor: IpAddr) -> Result<&str> {
        self.protocols
            .get(&neighbor)
            .map(String::as_str)
            .ok_or_else(|| LabError::new(format!("BIRD has no neighbour {neighbor}")))
    }

    /// `show protocols all <session>`: state, negotiated capabilities, graceful-restart
    /// state and route counts of the session with `neighbor`.
    pub fn protocol_info(&self, neighbor: IpAddr) -> Result<String> {
        self.birdc(&["show", "protocols", "all", self.protocol(neighbor)?])
    }

    /// Routes imported from `neighbor` on its first channel ("Routes: N imported").
    pub fn imported(&self, neighbor: IpAddr) -> Result<u64> {
        let info = self.protocol_info(neighbor)?;
        imported_in(&info).ok_or_else(|| LabError::new(format!("no route count in {info:?}")))
    }

    /// Disables / enables the session to `neighbor` (`birdc disable|enable`).
    pub fn set_enabled(&self, neighbor: IpAddr, enabled: bool) -> Result<()> {
        let verb = if enabled { "enable" } else { "disable" };
        self.birdc(&[verb, self.protocol(neighbor)?]).map(drop)
    }
}

impl Bird {
    pub(crate) fn process_arc(&self) -> &Arc<Process> {
        &self.process
    }
}

impl Router for Bird {
    fn name(&self) -> &str {
        "bird"
    }

    fn process(&self) -> &Process {
        &self.process
    }

    fn routes(&self, family: Family) -> Result<Vec<Route>> {
        let table = match family {
            Family::Ipv4 => "master4",
            Family::Ipv6 => "master6",
        };
        parse_bird(&self.birdc(&["show", "route", "table", table, "all"])?)
    }

    fn session_generation(&self, neighbor: IpAddr) -> Result<String> {
        // "spk4  BGP  ---  up  12:00:01.234  Established": the time of the last state change,
        // to a tenth of a second. BIRD restamps it once within a few milliseconds of
        // Established (seen: .410 then .411 with nothing else happening); a real reset cannot
        // finish that fast (our IdleHold is at least 750 ms), so the tenths still tell it.
        let name = self.protocol(neighbor)?;
        let out = self.birdc(&["show", "protocols", name])?;
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(4))
            .map(|since| match since.split_once('.') {
                Some((whole, fraction)) => format!("{whole}.{}", &fraction[..fraction.len().min(1)]),
                None => since.to_owned(),
            })
            .ok_or_else(|| LabError::new(format!("no `since` for {name} in {out:?}")))
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState> {
        let out = self.birdc(&["show", "protocols", "all", self.protocol(neighbor)?])?;
        let state = bgp_state_in(&out).ok_or_else(|| LabError::new(format!("no BGP state in {out:?}")))?;
        Ok(match state {
            "Established" => SessionState::Established,
            "OpenConfirm" => SessionState::OpenConfirm,
            "OpenSent" => SessionState::OpenSent,
            "Active" => SessionState::Active,
            "Connect" => SessionState::Connect,
            _ => SessionState::Idle, // "Idle", "Down"
        })
    }
}

/// "Routes: N imported" of a `show protocols all` output.
pub fn imported_in(info: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix("Routes:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// "BGP state: X" of a `show protocols all` output.
pub fn bgp_state_in(info: &str) -> Option<&str> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix("BGP state:"))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sessions_and_statics() {
        let mut cfg = BirdConfig::new(Ipv4Addr::new(192, 0, 2, 2), 64502);
        cfg.neighbors.push(
            Neighbor::new(
                "spk4",
                "192.0.2.2".parse().unwrap(),
                "192.0.2.1".parse().unwrap(),
                64500,
            )
            .password("pw")
            .multihop(2)
            .passive()
            .no_export(),
        );
        cfg.announcements
            .push(Announcement::new("203.0.113.64/26").med(7).community(64502, 1));
        let text = cfg.render();
        for want in [
            "neighbor 192.0.2.1 port 179 as 64500;",
            "password \"pw\";",
            "multihop 2;",
            "passive on;",
            "ipv4 { import all; export none; };",
            "route 203.0.113.64/26 blackhole { bgp_community.add((64502,1)); };",
            "if net = 203.0.113.64/26 then bgp_med = 7;",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("ipv6 { import"), "{text}");
    }
}
