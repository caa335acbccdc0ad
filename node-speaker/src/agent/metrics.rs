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
    /// Attempts that failed before Established (refused, no answer, NOTIFICATION...), by reason.
    pub session_failures: Fam<ReasonLabel, Counter>,
    /// UPDATEs handled as withdraw under RFC 7606 (a malformed attribute; session kept).
    pub updates_treated_as_withdraw: Fam<PeerLabel, Counter>,
    /// Path attributes discarded under RFC 7606 (session and route kept).
    pub attributes_discarded: Fam<PeerLabel, Counter>,
    pub updates_sent: Fam<PeerLabel, Counter>,
    pub updates_received: Fam<PeerLabel, Counter>,
    /// Every NOTIFICATION received from the peer (malformed ones included).
    pub notifications_received: Fam<PeerLabel, Counter>,
    /// Every NOTIFICATION we sent (errors, Hold Timer Expired, Cease).
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
        r.register(
            "session_failures",
            "Connection attempts that failed before Established, by reason",
            m.session_failures.clone(),
        );
        r.register(
            "updates_treated_as_withdraw",
            "UPDATEs received and handled as withdraw (RFC 7606)",
            m.updates_treated_as_withdraw.clone(),
        );
        r.register(
            "attributes_discarded",
            "Path attributes received and discarded (RFC 7606)",
            m.attributes_discarded.clone(),
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
            "NOTIFICATION messages sent (every one on the wire)",
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
            &self.updates_treated_as_withdraw,
            &self.attributes_discarded,
        ] {
            f.remove(&PeerLabel { peer: peer.clone() });
        }
        for reason in bgpintent_api::DownReason::LABELS {
            for f in [&self.session_flaps, &self.session_failures] {
                f.remove(&ReasonLabel {
                    peer: peer.clone(),
                    reason,
                });
            }
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
        for (reason, n) in &now.failures {
            let seen = before.failures.get(reason).copied().unwrap_or(0);
            if *n > seen {
                self.session_failures
                    .get_or_create(&ReasonLabel {
                        peer: peer.clone(),
                        reason,
                    })
                    .inc_by(n - seen);
            }
        }
        self.updates_treated_as_withdraw
            .get_or_create(&PeerLabel { peer: peer.clone() })
            .inc_by(delta(before.stats.treat_as_withdraw, now.stats.treat_as_withdraw));
        self.attributes_discarded
            .get_or_create(&PeerLabel { peer: peer.clone() })
            .inc_by(delta(
                before.stats.attributes_discarded,
                now.stats.attributes_discarded,
            ));
        // Every NOTIFICATION on the wire, each retry and Hold Timer Expired included.
        self.notifications_received
            .get_or_create(&PeerLabel { peer: peer.clone() })
            .inc_by(delta(
                before.stats.notifications_received,
                now.stats.notifications_received,
            ));
        self.notifications_sent
            .get_or_create(&PeerLabel { peer: peer.clone() })
            .inc_by(delta(
                before.stats.notifications_sent,
                now.stats.notifications_sent,
            ));
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
