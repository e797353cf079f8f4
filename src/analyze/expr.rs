//! Expressions: the lineage of each value and every column use with the clause and construct that consumed it.

use sqlparser::ast::{AccessExpr, BinaryOperator, Expr, InTarget, ObjectName, ObjectNamePart, UnaryOperator, Value};

use super::facts::{Clause, ColRef, Lineage, Use};
use super::lookup::{any_values, is_literal, placeholder};
use super::scope::{Found, Scope};
use super::{fold_ident, AnalyzeError, Analyzer};

/// Where an expression sits: its clause, and whether an exact-match lookup is allowed here
/// (only on the AND/OR/NOT spine of a WHERE).
#[derive(Debug, Clone, Copy)]
pub(super) struct Cx {
    pub clause: Clause,
    pub lookup: bool,
}

impl Cx {
    pub fn new(clause: Clause) -> Self {
        Cx { clause, lookup: false }
    }

    pub(super) fn inner(self) -> Self {
        Cx { lookup: false, ..self }
    }
}

fn op_name(op: &BinaryOperator) -> String {
    match op {
        BinaryOperator::PGCustomBinaryOperator(parts) => format!("OPERATOR({})", parts.join(".")),
        other => other.to_string(),
    }
}

fn is_equality(op: &BinaryOperator) -> bool {
    matches!(op, BinaryOperator::Eq)
        || matches!(op, BinaryOperator::PGCustomBinaryOperator(p) if p.last().is_some_and(|o| o == "="))
}

