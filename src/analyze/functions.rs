//! Function calls: resolution against search_path (every schema a name may resolve to), arguments,
//! aggregates' ORDER BY and FILTER, window specifications, set_config treated as a SET, and the
//! sequence functions treated as reads and writes of the sequence's table.

use sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, WindowType,
};

use super::expr::{literal_string, object_parts, Cx};
use super::facts::{Clause, Lineage, PathChange, Setting};
use super::scope::Scope;
use super::{AnalyzeError, Analyzer};
use crate::catalog::RelId;
use crate::policy::{QName, WriteKind};

/// SQL value functions Postgres parses without parentheses; they read no table.
pub(super) const VALUE_FUNCTIONS: &[&str] = &[
    "current_user",
    "session_user",
    "user",
    "current_role",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "current_catalog",
    "current_schema",
];

/// Constructs Postgres implements as syntax, not as pg_proc functions.
const SYNTAX_FUNCTIONS: &[&str] = &[
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "row",
    "array",
    "grouping",
    "xmlelement",
    "xmlforest",
    "xmlconcat",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmlexists",
    "normalize",
];

/// Built-in functions whose first argument names a sequence (regclass).
const SEQUENCE_FUNCTIONS: &[&str] = &["nextval", "currval", "setval", "pg_sequence_last_value"];

/// A string literal, bare or cast to regclass or text; other casts could change the name.
fn regclass_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Nested(inner) => regclass_literal(inner),
        Expr::Cast { expr, data_type, .. } => {
            let t = data_type.to_string().to_ascii_lowercase();
            matches!(
                t.as_str(),
                "regclass"
                    | "pg_catalog.regclass"
                    | "text"
                    | "pg_catalog.text"
                    | "varchar"
                    | "character varying"
                    | "pg_catalog.varchar"
            )
            .then(|| regclass_literal(expr))
            .flatten()
        }
        Expr::Value(_) => literal_string(e),
        _ => None,
    }
}

