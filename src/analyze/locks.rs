//! Row locks: which relations a query's `FOR UPDATE`/`FOR SHARE` clauses lock, and the lock
//! strengths sqlparser does not know, `FOR NO KEY UPDATE` and `FOR KEY SHARE`, which ORMs send for
//! pessimistic locks (round 192 AC3). The analyzer reads those as `FOR UPDATE` and `FOR SHARE`:
//! a row lock either way, which needs the update grant (rule 8), and what it reads is the same.
//! The server gets the text as sent.

use sqlparser::ast::{Query, TableFactor, TableWithJoins};

use super::lexer::{self, LexError, SigItem};
use super::scope::Level;
use super::{fold_ident, Analyzer};
use crate::catalog::RelKind;

/// The names a query's lock clauses lock, when every clause names one (`FOR UPDATE OF a`);
/// None when it has no lock clause or one locks everything it reads.
pub(super) fn lock_targets(q: &Query) -> Option<Vec<String>> {
    if q.locks.is_empty() {
        return None;
    }
    q.locks
        .iter()
        .map(|l| match l.of.as_ref().map(|n| n.0.as_slice()) {
            // Postgres refuses qualified names here; an unqualified one is matched against the
            // FROM clause's aliases and table names.
            Some([part]) => part.as_ident().map(fold_ident),
            _ => None,
        })
        .collect()
}

impl Analyzer<'_> {
    /// Notes the relations `FOR … OF names` locks in a SELECT whose FROM clause is `from`, read as
    /// `level`. A name that is not exactly one table of it (a view, subquery, CTE or function locks
    /// what lies behind it) counts as locking every relation the statement reads, and so does one
    /// that is written more than once anywhere in the clause: Postgres matches it against every
    /// range entry, those inside an aliased join too, which `level` no longer shows (round 215
    /// AZ1: `(leads AS s CROSS JOIN p) AS j, subscriptions s … OF s` locked the leads).
    pub(super) fn lock_named(&mut self, names: &[String], from: &[TableWithJoins], level: &Level) {
        if names.is_empty() {
            return;
        }
        let mut written = Vec::new();
        for t in from {
            range_names(t, &mut written);
        }
        for name in names {
            if written.iter().filter(|w| *w == name).count() != 1 {
                self.facts.locks_rows = true;
                continue;
            }
            let mut found = level.entries.iter().filter(|e| &e.alias == name);
            let rel = match (found.next(), found.next()) {
                (Some(e), None) => e.system,
                _ => None,
            };
            match rel.filter(|&r| self.ctx.catalog.rel(r).kind == RelKind::Table) {
                Some(r) if !self.facts.locks_only.contains(&r) => self.facts.locks_only.push(r),
                Some(_) => {}
                None => self.facts.locks_rows = true,
            }
        }
    }
}

/// `clean` with the `NO KEY` of `FOR NO KEY UPDATE` and the `KEY` of `FOR KEY SHARE` blanked out
/// (byte for byte, so positions stay), when it has any; `sig` is its signature.
pub(super) fn as_plain_locks(clean: &str, sig: &[SigItem]) -> Result<Option<String>, LexError> {
    let word = |i: usize, w: &str| matches!(sig.get(i), Some(SigItem::Word(x)) if x == w);
    if !sig.iter().any(|t| matches!(t, SigItem::Word(x) if x == "key")) {
        return Ok(None);
    }
    let mut blanks: Vec<usize> = Vec::new();
    for i in 0..sig.len() {
        if !word(i, "for") {
            continue;
        }
        if word(i + 1, "no") && word(i + 2, "key") && word(i + 3, "update") {
            blanks.extend([i + 1, i + 2]);
        } else if word(i + 1, "key") && word(i + 2, "share") {
            blanks.push(i + 1);
        }
    }
    if blanks.is_empty() {
        return Ok(None);
    }
    let spans = lexer::token_spans(clean)?;
    let mut out = clean.as_bytes().to_vec();
    for i in blanks {
        // Words are ASCII or whole UTF-8 characters; these three are ASCII.
        if let Some(span) = spans.get(i) {
            out[span.clone()].fill(b' ');
        }
    }
    Ok(String::from_utf8(out).ok())
}

/// The names of every range entry of a FROM clause, those inside joins included, as Postgres
/// names them: the alias, else a table's own name.
fn range_names(t: &TableWithJoins, out: &mut Vec<String>) {
    for factor in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
        let alias = match factor {
            TableFactor::Table { name, alias: None, .. } => name.0.last().and_then(|p| p.as_ident()).map(fold_ident),
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                range_names(table_with_joins, out);
                alias.as_ref().map(|a| fold_ident(&a.name))
            }
            other => table_alias(other).map(|a| fold_ident(&a.name)),
        };
        out.extend(alias);
    }
}

fn table_alias(f: &TableFactor) -> Option<&sqlparser::ast::TableAlias> {
    match f {
        TableFactor::Table { alias, .. }
        | TableFactor::Derived { alias, .. }
        | TableFactor::TableFunction { alias, .. }
        | TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. }
        | TableFactor::JsonTable { alias, .. }
        | TableFactor::NestedJoin { alias, .. } => alias.as_ref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(sql: &str) -> Option<String> {
        let sig = lexer::lex_statement(sql).unwrap().signature;
        as_plain_locks(sql, &sig).unwrap()
    }

    #[test]
    fn weaker_lock_strengths_read_as_the_plain_ones() {
        assert_eq!(
            plain("SELECT 1 FROM t FOR NO KEY UPDATE").as_deref(),
            Some("SELECT 1 FROM t FOR        UPDATE")
        );
        assert_eq!(
            plain("SELECT 1 FROM t for key share of t nowait").as_deref(),
            Some("SELECT 1 FROM t for     share of t nowait")
        );
        // Names and strings that spell the words are left alone.
        assert_eq!(plain("SELECT key FROM t WHERE note = 'for key share'"), None);
        assert_eq!(plain(r#"SELECT "for" FROM t AS "key""#), None);
        assert_eq!(plain("SELECT 1 FROM t FOR UPDATE"), None);
    }
}
