//! Our speaker as a real process inside the lab's speaker namespace, following an intent
//! file (standalone mode): what the interop tests drive.
//!
//! ```text
//!   test ──writes──▶ <lab>/intent.yaml ──polled──▶ bgp-intent-speaker (in <id>-spk)
//!   test ◀── GET 127.0.0.1:9473/status (inside the namespace) ── BGPNodeIntentStatus
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use bgpintent_api::{Asn, NextHops, NodeIntent, PeerIntent, PeerKey, PolicyRef, Prefix, RouterId, Source};
use bgpintent_crd::{BGPNodeIntent, BGPNodeIntentSpec, BGPNodeIntentStatus};

use crate::lab::{Lab, LabError, Process, Result, SPEAKER, SPEAKER_AS};

/// Port of the speaker's HTTP endpoints inside its namespace.
pub const HTTP_PORT: u16 = 9473;

/// The speaker binary of this build, built on demand (`cargo test -p bgpintent-tests` alone
/// does not build other packages' binaries), once per test process.
pub fn binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| crate::e2e::pod::cargo_bin("bgpintent-speaker", "bgp-intent-speaker"))
        .clone()
}

/// An intent for the speaker node of the lab: router ID 192.0.2.1, AS 64500, next hops
/// 192.0.2.1 and 2001:db8:1::1, no peers or prefixes yet.
pub fn intent() -> NodeIntent {
    NodeIntent {
        node: SPEAKER.to_owned(),
        policy: PolicyRef {
            name: "lab".into(),
            uid: "lab-uid".into(),
            generation: 1,
        },
        router_id: RouterId::try_from(std::net::Ipv4Addr::new(192, 0, 2, 1)).unwrap(),
        local_asn: Asn::try_from(SPEAKER_AS).unwrap(),
        listen_port: 179,
        confederation: None,
        next_hops: NextHops {
            ipv4: Some("192.0.2.1".parse().unwrap()),
            ipv6: Some("2001:db8:1::1".parse().unwrap()),
        },
        peers: BTreeMap::new(),
        prefixes: BTreeMap::new(),
        sets: BTreeSet::new(),
        attributes: BTreeMap::new(),
        as_path_prepend: None,
    }
}

/// Adds a peer with every default but a short connect-retry (lab routers start quickly).
pub fn add_peer(intent: &mut NodeIntent, address: &str, asn: u32) -> PeerKey {
    let key = PeerKey {
        address: address.parse().unwrap(),
        asn: Asn::try_from(asn).unwrap(),
    };
    intent.peers.insert(
        key,
        PeerIntent {
            connect_retry_secs: 1,
            ..PeerIntent::new()
        },
    );
    key
}

/// Adds prefixes with a test source.
pub fn add_prefixes(intent: &mut NodeIntent, prefixes: &[&str]) {
    for p in prefixes {
        let prefix: Prefix = p.parse().unwrap();
        intent
            .prefixes
            .entry(prefix)
            .or_default()
            .insert(Source::Egress { name: "lab".into() });
    }
}

/// How to run the speaker besides its intent.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--connect-timeout` (e.g. "2s"): how soon a silent peer (MD5/GTSM mismatch) is
    /// reported as "no answer". The speaker's default is 5 s.
    pub connect_timeout: Option<String>,
    /// Kubernetes mode: no `--intent-file`; `KUBECONFIG` points at this file.
    pub kubeconfig: Option<PathBuf>,
    /// `RUST_LOG` (default `info,bgpintent_speaker=debug`).
    pub log_filter: Option<String>,
    /// Written to the passwords file before the start (`key`, `password`).
    pub passwords: Vec<(String, String)>,
}

/// A running speaker.
#[derive(Debug)]
pub struct Speaker<'a> {
    lab: &'a Lab,
    pub intent_file: PathBuf,
    pub passwords_file: PathBuf,
    options: Options,
    process: Option<Arc<Process>>,
    generation: i64,
    /// Processes started so far (each gets its own log file).
    starts: u32,
}

impl<'a> Speaker<'a> {
    /// Writes `intent` and starts the speaker in the speaker namespace.
    pub fn start(lab: &'a Lab, intent: &NodeIntent) -> Result<Self> {
        Self::start_with(lab, Some(intent), Options::default())
    }

    /// Starts the speaker with `options`; `intent` is written to the intent file first
    /// (standalone mode) unless `options.kubeconfig` is set.
    pub fn start_with(lab: &'a Lab, intent: Option<&NodeIntent>, options: Options) -> Result<Self> {
        let mut s = Self {
            lab,
            intent_file: lab.dir().join("intent.yaml"),
            passwords_file: lab.dir().join("passwords.yaml"),
            options,
            process: None,
            generation: 0,
            starts: 0,
        };
        if let Some(intent) = intent {
            s.write_intent(intent)?;
        }
        let passwords = s.options.passwords.clone();
        s.write_passwords(
            &passwords
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        )?;
        s.restart()?;
        Ok(s)
    }

    /// Starts (again) the speaker process; the previous one must have been stopped.
    pub fn restart(&mut self) -> Result<()> {
        let mut cmd = self.lab.ns(SPEAKER).command(binary().to_str().unwrap());
        cmd.args([
            "run",
            "--node-name",
            SPEAKER,
            "--metrics-addr",
            &format!("127.0.0.1:{HTTP_PORT}"),
        ]);
        match &self.options.kubeconfig {
            Some(kubeconfig) => {
                cmd.args(["--namespace", "bgp-intent"])
                    .env("KUBECONFIG", kubeconfig);
            }
            None => {
                cmd.arg("--intent-file").arg(&self.intent_file);
                cmd.arg("--passwords-file").arg(&self.passwords_file);
            }
        }
        if let Some(t) = &self.options.connect_timeout {
            cmd.args(["--connect-timeout", t]);
        }
        let filter = self
            .options
            .log_filter
            .clone()
            .unwrap_or_else(|| "info,bgpintent_speaker=debug".into());
        cmd.env("RUST_LOG", filter);
        self.starts += 1;
        self.process = Some(Process::spawn("speaker", cmd, &self.log_path())?);
        Ok(())
    }

