//! The BGP wire codec: messages as values, bytes in and out, no I/O.
//!
//! netgauze-bgp-pkt (pinned) writes every message; nothing outside this module names a
//! netgauze type. We add what it leaves to the caller (bgp-stack.md §2 footguns):
//! Extended Length whenever a value exceeds 255 octets, the 4096-octet limit with UPDATE
//! packing ([`build_updates`]), one AFI per UPDATE, End-of-RIB constructors, and the
//! RFC 9003 length octet.
//!
//! Reading is ours: a framing check ([`frame_len`]: marker, length 19..=4096, type, the
//! per-type minimum) and decoders that check every length against the bytes actually
//! present and return errors shaped like the NOTIFICATION they cause ([`DecodeError`]).
//! netgauze's parser is broad (BGP-LS, SR, EVPN...) and its errors do not say which RFC
//! 7606 outcome applies, so it is not on the receive path; the fuzz targets use it as an
//! oracle instead.
//!
//! Negotiated state that changes the encoding (4-octet AS numbers, iBGP/eBGP rules) comes
//! in an explicit [`EncodeCtx`] / [`DecodeCtx`], never from globals.

mod builder;
mod error;
pub mod iana;
mod notification;
mod open;
mod update;
mod update_decode;

use bytes::{BufMut, BytesMut};
use netgauze_bgp_pkt::{BgpMessage, route_refresh::BgpRouteRefreshMessage};
use netgauze_parse_utils::WritablePdu;

pub use builder::{NextHop, RouteAttrs, build_updates};
pub use error::{
    AttrAction, AttrError, DecodeError, EncodeError, HeaderError, OpenError, OpenSubcode, UpdateError,
    UpdateSubcode,
};
pub use notification::{MAX_SHUTDOWN_MESSAGE, Notification};
pub use open::{AfiSafi, Capability, GracefulRestartCap, Open};
pub use update::{AsSegment, AttrValue, LargeCommunity, MpReach, MpUnreach, PathAttribute, Update, nlri_len};

use iana::message_type as ty;

/// Fixed header: 16-octet marker, 2-octet length, 1-octet type.
pub const HEADER_LEN: usize = 19;
/// RFC 4271 §4: no message is longer (we do not advertise RFC 8654 extended messages).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// What the decoder must know about the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeCtx {
    /// Both sides advertised the 4-octet AS capability: AS_PATH carries 4-octet ASNs.
    pub four_octet_as: bool,
    /// iBGP session: LOCAL_PREF and route-reflection attributes are meaningful.
    pub ibgp: bool,
}

impl Default for DecodeCtx {
    /// Before OPEN is exchanged: 2-octet AS_PATH, eBGP rules.
    fn default() -> Self {
        Self {
            four_octet_as: false,
            ibgp: false,
        }
    }
}

/// What the encoder must know about the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeCtx {
    pub four_octet_as: bool,
}

impl Default for EncodeCtx {
    fn default() -> Self {
        Self { four_octet_as: true }
    }
}

/// ROUTE-REFRESH (RFC 2918 §3; the subtype octet of RFC 7313 is kept as read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub afi_safi: AfiSafi,
    /// 0 = normal request (1 and 2 are RFC 7313 BoRR/EoRR, which we do not advertise).
    pub subtype: u8,
}

