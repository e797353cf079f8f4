//! Whether a helper's query finds at most one row, as the catalog proves it: every table pinned by
//! equalities that cover a unique key, or an aggregate without GROUP BY whose value does not
//! follow the order of its input, and no set-returning call that would make more rows.

use std::collections::{HashMap, HashSet};

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, JoinConstraint, JoinOperator,
    Query, SelectItem, SetExpr, TableFactor,
};

use crate::analyze::fold_ident;
use crate::catalog::{Catalog, RelId};

/// What the catalog says about lookups, read once per catalog load.
#[derive(Default)]
pub struct Lookups {
    /// Per table OID, the unique keys (attnums) that prove a lookup finds at most one row (see
    /// `ONE_ROW_KEYS`).
    pub keys: HashMap<u32, Vec<Vec<i16>>>,
    /// The names of set-returning functions, built-in and the DBA's: a call of one in a select
    /// list makes as many rows as it returns (round 187 X2: `SELECT srf()` in a scalar helper).
    pub set_returning: HashSet<String>,
    /// The database has a nondeterministic collation, so `min` and `max` of text may keep either
    /// of two strings it calls equal.
    pub loose_collations: bool,
}

/// Types whose equal values print the same, so `min` and `max` of them do not depend on the
/// order rows come in: integers, oid, bool, date, timestamps, uuid (and text under deterministic
/// collations, see `TEXT_TYPES`). Not numeric (`1.0` and `1.00`, round 187 X5), floats (0 and
/// -0), intervals, char(n), jsonb or rows.
const STEADY_TYPES: &[u32] = &[16, 20, 21, 23, 26, 1082, 1114, 1184, 2950];
/// text, varchar, name.
const TEXT_TYPES: &[u32] = &[25, 1043, 19];

/// Aggregates whose value does not depend on the order of their input whatever its type.
const COUNTS: &[&str] = &["count", "bool_and", "bool_or", "every"];

pub(super) struct OneRow<'a> {
    pub catalog: &'a Catalog,
    pub lookups: &'a Lookups,
}

/// A relation in the FROM of a lookup: the name it is referred to by, and the relations its name
/// may resolve to (an unqualified name, by whatever search_path the function runs with).
struct Item {
    alias: String,
    rels: Vec<RelId>,
}

/// A condition of the query, and the one item it may pin if it is a LEFT JOIN's ON (which keeps
/// every row of the tables before it: round 187 X1), or None for WHERE and inner joins.
type Conjunct<'e> = (&'e Expr, Option<usize>);

