//! No input may panic or hang the frame decoder, the startup phase, the analyzer or the session state
//! machine: seeded random inputs, and every input the fuzzers kept (fuzz/corpus), replayed on each run.

use std::collections::BTreeSet;
use std::path::Path;

use unscharf::analyze::cache::AnalysisCache;
use unscharf::analyze::{analyze, AnalyzeCtx};
use unscharf::catalog::{offline, Catalog};
use unscharf::judge::{judge_all, JudgeCtx, NoRegistry};
use unscharf::policy::{load::load_texts, PolicySet, Today};
use unscharf::session::core::{Core, Env, Identity, Out};
use unscharf::session::options::{client_params, split_options};
use unscharf::wire::startup::{next_startup_packet, parse_startup_packet, StartupPacket};
use unscharf::wire::{backend, frontend, next_frame};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        (0..self.below(max)).map(|_| self.next() as u8).collect()
    }
}

fn fixture() -> (Catalog, PolicySet) {
    let cat = offline::from_schema_sql(include_str!("../sample/schema.sql"), "schema.sql").unwrap();
    let pol = load_texts(unscharf::demo::SAMPLE_POLICIES, Some(b"robust")).unwrap();
    (cat, pol)
}

fn today() -> Today {
    Today::from_ymd_opt(2026, 11, 29).unwrap()
}

fn frames(data: &[u8]) {
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(f)) = next_frame(&mut buf, 1 << 20) {
        let b = f.body();
        let _ = frontend::query(b);
        let _ = frontend::parse(b);
        if let Ok(bind) = frontend::bind(b) {
            let _ = bind.with_result_formats(b, &[0, 1]);
        }
        let _ = (frontend::describe(b), frontend::execute(b), frontend::close(b));
        let _ = backend::row_description(b);
        if let Ok(fields) = backend::data_row(b) {
            for _ in fields {}
        }
        let _ = (
            backend::error_fields(b),
            backend::copy_response(b),
            backend::sasl_mechanisms(b),
        );
    }
}

fn startup(data: &[u8]) {
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(p)) = next_startup_packet(&mut buf) {
        if let Ok(StartupPacket::Startup(m)) = parse_startup_packet(&p) {
            let _ = client_params(&m, "crm");
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = split_options(s);
    }
}

fn sql(cat: &Catalog, pol: &PolicySet, sql: &str) {
    let paths = vec![vec!["$user".to_owned(), "public".to_owned()]];
    let ctx = agent_ctx(cat, &paths);
    if let Ok(a) = analyze(sql, ctx) {
        let read = BTreeSet::new();
        for purpose in pol.purposes.values() {
            let j = JudgeCtx {
                policy: pol,
                purpose,
                catalog: cat,
                today: today(),
                read_campaigns: &read,
                dba_path: None,
                settings_moved: None,
                path_moved: None,
            };
            let _ = judge_all(&a, &j, &NoRegistry);
        }
    }
}

fn session(cat: &Catalog, pol: &PolicySet, cache: &AnalysisCache, data: &[u8]) {
    let budget = unscharf::session::lookups::LookupBudget::default();
    let env = Env {
        policy: pol,
        catalog: cat,
        cache,
        today: today(),
        log_allowed: true,
        refuse_all: None,
        lookups: &budget,
        lookups_per_minute: 0,
        max_statement_bytes: 1 << 20,
    };
    let mut core = Core::new(
        Identity {
            session: 1,
            user: "agent_wasser".into(),
            client_addr: "t".into(),
            purpose: "billing_hotline".into(),
        },
        vec!["$user".into(), "public".into()],
        false,
        b'I',
    );
    let mut buf = bytes::BytesMut::from(data);
    let mut out = Out::default();
    while !buf.is_empty() {
        let from_client = buf[0] & 1 == 0;
        bytes::Buf::advance(&mut buf, 1);
        let Ok(Some(f)) = next_frame(&mut buf, 1 << 20) else {
            break;
        };
        let r = if from_client {
            core.on_client(&f, &env, &mut out, false)
        } else {
            core.on_upstream(&f, &env, &mut out)
        };
        if r.is_err() {
            break;
        }
    }
}

const WORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "phone",
    "iban",
    "stadtwerke.customers",
    "c",
    "(",
    ")",
    ",",
    "'x'",
    "$1",
    "1",
    "=",
    "||",
    "::text",
    "UNION",
    "ALL",
    "WITH",
    "AS",
    "JOIN",
    "ON",
    "ORDER BY",
    "GROUP BY",
    "lower(",
    "*",
    "c.*",
    ";",
    "INSERT INTO",
    "VALUES",
    "U&",
    "/*",
    "*/",
    "--\n",
    "$$",
    "E'\\''",
    "\"",
    "LATERAL",
    "row_to_json(",
    "set_config(",
    "COPY",
    "TO STDOUT",
    "SET",
    "search_path",
];

#[test]
fn random_inputs_never_panic() {
    let (cat, pol) = fixture();
    let cache = AnalysisCache::new(1000);
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for _ in 0..20_000 {
        let b = rng.bytes(300);
        frames(&b);
        startup(&b);
    }
    for _ in 0..3_000 {
        let n = rng.below(25);
        let text: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect();
        sql(&cat, &pol, &text.join(" "));
    }
    for _ in 0..2_000 {
        // Valid frames with random bodies, tagged by side.
        let mut data = Vec::new();
        for _ in 0..rng.below(8) {
            data.push(rng.next() as u8);
            let tag = b"QPBDESHCXdcfFTDZE12sntIGHA"[rng.below(26)];
            let body = if tag == b'Q' {
                let mut s = WORDS[rng.below(WORDS.len())].as_bytes().to_vec();
                s.push(0);
                s
            } else {
                rng.bytes(40)
            };
            data.push(tag);
            data.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
            data.extend_from_slice(&body);
        }
        session(&cat, &pol, &cache, &data);
    }
}

/// Runs `f` on a thread with tokio's default worker stack (2 MiB), where sessions analyze statements;
/// a stack overflow there aborts the whole proxy, so it must not happen for any input.
/// The analysis context of the sample agent, on the given search path.
fn agent_ctx<'a>(cat: &'a Catalog, paths: &'a [Vec<String>]) -> AnalyzeCtx<'a> {
    AnalyzeCtx {
        catalog: cat,
        search_paths: paths,
        user: "agent_wasser",
        revert_paths: &[],
        abandoned: Default::default(),
    }
}

fn on_worker_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn fuzz_corpora_replay_cleanly() {
    on_worker_stack(|| {
        let (cat, pol) = fixture();
        let cache = AnalysisCache::new(1000);
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let mut replayed = 0;
        for target in ["frames", "startup", "analyzer", "session"] {
            let Ok(entries) = std::fs::read_dir(root.join(target)) else {
                continue;
            };
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).unwrap();
                match target {
                    "frames" => frames(&data),
                    "startup" => startup(&data),
                    "analyzer" => {
                        if let Ok(s) = std::str::from_utf8(&data) {
                            sql(&cat, &pol, s)
                        }
                    }
                    _ => session(&cat, &pol, &cache, &data),
                }
                replayed += 1;
            }
        }
        assert!(replayed > 100, "only {replayed} corpus inputs found");
    });
}

