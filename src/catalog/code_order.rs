//! Whether a DBA's function keeps whichever row a plan reads first (round 183 T1): a scalar SQL
//! function returns its last query's first row, PL/pgSQL's `SELECT … INTO` keeps the first row,
//! and `LIMIT`, cursors and loops take rows in the order they come. Unless the query can find at
//! most one row (a lookup by a unique key, an aggregate without GROUP BY), which row that is
//! follows the plan and where another session's synchronized scan left off, so a row-level
//! security policy that calls such a function cannot be relied on.

use std::collections::HashMap;

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArguments, GroupByExpr, JoinConstraint, JoinOperator, Query, SelectItem, SetExpr,
    Statement, TableFactor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::{Catalog, RelId};
use crate::analyze::fold_ident;

/// Words of code that take rows in the order they come, in any language: row limits, cursors and
/// loops (which may leave early), chance, windows, and aggregates whose result follows the order
/// of their input (text and arrays joined in order, float sums rounded in order).
const ORDER_WORDS: &[&str] = &[
    "limit",
    "offset",
    "fetch",
    "cursor",
    "refcursor",
    "loop",
    "tablesample",
    "random",
    "setseed",
    "gen_random_uuid",
    "uuid_generate_v1*",
    "uuid_generate_v4",
    "over",
    "string_agg",
    "array_agg",
    "json_agg",
    "jsonb_agg",
    "json_agg_strict",
    "jsonb_agg_strict",
    "json_object_agg*",
    "jsonb_object_agg*",
    "json_arrayagg",
    "json_objectagg",
    "xmlagg",
    "any_value",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "sum",
    "avg",
    "stddev*",
    "var_*",
    "variance",
    "regr_*",
    "corr",
    "covar_*",
    "range_agg",
    "range_intersect_agg",
];

/// Aggregates whose one row does not depend on the order of their input (for the types a lookup
/// compares: `min` of text under a deterministic collation, a count).
const ONE_ROW_AGGREGATES: &[&str] = &["count", "min", "max", "bool_and", "bool_or", "every"];

/// What makes the function take rows in the order a plan reads them, if anything.
/// `language` is its language (`aggregate` for a DBA's aggregate), `setof` whether it returns a
/// set (all rows: no row is chosen), `body` its code as Postgres runs it (prosrc, or the SQL-standard
/// body), `keys` the unique keys that prove a lookup finds at most one row (see `ONE_ROW_KEYS`).
pub fn takes_rows_in_order(
    language: &str,
    setof: bool,
    body: &str,
    catalog: &Catalog,
    keys: &HashMap<u32, Vec<Vec<i16>>>,
) -> Option<String> {
    if language == "aggregate" {
        // Its state function sees the rows in the order they come; what it keeps of them its code
        // alone does not say.
        return Some("an aggregate of the DBA's, whose state sees rows in the order they come".into());
    }
    let plain = super::code::without_comments(body);
    for text in [plain.as_str(), body] {
        let words = super::code::tokens(text);
        if let Some(w) = words.iter().find(|w| ORDER_WORDS.iter().any(|o| matches_word(o, w))) {
            return Some(format!("{w} in its code"));
        }
        if words.windows(2).any(|p| p[0] == "distinct" && p[1] == "on") {
            return Some("DISTINCT ON in its code".into());
        }
        if words.windows(2).any(|p| p[0] == "array" && p[1] == "select") {
            return Some("ARRAY(SELECT …) in its code".into());
        }
    }
    let one_row = OneRow { catalog, keys };
    match language {
        "sql" if setof => None,
        "sql" => {
            let last = sql_body_last(body);
            match last.as_deref().map(|q| one_row.query(q)) {
                Some(true) => None,
                _ => Some("a query that may find more than one row, of which the function returns the first".into()),
            }
        }
        "plpgsql" => plpgsql_first_rows(&plain, &one_row),
        // A built-in function under another name (its body is the C function's name), which
        // reads no table.
        "internal" => None,
        // Other languages' code does not say; their queries run as they choose.
        _ => Some(format!("code in {language}, which unscharf cannot read")),
    }
}

