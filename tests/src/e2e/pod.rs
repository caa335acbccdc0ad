//! One "Pod": a shipped binary started as the chart's container says, inside its own
//! network namespace (the controller's Pod network, or the Node itself for the
//! host-network speaker), with the kubeconfig a cluster's service account would give it.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex, Once,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use rustix::process::{Pid, Signal, kill_process};

use super::{
    chart::{Container, PodInfo, Probe},
    http,
};
use crate::lab::{LabError, Netns, Result};

/// A binary of this workspace, built on demand in the test's own profile (a plain
/// `cargo test -p bgpintent-tests` does not build other packages' binaries).
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    // Variables `cargo test` sets for the test process would change build scripts'
    // fingerprints (`rerun-if-env-changed`) and rebuild half the graph on every run: ring's
    // build script tracks CARGO_MANIFEST_DIR.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_BIN_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&&*key)
        {
            cmd.env_remove(&*key);
        }
    }
    cmd.args(["build", "-q", "-p", package, "--bin", bin]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "building {bin} failed");
    profile_dir.join(bin)
}

/// Builds the three binaries the suite runs, once per test process.
pub fn build_binaries() -> Binaries {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        cargo_bin("fake-apiserver", "fake-apiserver");
        cargo_bin("bgpintent-controller", "bgp-intent-controller");
        cargo_bin("bgpintent-speaker", "bgp-intent-speaker");
    });
    let dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().and_then(Path::parent).map(Path::to_path_buf))
        .expect("target dir");
    Binaries {
        apiserver: dir.join("fake-apiserver"),
        controller: dir.join("bgp-intent-controller"),
        speaker: dir.join("bgp-intent-speaker"),
    }
}

#[derive(Debug, Clone)]
pub struct Binaries {
    pub apiserver: PathBuf,
    pub controller: PathBuf,
    pub speaker: PathBuf,
}

/// A process started from a chart container.
#[derive(Debug)]
pub struct Pod {
    pub info: PodInfo,
    /// Its network namespace (`ip netns` name).
    pub ns: String,
    /// The address probes and metrics are reached at (Pod IP; the Node's for host network).
    pub ip: std::net::IpAddr,
    pub container: Container,
    binary: PathBuf,
    kubeconfig: PathBuf,
    dir: PathBuf,
    /// `RUST_LOG` added to the environment; `None` leaves the chart's (there is none).
    log_filter: Option<String>,
    process: Mutex<Option<Child>>,
    /// How the last process ended, once reaped.
    exit: Mutex<Option<ExitStatus>>,
    /// The pid while the test means it to run (0 when stopped on purpose), for the probe
    /// poller.
    pid_cell: Arc<AtomicU32>,
    starts: u32,
}

