//! BGPPolicy status, computed purely from the engine's report and the speakers' reports.
//!
//! Conditions are sorted by type, carry reasons from `bgpintent_crd::conditions`, and keep
//! their `lastTransitionTime` while their status does not change, so an unchanged cluster
//! produces a byte-identical status and the writer can skip it.

use bgpintent_crd::{
    BGPNodeIntent, BGPPolicyStatus,
    conditions::{reasons, types},
    policy::PeerCounts,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::intent::PolicyReport;

/// Longest condition message we write; longer lists are cut with a count of what is left.
const MAX_MESSAGE: usize = 1024;

fn condition(type_: &str, ok: bool, reason: &str, message: String, generation: i64) -> Condition {
    condition_with(
        type_,
        if ok { "True" } else { "False" },
        reason,
        message,
        generation,
    )
}

fn condition_with(type_: &str, status: &str, reason: &str, message: String, generation: i64) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: bounded(message),
        observed_generation: Some(generation),
        last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
    }
}

fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let cut = message
        .char_indices()
        .take_while(|(i, _)| *i < MAX_MESSAGE - 20)
        .last()
        .map_or(0, |(i, _)| i);
    format!("{}… (truncated)", &message[..cut])
}

fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The status of one policy. `intents` are the current BGPNodeIntents of the Nodes the policy
/// owns (with the speakers' status), in name order; `previous` is the status stored now; `now` stamps
/// conditions whose status changed.
pub fn policy_status(
    report: &PolicyReport,
    intents: &[&BGPNodeIntent],
    previous: Option<&BGPPolicyStatus>,
    now: Time,
) -> BGPPolicyStatus {
    let generation = report.generation;
    let mut peers = PeerCounts::default();
    let mut down = Vec::new();
    let mut stale = Vec::new();
    // An owned Node without an intent (not written yet, or held for invalid annotations
    // before it ever had one) has no sessions: not Ready.
    for node in &report.effective {
        if !intents.iter().any(|i| i.metadata.name.as_ref() == Some(node)) {
            stale.push(format!("{node}: no BGPNodeIntent of this policy"));
        }
    }
    for intent in intents {
        let name = intent.metadata.name.clone().unwrap_or_default();
        peers.total += i32::try_from(intent.spec.peers.len()).unwrap_or(i32::MAX);
        let Some(status) = &intent.status else {
            stale.push(format!("{name}: no status from its speaker"));
            continue;
        };
        if status.observed_generation != intent.metadata.generation {
            stale.push(format!("{name}: speaker runs an older generation"));
        }
        for p in &status.peers {
            if p.state == bgpintent_crd::node_intent::SessionStateName::Established {
                peers.established += 1;
            } else {
                let why = p
                    .last_down_reason
                    .as_deref()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default();
                down.push(format!("{name} → {} ({:?}{why})", p.address, p.state));
            }
        }
    }

    let accepted = if report.accepted {
        if report.ignored.is_empty() {
            condition(
                types::ACCEPTED,
                true,
                reasons::VALID,
                "spec is valid".into(),
                generation,
            )
        } else {
            condition(
                types::ACCEPTED,
                true,
                reasons::UNSUPPORTED_FIELDS_IGNORED,
                list(&report.ignored),
                generation,
            )
        }
    } else {
        condition(
            types::ACCEPTED,
            false,
            reasons::INVALID_SPEC,
            list(&report.errors),
            generation,
        )
    };
    let conflicted = if report.conflicts.is_empty() {
        condition(
            types::CONFLICTED,
            false,
            reasons::NO_CONFLICT,
            "no selected Node is owned by another policy".into(),
            generation,
        )
    } else {
        let nodes = report
            .conflicts
            .iter()
            .map(|(n, p)| format!("Node {n} is owned by older BGPPolicy {p}"));
        condition(
            types::CONFLICTED,
            true,
            reasons::NODES_OWNED_BY_OLDER_POLICY,
            list(nodes),
            generation,
        )
    };
    let ready = if !report.accepted {
        condition(
            types::READY,
            false,
            reasons::NOT_ACCEPTED,
            "the spec is not accepted".into(),
            generation,
        )
    } else if report.effective.is_empty() {
        condition(
            types::READY,
            false,
            reasons::NO_NODES,
            "the policy owns no Node".into(),
            generation,
        )
    } else if down.is_empty() && stale.is_empty() && peers.established == peers.total {
        let message = format!(
            "{} of {} sessions Established on {} Nodes",
            peers.established,
            peers.total,
            intents.len()
        );
        condition(
            types::READY,
            true,
            reasons::ALL_SESSIONS_ESTABLISHED,
            message,
            generation,
        )
    } else {
        let mut parts = vec![format!(
            "{} of {} sessions Established",
            peers.established, peers.total
        )];
        parts.extend(down);
        parts.extend(stale);
        condition(
            types::READY,
            false,
            reasons::SESSIONS_NOT_ESTABLISHED,
            list(parts),
            generation,
        )
    };

    let overrides = node_overrides_condition(report);
    let mut conditions = vec![accepted, conflicted, overrides, ready];
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    for c in &mut conditions {
        let before = previous.and_then(|p| p.conditions.iter().find(|o| o.type_ == c.type_));
        c.last_transition_time = match before {
            Some(b) if b.status == c.status => b.last_transition_time.clone(),
            _ => now.clone(),
        };
    }
    BGPPolicyStatus {
        observed_generation: Some(generation),
        conditions,
        selected_nodes: i32::try_from(report.selected.len()).unwrap_or(i32::MAX),
        effective_nodes: i32::try_from(report.effective.len()).unwrap_or(i32::MAX),
        peers,
    }
}

