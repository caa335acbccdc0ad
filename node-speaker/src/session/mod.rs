//! One BGP session as a sans-IO state machine (RFC 4271 §8).
//!
//! ```text
//!   agent ──Event──▶ Session::handle(now, event) ──Vec<Action>──▶ agent
//!   (socket bytes decoded with session.decode_ctx(), timer expiries, intent changes)
//!   (Connect, Send(bytes), Close, ArmTimer{at}, StopTimer, StateChanged{reason})
//! ```
//!
//! No tokio, no sockets, no clock: `now` is an argument and randomness (connect-retry
//! jitter) comes from a seed the agent passes in, so every path is a deterministic test
//! (see `tests/fsm_scenarios/`).
//!
//! Departures from the letter of RFC 4271 §8, each on purpose:
//! * Every failure goes to Idle with a [`DownReason`], and an IdleHold timer (the RFC's
//!   optional `IdleHoldTimer`, with jitter and exponential backoff) brings it back. The
//!   RFC's Connect/Active dance after failures reaches the same place with less to report.
//! * A connect timeout reports [`DownReason::NoAnswer`]: it is what an MD5 or GTSM
//!   mismatch looks like (silent drops, bgp-stack gotcha 11). A stalled OpenSent (TCP up,
//!   no OPEN within `open_timeout`) is [`DownReason::NoOpen`].
//! * Connection collisions (§6.8) are resolved by the agent, which alone sees both
//!   connections: it runs a second `Session` for the inbound connection, compares with
//!   [`resolve_collision`] once a BGP identifier is known, and sends
//!   [`Event::CollisionDump`] to the loser.

mod adj_rib_out;
mod fsm;
mod negotiate;

use std::{net::Ipv6Addr, time::Duration};

use bgpintent_api::{Asn, Family, GracefulRestart, NextHops, PeerIntent, RouterId};
use bytes::Bytes;

pub use adj_rib_out::{AdjRibOut, Announce, Changes, Routes};
pub use bgpintent_api::{DownReason, SessionState as State};
pub use fsm::{Session, Stats};
pub use negotiate::{Negotiated, negotiate};

use crate::wire::{DecodeError, Message};

/// What a session needs to know; built from the intent by [`Config::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub local_asn: Asn,
    pub router_id: RouterId,
    pub peer_asn: Asn,
    /// Proposed hold time: 0 (no keepalives) or 3-65535.
    pub hold_time_secs: u16,
    pub keepalive_time_secs: u16,
    /// Base of the IdleHold (reconnect) delay, before jitter and backoff.
    pub connect_retry_secs: u16,
    pub passive: bool,
    /// Families offered; the session carries those the peer offers too.
    pub families: Vec<Family>,
    pub graceful_restart: GracefulRestart,
    /// Next hops for announcements; a family without one is negotiated but left empty.
    pub next_hops: NextHops,
    /// Second IPv6 next hop (link-local), only for on-link peers that want it (gotcha 3).
    pub ipv6_link_local: Option<Ipv6Addr>,
    /// This process restarted (RFC 4724 R-bit in the first OPEN).
    pub restarting: bool,
    /// How long TCP connect may take.
    pub connect_timeout: Duration,
    /// How long the peer's OPEN may take once connected (RFC 4271 suggests 4 minutes; a
    /// peer that drops our packets never answers, so we give up sooner).
    pub open_timeout: Duration,
    /// Longest IdleHold delay after repeated failures.
    pub max_backoff: Duration,
    /// The referenced TCP-MD5 password is unusable: the session never starts (fail closed),
    /// it stays Idle with [`DownReason::PasswordUnavailable`] until a config with it.
    pub password_unavailable: bool,
}

impl Config {
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);

    pub fn new(
        local_asn: Asn,
        router_id: RouterId,
        peer_asn: Asn,
        peer: &PeerIntent,
        next_hops: NextHops,
        restarting: bool,
    ) -> Self {
        Self {
            local_asn,
            router_id,
            peer_asn,
            hold_time_secs: peer.hold_time_secs,
            keepalive_time_secs: peer.keepalive_time_secs,
            connect_retry_secs: peer.connect_retry_secs,
            passive: peer.passive,
            families: peer.families.clone(),
            graceful_restart: peer.graceful_restart,
            next_hops,
            ipv6_link_local: None,
            restarting,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            open_timeout: Self::DEFAULT_OPEN_TIMEOUT,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            password_unavailable: false,
        }
    }

    pub fn ibgp(&self) -> bool {
        self.local_asn == self.peer_asn
    }
}

/// Timers the agent runs for the session (RFC 4271 §8.1.3 names in comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// ConnectRetryTimer, used as the connect timeout in Connect.
    ConnectRetry,
    /// HoldTimer (also the OPEN wait in OpenSent).
    Hold,
    /// KeepaliveTimer.
    Keepalive,
    /// IdleHoldTimer: delay before an automatic restart after a failure.
    IdleHold,
}

impl Timer {
    pub const ALL: [Timer; 4] = [
        Timer::ConnectRetry,
        Timer::Hold,
        Timer::Keepalive,
        Timer::IdleHold,
    ];
}

