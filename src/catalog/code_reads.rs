//! The tables a DBA's code reads and writes, as far as its words tell: what a write's triggers and
//! constraints read (round 145), what listed functions write (round 145), what row-level security
//! helpers read (round 144). Names are matched whatever their case (round 147: a quoted
//! `"CallerSession"`), and code that builds SQL at run time is taken to read anything.

use std::collections::{HashMap, HashSet};

use super::code::{reached_reads, written_names, Callers, Code, Reached};
use super::{Catalog, RelKind};
use crate::policy::QName;

/// Words of code that reach tables it does not name: SQL built as text and run (`EXECUTE`,
/// `query_to_xml`, `ts_stat`), another database, or a table's files. Such code may read anything
/// (round 147: a caller check built `'stadtwerke.' || 'cust' || 'omers'`; round 149: `ts_stat`;
/// round 150: `schema_to_xml`, `ts_rewrite` with a query). A trailing `*` matches a prefix. A
/// `regclass` alone reads nothing: a name turned into a table needs one of these to be read
/// (round 149: an audit trigger's `TG_RELID::regclass::text` was refused for it).
pub const DYNAMIC_WORDS: &[&str] = &[
    "execute",
    "query_to_xml*",
    "cursor_to_xml*",
    "table_to_xml*",
    "schema_to_xml*",
    "database_to_xml*",
    "ts_stat",
    "ts_rewrite",
    "dblink*",
    "xpath_table",
    "crosstab*",
    "connectby",
    "pg_read_*",
    "lo_import",
    "get_raw_page",
    "heap_page_item*",
    "tuple_data_split",
    super::code::U_AMP_NAME,
    // Like TYPE_INPUTS (see `is_dynamic_word`): a type chosen at run time, whose domain's CHECK
    // then runs (round 159: `domain_in(…, TG_ARGV[0]::regtype, …)`).
    "pg_input_*",
];

/// Whether `code` itself builds SQL at run time (see DYNAMIC_WORDS).
pub fn builds_sql(code: &Code<'_>) -> bool {
    super::code::all_words(std::slice::from_ref(code))
        .iter()
        .any(|w| is_dynamic_word(w))
}

/// Whether code changes the session's settings for what runs after it, or for the login's next
/// sessions: calls `set_config` (or the internal `set_config_by_name`), names `pg_settings` (an
/// UPDATE of it is a SET: round 225 BJ2), runs a `SET` or `RESET` statement, or sets a role's or
/// database's defaults (round 227 BL3: `ALTER ROLE CURRENT_USER SET bytea_output = escape`).
///
/// Read from the code's words outside comments and strings (see `code::skeleton`). A `SET` or
/// `RESET` counts unless it is a clause: of an UPDATE (an `update` word earlier in the same
/// statement), or of a statement that starts with CREATE or with ALTER of anything but a role,
/// user, database or the system. A statement starts at `;` and at PL/pgSQL's `BEGIN`, `THEN`,
/// `ELSE` and `LOOP`; a word the walk takes for a start where there is none only counts more.
/// Round 226 BK1 (a comment's last word before `SET`) and round 227 BL2 (a comment ended by a
/// carriage return) hid a SET from the walk before, which looked at the word before it; round 227
/// BL4: "Reset" in a comment counted.
/// Read under both readings of a backslash (see `code::Backslash`).
pub fn sets_settings(source: &str) -> bool {
    super::code::Backslash::BOTH
        .into_iter()
        .any(|reading| sets_settings_read(source, reading))
}

fn sets_settings_read(source: &str, reading: super::code::Backslash) -> bool {
    let skeleton = super::code::skeleton(source, reading).to_ascii_lowercase();
    let mut statement: Vec<&str> = Vec::new();
    let words = skeleton
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == ';'))
        .flat_map(|w| w.split_inclusive(';'))
        .flat_map(|w| match w.strip_suffix(';') {
            Some(word) => [word, ";"],
            None => [w, ""],
        })
        .filter(|w| !w.is_empty());
    for word in words {
        if matches!(word, "set_config" | "set_config_by_name" | "pg_settings") {
            return true;
        }
        if matches!(word, "set" | "reset") {
            let clause = statement.contains(&"update")
                || match statement.as_slice() {
                    ["create", ..] => true,
                    ["alter", what, ..] => !matches!(*what, "role" | "user" | "database" | "system" | "group"),
                    _ => false,
                };
            if !clause {
                return true;
            }
        }
        match word {
            ";" | "begin" | "then" | "else" | "loop" => statement.clear(),
            _ => statement.push(word),
        }
    }
    false
}

