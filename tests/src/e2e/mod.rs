//! The end-to-end suite's harness: the deployed whole, every component a separate process
//! started the way the Helm chart runs it (issue 12).
//!
//! ```text
//!   helm template charts/bgp-intent ──▶ chart.rs: args, env (downward API), ports, probes
//!                                            │
//!   cluster.rs: namespaces on one bridge     ▼
//!     fake-apiserver (binary) ◀── KUBECONFIG (token = Pod name) ── controller ×2, speaker ×N
//!        ▲ admin: stop/start, faults, /writes                          │ BGP (179)
//!     test (http.rs, inside the namespaces)                             ▼
//!     watch.rs: routers' tables and both probes polled all along ── BIRD, FRR
//! ```
//!
//! What is not the chart's: `KUBECONFIG` (there is no in-cluster service account; each
//! process gets its own kubeconfig whose bearer token is its Pod name, so the fake API
//! server's write log tells the replicas apart), `RUST_LOG` (debug logs of our crates), and
//! each controller replica's own network namespace (a Pod network: both listen on
//! `0.0.0.0:8080` as the Deployment says).

pub mod apiserver;
pub mod chart;
pub mod cluster;
pub mod http;
pub mod objects;
pub mod pod;
pub mod watch;
