//! BGP peers and every parameter of a session, fully defaulted.
//!
//! The controller resolves a policy's `bgpPeers[]` into [`PeerIntent`]s; the speaker runs
//! them as they are. Nothing here is optional in the sense of "the speaker picks": every
//! default is applied by [`PeerIntent::new`] and the conversions, so what `kubectl get
//! bgpnodeintent -o yaml` shows is exactly what runs.

use std::{fmt, net::IpAddr};

use serde::{Deserialize, Serialize};

use crate::{Asn, Family};

/// Identity of a session: the peer's address and AS. Two sessions to one address are not
/// possible (one TCP connection per address pair), so conversions refuse duplicates of
/// `address` even with different ASNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerKey {
    pub address: IpAddr,
    pub asn: Asn,
}

impl PeerKey {
    /// The key of this peer in the passwords Secret: `<address>-<asn>` with the address in
    /// canonical text form, so `2001:0db8::0001` and `2001:db8::1` name the same entry.
    pub fn password_key(&self) -> String {
        format!("{}-{}", self.address, self.asn)
    }
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            IpAddr::V4(a) => write!(f, "{a} AS{}", self.asn),
            IpAddr::V6(a) => write!(f, "[{a}] AS{}", self.asn),
        }
    }
}

/// Where the password of an authenticated peer lives. The value itself never appears in
/// an intent: the speaker reads it from the Secret. `revision` changes whenever the value
/// does (it is a keyed digest, not a plain hash, so it cannot be used to guess the value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PasswordRef {
    pub secret_name: String,
    pub key: String,
    pub revision: String,
}

/// How the IP TTL of the session's packets is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TtlMode {
    /// Outgoing TTL = `ttl` (1 = directly connected, the eBGP default).
    Multihop { ttl: u8 },
    /// GTSM (RFC 5082): outgoing TTL 255, incoming packets must have TTL >= 256 - `hops`.
    Gtsm { hops: u8 },
}

impl TtlMode {
    /// The TTL we put on outgoing packets.
    pub const fn outgoing_ttl(self) -> u8 {
        match self {
            TtlMode::Multihop { ttl } => ttl,
            TtlMode::Gtsm { .. } => 255,
        }
    }

    /// The lowest TTL we accept on incoming packets (`IP_MINTTL`), if any.
    pub const fn minimum_incoming_ttl(self) -> Option<u8> {
        match self {
            TtlMode::Multihop { .. } => None,
            TtlMode::Gtsm { hops } => Some(255 - hops + 1),
        }
    }
}

/// Graceful restart (RFC 4724, RFC 8538) as we advertise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GracefulRestart {
    pub enabled: bool,
    /// Seconds the peer keeps our routes after the session drops (1-3600).
    pub restart_time_secs: u16,
    /// Seconds to wait after a restart for the peers' End-of-RIB before our own table is
    /// considered final (RFC 4724 selection deferral). Kept for the reconfiguration table;
    /// an announce-only speaker sends its table at once.
    pub deferral_time_secs: u16,
    /// RFC 8538 N-bit: keep routes on NOTIFICATION and hold-timer expiry too.
    pub notification: bool,
}

impl GracefulRestart {
    /// What OPEN carries; the deferral time is local and can change under a live session.
    pub const fn advertised(&self) -> (bool, u16, bool) {
        (self.enabled, self.restart_time_secs, self.notification)
    }
}

impl Default for GracefulRestart {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_time_secs: PeerIntent::DEFAULT_RESTART_TIME,
            deferral_time_secs: PeerIntent::DEFAULT_DEFERRAL_TIME,
            notification: true,
        }
    }
}