/// Whether code sets a setting whose name it learns only when it runs, or may: a listed helper
/// like `set_config(p_name, p_value, false)` lets the agent set any setting, those unscharf
/// refuses included (round 224 BI1: planner levers, `unscharf.purpose`). Read strictly, since
/// spellings are many (round 225 BJ1: a comment or quotes around `set_config`, `'' || name`,
/// `UPDATE pg_settings`, an alias of `set_config_by_name`, SET built at run time): every mention
/// of `set_config` must be a call whose first argument is a plain string literal; any mention of
/// `pg_settings` or `set_config_by_name` counts, and so does SQL built at run time that holds the
/// word SET or RESET anywhere.
pub fn sets_settings_by_name(code: &Code<'_>) -> bool {
    let lower = code.source.to_ascii_lowercase();
    if lower.contains("pg_settings") || lower.contains("set_config_by_name") {
        return true;
    }
    let literal_name = |rest: &str| -> bool {
        let Some(args) = rest.trim_start().strip_prefix('(') else {
            return false;
        };
        let Some(lit) = args.trim_start().strip_prefix('\'') else {
            return false;
        };
        let Some(end) = lit.find('\'') else { return false };
        !lit[..end].contains('\\') && lit[end + 1..].trim_start().starts_with(',') && !lit[end + 1..].starts_with('\'')
    };
    if lower
        .match_indices("set_config")
        .any(|(at, w)| !literal_name(&lower[at + w.len()..]))
    {
        return true;
    }
    builds_sql(code)
        && lower
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == "set" || w == "reset")
}

/// For each table (by OID), the tables its deletes or key updates write back into through a
/// foreign key's CASCADE, SET NULL or SET DEFAULT.
pub fn cascades_into(catalog: &Catalog) -> HashMap<u32, Vec<u32>> {
    let mut out: HashMap<u32, Vec<u32>> = HashMap::new();
    for (_, r) in catalog.relations() {
        for fk in &r.foreign_keys {
            if fk.writes_back(true).is_some() || fk.writes_back(false).is_some() {
                out.entry(fk.target).or_default().push(r.oid);
            }
        }
    }
    out
}

/// The tables whose writes may run a function of `code`: their own triggers, defaults and checks
/// (`on_write`), or a cascade (`cascades`) into such a table. The functions that write one
/// (`function_writes`, which follows calls, views and what triggers write) join `code`, until
/// nothing more is reached (round 228 BM1: a listed trigger on tickets wrote a log table whose
/// own trigger ran `SET bytea_output`).
pub fn close_over_writes(
    code: &mut ahash::AHashSet<QName>,
    on_write: &[(u32, QName)],
    function_writes: &ahash::AHashMap<QName, Vec<u32>>,
    cascades: &HashMap<u32, Vec<u32>>,
) -> ahash::AHashSet<u32> {
    loop {
        let mut tables: ahash::AHashSet<u32> = on_write
            .iter()
            .filter(|(_, g)| code.contains(g))
            .map(|(t, _)| *t)
            .collect();
        let mut grew = true;
        while grew {
            grew = false;
            for (t, into) in cascades {
                if !tables.contains(t) && into.iter().any(|u| tables.contains(u)) {
                    tables.insert(*t);
                    grew = true;
                }
            }
        }
        let more: Vec<QName> = function_writes
            .iter()
            .filter(|(f, written)| !code.contains(*f) && written.iter().any(|t| *t == ANY_TABLE || tables.contains(t)))
            .map(|(f, _)| f.clone())
            .collect();
        if more.is_empty() {
            return tables;
        }
        code.extend(more);
    }
}

