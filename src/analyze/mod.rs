//! Statement analysis on sqlparser (PostgreSqlDialect): SQL text → Facts for every statement.
//! Fails closed: anything not fully understood is an error, and the caller refuses the statement.

pub mod cache;
mod columns;
mod coverage;
mod crosscheck;
mod cte;
mod differential;
mod dml;
mod expr;
pub mod facts;
mod from;
mod functions;
pub mod lexer;
mod locks;
mod lookup;
mod message;
mod names;
mod operators;
mod query;
mod scope;
mod statement;
mod txmodes;

use sqlparser::ast::{Expr, Ident, Statement};

use crate::catalog::{effective_path, Catalog, RelId};
pub use differential::reads_by_session_settings;
use facts::{Kind, Outputs, StatementFacts};
use lexer::LexError;
pub use lookup::{bound_array_len, MAX_LOOKUP_VALUES};
pub use message::analyze;
use scope::EntryCol;

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 150;

/// Expressions and queries one statement may make the analyzer visit. Recursive CTEs are analyzed
/// until their lineage settles, so nesting them multiplies the work; past this budget the
/// statement is refused instead of holding a worker thread for seconds.
const MAX_WORK: usize = 200_000;

/// The work a whole message may make the analyzer do, besides MAX_WORK per statement: a message of
/// a thousand statements each near MAX_WORK held its thread for minutes (round 135). Per byte, so
/// that a long batch of plain statements still passes.
const MESSAGE_WORK_PER_BYTE: usize = 16;

/// Columns a select list may have: Postgres's limit for target lists (MaxTupleAttributeNumber).
/// Past it Postgres refuses the statement anyway; without it, CTEs that each join the one before
/// with itself doubled their width per level, and a 786-byte statement took 15 s and 4 GB (round
/// 135).
pub const MAX_TARGETS: usize = 1664;

/// Longer operator chains are refused before parsing: a chain nests the syntax tree one level per
/// link, and sqlparser builds and drops that tree recursively.
const MAX_CHAIN: usize = 5_000;

impl Analyzer<'_> {
    /// Counts one unit of analysis work; an error once the statement has used up MAX_WORK.
    fn spend(&mut self) -> Result<(), AnalyzeError> {
        self.spend_n(1)
    }

    /// Counts `n` units: copying a FROM level of n columns costs as much as n expressions.
    fn spend_n(&mut self, n: usize) -> Result<(), AnalyzeError> {
        let before = self.work;
        self.work += n;
        if self.work > self.budget {
            return unsupported(
                "a statement too complex to analyze (hundreds of joins, nested recursive CTEs, a message of many such statements?)",
            );
        }
        if let Some(gone) = self.ctx.abandoned.0 {
            if before / ABANDON_CHECK != self.work / ABANDON_CHECK && gone() {
                return unsupported("an analysis nobody waits for (the client left)");
            }
        }
        Ok(())
    }
}

/// Why a statement could not be analyzed; each becomes a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyzeError {
    #[error("{0}")]
    Lex(#[from] LexError),
    #[error("statement does not parse: {0}")]
    Parse(String),
    #[error("Postgres and the analyzer would read this statement differently ({0})")]
    Differential(String),
    #[error("{0} is not supported")]
    Unsupported(String),
    // Quoted as SQL quotes names, so the trail's scrubbing sees where one ends (round 103).
    #[error("relation {} does not exist", crate::judge::quoted(.0))]
    UnknownRelation(String),
    #[error("column {} does not exist", crate::judge::quoted(.0))]
    UnknownColumn(String),
    #[error("function {} does not exist", crate::judge::quoted(.0))]
    UnknownFunction(String),
    #[error("reference {0} is ambiguous")]
    Ambiguous(String),
    #[error("{0}")]
    Setting(String),
}

/// Whether nobody waits for an analysis any more: the client of its session left while the
/// statement waited for the analysis thread (round 140: a 1 MB message held that thread for a
/// minute after its client had gone). Asked every ABANDON_CHECK units of work.
#[derive(Clone, Copy, Default)]
pub struct Abandoned<'a>(pub Option<&'a dyn Fn() -> bool>);

impl std::fmt::Debug for Abandoned<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Abandoned(ask)"
        } else {
            "Abandoned(never)"
        })
    }
}

/// Units of work between two questions whether the analysis is still wanted.
const ABANDON_CHECK: usize = 4096;

