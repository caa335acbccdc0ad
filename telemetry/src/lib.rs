//! What the controller and the node speaker serve and log the same way.
//!
//! * [`router`]: `/healthz` (200 while the process serves), `/readyz` (200 once `ready` is
//!   true, 503 before), `/metrics` (OpenMetrics text of the registry); each binary adds its
//!   own routes with [`axum::Router::merge`];
//! * [`serve`]: one listener, graceful shutdown;
//! * [`init_logging`]: `tracing` with `RUST_LOG` (default `info`), text or JSON, on stderr,
//!   colours only on a terminal;
//! * [`kube_client`]: the API client both binaries use, with a timeout on every request;
//! * [`api_error`]: a `kube::Error` as it may be logged (no response body, no decoded value).

use std::{io::IsTerminal, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;
use tokio::{net::TcpListener, sync::watch};

/// Log output format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `kube_client` logs a whole response body at WARN when it does not decode (`{text}, {error}`
/// in `Client::request`), and at DEBUG when an error response is not a Status: for a Secret
/// that body holds the passwords. Its other WARN lines there are covered by the errors it
/// returns, and its request layer (`client::builder`) logs every failed request at ERROR
/// (404s of lookups included) next to the error we log ourselves through [`api_error`]; the
/// CA-bundle reload warnings (`client::tls`) stay.
const KUBE_CLIENT_QUIET: &str =
    "kube_client::client=error,kube_client::client::builder=off,kube_client::client::tls=warn";

/// The log filter: `RUST_LOG` (default `info`), with `kube_client`'s body-logging module at
/// ERROR unless `RUST_LOG` names `kube_client` itself (whoever asks for it gets it).
fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    let spec = rust_log.filter(|s| !s.trim().is_empty()).unwrap_or("info");
    let spec = if spec.contains("kube_client") {
        spec.to_owned()
    } else {
        format!("{spec},{KUBE_CLIENT_QUIET}")
    };
    tracing_subscriber::EnvFilter::try_new(&spec)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("info,{KUBE_CLIENT_QUIET}")))
}

/// Installs the global `tracing` subscriber; a second call does nothing.
///
/// Logs go to stderr, one write per line (no lock is held between lines, so no thread can
/// block another's logging), with ANSI colours only when stderr is a terminal: a container
/// runtime's log file gets plain text.
pub fn init_logging(format: LogFormat) {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// How long an idle watch may stay silent before the client gives up on it: above
/// kube-runtime's server-side watch timeout (290 s) plus its own idle margin (5 s), so only a
/// dead connection trips it.
const READ_TIMEOUT: Duration = Duration::from_secs(330);

/// The API client of both binaries (in-cluster config or `KUBECONFIG`), with bounded waits:
///
/// * every request must get its response headers within `api_timeout` (a tower timeout
///   layer): an API server that accepts connections but does not answer fails the request,
///   and the watchers' backoff retries it on a new connection;
/// * connecting and writing a request are bounded by `api_timeout` too;
/// * a response body (a list, a watch) may pause for at most [`READ_TIMEOUT`] between reads,
///   so a connection that dies mid-body is noticed.
///
/// A real apiserver sends a watch's headers at once, so the header timeout does not limit
/// how long a watch lasts.
pub async fn kube_client(api_timeout: Duration) -> Result<kube::Client, String> {
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| format!("no Kubernetes client configuration (in-cluster or KUBECONFIG): {e}"))?;
    config.connect_timeout = Some(api_timeout);
    config.write_timeout = Some(api_timeout);
    config.read_timeout = Some(READ_TIMEOUT);
    // Count the read timeout from the request, not from when a pooled connection went idle.
    config.reset_reader_on_write = true;
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| format!("cannot build the Kubernetes client: {}", api_error(&e)))?;
    Ok(builder
        .with_layer(&tower::timeout::TimeoutLayer::new(api_timeout))
        .build())
}

