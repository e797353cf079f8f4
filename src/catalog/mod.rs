//! The schema as the analyzer sees it: relations, columns (table OID, attnum, type), functions, schemas.
//! Pure data with lookups; `live` fills it from the upstream, `offline` from a schema file.

mod code;
mod code_lex;
mod code_order;
mod code_reads;
pub mod live;
mod live_code;
pub mod offline;
mod queries;
mod search_path;

pub use code_reads::ANY_TABLE;
pub use search_path::{effective_path, parse_name_array, parse_search_path, truncate_identifier, MAX_PATH_SCHEMAS};

use ahash::{AHashMap as HashMap, AHashSet as HashSet};

use crate::policy::QName;

/// Index of a relation inside one Catalog snapshot.
pub type RelId = u32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub attnum: i16,
    pub type_oid: u32,
    /// Dropped since the relation was first read: kept (see `Catalog::keep_ids_of`) only so that
    /// facts analyzed before still name the right column; no name or `*` reaches it.
    pub dropped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    Table,
    View,
    MaterializedView,
    Foreign,
    Sequence,
    Other,
}

impl RelKind {
    pub fn from_relkind(c: char) -> RelKind {
        match c {
            'r' | 'p' => RelKind::Table,
            'v' => RelKind::View,
            'm' => RelKind::MaterializedView,
            'f' => RelKind::Foreign,
            'S' => RelKind::Sequence,
            _ => RelKind::Other,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Relation {
    pub oid: u32,
    pub name: QName,
    pub kind: RelKind,
    pub columns: Vec<Column>,
    /// The columns (attnums) each index (unique or not), primary key or exclusion constraint
    /// compares or keeps, with those its expressions and predicate read: a write into one is
    /// compared with every stored row, or stored beside the others in an entry of bounded size.
    pub unique_keys: Vec<Vec<i16>>,
    /// Its foreign keys: a write into one is compared with the referenced table's rows.
    pub foreign_keys: Vec<ForeignKey>,
    /// The columns (attnums) each CHECK constraint reads: an UPDATE that sets one of them has the
    /// constraint compare it with the stored row's others, and a violation tells about them.
    pub checks: Vec<Vec<i16>>,
    /// STORED generated columns (attnum) with the columns their expression reads: a write into
    /// one of those computes it anew, so it counts as written too.
    pub generated: Vec<(i16, Vec<i16>)>,
    /// A view with security_barrier: Postgres runs a statement's conditions on it only after the
    /// view's own, except leakproof ones.
    pub barrier: bool,
    /// Row-level security is enabled: its policies hide rows.
    pub row_security: bool,
    /// Row-level UPDATE and DELETE triggers whose WHEN condition reads the row, and built-in
    /// BEFORE trigger functions (which read all of it): whether they fire, skip the row or raise
    /// depends on the stored values, whatever the statement sets (round 141).
    pub row_triggers: Vec<RowTrigger>,
}

/// A row-level trigger that reads the stored row (see `Relation::row_triggers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowTrigger {
    /// Its name, for refusals.
    pub name: String,
    /// The columns (attnums) it reads.
    pub reads: Vec<i16>,
    /// It fires on UPDATE / on DELETE.
    pub on_update: bool,
    pub on_delete: bool,
    /// `UPDATE OF` these columns (attnums): on UPDATE it fires only when the statement sets one.
    pub update_of: Vec<i16>,
}

/// A function a statement on a relation runs without naming it: one a view, rule or row-level
/// security policy calls, or (`on_write`) a trigger's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiddenCall {
    pub func: QName,
    /// What calls it: `the trigger t`, `the view or rule _RETURN`, …
    pub what: String,
    pub on_write: bool,
}

/// A foreign key: `cols` (attnums) reference `target_cols` of the relation with OID `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub cols: Vec<i16>,
    pub target: u32,
    pub target_cols: Vec<i16>,
    /// pg_constraint's confdeltype and confupdtype: `a` no action, `r` restrict, `c` cascade,
    /// `n` set null, `d` set default.
    pub on_delete: char,
    pub on_update: char,
}

