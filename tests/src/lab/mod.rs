//! A lab of real BGP routers (BIRD 2, GoBGP, FRR bgpd) in network namespaces, for
//! interop tests of the speaker.
//!
//! ```text
//!              ns <id>-spk: bridge br0 192.0.2.1/24 2001:db8:1::1/64  ← speaker / our sockets
//!   ┌──────────────┬──────────────┼──────────────┬──────────────┐
//!  <id>-bird     <id>-gobgp     <id>-frr       <id>-rtr  192.0.2.254 | 198.51.100.1 (forwarding)
//!  .2 / ::2      .3 / ::3       .4 / ::4          │      2001:db8:1::fe | 2001:db8:2::1
//!  BIRD AS64502  GoBGP AS64503  FRR AS64504    <id>-far  198.51.100.2 / 2001:db8:2::2
//! ```
//!
//! Why it is built this way:
//! * Every test gets its own namespaces (`<id>` = pid and a counter), so tests run in
//!   parallel, and a [`Lab`] removes them on drop, panics included.
//! * Routers are our child processes in the foreground, stopped by pid (TERM, then
//!   KILL), never by name; configs are rendered from Rust in `bird.rs`, `gobgp.rs`,
//!   `frr.rs` and live with the logs in a temporary directory.
//! * Only documentation prefixes (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
//!   2001:db8::/32) and 198.18.0.0/15 for bulk routes are used, and only inside the lab's
//!   namespaces. No router has a kernel/zebra protocol: nothing reaches a FIB.
//! * Tests that need root and the routers call [`require`]: without them a test skips
//!   loudly, except under `CI`, where it fails.
//!
//! [`Netns::run`] runs Rust code (the speaker's `net` module, or a whole speaker) inside
//! a namespace on its own thread.

mod bird;
mod frr;
mod gobgp;
mod netns;
mod process;
mod route;
mod router;
mod topology;

use std::{
    collections::BTreeMap,
    fmt,
    io::Write as _,
    net::{Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
};

pub use bird::{Bird, BirdConfig, bgp_state_in, imported_in};
pub use frr::{FRR_BGPD, Frr, FrrConfig};
pub use gobgp::{Gobgp, GobgpConfig};
pub use netns::{Netns, NsThread, output, run};
pub use process::Process;
pub use route::{Origin, Route, parse_bird, parse_frr, parse_gobgp};
pub use router::{Announcement, Neighbor, Router, wait_until};
pub use topology::{
    BIRD, BIRD_AS, FAR, FAR_FRR, FAR_GOBGP, FRR, FRR_AS, GOBGP, GOBGP_AS, ROUTER, SPEAKER, SPEAKER_AS,
    Topology,
};

/// An error of the lab itself (a command failed, a wait timed out), with context lines.
#[derive(Debug, Clone)]
pub struct LabError(String);

impl LabError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// Adds a line of context below the message.
    pub fn context(mut self, line: impl AsRef<str>) -> Self {
        self.0.push('\n');
        self.0.push_str(line.as_ref());
        self
    }
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LabError {}

pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// Programs the full router lab needs (`ip` from iproute2, the routers and their CLIs).
pub const ROUTER_PROGRAMS: &[&str] = &["ip", "bird", "birdc", "gobgpd", "gobgp", FRR_BGPD, "vtysh"];

/// Whether a lab test can run: root and every program in `programs` present. If not, the
/// test must return early: this prints a loud SKIP line, and under `CI` (env var set)
/// it panics instead, so a CI run without routers fails rather than passing vacuously.
pub fn require(test: &str, programs: &[&str]) -> bool {
    let mut missing: Vec<String> = programs
        .iter()
        .filter(|p| !program_exists(p))
        .map(|p| format!("program {p}"))
        .collect();
    if !rustix::process::geteuid().is_root() {
        missing.insert(0, "root (network namespaces)".into());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: missing {} (apt-get install iproute2 bird2 gobgpd frr; run as root)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}; CI is set, so this is a failure, not a skip");
    }
    // Straight to the process's stderr, not `eprintln!`: the test harness captures the
    // latter and shows it only for failing tests, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {msg} ***\n");
    false
}

fn program_exists(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(program).is_file())
}

