//! Shared helpers of the cross-crate tests.

pub mod lab;
pub mod speaker;
