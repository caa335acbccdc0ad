//! TCP sockets for BGP sessions: active connect and passive listen with TCP-MD5 (RFC 2385),
//! multihop TTL and GTSM (RFC 5082).
//!
//! ```text
//!  agent / session task                      kernel
//!  ────────────────────                      ──────
//!  connect(&ConnectOptions) ──socket──▶ bind(local) · TCP_MD5SIG(peer) · IP_TTL
//!        │                              IP_MINTTL (GTSM) · TCP_NODELAY · TOS CS6
//!        ▼                              connect ── timeout ──▶ ConnectError::NoAnswer
//!  TcpStream ◀──────────────────────────┘
//!
//!  Listener::bind(port) ──▶ [0.0.0.0]:port + [::]:port (V6ONLY), TCP_SAVE_SYN, TTL 255
//!  Listener::set_peers(..) ──▶ TCP_MD5SIG add/remove per peer on the live listeners
//!  Listener::accept() ──▶ peer configured? ── no ──▶ RST, counted, next
//!                              │ yes: SYN TTL ≥ GTSM minimum? ── no ──▶ RST, next
//!                              ▼
//!                     IP_TTL · IP_MINTTL · TCP_NODELAY · TOS ──▶ Accepted { stream, peer }
//! ```
//!
//! Why these pieces:
//! * A TCP-MD5 or GTSM mismatch is *silent*: the kernel drops the segments, no RST, no
//!   ICMP. The only symptom is a connect that never completes, so [`connect`] always has a
//!   timeout and reports it as [`ConnectError::NoAnswer`], which the speaker turns into
//!   "no answer (MD5 or TTL mismatch?)", separate from refused and unreachable.
//! * Keys on a listener are per peer address and must be there before the peer's SYN;
//!   [`Listener::set_peers`] adds and removes them on the live sockets, so peers come and
//!   go without re-binding (which would drop every other peer's pending connection).
//! * Passwords only ever exist as [`Md5Key`], whose `Debug` is redacted; no error here
//!   contains a key.
//!
//! All unsafe code is in `sockopt` (raw `setsockopt`); everything above it is safe.

mod connect;
mod key;
mod listen;
mod sockopt;

use std::{io, os::fd::AsFd};

pub use connect::{ConnectError, ConnectOptions, connect};
pub use key::{KeyError, Md5Key};
pub use listen::{Accepted, AllowedPeer, ListenConfig, ListenError, Listener};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::TcpStream;

pub use bgpintent_api::TtlMode;

/// DSCP CS6 (network control, RFC 4594) in the TOS / traffic-class byte; BIRD and FRR
/// mark BGP the same way so routers queue it ahead of bulk traffic.
const TOS_NETWORK_CONTROL: u32 = 0xc0;

/// A socket option that could not be set, by name (never with its value).
#[derive(Debug, thiserror::Error)]
#[error("setting {option}: {source}")]
pub struct SocketOptionError {
    pub option: &'static str,
    #[source]
    pub source: io::Error,
}

fn opt(option: &'static str) -> impl FnOnce(io::Error) -> SocketOptionError {
    move |source| SocketOptionError { option, source }
}

/// A new TCP socket of the family of `ipv6`, close-on-exec (socket2 sets it), blocking.
fn new_tcp_socket(ipv6: bool) -> io::Result<Socket> {
    let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
    Socket::new(domain, Type::STREAM, Some(Protocol::TCP))
}

/// Options every BGP session socket gets, active or accepted: no Nagle (BGP writes whole
/// messages; KEEPALIVEs must not wait behind an ACK), network-control DSCP, outgoing TTL
/// and, with GTSM, the minimum incoming TTL.
fn set_session_options(sock: SockRef<'_>, ipv6: bool, ttl: TtlMode) -> Result<(), SocketOptionError> {
    sock.set_tcp_nodelay(true).map_err(opt("TCP_NODELAY"))?;
    let out = u32::from(ttl.outgoing_ttl());
    if ipv6 {
        sock.set_tclass_v6(TOS_NETWORK_CONTROL)
            .map_err(opt("IPV6_TCLASS"))?;
        sock.set_unicast_hops_v6(out).map_err(opt("IPV6_UNICAST_HOPS"))?;
    } else {
        sock.set_tos_v4(TOS_NETWORK_CONTROL).map_err(opt("IP_TOS"))?;
        sock.set_ttl_v4(out).map_err(opt("IP_TTL"))?;
    }
    if let Some(min) = ttl.minimum_incoming_ttl() {
        sockopt::set_min_ttl(sock.as_fd(), ipv6, min).map_err(opt(if ipv6 {
            "IPV6_MINHOPCOUNT"
        } else {
            "IP_MINTTL"
        }))?;
    }
    Ok(())
}

/// The minimum incoming TTL / hop limit set on a session socket (`None` = not set), to
/// check what GTSM state a stream is in.
pub fn minimum_ttl(stream: &TcpStream) -> io::Result<Option<u8>> {
    let ipv6 = stream.local_addr()?.is_ipv6();
    let min = sockopt::min_ttl(stream.as_fd(), ipv6)?;
    Ok((min != 0).then_some(min))
}

/// The outgoing TTL / hop limit of a session socket.
pub fn outgoing_ttl(stream: &TcpStream) -> io::Result<u8> {
    let sock = SockRef::from(stream);
    let ttl = if stream.local_addr()?.is_ipv6() {
        sock.unicast_hops_v6()?
    } else {
        sock.ttl_v4()?
    };
    u8::try_from(ttl).map_err(|_| io::Error::other("TTL out of range"))
}