/// `NodeOverridesValid`: False while any owned Node has an invalid override annotation,
/// naming each Node, annotation and rule; Unknown when the policy itself is not accepted
/// (its Nodes are held whatever their annotations say).
fn node_overrides_condition(report: &PolicyReport) -> Condition {
    let generation = report.generation;
    if !report.accepted {
        return condition_with(
            types::NODE_OVERRIDES_VALID,
            "Unknown",
            reasons::NOT_ACCEPTED,
            "the spec is not accepted; Node annotations are not evaluated".into(),
            generation,
        );
    }
    if report.invalid_overrides.is_empty() {
        return condition(
            types::NODE_OVERRIDES_VALID,
            true,
            reasons::VALID,
            "the override annotations of every owned Node are valid".into(),
            generation,
        );
    }
    let problems = report.invalid_overrides.iter().flat_map(|(node, invalid)| {
        invalid
            .errors
            .values()
            .flatten()
            .map(move |e| format!("Node {node}: {e}"))
    });
    condition(
        types::NODE_OVERRIDES_VALID,
        false,
        reasons::INVALID_NODE_ANNOTATION,
        format!(
            "{} Node(s) keep their last valid intent until fixed: {}",
            report.invalid_overrides.len(),
            list(problems)
        ),
        generation,
    )
}

#[cfg(test)]
mod tests {
    use bgpintent_api::FieldError;
    use bgpintent_crd::{BGPNodeIntentSpec, BGPNodeIntentStatus};
    use serde_json::json;

    use super::*;

    fn report() -> PolicyReport {
        PolicyReport {
            name: "p".into(),
            uid: "u".into(),
            generation: 4,
            accepted: true,
            effective: ["n1".to_string()].into(),
            selected: ["n1".to_string()].into(),
            ..PolicyReport::default()
        }
    }

    fn intent(established: &[bool], observed: i64) -> BGPNodeIntent {
        let peers: Vec<serde_json::Value> = established
            .iter()
            .enumerate()
            .map(|(i, _)| json!({"address": format!("192.0.2.{}", i + 1), "asn": 65001, "port": 179,
                "multihopTTL": 1, "ttlSecurity": false, "passive": false, "holdTimeSeconds": 90,
                "keepaliveTimeSeconds": 30, "connectRetrySeconds": 30, "families": ["IPv4"],
                "gracefulRestart": {"enabled": true, "restartTimeSeconds": 120, "deferralTimeSeconds": 360, "notification": true}}))
            .collect();
        let spec: BGPNodeIntentSpec =
            serde_json::from_value(json!({"policy": {"name": "p", "uid": "u", "generation": 4},
            "routerID": "192.0.2.10", "localASN": 64512, "listenPort": 179, "peers": peers}))
            .unwrap();
        let mut o = BGPNodeIntent::new("n1", spec);
        o.metadata.generation = Some(2);
        let status: BGPNodeIntentStatus = serde_json::from_value(json!({"observedGeneration": observed,
            "peers": established.iter().enumerate().map(|(i, up)| json!({"address": format!("192.0.2.{}", i + 1),
                "asn": 65001, "state": if *up { "Established" } else { "Active" },
                "lastDownReason": if *up { None } else { Some("no answer (MD5 or TTL mismatch?)") }})).collect::<Vec<_>>()})).unwrap();
        o.status = Some(status);
        o
    }

