//! WHERE lookups (`lookup: true`): what a masked column may be compared against, and how many
//! values one statement may test it with.

use sqlparser::ast::{DataType, Expr, UnaryOperator, Value};

use super::expr::Cx;
use super::facts::{Clause, ColRef, Lineage};
use super::scope::Scope;
use super::{AnalyzeError, Analyzer};

/// How many values one statement may look a column up against (`lookup: true`): enough for the
/// number on the screen in a few spellings, too few to test a column against lists of guesses.
pub const MAX_LOOKUP_VALUES: usize = 10;

/// How many values `= ANY(x)` compares against, when `x` is a literal array or a parameter
/// (a parameter counts as one here; its elements are counted when it is bound).
pub(super) fn any_values(e: &Expr) -> Option<usize> {
    match array_operand(e)? {
        Expr::Array(a) if !a.elem.iter().all(scalar_element) => None,
        Expr::Value(v) if matches!(v.value, Value::Placeholder(_)) => Some(1),
        other => literal_array_len(other),
    }
}

/// An array operand unwrapped: brackets, and at most one cast, to an array of a scalar type.
/// A chain of casts can decode the value before the array is read: in `'…'::bytea::text::text[]`
/// each `\042` became a quote, so what counted as one element held thousands (round 88).
fn array_operand(e: &Expr) -> Option<&Expr> {
    match unbracket(e) {
        Expr::Cast { expr, data_type, .. } => match (data_type, unbracket(expr)) {
            (_, Expr::Cast { .. }) => None,
            (DataType::Array(def), inner) if array_of_scalar(def) => Some(inner),
            _ => None,
        },
        other => Some(other),
    }
}

fn unbracket(mut e: &Expr) -> &Expr {
    while let Expr::Nested(x) = e {
        e = x;
    }
    e
}

/// `text[]` and the like; any other spelling (`_text`, a domain over an array) is not counted.
fn array_of_scalar(def: &sqlparser::ast::ArrayElemTypeDef) -> bool {
    match def {
        sqlparser::ast::ArrayElemTypeDef::SquareBracket(t, None) => scalar_type(t),
        _ => false,
    }
}

/// An element of `ARRAY[…]` that is one value: a literal, cast to a scalar type at most. Not a
/// parameter: a client may declare its type an array, and `ARRAY[$1]` then holds a whole list.
pub(super) fn scalar_element(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => !matches!(v.value, Value::Placeholder(_)),
        Expr::TypedString(t) => scalar_type(&t.data_type),
        Expr::Nested(x) => scalar_element(x),
        Expr::Cast { expr, data_type, .. } => scalar_type(data_type) && scalar_element(expr),
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => scalar_element(expr),
        _ => false,
    }
}

/// Whether a type is surely not an array. An array type has other spellings than `text[]`
/// (`_text`, a domain over an array), so a named type counts only when it is a known scalar.
pub(super) fn scalar_type(t: &DataType) -> bool {
    const SCALAR_NAMES: &[&str] = &[
        "text",
        "varchar",
        "bpchar",
        "char",
        "name",
        "citext",
        "int2",
        "int4",
        "int8",
        "float4",
        "float8",
        "numeric",
        "bool",
        "date",
        "time",
        "timetz",
        "timestamp",
        "timestamptz",
        "interval",
        "uuid",
        "inet",
        "cidr",
        "bytea",
        "json",
        "jsonb",
        "money",
        "oid",
    ];
    match t {
        DataType::Custom(name, _) => {
            let n = name.to_string().replace('"', "").to_ascii_lowercase();
            SCALAR_NAMES.contains(&n.strip_prefix("pg_catalog.").unwrap_or(&n))
        }
        DataType::Array(_)
        | DataType::Struct(..)
        | DataType::Map(..)
        | DataType::Tuple(_)
        | DataType::Nested(_)
        | DataType::Table(_)
        | DataType::Union(_) => false,
        _ => !t.to_string().contains('['),
    }
}