/// A `kube::Error` as it may be logged or put in a status: decode errors are reduced to
/// their category, because serde's message quotes the value it could not decode, and a
/// response can be a Secret.
pub fn api_error(error: &kube::Error) -> String {
    match error {
        kube::Error::SerdeError(e) => format!(
            "the API server's response does not decode ({:?} error at line {} column {}; value withheld)",
            e.classify(),
            e.line(),
            e.column()
        ),
        other => other.to_string(),
    }
}

#[derive(Clone, Debug)]
struct Probes {
    registry: Arc<Registry>,
    ready: watch::Receiver<bool>,
    not_ready: &'static str,
}

/// `/healthz`, `/readyz` and `/metrics`. `not_ready` is the body of a 503 from `/readyz`.
pub fn router(registry: Arc<Registry>, ready: watch::Receiver<bool>, not_ready: &'static str) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Probes {
            registry,
            ready,
            not_ready,
        })
}

/// `/healthz` and `/metrics` only, for a binary that answers `/readyz` itself.
pub fn health_and_metrics(registry: Arc<Registry>) -> Router {
    let (_, ready) = watch::channel(false);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(Probes {
            registry,
            ready,
            not_ready: "",
        })
}

/// SIGTERM and SIGINT, installed before anything else can take time.
#[derive(Debug)]
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Result<Self, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let err = |e: std::io::Error| format!("cannot install signal handlers: {e}");
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(err)?,
            int: signal(SignalKind::interrupt()).map_err(err)?,
        })
    }

    /// The name of the next signal received.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

async fn readyz(State(p): State<Probes>) -> impl IntoResponse {
    if *p.ready.borrow() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, p.not_ready)
    }
}

async fn metrics(State(p): State<Probes>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &p.registry) {
        Ok(()) => (
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A watcher's error as it may be logged: [`api_error`] for the request errors inside.
pub fn watch_error(error: &kube::runtime::watcher::Error) -> String {
    use kube::runtime::watcher::Error as W;
    match error {
        W::InitialListFailed(e) => format!("failed to perform initial object list: {}", api_error(e)),
        W::WatchStartFailed(e) => format!("failed to start watching object: {}", api_error(e)),
        W::WatchFailed(e) => format!("watch stream failed: {}", api_error(e)),
        other => other.to_string(),
    }
}

/// Binds `addr`, with an error that names it.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves `app` until `shutdown` flips to true.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[test]
    fn kube_client_bodies_stay_quiet_unless_asked_for() {
        let shown = |spec: Option<&str>| log_filter(spec).to_string();
        let quiet = |spec: Option<&str>| {
            let f = shown(spec);
            f.contains("kube_client::client=error") && f.contains("kube_client::client::builder=off")
        };
        assert!(quiet(None) && shown(None).contains("info"), "{}", shown(None));
        assert!(quiet(Some("")));
        assert!(quiet(Some("debug,bgpintent_speaker=trace")));
        assert!(shown(Some("debug,bgpintent_speaker=trace")).contains("bgpintent_speaker=trace"));
        assert_eq!(shown(Some("info,kube_client=debug")), "kube_client=debug,info");
    }

    #[test]
    fn decode_errors_do_not_quote_the_value() {
        let e = serde_json::from_str::<Vec<u8>>(r#""hunter2-password""#).unwrap_err();
        assert!(
            e.to_string().contains("hunter2"),
            "the premise: serde quotes the value"
        );
        let shown = api_error(&kube::Error::SerdeError(e));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("does not decode"), "{shown}");
    }

    #[tokio::test]
    async fn health_ready_and_metrics() {
        let mut registry = Registry::with_prefix("bgpintent");
        let runs = Counter::<u64>::default();
        registry.register("runs", "Runs", runs.clone());
        runs.inc();
        let (ready_tx, ready) = watch::channel(false);
        let (stop, shutdown) = watch::channel(false);
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(
            listener,
            router(Arc::new(registry), ready, "not yet\n"),
            shutdown,
        ));
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        let r = get(addr, "/readyz").await;
        assert!(r.starts_with("HTTP/1.1 503") && r.ends_with("not yet\n"), "{r}");
        ready_tx.send_replace(true);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/metrics").await.contains("bgpintent_runs_total 1"));
        stop.send_replace(true);
        server.await.unwrap().unwrap();
    }
}
