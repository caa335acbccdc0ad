//! The speaker's `net` module against the Linux kernel in lab namespaces: TCP-MD5 on
//! connect and on a live listener, multihop TTL across a forwarding router, GTSM on both
//! sides, admission by peer address, and a real BIRD connecting with a password.
//! Only TCP is involved (plus BIRD's OPEN in the last test); no BGP code of ours.
//!
//! How the failures show up (asserted below, documented for the speaker's log hints):
//! * MD5 mismatch or missing key on either side: the SYN is dropped silently, so the
//!   connect runs into its timeout: `ConnectError::NoAnswer`.
//! * TTL too small across a router: ICMP time exceeded: `ConnectError::Unreachable`.
//! * GTSM, passive side, peer's TTL too low: the kernel completes the handshake (the
//!   listener's minimum cannot be per peer), our listener sees the SYN's TTL and resets
//!   the connection before reading anything. The peer sees an established connection
//!   that is reset: ECONNRESET on its next read, nothing reaches the speaker.
//! * GTSM, active side, peer's TTL too low: its SYN-ACK is dropped, `NoAnswer`; if only
//!   its data is below the minimum, the connection stays up and no byte arrives.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, mpsc},
    time::{Duration, Instant},
};

use bgpintent_speaker::net::{
    AllowedPeer, ConnectError, ConnectOptions, ListenConfig, Listener, Md5Key, TtlMode, connect, minimum_ttl,
    outgoing_ttl,
};
use bgpintent_tests::lab::{BIRD, FAR, Lab, Netns, NsThread, SPEAKER, Topology};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bounded connect timeout for the tests that expect no answer.
const SHORT: Duration = Duration::from_secs(2);
const PORT: u16 = 179;

fn need_root(test: &str) -> bool {
    bgpintent_tests::lab::require(test, &["ip"])
}

/// Speaker namespace on the bridge, `bird` (used here as a plain peer namespace), and the
/// forwarding router with `far` behind it.
fn lab(test: &str) -> Lab {
    Lab::standard(
        test,
        Topology {
            bird: true,
            multihop: true,
            ..Topology::default()
        },
    )
    .unwrap()
}

fn key(k: &str) -> Option<Md5Key> {
    Some(Md5Key::new(k).unwrap())
}

fn direct() -> TtlMode {
    TtlMode::Multihop { ttl: 1 }
}

fn allowed(address: IpAddr, ttl: TtlMode, md5_key: Option<Md5Key>) -> AllowedPeer {
    AllowedPeer {
        address,
        ttl,
        md5_key,
    }
}

/// What the server saw on one accepted connection.
#[derive(Debug)]
struct Seen {
    peer: IpAddr,
    min_ttl: Option<u8>,
    out_ttl: u8,
    bytes: Vec<u8>,
}

/// Our listener in a namespace, accepting in a loop; each accepted connection is read
/// (up to `read_len` bytes, 3 s at most) and reported.
struct Server {
    listener: Arc<Listener>,
    seen: mpsc::Receiver<Seen>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<NsThread<()>>,
}

