//! A raw BGP peer for tests: plain blocking sockets and hand-built bytes, so a test can
//! misbehave in ways no router does (stop reading, go silent, send crafted messages).
//!
//! Run it inside a lab namespace with [`crate::lab::Netns::spawn`]; it listens on
//! `address:179` and the speaker connects to it (an active peer in the intent).

use std::{
    io::{self, Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};

pub const KEEPALIVE: [u8; 19] = {
    let mut m = [0xff; 19];
    m[16] = 0;
    m[17] = 19;
    m[18] = 4;
    m
};

/// BGP message types (RFC 4271 §4.1).
pub const OPEN: u8 = 1;
pub const UPDATE: u8 = 2;
pub const NOTIFICATION: u8 = 3;

/// An OPEN from `asn` (2-octet, also sent as the 4-octet AS capability) with `hold` seconds
/// and BGP identifier `id`, offering IPv4 unicast.
pub fn open(asn: u16, hold: u16, id: Ipv4Addr) -> Vec<u8> {
    let caps: Vec<u8> = [
        // Multiprotocol IPv4 unicast.
        &[1, 4, 0, 1, 0, 1][..],
        // 4-octet AS.
        &[65, 4, 0, 0, (asn >> 8) as u8, asn as u8][..],
    ]
    .concat();
    let mut params = vec![2, caps.len() as u8];
    params.extend(caps);
    let mut body = vec![4];
    body.extend(asn.to_be_bytes());
    body.extend(hold.to_be_bytes());
    body.extend(id.octets());
    body.push(params.len() as u8);
    body.extend(params);
    message(OPEN, &body)
}

/// Header + body.
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = 19 + body.len();
    let mut m = vec![0xff; 16];
    m.extend((len as u16).to_be_bytes());
    m.push(kind);
    m.extend(body);
    m
}

/// A listening socket on `address:179` whose accepted connections have a receive buffer of
/// `rcvbuf` bytes (set before listen, so the window advertised in the handshake is small).
pub fn listen(address: IpAddr, rcvbuf: Option<usize>) -> io::Result<TcpListener> {
    let addr = SocketAddr::new(address, 179);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(8)?;
    Ok(socket.into())
}

/// One accepted connection.
#[derive(Debug)]
pub struct RawPeer {
    pub stream: TcpStream,
}

impl RawPeer {
    /// Waits up to `timeout` for the speaker to connect.
    pub fn accept(listener: &TcpListener, timeout: Duration) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false)?;
                    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
                    return Ok(Self { stream });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one whole message (header included).
    pub fn read_message(&mut self) -> io::Result<Vec<u8>> {
        let mut header = [0u8; 19];
        self.stream.read_exact(&mut header)?;
        let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
        if !(19..=65535).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("length {len}"),
            ));
        }
        let mut m = header.to_vec();
        m.resize(len, 0);
        self.stream.read_exact(&mut m[19..])?;
        Ok(m)
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads the speaker's OPEN, answers with `our_open` and a KEEPALIVE, and reads up to
    /// the speaker's KEEPALIVE: the session is Established on both sides.
    pub fn handshake(&mut self, our_open: &[u8]) -> io::Result<()> {
        let theirs = self.read_message()?;
        if theirs[18] != OPEN {
            return Err(io::Error::other(format!(
                "expected OPEN, got type {}",
                theirs[18]
            )));
        }
        self.send(our_open)?;
        self.send(&KEEPALIVE)?;
        loop {
            let m = self.read_message()?;
            match m[18] {
                4 => return Ok(()),
                NOTIFICATION => return Err(io::Error::other(format!("NOTIFICATION {}/{}", m[19], m[20]))),
                _ => {}
            }
        }
    }
}

/// Connects from `local:0` to the speaker at `speaker:179` (an inbound connection for it).
pub fn connect(local: IpAddr, speaker: IpAddr) -> io::Result<RawPeer> {
    let socket = Socket::new(
        Domain::for_address(SocketAddr::new(local, 0)),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.bind(&SocketAddr::new(local, 0).into())?;
    socket.connect_timeout(&SocketAddr::new(speaker, 179).into(), Duration::from_secs(5))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(RawPeer { stream })
}

/// A readable one-line description of a message (type, and code/subcode of a NOTIFICATION).
pub fn describe(m: &[u8]) -> String {
    match m.get(18) {
        Some(1) => "OPEN".into(),
        Some(2) => "UPDATE".into(),
        Some(3) => format!(
            "NOTIFICATION {}/{}",
            m.get(19).unwrap_or(&0),
            m.get(20).unwrap_or(&0)
        ),
        Some(4) => "KEEPALIVE".into(),
        Some(5) => "ROUTE-REFRESH".into(),
        other => format!("type {other:?}"),
    }
}
