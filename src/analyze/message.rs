//! From a message's text to the facts of its statements: splitting, the lexer's and sqlparser's
//! readings compared, parsing, the work budget shared by the message, and search_path changes
//! carried from one statement to the next.

use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::differential::{operator_grouping, reserved_words_as_names, same_signature, sqlparser_signature};
use super::facts::{self, Analysis, Kind, StatementFacts};
use super::lexer::{self, SigItem};
use super::{
    crosscheck, txmodes, unsupported, AnalyzeCtx, AnalyzeError, Analyzer, MAX_CHAIN, MAX_WORK, MESSAGE_WORK_PER_BYTE,
    RESERVED_PREFIX,
};
use crate::catalog::Catalog;

/// Statements that run code (DO, CALL): refused as unsupported before parsing.
const NEVER_PARSED: &[&str] = &["do", "call"];

/// First words of DDL and privilege statements (rule 8: unsupported, parsed or not).
const DDL_WORDS: &[&str] = &[
    "create", "alter", "drop", "grant", "revoke", "comment", "security", "reassign", "import", "truncate", "refresh",
    "reindex", "cluster", "vacuum", "analyze", "lock", "load",
];

/// Stack per byte of statement text for building and freeing its syntax tree: sqlparser builds
/// an operator chain without recursing but frees it recursively, one level per link, and a link
/// takes two bytes (`+1`).
const STACK_PER_BYTE: usize = 256;

/// Values search_path may have at once, in a message and its transaction (see analyze_message).
const MAX_PATHS: usize = 16;

/// Analyzes every statement of a message. An empty message yields one `Kind::Empty` statement.
pub fn analyze(sql: &str, ctx: AnalyzeCtx<'_>) -> Result<Analysis, AnalyzeError> {
    static HEADROOM: std::sync::Once = std::sync::Once::new();
    // sqlparser and the analyzer move to a heap-allocated stack segment when less than this is
    // left; the default (128 KiB) is less than some unoptimized parser paths use between checks.
    HEADROOM.call_once(|| recursive::set_minimum_stack_size(512 << 10));
    // The lexer's depth bound refuses long chains before they are parsed, but a chain it does not
    // count would free a tree deeper than a worker's 2 MiB stack, and abort the proxy (round 27:
    // `OPERATOR(+)`). So a long message is parsed on a stack sized for it.
    let need = sql.len().saturating_mul(STACK_PER_BYTE);
    stacker::maybe_grow(need, need, || analyze_message(sql, ctx))
}

