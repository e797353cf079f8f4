//! Range entries and name resolution: which FROM item, CTE or outer query a column reference means,
//! following Postgres's rules (innermost level first, USING columns merged, ambiguity is an error).

use super::facts::Lineage;
use super::{AnalyzeError, Analyzer};

/// One column of a FROM item.
#[derive(Debug, Clone)]
pub(super) struct EntryCol {
    pub name: String,
    pub lineage: Lineage,
    pub explicit: bool,
}

/// A FROM item that can be referenced by name: a table, view, CTE, subquery or function.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub alias: String,
    /// The schema, when the item is a relation referenced without alias (allows `schema.table.col`).
    pub schema: Option<String>,
    /// None: a function whose result columns the analyzer cannot see.
    pub cols: Option<Vec<EntryCol>>,
    /// A relation with system columns (a table, materialized view, foreign table or sequence;
    /// a view has none): `xmin`, `ctid` and the rest name them after its own columns.
    pub system: Option<crate::catalog::RelId>,
    /// Inside a JOIN: its columns reach unqualified names only through the join, which has no
    /// system columns, so an unqualified `ctid` there means an outer query's (round 75).
    pub joined: bool,
}

impl Entry {
    /// Whether an unqualified name may mean one of its system columns.
    fn system_unqualified(&self) -> bool {
        self.system.is_some() && !self.joined
    }
}

impl Entry {
    pub fn lineage_cols(&self) -> Vec<super::facts::ColRef> {
        self.cols
            .iter()
            .flatten()
            .flat_map(|c| c.lineage.cols.iter().copied())
            .collect()
    }
}

/// The FROM clause of one query level.
#[derive(Debug, Clone, Default)]
pub(super) struct Level {
    pub entries: Vec<Entry>,
    /// Columns merged by JOIN USING / NATURAL, referenced unqualified.
    pub merged: Vec<EntryCol>,
    /// What `*` expands to, in order; `None` marks a part of unknown width.
    pub star: Vec<Option<EntryCol>>,
}

impl Level {
    /// Its size, the cost of copying it (see `Analyzer::spend_n`).
    pub fn weight(&self) -> usize {
        self.entries.len() + self.merged.len() + self.star.len()
    }
}

/// A query level and the levels around it (for correlated references).
pub(super) struct Scope<'a> {
    pub level: Level,
    pub parent: Option<&'a Scope<'a>>,
}

/// Whether a level has a column of some name (see `Scope::column_here`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Here {
    Yes,
    No,
    Maybe,
}

