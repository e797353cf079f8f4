//! Checks that sqlparser read a statement the way Postgres's grammar does, on sqlparser's own
//! tokens and tree: the token signature (compared with the lexer's), reserved words read as names,
//! and operator grouping. `crosscheck` compares the names with libpg_query's tree after these.

use std::ops::ControlFlow;

use sqlparser::ast::{visit_expressions, Expr, Ident, ObjectName, ObjectNamePart, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::lexer::{self, SigItem};
use super::{like_quantifiers, shorten, AnalyzeError};

/// Whether Postgres could read `text` otherwise than unscharf if a function a statement before it
/// ran had changed `standard_conforming_strings` (backslashes in plain string literals) or
/// `client_encoding` (bytes above ASCII). Such a change is reported only with the ReadyForQuery
/// after it, so for text sent before that (a pipeline) unscharf cannot know which reading holds
/// (round 217 BB3: a listed function that set settings by a name the agent passed turned
/// `standard_conforming_strings` off between two messages of one pipeline, and the next Parse's
/// literal ended elsewhere for Postgres).
pub fn reads_by_session_settings(text: &[u8]) -> bool {
    text.iter().any(|&b| b == b'\\' || b >= 0x80)
}

/// sqlparser's view of the words and literals, for the parser-differential check.
pub(crate) fn sqlparser_signature(text: &str) -> Result<Vec<SigItem>, AnalyzeError> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize()
        .map_err(|e| AnalyzeError::Parse(e.to_string()))?;
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        out.push(match t {
            Token::Word(w) => match w.quote_style {
                None => SigItem::Word(w.value.to_ascii_lowercase()),
                Some('"') => SigItem::Quoted(w.value),
                Some(_) => return Err(AnalyzeError::Differential("non-Postgres quoting".into())),
            },
            Token::Number(..) => SigItem::Literal(lexer::LiteralKind::Number),
            Token::SingleQuotedString(_)
            | Token::EscapedStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_) => SigItem::Literal(lexer::LiteralKind::String),
            Token::Placeholder(p) => match p.strip_prefix('$').and_then(|n| n.parse().ok()) {
                Some(n) => SigItem::Param(n),
                // The server's `?` is an operator (jsonb's key test).
                None if p == "?" => SigItem::Op(p),
                None => return Err(AnalyzeError::Differential(format!("placeholder {p}"))),
            },
            Token::Whitespace(_) => continue,
            Token::EOF => break,
            other => {
                let text = other.to_string();
                if text
                    .chars()
                    .next()
                    .is_none_or(|c| c.is_alphanumeric() || c == '\'' || c == '"')
                {
                    return Err(AnalyzeError::Differential(format!("token {other}")));
                }
                SigItem::op(&text)
            }
        });
    }
    Ok(out)
}

pub(crate) fn same_signature(a: &[SigItem], b: &[SigItem]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (SigItem::Literal(_), SigItem::Literal(_)) => true,
            _ => x == y,
        })
}

/// Words Postgres reserves (kwlist.h, RESERVED_KEYWORD), without the value functions
/// (`current_user`, …) and `array` that sqlparser reads as names, and `on`, a setting's value.
/// Postgres never reads one unquoted as a column, table, function or collation name; sqlparser
/// does, so `c COLLATE FROM c` was a collation named `from` to it and a column alias and a FROM
/// clause to Postgres (round 25).
const RESERVED_WORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "not",
    "offset",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "some",
    "symmetric",
    "table",
    "then",
    "to",
    "trailing",
    "union",
    "unique",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];