impl Analyzer<'_> {
    /// Records the plain children as used by `via`, and returns the derived lineage of the result.
    pub(super) fn consume(&mut self, parts: Vec<Lineage>, cx: Cx, via: &str) -> Lineage {
        let mut cols = Vec::new();
        for l in parts {
            if let Some(c) = l.plain_col() {
                self.record(c, cx.clause, via);
            }
            cols.extend(l.cols);
        }
        Lineage::derived(cols)
    }

    pub(super) fn record(&mut self, col: ColRef, clause: Clause, via: &str) {
        let u = Use {
            col,
            clause,
            via: via.to_owned(),
        };
        if !self.facts.uses.contains(&u) {
            self.facts.uses.push(u);
        }
    }

    fn exprs(&mut self, es: &[Expr], scope: &Scope, cx: Cx) -> Result<Vec<Lineage>, AnalyzeError> {
        es.iter().map(|e| self.expr(e, scope, cx.inner())).collect()
    }

    /// Lineage of an expression; uses inside it are recorded as they are consumed.
    #[recursive::recursive]
    pub(super) fn expr(&mut self, e: &Expr, scope: &Scope, cx: Cx) -> Result<Lineage, AnalyzeError> {
        self.spend()?;
        self.depth += 1;
        if self.depth > super::MAX_DEPTH {
            return Err(AnalyzeError::Unsupported("expression nesting is too deep".into()));
        }
        let out = self.expr_inner(e, scope, cx);
        self.depth -= 1;
        out
    }

    fn expr_inner(&mut self, e: &Expr, scope: &Scope, cx: Cx) -> Result<Lineage, AnalyzeError> {
        let ic = cx.inner();
        Ok(match e {
            Expr::Identifier(id) => self.column_ref(&[fold_ident(id)], scope, id.quote_style.is_none())?,
            Expr::CompoundIdentifier(ids) => {
                let parts: Vec<String> = ids.iter().map(fold_ident).collect();
                self.column_ref(&parts, scope, false)?
            }
            Expr::Value(v) if postgres_literal(&v.value) => Lineage::constant(),
            Expr::Value(v) => {
                return Err(AnalyzeError::Unsupported(format!(
                    "the literal `{v}`, a form Postgres does not have"
                )))
            }
            // `type 'text'` and `INTERVAL 'text'` are literals only with a string after them:
            // sqlparser also reads `text "phone"` and `interval name` so, where Postgres reads a
            // column and its alias (round 22).
            Expr::TypedString(t) if string_literal(&t.value.value) => {
                self.note_type(&t.data_type)?;
                Lineage::constant()
            }
            Expr::Interval(i) if matches!(&*i.value, Expr::Value(v) if string_literal(&v.value)) => Lineage::constant(),
            Expr::TypedString(_) | Expr::Interval(_) => {
                return Err(AnalyzeError::Unsupported(format!(
                    "`{}`: a type name before something other than a string literal",
                    super::shorten(&e.to_string())
                )))
            }
            Expr::Nested(inner) => self.expr(inner, scope, cx)?,
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::And | BinaryOperator::Or => {
                    // Generated filters chain hundreds of these; walk the left-deep spine instead of
                    // spending one level of MAX_DEPTH per link.
                    let mut operands = vec![right.as_ref()];
                    let mut head = left.as_ref();
                    while let Expr::BinaryOp { left, op: o, right } = head {
                        if o != op {
                            break;
                        }
                        operands.push(right);
                        head = left;
                    }
                    operands.push(head);
                    let mut parts = Vec::with_capacity(operands.len());
                    for x in operands.into_iter().rev() {
                        parts.push(self.expr(x, scope, cx)?);
                    }
                    self.consume(parts, ic, &op.to_string())
                }
                _ => {
                    self.binary_operator(op)?;
                    if cx.lookup && is_equality(op) {
                        if let Some(l) = self.lookup_side(left, right, scope, cx)? {
                            return Ok(l);
                        }
                        if let Some(l) = self.lookup_side(right, left, scope, cx)? {
                            return Ok(l);
                        }
                    }
                    let l = self.expr(left, scope, ic)?;
                    let r = self.expr(right, scope, ic)?;
                    self.consume(vec![l, r], ic, &op_name(op))
                }
            },
            Expr::UnaryOp { op, expr } => {
                // A negated lookup (`NOT (phone = $1)`, as ORMs write exclusions) tells no more than
                // the lookup itself; the values it tests count towards MAX_LOOKUP_VALUES all the same.
                // Prefix operators are looked up through search_path like infix ones (round 27: a
                // DBA's `zeitung.~` ran its function unlisted). `-` before a number is no operator
                // to Postgres: its grammar folds it into the constant.
                let folded = matches!(op, UnaryOperator::Minus) && matches!(expr.as_ref(), Expr::Value(_));
                if !matches!(op, UnaryOperator::Not) && !folded {
                    self.check_operator(&[op.to_string()])?;
                }
                let keep = if matches!(op, UnaryOperator::Not) { cx } else { ic };
                let l = self.expr(expr, scope, keep)?;
                self.consume(vec![l], ic, &op.to_string())
            }
            Expr::IsNull(x)
            | Expr::IsNotNull(x)
            | Expr::IsTrue(x)
            | Expr::IsNotTrue(x)
            | Expr::IsFalse(x)
            | Expr::IsNotFalse(x)
            | Expr::IsUnknown(x)
            | Expr::IsNotUnknown(x) => {
                let l = self.expr(x, scope, ic)?;
                self.consume(vec![l], ic, "IS [NOT] NULL/TRUE/FALSE")
            }
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                self.implicit_operators(&["="])?;
                let parts = vec![self.expr(a, scope, ic)?, self.expr(b, scope, ic)?];
                self.consume(parts, ic, "IS DISTINCT FROM")
            }
            Expr::IsNormalized { expr, .. } => {
                let l = self.expr(expr, scope, ic)?;
                self.consume(vec![l], ic, "IS NORMALIZED")
            }
            Expr::In {
                expr,
                target,
                negated: _,
                global: false,
            } => match self.implicit_operators(&["=", "<>"]).map(|()| target)? {
                InTarget::List(list) => {
                    if cx.lookup && list.iter().all(is_literal) {
                        list.iter().try_for_each(|x| self.literal_types(x))?;
                        let l = self.expr(expr, scope, ic)?;
                        if let Some(c) = l.plain_col() {
                            self.record_lookup(c, list.len(), "IN (…)");
                            return Ok(Lineage::derived(l.cols));
                        }
                        let mut parts = vec![l];
                        parts.extend(self.exprs(list, scope, ic)?);
                        return Ok(self.consume(parts, ic, "IN (…)"));
                    }
                    let mut parts = vec![self.expr(expr, scope, ic)?];
                    parts.extend(self.exprs(list, scope, ic)?);
                    self.consume(parts, ic, "IN (…)")
                }
                InTarget::Subquery(q) => {
                    let l = self.expr(expr, scope, ic)?;
                    let outs = self.subquery_lineage(q, scope)?;
                    let mut parts = vec![l];
                    parts.extend(outs);
                    self.consume(parts, ic, "IN (subquery)")
                }
                _ => return Err(AnalyzeError::Unsupported("IN over UNNEST or a table".into())),
            },
            Expr::Between { expr, low, high, .. } => {
                self.implicit_operators(&[">=", "<=", "<", ">"])?;
                let parts = vec![
                    self.expr(expr, scope, ic)?,
                    self.expr(low, scope, ic)?,
                    self.expr(high, scope, ic)?,
                ];
                self.consume(parts, ic, "BETWEEN")
            }
            Expr::Like {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::SimilarTo {
                expr,
                pattern,
                escape_char,
                ..
            } => {
                self.implicit_operators(&["~~", "!~~", "~~*", "!~~*", "~", "!~"])?;
                let pattern = match (super::like_quantifier(pattern), pattern.as_ref()) {
                    // `ALL (…)` is syntax that reads as a call: what it quantifies is analyzed.
                    (Some(array), Expr::Function(quantifier)) => {
                        self.covered.function(quantifier);
                        array
                    }
                    _ => pattern,
                };
                let mut parts = vec![self.expr(expr, scope, ic)?, self.expr(pattern, scope, ic)?];
                if let Some(esc) = escape_char {
                    parts.push(self.expr(esc, scope, ic)?);
                }
                self.consume(parts, ic, "LIKE/SIMILAR TO")
            }
            Expr::AnyOp {
                left,
                compare_op,
                right,
                ..
            } => {
                self.binary_operator(compare_op)?;
                if cx.lookup && is_equality(compare_op) {
                    // `'{a,b,…}'` normalizes to `?` whatever its length, and whether it is a lookup
                    // at all depends on the literal too: cache this by exact text.
                    self.literal_sensitive = true;
                }
                if let Some(n) = any_values(right).filter(|_| cx.lookup && is_equality(compare_op)) {
                    self.literal_types(right)?;
                    let l = self.expr(left, scope, ic)?;
                    if let Some(c) = l.plain_col() {
                        if let Some(p) = placeholder(right) {
                            self.facts.array_lookups.push((p, c));
                        }
                        self.record_lookup(c, n, "= ANY(…)");
                        return Ok(Lineage::derived(l.cols));
                    }
                    return Ok(self.consume(vec![l], ic, "ANY"));
                }
                let parts = vec![self.expr(left, scope, ic)?, self.expr(right, scope, ic)?];
                self.consume(parts, ic, "ANY")
            }
            Expr::AllOp {
                left,
                compare_op,
                right,
            } => {
                self.binary_operator(compare_op)?;
                let parts = vec![self.expr(left, scope, ic)?, self.expr(right, scope, ic)?];
                self.consume(parts, ic, "ALL")
            }
            Expr::Cast {
                expr,
                format: None,
                data_type,
                ..
            } => {
                self.note_type(data_type)?;
                let l = self.expr(expr, scope, ic)?;
                self.consume(vec![l], ic, "a cast")
            }
            Expr::Collate { expr, .. } => {
                let l = self.expr(expr, scope, ic)?;
                self.consume(vec![l], ic, "COLLATE")
            }
            Expr::AtTimeZone { timestamp, time_zone } => {
                let parts = vec![self.expr(timestamp, scope, ic)?, self.expr(time_zone, scope, ic)?];
                self.consume(parts, ic, "AT TIME ZONE")
            }
            Expr::Extract { expr, .. } => {
                let l = self.expr(expr, scope, ic)?;
                self.consume(vec![l], ic, "extract()")
            }
            Expr::Ceil { expr, .. } | Expr::Floor { expr, .. } => {
                let name = if matches!(e, Expr::Ceil { .. }) {
                    "ceil"
                } else {
                    "floor"
                };
                self.syntax_function(name, &e.to_string())?;
                let l = self.expr(expr, scope, ic)?;
                self.consume(vec![l], ic, "ceil()/floor()")
            }
            Expr::Position { expr, r#in } => {
                let parts = vec![self.expr(expr, scope, ic)?, self.expr(r#in, scope, ic)?];
                self.consume(parts, ic, "position()")
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                special,
                shorthand,
            } => {
                // `substring(a, b, c)` and `substr(…)` are ordinary calls, found through
                // search_path; only `substring(a FROM b FOR c)` is pg_catalog's by syntax.
                if *shorthand {
                    self.syntax_function("substr", &e.to_string())?;
                } else if *special {
                    self.syntax_function("substring", &e.to_string())?;
                }
                let mut parts = vec![self.expr(expr, scope, ic)?];
                for x in [substring_from, substring_for].into_iter().flatten() {
                    parts.push(self.expr(x, scope, ic)?);
                }
                self.consume(parts, ic, "substring()")
            }
            Expr::Trim {
                expr,
                trim_what,
                trim_characters,
                ..
            } => {
                let mut parts = vec![self.expr(expr, scope, ic)?];
                if let Some(w) = trim_what {
                    parts.push(self.expr(w, scope, ic)?);
                }
                if let Some(cs) = trim_characters {
                    parts.extend(self.exprs(cs, scope, ic)?);
                }
                self.consume(parts, ic, "trim()")
            }
            Expr::Overlay {
                expr,
                overlay_what,
                overlay_from,
                overlay_for,
            } => {
                let mut parts = vec![
                    self.expr(expr, scope, ic)?,
                    self.expr(overlay_what, scope, ic)?,
                    self.expr(overlay_from, scope, ic)?,
                ];
                if let Some(f) = overlay_for {
                    parts.push(self.expr(f, scope, ic)?);
                }
                self.consume(parts, ic, "overlay()")
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                if operand.is_some() {
                    self.implicit_operators(&["="])?;
                }
                let mut parts = Vec::new();
                if let Some(o) = operand {
                    parts.push(self.expr(o, scope, ic)?);
                }
                for w in conditions {
                    parts.push(self.expr(&w.condition, scope, ic)?);
                    parts.push(self.expr(&w.result, scope, ic)?);
                }
                if let Some(x) = else_result {
                    parts.push(self.expr(x, scope, ic)?);
                }
                self.consume(parts, ic, "CASE")
            }
            Expr::Exists { subquery, .. } => {
                self.subquery_lineage(subquery, scope)?;
                Lineage::constant()
            }
            Expr::Subquery(q) => {
                let outs = self.subquery_lineage(q, scope)?;
                match outs.len() {
                    1 => outs.into_iter().next().unwrap_or_default(),
                    _ => self.consume(outs, ic, "a row subquery"),
                }
            }
            Expr::Tuple(es) => {
                let parts = self.exprs(es, scope, ic)?;
                self.consume(parts, ic, "a row constructor")
            }
            Expr::Array(a) => {
                let parts = self.exprs(&a.elem, scope, ic)?;
                self.consume(parts, ic, "ARRAY[…]")
            }
            Expr::CompoundFieldAccess { root, access_chain } => {
                // Unparenthesized, the names up to the first subscript are one column reference,
                // as Postgres reads `t.col[1]`: a table `t`'s column, even where `t` is also a
                // column's name (round 188 Y2: `name.extra_phones[1:2]` read the allowed `name`
                // and skipped the dropped column; Y1: pgjdbc's `tmp.i_indoption[…]` counted as
                // the whole row of `tmp`).
                let named: Option<Vec<String>> = match root.as_ref() {
                    Expr::Identifier(id) => Some(vec![fold_ident(id)]),
                    Expr::CompoundIdentifier(ids) => Some(ids.iter().map(fold_ident).collect()),
                    _ => None,
                };
                let dots = access_chain
                    .iter()
                    .take_while(|a| named.is_some() && matches!(a, AccessExpr::Dot(Expr::Identifier(_))))
                    .count();
                let (lead, access_chain) = access_chain.split_at(dots);
                let root_l = match named {
                    Some(mut parts) if dots > 0 || parts.len() > 1 => {
                        parts.extend(lead.iter().filter_map(|a| match a {
                            AccessExpr::Dot(Expr::Identifier(f)) => Some(fold_ident(f)),
                            _ => None,
                        }));
                        self.column_ref(&parts, scope, false)?
                    }
                    Some(parts) => self.whole_row_or_column(&parts, scope, "(row).field")?,
                    None => self.expr(root, scope, ic)?,
                };
                let mut parts = vec![root_l];
                // `(c).name` on the row of a FROM item that has a column `name` selects it. Not
                // on a function of one column: its "row" is the value itself, so `(g).ts_stat` on
                // `unnest(…) g(ts_stat)` is the call ts_stat(g) (round 29).
                let mut row = match root.as_ref() {
                    Expr::Nested(inner) => match inner.as_ref() {
                        Expr::Identifier(id) => match scope.column(self, &fold_ident(id)) {
                            Ok(Some(Found::WholeRow(e))) => e.cols.as_deref().filter(|cols| cols.len() > 1),
                            _ => None,
                        },
                        _ => None,
                    },
                    _ => None,
                };
                for a in access_chain {
                    let row_field = match (a, row.take()) {
                        (AccessExpr::Dot(Expr::Identifier(f)), Some(cols)) => {
                            cols.iter().filter(|c| c.name == fold_ident(f)).count() == 1
                        }
                        _ => false,
                    };
                    match a {
                        // `(t).ctid` is t's system column, as `t.ctid` is, where a row lies or a
                        // transaction id (round 261 CT1): written so, it is not analyzed as one.
                        AccessExpr::Dot(Expr::Identifier(f))
                            if !row_field && super::scope::SYSTEM_COLUMNS.contains(&fold_ident(f).as_str()) =>
                        {
                            return Err(AnalyzeError::Unsupported(format!(
                                "`(…).{}`, a system column read through a row (write `alias.{}`)",
                                fold_ident(f),
                                fold_ident(f)
                            )));
                        }
                        // Postgres reads `(expr).f` as the call f(expr) when expr has no field f
                        // (functional notation): `(('SELECT …')::text).ts_stat` ran the query
                        // (round 28). Which one it is depends on expr's type; so no name a function
                        // has may follow a dot here.
                        AccessExpr::Dot(Expr::Identifier(f))
                            if !row_field && !self.ctx.catalog.function_schemas(&fold_ident(f)).is_empty() =>
                        {
                            return Err(AnalyzeError::Unsupported(format!(
                                "`(…).{}`, which Postgres may read as the call {}(…)",
                                fold_ident(f),
                                fold_ident(f)
                            )));
                        }
                        AccessExpr::Dot(x) => {
                            if !matches!(x, Expr::Identifier(_)) {
                                parts.push(self.expr(x, scope, ic)?);
                            }
                        }
                        AccessExpr::Subscript(s) => {
                            use sqlparser::ast::Subscript;
                            match s {
                                Subscript::Index { index } => parts.push(self.expr(index, scope, ic)?),
                                Subscript::Slice {
                                    lower_bound,
                                    upper_bound,
                                    stride,
                                } => {
                                    for b in [lower_bound, upper_bound, stride].into_iter().flatten() {
                                        parts.push(self.expr(b, scope, ic)?);
                                    }
                                }
                            }
                        }
                    }
                }
                self.consume(parts, ic, "a subscript or field access")
            }
            Expr::JsonAccess { value, .. } => {
                let l = self.expr(value, scope, ic)?;
                self.consume(vec![l], ic, "JSON access")
            }
            Expr::Function(f) => self.function(f, scope, ic)?,
            Expr::GroupingSets(sets) | Expr::Cube(sets) | Expr::Rollup(sets) => {
                let mut parts = Vec::new();
                for set in sets {
                    parts.extend(self.exprs(set, scope, ic)?);
                }
                self.consume(parts, ic, "GROUPING SETS")
            }
            other => {
                return Err(AnalyzeError::Unsupported(format!(
                    "expression `{}`",
                    super::shorten(&other.to_string())
                )))
            }
        })
    }

    /// The outputs of a subquery used inside an expression.
    pub(super) fn subquery_lineage(
        &mut self,
        q: &sqlparser::ast::Query,
        scope: &Scope,
    ) -> Result<Vec<Lineage>, AnalyzeError> {
        let outs = self.query(q, Some(scope))?;
        let first = match &outs {
            super::facts::Outputs::Known(o) => o.first().map_or("?column?", |o| o.name.as_str()),
            _ => super::names::UNSURE,
        };
        self.subquery_names.insert(super::names::query_key(q), first.to_owned());
        Ok(match outs.known() {
            Some(o) => o.iter().map(|o| o.lineage.clone()).collect(),
            None => vec![Lineage::constant()],
        })
    }
}

