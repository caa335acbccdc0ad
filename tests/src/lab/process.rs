//! Daemons started by the lab: always our own child process, stopped by its pid (TERM,
//! then KILL after a grace period), never by name.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rustix::process::{Pid, Signal, kill_process};

use super::{LabError, Result};

/// A running daemon. Shared (`Arc`) between its router handle and the [`super::Lab`], so
/// it is stopped by whichever is dropped first.
#[derive(Debug)]
pub struct Process {
    name: String,
    pid: u32,
    child: Mutex<Option<Child>>,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd` in the foreground (as our child), stdout and stderr into `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Arc<Self>> {
        let out = File::create(log).map_err(|e| LabError::new(format!("{}: {e}", log.display())))?;
        let err = out.try_clone().map_err(|e| LabError::new(e.to_string()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| LabError::new(format!("starting {name}: {e}")))?;
        Ok(Arc::new(Self {
            name: name.to_owned(),
            pid: child.id(),
            child: Mutex::new(Some(child)),
            log: log.to_owned(),
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The file that collects the daemon's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Still running (not exited, not stopped)?
    pub fn is_running(&self) -> bool {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGTERM, up to 5 s for a clean exit, then SIGKILL. Idempotent. The child is reaped
    /// here, so its pid cannot be reused by another process while we still signal it.
    pub fn stop(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut child) = guard.take() else { return };
        if let Ok(None) = child.try_wait() {
            if let Some(pid) = Pid::from_raw(child.id() as i32) {
                let _ = kill_process(pid, Signal::TERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
        }
        let _ = child.wait();
    }

    /// The last `lines` lines of the daemon's output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