/// The parameter number of `$n`, possibly cast or bracketed.
pub(super) fn placeholder(e: &Expr) -> Option<usize> {
    match e {
        Expr::Cast { expr, .. } | Expr::Nested(expr) => placeholder(expr),
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => p.strip_prefix('$')?.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Elements of an EXECUTE argument that is a literal array (`'{a,b}'`, `ARRAY['a','b']`); None
/// for anything else, nested arrays included (`ANY` scans every element of every dimension).
pub(super) fn literal_array_len(e: &Expr) -> Option<usize> {
    match array_operand(e)? {
        Expr::Array(a) if a.elem.iter().all(scalar_element) => Some(a.elem.len()),
        Expr::Array(_) => None,
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => array_literal_len(s),
            _ => None,
        },
        _ => None,
    }
}

/// Elements of a bound array parameter, in text (`{a,b}`) or binary format; None if unreadable.
pub fn bound_array_len(format: i16, value: &[u8]) -> Option<usize> {
    if format == 0 {
        return array_literal_len(std::str::from_utf8(value).ok()?);
    }
    let int = |at: usize| {
        value
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let ndim = usize::try_from(int(0)?).ok()?;
    if ndim == 0 {
        return Some(0);
    }
    (0..ndim).try_fold(1usize, |n, d| n.checked_mul(usize::try_from(int(12 + 8 * d)?).ok()?))
}

/// Elements of a one-dimensional array literal (`{a,"b,c",NULL}`); None for anything else.
pub fn array_literal_len(text: &str) -> Option<usize> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    if inner.trim().is_empty() {
        return Some(0);
    }
    let (mut n, mut quoted, mut escaped) = (1, false, false);
    for c in inner.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => n += 1,
            '{' | '}' if !quoted => return None,
            _ => {}
        }
    }
    (!quoted).then_some(n)
}

/// A literal or parameter, possibly cast: what a lookup may compare against.
pub(super) fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => super::expr::postgres_literal(&v.value),
        Expr::TypedString(t) => super::expr::string_literal(&t.value.value),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => is_literal(expr),
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => is_literal(expr),
        Expr::Array(a) => a.elem.iter().all(is_literal),
        _ => false,
    }
}

impl Analyzer<'_> {
    /// The types a lookup's literal side is cast to, checked as any cast is (round 30:
    /// `phone = 'x%'::zeitung.dom::text` ran a DBA domain's CHECK, which the same cast in the
    /// select list would not).
    pub(super) fn literal_types(&mut self, e: &Expr) -> Result<(), AnalyzeError> {
        match e {
            Expr::TypedString(t) => self.note_type(&t.data_type),
            Expr::Cast { expr, data_type, .. } => {
                self.note_type(data_type)?;
                self.literal_types(expr)
            }
            Expr::Nested(x) | Expr::UnaryOp { expr: x, .. } => self.literal_types(x),
            Expr::Array(a) => a.elem.iter().try_for_each(|x| self.literal_types(x)),
            _ => Ok(()),
        }
    }

    /// A lookup of `col` against `values` values; past MAX_LOOKUP_VALUES in one statement it is
    /// an ordinary WHERE use, which a masked column may not have.
    pub(super) fn record_lookup(&mut self, col: ColRef, values: usize, via: &str) {
        let total = match self.facts.looked_up.iter_mut().find(|(c, _)| *c == col) {
            Some((_, n)) => {
                *n += values;
                *n
            }
            None => {
                self.facts.looked_up.push((col, values));
                values
            }
        };
        if total <= MAX_LOOKUP_VALUES {
            self.record(col, Clause::WhereLookup, via);
        } else {
            let why = format!("{via} (more than {MAX_LOOKUP_VALUES} values looked up in one statement)");
            self.record(col, Clause::Where, &why);
        }
    }

    /// `col = literal` on the WHERE spine: the column is looked up, not read.
    pub(super) fn lookup_side(
        &mut self,
        col: &Expr,
        lit: &Expr,
        scope: &Scope,
        cx: Cx,
    ) -> Result<Option<Lineage>, AnalyzeError> {
        if !is_literal(lit) {
            return Ok(None);
        }
        self.literal_types(lit)?;
        let target = match col {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => col,
            Expr::Nested(inner) if matches!(**inner, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => inner,
            Expr::Subquery(_) => col,
            _ => return Ok(None),
        };
        let l = self.expr(target, scope, cx.inner())?;
        match l.plain_col() {
            Some(c) => {
                self.record_lookup(c, 1, "=");
                Ok(Some(Lineage::derived(l.cols)))
            }
            None => Ok(Some(self.consume(vec![l], cx.inner(), "="))),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn array_literals_are_counted_like_postgres_reads_them() {
        use super::array_literal_len;
        assert_eq!(array_literal_len("{}"), Some(0));
        assert_eq!(array_literal_len("{a}"), Some(1));
        assert_eq!(array_literal_len(r#"{"a,b", c, NULL}"#), Some(3));
        assert_eq!(array_literal_len(r#"{"a\"b", c}"#), Some(2));
        assert_eq!(array_literal_len("{{a,b},{c,d}}"), None, "more than one dimension");
        assert_eq!(array_literal_len("a,b"), None);
        use super::bound_array_len;
        assert_eq!(bound_array_len(0, b"{x,y,z}"), Some(3));
        // Binary: ndim, flags, element type, then (length, lower bound) per dimension.
        let mut two_by_three = vec![0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 25];
        two_by_three.extend([0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 1]);
        assert_eq!(bound_array_len(1, &two_by_three), Some(6));
        assert_eq!(bound_array_len(1, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25]), Some(0));
        assert_eq!(bound_array_len(1, &[0, 0, 0, 1, 0, 0]), None, "truncated");
    }
}