/// One BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The message type's name, for reasons and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Open(_) => "OPEN",
            Message::Update(_) => "UPDATE",
            Message::Notification(_) => "NOTIFICATION",
            Message::Keepalive => "KEEPALIVE",
            Message::RouteRefresh(_) => "ROUTE-REFRESH",
        }
    }

    pub fn type_code(&self) -> u8 {
        match self {
            Message::Open(_) => ty::OPEN,
            Message::Update(_) => ty::UPDATE,
            Message::Notification(_) => ty::NOTIFICATION,
            Message::Keepalive => ty::KEEPALIVE,
            Message::RouteRefresh(_) => ty::ROUTE_REFRESH,
        }
    }

    /// Appends the message to `buf`. Fails, writing nothing, when the result would exceed
    /// 4096 octets or a value cannot be represented.
    pub fn encode(&self, ctx: &EncodeCtx, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let msg = match self {
            Message::Open(o) => BgpMessage::Open(o.to_netgauze()?),
            Message::Update(u) => BgpMessage::Update(u.to_netgauze(ctx.four_octet_as)?),
            Message::Keepalive => BgpMessage::KeepAlive,
            Message::RouteRefresh(r) => {
                let at = r.afi_safi.to_netgauze();
                let sub = netgauze_bgp_pkt::iana::RouteRefreshSubcode::from_repr(r.subtype);
                match (at, sub) {
                    (Some(at), Some(sub)) => BgpMessage::RouteRefresh(BgpRouteRefreshMessage::new(at, sub)),
                    _ => {
                        let [a, b] = r.afi_safi.afi.to_be_bytes();
                        return write_raw(ty::ROUTE_REFRESH, &[a, b, r.subtype, r.afi_safi.safi], buf);
                    }
                }
            }
            Message::Notification(n) => match n.to_netgauze() {
                Some(ng) => BgpMessage::Notification(ng),
                None => {
                    let mut body = vec![n.code, n.subcode];
                    body.extend_from_slice(&n.data);
                    return write_raw(ty::NOTIFICATION, &body, buf);
                }
            },
        };
        write_netgauze(&msg, buf)
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self, ctx: &EncodeCtx) -> Result<BytesMut, EncodeError> {
        let mut buf = BytesMut::new();
        self.encode(ctx, &mut buf)?;
        Ok(buf)
    }

    /// Decodes exactly one whole message (header included). `buf` must be what
    /// [`frame_len`] delimited; trailing bytes are a length error.
    pub fn decode(buf: &[u8], ctx: &DecodeCtx) -> Result<Message, DecodeError> {
        let len =
            frame_len(buf)?.ok_or(HeaderError::BadLength(buf.len().min(usize::from(u16::MAX)) as u16))?;
        if len != buf.len() {
            return Err(HeaderError::BadLength(len as u16).into());
        }
        let body = &buf[HEADER_LEN..];
        Ok(match buf[18] {
            ty::OPEN => Message::Open(Open::decode_body(body)?),
            ty::UPDATE => Message::Update(update_decode::decode_body(body, ctx)?),
            ty::NOTIFICATION => Message::Notification(Notification::decode_body(body)?),
            ty::KEEPALIVE => Message::Keepalive,
            ty::ROUTE_REFRESH => match body {
                [a, b, subtype, safi] => Message::RouteRefresh(RouteRefresh {
                    afi_safi: AfiSafi {
                        afi: u16::from_be_bytes([*a, *b]),
                        safi: *safi,
                    },
                    subtype: *subtype,
                }),
                _ => {
                    return Err(DecodeError::RouteRefreshLength {
                        message: buf.to_vec(),
                    });
                }
            },
            t => return Err(HeaderError::BadType(t).into()),
        })
    }

    /// Splits one message off the front of a stream buffer and decodes it: `Ok(None)`
    /// until a whole message is there. After an error the stream is unusable (the
    /// session resets), so nothing is consumed on error.
    pub fn decode_from(buf: &mut BytesMut, ctx: &DecodeCtx) -> Result<Option<Message>, DecodeError> {
        match frame_len(buf)? {
            Some(len) if buf.len() >= len => {
                let frame = buf.split_to(len);
                Message::decode(&frame, ctx).map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// Checks the header at the front of `buf` (RFC 4271 §6.1) and returns the length of
/// the message it announces, or `None` when fewer than 19 octets are there. The length
/// is checked against the type's minimum here, before any body is read, so a decoder
/// never sees a body shorter than its fixed part.
///
/// A NOTIFICATION of impossible length is [`DecodeError::BadNotification`]: it must not
/// be answered with a NOTIFICATION (RFC 4271 §6).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    if header[..16] != [0xff; 16] {
        return Err(HeaderError::NotSynchronized.into());
    }
    let len = u16::from_be_bytes([header[16], header[17]]);
    let n = usize::from(len);
    let min = match header[18] {
        ty::OPEN => HEADER_LEN + 10,
        ty::UPDATE => HEADER_LEN + 4,
        ty::NOTIFICATION => HEADER_LEN + 2,
        ty::KEEPALIVE => HEADER_LEN,
        // Any other length is a code-7 error (RFC 7313 §5), reported by the decoder.
        ty::ROUTE_REFRESH => HEADER_LEN,
        t => return Err(HeaderError::BadType(t).into()),
    };
    // KEEPALIVE must be exactly 19 (RFC 4271 §6.1).
    if n < min || n > MAX_MESSAGE_LEN || (header[18] == ty::KEEPALIVE && n != HEADER_LEN) {
        if header[18] == ty::NOTIFICATION {
            return Err(DecodeError::BadNotification("bad message length"));
        }
        return Err(HeaderError::BadLength(len).into());
    }
    Ok(Some(n))
}

fn write_netgauze(msg: &BgpMessage, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let len = msg.len();
    if len > MAX_MESSAGE_LEN {
        // netgauze only checks OPEN and KEEPALIVE, and would write `len as u16`.
        return Err(EncodeError::TooLong(len));
    }
    buf.reserve(len);
    let start = buf.len();
    let mut w = buf.writer();
    if let Err(e) = msg.write(&mut w) {
        let buf = w.into_inner();
        buf.truncate(start);
        return Err(EncodeError::Invalid(e.to_string()));
    }
    debug_assert_eq!(
        w.get_ref().len() - start,
        len,
        "netgauze len() and write() disagree"
    );
    Ok(())
}

fn write_raw(type_code: u8, body: &[u8], buf: &mut BytesMut) -> Result<(), EncodeError> {
    let len = HEADER_LEN + body.len();
    if len > MAX_MESSAGE_LEN {
        return Err(EncodeError::TooLong(len));
    }
    buf.reserve(len);
    buf.put_slice(&[0xff; 16]);
    buf.put_u16(len as u16);
    buf.put_u8(type_code);
    buf.put_slice(body);
    Ok(())
}
