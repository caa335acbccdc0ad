//! The bgp-intent controller: cluster snapshot in, one `BGPNodeIntent` per Node out.

pub mod http;
pub mod lease;
pub mod metrics;
