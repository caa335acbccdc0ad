//! NOTIFICATION (RFC 4271 §4.5) with the RFC 9003 shutdown message and the RFC 8538
//! Hard Reset wrapper.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Codes and subcodes stay raw octets here, so a NOTIFICATION with a subcode we have never
//! heard of is still received, logged and reported as it came.

use std::fmt;

use netgauze_bgp_pkt::notification::{
    BgpNotificationMessage, CeaseError, FiniteStateMachineError, HoldTimerExpiredError, MessageHeaderError,
    OpenMessageError, RouteRefreshError, UpdateMessageError,
};

use super::iana::{cease_subcode, error_code};

/// RFC 9003 §2: the shutdown communication is at most 255 octets of UTF-8.
pub const MAX_SHUTDOWN_MESSAGE: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Self { code, subcode, data }
    }

    /// Cease with a subcode and no data.
    pub fn cease(subcode: u8) -> Self {
        Self::new(error_code::CEASE, subcode, Vec::new())
    }

    /// Cease/Administrative Shutdown with an RFC 9003 message. The length octet is ours to
    /// write (netgauze treats data as opaque; GoBGP showed "ye" for a raw "bye"). A message
    /// over 255 octets is cut at a character boundary rather than refused: it is a
    /// courtesy text, the shutdown must happen anyway.
    pub fn admin_shutdown(message: &str) -> Self {
        Self::new(
            error_code::CEASE,
            cease_subcode::ADMINISTRATIVE_SHUTDOWN,
            shutdown_data(message),
        )
    }

    /// RFC 8538 §3 Hard Reset carrying `inner`: its data is the encapsulated NOTIFICATION's
    /// error code, subcode and data. Once both sides advertised the N-bit, any other
    /// NOTIFICATION is "graceful" and the peer would keep our routes for the restart time; an
    /// administrative shutdown that means "withdraw everything" must therefore be wrapped in
    /// a Hard Reset.
    pub fn hard_reset(inner: &Notification) -> Self {
        let mut data = Vec::with_capacity(2 + inner.data.len());
        data.push(inner.code);
        data.push(inner.subcode);
        data.extend_from_slice(&inner.data);
        Self::new(error_code::CEASE, cease_subcode::HARD_RESET, data)
    }

    /// The RFC 9003 message of an Administrative Shutdown or Reset (also inside a Hard
    /// Reset), if it is well formed. Invalid UTF-8 is replaced, not rejected: the message
    /// is for humans.
    pub fn shutdown_message(&self) -> Option<String> {
        if self.code != error_code::CEASE {
            return None;
        }
        let data = match self.subcode {
            cease_subcode::ADMINISTRATIVE_SHUTDOWN | cease_subcode::ADMINISTRATIVE_RESET => &self.data[..],
            cease_subcode::HARD_RESET => match self.data.split_first_chunk::<2>() {
                Some((
                    &[
                        error_code::CEASE,
                        cease_subcode::ADMINISTRATIVE_SHUTDOWN | cease_subcode::ADMINISTRATIVE_RESET,
                    ],
                    rest,
                )) => rest,
                _ => return None,
            },
            _ => return None,
        };
        let (&len, text) = data.split_first()?;
        let text = text.get(..usize::from(len))?;
        Some(String::from_utf8_lossy(text).into_owned())
    }

    /// Body length on the wire (after the 19-octet header).
    pub fn body_len(&self) -> usize {
        2 + self.data.len()
    }

    /// Parses the body of a NOTIFICATION (everything after the header).
    pub(super) fn decode_body(body: &[u8]) -> Result<Self, super::DecodeError> {
        match body {
            [code, subcode, data @ ..] => Ok(Self::new(*code, *subcode, data.to_vec())),
            _ => Err(super::DecodeError::BadNotification("shorter than 2 octets")),
        }
    }

    /// The netgauze value for this NOTIFICATION, when netgauze has a variant for its
    /// code and subcode; `None` for codepoints it does not model (the caller writes those
    /// itself, so unknown values still round-trip).
    pub(super) fn to_netgauze(&self) -> Option<BgpNotificationMessage> {
        let value: Box<[u8]> = self.data.clone().into_boxed_slice();
        use BgpNotificationMessage as N;
        Some(match (self.code, self.subcode) {
            (1, 0) => N::MessageHeaderError(MessageHeaderError::Unspecific { value }),
            (1, 1) => N::MessageHeaderError(MessageHeaderError::ConnectionNotSynchronized { value }),
            (1, 2) => N::MessageHeaderError(MessageHeaderError::BadMessageLength { value }),
            (1, 3) => N::MessageHeaderError(MessageHeaderError::BadMessageType { value }),
            (2, 0) => N::OpenMessageError(OpenMessageError::Unspecific { value }),
            (2, 1) => N::OpenMessageError(OpenMessageError::UnsupportedVersionNumber { value }),
            (2, 2) => N::OpenMessageError(OpenMessageError::BadPeerAs { value }),
            (2, 3) => N::OpenMessageError(OpenMessageError::BadBgpIdentifier { value }),
            (2, 4) => N::OpenMessageError(OpenMessageError::UnsupportedOptionalParameter { value }),
            (2, 6) => N::OpenMessageError(OpenMessageError::UnacceptableHoldTime { value }),
            (2, 7) => N::OpenMessageError(OpenMessageError::UnsupportedCapability { value }),
            (3, 0) => N::UpdateMessageError(UpdateMessageError::Unspecific { value }),
            (3, 1) => N::UpdateMessageError(UpdateMessageError::MalformedAttributeList { value }),
            (3, 2) => N::UpdateMessageError(UpdateMessageError::UnrecognizedWellKnownAttribute { value }),
            (3, 3) => N::UpdateMessageError(UpdateMessageError::MissingWellKnownAttribute { value }),
            (3, 4) => N::UpdateMessageError(UpdateMessageError::AttributeFlagsError { value }),
            (3, 5) => N::UpdateMessageError(UpdateMessageError::AttributeLengthError { value }),
            (3, 6) => N::UpdateMessageError(UpdateMessageError::InvalidOriginAttribute { value }),
            (3, 8) => N::UpdateMessageError(UpdateMessageError::InvalidNextHopAttribute { value }),
            (3, 9) => N::UpdateMessageError(UpdateMessageError::OptionalAttributeError { value }),
            (3, 10) => N::UpdateMessageError(UpdateMessageError::InvalidNetworkField { value }),
            (3, 11) => N::UpdateMessageError(UpdateMessageError::MalformedAsPath { value }),
            (4, sub_code) => N::HoldTimerExpiredError(HoldTimerExpiredError::Unspecific { sub_code, value }),
            (5, 0) => N::FiniteStateMachineError(FiniteStateMachineError::Unspecific { value }),
            (5, 1) => {
                N::FiniteStateMachineError(FiniteStateMachineError::ReceiveUnexpectedMessageInOpenSentState {
                    value,
                })
            }
            (5, 2) => N::FiniteStateMachineError(
                FiniteStateMachineError::ReceiveUnexpectedMessageInOpenConfirmState { value },
            ),
            (5, 3) => N::FiniteStateMachineError(
                FiniteStateMachineError::ReceiveUnexpectedMessageInEstablishedState { value },
            ),
            (6, 1) => N::CeaseError(CeaseError::MaximumNumberOfPrefixesReached { value }),
            (6, 2) => N::CeaseError(CeaseError::AdministrativeShutdown { value }),
            (6, 3) => N::CeaseError(CeaseError::PeerDeConfigured { value }),
            (6, 4) => N::CeaseError(CeaseError::AdministrativeReset { value }),
            (6, 5) => N::CeaseError(CeaseError::ConnectionRejected { value }),
            (6, 6) => N::CeaseError(CeaseError::OtherConfigurationChange { value }),
            (6, 7) => N::CeaseError(CeaseError::ConnectionCollisionResolution { value }),
            (6, 8) => N::CeaseError(CeaseError::OutOfResources { value }),
            (6, 9) => N::CeaseError(CeaseError::HardReset { value }),
            (7, 1) => N::RouteRefreshError(RouteRefreshError::InvalidMessageLength { value }),
            _ => return None,
        })
    }
}

