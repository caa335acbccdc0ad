//! The speaker's HTTP endpoints: the shared `/healthz`, `/readyz`, `/metrics` plus
//! `/status`.
//!
//! `/readyz` is 200 only while a valid intent is loaded ([`super::readiness`]; with
//! `--ready-without-intent` also when there is none); otherwise 503 with what is wrong (not
//! read yet, missing, or the field and rule that failed). `/status`
//! is the `BGPNodeIntent.status` the speaker would write, as JSON (in standalone mode, the
//! only place it is visible).

use std::sync::Arc;

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::{NodeStatus, readiness};

pub fn router(
    registry: Arc<Registry>,
    intent: readiness::Readiness,
    status: watch::Receiver<NodeStatus>,
) -> Router {
    let own = Router::new()
        .route("/status", get(status_json))
        .with_state(status);
    let ready = Router::new()
        .route("/readyz", get(readiness::readyz))
        .with_state(intent);
    bgpintent_telemetry::health_and_metrics(registry)
        .merge(own)
        .merge(ready)
}

async fn status_json(State(status): State<watch::Receiver<NodeStatus>>) -> impl IntoResponse {
    let status = status.borrow().clone();
    if status.present {
        Json(status.to_api(None)).into_response()
    } else {
        (StatusCode::NOT_FOUND, "no intent\n").into_response()
    }
}
