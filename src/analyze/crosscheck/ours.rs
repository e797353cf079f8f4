//! sqlparser's reading of a statement: the names its tree binds, at the levels Postgres's would.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    AccessExpr, Assignment, AssignmentTarget, CopySource, DoUpdate, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, MergeAction, MergeUpdateExpr, MergeUpdateKind, ObjectName, ObjectNamePart, OnConflict,
    OnConflictAction, OnInsert, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement,
    TableFactor, TableObject, Visit, Visitor,
};

use super::super::fold_ident;
use super::super::functions::VALUE_FUNCTIONS;
use super::{alias, alias_body, Facts, NOT_CALLS_TO_POSTGRES};

pub(super) fn sqlparser_facts(stmt: &Statement) -> Facts {
    let mut c = Collect::default();
    let _ = stmt.visit(&mut c);
    c.names.sort_unstable();
    Facts {
        kind: sqlparser_kind(stmt),
        names: c.names,
    }
}

fn sqlparser_kind(stmt: &Statement) -> &'static str {
    match stmt {
        Statement::Query(q) => match q.body.as_ref() {
            SetExpr::Insert(inner) | SetExpr::Update(inner) | SetExpr::Delete(inner) | SetExpr::Merge(inner) => {
                sqlparser_kind(inner)
            }
            _ => "query",
        },
        Statement::Insert(_) => "insert",
        Statement::Update(_) => "update",
        Statement::Delete(_) => "delete",
        Statement::Merge(_) => "merge",
        Statement::Copy { .. } => "copy",
        Statement::Declare { .. } => "declare",
        Statement::Fetch { .. } => "fetch",
        Statement::Close { .. } => "close",
        Statement::Prepare { .. } => "prepare",
        Statement::Execute { .. } => "execute",
        Statement::Deallocate { .. } => "deallocate",
        Statement::Explain { .. } => "explain",
        Statement::Set(_) | Statement::Reset(_) => "set",
        Statement::ShowVariable { .. } => "show",
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => "transaction",
        Statement::LISTEN { .. } => "listen",
        Statement::UNLISTEN { .. } => "unlisten",
        Statement::NOTIFY { .. } => "notify",
        Statement::Discard { .. } => "discard",
        Statement::CreateTable(_) => "create table as",
        _ => "other",
    }
}

fn object_name(n: &ObjectName) -> String {
    n.0.iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => fold_ident(i),
            // Never printed: a refusal's message must not carry what might be a literal.
            _ => "?".to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn expr_path(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => fold_ident(i),
        Expr::CompoundIdentifier(path) => idents(path),
        _ => "?".to_string(),
    }
}

fn idents(path: &[Ident]) -> String {
    path.iter().map(fold_ident).collect::<Vec<_>>().join(".")
}

#[derive(Default)]
struct Collect {
    names: Vec<String>,
    level: usize,
    /// Whether each query entered raised the level (a set operation's operand does not).
    raised: Vec<bool>,
    /// Queries that are one level with the query around them in Postgres's tree: parenthesized
    /// operands of set operations (`A UNION (B)`) and a parenthesized query's body.
    operands: HashSet<*const Query>,
    /// Field names after a dot (`(c).iban`): sqlparser keeps them as expressions, Postgres does not.
    fields: HashSet<*const Expr>,
    /// Expressions sqlparser keeps where Postgres keeps a name or a string (EXPLAIN's options, an
    /// argument's name, SELECT INTO's table).
    ignored: HashSet<*const Expr>,
}