/// Operator chains nest the syntax tree one level per link without any bracket. Long ones are refused
/// before parsing; shorter ones are parsed and refused or judged without exhausting the stack.
#[test]
fn operator_chains_do_not_exhaust_the_stack() {
    on_worker_stack(|| {
        let (cat, _) = fixture();
        let paths = vec![vec!["public".to_owned()]];
        let ctx = agent_ctx(&cat, &paths);
        let long = |link: &str, n: usize| link.repeat(n);
        for (sql, want) in [
            (format!("SELECT 1{}", long("+1", 100_000)), "chain of more than"),
            (format!("SELECT 1{}", long("::int", 100_000)), "chain of more than"),
            (format!("SELECT {}1", long("- ", 100_000)), "chain of more than"),
            (format!("SELECT {}true", long("NOT ", 100_000)), "chain of more than"),
            (
                format!("SELECT true{}", long(" OR true", 100_000)),
                "chain of more than",
            ),
            (
                format!("SELECT 1{}", long(" UNION SELECT 1", 100_000)),
                "chain of more than",
            ),
            // Round 27: the lexer did not count these, and freeing the tree aborted the proxy.
            (
                format!("SELECT 1{}", long(" OPERATOR(+)1", 70_000)),
                "chain of more than",
            ),
            (format!("SELECT 1{}", long(" XOR 1", 150_000)), "chain of more than"),
            (
                format!("SELECT 'a'{}", long(" REGEXP 'a'", 80_000)),
                "chain of more than",
            ),
            (format!("SELECT ({}1)", long("1+(", 60_000)), "chain of more than"),
            (
                format!("SELECT {}1{}", long("(", 60_000), long(")", 60_000)),
                "does not parse",
            ),
            (
                format!("SELECT {}1{}", long("abs(", 60_000), long(")", 60_000)),
                "does not parse",
            ),
            (format!("SELECT 1{}", long("+1", 999)), "nesting is too deep"),
            (format!("SELECT 1{}", long("||'x'", 999)), "nesting is too deep"),
        ] {
            let err = analyze(&sql, ctx).expect_err(&sql[..40]).to_string();
            assert!(err.contains(want), "{}…: {err}", &sql[..40]);
        }
        // Generated filters with hundreds of ORs and long UNION lists stay usable.
        let ors: Vec<String> = (0..900).map(|i| format!("customer_no = {i}")).collect();
        let sql = format!("SELECT name FROM stadtwerke.customers WHERE {}", ors.join(" OR "));
        analyze(&sql, ctx).expect("900 ORs");
        let unions = vec!["SELECT 1"; 900].join(" UNION ALL ");
        analyze(&unions, ctx).expect("900 UNIONs");
        // Brackets as deep as sqlparser reads them: Postgres's tree for them is checked on a stack
        // sized by bracket depth (analyze::crosscheck).
        for n in [10, 20, 30, 40, 45] {
            for (open, close) in [
                ("(SELECT ", ")"),
                ("ARRAY[", "]"),
                ("(", ")"),
                ("abs(", ")"),
                ("ROW(1, ", ")"),
            ] {
                let sql = format!("SELECT {}1{}", open.repeat(n), close.repeat(n));
                let _ = analyze(&sql, ctx);
            }
        }
        // Postgres's own parser (analyze::crosscheck) reads the longest chain allowed too.
        let unions = vec!["SELECT 1"; 4_999].join(" UNION ALL ");
        analyze(&unions, ctx).expect("4,999 UNIONs");
    });
}

/// Nested recursive CTEs are re-analyzed until their lineage settles, which multiplies per level:
/// a 3 kB statement must be refused quickly, not hold a worker for minutes.
#[test]
fn nested_recursive_ctes_stay_within_the_work_budget() {
    fn cte(k: usize) -> String {
        let inner = if k > 1 {
            format!("WITH RECURSIVE {} ", cte(k - 1))
        } else {
            String::new()
        };
        format!(
            "r{k} AS ({inner}SELECT customer_no a, 1 b, 1 c, 1 d FROM stadtwerke.customers UNION ALL SELECT b, c, d, a FROM r{k} WHERE false)"
        )
    }
    on_worker_stack(|| {
        let (cat, _) = fixture();
        let paths = vec![vec!["public".to_owned()]];
        let ctx = agent_ctx(&cat, &paths);
        let sql = |k| format!("WITH RECURSIVE {} SELECT a FROM r{k}", cte(k));
        analyze(&sql(3), ctx).expect("three levels are fine");
        let err = analyze(&sql(20), ctx).expect_err("twenty levels").to_string();
        assert!(err.contains("too complex"), "{err}");
    });
}

