//! The shipped `bgp-intent-speaker` binary as a process: readiness follows a loaded, valid
//! intent (file or API object), `/healthz` answers whatever the API server does, and SIGTERM
//! ends it in time in every state. No root needed: loopback, unprivileged ports.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_bgp-intent-speaker");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A BGPNodeIntent for Node `node-a` with one peer and one prefix; `local_asn` lets a test
/// make it invalid.
fn intent(local_asn: i64, listen_port: u16) -> Value {
    json!({
        "apiVersion": "bgpintent.io/v1alpha1", "kind": "BGPNodeIntent",
        "metadata": {"name": "node-a", "generation": 1},
        "spec": {
            "policy": {"name": "p", "uid": "p-uid", "generation": 1},
            "routerID": "192.0.2.11", "localASN": local_asn, "listenPort": listen_port,
            "nextHops": {"ipv4": "192.0.2.11"},
            "peers": [{
                "address": "127.0.0.1", "asn": 65000, "port": free_port(), "multihopTTL": 1,
                "ttlSecurity": false, "passive": true, "holdTimeSeconds": 90,
                "keepaliveTimeSeconds": 30, "connectRetrySeconds": 1,
                "gracefulRestart": {"enabled": true, "restartTimeSeconds": 120,
                                    "deferralTimeSeconds": 360, "notification": true},
                "families": ["IPv4"]
            }],
            "prefixes": [{"source": {"kind": "Egress", "name": "e"}, "prefixes": ["203.0.113.10/32"]}]
        }
    })
}

struct Speaker {
    child: Child,
    http: SocketAddr,
    log: PathBuf,
}

