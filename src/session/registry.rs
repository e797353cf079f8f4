//! Prepared statements and portals of one session, as they will be once the messages already
//! forwarded have run. Changes wait in flight until the server confirms them; a failed or skipped
//! message's changes are discarded, so the registry never names a statement the server does not run.
//! A change that may still fail without taking the asking message down with it leaves its name
//! unsettled: messages that use such a name wait for the server's answer. Portals also end with
//! their transaction, as in Postgres: every one at ROLLBACK, all but WITH HOLD cursors at COMMIT,
//! and those made after a savepoint at ROLLBACK TO it (round 181 F1: a name Postgres had dropped
//! kept its old plan here, and ran a cursor a DBA's function opened under it unmasked).

use std::collections::VecDeque;
use std::sync::Arc;

use ahash::AHashMap as HashMap;

use crate::analyze::facts::{Kind, StatementFacts};
use crate::policy::decide::Plan;

/// A portal: the statement it runs and, when it came from Bind, the plan decided then.
#[derive(Debug)]
pub struct PortalInfo {
    pub facts: Arc<StatementFacts>,
    /// Decided at Bind; None for cursors from DECLARE, judged at each FETCH/Execute.
    pub plan: Option<Arc<Plan>>,
    /// The client's result formats from Bind (empty: all text).
    pub formats: Vec<i16>,
    /// For a Bind portal running EXECUTE or FETCH: what that name meant when the plan was made.
    pub bound_to: Option<BoundTo>,
    /// The policy load (`PolicySet::generation`) `plan` was decided under.
    pub policy_generation: u64,
    /// How many campaigns the session had read when `plan` was decided (rule 4 looks at them).
    pub reads_seen: usize,
    /// How far the session's settings could differ from the server's when `plan` was decided.
    pub settings_moved: crate::policy::decide::Moved,
    /// Whether search_path could differ from the DBA's for the login when `plan` was decided.
    pub path_moved: bool,
    /// The day `plan` was decided on (rule 5 compares it with contract ends).
    pub judged_on: chrono::NaiveDate,
    /// The catalog content (`Catalog::fingerprint`) `plan` was decided under.
    pub catalog_fingerprint: u64,
    /// The prepared statement a Bind portal was bound from.
    pub bound_from: Option<String>,
}

impl PortalInfo {
    /// A cursor from DECLARE: judged at each FETCH or Execute, so it keeps no plan.
    pub fn declared(facts: Arc<StatementFacts>) -> Self {
        PortalInfo {
            facts,
            plan: None,
            formats: Vec::new(),
            bound_to: None,
            policy_generation: 0,
            reads_seen: 0,
            settings_moved: crate::policy::decide::Moved::No,
            path_moved: false,
            judged_on: chrono::NaiveDate::MIN,
            catalog_fingerprint: 0,
            bound_from: None,
        }
    }

    /// The statement whose rows the portal returns: for EXECUTE and FETCH, the one they run.
    pub fn result_facts(&self) -> &StatementFacts {
        self.bound_to.as_ref().map_or(&self.facts, |b| &b.facts)
    }
}

/// The prepared statement (EXECUTE) or cursor (FETCH) a portal runs by name, as judged at Bind.
/// Postgres looks the name up only when the portal runs, so a redefinition in between must not
/// run under the old plan.
#[derive(Debug)]
pub struct BoundTo {
    pub cursor: bool,
    pub name: String,
    pub facts: Arc<StatementFacts>,
}

impl BoundTo {
    /// Whether the name still means what it meant at Bind.
    pub fn unchanged(&self, registry: &Registry) -> bool {
        let now = match self.cursor {
            true => registry.portal(&self.name).map(|p| p.facts.clone()),
            false => registry.statement(&self.name),
        };
        now.is_some_and(|n| Arc::ptr_eq(&n, &self.facts))
    }
}

