//! FROM items: relations and CTEs, subqueries, functions, UNNEST and joins (USING and NATURAL merge
//! columns the way Postgres does); functions and LATERAL subqueries see the items before them.

use sqlparser::ast::{
    FunctionArg, FunctionArgExpr, JoinConstraint, JoinOperator, TableAlias, TableFactor, TableWithJoins,
};

use super::expr::{object_parts, Cx};
use super::facts::{Clause, Lineage};
use super::query::{rename_cols, star_outputs, to_entry_cols};
use super::scope::{Entry, EntryCol, Found, Level, Scope};
use super::{fold_ident, unsupported, AnalyzeError, Analyzer};
use crate::catalog::{RelId, RelKind};

/// Set-returning functions whose result columns are known without the catalog's type information.
fn srf_columns(name: &str, alias: Option<&str>) -> Option<Vec<String>> {
    let single = |n: &str| Some(vec![alias.unwrap_or(n).to_owned()]);
    match name {
        "generate_series"
        | "unnest"
        | "generate_subscripts"
        | "regexp_split_to_table"
        | "string_to_table"
        | "json_object_keys"
        | "jsonb_object_keys"
        | "regexp_matches" => single(name),
        // Its column is its OUT parameter's, whatever the alias (round 28: naming it after the
        // alias let `iban` in FROM hide an outer table's column).
        "pg_partition_ancestors" => Some(vec!["relid".into()]),
        "json_each" | "jsonb_each" | "json_each_text" | "jsonb_each_text" => Some(vec!["key".into(), "value".into()]),
        "json_array_elements" | "jsonb_array_elements" | "json_array_elements_text" | "jsonb_array_elements_text" => {
            Some(vec!["value".into()])
        }
        _ => None,
    }
}