impl Collect {
    fn select_items(&mut self, items: &[SelectItem]) {
        for item in items {
            match item {
                SelectItem::ExprWithAlias { alias, .. } => self.fact(format!("output {}", fold_ident(alias))),
                SelectItem::ExprWithAliases { aliases, .. } => aliases
                    .iter()
                    .for_each(|a| self.fact(format!("output {}", fold_ident(a)))),
                SelectItem::Wildcard(_) => self.fact("column *".into()),
                SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _) => {
                    self.fact(format!("column {}.*", object_name(n)))
                }
                SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::Expr(_), _) => {
                    self.fact("field *".into())
                }
                SelectItem::UnnamedExpr(_) => {}
            }
        }
    }

    /// `TABLE t` is `SELECT * FROM t` to Postgres; sqlparser has no table factor for it. Also marks
    /// the queries that share the level of `body`'s query (see `operands`).
    fn table_commands(&mut self, body: &SetExpr) {
        match body {
            // `((SELECT …) ORDER BY x)`: Postgres puts the ORDER BY into the inner SELECT.
            SetExpr::Query(q) => {
                self.operands.insert(q.as_ref() as *const Query);
            }
            SetExpr::Table(t) => {
                let path: Vec<String> = t.schema_name.iter().chain(&t.table_name).map(fold_ident).collect();
                self.fact("column *".into());
                self.fact(format!("relation {}", path.join(".")));
            }
            SetExpr::SetOperation { left, right, .. } => {
                for operand in [left, right] {
                    if let SetExpr::Query(q) = operand.as_ref() {
                        self.operands.insert(q.as_ref() as *const Query);
                    }
                    self.table_commands(operand);
                }
            }
            _ => {}
        }
    }

    fn fact(&mut self, fact: String) {
        self.names.push(format!("{}: {fact}", self.level));
    }

    fn targets(&mut self, names: impl IntoIterator<Item = String>) {
        for n in names {
            self.fact(format!("target {n}"));
        }
    }

    fn assignments(&mut self, set: &[Assignment]) {
        for a in set {
            match &a.target {
                AssignmentTarget::ColumnName(n) => self.targets([object_name(n)]),
                AssignmentTarget::Tuple(ns) => self.targets(ns.iter().map(object_name)),
            }
        }
    }
}