pub(super) enum Found<'s> {
    Column(&'s EntryCol),
    /// A column of a function result the analyzer cannot see; not a protected column.
    Opaque,
    /// The name matched no column but a FROM item: a whole-row reference.
    WholeRow(&'s Entry),
    /// A system column (one of SYSTEM_COLUMNS) of a relation.
    System(&'static str, &'s Entry),
}

impl<'a> Scope<'a> {
    pub fn new(level: Level, parent: Option<&'a Scope<'a>>) -> Self {
        Scope { level, parent }
    }

    fn levels(&self) -> impl Iterator<Item = &Level> {
        let mut cur = Some(self);
        std::iter::from_fn(move || {
            let s = cur?;
            cur = s.parent;
            Some(&s.level)
        })
    }

    /// What looking up an unqualified name may scan: every level's columns (see `Analyzer::spend_n`).
    fn width(&self) -> usize {
        self.levels().map(Level::weight).sum()
    }

    /// What looking up a qualified name may scan: every level's FROM items, then the widest one's
    /// columns at most.
    fn qualified_width(&self) -> usize {
        self.levels()
            .map(|l| {
                l.entries.len()
                    + l.entries
                        .iter()
                        .map(|e| e.cols.as_ref().map_or(0, Vec::len))
                        .max()
                        .unwrap_or(0)
            })
            .sum()
    }

    /// An unqualified name: the innermost level that has it wins; two candidates in one level is an
    /// error. Each lookup is charged what it may scan, here and in the lookups below, so that no
    /// caller can skip the charge: a 3-byte name in a FROM clause of 150 copies of a 1,024-column
    /// CTE scanned 154,000 columns for one unit (round 139), and `zz[1]` took a path that did not
    /// charge it (round 140).
    pub fn column(&self, a: &mut Analyzer<'_>, name: &str) -> Result<Option<Found<'_>>, AnalyzeError> {
        a.spend_n(self.width())?;
        self.column_in(name)
    }

    fn column_in(&self, name: &str) -> Result<Option<Found<'_>>, AnalyzeError> {
        let system = system_name(name);
        for (depth, level) in self.levels().enumerate() {
            let system_here = system.filter(|_| level.entries.iter().any(|e| e.system_unqualified()));
            if let Some(m) = level.merged.iter().find(|c| c.name == name) {
                // A join's merged column and a table's system column of one name: which one
                // Postgres takes is not worth modelling.
                if system_here.is_some() {
                    return Err(AnalyzeError::Ambiguous(name.to_owned()));
                }
                return Ok(Some(Found::Column(m)));
            }
            let mut found: Option<Found> = None;
            let mut unknown = false;
            let mut unsure: Option<&EntryCol> = None;
            let mut unsure_count = 0;
            for e in &level.entries {
                match &e.cols {
                    None => unknown = true,
                    Some(cols) => {
                        for c in cols.iter().filter(|c| c.name == super::names::UNSURE) {
                            unsure_count += 1;
                            unsure = unsure.or(Some(c));
                        }
                        // Postgres looks at an item's own columns, then at its system columns.
                        let mut hits = cols.iter().filter(|c| c.name == name);
                        let hit = match (hits.next(), system.filter(|_| e.system_unqualified())) {
                            (Some(c), _) => Some(Found::Column(c)),
                            (None, Some(s)) => Some(Found::System(s, e)),
                            (None, None) => None,
                        };
                        if let Some(hit) = hit {
                            if found.is_some() || hits.next().is_some() {
                                return Err(AnalyzeError::Ambiguous(name.to_owned()));
                            }
                            found = Some(hit);
                        }
                    }
                }
            }
            if let Some(f) = found {
                return Ok(Some(f));
            }
            if unknown || unsure.is_some() {
                system_column(name)?;
            }
            // A column whose name only Postgres knows may be this one: take its lineage, unless
            // the name could as well mean another such column, or something further out.
            if unsure_count > 1 || (unsure.is_some() && unknown) {
                return Err(AnalyzeError::Ambiguous(format!(
                    "{name} (possibly one of several subquery columns whose names unscharf cannot work out)"
                )));
            }
            if let Some(c) = unsure {
                if self.known_beyond(depth, name) {
                    return Err(AnalyzeError::Ambiguous(format!(
                        "{name} (possibly a subquery column whose name unscharf cannot work out)"
                    )));
                }
                return Ok(Some(Found::Column(c)));
            }
            if unknown {
                // Postgres takes the name from the function only if the function has such a
                // column, else it looks further out. unscharf cannot see which, so the name may
                // not mean anything further out (an outer column, or a whole row).
                if self.known_beyond(depth, name) {
                    return Err(AnalyzeError::Ambiguous(format!(
                        "{name} (a column of a function in FROM whose columns unscharf cannot see, or something outside it)"
                    )));
                }
                return Ok(Some(Found::Opaque));
            }
        }
        for level in self.levels() {
            if let Some(e) = level.entries.iter().find(|e| e.alias == name) {
                return Ok(Some(Found::WholeRow(e)));
            }
        }
        Ok(None)
    }

    /// Whether this level's own FROM items have a column `name` (GROUP BY looks there first, then
    /// at the select list, and only then further out): Yes, No, or Maybe (a function whose
    /// columns unscharf cannot see, or a column whose name it cannot work out).
    pub fn column_here(&self, a: &mut Analyzer<'_>, name: &str) -> Result<Here, AnalyzeError> {
        a.spend_n(self.level.weight())?;
        Ok(self.here_in(name))
    }

    fn here_in(&self, name: &str) -> Here {
        let definite = self.level.merged.iter().any(|c| c.name == name)
            || self.level.entries.iter().any(|e| {
                e.cols.iter().flatten().any(|c| c.name == name)
                    || (e.system_unqualified() && system_name(name).is_some())
            });
        if definite {
            return Here::Yes;
        }
        let maybe = self.level.entries.iter().any(|e| match &e.cols {
            None => true,
            Some(cols) => cols.iter().any(|c| c.name == super::names::UNSURE),
        });
        if maybe {
            Here::Maybe
        } else {
            Here::No
        }
    }

    /// Whether `name` may name a column of a level outside `depth` (one of that name, one whose
    /// name unscharf cannot work out, or one of a function it cannot see), or any FROM item (a
    /// whole row).
    fn known_beyond(&self, depth: usize, name: &str) -> bool {
        self.levels().enumerate().any(|(d, level)| {
            level.entries.iter().any(|e| e.alias == name)
                || (d > depth
                    && (level.merged.iter().any(|c| c.name == name)
                        || level.entries.iter().any(|e| match &e.cols {
                            None => true,
                            Some(cols) => {
                                cols.iter().any(|c| c.name == name || c.name == super::names::UNSURE)
                                    || (e.system_unqualified() && system_name(name).is_some())
                            }
                        })))
        })
    }

    /// A FROM item named by `qual` (`alias`, or `schema.table` for an unaliased relation).
    pub fn entry(&self, a: &mut Analyzer<'_>, qual: &[String]) -> Result<Option<&Entry>, AnalyzeError> {
        a.spend_n(self.levels().map(|l| l.entries.len()).sum())?;
        Ok(self.entry_in(qual))
    }

    fn entry_in(&self, qual: &[String]) -> Option<&Entry> {
        let (schema, alias) = match qual {
            [a] => (None, a),
            [.., s, a] => (Some(s), a),
            [] => return None,
        };
        self.levels().find_map(|level| {
            level.entries.iter().find(|e| {
                &e.alias == alias
                    && match schema {
                        None => true,
                        Some(s) => e.schema.as_ref() == Some(s),
                    }
            })
        })
    }

    /// A qualified reference `qual.name`.
    pub fn qualified(
        &self,
        a: &mut Analyzer<'_>,
        qual: &[String],
        name: &str,
    ) -> Result<Option<Found<'_>>, AnalyzeError> {
        a.spend_n(self.qualified_width())?;
        let Some(e) = self.entry_in(qual) else {
            return Ok(None);
        };
        match &e.cols {
            // Where the item has no column `name`, Postgres reads `u.name` as the call `name(u)`
            // (functional notation): `u.ts_stat` ran the query text `u` held (round 27).
            None => Err(AnalyzeError::Unsupported(format!(
                "`{}.{name}`: a column of a function in FROM whose columns unscharf cannot see, or the call {name}({})",
                qual.join("."),
                qual.join(".")
            ))),
            Some(cols) => {
                let mut hits = cols.iter().filter(|c| c.name == name);
                match (hits.next(), hits.next()) {
                    (Some(c), None) => Ok(Some(Found::Column(c))),
                    (Some(_), Some(_)) => Err(AnalyzeError::Ambiguous(format!("{}.{name}", qual.join(".")))),
                    (None, _) => Ok(system_name(name)
                        .filter(|_| e.system.is_some())
                        .map(|s| Found::System(s, e))),
                }
            }
        }
    }
}

/// Columns every table has besides its own (`SELECT xmin FROM t`), which the catalog does not list.
pub(super) const SYSTEM_COLUMNS: &[&str] = &["xmin", "xmax", "cmin", "cmax", "ctid", "tableoid"];

/// Those of them that hold transaction and command ids: counters every session moves, and so a
/// channel between campaigns (round 24).
pub(super) const SYSTEM_COUNTERS: &[&str] = &["xmin", "xmax", "cmin", "cmax"];

fn system_name(name: &str) -> Option<&'static str> {
    SYSTEM_COLUMNS.iter().copied().find(|s| *s == name)
}

/// Refuses a table's system column name where a column unscharf cannot see might be taken for it
/// (a function in FROM, a subquery column without a known name): Postgres reads the table's
/// (rounds 24 and 25; xmin is the server-wide transaction counter).
fn system_column(name: &str) -> Result<(), AnalyzeError> {
    match SYSTEM_COLUMNS.contains(&name) {
        true => Err(AnalyzeError::Unsupported(format!(
            "{name}: a table's system column, or a column whose name unscharf cannot see"
        ))),
        false => Ok(()),
    }
}
