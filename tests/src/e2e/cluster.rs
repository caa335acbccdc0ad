//! The deployed whole in network namespaces: the fake API server, the controller replicas
//! and one speaker per Node, each a separate process started from the chart, with BIRD and
//! FRR as the operator's routers.
//!
//! ```text
//!  <id>-cp: bridge br0 192.0.2.1/24 2001:db8:1::1/64, fake-apiserver (API :6443, admin :6444)
//!   ├── <id>-ctl-0 192.0.2.21   controller replica (its own "Pod network" namespace: both
//!   ├── <id>-ctl-1 192.0.2.22   replicas listen on 0.0.0.0:8080 as the Deployment says)
//!   ├── <id>-node-1 192.0.2.11 2001:db8:1::11   speaker (host network = the Node: BGP :179,
//!   ├── <id>-node-2 192.0.2.12 2001:db8:1::12             metrics :9473)
//!   ├── <id>-node-3 192.0.2.13 2001:db8:1::13
//!   ├── <id>-bird 192.0.2.2 2001:db8:1::2   BIRD AS 64502 (IPv4 sessions with TCP-MD5)
//!   └── <id>-frr  192.0.2.4 2001:db8:1::4   FRR  AS 64504
//! ```
//!
//! The test talks to everything from inside those namespaces ([`super::http`]); nothing of
//! the lab is routed to or from the host.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    apiserver::ApiServer,
    chart::{self, NAMESPACE, PodInfo, Rendered},
    pod::{Binaries, Pod, build_binaries},
    watch::{ProbeWatch, RouteWatch, SharedRouter},
};
use crate::lab::{self, Bird, BirdConfig, FRR_BGPD, Frr, FrrConfig, Lab, LabError, Neighbor, Result};

pub const CP: &str = "cp";
pub const BIRD: &str = "bird";
pub const FRR: &str = "frr";
pub const BIRD_AS: u32 = 64502;
pub const FRR_AS: u32 = 64504;
pub const BIRD_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const BIRD_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
pub const FRR_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 4);
pub const FRR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 4);
/// TCP-MD5 password of the Nodes' IPv4 sessions with BIRD (a lab-only value).
pub const BIRD_PASSWORD: &str = "e2e-md5-bird";

const API: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 6443);
const ADMIN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 6444);

/// Programs the suite needs besides the chart tools.
pub const PROGRAMS: &[&str] = &["ip", "bird", "birdc", FRR_BGPD, "vtysh"];

/// A Node of the cluster: its namespace name, addresses and the AS its policy gives it
/// (the routers' neighbour config must match).
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    pub asn: u32,
}

impl NodeSpec {
    /// `node-<n>` at 192.0.2.1<n> / 2001:db8:1::1<n>.
    pub fn new(n: u8, asn: u32) -> Self {
        Self {
            name: format!("node-{n}"),
            v4: Ipv4Addr::new(192, 0, 2, 10 + n),
            v6: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10 + u16::from(n)),
            asn,
        }
    }
}

/// `helm` or `kubectl`, as `scripts/k8s-tools` installs them (pinned, checksum-verified) in
/// `target/tools/bin`. The script is run once per test process (it is idempotent and checks
/// the versions), so a fresh machine needs nothing installed by hand.
pub fn tool(name: &str) -> Option<PathBuf> {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let root = chart::repo_root();
    INSTALL.call_once(|| {
        let script = root.join("scripts/k8s-tools");
        match std::process::Command::new(&script)
            .stdout(std::process::Stdio::null())
            .status()
        {
            Ok(s) if s.success() => {}
            other => eprintln!("e2e: {} failed: {other:?}", script.display()),
        }
    });
    let bin = root.join("target/tools/bin").join(name);
    bin.is_file().then_some(bin)
}

/// Whether the suite can run (root, routers, helm, kubectl); see [`lab::require`]: under
/// `CI` a missing piece fails the test.
pub fn require(test: &str) -> bool {
    let mut programs: Vec<String> = PROGRAMS.iter().map(|s| s.to_string()).collect();
    for t in ["helm", "kubectl"] {
        programs.push(
            tool(t)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("target/tools/bin/{t} (scripts/k8s-tools)")),
        );
    }
    let refs: Vec<&str> = programs.iter().map(String::as_str).collect();
    lab::require(test, &refs)
}

/// The running whole.
#[derive(Debug)]
pub struct Cluster {
    // Field order is drop order: pollers, then processes, then routers, then namespaces.
    pub probes: ProbeWatch,
    pub routes: Option<RouteWatch>,
    pub controllers: Vec<Pod>,
    pub speakers: Vec<Pod>,
    pub api: ApiServer,
    pub bird: Arc<Bird>,
    pub frr: Arc<Frr>,
    pub chart: Rendered,
    pub nodes: Vec<NodeSpec>,
    pub binaries: Binaries,
    pub started: Instant,
    pub lab: Lab,
}

