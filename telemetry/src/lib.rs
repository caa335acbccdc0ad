//! What the controller and the node speaker serve and log the same way.
//!
//! * [`router`]: `/healthz` (200 while the process serves), `/readyz` (200 once `ready` is
//!   true, 503 before), `/metrics` (OpenMetrics text of the registry); each binary adds its
//!   own routes with [`axum::Router::merge`];
//! * [`serve`]: one listener, graceful shutdown;
//! * [`init_logging`]: `tracing` with `RUST_LOG` (default `info`), text or JSON.

use std::{net::SocketAddr, sync::Arc};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;
use tokio::{net::TcpListener, sync::watch};

/// Log output format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global `tracing` subscriber; a second call does nothing.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
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
