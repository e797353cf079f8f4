//! Rule 6 for result columns: how each column of a result is passed, masked or dropped, the COPY
//! forms that cannot be masked, and columns whose values are whole rows of another relation.

use super::{ColAction, DecideCtx, MaskAction, Memo};
use crate::analyze::facts::{Kind, Outputs, StatementFacts};
use crate::policy::{ColumnRule, Reason, Refusal};

/// Whether a masked column's text, which the mask works on, may follow the session's settings: a
/// date, time or range of them printed under the session's TimeZone and DateStyle (round 194 AE1:
/// `year` of a timestamptz flipped at an offset that told the time to the minute; AE2: `first(4)`
/// of a date kept the year under ISO, the day and month under `SQL, DMY`; round 195 AF1: a
/// daterange's bounds), bytea under bytea_output (AF2), floats under extra_float_digits, money
/// under lc_monetary. Only the types listed print the same under every setting; masks that print
/// nothing of the value do not count.
fn prints_by_settings(
    cx: &DecideCtx<'_>,
    c: crate::analyze::facts::ColRef,
    mask: &crate::mask::functions::Mask,
    moved: super::clock::Moved,
) -> bool {
    // bool, "char", name, int8, int2, int4, text, oid, json, inet, cidr, bpchar, varchar, numeric,
    // uuid, jsonb, and the arrays of text, varchar, int4 and int8.
    const STEADY: &[u32] = &[
        16, 18, 19, 20, 21, 23, 25, 26, 114, 869, 650, 1042, 1043, 1700, 2950, 3802, 1009, 1015, 1007, 1016,
    ];
    // Besides: bytea, date, time, timestamp, timestamptz, interval, timetz, money, their arrays and
    // the ranges of dates and times, which extra_float_digits does not reach.
    const NO_FLOATS: &[u32] = &[
        17, 1082, 1083, 1114, 1184, 1186, 1266, 790, 1001, 1182, 1183, 1115, 1185, 1187, 1270, 791, 3912, 3908, 3910,
    ];
    use super::clock::Moved;
    use crate::mask::functions::Mask;
    let printed = !matches!(mask, Mask::Null | Mask::Redact | Mask::Constant(_));
    let steady: &[&[u32]] = match moved {
        Moved::No | Moved::NoPrint => return false,
        Moved::FloatPrint => &[STEADY, NO_FLOATS],
        Moved::Anything => &[STEADY],
    };
    let r = cx.catalog.rel(c.rel);
    printed
        && r.columns
            .get(c.col as usize)
            .is_none_or(|col| !steady.iter().any(|list| list.contains(&col.type_oid)))
}