impl ForeignKey {
    /// What a DELETE (`delete`) or an UPDATE of the referenced key does to the referencing
    /// table: writes into it, for CASCADE, SET NULL and SET DEFAULT.
    pub fn writes_back(&self, delete: bool) -> Option<crate::policy::WriteKind> {
        use crate::policy::WriteKind;
        match (if delete { self.on_delete } else { self.on_update }, delete) {
            ('c', true) => Some(WriteKind::Delete),
            ('c', false) | ('n' | 'd', _) => Some(WriteKind::Update),
            _ => None,
        }
    }
}

impl Relation {
    /// The index in `columns` of the column with attribute number `attnum`: constraints, keys and
    /// triggers name columns by attnum, facts by index.
    pub fn attnum_index(&self, attnum: i16) -> Option<usize> {
        self.columns.iter().position(|c| c.attnum == attnum)
    }

    /// The names of the columns `*` and a missing column list mean, in order (dropped ones left out).
    pub fn column_names(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| !c.dropped)
            .map(|c| c.name.clone())
            .collect()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name && !c.dropped)
    }

    /// A system catalog: in pg_catalog or information_schema, and made by initdb. A relation a
    /// DBA or an extension puts there (OID from FirstNormalObjectId on) is an ordinary one that a
    /// purpose must grant (round 96).
    pub fn is_system(&self) -> bool {
        is_system_schema(&self.name.schema) && self.oid < FIRST_NORMAL_OID
    }
}

/// Postgres's FirstNormalObjectId: objects initdb makes have lower OIDs, everything created
/// afterwards (by a DBA, or by CREATE EXTENSION) this or a higher one.
pub const FIRST_NORMAL_OID: u32 = 16384;

pub fn is_system_schema(schema: &str) -> bool {
    schema == "pg_catalog" || schema == "information_schema"
}