/// Every parameter of one session, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerIntent {
    /// TCP port of the peer.
    pub port: u16,
    /// Local address to bind active connections to; `None` lets the kernel choose.
    pub local_address: Option<IpAddr>,
    pub ttl: TtlMode,
    /// Listen only: never connect.
    pub passive: bool,
    /// Proposed hold time in seconds: 0 (no keepalives) or 3-65535.
    pub hold_time_secs: u16,
    /// Seconds between KEEPALIVEs; below the hold time. The negotiated hold time can shrink
    /// it further (RFC 4271 §10: one third of the hold time).
    pub keepalive_time_secs: u16,
    /// Base of the connect-retry timer; the FSM adds jitter and backs off on repeated failure.
    pub connect_retry_secs: u16,
    pub graceful_restart: GracefulRestart,
    /// Families offered in OPEN; the session carries those both sides advertise.
    pub families: Vec<Family>,
    pub password: Option<PasswordRef>,
}

impl PeerIntent {
    pub const DEFAULT_PORT: u16 = 179;
    pub const DEFAULT_MULTIHOP_TTL: u8 = 1;
    pub const DEFAULT_HOLD_TIME: u16 = 90;
    pub const DEFAULT_CONNECT_RETRY: u16 = 30;
    pub const DEFAULT_RESTART_TIME: u16 = 120;
    pub const DEFAULT_DEFERRAL_TIME: u16 = 360;

    /// A session with every default: port 179, TTL 1, hold 90 s, keepalive 30 s,
    /// connect-retry 30 s, graceful restart 120 s with the N-bit, both families.
    pub fn new() -> Self {
        Self {
            port: Self::DEFAULT_PORT,
            local_address: None,
            ttl: TtlMode::Multihop {
                ttl: Self::DEFAULT_MULTIHOP_TTL,
            },
            passive: false,
            hold_time_secs: Self::DEFAULT_HOLD_TIME,
            keepalive_time_secs: Self::default_keepalive(Self::DEFAULT_HOLD_TIME),
            connect_retry_secs: Self::DEFAULT_CONNECT_RETRY,
            graceful_restart: GracefulRestart::default(),
            families: Family::ALL.to_vec(),
            password: None,
        }
    }

    /// One third of the hold time (RFC 4271 §10), 0 when keepalives are off.
    pub const fn default_keepalive(hold_time_secs: u16) -> u16 {
        hold_time_secs / 3
    }

    /// Whether moving a running session from `self` to `new` needs a reset. This is the one
    /// place that decides it; docs/reconfiguration.md mirrors it and a test keeps them equal.
    pub fn reconfigure(&self, new: &PeerIntent) -> Reconfigure {
        use ResetCause::*;
        let checks = [
            (self.port != new.port, Port),
            (self.local_address != new.local_address, LocalAddress),
            (self.ttl != new.ttl, Ttl),
            (self.password != new.password, Password),
            (self.hold_time_secs != new.hold_time_secs, HoldTime),
            (
                self.graceful_restart.advertised() != new.graceful_restart.advertised(),
                GracefulRestart,
            ),
            (self.families != new.families, Families),
        ];
        match checks.into_iter().find(|(changed, _)| *changed) {
            Some((_, cause)) => Reconfigure::Reset(cause),
            None if self == new => Reconfigure::Unchanged,
            None => Reconfigure::Live,
        }
    }
}

impl Default for PeerIntent {
    fn default() -> Self {
        Self::new()
    }
}

/// What a change of session parameters means for a running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconfigure {
    Unchanged,
    /// Applied without touching the session (passive, keepalive, connect-retry).
    Live,
    /// The session must be closed (Cease/Other Configuration Change) and re-established.
    Reset(ResetCause),
}

/// Why a reconfiguration resets a session. Each is something carried in OPEN or fixed on
/// the TCP socket, so it cannot change under a running connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResetCause {
    LocalAsn,
    RouterId,
    ListenPort,
    Port,
    LocalAddress,
    Ttl,
    Password,
    HoldTime,
    GracefulRestart,
    Families,
    /// The Node's next hops (its addresses) changed: every announcement changes.
    NextHops,
}

