//! The bgp-intent node speaker: one Node's intent in, BGP sessions out.
//!
//! ```text
//!            BGPNodeIntent (kube watch)            peers (TCP 179, MD5, TTL)
//!                     |                                     ^
//!                     v                                     |
//!   +-------------------------------------------+   +---------------+
//!   | agent (tokio): watch, status, /metrics    |<->| net: sockets  |
//!   +-------------------------------------------+   +---------------+
//!           | Event (timer fired, bytes read, intent changed)   ^
//!           v                                                   | Action (connect,
//!   +-------------------------------------------+               |  send, arm timer,
//!   | session: sans-IO FSM per peer (RFC 4271 §8)|---------------+  close, state+reason)
//!   |   adj_rib_out: desired routes -> diff      |
//!   +-------------------------------------------+
//!           | Message values / build_updates
//!           v
//!   +-------------------------------------------+
//!   | wire: codec (netgauze-bgp-pkt hidden here) |
//!   +-------------------------------------------+
//! ```
//!
//! `wire` and `session` have no tokio, no sockets and no clock: time comes in as an
//! argument and timers go out as actions, so every path is a plain unit test.

pub mod agent;
pub mod app;
pub mod net;
pub mod session;
pub mod wire;