/// One consistent snapshot of the upstream schema.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Bumped on every refresh that finds a change; analysis caches key on it.
    pub generation: u64,
    /// A hash of what was read (relations, columns, functions, schemas and their privileges,
    /// operators, sequences, role memberships); 0 offline.
    pub fingerprint: u64,
    relations: Vec<Relation>,
    by_name: HashMap<QName, RelId>,
    by_oid: HashMap<u32, RelId>,
    by_bare_name: HashMap<String, Vec<RelId>>,
    /// Function name → schemas that define a function of that name.
    functions: HashMap<String, Vec<String>>,
    /// Every column name, built at the first `knows_word`.
    column_words: std::sync::OnceLock<HashSet<String>>,
    schemas: HashSet<String>,
    /// Operators defined outside pg_catalog, or in it by a DBA or an extension (they may run
    /// user code).
    pub user_operators: HashSet<String>,
    /// For each of those, the schemas other than pg_catalog that define one: an unqualified
    /// operator finds only those on search_path (round 150: citext in a schema of its own refused
    /// every `=`). A symbol missing here counts as visible everywhere.
    pub operator_schemas: HashMap<String, Vec<String>>,
    /// Names of operators a DBA or an extension put into pg_catalog: `OPERATOR(pg_catalog.op)`
    /// may reach one of them too (round 96).
    pub dba_system_operators: HashSet<String>,
    /// Functions a DBA or an extension put into pg_catalog or information_schema (`CREATE
    /// EXTENSION xml2 SCHEMA pg_catalog`, round 96): not built-in, whatever their schema, so a
    /// purpose must list them (rule 7). A name that is also a built-in's counts as theirs.
    pub dba_system_functions: HashSet<QName>,
    /// Types a cast to which, or a comparison or sort of which, may run code a DBA wrote: the
    /// targets of casts whose function lies outside pg_catalog, domains outside pg_catalog (their
    /// CHECKs), types whose default operator class has a function outside pg_catalog, range types
    /// whose canonical, subtype_diff or subtype operator class's functions lie outside pg_catalog
    /// (rounds 82 and 83), types whose own support functions (input, output, type modifier, …)
    /// are written in SQL or a procedural language rather than C (round 85: a PL/pgSQL typmod_in
    /// ran at `'1'::t(5)`), and every
    /// array, domain, range or composite type (a table's row type too) built on one of those.
    pub user_cast_types: HashSet<QName>,
    /// Their OIDs, for the parameter types of a Parse message.
    pub user_cast_type_oids: HashSet<u32>,
    /// Relations with partitions or child tables, each with all of them below it (by OID): a
    /// statement on the parent reads and writes their rows too.
    pub descendants: HashMap<u32, Vec<u32>>,
    /// Relations whose views', rules' or row-level security policies' queries read other
    /// relations, with those (by OID).
    pub view_bases: HashMap<u32, Vec<u32>>,
    /// Views and materialized views (by OID) with the columns their queries read of the relations
    /// below them (OID, attnum), for `check --live` (see `queries::VIEW_COLUMN_READS`).
    pub view_column_reads: HashMap<u32, Vec<(u32, i16)>>,
    /// Views (by OID) that read tables with row-level security (OIDs) as an owner (named) whose
    /// policies do not apply to it, for `check --live` (see `queries::RLS_SKIPPED`).
    pub rls_skipped: HashMap<u32, Vec<(u32, String)>>,
    /// Every login of the server with the roles it is a member of (itself included): for the
    /// warning about logins in several purposes at start and reload.
    pub login_roles: std::collections::HashMap<String, Vec<String>>,
    /// The rules on INSERT, UPDATE or DELETE of a relation (by OID), by name.
    pub write_rules: HashMap<u32, Vec<String>>,
    /// Functions a statement on a relation runs without naming them (by the relation's OID).
    pub hidden_calls: HashMap<u32, Vec<HiddenCall>>,
    /// Functions outside pg_catalog that Postgres runs without a statement naming them, each with
    /// what runs it: an implicit cast (`an implicit cast integer → text`), applied wherever a
    /// value of its source type is coerced (`lower(1)`), or the default operator class of a
    /// built-in type (`json`), used by every sort, grouping and DISTINCT of such values.
    pub implicit_code: Vec<(QName, String)>,
    /// Sequences, with the table that owns each (a serial or identity column), if any.
    sequences: HashMap<QName, Option<RelId>>,
    /// Sequences the column defaults of a relation (by OID) draw from.
    pub default_sequences: HashMap<u32, Vec<QName>>,
    /// Columns (relation OID, attnum) whose own default draws from a sequence, or identity columns.
    pub sequence_columns: HashSet<(u32, i16)>,
    /// For each table name (lower-cased, unqualified) the DBA's code writes into: the words of
    /// that code, and whether it writes a row without naming its columns (see `code::writers`).
    pub code_writers: HashMap<String, (HashSet<String>, bool)>,
    /// Sequences whose name a DBA function's source holds.
    pub sequences_in_code: HashSet<QName>,
    /// A DBA's functions whose code names a sequence, or calls one that does (see catalog::code).
    pub sequence_functions: HashSet<QName>,
    /// The row-level security policies of a relation (by OID), each with a column it reads (the
    /// OID of that column's relation, its attnum): a filter on it, in every statement on the
    /// relation.
    pub policy_columns: HashMap<u32, Vec<(String, u32, i16)>>,
    /// The relations (by OID) that the DBA code a write of a relation runs reads, each with what
    /// runs it: a trigger, CHECK constraint, default or index function, through whatever it calls
    /// (see `catalog::code::reached_reads`). Its own OID stands for its stored rows.
    pub write_reads: HashMap<u32, Vec<(String, u32)>>,
    /// The tables (by OID) a DBA's function writes, itself or through what it calls: a purpose
    /// that lists it may write them, whatever its `write:` grants (round 145).
    pub function_writes: HashMap<QName, Vec<u32>>,
    /// Every word of the DBA's functions and views (see `catalog::code::all_words`): the table
    /// names their code may resolve on search_path.
    pub code_words: HashSet<String>,
    /// Some code of the DBA's builds SQL at run time (see `code_reads::DYNAMIC_WORDS`): it may
    /// resolve any table name on search_path.
    pub dynamic_code: bool,
    /// The event triggers as the snapshot saw them (`live::event_triggers`), for the catalog
    /// watch to compare with: creating or enabling one fires no event trigger.
    pub event_triggers: String,
    /// The functions that build SQL at run time, or call one that does, at any depth: the names
    /// they build resolve on whatever path is in force (round 150: `SET TimeZone` moved `now()` into
    /// a month whose table only another campaign had).
    pub dynamic_functions: HashSet<crate::policy::QName>,
    /// The words of those functions' code: the prefixes of the names they may build.
    pub dynamic_words: HashSet<String>,
    /// Those of them that also read a setting, which the session may set to anything: the SQL
    /// they build is the agent's to choose (round 153: a tenant's schema from `app.tenant`).
    pub steerable_functions: HashSet<crate::policy::QName>,
    /// The server's TimeZone, DateStyle and IntervalStyle (lower-cased names), as a session that
    /// sets none gets them: what the clock in a DBA's row filters is read with (see
    /// policy::decide::clock). Empty offline.
    pub clock_defaults: Vec<(String, String)>,
    /// Row filters (row-level security policies, views' and rules' queries) whose result depends
    /// on the session's settings, by relation OID: what filters and what in it depends (see
    /// policy::decide::clock).
    pub session_filters: HashMap<u32, Vec<(String, String)>>,
    /// Row filters whose result depends on search_path (a name printed from a `regclass`,
    /// `to_regclass`, `current_schema`), by relation OID: what filters and what in it depends.
    pub path_filters: HashMap<u32, Vec<(String, String)>>,
    /// Row-level security policies that take rows in the order a plan reads them (`LIMIT`
    /// without a full order, `string_agg`, …), by relation OID: what filters and what in it does.
    pub order_filters: HashMap<u32, Vec<(String, String)>>,
    /// A DBA's functions whose code changes settings (`set_config`, a `SET` statement, SQL built
    /// at run time), or calls one that does: a call may move the session's settings.
    pub setting_functions: HashSet<crate::policy::QName>,
    /// Of those, the ones that set a setting named only when they run (`set_config(p_name, …)`),
    /// and the code that calls them: a call could set any setting (see `code_reads::sets_settings_by_name`).
    pub name_setters: HashSet<crate::policy::QName>,
    /// The tables (by OID) whose writes may run code of `setting_functions` / `name_setters`:
    /// their triggers, defaults or checks, code those write through, or a foreign key's cascade
    /// into such a table (see `code_reads::close_over_writes`).
    pub setting_tables: HashSet<u32>,
    pub name_setting_tables: HashSet<u32>,
    /// The DBA's functions that may close, open or fetch from cursors (or build SQL that may), and
    /// the code that calls them: a statement that runs one leaves every portal of the session
    /// unknown (see `code_order::handles_cursors`).
    pub cursor_functions: HashSet<crate::policy::QName>,
    /// Names of extensions and procedural languages: the prefixes of their dotted settings.
    pub setting_prefixes: HashSet<String>,
    /// The DBA's functions whose results may carry whole rows of relations (their result type or
    /// an OUT parameter's holds the relation's row type): the relations' OIDs, by function name.
    pub row_results: HashMap<crate::policy::QName, Vec<u32>>,
    /// The types that hold a relation's row type (the row type itself, arrays, domains, ranges,
    /// composites with such a field), by bare type name: their schemas and the relations' OIDs.
    pub row_types: HashMap<String, Vec<(String, u32)>>,
    /// The same types by OID, with the relations' OIDs: a column of one holds whole rows.
    pub row_type_oids: HashMap<u32, Vec<u32>>,
}

