//! The speaker's HTTP endpoints: the shared `/healthz`, `/readyz`, `/metrics` plus
//! `/status`.
//!
//! `/readyz` is 200 once the source has delivered its first answer, *including* "no intent
//! for this Node": a Node outside every policy runs an idle speaker, and a DaemonSet rollout
//! must not stall on it. `/status` is the `BGPNodeIntent.status` the speaker would write,
//! as JSON (in standalone mode, the only place it is visible).

use std::sync::Arc;

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::NodeStatus;

pub fn router(
    registry: Arc<Registry>,
    ready: watch::Receiver<bool>,
    status: watch::Receiver<NodeStatus>,
) -> Router {
    let own = Router::new()
        .route("/status", get(status_json))
        .with_state(status);
    bgpintent_telemetry::router(registry, ready, "intent not read yet\n").merge(own)
}

async fn status_json(State(status): State<watch::Receiver<NodeStatus>>) -> impl IntoResponse {
    let status = status.borrow().clone();
    if status.present {
        Json(status.to_api(None)).into_response()
    } else {
        (StatusCode::NOT_FOUND, "no intent\n").into_response()
    }
}