/// `len || utf-8`, cut to 255 octets at a character boundary.
fn shutdown_data(message: &str) -> Vec<u8> {
    let mut end = message.len().min(MAX_SHUTDOWN_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let text = &message.as_bytes()[..end];
    let mut data = Vec::with_capacity(1 + text.len());
    data.push(text.len() as u8);
    data.extend_from_slice(text);
    data
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.code, self.subcode)?;
        if let Some(msg) = self.shutdown_message() {
            write!(f, " \"{}\"", msg.escape_debug())?;
        } else if !self.data.is_empty() {
            f.write_str(" data ")?;
            for b in self.data.iter().take(32) {
                write!(f, "{b:02x}")?;
            }
            if self.data.len() > 32 {
                f.write_str("...")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_message_gets_its_length_octet() {
        let n = Notification::admin_shutdown("bye");
        assert_eq!(n.data, b"\x03bye");
        assert_eq!(n.shutdown_message().as_deref(), Some("bye"));
        assert_eq!(n.to_string(), "6/2 \"bye\"");
    }

    #[test]
    fn shutdown_message_is_cut_at_a_char_boundary() {
        // 128 two-octet characters = 256 octets: the last one does not fit.
        let long = "é".repeat(128);
        let n = Notification::admin_shutdown(&long);
        assert_eq!(n.data[0], 254);
        assert_eq!(n.data.len(), 255);
        assert_eq!(n.shutdown_message().unwrap().chars().count(), 127);
    }

    #[test]
    fn hard_reset_wraps_the_cease_subcode() {
        let n = Notification::hard_reset(&Notification::admin_shutdown("maint"));
        assert_eq!((n.code, n.subcode), (6, 9));
        // RFC 8538 §3: ErrCode, Subcode, then the encapsulated data.
        assert_eq!(n.data, b"\x06\x02\x05maint");
        assert_eq!(n.shutdown_message().as_deref(), Some("maint"));
    }

    #[test]
    fn truncated_shutdown_length_is_not_trusted() {
        let n = Notification::new(6, 2, b"\x09bye".to_vec());
        assert_eq!(n.shutdown_message(), None);
        assert_eq!(n.to_string(), "6/2 data 09627965");
    }
}