impl Catalog {
    /// Whether a cast to the type named `parts` (folded; unqualified means any schema) may run
    /// code a DBA wrote.
    pub fn cast_may_run_user_code(&self, parts: &[String]) -> bool {
        match parts {
            [name] => self.user_cast_types.iter().any(|t| &t.name == name),
            [.., schema, name] => self.user_cast_types.contains(&QName::new(schema, name)),
            [] => false,
        }
    }

    pub fn add_schema(&mut self, schema: &str) {
        self.schemas.insert(schema.to_owned());
    }

    pub fn add_relation(&mut self, rel: Relation) -> RelId {
        let id = self.relations.len() as RelId;
        self.schemas.insert(rel.name.schema.clone());
        self.by_name.insert(rel.name.clone(), id);
        if rel.oid != 0 {
            self.by_oid.insert(rel.oid, id);
        }
        self.by_bare_name.entry(rel.name.name.clone()).or_default().push(id);
        self.relations.push(rel);
        id
    }

    /// The foreign keys of other relations (and of `rel` itself) that reference `rel`.
    pub fn referencing(&self, rel: RelId) -> Vec<(RelId, &ForeignKey)> {
        let oid = self.relations[rel as usize].oid;
        self.relations
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.foreign_keys.iter().map(move |fk| (i as RelId, fk)))
            .filter(|(_, fk)| fk.target == oid && oid != 0)
            .collect()
    }

    /// Every relation whose rows a statement on `oid` reaches besides its own: partitions and
    /// child tables, and the relations behind views, followed through each other.
    /// The relation itself (by OID), then what lies behind it (see `behind`).
    pub fn reached(&self, oid: u32) -> impl Iterator<Item = u32> {
        std::iter::once(oid).chain(self.behind(oid))
    }

    /// A foreign table a statement on the relation reaches, itself or behind it: its rows come
    /// from a server unscharf cannot see (round 98).
    pub fn foreign_behind(&self, oid: u32) -> Option<&Relation> {
        self.reached(oid)
            .filter_map(|o| self.by_oid(o))
            .map(|id| self.rel(id))
            .find(|r| r.kind == RelKind::Foreign)
    }

    pub fn behind(&self, oid: u32) -> Vec<u32> {
        self.walk(oid, true)
    }

    /// The relations a statement on `oid` reads as relations of their own, whose row-level
    /// security therefore applies: those behind views and policies, followed through each other,
    /// but not a table's partitions and children, which Postgres reads under the parent's policies
    /// alone (round 250 CI2: a child's policy on the birth date refused every read of the parent).
    pub fn read_as_own(&self, oid: u32) -> impl Iterator<Item = u32> {
        std::iter::once(oid).chain(self.walk(oid, false))
    }

    fn walk(&self, oid: u32, descend: bool) -> Vec<u32> {
        let mut seen = vec![oid];
        let mut i = 0;
        while i < seen.len() {
            let here = seen[i];
            let next = self
                .descendants
                .get(&here)
                .filter(|_| descend)
                .into_iter()
                .chain(self.view_bases.get(&here));
            for &n in next.flatten() {
                if !seen.contains(&n) {
                    seen.push(n);
                }
            }
            i += 1;
        }
        seen.split_off(1)
    }

    pub fn add_foreign_key(&mut self, rel: RelId, fk: ForeignKey) {
        self.relations[rel as usize].foreign_keys.push(fk);
    }

    /// Records a unique index of `rel` over the columns named `cols` (names it does not have are
    /// left out; see `Relation::unique_keys`).
    pub fn add_unique_key(&mut self, rel: RelId, cols: &[String]) {
        let r = &mut self.relations[rel as usize];
        let key: Vec<i16> = cols
            .iter()
            .filter_map(|n| r.columns.iter().find(|c| &c.name == n).map(|c| c.attnum))
            .collect();
        if !key.is_empty() {
            r.unique_keys.push(key);
        }
    }

    pub fn add_sequence(&mut self, name: QName, owner: Option<RelId>) {
        self.schemas.insert(name.schema.clone());
        self.sequences.insert(name, owner);
    }

    /// A sequence by name: Some(owner) when it exists, the owner being its table, if any.
    pub fn sequence(&self, q: &QName) -> Option<Option<RelId>> {
        self.sequences.get(q).copied()
    }

    /// Whether some schema has a sequence named `name`.
    pub fn has_sequence_named(&self, name: &str) -> bool {
        self.sequences.keys().any(|q| q.name == name)
    }

    pub fn add_function(&mut self, schema: &str, name: &str) {
        // A schema of functions alone is searched like any other (round 21).
        if !self.schemas.contains(schema) {
            self.schemas.insert(schema.to_owned());
        }
        let schemas = self.functions.entry(name.to_owned()).or_default();
        if !schemas.iter().any(|s| s == schema) {
            schemas.push(schema.to_owned());
        }
    }

    pub fn rel(&self, id: RelId) -> &Relation {
        &self.relations[id as usize]
    }

    pub fn relations(&self) -> impl Iterator<Item = (RelId, &Relation)> {
        self.relations.iter().enumerate().map(|(i, r)| (i as RelId, r))
    }

    /// The relations that exist now, without the tombstones `keep_ids_of` keeps of dropped ones
    /// (round 152: a dropped table still shadowed another campaign's of the same name on a path).
    pub fn live_relations(&self) -> impl Iterator<Item = (RelId, &Relation)> {
        self.relations().filter(|(id, r)| self.by_name.get(&r.name) == Some(id))
    }

    pub fn lookup(&self, q: &QName) -> Option<RelId> {
        self.by_name.get(q).copied()
    }

    pub fn by_oid(&self, oid: u32) -> Option<RelId> {
        self.by_oid.get(&oid).copied()
    }

    pub fn has_schema(&self, schema: &str) -> bool {
        self.schemas.contains(schema)
    }

    /// Relations named `name` in any schema.
    pub fn named(&self, name: &str) -> &[RelId] {
        self.by_bare_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every schema with a relation, a sequence or a function in it.
    pub fn all_schemas(&self) -> impl Iterator<Item = &str> {
        self.schemas.iter().map(String::as_str)
    }

    /// Whether a schema other than pg_catalog defines a function called `name`, which then may
    /// shadow the built-in of that name through search_path.
    pub fn function_outside_pg_catalog(&self, name: &str) -> bool {
        self.function_schemas(name).iter().any(|s| s != "pg_catalog")
    }

    /// Whether `word` (folded) names a relation, schema, function or column the catalog knows: what
    /// an audit record keeps of a statement's words (see `audit::event::scrub_words`).
    pub fn knows_word(&self, word: &str) -> bool {
        !self.named(word).is_empty()
            || self.has_schema(word)
            || !self.function_schemas(word).is_empty()
            || self
                .column_words
                .get_or_init(|| {
                    self.relations
                        .iter()
                        .flat_map(|r| r.columns.iter().map(|c| c.name.clone()))
                        .collect()
                })
                .contains(word)
    }

    /// Schemas defining a function called `name`.
    pub fn function_schemas(&self, name: &str) -> &[String] {
        self.functions.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// `schema.table.column` of an analyzed column reference.
    pub fn column_name(&self, c: crate::analyze::facts::ColRef) -> String {
        let r = self.rel(c.rel);
        format!(
            "{}.{}",
            r.name,
            r.columns.get(c.col as usize).map(|c| c.name.as_str()).unwrap_or("?")
        )
    }

    pub fn function_exists(&self, schema: &str, name: &str) -> bool {
        self.function_schemas(name).iter().any(|s| s == schema)
    }

    /// This (fresh) snapshot rebuilt so that every relation and column of `old` keeps its index:
    /// prepared statements and cursors hold facts that name relations and columns by index
    /// (`RelId`, `ColRef`), analyzed under `old`. Matched by OID and attnum, as Postgres keeps
    /// them: a renamed column keeps its place under its new name. Relations and columns gone since
    /// stay as tombstones no name reaches; new ones are appended.
    pub fn keep_ids_of(mut self, old: &Catalog) -> Catalog {
        let relations = std::mem::take(&mut self.relations);
        let sequences = std::mem::take(&mut self.sequences);
        let fresh_ids: HashMap<u32, RelId> = relations
            .iter()
            .enumerate()
            .filter(|(_, r)| r.oid != 0)
            .map(|(i, r)| (r.oid, i as RelId))
            .collect();
        let mut fresh: Vec<Option<Relation>> = relations.into_iter().map(Some).collect();
        // Everything but the relations and what indexes them carries over as it is.
        let mut out = Catalog {
            by_name: HashMap::default(),
            by_oid: HashMap::default(),
            by_bare_name: HashMap::default(),
            ..self
        };
        let mut live = Vec::new();
        for r in &old.relations {
            let now = fresh_ids.get(&r.oid).and_then(|&i| fresh[i as usize].take());
            match now {
                Some(mut n) => {
                    let mut cols = Vec::with_capacity(n.columns.len().max(r.columns.len()));
                    for c in &r.columns {
                        match n.attnum_index(c.attnum) {
                            Some(i) => cols.push(n.columns.remove(i)),
                            // Dropped: a tombstone that keeps its name for the rules.
                            None => cols.push(Column {
                                dropped: true,
                                ..c.clone()
                            }),
                        }
                    }
                    cols.append(&mut n.columns);
                    n.columns = cols;
                    live.push(out.relations.len());
                    out.relations.push(n);
                }
                None => out.relations.push(r.clone()),
            }
        }
        for n in fresh.into_iter().flatten() {
            live.push(out.relations.len());
            out.relations.push(n);
        }
        for i in live {
            let r = &out.relations[i];
            let id = i as RelId;
            out.by_name.insert(r.name.clone(), id);
            if r.oid != 0 {
                out.by_oid.insert(r.oid, id);
            }
            out.by_bare_name.entry(r.name.name.clone()).or_default().push(id);
        }
        // Sequence owners were indexes into the fresh snapshot: map them through their OIDs.
        let old_fresh: HashMap<RelId, u32> = fresh_ids.iter().map(|(&oid, &id)| (id, oid)).collect();
        out.sequences = sequences
            .into_iter()
            .map(|(q, owner)| {
                let owner = owner
                    .and_then(|id| old_fresh.get(&id))
                    .and_then(|oid| out.by_oid.get(oid).copied());
                (q, owner)
            })
            .collect();
        out
    }

    /// Merges the embedded snapshot of pg_catalog and information_schema (used offline).
    pub fn with_system_snapshot(mut self) -> Catalog {
        offline::add_system_snapshot(&mut self);
        self
    }
}

/// Opens the proxy's metadata connection and reads a snapshot.
pub async fn connect_and_load(config: &crate::config::Config, generation: u64) -> Result<Catalog, live::CatalogError> {
    let client = live::connect(config).await?;
    let mut client = client;
    live::load(&mut client, generation).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(oid: u32, name: &str, cols: &[(&str, i16)]) -> Relation {
        Relation {
            oid,
            name: QName::new("s", name),
            kind: RelKind::Table,
            unique_keys: Vec::new(),
            foreign_keys: Vec::new(),
            checks: Vec::new(),
            generated: Vec::new(),
            barrier: false,
            row_security: false,
            row_triggers: Vec::new(),
            columns: cols
                .iter()
                .map(|(n, a)| Column {
                    name: n.to_string(),
                    attnum: *a,
                    type_oid: 25,
                    dropped: false,
                })
                .collect(),
        }
    }

    /// A refresh must not move relations or columns: facts analyzed before name them by index.
    #[test]
    fn a_refresh_keeps_every_relation_and_column_where_it_was() {
        let mut old = Catalog::default();
        old.add_relation(rel(100, "dropped", &[("x", 1)]));
        let b = old.add_relation(rel(200, "b", &[("b1", 1), ("gone", 2), ("b3", 3)]));
        let c = old.add_relation(rel(300, "c", &[("c1", 1)]));
        let mut fresh = Catalog {
            generation: 2,
            ..Catalog::default()
        };
        fresh.add_relation(rel(200, "b", &[("renamed", 1), ("b3", 3), ("b4", 4)]));
        let d = fresh.add_relation(rel(400, "d", &[("d1", 1)]));
        let c_fresh = fresh.add_relation(rel(300, "c", &[("c1", 1)]));
        fresh.add_sequence(QName::new("s", "d_seq"), Some(d));
        fresh.add_sequence(QName::new("s", "c_seq"), Some(c_fresh));
        let now = fresh.keep_ids_of(&old);
        assert_eq!(now.generation, 2);
        assert_eq!(now.lookup(&QName::new("s", "b")), Some(b));
        assert_eq!(now.lookup(&QName::new("s", "c")), Some(c));
        assert_eq!(
            now.lookup(&QName::new("s", "dropped")),
            None,
            "a dropped table is no name's"
        );
        assert_eq!(now.by_oid(100), None);
        let names: Vec<(&str, bool)> = now
            .rel(b)
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.dropped))
            .collect();
        assert_eq!(
            names,
            [("renamed", false), ("gone", true), ("b3", false), ("b4", false)]
        );
        assert_eq!(
            now.rel(b).column_index("gone"),
            None,
            "no name reaches a dropped column"
        );
        let d_now = now.lookup(&QName::new("s", "d")).unwrap();
        assert_eq!(now.rel(d_now).oid, 400);
        assert_eq!(now.by_oid(400), Some(d_now));
        assert_eq!(now.sequence(&QName::new("s", "d_seq")), Some(Some(d_now)));
        assert_eq!(now.sequence(&QName::new("s", "c_seq")), Some(Some(c)));
        assert_eq!(now.named("b"), &[b]);
    }
}