/// Whether a word of code is one of DYNAMIC_WORDS.
pub fn is_dynamic_word(word: &str) -> bool {
    crate::policy::decide::TYPE_INPUTS.contains(&word)
        || DYNAMIC_WORDS.iter().any(|p| super::code_order::matches_word(p, word))
}

/// Words of trigger code that reach the rows of the trigger's own table without naming it (round
/// 145: `TG_RELNAME`, which stop 18 did not count).
const OWN_TABLE_WORDS: [&str; 5] = ["tg_relid", "tg_relname", "tg_table_name", "tg_table_schema", "tg_argv"];

/// Stands for "a table unscharf cannot name" among the OIDs a piece of code reads: decisions refuse it.
pub const ANY_TABLE: u32 = 0;

/// Whether code draws from a sequence or reads its counter, by whatever name: `nextval` with a
/// name built at run time shows no sequence in the code (round 147: `'case_no_' || year`), nor
/// does `pg_sequence_last_value` on a name the function is given (round 212 AW1).
pub fn draws_by_name(source: &str) -> bool {
    let lower = source.to_lowercase();
    ["nextval", "setval", "currval", "lastval", "pg_sequence_last_value"]
        .iter()
        .any(|f| lower.contains(f))
}

/// The DBA's code with the catalog's tables by lower-cased name.
pub struct Graph<'c, 'a> {
    code: &'c [Code<'a>],
    /// Tables, views and foreign tables (no sequences, nothing built in) by lower-cased name.
    tables: HashMap<String, Vec<u32>>,
    /// What each view's query reads, followed through views.
    behind: HashMap<u32, Vec<u32>>,
    /// Each table's partitions and child tables: a write into it lands in them, and runs their
    /// triggers (round 155: a partition's trigger read the customers).
    children: HashMap<u32, Vec<u32>>,
    /// The DBA's operators (their symbols) and the types its casts lead to (lower-cased names)
    /// that run code of its own, in SQL or PL: code using one runs a function its words do not
    /// name (round 147: `OPERATOR(public.###)` and a cast to `dob_claim` read the customers' birth
    /// dates). An extension's operators in C (citext's `<>`, pg_trgm's `%`) read no table and do
    /// not count (round 149: they refused plain `updated_at` triggers); one-character ones of the
    /// DBA's do (round 149: `~`).
    operators: Vec<String>,
    cast_types: HashSet<String>,
    /// An implicit cast or comparison operator of the DBA's runs code (see DBA_OPERATORS_AND_CASTS):
    /// any code may run it.
    unseen_code: bool,
    /// Trigger functions in C whose reads cannot be told: they read anything.
    c_triggers: HashSet<QName>,
}