impl Cluster {
    /// Namespaces, the API server and the routers (sessions to every Node); no controller or
    /// speaker yet (the test first creates the objects, then [`Cluster::start_controllers`]
    /// and [`Cluster::start_speakers`]).
    pub fn up(test: &str, nodes: Vec<NodeSpec>) -> Result<Self> {
        let started = Instant::now();
        let binaries = build_binaries();
        let helm = tool("helm").ok_or_else(|| LabError::new("no helm"))?;
        let chart = chart::render(&helm)?;
        let mut lab = Lab::new(test)?;
        lab.add_node(CP, Some(Ipv4Addr::new(192, 0, 2, 1)), Some(v6(1)))?;
        lab.bridge(CP, "br0")?;
        lab.ns(CP).add_addr("br0", "192.0.2.1/24")?;
        lab.ns(CP).add_addr("br0", "2001:db8:1::1/64")?;
        let mut attach = |name: &str, a4: Ipv4Addr, a6: Ipv6Addr| -> Result<()> {
            lab.add_node(name, Some(a4), Some(a6))?;
            let host_if = format!("v-{name}");
            lab.link(CP, &host_if, name, "eth0")?;
            lab.ns(CP).ip(&["link", "set", &host_if, "master", "br0"])?;
            let ns = lab.ns(name);
            ns.add_addr("eth0", &format!("{a4}/24"))?;
            ns.add_addr("eth0", &format!("{a6}/64"))?;
            Ok(())
        };
        for i in 0..chart.controller.replicas.unwrap_or(1) as u8 {
            attach(
                &format!("ctl-{i}"),
                Ipv4Addr::new(192, 0, 2, 21 + i),
                v6(0x21 + u16::from(i)),
            )?;
        }
        for n in &nodes {
            attach(&n.name, n.v4, n.v6)?;
        }
        attach(BIRD, BIRD_V4, BIRD_V6)?;
        attach(FRR, FRR_V4, FRR_V6)?;

        let api = ApiServer::start(
            &binaries.apiserver,
            lab.ns(CP),
            API,
            ADMIN,
            &chart::repo_root().join("crd"),
            lab.dir(),
        )?;

        let neighbors = |router_v4: Ipv4Addr, router_v6: Ipv6Addr, md5: Option<&str>| {
            let mut out = Vec::new();
            for n in &nodes {
                let id = n.name.replace('-', "");
                let mut v4 =
                    Neighbor::new(&format!("{id}_4"), router_v4.into(), n.v4.into(), n.asn).no_export();
                if let Some(p) = md5 {
                    v4 = v4.password(p);
                }
                out.push(v4);
                out.push(Neighbor::new(&format!("{id}_6"), router_v6.into(), n.v6.into(), n.asn).no_export());
            }
            out
        };
        let mut bird = BirdConfig::new(BIRD_V4, BIRD_AS);
        bird.neighbors = neighbors(BIRD_V4, BIRD_V6, Some(BIRD_PASSWORD));
        bird.debug = true;
        let bird = Arc::new(lab.start_bird(BIRD, &bird)?);
        let mut frr = FrrConfig::new(FRR_V4, FRR_AS);
        frr.neighbors = neighbors(FRR_V4, FRR_V6, None);
        let frr = Arc::new(lab.start_frr(FRR, &frr)?);

        Ok(Self {
            probes: ProbeWatch::start(Duration::from_secs(1)),
            routes: None,
            controllers: Vec::new(),
            speakers: Vec::new(),
            api,
            bird,
            frr,
            chart,
            nodes,
            binaries,
            started,
            lab,
        })
    }

    /// Starts polling the routers (every 250 ms) from now on.
    pub fn watch_routes(&mut self) {
        let routers: Vec<SharedRouter> = vec![self.bird.clone(), self.frr.clone()];
        self.routes = Some(RouteWatch::start(routers, Duration::from_millis(250)));
    }

    pub fn routes(&self) -> &RouteWatch {
        self.routes.as_ref().expect("watch_routes() first")
    }

    /// The controller replicas of the Deployment (`replicas` of them), started as its
    /// container says; their Pod names are their identities and kubeconfig tokens.
    pub fn start_controllers(&mut self) -> Result<()> {
        let deployment = self
            .chart
            .controller
            .workload
            .trim_start_matches("Deployment/")
            .to_owned();
        for i in 0..self.chart.controller.replicas.unwrap_or(1) as usize {
            let name = format!("{deployment}-7c9d8f6b5-e2e{i}");
            let ns_name = format!("ctl-{i}");
            let info = PodInfo {
                name: name.clone(),
                namespace: NAMESPACE.into(),
                node_name: self.nodes[i % self.nodes.len()].name.clone(),
            };
            let kubeconfig = self.api.kubeconfig(
                &self.lab.dir().join(format!("{name}.kubeconfig")),
                &name,
                NAMESPACE,
            )?;
            let node = self.lab.node(&ns_name);
            let mut pod = Pod::new(
                info,
                &node.ns,
                IpAddr::V4(node.v4.expect("v4")),
                self.chart.controller.clone(),
                self.binaries.controller.clone(),
                kubeconfig,
                self.lab.dir().to_owned(),
                Some("info,bgpintent_controller=debug".into()),
            );
            pod.start()?;
            self.probes.add(pod.probe_target());
            self.controllers.push(pod);
        }
        Ok(())
    }

