//! One message's verdict: analysis plus decision for every statement, shared by the proxy,
//! `unscharf explain` and `unscharf test` so they can never disagree.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::analyze::facts::{Analysis, Kind, StatementFacts, TxControl};
use crate::analyze::{AnalyzeError, MAX_LOOKUP_VALUES};
use crate::catalog::Catalog;
use crate::policy::decide::{decide, widen, wider, ColAction, DecideCtx, Plan};
use crate::policy::{PolicySet, Purpose, Reason, Refusal};

/// Statements and cursors the session has prepared or declared, by name.
pub trait Registry {
    fn prepared(&self, name: &str) -> Option<Arc<StatementFacts>>;
    fn portal(&self, name: &str) -> Option<Arc<StatementFacts>>;
}

/// A registry that knows nothing (offline tools).
pub struct NoRegistry;

impl Registry for NoRegistry {
    fn prepared(&self, _: &str) -> Option<Arc<StatementFacts>> {
        None
    }
    fn portal(&self, _: &str) -> Option<Arc<StatementFacts>> {
        None
    }
}

/// A name as SQL quotes it, so that the audit trail's scrubbing sees where it ends.
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The analyzer's failure as the rule it breaks.
pub fn refusal_for(e: &AnalyzeError) -> Refusal {
    let reason = match e {
        AnalyzeError::Lex(_) | AnalyzeError::Parse(_) | AnalyzeError::Differential(_) => Reason::Unparsable,
        AnalyzeError::Unsupported(_) | AnalyzeError::Ambiguous(_) => Reason::UnsupportedStatement,
        AnalyzeError::UnknownRelation(_) | AnalyzeError::UnknownColumn(_) => Reason::UnknownRelation,
        AnalyzeError::UnknownFunction(_) => Reason::ForbiddenFunction,
        AnalyzeError::Setting(_) => Reason::ForbiddenSetting,
    };
    Refusal::new(reason, e.to_string())
}

/// Context for judging statements of one session.
pub struct JudgeCtx<'a> {
    pub policy: &'a PolicySet,
    pub purpose: &'a Purpose,
    pub catalog: &'a Catalog,
    pub today: NaiveDate,
    pub read_campaigns: &'a BTreeSet<String>,
    /// The search_path the DBA set for the session's role, if the client did not choose its own.
    pub dba_path: Option<&'a [String]>,
    /// Why the session's settings a filter computes with may differ from the server's, if they may.
    pub settings_moved: Option<&'a crate::policy::decide::SettingsMove>,
    /// Why the session's search_path may differ from the one the DBA set for the login, if it may.
    pub path_moved: Option<&'a str>,
}

/// An allowed statement: its plan, and for PREPARE/DECLARE the facts to remember.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// Shared: portals and pending results keep it, and a session may reuse it for the next Bind.
    pub plan: Arc<Plan>,
    pub facts: Arc<StatementFacts>,
}

