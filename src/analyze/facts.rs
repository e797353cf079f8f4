//! What the analyzer learns about a statement: kind, relations, output lineage, column uses by position,
//! whole-row references, functions, writes and settings. Plain data, judged by policy::decide.

use std::fmt;

use crate::catalog::RelId;
use crate::policy::WriteKind;

/// A column of a catalog relation: relation and column index (not attnum) in that snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ColRef {
    pub rel: RelId,
    pub col: u16,
}

/// Where a value comes from. `plain` means it is exactly one column, passed through unchanged
/// (renames through subqueries, CTEs and UNION ALL keep it plain); otherwise it is computed from `cols`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    pub cols: Vec<ColRef>,
    pub plain: bool,
}

impl Lineage {
    pub fn constant() -> Self {
        Lineage::default()
    }

    pub fn column(c: ColRef) -> Self {
        Lineage {
            cols: vec![c],
            plain: true,
        }
    }

    pub fn derived(cols: Vec<ColRef>) -> Self {
        let mut cols = cols;
        cols.sort_unstable();
        cols.dedup();
        Lineage { cols, plain: false }
    }

    pub fn plain_col(&self) -> Option<ColRef> {
        if self.plain {
            self.cols.first().copied()
        } else {
            None
        }
    }
}

/// The clause a column is used in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Clause {
    SelectList,
    Where,
    /// An exact match against a literal or parameter at the top of a WHERE (`col = $1`, `col IN ('a')`).
    WhereLookup,
    JoinOn,
    OrderBy,
    GroupBy,
    Having,
    Window,
    DistinctOn,
    Distinct,
    SetOperation,
    WriteSource,
    Returning,
    FunctionArgument,
    /// The columns a foreign key compares a written value with, in the table it references or in
    /// a table that references the written one.
    ForeignKey,
    Other,
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Clause::SelectList => "the select list",
            Clause::Where => "WHERE",
            Clause::WhereLookup => "a WHERE lookup",
            Clause::JoinOn => "a JOIN condition",
            Clause::OrderBy => "ORDER BY",
            Clause::GroupBy => "GROUP BY",
            Clause::Having => "HAVING",
            Clause::Window => "a window definition",
            Clause::DistinctOn => "DISTINCT ON",
            Clause::Distinct => "DISTINCT",
            Clause::SetOperation => "a set operation",
            Clause::WriteSource => "data written to a table",
            Clause::Returning => "RETURNING",
            Clause::FunctionArgument => "a function argument",
            Clause::ForeignKey => "a foreign key check",
            Clause::Other => "a LIMIT/OFFSET or option expression",
        })
    }
}

/// How a result column is used when it sits beside columns of unknown width: no plan can say which
/// column is which, so it counts as used (and a protected one refuses the statement).
pub const UNALIGNED: &str = "a result beside columns of unknown width (a function in FROM)";

/// One use of a column outside a plain select-list position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub col: ColRef,
    pub clause: Clause,
    /// The construct that consumed it: `lower()`, `LIKE`, `a cast`, `||`, ...
    pub via: String,
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub name: String,
    pub lineage: Lineage,
    /// Named explicitly somewhere (not only reached through `*`): a dropped column then refuses the statement.
    pub explicit: bool,
}

/// The result columns of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outputs {
    /// The statement returns no rows.
    None,
    Known(Vec<Output>),
    /// Rows whose width the analyzer cannot know (e.g. `SELECT *` over a record-returning function).
    Unknown,
}

impl Outputs {
    pub fn known(&self) -> Option<&[Output]> {
        match self {
            Outputs::Known(v) => Some(v),
            _ => None,
        }
    }
}

/// A function call with every schema it may resolve to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncCall {
    /// Name as written, for messages.
    pub written: String,
    /// Lower-cased bare name.
    pub name: String,
    /// Schemas it may resolve to (several when search_path could pick different ones).
    pub schemas: Vec<String>,
}

/// A SET, RESET or set_config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Lower-cased name, e.g. `search_path`, `unscharf.purpose`, `role`, or `all` for RESET ALL.
    pub name: String,
    pub via: &'static str,
}