/// Whether code may close, open, move or fetch from a cursor of the session: PL/pgSQL finds any
/// portal by name, the client's DECLAREs and Bind portals too (round 185 V2).
pub fn handles_cursors(source: &str) -> bool {
    const CURSOR_WORDS: &[&str] = &["open", "close", "fetch", "move", "cursor", "refcursor"];
    [super::code::without_comments(source).as_str(), source]
        .iter()
        .any(|text| {
            super::code::tokens(text)
                .iter()
                .any(|w| CURSOR_WORDS.contains(&w.as_str()))
        })
}

/// `word` matches `pattern` (a trailing `*` matches a prefix).
fn matches_word(pattern: &str, word: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => word.starts_with(prefix),
        None => word == pattern,
    }
}

/// The last statement of a SQL function's body, a query, or None: a `RETURN expr` body is one row
/// (Some of `SELECT expr`), anything unscharf cannot parse is None.
fn sql_body_last(body: &str) -> Option<Box<Query>> {
    if body.contains("U&") || body.contains("u&") {
        return None;
    }
    let trimmed = body.trim();
    let lower = trimmed.to_ascii_lowercase();
    let text = if lower.starts_with("return") {
        // A scalar expression: one row (a scalar subquery in it errs on a second).
        return parse_query("SELECT 1");
    } else if lower.starts_with("begin") {
        let inner = trimmed["begin".len()..].trim_start();
        let inner = inner
            .get("atomic".len()..)
            .filter(|_| inner.to_ascii_lowercase().starts_with("atomic"))?;
        let inner = inner.trim_end().trim_end_matches(';').trim_end();
        inner.strip_suffix("END").or_else(|| inner.strip_suffix("end"))?
    } else {
        trimmed
    };
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, text).ok()?;
    match statements.pop()? {
        Statement::Query(q) => Some(q),
        _ => None,
    }
}

fn parse_query(sql: &str) -> Option<Box<Query>> {
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    match (statements.pop()?, statements.is_empty()) {
        (Statement::Query(q), true) => Some(q),
        _ => None,
    }
}

/// The first PL/pgSQL `SELECT … INTO` (not STRICT) whose query may find more than one row: it
/// keeps the first. (`INTO STRICT` errs on a second row; INSERT, UPDATE and DELETE … RETURNING
/// INTO err on a second row even without STRICT; `EXECUTE … INTO` runs a query the code builds.)
fn plpgsql_first_rows(plain: &str, one_row: &OneRow<'_>) -> Option<String> {
    for statement in split_statements(plain) {
        let words = super::code::tokens(statement);
        let Some(into) = words.iter().position(|w| w == "into") else {
            continue;
        };
        if matches!(
            words.get(into.wrapping_sub(1)).map(String::as_str),
            Some("insert" | "merge")
        ) {
            continue;
        }
        if words[..into].iter().any(|w| w == "execute") {
            return Some("EXECUTE … INTO, which keeps the first row of a query built at run time".into());
        }
        if !words[..into].iter().any(|w| w == "select") || words.get(into + 1).is_some_and(|w| w == "strict") {
            continue;
        }
        let kept = without_into(statement).and_then(|q| parse_query(&q));
        if !kept.is_some_and(|q| one_row.query(&q)) {
            return Some(
                "SELECT … INTO without STRICT over a query that may find more than one row: it keeps the first".into(),
            );
        }
    }
    None
}

/// `statement` from its first SELECT or WITH on, without the `INTO targets` PL/pgSQL adds, or
/// None if it cannot be cut out.
fn without_into(statement: &str) -> Option<String> {
    let lower = statement.to_ascii_lowercase();
    let word_at = |w: &str| {
        let b = lower.as_bytes();
        let mut from = 0;
        while let Some(i) = lower[from..].find(w).map(|i| i + from) {
            let before = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
            let end = i + w.len();
            let after = end >= b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'_');
            if before && after {
                return Some(i);
            }
            from = i + 1;
        }
        None
    };
    let start = [word_at("with"), word_at("select")].into_iter().flatten().min()?;
    let into = word_at("into")?;
    if into < start {
        return None;
    }
    // The targets: names, perhaps qualified, separated by commas.
    let b = statement.as_bytes();
    let mut i = into + "into".len();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.' || b[i] >= 0x80) {
            i += 1;
        }
        if i == name_start {
            return None;
        }
        let mut j = i;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) == Some(&b',') {
            i = j + 1;
        } else {
            break;
        }
    }
    Some(format!("{} {}", &statement[start..into], &statement[i..]))
}

