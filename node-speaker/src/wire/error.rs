//! Decode and encode errors, shaped like the NOTIFICATION they cause.
//!
//! The type says what the session does (RFC 4271 §6, RFC 7606 §2):
//!
//! | outcome            | where it shows                                    | session |
//! |--------------------|---------------------------------------------------|---------|
//! | session reset      | `Err(DecodeError)`; [`DecodeError::notification`] | NOTIFICATION, close |
//! | treat-as-withdraw  | `Ok(update)` with `update.treat_as_withdraw = Some(AttrError)` | stays up |
//! | attribute discard  | `Ok(update)` with the error in `update.discarded`  | stays up |
//!
//! A speaker that never installs routes handles the last two the same way (count, log,
//! drop), but keeping them apart makes the RFC 7606 table testable line by line.

use std::fmt;

use super::{
    Notification,
    iana::{error_code, header_subcode, route_refresh_subcode},
};

/// A received message the session cannot accept. Every variant but
/// [`DecodeError::BadNotification`] is answered with the NOTIFICATION from
/// [`DecodeError::notification`] and a session reset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Code 1: the 19-octet header is wrong; the stream cannot be trusted any more.
    #[error("message header error: {0}")]
    Header(#[from] HeaderError),
    /// Code 2.
    #[error("OPEN message error: {0}")]
    Open(#[from] OpenError),
    /// Code 3, the session-reset cases of RFC 7606.
    #[error("UPDATE message error: {0}")]
    Update(#[from] UpdateError),
    /// Code 7 (RFC 7313 §5): data is the whole offending message.
    #[error("ROUTE-REFRESH of invalid length")]
    RouteRefreshLength { message: Vec<u8> },
    /// A NOTIFICATION we cannot read. RFC 4271 §6: "the receiver cannot use a
    /// NOTIFICATION message to report this error back to the peer"; the session just closes.
    #[error("malformed NOTIFICATION ({0})")]
    BadNotification(&'static str),
}

impl DecodeError {
    /// The NOTIFICATION to send before closing, `None` when none may be sent.
    pub fn notification(&self) -> Option<Notification> {
        Some(match self {
            DecodeError::Header(e) => e.notification(),
            DecodeError::Open(e) => {
                Notification::new(error_code::OPEN_MESSAGE, e.subcode as u8, e.data.clone())
            }
            DecodeError::Update(e) => {
                Notification::new(error_code::UPDATE_MESSAGE, e.subcode as u8, e.data.clone())
            }
            DecodeError::RouteRefreshLength { message } => Notification::new(
                error_code::ROUTE_REFRESH,
                route_refresh_subcode::INVALID_MESSAGE_LENGTH,
                message.clone(),
            ),
            DecodeError::BadNotification(_) => return None,
        })
    }
}

/// Message Header Error (code 1) subcodes with their RFC 4271 §6.1 data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The marker is not all ones.
    #[error("connection not synchronized (marker is not all ones)")]
    NotSynchronized,
    /// Length outside 19..=4096, or wrong for the message type; data = the length field.
    #[error("bad message length {0}")]
    BadLength(u16),
    /// Unknown message type; data = the type octet.
    #[error("bad message type {0}")]
    BadType(u8),
}

impl HeaderError {
    pub fn notification(&self) -> Notification {
        let (subcode, data) = match *self {
            HeaderError::NotSynchronized => (header_subcode::CONNECTION_NOT_SYNCHRONIZED, vec![]),
            HeaderError::BadLength(len) => (header_subcode::BAD_MESSAGE_LENGTH, len.to_be_bytes().to_vec()),
            HeaderError::BadType(t) => (header_subcode::BAD_MESSAGE_TYPE, vec![t]),
        };
        Notification::new(error_code::MESSAGE_HEADER, subcode, data)
    }
}

/// OPEN Message Error subcodes (RFC 4271 §4.5, RFC 5492).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpenSubcode {
    Unspecific = 0,
    UnsupportedVersion = 1,
    BadPeerAs = 2,
    BadBgpIdentifier = 3,
    UnsupportedOptionalParameter = 4,
    UnacceptableHoldTime = 6,
    UnsupportedCapability = 7,
}

/// An OPEN we refuse: the subcode, the data the RFC asks for, and a reason for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    pub subcode: OpenSubcode,
    pub data: Vec<u8>,
    /// What was wrong, with the values (it ends up in `lastDownReason`).
    pub reason: std::borrow::Cow<'static, str>,
}

impl OpenError {
    pub fn new(subcode: OpenSubcode, reason: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self {
            subcode,
            data: Vec::new(),
            reason: reason.into(),
        }
    }

    pub fn with_data(mut self, data: Vec<u8>) -> Self {
        self.data = data;
        self
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.subcode, self.reason)
    }
}

impl std::error::Error for OpenError {}

/// UPDATE Message Error subcodes (RFC 4271 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum UpdateSubcode {
    MalformedAttributeList = 1,
    UnrecognizedWellKnownAttribute = 2,
    MissingWellKnownAttribute = 3,
    AttributeFlagsError = 4,
    AttributeLengthError = 5,
    InvalidOriginAttribute = 6,
    InvalidNextHopAttribute = 8,
    OptionalAttributeError = 9,
    InvalidNetworkField = 10,
    MalformedAsPath = 11,
}

/// An UPDATE that resets the session (RFC 7606 §2 "session reset").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateError {
    pub subcode: UpdateSubcode,
    /// RFC 4271 §6.3: the erroneous attribute (type, length, value) where there is one.
    pub data: Vec<u8>,
    pub reason: &'static str,
}

impl UpdateError {
    pub fn new(subcode: UpdateSubcode, reason: &'static str) -> Self {
        Self {
            subcode,
            data: Vec::new(),
            reason,
        }
    }

    pub fn with_data(mut self, data: Vec<u8>) -> Self {
        self.data = data;
        self
    }
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.subcode, self.reason)
    }
}

impl std::error::Error for UpdateError {}

/// The milder RFC 7606 outcomes, for one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrAction {
    /// RFC 7606 "attribute discard": the attribute is ignored, the routes stay.
    Discard,
    /// RFC 7606 "treat-as-withdraw": every prefix in the UPDATE counts as withdrawn.
    TreatAsWithdraw,
}

/// A malformed attribute the session survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttrError {
    pub action: AttrAction,
    /// The attribute type code.
    pub type_code: u8,
    /// The subcode RFC 4271 would have sent, kept for logs and counters.
    pub subcode: UpdateSubcode,
    pub reason: &'static str,
}

impl fmt::Display for AttrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attribute {} {:?} ({:?}): {}",
            self.type_code, self.action, self.subcode, self.reason
        )
    }
}

/// Encoding failed: always a bug or a value out of the protocol's range, never I/O.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {0} bytes exceeds 4096")]
    TooLong(usize),
    #[error("{0}")]
    Invalid(String),
}
