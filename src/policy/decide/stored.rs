//! What compares a write with the stored row it changes: CHECK constraints, generated columns and
//! row triggers. Where one reads a column the purpose may not read as it is, a violation, an error
//! or a skipped row answers the writer's guess about it (rounds 134, 136, 138 and 141).

use super::dba::Written;
use super::{DecideCtx, Memo};
use crate::analyze::facts::{ColRef, StatementFacts};
use crate::policy::{Reason, Refusal, WriteKind};

/// A CHECK constraint compares the columns an UPDATE sets with the stored row's others, and a
/// generated column computes with them: a violation or an error tells about those (round 134:
/// `CHECK (moved_in > birth_date)` gave every customer's dropped birth date by bisection). An
/// INSERT's row holds only what the statement supplies or defaults.
pub(super) fn row_constraints(
    f: &StatementFacts,
    cx: &DecideCtx<'_>,
    memo: &Memo<'_>,
    written_rels: &[Written],
) -> Result<(), Refusal> {
    for &(rel, kind, ref through) in written_rels {
        if kind != WriteKind::Update {
            continue;
        }
        // Behind a written view: which of its columns the view writes is not mapped, so a
        // constraint with any protected column counts (round 136: a narrow view of moved_in got
        // round 134's CHECK past this check).
        let memo = &memo_for(cx, memo, rel, through);
        let r = cx.catalog.rel(rel);
        let col = |a: i16| r.attnum_index(a).map(|i| ColRef { rel, col: i as u16 });
        // An INSERT's columns do not excuse the UPDATE of the same statement (ON CONFLICT DO
        // UPDATE, MERGE), which runs on the stored row (round 138: naming birth_date in the INSERT
        // let DO UPDATE's CHECK compare with the stored one).
        let upsert = f.writes.iter().any(|&(w, k)| w == rel && k == WriteKind::Insert);
        let written: Vec<ColRef> = match through {
            Some(_) => Vec::new(),
            None if upsert => Vec::new(),
            None => f.written_cols.iter().filter(|c| c.rel == rel).copied().collect(),
        };
        let groups = r.checks.iter().map(|k| (k, "a CHECK constraint")).chain(
            r.generated
                .iter()
                .map(|(_, reads)| (reads, "a generated column's expression")),
        );
        for (group, what) in groups {
            let members: Vec<ColRef> = group.iter().filter_map(|&a| col(a)).collect();
            let set = match through {
                None if !upsert => members.iter().find(|c| written.contains(c)),
                _ => members.first(),
            };
            let Some(set) = set else { continue };
            if let Some(k) = members
                .iter()
                .find(|k| !written.contains(k) && !cx.rule(memo, **k).is_allow())
            {
                return Err(Refusal::new(
                    Reason::ProtectedColumn,
                    format!(
                        "{what} of {}{} computes {} with the stored row's {}, which is protected for purpose {}: a violation or an error would tell about it",
                        r.name,
                        through.as_ref().map(|v| format!(" (written through {v})")).unwrap_or_default(),
                        cx.column_name(*set),
                        cx.column_name(*k),
                        cx.purpose_name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A row trigger's WHEN condition, or a built-in BEFORE trigger function, reads the stored row on
/// every UPDATE or DELETE of it, so none of the columns it reads may be protected: whether the row
/// is skipped, changed or refused answers a guess about them (round 141: with
/// suppress_redundant_updates_trigger, `UPDATE … SET birth_date = 'd' RETURNING customer_no`
/// returned exactly the customers born on d). The columns the statement writes do not excuse it:
/// `OLD` is the stored row.
pub(super) fn row_triggers(
    f: &StatementFacts,
    cx: &DecideCtx<'_>,
    memo: &Memo<'_>,
    written_rels: &[Written],
) -> Result<(), Refusal> {
    for &(rel, kind, ref through) in written_rels {
        let r = cx.catalog.rel(rel);
        if r.row_triggers.is_empty() {
            continue;
        }
        let memo = &memo_for(cx, memo, rel, through);
        // `UPDATE OF c` fires only when the statement sets c; through a view, or in an upsert
        // (whose SET list the analysis does not tell apart), it may.
        let upsert = f.writes.iter().any(|&(w, k)| w == rel && k == WriteKind::Insert);
        let sets = |a: &i16| {
            through.is_some()
                || upsert
                || f.written_cols
                    .iter()
                    .any(|c| c.rel == rel && r.columns.get(c.col as usize).is_some_and(|col| col.attnum == *a))
        };
        for t in &r.row_triggers {
            let fires = match kind {
                WriteKind::Update => t.on_update && (t.update_of.is_empty() || t.update_of.iter().any(sets)),
                WriteKind::Delete => t.on_delete,
                WriteKind::Insert => false,
            };
            let protected = t
                .reads
                .iter()
                .filter_map(|&a| r.attnum_index(a))
                .map(|i| ColRef { rel, col: i as u16 })
                .find(|k| !cx.rule(memo, *k).is_allow());
            if let (true, Some(k)) = (fires, protected) {
                return Err(Refusal::new(
                    Reason::ProtectedColumn,
                    format!(
                        "the trigger {} of {}{} reads the stored row's {}, which is protected for purpose {}: whether it skips, changes or refuses the row would tell about it",
                        t.name,
                        r.name,
                        through.as_ref().map(|v| format!(" (written through {v})")).unwrap_or_default(),
                        cx.column_name(k),
                        cx.purpose_name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The tables (by OID) the DBA's code a statement runs writes into: the functions of the DBA's it
/// calls (round 147: a listed `open_ticket()` ran the INSERT whose trigger a direct one is refused
/// for), and what the triggers and defaults of the tables it and they write write in turn (round
/// 147: a trigger on tickets logged into ticket_events, whose own trigger compared with the
/// customers).
pub(super) fn code_writes(f: &StatementFacts, cx: &DecideCtx<'_>) -> Vec<u32> {
    let mut by_code: Vec<u32> = Vec::new();
    for call in &f.functions {
        for schema in &call.schemas {
            let name = crate::policy::QName::new(schema, &call.name);
            by_code.extend(cx.catalog.function_writes.get(&name).into_iter().flatten());
        }
    }
    let runs = |oid: &u32| {
        let calls = cx.catalog.hidden_calls.get(oid).into_iter().flatten();
        calls
            .filter(|c| c.on_write)
            .flat_map(|c| cx.catalog.function_writes.get(&c.func).into_iter().flatten())
            .copied()
            .collect::<Vec<u32>>()
    };
    let more: Vec<u32> = f
        .writes
        .iter()
        .flat_map(|&(rel, _)| cx.catalog.reached(cx.catalog.rel(rel).oid))
        .chain(by_code.iter().copied())
        .flat_map(|oid| runs(&oid))
        .collect();
    by_code.extend(more);
    by_code.sort_unstable();
    by_code.dedup();
    by_code
}

/// The DBA code a write runs (triggers of every event, INSERT included, CHECK constraints,
/// defaults, index functions, through whatever they call) may read the written table's stored
/// rows or other tables: whether the write then succeeds, is skipped or changed answers a guess
/// about what it read (round 145: a dedupe trigger on INSERT gave every birth date, a caller check
/// compared a ticket with the customer's). So every column of what it reads must be one the
/// purpose may read as it is. A table it only writes into (an audit log) does not count.
/// `by_code` is `code_writes` of the statement, which the campaign rules looked at first.
pub(super) fn write_code_reads(f: &StatementFacts, cx: &DecideCtx<'_>, by_code: Vec<u32>) -> Result<(), Refusal> {
    let mut written: Vec<u32> = f
        .writes
        .iter()
        .flat_map(|&(rel, _)| cx.catalog.reached(cx.catalog.rel(rel).oid))
        .collect();
    code_targets(cx, by_code.clone())?;
    written.extend(by_code);
    written.sort_unstable();
    written.dedup();
    for oid in written {
        for (what, read) in cx.catalog.write_reads.get(&oid).into_iter().flatten() {
            let on = cx.catalog.by_oid(oid).map(|i| cx.catalog.rel(i).name.to_string());
            let Some(read_rel) = cx.catalog.by_oid(*read) else {
                let reads = match *read == crate::catalog::ANY_TABLE {
                    true => "runs code whose tables unscharf cannot tell (SQL built at run time, a regclass cast, an operator or cast of the DBA's)",
                    false => "reads a relation unscharf does not know",
                };
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    format!("{what} runs on a write of {} and {reads}", on.unwrap_or_default()),
                ));
            };
            let memo = Memo::new(cx, &[read_rel]);
            let r = cx.catalog.rel(read_rel);
            let protected = (0..r.columns.len())
                .map(|i| ColRef {
                    rel: read_rel,
                    col: i as u16,
                })
                .find(|c| !cx.rule(&memo, *c).is_allow());
            if let Some(c) = protected {
                let stored = if *read == oid { "the stored rows' " } else { "" };
                return Err(Refusal::new(
                    Reason::ProtectedColumn,
                    format!(
                        "{what} runs on a write of {} and reads {stored}{}, which is protected for purpose {}: whether the write succeeds, is skipped or changed would tell about it",
                        on.unwrap_or_default(),
                        cx.column_name(c),
                        cx.purpose_name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A table the DBA's code writes into runs its own rules and foreign keys, which neither the
/// statement nor the code shows (round 149 F4: a foreign key of the table a trigger logged into
/// compared the logged birth-date guess with the customers'; round 153 N6: a rule on the audit log
/// marked the ticket verified when the guess was right). The statement's own writes are the
/// analysis's: it knows their columns. For code's writes the columns are not known, so every rule
/// refuses and every key column on either side of a foreign key must be readable as it is; a
/// cascade's table counts as written too.
fn code_targets(cx: &DecideCtx<'_>, mut queue: Vec<u32>) -> Result<(), Refusal> {
    let mut seen: Vec<u32> = Vec::new();
    while let Some(oid) = queue.pop() {
        if seen.contains(&oid) {
            continue;
        }
        seen.push(oid);
        let Some(rel) = cx.catalog.by_oid(oid) else { continue };
        let on = cx.catalog.rel(rel).name.to_string();
        if let Some(rule) = cx.catalog.write_rules.get(&oid).and_then(|v| v.first()) {
            return Err(Refusal::new(
                Reason::UnsupportedStatement,
                format!("code this write runs writes into {on}, and the rule {rule} on {on} rewrites that into statements of its own, which unscharf cannot judge"),
            ));
        }
        let r = cx.catalog.rel(rel);
        // Its unique keys and exclusion constraints compare what the code writes with the stored
        // rows (round 159: a table prefilled with numbers and birth dates refused the right
        // guess). A key of one column that its own sequence fills does not count when no code
        // writing the table names that column or writes a row without naming columns (an audit
        // log's id; round 161: any sequence of the table excused another key, and code could
        // write the id itself).
        let writers = cx.catalog.code_writers.get(&r.name.name.to_lowercase());
        let counted = |key: &&Vec<i16>| {
            let filled = |a: i16| {
                cx.catalog.sequence_columns.contains(&(oid, a))
                    && r.attnum_index(a).is_some_and(|i| {
                        writers.is_some_and(|(words, positional)| {
                            !positional && !words.contains(&r.columns[i].name.to_lowercase())
                        })
                    })
            };
            !matches!(key.as_slice(), [a] if filled(*a))
        };
        let mut compared: Vec<(u32, &[i16], &str)> = r
            .unique_keys
            .iter()
            .filter(counted)
            .map(|k| (oid, k.as_slice(), "unique key"))
            .collect();
        // What its constraints, defaults, indexes and policies call that the agent may not: a
        // CHECK running query_to_xml compared the written row with the customers (round 161).
        if let Some(call) = cx.catalog.hidden_calls.get(&oid).into_iter().flatten().find(|c| {
            c.func.schema == "pg_catalog"
                && (crate::policy::decide::is_forbidden_function(&c.func.name)
                    // A trigger or default reading a setting runs on what is written anyway.
                    || (!c.on_write && super::forbidden::SETTING_READERS.contains(&c.func.name.as_str())))
        }) {
            return Err(Refusal::new(
                Reason::ForbiddenFunction,
                format!(
                    "code this write runs writes into {on}, and {} there calls {}, which purpose {} may not run",
                    call.what,
                    call.func.name,
                    cx.purpose_name()
                ),
            ));
        }
        if let Some(r) = super::dba::moved_filter(cx, oid) {
            return Err(r);
        }
        // Its row-level security policies check the written row, by what they read (round 159: a
        // WITH CHECK comparing with the customers' birth dates refused the wrong guesses).
        if r.row_security {
            for (policy, read, _) in cx.catalog.policy_columns.get(&oid).into_iter().flatten() {
                let Some(t) = cx.catalog.by_oid(*read) else {
                    return Err(Refusal::new(
                        Reason::UnsupportedStatement,
                        format!("code this write runs writes into {on}, whose row-level security policy {policy} reads what unscharf cannot tell"),
                    ));
                };
                let memo = Memo::new(cx, &[t]);
                let tr = cx.catalog.rel(t);
                if let Some(c) = (0..tr.columns.len())
                    .map(|i| ColRef { rel: t, col: i as u16 })
                    .find(|c| !cx.rule(&memo, *c).is_allow())
                {
                    return Err(Refusal::new(
                        Reason::ProtectedColumn,
                        format!(
                            "code this write runs writes into {on}, whose row-level security policy {policy} reads {}, which is protected for purpose {}: whether the write succeeds would tell about it",
                            cx.column_name(c),
                            cx.purpose_name()
                        ),
                    ));
                }
            }
        }
        for fk in &cx.catalog.rel(rel).foreign_keys {
            compared.push((fk.target, &fk.target_cols, "foreign key"));
        }
        for (from, fk) in cx.catalog.referencing(rel) {
            let from = cx.catalog.rel(from).oid;
            compared.push((from, &fk.cols, "foreign key"));
            if fk.writes_back(true).is_some() || fk.writes_back(false).is_some() {
                queue.push(from);
            }
        }
        for (other, cols, what) in compared {
            let Some(t) = cx.catalog.by_oid(other) else {
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    format!("code this write runs writes into {on}, which has a foreign key with a relation unscharf does not know"),
                ));
            };
            let memo = Memo::new(cx, &[t]);
            let tr = cx.catalog.rel(t);
            let protected = cols
                .iter()
                .filter_map(|a| tr.attnum_index(*a))
                .map(|i| ColRef { rel: t, col: i as u16 })
                .find(|c| !cx.rule(&memo, *c).is_allow());
            if let Some(c) = protected {
                return Err(Refusal::new(
                    Reason::ProtectedColumn,
                    format!(
                        "code this write runs writes into {on}, whose {} compares what it writes with {}, which is protected for purpose {}: whether the write succeeds would tell about it",
                        what,
                        cx.column_name(c),
                        cx.purpose_name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The statement's memo, or, for a table behind a written view (not among the statement's
/// relations), one of the table's own.
fn memo_for<'a>(
    cx: &'a DecideCtx<'_>,
    memo: &'a Memo<'a>,
    rel: crate::catalog::RelId,
    through: &Option<String>,
) -> std::borrow::Cow<'a, Memo<'a>> {
    match through {
        Some(_) => std::borrow::Cow::Owned(Memo::new(cx, &[rel])),
        None => std::borrow::Cow::Borrowed(memo),
    }
}