impl ResetCause {
    pub const ALL: [ResetCause; 11] = [
        ResetCause::LocalAsn,
        ResetCause::RouterId,
        ResetCause::ListenPort,
        ResetCause::Port,
        ResetCause::LocalAddress,
        ResetCause::Ttl,
        ResetCause::Password,
        ResetCause::HoldTime,
        ResetCause::GracefulRestart,
        ResetCause::Families,
        ResetCause::NextHops,
    ];

    /// Whether the reset must drop our routes at the peer even when it would keep them
    /// across a graceful NOTIFICATION (RFC 8538): the speaker's identity changed, so the
    /// routes learnt from the old one must not linger as stale (the peer may never accept
    /// the new OPEN). The NOTIFICATION is wrapped in Cease/Hard Reset.
    pub const fn hard_reset(self) -> bool {
        matches!(self, ResetCause::LocalAsn | ResetCause::RouterId)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ResetCause::LocalAsn => "local ASN changed",
            ResetCause::RouterId => "router ID changed",
            ResetCause::ListenPort => "listen port changed",
            ResetCause::Port => "peer port changed",
            ResetCause::LocalAddress => "local address changed",
            ResetCause::Ttl => "TTL or GTSM changed",
            ResetCause::Password => "password changed",
            ResetCause::HoldTime => "hold time changed",
            ResetCause::GracefulRestart => "graceful restart changed",
            ResetCause::Families => "address families changed",
            ResetCause::NextHops => "next hops changed",
        }
    }
}

impl fmt::Display for ResetCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_key_is_canonical() {
        let key = PeerKey {
            address: "2001:0db8::0001".parse().unwrap(),
            asn: Asn::try_from(65000).unwrap(),
        };
        assert_eq!(key.password_key(), "2001:db8::1-65000");
    }

    #[test]
    fn gtsm_min_ttl() {
        assert_eq!(TtlMode::Gtsm { hops: 1 }.minimum_incoming_ttl(), Some(255));
        assert_eq!(TtlMode::Gtsm { hops: 2 }.minimum_incoming_ttl(), Some(254));
        assert_eq!(TtlMode::Gtsm { hops: 1 }.outgoing_ttl(), 255);
        assert_eq!(TtlMode::Multihop { ttl: 2 }.minimum_incoming_ttl(), None);
    }

    #[test]
    fn reconfigure_classification() {
        let base = PeerIntent::new();
        assert_eq!(base.reconfigure(&base.clone()), Reconfigure::Unchanged);
        let live = PeerIntent {
            keepalive_time_secs: 10,
            passive: true,
            connect_retry_secs: 5,
            ..base.clone()
        };
        assert_eq!(base.reconfigure(&live), Reconfigure::Live);
        let ttl = PeerIntent {
            ttl: TtlMode::Multihop { ttl: 2 },
            ..base.clone()
        };
        assert_eq!(base.reconfigure(&ttl), Reconfigure::Reset(ResetCause::Ttl));
        let hold = PeerIntent {
            hold_time_secs: 30,
            ..base.clone()
        };
        assert_eq!(base.reconfigure(&hold), Reconfigure::Reset(ResetCause::HoldTime));
        let pw = PeerIntent {
            password: Some(PasswordRef {
                secret_name: "s".into(),
                key: "k".into(),
                revision: "r2".into(),
            }),
            ..base.clone()
        };
        assert_eq!(base.reconfigure(&pw), Reconfigure::Reset(ResetCause::Password));
    }

    #[test]
    fn defaults() {
        let p = PeerIntent::new();
        assert_eq!((p.port, p.hold_time_secs, p.keepalive_time_secs), (179, 90, 30));
        assert_eq!(p.ttl.outgoing_ttl(), 1);
        assert!(p.graceful_restart.enabled && p.graceful_restart.notification);
        assert_eq!(p.graceful_restart.restart_time_secs, 120);
    }
}
