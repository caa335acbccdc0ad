//! The running speaker: follows one Node's desired state and keeps its sessions right.
//!
//! ```text
//!  source (Kubernetes watch of its own BGPNodeIntent + its sets + passwords, or files)
//!     │ watch::Receiver<Option<Desired>>       (None = intent deleted: withdraw + Cease)
//!     ▼
//!  Agent::apply(diff) ── spawn / Restart / Update / Stop / Routes ──▶ peer tasks (peer.rs)
//!     ▲                                                                  │ PeerReport
//!  Listener (per-peer MD5 keys, GTSM) ── Inbound(stream) ────────────────┤
//!     │                                                                  ▼
//!  every 250 ms: aggregate reports ──▶ NodeStatus (watch) ──▶ status writer / GET /status
//!                                  └─▶ metrics
//! ```
//!
//! Fail static: the source keeps its last desired state while the API server is away, so
//! the agent does nothing and sessions carry on. Restart: on SIGTERM every session is
//! closed without a NOTIFICATION (peers keep our routes for the graceful-restart time), and
//! the next process sets the Restart bit in its first OPEN to each peer.

pub mod desired;
pub mod file;
pub mod http;
pub mod kube;
pub mod metrics;
pub mod peer;
pub mod readiness;
pub mod status;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant, SystemTime},
};

use bgpintent_api::{PeerIntent, PeerKey, Reconfigure, ResetCause};
use tokio::sync::watch;

use crate::{
    net::{AllowedPeer, ConnectOptions, ListenConfig, Listener},
    session::{Config, Routes, Stop},
};
pub use desired::{Desired, Password};
use metrics::SpeakerMetrics;
use peer::{Command, PeerHandle, PeerReport, PeerStart};
pub use readiness::IntentState;
pub use status::NodeStatus;

/// How the process is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Running,
    /// SIGTERM (rolling update) or a crash-like stop: keep routes at the peers (graceful
    /// restart), close without NOTIFICATION.
    Restart,
}

/// Agent settings that do not come from the intent.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Addresses to listen on (the port comes from the intent).
    pub listen: ListenConfig,
    /// How long a connection attempt may take before the session reports "no answer".
    pub connect_timeout: Duration,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            listen: ListenConfig::any(179),
            connect_timeout: Config::DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

struct Running {
    intent: PeerIntent,
    config: Config,
    handle: PeerHandle,
    /// Counters already added to the metrics, to add only deltas.
    seen: PeerReport,
}

/// Runs until `shutdown` leaves [`Shutdown::Running`].
pub async fn run(
    settings: AgentSettings,
    mut desired: watch::Receiver<Option<Desired>>,
    status: watch::Sender<NodeStatus>,
    metrics: SpeakerMetrics,
    mut shutdown: watch::Receiver<Shutdown>,
) {
    let mut agent = Agent {
        settings,
        current: None,
        routes: Routes::new(),
        peers: BTreeMap::new(),
        listener: None,
        first: true,
        seed: seed(),
        metrics: metrics.clone(),
        bind_retry: Instant::now(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    // The value the source already holds is not a "change": apply it first.
    let initial = desired.borrow_and_update().clone();
    agent.apply(initial);
    loop {
        tokio::select! {
            changed = desired.changed() => {
                if changed.is_err() { break; }
                let new = desired.borrow_and_update().clone();
                agent.apply(new);
            }
            accepted = accept(agent.listener.as_ref()) => {
                match accepted {
                    Ok(a) => match agent.peers.iter().find(|(k, _)| k.address == a.peer) {
                        Some((_, p)) => { let _ = p.handle.commands.send(Command::Inbound(a.stream)); }
                        None => drop(a.stream),
                    },
                    Err(error) => tracing::warn!(%error, "accept failed"),
                }
            }
            _ = tick.tick() => {
                agent.retry_bind();
                let s = agent.status(&metrics);
                status.send_if_modified(|old| if *old == s { false } else { *old = s; true });
            }
            _ = shutdown.wait_for(|s| *s != Shutdown::Running) => break,
        }
    }
    let kind = *shutdown.borrow();
    let stop = match kind {
        Shutdown::Restart | Shutdown::Running => Stop::Restart,
    };
    // Every session is told at once and given the same 2 s: a peer that stopped reading
    // must not delay the others' close (nor the process's exit).
    let peers = std::mem::take(&mut agent.peers);
    for p in peers.values() {
        let _ = p.handle.commands.send(Command::Stop(stop.clone()));
    }
    let tasks: Vec<_> = peers.into_values().map(|p| p.handle.task).collect();
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    if tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(tasks))
        .await
        .is_err()
    {
        for a in aborts {
            a.abort();
        }
    }
}

async fn accept(listener: Option<&Listener>) -> std::io::Result<crate::net::Accepted> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Whether `intent` references a password that cannot be used (missing, empty, > 80 bytes).
fn password_unavailable(d: &Desired, intent: &PeerIntent) -> bool {
    intent.password.is_some() && peer::md5_key(d.password(intent.password.as_ref())).is_none()
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) ^ u64::from(std::process::id())
}