/// How a statement may change search_path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathChange {
    /// To this list (a literal SET).
    To(Vec<String>),
    /// Back to the session default (RESET, DISCARD ALL, SET ... TO DEFAULT).
    Reset,
    /// To something the analyzer cannot know (set_config with a parameter).
    Unknown,
}

/// Transaction-control statements, with the savepoint's name as Postgres folds it (portals made
/// after a savepoint end at ROLLBACK TO it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxControl {
    Begin,
    Commit,
    Rollback,
    Savepoint(String),
    Release(String),
    RollbackTo(String),
}

/// COPY ... TO STDOUT data format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOut {
    Text {
        delimiter: u8,
        null: Vec<u8>,
        /// A first line of column names (Postgres 15 allows HEADER in text format too).
        header: bool,
    },
    Csv {
        delimiter: u8,
        quote: u8,
        escape: u8,
        null: Vec<u8>,
        header: bool,
    },
    Binary,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Empty,
    Query,
    Insert,
    Update,
    Delete,
    Merge,
    CopyTo(CopyOut),
    CopyFrom,
    Declare {
        name: String,
        /// WITH HOLD: it outlives its transaction, filled at COMMIT.
        hold: bool,
    },
    Fetch {
        name: String,
    },
    Move {
        name: String,
    },
    ClosePortal {
        name: Option<String>,
    },
    Prepare {
        name: String,
    },
    Execute {
        name: String,
    },
    Deallocate {
        name: Option<String>,
    },
    Explain {
        analyze: bool,
        /// Whether the plan shows costs and row estimates (no `COSTS OFF`).
        costs: bool,
    },
    Set,
    Reset,
    Show,
    Transaction(TxControl),
    Listen,
    Discard {
        all: bool,
    },
    /// CREATE TABLE AS or SELECT INTO: DDL, refused; judged first for the data it would copy.
    CreateTableAs,
}

impl Kind {
    /// Whether Postgres evaluates expressions for it (settings, transaction control, LISTEN,
    /// DISCARD and closing or moving through a cursor do not; FETCH runs a plan made before).
    pub fn evaluates_expressions(&self) -> bool {
        !matches!(
            self,
            Kind::Empty
                | Kind::Fetch { .. }
                | Kind::Move { .. }
                | Kind::ClosePortal { .. }
                | Kind::Deallocate { .. }
                | Kind::Set
                | Kind::Reset
                | Kind::Show
                | Kind::Transaction(_)
                | Kind::Listen
                | Kind::Discard { .. }
        )
    }

    /// The prepared statement or cursor a statement creates, runs or removes.
    pub fn object_name(&self) -> Option<&str> {
        match self {
            Kind::Declare { name, .. }
            | Kind::Fetch { name }
            | Kind::Move { name }
            | Kind::Prepare { name }
            | Kind::Execute { name } => Some(name),
            Kind::ClosePortal { name } | Kind::Deallocate { name } => name.as_deref(),
            _ => None,
        }
    }

    /// COMMIT, ROLLBACK and ROLLBACK TO may undo SET (LOCAL) search_path of the transaction block.
    pub fn may_revert_settings(&self) -> bool {
        matches!(
            self,
            Kind::Transaction(TxControl::Commit | TxControl::Rollback | TxControl::RollbackTo(_))
        )
    }
}