fn analyze_message(sql: &str, ctx: AnalyzeCtx<'_>) -> Result<Analysis, AnalyzeError> {
    let ranges = lexer::split_statements(sql)?;
    let mut statements = Vec::with_capacity(ranges.len().max(1));
    let mut literal_sensitive = false;
    if ranges.is_empty() {
        statements.push(std::sync::Arc::new(StatementFacts::new(Kind::Empty)));
    }
    // A SET search_path earlier in the message may be in force for the statements after it.
    let mut paths: Vec<Vec<String>> = ctx.search_paths.to_vec();
    let mut shared_paths = std::sync::Arc::new(paths.clone());
    let mut budget = MAX_WORK.saturating_add(MESSAGE_WORK_PER_BYTE.saturating_mul(sql.len()));
    for range in ranges {
        // Also between statements: many cheap ones never reach a statement's own check (round 143).
        if ctx.abandoned.0.is_some_and(|gone| gone()) {
            return unsupported("an analysis nobody waits for (the client left)");
        }
        let text = &sql[range];
        let lexer::Lexed {
            signature: mut ours,
            depth: chain,
            brackets,
            mut clean,
        } = lexer::lex_statement(text)?;
        if let Some(plain) = txmodes::without_deferrable(&clean) {
            ours = lexer::lex_statement(&plain)?.signature;
            clean = plain;
        }
        if let Some(plain) = super::locks::as_plain_locks(&clean, &ours)? {
            ours = lexer::lex_statement(&plain)?.signature;
            clean = plain;
        }
        if chain > MAX_CHAIN {
            return unsupported(format!(
                "a chain of more than {MAX_CHAIN} operators (this one has {chain})"
            ));
        }
        let step = match ours.first() {
            Some(SigItem::Word(w)) if w == "move" || w == "fetch" => Some(w.as_str()),
            _ => None,
        };
        if let Some(word) = step {
            let syntax = || AnalyzeError::Parse(format!("{} syntax", word.to_ascii_uppercase()));
            let name = cursor_step(&ours).ok_or_else(syntax)?;
            if name.starts_with(RESERVED_PREFIX) {
                return unsupported(format!("names starting with {RESERVED_PREFIX} are reserved (`{name}`)"));
            }
            let kind = match word {
                "move" => Kind::Move { name },
                _ => Kind::Fetch { name },
            };
            let mut facts = StatementFacts::new(kind);
            facts.statement = lexer::normalize(text)?.text;
            statements.push(std::sync::Arc::new(facts));
            continue;
        }
        let first = match ours.first() {
            Some(SigItem::Word(w)) => w.as_str(),
            _ => "",
        };
        // Rule 8 names these unsupported whatever their syntax; they are never parsed.
        if NEVER_PARSED.contains(&first) {
            return unsupported(format!("{} statements", first.to_ascii_uppercase()));
        }
        let theirs = sqlparser_signature(&clean)?;
        if !same_signature(&ours, &theirs) {
            return Err(AnalyzeError::Differential(
                "its words, literals and operators split differently".into(),
            ));
        }
        let dialect = PostgreSqlDialect {};
        // One statement, then nothing but semicolons: parse_statements stops at an END after a
        // complete statement (for BEGIN … END blocks) and drops the rest, where Postgres reads
        // `end` as an alias and runs what follows (round 28).
        let parsed = Parser::new(&dialect)
            .try_with_sql(&clean)
            .and_then(|mut p| {
                // sqlparser reads `TABLE t` only inside a query (`(TABLE t)`, `… UNION TABLE t`);
                // Postgres takes it alone too, as `SELECT * FROM t` (round 242 CA1).
                let stmt = match first {
                    "table" => sqlparser::ast::Statement::Query(p.parse_query()?),
                    _ => p.parse_statement()?,
                };
                while p.consume_token(&sqlparser::tokenizer::Token::SemiColon) {}
                match p.peek_token().token {
                    sqlparser::tokenizer::Token::EOF => Ok(vec![stmt]),
                    _ => Ok(Vec::new()),
                }
            })
            .map_err(|e| {
                let why = shorten_parse_error(&e.to_string());
                // DDL is unsupported (rule 8) even in forms sqlparser cannot read.
                if DDL_WORDS.contains(&first) {
                    AnalyzeError::Unsupported(format!("{} statements ({why})", first.to_ascii_uppercase()))
                } else {
                    AnalyzeError::Parse(why)
                }
            })?;
        let [stmt] = parsed.as_slice() else {
            // sqlparser ends `… WHERE CURRENT OF c` before OF (round 76: the message said only
            // that statement boundaries differ). Refused either way; this says why.
            let words = clean
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_ascii_lowercase();
            if words.contains("where current of ") {
                return Err(AnalyzeError::Unsupported(
                    "`WHERE CURRENT OF` a cursor (update or delete the row by its key instead)".into(),
                ));
            }
            return Err(AnalyzeError::Differential("statement boundaries differ".into()));
        };
        reserved_words_as_names(stmt)?;
        operator_grouping(stmt)?;
        let (mut facts, sensitive, work) = analyze_statement(
            stmt,
            AnalyzeCtx {
                search_paths: &paths,
                ..ctx
            },
            budget,
        )?;
        budget = budget.saturating_sub(work);
        crosscheck::same_reading(text, stmt, chain + crosscheck::LEVELS_PER_BRACKET * brackets)?;
        literal_sensitive |= sensitive;
        // Each value search_path may have is kept with the statements analyzed under it, and
        // names are looked up along each (round 143: 6,000 SETs in one message took 6.5 GB).
        if let Some(facts::PathChange::To(p)) = &facts.path_change {
            if p.len() > crate::catalog::MAX_PATH_SCHEMAS {
                return Err(AnalyzeError::Setting(format!(
                    "a search_path of more than {} schemas",
                    crate::catalog::MAX_PATH_SCHEMAS
                )));
            }
            if paths.len() + ctx.revert_paths.len() >= MAX_PATHS {
                return Err(AnalyzeError::Setting(format!(
                    "more than {MAX_PATHS} search_path values in one message or transaction"
                )));
            }
        }
        facts.runs_dba_code = runs_dba_code(&facts, ctx.catalog);
        if facts.uses_search_path || facts.runs_dba_code || matches!(facts.kind, Kind::Execute { .. }) {
            if shared_paths.as_slice() != paths.as_slice() {
                shared_paths = std::sync::Arc::new(paths.clone());
            }
            facts.paths = shared_paths.clone();
        }
        if facts.runs_dba_code {
            facts.path_change = Some(facts::PathChange::Unknown);
        }
        match &facts.path_change {
            Some(facts::PathChange::To(p)) if !paths.is_empty() && !paths.contains(p) => paths.push(p.clone()),
            Some(facts::PathChange::Reset | facts::PathChange::Unknown) => paths.clear(),
            _ => {}
        }
        if facts.kind.may_revert_settings() && !paths.is_empty() {
            for p in ctx.revert_paths {
                if !paths.contains(p) {
                    paths.push(p.clone());
                }
            }
        }
        facts.statement = lexer::normalize(text)?.text;
        if let Some(name) = facts.kind.object_name().filter(|n| n.starts_with(RESERVED_PREFIX)) {
            return unsupported(format!("names starting with {RESERVED_PREFIX} are reserved (`{name}`)"));
        }
        statements.push(std::sync::Arc::new(facts));
    }
    Ok(Analysis {
        statements,
        literal_sensitive,
    })
}

