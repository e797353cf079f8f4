//! Rule 10's second line of defence: the RowDescription check of every result column against the plan.

use ahash::AHashMap as HashMap;

use super::forbidden::CATALOG_ESTIMATES;
use super::ColAction;
use crate::catalog::Catalog;
use crate::mask::functions::Mask;
use crate::policy::{ColumnRule, PolicySet, Purpose};

/// Rule 10's second line of defence: for each table OID, the protected attributes and their rules
/// under one purpose, so every RowDescription column can be checked against the plan.
#[derive(Debug, Default)]
pub struct Guard {
    tables: HashMap<u32, GuardTable>,
}

#[derive(Debug)]
enum GuardTable {
    /// A granted table: its protected attributes, and its last attribute number. A column past
    /// that was added after the catalog was read (round 146): its rule is not known, so it is not sent.
    Granted {
        protected: HashMap<i16, ColumnRule>,
        last_attnum: i16,
    },
    Forbidden,
}

impl Guard {
    pub fn build(policy: &PolicySet, purpose: &Purpose, catalog: &Catalog) -> Guard {
        let mut tables = HashMap::new();
        for (_, r) in catalog.relations() {
            if r.is_system() || r.oid == 0 {
                continue;
            }
            let grant = policy.shared.get(&r.name).or_else(|| purpose.tables.get(&r.name));
            let entry = match grant {
                None => GuardTable::Forbidden,
                Some(g) => {
                    let protected: HashMap<i16, ColumnRule> = r
                        .columns
                        .iter()
                        .filter(|c| !g.rule(&c.name).is_allow())
                        .map(|c| (c.attnum, g.rule(&c.name).clone()))
                        .collect();
                    GuardTable::Granted {
                        protected,
                        last_attnum: r.columns.iter().map(|c| c.attnum).max().unwrap_or(0),
                    }
                }
            };
            tables.insert(r.oid, entry);
        }
        Guard { tables }
    }

    /// Whether a result column described with (table OID, attnum) may be sent under `action`.
    pub fn check(
        &self,
        table_oid: u32,
        attnum: i16,
        action: Option<&ColAction>,
        known: impl Fn(u32) -> bool,
    ) -> Result<(), String> {
        if let Some(&(rel, col, _, _)) = CATALOG_ESTIMATES
            .iter()
            .find(|&&(_, _, oid, att)| oid == table_oid && att == attnum)
        {
            return match action {
                Some(ColAction::Mask(m)) if m.mask == Mask::Null => Ok(()),
                _ => Err(format!(
                    "result column {rel}.{col} is an estimate every purpose gets as NULL"
                )),
            };
        }
        if table_oid == 0 || table_oid < crate::catalog::FIRST_NORMAL_OID {
            return Ok(());
        }
        match self.tables.get(&table_oid) {
            None if known(table_oid) => Ok(()),
            None => Err(format!("a result column comes from table OID {table_oid}, unknown to the catalog")),
            Some(GuardTable::Forbidden) => match action {
                Some(ColAction::Drop) => Ok(()),
                _ => Err(format!("a result column comes from table OID {table_oid}, outside the purpose")),
            },
            Some(GuardTable::Granted { protected, last_attnum }) => match (protected.get(&attnum), action) {
                (None, _) if attnum > *last_attnum => Err(format!(
                    "result column {attnum} of table OID {table_oid} is newer than the catalog unscharf has read"
                )),
                (None, _) => Ok(()),
                (Some(ColumnRule::Mask { mask, .. }), Some(ColAction::Mask(m))) if &m.mask == mask => Ok(()),
                (Some(ColumnRule::Drop), Some(ColAction::Drop)) => Ok(()),
                (Some(rule), _) => Err(format!(
                    "result column {attnum} of table OID {table_oid} is protected ({rule}) but the plan does not apply that rule"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::facts::ColRef;
    use crate::policy::decide::MaskAction;

    #[test]
    fn catalog_estimates_must_be_nulled() {
        let g = Guard::default();
        let known = |_| true;
        let mask = |mask| {
            ColAction::Mask(Box::new(MaskAction {
                mask,
                key: None,
                column: ColRef { rel: 0, col: 0 },
            }))
        };
        // pg_class.reltuples (attnum 11) and relpages (10): only a NULL mask may send them.
        assert!(g.check(1259, 11, None, known).is_err());
        assert!(g.check(1259, 10, Some(&ColAction::Pass), known).is_err());
        assert!(g.check(1259, 11, Some(&mask(Mask::Redact)), known).is_err());
        assert!(g.check(1259, 11, Some(&mask(Mask::Null)), known).is_ok());
        // relname (attnum 2) is a plain catalog column.
        assert!(g.check(1259, 2, None, known).is_ok());
    }

    /// Round 146: a column added after the catalog was read has no rule the guard knows; it is
    /// not taken for an allowed one, in a table with protected columns or in one without.
    #[test]
    fn a_column_newer_than_the_catalog_is_not_sent() {
        let catalog =
            crate::catalog::offline::from_schema_sql(include_str!("../../../sample/schema.sql"), "schema.sql").unwrap();
        let policy = crate::policy::load::load_texts(crate::demo::SAMPLE_POLICIES, Some(b"guard")).unwrap();
        let g = Guard::build(&policy, &policy.purposes["billing_hotline"], &catalog);
        let known = |oid| catalog.by_oid(oid).is_some();
        for table in ["customers", "tickets"] {
            let rel = catalog
                .relations()
                .map(|(_, r)| r)
                .find(|r| r.name.schema == "stadtwerke" && r.name.name == table)
                .unwrap();
            let last = rel.columns.iter().map(|c| c.attnum).max().unwrap();
            let first = rel.columns.iter().find(|c| c.attnum == 1).unwrap();
            assert!(
                g.check(rel.oid, 1, Some(&ColAction::Pass), known).is_ok(),
                "{table}.{}",
                first.name
            );
            assert!(
                g.check(rel.oid, last + 1, Some(&ColAction::Pass), known).is_err(),
                "{table}"
            );
        }
    }
}
