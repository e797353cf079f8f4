//! The DBA and security-team tools behind the subcommands: check, explain, test, audit.

pub mod check;
pub mod explain;
