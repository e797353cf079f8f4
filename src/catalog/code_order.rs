//! Whether a DBA's function keeps whichever row a plan reads first (round 183 T1): a scalar SQL
//! function returns its last query's first row, PL/pgSQL's `SELECT … INTO` keeps the first row,
//! and `LIMIT`, cursors and loops take rows in the order they come. Unless the query can find at
//! most one row (a lookup by a unique key, an aggregate without GROUP BY), which row that is
//! follows the plan and where another session's synchronized scan left off, so a row-level
//! security policy that calls such a function cannot be relied on.

use sqlparser::ast::{Query, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::code_lex;
use super::Catalog;
pub use one_row::Lookups;
use one_row::OneRow;

mod one_row;

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

/// What makes the function take rows in the order a plan reads them, if anything.
/// `language` is its language (`aggregate` for a DBA's aggregate), `setof` whether it returns a
/// set (all rows: no row is chosen), `body` its code as Postgres runs it (prosrc, or the SQL-standard
/// body), `lookups` what proves a lookup finds at most one row.
pub fn takes_rows_in_order(
    language: &str,
    setof: bool,
    body: &str,
    catalog: &Catalog,
    lookups: &Lookups,
) -> Option<String> {
    if language == "aggregate" {
        // Its state function sees the rows in the order they come; what it keeps of them its code
        // alone does not say.
        return Some("an aggregate of the DBA's, whose state sees rows in the order they come".into());
    }
    let lexed = super::code::lexed(body);
    for words in super::code::streams_of(body, &lexed) {
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
    let one_row = OneRow { catalog, lookups };
    match language {
        "sql" if setof => None,
        "sql" => {
            let last = sql_body_last(body);
            match last.as_deref().map(|q| one_row.query(q)) {
                Some(true) => None,
                _ => Some("a query that may find more than one row, of which the function returns the first".into()),
            }
        }
        "plpgsql" => lexed.iter().find_map(|tokens| {
            let (plain, blank) = (
                code_lex::blanked(body, tokens, false),
                code_lex::blanked(body, tokens, true),
            );
            plpgsql_first_rows(&plain, &blank, &one_row)
        }),
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
    super::code::streams(source)
        .iter()
        .flatten()
        .any(|w| CURSOR_WORDS.contains(&w.as_str()))
}

/// `word` matches `pattern` (a trailing `*` matches a prefix), as in ORDER_WORDS and
/// `code_reads::DYNAMIC_WORDS`.
pub(super) fn matches_word(pattern: &str, word: &str) -> bool {
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
        // An expression: one row, unless it calls a set-returning function (round 187 X2), and a
        // scalar subquery in it errs on a second.
        return parse_query(&format!("SELECT {}", &trimmed["return".len()..]));
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
/// Strings are read as blanks (round 187 X3: `'insert into a queue'` before the INTO hid it).
fn plpgsql_first_rows(plain: &str, blank: &str, one_row: &OneRow<'_>) -> Option<String> {
    for (start, end) in split_statements(blank) {
        let (statement, code) = (&plain[start..end], &blank[start..end]);
        let words = super::code::tokens(code);
        let intos: Vec<usize> = (0..words.len()).filter(|&i| words[i] == "into").collect();
        let kept: Vec<usize> = intos
            .iter()
            .copied()
            .filter(|&i| {
                !matches!(
                    words.get(i.wrapping_sub(1)).map(String::as_str),
                    Some("insert" | "merge")
                )
            })
            .collect();
        let Some(&into) = kept.first() else {
            continue;
        };
        if words[..into].iter().any(|w| w == "execute") {
            return Some("EXECUTE … INTO, which keeps the first row of a query built at run time".into());
        }
        // What the statement is: a write's RETURNING … INTO errs on a second row.
        let verb = words[..into].iter().find(|w| {
            matches!(
                w.as_str(),
                "select" | "table" | "values" | "with" | "insert" | "update" | "delete" | "merge"
            )
        });
        let query = verb.is_some_and(|w| matches!(w.as_str(), "select" | "table" | "values" | "with"));
        if !query || kept.iter().all(|&i| words.get(i + 1).is_some_and(|w| w == "strict")) {
            continue;
        }
        let proven = intos.len() == 1
            && without_into(code)
                .and_then(|(from, to, rest)| parse_query(&format!("{} {}", &statement[from..to], &statement[rest..])))
                .is_some_and(|q| one_row.query(&q));
        if !proven {
            return Some(
                "SELECT … INTO without STRICT over a query that may find more than one row: it keeps the first".into(),
            );
        }
    }
    None
}

/// Where `code`'s query starts (its first SELECT, TABLE, VALUES or WITH), where its `INTO` is and
/// where the `INTO targets` PL/pgSQL adds end, or None if they cannot be cut out.
fn without_into(code: &str) -> Option<(usize, usize, usize)> {
    let lower = code.to_ascii_lowercase();
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
    let start = ["with", "select", "table", "values"]
        .into_iter()
        .filter_map(word_at)
        .min()?;
    let into = word_at("into")?;
    if into < start {
        return None;
    }
    // The targets: names, perhaps qualified, separated by commas.
    let b = code.as_bytes();
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
    Some((start, into, i))
}

/// The byte ranges of `text` between semicolons outside quoted identifiers (strings already
/// blanked, comments removed).
fn split_statements(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let (mut out, mut start, mut i) = (Vec::new(), 0, 0);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
            }
            b';' => {
                out.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push((start.min(b.len()), b.len()));
    out
}

#[cfg(test)]
mod tests;