impl Analyzer<'_> {
    /// The FROM list: comma-separated items; functions and LATERAL subqueries see the ones before.
    pub(super) fn range_table(
        &mut self,
        items: &[TableWithJoins],
        parent: Option<&Scope>,
    ) -> Result<Level, AnalyzeError> {
        let mut acc = Level::default();
        for item in items {
            let lvl = self.table_with_joins(item, &acc, parent)?;
            append(&mut acc, lvl);
        }
        Ok(acc)
    }

    fn table_with_joins(
        &mut self,
        twj: &TableWithJoins,
        before: &Level,
        parent: Option<&Scope>,
    ) -> Result<Level, AnalyzeError> {
        let mut left = self.table_factor(&twj.relation, before, parent)?;
        for j in &twj.joins {
            if j.global {
                return unsupported("GLOBAL join");
            }
            // A LATERAL right side sees the earlier FROM items and the join's left side (a plain
            // subquery sees none of them, see table_factor); the ON condition sees only the
            // join's own inputs. The copies grow with every join: a long chain is refused, not
            // analyzed in quadratic time on a thread other sessions share.
            self.spend_n(2 * (before.weight() + left.weight()))?;
            let mut visible = before.clone();
            append(&mut visible, left.clone());
            let right = self.table_factor(&j.relation, &visible, parent)?;
            let (constraint, kind) = match &j.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) => (c, 'i'),
                JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (c, 'l'),
                JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (c, 'r'),
                JoinOperator::FullOuter(c) => (c, 'f'),
                JoinOperator::CrossJoin(c) => (c, 'i'),
                _ => return unsupported("join type"),
            };
            if matches!(constraint, JoinConstraint::Using(_) | JoinConstraint::Natural) {
                self.implicit_operators(&["="])?;
            }
            let names: Vec<String> = match constraint {
                JoinConstraint::On(_) | JoinConstraint::None => Vec::new(),
                JoinConstraint::Using(cols) => cols
                    .iter()
                    .map(|n| object_parts(n).map(|p| p.join(".")))
                    .collect::<Result<_, _>>()?,
                JoinConstraint::UsingAlias(..) => return unsupported("USING ... AS"),
                JoinConstraint::Natural => {
                    // Postgres joins on every shared name, including those of a function whose
                    // columns unscharf cannot see: which ones would be a guess.
                    if left.star.iter().chain(&right.star).any(unseen) {
                        return unsupported("NATURAL JOIN with a FROM item whose columns unscharf cannot see");
                    }
                    let rnames: Vec<&str> = right.star.iter().flatten().map(|c| c.name.as_str()).collect();
                    left.star
                        .iter()
                        .flatten()
                        .filter(|c| rnames.contains(&c.name.as_str()))
                        .map(|c| c.name.clone())
                        .collect()
                }
            };
            if let JoinConstraint::On(cond) = constraint {
                let mut both = left.clone();
                append(&mut both, right.clone());
                let scope = Scope::new(both, parent);
                let l = self.expr(cond, &scope, Cx::new(Clause::JoinOn))?;
                self.consume(vec![l], Cx::new(Clause::JoinOn), "JOIN ON");
            }
            left = self.join_using(left, right, &names, kind)?;
            for e in &mut left.entries {
                e.joined = true;
            }
        }
        Ok(left)
    }

    /// A copy of a FROM level, charged to the work budget by its size.
    fn copied(&mut self, level: &Level) -> Result<Level, AnalyzeError> {
        self.spend_n(level.weight())?;
        Ok(level.clone())
    }

    fn join_using(&mut self, left: Level, right: Level, names: &[String], kind: char) -> Result<Level, AnalyzeError> {
        let cx = Cx::new(Clause::JoinOn);
        if !names.is_empty() && left.star.iter().chain(&right.star).any(unseen) {
            return unsupported("JOIN USING beside columns whose names unscharf cannot see");
        }
        let mut merged_now = Vec::new();
        for n in names {
            self.spend_n(left.weight() + right.weight())?;
            let (Some(a), Some(b)) = (visible_col(self, &left, n)?, visible_col(self, &right, n)?) else {
                return Err(AnalyzeError::UnknownColumn(format!("{n} (in USING)")));
            };
            self.consume(vec![a.lineage.clone(), b.lineage.clone()], cx, "JOIN USING");
            let lineage = match kind {
                'l' | 'i' => a.lineage.clone(),
                'r' => b.lineage.clone(),
                _ => self.consume(vec![a.lineage.clone(), b.lineage.clone()], cx, "FULL JOIN USING"),
            };
            merged_now.push(EntryCol {
                name: n.clone(),
                lineage,
                explicit: a.explicit || b.explicit,
            });
        }
        let not_merged = |c: &Option<EntryCol>| c.as_ref().is_none_or(|c| !names.contains(&c.name));
        let mut star: Vec<Option<EntryCol>> = merged_now.iter().cloned().map(Some).collect();
        star.extend(left.star.into_iter().filter(not_merged));
        star.extend(right.star.into_iter().filter(not_merged));
        let mut merged = left.merged;
        merged.retain(|m| !names.contains(&m.name));
        merged.extend(right.merged.into_iter().filter(|m| !names.contains(&m.name)));
        merged.extend(merged_now);
        let mut entries = left.entries;
        entries.extend(right.entries);
        Ok(Level { entries, merged, star })
    }

    fn table_factor(
        &mut self,
        tf: &TableFactor,
        before: &Level,
        parent: Option<&Scope>,
    ) -> Result<Level, AnalyzeError> {
        match tf {
            TableFactor::Table {
                name,
                alias,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample,
                index_directives,
                inheritance: _,
            } => {
                if !with_hints.is_empty()
                    || version.is_some()
                    || !partitions.is_empty()
                    || json_path.is_some()
                    || !index_directives.is_empty()
                {
                    return unsupported("table option");
                }
                let parts = object_parts(name)?;
                let level = match args {
                    Some(a) => {
                        if a.settings.is_some() {
                            return unsupported("table function settings");
                        }
                        self.function_table(&parts, &a.args, *with_ordinality, alias.as_ref(), before, parent)?
                    }
                    None => {
                        if *with_ordinality {
                            return unsupported("WITH ORDINALITY on a table");
                        }
                        self.named_relation(&parts, alias.as_ref())?
                    }
                };
                if let Some(s) = sample {
                    self.table_sample(s, parent)?;
                    // Which rows a sample keeps follows the pages they lie on, which the sizes of
                    // all their columns decide, as for ctid (round 79).
                    for e in &level.entries {
                        let cols = e.lineage_cols();
                        self.facts
                            .whole_rows
                            .push((cols, format!("TABLESAMPLE of {} (which rows share a page)", e.alias)));
                    }
                }
                Ok(level)
            }
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
                sample,
            } => {
                if sample.is_some() {
                    return unsupported("TABLESAMPLE on a subquery");
                }
                // Only a LATERAL subquery sees the FROM items before it; any other resolves those
                // names in the enclosing query, as Postgres does.
                let visible = if *lateral {
                    self.copied(before)?
                } else {
                    Level::default()
                };
                let scope = Scope::new(visible, parent);
                let outs = self.query(subquery, Some(&scope))?;
                let rename: Vec<String> = alias
                    .as_ref()
                    .map(|a| a.columns.iter().map(|c| fold_ident(&c.name)).collect())
                    .unwrap_or_default();
                let cols = to_entry_cols(&outs, &rename)?;
                let name = alias
                    .as_ref()
                    .map(|a| fold_ident(&a.name))
                    .unwrap_or_else(|| "subquery".into());
                Ok(single_entry(name, None, cols))
            }
            TableFactor::Function {
                lateral: _,
                name,
                args,
                with_ordinality,
                alias,
            } => {
                let parts = object_parts(name)?;
                self.function_table(&parts, args, *with_ordinality, alias.as_ref(), before, parent)
            }
            TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset,
                with_offset_alias,
                with_ordinality,
            } => {
                if *with_offset || with_offset_alias.is_some() {
                    return unsupported("UNNEST WITH OFFSET");
                }
                // sqlparser's own form for `unnest(…)` in FROM; to Postgres it is a call looked up
                // through search_path like any other, so a DBA's `unnest` may answer it (round 27).
                self.resolve_function(&["unnest".to_owned()], "unnest(…)")?;
                let scope = Scope::new(self.copied(before)?, parent);
                let cx = Cx::new(Clause::FunctionArgument);
                // unnest(tsvector) returns three columns: only an evident array is one.
                let mut lineages = Vec::with_capacity(array_exprs.len());
                for e in array_exprs {
                    lineages.push(self.expr(e, &scope, cx)?);
                }
                let arrays = array_exprs
                    .iter()
                    .zip(&lineages)
                    .all(|(e, l)| evident_array(e) || self.array_column(l));
                if !arrays {
                    self.consume(lineages, cx, "unnest()");
                    let name = alias
                        .as_ref()
                        .map(|a| fold_ident(&a.name))
                        .unwrap_or_else(|| "unnest".into());
                    return Ok(single_entry(name, None, None));
                }
                let mut cols = Vec::new();
                let rename: Vec<String> = alias
                    .as_ref()
                    .map(|a| a.columns.iter().map(|c| fold_ident(&c.name)).collect())
                    .unwrap_or_default();
                for (i, l) in lineages.into_iter().enumerate() {
                    let lineage = self.consume(vec![l], cx, "unnest()");
                    // One array with a table alias and no column aliases: Postgres names the column
                    // after the table alias, as for any function returning one column.
                    let single = array_exprs.len() == 1 && rename.is_empty();
                    let name = match (single, alias) {
                        (true, Some(a)) => fold_ident(&a.name),
                        _ => rename.get(i).cloned().unwrap_or_else(|| "unnest".into()),
                    };
                    cols.push(EntryCol {
                        name,
                        lineage,
                        explicit: true,
                    });
                }
                if *with_ordinality {
                    let name = rename.get(cols.len()).cloned().unwrap_or_else(|| "ordinality".into());
                    cols.push(EntryCol {
                        name,
                        lineage: Lineage::constant(),
                        explicit: true,
                    });
                }
                let name = alias
                    .as_ref()
                    .map(|a| fold_ident(&a.name))
                    .unwrap_or_else(|| "unnest".into());
                Ok(single_entry(name, None, Some(cols)))
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let inner = self.table_with_joins(table_with_joins, before, parent)?;
                match alias {
                    None => Ok(inner),
                    Some(a) => {
                        if inner.star.iter().any(Option::is_none) {
                            return unsupported("an aliased join over a FROM item whose columns unscharf cannot see");
                        }
                        let outs = star_outputs(&inner.star);
                        let rename: Vec<String> = a.columns.iter().map(|c| fold_ident(&c.name)).collect();
                        Ok(single_entry(fold_ident(&a.name), None, to_entry_cols(&outs, &rename)?))
                    }
                }
            }
            _ => unsupported("FROM item"),
        }
    }

    fn table_sample(
        &mut self,
        s: &sqlparser::ast::TableSampleKind,
        parent: Option<&Scope>,
    ) -> Result<(), AnalyzeError> {
        use sqlparser::ast::TableSampleKind;
        let (TableSampleKind::BeforeTableAlias(t) | TableSampleKind::AfterTableAlias(t)) = s;
        // The sampled table is not in scope in its own arguments: Postgres binds their names to
        // the enclosing query (round 25: a correlated test on the outer row read it out).
        let scope = Scope::new(Level::default(), parent);
        let cx = Cx::new(Clause::Other);
        for e in t.quantity.iter().map(|q| &q.value).chain(t.offset.iter()) {
            let l = self.expr(e, &scope, cx)?;
            self.consume(vec![l], cx, "TABLESAMPLE");
        }
        Ok(())
    }

    /// A function in FROM: its arguments are consumed; its columns come from the alias or a known shape.
    fn function_table(
        &mut self,
        parts: &[String],
        args: &[sqlparser::ast::FunctionArg],
        ordinality: bool,
        alias: Option<&TableAlias>,
        before: &Level,
        parent: Option<&Scope>,
    ) -> Result<Level, AnalyzeError> {
        let f = sqlparser::ast::Function {
            name: sqlparser::ast::ObjectName::from(
                parts
                    .iter()
                    .map(|p| sqlparser::ast::Ident::new(p.clone()))
                    .collect::<Vec<_>>(),
            ),
            uses_odbc_syntax: false,
            parameters: sqlparser::ast::FunctionArguments::None,
            args: sqlparser::ast::FunctionArguments::List(sqlparser::ast::FunctionArgumentList {
                duplicate_treatment: None,
                args: args.to_vec(),
                clauses: Vec::new(),
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: Vec::new(),
        };
        let scope = Scope::new(self.copied(before)?, parent);
        let call = sqlparser::ast::Expr::Function(f);
        let lineage = self.expr(&call, &scope, Cx::new(Clause::FunctionArgument))?;
        // The call analyzed is a copy: what it covered, it covered of the arguments written.
        self.covered.adopt(&call, args)?;
        let bare = parts.last().map(String::as_str).unwrap_or("");
        // Postgres coerces the function's columns to a column definition list's types.
        for t in alias
            .into_iter()
            .flat_map(|a| &a.columns)
            .filter_map(|c| c.data_type.as_ref())
        {
            self.note_type(t)?;
        }
        let alias_name = alias.map(|a| fold_ident(&a.name));
        let rename: Vec<String> = alias
            .map(|a| a.columns.iter().map(|c| fold_ident(&c.name)).collect())
            .unwrap_or_default();
        // The function's own columns: known for the functions listed in srf_columns, or given by a
        // column definition list (`AS t(a int, b text)`). Column aliases alone only rename them:
        // Postgres keeps the unnamed rest, so trusting their count would misalign `*`.
        let defined = alias.is_some_and(|a| !a.columns.is_empty() && a.columns.iter().all(|c| c.data_type.is_some()));
        let names = if defined {
            Some(rename.clone())
        } else if bare == "unnest"
            && !matches!(args, [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] if evident_array(e) || self.array_reference(e, &scope))
        {
            None
        } else {
            srf_columns(bare, alias_name.as_deref())
        };
        let cols = names.map(|ns| {
            let mut cols: Vec<EntryCol> = ns
                .into_iter()
                .map(|name| EntryCol {
                    name,
                    lineage: Lineage::derived(lineage.cols.clone()),
                    explicit: true,
                })
                .collect();
            if ordinality {
                cols.push(EntryCol {
                    name: "ordinality".into(),
                    lineage: Lineage::constant(),
                    explicit: true,
                });
            }
            cols
        });
        // Aliases rename those columns in order, the ordinality column included.
        let cols = match cols {
            Some(mut cs) if !defined => {
                rename_cols(&mut cs, &rename)?;
                Some(cs)
            }
            other => other,
        };
        Ok(single_entry(alias_name.unwrap_or_else(|| bare.to_owned()), None, cols))
    }

    /// A relation or CTE named in FROM.
    pub(super) fn named_relation(
        &mut self,
        parts: &[String],
        alias: Option<&TableAlias>,
    ) -> Result<Level, AnalyzeError> {
        let rename: Vec<String> = alias
            .map(|a| a.columns.iter().map(|c| fold_ident(&c.name)).collect())
            .unwrap_or_default();
        if let [name] = parts {
            if let Some(cte) = self.ctes.iter().rev().find(|c| &c.name == name) {
                if cte.forward {
                    return unsupported(format!(
                        "`{name}` refers to a CTE of WITH RECURSIVE defined later (or to itself outside UNION)"
                    ));
                }
                // Copying its columns and their lineage costs what visiting them would.
                let weight = cte.cols.iter().flatten().map(|c| 1 + c.lineage.cols.len()).sum();
                let mut cols = cte.cols.clone();
                self.spend_n(weight)?;
                if let Some(cs) = cols.as_mut() {
                    rename_cols(cs, &rename)?;
                }
                let alias_name = alias.map(|a| fold_ident(&a.name)).unwrap_or_else(|| name.clone());
                return Ok(single_entry(alias_name, None, cols));
            }
        }
        let rel = self.resolve_relation(parts)?;
        self.facts.read(rel);
        Ok(self.relation_level(rel, alias, &rename))
    }

    pub(super) fn relation_level(&mut self, rel: RelId, alias: Option<&TableAlias>, rename: &[String]) -> Level {
        self.facts.touch(rel);
        let r = self.ctx.catalog.rel(rel);
        let mut cols: Vec<EntryCol> = r
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.dropped)
            .map(|(i, c)| EntryCol {
                name: c.name.clone(),
                lineage: Lineage::column(super::facts::ColRef { rel, col: i as u16 }),
                explicit: false,
            })
            .collect();
        for (c, n) in cols.iter_mut().zip(rename) {
            c.name = n.clone();
        }
        let (name, schema) = match alias {
            Some(a) => (fold_ident(&a.name), None),
            None => (r.name.name.clone(), Some(r.name.schema.clone())),
        };
        let system = matches!(
            r.kind,
            RelKind::Table | RelKind::MaterializedView | RelKind::Foreign | RelKind::Sequence
        )
        .then_some(rel);
        let mut level = single_entry(name, schema, Some(cols));
        level.entries[0].system = system;
        level
    }
}