/// Judges one analyzed statement, resolving EXECUTE and FETCH through the registry.
pub fn judge_statement(f: &Arc<StatementFacts>, cx: &JudgeCtx<'_>, reg: &dyn Registry) -> Result<Allowed, Refusal> {
    // A statement that changes such settings itself (`set_config('TimeZone', …)` beside the
    // read) may run the change before the filter.
    let own_change = change_move(f, cx.catalog, "this statement changes");
    let own_path = path_change_text(f, cx.catalog).map(|c| format!("this statement changes ({c})"));
    let dcx = DecideCtx {
        policy: cx.policy,
        purpose: cx.purpose,
        catalog: cx.catalog,
        today: cx.today,
        read_campaigns: cx.read_campaigns,
        dba_path: cx.dba_path,
        settings_moved: wider(cx.settings_moved, own_change.as_ref()),
        path_moved: cx.path_moved.or(own_path.as_deref()),
    };
    let own = decide(f, &dcx)?;
    // MOVE returns no row but counts them: judged as the cursor's statement is at FETCH, its
    // result discarded (round 166 N1: a MOVE after SET LOCAL counted the rows a filter hid).
    if let Kind::Move { name } = &f.kind {
        if let Some(cursor) = reg.portal(name) {
            decide(&cursor, &dcx)?;
        }
    }
    let inner = match &f.kind {
        Kind::Execute { name } => Some(reg.prepared(name).ok_or_else(|| {
            Refusal::new(
                Reason::UnsupportedStatement,
                format!("prepared statement {} is not known to unscharf", quoted(name)),
            )
        })?),
        Kind::Fetch { name } => Some(reg.portal(name).ok_or_else(|| {
            Refusal::new(
                Reason::UnsupportedStatement,
                format!("cursor {} is not known to unscharf", quoted(name)),
            )
        })?),
        _ => None,
    };
    match inner {
        None => Ok(Allowed {
            plan: Arc::new(own),
            facts: f.clone(),
        }),
        Some(inner) if matches!(inner.kind, Kind::Execute { .. } | Kind::Fetch { .. }) => Err(Refusal::new(
            Reason::UnsupportedStatement,
            "EXECUTE or FETCH of a statement or portal that itself runs EXECUTE or FETCH: Postgres looks those names up only when it runs, so unscharf cannot know what it would return".to_owned(),
        )),
        Some(inner) if matches!(f.kind, Kind::Execute { .. }) && !same_paths(&inner, &f.paths) => {
            Err(path_changed(&inner))
        }
        Some(inner) => {
            // EXECUTE and FETCH are judged by the statement they run, under today's policy.
            let inner_change = change_move(&inner, cx.catalog, "the prepared statement changes");
            let inner_path = path_change_text(&inner, cx.catalog).map(|c| format!("the prepared statement changes ({c})"));
            let dcx = DecideCtx {
                settings_moved: wider(dcx.settings_moved, inner_change.as_ref()),
                path_moved: dcx.path_moved.or(inner_path.as_deref()),
                ..dcx
            };
            let mut plan = decide(&inner, &dcx)?;
            if matches!(f.kind, Kind::Execute { .. }) {
                check_array_lookups(&plan, |n| f.execute_arrays.get(n.wrapping_sub(1)).copied().flatten())?;
            }
            plan.campaigns.extend(own.campaigns);
            plan.reads.extend(own.reads);
            Ok(Allowed {
                plan: Arc::new(plan),
                facts: inner,
            })
        }
    }
}

