//! A catalog without a live database: the embedded pg_catalog snapshot plus the relations of a
//! `pg_dump --schema-only` file, for `explain --schema`, `unscharf test` and unit tests.

use sqlparser::ast::{ObjectName, ObjectNamePart, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::{Catalog, Column, RelKind, Relation};
use crate::policy::QName;

const SYSTEM: &str = include_str!("pg15_system.tsv");

/// Offline relations get synthetic OIDs above anything a fresh cluster uses.
const OFFLINE_OID_BASE: u32 = 1 << 30;

pub(super) fn add_system_snapshot(catalog: &mut Catalog) {
    for line in SYSTEM.lines().filter(|l| !l.starts_with('#')) {
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            ["R", oid, schema, name, kind, cols] => {
                let columns = cols
                    .split(',')
                    .filter_map(|c| {
                        let mut it = c.split(':');
                        Some(Column {
                            name: it.next()?.to_owned(),
                            attnum: it.next()?.parse().ok()?,
                            type_oid: it.next()?.parse().ok()?,
                            dropped: false,
                        })
                    })
                    .collect();
                catalog.add_relation(Relation {
                    oid: oid.parse().unwrap_or(0),
                    name: QName::new(schema, name),
                    kind: RelKind::from_relkind(kind.chars().next().unwrap_or('?')),
                    columns,
                    unique_keys: Vec::new(),
                    foreign_keys: Vec::new(),
                    checks: Vec::new(),
                    generated: Vec::new(),
                    barrier: false,
                    row_security: false,
                    row_triggers: Vec::new(),
                });
            }
            ["F", schema, names] => {
                for n in names.split(' ') {
                    catalog.add_function(schema, n);
                }
            }
            _ => {}
        }
    }
    for s in ["pg_catalog", "information_schema", "public"] {
        catalog.add_schema(s);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaFileError {
    #[error("cannot read schema file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("schema file {path}: {problem}")]
    Parse { path: String, problem: String },
}

/// Builds a catalog from `pg_dump --schema-only` output (or any file of CREATE statements).
/// Statements other than CREATE SCHEMA/TABLE/VIEW/FUNCTION are skipped.
pub fn from_schema_sql(sql: &str, path: &str) -> Result<Catalog, SchemaFileError> {
    let mut catalog = Catalog::default().with_system_snapshot();
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| SchemaFileError::Parse {
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
    let mut views = Vec::new();
    let mut keys = Keys::default();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        match parser.parse_statement() {
            Ok(stmt) => collect(&mut catalog, stmt, &mut views, &mut keys),
            Err(_) => {
                // pg_dump emits statements sqlparser does not know; skip to the next `;`.
                loop {
                    let t = parser.next_token().token;
                    if t == Token::SemiColon || t == Token::EOF {
                        break;
                    }
                }
            }
        }
    }
    keys.resolve(&mut catalog);
    for (name, columns, query) in views {
        let cols = if columns.is_empty() {
            crate::analyze::output_names(&catalog, &query)
        } else {
            Some(columns)
        };
        if let Some(cols) = cols {
            add(
                &mut catalog,
                name,
                RelKind::View,
                cols.into_iter().map(|c| (c, 0)).collect(),
            );
        }
    }
    Ok(catalog)
}

fn qname(name: &ObjectName) -> QName {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(crate::analyze::fold_ident(i)),
            _ => None,
        })
        .collect();
    match parts.as_slice() {
        [.., s, n] => QName::new(s, n),
        [n] => QName::new("public", n),
        [] => QName::new("public", ""),
    }
}

fn add(catalog: &mut Catalog, name: QName, kind: RelKind, cols: Vec<(String, u32)>) -> super::RelId {
    let oid = OFFLINE_OID_BASE + catalog.relations().count() as u32;
    catalog.add_relation(Relation {
        oid,
        name,
        kind,
        unique_keys: Vec::new(),
        foreign_keys: Vec::new(),
        checks: Vec::new(),
        generated: Vec::new(),
        barrier: false,
        row_security: false,
        row_triggers: Vec::new(),
        columns: cols
            .into_iter()
            .enumerate()
            .map(|(i, (name, type_oid))| Column {
                name,
                attnum: i as i16 + 1,
                type_oid,
                dropped: false,
            })
            .collect(),
    })
}