impl Speaker {
    fn start(dir: &Path, mode: &[&str], env: &[(&str, &str)]) -> Self {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.join("speaker.log");
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--node-name", "node-a", "--namespace", "bgp-system"])
            .args(["--metrics-addr", &http.to_string(), "--log-format", "text"])
            .args([
                "--listen-v4",
                "127.0.0.1",
                "--listen-v6",
                "none",
                "--api-timeout",
                "2s",
            ])
            .args(mode)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start the speaker");
        Self { child, http, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

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

    fn get(&self, path: &str) -> Option<(u16, String)> {
        get(self.http, path)
    }

    fn wait(&self, what: &str, mut ok: impl FnMut(&Self) -> bool) {
        let started = Instant::now();
        while !ok(self) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

fn write_atomically(path: &Path, value: &Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(value).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn assert_quick_clean_exit(s: &mut Speaker) {
    let (took, status) = s.terminate();
    assert!(status.success(), "exit {status}; log:\n{}", s.log());
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?}; log:\n{}",
        s.log()
    );
    assert!(!s.log().contains('\u{1b}'), "ANSI colour in a log file");
}

/// Standalone mode: missing → not ready; valid → ready; invalid → not ready, the field named
/// in `/readyz`, the log and a metric, while the last valid intent keeps running.
#[test]
fn readiness_follows_the_intent_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("intent.json");
    let file_arg = file.to_str().unwrap().to_owned();
    let mut s = Speaker::start(dir.path(), &["--intent-file", &file_arg], &[]);
    s.wait("/readyz: missing", |s| {
        s.get("/readyz")
            .is_some_and(|(code, body)| code == 503 && body.contains("does not exist"))
    });
    assert_eq!(s.metric("bgpintent_speaker_intent_loaded"), Some(0.0));
    assert_eq!(s.get("/healthz").map(|r| r.0), Some(200));

    write_atomically(&file, &intent(64512, free_port()));
    s.wait("/readyz 200", |s| {
        s.get("/readyz").is_some_and(|(code, _)| code == 200)
    });
    assert_eq!(s.metric("bgpintent_speaker_intent_loaded"), Some(1.0));
    s.wait("/status with the peer", |s| {
        s.get("/status")
            .is_some_and(|(code, body)| code == 200 && body.contains("127.0.0.1"))
    });

    // AS_TRANS is not a valid local AS: refused with the field path.
    write_atomically(&file, &intent(23456, free_port()));
    s.wait("/readyz: invalid", |s| {
        s.get("/readyz")
            .is_some_and(|(code, body)| code == 503 && body.contains("localASN"))
    });
    assert_eq!(s.metric("bgpintent_speaker_intent_loaded"), Some(0.0));
    assert_eq!(s.metric("bgpintent_speaker_intent_load_errors_total"), Some(1.0));
    assert!(
        s.metric("bgpintent_speaker_intent_last_error_timestamp_seconds")
            .unwrap()
            > 1.0e9
    );
    assert!(s.log().contains("localASN"), "{}", s.log());
    // Fail static: the last valid intent still runs.
    assert!(s.get("/status").unwrap().1.contains("127.0.0.1"));
    assert_quick_clean_exit(&mut s);
}

fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\n\
             clusters: [{{name: t, cluster: {{server: \"{server}\"}}}}]\n\
             users: [{{name: t, user: {{token: speaker-node-a}}}}]\n\
             contexts: [{{name: t, context: {{cluster: t, user: t, namespace: bgp-system}}}}]\n"
        ),
    )
    .unwrap();
    path
}

/// An API server that accepts connections and never answers: the probes answer, the
/// speaker is not ready, and SIGTERM still ends it in time.
#[test]
fn a_silent_api_server_does_not_wedge_the_process() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &format!("http://{addr}"));
    let mut s = Speaker::start(dir.path(), &[], &[("KUBECONFIG", kc.to_str().unwrap())]);
    s.wait("/healthz", |s| {
        s.get("/healthz").is_some_and(|(code, _)| code == 200)
    });
    // Past the 2 s API timeout: requests have timed out and are being retried.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.get("/healthz").map(|r| r.0), Some(200));
    assert_eq!(s.get("/readyz"), Some((503, "intent not read yet\n".to_owned())));
    assert!(s.log().contains("timed out"), "{}", s.log());
    assert_quick_clean_exit(&mut s);
}

/// Kubernetes mode against the fake API server: no object → not ready (and says why); the
/// controller writes it → ready, the status comes back; SIGTERM ends it in time.
#[test]
fn readiness_follows_the_intent_object() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(FakeApiServer::start());
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &server.url());
    let mut s = Speaker::start(dir.path(), &[], &[("KUBECONFIG", kc.to_str().unwrap())]);
    s.wait("/readyz: missing", |s| {
        s.get("/readyz")
            .is_some_and(|(code, body)| code == 503 && body.contains("no BGPNodeIntent node-a"))
    });
    server.put(intent(64512, free_port()));
    s.wait("/readyz 200", |s| {
        s.get("/readyz").is_some_and(|(code, _)| code == 200)
    });
    s.wait("the status written back", |_| {
        server
            .get("bgpintent.io/v1alpha1", "BGPNodeIntent", "", "node-a")
            .is_some_and(|o| o["status"]["observedGeneration"].is_i64())
    });
    assert_quick_clean_exit(&mut s);
    drop(runtime);
}

/// `BGP_INTENT_READY_WITHOUT_INTENT=true` (as a chart's `extraEnv` sets it): a missing intent
/// is ready, an invalid one is not.
#[test]
fn ready_without_intent_covers_only_a_missing_intent() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("intent.json");
    let file_arg = file.to_str().unwrap().to_owned();
    let mut s = Speaker::start(
        dir.path(),
        &["--intent-file", &file_arg],
        &[("BGP_INTENT_READY_WITHOUT_INTENT", "true")],
    );
    s.wait("/readyz 200 without an intent", |s| {
        s.get("/readyz")
            .is_some_and(|(code, body)| code == 200 && body.contains("does not exist"))
    });
    write_atomically(&file, &intent(23456, free_port()));
    s.wait("/readyz: invalid", |s| {
        s.get("/readyz").is_some_and(|(code, _)| code == 503)
    });
    assert_quick_clean_exit(&mut s);
}
