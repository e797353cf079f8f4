//! unscharf: a PostgreSQL wire-protocol proxy that enforces purpose policies on call-center customer data.
#![forbid(unsafe_code)]

pub mod analyze;
pub mod catalog;
pub mod config;
pub mod judge;
pub mod mask;
pub mod policy;
pub mod wire;
pub mod yaml;