/// Red-team round 17: each join copied the FROM items before it, so a 100 kB chain of `JOIN …
/// USING` (or NATURAL JOIN, or LATERAL) took seconds on a session thread other sessions share.
/// The copies count against the work budget: long chains are refused at once, real ones pass.
#[test]
fn long_join_chains_stay_within_the_work_budget() {
    on_worker_stack(|| {
        let (cat, _) = fixture();
        let paths = vec![vec!["public".to_owned()]];
        let ctx = agent_ctx(&cat, &paths);
        let chain = |n: usize, join: &dyn Fn(usize) -> String| {
            let joins: Vec<String> = (1..n).map(join).collect();
            format!("SELECT 1 FROM stadtwerke.customers c0 {}", joins.join(" "))
        };
        let using = |i| format!("JOIN stadtwerke.customers c{i} USING (customer_no)");
        let natural = |i| format!("NATURAL JOIN stadtwerke.customers c{i}");
        let lateral = |i: usize| format!(", LATERAL (SELECT c{}.name) c{i}", i - 1);
        for join in [&using as &dyn Fn(usize) -> String, &natural, &lateral] {
            analyze(&chain(12, join), ctx).expect("a dozen joins are fine");
            let err = analyze(&chain(2_000, join), ctx).expect_err("2,000 joins").to_string();
            assert!(err.contains("too complex"), "{err}");
        }
    });
}

/// Red-team round 135: CTEs that each join the one before with itself (`SELECT * FROM c a, c
/// b`) doubled their width per level, and the copies cost nothing: a 786-byte statement took 15 s
/// and 4 GB. A select list wider than Postgres allows is refused, copies of a CTE's columns count
/// against the budget, and a message of many costly statements has a budget of its own.
#[test]
fn ctes_that_double_their_width_stay_within_the_work_budget() {
    fn doubling(k: usize, base: &str) -> String {
        let mut sql = format!("WITH c0 AS ({base})");
        for i in 1..=k {
            sql.push_str(&format!(", c{i} AS (SELECT * FROM c{} a, c{} b)", i - 1, i - 1));
        }
        sql + &format!(" SELECT 1 FROM c{k} LIMIT 0")
    }
    on_worker_stack(|| {
        let (cat, _) = fixture();
        let paths = vec![vec!["public".to_owned()]];
        let ctx = agent_ctx(&cat, &paths);
        let free = "SELECT 1 a, 2 b, 3 c, 4 d, 5 e, 6 f";
        let table = "SELECT customer_no, name, street, postcode, city, phone FROM stadtwerke.customers";
        for base in [free, table] {
            analyze(&doubling(3, base), ctx).expect("three levels are fine");
            for k in [9, 20, 40] {
                let err = analyze(&doubling(k, base), ctx).expect_err("doubling").to_string();
                assert!(err.contains("Postgres's limit") || err.contains("too complex"), "{err}");
            }
        }
        // Each statement within its own budget, the message not within its.
        let one = doubling(8, free);
        analyze(&one, ctx).expect("one statement of eight levels (1,536 columns)");
        let many = vec![one; 400].join(";\n");
        let err = analyze(&many, ctx)
            .map(|_| ())
            .expect_err("400 of them in one message")
            .to_string();
        assert!(err.contains("too complex"), "{err}");
    });
}

