//! A second reading of every analyzed statement with Postgres's own grammar (libpg_query), compared
//! with sqlparser's: the names both parsers bind must agree, or the statement is refused.
//!
//! Each red-team round found another construct that sqlparser reads into a different tree than
//! Postgres does (`interval name`, `'1'::setof int`, `||--`). The analyzer still works on sqlparser's
//! tree, but it may only do so when that tree names the same things as Postgres's: the statement's
//! kind, every column reference, every relation, and every alias that brings a name into scope.
//! Those are what the analyzer's lineage rests on; literals, operators and types are already
//! compared token by token (see `lexer`).

mod ours;
mod postgres;

use sqlparser::ast::Statement;

use super::AnalyzeError;
use ours::sqlparser_facts;
use postgres::postgres_facts;

/// Stack one level of Postgres's parse tree takes on its way through libpg_query's protobuf
/// output, prost's decoding, serde and the walk below: about 8 KiB measured, with a margin.
const STACK_PER_LEVEL: usize = 12 << 10;

/// Levels of Postgres's tree a bracket may open (a subquery in brackets is a SubLink, a
/// SelectStmt, a ResTarget and its expression, each wrapped in a Node).
pub const LEVELS_PER_BRACKET: usize = 8;

/// Levels for a statement's own structure, besides operators and brackets.
const LEVELS_BESIDE_OPERATORS: usize = 64;

/// The longest statement read twice. Postgres's tree, as JSON, takes some 700 times the
/// statement's size while it is compared (round 27: 789 MB for 889 KB), on every worker at once.
const MAX_CHECKED_LEN: usize = 128 << 10;

/// Refuses `stmt` unless Postgres's grammar reads `sql` (the same single statement) with the same
/// kind, column references, relations and aliases. `depth` bounds how deeply its tree nests (the
/// lexer's operator depth, and LEVELS_PER_BRACKET for each bracket level): the parse runs on a
/// stack sized for it, since a chain of 5,000 UNIONs is a tree 5,000 levels deep, and a worker's
/// stack is 2 MiB. A typical statement needs less than that, and runs where it is.
pub fn same_reading(sql: &str, stmt: &Statement, depth: usize) -> Result<(), AnalyzeError> {
    if sql.len() > MAX_CHECKED_LEN {
        return Err(AnalyzeError::Unsupported(format!(
            "a statement of more than {} KiB (this one has {} KiB)",
            MAX_CHECKED_LEN >> 10,
            sql.len() >> 10
        )));
    }
    let stack = (depth + LEVELS_BESIDE_OPERATORS) * STACK_PER_LEVEL;
    let (theirs, mut ours) = stacker::maybe_grow(stack, stack, || (postgres_facts(sql), sqlparser_facts(stmt)));
    let mut theirs = theirs?;
    // Settings, transaction control, cursor and notification commands hold no expressions, and
    // sqlparser keeps a setting's value (`SET search_path = a`) as a column name where Postgres
    // keeps a string: for those the kind is what must agree.
    if theirs.kind == ours.kind && UTILITY.contains(&ours.kind) {
        theirs.names.clear();
        ours.names.clear();
    }
    if theirs == ours {
        return Ok(());
    }
    Err(AnalyzeError::Differential(describe_difference(&theirs, &ours)))
}

/// Calls to sqlparser that are other nodes to Postgres (CoalesceExpr, MinMaxExpr, NULLIF's A_Expr,
/// GroupingFunc, XmlExpr, RowExpr, an ARRAY subquery) or calls its grammar makes in SQL syntax
/// (`normalize`), which Postgres qualifies with pg_catalog itself.
const NOT_CALLS_TO_POSTGRES: &[&str] = &[
    "coalesce",
    "greatest",
    "least",
    "nullif",
    "grouping",
    "row",
    "array",
    "normalize",
    "xmlelement",
    "xmlforest",
    "xmlconcat",
    "xmlpi",
    "xmlroot",
    "xmlparse",
    "xmlserialize",
];

const UTILITY: &[&str] = &[
    "set",
    "show",
    "transaction",
    "listen",
    "unlisten",
    "notify",
    "discard",
    "fetch",
    "close",
    "deallocate",
];

/// What one parser's tree names, sorted so that traversal order does not matter.
#[derive(Debug, PartialEq, Eq)]
struct Facts {
    kind: &'static str,
    names: Vec<String>,
}

