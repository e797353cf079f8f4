//! Table-driven tests of analysis and decision: (purpose, SQL) → expected verdict, over the sample
//! schema and the shipped policies. No Postgres needed: the catalog comes from sample/schema.sql.

use std::collections::BTreeSet;

use unscharf::analyze::{analyze, AnalyzeCtx};
use unscharf::catalog::{offline, Catalog};
use unscharf::judge::{judge_all, refusal_for, summary, Allowed, JudgeCtx, NoRegistry};
use unscharf::policy::load::{load_dir, load_texts};
use unscharf::policy::{PolicySet, Refusal};

fn catalog() -> Catalog {
    offline::from_schema_sql(include_str!("../sample/schema.sql"), "schema.sql").unwrap()
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
    };
    let a = analyze(sql, ctx).map_err(|e| refusal_for(&e))?;
    let jcx = JudgeCtx {
        policy: pol,
        purpose: &pol.purposes[purpose],
        catalog: cat,
        today: today(),
        read_campaigns: read,
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
        ("wasser", "EXPLAIN SELECT name FROM stadtwerke.customers WHERE phone = $1", "allowed"),
        ("wasser", "EXPLAIN ANALYZE SELECT name FROM stadtwerke.customers WHERE customer_no = 1", "allowed"),
        ("wasser", "COPY stadtwerke.customers (customer_no, name, phone) TO STDOUT", "masked: phone"),
        ("wasser", "COPY (SELECT customer_no, email FROM stadtwerke.customers) TO STDOUT WITH (FORMAT csv, HEADER)", "masked: email"),
        ("wasser", "COPY (SELECT name FROM stadtwerke.customers) TO STDOUT WITH (FORMAT binary)", "allowed"),
        ("wasser", "COPY stadtwerke.tickets (customer_no, subject) FROM STDIN", "allowed"),
        ("wasser", "SELECT count(*) FROM stadtwerke.customers", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE customer_no = 1001 FOR UPDATE", "allowed"),
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

#[test]
fn function_wraps_casts_and_concatenation() {
    let refused = "refused: protected_column";
    run(&[
        ("wasser", "SELECT lower(phone) FROM stadtwerke.customers", refused),
        ("wasser", "SELECT phone::text FROM stadtwerke.customers", refused),
        (
            "wasser",
            "SELECT CAST(iban AS varchar) FROM stadtwerke.customers",
            refused,
        ),
        ("wasser", "SELECT phone || '' FROM stadtwerke.customers", refused),
        ("wasser", "SELECT concat(email) FROM stadtwerke.customers", refused),
        (
            "wasser",
            "SELECT substring(iban from 1 for 4) FROM stadtwerke.customers",
            refused,
        ),
        ("wasser", "SELECT substr(iban, 1, 4) FROM stadtwerke.customers", refused),
        ("wasser", "SELECT length(phone) FROM stadtwerke.customers", refused),
        ("wasser", "SELECT md5(email) FROM stadtwerke.customers", refused),
        (
            "wasser",
            "SELECT COALESCE(phone, '') FROM stadtwerke.customers",
            refused,
        ),
        (
            "wasser",
            "SELECT CASE WHEN phone LIKE '+49%' THEN 1 END FROM stadtwerke.customers",
            refused,
        ),
        (
            "wasser",
            "SELECT phone COLLATE \"C\" FROM stadtwerke.customers",
            refused,
        ),
        ("wasser", "SELECT ARRAY[phone] FROM stadtwerke.customers", refused),
        ("wasser", "SELECT format('%s', iban) FROM stadtwerke.customers", refused),
        (
            "wasser",
            "SELECT string_agg(email, ',') FROM stadtwerke.customers",
            refused,
        ),
        ("wasser", "SELECT max(iban) FROM stadtwerke.customers", refused),
        (
            "wasser",
            "SELECT count(DISTINCT phone) FROM stadtwerke.customers",
            refused,
        ),
        (
            "wasser",
            "SELECT count(*) FILTER (WHERE phone LIKE '+49%') FROM stadtwerke.customers",
            refused,
        ),
        (
            "wasser",
            "SELECT extract(year from birth_date) FROM stadtwerke.customers",
            refused,
        ),
        ("wasser", "SELECT to_json(phone) FROM stadtwerke.customers", refused),
        (
            "wasser",
            "SELECT phone = '+49 30 1234567' FROM stadtwerke.customers",
            refused,
        ),
        (
            "wasser",
            "SELECT translate(phone, '0123456789', 'abcdefghij') FROM stadtwerke.customers",
            refused,
        ),
        ("wasser", "SELECT name || phone FROM stadtwerke.customers", refused),
        ("wasser", "SELECT iban::bytea FROM stadtwerke.customers", refused),
        ("wasser", "SELECT birth_date FROM stadtwerke.customers", refused),
        ("wasser", "SELECT notes FROM stadtwerke.customers", refused),
        (
            "wasser",
            "SELECT name, birth_date + 1 FROM stadtwerke.customers",
            refused,
        ),
        (
            "wasser",
            "SELECT * FROM unnest(ARRAY[(SELECT phone FROM stadtwerke.customers LIMIT 1)])",
            refused,
        ),
        (
            "wasser",
            "SELECT g FROM stadtwerke.customers, generate_series(1, length(phone)) g",
            refused,
        ),
        (
            "wasser",
            "SELECT current_setting('jit'), set_config('jit', phone, false) FROM stadtwerke.customers",
            refused,
        ),
    ]);
}

#[test]
fn renames_through_ctes_subqueries_and_unions() {
    let refused = "refused: protected_column";
    run(&[
        ("wasser", "WITH x AS (SELECT phone AS p FROM stadtwerke.customers) SELECT upper(p) FROM x", refused),
        ("wasser", "SELECT upper(p) FROM (SELECT phone AS p FROM stadtwerke.customers) s", refused),
        ("wasser", "WITH x(p) AS (SELECT iban FROM stadtwerke.customers) SELECT p FROM x WHERE p LIKE 'DE%'", refused),
        ("wasser", "WITH x AS (SELECT iban FROM stadtwerke.customers), y AS (SELECT iban AS z FROM x) SELECT left(z, 2) FROM y", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers UNION SELECT phone FROM stadtwerke.customers", refused),
        ("wasser", "SELECT phone FROM stadtwerke.customers UNION SELECT '+49 30 1234567'", refused),
        ("wasser", "SELECT phone FROM stadtwerke.customers INTERSECT SELECT '+49 30 1234567'", refused),
        ("wasser", "SELECT phone FROM stadtwerke.customers EXCEPT SELECT '+49 30 1234567'", refused),
        ("wasser", "SELECT x FROM (SELECT phone FROM stadtwerke.customers UNION ALL SELECT name FROM stadtwerke.customers) s(x)", refused),
        ("wasser", "WITH RECURSIVE r(p) AS (SELECT phone FROM stadtwerke.customers UNION ALL SELECT p || 'x' FROM r WHERE false) SELECT p FROM r", refused),
        ("wasser", "SELECT (SELECT lower(phone) FROM stadtwerke.customers LIMIT 1)", refused),
        ("wasser", "SELECT * FROM (SELECT birth_date FROM stadtwerke.customers) s", refused),
        ("wasser", "SELECT s.birth_date FROM (SELECT * FROM stadtwerke.customers) s", refused),
        ("wasser", "WITH x AS (SELECT * FROM stadtwerke.customers) SELECT notes FROM x", refused),
        ("wasser", "SELECT t.a FROM (SELECT * FROM stadtwerke.customers) AS t(a, b, c, d, e, f)", "allowed"),
        ("wasser", "SELECT t.f FROM (SELECT * FROM stadtwerke.customers) AS t(a, b, c, d, e, f)", "masked: f"),
        ("wasser", "SELECT t.i FROM (SELECT * FROM stadtwerke.customers) AS t(a, b, c, d, e, f, g, h, i)", refused),
        ("wasser", "SELECT p FROM (SELECT phone FROM stadtwerke.customers) AS s(p) ORDER BY p", refused),
        ("wasser", "SELECT * FROM (VALUES (1)) v(x), LATERAL (SELECT upper(email) FROM stadtwerke.customers) l", refused),
    ]);
}

#[test]
fn whole_row_references() {
    let refused = "refused: protected_column";
    run(&[
        ("wasser", "SELECT c FROM stadtwerke.customers c", refused),
        ("wasser", "SELECT customers FROM stadtwerke.customers", refused),
        ("wasser", "SELECT row_to_json(c) FROM stadtwerke.customers c", refused),
        ("wasser", "SELECT to_jsonb(c.*) FROM stadtwerke.customers c", refused),
        ("wasser", "SELECT (c).phone FROM stadtwerke.customers c", refused),
        ("wasser", "SELECT (c).name FROM stadtwerke.customers c", refused),
        ("wasser", "SELECT c::text FROM stadtwerke.customers c", refused),
        ("wasser", "SELECT count(c.*) FROM stadtwerke.customers c", refused),
        (
            "wasser",
            "SELECT s FROM (SELECT phone FROM stadtwerke.customers) s",
            refused,
        ),
        (
            "wasser",
            "SELECT name FROM stadtwerke.customers c WHERE c::text LIKE '%1234%'",
            refused,
        ),
        (
            "wasser",
            "SELECT json_agg(c ORDER BY name) FROM stadtwerke.customers c",
            refused,
        ),
        ("qa", "SELECT t FROM stadtwerke.tickets t", refused),
    ]);
}

#[test]
fn where_order_group_inference() {
    let refused = "refused: protected_column";
    run(&[
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone LIKE '+49 30%'", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone > '+49'", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone BETWEEN 'a' AND 'b'", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE substr(phone, 1, 3) = '+49'", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE email = 'anna.schmidt@example.org'", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE iban IS NOT NULL", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = name", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone IN (SELECT phone FROM stadtwerke.customers)", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE CASE WHEN phone = '1' THEN true END", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = '1' AND phone LIKE '%2'", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE birth_date = '1984-07-02'", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE notes IS NULL", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers ORDER BY phone", refused),
        ("wasser", "SELECT name, phone FROM stadtwerke.customers ORDER BY 2", refused),
        ("wasser", "SELECT phone AS x FROM stadtwerke.customers ORDER BY x", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers ORDER BY birth_date", refused),
        ("wasser", "SELECT count(*) FROM stadtwerke.customers GROUP BY phone", refused),
        ("wasser", "SELECT phone, count(*) FROM stadtwerke.customers GROUP BY 1", refused),
        ("wasser", "SELECT DISTINCT ON (iban) name FROM stadtwerke.customers", refused),
        ("wasser", "SELECT DISTINCT phone FROM stadtwerke.customers", refused),
        ("wasser", "SELECT count(*) FROM stadtwerke.customers HAVING min(phone) > '+49'", refused),
        ("wasser", "SELECT row_number() OVER (ORDER BY phone) FROM stadtwerke.customers", refused),
        ("wasser", "SELECT rank() OVER w FROM stadtwerke.customers WINDOW w AS (PARTITION BY email)", refused),
        ("wasser", "SELECT a.name FROM stadtwerke.customers a JOIN stadtwerke.customers b ON a.phone = b.phone", refused),
        ("wasser", "SELECT a.name FROM stadtwerke.customers a JOIN stadtwerke.customers b USING (iban)", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE EXISTS (SELECT 1 FROM stadtwerke.customers c2 WHERE c2.phone LIKE '%7')", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers c WHERE (SELECT count(*) FROM stadtwerke.tickets t WHERE t.note = c.email) > 0", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers LIMIT (SELECT length(phone) FROM stadtwerke.customers LIMIT 1)", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = ANY(ARRAY[name])", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE (SELECT phone) LIKE '%'", refused),
        // A lookup finds the caller; it does not test guesses (at most 10 values per statement).
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone IN ('+49 30 1234500', '+49 30 1234501', '+49 30 1234502', '+49 30 1234503', '+49 30 1234504', '+49 30 1234505', '+49 30 1234506', '+49 30 1234507', '+49 30 1234508', '+49 30 1234509')", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone IN ('+49 30 1234500', '+49 30 1234501', '+49 30 1234502', '+49 30 1234503', '+49 30 1234504', '+49 30 1234505', '+49 30 1234506', '+49 30 1234507', '+49 30 1234508', '+49 30 1234509', '+49 30 1234510')", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = ANY('{+49 30 1234500,+49 30 1234501,+49 30 1234502,+49 30 1234503,+49 30 1234504,+49 30 1234505,+49 30 1234506,+49 30 1234507,+49 30 1234508,+49 30 1234509,+49 30 1234510}')", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = ANY('{+49 30 1234500,+49 30 1234501,+49 30 1234502,+49 30 1234503,+49 30 1234504,+49 30 1234505,+49 30 1234506,+49 30 1234507,+49 30 1234508,+49 30 1234509,+49 30 1234510}'::text[])", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = ANY(ARRAY['+49 30 1234500', '+49 30 1234501', '+49 30 1234502', '+49 30 1234503', '+49 30 1234504', '+49 30 1234505', '+49 30 1234506', '+49 30 1234507', '+49 30 1234508', '+49 30 1234509', '+49 30 1234510'])", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone = ANY('{a,b}')", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone IN ('+49 30 1234500', '+49 30 1234501', '+49 30 1234502', '+49 30 1234503', '+49 30 1234504', '+49 30 1234505', '+49 30 1234506', '+49 30 1234507', '+49 30 1234508', '+49 30 1234509') OR phone = 'x'", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE customer_no IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29) AND phone = $1", "allowed"),
        // A negated lookup tells as much as the lookup, and counts the same.
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone NOT IN ('+49 30 1234567')", "allowed"),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone NOT IN ('+49 30 1234500', '+49 30 1234501', '+49 30 1234502', '+49 30 1234503', '+49 30 1234504', '+49 30 1234505', '+49 30 1234506', '+49 30 1234507', '+49 30 1234508', '+49 30 1234509', '+49 30 1234510')", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE NOT (phone IN ('+49 30 1234500', '+49 30 1234501', '+49 30 1234502', '+49 30 1234503', '+49 30 1234504', '+49 30 1234505', '+49 30 1234506', '+49 30 1234507', '+49 30 1234508', '+49 30 1234509', '+49 30 1234510'))", refused),
        ("wasser", "SELECT name FROM stadtwerke.customers WHERE phone <> '+49 30 1234567'", refused),
        // Brackets are invisible to Postgres: `(name)` is the output `name`, `(2)` the second output.
        ("wasser", "SELECT name AS who, phone AS name FROM stadtwerke.customers ORDER BY (name)", refused),
        ("wasser", "SELECT name AS who, phone AS name FROM stadtwerke.customers ORDER BY ((name)) DESC", refused),
        ("wasser", "SELECT name, phone FROM stadtwerke.customers ORDER BY (2)", refused),
        ("wasser", "SELECT DISTINCT ON ((name)) name AS who, iban AS name FROM stadtwerke.customers", refused),
        ("wasser", "SELECT who, p AS name FROM (SELECT name AS who, phone AS p FROM stadtwerke.customers) s ORDER BY (name)", refused),
        ("wasser", "SELECT phone AS zz, count(*) FROM stadtwerke.customers GROUP BY (zz)", refused),
        ("wasser", "SELECT email, count(*) FROM stadtwerke.customers GROUP BY (1)", refused),
        ("wasser", "COPY (SELECT name AS who, phone AS name FROM stadtwerke.customers ORDER BY (name)) TO STDOUT", refused),
        ("wasser", "SELECT name AS n1 FROM stadtwerke.customers UNION ALL SELECT phone FROM stadtwerke.customers ORDER BY (n1)", refused),
        // ...while a bracketed input column in GROUP BY stays the input column, as in Postgres.
        ("wasser", "SELECT name AS who, count(*) FROM stadtwerke.customers GROUP BY (name)", "allowed"),
        ("wasser", "SELECT name, city FROM stadtwerke.customers ORDER BY (city), (1)", "allowed"),
    ]);
}

#[test]
fn write_path_laundering() {
    let refused = "refused: protected_column";
    run(&[
        ("wasser", "INSERT INTO stadtwerke.tickets (customer_no, subject, note) SELECT customer_no, 'x', phone FROM stadtwerke.customers", refused),
        ("wasser", "INSERT INTO stadtwerke.tickets (subject, note) SELECT 'x', iban FROM stadtwerke.customers", refused),
        ("wasser", "INSERT INTO stadtwerke.tickets (subject, note) SELECT 'x', birth_date::text FROM stadtwerke.customers", refused),
        ("wasser", "UPDATE stadtwerke.tickets SET note = (SELECT email FROM stadtwerke.customers WHERE customer_no = 1001) WHERE ticket_id = 1", refused),
        ("wasser", "UPDATE stadtwerke.tickets t SET note = c.phone FROM stadtwerke.customers c WHERE c.customer_no = t.customer_no", refused),
        ("wasser", "UPDATE stadtwerke.tickets SET (subject, note) = (SELECT name, iban FROM stadtwerke.customers LIMIT 1)", refused),
        ("wasser", "INSERT INTO stadtwerke.tickets (subject, note) VALUES ('x', (SELECT phone FROM stadtwerke.customers LIMIT 1))", refused),
        ("wasser", "WITH x AS (SELECT phone FROM stadtwerke.customers) INSERT INTO stadtwerke.tickets (subject, note) SELECT 'x', phone FROM x", refused),
        ("wasser", "UPDATE stadtwerke.tickets SET note = note WHERE customer_no IN (SELECT customer_no FROM stadtwerke.customers WHERE phone LIKE '+49%')", refused),
        ("wasser", "MERGE INTO stadtwerke.tickets t USING stadtwerke.customers c ON t.customer_no = c.customer_no WHEN MATCHED THEN UPDATE SET note = c.phone", refused),
        ("wasser", "INSERT INTO stadtwerke.tickets (subject, note) VALUES ('x', 'y') ON CONFLICT (ticket_id) DO UPDATE SET note = (SELECT iban FROM stadtwerke.customers LIMIT 1)", refused),
        // Rule 8: protected data may not flow into a new table; without protected data it is still DDL.
        ("wasser", "CREATE TABLE x AS SELECT phone FROM stadtwerke.customers", refused),
        ("wasser", "CREATE TEMP TABLE x AS SELECT name, lower(iban) FROM stadtwerke.customers", refused),
        ("wasser", "SELECT phone INTO x FROM stadtwerke.customers", refused),
        ("wasser", "SELECT name, email || '' AS e INTO TEMP x FROM stadtwerke.customers", refused),
        ("wasser", "WITH c AS (SELECT iban FROM stadtwerke.customers) SELECT iban INTO x FROM c", refused),
        ("wasser", "SELECT * INTO x FROM stadtwerke.customers", refused),
        ("wasser", "CREATE TABLE x AS SELECT name, city FROM stadtwerke.customers", "refused: unsupported_statement"),
        ("wasser", "SELECT name INTO x FROM stadtwerke.customers", "refused: unsupported_statement"),
        ("wasser", "SELECT 1 AS a INTO x", "refused: unsupported_statement"),
        // INTO is only a top-level clause: behind PREPARE, EXPLAIN or in a subquery it stays unsupported.
        ("wasser", "PREPARE p AS SELECT name INTO x FROM stadtwerke.customers", "refused: unsupported_statement"),
        ("wasser", "EXPLAIN ANALYZE SELECT name INTO x FROM stadtwerke.customers", "refused: unsupported_statement"),
        ("wasser", "EXPLAIN ANALYZE CREATE TABLE x AS SELECT name FROM stadtwerke.customers", "refused: unsupported_statement"),
        ("wasser", "SELECT * FROM (SELECT name INTO x FROM stadtwerke.customers) s", "refused: unsupported_statement"),
        ("wasser", "CREATE TEMP TABLE x (a text)", "refused: unsupported_statement"),
        ("wasser", "UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1", "refused: outside_purpose"),
        ("wasser", "DELETE FROM stadtwerke.tickets WHERE ticket_id = 1", "refused: outside_purpose"),
        ("wasser", "DELETE FROM stadtwerke.tickets WHERE ticket_id = 1 RETURNING *", "refused: outside_purpose"),
        ("wasser", "INSERT INTO stadtwerke.meter_readings (customer_no, read_on, cubic_m) VALUES (1001, now(), 1)", "refused: outside_purpose"),
        ("wasser", "COPY stadtwerke.customers FROM STDIN", "refused: outside_purpose"),
        ("wasser", "TRUNCATE stadtwerke.tickets", "refused: unsupported_statement"),
        ("wasser", "WITH d AS (DELETE FROM stadtwerke.tickets RETURNING *) SELECT * FROM d", "refused: outside_purpose"),
        ("wasser", "WITH u AS (UPDATE stadtwerke.tickets SET note = 'x' RETURNING note) SELECT note FROM u", "allowed"),
    ]);
}

#[test]
fn copy_cursors_prepare_explain() {
    run(&[
        (
            "wasser",
            "COPY stadtwerke.customers TO STDOUT",
            "refused: protected_column",
        ),
        (
            "wasser",
            "COPY stadtwerke.customers (birth_date) TO STDOUT",
            "refused: protected_column",
        ),
        (
            "wasser",
            "COPY (SELECT * FROM stadtwerke.customers) TO STDOUT",
            "refused: protected_column",
        ),
        (
            "wasser",
            "COPY (SELECT lower(email) FROM stadtwerke.customers) TO STDOUT",
            "refused: protected_column",
        ),
        (
            "wasser",
            "COPY stadtwerke.customers TO '/tmp/x'",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "COPY stadtwerke.customers (name) TO PROGRAM 'cat'",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "COPY stadtwerke.tickets FROM '/etc/passwd'",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "COPY (SELECT iban FROM stadtwerke.customers) TO STDOUT WITH (FORMAT binary)",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "COPY (SELECT name FROM zeitung.leads) TO STDOUT",
            "refused: outside_purpose",
        ),
        (
            "wasser",
            "DECLARE c CURSOR FOR SELECT lower(iban) FROM stadtwerke.customers",
            "refused: protected_column",
        ),
        (
            "wasser",
            "DECLARE c BINARY CURSOR FOR SELECT name FROM stadtwerke.customers",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "DECLARE c CURSOR FOR SELECT c FROM stadtwerke.customers c",
            "refused: protected_column",
        ),
        (
            "wasser",
            "PREPARE p AS SELECT phone FROM stadtwerke.customers ORDER BY phone",
            "refused: protected_column",
        ),
        (
            "wasser",
            "PREPARE p AS INSERT INTO stadtwerke.tickets (note) SELECT iban FROM stadtwerke.customers",
            "refused: protected_column",
        ),
        (
            "wasser",
            "PREPARE p AS CREATE TABLE x (a int)",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "EXPLAIN ANALYZE SELECT name FROM stadtwerke.customers WHERE phone LIKE '+49%'",
            "refused: protected_column",
        ),
        (
            "wasser",
            "EXPLAIN SELECT name FROM stadtwerke.customers WHERE phone LIKE '+49%'",
            "refused: protected_column",
        ),
        (
            "wasser",
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT lower(phone) FROM stadtwerke.customers",
            "refused: protected_column",
        ),
        (
            "wasser",
            "EXPLAIN ANALYZE DELETE FROM stadtwerke.tickets",
            "refused: outside_purpose",
        ),
        ("wasser", "EXECUTE p", "refused: unsupported_statement"),
        // Prepared or declared earlier in the same message: judged by what it runs (the summary
        // lists the plans of both statements).
        (
            "wasser",
            "PREPARE p AS SELECT name, phone FROM stadtwerke.customers; EXECUTE p",
            "masked: phone, phone",
        ),
        (
            "wasser",
            "PREPARE p(int) AS SELECT iban FROM stadtwerke.customers WHERE customer_no = $1; EXECUTE p(1001)",
            "masked: iban, iban",
        ),
        (
            "wasser",
            "PREPARE p AS SELECT birth_date FROM stadtwerke.customers; EXECUTE p",
            "refused: protected_column",
        ),
        (
            "wasser",
            "BEGIN; DECLARE c CURSOR FOR SELECT email FROM stadtwerke.customers; FETCH 2 FROM c; COMMIT",
            "masked: email, email",
        ),
        (
            "wasser",
            "PREPARE q AS SELECT 1; EXECUTE p",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "EXECUTE p((SELECT phone FROM stadtwerke.customers LIMIT 1))",
            "refused: protected_column",
        ),
        ("wasser", "FETCH ALL FROM c", "refused: unsupported_statement"),
    ]);
}

#[test]
fn forbidden_functions_and_settings() {
    let f = "refused: forbidden_function";
    let s = "refused: forbidden_setting";
    run(&[
        ("wasser", "SELECT pg_read_file('/etc/passwd')", f),
        ("wasser", "SELECT pg_catalog.pg_read_binary_file('x')", f),
        ("wasser", "SELECT * FROM dblink('host=x', 'select 1') AS t(a int)", f),
        ("wasser", "SELECT lo_import('/etc/passwd')", f),
        ("wasser", "SELECT lo_get(1)", f),
        (
            "wasser",
            "SELECT query_to_xml('select phone from stadtwerke.customers', true, true, '')",
            f,
        ),
        (
            "wasser",
            "SELECT table_to_xml('stadtwerke.customers', true, true, '')",
            f,
        ),
        ("wasser", "SELECT cursor_to_xml('c', 10, true, true, '')", f),
        ("wasser", "SELECT schema_to_xml('stadtwerke', true, true, '')", f),
        ("wasser", "SELECT database_to_xml(true, true, '')", f),
        ("wasser", "SELECT pg_notify('x', name) FROM stadtwerke.customers", f),
        (
            "wasser",
            "SELECT * FROM ts_stat('select to_tsvector(name) from stadtwerke.customers')",
            f,
        ),
        ("wasser", "SELECT pg_ls_dir('.')", f),
        ("wasser", "SELECT pg_stat_get_activity(NULL)", f),
        ("wasser", "SELECT pg_terminate_backend(1)", f),
        ("wasser", "SELECT pg_cancel_backend(1)", f),
        ("wasser", "SELECT stadtwerke.secret_fn()", f),
        ("wasser", "SELECT secret_fn(name) FROM stadtwerke.customers", f),
        ("wasser", "SELECT set_config('role', 'postgres', false)", s),
        ("wasser", "SELECT set_config('unscharf.purpose', 'x', false)", s),
        ("wasser", "SELECT set_config($1, 'x', false)", s),
        (
            "wasser",
            "SELECT set_config('standard_conforming_strings', 'off', false)",
            s,
        ),
        ("wasser", "SET standard_conforming_strings = off", s),
        ("wasser", "SET client_encoding = 'SJIS'", s),
        ("wasser", "SET NAMES 'SJIS'", s),
        ("wasser", "SET ROLE postgres", s),
        ("wasser", "SET SESSION AUTHORIZATION postgres", s),
        ("wasser", "SET unscharf.purpose = 'x'", s),
        ("wasser", "RESET unscharf.purpose", s),
        ("wasser", "NOTIFY x, 'y'", "refused: unsupported_statement"),
        (
            "wasser",
            "DO $$ BEGIN PERFORM 1; END $$",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "do language plpgsql 'BEGIN PERFORM 1; END'",
            "refused: unsupported_statement",
        ),
        ("wasser", "CALL some_proc($$x$$)", "refused: unsupported_statement"),
        // DDL sqlparser cannot read is still DDL (rule 8), not a parse error.
        (
            "wasser",
            "CREATE POLICY p ON stadtwerke.customers USING (true)",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO public",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "SECURITY LABEL ON TABLE stadtwerke.customers IS 'x'",
            "refused: unsupported_statement",
        ),
        ("wasser", "CALL some_proc()", "refused: unsupported_statement"),
        (
            "wasser",
            "GRANT SELECT ON stadtwerke.customers TO agent_wasser",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "VACUUM stadtwerke.customers",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "LOCK TABLE stadtwerke.tickets",
            "refused: unsupported_statement",
        ),
        ("wasser", "PREPARE TRANSACTION 'x'", "refused: unparsable"),
    ]);
}

#[test]
fn parser_differential_tricks_and_smuggling() {
    let u = "refused: unparsable";
    run(&[
        ("wasser", "SELECT U&\"\\0070hone\" FROM stadtwerke.customers", u),
        ("wasser", "SELECT u&'\\0041'", u),
        ("wasser", "SELECT \"phone\" UESCAPE '!' FROM stadtwerke.customers", u),
        ("wasser", "SELECT name /* /* */ , phone FROM stadtwerke.customers", u),
        ("wasser", "SELECT 123abc", u),
        ("wasser", "SELECT 'a'\n'b', iban FROM stadtwerke.customers", u),
        (
            "wasser",
            "SELECT 'x\\' , phone FROM stadtwerke.customers --'",
            "masked: phone",
        ),
        (
            "wasser",
            "SELECT E'x\\' , phone FROM stadtwerke.customers --'",
            "allowed",
        ),
        (
            "wasser",
            "SELECT name FROM stadtwerke.customers; SELECT lower(iban) FROM stadtwerke.customers",
            "refused: protected_column",
        ),
        ("wasser", "SELECT 1; SET ROLE postgres", "refused: forbidden_setting"),
        (
            "wasser",
            "SELECT 1; DROP TABLE stadtwerke.customers",
            "refused: unsupported_statement",
        ),
        (
            "wasser",
            "SELECT 1; SELECT * FROM zeitung.leads",
            "refused: outside_purpose",
        ),
        (
            "wasser",
            "SELECT 1;/* ; */SELECT phone || '' FROM stadtwerke.customers",
            "refused: protected_column",
        ),
        ("wasser", "SELECT \"phone\" FROM stadtwerke.customers", "masked: phone"),
        (
            "wasser",
            "SELECT \"PHONE\" FROM stadtwerke.customers",
            "refused: unknown_relation",
        ),
        ("wasser", "SELECT PHONE FROM STADTWERKE.CUSTOMERS", "masked: phone"),
        ("wasser", "SELECT * FROM pg_stats", "refused: catalog_leak"),
        (
            "wasser",
            "SELECT * FROM pg_catalog.pg_statistic",
            "refused: catalog_leak",
        ),
        ("wasser", "SELECT query FROM pg_stat_activity", "refused: catalog_leak"),
        ("wasser", "SELECT * FROM pg_largeobject", "refused: catalog_leak"),
        ("wasser", "SELECT * FROM pg_stats_ext_exprs", "refused: catalog_leak"),
        ("wasser", "SELECT * FROM stadtwerke.nope", "refused: unknown_relation"),
        (
            "wasser",
            "SELECT nope FROM stadtwerke.customers",
            "refused: unknown_relation",
        ),
        ("wasser", "SELECT * FROM customers", "refused: unknown_relation"),
    ]);
}

#[test]
fn cross_campaign_access() {
    let x = "refused: cross_campaign";
    run(&[
        ("qa", "SELECT t.subject, s.product FROM stadtwerke.tickets t JOIN zeitung.subscriptions s ON s.agent = t.agent", x),
        ("qa", "SELECT subject FROM stadtwerke.tickets WHERE agent IN (SELECT agent FROM zeitung.subscriptions)", x),
        ("qa", "SELECT subject FROM stadtwerke.tickets t WHERE EXISTS (SELECT 1 FROM zeitung.subscriptions s WHERE s.agent = t.agent)", x),
        ("qa", "SELECT agent FROM stadtwerke.tickets UNION ALL SELECT agent FROM zeitung.subscriptions", x),
        ("qa", "WITH s AS (SELECT agent FROM zeitung.subscriptions) SELECT t.subject FROM stadtwerke.tickets t JOIN s USING (agent)", x),
        ("qa", "SELECT (SELECT count(*) FROM zeitung.subscriptions), count(*) FROM stadtwerke.tickets", x),
        ("qa", "SELECT * FROM zeitung.leads", "refused: outside_purpose"),
        ("wasser", "SELECT name FROM zeitung.leads", "refused: outside_purpose"),
        ("wasser", "SELECT c.name FROM stadtwerke.customers c JOIN zeitung.leads l ON l.phone = c.phone", x),
        ("wasser", "INSERT INTO zeitung.subscriptions (lead_id, product, starts_on, monthly_eur) SELECT 1, name, now(), 1 FROM stadtwerke.customers", x),
        ("wasser", "UPDATE stadtwerke.tickets SET note = l.name FROM zeitung.leads l WHERE l.lead_id = 1", x),
        ("zeitung", "SELECT * FROM stadtwerke.customers", "refused: outside_purpose"),
        ("zeitung", "SELECT name FROM zeitung.leads WHERE postcode IN (SELECT postcode FROM stadtwerke.customers)", x),
    ]);
}

#[test]
fn search_path_shadowing_and_session_rules() {
    let cat = catalog();
    let pol = policies();
    let none = BTreeSet::new();
    let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let w = "billing_hotline";
    assert_eq!(
        verdict(
            &cat,
            &pol,
            w,
            "SELECT phone FROM customers",
            &[p(&["stadtwerke"])],
            &none
        ),
        "masked: phone"
    );
    assert_eq!(
        verdict(
            &cat,
            &pol,
            w,
            "SELECT name FROM leads",
            &[p(&["zeitung", "public"])],
            &none
        ),
        "refused: outside_purpose"
    );
    assert_eq!(
        verdict(&cat, &pol, w, "SELECT phone FROM customers", &[p(&["public"])], &none),
        "refused: unknown_relation"
    );
    // While search_path may be either value, an unqualified name must resolve the same under both.
    assert_eq!(
        verdict(
            &cat,
            &pol,
            w,
            "SELECT name FROM customers",
            &[p(&["stadtwerke"]), p(&["zeitung"])],
            &none
        ),
        "refused: unsupported_statement"
    );
    assert_eq!(
        verdict(
            &cat,
            &pol,
            w,
            "SELECT name FROM stadtwerke.customers",
            &[p(&["stadtwerke"]), p(&["zeitung"])],
            &none
        ),
        "allowed"
    );
    // A SET earlier in the same message: later statements must resolve the same under old and new path.
    assert_eq!(
        verdict(
            &cat,
            &pol,
            w,
            "SET search_path = zeitung; SELECT name FROM customers",
            &[p(&["stadtwerke"])],
            &none
        ),
        "refused: unsupported_statement"
    );
    assert_eq!(
        verdict(
            &cat,
            &pol,
            w,
            "SET search_path = stadtwerke, public; SELECT name FROM stadtwerke.customers",
            &[p(&["public"])],
            &none
        ),
        "allowed"
    );
    // "$user" expands to the login; pg_catalog comes first unless placed explicitly.
    assert_eq!(
        verdict(
            &cat,
            &pol,
            w,
            "SELECT count(*) FROM pg_class",
            &[p(&["$user", "public"])],
            &none
        ),
        "allowed"
    );
    // Unknown path (set_config with a parameter): unique names still resolve.
    assert_eq!(
        verdict(&cat, &pol, w, "SELECT subject FROM tickets", &[], &none),
        "allowed"
    );
    // Rule 4, lifetime clause: a session that read stadtwerke may not write into zeitung.
    let read: BTreeSet<String> = ["stadtwerke".to_string()].into();
    assert_eq!(
        verdict(
            &cat,
            &pol,
            "subscription_sales",
            "INSERT INTO zeitung.subscriptions (lead_id, product, starts_on, monthly_eur) VALUES (1, 'x', now(), 1)",
            &[p(&["public"])],
            &read
        ),
        "refused: cross_campaign"
    );
    assert_eq!(
        verdict(
            &cat,
            &pol,
            "subscription_sales",
            "SELECT name FROM zeitung.leads",
            &[p(&["public"])],
            &read
        ),
        "allowed"
    );
}

#[test]
fn contract_end_and_policy_variants() {
    let cat = catalog();
    let pol = load_texts(
        &[
            (
                "stadtwerke.yaml",
                "campaign: stadtwerke\ncontract_ends: 2026-11-28\ntables: [stadtwerke.*]\npurposes:\n  old:\n    members: [a]\n    tables:\n      stadtwerke.tickets: { columns: all }\n",
            ),
            (
                "zeitung.yaml",
                "campaign: zeitung\ncontract_ends: 2026-11-29\ntables: [zeitung.*]\npurposes:\n  sales:\n    members: [b]\n    tables:\n      zeitung.leads: { columns: { name: allow, phone: { mask: last(2) } } }\n",
            ),
        ],
        None,
    )
    .unwrap();
    let none = BTreeSet::new();
    let path = [vec!["public".to_string()]];
    assert_eq!(
        verdict(
            &cat,
            &pol,
            "old",
            "SELECT subject FROM stadtwerke.tickets",
            &path,
            &none
        ),
        "refused: contract_ended"
    );
    assert_eq!(verdict(&cat, &pol, "old", "SELECT 1", &path, &none), "allowed");
    // The last contract day itself is still fine.
    assert_eq!(
        verdict(
            &cat,
            &pol,
            "sales",
            "SELECT name, phone FROM zeitung.leads",
            &path,
            &none
        ),
        "masked: phone"
    );
    // `lookup` defaults to false: an exact match on a masked column is still refused.
    assert_eq!(
        verdict(
            &cat,
            &pol,
            "sales",
            "SELECT name FROM zeitung.leads WHERE phone = $1",
            &path,
            &none
        ),
        "refused: protected_column"
    );
    // Unlisted columns are dropped: new data is private by default.
    assert_eq!(
        verdict(&cat, &pol, "sales", "SELECT * FROM zeitung.leads", &path, &none),
        "masked: phone; dropped: lead_id, email, postcode, contact_ok_until"
    );
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
    for line in include_str!("corpus/driver_queries.jsonl").lines() {
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

#[test]
fn returning_and_merge_on_a_writable_table_with_protected_columns() {
    let cat = catalog();
    let pol = load_texts(
        &[(
            "stadtwerke.yaml",
            "campaign: stadtwerke\ntables: [stadtwerke.*]\npurposes:\n  desk:\n    members: [a]\n    tables:\n      stadtwerke.customers:\n        columns: { customer_no: allow, name: allow, phone: { mask: last(3), lookup: true }, email: { mask: email } }\n        write: [insert, update, delete]\n      stadtwerke.tickets: { columns: all, write: [insert, update] }\n",
        )],
        None,
    )
    .unwrap();
    let path = [vec!["public".to_string()]];
    let none = BTreeSet::new();
    let refused = "refused: protected_column";
    let cases = [
        ("UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1 RETURNING customer_no, phone", "masked: phone"),
        ("UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1 RETURNING *", "masked: phone, email; dropped: street, postcode, city, iban, birth_date, notes"),
        ("UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1 RETURNING iban", refused),
        ("UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1 RETURNING lower(phone)", refused),
        ("UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1 RETURNING phone AS name", "masked: name"),
        ("INSERT INTO stadtwerke.customers (customer_no, name, phone) VALUES (9, 'x', $1) RETURNING customer_no", "allowed"),
        ("INSERT INTO stadtwerke.customers (customer_no, name, phone) VALUES (9, 'x', $1) RETURNING email", "masked: email"),
        ("UPDATE stadtwerke.customers SET name = email WHERE customer_no = 1", refused),
        ("UPDATE stadtwerke.customers SET phone = phone WHERE customer_no = 1", refused),
        ("DELETE FROM stadtwerke.customers WHERE phone = $1 RETURNING name", "allowed"),
        ("DELETE FROM stadtwerke.customers WHERE phone LIKE $1 RETURNING name", refused),
        (
            "MERGE INTO stadtwerke.tickets t USING (VALUES (1, 'x')) v(id, s) ON t.ticket_id = v.id WHEN MATCHED THEN UPDATE SET subject = v.s WHEN NOT MATCHED THEN INSERT (subject) VALUES (v.s)",
            "allowed",
        ),
        (
            "MERGE INTO stadtwerke.tickets t USING stadtwerke.customers c ON t.customer_no = c.customer_no WHEN MATCHED THEN UPDATE SET note = c.name",
            "allowed",
        ),
        (
            "MERGE INTO stadtwerke.tickets t USING stadtwerke.customers c ON t.customer_no = c.customer_no WHEN MATCHED THEN UPDATE SET note = c.email",
            refused,
        ),
        (
            "MERGE INTO stadtwerke.tickets t USING stadtwerke.customers c ON t.note = c.phone WHEN MATCHED THEN UPDATE SET note = 'x'",
            refused,
        ),
        (
            "MERGE INTO stadtwerke.tickets t USING (VALUES (1)) v(id) ON t.ticket_id = v.id WHEN MATCHED THEN DELETE",
            "refused: outside_purpose",
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(sql, want)| {
            let got = verdict(&cat, &pol, "desk", sql, &path, &none);
            (got != *want).then(|| format!("  {sql}\n      expected {want}\n      got      {got}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Refusals say which rule, column, position and purpose: the text a DBA reads in the audit trail.
#[test]
fn refusal_messages_name_the_column_position_and_purpose() {
    let cat = catalog();
    let pol = policies();
    let path = vec![vec!["public".to_owned()]];
    let none = BTreeSet::new();
    let detail = |sql: &str| -> String {
        match judged(&cat, &pol, "billing_hotline", sql, &path, &none) {
            Err(r) => r.detail,
            Ok(_) => panic!("allowed: {sql}"),
        }
    };
    let phone = "stadtwerke.customers.phone";
    for (sql, parts) in [
        (
            "SELECT name FROM stadtwerke.customers ORDER BY phone",
            vec![phone, "ORDER BY", "billing_hotline"],
        ),
        (
            "SELECT count(*) FROM stadtwerke.customers GROUP BY email",
            vec!["customers.email", "GROUP BY"],
        ),
        (
            "SELECT name FROM stadtwerke.customers WHERE phone LIKE '1%'",
            vec![phone, "LIKE", "WHERE"],
        ),
        (
            "SELECT a.name FROM stadtwerke.customers a JOIN stadtwerke.customers b ON a.iban = b.iban",
            vec!["customers.iban", "JOIN"],
        ),
        (
            "SELECT rank() OVER (ORDER BY phone) FROM stadtwerke.customers",
            vec![phone, "window"],
        ),
        (
            "SELECT count(*) FROM stadtwerke.customers HAVING max(email) > 'a'",
            vec!["customers.email", "HAVING"],
        ),
        (
            "SELECT birth_date FROM stadtwerke.customers",
            vec!["customers.birth_date", "not visible", "billing_hotline"],
        ),
        (
            "SELECT md5(iban) FROM stadtwerke.customers",
            vec!["customers.iban", "md5"],
        ),
        (
            "INSERT INTO stadtwerke.tickets (subject, note) SELECT 'x', phone FROM stadtwerke.customers",
            vec![phone, "written"],
        ),
        ("SELECT c FROM stadtwerke.customers c", vec!["whole-row", "customers"]),
        (
            "SELECT * FROM zeitung.leads",
            vec!["zeitung.leads", "zeitung", "billing_hotline"],
        ),
    ] {
        let d = detail(sql);
        for part in parts {
            assert!(d.contains(part), "{sql}\n  detail: {d}\n  lacks: {part}");
        }
    }
}
