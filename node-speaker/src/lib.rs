//! The bgp-intent node speaker: one Node's intent in, BGP sessions out.

pub mod net;
