//! What a session remembers of its latest statements: the analysis of an exact text and the verdict
//! on an analyzed statement, so that a statement parsed, bound and executed again and again is
//! lexed once and decided once, not at every message. Keys hold everything either depends on.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::analyze::facts::{Analysis, Kind, StatementFacts};
use crate::judge::Allowed;

/// Entries of each kind; a CRM screen runs a handful of statements over and over.
const ENTRIES: usize = 8;
/// Longer texts are not remembered, so that the memo stays small beside the session.
const MAX_TEXT: usize = 4096;

/// What an analysis depends on besides the text (the shared cache's `Context`, in the clear).
#[derive(PartialEq)]
pub struct AnalysisKey<'a> {
    pub catalog: u64,
    pub paths: &'a [Vec<String>],
    pub revert_paths: &'a [Vec<String>],
}

struct AnalysisEntry {
    sql: String,
    catalog: u64,
    paths: Vec<Vec<String>>,
    revert_paths: Vec<Vec<String>>,
    normalized: String,
    analysis: Arc<Analysis>,
}

/// What a verdict depends on besides the statement: the policy load, the purpose in it, the
/// catalog, the day (rule 5) and the campaigns read so far (rule 4, which only grow).
#[derive(Clone, Copy, PartialEq)]
pub struct VerdictKey {
    pub policy: u64,
    /// The purpose's address in that load.
    pub purpose: usize,
    pub catalog: u64,
    pub today: NaiveDate,
    pub reads: usize,
    /// How far the session's settings a filter or a printed mask depends on may differ from the
    /// server's: a verdict of one level says nothing of another (round 234: a plan made while only
    /// a planner lever had moved must not serve once bytea_output has).
    pub settings_moved: crate::policy::decide::Moved,
    /// Whether search_path may differ from the DBA's for the login.
    pub path_moved: bool,
}

#[derive(Default)]
struct Entries {
    analyses: Vec<AnalysisEntry>,
    next_analysis: usize,
    verdicts: Vec<(Arc<StatementFacts>, VerdictKey, Allowed)>,
    next_verdict: usize,
}

#[derive(Default)]
pub struct Memo(RefCell<Entries>);

fn slot<T>(v: &mut Vec<T>, next: &mut usize, item: T) {
    if v.len() < ENTRIES {
        v.push(item);
    } else {
        v[*next] = item;
        *next = (*next + 1) % ENTRIES;
    }
}

impl Memo {
    pub fn analysis(&self, sql: &str, key: &AnalysisKey<'_>) -> Option<(String, Arc<Analysis>)> {
        let e = self.0.borrow();
        let hit = e.analyses.iter().find(|a| {
            a.sql == sql && a.catalog == key.catalog && a.paths == key.paths && a.revert_paths == key.revert_paths
        })?;
        Some((hit.normalized.clone(), hit.analysis.clone()))
    }

    pub fn remember_analysis(&self, sql: &str, key: &AnalysisKey<'_>, normalized: &str, analysis: &Arc<Analysis>) {
        if sql.len() > MAX_TEXT {
            return;
        }
        let mut e = self.0.borrow_mut();
        let Entries {
            analyses,
            next_analysis,
            ..
        } = &mut *e;
        let entry = AnalysisEntry {
            sql: sql.to_owned(),
            catalog: key.catalog,
            paths: key.paths.to_vec(),
            revert_paths: key.revert_paths.to_vec(),
            normalized: normalized.to_owned(),
            analysis: analysis.clone(),
        };
        slot(analyses, next_analysis, entry);
    }

    /// The verdict on `facts` under `key`, if it was allowed before. EXECUTE and FETCH are never
    /// remembered: what they run is looked up in the registry, which changes under them.
    pub fn verdict(&self, facts: &Arc<StatementFacts>, key: &VerdictKey) -> Option<Allowed> {
        let e = self.0.borrow();
        e.verdicts
            .iter()
            .find(|(f, k, _)| Arc::ptr_eq(f, facts) && k == key)
            .map(|(_, _, a)| a.clone())
    }

    pub fn remember_verdict(&self, facts: &Arc<StatementFacts>, key: VerdictKey, allowed: &Allowed) {
        if matches!(facts.kind, Kind::Execute { .. } | Kind::Fetch { .. }) {
            return;
        }
        let mut e = self.0.borrow_mut();
        let Entries {
            verdicts, next_verdict, ..
        } = &mut *e;
        slot(verdicts, next_verdict, (facts.clone(), key, allowed.clone()));
    }
}
