//! A second reading of every analyzed statement with Postgres's own grammar (libpg_query), compared
//! with sqlparser's: the names both parsers bind must agree, or the statement is refused.
//!
//! Each red-team round found another construct that sqlparser reads into a different tree than
//! Postgres does (`interval name`, `'1'::setof int`, `||--`). The analyzer still works on sqlparser's
//! tree, but it may only do so when that tree names the same things as Postgres's: the statement's
//! kind, every column reference, every relation, and every alias that brings a name into scope.
//! Those are what the analyzer's lineage rests on; literals, operators and types are already
//! compared token by token (see `lexer`).

use std::collections::HashSet;
use std::ops::ControlFlow;

use serde_json::{Map, Value};
use sqlparser::ast::{
    AccessExpr, Assignment, AssignmentTarget, CopySource, DoUpdate, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, MergeAction, MergeUpdateExpr, MergeUpdateKind, ObjectName, ObjectNamePart, OnConflict,
    OnConflictAction, OnInsert, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement,
    TableFactor, TableObject, Visit, Visitor,
};

use super::functions::VALUE_FUNCTIONS;
use super::{fold_ident, AnalyzeError};

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

/// CoercionForm's COERCE_EXPLICIT_CALL in libpg_query's protobuf: a call written `f(…)`.
const COERCE_EXPLICIT_CALL: i64 = 1;

/// Calls Postgres's grammar makes for operators (`LIKE … ESCAPE`, `SIMILAR TO`, `OVERLAPS`).
const GRAMMAR_CALLS: &[&str] = &["like_escape", "similar_to_escape", "overlaps"];

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

// ---------------------------------------------------------------------------------------------
// Postgres's reading: libpg_query's parse tree, walked as JSON so that no node type is skipped.
// ---------------------------------------------------------------------------------------------

fn postgres_facts(sql: &str) -> Result<Facts, AnalyzeError> {
    // The parser's message may quote the statement, and so a customer value: it is not passed on.
    let parsed =
        pg_query::parse(sql).map_err(|_| AnalyzeError::Differential("Postgres's parser does not accept it".into()))?;
    let [raw] = parsed.protobuf.stmts.as_slice() else {
        return Err(AnalyzeError::Differential("statement boundaries differ".into()));
    };
    let tree = serde_json::to_value(raw).map_err(|_| AnalyzeError::Differential("unreadable parse tree".into()))?;
    let top = tree.pointer("/stmt/node").and_then(Value::as_object);
    let (kind, _) = top
        .and_then(|m| m.iter().next())
        .ok_or_else(|| AnalyzeError::Differential("empty parse tree".into()))?;
    let mut names = Vec::new();
    walk_pg(&tree, "", "", 0, &mut names);
    names.sort_unstable();
    Ok(Facts {
        kind: pg_kind(kind),
        names,
    })
}

fn pg_kind(node: &str) -> &'static str {
    match node {
        "SelectStmt" => "query",
        "InsertStmt" => "insert",
        "UpdateStmt" => "update",
        "DeleteStmt" => "delete",
        "MergeStmt" => "merge",
        "CopyStmt" => "copy",
        "DeclareCursorStmt" => "declare",
        "FetchStmt" => "fetch",
        "ClosePortalStmt" => "close",
        "PrepareStmt" => "prepare",
        "ExecuteStmt" => "execute",
        "DeallocateStmt" => "deallocate",
        "ExplainStmt" => "explain",
        "VariableSetStmt" => "set",
        "VariableShowStmt" => "show",
        "TransactionStmt" => "transaction",
        "ListenStmt" => "listen",
        "UnlistenStmt" => "unlisten",
        "NotifyStmt" => "notify",
        "DiscardStmt" => "discard",
        "CreateTableAsStmt" => "create table as",
        _ => "other",
    }
}

fn text(v: &Value) -> Option<&str> {
    v.pointer("/node/String/sval").and_then(Value::as_str)
}

fn strings(list: Option<&Value>) -> Vec<String> {
    let items = list.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .map(|v| match v.pointer("/node/AStar") {
            Some(_) => "*".to_string(),
            None => text(v).unwrap_or("?").to_string(),
        })
        .collect()
}

