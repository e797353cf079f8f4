//! The audit trail: events from sessions → bounded channel → JSON-lines writer with a SHA-256 hash chain.

pub mod anchor;
pub mod db;
pub mod event;
pub mod verify;
pub mod writer;

pub use event::{Decision, Event, Record};
pub use writer::{AuditSink, AuditState};
