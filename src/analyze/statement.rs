//! Statements: DML with RETURNING, COPY, cursors, PREPARE/EXECUTE, EXPLAIN, SET/RESET/SHOW and
//! transaction control; every other kind is unsupported.

use sqlparser::ast::{
    CloseCursor, ContextModifier, CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget,
    DeclareType, DescribeAlias, DiscardObject, Expr, Reset, Set, Statement,
};

use super::expr::{literal_string, object_parts, Cx};
use super::facts::{Clause, CopyOut, Kind, Lineage, Outputs, PathChange, Setting, TxControl};
use super::lookup::literal_array_len;
use super::scope::{Level, Scope};
use super::{fold_ident, unsupported, AnalyzeError, Analyzer};
use crate::policy::WriteKind;

/// A short name for an unsupported statement, for the refusal message and the audit trail: its
/// leading keywords only, since anything after them (`LOAD '…'`, `CALL f('…')`) may be a value.
pub(super) fn statement_name(s: &Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take(2)
        .take_while(|w| w.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_'))
        .collect();
    match words.is_empty() {
        true => "this statement".into(),
        false => words.join(" ").to_ascii_uppercase(),
    }
}

impl Analyzer<'_> {
    pub(super) fn statement(&mut self, s: &Statement) -> Result<(Kind, Outputs), AnalyzeError> {
        Ok(match s {
            Statement::Query(q) => (Kind::Query, self.query(q, None)?),
            Statement::Insert(_) => (Kind::Insert, self.dml(s, None)?),
            Statement::Update(_) => (Kind::Update, self.dml(s, None)?),
            Statement::Delete(_) => (Kind::Delete, self.dml(s, None)?),
            Statement::Merge(_) => (Kind::Merge, self.dml(s, None)?),
            Statement::Copy {
                source,
                to,
                target,
                options,
                legacy_options,
                payload,
            } => self.copy(source, *to, target, options, legacy_options, payload.is_some())?,
            Statement::Declare { stmts, .. } => {
                let [d] = stmts.as_slice() else {
                    return unsupported("DECLARE of several names");
                };
                let (Some(DeclareType::Cursor), Some(q), [name]) = (&d.declare_type, &d.for_query, d.names.as_slice())
                else {
                    return unsupported("DECLARE that is not a cursor");
                };
                if d.binary == Some(true) {
                    return unsupported("BINARY cursors (unscharf masks text results)");
                }
                let outs = self.query(q, None)?;
                let hold = d.hold == Some(true);
                (
                    Kind::Declare {
                        name: fold_ident(name),
                        hold,
                    },
                    outs,
                )
            }
            Statement::Fetch { name, into, .. } => {
                if into.is_some() {
                    return unsupported("FETCH INTO");
                }
                (Kind::Fetch { name: fold_ident(name) }, Outputs::Unknown)
            }
            Statement::Close { cursor } => {
                let name = match cursor {
                    CloseCursor::All => None,
                    CloseCursor::Specific { name } => Some(fold_ident(name)),
                };
                (Kind::ClosePortal { name }, Outputs::None)
            }
            Statement::Prepare {
                name,
                statement,
                data_types,
            } => {
                // A parameter of a domain runs its CHECK on the value EXECUTE binds (round 28).
                for t in data_types {
                    self.note_type(t)?;
                }
                let (inner, outs) = match statement.as_ref() {
                    Statement::Query(_)
                    | Statement::Insert(_)
                    | Statement::Update(_)
                    | Statement::Delete(_)
                    | Statement::Merge(_) => self.statement(statement)?,
                    other => return unsupported(format!("PREPARE of {}", statement_name(other))),
                };
                self.facts.prepared_kind = Some(Box::new(inner));
                (Kind::Prepare { name: fold_ident(name) }, outs)
            }
            Statement::Execute {
                name: Some(name),
                parameters,
                immediate: false,
                into,
                using,
                output: false,
                default: false,
                ..
            } if into.is_empty() && using.is_empty() => {
                let scope = Scope::new(Level::default(), None);
                let cx = Cx::new(Clause::FunctionArgument);
                for p in parameters {
                    let l = self.expr(p, &scope, cx)?;
                    self.consume(vec![l], cx, "EXECUTE");
                    self.facts.execute_arrays.push(literal_array_len(p));
                }
                // An array argument's length is judged, and `?` hides it: cache by exact text.
                self.literal_sensitive |= !parameters.is_empty();
                let parts = object_parts(name)?;
                (Kind::Execute { name: parts.join(".") }, Outputs::Unknown)
            }
            Statement::Deallocate { name, .. } => {
                let n = fold_ident(name);
                let name = if name.quote_style.is_none() && n == "all" {
                    None
                } else {
                    Some(n)
                };
                (Kind::Deallocate { name }, Outputs::None)
            }
            Statement::Explain {
                describe_alias: DescribeAlias::Explain,
                analyze,
                statement,
                query_plan: false,
                estimate: false,
                options,
                ..
            } => {
                // Postgres spells ANALYZE both ways (round 217 BB1: `ANALYSE` ran); an option it
                // does not know it refuses, and so does unscharf, rather than guess its meaning.
                const KNOWN: [&str; 10] = [
                    "analyze", "analyse", "verbose", "costs", "settings", "buffers", "wal", "timing", "summary",
                    "format",
                ];
                if let Some(o) = options
                    .iter()
                    .flatten()
                    .find(|o| !KNOWN.contains(&fold_ident(&o.name).as_str()))
                {
                    return unsupported(format!("EXPLAIN option {}", fold_ident(&o.name)));
                }
                let analyze = *analyze
                    || options.iter().flatten().any(|o| {
                        matches!(fold_ident(&o.name).as_str(), "analyze" | "analyse")
                            && o.arg.as_ref().is_none_or(|a| !is_false(a))
                    });
                // BUFFERS counts the pages a plan read, and so tells which page a row lies on, which
                // every column's size decides (round 134; round 79 refused ctid for it). WAL counts
                // bytes written, full pages among them.
                if let Some(o) = options.iter().flatten().find(|o| {
                    ["buffers", "wal"].contains(&fold_ident(&o.name).as_str())
                        && o.arg.as_ref().is_none_or(|a| !is_false(a))
                }) {
                    return unsupported(format!(
                        "EXPLAIN's {} option, which counts the pages or bytes of the rows a statement reached",
                        fold_ident(&o.name).to_uppercase()
                    ));
                }
                match statement.as_ref() {
                    Statement::Query(_)
                    | Statement::Insert(_)
                    | Statement::Update(_)
                    | Statement::Delete(_)
                    | Statement::Merge(_) => {
                        self.statement(statement)?;
                    }
                    other => return unsupported(format!("EXPLAIN of {}", statement_name(other))),
                }
                let plan = super::facts::Output {
                    name: "QUERY PLAN".into(),
                    lineage: Lineage::constant(),
                    explicit: true,
                };
                // Postgres takes the last COSTS option (round 170: `COSTS OFF, COSTS ON`).
                let costs = !options
                    .iter()
                    .flatten()
                    .rfind(|o| fold_ident(&o.name) == "costs")
                    .is_some_and(|o| o.arg.as_ref().is_some_and(is_false));
                (Kind::Explain { analyze, costs }, Outputs::Known(vec![plan]))
            }
            Statement::Set(set) => {
                self.set(set)?;
                (Kind::Set, Outputs::None)
            }
            Statement::Reset(r) => {
                let name = match &r.reset {
                    Reset::ALL => "all".to_owned(),
                    Reset::SessionAuthorization => "session_authorization".to_owned(),
                    Reset::ConfigurationParameter(n) => setting_name(n)?,
                };
                if name == "all" || name == "search_path" {
                    self.facts.path_change = Some(PathChange::Reset);
                }
                self.facts.settings.push(Setting { name, via: "RESET" });
                (Kind::Reset, Outputs::None)
            }
            Statement::ShowVariable { .. } => (Kind::Show, Outputs::Unknown),
            Statement::StartTransaction {
                statements,
                exception,
                has_end_keyword: false,
                ..
            } if statements.is_empty() && exception.is_none() => (Kind::Transaction(TxControl::Begin), Outputs::None),
            Statement::Commit { .. } => (Kind::Transaction(TxControl::Commit), Outputs::None),
            Statement::Rollback { savepoint, .. } => {
                let k = match savepoint {
                    Some(name) => TxControl::RollbackTo(fold_ident(name)),
                    None => TxControl::Rollback,
                };
                (Kind::Transaction(k), Outputs::None)
            }
            Statement::Savepoint { name } => (Kind::Transaction(TxControl::Savepoint(fold_ident(name))), Outputs::None),
            Statement::ReleaseSavepoint { name } => {
                (Kind::Transaction(TxControl::Release(fold_ident(name))), Outputs::None)
            }
            Statement::LISTEN { .. } | Statement::UNLISTEN { .. } => (Kind::Listen, Outputs::None),
            Statement::NOTIFY { .. } => {
                return unsupported("NOTIFY (a side channel between sessions, like pg_notify)");
            }
            Statement::Discard { object_type } => {
                let all = matches!(object_type, DiscardObject::ALL);
                if all {
                    self.facts.path_change = Some(PathChange::Reset);
                }
                (Kind::Discard { all }, Outputs::None)
            }
            other => return unsupported(statement_name(other)),
        })
    }

    /// A query whose result becomes a new table: every output column is data written (rule 8).
    pub(super) fn new_table(&mut self, outs: Outputs, how: &str) -> Result<(Kind, Outputs), AnalyzeError> {
        let Outputs::Known(cols) = outs else {
            return unsupported(format!("{how} from a source of unknown columns"));
        };
        for out in cols {
            let via = format!("{how} (column {})", out.name);
            self.consume(vec![out.lineage], Cx::new(Clause::WriteSource), &via);
        }
        Ok((Kind::CreateTableAs, Outputs::None))
    }

    fn set(&mut self, set: &Set) -> Result<(), AnalyzeError> {
        let push = |a: &mut Self, name: &str| {
            a.facts.settings.push(Setting {
                name: name.to_owned(),
                via: "SET",
            })
        };
        match set {
            Set::SingleAssignment {
                scope,
                hivevar: false,
                variable,
                values,
            } => {
                if matches!(scope, Some(ContextModifier::Global)) {
                    return unsupported("SET GLOBAL");
                }
                let mut name = setting_name(variable)?;
                if name == "schema" {
                    name = "search_path".into();
                }
                if name == "search_path" {
                    self.literal_sensitive = true;
                    self.facts.path_change = Some(search_path_values(values));
                }
                push(self, &name);
            }
            Set::SetRole { .. } => push(self, "role"),
            Set::SetSessionAuthorization(_) => push(self, "session_authorization"),
            Set::SetNames { .. } | Set::SetNamesDefault {} => push(self, "client_encoding"),
            Set::SetTimeZone { .. } => push(self, "timezone"),
            Set::SetTransaction { .. } => push(self, "transaction"),
            _ => return unsupported("this form of SET"),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        source: &CopySource,
        to: bool,
        target: &CopyTarget,
        options: &[CopyOption],
        legacy: &[CopyLegacyOption],
        has_payload: bool,
    ) -> Result<(Kind, Outputs), AnalyzeError> {
        self.literal_sensitive = true;
        if has_payload {
            return unsupported("COPY with inline data");
        }
        match (to, target) {
            (true, CopyTarget::Stdout) | (false, CopyTarget::Stdin) => {}
            _ => return unsupported("COPY to or from a file or program"),
        }
        // FREEZE fails after CopyInResponse unless the table was created in the same transaction
        // (DDL, which unscharf refuses), so it could only confuse the COPY's replies.
        if options.iter().any(|o| matches!(o, CopyOption::Freeze(_))) {
            return unsupported("COPY FREEZE");
        }
        if !to {
            let CopySource::Table { table_name, columns } = source else {
                return unsupported("COPY (query) FROM");
            };
            let rel = self.resolve_relation(&object_parts(table_name)?)?;
            self.write(rel, WriteKind::Insert);
            let names: Vec<String> = if columns.is_empty() {
                self.ctx.catalog.rel(rel).column_names()
            } else {
                columns.iter().map(fold_ident).collect()
            };
            self.written(rel, &names, crate::policy::WriteKind::Insert)?;
            return Ok((Kind::CopyFrom, Outputs::None));
        }
        let format = copy_format(options, legacy)?;
        let outs = match source {
            CopySource::Query(q) => self.query(q, None)?,
            CopySource::Table { table_name, columns } => {
                let rel = self.resolve_relation(&object_parts(table_name)?)?;
                self.facts.touch(rel);
                let r = self.ctx.catalog.rel(rel);
                let idx: Vec<usize> = if columns.is_empty() {
                    (0..r.columns.len()).filter(|&i| !r.columns[i].dropped).collect()
                } else {
                    columns
                        .iter()
                        .map(|c| {
                            let n = fold_ident(c);
                            r.column_index(&n).ok_or(AnalyzeError::UnknownColumn(n))
                        })
                        .collect::<Result<_, _>>()?
                };
                Outputs::Known(
                    idx.into_iter()
                        .map(|i| super::facts::Output {
                            name: r.columns[i].name.clone(),
                            lineage: Lineage::column(super::facts::ColRef { rel, col: i as u16 }),
                            explicit: true,
                        })
                        .collect(),
                )
            }
        };
        Ok((Kind::CopyTo(format), outs))
    }
}

fn is_false(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(v.value, sqlparser::ast::Value::Boolean(false)))
        || matches!(e, Expr::Identifier(i) if matches!(i.value.to_ascii_lowercase().as_str(), "false" | "off" | "0"))
}