/// Rule 6 for result columns: plain protected columns are masked, dropped, or refuse the statement.
pub(super) fn plan_outputs(
    f: &StatementFacts,
    cx: &DecideCtx<'_>,
    memo: &Memo<'_>,
) -> Result<Option<Vec<ColAction>>, Refusal> {
    let purpose = cx.purpose_name();
    let Outputs::Known(outs) = &f.outputs else {
        return Ok(None);
    };
    let is_copy = matches!(f.kind, Kind::CopyTo(_));
    let mut actions = Vec::with_capacity(outs.len());
    let mut all_pass = true;
    for o in outs {
        let action = match o.lineage.plain_col() {
            None => ColAction::Pass,
            Some(c) => match cx.rule(memo, c) {
                ColumnRule::Allow => ColAction::Pass,
                ColumnRule::Mask { mask, .. } => {
                    let r = cx.catalog.rel(c.rel);
                    let moved = super::clock::level(cx.settings_moved);
                    if let (Some(m), true) = (cx.settings_moved, prints_by_settings(cx, c, mask, moved)) {
                        let why = &m.why;
                        return Err(Refusal::new(
                            Reason::ForbiddenSetting,
                            format!(
                                "column {} is masked for purpose {purpose}, and its type prints by the session's settings (a date or time by TimeZone and DateStyle, bytea by bytea_output, a float by extra_float_digits), and {why}: the mask would keep another part of it (RESET them)",
                                cx.column_name(c)
                            ),
                        ));
                    }
                    ColAction::Mask(Box::new(MaskAction {
                        key: if mask.needs_key() {
                            cx.policy.pseudonym_key_for(&r.name).cloned()
                        } else {
                            None
                        },
                        mask: mask.clone(),
                        column: c,
                    }))
                }
                // `COPY t TO STDOUT` names every column (POLICY rule 9); the `*` of a COPY's
                // query drops it as a SELECT's does (round 206 AQ2).
                ColumnRule::Drop if o.explicit => {
                    // An ORM names every column it maps, so it meets this first (round 94).
                    let hint = if is_copy {
                        "; name the columns to leave it out"
                    } else {
                        "; leave it out of the query, or, where a client must name it (an ORM that maps it), ask the DBA to mask it with null instead of dropping it"
                    };
                    return Err(Refusal::new(
                        Reason::ProtectedColumn,
                        format!("column {} is not visible to purpose {purpose}{hint}", cx.column_name(c)),
                    ));
                }
                ColumnRule::Drop => ColAction::Drop,
            },
        };
        all_pass &= action.is_pass();
        actions.push(action);
    }
    if all_pass {
        return Ok(None);
    }
    use crate::analyze::facts::CopyOut;
    match &f.kind {
        Kind::CopyTo(CopyOut::Binary) => {
            return Err(Refusal::new(
                Reason::UnsupportedStatement,
                "binary COPY of masked or left-out columns cannot be rewritten; use text or CSV format".to_owned(),
            ))
        }
        // Fields left out show nothing, whatever the NULL string.
        _ if !actions.iter().any(|a| matches!(a, ColAction::Mask(_))) => {}
        // Postgres writes a value equal to a custom NULL string as it is, indistinguishable from
        // NULL: every COPY would test one guess against the hidden values.
        Kind::CopyTo(CopyOut::Text { null, .. }) if null.as_slice() != b"\\N" => return Err(custom_null()),
        Kind::CopyTo(CopyOut::Csv { null, .. }) if !null.is_empty() => return Err(custom_null()),
        _ => {}
    }
    Ok(Some(actions))
}

fn custom_null() -> Refusal {
    Refusal::new(
        Reason::UnsupportedStatement,
        "COPY of masked columns with a NULL string of its own cannot tell values from NULLs; leave NULL at its default",
    )
}

/// Rule 6 for a column whose type holds another relation's row type (`callbacks.snapshot` of type
/// `customers`): its values are whole rows of that relation, and even a NULL of it hands its type
/// to a polymorphic function, which returns rows of it (round 203 AN1: a granted snapshot column
/// fed to a listed `first_of(anyelement)`; AN2: a parameter typed by a write into a dropped one).
/// Any use of such a column, read or written, counts as a whole-row reference to the relation.
pub(super) fn row_typed_columns(f: &StatementFacts, cx: &DecideCtx<'_>) -> Result<(), Refusal> {
    let types = &cx.catalog.row_type_oids;
    if types.is_empty() {
        return Ok(());
    }
    for c in f.columns_read().chain(&f.written_cols) {
        let r = cx.catalog.rel(c.rel);
        let Some(col) = r.columns.get(c.col as usize) else {
            continue;
        };
        for held in types
            .get(&col.type_oid)
            .into_iter()
            .flatten()
            .filter_map(|&oid| cx.catalog.by_oid(oid))
        {
            let memo = Memo::new(cx, &[held]);
            let h = cx.catalog.rel(held);
            let protected = (0..h.columns.len())
                .filter(|&i| !h.columns[i].dropped)
                .map(|i| crate::analyze::facts::ColRef {
                    rel: held,
                    col: i as u16,
                })
                .find(|&p| !cx.rule(&memo, p).is_allow());
            if let Some(p) = protected {
                return Err(Refusal::new(
                    Reason::ProtectedColumn,
                    format!(
                        "column {}.{} holds whole rows of {}, which include column {}, protected for purpose {}",
                        r.name,
                        col.name,
                        h.name,
                        cx.column_name(p),
                        cx.purpose_name()
                    ),
                ));
            }
        }
    }
    Ok(())
}
