//! The bgp-intent controller: cluster snapshot in, one `BGPNodeIntent` per Node out.
pub mod cli;
pub mod fixtures;
pub mod intent;
pub mod materialize;