/// A setting's name as Postgres looks it up: case-insensitively, quoted or not, so that
/// `SET "STANDARD_CONFORMING_STRINGS" = off` meets rule 9 like its lower-case spelling.
fn setting_name(n: &sqlparser::ast::ObjectName) -> Result<String, AnalyzeError> {
    Ok(object_parts(n)?.join(".").to_ascii_lowercase())
}

fn search_path_values(values: &[Expr]) -> PathChange {
    let mut out = Vec::new();
    for v in values {
        match v {
            Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default") => {
                return PathChange::Reset
            }
            Expr::Identifier(i) => out.push(fold_ident(i)),
            // SET quotes each string as one identifier (GUC_LIST_QUOTE): 'a, B' is the schema
            // named `a, B`, not a list; only set_config's value is a list.
            other => match literal_string(other) {
                Some(s) => out.push(fold_ident(&sqlparser::ast::Ident::with_quote('"', s))),
                None => return PathChange::Unknown,
            },
        }
    }
    PathChange::To(out)
}

fn one_byte(c: char, what: &str) -> Result<u8, AnalyzeError> {
    // sqlparser keeps an unquoted word as written, where Postgres folds it: `DELIMITER Q` splits
    // on `q`, and rows split on `Q` put a whole row into one column (round 215 AZ2). Quoted or
    // not, a lower-case letter means itself.
    if c.is_ascii_uppercase() {
        return unsupported(format!(
            "COPY {what} as an upper-case letter (Postgres folds it to lower case unless it is quoted)"
        ));
    }
    if c.is_ascii() {
        Ok(c as u8)
    } else {
        unsupported(format!("COPY {what} must be a single ASCII character"))
    }
}

