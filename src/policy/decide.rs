//! The decision: analyzed facts + purpose → a result plan (pass, mask, drop per column) or a refusal.
//! Pure: no I/O, no clock (the caller passes today's date).

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::{ColumnRule, PolicySet, Purpose, QName, Reason, Refusal, WriteKind};
use crate::analyze::facts::{Clause, ColRef, Kind, Outputs, StatementFacts};
use crate::catalog::{Catalog, RelId};
use crate::mask::functions::{Mask, PseudonymKey};

mod clock;
mod dba;
mod search_path;
pub use search_path::foreign_path;
mod forbidden;
mod guard;
mod outputs;
mod stored;

pub use clock::{
    clock_read_in, is_planner_lever, level, moves_values, same_as_default, setting_label, widen, wider, Moved,
    SettingsMove, DAY_ORDER_ONLY, FLOAT_DIGITS, LEVERS_ONLY, REPORTED_SETTINGS,
};
pub use forbidden::{
    forbidden_calls_in, is_forbidden_function, is_forbidden_setting, setting_read_in, FORBIDDEN_FUNCTIONS,
    FORBIDDEN_SETTINGS, LEAKY_CATALOGS, TYPE_INPUTS,
};
use forbidden::{CATALOG_ESTIMATES, COUNTER_TYPE_OIDS};
pub use guard::Guard;

/// What to do with one result column.
#[derive(Debug, Clone)]
pub enum ColAction {
    Pass,
    Mask(Box<MaskAction>),
    Drop,
}

#[derive(Debug, Clone)]
pub struct MaskAction {
    pub mask: Mask,
    pub key: Option<std::sync::Arc<PseudonymKey>>,
    /// The masked column, for explain output (`Catalog::column_name`).
    pub column: ColRef,
}

impl ColAction {
    pub fn is_pass(&self) -> bool {
        matches!(self, ColAction::Pass)
    }
}

/// How the results of an allowed statement are rewritten.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Per result column; None when every column passes (or the width is unknown and nothing is protected).
    pub columns: Option<Vec<ColAction>>,
    /// Campaigns the statement touches.
    pub campaigns: Vec<String>,
    /// Campaigns it reads (the session remembers them for rule 4).
    pub reads: Vec<String>,
    /// Protected columns looked up in bound arrays (`col = ANY($n)`): the values they are tested
    /// against in all may be at most MAX_LOOKUP_VALUES, checked when the arrays are bound.
    pub bounded_params: Vec<BoundedLookup>,
    /// Protected columns the statement looks up (`lookup: true`): such statements count against
    /// the login's `limits.lookups_per_minute`.
    pub lookups: Vec<String>,
}

/// One protected column's lookups that depend on bound arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundedLookup {
    pub column: String,
    /// Values known from the statement text (literals and scalar parameters).
    pub fixed: usize,
    /// The parameters whose array elements count too.
    pub params: Vec<usize>,
}

impl Plan {
    pub fn masked(&self) -> bool {
        self.columns.iter().flatten().any(|c| matches!(c, ColAction::Mask(_)))
    }

    pub fn dropped(&self) -> bool {
        self.columns.iter().flatten().any(|c| matches!(c, ColAction::Drop))
    }
}

/// Everything decide() needs besides the facts.
pub struct DecideCtx<'a> {
    pub policy: &'a PolicySet,
    pub purpose: &'a Purpose,
    pub catalog: &'a Catalog,
    pub today: NaiveDate,
    /// Campaigns the session has read so far.
    pub read_campaigns: &'a BTreeSet<String>,
    /// The search_path the DBA set for the session's role, if the client did not choose its own:
    /// any other path in force is the agent's choice (see `search_path::steered_code`).
    pub dba_path: Option<&'a [String]>,
    /// Why the session's settings a filter computes with may differ from the server's (see `clock`), if they may.
    pub settings_moved: Option<&'a SettingsMove>,
    /// Why the session's search_path may differ from the one the DBA set for the login, if it may:
    /// filters that print or look up names by it (`Catalog::path_filters`) then compute otherwise.
    pub path_moved: Option<&'a str>,
}