/// Every change a statement makes to settings that may change what a filter computes, as
/// `setting_change` gives them, for the session's record of its settings: one stands for the
/// statement only in a refusal's reason (round 236 BU1: `set_config('TimeZone', …)` beside
/// `set_config('bytea_output', 'escape', …)` recorded the TimeZone alone, which the server reports
/// back unchanged, and a `first(12)` scan showed 12 raw bytes).
pub fn setting_changes(f: &StatementFacts, catalog: &crate::catalog::Catalog) -> Vec<(String, &'static str)> {
    let moves = |name: &str| crate::policy::decide::moves_values(name, |p| catalog.setting_prefixes.contains(p));
    let mut all: Vec<(String, &'static str)> = f
        .settings
        .iter()
        .filter(|s| moves(&s.name))
        .map(|s| (s.name.clone(), s.via))
        .collect();
    if calls_setter(f, catalog) {
        all.push(("?".to_owned(), SETTER_CALL));
    }
    all
}

/// The change a statement makes to a setting that may change what a filter computes (see
/// policy::decide::clock) that says the most, as (setting, how): a SET, RESET or set_config, or a
/// call of a DBA's function that may change any (`?`, round 164 F7).
pub fn setting_change(f: &StatementFacts, catalog: &crate::catalog::Catalog) -> Option<(String, &'static str)> {
    // extra_float_digits last: it moves the least (see policy::decide::Moved), so it must not
    // stand for a statement that also sets another (`set_config` of both in one select list).
    let rank = |name: &str| match name {
        crate::policy::decide::FLOAT_DIGITS => 2,
        "?" => 1,
        _ => 0,
    };
    setting_changes(f, catalog)
        .into_iter()
        .min_by_key(|(name, _)| rank(name))
}

/// How a call of a DBA's function that may change settings is named in a refusal, before the
/// setting's label (`?`, which `setting_label` words): which setting its code does not say.
const SETTER_CALL: &str = "a call of a function of the DBA's that may change";

/// Whether the statement runs a function of the DBA's that may change any setting: called by
/// name, or behind a relation: a trigger, a column default, a view (round 227 BL1), or the
/// triggers of what those write or a foreign key cascades into (round 228 BM1).
fn calls_setter(f: &StatementFacts, catalog: &crate::catalog::Catalog) -> bool {
    f.runs_function(catalog, |schema, name| {
        catalog
            .setting_functions
            .contains(&crate::policy::QName::new(schema, name))
    }) || f.writes_into(catalog, &catalog.setting_tables)
}

/// Whether running the statement may change a setting the server reports only with its next
/// ReadyForQuery (standard_conforming_strings, client_encoding): it runs code of the DBA's, which
/// unscharf reads only as text, or is anything but a plain read or write. A pipelined statement
/// after one that may is read by the server under settings unscharf has not seen yet (round 221
/// BF1); after one that cannot, nothing changes (round 221 BF2: every pipelined text with a
/// backslash or an umlaut was refused).
pub fn may_move_settings(f: &StatementFacts, catalog: &crate::catalog::Catalog) -> bool {
    f.runs_dba_code
        || !f.settings.is_empty()
        || f.writes_into(catalog, &catalog.setting_tables)
        || !matches!(
            f.kind,
            Kind::Empty | Kind::Query | Kind::Insert | Kind::Update | Kind::Delete | Kind::Merge
        )
}

/// A statement's widest setting change as a move of the session's settings, worded as `words
/// (SET bytea_output)`.
pub fn change_move(
    f: &StatementFacts,
    catalog: &crate::catalog::Catalog,
    words: &str,
) -> Option<crate::policy::decide::SettingsMove> {
    setting_change(f, catalog).map(|(name, via)| {
        let label = crate::policy::decide::setting_label(&name);
        crate::policy::decide::SettingsMove::of_setting(&name, format!("{words} ({via} {label})"))
    })
}

/// Whether a statement may change search_path (a SET, RESET or set_config of it, or a call of a
/// DBA's function that changes settings), as text for a refusal.
pub fn path_change_text(f: &StatementFacts, catalog: &crate::catalog::Catalog) -> Option<String> {
    if let Some(s) = f.settings.iter().find(|s| s.name == "search_path" || s.name == "all") {
        return Some(format!("{} {}", s.via, s.name));
    }
    // Whatever else it sets (round 234: `set_config` of another setting beside the call hid it).
    calls_setter(f, catalog).then(|| format!("{SETTER_CALL} {}", crate::policy::decide::setting_label("?")))
}

/// Whether a statement runs code of the DBA's that may close, open or fetch from cursors by name
/// (see `Catalog::cursor_functions`): what the session's cursors and portals run is unknown after it.
pub fn runs_cursor_code(f: &StatementFacts, catalog: &crate::catalog::Catalog) -> bool {
    let functions = &catalog.cursor_functions;
    !functions.is_empty()
        && f.runs_function(catalog, |schema, name| {
            functions.contains(&crate::policy::QName::new(schema, name))
        })
}

/// The statement an EXECUTE, FETCH or MOVE runs, when the registry knows the name.
pub fn runs_by_name(kind: &Kind, reg: &dyn Registry) -> Option<Arc<StatementFacts>> {
    match kind {
        Kind::Execute { name } => reg.prepared(name),
        Kind::Fetch { name } | Kind::Move { name } => reg.portal(name),
        _ => None,
    }
}

/// Whether a prepared statement still means what it was analyzed as, with search_path now `paths`.
pub fn same_paths(prepared: &StatementFacts, paths: &[Vec<String>]) -> bool {
    !prepared.uses_search_path || prepared.paths.as_slice() == paths
}

/// The refusal for a prepared statement whose names search_path may now resolve differently.
pub fn path_changed(prepared: &StatementFacts) -> Refusal {
    Refusal::new(
        Reason::UnsupportedStatement,
        format!(
            "search_path has changed since `{}` was prepared, and Postgres would resolve its names again; prepare it again",
            prepared.statement
        ),
    )
}

/// `col = ANY($n)` on a protected column: with the arrays bound (their lengths from `len_of`, None
/// when one is not a readable array), the column may be tested against MAX_LOOKUP_VALUES values in all.
pub fn check_array_lookups(plan: &Plan, len_of: impl Fn(usize) -> Option<usize>) -> Result<(), Refusal> {
    for b in &plan.bounded_params {
        let mut total = b.fixed;
        for &n in &b.params {
            match len_of(n) {
                Some(len) => total += len,
                None => {
                    return Err(Refusal::new(
                        Reason::ProtectedColumn,
                        format!(
                            "column {} is looked up in ${n}, which is not a one-dimensional array",
                            b.column
                        ),
                    ))
                }
            }
        }
        if total > MAX_LOOKUP_VALUES {
            return Err(Refusal::new(
                Reason::ProtectedColumn,
                format!(
                    "column {} is looked up against {total} values in one statement; a lookup may test at most {MAX_LOOKUP_VALUES}",
                    b.column
                ),
            ));
        }
    }
    Ok(())
}

/// Judges every statement of a message: one refusal refuses the whole message. A statement
/// prepared or a cursor declared earlier in the same message is known to the ones after it.
pub fn judge_all(a: &Analysis, cx: &JudgeCtx<'_>, reg: &dyn Registry) -> Result<Vec<Allowed>, Refusal> {
    let mut earlier = Earlier {
        base: reg,
        names: Vec::new(),
        portals_ended: false,
    };
    let mut all = Vec::with_capacity(a.statements.len());
    // Rule 4 within the message: what an earlier statement reads counts for the later ones (a
    // value can cross in a setting, say, from a read to a write).
    let mut read = cx.read_campaigns.clone();
    // The analyzer follows SET search_path through the message, but not a change made by what an
    // EXECUTE, FETCH or MOVE runs: names after one could resolve to another table than analyzed.
    let mut path_moved = false;
    // What the session's settings are after a SET earlier in the message, the server
    // reports only once the message has run.
    let mut settings_set: Option<crate::policy::decide::SettingsMove> = None;
    let mut path_set: Option<String> = None;
    for f in &a.statements {
        if path_moved && (f.uses_search_path || matches!(f.kind, Kind::Execute { .. })) {
            return Err(Refusal::new(
                Reason::UnsupportedStatement,
                "an EXECUTE, FETCH or MOVE earlier in this message changes search_path, so unscharf cannot know what the names after it mean; send the rest as a separate message".to_owned(),
            ));
        }
        let now = JudgeCtx {
            read_campaigns: &read,
            settings_moved: wider(cx.settings_moved, settings_set.as_ref()),
            path_moved: cx.path_moved.or(path_set.as_deref()),
            ..*cx
        };
        let allowed = judge_statement(f, &now, &earlier)?;
        // What an EXECUTE or FETCH runs counts as the statement (round 164 F1).
        let words = "an earlier statement of this message changes";
        for m in [
            change_move(f, cx.catalog, words),
            change_move(&allowed.facts, cx.catalog, words),
        ]
        .into_iter()
        .flatten()
        {
            widen(&mut settings_set, m);
        }
        if let Some(c) = path_change_text(f, cx.catalog).or_else(|| path_change_text(&allowed.facts, cx.catalog)) {
            path_set = Some(format!("an earlier statement of this message changes ({c})"));
        }
        path_moved |= runs_by_name(&f.kind, &earlier).is_some_and(|r| r.path_change.is_some());
        read.extend(allowed.plan.reads.iter().cloned());
        // Code that may close or open cursors by name ends what the message knew of them.
        let ends_cursors = runs_cursor_code(f, cx.catalog) || runs_cursor_code(&allowed.facts, cx.catalog);
        all.push(allowed);
        if ends_cursors {
            earlier.names.retain(|(prepared, _, _)| *prepared);
            earlier.portals_ended = true;
        }
        match &f.kind {
            Kind::Prepare { name } => earlier.names.push((true, name.clone(), Some(Arc::new(f.prepared())))),
            Kind::Declare { name, .. } => earlier.names.push((false, name.clone(), Some(f.clone()))),
            Kind::ClosePortal { name: Some(name) } => earlier.names.push((false, name.clone(), None)),
            // The cursors before it end with the transaction (round 181 F1); CLOSE ALL too.
            Kind::ClosePortal { name: None }
            | Kind::Transaction(TxControl::Commit | TxControl::Rollback | TxControl::RollbackTo(_)) => {
                earlier.names.retain(|(prepared, _, _)| *prepared);
                earlier.portals_ended = true;
            }
            _ => {}
        }
    }
    Ok(all)
}

/// The session's registry plus what the message itself prepared (true) or declared (false), or
/// closed (None).
struct Earlier<'a> {
    base: &'a dyn Registry,
    names: Vec<(bool, String, Option<Arc<StatementFacts>>)>,
    /// A statement of the message may have ended the session's cursors (COMMIT, ROLLBACK,
    /// ROLLBACK TO, CLOSE ALL): a name from before it is not certain any more.
    portals_ended: bool,
}

