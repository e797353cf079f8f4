//! What a session waits for from the server: one entry per message sent upstream, the result plans
//! they carry, and the state of a COPY in either direction.

use std::sync::Arc;

use bytes::Bytes;

use super::Probed;
use crate::analyze::facts::{CopyOut, Kind, StatementFacts, TxControl};
use crate::mask::copy::CopyFormat;
use crate::policy::decide::{ColAction, Plan};

/// A statement's result plan as the replies need it.
#[derive(Debug, Clone, Default)]
pub(super) struct Result_ {
    pub(super) plan: Option<Arc<Vec<ColAction>>>,
    pub(super) copy: Option<CopyOut>,
    /// Transaction control: what its completion ends for the registry's portals.
    pub(super) tx: Option<TxControl>,
}

/// The actions for a result's columns. When every column passes there is one Pass per column the
/// analyzer expects, so a result of another width is cut off: the analyzer misread the statement,
/// and a column it judged harmless may be another. None only when it cannot know the width.
pub(super) fn result_plan(plan: &Plan, facts: &StatementFacts) -> Option<Arc<Vec<ColAction>>> {
    match (&plan.columns, facts.outputs.known()) {
        (Some(columns), _) => Some(Arc::new(columns.clone())),
        (None, Some(outputs)) => Some(Arc::new(vec![ColAction::Pass; outputs.len()])),
        (None, None) => None,
    }
}

/// What a RowDescription of `plan` (see `result_plan`) tells a client about the rows: how many
/// columns, and which come as masked text rather than their own type. Masks that differ only in
/// what they keep give the same shape.
pub(super) fn shape(plan: Option<&[ColAction]>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match plan {
        None => u8::MAX.hash(&mut h),
        Some(columns) => {
            for c in columns {
                let kind: u8 = match c {
                    ColAction::Pass => 0,
                    ColAction::Mask(_) => 1,
                    ColAction::Drop => 2,
                };
                kind.hash(&mut h);
            }
        }
    }
    h.finish()
}

impl Result_ {
    pub(super) fn of(plan: &Plan, facts: &StatementFacts) -> Self {
        Result_ {
            plan: result_plan(plan, facts),
            copy: match &facts.kind {
                Kind::CopyTo(c) => Some(c.clone()),
                _ => None,
            },
            tx: match &facts.kind {
                Kind::Transaction(t) => Some(t.clone()),
                _ => None,
            },
        }
    }
}

pub(super) enum Pending {
    /// A simple Query: one result per statement, then ReadyForQuery.
    Simple {
        seq: u64,
        results: Vec<Result_>,
        idx: usize,
        refusal: Option<Bytes>,
        /// An error ended it: the statements after it did not run.
        failed: bool,
        /// Its last statement may have run although an error came instead of its completion: the
        /// Query's implicit commit follows that statement and may fail (see `on_error`).
        commits_after_last: bool,
    },
    Parse {
        seq: u64,
        refusal: Option<Bytes>,
        /// Of the unnamed statement, which Postgres drops even when the Parse fails.
        unnamed: bool,
    },
    Bind {
        seq: u64,
        refusal: Option<Bytes>,
    },
    DescribeStatement {
        plan: Option<Arc<Vec<ColAction>>>,
        refusal: Option<Bytes>,
    },
    DescribePortal {
        plan: Option<Arc<Vec<ColAction>>>,
        formats: Vec<i16>,
        refusal: Option<Bytes>,
    },
    Execute {
        seq: u64,
        result: Result_,
        refusal: Option<Bytes>,
    },
    Close {
        seq: u64,
    },
    Sync,
    /// A FunctionCall, replaced by a failing query: ErrorResponse then ReadyForQuery.
    Refused {
        refusal: Bytes,
    },
    /// The proxy's own search_path query; its replies never reach the client.
    Probe {
        /// The search_path setting and the login's roles.
        value: Option<Probed>,
        /// The catalog generation when it was sent: the answer is current for that catalog.
        generation: u64,
    },
}

impl Pending {
    /// A stand-in for a refused message waits for the server's error (and, for a simple Query, the
    /// ReadyForQuery after it); anything else means the server ran something it should not have.
    pub(super) fn awaits_refusal(&self) -> bool {
        match self {
            Pending::Simple { refusal, .. }
            | Pending::Parse { refusal, .. }
            | Pending::Bind { refusal, .. }
            | Pending::DescribeStatement { refusal, .. }
            | Pending::DescribePortal { refusal, .. }
            | Pending::Execute { refusal, .. } => refusal.is_some(),
            Pending::Refused { .. } => true,
            _ => false,
        }
    }

    /// The client message this entry answers, for those that carry one.
    pub(super) fn seq(&self) -> Option<u64> {
        match self {
            Pending::Simple { seq, .. }
            | Pending::Parse { seq, .. }
            | Pending::Bind { seq, .. }
            | Pending::Execute { seq, .. }
            | Pending::Close { seq } => Some(*seq),
            _ => None,
        }
    }

    pub(super) fn is_extended(&self) -> bool {
        !matches!(
            self,
            Pending::Simple { .. } | Pending::Sync | Pending::Refused { .. } | Pending::Probe { .. }
        )
    }
}

/// A COPY FROM STDIN in progress. While it lasts the client may send only COPY data, CopyDone or
/// CopyFail, Flush, and Sync before its data or after its end: a Sync amid the data is read by
/// the server either in copy mode (ignored) or after an error (answered), and only the server
/// knows which, so the replies after it could not be matched to their statements. Syncs before
/// the data (libpq sends one after Execute) are held back for the same reason: the server may
/// fail the COPY even after CopyInResponse. They are dropped once the data starts (the server,
/// in copy mode, would ignore them) and sent if an error ends the COPY first.
#[derive(Debug)]
pub(super) struct CopyIn {
    /// The message that started it (a Query, or the Execute of its portal).
    pub(super) seq: u64,
    /// The client has sent data (CopyData) / ended it (CopyDone or CopyFail).
    pub(super) data: bool,
    pub(super) ended: bool,
    /// The server has answered CopyInResponse: it ignores Sync until the data ends.
    pub(super) started: bool,
    /// Syncs sent before the data, held back.
    pub(super) held_syncs: usize,
}

impl CopyIn {
    pub(super) fn new(seq: u64) -> Self {
        CopyIn {
            seq,
            data: false,
            ended: false,
            started: false,
            held_syncs: 0,
        }
    }
}

/// COPY TO STDOUT data being masked.
pub(super) struct CopyOutState {
    pub(super) format: CopyFormat,
    pub(super) plan: Arc<Vec<ColAction>>,
    pub(super) header: bool,
}
