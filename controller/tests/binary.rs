//! The shipped `bgp-intent-controller` binary as a process: probes, signals, the Lease and
//! its main job, against no API server, a silent one, and the fake one over real HTTP.
//!
//! Every controller test before these drove the library in-process, and the binary hung at
//! start-up (a stdout lock held across `run`) while all of them passed.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use fake_apiserver::FakeApiServer;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_bgp-intent-controller");

/// A free loopback port (bound, then released for the process to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\n\
             clusters: [{{name: t, cluster: {{server: \"{server}\"}}}}]\n\
             users: [{{name: t, user: {{token: controller-a}}}}]\n\
             contexts: [{{name: t, context: {{cluster: t, user: t, namespace: bgp-system}}}}]\n"
        ),
    )
    .unwrap();
    path
}

struct Controller {
    child: Child,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Controller {
    /// Starts `run` the way the chart does (flags from charts/bgp-intent, identity and
    /// namespace from the downward API), with short lease timings.
    fn start(dir: &Path, kubeconfig: &Path) -> Self {
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.join("controller.log");
        let child = Command::new(BIN)
            .args(["run", "--namespace", "bgp-system", "--identity", "controller-a"])
            .args([
                "--passwords-secret",
                "bgp-passwords",
                "--lease-name",
                "bgp-intent-controller",
            ])
            .args([
                "--lease-duration",
                "3s",
                "--renew-deadline",
                "2s",
                "--retry-period",
                "500ms",
            ])
            .args(["--metrics-addr", &metrics.to_string(), "--log-format", "text"])
            .args(["--api-timeout", "2s"])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the controller");
        Self { child, metrics, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the time until the process exited (at most 10 s, then it is killed).
    fn terminate(&mut self) -> (Duration, ExitStatus) {
        let pid = self.child.id().to_string();
        let started = Instant::now();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (started.elapsed(), status);
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("still running 10 s after SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` with a 2 s timeout: (status code, body), or None when nothing answered.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split(' ').nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((code, body))
}

fn wait_until(what: &str, timeout: Duration, log: impl Fn() -> String, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < timeout,
            "timed out waiting for {what}; log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The probes and the exit, as the kubelet sees them, with `kubeconfig` pointing wherever.
fn probes_answer_and_sigterm_ends_it(server: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Controller::start(dir.path(), &kubeconfig(dir.path(), server));
    wait_until(
        "/healthz",
        Duration::from_secs(5),
        || c.log(),
        || get(c.metrics, "/healthz").is_some_and(|(code, _)| code == 200),
    );
    // Several seconds of retrying later, the endpoints still answer (no thread is stuck).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(get(c.metrics, "/healthz").map(|r| r.0), Some(200), "{}", c.log());
    assert_eq!(
        get(c.metrics, "/readyz"),
        Some((503, "caches not synced\n".to_owned())),
        "{}",
        c.log()
    );
    let metrics = get(c.metrics, "/metrics").expect("/metrics answers");
    assert!(
        metrics.1.contains("bgpintent_controller_leader 0"),
        "{}",
        metrics.1
    );
    let (took, status) = c.terminate();
    assert!(status.success(), "exit {status}; log:\n{}", c.log());
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?}; log:\n{}",
        c.log()
    );
    let log = c.log();
    assert!(!log.contains('\u{1b}'), "ANSI colour in a log file:\n{log}");
    assert!(log.contains("shutting down") && log.contains("stopped"), "{log}");
}

#[test]
fn without_an_api_server_probes_answer_and_sigterm_ends_it() {
    // A port nothing listens on: every request is refused at once.
    let port = free_port();
    probes_answer_and_sigterm_ends_it(&format!("http://127.0.0.1:{port}"));
}

#[test]
fn with_a_silent_api_server_probes_answer_and_sigterm_ends_it() {
    // Accepts every connection, reads nothing, answers nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    probes_answer_and_sigterm_ends_it(&format!("http://{addr}"));
}

/// The main job, end to end in one process: ready after the caches sync, leads, writes the
/// intent of the selected Node, and on SIGTERM releases the Lease and exits in time.
#[test]
fn leads_writes_intents_and_releases_the_lease_on_sigterm() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(FakeApiServer::start());
    server.put(json!({
        "apiVersion": "bgpintent.io/v1alpha1", "kind": "BGPPolicy",
        "metadata": {"name": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeSelector": {}, "localASN": 64512,
                 "advertisements": {"pod": {}},
                 "bgpPeers": [{"address": "192.0.2.254", "asn": 65000}]}
    }));
    server.put(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "worker-1", "uid": "uid-worker-1"},
        "spec": {"podCIDRs": ["198.51.100.0/26"]},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.11"}]}
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut c = Controller::start(dir.path(), &kubeconfig(dir.path(), &server.url()));
    wait_until(
        "/readyz 200",
        Duration::from_secs(10),
        || c.log(),
        || get(c.metrics, "/readyz").is_some_and(|(code, _)| code == 200),
    );
    wait_until(
        "the intent of worker-1",
        Duration::from_secs(10),
        || c.log(),
        || {
            server
                .get("bgpintent.io/v1alpha1", "BGPNodeIntent", "", "worker-1")
                .is_some()
        },
    );
    let intent = server
        .get("bgpintent.io/v1alpha1", "BGPNodeIntent", "", "worker-1")
        .unwrap();
    assert_eq!(intent["spec"]["routerID"], "192.0.2.11");
    assert_eq!(intent["spec"]["prefixes"][0]["prefixes"][0], "198.51.100.0/26");
    let holder = |server: &FakeApiServer| {
        server
            .get(
                "coordination.k8s.io/v1",
                "Lease",
                "bgp-system",
                "bgp-intent-controller",
            )
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
    };
    assert_eq!(holder(&server).as_deref(), Some("controller-a"));
    assert!(
        get(c.metrics, "/metrics")
            .unwrap()
            .1
            .contains("bgpintent_controller_leader 1")
    );
    let (took, status) = c.terminate();
    assert!(
        status.success() && took < Duration::from_secs(5),
        "{status} after {took:?}"
    );
    assert_eq!(
        holder(&server),
        None,
        "the Lease was not released; log:\n{}",
        c.log()
    );
    drop(runtime);
}