/// A prepared statement as the registry keeps it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub facts: Arc<StatementFacts>,
    /// The text it was analyzed from, to analyze again once the catalog has changed: Postgres
    /// analyzes a prepared statement again then, and its names may now mean something else
    /// (round 146). None for SQL PREPARE, which is refused after such a change instead.
    pub source: Option<Arc<str>>,
    /// The catalog content (`Catalog::fingerprint`) under which `facts` is what the text means;
    /// moved on when an analysis under a newer catalog finds the same.
    pub fingerprint: std::cell::Cell<u64>,
    /// Found to mean something else under a later catalog: refused from then on without
    /// analyzing it again (round 148: Binds of a 128 KiB statement, each analyzed anew, held
    /// the session threads).
    pub changed: std::cell::Cell<bool>,
    /// The shape of rows (`pending::shape`) the client was told at its last Describe of the
    /// statement: drivers keep that RowDescription and decode later Binds' rows by it.
    pub described: std::cell::Cell<Option<u64>>,
}

impl Stored {
    fn weight(&self) -> usize {
        self.facts.weight() + self.source.as_ref().map_or(0, |s| s.len())
    }
}

impl From<Arc<StatementFacts>> for Stored {
    fn from(facts: Arc<StatementFacts>) -> Self {
        Stored {
            facts,
            source: None,
            fingerprint: Default::default(),
            changed: Default::default(),
            described: Default::default(),
        }
    }
}

#[derive(Debug)]
enum Change {
    SetStatement(Key, Stored),
    DropStatement(Key),
    ClearStatements,
    SetPortal(Key, Arc<PortalInfo>),
    DropPortal(Key),
    ClearPortals,
    /// A transaction may end here (COMMIT, ROLLBACK, ROLLBACK TO, a Sync, the end of a Query):
    /// until the server has answered, no portal but a held cursor is known past it (a message
    /// that names one is refused rather than held: clients wait for the answer anyway). What it
    /// ends is applied from the server's answers (`ended`, `idle`, `rollback_to`), not from here.
    Boundary,
}

/// A portal the server has confirmed, and how long it lives.
#[derive(Debug)]
struct Live {
    info: Arc<PortalInfo>,
    /// When it was made, counted across the session (savepoints remember the count).
    born: u64,
    /// A WITH HOLD cursor whose transaction committed: it lives until closed.
    held: bool,
}

impl Live {
    fn holdable(&self) -> bool {
        matches!(self.info.facts.kind, Kind::Declare { hold: true, .. })
    }
}

/// A name as the server keys it: its first 63 bytes (NAMEDATALEN - 1). Two protocol names that
/// differ only after that are one statement or portal to Postgres, so they must be one here too.
type Key = Vec<u8>;

fn key(name: &str) -> &[u8] {
    let b = name.as_bytes();
    &b[..b.len().min(63)]
}

/// What a change in flight keeps: a prepared statement's analysis.
fn weight(c: &Change) -> usize {
    match c {
        Change::SetStatement(_, s) => s.weight(),
        _ => 0,
    }
}

/// Identifies the message (and statement within a simple Query) a change belongs to.
pub type Tag = (u64, u32);

#[derive(Debug, Default)]
pub struct Registry {
    statements: HashMap<Key, Stored>,
    portals: HashMap<Key, Live>,
    /// Portals made so far (see `Live::born`).
    born: u64,
    /// The open transaction's savepoints, oldest first, with the portal count when each was set.
    savepoints: Vec<(Key, u64)>,
    /// The server reported an error since the transaction began: if it ends without COMMIT or
    /// ROLLBACK (an implicit one), it rolled back.
    failed: bool,
    /// Each change with the batch it came in (see `close_batch`).
    inflight: VecDeque<(Tag, u64, Change)>,
    /// The batch messages are arriving in now.
    batch: u64,
    /// What the prepared statements kept and in flight keep (see MAX_STATEMENT_BYTES).
    bytes: usize,
}

/// More than this many prepared statements or portals in one session is refused.
pub const MAX_ENTRIES: usize = 10_000;

/// What one session's prepared statements may keep, estimated (see `StatementFacts::weight`):
/// by count alone, 2,000 statements of 1,400 columns each kept 270 MB (round 139).
pub const MAX_STATEMENT_BYTES: usize = 16 << 20;

