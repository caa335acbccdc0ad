//! `bgp-intent-speaker run`: the speaker process.
//!
//! ```text
//!  source (Kubernetes, or --intent-file) ──▶ agent ──▶ peers
//!                                             │
//!        /healthz /readyz /metrics /status ◀──┴──▶ status writer (Kubernetes only)
//!  SIGTERM/SIGINT ──▶ close every session without NOTIFICATION (graceful restart) ──▶ exit
//! ```

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
        self, AgentSettings, NodeStatus, Shutdown, file::FileSource, kube::KubeSource,
        metrics::SpeakerMetrics,
    },
    net::ListenConfig,
};

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
    runtime.block_on(async move {
        let mut registry = Registry::with_prefix("bgpintent");
        let metrics = SpeakerMetrics::register(&mut registry);
        let (ready_tx, ready) = watch::channel(false);
        let (status_tx, status) = watch::channel(NodeStatus::default());
        let (stop_tx, stop) = watch::channel(false);
        let mut tasks = Vec::new();
        let desired = match &args.intent_file {
            Some(file) => {
                tracing::info!(node = %args.node_name, file = %file.display(), "standalone mode");
                FileSource {
                    node: args.node_name.clone(),
                    intent_file: file.clone(),
                    passwords_file: args.passwords_file.clone(),
                }
                .follow(ready_tx)
            }
            None => {
                let client = kube::Client::try_default()
                    .await
                    .map_err(|e| format!("cannot reach the API server: {e}"))?;
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
                .follow(ready_tx)
            }
        };
        let listener = bgpintent_telemetry::bind(args.metrics_addr)
            .await
            .map_err(|e| e.to_string())?;
        let app = agent::http::router(Arc::new(registry), ready, status);
        let http = tokio::spawn(bgpintent_telemetry::serve(listener, app, stop.clone()));
        let (shutdown_tx, shutdown) = watch::channel(Shutdown::Running);
        let agent = tokio::spawn(agent::run(settings, desired, status_tx, metrics, shutdown));
        wait_for_signal().await;
        tracing::info!("stopping for a restart: sessions close without NOTIFICATION, peers keep our routes");
        shutdown_tx.send_replace(Shutdown::Restart);
        let _ = agent.await;
        stop_tx.send_replace(true);
        for t in tasks {
            let _ = t.await;
        }
        match http.await {
            Ok(Err(e)) => Err(e.to_string()),
            _ => Ok(()),
        }
    })
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