fn copy_format(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyOut, AnalyzeError> {
    let mut kind = "text".to_owned();
    let (mut delimiter, mut null, mut quote, mut escape, mut header) = (None, None, None, None, false);
    for o in options {
        match o {
            CopyOption::Format(f) => kind = f.value.to_ascii_lowercase(),
            CopyOption::Delimiter(c) => delimiter = Some(one_byte(*c, "DELIMITER")?),
            CopyOption::Null(s) => null = Some(s.as_bytes().to_vec()),
            CopyOption::Header(h) => header = *h,
            CopyOption::Quote(c) => quote = Some(one_byte(*c, "QUOTE")?),
            CopyOption::Escape(c) => escape = Some(one_byte(*c, "ESCAPE")?),
            CopyOption::ForceQuote(_)
            | CopyOption::ForceNotNull(_)
            | CopyOption::ForceNull(_)
            | CopyOption::Freeze(_) => {}
            CopyOption::Encoding(e) => {
                let e = e.to_ascii_lowercase().replace(['-', '_'], "");
                if e != "utf8" {
                    return unsupported("COPY ENCODING other than UTF8");
                }
            }
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => kind = "binary".into(),
            CopyLegacyOption::Csv(opts) => {
                kind = "csv".into();
                for c in opts {
                    match c {
                        CopyLegacyCsvOption::Header => header = true,
                        CopyLegacyCsvOption::Quote(q) => quote = Some(one_byte(*q, "QUOTE")?),
                        CopyLegacyCsvOption::Escape(e) => escape = Some(one_byte(*e, "ESCAPE")?),
                        CopyLegacyCsvOption::ForceQuote(_) | CopyLegacyCsvOption::ForceNotNull(_) => {}
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => delimiter = Some(one_byte(*c, "DELIMITER")?),
            CopyLegacyOption::Null(s) => null = Some(s.as_bytes().to_vec()),
            CopyLegacyOption::Header => header = true,
            _ => return unsupported("COPY option"),
        }
    }
    match kind.as_str() {
        "text" => Ok(CopyOut::Text {
            delimiter: delimiter.unwrap_or(b'\t'),
            null: null.unwrap_or_else(|| b"\\N".to_vec()),
            header,
        }),
        "csv" => {
            let quote = quote.unwrap_or(b'"');
            Ok(CopyOut::Csv {
                delimiter: delimiter.unwrap_or(b','),
                quote,
                escape: escape.unwrap_or(quote),
                null: null.unwrap_or_default(),
                header,
            })
        }
        "binary" => Ok(CopyOut::Binary),
        // Not repeated: it could be any value typed in its place (round 175 F4).
        _ => unsupported("a COPY FORMAT other than text, csv or binary"),
    }
}
