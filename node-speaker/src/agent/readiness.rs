//! Whether the speaker runs a loaded, valid intent: `/readyz`, the `intent_*` metrics and the
//! log line that names what is wrong.
//!
//! A source (Kubernetes or files) publishes an [`IntentState`] next to the desired state. Only
//! [`IntentState::Loaded`] is ready. A missing intent is not ready either: the speaker then
//! announces nothing, and a probe that says so is what makes a Node left out of every policy,
//! or a controller that has not written the intent yet, visible in `kubectl get pods`. An
//! invalid intent is not ready and names the field and the rule that failed, while the agent
//! keeps running the last valid one (fail static).
//!
//! `--ready-without-intent` makes a *missing* intent ready (never an invalid one): for
//! clusters that run the speaker on Nodes no policy selects, where an unready Pod would hold a
//! DaemonSet rollout or `helm install --wait` and fire not-ready alerts.

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use tokio::sync::watch;

use super::metrics::SpeakerMetrics;

/// What the source knows of this Node's intent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IntentState {
    /// Nothing read yet (the API server has not answered, or the file not been read).
    #[default]
    Pending,
    /// The intent was read, parsed and handed to the agent.
    Loaded,
    /// There is no intent for this Node (no object of its name, or no file).
    Missing { what: String },
    /// The intent does not parse; the message names the field path and the rule.
    Invalid { error: String },
}

impl IntentState {
    pub fn is_loaded(&self) -> bool {
        matches!(self, Self::Loaded)
    }

    /// What `/readyz` answers 200 for.
    pub fn is_ready(&self, ready_without_intent: bool) -> bool {
        match self {
            Self::Loaded => true,
            Self::Missing { .. } => ready_without_intent,
            Self::Pending | Self::Invalid { .. } => false,
        }
    }

    /// The `/readyz` body when not ready.
    pub fn describe(&self) -> String {
        match self {
            Self::Pending => "intent not read yet\n".to_owned(),
            Self::Loaded => "ready\n".to_owned(),
            Self::Missing { what } => format!("no intent: {what}\n"),
            Self::Invalid { error } => {
                format!("intent invalid (running the last valid one, if any): {error}\n")
            }
        }
    }
}

/// Publishes `state` if it differs from the current one (so a source re-reading the same
/// broken object does not count a new error).
pub fn publish(tx: &watch::Sender<IntentState>, state: IntentState) {
    tx.send_if_modified(|old| {
        if *old == state {
            return false;
        }
        *old = state;
        true
    });
}

/// What `/readyz` reads.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub state: watch::Receiver<IntentState>,
    /// `--ready-without-intent`.
    pub ready_without_intent: bool,
}

/// `GET /readyz`.
pub async fn readyz(State(r): State<Readiness>) -> impl IntoResponse {
    let state = r.state.borrow().clone();
    if state.is_ready(r.ready_without_intent) {
        (StatusCode::OK, state.describe())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, state.describe())
    }
}

/// Keeps the `intent_*` metrics equal to the published state until the sender is dropped.
pub async fn export(mut state: watch::Receiver<IntentState>, metrics: SpeakerMetrics) {
    loop {
        let now = state.borrow_and_update().clone();
        metrics.intent_loaded.set(i64::from(now.is_loaded()));
        if let IntentState::Invalid { .. } = now {
            metrics.intent_load_errors.inc();
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            metrics.intent_last_error_time.set(t.as_secs_f64());
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_loaded_intent_is_ready_and_errors_are_counted_once() {
        let metrics = SpeakerMetrics::default();
        let (tx, rx) = watch::channel(IntentState::Pending);
        let exporter = tokio::spawn(export(rx.clone(), metrics.clone()));
        let status = |rx: &watch::Receiver<IntentState>| {
            let s = rx.borrow().clone();
            (s.is_loaded(), s.describe())
        };
        assert_eq!(status(&rx), (false, "intent not read yet\n".into()));
        let invalid = IntentState::Invalid {
            error: "spec.peers[0].asn: must be 1-4294967294, not 0".into(),
        };
        publish(&tx, invalid.clone());
        tokio::task::yield_now().await;
        publish(&tx, invalid);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(metrics.intent_load_errors.get(), 1);
        assert!(metrics.intent_last_error_time.get() > 1.0e9);
        assert_eq!(metrics.intent_loaded.get(), 0);
        assert!(status(&rx).1.contains("spec.peers[0].asn"));
        let missing = IntentState::Missing {
            what: "no file".into(),
        };
        assert!(!missing.is_ready(false) && missing.is_ready(true));
        assert!(!rx.borrow().is_ready(true), "invalid is never ready");
        publish(&tx, IntentState::Loaded);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(metrics.intent_loaded.get(), 1);
        assert!(status(&rx).0);
        drop(tx);
        exporter.await.unwrap();
    }
}
