//! Operators and types an expression names: Postgres finds both through search_path, as it finds functions.

use sqlparser::ast::BinaryOperator;

use super::expr::object_parts;
use super::{AnalyzeError, Analyzer};

impl Analyzer<'_> {
    /// Operators a construct applies without naming them (IN's `=`, LIKE's `~~`, BETWEEN's `>=`
    /// and `<=`, …): Postgres finds them through search_path like written ones, so one defined
    /// outside pg_catalog could run a DBA's code on the values.
    pub(super) fn implicit_operators(&mut self, ops: &[&str]) -> Result<(), AnalyzeError> {
        for op in ops {
            if self.ctx.catalog.dba_system_operators.contains(*op) {
                return Err(AnalyzeError::Unsupported(format!(
                    "operator {op}, which this construct applies, is also defined in pg_catalog by a DBA or an extension"
                )));
            }
            if self.user_operator_visible(op) {
                return Err(AnalyzeError::Unsupported(format!(
                    "operator {op}, which this construct applies, is also defined outside pg_catalog; write it with OPERATOR(pg_catalog.{op})"
                )));
            }
        }
        Ok(())
    }

    /// Whether an operator named `op` outside pg_catalog is in a schema on a search_path the
    /// session may have: only there does an unqualified operator find it.
    fn user_operator_visible(&self, op: &str) -> bool {
        let catalog = self.ctx.catalog;
        if !catalog.user_operators.contains(op) {
            return false;
        }
        let Some(schemas) = catalog.operator_schemas.get(op) else {
            return true;
        };
        self.paths_uncharged()
            .iter()
            .any(|path| path.iter().any(|s| schemas.contains(s)))
    }

    pub(super) fn binary_operator(&mut self, op: &BinaryOperator) -> Result<(), AnalyzeError> {
        match op {
            BinaryOperator::PGCustomBinaryOperator(parts) => self.check_operator(parts),
            _ => self.check_operator(&[op.to_string()]),
        }
    }

    pub(super) fn check_operator(&mut self, parts: &[String]) -> Result<(), AnalyzeError> {
        let (schema, op) = match parts {
            [op] => (None, op),
            [s, op] => (Some(s.as_str()), op),
            _ => return Err(AnalyzeError::Unsupported("operator name".into())),
        };
        if let Some(s) = schema {
            if s != "pg_catalog" {
                return Err(AnalyzeError::Unsupported(format!(
                    "operator {s}.{op} outside pg_catalog"
                )));
            }
            if self.ctx.catalog.dba_system_operators.contains(op.as_str()) {
                return Err(AnalyzeError::Unsupported(format!(
                    "operator pg_catalog.{op}: a DBA or an extension defined one of that name in pg_catalog"
                )));
            }
        } else if self.ctx.catalog.dba_system_operators.contains(op.as_str()) {
            return Err(AnalyzeError::Unsupported(format!(
                "operator {op}: a DBA or an extension defined one of that name in pg_catalog"
            )));
        } else if self.user_operator_visible(op) {
            return Err(AnalyzeError::Unsupported(format!(
                "operator {op} is also defined outside pg_catalog; write OPERATOR(pg_catalog.{op})"
            )));
        }
        Ok(())
    }
}

/// Types whose values number transactions and snapshots server-wide: any session moves them and
/// every other reads them (`age('3'::xid)`), a channel between campaigns.
pub const COUNTER_TYPES: &[&str] = &["xid", "xid8", "cid", "txid_snapshot", "pg_snapshot"];

impl Analyzer<'_> {
    /// A cast to a counter type is recorded as a call of `::type`, a name rule 7 forbids and no
    /// function can have.
    pub(super) fn note_type(&mut self, t: &sqlparser::ast::DataType) -> Result<(), AnalyzeError> {
        // Words that begin a type of several words to Postgres (`setof int`, `national
        // character`, `nchar varying`), which sqlparser ends after the first, reading the rest as
        // a column alias (round 26): Postgres names the column otherwise.
        if let sqlparser::ast::DataType::Custom(name, _) = t {
            let name = name.to_string().to_ascii_lowercase();
            if ["setof", "national", "nchar"].contains(&name.as_str()) {
                return Err(AnalyzeError::Unsupported(format!(
                    "the type `{name} …`, which unscharf reads differently from Postgres"
                )));
            }
        }
        let text = t.to_string().replace('"', "").to_ascii_lowercase();
        let base = text.split(['(', '[']).next().unwrap_or_default().trim();
        // A type's name folds like any other (round 28: `zeitung."LeadCard"` was lower-cased, and
        // so not found); sqlparser's own types are Postgres's, whose names are lower case.
        let mut inner = t;
        while let sqlparser::ast::DataType::Array(
            sqlparser::ast::ArrayElemTypeDef::SquareBracket(e, _) | sqlparser::ast::ArrayElemTypeDef::AngleBracket(e),
        ) = inner
        {
            inner = e;
        }
        let parts: Vec<String> = match inner {
            sqlparser::ast::DataType::Custom(name, _) => object_parts(name)?,
            _ => base.split('.').map(str::to_owned).collect(),
        };
        // A value of a type that holds a relation's rows, even one cast from NULL, makes a
        // polymorphic function return such rows (round 199 AJ2: `anyelement` helpers fed
        // `NULL::customers` returned whole customers). Unqualified, any schema's type counts.
        let catalog = self.ctx.catalog;
        if let Some((bare, schema)) = parts.split_last() {
            let held = catalog.row_types.get(bare).into_iter().flatten();
            for &(ref s, oid) in held.filter(|(s, _)| schema.last().is_none_or(|q| q == s)) {
                if let Some(rel) = catalog.by_oid(oid) {
                    let what = format!(
                        "a value of type {s}.{bare}, which holds rows of {},",
                        catalog.rel(rel).name
                    );
                    self.rows_handed_out(rel, what)?;
                }
            }
        }
        // decide() refuses a type a DBA's cast or domain CHECK guards, at every judgement.
        if !self.facts.cast_types.contains(&parts) {
            self.facts.cast_types.push(parts);
        }
        let base = base.strip_prefix("pg_catalog.").unwrap_or(base);
        if let Some(name) = COUNTER_TYPES.iter().find(|n| **n == base) {
            self.facts.functions.push(super::facts::FuncCall {
                written: format!("a cast to {name}"),
                name: format!("::{name}"),
                schemas: vec!["pg_catalog".to_owned()],
            });
        }
        Ok(())
    }
}