impl Server {
    fn start(ns: &Netns, peers: Vec<AllowedPeer>, read_len: usize) -> Self {
        let (listener_tx, listener_rx) = mpsc::channel();
        let (seen_tx, seen) = mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = ns.spawn(move || async move {
            let listener = Arc::new(Listener::bind(&ListenConfig::any(PORT)).expect("bind"));
            listener.set_peers(peers).expect("set_peers");
            listener_tx.send(listener.clone()).unwrap();
            let accept_loop = async {
                loop {
                    let mut acc = listener.accept().await.expect("accept");
                    let seen_tx = seen_tx.clone();
                    tokio::spawn(async move {
                        let mut bytes = vec![0; read_len];
                        let mut got = 0;
                        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
                        while got < read_len {
                            match tokio::time::timeout_at(deadline, acc.stream.read(&mut bytes[got..])).await
                            {
                                Ok(Ok(n)) if n > 0 => got += n,
                                _ => break,
                            }
                        }
                        bytes.truncate(got);
                        let _ = seen_tx.send(Seen {
                            peer: acc.peer,
                            min_ttl: minimum_ttl(&acc.stream).unwrap(),
                            out_ttl: outgoing_ttl(&acc.stream).unwrap(),
                            bytes,
                        });
                    });
                }
            };
            tokio::select! {
                _ = stop_rx => {}
                _ = accept_loop => {}
            }
        });
        let listener = listener_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("listener ready");
        Self {
            listener,
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn next(&self, timeout: Duration) -> Option<Seen> {
        self.seen.recv_timeout(timeout).ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take()
            && !std::thread::panicking()
        {
            t.join();
        }
    }
}

/// Connects from `ns` with `options` and writes `payload`; keeps the connection open a
/// moment so the server can read before FIN.
fn client(ns: &Netns, options: ConnectOptions, payload: &'static [u8]) -> Result<(), ConnectError> {
    ns.run(move || async move {
        let mut stream = connect(&options).await?;
        stream.write_all(payload).await.expect("write");
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(())
    })
}

fn options(peer: IpAddr, local: IpAddr, ttl: TtlMode, md5_key: Option<Md5Key>) -> ConnectOptions {
    ConnectOptions {
        peer: SocketAddr::new(peer, PORT),
        local_address: Some(local),
        ttl,
        md5_key,
        timeout: SHORT,
    }
}

/// Connects from `ns`, writes, and expects the server to reset the connection without
/// reading: either the reset beats the connect's completion (`Refused`) or the first read
/// fails with ECONNRESET. Returns how long after the handshake the reset came.
fn expect_reset(ns: &Netns, options: ConnectOptions) -> Duration {
    let outcome = ns.run(move || async move {
        let started = Instant::now();
        let mut stream = match connect(&options).await {
            Err(ConnectError::Refused { .. }) => return Ok(started.elapsed()),
            other => other.map_err(|e| format!("connect: {e:?}"))?,
        };
        let _ = stream.write_all(b"xxxx").await;
        let mut buf = [0; 1];
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(started.elapsed()),
            other => Err(format!("expected a reset, got {other:?}")),
        }
    });
    outcome.unwrap()
}

fn assert_no_answer(result: Result<(), ConnectError>, started: Instant) {
    let err = result.expect_err("connect must fail");
    assert!(
        matches!(err, ConnectError::NoAnswer { .. }),
        "expected NoAnswer, got {err:?}"
    );
    assert_eq!(err.reason(), "no_answer");
    assert!(err.to_string().contains("MD5"), "hint missing: {err}");
    let took = started.elapsed();
    assert!(
        took >= SHORT && took < SHORT + Duration::from_secs(2),
        "bounded by the timeout: {took:?}"
    );
}

#[test]
fn md5_right_key_connects_and_is_accepted_v4_and_v6() {
    if !need_root("md5_right_key") {
        return;
    }
    let lab = lab("md5ok");
    let (spk, peer) = (lab.ns(SPEAKER), lab.ns(BIRD));
    let server = Server::start(
        spk,
        vec![
            allowed(lab.v4(BIRD), direct(), key("lab-secret-1")),
            allowed(lab.v6(BIRD), direct(), key("lab-secret-1")),
        ],
        4,
    );
    for (to, from) in [(lab.v4(SPEAKER), lab.v4(BIRD)), (lab.v6(SPEAKER), lab.v6(BIRD))] {
        client(peer, options(to, from, direct(), key("lab-secret-1")), b"open").unwrap();
        let seen = server.next(Duration::from_secs(5)).expect("accepted");
        assert_eq!(seen.peer, from);
        assert_eq!(seen.bytes, b"open");
        assert_eq!(seen.out_ttl, 1, "direct eBGP sends TTL 1");
        assert_eq!(seen.min_ttl, None);
    }
    assert_eq!(server.listener.rejected_connections(), 0);
}

#[test]
fn md5_wrong_or_missing_key_gets_no_answer() {
    if !need_root("md5_wrong_key") {
        return;
    }
    let lab = lab("md5bad");
    let (spk, peer) = (lab.ns(SPEAKER), lab.ns(BIRD));
    let server = Server::start(spk, vec![allowed(lab.v4(BIRD), direct(), key("right"))], 4);
    let (to, from) = (lab.v4(SPEAKER), lab.v4(BIRD));
    for client_key in [key("wrong"), None] {
        let started = Instant::now();
        assert_no_answer(
            client(peer, options(to, from, direct(), client_key), b"open"),
            started,
        );
    }
    assert!(
        server.next(Duration::from_millis(200)).is_none(),
        "nothing may be accepted"
    );
    // Nothing reached admission either: the kernel dropped the SYNs.
    assert_eq!(server.listener.rejected_connections(), 0);
}

#[test]
fn md5_key_added_to_and_removed_from_a_live_listener() {
    if !need_root("md5_live_listener") {
        return;
    }
    let lab = lab("md5live");
    let (spk, peer) = (lab.ns(SPEAKER), lab.ns(BIRD));
    let (to, from) = (lab.v4(SPEAKER), lab.v4(BIRD));
    let server = Server::start(spk, vec![allowed(from, direct(), None)], 4);

    // Listener without a key: a signed SYN is dropped ("unexpected MD5").
    let started = Instant::now();
    assert_no_answer(
        client(peer, options(to, from, direct(), key("k1")), b"nope"),
        started,
    );

    // Key added on the live listener: the signed connection goes through, an unsigned
    // one is now dropped.
    server
        .listener
        .upsert_peer(allowed(from, direct(), key("k1")))
        .unwrap();
    client(peer, options(to, from, direct(), key("k1")), b"yes1").unwrap();
    assert_eq!(
        server.next(Duration::from_secs(5)).expect("accepted").bytes,
        b"yes1"
    );
    let started = Instant::now();
    assert_no_answer(client(peer, options(to, from, direct(), None), b"nope"), started);

    // Key changed in place.
    server
        .listener
        .upsert_peer(allowed(from, direct(), key("k2")))
        .unwrap();
    let started = Instant::now();
    assert_no_answer(
        client(peer, options(to, from, direct(), key("k1")), b"nope"),
        started,
    );
    client(peer, options(to, from, direct(), key("k2")), b"yes2").unwrap();
    assert_eq!(
        server.next(Duration::from_secs(5)).expect("accepted").bytes,
        b"yes2"
    );

    // Peer's key removed (peer kept): unsigned works again.
    server
        .listener
        .upsert_peer(allowed(from, direct(), None))
        .unwrap();
    client(peer, options(to, from, direct(), None), b"yes3").unwrap();
    assert_eq!(
        server.next(Duration::from_secs(5)).expect("accepted").bytes,
        b"yes3"
    );
    assert!(server.next(Duration::from_millis(200)).is_none());
}

#[test]
fn multihop_ttl_across_a_router() {
    if !need_root("multihop_ttl") {
        return;
    }
    let lab = lab("ttl");
    let (spk, far) = (lab.ns(SPEAKER), lab.ns(FAR));
    let (to, from) = (lab.v4(SPEAKER), lab.v4(FAR));
    let server = Server::start(spk, vec![allowed(from, TtlMode::Multihop { ttl: 2 }, None)], 4);

    let err = client(
        far,
        options(to, from, TtlMode::Multihop { ttl: 1 }, None),
        b"ttl1",
    )
    .unwrap_err();
    assert!(
        matches!(err, ConnectError::Unreachable { .. }),
        "TTL 1 must die at the router: {err:?}"
    );
    assert!(server.next(Duration::from_millis(200)).is_none());

    client(
        far,
        options(to, from, TtlMode::Multihop { ttl: 2 }, None),
        b"ttl2",
    )
    .unwrap();
    let seen = server.next(Duration::from_secs(5)).expect("accepted");
    assert_eq!((seen.bytes.as_slice(), seen.out_ttl), (&b"ttl2"[..], 2));

    // IPv6: hop limit 1 dies at the router as well, 2 gets through.
    let (to6, from6) = (lab.v6(SPEAKER), lab.v6(FAR));
    server
        .listener
        .upsert_peer(allowed(from6, TtlMode::Multihop { ttl: 2 }, None))
        .unwrap();
    let err = client(
        far,
        options(to6, from6, TtlMode::Multihop { ttl: 1 }, None),
        b"hop1",
    )
    .unwrap_err();
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{err:?}");
    client(
        far,
        options(to6, from6, TtlMode::Multihop { ttl: 2 }, None),
        b"hop2",
    )
    .unwrap();
    assert_eq!(
        server.next(Duration::from_secs(5)).expect("accepted").bytes,
        b"hop2"
    );
}

#[test]
fn gtsm_on_the_listener() {
    if !need_root("gtsm_listener") {
        return;
    }
    let lab = lab("gtsmpas");
    let (spk, peer, far) = (lab.ns(SPEAKER), lab.ns(BIRD), lab.ns(FAR));
    let (to, from) = (lab.v4(SPEAKER), lab.v4(BIRD));
    let gtsm1 = TtlMode::Gtsm { hops: 1 };
    let server = Server::start(
        spk,
        vec![allowed(from, gtsm1, None), allowed(lab.v4(FAR), gtsm1, None)],
        4,
    );

    // A sender with TTL 1 (plain direct eBGP) against minimum 255: the kernel's handshake
    // completes, our listener resets it, nothing is read.
    expect_reset(peer, options(to, from, direct(), None));
    assert!(
        server.next(Duration::from_millis(300)).is_none(),
        "no data may get through"
    );
    assert_eq!(server.listener.rejected_connections(), 1);

    // TTL 255 directly connected: accepted, min TTL 255 and outgoing 255 on the socket.
    client(peer, options(to, from, gtsm1, None), b"high").unwrap();
    let seen = server.next(Duration::from_secs(5)).expect("accepted");
    assert_eq!(
        (seen.bytes.as_slice(), seen.min_ttl, seen.out_ttl),
        (&b"high"[..], Some(255), 255)
    );

    // TTL 255 but one router away arrives with 254: rejected with hops 1 ... (The far
    // side sends 255 without a minimum of its own; with GTSM hops 1 it would itself drop
    // our SYN-ACK, which also arrives with 254.)
    let far_addr = lab.v4(FAR);
    expect_reset(far, options(to, far_addr, TtlMode::Multihop { ttl: 255 }, None));
    assert!(server.next(Duration::from_millis(300)).is_none());
    assert_eq!(server.listener.rejected_connections(), 2);
    // ... accepted with hops 2.
    server
        .listener
        .upsert_peer(allowed(far_addr, TtlMode::Gtsm { hops: 2 }, None))
        .unwrap();
    client(
        far,
        options(to, far_addr, TtlMode::Gtsm { hops: 2 }, None),
        b"2hop",
    )
    .unwrap();
    let seen = server.next(Duration::from_secs(5)).expect("accepted");
    assert_eq!((seen.bytes.as_slice(), seen.min_ttl), (&b"2hop"[..], Some(254)));
}

#[test]
fn gtsm_on_the_connecting_side() {
    if !need_root("gtsm_connect") {
        return;
    }
    let lab = lab("gtsmact");
    let (spk, peer) = (lab.ns(SPEAKER), lab.ns(BIRD));
    let peer_addr = SocketAddr::new(lab.v4(BIRD), PORT);
    let local = lab.v4(SPEAKER);
    // A plain peer (not ours): its SYN-ACK leaves with `synack_ttl`, its data with
    // `data_ttl`; it writes 4 bytes right after accepting.
    let plain_peer = |synack_ttl: u32, data_ttl: u32| {
        peer.spawn(move || async move {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            sock.set_reuse_address(true).unwrap();
            sock.set_ttl_v4(synack_ttl).unwrap();
            sock.bind(&peer_addr.into()).unwrap();
            sock.listen(4).unwrap();
            sock.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(sock.into()).unwrap();
            if let Ok(Ok((mut s, _))) = tokio::time::timeout(Duration::from_secs(4), listener.accept()).await
            {
                socket2::SockRef::from(&s).set_ttl_v4(data_ttl).unwrap();
                let _ = s.write_all(b"data").await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let gtsm = TtlMode::Gtsm { hops: 1 };

    // Peer answers with TTL 64: its SYN-ACK is below our minimum, so no answer.
    let p = plain_peer(64, 64);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let r = spk.run(move || async move {
        connect(&options(peer_addr.ip(), local, gtsm, None))
            .await
            .map(drop)
    });
    assert_no_answer(r, started);
    p.join();

    // Handshake at 255, data at 1: connected, but no byte arrives.
    let p = plain_peer(255, 1);
    std::thread::sleep(Duration::from_millis(200));
    let got = spk.run(move || async move {
        let mut s = connect(&options(peer_addr.ip(), local, gtsm, None))
            .await
            .expect("handshake");
        let mut buf = [0; 4];
        tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf))
            .await
            .map(|r| r.map(|n| buf[..n].to_vec()))
    });
    assert!(
        got.is_err(),
        "data below the minimum TTL must not arrive: {got:?}"
    );
    p.join();

    // Everything at 255: the data arrives.
    let p = plain_peer(255, 255);
    std::thread::sleep(Duration::from_millis(200));
    let got = spk.run(move || async move {
        let mut s = connect(&options(peer_addr.ip(), local, gtsm, None))
            .await
            .expect("handshake");
        let mut buf = [0; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .expect("data")
            .expect("read");
        buf
    });
    assert_eq!(&got, b"data");
    p.join();
}

#[test]
fn unconfigured_source_address_is_closed_at_once() {
    if !need_root("unconfigured_source") {
        return;
    }
    let lab = lab("stranger");
    let (spk, peer) = (lab.ns(SPEAKER), lab.ns(BIRD));
    peer.add_addr("eth0", "192.0.2.20/24").unwrap();
    let server = Server::start(spk, vec![allowed(lab.v4(BIRD), direct(), None)], 4);
    let to = lab.v4(SPEAKER);
    let stranger: IpAddr = "192.0.2.20".parse().unwrap();

    let took = expect_reset(peer, options(to, stranger, direct(), None));
    assert!(took < Duration::from_millis(500), "closed at once, took {took:?}");
    assert_eq!(server.listener.rejected_connections(), 1);
    assert!(server.next(Duration::from_millis(200)).is_none());

    // The configured address on the same host is still welcome.
    client(peer, options(to, lab.v4(BIRD), direct(), None), b"okay").unwrap();
    assert_eq!(
        server.next(Duration::from_secs(5)).expect("accepted").peer,
        lab.v4(BIRD)
    );
}

#[test]
fn bird_with_password_connects_to_our_listener() {
    if !bgpintent_tests::lab::require("bird_md5_listener", &["ip", "bird", "birdc"]) {
        return;
    }
    let lab = lab("birdmd5");
    let server = Server::start(
        lab.ns(SPEAKER),
        vec![allowed(lab.v4(BIRD), direct(), key("bird-lab-pw"))],
        19,
    );
    let mut cfg = lab.bird_config();
    cfg.neighbors.retain(|n| n.address.is_ipv4());
    cfg.neighbors[0].password = Some("bird-lab-pw".into());
    let started = Instant::now();
    let _bird = lab.start_bird(BIRD, &cfg).unwrap();
    let seen = server.next(Duration::from_secs(20)).expect("BIRD connected");
    eprintln!("BIRD's OPEN arrived {:?} after start", started.elapsed());
    assert_eq!(seen.peer, lab.v4(BIRD));
    assert_eq!(seen.bytes.len(), 19, "a full BGP header");
    assert_eq!(&seen.bytes[..16], &[0xff; 16], "BGP marker");
    assert_eq!(seen.bytes[18], 1, "message type OPEN");
    assert_eq!(server.listener.rejected_connections(), 0);
}
