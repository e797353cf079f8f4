//! Column references: a name resolved to a column, a whole row, a system column or a parenless
//! value function, each lookup charged what it scans.

use super::facts::{ColRef, Lineage};
use super::functions::VALUE_FUNCTIONS;
use super::scope::{Entry, Found, Scope, SYSTEM_COUNTERS};
use super::{AnalyzeError, Analyzer};

impl Analyzer<'_> {
    /// A column reference, a whole-row reference, or a parenless SQL value function.
    pub(super) fn column_ref(&mut self, parts: &[String], scope: &Scope, bare: bool) -> Result<Lineage, AnalyzeError> {
        // Postgres's grammar reserves these words: unquoted, they are the function even where a
        // column of that name is in scope (round 92).
        if bare && parts.len() == 1 && VALUE_FUNCTIONS.contains(&parts[0].as_str()) {
            return Ok(Lineage::constant());
        }
        let found = match parts {
            [name] => scope.column(self, name)?,
            [qual @ .., name] => scope.qualified(self, qual, name)?,
            [] => None,
        };
        match found {
            Some(Found::Column(c)) => self.copied_lineage(&c.lineage),
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
                if let (Some(rel), "ctid") = (e.system, name) {
                    self.facts.row_tells.push((rel, "its ctid tells where rows lie"));
                }
                if name == "ctid" || (name == "tableoid" && parent) {
                    let cols = self.row_cols(e)?;
                    self.facts.whole_rows.push((
                        cols,
                        format!("{}.{name} (where a row lies follows its values)", e.alias),
                    ));
                }
                Ok(Lineage::constant())
            }
            Some(Found::WholeRow(e)) => {
                let cols = self.row_cols(e)?;
                self.facts.whole_rows.push((cols.clone(), e.alias.clone()));
                Ok(Lineage::derived(cols))
            }
            None => {
                if parts.len() == 2 {
                    // `alias.column` where the alias names a whole row of an outer function... or nothing.
                    if scope.entry(self, &parts[..1])?.is_none() {
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
            if let Ok(Some(Found::Column(c))) = scope.column(self, &parts[0]) {
                return self.copied_lineage(&c.lineage);
            }
        }
        if let Some(e) = scope.entry(self, parts)? {
            let cols = self.row_cols(e)?;
            self.facts
                .whole_rows
                .push((cols.clone(), format!("{} in {via}", e.alias)));
            return Ok(Lineage::derived(cols));
        }
        self.column_ref(parts, scope, false)
    }

    /// A copy of a column's lineage, charged by its length: a CTE column computed from every
    /// catalog column (2,040 of them), referenced 60,000 times in 129 KB, copied 10^8 column
    /// references into 2 GB for three units each (round 140).
    pub(super) fn copied_lineage(&mut self, l: &Lineage) -> Result<Lineage, AnalyzeError> {
        self.spend_n(l.cols.len())?;
        Ok(l.clone())
    }

    /// The columns behind a whole row of a FROM item, charged by their number.
    pub(super) fn row_cols(&mut self, e: &Entry) -> Result<Vec<ColRef>, AnalyzeError> {
        let cols = e.lineage_cols();
        self.spend_n(cols.len())?;
        Ok(cols)
    }
}
