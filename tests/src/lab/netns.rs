//! Network namespaces: create, configure with `ip`, run commands and Rust code inside.

use std::{
    fs::File,
    future::Future,
    os::fd::AsFd,
    process::{Command, Output},
    thread::JoinHandle,
};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use super::{LabError, Result};

/// A named network namespace (`ip netns add`), deleted on drop, even while a test panics.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace and brings its loopback up. Fails if it already exists.
    pub fn create(name: &str) -> Result<Self> {
        run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Self {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`, which execs it,
    /// so the child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `program args..` inside the namespace; stdout on success.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        run(self.command(program).args(args))
    }

    /// `ip -n NS args..`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Sets a sysctl inside the namespace (`net.*` keys are per namespace).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec("sysctl", &["-qw", &format!("{key}={value}")]).map(drop)
    }

    /// Adds an address without duplicate address detection: a fresh IPv6 address is
    /// otherwise "tentative" for a second or two and `bind` fails with EADDRNOTAVAIL.
    pub fn add_addr(&self, dev: &str, cidr: &str) -> Result<()> {
        let family = if cidr.contains(':') { "-6" } else { "-4" };
        let mut args = vec![family, "addr", "add", cidr, "dev", dev];
        if family == "-6" {
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    /// Runs `f` on a new thread that has moved into this namespace, inside a
    /// current-thread tokio runtime. Every socket created there (our `net` module included)
    /// belongs to the namespace; the rest of the test process is unaffected.
    pub fn spawn<F, Fut, T>(&self, f: F) -> NsThread<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        let handle = std::thread::Builder::new()
            .name(format!("netns-{}", self.name))
            .spawn(move || {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(f())
            })
            .expect("spawn namespace thread");
        NsThread(handle)
    }

    /// [`Netns::spawn`] and wait for the result.
    pub fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        self.spawn(f).join()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes still inside keep the namespace alive until they exit; the lab stops
        // its daemons before dropping namespaces.
        if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("lab: removing netns {}: {e}", self.name);
        }
    }
}

/// A thread running inside a namespace; [`NsThread::join`] returns its result and
/// re-raises its panic in the caller.
#[derive(Debug)]
pub struct NsThread<T>(JoinHandle<T>);

impl<T> NsThread<T> {
    pub fn join(self) -> T {
        match self.0.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

/// Runs a command to completion; stdout on success, an error quoting the command line,
/// exit status and stderr otherwise.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = output(cmd)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::new(format!(
            "`{}` failed ({}): {}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )))
    }
}

/// Runs a command and returns its output whatever the exit status.
pub fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .map_err(|e| LabError::new(format!("cannot run `{}`: {e}", describe(cmd))))
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
