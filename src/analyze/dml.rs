//! Writes: INSERT (ON CONFLICT too), UPDATE ... FROM, DELETE ... USING and MERGE, their sources
//! recorded as write sources, their targets as writes, and RETURNING as result columns.

use sqlparser::ast::{
    Assignment, AssignmentTarget, ConflictTarget, Expr, FromTable, MergeAction, MergeInsertKind, MergeUpdateKind,
    OnConflictAction, OnInsert, Statement, TableFactor, TableObject, UpdateTableFromKind,
};

use super::expr::{object_parts, Cx};
use super::facts::{Clause, Lineage, Outputs};
use super::scope::{Entry, EntryCol, Level, Scope};
use super::statement::statement_name;
use super::{fold_ident, unsupported, AnalyzeError, Analyzer};
use crate::catalog::RelId;
use crate::policy::WriteKind;

impl Analyzer<'_> {
    /// INSERT, UPDATE, DELETE and MERGE (also inside CTEs); returns the RETURNING columns.
    pub(super) fn dml(&mut self, s: &Statement, parent: Option<&Scope>) -> Result<Outputs, AnalyzeError> {
        match s {
            Statement::Insert(ins) => {
                if ins.or.is_some()
                    || ins.ignore
                    || ins.partitioned.is_some()
                    || !ins.after_columns.is_empty()
                    || ins.overwrite
                    || !ins.assignments.is_empty()
                    || ins.by_name
                    || ins.has_table_keyword
                    || ins.output.is_some()
                    || ins.replace_into
                    || ins.priority.is_some()
                    || ins.insert_alias.is_some()
                    || ins.settings.is_some()
                    || ins.format_clause.is_some()
                    || ins.multi_table_insert_type.is_some()
                    || !ins.multi_table_into_clauses.is_empty()
                    || !ins.multi_table_when_clauses.is_empty()
                    || ins.multi_table_else_clause.is_some()
                {
                    return unsupported("INSERT clause");
                }
                let TableObject::TableName(name) = &ins.table else {
                    return unsupported("INSERT into a function or subquery");
                };
                let rel = self.resolve_relation(&object_parts(name)?)?;
                self.write(rel, WriteKind::Insert);
                let targets: Vec<String> = if ins.columns.is_empty() {
                    self.ctx.catalog.rel(rel).column_names()
                } else {
                    ins.columns
                        .iter()
                        .map(|c| object_parts(c).map(|p| p.join(".")))
                        .collect::<Result<_, _>>()?
                };
                self.written(rel, &targets, WriteKind::Insert)?;
                let table = self.ctx.catalog.rel(rel).name.to_string();
                if let Some(src) = &ins.source {
                    let outs = self.query(src, parent)?;
                    match outs {
                        Outputs::Known(o) => {
                            if o.len() > targets.len() {
                                return unsupported("INSERT has more expressions than target columns");
                            }
                            for (out, col) in o.into_iter().zip(&targets) {
                                self.consume(
                                    vec![out.lineage],
                                    Cx::new(Clause::WriteSource),
                                    &format!("INSERT INTO {table} ({col})"),
                                );
                            }
                        }
                        _ => return unsupported("INSERT from a source of unknown columns"),
                    }
                }
                let alias = ins.table_alias.as_ref().map(|a| fold_ident(&a.alias));
                let level = self.target_level(rel, alias);
                if let Some(OnInsert::OnConflict(oc)) = &ins.on {
                    // Whether a row was inserted tells whether its key was there.
                    self.facts.read(rel);
                    if let Some(ConflictTarget::Columns { columns, predicate }) = &oc.conflict_target {
                        for c in columns {
                            let name = fold_ident(c);
                            if self.ctx.catalog.rel(rel).column_index(&name).is_none() {
                                return Err(AnalyzeError::UnknownColumn(format!("{name} (in ON CONFLICT)")));
                            }
                        }
                        // The arbiter index's predicate: Postgres evaluates what it can while
                        // planning, so its calls run (round 100: it went unjudged).
                        if let Some(p) = predicate {
                            let scope = Scope::new(level.clone(), parent);
                            let cx = Cx {
                                clause: Clause::Where,
                                lookup: false,
                            };
                            let l = self.expr(p, &scope, cx)?;
                            self.consume(vec![l], Cx::new(Clause::Where), "ON CONFLICT … WHERE");
                        }
                    }
                    if let OnConflictAction::DoUpdate(du) = &oc.action {
                        self.write(rel, WriteKind::Update);
                        let mut lvl = level.clone();
                        let excluded_cols = self
                            .ctx
                            .catalog
                            .rel(rel)
                            .column_names()
                            .into_iter()
                            .map(|name| EntryCol {
                                name,
                                lineage: Lineage::constant(),
                                explicit: true,
                            });
                        lvl.entries.push(Entry {
                            alias: "excluded".into(),
                            schema: None,
                            cols: Some(excluded_cols.collect()),
                            // Postgres gives EXCLUDED no system columns.
                            system: None,
                            joined: false,
                        });
                        let scope = Scope::new(lvl, parent);
                        self.assignments(&du.assignments, &scope, &table, rel)?;
                        if let Some(w) = &du.selection {
                            self.where_clause(w, &scope)?;
                        }
                    }
                } else if ins.on.is_some() {
                    return unsupported("ON DUPLICATE KEY");
                }
                self.returning(&ins.returning, level, parent)
            }
            Statement::Update(u) => {
                if u.on_cluster.is_some()
                    || u.output.is_some()
                    || u.or.is_some()
                    || !u.order_by.is_empty()
                    || u.limit.is_some()
                    || u.settings.is_some()
                    || !u.optimizer_hints.is_empty()
                {
                    return unsupported("UPDATE clause");
                }
                let (rel, mut level) = self.dml_target(&u.table.relation, !u.table.joins.is_empty())?;
                self.write(rel, WriteKind::Update);
                let table = self.ctx.catalog.rel(rel).name.to_string();
                match &u.from {
                    None => {}
                    Some(UpdateTableFromKind::AfterSet(items)) => {
                        let from = self.range_table(items, parent)?;
                        level.entries.extend(from.entries);
                        level.merged.extend(from.merged);
                        // RETURNING * is every column of the target, then of each FROM item.
                        level.star.extend(from.star);
                    }
                    Some(UpdateTableFromKind::BeforeSet(_)) => return unsupported("UPDATE FROM before SET"),
                }
                let scope = Scope::new(level, parent);
                self.assignments(&u.assignments, &scope, &table, rel)?;
                if let Some(w) = &u.selection {
                    self.where_clause(w, &scope)?;
                }
                self.returning(&u.returning, scope.level.clone(), parent)
            }
            Statement::Delete(d) => {
                if !d.tables.is_empty()
                    || d.on_cluster.is_some()
                    || d.output.is_some()
                    || !d.order_by.is_empty()
                    || d.limit.is_some()
                    || d.settings.is_some()
                    || !d.optimizer_hints.is_empty()
                {
                    return unsupported("DELETE clause");
                }
                let FromTable::WithFromKeyword(items) = &d.from else {
                    return unsupported("DELETE without FROM");
                };
                let [item] = items.as_slice() else {
                    return unsupported("DELETE from several tables");
                };
                let (rel, mut level) = self.dml_target(&item.relation, !item.joins.is_empty())?;
                self.write(rel, WriteKind::Delete);
                self.foreign_key_reads(rel, None, true)?;
                if let Some(using) = &d.using {
                    let from = self.range_table(using, parent)?;
                    level.entries.extend(from.entries);
                    level.merged.extend(from.merged);
                    // RETURNING * is every column of the target, then of each USING item.
                    level.star.extend(from.star);
                }
                let scope = Scope::new(level, parent);
                if let Some(w) = &d.selection {
                    self.where_clause(w, &scope)?;
                }
                self.returning(&d.returning, scope.level.clone(), parent)
            }
            Statement::Merge(m) => {
                if m.output.is_some() || !m.optimizer_hints.is_empty() {
                    return unsupported("MERGE clause");
                }
                let (rel, mut level) = self.dml_target(&m.table, false)?;
                let table = self.ctx.catalog.rel(rel).name.to_string();
                let src = self.table_source(&m.source, parent)?;
                level.entries.extend(src.entries);
                let scope = Scope::new(level, parent);
                let on = self.expr(&m.on, &scope, Cx::new(Clause::JoinOn))?;
                self.consume(vec![on], Cx::new(Clause::JoinOn), "MERGE ON");
                for clause in &m.clauses {
                    if let Some(p) = &clause.predicate {
                        let l = self.expr(p, &scope, Cx::new(Clause::Where))?;
                        self.consume(vec![l], Cx::new(Clause::Where), "MERGE WHEN");
                    }
                    match &clause.action {
                        MergeAction::Insert(ie) => {
                            self.write(rel, WriteKind::Insert);
                            let names: Vec<String> = if ie.columns.is_empty() {
                                self.ctx.catalog.rel(rel).column_names()
                            } else {
                                ie.columns
                                    .iter()
                                    .map(|c| object_parts(c).map(|p| p.join(".")))
                                    .collect::<Result<_, _>>()?
                            };
                            self.written(rel, &names, WriteKind::Insert)?;
                            let MergeInsertKind::Values(v) = &ie.kind else {
                                return unsupported("MERGE INSERT ROW/*");
                            };
                            if ie.insert_predicate.is_some() {
                                return unsupported("MERGE INSERT predicate");
                            }
                            for row in &v.rows {
                                for e in &row.content {
                                    if super::is_default_keyword(e) {
                                        continue;
                                    }
                                    let l = self.expr(e, &scope, Cx::new(Clause::WriteSource))?;
                                    self.consume(
                                        vec![l],
                                        Cx::new(Clause::WriteSource),
                                        &format!("MERGE INSERT INTO {table}"),
                                    );
                                }
                            }
                        }
                        MergeAction::Update(ue) => {
                            self.write(rel, WriteKind::Update);
                            if ue.update_predicate.is_some() || ue.delete_predicate.is_some() {
                                return unsupported("MERGE UPDATE predicate");
                            }
                            let MergeUpdateKind::Set(assignments) = &ue.kind else {
                                return unsupported("MERGE UPDATE SET *");
                            };
                            self.assignments(assignments, &scope, &table, rel)?;
                        }
                        MergeAction::Delete { .. } => {
                            self.write(rel, WriteKind::Delete);
                            self.foreign_key_reads(rel, None, true)?;
                        }
                        MergeAction::DoNothing { .. } => {}
                    }
                }
                // Postgres takes the write lock for any MERGE; one that writes nothing would take it
                // without a write grant (round 174 I1), and has no use a CRM needs.
                if !self.facts.writes.iter().any(|&(w, _)| w == rel) {
                    return unsupported("MERGE whose every action is DO NOTHING");
                }
                Ok(Outputs::None)
            }
            other => unsupported(statement_name(other)),
        }
    }

    fn table_source(&mut self, tf: &TableFactor, parent: Option<&Scope>) -> Result<Level, AnalyzeError> {
        let twj = sqlparser::ast::TableWithJoins {
            relation: tf.clone(),
            joins: Vec::new(),
        };
        let level = self.range_table(std::slice::from_ref(&twj), parent)?;
        // Analyzed as a copy: what the copy covered, the source written covers.
        self.covered.adopt(&twj, std::slice::from_ref(tf))?;
        Ok(level)
    }

    /// Records the columns a write sets (names Postgres would not find set nothing). decide()
    /// refuses a write to a column whose type a DBA's cast or domain CHECK guards (round 30).
    pub(super) fn written(&mut self, rel: RelId, names: &[String], kind: WriteKind) -> Result<(), AnalyzeError> {
        self.through_view(rel, kind)?;
        let r = self.ctx.catalog.rel(rel);
        for n in names {
            // `SET w.l = …` writes field `l` of column `w` (round 31: the whole name was looked up,
            // not found, and skipped).
            let i = r
                .column_index(n)
                .or_else(|| r.column_index(n.split('.').next().unwrap_or(n)));
            if let Some(i) = i {
                self.written_column(rel, i, kind)?;
                // A STORED generated column reading it is computed anew: its unique and foreign
                // keys compare that value too (round 134: a unique "dedupe key" of name and the
                // dropped birth date told which customers share one).
                let attnum = r.columns[i].attnum;
                for (g, _) in r.generated.iter().filter(|(_, reads)| reads.contains(&attnum)) {
                    if let Some(gi) = r.attnum_index(*g) {
                        self.written_column(rel, gi, kind)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn written_column(&mut self, rel: RelId, i: usize, kind: WriteKind) -> Result<(), AnalyzeError> {
        let col = super::facts::ColRef { rel, col: i as u16 };
        if self.facts.written_cols.contains(&col) {
            return Ok(());
        }
        self.facts.written_cols.push(col);
        let r = self.ctx.catalog.rel(rel);
        // A duplicate-key error on it tells whether a key is stored: the write reads its table
        // (rule 4, round 66).
        if r.unique_keys.iter().flatten().any(|&a| a == r.columns[i].attnum) {
            self.facts.read(rel);
        }
        self.foreign_key_reads(rel, Some(r.columns[i].attnum), kind == WriteKind::Update)
    }

    /// A write through a view writes the tables behind it, whose unique indexes and foreign keys
    /// compare what is written with their stored rows, rows the view may not show (round 115: an
    /// INSERT … ON CONFLICT through a view answered whether a guessed e-mail was a customer's).
    /// unscharf does not map a view's columns to the tables' columns, so each table behind it
    /// counts as written in every column: its keys are judged by its own rules for the purpose.
    fn through_view(&mut self, rel: RelId, kind: WriteKind) -> Result<(), AnalyzeError> {
        let catalog = self.ctx.catalog;
        let r = catalog.rel(rel);
        if r.kind != crate::catalog::RelKind::View {
            return Ok(());
        }
        for oid in catalog.behind(r.oid) {
            let base = catalog.by_oid(oid).ok_or_else(|| {
                AnalyzeError::Unsupported(format!(
                    "a write through {} into a relation unscharf does not know",
                    r.name
                ))
            })?;
            if catalog.rel(base).kind == crate::catalog::RelKind::View {
                continue;
            }
            match kind {
                WriteKind::Delete => self.foreign_key_reads(base, None, true)?,
                _ => {
                    let names = catalog.rel(base).column_names();
                    self.written(base, &names, kind)?;
                }
            }
        }
        Ok(())
    }

    /// The rows a foreign key compares a write with: the referenced table's, when a referencing
    /// column is written (a violation tells whether the key is stored there: round 67 confirmed
    /// guessed e-mails, across campaigns too), and the referencing tables', when a referenced
    /// column is updated (`referenced`) or (`attnum` None) a row deleted. Each counts as a read of
    /// that table and a use of those columns.
    pub(super) fn foreign_key_reads(
        &mut self,
        rel: RelId,
        attnum: Option<i16>,
        referenced: bool,
    ) -> Result<(), AnalyzeError> {
        if attnum.is_none() {
            self.through_view(rel, WriteKind::Delete)?;
        }
        let catalog = self.ctx.catalog;
        let r = catalog.rel(rel);
        let mut compared: Vec<(RelId, &[i16], String)> = Vec::new();
        for fk in r
            .foreign_keys
            .iter()
            .filter(|fk| attnum.is_some_and(|a| fk.cols.contains(&a)))
        {
            let target = catalog.by_oid(fk.target).ok_or_else(|| {
                AnalyzeError::Unsupported(format!(
                    "a foreign key of {} into a relation unscharf does not know",
                    r.name
                ))
            })?;
            let via = format!("the foreign key of {} into {}", r.name, catalog.rel(target).name);
            compared.push((target, &fk.target_cols, via));
        }
        for (from, fk) in catalog.referencing(rel) {
            if attnum.is_none_or(|a| referenced && fk.target_cols.contains(&a)) {
                let via = format!("the foreign key of {} into {}", catalog.rel(from).name, r.name);
                compared.push((from, &fk.cols, via));
                // CASCADE, SET NULL and SET DEFAULT write into the referencing table: its write
                // grant and rule 4 apply (round 70), and so do its own keys, constraints and the
                // foreign keys into it, down the chain (round 141: a second cascade wrote into
                // another campaign's table).
                match fk.writes_back(attnum.is_none()) {
                    Some(WriteKind::Delete) if !self.facts.writes.contains(&(from, WriteKind::Delete)) => {
                        self.write(from, WriteKind::Delete);
                        self.foreign_key_reads(from, None, true)?;
                    }
                    Some(kind) => {
                        self.write(from, kind);
                        if kind == WriteKind::Update {
                            let fr = catalog.rel(from);
                            for a in &fk.cols {
                                if let Some(i) = fr.attnum_index(*a) {
                                    self.written_column(from, i, WriteKind::Update)?;
                                }
                            }
                        }
                    }
                    None => {}
                }
            }
        }
        for (t, cols, via) in compared {
            self.facts.read(t);
            let tr = catalog.rel(t);
            for a in cols {
                if let Some(i) = tr.attnum_index(*a) {
                    self.record(super::facts::ColRef { rel: t, col: i as u16 }, Clause::ForeignKey, &via);
                }
            }
        }
        Ok(())
    }

    pub(super) fn write(&mut self, rel: RelId, kind: WriteKind) {
        self.facts.touch(rel);
        if !self.facts.writes.contains(&(rel, kind)) {
            self.facts.writes.push((rel, kind));
        }
    }

    /// The written table of UPDATE/DELETE/MERGE: a plain relation with an optional alias.
    fn dml_target(&mut self, tf: &TableFactor, has_joins: bool) -> Result<(RelId, Level), AnalyzeError> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            sample: None,
            ..
        } = tf
        else {
            return unsupported("write target that is not a table");
        };
        if has_joins {
            return unsupported("joins in a write target");
        }
        if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
            return unsupported("column aliases on a write target");
        }
        let rel = self.resolve_relation(&object_parts(name)?)?;
        let alias = alias.as_ref().map(|a| fold_ident(&a.name));
        Ok((rel, self.target_level(rel, alias)))
    }

    fn target_level(&mut self, rel: RelId, alias: Option<String>) -> Level {
        let alias = alias.map(|a| sqlparser::ast::TableAlias {
            explicit: true,
            name: sqlparser::ast::Ident::new(a),
            columns: Vec::new(),
            at: None,
        });
        self.relation_level(rel, alias.as_ref(), &[])
    }

    fn assignments(&mut self, list: &[Assignment], scope: &Scope, table: &str, rel: RelId) -> Result<(), AnalyzeError> {
        let cx = Cx::new(Clause::WriteSource);
        for a in list {
            let targets: Vec<String> = match &a.target {
                AssignmentTarget::ColumnName(n) => vec![object_parts(n)?.join(".")],
                AssignmentTarget::Tuple(ns) => ns
                    .iter()
                    .map(|n| object_parts(n).map(|p| p.join(".")))
                    .collect::<Result<_, _>>()?,
            };
            self.written(rel, &targets, WriteKind::Update)?;
            let via = format!("UPDATE {table} SET {}", targets.join(", "));
            let l = match &a.value {
                Expr::Subquery(q) if targets.len() > 1 => {
                    let parts = self.subquery_lineage(q, scope)?;
                    self.consume(parts, cx, &via)
                }
                e if super::is_default_keyword(e) => Lineage::constant(),
                e => self.expr(e, scope, cx)?,
            };
            self.consume(vec![l], cx, &via);
        }
        Ok(())
    }

    fn where_clause(&mut self, w: &Expr, scope: &Scope) -> Result<(), AnalyzeError> {
        let l = self.expr(
            w,
            scope,
            Cx {
                clause: Clause::Where,
                lookup: true,
            },
        )?;
        self.consume(vec![l], Cx::new(Clause::Where), "WHERE");
        Ok(())
    }

    fn returning(
        &mut self,
        items: &Option<Vec<sqlparser::ast::SelectItem>>,
        level: Level,
        parent: Option<&Scope>,
    ) -> Result<Outputs, AnalyzeError> {
        match items {
            None => Ok(Outputs::None),
            Some(items) => {
                let scope = Scope::new(level, parent);
                self.projection(items, &scope, Clause::Returning)
            }
        }
    }
}