impl Visitor for Collect {
    type Break = ();

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        match s {
            Statement::Insert(ins) => {
                if let TableObject::TableName(n) = &ins.table {
                    self.fact(format!("relation {}", object_name(n)));
                }
                if let Some(a) = &ins.table_alias {
                    self.fact(alias(&fold_ident(&a.alias), &[]));
                }
                self.targets(ins.columns.iter().map(object_name));
                if let Some(OnInsert::OnConflict(OnConflict {
                    action: OnConflictAction::DoUpdate(DoUpdate { assignments, .. }),
                    ..
                })) = &ins.on
                {
                    self.assignments(assignments);
                }
                if let Some(r) = &ins.returning {
                    self.select_items(r);
                }
            }
            Statement::Update(u) => {
                self.assignments(&u.assignments);
                if let Some(r) = &u.returning {
                    self.select_items(r);
                }
            }
            Statement::Delete(d) => {
                if let Some(r) = &d.returning {
                    self.select_items(r);
                }
            }
            Statement::Merge(m) => {
                for clause in &m.clauses {
                    match &clause.action {
                        MergeAction::Insert(i) => self.targets(i.columns.iter().map(object_name)),
                        MergeAction::Update(MergeUpdateExpr {
                            kind: MergeUpdateKind::Set(set),
                            ..
                        }) => self.assignments(set),
                        _ => {}
                    }
                }
            }
            Statement::Explain {
                options: Some(options), ..
            } => self
                .ignored
                .extend(options.iter().filter_map(|o| o.arg.as_ref()).map(|e| e as *const Expr)),
            Statement::CreateTable(ct) => self.fact(format!("relation {}", object_name(&ct.name))),
            Statement::Copy {
                source: CopySource::Table { table_name, columns },
                ..
            } => {
                self.fact(format!("relation {}", object_name(table_name)));
                self.targets(columns.iter().map(fold_ident));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        // A data-modifying statement in WITH or after it is a statement of its own to Postgres.
        let modifies = matches!(
            q.body.as_ref(),
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_)
        );
        let raise = !modifies && !self.operands.contains(&(q as *const Query));
        self.level += usize::from(raise);
        self.raised.push(raise);
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let cols: Vec<String> = cte.alias.columns.iter().map(|c| fold_ident(&c.name)).collect();
                self.fact(format!("cte {}", alias_body(&fold_ident(&cte.alias.name), &cols)));
            }
        }
        self.table_commands(&q.body);
        // `FOR UPDATE OF t`: a relation name to Postgres's tree, a bare name to sqlparser's.
        for of in q.locks.iter().filter_map(|l| l.of.as_ref()) {
            self.fact(format!("relation {}", object_name(of)));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.level -= usize::from(self.raised.pop().unwrap_or(false));
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        self.select_items(&s.projection);
        for target in s.into.iter().flat_map(|i| &i.targets) {
            self.ignored.insert(target as *const Expr);
            self.fact(format!("relation {}", expr_path(target)));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        let given = match t {
            TableFactor::Table { name, alias, args, .. } => {
                let kind = if args.is_none() { "relation" } else { "function" };
                self.fact(format!("{kind} {}", object_name(name)));
                alias
            }
            TableFactor::Function { name, alias, .. } => {
                self.fact(format!("function {}", object_name(name)));
                alias
            }
            TableFactor::UNNEST { alias, array_exprs, .. } => {
                for _ in array_exprs {
                    self.fact("function unnest".into());
                }
                alias
            }
            TableFactor::Derived { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::NestedJoin { alias, .. } => alias,
            _ => &None,
        };
        // A column given a type (`AS x(a xid)`) is a column definition to Postgres, not an alias.
        if let Some(a) = given {
            let (typed, named): (Vec<_>, Vec<_>) = a.columns.iter().partition(|c| c.data_type.is_some());
            let cols: Vec<String> = named.iter().map(|c| fold_ident(&c.name)).collect();
            self.fact(alias(&fold_ident(&a.name), &cols));
            for c in typed {
                self.fact(format!("column definition {}", fold_ident(&c.name)));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if self.ignored.contains(&(e as *const Expr)) {
            return ControlFlow::Continue(());
        }
        if self.fields.contains(&(e as *const Expr)) {
            if let Expr::Identifier(i) = e {
                self.fact(format!("field {}", fold_ident(i)));
            }
            return ControlFlow::Continue(());
        }
        match e {
            // `LIKE ALL (…)`: an operator to Postgres, a call to sqlparser.
            Expr::Like { pattern, .. } | Expr::ILike { pattern, .. }
                if super::super::like_quantifier(pattern).is_some() =>
            {
                self.ignored.insert(pattern.as_ref() as *const Expr);
            }
            Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default") => {
                self.fact("DEFAULT".into())
            }
            // `current_user`, `current_date`, …: keywords to Postgres, names to sqlparser.
            Expr::Identifier(i) if i.quote_style.is_none() && VALUE_FUNCTIONS.contains(&fold_ident(i).as_str()) => {}
            Expr::Identifier(i) => self.fact(format!("column {}", fold_ident(i))),
            Expr::CompoundIdentifier(path) => self.fact(format!("column {}", idents(path))),
            Expr::Function(f) if !matches!(f.args, FunctionArguments::None) => {
                let name = object_name(&f.name);
                if !(f.name.0.len() == 1 && NOT_CALLS_TO_POSTGRES.contains(&name.as_str())) {
                    self.fact(format!("function {name}"));
                }
                let FunctionArguments::List(list) = &f.args else {
                    return ControlFlow::Continue(());
                };
                for arg in &list.args {
                    let value = match arg {
                        FunctionArg::ExprNamed { name, arg, .. } => {
                            self.ignored.insert(name as *const Expr);
                            arg
                        }
                        FunctionArg::Named { arg, .. } | FunctionArg::Unnamed(arg) => arg,
                    };
                    if let FunctionArgExpr::QualifiedWildcard(n) = value {
                        self.fact(format!("column {}.*", object_name(n)));
                    }
                }
            }
            // `ceil(x)` and `substring(a, b, c)` are calls to Postgres, syntax to sqlparser.
            Expr::Ceil { .. } => self.fact("function ceil".into()),
            Expr::Floor { .. } => self.fact("function floor".into()),
            Expr::Substring { shorthand: true, .. } => self.fact("function substr".into()),
            Expr::Substring { special: true, .. } => self.fact("function substring".into()),
            // Postgres's column reference takes every dotted name up to the first subscript
            // (`t.arr[1].f` is column `t.arr`, then field `f`); after parentheses all are fields.
            Expr::CompoundFieldAccess { root, access_chain } => {
                let mut path = match root.as_ref() {
                    Expr::Identifier(i) => Some(vec![fold_ident(i)]),
                    Expr::CompoundIdentifier(p) => Some(p.iter().map(fold_ident).collect()),
                    _ => None,
                };
                if path.is_some() {
                    self.ignored.insert(root.as_ref() as *const Expr);
                }
                for a in access_chain {
                    match (a, path.as_mut()) {
                        (AccessExpr::Dot(inner @ Expr::Identifier(i)), Some(p)) => {
                            self.ignored.insert(inner as *const Expr);
                            p.push(fold_ident(i));
                        }
                        (AccessExpr::Dot(inner), _) => {
                            self.fields.insert(inner as *const Expr);
                        }
                        (AccessExpr::Subscript(_), _) => {
                            if let Some(p) = path.take() {
                                self.fact(format!("column {}", p.join(".")));
                            }
                        }
                    }
                }
                if let Some(p) = path {
                    self.fact(format!("column {}", p.join(".")));
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
