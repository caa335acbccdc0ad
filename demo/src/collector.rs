//! A BGP route collector built on our `wire` codec: it accepts sessions, answers OPEN and
//! KEEPALIVE, and records what each speaker announces and withdraws. It plays "the router"
//! of the demo; it installs nothing.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use bgpintent_api::{Family, Prefix};
use bgpintent_speaker::wire::{
    AfiSafi, AttrValue, Capability, DecodeCtx, EncodeCtx, Message, MpReach, MpUnreach, Open, Update,
    frame_len,
};
use bytes::BytesMut;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

pub const ROUTER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);

/// One route as the collector holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub next_hop: Option<IpAddr>,
    pub as_path: Vec<u32>,
}

/// What happened, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Up {
        peer: IpAddr,
    },
    Announce {
        peer: IpAddr,
        prefix: Prefix,
        route: Held,
    },
    Withdraw {
        peer: IpAddr,
        prefix: Prefix,
    },
}

/// The collector's table: (peer, prefix) → route.
pub type Rib = Arc<Mutex<BTreeMap<(IpAddr, Prefix), Held>>>;

/// Listens on `addr` as AS `asn`; every change is recorded in the table and sent on `changes`.
pub async fn run(
    addr: SocketAddr,
    asn: u32,
    rib: Rib,
    changes: mpsc::UnboundedSender<Change>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, remote) = listener.accept().await?;
        let (rib, changes) = (rib.clone(), changes.clone());
        tokio::spawn(async move {
            // A session ends when its speaker stops; the demo reports what the table holds.
            let _ = session(stream, remote.ip(), asn, rib, changes).await;
        });
    }
}

fn our_open(asn: u32) -> Open {
    Open {
        version: 4,
        my_as: u16::try_from(asn).unwrap_or(23456),
        hold_time: 90,
        router_id: ROUTER_ID,
        capabilities: vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
            Capability::FourOctetAs(asn),
        ],
    }
}

async fn session(
    mut stream: TcpStream,
    peer: IpAddr,
    asn: u32,
    rib: Rib,
    changes: mpsc::UnboundedSender<Change>,
) -> Result<(), String> {
    let ctx = EncodeCtx { four_octet_as: true };
    let send = |m: &Message| m.to_bytes(&ctx).map_err(|e| e.to_string());
    stream
        .write_all(&send(&Message::Open(our_open(asn)))?)
        .await
        .map_err(|e| e.to_string())?;
    let (mut read, mut write) = stream.into_split();
    let keepalive = send(&Message::Keepalive)?;
    tokio::spawn(async move {
        loop {
            if write.write_all(&keepalive).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(20)).await;
        }
    });
    let decode = DecodeCtx {
        four_octet_as: true,
        ibgp: false,
    };
    let mut buf = BytesMut::with_capacity(8192);
    let mut up = false;
    loop {
        while let Some(len) = frame_len(&buf).map_err(|e| e.to_string())? {
            if buf.len() < len {
                break;
            }
            let frame = buf.split_to(len);
            match Message::decode(&frame, &decode).map_err(|e| e.to_string())? {
                Message::Open(_) => {}
                Message::Keepalive if !up => {
                    up = true;
                    let _ = changes.send(Change::Up { peer });
                }
                Message::Update(u) => apply(peer, &u, &rib, &changes),
                Message::Notification(n) => return Err(format!("NOTIFICATION {}/{}", n.code, n.subcode)),
                _ => {}
            }
        }
        if read.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("connection closed".into());
        }
    }
}

fn apply(peer: IpAddr, u: &Update, rib: &Rib, changes: &mpsc::UnboundedSender<Change>) {
    let as_path: Vec<u32> = match u.attribute(bgpintent_speaker::wire::iana::attr::AS_PATH) {
        Some(AttrValue::AsPath(segments)) => segments.iter().flat_map(|s| s.asns.clone()).collect(),
        _ => Vec::new(),
    };
    let mut withdrawn: Vec<Prefix> = u.withdrawn.clone();
    if let Some(MpUnreach::Unicast { withdrawn: w, .. }) = u.mp_unreach() {
        withdrawn.extend(w);
    }
    let mut announced: Vec<(Prefix, Option<IpAddr>)> = Vec::new();
    let v4_next_hop = match u.attribute(bgpintent_speaker::wire::iana::attr::NEXT_HOP) {
        Some(AttrValue::NextHop(a)) => Some(IpAddr::V4(*a)),
        _ => None,
    };
    announced.extend(u.nlri.iter().map(|p| (*p, v4_next_hop)));
    if let Some(MpReach::Unicast {
        next_hop,
        nlri,
        family,
        ..
    }) = u.mp_reach()
    {
        debug_assert!(*family == Family::Ipv6 || *family == Family::Ipv4);
        announced.extend(nlri.iter().map(|p| (*p, Some(*next_hop))));
    }
    let mut table = rib.lock().expect("rib lock");
    for prefix in withdrawn {
        if table.remove(&(peer, prefix)).is_some() {
            let _ = changes.send(Change::Withdraw { peer, prefix });
        }
    }
    for (prefix, next_hop) in announced {
        let route = Held {
            next_hop,
            as_path: as_path.clone(),
        };
        if table.insert((peer, prefix), route.clone()).as_ref() != Some(&route) {
            let _ = changes.send(Change::Announce { peer, prefix, route });
        }
    }
}
