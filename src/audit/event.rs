//! One audit event as sessions produce it, and its JSON form (DESIGN.md "Audit event").

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Refused,
    Allowed,
    Masked,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Refused => "refused",
            Decision::Allowed => "allowed",
            Decision::Masked => "masked",
        }
    }
}

/// What a session knows about a decision; the writer adds `ts`, `seq`, `prev` and `hash`.
/// It never holds a customer value: `statement` is normalized (every literal and parameter is `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub session: u64,
    pub user: String,
    pub client_addr: String,
    pub purpose: String,
    pub campaigns: Vec<String>,
    pub decision: Decision,
    pub reason: String,
    pub detail: String,
    pub statement: String,
    pub fingerprint: String,
    pub policy_version: String,
}

/// An event as written: the record plus trail bookkeeping. Field order is the canonical order the
/// hash covers; `hash = sha256(prev || canonical JSON of every field but hash)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub ts: String,
    pub seq: u64,
    pub session: u64,
    pub user: String,
    pub client_addr: String,
    pub purpose: String,
    pub campaigns: Vec<String>,
    pub decision: Decision,
    pub reason: String,
    pub detail: String,
    pub statement: String,
    pub fingerprint: String,
    pub policy_version: String,
    pub prev: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// The `prev` of the first event of a fresh trail.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Event {
    pub fn new(r: Record, ts: String, seq: u64, prev: String) -> Event {
        Event {
            ts,
            seq,
            session: r.session,
            user: r.user,
            client_addr: r.client_addr,
            purpose: r.purpose,
            campaigns: r.campaigns,
            decision: r.decision,
            reason: r.reason,
            detail: r.detail,
            statement: r.statement,
            fingerprint: r.fingerprint,
            policy_version: r.policy_version,
            prev,
            hash: None,
        }
    }

    /// The canonical JSON of every field except `hash`.
    pub fn canonical(&self) -> String {
        let mut e = self.clone();
        e.hash = None;
        serde_json::to_string(&e).unwrap_or_default()
    }

    pub fn compute_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.prev.as_bytes());
        h.update(self.canonical().as_bytes());
        hex::encode(h.finalize())
    }

    /// Seals the event and returns its line (without newline).
    pub fn seal(mut self) -> (Event, String) {
        self.hash = Some(self.compute_hash());
        let line = serde_json::to_string(&self).unwrap_or_default();
        (self, line)
    }
}