    /// One speaker per Node, as the DaemonSet runs it: in the Node's namespace (host
    /// network), `spec.nodeName` = the Node.
    pub fn start_speakers(&mut self) -> Result<()> {
        let ds = self
            .chart
            .speaker
            .workload
            .trim_start_matches("DaemonSet/")
            .to_owned();
        assert!(
            self.chart.speaker.host_network,
            "the DaemonSet must use the host network"
        );
        for n in self.nodes.clone() {
            let name = format!("{ds}-{}", n.name);
            let info = PodInfo {
                name: name.clone(),
                namespace: NAMESPACE.into(),
                node_name: n.name.clone(),
            };
            let kubeconfig = self.api.kubeconfig(
                &self.lab.dir().join(format!("{name}.kubeconfig")),
                &name,
                NAMESPACE,
            )?;
            let mut pod = Pod::new(
                info,
                self.lab.ns(&n.name),
                IpAddr::V4(n.v4),
                self.chart.speaker.clone(),
                self.binaries.speaker.clone(),
                kubeconfig,
                self.lab.dir().to_owned(),
                Some("info,bgpintent_speaker=debug".into()),
            );
            pod.start()?;
            self.probes.add(pod.probe_target());
            self.speakers.push(pod);
        }
        Ok(())
    }

    pub fn speaker(&self, node: &str) -> &Pod {
        self.speakers
            .iter()
            .find(|p| p.info.node_name == node)
            .unwrap_or_else(|| panic!("no speaker on {node}"))
    }

    pub fn speaker_mut(&mut self, node: &str) -> &mut Pod {
        self.speakers
            .iter_mut()
            .find(|p| p.info.node_name == node)
            .unwrap_or_else(|| panic!("no speaker on {node}"))
    }

    /// The Lease's holder (the chart's `--lease-name` in the release namespace).
    pub fn lease_holder(&self) -> Option<String> {
        let lease = self.chart.controller.flag("--lease-name")?;
        let l = self
            .api
            .get("coordination.k8s.io/v1", "Lease", NAMESPACE, lease)
            .ok()
            .flatten()?;
        l["spec"]["holderIdentity"].as_str().map(str::to_owned)
    }

    /// Index in `controllers` of the replica named `name`.
    pub fn controller_index(&self, name: &str) -> Option<usize> {
        self.controllers.iter().position(|c| c.name() == name)
    }

    /// Tails of every log (API server, controllers, speakers), for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = format!("----- fake-apiserver\n{}\n", self.api.process().log_tail(lines));
        for kind in ["BGPNodeIntent", "BGPAdvertisementSet"] {
            for o in self.api.list("bgpintent.io/v1alpha1", kind).unwrap_or_default() {
                let mut o = o.clone();
                if let Some(m) = o["metadata"].as_object_mut() {
                    m.remove("managedFields");
                }
                out.push_str(&format!("----- {kind}: {o}\n"));
            }
        }
        for p in self.controllers.iter().chain(&self.speakers) {
            out.push_str(&p.log_tail(lines));
        }
        out
    }

    /// Panics with `what`, the error and every log tail.
    pub fn fail(&self, what: &str, e: impl std::fmt::Display) -> ! {
        panic!("{what}: {e}\n{}", self.logs(30))
    }

    /// Waits until every Pod in `pods` answers its readiness probe with 200.
    pub fn wait_ready(&self, pods: &[&Pod], timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        for p in pods {
            lab::wait_until(
                &format!("{} ready", p.name()),
                timeout.saturating_sub(start.elapsed()),
                || Ok((p.probe(&p.container.readiness).ok() == Some(200)).then_some(())),
            )
            .map_err(|e| e.context(p.log_tail(30)))?;
        }
        Ok(start.elapsed())
    }

    /// `kubectl <args>` against the fake API server with the test's kubeconfig, run inside
    /// the control-plane namespace; stdout (and stderr on failure).
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        let kubectl = tool("kubectl").ok_or_else(|| LabError::new("no kubectl"))?;
        let config = self
            .api
            .kubeconfig(&self.lab.dir().join("kubectl.kubeconfig"), "kubectl", NAMESPACE)?;
        let mut cmd = self.lab.ns(CP).command(kubectl.to_str().expect("utf-8"));
        cmd.args(args)
            .env("KUBECONFIG", &config)
            .env("HOME", self.lab.dir());
        lab::run(&mut cmd)
    }
}

const fn v6(host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, host)
}