impl OneRow<'_> {
    pub fn query(&self, q: &Query) -> bool {
        if q.with.is_some() {
            return false;
        }
        let select = match q.body.as_ref() {
            SetExpr::Select(s) => s,
            _ => return false,
        };
        let grouped = match &select.group_by {
            GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
            GroupByExpr::All(_) => true,
        };
        let projection: Vec<&Expr> = select
            .projection
            .iter()
            .filter_map(|p| match p {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
                _ => None,
            })
            .collect();
        if grouped || select.having.is_some() || projection.iter().any(|e| self.sets(e)) {
            return false;
        }
        if select.from.is_empty() {
            return true;
        }
        let mut items = Vec::new();
        let mut conjuncts: Vec<Conjunct<'_>> = Vec::new();
        for twj in &select.from {
            let Some(item) = self.item(&twj.relation) else {
                return false;
            };
            items.push(item);
            for join in &twj.joins {
                let (constraint, left) = match &join.join_operator {
                    JoinOperator::Join(c) | JoinOperator::Inner(c) => (c, false),
                    JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (c, true),
                    _ => return false,
                };
                let Some(item) = self.item(&join.relation) else {
                    return false;
                };
                items.push(item);
                let only = left.then_some(items.len() - 1);
                match constraint {
                    JoinConstraint::On(e) => conjuncts_of(e, only, &mut conjuncts),
                    JoinConstraint::None => {}
                    _ => return false,
                }
            }
        }
        // An aggregate without GROUP BY makes one row; its value must not follow the order.
        if projection.iter().any(|e| self.aggregate(&items, e).is_some()) {
            return projection.iter().all(|e| self.aggregate(&items, e) != Some(false));
        }
        if let Some(w) = &select.selection {
            conjuncts_of(w, None, &mut conjuncts);
        }
        self.determined(&items, &conjuncts)
    }

    /// Whether `e` calls a set-returning function anywhere (subqueries included: erring towards
    /// more rows).
    fn sets(&self, e: &Expr) -> bool {
        let mut found = false;
        let _ = sqlparser::ast::visit_expressions(e, |x: &Expr| {
            if let Expr::Function(f) = x {
                let name = crate::analyze::object_name_parts(&f.name).and_then(|p| p.last().cloned());
                found |= name.is_none_or(|n| self.lookups.set_returning.contains(&n));
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        found
    }

    fn item(&self, tf: &TableFactor) -> Option<Item> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = tf
        else {
            return None;
        };
        let parts = crate::analyze::object_name_parts(name)?;
        let rels: Vec<RelId> = match parts.as_slice() {
            [table] => self.catalog.named(table).to_vec(),
            [schema, table] => self
                .catalog
                .lookup(&crate::policy::QName::new(schema, table))
                .into_iter()
                .collect(),
            _ => return None,
        };
        if rels.is_empty() {
            return None;
        }
        let alias = match alias {
            Some(a) if a.columns.is_empty() => fold_ident(&a.name),
            Some(_) => return None,
            None => parts.last()?.clone(),
        };
        Some(Item { alias, rels })
    }

    /// Whether the equalities among `conjuncts` pin every item to at most one row: an item is
    /// pinned once each of its possible relations has a unique key whose columns all equal
    /// expressions of pinned items' columns, parameters or functions.
    fn determined(&self, items: &[Item], conjuncts: &[Conjunct<'_>]) -> bool {
        let mut pinned = vec![false; items.len()];
        loop {
            let mut changed = false;
            for (i, item) in items.iter().enumerate() {
                if pinned[i] {
                    continue;
                }
                let bound: Vec<String> = conjuncts
                    .iter()
                    .filter(|(_, only)| only.is_none_or(|o| o == i))
                    .filter_map(|(c, _)| self.bound_column(items, &pinned, i, c))
                    .collect();
                let keyed = item.rels.iter().all(|&rel| {
                    let r = self.catalog.rel(rel);
                    self.lookups.keys.get(&r.oid).is_some_and(|keys| {
                        keys.iter().any(|key| {
                            key.iter().all(|attnum| {
                                r.columns
                                    .iter()
                                    .find(|c| c.attnum == *attnum)
                                    .is_some_and(|c| bound.contains(&c.name))
                            })
                        })
                    })
                });
                if keyed {
                    pinned[i] = true;
                    changed = true;
                }
            }
            if !changed {
                return pinned.iter().all(|p| *p);
            }
        }
    }

    /// The column of item `i` that `c` equals to something already known, if `c` is such an
    /// equality. A COLLATE on either side may choose a collation that calls several keys equal
    /// (round 187 X4: `login = current_user::text COLLATE ci`).
    fn bound_column(&self, items: &[Item], pinned: &[bool], i: usize, c: &Expr) -> Option<String> {
        let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = c
        else {
            return None;
        };
        for (col, other) in [(left, right), (right, left)] {
            let Some((owner, name)) = self.column_of(items, col) else {
                continue;
            };
            if owner != Some(i) {
                continue;
            }
            if self.known(items, pinned, other) {
                return Some(name);
            }
        }
        None
    }

    /// The item a column reference belongs to (None for a name no item has: a parameter), and its
    /// name; None if `e` is no column reference or it is ambiguous.
    fn column_of(&self, items: &[Item], e: &Expr) -> Option<(Option<usize>, String)> {
        let has = |item: &Item, col: &str| {
            item.rels
                .iter()
                .any(|&r| self.catalog.rel(r).columns.iter().any(|c| c.name == col))
        };
        match unnested(e) {
            Expr::Identifier(id) => {
                let col = fold_ident(id);
                let owners: Vec<usize> = (0..items.len()).filter(|&i| has(&items[i], &col)).collect();
                match owners.as_slice() {
                    [] => Some((None, col)),
                    [one] => Some((Some(*one), col)),
                    _ => None,
                }
            }
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let (alias, col) = (fold_ident(&parts[0]), fold_ident(&parts[1]));
                let owner = items.iter().position(|it| it.alias == alias)?;
                has(&items[owner], &col).then_some((Some(owner), col))
            }
            _ => None,
        }
    }

    /// Whether `e` is known once the pinned items are: it reads no column of an unpinned item,
    /// chooses no collation and holds no subquery (which could read anything).
    fn known(&self, items: &[Item], pinned: &[bool], e: &Expr) -> bool {
        let mut ok = true;
        let _ = sqlparser::ast::visit_expressions(e, |x: &Expr| {
            match x {
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { .. } | Expr::Collate { .. } => ok = false,
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => match self.column_of(items, x) {
                    Some((None, _)) => {}
                    Some((Some(owner), _)) if pinned[owner] => {}
                    _ => ok = false,
                },
                _ => {}
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        ok
    }

    /// Whether `e` holds an aggregate call outside any subquery: Some(true) when every aggregate
    /// in it keeps a value that does not follow the order of its input (a count, `bool_or`, or
    /// `min`/`max` of a column of a steady type), Some(false) when one may, None without any.
    fn aggregate(&self, items: &[Item], e: &Expr) -> Option<bool> {
        match e {
            Expr::Function(f) => {
                let name = crate::analyze::object_name_parts(&f.name).and_then(|p| p.last().cloned());
                let args: Vec<&Expr> = match &f.args {
                    FunctionArguments::List(l) => l
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let own = match name.as_deref() {
                    _ if f.over.is_some() => None,
                    Some(n) if COUNTS.contains(&n) => Some(true),
                    Some("min" | "max") => Some(args.len() == 1 && self.steady(items, args[0])),
                    _ => None,
                };
                let inner = args
                    .iter()
                    .filter_map(|a| self.aggregate(items, a))
                    .reduce(|a, b| a && b);
                match (own, inner) {
                    (Some(a), Some(b)) => Some(a && b),
                    (a, b) => a.or(b),
                }
            }
            Expr::BinaryOp { left, right, .. } => match (self.aggregate(items, left), self.aggregate(items, right)) {
                (Some(a), Some(b)) => Some(a && b),
                (a, b) => a.or(b),
            },
            Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => self.aggregate(items, expr),
            Expr::IsNull(expr) | Expr::IsNotNull(expr) => self.aggregate(items, expr),
            _ => None,
        }
    }

    /// Whether `e` is a column of a FROM item whose type prints equal values the same.
    fn steady(&self, items: &[Item], e: &Expr) -> bool {
        let Some((Some(owner), name)) = self.column_of(items, e) else {
            return false;
        };
        items[owner].rels.iter().all(|&r| {
            self.catalog.rel(r).columns.iter().filter(|c| c.name == name).all(|c| {
                STEADY_TYPES.contains(&c.type_oid)
                    || (TEXT_TYPES.contains(&c.type_oid) && !self.lookups.loose_collations)
            })
        })
    }
}

fn unnested(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(inner) => unnested(inner),
        _ => e,
    }
}

fn conjuncts_of<'e>(e: &'e Expr, only: Option<usize>, out: &mut Vec<Conjunct<'e>>) {
    match unnested(e) {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts_of(left, only, out);
            conjuncts_of(right, only, out);
        }
        other => out.push((other, only)),
    }
}