impl Registry {
    fn push(&mut self, tag: Tag, change: Change) {
        self.bytes += weight(&change);
        self.inflight.push_back((tag, self.batch, change));
    }

    /// Ends a batch: messages after a Sync or a simple Query run even when one before it failed, so
    /// the changes made so far are no longer certain for them until the server has answered.
    /// Within a batch a failure skips the rest (Postgres skips until Sync, and a Query's later
    /// statements do not run), so a message there may rely on the changes before it.
    pub fn close_batch(&mut self) {
        if !self.inflight.is_empty() {
            self.batch += 1;
        }
    }

    pub fn set_statement(&mut self, tag: Tag, name: &str, stored: impl Into<Stored>) {
        self.push(tag, Change::SetStatement(key(name).to_vec(), stored.into()));
    }

    pub fn drop_statement(&mut self, tag: Tag, name: Option<&str>) {
        let c = match name {
            Some(n) => Change::DropStatement(key(n).to_vec()),
            None => Change::ClearStatements,
        };
        self.push(tag, c);
    }

    pub fn set_portal(&mut self, tag: Tag, name: &str, info: Arc<PortalInfo>) {
        self.push(tag, Change::SetPortal(key(name).to_vec(), info));
    }

    pub fn drop_portal(&mut self, tag: Tag, name: Option<&str>) {
        let c = match name {
            Some(n) => Change::DropPortal(key(n).to_vec()),
            None => Change::ClearPortals,
        };
        self.push(tag, c);
    }

    /// The server ran the message (or statement) `tag`: its changes become fact.
    pub fn commit(&mut self, tag: Tag) {
        while self.inflight.front().is_some_and(|(t, _, _)| *t <= tag) {
            let Some((_, _, change)) = self.inflight.pop_front() else {
                break;
            };
            // A statement's bytes, counted when it came in flight, stay counted while it is kept.
            match change {
                Change::SetStatement(n, f) => {
                    if let Some(old) = self.statements.insert(n, f) {
                        self.bytes -= old.weight();
                    }
                }
                Change::DropStatement(n) => {
                    if let Some(old) = self.statements.remove(&n) {
                        self.bytes -= old.weight();
                    }
                }
                Change::ClearStatements => {
                    self.bytes -= self.statements.values().map(Stored::weight).sum::<usize>();
                    self.statements.clear();
                }
                Change::SetPortal(n, info) => {
                    self.born += 1;
                    let born = self.born;
                    self.portals.insert(
                        n,
                        Live {
                            info,
                            born,
                            held: false,
                        },
                    );
                }
                Change::DropPortal(n) => {
                    self.portals.remove(&n);
                }
                Change::ClearPortals => self.portals.clear(),
                Change::Boundary => {}
            }
        }
    }

    /// The server may or may not have run statement `tag`: the names it changes are forgotten, so
    /// every use of them is refused until a later change is confirmed.
    pub fn forget(&mut self, tag: Tag) {
        for (_, _, c) in self.inflight.iter_mut().filter(|(t, _, _)| *t == tag) {
            self.bytes -= weight(c);
            *c = match c {
                Change::SetStatement(n, _) | Change::DropStatement(n) => Change::DropStatement(std::mem::take(n)),
                Change::SetPortal(n, _) | Change::DropPortal(n) => Change::DropPortal(std::mem::take(n)),
                Change::ClearStatements => Change::ClearStatements,
                Change::ClearPortals => Change::ClearPortals,
                Change::Boundary => Change::Boundary,
            };
        }
        self.commit(tag);
    }

    /// The server did not run message `seq` from statement `from_sub` on: forget those changes.
    pub fn discard(&mut self, seq: u64, from_sub: u32) {
        let bytes = &mut self.bytes;
        self.inflight.retain(|((s, sub), _, c)| {
            let keep = !(*s == seq && *sub >= from_sub);
            if !keep {
                *bytes -= weight(c);
            }
            keep
        });
    }

    /// The statement a name will refer to when the next forwarded message runs.
    pub fn statement(&self, name: &str) -> Option<Arc<StatementFacts>> {
        self.stored(name).map(|s| s.facts.clone())
    }

