//! Table-driven tests of analysis and decision: (purpose, SQL) → expected verdict, over the sample
//! schema and the shipped policies. No Postgres needed: the catalog comes from sample/schema.sql.
//! This file holds the helpers, the legitimate CRM traffic and the driver corpus; `attacks` and
//! `statements` have one table per attack class, `variants` the cases that need policies of their own.

mod attacks;
mod cache;
mod settings;
mod statements;
mod variants;

use std::collections::BTreeSet;

use unscharf::analyze::{analyze, AnalyzeCtx};
use unscharf::catalog::{offline, Catalog};
use unscharf::judge::{judge_all, refusal_for, summary, Allowed, JudgeCtx, NoRegistry};
use unscharf::policy::load::{load_dir, load_texts};
use unscharf::policy::{PolicySet, Refusal};

fn catalog() -> Catalog {
    offline::from_schema_sql(include_str!("../../sample/schema.sql"), "schema.sql").unwrap()
}

fn policies() -> PolicySet {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    load_dir(&dir, Some(b"test-secret")).unwrap()
}

fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

/// Analyzes and judges `sql` as the proxy would, with an empty session registry.
fn judged(
    cat: &Catalog,
    pol: &PolicySet,
    purpose: &str,
    sql: &str,
    paths: &[Vec<String>],
    read: &BTreeSet<String>,
) -> Result<Vec<Allowed>, Refusal> {
    let ctx = AnalyzeCtx {
        catalog: cat,
        search_paths: paths,
        user: "agent",
        revert_paths: &[],
        abandoned: Default::default(),
    };
    let a = analyze(sql, ctx).map_err(|e| refusal_for(&e))?;
    let jcx = JudgeCtx {
        policy: pol,
        purpose: &pol.purposes[purpose],
        catalog: cat,
        today: today(),
        read_campaigns: read,
        dba_path: None,
        settings_moved: None,
        path_moved: None,
    };
    judge_all(&a, &jcx, &NoRegistry)
}

fn verdict(
    cat: &Catalog,
    pol: &PolicySet,
    purpose: &str,
    sql: &str,
    paths: &[Vec<String>],
    read: &BTreeSet<String>,
) -> String {
    summary(&judged(cat, pol, purpose, sql, paths, read))
}

