//! The standard lab topology (see the diagram in `mod.rs`): the speaker's namespace owns a
//! bridge, every router namespace hangs off it with a veth, and an optional forwarding
//! router leads to a "far" namespace one hop further for multihop and TTL tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{BirdConfig, FrrConfig, GobgpConfig, Lab, Neighbor, Result};

pub const SPEAKER: &str = "spk";
pub const BIRD: &str = "bird";
pub const GOBGP: &str = "gobgp";
pub const FRR: &str = "frr";
/// Forwarding router between the bridge and [`FAR`].
pub const ROUTER: &str = "rtr";
pub const FAR: &str = "far";
/// GoBGP and FRR behind the forwarding router (with [`Topology::far_routers`]).
pub const FAR_GOBGP: &str = "farg";
pub const FAR_FRR: &str = "farf";

pub const SPEAKER_AS: u32 = 64500;
pub const BIRD_AS: u32 = 64502;
pub const GOBGP_AS: u32 = 64503;
pub const FRR_AS: u32 = 64504;

/// Which nodes [`Lab::standard`] creates. Routers are not started: tests start them with
/// the sessions they need (`Lab::start_bird` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Topology {
    pub bird: bool,
    pub gobgp: bool,
    pub frr: bool,
    /// `rtr` (forwarding) and `far` behind it.
    pub multihop: bool,
    /// With `multihop`: also `farg` (198.51.100.3) and `farf` (198.51.100.4) behind `rtr`,
    /// so GoBGP and FRR get multihop sessions of their own.
    pub far_routers: bool,
}

impl Topology {
    /// Every node.
    pub const ALL: Topology = Topology {
        bird: true,
        gobgp: true,
        frr: true,
        multihop: true,
        far_routers: false,
    };
    /// BIRD, GoBGP and FRR, no multihop part.
    pub const ROUTERS: Topology = Topology {
        bird: true,
        gobgp: true,
        frr: true,
        multihop: false,
        far_routers: false,
    };
}

const fn v4(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, host)
}

const fn v6(host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, host)
}

const RTR_FAR_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const RTR_FAR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);