impl Analyzer<'_> {
    pub(super) fn function(&mut self, f: &Function, scope: &Scope, cx: Cx) -> Result<Lineage, AnalyzeError> {
        self.covered.function(f);
        if f.uses_odbc_syntax || !matches!(f.parameters, FunctionArguments::None) || f.null_treatment.is_some() {
            return Err(AnalyzeError::Unsupported(format!(
                "function call syntax `{}`",
                super::shorten(&f.to_string())
            )));
        }
        let name = object_parts(&f.name)?;
        let bare = name.last().cloned().unwrap_or_default();
        let via = format!("{}()", name.join("."));
        self.resolve_function(&name, &f.to_string())?;
        if name.len() == 1 && bare == "nullif" {
            self.implicit_operators(&["="])?;
        }
        let mut parts = Vec::new();
        match &f.args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(q) => parts.extend(self.subquery_lineage(q, scope)?),
            FunctionArguments::List(list) => {
                // Judged by what the name resolves to, however it is written (`set_config`,
                // `pg_catalog.set_config`, `crm.pg_catalog.set_config`).
                let builtin = self
                    .facts
                    .functions
                    .last()
                    .is_some_and(|f| f.schemas.iter().any(|s| s == "pg_catalog"));
                if builtin && bare == "set_config" {
                    self.set_config(&list.args)?;
                }
                if builtin && SEQUENCE_FUNCTIONS.contains(&bare.as_str()) {
                    self.sequence(&bare, &list.args)?;
                }
                if builtin && bare == "age" && list.args.len() == 1 {
                    self.age_of_time(&list.args[0], scope)?;
                }
                for a in &list.args {
                    let arg = match a {
                        FunctionArg::Unnamed(x) => x,
                        FunctionArg::Named { arg, .. } => arg,
                        FunctionArg::ExprNamed { .. } => {
                            return Err(AnalyzeError::Unsupported("expression-named argument".into()))
                        }
                    };
                    match arg {
                        FunctionArgExpr::Expr(x) => parts.push(self.expr(x, scope, cx)?),
                        FunctionArgExpr::Wildcard => {}
                        FunctionArgExpr::QualifiedWildcard(n) => {
                            let q = object_parts(n)?;
                            let e = scope.entry(self, &q)?.ok_or_else(|| {
                                AnalyzeError::UnknownRelation(format!(
                                    "missing FROM-clause entry for `{}`",
                                    q.join(".")
                                ))
                            })?;
                            let cols = self.row_cols(e)?;
                            self.facts
                                .whole_rows
                                .push((cols.clone(), format!("{}.* in {via}", e.alias)));
                            parts.push(Lineage::derived(cols));
                        }
                        FunctionArgExpr::WildcardWithOptions(_) => {
                            return Err(AnalyzeError::Unsupported("wildcard options".into()))
                        }
                    }
                }
                for c in &list.clauses {
                    match c {
                        FunctionArgumentClause::OrderBy(obs) => {
                            for ob in obs {
                                parts.push(self.expr(super::sort_key(ob)?, scope, cx)?);
                            }
                        }
                        FunctionArgumentClause::Where(x) => parts.push(self.expr(x, scope, cx)?),
                        _ => return Err(AnalyzeError::Unsupported("function argument clause".into())),
                    }
                }
            }
        }
        for ob in &f.within_group {
            parts.push(self.expr(super::sort_key(ob)?, scope, cx)?);
        }
        if let Some(filter) = &f.filter {
            parts.push(self.expr(filter, scope, cx)?);
        }
        let l = self.consume(parts, cx, &via);
        if let Some(over) = &f.over {
            match over {
                WindowType::NamedWindow(_) => {}
                WindowType::WindowSpec(spec) => self.window_spec(spec, scope)?,
            }
        }
        Ok(l)
    }

    pub(super) fn window_spec(&mut self, spec: &sqlparser::ast::WindowSpec, scope: &Scope) -> Result<(), AnalyzeError> {
        let wx = Cx::new(Clause::Window);
        let mut parts = Vec::new();
        for p in &spec.partition_by {
            parts.push(self.expr(p, scope, wx)?);
        }
        for o in &spec.order_by {
            parts.push(self.expr(super::sort_key(o)?, scope, wx)?);
        }
        if let Some(frame) = &spec.window_frame {
            use sqlparser::ast::WindowFrameBound as B;
            for b in std::iter::once(&frame.start_bound).chain(frame.end_bound.as_ref()) {
                if let B::Preceding(Some(x)) | B::Following(Some(x)) = b {
                    parts.push(self.expr(x, scope, wx)?);
                }
            }
        }
        self.consume(parts, wx, "OVER (…)");
        Ok(())
    }

    /// set_config(name, value, is_local) is a SET: its name must be a literal so the setting is known.
    fn set_config(&mut self, args: &[FunctionArg]) -> Result<(), AnalyzeError> {
        self.literal_sensitive = true;
        let first = match args.first() {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => e,
            _ => {
                return Err(AnalyzeError::Setting(
                    "set_config needs the setting name as its first argument".into(),
                ))
            }
        };
        let name = match literal_string(first) {
            Some(n) => n.to_ascii_lowercase(),
            None => {
                return Err(AnalyzeError::Setting(
                    "set_config's setting name must be a string literal".into(),
                ))
            }
        };
        if name == "search_path" {
            let value = match args.get(1) {
                Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => literal_string(e),
                _ => None,
            };
            // A value only the server knows could name another campaign's schema, where a DBA's
            // code would resolve its names (round 141).
            let change = match value {
                Some(v) => match crate::catalog::parse_search_path(&v) {
                    Some(p) => PathChange::To(p),
                    None => {
                        return Err(AnalyzeError::Setting(format!(
                            "a search_path unscharf cannot read (a list Postgres rejects, or more than {} schemas)",
                            crate::catalog::MAX_PATH_SCHEMAS
                        )))
                    }
                },
                None => {
                    return Err(AnalyzeError::Setting(
                        "set_config of search_path needs its value as a string literal".into(),
                    ))
                }
            };
            if let PathChange::To(p) = &change {
                self.facts.set_paths.push(p.clone());
            }
            // Two different changes in one statement (one of them local, say): which value the
            // session keeps, and which a COMMIT brings back, is not one value.
            self.facts.path_change = Some(match self.facts.path_change.take() {
                Some(earlier) if earlier != change => PathChange::Unknown,
                _ => change,
            });
        }
        self.facts.settings.push(Setting {
            name,
            via: "set_config()",
        });
        Ok(())
    }

    /// nextval, setval, currval and pg_sequence_last_value name a sequence: it must be a literal
    /// naming a sequence that a table owns, and the call reads (or, for nextval and setval,
    /// writes) that table, so rules 3, 4, 5 and 8 apply to it like to the table.
    fn sequence(&mut self, bare: &str, args: &[FunctionArg]) -> Result<(), AnalyzeError> {
        self.literal_sensitive = true;
        let literal = match args.first() {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => regclass_literal(e),
            _ => None,
        };
        let text = literal.ok_or_else(|| {
            AnalyzeError::Unsupported(format!("{bare}() with a sequence that is not a string literal"))
        })?;
        let parts = super::regclass_name(&text)
            .ok_or_else(|| AnalyzeError::UnknownRelation(format!("sequence {}", super::shorten(&text))))?;
        let catalog = self.ctx.catalog;
        let unknown = || AnalyzeError::UnknownRelation(format!("sequence {}", parts.join(".")));
        let (seq, owner) = match parts.as_slice() {
            [.., schema, name] if parts.len() <= 3 => {
                let q = QName::new(schema, name);
                let owner = catalog.sequence(&q).ok_or_else(unknown)?;
                (q, owner)
            }
            [name] => {
                self.facts.uses_search_path = true;
                let mut found: Option<Option<(QName, Option<RelId>)>> = None;
                for path in self.paths()? {
                    // The first relation of that name on the path, of any kind, is what regclass finds.
                    let hit = path.iter().find_map(|s| {
                        let q = QName::new(s, name);
                        match catalog.lookup(&q) {
                            Some(_) => Some(None),
                            None => catalog.sequence(&q).map(|owner| Some((q, owner))),
                        }
                    });
                    match &found {
                        None => found = Some(hit.flatten()),
                        Some(prev) if *prev == hit.clone().flatten() => {}
                        Some(_) => return Err(AnalyzeError::Ambiguous(format!("sequence {name} (qualify the name)"))),
                    }
                }
                found.flatten().ok_or_else(unknown)?
            }
            _ => return Err(unknown()),
        };
        let table = owner.ok_or_else(|| {
            AnalyzeError::Unsupported(format!(
                "{bare}() on sequence {} that no table owns (no purpose can be granted it)",
                parts.join(".")
            ))
        })?;
        // Every sequence function tells how many rows the owning table has had.
        self.facts.read(table);
        match bare {
            "nextval" => self.facts.writes.push((table, WriteKind::Insert)),
            "setval" => self.facts.writes.push((table, WriteKind::Update)),
            // Every table drawing from the sequence counts with it, not only its owner (round
            // 264 CW1: the tickets drew their ids from the callbacks' sequence).
            "pg_sequence_last_value" => {
                let drawing = catalog
                    .default_sequences
                    .iter()
                    .filter(|(_, seqs)| seqs.contains(&seq))
                    .filter_map(|(oid, _)| catalog.by_oid(*oid));
                for rel in std::iter::once(table).chain(drawing) {
                    let what = "pg_sequence_last_value() of a sequence it draws from counts every insert";
                    self.facts.row_tells.push((rel, what));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `age(x)` of a transaction id is the distance to the next one, a counter every session moves
    /// (rule 7 forbids the other ways to read it). An xid reaches age() in too many ways (casts,
    /// column definition lists, row types, typed parameters), so its one-argument form is allowed
    /// only for what is evidently a date or timestamp: such a column, cast or literal, or now().
    fn age_of_time(&mut self, arg: &FunctionArg, scope: &Scope) -> Result<(), AnalyzeError> {
        const TIME_TYPES: &[u32] = &[1082, 1114, 1184];
        let is_time_type = |t: &sqlparser::ast::DataType| {
            let text = t.to_string().to_ascii_lowercase();
            let base = text.strip_prefix("pg_catalog.").unwrap_or(&text);
            base.starts_with("date") || base.starts_with("timestamp")
        };
        let evident = match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => match x {
                Expr::Cast { data_type, .. } => is_time_type(data_type),
                Expr::TypedString(t) => is_time_type(&t.data_type),
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                    // Resolved once more only for its type; the call analyzes the argument itself.
                    let l = self.expr(x, scope, Cx::new(Clause::Other))?;
                    let catalog = self.ctx.catalog;
                    l.plain
                        && l.cols.len() == 1
                        && catalog
                            .rel(l.cols[0].rel)
                            .columns
                            .get(l.cols[0].col as usize)
                            .is_some_and(|c| TIME_TYPES.contains(&c.type_oid))
                }
                Expr::Function(f) => matches!(
                    f.name.to_string().to_ascii_lowercase().as_str(),
                    "now" | "pg_catalog.now"
                ),
                _ => false,
            },
            _ => false,
        };
        if !evident {
            self.facts.functions.push(super::facts::FuncCall {
                written: "age() of a value that is not evidently a date or timestamp".into(),
                name: "age(xid)".into(),
                schemas: vec!["pg_catalog".to_owned()],
            });
        }
        Ok(())
    }

    /// A function that sqlparser reads as syntax of its own (`ceil(x)`, `substr(…)`) but Postgres
    /// calls by name, through search_path: resolved like any call when a schema besides pg_catalog
    /// defines the name (the offline catalogs do not list every built-in).
    pub(super) fn syntax_function(&mut self, name: &str, written: &str) -> Result<(), AnalyzeError> {
        if self.ctx.catalog.function_outside_pg_catalog(name) {
            self.resolve_function(&[name.to_owned()], written)?;
        }
        Ok(())
    }

    /// Records a function call with every schema it may resolve to.
    pub(super) fn resolve_function(&mut self, name: &[String], written: &str) -> Result<(), AnalyzeError> {
        let catalog = self.ctx.catalog;
        let (schemas, bare) = match name {
            [bare] => {
                // Syntax Postgres itself qualifies with pg_catalog; a function of the same name
                // elsewhere makes the name worth resolving (`current_schema()` is an ordinary call).
                let shadowed = catalog.function_outside_pg_catalog(bare);
                if !shadowed && (SYNTAX_FUNCTIONS.contains(&bare.as_str()) || VALUE_FUNCTIONS.contains(&bare.as_str()))
                {
                    (vec!["pg_catalog".to_owned()], bare.clone())
                } else {
                    self.facts.uses_search_path = true;
                    let defined = catalog.function_schemas(bare);
                    let mut schemas: Vec<String> = Vec::new();
                    for path in self.paths()? {
                        for s in path.iter().filter(|s| defined.contains(s)) {
                            if !schemas.contains(s) {
                                schemas.push(s.clone());
                            }
                        }
                    }
                    (schemas, bare.clone())
                }
            }
            [.., schema, bare] => {
                if catalog.function_exists(schema, bare) {
                    (vec![schema.clone()], bare.clone())
                } else {
                    (Vec::new(), bare.clone())
                }
            }
            [] => return Err(AnalyzeError::Unsupported("empty function name".into())),
        };
        if schemas.is_empty() {
            return Err(AnalyzeError::UnknownFunction(name.join(".")));
        }
        self.row_results(&schemas, &bare)?;
        self.facts.functions.push(super::facts::FuncCall {
            written: super::shorten(written),
            name: bare,
            schemas,
        });
        Ok(())
    }

    /// A call of a DBA's function whose result type holds a relation's row type reads that
    /// relation's rows and hands them out whole: a read of the relation (its campaign counts) and a
    /// whole-row reference to it. Listing the function trusts what it reads, not what its declared
    /// type carries out in the open: Postgres reports those columns with table OID 0, so nothing
    /// after the analysis could mask them (round 197 AH1: `SELECT * FROM customers_in('Berlin')`
    /// and `SELECT customer(1003)` gave every column in clear).
    fn row_results(&mut self, schemas: &[String], bare: &str) -> Result<(), AnalyzeError> {
        let catalog = self.ctx.catalog;
        for schema in schemas {
            let Some(oids) = catalog.row_results.get(&crate::policy::QName::new(schema, bare)) else {
                continue;
            };
            for rel in oids.iter().filter_map(|&oid| catalog.by_oid(oid)) {
                let call = format!(
                    "{schema}.{bare}(…), whose result or arguments hold rows of {},",
                    catalog.rel(rel).name
                );
                self.rows_handed_out(rel, call)?;
            }
        }
        Ok(())
    }

    /// A value that may hold whole rows of `rel` comes out of the statement, `what` says how: a
    /// read of the relation (its campaign counts) and a whole-row reference to it.
    pub(super) fn rows_handed_out(&mut self, rel: crate::catalog::RelId, what: String) -> Result<(), AnalyzeError> {
        let r = self.ctx.catalog.rel(rel);
        let cols: Vec<super::facts::ColRef> = (0..r.columns.len())
            .filter(|&i| !r.columns[i].dropped)
            .map(|i| super::facts::ColRef { rel, col: i as u16 })
            .collect();
        self.spend_n(cols.len())?;
        self.facts.read(rel);
        self.facts.whole_rows.push((cols, what));
        Ok(())
    }
}
