//! The speaker's Prometheus metrics (`bgpintent_speaker_*`). The `peer` label is the peer's
//! address: bounded by the intent, never a prefix.

use bgpintent_api::{Family, SessionState};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family as Fam, gauge::Gauge},
    registry::Registry,
};

use super::peer::PeerReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub peer: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub peer: String,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FamilyLabel {
    pub peer: String,
    pub family: &'static str,
}

/// Every metric of the speaker.
#[derive(Debug, Clone, Default)]
pub struct SpeakerMetrics {
    /// 1 for the session's current state, 0 for the others.
    pub session_state: Fam<StateLabel, Gauge>,
    /// Sessions that left Established, by the reason they went down.
    pub session_flaps: Fam<ReasonLabel, Counter>,
    pub updates_sent: Fam<PeerLabel, Counter>,
    pub updates_received: Fam<PeerLabel, Counter>,
    /// NOTIFICATIONs received from the peer (seen as the reason a session went down).
    pub notifications_received: Fam<PeerLabel, Counter>,
    /// NOTIFICATIONs we sent because of an error on the peer's side.
    pub notifications_sent: Fam<PeerLabel, Counter>,
    pub prefixes_announced: Fam<FamilyLabel, Gauge>,
    /// 1 while a valid intent is loaded (see `readiness`), 0 before, when missing or invalid.
    pub intent_loaded: Gauge,
    /// Times the intent was found invalid (each distinct failure once).
    pub intent_load_errors: Counter,
    /// Unix time of the last invalid intent (0: never).
    pub intent_last_error_time: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl SpeakerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("speaker");
        r.register(
            "session_state",
            "1 for the current state of each session",
            m.session_state.clone(),
        );
        r.register(
            "session_flaps",
            "Sessions that left Established, by reason",
            m.session_flaps.clone(),
        );
        r.register("updates_sent", "UPDATE messages sent", m.updates_sent.clone());
        r.register(
            "updates_received",
            "UPDATE messages received (parsed, counted, dropped)",
            m.updates_received.clone(),
        );
        r.register(
            "notifications_received",
            "NOTIFICATION messages received",
            m.notifications_received.clone(),
        );
        r.register(
            "notifications_sent",
            "NOTIFICATION messages sent for peer errors",
            m.notifications_sent.clone(),
        );
        r.register(
            "prefixes_announced",
            "Prefixes announced per peer and family",
            m.prefixes_announced.clone(),
        );
        r.register(
            "intent_loaded",
            "1 while a valid intent is loaded; 0 before, or when it is missing or invalid",
            m.intent_loaded.clone(),
        );
        r.register(
            "intent_load_errors",
            "Times the intent was found invalid",
            m.intent_load_errors.clone(),
        );
        r.register(
            "intent_last_error_timestamp_seconds",
            "Unix time the intent was last found invalid (0: never)",
            m.intent_last_error_time.clone(),
        );
        m
    }

    /// Removes every series of a peer that is no longer configured.
    pub fn forget(&self, peer: std::net::IpAddr) {
        let peer = peer.to_string();
        for state in SessionState::ALL {
            self.session_state.remove(&StateLabel {
                peer: peer.clone(),
                state: state.as_str(),
            });
        }
        for family in Family::ALL {
            self.prefixes_announced.remove(&FamilyLabel {
                peer: peer.clone(),
                family: family.as_str(),
            });
        }
        for f in [
            &self.updates_sent,
            &self.updates_received,
            &self.notifications_received,
            &self.notifications_sent,
        ] {
            f.remove(&PeerLabel { peer: peer.clone() });
        }
    }

    /// Adds what changed between two reports of one peer.
    pub fn observe(&self, before: &PeerReport, now: &PeerReport) {
        let peer = now.key.address.to_string();
        for state in SessionState::ALL {
            let value = i64::from(state == now.state);
            self.session_state
                .get_or_create(&StateLabel {
                    peer: peer.clone(),
                    state: state.as_str(),
                })
                .set(value);
        }
        if now.flaps > before.flaps {
            let reason = now.last_down_reason.as_ref().map_or("unknown", |r| r.label());
            self.session_flaps
                .get_or_create(&ReasonLabel {
                    peer: peer.clone(),
                    reason,
                })
                .inc_by(now.flaps - before.flaps);
        }
        // A reset starts a new session whose counters begin at 0 again.
        let delta = |a: u64, b: u64| if b >= a { b - a } else { b };
        self.updates_sent
            .get_or_create(&PeerLabel { peer: peer.clone() })
            .inc_by(delta(before.stats.updates_sent, now.stats.updates_sent));
        self.updates_received
            .get_or_create(&PeerLabel { peer: peer.clone() })
            .inc_by(delta(before.stats.updates_received, now.stats.updates_received));
        if now.last_down_reason != before.last_down_reason {
            match &now.last_down_reason {
                Some(bgpintent_api::DownReason::NotificationReceived { .. }) => {
                    self.notifications_received
                        .get_or_create(&PeerLabel { peer: peer.clone() })
                        .inc();
                }
                Some(bgpintent_api::DownReason::NotificationSent { .. }) => {
                    self.notifications_sent
                        .get_or_create(&PeerLabel { peer: peer.clone() })
                        .inc();
                }
                _ => {}
            }
        }
        for family in Family::ALL {
            let label = FamilyLabel {
                peer: peer.clone(),
                family: family.as_str(),
            };
            self.prefixes_announced
                .get_or_create(&label)
                .set(i64::from(now.prefixes_sent.get(family)));
        }
    }
}