    /// The statement a name will refer to, with what it was analyzed from and under.
    pub fn stored(&self, name: &str) -> Option<&Stored> {
        let name = key(name);
        for (_, _, c) in self.inflight.iter().rev() {
            match c {
                Change::SetStatement(n, s) if n.as_slice() == name => return Some(s),
                Change::DropStatement(n) if n.as_slice() == name => return None,
                Change::ClearStatements => return None,
                _ => {}
            }
        }
        self.statements.get(name)
    }

    pub fn portal(&self, name: &str) -> Option<Arc<PortalInfo>> {
        let name = key(name);
        let mut past_boundary = false;
        for (_, _, c) in self.inflight.iter().rev() {
            match c {
                // Made before a transaction end still in flight: it may have ended with it
                // (round 182 S1: DECLARE, ROLLBACK, BEGIN, a function's OPEN and Execute in one batch).
                Change::SetPortal(n, p) if n.as_slice() == name => return (!past_boundary).then(|| p.clone()),
                Change::DropPortal(n) if n.as_slice() == name => return None,
                Change::ClearPortals => return None,
                Change::Boundary => past_boundary = true,
                _ => {}
            }
        }
        self.portals
            .get(name)
            .filter(|p| p.held || !past_boundary)
            .map(|p| p.info.clone())
    }

    /// Marks where a transaction may end (see `Change::Boundary`). Without a portal that could
    /// end there, nothing does: later messages need not wait for the server's answer.
    pub fn boundary(&mut self, tag: Tag) {
        let portals = self.portals.values().any(|p| !p.held)
            || self.inflight.iter().any(|(_, _, c)| matches!(c, Change::SetPortal(..)));
        if portals {
            self.push(tag, Change::Boundary);
        }
    }

    /// The server answered a Sync: its boundary (the oldest one in flight) is behind. Only the
    /// boundary goes: what else is in flight waits for its own answer.
    pub fn synced(&mut self) {
        if let Some(i) = self.inflight.iter().position(|(_, _, c)| matches!(c, Change::Boundary)) {
            self.inflight.remove(i);
        }
    }

    /// The server reported an error.
    pub fn failed(&mut self) {
        self.failed = true;
    }

    /// The transaction ended, committed or rolled back: its portals end with it, except WITH
    /// HOLD cursors it committed and those held before.
    pub fn ended(&mut self, committed: bool) {
        self.portals.retain(|_, p| {
            if committed && p.holdable() {
                p.held = true;
            }
            p.held
        });
        self.savepoints.clear();
        self.failed = false;
    }

    /// The server is idle outside a transaction block: an implicit transaction has ended, rolled
    /// back if an error came since it began (an explicit one ended at its COMMIT or ROLLBACK).
    pub fn idle(&mut self) {
        self.ended(!self.failed);
    }

    pub fn savepoint(&mut self, name: &str) {
        self.savepoints.push((key(name).to_vec(), self.born));
    }

    pub fn release(&mut self, name: &str) {
        if let Some(i) = self.savepoints.iter().rposition(|(n, _)| n.as_slice() == key(name)) {
            self.savepoints.truncate(i);
        }
    }

    /// ROLLBACK TO `name`: the portals made since it end. A savepoint unscharf did not see
    /// (none should exist) ends every portal the transaction made.
    pub fn rollback_to(&mut self, name: &str) {
        let mark = match self.savepoints.iter().rposition(|(n, _)| n.as_slice() == key(name)) {
            Some(i) => {
                self.savepoints.truncate(i + 1);
                self.savepoints[i].1
            }
            None => {
                self.savepoints.clear();
                0
            }
        };
        self.portals.retain(|_, p| p.held || p.born <= mark);
    }

    /// Whether a WITH HOLD cursor may be open: it outlives its transaction, filled at its COMMIT
    /// under the settings then in force.
    pub fn has_held_cursors(&self) -> bool {
        let held = |p: &PortalInfo| matches!(p.facts.kind, Kind::Declare { hold: true, .. });
        self.portals.values().any(|p| held(&p.info))
            || self
                .inflight
                .iter()
                .any(|(_, _, c)| matches!(c, Change::SetPortal(_, p) if held(p)))
    }

