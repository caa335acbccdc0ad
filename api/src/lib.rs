//! Domain types of bgp-intent, free of any Kubernetes dependency.
//!
//! ```text
//!   crd (CRD types) ──parse──▶ api (this crate) ◀──uses── controller::intent (pure)
//!                                     ▲
//!                                     └──────────uses── node-speaker (wire, session, agent)
//! ```
//!
//! Values here are already valid: an [`Asn`] is never 0 or 23456, a [`Prefix`] never has
//! host bits, a [`PeerIntent`] has every default applied. Conversions from API objects
//! happen once, at the edge (in `crd`), and fail with a [`FieldError`] that names the field
//! and the rule.

mod asn;
mod attributes;
mod duration;
mod error;
mod intent;
mod peer;
mod policy;
mod prefix;
mod status;

pub use asn::{Asn, InvalidAsn, InvalidRouterId, RouterId, fnv1a32};
pub use attributes::{AsPathPrepend, Community, LargeCommunity, PathAttributes};
pub use duration::parse_duration;
pub use error::{FieldError, FieldErrors};
pub use intent::{Confederation, NodeIntent, PolicyRef, ServiceIpType, Source};
pub use peer::{GracefulRestart, PasswordRef, PeerIntent, PeerKey, Reconfigure, ResetCause, TtlMode};
pub use policy::{Advertisements, PolicySettings, Requirement, Selector};
pub use prefix::{Family, NextHops, Prefix, parse_ip};
pub use status::{DownReason, PeerStatus, PrefixCounts, SessionState};