/// Why we stop a session on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Intent deleted or the Node left the policy: Cease/Administrative Shutdown with
    /// an RFC 9003 message (wrapped in Hard Reset when the N-bit was exchanged, so the
    /// peer really drops our routes).
    Admin { message: String },
    /// Something that cannot change under a running session changed: Cease/Other
    /// Configuration Change; the session restarts.
    ConfigChanged { what: String },
    /// Our local ASN or router ID changed: like `ConfigChanged`, but the Cease is wrapped in
    /// Cease/Hard Reset when the N-bit was exchanged (RFC 8538 §3), so the peer drops the
    /// routes of our old identity instead of keeping them stale.
    IdentityChanged { what: String },
    /// The process stops to restart: close without NOTIFICATION, so the peer keeps our
    /// routes for the graceful-restart time (RFC 4724 §4.1).
    Restart,
}

/// Inputs (RFC 4271 §8.1 event numbers in comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// 1 ManualStart, or 4 ManualStart_with_PassiveTcpEstablishment when `passive`.
    Start,
    /// 2 ManualStop / 8 AutomaticStop.
    Stop(Stop),
    /// 16 Tcp_CR_Acked (our connect, `inbound: false`) or 17 TcpConnectionConfirmed
    /// (accepted, `inbound: true`).
    Connected { inbound: bool },
    /// 18 TcpConnectionFails while connecting (refused, unreachable...).
    ConnectFailed { error: String },
    /// 18 TcpConnectionFails on an open connection: EOF (`error: None`) or an error.
    ConnectionLost { error: Option<String> },
    /// Not an RFC event (a local form of 18 TcpConnectionFails): the peer has not drained
    /// its socket for the hold time (or the send queue outgrew its bound); the agent's
    /// writer saw it. The connection is dropped without a NOTIFICATION, which could not be
    /// delivered.
    SendStalled { queued_bytes: u64, waited_secs: u64 },
    /// 9 ConnectRetryTimer_Expires, 10 HoldTimer_Expires, 11 KeepaliveTimer_Expires,
    /// 13 IdleHoldTimer_Expires.
    Timer(Timer),
    /// 19 BGPOpen, 25 NotifMsg, 26 KeepAliveMsg, 27 UpdateMsg, and ROUTE-REFRESH.
    Message(Message),
    /// 21 BGPHeaderErr, 22 BGPOpenMsgErr, 28 UpdateMsgErr, 24 NotifMsgVerErr.
    Malformed(DecodeError),
    /// 23 OpenCollisionDump: the agent chose the other connection.
    CollisionDump,
    /// Not an RFC event: the routes this peer should have changed.
    Routes(Routes),
}

/// Outputs, in the order they must be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open the TCP connection (address, port, TTL, MD5 are the agent's).
    Connect,
    /// Write one encoded message.
    Send(Bytes),
    /// Close the TCP connection (after writing what was sent before).
    Close,
    /// (Re)arm a timer to fire at `at`; replaces an armed one.
    ArmTimer {
        timer: Timer,
        at: std::time::Instant,
    },
    StopTimer(Timer),
    /// The state changed; `reason` is set on every transition to Idle.
    StateChanged {
        from: State,
        to: State,
        reason: Option<DownReason>,
    },
}

/// RFC 4271 §6.8: which connection survives a collision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Keep the connection we initiated (ours is the higher identifier).
    LocallyInitiated,
    /// Keep the connection the peer initiated.
    RemotelyInitiated,
}

/// The connection initiated by the side with the higher BGP identifier is kept; with equal identifiers (allowed between
/// ASes, RFC 6286 §2.2) the one initiated by the side with the larger AS (RFC 6286 §2.3).
pub fn resolve_collision(local: RouterId, local_asn: Asn, remote: RouterId, remote_asn: Asn) -> Keep {
    let ours = (local.to_u32(), local_asn.get());
    let theirs = (remote.to_u32(), remote_asn.get());
    if ours < theirs {
        Keep::RemotelyInitiated
    } else {
        Keep::LocallyInitiated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> RouterId {
        RouterId::try_from(s.parse::<std::net::Ipv4Addr>().unwrap()).unwrap()
    }

    fn asn(n: u32) -> Asn {
        Asn::try_from(n).unwrap()
    }

    #[test]
    fn collision_by_identifier_then_by_as() {
        let (a, b) = (id("192.0.2.1"), id("192.0.2.2"));
        assert_eq!(
            resolve_collision(a, asn(65000), b, asn(64500)),
            Keep::RemotelyInitiated
        );
        assert_eq!(
            resolve_collision(b, asn(64500), a, asn(65000)),
            Keep::LocallyInitiated
        );
        // RFC 6286 §2.3: equal identifiers, the larger AS initiated the survivor.
        assert_eq!(
            resolve_collision(a, asn(64500), a, asn(64502)),
            Keep::RemotelyInitiated
        );
        assert_eq!(
            resolve_collision(a, asn(64502), a, asn(64500)),
            Keep::LocallyInitiated
        );
    }
}