fn single_entry(alias: String, schema: Option<String>, cols: Option<Vec<EntryCol>>) -> Level {
    let star = match &cols {
        Some(cs) => cs.iter().cloned().map(Some).collect(),
        None => vec![None],
    };
    Level {
        entries: vec![Entry {
            alias,
            schema,
            cols,
            system: None,
            joined: false,
        }],
        merged: Vec::new(),
        star,
    }
}

fn append(acc: &mut Level, other: Level) {
    acc.entries.extend(other.entries);
    acc.merged.extend(other.merged);
    acc.star.extend(other.star);
}

/// A column visible at a level by an unqualified name (for USING/NATURAL).
fn visible_col(a: &mut Analyzer<'_>, level: &Level, name: &str) -> Result<Option<EntryCol>, AnalyzeError> {
    if let Some(m) = level.merged.iter().find(|c| c.name == name) {
        return Ok(Some(m.clone()));
    }
    let scope = Scope::new(level.clone(), None);
    match scope.column(a, name)? {
        Some(Found::Column(c)) => Ok(Some(c.clone())),
        _ => Ok(None),
    }
}

/// A part of `*` whose name unscharf cannot know: a function's unseen columns, or a column
/// Postgres names by rules that reach into types.
fn unseen(c: &Option<EntryCol>) -> bool {
    c.as_ref().is_none_or(|c| c.name == super::names::UNSURE)
}

