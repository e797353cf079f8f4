//! WITH lists: each CTE analyzed once in order, later ones marked so that nothing resolves to them
//! early, and recursive CTEs analyzed round by round until their lineage settles.

use sqlparser::ast::{Query, SetExpr, SetOperator};

use super::facts::{ColRef, Lineage};
use super::query::to_entry_cols;
use super::scope::{EntryCol, Scope};
use super::{fold_ident, unsupported, AnalyzeError, Analyzer, CteDef};

/// Rounds of a recursive CTE's lineage before it is taken to carry everything (see recursive_cte).
const MAX_RECURSIVE_ROUNDS: usize = 32;

impl Analyzer<'_> {
    pub(super) fn with(&mut self, w: &sqlparser::ast::With, parent: Option<&Scope>) -> Result<usize, AnalyzeError> {
        let mut pushed = 0;
        for (i, cte) in w.cte_tables.iter().enumerate() {
            if cte.from.is_some() {
                return unsupported("CTE FROM");
            }
            let name = fold_ident(&cte.alias.name);
            let rename: Vec<String> = cte.alias.columns.iter().map(|c| fold_ident(&c.name)).collect();
            let recursive_union = w.recursive
                && matches!(
                    &*cte.query.body,
                    SetExpr::SetOperation {
                        op: SetOperator::Union,
                        ..
                    }
                );
            // In WITH RECURSIVE every CTE sees every other: mark the later ones (and this one, unless
            // it is the UNION shape analyzed below) so a reference to them is refused, not resolved
            // to a table of the same name.
            let mut forward: Vec<CteDef> = Vec::new();
            if w.recursive {
                let later = w.cte_tables[i + 1..].iter().map(|c| fold_ident(&c.alias.name));
                let this = (!recursive_union).then(|| name.clone());
                forward.extend(later.chain(this).map(|name| CteDef {
                    name,
                    cols: None,
                    forward: true,
                }));
            }
            let marks = forward.len();
            self.ctes.extend(forward);
            let cols = if recursive_union {
                self.recursive_cte(&name, &rename, &cte.query, parent)
            } else {
                self.query(&cte.query, parent)
                    .and_then(|outs| to_entry_cols(&outs, &rename))
            };
            self.ctes.truncate(self.ctes.len() - marks);
            self.ctes.push(CteDef {
                name,
                cols: cols?,
                forward: false,
            });
            pushed += 1;
        }
        Ok(pushed)
    }

    /// Analyzes the non-recursive arm, then the whole union with the CTE visible, until the lineage settles.
    fn recursive_cte(
        &mut self,
        name: &str,
        rename: &[String],
        q: &Query,
        parent: Option<&Scope>,
    ) -> Result<Option<Vec<EntryCol>>, AnalyzeError> {
        let SetExpr::SetOperation { left, .. } = &*q.body else {
            return unsupported("recursive CTE shape");
        };
        let seed = self.set_expr(left, parent, None)?;
        let mut cols = to_entry_cols(&seed, rename)?;
        // Lineage only grows from round to round (the seed arm is part of every round), so this
        // reaches a fixpoint: a rotation of n columns needs n rounds. The analysis budget bounds
        // the cost; past MAX_ROUNDS every column is taken to carry everything seen.
        for _ in 0..MAX_RECURSIVE_ROUNDS {
            self.ctes.push(CteDef {
                name: name.to_owned(),
                cols: cols.clone(),
                forward: false,
            });
            let outs = self.query(q, parent);
            self.ctes.pop();
            let next = to_entry_cols(&outs?, rename)?;
            let stable = match (&cols, &next) {
                (Some(a), Some(b)) => a.iter().zip(b).all(|(x, y)| x.lineage == y.lineage),
                (None, None) => true,
                _ => false,
            };
            cols = next;
            if stable {
                return Ok(cols);
            }
        }
        // Still growing: every column may carry any value any column has carried.
        Ok(cols.map(|cs| {
            let all: Vec<ColRef> = cs.iter().flat_map(|c| c.lineage.cols.iter().copied()).collect();
            cs.into_iter()
                .map(|mut c| {
                    c.lineage = Lineage::derived(all.clone());
                    c
                })
                .collect()
        }))
    }
}