/// Everything decide() needs about one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementFacts {
    pub kind: Kind,
    /// Relations read or written, each once.
    pub relations: Vec<RelId>,
    pub writes: Vec<(RelId, WriteKind)>,
    /// Relations the statement reads rows or keys of: named in a FROM list or a subquery, passed to
    /// a sequence function, or the target of INSERT … ON CONFLICT. A write target alone is not.
    pub read_from: Vec<RelId>,
    pub outputs: Outputs,
    pub uses: Vec<Use>,
    /// Whole-row references: the columns they expose and how they were written.
    pub whole_rows: Vec<(Vec<ColRef>, String)>,
    /// Relations it reads something of that tells about all their rows, hidden ones included, and
    /// what: `ctid`, where a row lies after the rows before it (round 259 CR1), or a sequence's
    /// last value, which counts every insert (round 261 CT2).
    pub row_tells: Vec<(RelId, &'static str)>,
    pub functions: Vec<FuncCall>,
    pub settings: Vec<Setting>,
    pub path_change: Option<PathChange>,
    /// Every search_path value it sets by a literal, whichever the session keeps (two
    /// set_config calls make `path_change` Unknown; round 149 set one foreign value that way).
    pub set_paths: Vec<Vec<String>>,
    /// Unqualified names were resolved against search_path (a path change invalidates cached analysis).
    pub uses_search_path: bool,
    /// The search_path values it was analyzed under, when `uses_search_path` (and for EXECUTE):
    /// Postgres analyzes a prepared statement again when search_path has changed since. Also when
    /// it runs a DBA's code, which resolves its names on them.
    /// Shared between the statements of a message (round 143: copied into each, 6,000 statements
    /// of a message held gigabytes).
    pub paths: std::sync::Arc<Vec<Vec<String>>>,
    /// It may run code of the DBA's: a function it calls, or one Postgres runs for a relation it
    /// reaches or an expression it evaluates (see analyze::message::runs_dba_code).
    pub runs_dba_code: bool,
    /// A query of it locks the rows it reads (`FOR UPDATE`, `FOR SHARE`, …), which blocks other
    /// sessions' writes of them.
    pub locks_rows: bool,
    /// The tables it locks rows of by name (`FOR UPDATE OF t`), when `locks_rows` is false.
    pub locks_only: Vec<RelId>,
    /// Columns a write sets (INSERT's and COPY FROM's targets, UPDATE's SET).
    pub written_cols: Vec<ColRef>,
    /// Every type the statement casts to or declares (folded name parts), checked again against
    /// the catalog in force whenever the statement is judged.
    pub cast_types: Vec<Vec<String>>,
    /// Columns any select list computes from, at any level: the rows a plan carries through its
    /// hashes and sorts, whose sizes EXPLAIN ANALYZE reports.
    pub selected: Vec<ColRef>,
    /// `col = ANY($n)` lookups: (n, col). The array's length is known only once the value is bound.
    pub array_lookups: Vec<(usize, ColRef)>,
    /// Values each column is looked up against in this statement, a bound array counting as one
    /// until it is bound (see MAX_LOOKUP_VALUES).
    pub looked_up: Vec<(ColRef, usize)>,
    /// For PREPARE: the kind of the statement it prepares, which a later EXECUTE or Bind runs.
    pub prepared_kind: Option<Box<Kind>>,
    /// EXECUTE's arguments: how many elements each is, when it is a literal array.
    pub execute_arrays: Vec<Option<usize>>,
    /// The statement's text with every literal replaced by `?`, for audit records of the extended
    /// protocol's Bind, Describe and Execute, which carry no SQL of their own.
    pub statement: String,
}

impl StatementFacts {
    /// Every column the statement reads: its uses, plain selections, outputs' lineage and whole
    /// rows.
    pub fn columns_read(&self) -> impl Iterator<Item = &ColRef> {
        let outputs = self
            .outputs
            .known()
            .unwrap_or_default()
            .iter()
            .flat_map(|o| &o.lineage.cols);
        self.uses
            .iter()
            .map(|u| &u.col)
            .chain(&self.selected)
            .chain(outputs)
            .chain(self.whole_rows.iter().flat_map(|(cols, _)| cols))
    }

    /// Whether the statement runs a function `pick` (schema, name) chooses: one it calls, or one
    /// behind a relation it reaches (a view, policy, trigger, default, rule).
    pub fn runs_function(&self, catalog: &crate::catalog::Catalog, pick: impl Fn(&str, &str) -> bool) -> bool {
        self.functions
            .iter()
            .any(|c| c.schemas.iter().any(|s| pick(s, &c.name)))
            || self.relations.iter().any(|&r| {
                catalog.reached(catalog.rel(r).oid).any(|o| {
                    catalog
                        .hidden_calls
                        .get(&o)
                        .is_some_and(|calls| calls.iter().any(|c| pick(&c.func.schema, &c.func.name)))
                })
            })
    }

