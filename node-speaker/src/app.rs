//! `bgp-intent-speaker run`: the speaker process.
//!
//! ```text
//!  source (Kubernetes, or --intent-file) ──▶ agent ──▶ peers
//!                                             │
//!        /healthz /readyz /metrics /status ◀──┴──▶ status writer (Kubernetes only)
//!  SIGTERM/SIGINT ──▶ close every session without NOTIFICATION (graceful restart) ──▶ exit
//! ```
//!
//! The HTTP endpoints are up before the API server is contacted: `/healthz` answers while it
//! is unreachable, `/readyz` once a valid intent is loaded. SIGTERM or SIGINT ends the process
//! within [`SHUTDOWN_BUDGET`] in any state (sessions up, a connect in progress, a status write
//! hanging on a silent API server); a second signal exits at once.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use bgpintent_telemetry::{LogFormat, init_logging};
use clap::{Args, Parser, Subcommand};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::{
    agent::{
        self, AgentSettings, IntentState, NodeStatus, Shutdown, file::FileSource, kube::KubeSource,
        metrics::SpeakerMetrics,
    },
    net::ListenConfig,
};

/// From SIGTERM to exit, at most (the chart's grace period is 60 s).
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(4);

/// bgp-intent node speaker.
#[derive(Debug, Parser)]
#[command(name = "bgp-intent-speaker", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the BGP sessions of this Node's intent.
    Run(RunArgs),
}

/// Flags of `run`; each also reads an environment variable.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// This Node's name (the chart passes `spec.nodeName` through the downward API). The
    /// speaker runs the BGPNodeIntent of that name.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// Namespace of the passwords Secret (the speaker's own).
    #[arg(long, env = "BGP_INTENT_NAMESPACE", default_value = "kube-system")]
    pub namespace: String,
    /// Standalone mode, without Kubernetes: a file with the BGPNodeIntent (and any
    /// BGPAdvertisementSets it names), re-read when it changes. Removing the file withdraws
    /// everything.
    #[arg(long, env = "BGP_INTENT_INTENT_FILE")]
    pub intent_file: Option<PathBuf>,
    /// Standalone mode: passwords, as a Secret manifest or a `key: password` map, keyed like
    /// the intent's password references.
    #[arg(long, env = "BGP_INTENT_PASSWORDS_FILE", requires = "intent_file")]
    pub passwords_file: Option<PathBuf>,
    /// IPv4 address to listen on for BGP (the port comes from the intent); `none` disables.
    #[arg(long, env = "BGP_INTENT_LISTEN_V4", default_value = "0.0.0.0")]
    pub listen_v4: String,
    /// IPv6 address to listen on for BGP; `none` disables.
    #[arg(long, env = "BGP_INTENT_LISTEN_V6", default_value = "::")]
    pub listen_v6: String,
    /// How long a TCP connect may take before the session reports "no answer".
    #[arg(long, env = "BGP_INTENT_CONNECT_TIMEOUT", default_value = "5s", value_parser = bgpintent_api::parse_duration)]
    pub connect_timeout: Duration,
    /// Address of /healthz, /readyz, /metrics and /status (the speaker uses host
    /// networking, so this is on the Node).
    #[arg(long, env = "BGP_INTENT_METRICS_ADDR", default_value = "0.0.0.0:9473")]
    pub metrics_addr: SocketAddr,
    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, env = "BGP_INTENT_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// How long the API server may take to start answering any request (connect, send,
    /// response headers); a request that takes longer fails and is retried.
    #[arg(long, env = "BGP_INTENT_API_TIMEOUT", default_value = "15s", value_parser = bgpintent_api::parse_duration)]
    pub api_timeout: Duration,
    /// Report ready (`/readyz`) when this Node has no intent at all (no policy selects it),
    /// not only when a valid intent is loaded. An invalid intent is never ready.
    #[arg(long, env = "BGP_INTENT_READY_WITHOUT_INTENT")]
    pub ready_without_intent: bool,
}