/// A RangeVar or an Alias is not always wrapped in a typed node (an INSERT's `relation` is a bare
/// RangeVar), so those two are recognised by their fields. `level` counts the queries around a
/// node (see `Out`).
fn walk_pg(v: &Value, parent: &str, field: &str, level: usize, out: &mut Out) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| walk_pg(i, parent, field, level, out)),
        Value::Object(m) => {
            if let Some(Value::Object(node)) = m.get("node") {
                if let Some((ty, body)) = node.iter().next() {
                    pg_node(ty, body, parent, field, level, out);
                    return;
                }
            }
            if m.contains_key("relname") && m.contains_key("inh") {
                pg_node("RangeVar", v, parent, field, level, out);
            } else if m.contains_key("aliasname") && m.contains_key("colnames") {
                pg_node("Alias", v, parent, field, level, out);
            } else {
                fields(m, parent, level, out);
            }
        }
        _ => {}
    }
}

fn fields(m: &Map<String, Value>, ty: &str, level: usize, out: &mut Out) {
    for (k, child) in m {
        walk_pg(child, ty, k, level, out);
    }
}

fn pg_node(ty: &str, body: &Value, parent: &str, field: &str, level: usize, out: &mut Out) {
    let Some(m) = body.as_object() else { return };
    let mut push = |fact: String| out.push(format!("{level}: {fact}"));
    match ty {
        // The operands of a set operation (`larg`, `rarg`, bare SelectStmts) belong to its level.
        "SelectStmt" => return fields(m, ty, level + 1, out),
        "ColumnRef" => push(format!("column {}", strings(m.get("fields")).join("."))),
        "AIndirection" => {
            for item in m.get("indirection").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = text(item) {
                    push(format!("field {name}"));
                } else if item.pointer("/node/AStar").is_some() {
                    push("field *".into());
                }
            }
        }
        // Calls written as calls; the SQL-syntax forms (EXTRACT, TRIM, …) are pg_catalog's
        // whatever sqlparser makes of them.
        "FuncCall" if m.get("funcformat").and_then(Value::as_i64) == Some(COERCE_EXPLICIT_CALL) => {
            let name = strings(m.get("funcname"));
            if !matches!(name.as_slice(), [s, f] if s == "pg_catalog" && GRAMMAR_CALLS.contains(&f.as_str())) {
                push(format!("function {}", name.join(".")))
            }
        }
        "SetToDefault" => push("DEFAULT".into()),
        // `SET (a, b) = (SELECT …)`: Postgres's tree repeats the source under every target.
        "MultiAssignRef" if m.get("colno").and_then(Value::as_i64) != Some(1) => return,
        "ColumnDef" => push(format!(
            "column definition {}",
            m.get("colname").and_then(Value::as_str).unwrap_or_default()
        )),
        "RangeVar" => push(format!(
            "relation {}",
            join_nonempty(&[m.get("catalogname"), m.get("schemaname"), m.get("relname")])
        )),
        "Alias" => {
            let name = m.get("aliasname").and_then(Value::as_str).unwrap_or_default();
            return push(alias(name, &strings(m.get("colnames"))));
        }
        "ResTarget" => {
            let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
            let path = std::iter::once(name.to_string())
                .chain(strings(m.get("indirection")))
                .collect::<Vec<_>>();
            // A SELECT's targets and RETURNING lists name outputs; the target lists of UPDATE, ON
            // CONFLICT DO UPDATE and MERGE, and an INSERT's column list, name columns written.
            match (parent, field) {
                ("SelectStmt", "target_list") | (_, "returning_list") if !name.is_empty() => {
                    push(format!("output {name}"))
                }
                ("SelectStmt", "target_list") | (_, "returning_list") => {}
                (_, "target_list" | "cols") => push(format!("target {}", path.join("."))),
                _ => {}
            }
        }
        "CommonTableExpr" => {
            let name = m.get("ctename").and_then(Value::as_str).unwrap_or_default();
            push(format!("cte {}", alias_body(name, &strings(m.get("aliascolnames")))));
        }
        "CopyStmt" => {
            for col in strings(m.get("attlist")) {
                push(format!("target {col}"));
            }
        }
        _ => {}
    }
    fields(m, ty, level, out);
}

fn join_nonempty(parts: &[Option<&Value>]) -> String {
    parts
        .iter()
        .filter_map(|p| p.and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(".")
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

// ---------------------------------------------------------------------------------------------
// sqlparser's reading.
// ---------------------------------------------------------------------------------------------

fn sqlparser_facts(stmt: &Statement) -> Facts {
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

/// Facts as `level: fact`, where the level counts the queries (SELECT, VALUES or TABLE with
/// their WITH, ORDER BY and LIMIT) around the name, so that a name Postgres reads in a subquery and
/// sqlparser outside it, or the other way round, differs. A set operation's operands share its
/// level in both trees.
type Out = Vec<String>;

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
            Expr::Like { pattern, .. } | Expr::ILike { pattern, .. } if super::like_quantifier(pattern).is_some() => {
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