fn describe_difference(theirs: &Facts, ours: &Facts) -> String {
    if theirs.kind != ours.kind {
        return format!(
            "Postgres's parser reads a {} statement, sqlparser a {}",
            theirs.kind, ours.kind
        );
    }
    // Both lists are sorted: one merge finds the first name only one of them has (a linear
    // search per name took seconds for 100,000 aliases, round 27).
    let (mut a, mut b) = (theirs.names.iter().peekable(), ours.names.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x == y => {
                a.next();
                b.next();
            }
            (Some(x), Some(y)) if x < y => return format!("Postgres's parser reads {x}, sqlparser does not"),
            (_, Some(y)) => return format!("sqlparser reads {y}, Postgres's parser does not"),
            (Some(x), None) => return format!("Postgres's parser reads {x}, sqlparser does not"),
            (None, None) => return "the parsers' readings differ".into(),
        }
    }
}

fn alias(name: &str, cols: &[String]) -> String {
    format!("alias {}", alias_body(name, cols))
}

fn alias_body(name: &str, cols: &[String]) -> String {
    if cols.is_empty() {
        name.to_string()
    } else {
        format!("{name}({})", cols.join(","))
    }
}

/// Facts as `level: fact`, where the level counts the queries (SELECT, VALUES or TABLE with
/// their WITH, ORDER BY and LIMIT) around the name, so that a name Postgres reads in a subquery and
/// sqlparser outside it, or the other way round, differs. A set operation's operands share its
/// level in both trees.
type Out = Vec<String>;

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn check(sql: &str) -> Result<(), AnalyzeError> {
        let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("sqlparser parses it");
        same_reading(sql, &stmts[0], 0)
    }

    #[test]
    fn the_parsers_agree_on_ordinary_statements() {
        for sql in [
            "SELECT c.customer_id, c.name, c.phone FROM stadtwerke.customers c WHERE c.customer_id = $1",
            "SELECT * FROM customers JOIN meter_readings USING (customer_id) ORDER BY 1",
            "WITH x(a) AS (SELECT name FROM customers) SELECT a AS b FROM x",
            "INSERT INTO tickets (customer_id, note) VALUES (1, 'x') RETURNING ticket_id AS id",
            "UPDATE tickets t SET note = 'x' WHERE t.ticket_id = 3",
            "SELECT (c).iban FROM customers c",
            "SELECT count(*), t.* FROM t GROUP BY 2",
            "SELECT t.status FROM tickets t JOIN customers c USING (customer_no) FOR UPDATE OF t SKIP LOCKED",
        ] {
            assert_eq!(check(sql), Ok(()), "{sql}");
        }
    }

    /// What sqlparser would have to misread for a name to move between scopes: the same names, at
    /// other levels. `reads_as(pg, sp)` checks Postgres's reading of `pg` against sqlparser's of `sp`.
    #[test]
    fn a_name_that_moves_between_queries_is_a_difference() {
        let reads_as = |pg: &str, sp: &str| {
            let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sp).expect("sqlparser parses it");
            same_reading(pg, &stmts[0], 0)
        };
        let pg = "SELECT name FROM (SELECT iban FROM customers) s";
        assert_eq!(reads_as(pg, pg), Ok(()));
        for sp in [
            "SELECT iban FROM (SELECT name FROM customers) s",
            "SELECT name, iban FROM customers s",
            "SELECT name FROM (SELECT iban FROM (SELECT 1) customers) s",
        ] {
            assert!(
                matches!(reads_as(pg, sp), Err(AnalyzeError::Differential(_))),
                "{sp}: {:?}",
                reads_as(pg, sp)
            );
        }
        let levels = postgres_facts("SELECT a FROM (SELECT b FROM t UNION SELECT c FROM u) s ORDER BY d").unwrap();
        assert_eq!(
            levels.names,
            [
                "1: alias s",
                "1: column a",
                "1: column d",
                "2: column b",
                "2: column c",
                "2: relation t",
                "2: relation u"
            ]
        );
    }

    #[test]
    fn the_parsers_disagree_on_known_misreadings() {
        for sql in [
            "SELECT interval name FROM customers",
            "SELECT text \"phone\" FROM customers",
            "SELECT \"int\" FROM (SELECT '1'::setof int) s",
        ] {
            assert!(
                matches!(check(sql), Err(AnalyzeError::Differential(_))),
                "{sql}: {:?}",
                check(sql)
            );
        }
    }
}
