//! Function calls: resolution against search_path (every schema a name may resolve to), arguments,
//! aggregates' ORDER BY and FILTER, window specifications, and set_config treated as a SET.

use sqlparser::ast::{Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, WindowType};

use super::expr::{literal_string, object_parts, Cx};
use super::facts::{Clause, Lineage, PathChange, Setting};
use super::scope::Scope;
use super::{AnalyzeError, Analyzer};

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

impl Analyzer<'_> {
    pub(super) fn function(&mut self, f: &Function, scope: &Scope, cx: Cx) -> Result<Lineage, AnalyzeError> {
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
        let mut parts = Vec::new();
        match &f.args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(q) => parts.extend(self.subquery_lineage(q, scope)?),
            FunctionArguments::List(list) => {
                if bare == "set_config" && name.len() <= 2 {
                    self.set_config(&list.args)?;
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
                            let e = scope.entry(&q).ok_or_else(|| {
                                AnalyzeError::UnknownRelation(format!(
                                    "missing FROM-clause entry for `{}`",
                                    q.join(".")
                                ))
                            })?;
                            let cols = e.lineage_cols();
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
                                parts.push(self.expr(&ob.expr, scope, cx)?);
                            }
                        }
                        FunctionArgumentClause::Where(x) => parts.push(self.expr(x, scope, cx)?),
                        _ => return Err(AnalyzeError::Unsupported("function argument clause".into())),
                    }
                }
            }
        }
        for ob in &f.within_group {
            parts.push(self.expr(&ob.expr, scope, cx)?);
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
            parts.push(self.expr(&o.expr, scope, wx)?);
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
            self.facts.path_change = Some(match value {
                Some(v) => PathChange::To(crate::catalog::parse_search_path(&v)),
                None => PathChange::Unknown,
            });
        }
        self.facts.settings.push(Setting {
            name,
            via: "set_config()",
        });
        Ok(())
    }

    /// Records a function call with every schema it may resolve to.
    fn resolve_function(&mut self, name: &[String], written: &str) -> Result<(), AnalyzeError> {
        let catalog = self.ctx.catalog;
        let (schemas, bare) = match name {
            [bare] => {
                if SYNTAX_FUNCTIONS.contains(&bare.as_str()) || VALUE_FUNCTIONS.contains(&bare.as_str()) {
                    (vec!["pg_catalog".to_owned()], bare.clone())
                } else {
                    self.facts.uses_search_path = true;
                    let defined = catalog.function_schemas(bare);
                    let mut schemas: Vec<String> = Vec::new();
                    for path in self.paths() {
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
        self.facts.functions.push(super::facts::FuncCall {
            written: super::shorten(written),
            name: bare,
            schemas,
        });
        Ok(())
    }
}