impl<'c, 'a> Graph<'c, 'a> {
    /// `ops`: each operator's symbol or cast's target type, with the function it runs.
    pub fn new(catalog: &Catalog, code: &'c [Code<'a>], ops: &[(String, QName)]) -> Self {
        let runs_code = |f: &QName| code.iter().any(|c| c.name == *f);
        let (mut operators, mut cast_types) = (Vec::new(), HashSet::new());
        let c_triggers = ops
            .iter()
            .filter(|(name, _)| name == "!c-trigger")
            .map(|(_, f)| f.clone())
            .collect();
        let mut unseen_code = false;
        for (name, _) in ops.iter().filter(|(_, f)| runs_code(f)) {
            if name == "*" {
                unseen_code = true;
                continue;
            }
            if !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                operators.push(name.clone());
                continue;
            }
            // Code names built-in types by their SQL spellings (round 149: `NEW::boolean`).
            let spelled: &[&str] = match name.as_str() {
                "bool" => &["boolean"],
                "int2" => &["smallint"],
                "int4" => &["integer", "int"],
                "int8" => &["bigint"],
                "float4" => &["real", "float"],
                "float8" => &["double", "float"],
                "numeric" => &["decimal", "dec"],
                "bpchar" => &["char", "character"],
                "varchar" => &["varying", "character"],
                "varbit" => &["varying", "bit"],
                "timestamptz" => &["timestamp"],
                "timetz" => &["time"],
                _ => &[],
            };
            cast_types.insert(name.to_lowercase());
            cast_types.extend(spelled.iter().map(|s| s.to_string()));
        }
        let mut tables: HashMap<String, Vec<u32>> = HashMap::new();
        let mut behind = HashMap::new();
        for (_, r) in catalog.relations() {
            if r.kind == RelKind::Sequence || r.oid < super::FIRST_NORMAL_OID {
                continue;
            }
            tables.entry(r.name.name.to_lowercase()).or_default().push(r.oid);
            let below = catalog.behind(r.oid);
            if below.len() > 1 {
                behind.insert(r.oid, below);
            }
        }
        Graph {
            code,
            tables,
            behind,
            children: catalog.descendants.iter().map(|(k, v)| (*k, v.clone())).collect(),
            operators,
            cast_types,
            unseen_code,
            c_triggers,
        }
    }

    /// Whether the reached code runs code it does not name: SQL built at run time, or an operator
    /// or cast of the DBA's.
    fn runs_unnamed(&self, reached: &Reached<'_>) -> bool {
        self.unseen_code
            || Self::dynamic(&reached.words)
            || reached.words.iter().any(|w| self.cast_types.contains(w))
            || reached.sources.iter().any(|s| {
                self.operators
                    .iter()
                    .any(|op| s.contains(op.as_str()) || (op == "<>" && s.contains("!=")))
            })
    }

    fn tables_named<'w>(&'w self, words: impl IntoIterator<Item = &'w String> + 'w) -> impl Iterator<Item = u32> + 'w {
        words
            .into_iter()
            .flat_map(|w| self.tables.get(w).into_iter().flatten().copied())
    }

    fn dynamic(words: &HashSet<String>) -> bool {
        words.iter().any(|w| is_dynamic_word(w))
    }

    /// What `func`, run on a write of `rel`, reads (see `Catalog::write_reads`): every table its
    /// code names except those it only writes into, `rel` itself when it names it as a trigger
    /// is told it, and ANY_TABLE when it builds SQL at run time.
    pub fn write_reads(&self, rel: u32, func: &QName) -> Vec<u32> {
        let reached = reached_reads(self.code, func);
        let mut read: Vec<u32> = self.tables_named(&reached.read).collect();
        if OWN_TABLE_WORDS.iter().any(|w| reached.words.contains(*w)) {
            read.push(rel);
        }
        if self.runs_unnamed(&reached) || self.c_triggers.contains(func) {
            read.push(ANY_TABLE);
        }
        read.sort_unstable();
        read.dedup();
        read
    }

    /// The tables a row-level security policy's function reads, through what it calls; ANY_TABLE
    /// when it builds SQL at run time (round 147: a helper read the session table by EXECUTE).
    pub fn policy_reads(&self, func: &QName) -> Vec<u32> {
        let reached = reached_reads(self.code, func);
        let mut read: Vec<u32> = self.tables_named(&reached.words).collect();
        if self.runs_unnamed(&reached) {
            read.push(ANY_TABLE);
        }
        read.sort_unstable();
        read.dedup();
        read
    }

    /// For each function, the tables it writes (see `Catalog::function_writes`): those its code or
    /// the code it calls writes into, the tables behind a view it writes through, and what the
    /// triggers and defaults of those tables (`on_write`: table, function) write in turn
    /// (round 147: a view, a trigger on a log), and the tables their foreign keys' actions write.
    /// Code that builds SQL at run time writes ANY_TABLE.
    pub fn function_writes(
        &self,
        callers: &Callers<'_, '_>,
        on_write: &[(u32, QName)],
        cascades: &HashMap<u32, Vec<u32>>,
    ) -> HashMap<QName, Vec<u32>> {
        let mut direct: HashMap<QName, HashSet<u32>> = HashMap::new();
        let mut writers: HashMap<String, HashSet<&QName>> = HashMap::new();
        for c in self.code {
            for w in written_names(c.source) {
                writers.entry(w).or_default().insert(&c.name);
            }
        }
        for (word, own) in &writers {
            let Some(tables) = self.tables.get(word) else { continue };
            for f in callers.closure(|c| own.contains(&c.name)) {
                direct.entry(f).or_default().extend(tables);
            }
        }
        // SQL built at run time that may write: a dynamic word beside a writing one.
        let dynamic = callers.closure(|c| {
            let words: HashSet<String> = super::code::all_words(std::slice::from_ref(c));
            Self::dynamic(&words)
                && ["insert", "update", "delete", "merge", "truncate", "copy"]
                    .iter()
                    .any(|w| words.contains(*w))
        });
        for f in dynamic {
            direct.entry(f).or_default().insert(ANY_TABLE);
        }
        // Through views to their tables, and through the tables' triggers to what those write.
        let mut out = HashMap::new();
        for (f, start) in &direct {
            let mut seen: HashSet<u32> = HashSet::new();
            let mut queue: Vec<u32> = start.iter().copied().collect();
            while let Some(t) = queue.pop() {
                if !seen.insert(t) {
                    continue;
                }
                queue.extend(self.behind.get(&t).into_iter().flatten());
                queue.extend(self.children.get(&t).into_iter().flatten());
                // A foreign key's ON DELETE/UPDATE action writes the referencing table (round
                // 268 DA1: a listed function's DELETE cascaded into a table whose trigger copied
                // names and phones into the newspaper's table).
                queue.extend(cascades.get(&t).into_iter().flatten());
                for (_, g) in on_write.iter().filter(|(rel, g)| *rel == t && g != f) {
                    queue.extend(direct.get(g).into_iter().flatten());
                }
            }
            let mut v: Vec<u32> = seen.into_iter().collect();
            v.sort_unstable();
            out.insert(f.clone(), v);
        }
        out
    }

    /// Every word of the DBA's code, lower-cased: the table names it may resolve on search_path;
    /// and whether some of it builds SQL at run time, which may resolve any name.
    pub fn table_words(&self) -> (HashSet<String>, bool) {
        let words = super::code::all_words(self.code);
        let dynamic = Self::dynamic(&words);
        (words, dynamic)
    }
}

