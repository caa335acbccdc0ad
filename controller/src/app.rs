//! `bgp-intent-controller run`: the controller against a cluster.
//!
//! ```text
//!   SIGTERM ─▶ shutdown ─┬─▶ LeaderElector (Lease) ──leader──▶ reconcile::run (writes gated)
//!                        ├─▶ reconcile::run ──ready──▶ /readyz
//!                        └─▶ HTTP /healthz /readyz /metrics
//! ```
//!
//! The HTTP endpoints start first and need nothing from the API server: `/healthz` answers
//! while it is unreachable, `/readyz` once every cache has synced. SIGTERM or SIGINT ends the
//! process within [`SHUTDOWN_BUDGET`] whatever it is doing (a pass in flight is cancelled:
//! every write is an idempotent apply, the next leader repeats what was missing), after
//! releasing the Lease if it held it; a second signal exits at once.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bgpintent_telemetry::{LogFormat, init_logging};
use clap::Args;
use kube::runtime::events::Reporter;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::{
    lease::{LeaderElector, LeaseConfig},
    metrics::Metrics,
    reconcile::{self, Settings},
};

/// Flags of `run`; each also reads an environment variable.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Namespace of the passwords Secret and of the leader-election Lease: the controller's
    /// own namespace (the chart passes the Pod's namespace).
    #[arg(long, env = "BGP_INTENT_NAMESPACE", default_value = "kube-system")]
    pub namespace: String,
    /// This replica's identity in the Lease; must differ between replicas (the chart passes
    /// the Pod name). Default: the host name.
    #[arg(long, env = "BGP_INTENT_IDENTITY")]
    pub identity: Option<String>,
    /// Name of the Secret with peer passwords (keys `<peer address>-<peer ASN>`, IPv6
    /// addresses with `_` for `:`). Only this Secret is read.
    #[arg(long, env = "BGP_INTENT_PASSWORDS_SECRET", default_value = "bgp-passwords")]
    pub passwords_secret: String,
    /// Name of the coordination.k8s.io Lease used for leader election.
    #[arg(long, env = "BGP_INTENT_LEASE_NAME", default_value = "bgp-intent-controller")]
    pub lease_name: String,
    /// How long a leader's Lease is valid after its last renewal (whole seconds are stored).
    #[arg(long, env = "BGP_INTENT_LEASE_DURATION", default_value = "15s", value_parser = bgpintent_api::parse_duration)]
    pub lease_duration: Duration,
    /// A leader that could not renew for this long stops writing (must be below the lease
    /// duration).
    #[arg(long, env = "BGP_INTENT_RENEW_DEADLINE", default_value = "10s", value_parser = bgpintent_api::parse_duration)]
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew the Lease (must be below the renew deadline).
    #[arg(long, env = "BGP_INTENT_RETRY_PERIOD", default_value = "2s", value_parser = bgpintent_api::parse_duration)]
    pub retry_period: Duration,
    /// Address of /healthz, /readyz (caches synced) and /metrics.
    #[arg(long, env = "BGP_INTENT_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, env = "BGP_INTENT_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Quiet time after a change before the controller recomputes (bursts make one pass).
    #[arg(long, env = "BGP_INTENT_DEBOUNCE", default_value = "200ms", value_parser = bgpintent_api::parse_duration)]
    pub debounce: Duration,
    /// How long the API server may take to start answering any request (connect, send,
    /// response headers); a request that takes longer fails and is retried.
    #[arg(long, env = "BGP_INTENT_API_TIMEOUT", default_value = "15s", value_parser = bgpintent_api::parse_duration)]
    pub api_timeout: Duration,
}

/// From SIGTERM to exit, at most (the chart's grace period is 30 s; the kubelet's SIGKILL
/// must never be needed).
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(4);