/// Refuses a statement in which sqlparser read a reserved word as a name (see RESERVED_WORDS). A
/// name after a dot (`t.from`) is Postgres too, and a quoted one (`"from"`) is a name to both.
pub(super) fn reserved_words_as_names(stmt: &Statement) -> Result<(), AnalyzeError> {
    let reserved =
        |i: &Ident| i.quote_style.is_none() && RESERVED_WORDS.contains(&i.value.to_ascii_lowercase().as_str());
    let first_of = |n: &ObjectName| match n.0.first() {
        Some(ObjectNamePart::Identifier(i)) => reserved(i),
        _ => false,
    };
    let quantifiers = like_quantifiers(stmt);
    let found = visit_expressions(stmt, |e| {
        let bad = match e {
            Expr::Function(_) if quantifiers.contains(&(e as *const Expr)) => false,
            Expr::Identifier(i) => reserved(i),
            Expr::CompoundIdentifier(parts) => parts.first().is_some_and(reserved),
            Expr::Collate { collation, .. } => first_of(collation),
            Expr::Function(f) => first_of(&f.name),
            _ => false,
        };
        if bad {
            ControlFlow::Break(e.to_string())
        } else {
            ControlFlow::Continue(())
        }
    });
    match found {
        ControlFlow::Break(e) => Err(AnalyzeError::Differential(format!(
            "`{}` uses a word Postgres reserves as a name",
            shorten(&e)
        ))),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Postgres's operator precedence (gram.y), loosest first: OR, AND, NOT, IS, comparisons,
/// LIKE/BETWEEN/IN, any other operator (prefix ones too), `+ -`, `* / %`, `^`, AT TIME ZONE,
/// COLLATE, unary `+ -`. Returns an operator's rank and its unparenthesized operands, each with
/// the rank it must at least have if Postgres is to group it the same way (operators are
/// left-associative, so a right operand binds one level tighter).
fn grouping(e: &Expr) -> Option<(u8, Vec<(&Expr, u8)>)> {
    use sqlparser::ast::{BinaryOperator as B, Expr, UnaryOperator as U};
    let comparison = |op: &B| matches!(op, B::Eq | B::NotEq | B::Lt | B::Gt | B::LtEq | B::GtEq);
    fn tighter<'e>(p: u8, xs: &[&'e Expr]) -> Vec<(&'e Expr, u8)> {
        xs.iter().map(|x| (*x, p + 1)).collect()
    }
    Some(match e {
        Expr::BinaryOp { left, op, right } => {
            let p = match op {
                B::Or => 1,
                B::And => 2,
                op if comparison(op) => 5,
                B::Plus | B::Minus => 8,
                B::Multiply | B::Divide | B::Modulo => 9,
                B::PGExp => 10,
                _ => 7,
            };
            (p, vec![(left, p), (right, p + 1)])
        }
        Expr::UnaryOp { op: U::Not, expr } => (3, vec![(expr, 3)]),
        Expr::UnaryOp {
            op: U::Minus | U::Plus,
            expr,
        } => (13, tighter(13, &[expr])),
        // `~ a`, `@ a`, `|/ a`: a prefix operator takes everything that binds tighter than it.
        Expr::UnaryOp { expr, .. } => (7, tighter(7, &[expr])),
        Expr::AtTimeZone { timestamp, time_zone } => (11, vec![(timestamp, 11), (time_zone, 12)]),
        Expr::Collate { expr, .. } => (12, vec![(expr, 12)]),
        Expr::AnyOp { left, compare_op, .. } | Expr::AllOp { left, compare_op, .. } => {
            let p = if comparison(compare_op) { 5 } else { 7 };
            (p, vec![(left, p)])
        }
        Expr::IsNull(x)
        | Expr::IsNotNull(x)
        | Expr::IsTrue(x)
        | Expr::IsNotTrue(x)
        | Expr::IsFalse(x)
        | Expr::IsNotFalse(x)
        | Expr::IsUnknown(x)
        | Expr::IsNotUnknown(x) => (4, tighter(4, &[x])),
        Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => (4, tighter(4, &[a, b])),
        Expr::Like { expr, pattern, .. }
        | Expr::ILike { expr, pattern, .. }
        | Expr::SimilarTo { expr, pattern, .. } => (6, tighter(6, &[expr, pattern])),
        Expr::Between { expr, low, high, .. } => (6, tighter(6, &[expr, low, high])),
        Expr::In { expr, .. } => (6, tighter(6, &[expr])),
        _ => return None,
    })
}

/// Refuses a statement in which sqlparser grouped operators otherwise than Postgres would: it
/// ranks `~` and the other Postgres operators with `=`, `OPERATOR(…)` with LIKE, and unary minus
/// below `^` (round 29: `'t' = name ~ '^A'`, `-2 ^ 2`). Parenthesized operands are what they are.
pub(super) fn operator_grouping(stmt: &Statement) -> Result<(), AnalyzeError> {
    let found = visit_expressions(stmt, |e| {
        let wrong = grouping(e).is_some_and(|(_, operands)| {
            operands
                .iter()
                .any(|(x, least)| grouping(x).is_some_and(|(rank, _)| rank < *least))
        });
        if wrong {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    match found {
        ControlFlow::Break(()) => Err(AnalyzeError::Differential(
            "operators that sqlparser groups otherwise than Postgres; add parentheses".into(),
        )),
        ControlFlow::Continue(()) => Ok(()),
    }
}

#[cfg(test)]
mod settings_tests {
    use super::reads_by_session_settings as by;

    #[test]
    fn text_read_the_same_under_any_settings() {
        assert!(!by(b"SELECT name FROM t WHERE id = $1 AND note = 'a''b' -- x"));
        assert!(by(br"SELECT 'a\' OR 1=1 --'"));
        assert!(by("SELECT 'Müller'".as_bytes()));
        assert!(by(br"SELECT E'\n'"));
    }
}