/// What analysis depends on besides the SQL text.
#[derive(Debug, Clone, Copy)]
pub struct AnalyzeCtx<'a> {
    pub catalog: &'a Catalog,
    /// The search_path values the session may have; empty means unknown (any schema).
    pub search_paths: &'a [Vec<String>],
    /// The session user, for `$user` in search_path.
    pub user: &'a str,
    /// Values search_path may fall back to when a COMMIT, ROLLBACK or ROLLBACK TO in the message runs
    /// (the values seen since the transaction block that changed it began).
    pub revert_paths: &'a [Vec<String>],
    /// Whether to stop early; it does not change the analysis.
    pub abandoned: Abandoned<'a>,
}

struct CteDef {
    name: String,
    cols: Option<Vec<EntryCol>>,
    /// A CTE of WITH RECURSIVE not analyzed yet: Postgres lets earlier CTEs read it, so a name that
    /// would otherwise reach a table must not be resolved past it.
    forward: bool,
}

struct Analyzer<'a> {
    ctx: AnalyzeCtx<'a>,
    facts: StatementFacts,
    ctes: Vec<CteDef>,
    depth: usize,
    /// Expressions and queries visited so far (see MAX_WORK).
    work: usize,
    /// The work it may do: MAX_WORK, or less where the message's other statements used up more.
    budget: usize,
    literal_sensitive: bool,
    /// The first output name of each scalar subquery analyzed (see names::figure_colname).
    subquery_names: std::collections::HashMap<usize, String>,
    /// Set while a top-level SELECT is analyzed: its INTO clause (which creates a table) is allowed
    /// once, so the statement can be judged for the data it copies before it is refused as DDL.
    select_into: bool,
    /// The subqueries and calls analyzed, so that one left unread is refused (see coverage).
    covered: coverage::Covered,
}

/// Identifiers as Postgres folds them: unquoted ASCII letters lower-cased, then truncated to 63 bytes.
pub fn fold_ident(i: &Ident) -> String {
    crate::catalog::truncate_identifier(if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    })
}

/// The folded parts of a name, or None if a part is not a plain identifier.
pub fn object_name_parts(n: &sqlparser::ast::ObjectName) -> Option<Vec<String>> {
    expr::object_parts(n).ok()
}

/// The name in a regclass literal (`'stadtwerke.seq'`, `'"Odd"."x"'`), split and folded as Postgres's
/// regclass input does it (SplitIdentifierString); None when Postgres would reject it.
pub fn regclass_name(text: &str) -> Option<Vec<String>> {
    let space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c');
    let mut rest = text.trim_start_matches(space);
    let mut parts = Vec::new();
    loop {
        let mut part = String::new();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            loop {
                let (i, c) = chars.next()?;
                if c != '"' {
                    part.push(c);
                } else if quoted[i + 1..].starts_with('"') {
                    part.push('"');
                    chars.next();
                } else {
                    rest = &quoted[i + 1..];
                    break;
                }
            }
        } else {
            let end = rest.find(|c: char| c == '.' || space(c)).unwrap_or(rest.len());
            part = rest[..end].to_ascii_lowercase();
            rest = &rest[end..];
        }
        if part.is_empty() {
            return None;
        }
        parts.push(fold_ident(&Ident::with_quote('"', part)));
        rest = rest.trim_start_matches(space);
        match rest.strip_prefix('.') {
            Some(r) => rest = r.trim_start_matches(space),
            None if rest.is_empty() => return Some(parts),
            None => return None,
        }
    }
}

/// A fragment of SQL for a message: literals replaced by `?` (refusal details reach the audit trail).
pub(crate) fn shorten(sql: &str) -> String {
    let mut s = lexer::normalize(sql).map(|n| n.text).unwrap_or_else(|_| "…".into());
    if s.len() > 80 {
        let mut cut = 77;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// `x LIKE ALL (array)` and `LIKE SOME (…)`: sqlparser knows only `LIKE ANY` and reads the
/// quantifier as a call of a function named ALL or SOME, where Postgres applies `~~` to every
/// element. The array, when `pattern` is such a quantifier.
pub(super) fn like_quantifier(pattern: &Expr) -> Option<&Expr> {
    use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments, ObjectNamePart};
    let Expr::Function(f) = pattern else { return None };
    let [ObjectNamePart::Identifier(name)] = f.name.0.as_slice() else {
        return None;
    };
    let quantifier = name.quote_style.is_none()
        && (name.value.eq_ignore_ascii_case("all") || name.value.eq_ignore_ascii_case("some"));
    let plain = f.filter.is_none() && f.over.is_none() && f.within_group.is_empty() && f.null_treatment.is_none();
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))]
            if quantifier && plain && list.clauses.is_empty() && list.duplicate_treatment.is_none() =>
        {
            Some(array)
        }
        _ => None,
    }
}