struct Agent {
    settings: AgentSettings,
    current: Option<Desired>,
    /// `current`'s routes, kept so neither a status tick nor the next diff rebuilds them.
    routes: Routes,
    peers: BTreeMap<PeerKey, Running>,
    listener: Option<Listener>,
    /// The first intent after the process started: sessions carry the Restart bit.
    first: bool,
    seed: u64,
    metrics: SpeakerMetrics,
    /// When to try binding the listen port again after a failure.
    bind_retry: Instant,
}

impl Agent {
    fn config(&self, d: &Desired, key: &PeerKey, intent: &PeerIntent) -> Config {
        let mut c = Config::new(
            d.intent.local_asn,
            d.intent.router_id,
            key.asn,
            intent,
            d.intent.next_hops,
            self.first,
        );
        c.connect_timeout = self.settings.connect_timeout;
        c.password_unavailable = password_unavailable(d, intent);
        if c.password_unavailable {
            // The reference is named, never the value.
            tracing::warn!(peer = %key, password = ?intent.password, "password unavailable (missing, empty or longer than 80 bytes): no connection and no listener entry for this peer");
        }
        c
    }

    fn connect_options(d: &Desired, key: &PeerKey, intent: &PeerIntent) -> ConnectOptions {
        let password = d.password(intent.password.as_ref());
        ConnectOptions::from_intent(key.address, intent, peer::md5_key(password))
    }