/// Where a relation belongs.
#[derive(Clone, Copy)]
enum Class<'a> {
    System,
    Shared(&'a super::TableGrant),
    Campaign(usize, Option<&'a super::TableGrant>),
    Nowhere,
}

impl DecideCtx<'_> {
    fn class(&self, rel: RelId) -> Class<'_> {
        let r = self.catalog.rel(rel);
        if r.is_system() {
            return Class::System;
        }
        if let Some(g) = self.policy.shared.get(&r.name) {
            return Class::Shared(g);
        }
        match self.policy.campaign_index(&r.name) {
            Some(c) => Class::Campaign(c, self.purpose.tables.get(&r.name)),
            None => Class::Nowhere,
        }
    }

    fn column_name(&self, c: ColRef) -> String {
        let r = self.catalog.rel(c.rel);
        format!(
            "{}.{}",
            r.name,
            r.columns.get(c.col as usize).map(|c| c.name.as_str()).unwrap_or("?")
        )
    }

    /// The rule of a column under this purpose; tables outside the purpose were refused before.
    fn rule<'b>(&self, memo: &Memo<'b>, c: ColRef) -> &'b ColumnRule {
        static ALLOW: ColumnRule = ColumnRule::Allow;
        static DROP: ColumnRule = ColumnRule::Drop;
        static NULLED: ColumnRule = ColumnRule::Mask {
            mask: Mask::Null,
            lookup: false,
        };
        match memo.class(c.rel) {
            Class::System => {
                let r = self.catalog.rel(c.rel);
                let col = r.columns.get(c.col as usize).map(|c| c.name.as_str()).unwrap_or("");
                if CATALOG_ESTIMATES
                    .iter()
                    .any(|&(rel, name, _, _)| rel == r.name.name && name == col && r.name.schema == "pg_catalog")
                {
                    &NULLED
                } else {
                    &ALLOW
                }
            }
            Class::Shared(g) | Class::Campaign(_, Some(g)) => {
                let name = self
                    .catalog
                    .rel(c.rel)
                    .columns
                    .get(c.col as usize)
                    .map(|c| c.name.as_str())
                    .unwrap_or("");
                g.rule(name)
            }
            Class::Campaign(_, None) | Class::Nowhere => &DROP,
        }
    }

    /// Rule 7 for a function that is not forbidden: a built-in one, or one the purpose lists.
    fn may_call(&self, func: &QName) -> bool {
        let builtin =
            crate::catalog::is_system_schema(&func.schema) && !self.catalog.dba_system_functions.contains(func);
        builtin || self.purpose.functions.contains(func)
    }

    fn purpose_name(&self) -> &str {
        &self.purpose.name
    }
}

/// The class of each relation of one statement, looked up once.
#[derive(Clone)]
struct Memo<'a> {
    rels: Vec<(RelId, Class<'a>)>,
}

impl<'a> Memo<'a> {
    fn new(cx: &'a DecideCtx<'_>, rels: &[RelId]) -> Self {
        Memo {
            rels: rels.iter().map(|&r| (r, cx.class(r))).collect(),
        }
    }

    fn class(&self, rel: RelId) -> Class<'a> {
        self.rels
            .iter()
            .find(|(r, _)| *r == rel)
            .map(|(_, c)| *c)
            .unwrap_or(Class::Nowhere)
    }
}

fn refuse(reason: Reason, detail: String) -> Result<Plan, Refusal> {
    Err(Refusal::new(reason, detail))
}

/// Rule 3's refusal of a table of campaign `c` the purpose is not granted.
fn not_granted(cx: &DecideCtx<'_>, rel: crate::catalog::RelId, c: usize) -> Result<Plan, Refusal> {
    refuse(
        Reason::OutsidePurpose,
        format!(
            "table {} (campaign {}) is not granted to purpose {}",
            cx.catalog.rel(rel).name,
            cx.policy.campaigns[c].name,
            cx.purpose_name()
        ),
    )
}

/// Judges one statement (rules 1–9 of POLICY.md) and plans its result rewriting.
pub fn decide(f: &StatementFacts, cx: &DecideCtx<'_>) -> Result<Plan, Refusal> {
    // Whole rows and uses name only relations of this statement; anything else classifies as Nowhere.
    let memo = Memo::new(cx, &f.relations);
    decide_rules(f, cx, &memo).map_err(|mut r| {
        // The audit trail groups refusals by campaign: name every campaign the statement touched,
        // and those behind the relations it names (views' tables, children, what row-level
        // security policies read: round 208 AS1), besides any the rule named.
        let mut names: Vec<String> = std::mem::take(&mut r.campaigns);
        for &rel in &f.relations {
            let oid = cx.catalog.rel(rel).oid;
            let policy_reads = cx
                .catalog
                .policy_columns
                .get(&oid)
                .into_iter()
                .flatten()
                .map(|(_, o, _)| *o);
            let reached = std::iter::once(oid).chain(cx.catalog.behind(oid)).chain(policy_reads);
            for id in reached.filter_map(|o| cx.catalog.by_oid(o)) {
                if let Class::Campaign(c, _) = cx.class(id) {
                    names.push(cx.policy.campaigns[c].name.clone());
                }
            }
        }
        names.sort();
        names.dedup();
        r.campaigns = names;
        r
    })
}