/// Red-team round 139: looking up a name scans every column in scope, and each lookup was one
/// step of the budget: 4,700 three-byte names in a FROM clause of 150 copies of a 1,024-column CTE
/// took 2.5 s per 16 KB. A lookup now costs what it scans.
#[test]
fn name_lookups_in_a_wide_from_clause_stay_within_the_work_budget() {
    // Round 140: `zz[1]` took a path that looked the name up without the charge.
    fn wide(copies: usize, refs: usize, name: &str) -> String {
        let cols: Vec<String> = (0..1024).map(|i| format!("1 a{i}")).collect();
        let from: Vec<String> = (0..copies).map(|i| format!("c c{i}")).collect();
        format!(
            "WITH c AS (SELECT {}) SELECT coalesce({}) FROM {}, (SELECT ARRAY[1] zz) z",
            cols.join(", "),
            vec![name; refs].join(", "),
            from.join(", ")
        )
    }
    on_worker_stack(|| {
        let (cat, _) = fixture();
        let paths = vec![vec!["public".to_owned()]];
        let ctx = agent_ctx(&cat, &paths);
        for name in ["zz", "z.zz", "zz[1]", "(zz)[1]", "z.zz[1]"] {
            analyze(&wide(3, 10, name), ctx)
                .map(|_| ())
                .unwrap_or_else(|e| panic!("three copies, ten of {name}: {e}"));
            let err = analyze(&wide(150, 4_700, name), ctx)
                .map(|_| ())
                .expect_err("150 copies, 4,700 names")
                .to_string();
            assert!(err.contains("too complex"), "{name}: {err}");
        }
    });
}

/// Red-team round 140: a reference copies its column's lineage, and a CTE column computed from
/// every catalog column (2,040) referenced 60,000 times in 129 KB copied 10^8 column references
/// into 2 GB for three units each. A copy now costs its length.
#[test]
fn copies_of_a_long_lineage_stay_within_the_work_budget() {
    fn statement(refs: usize) -> String {
        // About 200 distinct columns behind one value.
        let rels = [
            "pg_class",
            "pg_proc",
            "pg_type",
            "pg_attribute",
            "pg_constraint",
            "pg_index",
            "pg_database",
            "pg_namespace",
            "pg_trigger",
            "pg_operator",
        ];
        let rows: Vec<String> = (0..rels.len()).map(|i| format!("t{i}.*")).collect();
        let from: Vec<String> = rels
            .iter()
            .enumerate()
            .map(|(i, r)| format!("pg_catalog.{r} t{i}"))
            .collect();
        format!(
            "WITH w AS (SELECT concat({}) x FROM {}) SELECT coalesce({}) FROM w",
            rows.join(", "),
            from.join(", "),
            vec!["x"; refs].join(", ")
        )
    }
    on_worker_stack(|| {
        let (cat, _) = fixture();
        let paths = vec![vec!["public".to_owned()]];
        let ctx = agent_ctx(&cat, &paths);
        analyze(&statement(10), ctx).map(|_| ()).expect("ten references");
        let err = analyze(&statement(20_000), ctx)
            .map(|_| ())
            .expect_err("20,000 references")
            .to_string();
        assert!(err.contains("too complex"), "{err}");
    });
}

/// Red-team round 143: a search_path of a million names made every unqualified name cost 15 ms,
/// and 6,000 SETs in one message, each value copied into every later statement, took 6.5 GB.
/// A path holds at most 100 schemas, a message and its transaction at most 16 values.
#[test]
fn search_paths_are_bounded() {
    on_worker_stack(|| {
        let (cat, _) = fixture();
        let paths = vec![vec!["public".to_owned()]];
        let ctx = agent_ctx(&cat, &paths);
        let names = |n: usize| (0..n).map(|i| format!("s{i}")).collect::<Vec<_>>().join(", ");
        analyze(&format!("SET search_path = {}", names(100)), ctx)
            .map(|_| ())
            .expect("100 schemas");
        for sql in [
            format!("SET search_path = {}", names(101)),
            format!("SELECT set_config('search_path', '{}', false)", names(101)),
            (0..20)
                .map(|i| format!("SET search_path = s{i}; SELECT 1"))
                .collect::<Vec<_>>()
                .join("; "),
        ] {
            let err = analyze(&sql, ctx).map(|_| ()).expect_err("bounded").to_string();
            assert!(err.contains("search_path"), "{err}");
        }
    });
}