    /// Whether every change in flight came in the current batch. Boundaries do not count: past
    /// one, a portal is unknown until the server has answered (see `portal`), so nothing waits.
    pub fn all_settled(&self) -> bool {
        // Batches only grow along the queue.
        self.inflight
            .iter()
            .find(|(_, _, c)| !matches!(c, Change::Boundary))
            .is_none_or(|(_, b, _)| *b == self.batch)
    }

    /// Whether what a statement (`portal` false) or portal name refers to is certain for a message
    /// of the current batch: its newest change in flight, if any, came in this batch too.
    pub fn settled(&self, portal: bool, name: &str) -> bool {
        let name = key(name);
        let newest = self.inflight.iter().rev().find(|(_, _, c)| match (c, portal) {
            (Change::SetStatement(n, _) | Change::DropStatement(n), false) => n.as_slice() == name,
            (Change::SetPortal(n, _) | Change::DropPortal(n), true) => n.as_slice() == name,
            (Change::ClearStatements, false) | (Change::ClearPortals, true) => true,
            _ => false,
        });
        newest.is_none_or(|(_, b, _)| *b == self.batch)
    }

    pub fn is_full(&self) -> bool {
        self.statements.len() + self.inflight.len() >= MAX_ENTRIES
            || self.portals.len() >= MAX_ENTRIES
            || self.bytes >= MAX_STATEMENT_BYTES
    }
}

impl crate::judge::Registry for Registry {
    fn prepared(&self, name: &str) -> Option<Arc<StatementFacts>> {
        self.statement(name)
    }