/// Whether the statement may run a DBA's code: a function it calls, or one Postgres runs for a
/// relation it reaches (a trigger, default, rule, policy) or for any expression (an implicit
/// cast). Such code may change search_path behind the statement's back (round 117: a trigger ran
/// `SET search_path = crm`, and the next statement's `customers` was another table), so after it
/// the session's path is unknown until the proxy has asked the server again.
fn runs_dba_code(f: &StatementFacts, catalog: &Catalog) -> bool {
    let dba_function = |schema: &str, name: &str| {
        !crate::catalog::is_system_schema(schema)
            || catalog
                .dba_system_functions
                .contains(&crate::policy::QName::new(schema, name))
    };
    (!catalog.implicit_code.is_empty() && f.kind.evaluates_expressions()) || f.runs_function(catalog, dba_function)
}

/// Analyzes one statement within `budget` units of work; also returns the work it did.
fn analyze_statement(
    stmt: &Statement,
    ctx: AnalyzeCtx<'_>,
    budget: usize,
) -> Result<(StatementFacts, bool, usize), AnalyzeError> {
    let mut a = Analyzer::new(ctx);
    a.budget = budget.min(MAX_WORK);
    // Only top-level statements may create tables from queries: inside PREPARE or EXPLAIN the
    // INTO clause stays unsupported, so a table can never be created behind a wrapper.
    let (kind, outputs) = match stmt {
        Statement::Query(q) => {
            a.select_into = true;
            let outs = a.query(q, None)?;
            if std::mem::take(&mut a.select_into) {
                (Kind::Query, outs)
            } else {
                a.new_table(outs, "SELECT INTO")?
            }
        }
        Statement::CreateTable(ct) if ct.query.is_some() => {
            let q = ct.query.as_ref().expect("matched above");
            let outs = a.query(q, None)?;
            a.new_table(outs, "CREATE TABLE AS")?
        }
        _ => a.statement(stmt)?,
    };
    if let Some(what) = a.covered.missed(stmt) {
        return unsupported(format!("{what} in a clause unscharf does not analyze"));
    }
    a.facts.kind = kind;
    a.facts.outputs = outputs;
    Ok((a.facts, a.literal_sensitive, a.work))
}

/// sqlparser's messages quote the offending token, which may be a literal value: keep only the position.
fn shorten_parse_error(msg: &str) -> String {
    match msg.find(" at Line:") {
        Some(pos) => format!("syntax error{}", &msg[pos..]),
        None => "syntax error".into(),
    }
}

/// The cursor of `MOVE` or `FETCH [direction] [FROM | IN] cursor`. sqlparser has no MOVE, and
/// reads FETCH only with FROM or IN (`FETCH 2 c` and `FETCH c` are psql's everyday forms, round
/// 198 AI1). Neither reads anything but the cursor, whose rules its DECLARE set; the direction
/// only picks its rows, and a form Postgres would refuse it refuses.
fn cursor_step(sig: &[SigItem]) -> Option<String> {
    const WORDS: &[&str] = &[
        "next", "prior", "first", "last", "absolute", "relative", "all", "forward", "backward", "from", "in",
    ];
    let (name, middle) = sig.split_last()?;
    let middle_ok = middle.iter().skip(1).all(|i| match i {
        SigItem::Word(w) => WORDS.contains(&w.as_str()),
        SigItem::Literal(lexer::LiteralKind::Number) => true,
        SigItem::Op(sign) => sign == "-" || sign == "+",
        _ => false,
    });
    if !middle_ok || middle.is_empty() {
        return None;
    }
    match name {
        SigItem::Word(w) if !WORDS.contains(&w.as_str()) => Some(crate::catalog::truncate_identifier(w.clone())),
        SigItem::Quoted(q) => Some(crate::catalog::truncate_identifier(q.clone())),
        _ => None,
    }
}
