//! `/healthz`, `/readyz`, `/metrics` and `/status` of the speaker.
//!
//! `/readyz` is 200 once the source has delivered its first answer, *including* "no intent
//! for this Node": a Node outside every policy runs an idle speaker, and a DaemonSet rollout
//! must not stall on it. `/status` is the `BGPNodeIntent.status` the speaker would write,
//! as JSON (in standalone mode, the only place it is visible).

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;
use tokio::{net::TcpListener, sync::watch};

use super::NodeStatus;

#[derive(Clone, Debug)]
struct AppState {
    registry: Arc<Registry>,
    ready: watch::Receiver<bool>,
    status: watch::Receiver<NodeStatus>,
}

pub fn router(
    registry: Arc<Registry>,
    ready: watch::Receiver<bool>,
    status: watch::Receiver<NodeStatus>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status_json))
        .with_state(AppState {
            registry,
            ready,
            status,
        })
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if *s.ready.borrow() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "intent not read yet\n")
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
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

async fn status_json(State(s): State<AppState>) -> impl IntoResponse {
    let status = s.status.borrow().clone();
    if status.present {
        Json(status.to_api(None)).into_response()
    } else {
        (StatusCode::NOT_FOUND, "no intent\n").into_response()
    }
}

/// Serves on `addr` until `shutdown` flips.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    ready: watch::Receiver<bool>,
    status: watch::Receiver<NodeStatus>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    axum::serve(listener, router(registry, ready, status))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
}