impl RunArgs {
    pub fn lease_config(&self) -> Result<LeaseConfig, String> {
        let identity = match &self.identity {
            Some(i) => i.clone(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .map_err(|e| format!("--identity not given and no host name: {e}"))?,
        };
        let config = LeaseConfig {
            name: self.lease_name.clone(),
            namespace: self.namespace.clone(),
            identity,
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        };
        config.validate()?;
        Ok(config)
    }

    pub fn settings(&self) -> Settings {
        Settings {
            namespace: self.namespace.clone(),
            passwords_secret: self.passwords_secret.clone(),
            debounce: self.debounce,
            retry: Duration::from_secs(5),
        }
    }
}

/// A running controller (everything but the process-level concerns), for `run` and tests.
#[derive(Debug)]
pub struct Running {
    pub leader: watch::Receiver<bool>,
    pub ready: watch::Receiver<bool>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops gracefully within [`SHUTDOWN_BUDGET`] (see [`Self::stop_within`]).
    pub async fn stop(self) {
        self.stop_within(SHUTDOWN_BUDGET).await;
    }

    /// Stops gracefully: cancels a pass in flight, releases the Lease, stops the informers.
    /// Whatever has not finished within `budget` is aborted.
    pub async fn stop_within(self, budget: Duration) {
        self.shutdown.send_replace(true);
        let aborts: Vec<_> = self.tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(budget, futures::future::join_all(self.tasks))
            .await
            .is_err()
        {
            tracing::warn!(?budget, "shutdown budget spent; aborting what is left");
            for a in aborts {
                a.abort();
            }
        }
    }

    /// Kills without releasing anything, like a crash.
    pub fn abort(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Starts leader election and the reconcile loop on `client`.
pub fn start(
    client: kube::Client,
    lease: LeaseConfig,
    settings: Settings,
    registry: &mut Registry,
) -> Running {
    let (ready_tx, _) = watch::channel(false);
    start_with_ready(client, lease, settings, registry, ready_tx)
}

/// [`start`], reporting synced caches on `ready_tx` (the `/readyz` of the process).
pub fn start_with_ready(
    client: kube::Client,
    lease: LeaseConfig,
    settings: Settings,
    registry: &mut Registry,
    ready_tx: watch::Sender<bool>,
) -> Running {
    let metrics = Metrics::register(registry);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let ready = ready_tx.subscribe();
    let reporter = Reporter {
        controller: "bgp-intent-controller".into(),
        instance: Some(lease.identity.clone()),
    };
    let elector = LeaderElector::new(client.clone(), lease);
    let leader = elector.subscribe();
    let mut tasks = vec![tokio::spawn(elector.run(shutdown_rx.clone()))];
    let gauge = metrics.leader.clone();
    let mut leading = leader.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            gauge.set(i64::from(*leading.borrow_and_update()));
            if leading.changed().await.is_err() {
                break;
            }
        }
    }));
    tasks.push(tokio::spawn(reconcile::run(
        client,
        settings,
        metrics,
        leader.clone(),
        ready_tx,
        shutdown_rx,
        reporter,
    )));
    Running {
        leader,
        ready,
        shutdown,
        tasks,
    }
}

/// The whole process: logging, HTTP endpoints, client, controller, signals.
pub fn run_blocking(args: RunArgs) -> Result<(), String> {
    init_logging(args.log_format);
    let lease = args.lease_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(async move {
        let signals = bgpintent_telemetry::Signals::install()?;
        let mut registry = Registry::with_prefix("bgpintent");
        let (ready_tx, ready) = watch::channel(false);
        // Bind before anything talks to the API server, so a bad address fails at once and
        // the probes answer from the start.
        let listener = bgpintent_telemetry::bind(args.metrics_addr)
            .await
            .map_err(|e| e.to_string())?;
        let client = bgpintent_telemetry::kube_client(args.api_timeout).await?;
        let running = start_with_ready(client, lease, args.settings(), &mut registry, ready_tx);
        let (stop_http, http_shutdown) = watch::channel(false);
        let app = bgpintent_telemetry::router(Arc::new(registry), ready, "caches not synced\n");
        let http = tokio::spawn(bgpintent_telemetry::serve(listener, app, http_shutdown));
        tracing::info!(addr = %args.metrics_addr, "serving /healthz /readyz /metrics");
        let mut signals = signals;
        let signal = signals.next().await;
        tracing::info!(
            signal,
            "shutting down: cancelling work in flight, releasing the Lease"
        );
        tokio::select! {
            _ = running.stop() => {}
            signal = signals.next() => tracing::warn!(signal, "second signal: exiting now"),
        }
        stop_http.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_millis(500), http).await;
        tracing::info!("stopped");
        Ok(())
    });
    // Tasks still running (an aborted request's connection) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}