fn decide_rules(f: &StatementFacts, cx: &DecideCtx<'_>, memo: &Memo<'_>) -> Result<Plan, Refusal> {
    let purpose = cx.purpose_name();
    dba::guarded_types(f, cx)?;
    dba::implicit_code(f, cx)?;
    dba::descendants(f, cx)?;
    dba::write_rules(f, cx)?;
    // Written relations and the tables behind written views, for the three checks that need them.
    let written = dba::written_relations(f, cx);
    dba::default_sequences(&written, cx)?;
    dba::policy_columns(f, cx)?;
    dba::hidden_calls(f, cx)?;
    dba::session_filters(f, cx)?;
    search_path::steered_code(f, cx)?;
    // Rule 9: settings.
    for s in &f.settings {
        if is_forbidden_setting(&s.name) || s.name.starts_with("unscharf.") {
            if s.via == "RESET" && !s.name.starts_with("unscharf.") {
                continue;
            }
            return refuse(
                Reason::ForbiddenSetting,
                format!("{} of `{}` is not allowed through unscharf", s.via, s.name),
            );
        }
    }
    // Rule 3: relations must be catalogs (not the leaky ones), shared, or granted.
    let mut campaigns: Vec<usize> = Vec::new();
    for &rel in &f.relations {
        let r = cx.catalog.rel(rel);
        if LEAKY_CATALOGS.contains(&r.name.name.as_str()) {
            return refuse(
                Reason::CatalogLeak,
                format!("{} exposes row values or other sessions' queries", r.name),
            );
        }
        if let Class::Campaign(c, _) = memo.class(rel) {
            if !campaigns.contains(&c) {
                campaigns.push(c);
            }
        }
    }
    // Catalog columns that hold transaction ids (datfrozenxid, relminmxid, …): age() of them reads
    // the server-wide counter, as the forbidden functions would.
    for c in f.columns_read() {
        let r = cx.catalog.rel(c.rel);
        if let Some(col) = r
            .columns
            .get(c.col as usize)
            .filter(|col| COUNTER_TYPE_OIDS.contains(&col.type_oid))
        {
            return refuse(
                Reason::CatalogLeak,
                format!(
                    "{}.{} is a transaction id, a counter every session moves",
                    r.name, col.name
                ),
            );
        }
    }
    // Rules 4 and 5 reach what the DBA's code the statement runs writes into, listed or not (round
    // 247 CF1: a listed trigger function on the newspaper's subscriptions wrote the lead's phone
    // into the utility's callbacks, after its contract had ended too).
    let by_code = stored::code_writes(f, cx);
    let code_written: Vec<(usize, crate::catalog::RelId)> = by_code
        .iter()
        .filter_map(|&oid| cx.catalog.by_oid(oid))
        .filter_map(|id| match cx.class(id) {
            Class::Campaign(c, _) => Some((c, id)),
            _ => None,
        })
        .collect();
    for &(c, id) in &code_written {
        // Rule 3 as well: a campaign the purpose is granted nothing in is outside it, whatever
        // wrote there (round 250 CI1: a listed function's unlisted helper wrote into the
        // newspaper's callbacks for the billing hotline, from a session that had read nothing).
        let granted_in = |c: usize| cx.purpose.tables.keys().any(|q| cx.policy.campaign_index(q) == Some(c));
        if !granted_in(c) {
            return refuse(
                Reason::OutsidePurpose,
                format!(
                    "code of the DBA's this statement runs (a trigger, default or function) writes into {} of campaign {}, in which purpose {purpose} is granted nothing",
                    cx.catalog.rel(id).name,
                    cx.policy.campaigns[c].name
                ),
            );
        }
        if let Some(&other) = campaigns.iter().find(|&&o| o != c) {
            return refuse(
                Reason::CrossCampaign,
                format!(
                    "code of the DBA's this statement runs (a trigger, default or function) writes into {} of campaign {}, and the statement touches campaign {} (purpose {purpose})",
                    cx.catalog.rel(id).name,
                    cx.policy.campaigns[c].name,
                    cx.policy.campaigns[other].name
                ),
            );
        }
    }
    for &(c, _) in &code_written {
        if !campaigns.contains(&c) {
            campaigns.push(c);
        }
    }
    // Rule 4: one campaign per statement, and no writes into another campaign than the session has read.
    if campaigns.len() > 1 {
        let names: Vec<&str> = campaigns
            .iter()
            .map(|&c| cx.policy.campaigns[c].name.as_str())
            .collect();
        return refuse(
            Reason::CrossCampaign,
            format!(
                "the statement touches tables of campaigns {} at once (purpose {purpose})",
                names.join(" and ")
            ),
        );
    }
    // A write into a table the purpose is not granted is outside it (rule 3), whatever the session
    // read before (round 241 BZ1: it was recorded as cross_campaign once the session had read).
    for &(rel, _) in &f.writes {
        if let Class::Campaign(c, None) = memo.class(rel) {
            return not_granted(cx, rel, c);
        }
    }
    let written_campaigns = f
        .writes
        .iter()
        .filter_map(|&(rel, _)| match memo.class(rel) {
            Class::Campaign(c, _) => Some(c),
            _ => None,
        })
        .chain(code_written.iter().map(|&(c, _)| c));
    for c in written_campaigns {
        let target = &cx.policy.campaigns[c].name;
        if let Some(other) = cx.read_campaigns.iter().find(|r| *r != target) {
            let mut r = Refusal::new(
                Reason::CrossCampaign,
                format!("this session has read data of campaign {other} and may not write into campaign {target}"),
            );
            // The trail names the campaign read as well as the one written (round 208 AS1).
            r.campaigns.push(other.clone());
            return Err(r);
        }
    }
    // Rule 5: contracts that ended.
    for &c in &campaigns {
        let camp = &cx.policy.campaigns[c];
        if camp.ended(cx.today) {
            let end = camp.contract_ends.map(|d| d.to_string()).unwrap_or_default();
            return refuse(
                Reason::ContractEnded,
                format!(
                    "the contract of campaign {} ended on {end}; its data must not be used",
                    camp.name
                ),
            );
        }
    }
    for &rel in &f.relations {
        let r = cx.catalog.rel(rel);
        match memo.class(rel) {
            Class::Campaign(c, None) => return not_granted(cx, rel, c),
            Class::Nowhere => {
                return refuse(
                    Reason::OutsidePurpose,
                    format!(
                        "table {} belongs to no campaign and is not shared (purpose {purpose})",
                        r.name
                    ),
                )
            }
            _ => {}
        }
    }
    // Rule 7: functions.
    for func in &f.functions {
        if is_forbidden_function(&func.name) {
            // A cast to a counter type and a system column holding one are recorded as `::xid`.
            if func.name.starts_with("::") {
                return refuse(
                    Reason::ForbiddenFunction,
                    format!(
                        "{} is refused: transaction and command ids are counters every session moves, a channel between campaigns",
                        func.written
                    ),
                );
            }
            return refuse(Reason::ForbiddenFunction, format!("function {} is forbidden (it reads files, runs SQL text, reaches other databases or sessions, or leaks through a side channel)", func.name));
        }
        for schema in &func.schemas {
            if !cx.may_call(&QName::new(schema, &func.name)) {
                return refuse(
                    Reason::ForbiddenFunction,
                    format!(
                        "function {schema}.{} is not listed in the functions of purpose {purpose}",
                        func.name
                    ),
                );
            }
        }
    }
    // Rule 8: write grants.
    for &(rel, kind) in &f.writes {
        let r = cx.catalog.rel(rel);
        let granted = match memo.class(rel) {
            Class::Shared(g) | Class::Campaign(_, Some(g)) => g.write.contains(&kind),
            _ => false,
        };
        if !granted {
            return refuse(
                Reason::OutsidePurpose,
                format!(
                    "purpose {purpose} may not {} {} (no `write: [{kind}]` grant)",
                    verb(kind),
                    r.name
                ),
            );
        }
    }
    // Row locks block other sessions' writes of those rows as a write would (round 192 AC1: a
    // read-only purpose's `SELECT … FOR UPDATE` held another campaign's agents in an open
    // transaction, and `SKIP LOCKED` read which rows were locked, a channel between sessions).
    {
        let locked = if f.locks_rows { &f.read_from } else { &f.locks_only };
        for &rel in locked {
            let granted = match memo.class(rel) {
                Class::Shared(g) | Class::Campaign(_, Some(g)) => g.write.contains(&WriteKind::Update),
                _ => false,
            };
            if !granted {
                return refuse(
                    Reason::OutsidePurpose,
                    format!(
                        "purpose {purpose} may not lock rows of {} (FOR UPDATE or FOR SHARE needs a `write: [update]` grant)",
                        cx.catalog.rel(rel).name
                    ),
                );
            }
        }
    }
    // A keyed pseudonym is deterministic: values the purpose writes into such a column and reads
    // back masked would make a dictionary of it (as constants beside it in a UNION would).
    for &c in &f.written_cols {
        if let ColumnRule::Mask { mask, .. } = cx.rule(memo, c) {
            if mask.needs_key() {
                return refuse(
                    Reason::ProtectedColumn,
                    format!(
                        "column {} is pseudonymised for purpose {purpose}; values written into it and read back would reveal its pseudonyms",
                        cx.column_name(c)
                    ),
                );
            }
        }
    }
    dba::unique_keys(f, cx, memo)?;
    stored::row_constraints(f, cx, memo, &written)?;
    stored::row_triggers(f, cx, memo, &written)?;
    stored::write_code_reads(f, cx, by_code)?;
    dba::hidden_rows(f, cx, &written)?;
    // Rule 6: EXPLAIN ANALYZE reports hash, sort and memoize memory measured on the rows it carried,
    // so it tells the length and NULL-ness of each column a select list computes from; any
    // EXPLAIN reports widths from the column statistics, which pg_stats keeps from agents.
    // EXPLAIN ANALYZE counts the pages its scans read (a bitmap scan's `Heap Blocks`, round 136),
    // and how many rows share a page follows the size of every column of them.
    // A plain EXPLAIN's costs and row estimates come from each table's size in pages, read from
    // the file when planned (round 169: one more page when an agent's long notes went in, where
    // relpages, which agents read as NULL, would not have shown it). Rows that row-level
    // security or a view hides count too: dba::hidden_rows refuses EXPLAIN of those.
    if let Kind::Explain { analyze, costs } = f.kind {
        let (what, fix) = match analyze {
            true => (
                "EXPLAIN ANALYZE counts the pages",
                "use EXPLAIN (COSTS OFF) without ANALYZE",
            ),
            false => ("EXPLAIN's costs count the pages", "use EXPLAIN (COSTS OFF)"),
        };
        let reached = f
            .relations
            .iter()
            .flat_map(|&rel| cx.catalog.reached(cx.catalog.rel(rel).oid))
            .filter_map(|oid| cx.catalog.by_oid(oid));
        for rel in reached.filter(|_| analyze || costs) {
            let r = cx.catalog.rel(rel);
            let own = Memo::new(cx, &[rel]);
            if let Some(i) = (0..r.columns.len()).find(|i| !cx.rule(&own, ColRef { rel, col: *i as u16 }).is_allow()) {
                return refuse(
                    Reason::ProtectedColumn,
                    format!(
                        "{what} of {}, and how many rows share a page follows the size of column {}, which is protected for purpose {purpose}; {fix}",
                        r.name,
                        cx.column_name(ColRef { rel, col: i as u16 })
                    ),
                );
            }
        }
    }
    if matches!(f.kind, Kind::Explain { .. }) {
        if let Some(c) = f.selected.iter().find(|c| !cx.rule(memo, **c).is_allow()) {
            return refuse(
                Reason::ProtectedColumn,
                format!(
                    "EXPLAIN reports sizes measured on the rows it carries (widths, and with ANALYZE memory), and column {} is protected for purpose {purpose}; explain the query without it",
                    cx.column_name(*c)
                ),
            );
        }
    }
    // Rule 6: whole-row references to tables with any protected column.
    for (cols, written) in &f.whole_rows {
        if let Some(c) = cols.iter().find(|c| !cx.rule(memo, **c).is_allow()) {
            return refuse(
                Reason::ProtectedColumn,
                format!(
                    "whole-row reference {written} includes column {}, which is protected for purpose {purpose}",
                    cx.column_name(*c)
                ),
            );
        }
    }
    outputs::row_typed_columns(f, cx)?;
    // Rule 6: column uses outside the select list.
    for u in &f.uses {
        // "in GROUP BY", not "in GROUP BY in GROUP BY", when the use is the clause itself.
        let place = || match u.clause.to_string() {
            c if c == u.via => c,
            c => format!("{} in {c}", u.via),
        };
        match cx.rule(memo, u.col) {
            ColumnRule::Allow => {}
            ColumnRule::Mask { lookup: true, .. } if u.clause == Clause::WhereLookup => {}
            ColumnRule::Mask { lookup, .. } => {
                let how = if u.clause == Clause::WhereLookup {
                    " (it has no `lookup: true`)"
                } else if *lookup && u.clause == Clause::Where {
                    // `phone = trim($1)`: the `=` is fine, its other side is not (round 94).
                    "; a lookup compares it with = (or = ANY) to a literal or a parameter, written as is: normalize the value in the application"
                } else {
                    ""
                };
                return refuse(
                    Reason::ProtectedColumn,
                    format!(
                        "column {} is masked for purpose {purpose} and cannot be used in {}{how}",
                        cx.column_name(u.col),
                        place()
                    ),
                );
            }
            ColumnRule::Drop => {
                return refuse(
                    Reason::ProtectedColumn,
                    format!(
                        "column {} is not visible to purpose {purpose} and cannot be used in {}",
                        cx.column_name(u.col),
                        place()
                    ),
                );
            }
        }
    }
    if f.kind == Kind::CreateTableAs {
        return refuse(
            Reason::UnsupportedStatement,
            "CREATE TABLE AS and SELECT INTO create tables (DDL), which unscharf does not forward".to_owned(),
        );
    }
    let columns = outputs::plan_outputs(f, cx, memo)?;
    let names = |cs: &[usize]| {
        cs.iter()
            .map(|&c| cx.policy.campaigns[c].name.clone())
            .collect::<Vec<_>>()
    };
    let read_rels: Vec<usize> = f
        .relations
        .iter()
        .filter(|&&r| !adds_rows_only(f, r))
        .filter_map(|&r| match memo.class(r) {
            Class::Campaign(c, _) => Some(c),
            _ => None,
        })
        .collect();
    let mut reads = names(&read_rels);
    reads.dedup();
    let mut bounded_params: Vec<BoundedLookup> = Vec::new();
    let mut lookups = Vec::new();
    for &(col, total) in &f.looked_up {
        if !cx.rule(memo, col).is_allow() {
            lookups.push(cx.column_name(col));
        }
        let params: Vec<usize> = f
            .array_lookups
            .iter()
            .filter(|(_, c)| *c == col)
            .map(|(n, _)| *n)
            .collect();
        if !params.is_empty() && !cx.rule(memo, col).is_allow() {
            bounded_params.push(BoundedLookup {
                column: cx.column_name(col),
                fixed: total.saturating_sub(params.len()),
                params,
            });
        }
    }
    Ok(Plan {
        columns,
        campaigns: names(&campaigns),
        reads,
        bounded_params,
        lookups,
    })
}

fn verb(k: WriteKind) -> &'static str {
    match k {
        WriteKind::Insert => "insert into",
        WriteKind::Update => "update",
        WriteKind::Delete => "delete from",
    }
}

/// Whether `rel` is the target of an INSERT or COPY FROM that only adds rows, reading nothing of
/// the table: no RETURNING, no ON CONFLICT (which answers whether a key is there, or changes the
/// row), the table named nowhere else, and none of its columns used. Rule 4 counts every other
/// target as read.
fn adds_rows_only(f: &StatementFacts, rel: RelId) -> bool {
    matches!(f.kind, Kind::Insert | Kind::CopyFrom)
        && f.writes.iter().any(|(w, _)| *w == rel)
        && !f.read_from.contains(&rel)
        && f.writes.iter().all(|(w, k)| *w != rel || *k == WriteKind::Insert)
        && matches!(f.outputs, Outputs::None)
        && !f.uses.iter().any(|u| u.col.rel == rel)
        && !f.selected.iter().any(|c| c.rel == rel)
        && !f.whole_rows.iter().any(|(cols, _)| cols.iter().any(|c| c.rel == rel))
}