    fn portal(&self, name: &str) -> Option<Arc<StatementFacts>> {
        Registry::portal(self, name).map(|p| p.facts.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::facts::Kind;

    fn facts(k: Kind) -> Arc<StatementFacts> {
        Arc::new(StatementFacts::new(k))
    }

    #[test]
    fn predictions_commit_and_discard() {
        let mut r = Registry::default();
        let a = facts(Kind::Query);
        let b = facts(Kind::Insert);
        r.set_statement((1, 0), "s", a.clone());
        assert!(Arc::ptr_eq(&r.statement("s").unwrap(), &a));
        r.commit((1, 0));
        // A later Parse of the same name fails: the committed statement stays.
        r.set_statement((2, 0), "s", b.clone());
        assert!(Arc::ptr_eq(&r.statement("s").unwrap(), &b));
        r.discard(2, 0);
        assert!(Arc::ptr_eq(&r.statement("s").unwrap(), &a));
        // A failure in a pipeline discards only that message's changes, even when later ones are in flight.
        r.set_statement((3, 0), "t", b.clone());
        r.set_statement((4, 0), "u", b.clone());
        r.discard(3, 0);
        assert!(r.statement("t").is_none());
        assert!(r.statement("u").is_some());
        r.commit((4, 0));
        r.drop_statement((5, 0), None);
        assert!(r.statement("s").is_none());
        r.commit((5, 0));
        assert!(r.statement("u").is_none());
    }

    #[test]
    fn a_change_that_may_have_run_forgets_the_name() {
        let mut r = Registry::default();
        let (a, b) = (facts(Kind::Query), facts(Kind::Insert));
        r.set_statement((1, 0), "s", a.clone());
        r.set_statement((1, 1), "t", a.clone());
        r.commit((1, 1));
        r.set_statement((2, 1), "s", b.clone());
        r.drop_statement((2, 2), Some("t"));
        r.set_statement((3, 0), "u", b);
        r.forget((2, 1));
        r.discard(2, 2);
        assert!(
            r.statement("s").is_none(),
            "neither the old nor the new meaning is certain"
        );
        assert!(
            Arc::ptr_eq(&r.statement("t").unwrap(), &a),
            "a statement that never ran changes nothing"
        );
        assert!(r.statement("u").is_some(), "a later message's change stays in flight");
    }

    #[test]
    fn simple_query_statements_commit_one_by_one() {
        let mut r = Registry::default();
        let p = Arc::new(PortalInfo::declared(facts(Kind::Query)));
        r.set_portal((7, 0), "c1", p.clone());
        r.set_portal((7, 1), "c2", p.clone());
        r.commit((7, 0));
        r.discard(7, 1);
        assert!(r.portal("c1").is_some());
        assert!(r.portal("c2").is_none());
        r.drop_portal((8, 0), Some("c1"));
        assert!(r.portal("c1").is_none());
    }

    /// Round 181 F1: portals end with their transaction, as in Postgres.
    #[test]
    fn portals_end_with_their_transaction() {
        let portal = |k: Kind| Arc::new(PortalInfo::declared(facts(k)));
        let hold = || {
            portal(Kind::Declare {
                name: "h".into(),
                hold: true,
            })
        };
        let mut r = Registry::default();
        r.set_portal((1, 0), "c", portal(Kind::Query));
        r.set_portal((1, 1), "h", hold());
        r.commit((1, 1));
        // A portal still in flight behind a boundary in flight is not certain either.
        r.set_portal((1, 2), "x", portal(Kind::Query));
        r.boundary((1, 3));
        assert!(r.portal("x").is_none());
        r.discard(1, 2);
        // Until the server answers, nothing but a held cursor is certain past a boundary.
        r.boundary((2, 0));
        assert!(r.portal("c").is_none() && r.portal("h").is_none());
        r.close_batch();
        assert!(r.all_settled(), "nothing waits for a boundary");
        r.synced();
        assert!(r.portal("c").is_some());
        // COMMIT keeps WITH HOLD cursors only; a later ROLLBACK keeps those held before.
        r.ended(true);
        assert!(r.portal("c").is_none() && r.portal("h").is_some());
        r.set_portal((3, 0), "h2", hold());
        r.commit((3, 0));
        r.boundary((4, 0));
        assert!(r.portal("h").is_some(), "held before the boundary");
        assert!(r.portal("h2").is_none());
        r.synced();
        r.failed();
        r.idle();
        assert!(r.portal("h").is_some() && r.portal("h2").is_none());
        // ROLLBACK TO ends what was made after the savepoint; RELEASE keeps it.
        r.set_portal((5, 0), "a", portal(Kind::Query));
        r.commit((5, 0));
        r.savepoint("s");
        r.set_portal((6, 0), "b", portal(Kind::Query));
        r.commit((6, 0));
        r.savepoint("t");
        r.release("t");
        r.rollback_to("s");
        assert!(r.portal("a").is_some() && r.portal("b").is_none());
        // A savepoint unscharf never saw: every portal of the transaction ends.
        r.rollback_to("unseen");
        assert!(r.portal("a").is_none() && r.portal("h").is_some());
    }

    /// Round 139: 2,000 prepared statements of 1,400 columns each kept 270 MB; what they keep is
    /// bounded, not only how many there are, and dropping them frees the allowance.
    #[test]
    fn prepared_statements_are_bounded_by_what_they_keep() {
        let wide = || {
            let mut f = StatementFacts::new(Kind::Query);
            let out = crate::analyze::facts::Output {
                name: "c".repeat(40),
                lineage: Default::default(),
                explicit: true,
            };
            f.outputs = crate::analyze::facts::Outputs::Known(vec![out; 20_000]);
            Arc::new(f)
        };
        let mut r = Registry::default();
        let mut n = 0;
        while !r.is_full() {
            r.set_statement((n, 0), &format!("s{n}"), wide());
            r.commit((n, 0));
            n += 1;
            assert!(n < 100, "never full");
        }
        assert!(n < 20, "{n} statements of 2 MB");
        // Forgotten, discarded and dropped statements give their bytes back.
        r.set_statement((n, 0), "x", wide());
        r.discard(n, 0);
        r.drop_statement((n + 1, 0), None);
        r.commit((n + 1, 0));
        assert_eq!(r.bytes, 0);
        assert!(!r.is_full());
    }
}