    /// Whether the statement writes one of `tables` (by OID), or a relation in front of one.
    pub fn writes_into(&self, catalog: &crate::catalog::Catalog, tables: &ahash::AHashSet<u32>) -> bool {
        !tables.is_empty()
            && self
                .writes
                .iter()
                .any(|(r, _)| catalog.reached(catalog.rel(*r).oid).any(|o| tables.contains(&o)))
    }

    /// About the bytes it keeps, for the analysis cache's bound: its size follows what the
    /// statement expands to, not its text (round 135: a 485-byte statement kept 3 MB).
    pub fn weight(&self) -> usize {
        const SLOT: usize = 16;
        let outputs: usize = match &self.outputs {
            Outputs::Known(o) => o.iter().map(|o| 64 + o.name.len() + SLOT * o.lineage.cols.len()).sum(),
            _ => 0,
        };
        let uses: usize = self.uses.iter().map(|u| 48 + u.via.len()).sum();
        let whole: usize = self.whole_rows.iter().map(|(c, w)| 48 + w.len() + SLOT * c.len()).sum();
        let functions: usize = self
            .functions
            .iter()
            .map(|f| 96 + f.written.len() + f.name.len() + f.schemas.iter().map(|s| 24 + s.len()).sum::<usize>())
            .sum();
        let lists = self.relations.len()
            + self.writes.len()
            + self.read_from.len()
            + self.locks_only.len()
            + self.written_cols.len()
            + self.selected.len()
            + self.array_lookups.len()
            + self.looked_up.len()
            + self.execute_arrays.len()
            + self.settings.len() * 4
            + self.cast_types.iter().map(Vec::len).sum::<usize>() * 2
            + self.paths.iter().map(Vec::len).sum::<usize>() * 2;
        512 + self.statement.len() + outputs + uses + whole + functions + SLOT * lists
    }

    /// What a PREPARE leaves under its name: the prepared statement, of the kind it runs as
    /// (a Bind of the name runs it, and charges, tracks and judges it as that kind).
    pub fn prepared(&self) -> StatementFacts {
        let mut f = self.clone();
        if let Some(k) = f.prepared_kind.take() {
            f.kind = *k;
        }
        f
    }

    pub fn new(kind: Kind) -> Self {
        StatementFacts {
            kind,
            relations: Vec::new(),
            writes: Vec::new(),
            read_from: Vec::new(),
            outputs: Outputs::None,
            uses: Vec::new(),
            whole_rows: Vec::new(),
            row_tells: Vec::new(),
            functions: Vec::new(),
            settings: Vec::new(),
            path_change: None,
            set_paths: Vec::new(),
            uses_search_path: false,
            runs_dba_code: false,
            locks_rows: false,
            locks_only: Vec::new(),
            paths: Default::default(),
            written_cols: Vec::new(),
            cast_types: Vec::new(),
            selected: Vec::new(),
            array_lookups: Vec::new(),
            looked_up: Vec::new(),
            prepared_kind: None,
            execute_arrays: Vec::new(),
            statement: String::new(),
        }
    }

    pub(crate) fn touch(&mut self, rel: RelId) {
        if !self.relations.contains(&rel) {
            self.relations.push(rel);
        }
    }

    pub(crate) fn read(&mut self, rel: RelId) {
        self.touch(rel);
        if !self.read_from.contains(&rel) {
            self.read_from.push(rel);
        }
    }
}

/// The analysis of one client message (a simple Query may hold several statements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub statements: Vec<std::sync::Arc<StatementFacts>>,
    /// Some literal decided the outcome (set_config's name, ORDER BY 2): cache by exact text only.
    pub literal_sensitive: bool,
}

impl Analysis {
    /// About the bytes it keeps (see `StatementFacts::weight`).
    pub fn weight(&self) -> usize {
        self.statements.iter().map(|f| f.weight()).sum()
    }
}
