//! The DBA and security-team tools behind the subcommands: check, explain, test, audit.

pub mod audit;
pub mod check;
pub mod explain;
pub mod policytest;
