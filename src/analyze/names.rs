//! Result column names the way Postgres's FigureColname picks them, so references to subquery
//! columns bind to the same column Postgres binds them to.

use sqlparser::ast::{Expr, FunctionArguments, ObjectNamePart};

use super::fold_ident;

/// The name Postgres gives an unaliased select-list expression.
/// Where the analyzer cannot tell (Postgres's rules reach into types and functions), the name is
/// `UNSURE`, which name resolution treats as possibly any name.
pub(super) fn figure_colname(e: &Expr) -> String {
    figure(e).map(|(n, _)| n).unwrap_or_else(|| UNSURE.into())
}

/// (name, strength): 2 for names taken from columns and functions, 1 for fallbacks such as type names.
fn figure(e: &Expr) -> Option<(String, u8)> {
    match e {
        Expr::Identifier(id) => Some((fold_ident(id), 2)),
        Expr::CompoundIdentifier(ids) => ids.last().map(|i| (fold_ident(i), 2)),
        Expr::CompoundFieldAccess { access_chain, root } => match access_chain.last() {
            Some(sqlparser::ast::AccessExpr::Dot(Expr::Identifier(id))) => Some((fold_ident(id), 2)),
            _ => figure(root),
        },
        Expr::Function(f) => {
            if let FunctionArguments::Subquery(_) = &f.args {
                return Some(("array".into(), 2));
            }
            f.name.0.last().and_then(|p| match p {
                ObjectNamePart::Identifier(i) => Some((fold_ident(i), 2)),
                _ => None,
            })
        }
        Expr::Cast { expr, data_type, .. } => match figure(expr) {
            Some((n, 2)) => Some((n, 2)),
            _ => {
                let t = data_type.to_string().to_ascii_lowercase();
                let last = t
                    .split(['(', '[', ' '])
                    .next()
                    .unwrap_or("")
                    .rsplit('.')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                Some((type_colname(&last), 1))
            }
        },
        Expr::Collate { expr, .. } | Expr::Nested(expr) => figure(expr),
        // Postgres names a CASE after its ELSE branch when that has a name of its own.
        Expr::Case { else_result, .. } => match else_result.as_deref().and_then(figure) {
            Some((n, 2)) => Some((n, 2)),
            _ => Some(("case".into(), 1)),
        },
        Expr::Array(_) => Some(("array".into(), 2)),
        Expr::Exists { .. } => Some(("exists".into(), 2)),
        Expr::Subquery(q) => subquery_name(&q.body),
        Expr::Extract { .. } => Some(("extract".into(), 2)),
        Expr::Substring { .. } => Some(("substring".into(), 2)),
        Expr::Trim { .. } => Some(("btrim".into(), 2)),
        Expr::Position { .. } => Some(("position".into(), 2)),
        Expr::Overlay { .. } => Some(("overlay".into(), 2)),
        Expr::Ceil { .. } => Some(("ceil".into(), 2)),
        Expr::Floor { .. } => Some(("floor".into(), 2)),
        Expr::Tuple(_) => Some(("row".into(), 2)),
        Expr::TypedString(t) => Some((type_colname(&t.data_type.to_string().to_ascii_lowercase()), 1)),
        Expr::Interval(_) => Some(("interval".into(), 1)),
        _ => None,
    }
}

/// A scalar subquery is named after its first output column: the first item of its (leftmost)
/// SELECT. A `*` there names it after a column only the analysis knows; that is `Unsure`.
fn subquery_name(body: &sqlparser::ast::SetExpr) -> Option<(String, u8)> {
    use sqlparser::ast::{SelectItem, SetExpr};
    match body {
        SetExpr::Select(s) => match s.projection.first()? {
            SelectItem::UnnamedExpr(e) => figure(e),
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

/// Postgres names a cast column after the type's internal name (`int4` for integer).
fn type_colname(t: &str) -> String {
    match t {
        "integer" | "int" => "int4".into(),
        "bigint" => "int8".into(),
        "smallint" => "int2".into(),
        "boolean" => "bool".into(),
        "real" => "float4".into(),
        "double" => "float8".into(),
        "character" | "char" => "bpchar".into(),
        "varchar" | "character varying" => "varchar".into(),
        "decimal" => "numeric".into(),
        "timestamp" => "timestamp".into(),
        other => other.to_owned(),
    }
}
