//! Refusals for what a DBA's objects make Postgres run or compare without a statement naming it:
//! casts and domains, implicit casts, unique indexes, relations and sequences behind a relation.

use super::{Class, DecideCtx, Memo};
use crate::analyze::facts::{ColRef, Kind, StatementFacts};
use crate::catalog::{RelId, RelKind};
use crate::policy::{Reason, Refusal, WriteKind};

/// The analysis refuses casts to types a DBA's code guards, and writes to columns of them; a
/// prepared statement analyzed just before the DBA's CREATE CAST reached the catalog is held to
/// the catalog in force at each Bind (round 30).
pub(super) fn guarded_types(f: &StatementFacts, cx: &DecideCtx<'_>) -> Result<(), Refusal> {
    let guarded = f
        .cast_types
        .iter()
        .find(|t| cx.catalog.cast_may_run_user_code(t))
        .map(|t| t.join("."));
    let is_guarded = |c: &ColRef| {
        let col = &cx.catalog.rel(c.rel).columns[c.col as usize];
        cx.catalog.user_cast_type_oids.contains(&col.type_oid)
    };
    let written = f.written_cols.iter().find(|c| is_guarded(c));
    // Any use of such a column but a plain output: Postgres gives a literal beside it the
    // column's type (`ARRAY[probe] || '{x}'`, `probe = 'x'`), which runs the CHECK (round 32).
    let used = f.uses.iter().map(|u| &u.col).find(|c| is_guarded(c));
    match guarded.or_else(|| written.or(used).map(|&c| cx.catalog.column_name(c))) {
        Some(t) => Err(Refusal::new(
            Reason::UnsupportedStatement,
            format!("{t}: its type may run a function a DBA wrote (a CREATE CAST, a domain's CHECK or a default operator class)"),
        )),
        None => Ok(()),
    }
}

/// A DBA's implicit cast runs wherever Postgres coerces its source type: `lower(1)` ran an int4 →
/// text cast that read another campaign's table (round 64), and a default operator class runs on
/// every sort of its type. Their functions must be listed like any other a statement may run;
/// only statements that evaluate no expression go ahead.
pub(super) fn implicit_code(f: &StatementFacts, cx: &DecideCtx<'_>) -> Result<(), Refusal> {
    if !f.kind.evaluates_expressions() {
        return Ok(());
    }
    let unlisted = cx
        .catalog
        .implicit_code
        .iter()
        .find(|(func, _)| !cx.purpose.functions.contains(func));
    match unlisted {
        Some((func, what)) => Err(Refusal::new(
            Reason::ForbiddenFunction,
            format!(
                "the database has {what} that runs {func}, which purpose {} does not list in its functions (Postgres may run it for any expression)",
                cx.purpose_name()
            ),
        )),
        None => Ok(()),
    }
}

