//! Session state as the speaker reports it.

use std::{fmt, time::SystemTime};

use serde::{Deserialize, Serialize};

use crate::Family;

/// RFC 4271 §8.2.2 session states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SessionState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl SessionState {
    pub const ALL: [SessionState; 6] = [
        SessionState::Idle,
        SessionState::Connect,
        SessionState::Active,
        SessionState::OpenSent,
        SessionState::OpenConfirm,
        SessionState::Established,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SessionState::Idle => "Idle",
            SessionState::Connect => "Connect",
            SessionState::Active => "Active",
            SessionState::OpenSent => "OpenSent",
            SessionState::OpenConfirm => "OpenConfirm",
            SessionState::Established => "Established",
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a session left Established or never got there (GoBGP's `fsmStateReason`).
///
/// Every transition to Idle carries one. It goes to the log, to `lastDownReason` in the
/// intent status, and (via [`DownReason::label`], a bounded set) to a metric label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DownReason {
    /// Our side stopped the session on purpose (intent deleted, peer removed).
    AdminShutdown,
    /// The intent changed something that cannot change under a running session.
    ConfigChanged {
        what: String,
    },
    /// TCP connect failed with an error (refused, unreachable, ...).
    ConnectFailed {
        error: String,
    },
    /// TCP connect never completed: the usual sign of an MD5 or TTL mismatch.
    NoAnswer,
    /// TCP connected, but the peer's OPEN did not come within `secs`.
    NoOpen {
        secs: u64,
    },
    /// The peer closed the TCP connection without a NOTIFICATION.
    ConnectionClosed,
    /// A socket error on an open connection.
    TransportError {
        error: String,
    },
    HoldTimerExpired,
    /// The peer stopped reading: what we wrote stayed unsent (its receive window closed)
    /// for the hold time, or the send queue outgrew its bound. Dropped without a
    /// NOTIFICATION, which could not reach it either.
    SendStalled {
        queued_bytes: u64,
        waited_secs: u64,
    },
    /// The peer sent a NOTIFICATION.
    NotificationReceived {
        code: u8,
        subcode: u8,
        message: String,
    },
    /// The peer sent a NOTIFICATION we could not decode (too short); closed without answer.
    MalformedNotificationReceived {
        error: String,
    },
    /// We sent a NOTIFICATION because of an error on the peer's side.
    NotificationSent {
        code: u8,
        subcode: u8,
        message: String,
    },
    /// Lost a connection collision (RFC 4271 §6.8); the other connection lives on.
    Collision,
    /// The process is restarting; no Cease was sent so peers keep our routes (RFC 4724).
    Restarting,
    /// The peer's password is referenced but unusable (missing from the file or Secret,
    /// empty, longer than 80 bytes): no connection, no listener entry (fail closed).
    PasswordUnavailable,
}

impl DownReason {
    /// Every value [`DownReason::label`] returns (to delete a peer's series).
    pub const LABELS: [&'static str; 16] = [
        "admin_shutdown",
        "config_changed",
        "connect_failed",
        "no_answer",
        "no_open",
        "connection_closed",
        "transport_error",
        "hold_timer_expired",
        "send_stalled",
        "notification_received",
        "malformed_notification_received",
        "notification_sent",
        "collision",
        "restarting",
        "password_unavailable",
        "unknown",
    ];

    /// A short, bounded label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            DownReason::AdminShutdown => "admin_shutdown",
            DownReason::ConfigChanged { .. } => "config_changed",
            DownReason::ConnectFailed { .. } => "connect_failed",
            DownReason::NoAnswer => "no_answer",
            DownReason::NoOpen { .. } => "no_open",
            DownReason::ConnectionClosed => "connection_closed",
            DownReason::TransportError { .. } => "transport_error",
            DownReason::HoldTimerExpired => "hold_timer_expired",
            DownReason::SendStalled { .. } => "send_stalled",
            DownReason::NotificationReceived { .. } => "notification_received",
            DownReason::MalformedNotificationReceived { .. } => "malformed_notification_received",
            DownReason::NotificationSent { .. } => "notification_sent",
            DownReason::Collision => "collision",
            DownReason::Restarting => "restarting",
            DownReason::PasswordUnavailable => "password_unavailable",
        }
    }
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::AdminShutdown => f.write_str("administrative shutdown"),
            DownReason::ConfigChanged { what } => write!(f, "configuration changed: {what}"),
            DownReason::ConnectFailed { error } => write!(f, "connect failed: {error}"),
            DownReason::NoAnswer => f.write_str("no answer (MD5 or TTL mismatch?)"),
            DownReason::NoOpen { secs } => write!(
                f,
                "connected, but no OPEN within {secs} s (TTL security on our side only?)"
            ),
            DownReason::ConnectionClosed => f.write_str("peer closed the connection"),
            DownReason::TransportError { error } => write!(f, "transport error: {error}"),
            DownReason::HoldTimerExpired => f.write_str("hold timer expired"),
            DownReason::SendStalled {
                queued_bytes,
                waited_secs,
            } => write!(
                f,
                "peer stopped reading: {queued_bytes} bytes unsent after {waited_secs} s"
            ),
            DownReason::NotificationReceived {
                code,
                subcode,
                message,
            } => {
                write!(f, "NOTIFICATION received: {code}/{subcode}")?;
                if !message.is_empty() {
                    write!(f, " ({message})")?;
                }
                Ok(())
            }
            DownReason::MalformedNotificationReceived { error } => {
                write!(f, "malformed NOTIFICATION received: {error}")
            }
            DownReason::NotificationSent {
                code,
                subcode,
                message,
            } => {
                write!(f, "NOTIFICATION sent: {code}/{subcode}")?;
                if !message.is_empty() {
                    write!(f, " ({message})")?;
                }
                Ok(())
            }
            DownReason::Collision => f.write_str("connection collision"),
            DownReason::Restarting => f.write_str("speaker restarting (graceful restart)"),
            DownReason::PasswordUnavailable => f.write_str("password unavailable"),
        }
    }
}