/// One node of the lab: a namespace and its main addresses.
#[derive(Debug)]
pub struct Node {
    pub ns: Netns,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

/// A set of namespaces, links and router processes that is torn down on drop.
///
/// Teardown order: daemons stopped (Drop), then namespaces deleted, then the temporary
/// directory removed (field order). Set `BGPINTENT_LAB_KEEP=1` to keep the directory
/// (configs and logs) of a failed test; its path is printed.
pub struct Lab {
    id: String,
    processes: Mutex<Vec<Arc<Process>>>,
    nodes: BTreeMap<String, Node>,
    dir: Option<tempfile::TempDir>,
}

impl fmt::Debug for Lab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lab")
            .field("id", &self.id)
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .field("dir", &self.dir())
            .finish()
    }
}

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// An empty lab; `test` names its temporary directory.
    pub fn new(test: &str) -> Result<Self> {
        let id = format!(
            "bi{}x{}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("bgpintent-lab-{test}-"))
            .tempdir()
            .map_err(|e| LabError::new(format!("temporary directory: {e}")))?;
        Ok(Self {
            id,
            processes: Mutex::new(Vec::new()),
            nodes: BTreeMap::new(),
            dir: Some(dir),
        })
    }

    /// The unique prefix of this lab's namespace names.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Directory with every router's config and log.
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/nonexistent"))
    }

    /// Creates a namespace `<id>-<name>` and registers it as a node.
    pub fn add_node(&mut self, name: &str, v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) -> Result<&Node> {
        if self.nodes.contains_key(name) {
            return Err(LabError::new(format!("node {name} exists")));
        }
        let ns = Netns::create(&format!("{}-{name}", self.id))?;
        Ok(self.nodes.entry(name.to_owned()).or_insert(Node { ns, v4, v6 }))
    }

    /// The node called `name`; panics if there is none (a test bug).
    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .get(name)
            .unwrap_or_else(|| panic!("lab has no node {name}"))
    }

    /// Shorthand for `self.node(name).ns`.
    pub fn ns(&self, name: &str) -> &Netns {
        &self.node(name).ns
    }

    /// A veth pair between two nodes (`if_a` in `a`, `if_b` in `b`), both ends up. It is
    /// created inside `a`'s namespace, so names never clash with the host's or other labs'.
    pub fn link(&self, a: &str, if_a: &str, b: &str, if_b: &str) -> Result<()> {
        let (na, nb) = (self.ns(a), self.ns(b));
        na.ip(&[
            "link",
            "add",
            if_a,
            "type",
            "veth",
            "peer",
            "name",
            if_b,
            "netns",
            nb.name(),
        ])?;
        na.ip(&["link", "set", if_a, "up"])?;
        nb.ip(&["link", "set", if_b, "up"])?;
        Ok(())
    }

    /// A bridge `name` in `node`, up, without IPv6 DAD on it.
    pub fn bridge(&self, node: &str, name: &str) -> Result<()> {
        let ns = self.ns(node);
        ns.ip(&["link", "add", name, "type", "bridge"])?;
        ns.sysctl(&format!("net.ipv6.conf.{name}.accept_dad"), "0")?;
        ns.ip(&["link", "set", name, "up"])?;
        Ok(())
    }

    fn router_dir(&self, kind: &str, node: &str) -> PathBuf {
        self.dir().join(format!("{node}-{kind}"))
    }

    fn register(&self, process: &Arc<Process>) {
        self.processes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(process.clone());
    }

    /// Starts BIRD in `node`.
    pub fn start_bird(&self, node: &str, config: &BirdConfig) -> Result<Bird> {
        let bird = Bird::start(self.ns(node), self.router_dir("bird", node), config)?;
        self.register(bird.process_arc());
        Ok(bird)
    }

    /// Starts gobgpd in `node` and injects the config's announcements.
    pub fn start_gobgp(&self, node: &str, config: &GobgpConfig) -> Result<Gobgp> {
        let gobgp = Gobgp::start(self.ns(node), self.router_dir("gobgp", node), config)?;
        self.register(gobgp.process_arc());
        Ok(gobgp)
    }

    /// Starts FRR's bgpd in `node`.
    pub fn start_frr(&self, node: &str, config: &FrrConfig) -> Result<Frr> {
        let frr = Frr::start(self.ns(node), self.router_dir("frr", node), config)?;
        self.register(frr.process_arc());
        Ok(frr)
    }

    /// Prints the tail of every daemon's log to stderr (the test harness shows it for
    /// failed tests).
    pub fn dump_logs(&self) {
        for p in self.processes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            eprintln!(
                "----- {} (pid {}) {}\n{}",
                p.name(),
                p.pid(),
                p.log_path().display(),
                p.log_tail(40)
            );
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            self.dump_logs();
        }
        for p in self.processes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            p.stop();
        }
        if panicking
            && std::env::var_os("BGPINTENT_LAB_KEEP").is_some()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("lab: keeping {}", dir.keep().display());
        }
    }
}
