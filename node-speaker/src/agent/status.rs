//! The speaker's report on its own intent, and its API form (`BGPNodeIntent.status`).

use std::collections::BTreeMap;

use bgpintent_api::{PeerKey, SessionState};
use bgpintent_crd::{
    BGPNodeIntentStatus,
    conditions::{reasons, types},
    convert::session_state_name,
    node_intent::{PeerStatus, PrefixCounts},
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::peer::PeerReport;

/// What the agent knows, refreshed every 250 ms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeStatus {
    /// Generation of the intent being run.
    pub observed_generation: Option<i64>,
    /// Whether an intent exists at all.
    pub present: bool,
    pub peers: BTreeMap<PeerKey, PeerReport>,
    /// Prefixes announced (own plus sets).
    pub prefixes: u64,
    /// Sets the intent names that were not found.
    pub missing_sets: Vec<String>,
}

fn time(t: std::time::SystemTime) -> Option<Time> {
    jiff::Timestamp::try_from(t)
        .ok()
        .and_then(|t| t.round(jiff::Unit::Second).ok())
        .map(Time)
}

impl NodeStatus {
    pub fn established(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.state == SessionState::Established)
            .count()
    }

    /// The status subresource. `previous` keeps the Ready condition's transition time while
    /// its status does not change, so an unchanged speaker writes nothing.
    pub fn to_api(&self, previous: Option<&BGPNodeIntentStatus>) -> BGPNodeIntentStatus {
        let peers: Vec<PeerStatus> = self
            .peers
            .iter()
            .map(|(key, r)| PeerStatus {
                address: key.address.to_string(),
                asn: i64::from(key.asn.get()),
                state: session_state_name(r.state),
                since: time(r.since),
                last_down_reason: r.last_down_reason.as_ref().map(ToString::to_string),
                prefixes_sent: PrefixCounts {
                    ipv4: i64::from(r.prefixes_sent.ipv4),
                    ipv6: i64::from(r.prefixes_sent.ipv6),
                },
            })
            .collect();
        let established = self.established();
        let total = self.peers.len();
        let (ok, reason, message) = if !self.missing_sets.is_empty() {
            (
                false,
                reasons::SESSIONS_NOT_ESTABLISHED,
                format!("BGPAdvertisementSets not found: {}", self.missing_sets.join(", ")),
            )
        } else if total == 0 {
            (false, reasons::NO_NODES, "the intent has no peers".to_owned())
        } else if established == total {
            (
                true,
                reasons::ALL_SESSIONS_ESTABLISHED,
                format!("{established} of {total} sessions Established"),
            )
        } else {
            (
                false,
                reasons::SESSIONS_NOT_ESTABLISHED,
                format!("{established} of {total} sessions Established"),
            )
        };
        let status = if ok { "True" } else { "False" }.to_owned();
        let last_transition_time = previous
            .and_then(|p| p.conditions.iter().find(|c| c.type_ == types::READY))
            .filter(|c| c.status == status)
            .map(|c| c.last_transition_time.clone())
            .or_else(|| time(std::time::SystemTime::now()))
            .unwrap_or(Time(jiff::Timestamp::UNIX_EPOCH));
        BGPNodeIntentStatus {
            observed_generation: self.observed_generation,
            peers,
            peers_total: i32::try_from(total).unwrap_or(i32::MAX),
            established: i32::try_from(established).unwrap_or(i32::MAX),
            prefixes: i64::try_from(self.prefixes).unwrap_or(i64::MAX),
            conditions: vec![Condition {
                type_: types::READY.to_owned(),
                status,
                reason: reason.to_owned(),
                message,
                observed_generation: self.observed_generation,
                last_transition_time,
            }],
        }
    }
}