fn run(cases: &[(&str, &str, &str)]) {
    let cat = catalog();
    let pol = policies();
    let path = vec![vec!["$user".to_owned(), "public".to_owned()]];
    let mut failures = Vec::new();
    for (who, sql, expected) in cases {
        let purpose = match *who {
            "wasser" => "billing_hotline",
            "zeitung" => "subscription_sales",
            "qa" => "quality_review",
            other => other,
        };
        let got = verdict(&cat, &pol, purpose, sql, &path, &BTreeSet::new());
        if got != *expected {
            failures.push(format!(
                "  [{who}] {sql}\n      expected {expected}\n      got      {got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

const CUSTOMER_STAR: &str = "masked: phone, email, iban; dropped: birth_date, notes";

#[test]
fn legitimate_crm_queries() {
    run(&[
        ("wasser", "SELECT customer_no, name, city FROM stadtwerke.customers WHERE customer_no = 1001", "allowed"),
        ("wasser", "SELECT name, phone FROM stadtwerke.customers WHERE customer_no = $1", "masked: phone"),
        ("wasser", "SELECT * FROM stadtwerke.customers WHERE customer_no = 1001", CUSTOMER_STAR),
        ("wasser", "select c.* from stadtwerke.customers c", CUSTOMER_STAR),
        // Round 242 CA1: `TABLE t` alone, as psql users type it.
        ("wasser", "TABLE stadtwerke.customers", CUSTOMER_STAR),
        ("wasser", "table stadtwerke.customers order by 1 limit 5", CUSTOMER_STAR),
        ("wasser", "SELECT * FROM (SELECT * FROM stadtwerke.customers) s", CUSTOMER_STAR),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = '+49 30 1234567'", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = $1", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = $1::text", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone IN ('+49 30 1234567', $1)", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = ANY($1)", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE (phone = $1 OR customer_no = $2) AND NOT (phone = $3)", "allowed"),
        ("wasser", "SELECT c.name, m.read_on, m.cubic_m FROM stadtwerke.customers c JOIN stadtwerke.meter_readings m ON m.customer_no = c.customer_no WHERE c.customer_no = 1001", "allowed"),
        ("wasser", "SELECT t.*, c.name FROM stadtwerke.tickets t JOIN stadtwerke.customers c USING (customer_no)", "allowed"),
        ("wasser", "INSERT INTO stadtwerke.tickets (customer_no, subject, note) VALUES (1001, 'Abschlag', 'Kundin ruft an')", "allowed"),
        ("wasser", "INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES ($1, $2) RETURNING ticket_id", "allowed"),
        ("wasser", "INSERT INTO stadtwerke.tickets (customer_no, subject, status) VALUES (1001, 'x', DEFAULT)", "allowed"),
        ("wasser", "UPDATE stadtwerke.tickets SET status = 'closed' WHERE ticket_id = 1", "allowed"),
        ("wasser", "UPDATE stadtwerke.tickets SET note = 'x' WHERE ticket_id = 1 RETURNING note, status", "allowed"),
        ("wasser", "INSERT INTO stadtwerke.tickets (subject, note) VALUES ('x', 'y') ON CONFLICT (ticket_id) DO UPDATE SET note = excluded.note", "allowed"),
        ("wasser", "BEGIN", "allowed"),
        ("wasser", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "allowed"),
        ("wasser", "START TRANSACTION", "allowed"),
        ("wasser", "COMMIT", "allowed"),
        ("wasser", "END", "allowed"),
        ("wasser", "ROLLBACK", "allowed"),
        ("wasser", "SAVEPOINT a", "allowed"),
        ("wasser", "RELEASE SAVEPOINT a", "allowed"),
        ("wasser", "ROLLBACK TO SAVEPOINT a", "allowed"),
        ("wasser", ";", "allowed"),
        ("wasser", "", "allowed"),
        ("wasser", " -- just a comment\n", "allowed"),
        ("wasser", "SELECT 1", "allowed"),
        ("wasser", "SHOW search_path", "allowed"),
        ("wasser", "SHOW TRANSACTION ISOLATION LEVEL", "allowed"),
        ("wasser", "SET application_name = 'crm'", "allowed"),
        ("wasser", "SET LOCAL statement_timeout = '5s'", "allowed"),
        ("wasser", "SET TIME ZONE 'Europe/Berlin'", "allowed"),
        ("wasser", "SET search_path = stadtwerke, public", "allowed"),
        ("wasser", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED", "allowed"),
        ("wasser", "RESET ALL", "allowed"),
        ("wasser", "SELECT current_setting('jit') AS cur, set_config('jit', 'off', false) AS new", "allowed"),
        ("wasser", "LISTEN tickets", "allowed"),
        ("wasser", "UNLISTEN tickets", "allowed"),
        ("wasser", "DISCARD ALL", "allowed"),
        ("wasser", "DEALLOCATE ALL", "allowed"),
        ("wasser", "DEALLOCATE PREPARE foo", "allowed"),
        ("wasser", "CLOSE ALL", "allowed"),
        ("wasser", "MOVE FORWARD 1 __asyncpg_portal_1__", "allowed"),
        ("wasser", "SELECT p.city, count(*) FROM stadtwerke.customers c JOIN public.postcodes p USING (postcode) GROUP BY p.city", "allowed"),
        ("wasser", "SELECT * FROM public.postcodes ORDER BY 1", "allowed"),
        ("wasser", "SELECT name, email FROM stadtwerke.customers ORDER BY name LIMIT 10", "masked: email"),
        ("wasser", "SELECT name, phone FROM stadtwerke.customers ORDER BY 1", "masked: phone"),
        ("wasser", "WITH x AS (SELECT phone AS p FROM stadtwerke.customers) SELECT p FROM x", "masked: p"),
        ("wasser", "SELECT s.p FROM (SELECT phone AS p FROM stadtwerke.customers) s", "masked: p"),
        ("wasser", "SELECT phone FROM stadtwerke.customers UNION ALL SELECT phone FROM stadtwerke.customers", "masked: phone"),
        ("wasser", "SELECT (phone) FROM stadtwerke.customers", "masked: phone"),
        ("wasser", "SELECT (SELECT phone FROM stadtwerke.customers LIMIT 1) AS p", "masked: p"),
        ("wasser", "DECLARE c CURSOR FOR SELECT name, iban FROM stadtwerke.customers", "masked: iban"),
        ("wasser", "DECLARE c CURSOR WITH HOLD FOR SELECT name FROM stadtwerke.customers", "allowed"),
        ("wasser", "PREPARE q AS SELECT name, iban FROM stadtwerke.customers WHERE customer_no = $1", "masked: iban"),
        ("wasser", "EXPLAIN (COSTS OFF) SELECT name FROM stadtwerke.customers WHERE phone = $1", "allowed"),
        // Round 136: its page counts follow the sizes of the table's protected columns.
        ("wasser", "EXPLAIN ANALYZE SELECT name FROM stadtwerke.customers WHERE customer_no = 1", "refused: protected_column"),
        ("wasser", "EXPLAIN ANALYZE SELECT cubic_m FROM stadtwerke.meter_readings WHERE customer_no = 1", "allowed"),
        ("wasser", "COPY stadtwerke.customers (customer_no, name, phone) TO STDOUT", "masked: phone"),
        ("wasser", "COPY (SELECT customer_no, email FROM stadtwerke.customers) TO STDOUT WITH (FORMAT csv, HEADER)", "masked: email"),
        ("wasser", "COPY (SELECT name FROM stadtwerke.customers) TO STDOUT WITH (FORMAT binary)", "allowed"),
        ("wasser", "COPY stadtwerke.tickets (customer_no, subject) FROM STDIN", "allowed"),
        ("wasser", "SELECT count(*) FROM stadtwerke.customers", "allowed"),
        // A row lock is a write's lock (round 192 AC1): on a table the purpose may update.
        ("wasser", "SELECT subject FROM stadtwerke.tickets WHERE ticket_id = 1 FOR UPDATE", "allowed"),
        ("wasser", "VALUES (1, 'a'), (2, 'b')", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE customer_no IN (SELECT customer_no FROM stadtwerke.tickets WHERE status = 'open')", "allowed"),
        ("wasser", "SELECT lower(name), upper(city) || ', ' || postcode FROM stadtwerke.customers", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE name ILIKE 'anna%' ORDER BY name", "allowed"),
        ("wasser", "SELECT m.* FROM stadtwerke.meter_readings m ORDER BY read_on DESC", "allowed"),
        ("wasser", "SELECT m FROM stadtwerke.meter_readings m", "allowed"),
        ("wasser", "SELECT customer_no, sum(cubic_m) OVER (PARTITION BY customer_no ORDER BY read_on) FROM stadtwerke.meter_readings", "allowed"),
        ("wasser", "SELECT g, name FROM generate_series(1, 3) AS g, stadtwerke.customers", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE customer_no = 1; SELECT iban FROM stadtwerke.customers", "masked: iban"),
        ("wasser", "SELECT name /* a /* nested */ comment , phone */ FROM stadtwerke.customers", "allowed"),
        ("wasser", "SELECT $$x$$, phone FROM stadtwerke.customers", "masked: phone"),
        ("wasser", "SELECT $a$ $$ $a$, iban FROM stadtwerke.customers", "masked: iban"),
        ("wasser", "SELECT relname FROM pg_class WHERE relnamespace = 'stadtwerke'::regnamespace", "allowed"),
        ("wasser", "SELECT setting FROM pg_settings WHERE name = 'max_index_keys'", "allowed"),
        ("wasser", "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'", "allowed"),
        ("wasser", "SELECT * FROM pg_catalog.pg_statistic_ext", "allowed"),
        ("wasser", "SELECT * FROM pg_policy", "allowed"),
        ("wasser", "SELECT pg_catalog.version()", "allowed"),
        ("wasser", "SELECT current_user, session_user, current_date", "allowed"),
        ("wasser", "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(customers)$' COLLATE pg_catalog.default", "allowed"),
        ("zeitung", "SELECT name, phone, email FROM zeitung.leads WHERE lead_id = $1", "masked: email"),
        ("zeitung", "INSERT INTO zeitung.subscriptions (lead_id, product, starts_on, monthly_eur) VALUES (1, 'Digital', '2026-12-01', 9.99)", "allowed"),
        ("zeitung", "UPDATE zeitung.subscriptions SET product = 'Digital Plus' WHERE subscription_id = 1", "allowed"),
        ("zeitung", "SELECT l.name, s.product FROM zeitung.leads l JOIN zeitung.subscriptions s USING (lead_id)", "allowed"),
        ("qa", "SELECT subject, status, agent FROM stadtwerke.tickets", "allowed"),
        ("qa", "SELECT note, customer_no FROM stadtwerke.tickets", "masked: note, customer_no"),
        ("qa", "SELECT product, monthly_eur, lead_id FROM zeitung.subscriptions", "masked: monthly_eur, lead_id"),
    ]);
}

/// Every statement real drivers send on their own (catalog introspection, session setup, cursors)
/// must be understood: refusals may only come from the policy, never from the analyzer.
#[test]
fn driver_corpus_is_understood() {
    let cat = catalog();
    let pol = policies();
    let path = vec![vec!["$user".to_owned(), "public".to_owned()]];
    let none = BTreeSet::new();
    let mut count = 0;
    let mut bad = Vec::new();
    for line in include_str!("../corpus/driver_queries.jsonl").lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let sql = v["sql"].as_str().unwrap();
        count += 1;
        let got = verdict(&cat, &pol, "billing_hotline", sql, &path, &none);
        let fetch_offline =
            got == "refused: unsupported_statement" && sql.trim_start().to_ascii_uppercase().starts_with("FETCH");
        if !(got == "allowed"
            || got.starts_with("masked")
            || got.starts_with("dropped")
            || got == "refused: protected_column"
            || fetch_offline)
        {
            bad.push(format!("  {} / {}: {sql}\n      {got}", v["client"], v["what"]));
        }
    }
    assert!(count > 250, "corpus has {count} statements");
    assert!(
        bad.is_empty(),
        "{} driver statements not understood:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