/// Prefixes sent to one peer, per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PrefixCounts {
    pub ipv4: u32,
    pub ipv6: u32,
}

impl PrefixCounts {
    pub fn get(&self, family: Family) -> u32 {
        match family {
            Family::Ipv4 => self.ipv4,
            Family::Ipv6 => self.ipv6,
        }
    }

    pub fn set(&mut self, family: Family, n: u32) {
        match family {
            Family::Ipv4 => self.ipv4 = n,
            Family::Ipv6 => self.ipv6 = n,
        }
    }
}

/// What the speaker reports about one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub state: SessionState,
    /// When `state` was entered.
    pub since: SystemTime,
    pub last_down_reason: Option<DownReason>,
    pub prefixes_sent: PrefixCounts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_listed() {
        let all = [
            DownReason::AdminShutdown,
            DownReason::ConfigChanged { what: String::new() },
            DownReason::ConnectFailed { error: String::new() },
            DownReason::NoAnswer,
            DownReason::NoOpen { secs: 30 },
            DownReason::ConnectionClosed,
            DownReason::TransportError { error: String::new() },
            DownReason::HoldTimerExpired,
            DownReason::SendStalled {
                queued_bytes: 1,
                waited_secs: 1,
            },
            DownReason::NotificationReceived {
                code: 6,
                subcode: 2,
                message: String::new(),
            },
            DownReason::MalformedNotificationReceived { error: String::new() },
            DownReason::NotificationSent {
                code: 2,
                subcode: 2,
                message: String::new(),
            },
            DownReason::Collision,
            DownReason::Restarting,
            DownReason::PasswordUnavailable,
        ];
        for r in &all {
            assert!(DownReason::LABELS.contains(&r.label()), "{r:?}");
        }
        // Every variant above, plus "unknown" (a flap without a reason).
        assert_eq!(all.len() + 1, DownReason::LABELS.len());
    }

    #[test]
    fn no_answer_hints_md5() {
        assert_eq!(
            DownReason::NoAnswer.to_string(),
            "no answer (MD5 or TTL mismatch?)"
        );
    }

    #[test]
    fn notification_display() {
        let r = DownReason::NotificationReceived {
            code: 6,
            subcode: 2,
            message: "bye".into(),
        };
        assert_eq!(r.to_string(), "NOTIFICATION received: 6/2 (bye)");
        assert_eq!(r.label(), "notification_received");
    }
}