impl Analyzer<'_> {
    /// A column reference to a column of a built-in array type.
    fn array_reference(&mut self, e: &sqlparser::ast::Expr, scope: &Scope) -> bool {
        use sqlparser::ast::Expr;
        let found = match e {
            Expr::Identifier(id) => scope.column(self, &fold_ident(id)),
            Expr::CompoundIdentifier(ids) if ids.len() >= 2 => {
                let parts: Vec<String> = ids.iter().map(fold_ident).collect();
                let (name, qual) = parts.split_last().expect("two parts");
                scope.qualified(self, qual, name)
            }
            _ => return false,
        };
        matches!(found, Ok(Some(Found::Column(c))) if self.array_column(&c.lineage))
    }

    /// A plain column of a built-in array type (`pg_class.reloptions`, a `text[]` column).
    fn array_column(&self, l: &Lineage) -> bool {
        l.plain_col().is_some_and(|c| {
            let rel = self.ctx.catalog.rel(c.rel);
            rel.columns
                .get(c.col as usize)
                .is_some_and(|col| BUILTIN_ARRAY_TYPES.contains(&col.type_oid))
        })
    }
}

/// OIDs of the built-in array types (pg_type rows with typcategory 'A' below FirstNormalObjectId).
const BUILTIN_ARRAY_TYPES: &[u32] = &[
    199, 651, 1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 1011, 1012, 1014, 1015, 1016, 1017, 1021, 1022,
    1028, 1034, 1040, 1041, 1115, 1182, 1183, 1185, 1187, 1231, 1270, 2951, 3807,
];

/// An expression that is evidently an array of plain values, whatever its inputs: `ARRAY[…]` of
/// literals or scalar casts, or a cast to an array of a scalar type (`$1::int[]`). unnest of anything
/// else may return several columns: of a tsvector three, of an array of a row type one per field
/// (round 23: `unnest(ARRAY[NULL::public.postcodes])`, counted as one, misaligned a column list).
fn evident_array(e: &sqlparser::ast::Expr) -> bool {
    use sqlparser::ast::{ArrayElemTypeDef, DataType, Expr};
    match e {
        Expr::Array(a) => !a.elem.is_empty() && a.elem.iter().all(super::lookup::scalar_element),
        Expr::Nested(x) => evident_array(x),
        Expr::Cast {
            data_type:
                DataType::Array(
                    ArrayElemTypeDef::AngleBracket(t)
                    | ArrayElemTypeDef::SquareBracket(t, _)
                    | ArrayElemTypeDef::Parenthesis(t),
                ),
            ..
        } => super::lookup::scalar_type(t),
        _ => false,
    }
}