    fn t(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    fn get<'a>(s: &'a BGPPolicyStatus, ty: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == ty).unwrap()
    }

    #[test]
    fn ready_when_every_session_is_established() {
        let i = intent(&[true, true], 2);
        let s = policy_status(&report(), &[&i], None, t(1));
        assert_eq!(
            s.peers,
            PeerCounts {
                established: 2,
                total: 2
            }
        );
        let types: Vec<&str> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            ["Accepted", "Conflicted", "NodeOverridesValid", "Ready"],
            "sorted"
        );
        assert_eq!(
            (get(&s, "Ready").status.as_str(), get(&s, "Ready").reason.as_str()),
            ("True", "AllSessionsEstablished")
        );
        assert_eq!(s.observed_generation, Some(4));
    }

    #[test]
    fn not_ready_names_the_sessions_and_why() {
        let i = intent(&[true, false], 2);
        let s = policy_status(&report(), &[&i], None, t(1));
        let ready = get(&s, "Ready");
        assert_eq!(ready.status, "False");
        assert!(
            ready.message.contains("1 of 2 sessions Established"),
            "{}",
            ready.message
        );
        assert!(
            ready
                .message
                .contains("n1 → 192.0.2.2 (Active, no answer (MD5 or TTL mismatch?))"),
            "{}",
            ready.message
        );
    }

    #[test]
    fn a_speaker_behind_the_spec_is_not_ready() {
        let i = intent(&[true], 1);
        let s = policy_status(&report(), &[&i], None, t(1));
        assert_eq!(get(&s, "Ready").status, "False");
        assert!(get(&s, "Ready").message.contains("older generation"));
    }

    #[test]
    fn invalid_and_conflicted() {
        let mut r = report();
        r.accepted = false;
        r.errors = vec![FieldError::new("spec.localASN", "must not be 0")];
        r.conflicts = [("n2".to_string(), "older".to_string())].into();
        let s = policy_status(&r, &[], None, t(1));
        assert_eq!(
            (
                get(&s, "Accepted").status.as_str(),
                get(&s, "Accepted").reason.as_str()
            ),
            ("False", "InvalidSpec")
        );
        assert!(
            get(&s, "Accepted")
                .message
                .contains("spec.localASN: must not be 0")
        );
        assert_eq!(get(&s, "Conflicted").status, "True");
        assert!(
            get(&s, "Conflicted")
                .message
                .contains("Node n2 is owned by older BGPPolicy older")
        );
        assert_eq!(get(&s, "Ready").reason, "NotAccepted");
    }

    #[test]
    fn transition_times_only_move_on_a_status_change() {
        let up = intent(&[true], 2);
        let first = policy_status(&report(), &[&up], None, t(1));
        let same = policy_status(&report(), &[&up], Some(&first), t(2));
        assert_eq!(first, same, "an unchanged cluster gives an identical status");
        let down = intent(&[false], 2);
        let changed = policy_status(&report(), &[&down], Some(&same), t(3));
        assert_eq!(get(&changed, "Ready").last_transition_time, t(3));
        assert_eq!(get(&changed, "Accepted").last_transition_time, t(1));
    }

    fn invalid_overrides(node: &str, annotation: &str, field: &str, rule: &str) -> PolicyReport {
        let mut r = report();
        r.effective.insert(node.to_owned());
        r.held.insert(node.to_owned());
        r.invalid_overrides.insert(
            node.to_owned(),
            crate::intent::InvalidOverrides {
                uid: format!("uid-{node}"),
                families: Default::default(),
                errors: [(
                    annotation.to_owned(),
                    vec![FieldError::new(field, rule).with_value(0)],
                )]
                .into(),
            },
        );
        r
    }

    #[test]
    fn node_overrides_valid_when_no_node_has_a_bad_annotation() {
        let i = intent(&[true], 2);
        let s = policy_status(&report(), &[&i], None, t(1));
        let c = get(&s, "NodeOverridesValid");
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Valid"));
    }

    #[test]
    fn an_invalid_node_annotation_names_node_annotation_and_rule() {
        let r = invalid_overrides(
            "n2",
            "bgpintent.io/local-asn",
            "metadata.annotations[bgpintent.io/local-asn]",
            "must be an AS number",
        );
        let i = intent(&[true], 2);
        let s = policy_status(&r, &[&i], None, t(1));
        let c = get(&s, "NodeOverridesValid");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InvalidNodeAnnotation")
        );
        assert_eq!(
            c.message,
            "1 Node(s) keep their last valid intent until fixed: Node n2: \
             metadata.annotations[bgpintent.io/local-asn]: must be an AS number (got 0)"
        );
        // The policy is still accepted; the held Node (no intent here) is not Ready.
        assert_eq!(get(&s, "Accepted").status, "True");
        let ready = get(&s, "Ready");
        assert_eq!(ready.status, "False");
        assert!(
            ready.message.contains("n2: no BGPNodeIntent of this policy"),
            "{}",
            ready.message
        );
        // Stable: the same report gives the same status, so nothing is rewritten.
        let again = policy_status(&r, &[&i], Some(&s), t(2));
        assert_eq!(again, s);
        // Fixed: True again, with a new transition time.
        let fixed = policy_status(&report(), &[&i], Some(&s), t(3));
        let c = get(&fixed, "NodeOverridesValid");
        assert_eq!(
            (c.status.as_str(), c.last_transition_time.clone()),
            ("True", t(3))
        );
    }

    #[test]
    fn node_overrides_are_unknown_for_a_policy_that_is_not_accepted() {
        let mut r = report();
        r.accepted = false;
        r.errors = vec![FieldError::new("spec.localASN", "must not be 0")];
        let s = policy_status(&r, &[], None, t(1));
        let c = get(&s, "NodeOverridesValid");
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("Unknown", "NotAccepted"));
    }

    #[test]
    fn long_messages_are_bounded() {
        let mut r = report();
        r.accepted = false;
        r.errors = (0..500)
            .map(|i| FieldError::new(format!("spec.bgpPeers[{i}].asn"), "bad"))
            .collect();
        let s = policy_status(&r, &[], None, t(1));
        assert!(get(&s, "Accepted").message.len() <= MAX_MESSAGE + 20);
    }
}