/// The sequences a column owns: serial and identity columns get `table_column_seq`, and a default
/// of `nextval('name')` (how pg_dump writes serial columns) names its sequence.
fn owned_sequences(table: &QName, c: &sqlparser::ast::ColumnDef) -> Vec<QName> {
    let ty = c.data_type.to_string().to_ascii_lowercase();
    let mut out = Vec::new();
    let identity = c
        .options
        .iter()
        .any(|o| o.option.to_string().to_ascii_uppercase().contains("AS IDENTITY"));
    if matches!(ty.as_str(), "serial" | "bigserial" | "smallserial") || identity {
        let col = crate::analyze::fold_ident(&c.name);
        out.push(QName::new(&table.schema, &format!("{}_{col}_seq", table.name)));
    }
    for o in &c.options {
        if let sqlparser::ast::ColumnOption::Default(e) = &o.option {
            let text = e.to_string();
            let Some(arg) = text.strip_prefix("nextval('").and_then(|t| t.split('\'').next()) else {
                continue;
            };
            match crate::analyze::regclass_name(arg).as_deref() {
                Some([name]) => out.push(QName::new(&table.schema, name)),
                Some([schema, name]) => out.push(QName::new(schema, name)),
                _ => {}
            }
        }
    }
    out
}

/// The names an index's columns, expressions and predicate read.
fn names_in(cols: &[sqlparser::ast::IndexColumn], predicate: Option<&sqlparser::ast::Expr>) -> Vec<String> {
    use sqlparser::ast::{Expr, Visit, Visitor};
    struct Names(Vec<String>);
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> std::ops::ControlFlow<()> {
            match e {
                Expr::Identifier(i) => self.0.push(crate::analyze::fold_ident(i)),
                Expr::CompoundIdentifier(p) => self.0.extend(p.last().map(crate::analyze::fold_ident)),
                _ => {}
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut n = Names(Vec::new());
    for c in cols {
        let _ = c.column.expr.visit(&mut n);
    }
    if let Some(p) = predicate {
        let _ = p.visit(&mut n);
    }
    n.0
}

type PendingView = (QName, Vec<String>, sqlparser::ast::Query);

/// A foreign key by names, resolved once every table is known (one may reference a table created
/// later). No referenced columns means the referenced table's primary key.
struct PendingFk {
    rel: super::RelId,
    cols: Vec<String>,
    target: QName,
    target_cols: Vec<String>,
    /// As pg_constraint spells them (see `ForeignKey`).
    on_delete: char,
    on_update: char,
}

#[derive(Default)]
struct Keys {
    foreign: Vec<PendingFk>,
    primary: std::collections::HashMap<QName, Vec<String>>,
}

impl Keys {
    fn add(&mut self, rel: super::RelId, cols: Vec<String>, fk: &sqlparser::ast::ForeignKeyConstraint) {
        let action = |a: &Option<sqlparser::ast::ReferentialAction>| {
            use sqlparser::ast::ReferentialAction as A;
            match a {
                Some(A::Cascade) => 'c',
                Some(A::SetNull) => 'n',
                Some(A::SetDefault) => 'd',
                Some(A::Restrict) => 'r',
                _ => 'a',
            }
        };
        self.foreign.push(PendingFk {
            rel,
            cols,
            target: qname(&fk.foreign_table),
            target_cols: fk.referred_columns.iter().map(crate::analyze::fold_ident).collect(),
            on_delete: action(&fk.on_delete),
            on_update: action(&fk.on_update),
        });
    }

    fn resolve(self, catalog: &mut Catalog) {
        for fk in self.foreign {
            let Some(t) = catalog.lookup(&fk.target) else { continue };
            let target_cols = match fk.target_cols.is_empty() {
                true => self.primary.get(&fk.target).cloned().unwrap_or_default(),
                false => fk.target_cols,
            };
            let attnums = |r: &Relation, names: &[String]| -> Option<Vec<i16>> {
                names
                    .iter()
                    .map(|n| r.columns.iter().find(|c| &c.name == n).map(|c| c.attnum))
                    .collect()
            };
            let (Some(cols), Some(target_cols)) = (
                attnums(catalog.rel(fk.rel), &fk.cols),
                attnums(catalog.rel(t), &target_cols),
            ) else {
                continue;
            };
            let target = catalog.rel(t).oid;
            catalog.add_foreign_key(
                fk.rel,
                super::ForeignKey {
                    cols,
                    target,
                    target_cols,
                    on_delete: fk.on_delete,
                    on_update: fk.on_update,
                },
            );
        }
    }
}

fn collect(catalog: &mut Catalog, stmt: Statement, views: &mut Vec<PendingView>, keys: &mut Keys) {
    match stmt {
        Statement::CreateSchema { schema_name, .. } => {
            let name = schema_name.to_string();
            catalog.add_schema(name.trim_matches('"'));
        }
        Statement::CreateTable(t) => {
            let cols = t
                .columns
                .iter()
                .map(|c| (crate::analyze::fold_ident(&c.name), type_oid(&c.data_type.to_string())))
                .collect();
            let table = qname(&t.name);
            let id = add(catalog, table.clone(), RelKind::Table, cols);
            for c in &t.columns {
                for seq in owned_sequences(&table, c) {
                    catalog.add_sequence(seq, Some(id));
                }
                let col = crate::analyze::fold_ident(&c.name);
                for o in &c.options {
                    let text = o.option.to_string().to_ascii_uppercase();
                    if text.starts_with("PRIMARY KEY") || text.starts_with("UNIQUE") {
                        catalog.add_unique_key(id, std::slice::from_ref(&col));
                    }
                    if text.starts_with("PRIMARY KEY") {
                        keys.primary.insert(table.clone(), vec![col.clone()]);
                    }
                    if let sqlparser::ast::ColumnOption::ForeignKey(fk) = &o.option {
                        keys.add(id, vec![col.clone()], fk);
                    }
                }
            }
            for k in &t.constraints {
                use sqlparser::ast::TableConstraint as K;
                match k {
                    K::Unique(sqlparser::ast::UniqueConstraint { columns, .. }) => {
                        catalog.add_unique_key(id, &names_in(columns, None));
                    }
                    K::PrimaryKey(sqlparser::ast::PrimaryKeyConstraint { columns, .. }) => {
                        catalog.add_unique_key(id, &names_in(columns, None));
                        keys.primary.insert(table.clone(), names_in(columns, None));
                    }
                    K::ForeignKey(fk) => keys.add(id, fk.columns.iter().map(crate::analyze::fold_ident).collect(), fk),
                    _ => {}
                }
            }
        }
        Statement::CreateIndex(ix) if ix.unique => {
            if let Some(id) = catalog.lookup(&qname(&ix.table_name)) {
                catalog.add_unique_key(id, &names_in(&ix.columns, ix.predicate.as_ref()));
            }
        }
        Statement::CreateSequence { name, .. } => {
            let q = qname(&name);
            if catalog.sequence(&q).is_none() {
                catalog.add_sequence(q, None);
            }
        }
        Statement::CreateView(v) => {
            let cols = v.columns.iter().map(|c| crate::analyze::fold_ident(&c.name)).collect();
            let kind = if v.materialized {
                RelKind::MaterializedView
            } else {
                RelKind::View
            };
            let _ = kind;
            views.push((qname(&v.name), cols, *v.query));
        }
        Statement::CreateFunction(f) => {
            let q = qname(&f.name);
            catalog.add_schema(&q.schema);
            catalog.add_function(&q.schema, &q.name);
        }
        _ => {}
    }
}

/// OIDs of the common built-in types, so offline RowDescriptions and masks can be described.
fn type_oid(sql_type: &str) -> u32 {
    let t = sql_type.to_ascii_lowercase();
    let base = t.split('(').next().unwrap_or("").trim();
    match base {
        "text" => 25,
        "integer" | "int" | "int4" | "serial" => 23,
        "bigint" | "int8" | "bigserial" => 20,
        "smallint" | "int2" => 21,
        "numeric" | "decimal" => 1700,
        "date" => 1082,
        "timestamp with time zone" | "timestamptz" => 1184,
        "timestamp" | "timestamp without time zone" => 1114,
        "boolean" | "bool" => 16,
        "character varying" | "varchar" => 1043,
        "character" | "char" => 1042,
        "real" | "float4" => 700,
        "double precision" | "float8" => 701,
        "uuid" => 2950,
        "jsonb" => 3802,
        "json" => 114,
        "bytea" => 17,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_snapshot_has_catalogs_and_functions() {
        let c = Catalog::default().with_system_snapshot();
        let pg_class = c.lookup(&QName::new("pg_catalog", "pg_class")).unwrap();
        assert!(c.rel(pg_class).column_index("relname").is_some());
        assert!(c.lookup(&QName::new("pg_catalog", "pg_stats")).is_some());
        assert!(c.function_exists("pg_catalog", "lower"));
        assert!(c.function_exists("pg_catalog", "pg_read_file"));
    }

    #[test]
    fn sample_schema_loads() {
        let sql = include_str!("../../sample/schema.sql");
        let c = from_schema_sql(sql, "schema.sql").unwrap();
        let cust = c.rel(c.lookup(&QName::new("stadtwerke", "customers")).unwrap());
        assert_eq!(cust.columns.len(), 10);
        assert_eq!(cust.columns[5].name, "phone");
        assert_eq!(cust.columns[5].attnum, 6);
        assert_eq!(cust.columns[8].type_oid, 1082);
        // Keys: customer_no is the primary key; tickets.customer_no references it.
        assert_eq!(cust.unique_keys, vec![vec![1]]);
        let tickets = c.rel(c.lookup(&QName::new("stadtwerke", "tickets")).unwrap());
        assert!(
            tickets
                .foreign_keys
                .iter()
                .any(|fk| fk.target == cust.oid && fk.target_cols == vec![1]),
            "{:?}",
            tickets.foreign_keys
        );
        assert!(c.has_schema("zeitung"));
    }
}