    /// The log of the current (or last) process: `speaker.log`, then `speaker-2.log`...
    pub fn log_path(&self) -> PathBuf {
        match self.starts {
            0 | 1 => self.lab.dir().join("speaker.log"),
            n => self.lab.dir().join(format!("speaker-{n}.log")),
        }
    }

    /// The speaker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid())
    }

    /// Replaces the intent file (atomically); the speaker picks it up within 250 ms.
    pub fn write_intent(&mut self, intent: &NodeIntent) -> Result<()> {
        self.generation += 1;
        let mut object = BGPNodeIntent::new(SPEAKER, BGPNodeIntentSpec::from(intent));
        object.metadata.generation = Some(self.generation);
        let yaml = serde_json::to_string(&object).map_err(|e| LabError::new(e.to_string()))?;
        let tmp = self.intent_file.with_extension("tmp");
        std::fs::write(&tmp, yaml).map_err(|e| LabError::new(e.to_string()))?;
        std::fs::rename(&tmp, &self.intent_file).map_err(|e| LabError::new(e.to_string()))
    }

    /// Writes passwords (`key: value`).
    pub fn write_passwords(&self, passwords: &[(&str, &str)]) -> Result<()> {
        let map: BTreeMap<&str, &str> = passwords.iter().copied().collect();
        std::fs::write(&self.passwords_file, serde_json::to_string(&map).unwrap())
            .map_err(|e| LabError::new(e.to_string()))
    }

    /// Deletes the intent file: the speaker withdraws everything and sends Cease.
    pub fn delete_intent(&self) -> Result<()> {
        std::fs::remove_file(&self.intent_file).map_err(|e| LabError::new(e.to_string()))
    }

    /// The process, to signal it (SIGTERM/SIGKILL tests).
    pub fn process(&self) -> Option<&Arc<Process>> {
        self.process.as_ref()
    }

    /// Sends `signal` and waits for the process to exit.
    pub fn signal(&mut self, signal: rustix::process::Signal) {
        if let Some(p) = self.process.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(p.pid() as i32).unwrap(),
                signal,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while p.is_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            p.stop();
        }
    }

    /// The status the speaker reports (`GET /status` inside its namespace).
    pub fn status(&self) -> Option<BGPNodeIntentStatus> {
        let body = http_get_in(self.lab, "/status").ok()?;
        serde_json::from_str(&body).ok()
    }

    /// Waits until `f(status)` holds, or fails with the last status and the speaker's log.
    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&BGPNodeIntentStatus) -> bool,
    ) -> Result<BGPNodeIntentStatus> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(s) = self.status() {
                if f(&s) {
                    return Ok(s);
                }
                last = Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(LabError::new(format!(
            "speaker: timed out waiting for {what}; last status: {last:?}"
        ))
        .context(self.log_tail(40)))
    }

    /// The last `lines` lines of the current process's log (and of the previous one, if
    /// it was restarted), for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let tail = |path: &Path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        };
        let mut out = String::new();
        if self.starts > 1 {
            let previous = match self.starts - 1 {
                1 => self.lab.dir().join("speaker.log"),
                n => self.lab.dir().join(format!("speaker-{n}.log")),
            };
            out.push_str(&format!("----- {}\n{}\n", previous.display(), tail(&previous)));
        }
        let current = self.log_path();
        out.push_str(&format!("----- {}\n{}", current.display(), tail(&current)));
        out
    }

    /// `GET /metrics` (Prometheus text).
    pub fn metrics(&self) -> Result<String> {
        http_get_in(self.lab, "/metrics")
    }

    /// The value of `bgpintent_speaker_<name>` for `peer` (0 when absent).
    pub fn peer_metric(&self, name: &str, peer: std::net::IpAddr) -> Result<f64> {
        let text = self.metrics()?;
        Ok(metric_value(
            &text,
            &format!("bgpintent_speaker_{name}"),
            &peer.to_string(),
        ))
    }

    /// Peak resident set size of the speaker process (`VmHWM`), in KiB.
    pub fn vm_hwm_kib(&self) -> Option<u64> {
        self.pid().and_then(vm_hwm_kib)
    }
}

impl Drop for Speaker<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.process.take() {
            p.stop();
        }
    }
}

/// The first sample of `metric` whose labels contain `peer="<peer>"` (counters may carry
/// a `_total` suffix).
pub fn metric_value(text: &str, metric: &str, peer: &str) -> f64 {
    let label = format!("peer=\"{peer}\"");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let name = l.split(['{', ' ']).next().unwrap_or("");
            name == metric || name == format!("{metric}_total")
        })
        .filter(|l| l.contains(&label))
        .find_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// `VmHWM` of a process in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// A tiny HTTP GET over a socket inside the speaker namespace (no curl needed).
fn http_get_in(lab: &Lab, path: &str) -> Result<String> {
    let path = path.to_owned();
    lab.ns(SPEAKER).run(move || async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", HTTP_PORT))
            .await
            .map_err(|e| LabError::new(e.to_string()))?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .map_err(|e| LabError::new(e.to_string()))?;
        let mut out = String::new();
        s.read_to_string(&mut out)
            .await
            .map_err(|e| LabError::new(e.to_string()))?;
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        if out.starts_with("HTTP/1.1 200") {
            Ok(body)
        } else {
            Err(LabError::new(out))
        }
    })
}
