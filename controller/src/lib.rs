//! The bgp-intent controller: cluster snapshot in, one `BGPNodeIntent` per Node out.
//!
//! ```text
//!  informers / manifests ──▶ intent::Snapshot ──intent::resolve──▶ intent::Resolution
//!                                                                        │
//!        Kubernetes I/O (reconcile/) ◀──diff── materialize::Materialized
//!        BGPNodeIntent per Node, BGPAdvertisementSet shards, Node annotations
//! ```
//!
//! * [`intent`]: the pure engine (selection, router IDs, passwords, Service/Pod/Egress
//!   announcements, explain), with an incremental path for one Service change.
//! * [`materialize`]: storage decisions (sharding of shared prefixes, object sizes, diff).
//! * [`cli`]: offline `render` and `explain` from manifests.
//! * [`fixtures`]: builders for tests, benches and examples.
//!
//! See docs/intent-engine.md for the semantics, the choices made and the scale figures.

pub mod app;
pub mod cli;
pub mod fixtures;
pub mod intent;
pub mod lease;
pub mod materialize;
pub mod metrics;
pub mod reconcile;
pub mod status;