impl Earlier<'_> {
    fn find(&self, prepared: bool, name: &str) -> Option<&Option<Arc<StatementFacts>>> {
        self.names
            .iter()
            .rev()
            .find(|(p, n, _)| *p == prepared && n == name)
            .map(|(_, _, f)| f)
    }
}

impl Registry for Earlier<'_> {
    fn prepared(&self, name: &str) -> Option<Arc<StatementFacts>> {
        match self.find(true, name) {
            Some(f) => f.clone(),
            None => self.base.prepared(name),
        }
    }
    fn portal(&self, name: &str) -> Option<Arc<StatementFacts>> {
        match self.find(false, name) {
            Some(f) => f.clone(),
            None if self.portals_ended => None,
            None => self.base.portal(name),
        }
    }
}

/// A compact description of a verdict, as `unscharf test` and the decision tables compare them:
/// `allowed`, `masked: a, b`, `dropped: c`, `masked: a; dropped: c`, or `refused: reason`.
pub fn summary(verdict: &Result<Vec<Allowed>, Refusal>) -> String {
    match verdict {
        Err(r) => format!("refused: {}", r.reason),
        Ok(all) => {
            let mut masked = Vec::new();
            let mut dropped = Vec::new();
            for a in all {
                let names: Vec<String> = a
                    .facts
                    .outputs
                    .known()
                    .map(|o| o.iter().map(|o| o.name.clone()).collect())
                    .unwrap_or_default();
                for (i, c) in a.plan.columns.iter().flatten().enumerate() {
                    let name = names.get(i).cloned().unwrap_or_else(|| format!("#{}", i + 1));
                    match c {
                        ColAction::Mask(_) => masked.push(name),
                        ColAction::Drop => dropped.push(name),
                        ColAction::Pass => {}
                    }
                }
            }
            match (masked.is_empty(), dropped.is_empty()) {
                (true, true) => "allowed".into(),
                (false, true) => format!("masked: {}", masked.join(", ")),
                (true, false) => format!("dropped: {}", dropped.join(", ")),
                (false, false) => format!("masked: {}; dropped: {}", masked.join(", "), dropped.join(", ")),
            }
        }
    }
}