/// The folded parts of a name; parts that are not plain identifiers are not Postgres syntax.
pub(super) fn object_parts(n: &ObjectName) -> Result<Vec<String>, AnalyzeError> {
    n.0.iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(fold_ident(i)),
            ObjectNamePart::Function(_) => Err(AnalyzeError::Unsupported("function in a name".into())),
        })
        .collect()
}

/// The text of a string literal (possibly cast to text or varchar), if `e` is one. A cast to
/// another type changes the text (round 217 BB2: `'search_pathX'::char(11)` is `search_path` to
/// Postgres), and so does `N'…'`, a bpchar, whose trailing spaces go when it becomes text: those
/// are no literal text here.
pub(super) fn literal_string(e: &Expr) -> Option<String> {
    use sqlparser::ast::DataType;
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
            Value::DollarQuotedString(d) => Some(d.value.clone()),
            _ => None,
        },
        Expr::Cast {
            expr,
            data_type: DataType::Text | DataType::Varchar(None) | DataType::CharacterVarying(None),
            ..
        } => literal_string(expr),
        Expr::Nested(expr) => literal_string(expr),
        _ => None,
    }
}

/// A string literal as Postgres writes one: `'…'`, `E'…'` or `$$…$$`.
pub(super) fn string_literal(v: &Value) -> bool {
    matches!(
        v,
        Value::SingleQuotedString(_) | Value::EscapedStringLiteral(_) | Value::DollarQuotedString(_)
    )
}

/// A literal Postgres has; sqlparser knows forms of other databases (`"…"` as a string, `r'…'`).
pub(super) fn postgres_literal(v: &Value) -> bool {
    string_literal(v)
        || matches!(
            v,
            Value::Number(..)
                | Value::NationalStringLiteral(_)
                | Value::HexStringLiteral(_)
                | Value::SingleQuotedByteStringLiteral(_)
                | Value::Boolean(_)
                | Value::Null
                | Value::Placeholder(_)
        )
}