#[cfg(test)]
mod tests {
    use super::{close_over_writes, sets_settings, sets_settings_by_name, ANY_TABLE};
    use crate::catalog::code::Code;
    use crate::policy::QName;

    /// Round 228 BM1: tables 1 (tickets) and 2 (a log) and 3 (referencing 4 with a cascade); the
    /// log's trigger `set` sets; `audit`, tickets' trigger, writes the log; `helper` calls
    /// `audit`'s kin by writing tickets; `plain` writes 5.
    #[test]
    fn writes_that_reach_settings_code_are_followed_to_a_fixed_point() {
        let q = |n: &str| QName::new("public", n);
        let on_write = [(2, q("set")), (1, q("audit")), (3, q("set"))];
        let writes: ahash::AHashMap<QName, Vec<u32>> = [
            (q("audit"), vec![2]),
            (q("helper"), vec![1, 2]),
            (q("plain"), vec![5]),
            (q("remover"), vec![4]),
            (q("dynamic"), vec![ANY_TABLE]),
        ]
        .into_iter()
        .collect();
        let cascades = [(4, vec![3])].into_iter().collect();
        let mut code: ahash::AHashSet<QName> = [q("set")].into_iter().collect();
        let tables = close_over_writes(&mut code, &on_write, &writes, &cascades);
        for f in ["set", "audit", "helper", "remover", "dynamic"] {
            assert!(code.contains(&q(f)), "{f}");
        }
        assert!(!code.contains(&q("plain")));
        let mut tables: Vec<u32> = tables.into_iter().collect();
        tables.sort_unstable();
        assert_eq!(tables, [1, 2, 3, 4]);
    }

