//! Our OPEN, and the verdict on the peer's (RFC 4271 §6.2, RFC 5492, RFC 6793, RFC 4724).

use bgpintent_api::{Family, RouterId};

use super::Config;
use crate::wire::{AfiSafi, Capability, GracefulRestartCap, Open, OpenError, OpenSubcode};

/// What both sides agreed on; fixed for the life of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_router_id: RouterId,
    pub peer_asn: u32,
    /// 0 = no hold timer and no keepalives.
    pub hold_time_secs: u16,
    pub keepalive_secs: u16,
    /// Families both sides advertised, in our order.
    pub families: Vec<Family>,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    /// The peer's graceful restart capability, if it sent one.
    pub peer_graceful_restart: Option<GracefulRestartCap>,
    /// Both sides set the RFC 8538 N-bit: only Hard Reset flushes routes.
    pub graceful_notification: bool,
}

/// The OPEN we send.
pub(super) fn our_open(cfg: &Config) -> Open {
    let mut caps: Vec<Capability> = cfg
        .families
        .iter()
        .map(|f| Capability::Multiprotocol(AfiSafi::of(*f)))
        .collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::FourOctetAs(cfg.local_asn.get()));
    let gr = &cfg.graceful_restart;
    if gr.enabled {
        caps.push(Capability::GracefulRestart(GracefulRestartCap {
            restarting: cfg.restarting,
            notification: gr.notification,
            time: gr.restart_time_secs.min(0x0fff),
            // F-bit: forwarding of our announced addresses does not depend on the speaker
            // process, so it is preserved across its restart (design §5).
            families: cfg.families.iter().map(|f| (AfiSafi::of(*f), true)).collect(),
        }));
    }
    Open {
        version: 4,
        my_as: cfg.local_asn.as_two_octet(),
        hold_time: cfg.hold_time_secs,
        router_id: cfg.router_id.addr(),
        capabilities: caps,
    }
}

/// Judges the peer's OPEN against the configuration: the NOTIFICATION to send as an
/// error, or what the session runs with.
pub fn negotiate(cfg: &Config, ours: &Open, theirs: &Open) -> Result<Negotiated, OpenError> {
    // RFC 6793 §4.1: the real AS is in the capability; AS_TRANS without the capability
    // can never match a configured AS (23456 is refused by `Asn`).
    if theirs.asn() != cfg.peer_asn.get() {
        return Err(OpenError::new(
            OpenSubcode::BadPeerAs,
            format!("Bad Peer AS: got {}, want {}", theirs.asn(), cfg.peer_asn.get()),
        ));
    }
    // RFC 6286 §2.2: zero is never valid; equal identifiers only matter inside one AS.
    let peer_router_id = RouterId::try_from(theirs.router_id)
        .map_err(|_| OpenError::new(OpenSubcode::BadBgpIdentifier, "Bad BGP Identifier: 0.0.0.0"))?;
    if cfg.ibgp() && peer_router_id == cfg.router_id {
        return Err(OpenError::new(
            OpenSubcode::BadBgpIdentifier,
            format!("Bad BGP Identifier: iBGP peer has ours ({peer_router_id})"),
        ));
    }
    // RFC 4271 §4.2: "MUST reject Hold Time values of one or two seconds".
    if matches!(theirs.hold_time, 1 | 2) {
        return Err(OpenError::new(
            OpenSubcode::UnacceptableHoldTime,
            format!("Unacceptable Hold Time: {} s", theirs.hold_time),
        ));
    }
    let hold_time_secs = theirs.hold_time.min(ours.hold_time);
    let keepalive_secs = match hold_time_secs {
        0 => 0,
        h if cfg.keepalive_time_secs == 0 => (h / 3).max(1),
        h => cfg.keepalive_time_secs.min(h / 3).max(1),
    };

    let offered = theirs.families();
    let families: Vec<Family> = cfg
        .families
        .iter()
        .copied()
        .filter(|f| offered.contains(&AfiSafi::of(*f)))
        .collect();
    if families.is_empty() {
        // RFC 5492 §3: data lists the capabilities we need and the peer lacks.
        let data = ours
            .capabilities
            .iter()
            .filter(|c| matches!(c, Capability::Multiprotocol(_)))
            .flat_map(Capability::tlv)
            .collect();
        return Err(OpenError::new(
            OpenSubcode::UnsupportedCapability,
            "Unsupported Capability: no address family in common",
        )
        .with_data(data));
    }
    let peer_graceful_restart = theirs.graceful_restart().cloned();
    let graceful_notification = cfg.graceful_restart.enabled
        && cfg.graceful_restart.notification
        && peer_graceful_restart.as_ref().is_some_and(|g| g.notification);
    Ok(Negotiated {
        peer_router_id,
        peer_asn: theirs.asn(),
        hold_time_secs,
        keepalive_secs,
        families,
        four_octet_as: theirs.four_octet_as().is_some(),
        route_refresh: theirs.route_refresh(),
        peer_graceful_restart,
        graceful_notification,
    })
}
