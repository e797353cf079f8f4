//! Result column names the way Postgres's FigureColname picks them, so references to subquery
//! columns bind to the same column Postgres binds them to.

use std::collections::HashMap;

use sqlparser::ast::{Expr, FunctionArguments, ObjectNamePart, Value};

use super::fold_ident;

/// The name Postgres gives an unaliased select-list expression. `subqueries` holds the first
/// output name of each scalar subquery analyzed so far (keyed by `query_key`): Postgres names a
/// scalar subquery after it, `*` expanded.
/// Where the analyzer cannot tell (Postgres's rules reach into types and functions), the name is
/// `UNSURE`, which name resolution treats as possibly any name.
pub(super) fn figure_colname(e: &Expr, subqueries: &HashMap<usize, String>) -> String {
    figure(e, subqueries).map(|(n, _)| n).unwrap_or_else(|| UNSURE.into())
}

/// The key of a subquery node for `figure_colname` (its address: nodes do not move during analysis).
pub(super) fn query_key(q: &sqlparser::ast::Query) -> usize {
    q as *const sqlparser::ast::Query as usize
}

/// (name, strength) as FigureColnameInternal: 2 for names taken from columns, functions and
/// subqueries, 1 for type names and `case`, 0 for `?column?`.
fn figure(e: &Expr, subqueries: &HashMap<usize, String>) -> Option<(String, u8)> {
    let fig = |x: &Expr| figure(x, subqueries);
    match e {
        Expr::Identifier(id) => Some((fold_ident(id), 2)),
        Expr::CompoundIdentifier(ids) => ids.last().map(|i| (fold_ident(i), 2)),
        // `(r).a[1]`: the last field name in the chain; subscripts alone name nothing.
        Expr::CompoundFieldAccess { access_chain, root } => {
            for a in access_chain.iter().rev() {
                match a {
                    sqlparser::ast::AccessExpr::Dot(Expr::Identifier(id)) => return Some((fold_ident(id), 2)),
                    sqlparser::ast::AccessExpr::Subscript(_) => {}
                    _ => return None,
                }
            }
            fig(root)
        }
        Expr::Function(f) => {
            if let FunctionArguments::Subquery(_) = &f.args {
                return Some(("array".into(), 2));
            }
            f.name.0.last().and_then(|p| match p {
                ObjectNamePart::Identifier(i) => Some((fold_ident(i), 2)),
                _ => None,
            })
        }
        // An inner name unscharf does not know may be a strong one that beats the type's.
        Expr::Cast { expr, data_type, .. } => match fig(expr)? {
            (n, 2) => Some((n, 2)),
            _ => type_colname(data_type).map(|t| (t, 1)),
        },
        Expr::Collate { expr, .. } | Expr::Nested(expr) => fig(expr),
        // Postgres names a CASE after its ELSE branch when that has a name of its own.
        Expr::Case { else_result, .. } => match else_result.as_deref().map(fig) {
            Some(None) => None,
            Some(Some((n, 2))) => Some((n, 2)),
            _ => Some(("case".into(), 1)),
        },
        Expr::Array(_) => Some(("array".into(), 2)),
        Expr::Exists { negated: false, .. } => Some(("exists".into(), 2)),
        Expr::Subquery(q) => match subqueries.get(&query_key(q)) {
            Some(n) => Some((n.clone(), 2)),
            None => subquery_name(&q.body),
        },
        Expr::Extract { .. } => Some(("extract".into(), 2)),
        Expr::Substring { shorthand: true, .. } => Some(("substr".into(), 2)),
        Expr::Substring { .. } => Some(("substring".into(), 2)),
        Expr::Trim { trim_where, .. } => Some((
            match trim_where {
                Some(sqlparser::ast::TrimWhereField::Leading) => "ltrim",
                Some(sqlparser::ast::TrimWhereField::Trailing) => "rtrim",
                _ => "btrim",
            }
            .into(),
            2,
        )),
        Expr::Position { .. } => Some(("position".into(), 2)),
        Expr::Overlay { .. } => Some(("overlay".into(), 2)),
        // Postgres's grammar turns these into function calls, named after the function.
        Expr::AtTimeZone { .. } => Some(("timezone".into(), 2)),
        Expr::IsNormalized { negated: false, .. } => Some(("is_normalized".into(), 2)),
        Expr::BinaryOp {
            op: sqlparser::ast::BinaryOperator::Overlaps,
            ..
        } => Some(("overlaps".into(), 2)),
        Expr::Tuple(_) => Some(("row".into(), 2)),
        // A typed literal (`DATE '…'`) is a cast of a string.
        Expr::TypedString(t) => type_colname(&t.data_type).map(|n| (n, 1)),
        Expr::Value(v) => match &v.value {
            // Since Postgres 15 TRUE and FALSE are constants (before, casts named `bool`).
            Value::Boolean(_) => Some(("?column?".into(), 0)),
            Value::NationalStringLiteral(_) => Some(("bpchar".into(), 1)),
            Value::Number(..)
            | Value::SingleQuotedString(_)
            | Value::EscapedStringLiteral(_)
            | Value::DollarQuotedString(_)
            | Value::HexStringLiteral(_)
            | Value::SingleQuotedByteStringLiteral(_)
            | Value::Null
            | Value::Placeholder(_) => Some(("?column?".into(), 0)),
            _ => None,
        },
        Expr::BinaryOp { .. }
        | Expr::UnaryOp { .. }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::In { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::AnyOp { .. }
        | Expr::AllOp { .. }
        | Expr::IsNormalized { negated: true, .. }
        | Expr::Exists { negated: true, .. } => Some(("?column?".into(), 0)),
        _ => None,
    }
}

/// A scalar subquery is named after its first output column: the first item of its (leftmost)
/// SELECT. A `*` there names it after a column only the analysis knows; that is `Unsure`.
fn subquery_name(body: &sqlparser::ast::SetExpr) -> Option<(String, u8)> {
    use sqlparser::ast::{SelectItem, SetExpr};
    match body {
        SetExpr::Select(s) => match s.projection.first()? {
            SelectItem::UnnamedExpr(e) => figure(e, &HashMap::new()).map(|(n, _)| (n, 2)),
            SelectItem::ExprWithAlias { alias, .. } => Some((fold_ident(alias), 2)),
            _ => Some((UNSURE.into(), 2)),
        },
        SetExpr::SetOperation { left, .. } => subquery_name(left),
        SetExpr::Query(q) => subquery_name(&q.body),
        _ => Some((UNSURE.into(), 2)),
    }
}

/// The name of an output whose Postgres name the analyzer cannot work out. A reference by name to
/// it is refused (see `Analyzer::projection`), since Postgres might resolve the name to it.
pub(super) const UNSURE: &str = "\u{0}unsure";

/// Postgres names a cast column after the type's internal name (`int4` for integer); None for a
/// type the analyzer does not know the internal name of.
fn type_colname(t: &sqlparser::ast::DataType) -> Option<String> {
    let text = t.to_string().to_ascii_lowercase();
    // Typmods and array bounds do not change the name, wherever they stand: `varchar(10)[]` is
    // `varchar`, `timestamp(3) with time zone` is `timestamp with time zone`.
    let mut plain = String::with_capacity(text.len());
    let mut depth = 0;
    for ch in text.chars() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let plain = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    let base = plain.as_str();
    let base = base.strip_prefix("pg_catalog.").unwrap_or(base);
    let float_bits = || text.split(['(', ')']).nth(1).and_then(|p| p.trim().parse::<u32>().ok());
    Some(
        match base {
            "integer" | "int" | "int4" => "int4",
            "bigint" | "int8" => "int8",
            "smallint" | "int2" => "int2",
            "boolean" | "bool" => "bool",
            "real" | "float4" => "float4",
            "double precision" | "float8" => "float8",
            "float" => match float_bits() {
                Some(p) if p <= 24 => "float4",
                _ => "float8",
            },
            "character" | "char" | "nchar" | "national character" | "bpchar" => "bpchar",
            "character varying" | "varchar" | "national character varying" | "nchar varying" => "varchar",
            "\"char\"" => "char",
            "decimal" | "dec" | "numeric" => "numeric",
            "timestamp" | "timestamp without time zone" => "timestamp",
            "timestamptz" | "timestamp with time zone" => "timestamptz",
            "time" | "time without time zone" => "time",
            "timetz" | "time with time zone" => "timetz",
            "bit varying" | "varbit" => "varbit",
            "text" | "date" | "interval" | "json" | "jsonb" | "uuid" | "bytea" | "name" | "oid" | "regclass"
            | "regtype" | "regproc" | "regnamespace" | "inet" | "cidr" | "money" | "xml" | "bit" | "tsvector"
            | "tsquery" => base,
            _ => return None,
        }
        .to_owned(),
    )
}