    #[test]
    fn set_config_by_a_name_given_at_run_time_is_told_apart() {
        let code = |source| Code {
            name: QName::new("public", "f"),
            source,
        };
        assert!(sets_settings_by_name(&code(
            "BEGIN RETURN set_config(n, v, false); END"
        )));
        assert!(sets_settings_by_name(&code(
            "SELECT pg_catalog.SET_CONFIG ( $1, $2, false)"
        )));
        assert!(!sets_settings_by_name(&code(
            "SELECT set_config('app.campaign', v, false)"
        )));
        for bypass in [
            "SELECT set_config /* c */ (n, v, false)",
            "SELECT \"set_config\"(n, v, false)",
            "SELECT set_config('' || n, v, false)",
            "UPDATE pg_settings SET setting = v WHERE name = n",
            "set_config_by_name",
            "BEGIN EXECUTE format('%s %I = %L', 'SET', n, v); END",
        ] {
            assert!(sets_settings_by_name(&code(bypass)), "{bypass}");
        }
        assert!(sets_settings(
            "UPDATE pg_catalog.pg_settings SET setting = v WHERE name = n"
        ));
        assert!(sets_settings("set_config_by_name"));
        assert!(sets_settings(
            "BEGIN\n  -- the old viewer reads escape\n  SET bytea_output = escape;\nEND"
        ));
        assert!(sets_settings(
            "BEGIN /* for the report */ SET LOCAL work_mem = '256MB'; END"
        ));
        assert!(sets_settings("/* x */ SET work_mem = '1GB'"));
    }

    #[test]
    fn set_statements_and_set_config_change_settings_and_updates_do_not() {
        assert!(sets_settings("SET TimeZone = 'Pacific/Kiritimati'"));
        assert!(sets_settings(
            "BEGIN PERFORM 1; SET LOCAL timezone = z; RETURN NULL; END"
        ));
        assert!(sets_settings("BEGIN IF x THEN RESET TimeZone; END IF; END"));
        assert!(sets_settings("SELECT pg_catalog.set_config('TimeZone', z, false)"));
        assert!(!sets_settings(
            "UPDATE t SET a = 1; ALTER TABLE t ALTER c SET DEFAULT 0"
        ));
        assert!(!sets_settings(
            "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2"
        ));
        // Round 227 BL2: a `--` comment ends at a carriage return too.
        assert!(sets_settings(
            "BEGIN\r  -- old viewers\r  SET bytea_output = escape;\rEND"
        ));
        // Round 255 CN1: read both ways, whichever standard_conforming_strings is in force.
        assert!(sets_settings(
            "BEGIN x := 'it\\'s /* '; SET bytea_output = escape; y := ' */ '; END"
        ));
        assert!(sets_settings(
            "BEGIN x := 'dir\\'; SET bytea_output = escape; y := ' -- '; END"
        ));
        // Round 258 CQ3: a string continued after `E'…'` keeps its escapes.
        assert!(sets_settings(
            "BEGIN x := E'c'\n'\\' /* ';\n y := 'c:\\' || ' /* \" ';\n SET bytea_output = escape;\n y := ' */ */ '; END"
        ));
        // BL3: defaults of the login's next sessions.
        assert!(sets_settings(
            "BEGIN ALTER ROLE CURRENT_USER SET bytea_output = 'escape'; END"
        ));
        assert!(sets_settings("ALTER DATABASE crm RESET ALL"));
        // A SET after a label or a CASE, and after an `update` word of an earlier statement.
        assert!(sets_settings("BEGIN <<outer>> SET work_mem = '1GB'; END"));
        assert!(sets_settings(
            "BEGIN IF EXISTS (SELECT update FROM t) THEN SET bytea_output = escape; END IF; END"
        ));
        assert!(sets_settings("BEGIN UPDATE t SET a = 1;SET bytea_output = escape; END"));
        // BL4: words in comments and strings are not statements.
        for quiet in [
            "-- Reset nightly by the batch job\nSELECT count(*) FROM t",
            "BEGIN /* agents set this */ RAISE NOTICE 'please reset'; RETURN 1; END",
            "SELECT $q$ SET x = 1 $q$, E'\\' SET', \"set\" FROM t",
            "BEGIN FOR r IN UPDATE t SET a = 1 RETURNING * LOOP NULL; END LOOP; END",
            "CREATE TABLE t (a int REFERENCES u ON DELETE SET NULL)",
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a",
        ] {
            assert!(!sets_settings(quiet), "{quiet}");
        }
    }
}