/// `text` cut at semicolons outside quotes and dollar-quoted strings (comments already blanked).
fn split_statements(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let (mut out, mut start, mut i) = (Vec::new(), 0, 0);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
            }
            b'$' => {
                let tag_end = b[i + 1..]
                    .iter()
                    .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'));
                if let Some(end) = tag_end.map(|n| i + 1 + n).filter(|&e| b[e] == b'$') {
                    let tag = &text[i..=end];
                    let body = end + 1;
                    i = text[body..].find(tag).map_or(b.len(), |n| body + n + tag.len() - 1);
                }
            }
            b';' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&text[start.min(text.len())..]);
    out
}

/// Whether a query finds at most one row, as far as the catalog's unique keys prove it.
struct OneRow<'a> {
    catalog: &'a Catalog,
    keys: &'a HashMap<u32, Vec<Vec<i16>>>,
}

/// A relation in the FROM of a lookup: the name it is referred to by, and the relations its name
/// may resolve to (an unqualified name, by whatever search_path the function runs with).
struct Item {
    alias: String,
    rels: Vec<RelId>,
}

impl OneRow<'_> {
    fn query(&self, q: &Query) -> bool {
        if q.with.is_some() {
            return false;
        }
        let select = match q.body.as_ref() {
            SetExpr::Select(s) => s,
            SetExpr::Values(v) => return v.rows.len() <= 1,
            _ => return false,
        };
        let grouped = match &select.group_by {
            GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
            GroupByExpr::All(_) => true,
        };
        if grouped || select.having.is_some() {
            return false;
        }
        if select.from.is_empty() {
            return true;
        }
        let aggregated = select.projection.iter().any(|p| match p {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => has_aggregate(e),
            _ => false,
        });
        if aggregated {
            return true;
        }
        let mut items = Vec::new();
        let mut conjuncts: Vec<&Expr> = Vec::new();
        for twj in &select.from {
            let Some(item) = self.item(&twj.relation) else {
                return false;
            };
            items.push(item);
            for join in &twj.joins {
                let constraint = match &join.join_operator {
                    JoinOperator::Join(c)
                    | JoinOperator::Inner(c)
                    | JoinOperator::Left(c)
                    | JoinOperator::LeftOuter(c) => c,
                    _ => return false,
                };
                let Some(item) = self.item(&join.relation) else {
                    return false;
                };
                items.push(item);
                match constraint {
                    JoinConstraint::On(e) => conjuncts_of(e, &mut conjuncts),
                    JoinConstraint::None => {}
                    _ => return false,
                }
            }
        }
        if let Some(w) = &select.selection {
            conjuncts_of(w, &mut conjuncts);
        }
        self.determined(&items, &conjuncts)
    }

    fn item(&self, tf: &TableFactor) -> Option<Item> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = tf
        else {
            return None;
        };
        let parts = crate::analyze::object_name_parts(name)?;
        let rels: Vec<RelId> = match parts.as_slice() {
            [table] => self.catalog.named(table).to_vec(),
            [schema, table] => self
                .catalog
                .lookup(&crate::policy::QName::new(schema, table))
                .into_iter()
                .collect(),
            _ => return None,
        };
        if rels.is_empty() {
            return None;
        }
        let alias = match alias {
            Some(a) if a.columns.is_empty() => fold_ident(&a.name),
            Some(_) => return None,
            None => parts.last()?.clone(),
        };
        Some(Item { alias, rels })
    }

    /// Whether the equalities among `conjuncts` pin every item to at most one row: an item is
    /// pinned once each of its possible relations has a unique key whose columns all equal
    /// expressions of pinned items' columns, parameters or functions.
    fn determined(&self, items: &[Item], conjuncts: &[&Expr]) -> bool {
        let mut pinned = vec![false; items.len()];
        loop {
            let mut changed = false;
            for (i, item) in items.iter().enumerate() {
                if pinned[i] {
                    continue;
                }
                let bound: Vec<String> = conjuncts
                    .iter()
                    .filter_map(|c| self.bound_column(items, &pinned, i, c))
                    .collect();
                let keyed = item.rels.iter().all(|&rel| {
                    let r = self.catalog.rel(rel);
                    self.keys.get(&r.oid).is_some_and(|keys| {
                        keys.iter().any(|key| {
                            key.iter().all(|attnum| {
                                r.columns
                                    .iter()
                                    .find(|c| c.attnum == *attnum)
                                    .is_some_and(|c| bound.contains(&c.name))
                            })
                        })
                    })
                });
                if keyed {
                    pinned[i] = true;
                    changed = true;
                }
            }
            if !changed {
                return pinned.iter().all(|p| *p);
            }
        }
    }

    /// The column of item `i` that `c` equals to something already known, if `c` is such an
    /// equality.
    fn bound_column(&self, items: &[Item], pinned: &[bool], i: usize, c: &Expr) -> Option<String> {
        let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = c
        else {
            return None;
        };
        for (col, other) in [(left, right), (right, left)] {
            let Some((owner, name)) = self.column_of(items, col) else {
                continue;
            };
            if owner != Some(i) {
                continue;
            }
            if self.known(items, pinned, other) {
                return Some(name);
            }
        }
        None
    }

    /// The item a column reference belongs to (None for a name no item has: a parameter), and its
    /// name; None if `e` is no column reference or it is ambiguous.
    fn column_of(&self, items: &[Item], e: &Expr) -> Option<(Option<usize>, String)> {
        let has = |item: &Item, col: &str| {
            item.rels
                .iter()
                .any(|&r| self.catalog.rel(r).columns.iter().any(|c| c.name == col))
        };
        match unnested(e) {
            Expr::Identifier(id) => {
                let col = fold_ident(id);
                let owners: Vec<usize> = (0..items.len()).filter(|&i| has(&items[i], &col)).collect();
                match owners.as_slice() {
                    [] => Some((None, col)),
                    [one] => Some((Some(*one), col)),
                    _ => None,
                }
            }
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let (alias, col) = (fold_ident(&parts[0]), fold_ident(&parts[1]));
                let owner = items.iter().position(|it| it.alias == alias)?;
                has(&items[owner], &col).then_some((Some(owner), col))
            }
            _ => None,
        }
    }

    /// Whether `e` is known once the pinned items are: it reads no column of an unpinned item and
    /// holds no subquery (which could read anything).
    fn known(&self, items: &[Item], pinned: &[bool], e: &Expr) -> bool {
        let mut ok = true;
        let _ = sqlparser::ast::visit_expressions(e, |x: &Expr| {
            match x {
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { .. } => ok = false,
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => match self.column_of(items, x) {
                    Some((None, _)) => {}
                    Some((Some(owner), _)) if pinned[owner] => {}
                    _ => ok = false,
                },
                _ => {}
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        ok
    }
}

fn unnested(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(inner) => unnested(inner),
        _ => e,
    }
}

fn conjuncts_of<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match unnested(e) {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts_of(left, out);
            conjuncts_of(right, out);
        }
        other => out.push(other),
    }
}

/// Whether `e` calls one of ONE_ROW_AGGREGATES outside any subquery (which makes its SELECT,
/// without GROUP BY, one row).
fn has_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => {
            let name = crate::analyze::object_name_parts(&f.name).and_then(|p| p.last().cloned());
            let listed = name.is_some_and(|n| ONE_ROW_AGGREGATES.contains(&n.as_str()));
            if listed && f.over.is_none() {
                return true;
            }
            match &f.args {
                FunctionArguments::List(l) => l.args.iter().any(|a| match a {
                    sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(e)) => has_aggregate(e),
                    _ => false,
                }),
                _ => false,
            }
        }
        Expr::BinaryOp { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => has_aggregate(expr),
        Expr::IsNull(expr) | Expr::IsNotNull(expr) => has_aggregate(expr),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
