//! Column references: a name resolved to a column, a whole row, a system column or a parenless
//! value function, each lookup charged what it scans.

use super::facts::Lineage;
use super::functions::VALUE_FUNCTIONS;
use super::scope::{Found, Scope, SYSTEM_COUNTERS};
use super::{AnalyzeError, Analyzer};

impl Analyzer<'_> {
    /// A column reference, a whole-row reference, or a parenless SQL value function.
    pub(super) fn column_ref(&mut self, parts: &[String], scope: &Scope, bare: bool) -> Result<Lineage, AnalyzeError> {
        // Postgres's grammar reserves these words: unquoted, they are the function even where a
        // column of that name is in scope (round 92).
        if bare && parts.len() == 1 && VALUE_FUNCTIONS.contains(&parts[0].as_str()) {
            return Ok(Lineage::constant());
        }
        // A lookup costs what it scans: a 3-byte name in a FROM clause of 150 copies of a
        // 1,024-column CTE scanned 154,000 columns, charged as one step (round 139).
        let found = match parts {
            [name] => {
                self.spend_n(scope.width())?;
                scope.column(name)?
            }
            [qual @ .., name] => {
                self.spend_n(scope.qualified_width())?;
                scope.qualified(qual, name)?
            }
            [] => None,
        };
        match found {
            Some(Found::Column(c)) => Ok(c.lineage.clone()),
            Some(Found::Opaque) => Ok(Lineage::constant()),
            // A row's ctid moves when the row is updated and lies where the sizes of the rows
            // before it put it, so it tells as much as the whole row (the differential checker
            // saw it change with a dropped column); so does tableoid where rows may lie in
            // partitions or child tables chosen by their values (round 67: the decade of a
            // dropped birth date). The transaction and command ids are refused like a cast to
            // their types (rule 7).
            Some(Found::System(name, e)) => {
                if SYSTEM_COUNTERS.contains(&name) {
                    let ty = if name.starts_with('x') { "xid" } else { "cid" };
                    self.facts.functions.push(super::facts::FuncCall {
                        written: format!("the system column {name} (a {ty})"),
                        name: format!("::{ty}"),
                        schemas: vec!["pg_catalog".to_owned()],
                    });
                }
                let parent = e.system.is_some_and(|rel| {
                    self.ctx
                        .catalog
                        .descendants
                        .contains_key(&self.ctx.catalog.rel(rel).oid)
                });
                if name == "ctid" || (name == "tableoid" && parent) {
                    let cols = e.lineage_cols();
                    self.facts.whole_rows.push((
                        cols,
                        format!("{}.{name} (where a row lies follows its values)", e.alias),
                    ));
                }
                Ok(Lineage::constant())
            }
            Some(Found::WholeRow(e)) => {
                let cols = e.lineage_cols();
                self.facts.whole_rows.push((cols.clone(), e.alias.clone()));
                Ok(Lineage::derived(cols))
            }
            None => {
                if parts.len() == 2 {
                    // `alias.column` where the alias names a whole row of an outer function... or nothing.
                    if scope.entry(&parts[..1]).is_none() {
                        return Err(AnalyzeError::UnknownRelation(format!(
                            "missing FROM-clause entry for `{}`",
                            parts[0]
                        )));
                    }
                }
                Err(AnalyzeError::UnknownColumn(parts.join(".")))
            }
        }
    }

    /// The root of `(x).field`: a whole row when `x` names a FROM item, else a column.
    pub(super) fn whole_row_or_column(
        &mut self,
        parts: &[String],
        scope: &Scope,
        via: &str,
    ) -> Result<Lineage, AnalyzeError> {
        if parts.len() == 1 {
            if let Ok(Some(Found::Column(c))) = scope.column(&parts[0]) {
                return Ok(c.lineage.clone());
            }
        }
        if let Some(e) = scope.entry(parts) {
            let cols = e.lineage_cols();
            self.facts
                .whole_rows
                .push((cols.clone(), format!("{} in {via}", e.alias)));
            return Ok(Lineage::derived(cols));
        }
        self.column_ref(parts, scope, false)
    }
}
