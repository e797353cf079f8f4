//! Whether the analyzer visited every subquery and function call of the tree sqlparser built.
//!
//! The analyzer walks the parts of each statement it knows; a part it never reads (round 100:
//! the WHERE of `ON CONFLICT (…) WHERE …`) reaches Postgres unjudged, with whatever it calls or
//! reads. So every Query and every function call node of the tree must have been analyzed, found
//! by identity, or the statement is refused.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Function, Query, Statement, Visit, Visitor};

use super::AnalyzeError;

/// The nodes the analyzer visited, by address: the tree lives, unmoved, for the whole analysis.
#[derive(Debug, Default)]
pub(super) struct Covered(HashSet<usize>);

impl Covered {
    pub(super) fn query(&mut self, q: &Query) {
        self.0.insert(q as *const Query as usize);
    }

    pub(super) fn function(&mut self, f: &Function) {
        self.0.insert(f as *const Function as usize);
    }

    /// The first subquery or call of `stmt` that was not analyzed, described for the refusal.
    pub(super) fn missed(&self, stmt: &Statement) -> Option<String> {
        self.missed_in(stmt)
    }

    fn missed_in<V: Visit>(&self, node: &V) -> Option<String> {
        let mut v = Missed {
            covered: &self.0,
            what: None,
        };
        let _ = node.visit(&mut v);
        v.what
    }

    /// For a `copy` of `original` the analyzer built and analyzed in its place (a function in
    /// FROM is analyzed as a call): once the copy is covered in full, so is the original.
    pub(super) fn adopt<C: Visit, O: Visit>(&mut self, copy: &C, original: &[O]) -> Result<(), AnalyzeError> {
        if let Some(what) = self.missed_in(copy) {
            return Err(AnalyzeError::Unsupported(format!(
                "{what} in a clause unscharf does not analyze"
            )));
        }
        let mut all = All(&mut self.0);
        for o in original {
            let _ = o.visit(&mut all);
        }
        Ok(())
    }
}

/// Collects every subquery and call of a subtree as covered.
struct All<'a>(&'a mut HashSet<usize>);

impl Visitor for All<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        self.0.insert(q as *const Query as usize);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            self.0.insert(f as *const Function as usize);
        }
        ControlFlow::Continue(())
    }
}

struct Missed<'a> {
    covered: &'a HashSet<usize>,
    what: Option<String>,
}

impl Visitor for Missed<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if self.covered.contains(&(q as *const Query as usize)) {
            return ControlFlow::Continue(());
        }
        self.what = Some(format!("a subquery ({})", super::shorten(&q.to_string())));
        ControlFlow::Break(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Function(f) if !self.covered.contains(&(f as *const Function as usize)) => {
                self.what = Some(format!("a call of {}", f.name));
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlparser::ast::{Statement, Visit, Visitor};
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    use super::*;

    fn parse(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0)
    }

    /// Covers what an analyzer that never reads `ON CONFLICT … WHERE` would: the top query and
    /// the calls of the VALUES list.
    struct Partly<'a>(&'a mut Covered);

    impl Visitor for Partly<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e {
                if f.name.to_string() == "lower" {
                    self.0.function(f);
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if q.to_string().starts_with("VALUES") {
                self.0.query(q);
            }
            ControlFlow::Continue(())
        }
    }

    #[test]
    fn an_unread_call_or_subquery_is_found() {
        let stmt = parse(
            "INSERT INTO t (a) VALUES (lower('x')) ON CONFLICT (a) WHERE query_to_xml('SELECT 1', true, false, '') IS NOT NULL DO NOTHING",
        );
        let mut c = Covered::default();
        let _ = stmt.visit(&mut Partly(&mut c));
        assert_eq!(c.missed(&stmt).as_deref(), Some("a call of query_to_xml"));
        let stmt =
            parse("INSERT INTO t (a) VALUES (lower('x')) ON CONFLICT (a) WHERE EXISTS (SELECT 1 FROM s) DO NOTHING");
        let mut c = Covered::default();
        let _ = stmt.visit(&mut Partly(&mut c));
        assert!(
            c.missed(&stmt).is_some_and(|m| m.starts_with("a subquery")),
            "{:?}",
            c.missed(&stmt)
        );
        let stmt = parse("INSERT INTO t (a) VALUES (lower('x'))");
        let mut c = Covered::default();
        let _ = stmt.visit(&mut Partly(&mut c));
        assert_eq!(c.missed(&stmt), None);
    }
}