impl Lab {
    /// Builds the standard topology: `spk` with bridge `br0` (192.0.2.1/24,
    /// 2001:db8:1::1/64) and the nodes `topology` asks for, each with `eth0` on the bridge
    /// (`bird` .2, `gobgp` .3, `frr` .4; `rtr` .254 / ::fe forwarding to `far`
    /// 198.51.100.2 / 2001:db8:2::2).
    pub fn standard(test: &str, topology: Topology) -> Result<Lab> {
        let mut lab = Lab::new(test)?;
        lab.add_node(SPEAKER, Some(v4(1)), Some(v6(1)))?;
        lab.bridge(SPEAKER, "br0")?;
        lab.ns(SPEAKER).add_addr("br0", "192.0.2.1/24")?;
        lab.ns(SPEAKER).add_addr("br0", "2001:db8:1::1/64")?;
        for (name, wanted, host) in [
            (BIRD, topology.bird, 2),
            (GOBGP, topology.gobgp, 3),
            (FRR, topology.frr, 4),
            (ROUTER, topology.multihop, 254),
        ] {
            if wanted {
                lab.attach_to_bridge(name, v4(host), v6(u16::from(host)))?;
            }
        }
        if topology.multihop {
            // `rtr` owns a second bridge `br1` (198.51.100.1/24, 2001:db8:2::1/64) with the
            // far nodes on it, one hop from the speaker's bridge.
            lab.bridge(ROUTER, "br1")?;
            let rtr = lab.ns(ROUTER);
            rtr.add_addr("br1", "198.51.100.1/24")?;
            rtr.add_addr("br1", "2001:db8:2::1/64")?;
            rtr.sysctl("net.ipv4.ip_forward", "1")?;
            rtr.sysctl("net.ipv6.conf.all.forwarding", "1")?;
            let mut far = vec![(FAR, 2u8)];
            if topology.far_routers {
                far.extend([(FAR_GOBGP, 3), (FAR_FRR, 4)]);
            }
            for (name, host) in far {
                let a4 = Ipv4Addr::new(198, 51, 100, host);
                let a6 = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, u16::from(host));
                lab.add_node(name, Some(a4), Some(a6))?;
                let rtr_if = format!("v-{name}");
                lab.link(ROUTER, &rtr_if, name, "eth0")?;
                lab.ns(ROUTER).ip(&["link", "set", &rtr_if, "master", "br1"])?;
                let ns = lab.ns(name);
                ns.add_addr("eth0", &format!("{a4}/24"))?;
                ns.add_addr("eth0", &format!("{a6}/64"))?;
                ns.ip(&["route", "add", "192.0.2.0/24", "via", &RTR_FAR_V4.to_string()])?;
                ns.ip(&[
                    "-6",
                    "route",
                    "add",
                    "2001:db8:1::/64",
                    "via",
                    &RTR_FAR_V6.to_string(),
                ])?;
            }
            for name in [SPEAKER, BIRD, GOBGP, FRR] {
                if let Some(node) = lab.nodes.get(name) {
                    node.ns
                        .ip(&["route", "add", "198.51.100.0/24", "via", "192.0.2.254"])?;
                    node.ns
                        .ip(&["-6", "route", "add", "2001:db8:2::/64", "via", "2001:db8:1::fe"])?;
                }
            }
        }
        Ok(lab)
    }

    /// Adds node `name` with `eth0` on the speaker's bridge and the given addresses.
    pub fn attach_to_bridge(&mut self, name: &str, a4: Ipv4Addr, a6: Ipv6Addr) -> Result<()> {
        self.add_node(name, Some(a4), Some(a6))?;
        let host_if = format!("v-{name}");
        self.link(SPEAKER, &host_if, name, "eth0")?;
        self.ns(SPEAKER).ip(&["link", "set", &host_if, "master", "br0"])?;
        let ns = self.ns(name);
        ns.add_addr("eth0", &format!("{a4}/24"))?;
        ns.add_addr("eth0", &format!("{a6}/64"))?;
        Ok(())
    }

    /// IPv4 address of a node (panics if it has none: a test bug).
    pub fn v4(&self, node: &str) -> IpAddr {
        IpAddr::V4(
            self.node(node)
                .v4
                .unwrap_or_else(|| panic!("{node} has no IPv4 address")),
        )
    }

    /// IPv6 address of a node (panics if it has none: a test bug).
    pub fn v6(&self, node: &str) -> IpAddr {
        IpAddr::V6(
            self.node(node)
                .v6
                .unwrap_or_else(|| panic!("{node} has no IPv6 address")),
        )
    }
}

impl Lab {
    /// Sessions from router node `node` to the speaker (AS [`SPEAKER_AS`], port 179): `spk4`
    /// over IPv4 carrying IPv4, `spk6` over IPv6 carrying IPv6. The routers connect
    /// actively and accept, and export nothing to the speaker (it is announce-only); call
    /// `.password()`, `.passive()`, `.families()` etc. on the result to change that.
    pub fn speaker_neighbors(&self, node: &str) -> Vec<Neighbor> {
        vec![
            Neighbor::new("spk4", self.v4(node), self.v4(SPEAKER), SPEAKER_AS).no_export(),
            Neighbor::new("spk6", self.v6(node), self.v6(SPEAKER), SPEAKER_AS).no_export(),
        ]
    }

    /// BIRD on the `bird` node (router ID 192.0.2.2, AS [`BIRD_AS`]) with
    /// [`Lab::speaker_neighbors`].
    pub fn bird_config(&self) -> BirdConfig {
        let mut c = BirdConfig::new(v4(2), BIRD_AS);
        c.neighbors = self.speaker_neighbors(BIRD);
        c
    }

    /// GoBGP on the `gobgp` node (192.0.2.3, AS [`GOBGP_AS`]) with the speaker sessions.
    pub fn gobgp_config(&self) -> GobgpConfig {
        let mut c = GobgpConfig::new(v4(3), GOBGP_AS, vec![self.v4(GOBGP), self.v6(GOBGP)]);
        c.neighbors = self.speaker_neighbors(GOBGP);
        c
    }

    /// FRR on the `frr` node (192.0.2.4, AS [`FRR_AS`]) with the speaker sessions.
    pub fn frr_config(&self) -> FrrConfig {
        let mut c = FrrConfig::new(v4(4), FRR_AS);
        c.neighbors = self.speaker_neighbors(FRR);
        c
    }
}
