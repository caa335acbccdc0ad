//! Passive side: one listening socket per address family, per-peer TCP-MD5 keys managed on
//! the live sockets, and admission of accepted connections by peer address.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::AsFd,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bgpintent_api::TtlMode;
use socket2::{SockAddr, SockRef};
use tokio::net::{TcpListener, TcpStream};

use super::{Md5Key, SocketOptionError, new_tcp_socket, set_session_options, sockopt};

/// Where to listen. One socket per family: an IPv6 socket that also takes IPv4 would need
/// every IPv4 peer's key under its v4-mapped address, and `IPV6_V6ONLY` differs by host
/// sysctl; two sockets behave the same everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenConfig {
    pub port: u16,
    /// IPv4 address to listen on; `None` = no IPv4 listener.
    pub v4: Option<Ipv4Addr>,
    /// IPv6 address to listen on; `None` = no IPv6 listener.
    pub v6: Option<Ipv6Addr>,
}

impl ListenConfig {
    /// Both wildcard addresses. On a host without IPv6 the IPv6 listener is left out.
    pub const fn any(port: u16) -> Self {
        Self {
            port,
            v4: Some(Ipv4Addr::UNSPECIFIED),
            v6: Some(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// A peer allowed to connect, with what its accepted socket gets.
///
/// `Debug` is safe to log: the key prints as `<redacted>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPeer {
    pub address: IpAddr,
    pub ttl: TtlMode,
    pub md5_key: Option<Md5Key>,
}

/// An accepted connection from a configured peer, options applied.
#[derive(Debug)]
pub struct Accepted {
    pub stream: TcpStream,
    /// The configured peer this connection belongs to (canonical address).
    pub peer: IpAddr,
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

/// Why the listener could not be set up or a peer not be configured. Never contains a key.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("no listener for the address family of peer {peer}")]
    NoListenerForFamily { peer: IpAddr },
    #[error("configuring peer {peer} on the listener: {source}")]
    SocketOption {
        peer: IpAddr,
        #[source]
        source: SocketOptionError,
    },
}

/// Listening sockets for BGP with per-peer admission. Share it (`Arc<Listener>`): one
/// task loops on [`Listener::accept`] while the agent calls [`Listener::set_peers`].
#[derive(Debug)]
pub struct Listener {
    v4: Option<TcpListener>,
    v6: Option<TcpListener>,
    /// The peers allowed in. Held across the key `setsockopt`s so keys and the table
    /// change together; `accept` takes it only briefly.
    peers: Mutex<HashMap<IpAddr, AllowedPeer>>,
    rejected: AtomicU64,
}

impl Listener {
    /// Backlog: a speaker has few peers; connection storms are rejected peers anyway.
    const BACKLOG: i32 = 64;

    /// Binds the listeners; no peer is allowed until [`Listener::set_peers`].
    ///
    /// Must be called inside a tokio runtime (the sockets are registered with it).
    pub fn bind(config: &ListenConfig) -> Result<Self, ListenError> {
        let v4 = match config.v4 {
            Some(a) => Some(Self::bind_one(SocketAddr::new(a.into(), config.port))?),
            None => None,
        };
        let v6 = match config.v6 {
            Some(a) => match Self::bind_one(SocketAddr::new(a.into(), config.port)) {
                Ok(l) => Some(l),
                // Kernel booted without IPv6: the wildcard request degrades to IPv4 only.
                Err(ListenError::Bind { source, .. })
                    if a.is_unspecified() && source.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
                {
                    tracing::warn!("IPv6 is not available; listening on IPv4 only");
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(Self {
            v4,
            v6,
            peers: Mutex::new(HashMap::new()),
            rejected: AtomicU64::new(0),
        })
    }

    fn bind_one(addr: SocketAddr) -> Result<TcpListener, ListenError> {
        let err = |source| ListenError::Bind { addr, source };
        let sock = new_tcp_socket(addr.is_ipv6()).map_err(err)?;
        // Restarted speaker: do not wait for old connections in TIME_WAIT to clear.
        sock.set_reuse_address(true).map_err(err)?;
        // The SYN-ACK leaves with the listener's TTL, before we know which peer it is for.
        // A GTSM peer drops anything below 255 (so the handshake would never complete), and
        // 255 is harmless for the others; per-peer TTLs are applied after accept.
        if addr.is_ipv6() {
            sock.set_only_v6(true).map_err(err)?;
            sock.set_unicast_hops_v6(255).map_err(err)?;
        } else {
            sock.set_ttl_v4(255).map_err(err)?;
        }
        // Keep each SYN's headers so `accept` can check the TTL the connection was opened
        // with (GTSM) before the peer sends a single byte; see `admit`.
        sockopt::set_save_syn(sock.as_fd()).map_err(err)?;
        sock.bind(&SockAddr::from(addr)).map_err(err)?;
        sock.listen(Self::BACKLOG).map_err(err)?;
        sock.set_nonblocking(true).map_err(err)?;
        TcpListener::from_std(sock.into()).map_err(err)
    }

    /// The bound addresses (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        [&self.v4, &self.v6]
            .into_iter()
            .flatten()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Makes `peers` the complete set of allowed peers: keys of new or changed peers are
    /// installed on the live listener, keys of removed peers (or peers that no longer have
    /// one) are deleted. Connections already accepted keep the key they had.
    ///
    /// On error the peers before the failing one are applied; calling again with the same
    /// set retries the rest.
    pub fn set_peers(&self, peers: impl IntoIterator<Item = AllowedPeer>) -> Result<(), ListenError> {
        let wanted: HashMap<IpAddr, AllowedPeer> = peers
            .into_iter()
            .map(|mut p| {
                p.address = p.address.to_canonical();
                (p.address, p)
            })
            .collect();
        let mut current = self.lock_peers();
        let gone: Vec<IpAddr> = current
            .keys()
            .filter(|a| !wanted.contains_key(a))
            .copied()
            .collect();
        for address in gone {
            if let Some(old) = current.remove(&address)
                && old.md5_key.is_some()
            {
                self.set_key(address, None)?;
            }
        }
        for (address, peer) in wanted {
            let old_key = current.get(&address).and_then(|p| p.md5_key.as_ref());
            if old_key != peer.md5_key.as_ref() {
                self.set_key(address, peer.md5_key.as_ref())?;
            } else if self.listener_for(address).is_none() {
                return Err(ListenError::NoListenerForFamily { peer: address });
            }
            current.insert(address, peer);
        }
        Ok(())
    }

    /// Adds or replaces one peer (its key is installed before this returns).
    pub fn upsert_peer(&self, peer: AllowedPeer) -> Result<(), ListenError> {
        let mut all: Vec<AllowedPeer> = self.lock_peers().values().cloned().collect();
        let address = peer.address.to_canonical();
        all.retain(|p| p.address != address);
        all.push(peer);
        self.set_peers(all)
    }

    /// Removes one peer and deletes its key from the listener.
    pub fn remove_peer(&self, address: IpAddr) -> Result<(), ListenError> {
        let address = address.to_canonical();
        let all: Vec<AllowedPeer> = self
            .lock_peers()
            .values()
            .filter(|p| p.address != address)
            .cloned()
            .collect();
        self.set_peers(all)
    }

    /// Connections closed because they came from an address that is not a configured peer
    /// (or failed its GTSM check) since the listener was bound.
    pub fn rejected_connections(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    fn lock_peers(&self) -> MutexGuard<'_, HashMap<IpAddr, AllowedPeer>> {
        // A panic while holding the lock leaves a consistent map (each insert/remove is
        // atomic), so a poisoned lock is still usable.
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn listener_for(&self, address: IpAddr) -> Option<&TcpListener> {
        if address.is_ipv6() {
            self.v6.as_ref()
        } else {
            self.v4.as_ref()
        }
    }

    fn set_key(&self, peer: IpAddr, key: Option<&Md5Key>) -> Result<(), ListenError> {
        let listener = self
            .listener_for(peer)
            .ok_or(ListenError::NoListenerForFamily { peer })?;
        match sockopt::set_tcp_md5sig(listener.as_fd(), peer, key.map(Md5Key::as_bytes)) {
            Ok(()) => Ok(()),
            // Deleting a key the kernel does not have is what we wanted anyway.
            Err(e) if key.is_none() && e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(ListenError::SocketOption {
                peer,
                source: SocketOptionError {
                    option: "TCP_MD5SIG",
                    source: e,
                },
            }),
        }
    }

    /// Waits for the next connection from a configured peer. Connections from anyone else
    /// are reset at once and counted ([`Listener::rejected_connections`]); connections
    /// whose socket options cannot be applied are closed and logged. Cancel-safe.
    ///
    /// Errors are those of `accept(2)` itself (for example `EMFILE`); the caller should
    /// back off briefly and call again.
    pub async fn accept(&self) -> io::Result<Accepted> {
        loop {
            let accepted = match (&self.v4, &self.v6) {
                (Some(v4), Some(v6)) => tokio::select! {
                    r = v4.accept() => r,
                    r = v6.accept() => r,
                },
                (Some(l), None) | (None, Some(l)) => l.accept().await,
                (None, None) => std::future::pending().await,
            };
            let (stream, remote) = match accepted {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            if let Some(accepted) = self.admit(stream, remote) {
                return Ok(accepted);
            }
        }
    }

    /// Applies the peer's options to an accepted socket, or rejects it.
    ///
    /// GTSM on the passive side has a window: `IP_MINTTL` can only be set per peer after
    /// accept, but the handshake (and possibly the peer's first segment) already went
    /// through. The TTL of the SYN, saved by `TCP_SAVE_SYN`, closes it for the handshake:
    /// a connection opened from too far away is reset before we read anything.
    fn admit(&self, stream: TcpStream, remote: SocketAddr) -> Option<Accepted> {
        let peer_ip = remote.ip().to_canonical();
        let syn_ttl = sockopt::saved_syn_ttl(stream.as_fd());
        let Some(peer) = self.lock_peers().get(&peer_ip).cloned() else {
            tracing::debug!(%remote, "closing connection from an address that is not a configured peer");
            self.reject(&stream);
            return None;
        };
        if let Some(min) = peer.ttl.minimum_incoming_ttl() {
            match syn_ttl {
                Ok(Some(ttl)) if ttl >= min => {}
                Ok(ttl) => {
                    tracing::warn!(peer = %peer_ip, syn_ttl = ?ttl, min_ttl = min,
                        "closing connection: GTSM check failed (peer too many hops away?)");
                    self.reject(&stream);
                    return None;
                }
                Err(error) => {
                    tracing::warn!(peer = %peer_ip, %error, "closing connection: cannot read SYN TTL for GTSM");
                    self.reject(&stream);
                    return None;
                }
            }
        }
        let local = match stream.local_addr() {
            Ok(l) => l,
            Err(error) => {
                tracing::warn!(peer = %peer_ip, %error, "closing accepted connection");
                return None;
            }
        };
        if let Err(error) = set_session_options(SockRef::from(&stream), local.is_ipv6(), peer.ttl) {
            tracing::warn!(peer = %peer_ip, %error, "closing accepted connection");
            return None;
        }
        Some(Accepted {
            stream,
            peer: peer_ip,
            remote,
            local,
        })
    }

    /// Resets the connection (linger 0: RST instead of FIN, no TIME_WAIT for strangers).
    fn reject(&self, stream: &TcpStream) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::net::{ConnectOptions, connect, minimum_ttl, outgoing_ttl};

    fn peer(address: &str, ttl: TtlMode, key: Option<&str>) -> AllowedPeer {
        AllowedPeer {
            address: address.parse().unwrap(),
            ttl,
            md5_key: key.map(|k| Md5Key::new(k).unwrap()),
        }
    }

    fn loopback_listener() -> Listener {
        Listener::bind(&ListenConfig {
            port: 0,
            v4: Some(Ipv4Addr::LOCALHOST),
            v6: Some(Ipv6Addr::LOCALHOST),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn configured_peer_is_accepted_with_its_options() {
        let listener = loopback_listener();
        listener
            .set_peers([peer("127.0.0.1", TtlMode::Gtsm { hops: 1 }, None)])
            .unwrap();
        let addr = listener.local_addrs()[0];
        let mut options = ConnectOptions::new(addr);
        options.ttl = TtlMode::Gtsm { hops: 1 };
        let both = async { tokio::join!(connect(&options), listener.accept()) };
        let (client, accepted) = tokio::time::timeout(Duration::from_secs(5), both).await.unwrap();
        let (mut client, mut accepted) = (client.unwrap(), accepted.unwrap());
        assert_eq!(accepted.peer, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(outgoing_ttl(&accepted.stream).unwrap(), 255);
        assert_eq!(minimum_ttl(&accepted.stream).unwrap(), Some(255));
        assert!(accepted.stream.nodelay().unwrap());
        client.write_all(b"hello").await.unwrap();
        let mut buf = [0; 5];
        accepted.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
    }

    #[tokio::test]
    async fn unknown_peer_is_reset_and_counted() {
        let listener = loopback_listener();
        listener
            .set_peers([peer("127.0.0.2", TtlMode::Multihop { ttl: 1 }, None)])
            .unwrap();
        let addr = listener.local_addrs()[0];
        let mut stray = TcpStream::connect(addr).await.unwrap();
        let accept = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(accept.is_err(), "stray connection must not be handed out");
        assert_eq!(listener.rejected_connections(), 1);
        let mut buf = [0; 1];
        let read = stray.read(&mut buf).await;
        assert!(
            matches!(&read, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "expected a reset, got {read:?}"
        );
    }

    #[tokio::test]
    async fn peer_of_missing_family_is_an_error() {
        let listener = Listener::bind(&ListenConfig {
            port: 0,
            v4: Some(Ipv4Addr::LOCALHOST),
            v6: None,
        })
        .unwrap();
        let err = listener
            .set_peers([peer("2001:db8::1", TtlMode::Multihop { ttl: 1 }, None)])
            .unwrap_err();
        assert!(matches!(err, ListenError::NoListenerForFamily { .. }));
    }

    #[tokio::test]
    async fn keys_follow_the_peer_set() {
        let listener = loopback_listener();
        let a = peer("192.0.2.10", TtlMode::Multihop { ttl: 1 }, Some("one"));
        let b = peer("2001:db8::10", TtlMode::Multihop { ttl: 1 }, Some("two"));
        listener.set_peers([a.clone(), b.clone()]).unwrap();
        // Change one key, drop the other peer, then remove everything: each step must be
        // accepted by the kernel (a missing key on delete is tolerated, a wrong family not).
        let a2 = peer("192.0.2.10", TtlMode::Multihop { ttl: 1 }, Some("uno"));
        listener.set_peers([a2]).unwrap();
        listener.upsert_peer(b).unwrap();
        listener.remove_peer("192.0.2.10".parse().unwrap()).unwrap();
        listener.set_peers([]).unwrap();
        assert!(listener.lock_peers().is_empty());
    }
}