/// The LIKE/ILIKE patterns that are quantifiers (see `like_quantifier`), by address.
fn like_quantifiers(stmt: &Statement) -> std::collections::HashSet<*const Expr> {
    let mut found = std::collections::HashSet::new();
    let _ = sqlparser::ast::visit_expressions(stmt, |e| {
        if let Expr::Like { pattern, .. } | Expr::ILike { pattern, .. } = e {
            if like_quantifier(pattern).is_some() {
                found.insert(pattern.as_ref() as *const Expr);
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}

/// A sort key's expression. `ORDER BY x USING op` sorts with an operator the analyzer would have
/// to resolve by the key's type, which it does not know: a DBA's operator class made the sort
/// order an oracle (round 64).
pub(super) fn sort_key(o: &sqlparser::ast::OrderByExpr) -> Result<&sqlparser::ast::Expr, AnalyzeError> {
    match o.options.sort {
        Some(sqlparser::ast::OrderBySort::Using(_)) => {
            Err(AnalyzeError::Unsupported("ORDER BY … USING an operator".into()))
        }
        _ => Ok(&o.expr),
    }
}

fn unsupported<T>(what: impl Into<String>) -> Result<T, AnalyzeError> {
    Err(AnalyzeError::Unsupported(what.into()))
}

fn is_default_keyword(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

impl<'a> Analyzer<'a> {
    fn new(ctx: AnalyzeCtx<'a>) -> Self {
        Analyzer {
            ctx,
            facts: StatementFacts::new(Kind::Empty),
            ctes: Vec::new(),
            depth: 0,
            work: 0,
            budget: MAX_WORK,
            literal_sensitive: false,
            subquery_names: Default::default(),
            select_into: false,
            covered: Default::default(),
        }
    }

    /// The effective search orders to try; `None` when the path is unknown.
    /// The effective search paths, charged what building them scans (round 143: a path of a
    /// million names was scanned for every unqualified name, uncharged).
    fn paths(&mut self) -> Result<Vec<Vec<String>>, AnalyzeError> {
        self.spend_n(self.ctx.search_paths.iter().map(|p| 1 + p.len()).sum())?;
        Ok(self.paths_uncharged())
    }

    fn paths_uncharged(&self) -> Vec<Vec<String>> {
        if self.ctx.search_paths.is_empty() {
            // Every schema the catalog knows of, those with only functions too (round 21: a
            // function in a schema without tables ran unchecked while the path was unknown).
            let mut all: Vec<String> = vec!["pg_catalog".into()];
            for s in self.ctx.catalog.all_schemas() {
                if !all.iter().any(|a| a == s) {
                    all.push(s.to_owned());
                }
            }
            return vec![all];
        }
        self.ctx
            .search_paths
            .iter()
            .map(|p| effective_path(self.ctx.catalog, p, self.ctx.user))
            .collect()
    }

    /// A relation name resolved as Postgres would; an unqualified name must resolve the same
    /// under every search_path the session may have.
    fn resolve_relation(&mut self, parts: &[String]) -> Result<RelId, AnalyzeError> {
        let catalog = self.ctx.catalog;
        let qualified = |s: &str, n: &str| catalog.lookup(&crate::policy::QName::new(s, n));
        match parts {
            [_, schema, name] | [schema, name] => {
                qualified(schema, name).ok_or_else(|| AnalyzeError::UnknownRelation(format!("{schema}.{name}")))
            }
            [name] => {
                self.facts.uses_search_path = true;
                let mut found: Option<Option<RelId>> = None;
                // A sequence is a relation to Postgres, which reads one of the same name found
                // earlier in search_path instead of the table.
                let sequence = |s: &str| catalog.sequence(&crate::policy::QName::new(s, name)).is_some();
                let shadowed = || {
                    AnalyzeError::Unsupported(format!(
                        "{name} names a sequence in a schema searched before the table's; qualify the name"
                    ))
                };
                if self.ctx.search_paths.is_empty() {
                    let all = catalog.named(name);
                    return match all {
                        _ if catalog.has_sequence_named(name) => Err(shadowed()),
                        [one] => Ok(*one),
                        [] => Err(AnalyzeError::UnknownRelation(name.clone())),
                        _ => Err(AnalyzeError::Ambiguous(format!(
                            "{name} (search_path is not known at this point; qualify the name)"
                        ))),
                    };
                }
                for path in self.paths()? {
                    let mut holding = path.iter().filter(|s| qualified(s, name).is_some() || sequence(s));
                    let first = holding.next();
                    // Postgres skips a schema the user may not use, and whether one may can change
                    // between this judgement and the statement's run (a GRANT or REVOKE of USAGE, a
                    // role membership): a name two schemas of the path hold is ambiguous, unless
                    // pg_catalog, always searched and always usable, comes first.
                    if let (Some(a), Some(b)) = (first, holding.next()) {
                        if a != "pg_catalog" {
                            return Err(AnalyzeError::Ambiguous(format!(
                                "{name} (schemas {a} and {b} of search_path both have it, and Postgres reads the first the user may use; qualify the name)"
                            )));
                        }
                    }
                    if first.is_some_and(|s| qualified(s, name).is_none()) {
                        return Err(shadowed());
                    }
                    let hit = first.and_then(|s| qualified(s, name));
                    match found {
                        None => found = Some(hit),
                        Some(prev) if prev == hit => {}
                        Some(_) => {
                            return Err(AnalyzeError::Ambiguous(format!(
                                "{name} (it resolves differently under the session's possible search_path values; qualify the name)"
                            )))
                        }
                    }
                }
                found
                    .flatten()
                    .ok_or_else(|| AnalyzeError::UnknownRelation(name.clone()))
            }
            _ => Err(AnalyzeError::Unsupported(
                "relation name with more than three parts".into(),
            )),
        }
    }
}

/// Names of prepared statements and portals the proxy keeps for its stand-ins of refused messages:
/// a client may not create, run or remove one, in SQL or in the extended protocol.
pub const RESERVED_PREFIX: &str = "unscharf_";

/// Column names of a query's result, for views read from a schema file.
pub fn output_names(catalog: &Catalog, q: &sqlparser::ast::Query) -> Option<Vec<String>> {
    let paths = vec![vec!["public".to_owned()]];
    let ctx = AnalyzeCtx {
        catalog,
        search_paths: &paths,
        user: "",
        revert_paths: &[],
        abandoned: Default::default(),
    };
    let mut a = Analyzer::new(ctx);
    match a.query(q, None).ok()? {
        Outputs::Known(o) => Some(o.into_iter().map(|o| o.name).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::regclass_name;

    /// Round 140: an analysis went on for a minute after its client had left. It asks whether it
    /// is still wanted as it works, and stops when it is not.
    #[test]
    fn an_abandoned_analysis_stops() {
        let cat = crate::catalog::Catalog::default().with_system_snapshot();
        let paths = vec![vec!["pg_catalog".to_owned()]];
        let sql = format!("SELECT coalesce({}) FROM pg_class", vec!["relname"; 2_000].join(", "));
        let asked = std::cell::Cell::new(0);
        let run = |gone: bool| {
            let ask = || {
                asked.set(asked.get() + 1);
                gone
            };
            let ctx = super::AnalyzeCtx {
                catalog: &cat,
                search_paths: &paths,
                user: "u",
                revert_paths: &[],
                abandoned: super::Abandoned(Some(&ask)),
            };
            super::analyze(&sql, ctx).map(|_| ()).map_err(|e| e.to_string())
        };
        assert_eq!(run(false), Ok(()));
        assert!(asked.get() > 1, "asked {} times", asked.get());
        asked.set(0);
        let err = run(true).unwrap_err();
        assert!(err.contains("nobody waits"), "{err}");
        assert_eq!(asked.get(), 1);
    }

    /// Round 103: a name holding a quote, printed without doubling it, ended the audit trail's
    /// scrubbing early and left the rest in clear.
    #[test]
    fn names_in_errors_are_quoted_as_sql_quotes_them() {
        let name = "x\"anna.schmidt@example.org DE89 3704 0044";
        for e in [
            super::AnalyzeError::UnknownRelation(name.into()),
            super::AnalyzeError::UnknownColumn(name.into()),
            super::AnalyzeError::UnknownFunction(name.into()),
        ] {
            let text = crate::audit::event::scrub(&e.to_string());
            assert!(!text.contains("anna") && !text.contains("3704"), "{text}");
        }
    }

    #[test]
    fn regclass_names_split_and_fold_as_postgres_does() {
        let ok = |s: &str, want: &[&str]| {
            assert_eq!(
                regclass_name(s).as_deref(),
                Some(&want.iter().map(|w| w.to_string()).collect::<Vec<_>>()[..]),
                "{s:?}"
            )
        };
        ok("zeitung.leads_seq", &["zeitung", "leads_seq"]);
        ok("  Zeitung . Leads_Seq\t", &["zeitung", "leads_seq"]);
        ok("\"Zeitung\".\"a.b\"", &["Zeitung", "a.b"]);
        ok("\"say \"\"hi\"\"\"", &["say \"hi\""]);
        ok("crm.zeitung.x", &["crm", "zeitung", "x"]);
        ok(&"A".repeat(70), &["a".repeat(63).as_str()]);
        for bad in ["", "  ", "a..b", "a.", ".a", "\"\"", "\"open", "a b", "a.\"b\"c"] {
            assert_eq!(regclass_name(bad), None, "{bad:?}");
        }
    }
}