fn listen(args: &RunArgs) -> Result<ListenConfig, String> {
    let v4 = match args.listen_v4.as_str() {
        "none" => None,
        a => Some(
            a.parse::<Ipv4Addr>()
                .map_err(|_| format!("--listen-v4: {a:?} is not an IPv4 address or none"))?,
        ),
    };
    let v6 = match args.listen_v6.as_str() {
        "none" => None,
        a => Some(
            a.parse::<Ipv6Addr>()
                .map_err(|_| format!("--listen-v6: {a:?} is not an IPv6 address or none"))?,
        ),
    };
    Ok(ListenConfig { port: 179, v4, v6 })
}

/// The process.
pub fn run_blocking(args: RunArgs) -> Result<(), String> {
    init_logging(args.log_format);
    let settings = AgentSettings {
        listen: listen(&args)?,
        connect_timeout: args.connect_timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(async move {
        let mut signals = bgpintent_telemetry::Signals::install()?;
        let mut registry = Registry::with_prefix("bgpintent");
        let metrics = SpeakerMetrics::register(&mut registry);
        let (intent_tx, intent_state) = watch::channel(IntentState::Pending);
        let (status_tx, status) = watch::channel(NodeStatus::default());
        let (stop_tx, stop) = watch::channel(false);
        let listener = bgpintent_telemetry::bind(args.metrics_addr)
            .await
            .map_err(|e| e.to_string())?;
        let readiness = agent::readiness::Readiness {
            state: intent_state.clone(),
            ready_without_intent: args.ready_without_intent,
        };
        let app = agent::http::router(Arc::new(registry), readiness, status.clone());
        let http = tokio::spawn(bgpintent_telemetry::serve(listener, app, stop.clone()));
        tracing::info!(addr = %args.metrics_addr, "serving /healthz /readyz /metrics /status");
        // Ends with the process (aborted below), not awaited on the way out.
        let exporter = tokio::spawn(agent::readiness::export(intent_state, metrics.clone()));
        let mut tasks = Vec::new();
        let desired = match &args.intent_file {
            Some(file) => {
                tracing::info!(node = %args.node_name, file = %file.display(), "standalone mode");
                FileSource {
                    node: args.node_name.clone(),
                    intent_file: file.clone(),
                    passwords_file: args.passwords_file.clone(),
                }
                .follow(intent_tx)
            }
            None => {
                let client = bgpintent_telemetry::kube_client(args.api_timeout).await?;
                tracing::info!(node = %args.node_name, "Kubernetes mode");
                tasks.push(tokio::spawn(agent::kube::write_status(
                    client.clone(),
                    args.node_name.clone(),
                    status.clone(),
                    Duration::from_secs(1),
                    stop.clone(),
                )));
                KubeSource {
                    client,
                    node: args.node_name.clone(),
                    namespace: args.namespace.clone(),
                }
                .follow(intent_tx)
            }
        };
        let (shutdown_tx, shutdown) = watch::channel(Shutdown::Running);
        let agent = tokio::spawn(agent::run(settings, desired, status_tx, metrics, shutdown));
        let signal = signals.next().await;
        tracing::info!(
            signal,
            "stopping for a restart: sessions close without NOTIFICATION, peers keep our routes"
        );
        shutdown_tx.send_replace(Shutdown::Restart);
        stop_tx.send_replace(true);
        let mut aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        aborts.push(exporter.abort_handle());
        let finish = async {
            let _ = agent.await;
            for t in tasks {
                let _ = t.await;
            }
        };
        tokio::select! {
            r = tokio::time::timeout(SHUTDOWN_BUDGET, finish) => if r.is_err() {
                tracing::warn!(budget = ?SHUTDOWN_BUDGET, "shutdown budget spent; exiting");
            },
            signal = signals.next() => tracing::warn!(signal, "second signal: exiting now"),
        }
        for a in aborts {
            a.abort();
        }
        let served = tokio::time::timeout(Duration::from_millis(500), http).await;
        tracing::info!("stopped");
        match served {
            Ok(Ok(Err(e))) => Err(e.to_string()),
            _ => Ok(()),
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}
