//! Shared helpers of the cross-crate tests.

pub mod apiserver;
pub mod e2e;
pub mod interop;
pub mod lab;
pub mod rawpeer;
pub mod speaker;