    fn apply(&mut self, new: Option<Desired>) {
        let Some(new) = new else {
            if self.current.take().is_some() {
                tracing::info!("intent deleted: withdrawing every route and closing every session");
                for (_, p) in std::mem::take(&mut self.peers) {
                    let _ = p.handle.commands.send(Command::Routes(Default::default()));
                    let _ = p.handle.commands.send(Command::Stop(Stop::Admin {
                        message: "intent deleted".into(),
                    }));
                }
                self.listener = None;
                self.routes.clear();
            }
            return;
        };
        for set in new.missing_sets() {
            tracing::warn!(%set, "the intent names a BGPAdvertisementSet that was not found");
        }
        let old = self.current.take();
        let identity_reset = old.as_ref().and_then(|o| o.intent.speaker_reset(&new.intent));
        let next_hops_changed = old
            .as_ref()
            .is_some_and(|o| o.intent.next_hops != new.intent.next_hops);
        let listen_changed = old
            .as_ref()
            .is_none_or(|o| o.intent.listen_port != new.intent.listen_port);
        if listen_changed {
            self.bind(&new);
        }
        let routes = new.routes();
        let routes_changed = old.is_none() || self.routes != routes;

        // Removed peers first, then changed, then added (remove, update, create).
        let gone: Vec<PeerKey> = self
            .peers
            .keys()
            .filter(|k| !new.intent.peers.contains_key(k))
            .copied()
            .collect();
        for key in gone {
            if let Some(p) = self.peers.remove(&key) {
                tracing::info!(peer = %key, "peer removed");
                self.metrics.forget(key.address);
                let _ = p.handle.commands.send(Command::Routes(Default::default()));
                let _ = p.handle.commands.send(Command::Stop(Stop::Admin {
                    message: "peer removed".into(),
                }));
            }
        }
        for (key, intent) in &new.intent.peers {
            let config = self.config(&new, key, intent);
            let connect = Self::connect_options(&new, key, intent);
            let Some(p) = self.peers.get_mut(key) else {
                continue;
            };
            let password_value_changed = old.as_ref().is_some_and(|o| {
                o.password(intent.password.as_ref()) != new.password(intent.password.as_ref())
            });
            let why = match (identity_reset, p.intent.reconfigure(intent)) {
                (Some(cause), _) => Some((cause.to_string(), cause.hard_reset())),
                (None, Reconfigure::Reset(cause)) => Some((cause.to_string(), cause.hard_reset())),
                // Node-level and value-level causes (the intent's `PeerIntent` is unchanged).
                _ if next_hops_changed => Some((ResetCause::NextHops.to_string(), false)),
                _ if password_value_changed => Some((ResetCause::Password.to_string(), false)),
                (None, Reconfigure::Live) => {
                    let _ = p.handle.commands.send(Command::Update {
                        config: Box::new(config.clone()),
                        connect: Box::new(connect.clone()),
                    });
                    None
                }
                (None, Reconfigure::Unchanged) => None,
            };
            if let Some((what, hard)) = why {
                tracing::info!(peer = %key, %what, hard_reset = hard, "resetting the session");
                let _ = p.handle.commands.send(Command::Restart {
                    config: Box::new(config.clone()),
                    connect: Box::new(connect),
                    what,
                    hard,
                });
            }
            p.intent = intent.clone();
            p.config = config;
            if routes_changed {
                let _ = p.handle.commands.send(Command::Routes(routes.clone()));
            }
        }
        for (key, intent) in &new.intent.peers {
            if self.peers.contains_key(key) {
                continue;
            }
            let config = self.config(&new, key, intent);
            self.seed = self.seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let handle = peer::spawn(PeerStart {
                key: *key,
                config: config.clone(),
                connect: Self::connect_options(&new, key, intent),
                routes: routes.clone(),
                seed: self.seed,
            });
            let seen = handle.report.borrow().clone();
            self.peers.insert(
                *key,
                Running {
                    intent: intent.clone(),
                    config,
                    handle,
                    seen,
                },
            );
        }
        self.allow_peers(&new);
        self.first = false;
        self.routes = routes;
        self.current = Some(new);
    }

    /// A listen port that could not be bound (still held by a previous process, say) is
    /// tried again every 5 s.
    fn retry_bind(&mut self) {
        if self.listener.is_some() || Instant::now() < self.bind_retry {
            return;
        }
        if let Some(d) = self.current.take() {
            self.bind(&d);
            self.allow_peers(&d);
            self.current = Some(d);
        }
    }

    fn bind(&mut self, d: &Desired) {
        self.bind_retry = Instant::now() + Duration::from_secs(5);
        self.listener = None;
        let config = ListenConfig {
            port: d.intent.listen_port,
            ..self.settings.listen
        };
        match Listener::bind(&config) {
            Ok(l) => {
                tracing::info!(port = d.intent.listen_port, "listening");
                self.listener = Some(l);
            }
            Err(error) => tracing::error!(%error, "cannot listen: only active sessions will come up"),
        }
    }

    fn allow_peers(&self, d: &Desired) {
        let Some(listener) = &self.listener else { return };
        // Fail closed: a peer whose password is unusable gets no listener entry at all.
        let allowed = d
            .intent
            .peers
            .iter()
            .filter(|(_, p)| !password_unavailable(d, p))
            .map(|(k, p)| AllowedPeer {
                address: k.address,
                ttl: p.ttl,
                md5_key: peer::md5_key(d.password(p.password.as_ref())),
            });
        if let Err(error) = listener.set_peers(allowed) {
            tracing::error!(%error, "cannot configure the listener's peers");
        }
    }

    fn status(&mut self, metrics: &SpeakerMetrics) -> NodeStatus {
        let mut s = NodeStatus {
            observed_generation: self.current.as_ref().and_then(|d| d.generation),
            present: self.current.is_some(),
            peers: BTreeMap::new(),
            prefixes: self.routes.len() as u64,
            missing_sets: self
                .current
                .as_ref()
                .map(|d| d.missing_sets().iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        };
        for (key, p) in &mut self.peers {
            let report = p.handle.report.borrow().clone();
            metrics.observe(&p.seen, &report);
            p.seen = report.clone();
            s.peers.insert(*key, report);
        }
        s
    }
}
