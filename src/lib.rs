//! unscharf: a PostgreSQL wire-protocol proxy that enforces purpose policies on call-center customer data.
#![forbid(unsafe_code)]

pub mod admin;
pub mod analyze;
pub mod audit;
pub mod catalog;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod fence;
pub mod judge;
pub mod logging;
pub mod mask;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod pool;
pub mod server;
pub mod session;
pub mod tls;
pub mod tools;
pub mod wire;
pub mod yaml;
