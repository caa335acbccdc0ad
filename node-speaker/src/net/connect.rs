//! Active connect: the socket is fully prepared (local address, key, TTLs) before the SYN
//! leaves, because none of it can be fixed up on an established connection.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    os::fd::AsFd,
    time::Duration,
};

use bgpintent_api::{PeerIntent, TtlMode};
use socket2::{SockAddr, SockRef};
use tokio::net::{TcpSocket, TcpStream};

use super::{Md5Key, SocketOptionError, new_tcp_socket, opt, set_session_options, sockopt};

/// Everything needed to open one session's TCP connection.
///
/// `Debug` is safe to log: the key prints as `<redacted>`.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub peer: SocketAddr,
    /// Source address to bind; `None` lets the kernel pick by route.
    pub local_address: Option<IpAddr>,
    pub ttl: TtlMode,
    pub md5_key: Option<Md5Key>,
    /// How long to wait for the handshake. Bounded on purpose: an MD5 or GTSM mismatch is
    /// dropped silently by the peer's kernel, and the kernel's own SYN retries take ~2 min.
    pub timeout: Duration,
}

impl ConnectOptions {
    /// Shorter than a typical connect-retry (30 s), long enough for a busy peer.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Directly connected eBGP defaults: TTL 1, no key, no local address.
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            local_address: None,
            ttl: TtlMode::Multihop { ttl: 1 },
            md5_key: None,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The options for a peer of the intent; `key` is the password the agent resolved from
    /// `intent.password` (the intent itself only names the Secret).
    pub fn from_intent(address: IpAddr, intent: &PeerIntent, key: Option<Md5Key>) -> Self {
        Self {
            peer: SocketAddr::new(address, intent.port),
            local_address: intent.local_address,
            ttl: intent.ttl,
            md5_key: key,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// Why a connection attempt failed. Never contains a key.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing came back: no SYN-ACK, no RST, no ICMP. Typical causes are a TCP-MD5
    /// password mismatch (or a key on one side only), a GTSM/TTL mismatch, or a firewall.
    #[error("no answer from {peer} within {waited:?} (TCP-MD5 password or TTL mismatch?)")]
    NoAnswer { peer: SocketAddr, waited: Duration },
    /// The peer answered with a reset: nothing listens on that port, or the peer refuses
    /// us (a reset right after the handshake, as a speaker sends to unconfigured or
    /// GTSM-failing peers, counts too).
    #[error("connection to {peer} refused")]
    Refused { peer: SocketAddr },
    /// No route, or an ICMP error came back (also what a too-small multihop TTL gives:
    /// the router's "time exceeded").
    #[error("{peer} unreachable: {source}")]
    Unreachable {
        peer: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The configured local address cannot be used (not on this host, wrong family).
    #[error("cannot use local address {local}: {source}")]
    LocalAddress {
        local: IpAddr,
        #[source]
        source: io::Error,
    },
    /// A socket option was refused (for example a kernel without TCP-MD5 support).
    #[error("preparing the socket for {peer}: {source}")]
    SocketOption {
        peer: SocketAddr,
        #[source]
        source: SocketOptionError,
    },
    #[error("connecting to {peer}: {source}")]
    Io {
        peer: SocketAddr,
        #[source]
        source: io::Error,
    },
}

impl ConnectError {
    /// A short, bounded label for metrics and status (`lastDownReason`).
    pub const fn reason(&self) -> &'static str {
        match self {
            ConnectError::NoAnswer { .. } => "no_answer",
            ConnectError::Refused { .. } => "refused",
            ConnectError::Unreachable { .. } => "unreachable",
            ConnectError::LocalAddress { .. } => "local_address",
            ConnectError::SocketOption { .. } => "socket_option",
            ConnectError::Io { .. } => "io",
        }
    }

    fn classify(peer: SocketAddr, local: Option<IpAddr>, waited: Duration, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::ETIMEDOUT) => ConnectError::NoAnswer { peer, waited },
            Some(libc::ECONNREFUSED | libc::ECONNRESET) => ConnectError::Refused { peer },
            Some(libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EHOSTDOWN | libc::ENETDOWN) => {
                ConnectError::Unreachable { peer, source }
            }
            Some(libc::EADDRNOTAVAIL) if local.is_some() => ConnectError::LocalAddress {
                local: local.unwrap_or(peer.ip()),
                source,
            },
            _ => ConnectError::Io { peer, source },
        }
    }
}

/// Opens the TCP connection of a session: bind the local address (if any), install the
/// MD5 key for the peer (if any), set TTL / GTSM and the other session options, then
/// connect within `timeout`.
pub async fn connect(options: &ConnectOptions) -> Result<TcpStream, ConnectError> {
    let peer = options.peer;
    let ipv6 = peer.is_ipv6();
    let io_err = |source| ConnectError::Io { peer, source };
    let sock_err = |source| ConnectError::SocketOption { peer, source };

    let socket = new_tcp_socket(ipv6).map_err(io_err)?;
    if let Some(local) = options.local_address {
        if local.is_ipv6() != ipv6 {
            return Err(ConnectError::LocalAddress {
                local,
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "address family differs from the peer's",
                ),
            });
        }
        socket
            .bind(&SockAddr::from(SocketAddr::new(local, 0)))
            .map_err(|source| ConnectError::LocalAddress { local, source })?;
    }
    if let Some(key) = &options.md5_key {
        sockopt::set_tcp_md5sig(socket.as_fd(), peer.ip(), Some(key.as_bytes()))
            .map_err(opt("TCP_MD5SIG"))
            .map_err(sock_err)?;
    }
    set_session_options(SockRef::from(&socket), ipv6, options.ttl).map_err(sock_err)?;
    socket.set_nonblocking(true).map_err(io_err)?;

    let socket = TcpSocket::from_std_stream(socket.into());
    match tokio::time::timeout(options.timeout, socket.connect(peer)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(ConnectError::classify(
            peer,
            options.local_address,
            options.timeout,
            e,
        )),
        Err(_elapsed) => Err(ConnectError::NoAnswer {
            peer,
            waited: options.timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_connect_sets_options() {
        // The peer must answer with TTL 255 too, or our GTSM minimum drops its SYN-ACK.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&listener).set_ttl_v4(255).unwrap();
        let mut options = ConnectOptions::new(listener.local_addr().unwrap());
        options.ttl = TtlMode::Gtsm { hops: 1 };
        options.local_address = Some("127.0.0.1".parse().unwrap());
        let stream = connect(&options).await.unwrap();
        assert!(stream.nodelay().unwrap());
        assert_eq!(crate::net::outgoing_ttl(&stream).unwrap(), 255);
        assert_eq!(crate::net::minimum_ttl(&stream).unwrap(), Some(255));
    }

    #[tokio::test]
    async fn refused_is_distinct() {
        // Bind then drop: the port is free and nothing listens on it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = connect(&ConnectOptions::new(addr)).await.unwrap_err();
        assert!(matches!(err, ConnectError::Refused { .. }), "{err}");
        assert_eq!(err.reason(), "refused");
    }

    #[tokio::test]
    async fn wrong_family_local_address() {
        let mut options = ConnectOptions::new("127.0.0.1:179".parse().unwrap());
        options.local_address = Some("::1".parse().unwrap());
        let err = connect(&options).await.unwrap_err();
        assert!(matches!(err, ConnectError::LocalAddress { .. }), "{err}");
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let mut options = ConnectOptions::new("192.0.2.1:179".parse().unwrap());
        options.md5_key = Some(Md5Key::new("s3cret-pw").unwrap());
        assert!(!format!("{options:?}").contains("s3cret"));
    }
}
