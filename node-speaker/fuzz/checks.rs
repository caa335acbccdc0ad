// The properties each fuzz target checks, shared with `tests/fuzz_corpus.rs` (which
// replays the committed corpus through them without a fuzzing engine). Included with
// `include!`, so it names everything by full path.

/// The decode context is fuzzed too: bit 0 = 4-octet AS, bit 1 = iBGP.
pub fn ctx_from(b: u8) -> bgpintent_speaker::wire::DecodeCtx {
    bgpintent_speaker::wire::DecodeCtx {
        four_octet_as: b & 1 != 0,
        ibgp: b & 2 != 0,
    }
}

/// A message of type `ty` around `body`, with a correct header, so the fuzzer spends its
/// time in the body decoders.
pub fn framed(ty: u8, body: &[u8]) -> Vec<u8> {
    let body = &body[..body.len().min(4096 - 19)];
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(ty);
    v.extend_from_slice(body);
    v
}

/// Decoding never panics; what decodes cleanly encodes and decodes back to itself; a
/// rejected message yields a NOTIFICATION unless it is a NOTIFICATION.
pub fn check_decode(bytes: &[u8], ctx: &bgpintent_speaker::wire::DecodeCtx) {
    use bgpintent_speaker::wire::{DecodeError, EncodeCtx, Message};
    match Message::decode(bytes, ctx) {
        Err(DecodeError::BadNotification(_)) => assert_eq!(bytes.get(18), Some(&3)),
        Err(e) => {
            let n = e.notification().expect("every other error is answered");
            assert!((1..=7).contains(&n.code));
        }
        Ok(m) => {
            let clean = match &m {
                Message::Update(u) => u.treat_as_withdraw.is_none() && u.discarded.is_empty(),
                _ => true,
            };
            let enc = EncodeCtx {
                four_octet_as: ctx.four_octet_as,
            };
            // Values outside what we send (confederation segments, 4-octet ASNs on a
            // 2-octet session) may be refused by the encoder: refusing is fine, panicking
            // or writing something else is not.
            if let (true, Ok(again)) = (clean, m.to_bytes(&enc)) {
                assert!(again.len() <= 4096);
                let back = Message::decode(&again, ctx).expect("our own encoding decodes");
                if ctx.four_octet_as || !matches!(m, Message::Update(_)) {
                    assert_eq!(back, m, "round trip");
                }
            }
        }
    }
}

/// A stream of frames into a session that reached Established: never panics, and every
/// transition to Idle carries a reason.
pub fn check_session(data: &[u8]) {
    use bgpintent_speaker::session::{Action, Config, Event, Session};
    use bgpintent_speaker::wire::{AfiSafi, Capability, Message, Open};
    let asn = |n| bgpintent_api::Asn::try_from(n).unwrap();
    let rid = |s: &str| bgpintent_api::RouterId::try_from(s.parse::<std::net::Ipv4Addr>().unwrap()).unwrap();
    let cfg = Config::new(
        asn(64500),
        rid("192.0.2.1"),
        asn(64501),
        &bgpintent_api::PeerIntent::new(),
        bgpintent_api::NextHops::default(),
        false,
    );
    let mut s = Session::new(cfg, 1);
    let now = std::time::Instant::now();
    let open = Open {
        version: 4,
        my_as: 64501,
        hold_time: 90,
        router_id: "192.0.2.2".parse().unwrap(),
        capabilities: vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
            Capability::FourOctetAs(64501),
        ],
    };
    let mut actions = Vec::new();
    for ev in [
        Event::Start,
        Event::Connected { inbound: false },
        Event::Message(Message::Open(open)),
        Event::Message(Message::Keepalive),
    ] {
        actions.extend(s.handle(now, ev));
    }
    let mut buf = bytes::BytesMut::from(data);
    loop {
        let ev = match Message::decode_from(&mut buf, &s.decode_ctx()) {
            Ok(Some(m)) => Event::Message(m),
            Ok(None) => break,
            Err(e) => Event::Malformed(e),
        };
        let stop = matches!(ev, Event::Malformed(_));
        actions.extend(s.handle(now, ev));
        if stop {
            break;
        }
    }
    for a in actions {
        if let Action::StateChanged { to, reason, .. } = a {
            assert!(to != bgpintent_api::SessionState::Idle || reason.is_some());
        }
    }
}