/// A unique index compares what is written with every stored row: a duplicate-key error, or ON
/// CONFLICT's choice, told whether a guessed value of a protected column was stored (round 66).
pub(super) fn unique_keys(f: &StatementFacts, cx: &DecideCtx<'_>, memo: &Memo<'_>) -> Result<(), Refusal> {
    for &c in &f.written_cols {
        let r = cx.catalog.rel(c.rel);
        let Some(attnum) = r.columns.get(c.col as usize).map(|col| col.attnum) else {
            continue;
        };
        let compared = r
            .unique_keys
            .iter()
            .filter(|key| key.contains(&attnum))
            .flatten()
            .filter_map(|a| r.attnum_index(*a))
            .map(|i| ColRef {
                rel: c.rel,
                col: i as u16,
            });
        for k in compared {
            if !cx.rule(memo, k).is_allow() {
                let beside = if k == c {
                    String::new()
                } else {
                    format!(" beside {}", cx.column_name(k))
                };
                return Err(Refusal::new(
                    Reason::ProtectedColumn,
                    format!(
                        "an index of the table keeps {}{beside}, which is protected for purpose {}: a duplicate-key or index-size error would tell about the stored values",
                        cx.column_name(c),
                        cx.purpose_name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A written relation, how, and the view it is written through, if any (see `written_relations`).
pub(super) type Written = (RelId, WriteKind, Option<String>);

/// Each written relation, and the tables behind each written view with the view's name: their
/// constraints, defaults and sequences run on the write as if it named them.
pub(super) fn written_relations(f: &StatementFacts, cx: &DecideCtx<'_>) -> Vec<Written> {
    let mut out: Vec<Written> = Vec::new();
    for &(rel, kind) in &f.writes {
        out.push((rel, kind, None));
        let r = cx.catalog.rel(rel);
        if r.kind != RelKind::View {
            continue;
        }
        for base in cx
            .catalog
            .behind(r.oid)
            .into_iter()
            .filter_map(|o| cx.catalog.by_oid(o))
        {
            if cx.catalog.rel(base).kind != RelKind::View && !out.iter().any(|(b, k, _)| *b == base && *k == kind) {
                out.push((base, kind, Some(r.name.to_string())));
            }
        }
    }
    out
}

/// A view over rows the purpose may not read hides the others by its own conditions. Without
/// security_barrier Postgres may run the statement's conditions first, on every row, and an error
/// tells about the hidden ones (round 134: a campaign's view of a shared call log gave the other
/// campaign's calls by division by zero). EXPLAIN counts rows a view or row-level security hid,
/// barrier or not, and estimates from statistics of all of them.
pub(super) fn hidden_rows(f: &StatementFacts, cx: &DecideCtx<'_>, written: &[Written]) -> Result<(), Refusal> {
    let readable = |oid: u32| {
        cx.catalog.by_oid(oid).is_some_and(|id| {
            matches!(
                cx.class(id),
                Class::System | Class::Shared(_) | Class::Campaign(_, Some(_))
            )
        })
    };
    let explain = matches!(f.kind, Kind::Explain { .. });
    // A unique key, a sequence and a foreign key compare a write with every row, the ones
    // row-level security hides included (round 136: ON CONFLICT DO NOTHING counted the other
    // campaign's phone numbers in a shared queue; serial ids counted its inserts), and the ones a
    // view the write goes through hides (round 141: a campaign's view of a shared log returned
    // identity numbers that counted the other campaign's inserts).
    for &(rel, _, ref through) in written {
        let r = cx.catalog.rel(rel);
        let by_view = match through {
            _ if r.row_security => None,
            Some(v) if !readable(r.oid) => Some(v),
            _ => continue,
        };
        let what = if !r.unique_keys.is_empty() {
            "its unique keys compare"
        } else if cx.catalog.default_sequences.contains_key(&r.oid) {
            "its sequence counts"
        } else {
            continue;
        };
        let detail = match by_view {
            None => format!(
                "{} has row-level security, and {what} a write{} with the rows it hides too",
                r.name,
                through.as_ref().map(|v| format!(" through {v}")).unwrap_or_default()
            ),
            Some(v) => format!(
                "{}, written through view {v}, holds rows purpose {} may not read, and {what} a write with those rows too",
                r.name,
                cx.purpose_name()
            ),
        };
        return Err(Refusal::new(Reason::OutsidePurpose, detail));
    }
    if let Some(u) = f
        .uses
        .iter()
        .find(|u| u.clause == crate::analyze::facts::Clause::ForeignKey && cx.catalog.rel(u.col.rel).row_security)
    {
        return Err(Refusal::new(
            Reason::OutsidePurpose,
            format!(
                "{} compares the write with {}, whose row-level security hides rows the comparison sees",
                u.via,
                cx.catalog.rel(u.col.rel).name
            ),
        ));
    }
    // Round 259 CR1: the gaps between the ctids of the rows a purpose sees count the rows
    // row-level security hides, and the page a row lands on tells their size; round 261 CT2: a
    // sequence's last value counts them too.
    if let Some((r, what)) = f
        .row_tells
        .iter()
        .map(|&(rel, what)| (cx.catalog.rel(rel), what))
        .find(|(r, _)| r.row_security)
    {
        return Err(Refusal::new(
            Reason::OutsidePurpose,
            format!(
                "{} has row-level security, and {what}, those it hides from purpose {} included",
                r.name,
                cx.purpose_name()
            ),
        ));
    }
    for &rel in &f.relations {
        for oid in cx.catalog.reached(cx.catalog.rel(rel).oid) {
            let Some(r) = cx.catalog.by_oid(oid).map(|id| cx.catalog.rel(id)) else {
                continue;
            };
            if explain && r.row_security {
                return Err(Refusal::new(
                    Reason::OutsidePurpose,
                    format!(
                        "EXPLAIN counts the rows that the row-level security of {} hides; purpose {} may see only what the policies let through",
                        r.name,
                        cx.purpose_name()
                    ),
                ));
            }
            if r.kind != RelKind::View {
                continue;
            }
            let hidden = cx
                .catalog
                .view_bases
                .get(&oid)
                .into_iter()
                .flatten()
                .find(|b| !readable(**b));
            let Some(&base) = hidden else { continue };
            let base = cx.catalog.by_oid(base).map(|id| cx.catalog.rel(id).name.to_string());
            let base = base.unwrap_or_else(|| "a relation unscharf does not know".to_owned());
            if explain {
                return Err(Refusal::new(
                    Reason::OutsidePurpose,
                    format!(
                        "EXPLAIN counts the rows of {base} that view {} hides, and {base} is not granted to purpose {}",
                        r.name,
                        cx.purpose_name()
                    ),
                ));
            }
            if !r.barrier {
                return Err(Refusal::new(
                    Reason::OutsidePurpose,
                    format!(
                        "view {} shows rows of {base}, which is not granted to purpose {}, and is not a security_barrier view: Postgres may run this statement's conditions on the rows it hides (ALTER VIEW {} SET (security_barrier = true))",
                        r.name,
                        cx.purpose_name(),
                        r.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A statement on a table with partitions or child tables reads and writes their rows too, and
/// one on a view reads the relations behind it; one that a DBA placed in another campaign's
/// schema holds that campaign's rows (rule 4, round 72).
pub(super) fn descendants(f: &StatementFacts, cx: &DecideCtx<'_>) -> Result<(), Refusal> {
    for &rel in &f.relations {
        // A foreign table's rows come from a server unscharf cannot see: a view there over
        // another campaign's table, attached below a granted table (round 98).
        let r = cx.catalog.rel(rel);
        if let Some(ft) = cx.catalog.foreign_behind(r.oid) {
            return Err(Refusal::new(
                Reason::UnsupportedStatement,
                format!(
                    "rows of {} come from the foreign table {}, whose source on another server unscharf cannot judge",
                    r.name, ft.name
                ),
            ));
        }
        if let Some((other, c)) = cx.policy.campaigns_behind(cx.catalog, rel).next() {
            return Err(Refusal::new(
                Reason::CrossCampaign,
                format!(
                    "rows of {} come from {other}, which belongs to campaign {}",
                    cx.catalog.rel(rel).name,
                    c.name
                ),
            ));
        }
    }
    Ok(())
}

/// A rule on a written relation (or one behind a written view) rewrites the write into statements
/// of the DBA's, whose reads, writes and RETURNING the statement does not show (round 117).
pub(super) fn write_rules(f: &StatementFacts, cx: &DecideCtx<'_>) -> Result<(), Refusal> {
    for (rel, _) in &f.writes {
        let r = cx.catalog.rel(*rel);
        for oid in cx.catalog.reached(r.oid) {
            if let Some(rule) = cx.catalog.write_rules.get(&oid).and_then(|v| v.first()) {
                let on = reached_name(cx, oid);
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    format!(
                        "the rule {rule} on {on} rewrites writes into statements of its own, which unscharf cannot judge"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A written table's column default that draws from a sequence of another campaign, or from one
/// outside the table's campaign (which any other campaign's defaults or triggers may draw from
/// too), tells how far that campaign has counted (round 98: ticket ids followed zeitung's
/// subscriptions; rounds 102 and 105: through a sequence in public, shared by a default or a
/// trigger).
pub(super) fn default_sequences(written: &[Written], cx: &DecideCtx<'_>) -> Result<(), Refusal> {
    // The tables behind a written view too (round 136: an INSERT through a view drew from a
    // sequence both campaigns' tables count with).
    for &(rel, _, _) in written {
        let r = cx.catalog.rel(rel);
        // A default or trigger calling a DBA's function that names a sequence draws from it
        // where no dependency shows which, for whichever tables call it (round 138).
        let drawing = cx
            .catalog
            .hidden_calls
            .get(&r.oid)
            .into_iter()
            .flatten()
            .find(|c| c.on_write && cx.catalog.sequence_functions.contains(&c.func));
        if let Some(c) = drawing {
            return Err(Refusal::new(
                Reason::CrossCampaign,
                format!(
                    "{} of {} calls {}, whose code draws from a sequence: each number it returns would tell how far other tables calling it have counted",
                    c.what, r.name, c.func
                ),
            ));
        }
        let own = cx.policy.campaign_of(&r.name).map(|c| c.name.as_str());
        for seq in cx.catalog.default_sequences.get(&r.oid).into_iter().flatten() {
            // A table with row-level security drawing from the same sequence, or owning it:
            // each number counts the rows its policies hide (round 264 CW1: notes drew their
            // ids from the tickets' sequence).
            let hiding = cx
                .catalog
                .default_sequences
                .iter()
                .filter(|(oid, seqs)| **oid != r.oid && seqs.contains(seq))
                .filter_map(|(oid, _)| cx.catalog.by_oid(*oid))
                .chain(cx.catalog.sequence(seq).flatten())
                .map(|id| cx.catalog.rel(id))
                .find(|t| t.row_security && t.oid != r.oid);
            if let Some(t) = hiding {
                return Err(Refusal::new(
                    Reason::OutsidePurpose,
                    format!(
                        "a column default of {} draws from {seq}, which {} draws from too, and its row-level security hides rows each number counts",
                        r.name, t.name
                    ),
                ));
            }
            let theirs = cx.policy.campaign_of(seq).map(|c| c.name.as_str());
            // Another campaign's table drawing from the same sequence counts with it too (round
            // 124: zeitung's subscriptions drew their ids from the tickets' sequence).
            let sharer = cx
                .catalog
                .default_sequences
                .iter()
                .filter(|(_, seqs)| seqs.contains(seq))
                .filter_map(|(oid, _)| cx.catalog.by_oid(*oid))
                .map(|id| &cx.catalog.rel(id).name)
                .find(|t| cx.policy.campaign_of(t).map(|c| c.name.as_str()) != own);
            // A function's code that names it may draw from it for any table (round 127: a
            // trigger of zeitung's subscriptions did), which no dependency records.
            if theirs == own && cx.catalog.sequences_in_code.contains(seq) {
                return Err(Refusal::new(
                    Reason::CrossCampaign,
                    format!(
                        "a column default of {} draws from {seq}, which a function's code names too: each number would tell how far that code has counted for whichever table it runs for",
                        r.name
                    ),
                ));
            }
            if let (true, Some(t)) = (theirs == own, sharer) {
                return Err(Refusal::new(
                    Reason::CrossCampaign,
                    format!(
                        "a column default of {} draws from {seq}, which a default of {t} draws from too: each number tells how far the other table has counted",
                        r.name
                    ),
                ));
            }
            if theirs == own {
                continue;
            }
            let why = match theirs {
                Some(c) => format!("which belongs to campaign {c}"),
                None => format!(
                    "which lies outside campaign {}: other campaigns' defaults or triggers may count with it",
                    own.unwrap_or_default()
                ),
            };
            let mut refusal = Refusal::new(
                Reason::CrossCampaign,
                format!("a column default of {} draws from {seq}, {why}", r.name),
            );
            // The trail names the sequence's campaign too (round 209 AT2).
            refusal.campaigns.extend(theirs.map(str::to_owned));
            return Err(refusal);
        }
    }
    Ok(())
}

/// A row-level security policy filters every statement on its table by the columns it reads:
/// a WHERE the DBA wrote, so a column the purpose may not read as it is cannot be in it (round
/// 102: a policy comparing the phone with a setting the agent may change answered prefix
/// guesses). Also for the relations behind a view.
pub(super) fn policy_columns(f: &StatementFacts, cx: &DecideCtx<'_>) -> Result<(), Refusal> {
    let mut filtered: Vec<u32> = Vec::new();
    for &rel in &f.relations {
        let r = cx.catalog.rel(rel);
        for oid in cx.catalog.read_as_own(r.oid) {
            if cx.catalog.policy_columns.contains_key(&oid) && !filtered.contains(&oid) {
                filtered.push(oid);
            }
        }
    }
    if filtered.is_empty() {
        return Ok(());
    }
    let read = |oid: &u32| cx.catalog.policy_columns.get(oid).into_iter().flatten();
    let rels: Vec<crate::catalog::RelId> = filtered
        .iter()
        .flat_map(read)
        .filter_map(|(_, rel, _)| cx.catalog.by_oid(*rel))
        .collect();
    let memo = Memo::new(cx, &rels);
    for oid in &filtered {
        for (policy, rel_oid, attnum) in read(oid) {
            let on = cx
                .catalog
                .by_oid(*oid)
                .map(|i| cx.catalog.rel(i).name.to_string())
                .unwrap_or_default();
            // A column of a relation the catalog does not hold cannot be judged.
            let Some(rel) = cx.catalog.by_oid(*rel_oid) else {
                let what = match *rel_oid == crate::catalog::ANY_TABLE {
                    true => "runs code whose tables unscharf cannot tell (SQL built at run time, an operator or cast of the DBA's)",
                    false => "reads a relation unscharf does not know",
                };
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    format!("the row-level security policy {policy} of {on} {what}"),
                ));
            };
            let r = cx.catalog.rel(rel);
            // Another relation the agent may write decides the filter as a setting would (round
            // 144: a policy keyed on a session table, `agent_session(pid, campaign)`, that agents
            // update). Its own table's rows are the ones it filters, the agent's writes included.
            // So does one a function the purpose lists writes (round 145: a SECURITY DEFINER
            // `start_session(campaign)` the CRM calls at login).
            let granted = cx
                .policy
                .shared
                .get(&r.name)
                .or_else(|| cx.purpose.tables.get(&r.name))
                .is_some_and(|g| !g.write.is_empty());
            let by_function = cx.purpose.functions.iter().find(|f| {
                cx.catalog
                    .function_writes
                    .get(*f)
                    .is_some_and(|w| w.contains(&r.oid) || w.contains(&crate::catalog::ANY_TABLE))
            });
            if r.oid != *oid && (granted || by_function.is_some()) {
                return Err(Refusal::new(
                    Reason::OutsidePurpose,
                    format!(
                        "the row-level security policy {policy} of {on} reads {}, which purpose {} may write{}: the agent could choose which rows it shows; key the policy on roles",
                        r.name,
                        cx.purpose_name(),
                        by_function.map(|f| format!(" (through its function {f})")).unwrap_or_default()
                    ),
                ));
            }
            // Column 0: the whole relation (named in a FROM, or its whole row).
            let read = r
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| *attnum == 0 || c.attnum == *attnum)
                .map(|(i, _)| ColRef { rel, col: i as u16 });
            for c in read {
                if cx.rule(&memo, c).is_allow() {
                    continue;
                }
                return Err(Refusal::new(
                    Reason::ProtectedColumn,
                    format!(
                        "the row-level security policy {policy} of {on} filters by {}, which is protected for purpose {}: its rows would answer questions about that column",
                        cx.column_name(c),
                        cx.purpose_name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Row filters whose result the session's settings change (a local time of the clock, a date
/// compared with a timestamp, text search with the default configuration, rows taken in the order
/// a plan reads them; see `clock`): refused while the session's settings may differ from the
/// server's (round 163: a shift-hours policy opened at night after `SET TimeZone`; round 164:
/// `called_at >= contract_start` and `to_tsvector(note)`; round 179 Q1: `SET work_mem`).
pub(super) fn session_filters(f: &StatementFacts, cx: &DecideCtx<'_>) -> Result<(), Refusal> {
    // Every relation the statement reaches, checked by `check`: the first refusal wins.
    let first = |check: &dyn Fn(u32) -> Option<Refusal>| {
        f.relations
            .iter()
            .flat_map(|&rel| cx.catalog.reached(cx.catalog.rel(rel).oid))
            .find_map(check)
            .map_or(Ok(()), Err)
    };
    if !cx.catalog.order_filters.is_empty() {
        first(&|oid| order_filter(cx, oid))?;
    }
    if cx.settings_moved.is_none() && cx.path_moved.is_none() {
        return Ok(());
    }
    first(&|oid| moved_filter(cx, oid))
}

/// The name of a relation a statement reaches, by OID, for refusal messages.
fn reached_name(cx: &DecideCtx<'_>, oid: u32) -> String {
    cx.catalog
        .by_oid(oid)
        .map(|o| cx.catalog.rel(o).name.to_string())
        .unwrap_or_default()
}

/// The refusal for reaching `oid` if a row-level security policy of it takes rows in the order a
/// plan reads them: which rows it keeps follows the plan, and where another session's scan of a
/// large table left off (round 182 S2: `synchronize_seqscans` turned `LIMIT 1` to another row with
/// no setting changed), so no statement can rely on it.
fn order_filter(cx: &DecideCtx<'_>, oid: u32) -> Option<Refusal> {
    let (what, how) = cx.catalog.order_filters.get(&oid)?.first()?;
    let on = reached_name(cx, oid);
    Some(Refusal::new(
        Reason::UnsupportedStatement,
        format!(
            "{what} of {on} takes rows in the order a plan reads them ({how}): which rows it keeps follows the plan and other sessions' scans, so unscharf cannot rely on it (write it without LIMIT, OFFSET, DISTINCT ON, windows, ARRAY(SELECT …) and order-dependent aggregates: EXISTS, IN, count, and min or max of text, integers or dates do not depend on order; a helper function must find at most one row: a lookup by a unique key, an aggregate, or SELECT … INTO STRICT)"
        ),
    ))
}

/// The refusal for reaching `oid` if a filter of it computes with a setting that may have moved:
/// one of the settings `clock` counts, or search_path (round 168 F4: a filter on
/// `tableoid::regclass::text` let a child table's rows through once the path showed its schema).
pub(super) fn moved_filter(cx: &DecideCtx<'_>, oid: u32) -> Option<Refusal> {
    let on = || reached_name(cx, oid);
    if let (Some(why), Some((what, reads))) = (
        cx.settings_moved.map(|m| &m.why),
        cx.catalog.session_filters.get(&oid).and_then(|v| v.first()),
    ) {
        return Some(Refusal::new(
            Reason::ForbiddenSetting,
            format!(
                "{what} of {} computes with the session's settings ({reads}: the clock's local time, dates and text made from times, text search, the order a plan reads rows in), and {why}: unscharf runs such a statement only with the server's settings (RESET them)",
                on()
            ),
        ));
    }
    let (why, (what, names)) = (cx.path_moved?, cx.catalog.path_filters.get(&oid)?.first()?);
    Some(Refusal::new(
        Reason::ForbiddenSetting,
        format!(
            "{what} of {} prints or looks up names by the session's search_path ({names}), and {why}: unscharf runs such a statement only with the search_path the DBA set for the login (RESET search_path, or connect without choosing one)",
            on()
        ),
    ))
}

/// Functions a statement runs without naming them: those views, rules and row-level security
/// policies of the relations it reaches call, and the triggers of those it writes (round 74: a
/// view over a DBA's function returned the other campaign's leads, a trigger filled a ticket's
/// note from them). Rule 7 holds for them as for a written call.
pub(super) fn hidden_calls(f: &StatementFacts, cx: &DecideCtx<'_>) -> Result<(), Refusal> {
    for &rel in &f.relations {
        let r = cx.catalog.rel(rel);
        let writes = f.writes.iter().any(|(w, _)| *w == rel);
        let reached = cx.catalog.reached(r.oid);
        for oid in reached {
            for call in cx.catalog.hidden_calls.get(&oid).into_iter().flatten() {
                if call.on_write && !writes {
                    continue;
                }
                let on = || reached_name(cx, oid);
                if super::forbidden::SESSION_SETTERS.contains(&call.func.name.as_str()) {
                    return Err(Refusal::new(
                        Reason::ForbiddenFunction,
                        format!(
                            "{} of {} calls {}, which changes the session's settings (search_path among them) behind the statement",
                            call.what,
                            on(),
                            call.func.name
                        ),
                    ));
                }
                if super::forbidden::SETTING_READERS.contains(&call.func.name.as_str()) {
                    // Defaults, triggers and constraints run on what the agent writes anyway.
                    if call.on_write {
                        continue;
                    }
                    return Err(Refusal::new(
                        Reason::ForbiddenFunction,
                        format!(
                            "{} of {} reads {} with {}, which the session can set to anything: it cannot keep rows from it (key it on roles, e.g. pg_has_role(current_user, …))",
                            call.what,
                            on(),
                            super::forbidden::read_state(&call.func.name),
                            call.func.name
                        ),
                    ));
                }
                let allowed = !crate::policy::decide::is_forbidden_function(&call.func.name) && cx.may_call(&call.func);
                if !allowed {
                    let on = on();
                    return Err(Refusal::new(
                        Reason::ForbiddenFunction,
                        format!(
                            "{} of {on} runs {}, which purpose {} may not call (rule 7: list it in its functions, unless it is forbidden; a listed function is trusted with every column it reads, so check it reads none the purpose may not see)",
                            call.what,
                            call.func,
                            cx.purpose_name()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