impl Pod {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        info: PodInfo,
        ns: &Netns,
        ip: std::net::IpAddr,
        container: Container,
        binary: PathBuf,
        kubeconfig: PathBuf,
        dir: PathBuf,
        log_filter: Option<String>,
    ) -> Self {
        Self {
            info,
            ns: ns.name().to_owned(),
            ip,
            container,
            binary,
            kubeconfig,
            dir,
            log_filter,
            process: Mutex::new(None),
            exit: Mutex::new(None),
            pid_cell: Arc::default(),
            starts: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Starts the container's process (again). The command line is the chart's, resolved
    /// for this Pod; the environment is the chart's plus `KUBECONFIG` (no in-cluster service
    /// account here) and the log filter.
    pub fn start(&mut self) -> Result<()> {
        if self.is_running() {
            return Err(LabError::new(format!("{} is already running", self.name())));
        }
        let (args, env) = self.container.resolve(&self.info)?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(&self.binary)
            .args(&args);
        cmd.env_clear();
        cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.env("KUBECONFIG", &self.kubeconfig);
        if let Some(f) = &self.log_filter {
            cmd.env("RUST_LOG", f);
        }
        self.starts += 1;
        let log = self.log_path();
        let out = File::create(&log).map_err(|e| LabError::new(format!("{}: {e}", log.display())))?;
        let err = out.try_clone().map_err(|e| LabError::new(e.to_string()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| LabError::new(format!("starting {}: {e}", self.name())))?;
        *self.exit.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.pid_cell.store(child.id(), Ordering::Relaxed);
        *self.process.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        Ok(())
    }

    pub fn log_path(&self) -> PathBuf {
        match self.starts {
            0 | 1 => self.dir.join(format!("{}.log", self.name())),
            n => self.dir.join(format!("{}-{n}.log", self.name())),
        }
    }

    /// Still running? (Reaps it, keeping the exit status, once it has ended.)
    pub fn is_running(&self) -> bool {
        let mut guard = self.process.lock().unwrap_or_else(|p| p.into_inner());
        let Some(child) = guard.as_mut() else { return false };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                *self.exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
                *guard = None;
                false
            }
            Err(_) => false,
        }
    }

    /// How the last process ended (`None` while it runs or before it was reaped).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.is_running();
        *self.exit.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pid(&self) -> Option<u32> {
        self.process
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Child::id)
    }

    /// Sends `signal` and waits up to `wait` for the exit: how long it took and the exit
    /// status, or `Err(())` if it still ran then (it is SIGKILLed and reaped anyway).
    pub fn signal(&mut self, signal: Signal, wait: Duration) -> Result<(Duration, ExitStatus), Duration> {
        let start = Instant::now();
        self.pid_cell.store(0, Ordering::Relaxed);
        if let Some(pid) = self.pid() {
            let _ = kill_process(Pid::from_raw(pid as i32).expect("pid"), signal);
        }
        while self.is_running() && start.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = start.elapsed();
        match self.exit_status() {
            Some(status) if !self.is_running() => Ok((took, status)),
            _ => {
                self.kill();
                Err(took)
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        self.pid_cell.store(0, Ordering::Relaxed);
        let mut guard = self.process.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                *self.exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
            }
        }
    }

    /// What the probe poller needs to probe this Pod as the kubelet would.
    pub fn probe_target(&self) -> super::watch::ProbeTarget {
        super::watch::ProbeTarget {
            name: self.name().to_owned(),
            ns: self.ns.clone(),
            ip: self.ip,
            liveness: self.container.liveness.clone(),
            readiness: self.container.readiness.clone(),
            pid: self.pid_cell.clone(),
        }
    }

    /// `GET http://<pod ip>:<port><path>` from the Pod's namespace, as the kubelet probes.
    pub fn probe(&self, probe: &Probe) -> Result<u16> {
        http::get(
            &self.ns,
            std::net::SocketAddr::new(self.ip, probe.port),
            &probe.path,
            probe.timeout,
        )
        .map(|r| r.status)
    }

    /// `GET /metrics` on the chart's metrics port.
    pub fn metrics(&self) -> Result<String> {
        let addr = std::net::SocketAddr::new(self.ip, self.container.metrics_port);
        Ok(http::get(&self.ns, addr, "/metrics", Duration::from_secs(3))?
            .ok()?
            .body)
    }

    /// The first sample of `metric` (any labels), if exported.
    pub fn metric(&self, metric: &str) -> Option<f64> {
        let text = self.metrics().ok()?;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.split(['{', ' ']).next() == Some(metric))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// The last `lines` lines of this Pod's current (and previous) log.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for n in self.starts.saturating_sub(1).max(1)..=self.starts {
            let path = match n {
                0 | 1 => self.dir.join(format!("{}.log", self.name())),
                n => self.dir.join(format!("{}-{n}.log", self.name())),
            };
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "----- {}\n{}\n",
                path.display(),
                all[all.len().saturating_sub(lines)..].join("\n")
            ));
        }
        out
    }
}

impl Drop for Pod {
    /// SIGTERM, 5 s, SIGKILL: every process of a test ends with it, panics included.
    fn drop(&mut self) {
        if self.is_running() && self.signal(Signal::TERM, Duration::from_secs(5)).is_err() {
            eprintln!("{}: still running 5 s after SIGTERM, killed", self.name());
        }
    }
}
