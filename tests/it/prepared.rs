//! Prepared statements across the DBA's changes (round 146): Postgres analyzes a prepared
//! statement again once what it names has changed, and its names may then mean something else.
//! The proxy analyzes it again too; none of these may return a value the purpose may not read.

use crate::harness::*;
use crate::raw::{self, Raw};

/// Values a later migration puts where the purpose may not read them.
const SECRETS: [&str; 3] = ["MOBILE-146", "GATE-146", "SHADOW-146"];

async fn exchange(r: &mut Raw, msgs: &[Vec<u8>]) -> String {
    r.send(&msgs.concat()).await;
    let bytes = tokio::time::timeout(std::time::Duration::from_secs(20), r.bytes_until_ready())
        .await
        .expect("no ReadyForQuery within 20 s");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Bind and Execute of a named statement, with a Describe of the portal.
fn run(stmt: &str) -> Vec<Vec<u8>> {
    vec![
        raw::bind("", stmt, &[], &[]),
        raw::describe(b'P', ""),
        raw::execute("", 0),
        raw::sync(),
    ]
}

const POLICY: &str = "campaign: rt146
tables: [rt146.*]
purposes:
  transparency:
    tables:
      rt146.people: { columns: { id: allow, name: allow, phone: drop } }
      rt146.readings: { columns: { id: allow, cubic_m: allow } }
";

#[tokio::test]
async fn a_prepared_statement_is_judged_by_what_it_means_after_a_migration() {
    let su = superuser().await;
    su.batch_execute(
        "DROP SCHEMA IF EXISTS rt146 CASCADE; DROP SCHEMA IF EXISTS rt146_other CASCADE;
         CREATE SCHEMA rt146; CREATE SCHEMA rt146_other;
         CREATE TABLE rt146.people (id int, name text, phone text);
         INSERT INTO rt146.people VALUES (1, 'Anna', 'MOBILE-146');
         CREATE TABLE rt146.readings (id int, cubic_m int);
         INSERT INTO rt146.readings VALUES (1, 42);
         GRANT USAGE ON SCHEMA rt146, rt146_other TO u_trust;
         GRANT SELECT ON ALL TABLES IN SCHEMA rt146 TO u_trust;
         ALTER DEFAULT PRIVILEGES IN SCHEMA rt146_other GRANT SELECT ON TABLES TO u_trust",
    )
    .await
    .unwrap();
    let p = proxy_with(ProxyOptions {
        policies: vec![("rt146.yaml".into(), POLICY.into())],
        ..Default::default()
    })
    .await;
    let mut r = Raw::lab(p.addr.port()).await;
    // Before the migration, `mobile` is the VALUES list's; `m` reads every column there is; and
    // `readings` on this search_path is rt146's.
    let outer = "SELECT t.k, (SELECT mobile FROM rt146.people c WHERE c.id = t.k) AS m FROM (VALUES (1, 'x'::text)) t(k, mobile)";
    let whole = "SELECT row_to_json(m)::text FROM rt146.readings m";
    let unqualified = "SELECT id, cubic_m FROM readings";
    let plain = "SELECT id, name FROM rt146.people WHERE id = $1";
    // Round 148: one too long to analyze again on the session thread.
    let long = format!(
        "SELECT id, name FROM rt146.people WHERE id IN ({}1)",
        "1, ".repeat(7000)
    );
    let mut seen = exchange(&mut r, &[raw::query("SET search_path = rt146_other, rt146")]).await;
    let prepared = exchange(
        &mut r,
        &[
            raw::parse("outer", outer, &[]),
            raw::parse("whole", whole, &[]),
            raw::parse("unqualified", unqualified, &[]),
            raw::parse("plain", plain, &[23]),
            raw::parse("long", &long, &[]),
            raw::sync(),
        ],
    )
    .await;
    assert!(!prepared.contains("42501"), "{prepared}");
    let prepared = exchange(&mut r, &[raw::query(&format!("PREPARE sql_outer AS {outer}"))]).await;
    assert!(!prepared.contains("42501"), "{prepared}");
    for stmt in ["outer", "whole", "unqualified"] {
        let before = exchange(&mut r, &run(stmt)).await;
        assert!(!before.contains("42501"), "{stmt} before the migration: {before}");
    }
    // The migration: a column that takes over `mobile`, one that widens the whole row, and a
    // table of a schema earlier on the path, none of them granted.
    su.batch_execute(
        "ALTER TABLE rt146.people ADD COLUMN mobile text; UPDATE rt146.people SET mobile = phone;
         ALTER TABLE rt146.readings ADD COLUMN access_code text DEFAULT 'GATE-146';
         CREATE TABLE rt146_other.readings (id int, cubic_m text);
         INSERT INTO rt146_other.readings VALUES (1, 'SHADOW-146');
         ANALYZE rt146.readings",
    )
    .await
    .unwrap();
    p.shared.refresh_catalog_now().await.unwrap();
    for stmt in ["outer", "whole", "unqualified"] {
        let after = exchange(&mut r, &run(stmt)).await;
        assert!(
            after.contains("42501") && after.contains("prepare it again"),
            "{stmt} after the migration: {after}"
        );
        seen.push_str(&after);
        let described = exchange(&mut r, &[raw::describe(b'S', stmt), raw::sync()]).await;
        assert!(described.contains("42501"), "Describe of {stmt}: {described}");
        seen.push_str(&described);
    }
    for _ in 0..2 {
        let long_after = exchange(&mut r, &run("long")).await;
        assert!(long_after.contains("prepare it again"), "{long_after}");
    }
    let executed = exchange(&mut r, &[raw::query("EXECUTE sql_outer")]).await;
    assert!(executed.contains("prepare it again"), "{executed}");
    seen.push_str(&executed);
    // A statement the migration did not change still runs, and keeps running.
    for _ in 0..2 {
        let still = exchange(
            &mut r,
            &[
                raw::bind("", "plain", &[Some("1")], &[]),
                raw::execute("", 0),
                raw::sync(),
            ],
        )
        .await;
        assert!(still.contains("Anna") && !still.contains("42501"), "{still}");
        seen.push_str(&still);
    }
    // Prepared again, the new meanings are judged as such.
    let again = exchange(
        &mut r,
        &[
            raw::parse("outer", outer, &[]),
            raw::bind("", "outer", &[], &[]),
            raw::execute("", 0),
            raw::sync(),
        ],
    )
    .await;
    assert!(again.contains("42501"), "{again}");
    seen.push_str(&again);
    for s in SECRETS {
        assert!(!seen.contains(s), "{s} came out:\n{seen}");
    }
    drop(r);
    su.batch_execute("DROP SCHEMA rt146 CASCADE; DROP SCHEMA rt146_other CASCADE")
        .await
        .unwrap();
}

/// Round 154: a portal bound, and planned by Postgres, before a migration runs the rest of its rows
/// after it, and what a row calls is planned then, under the new definitions. Once the catalog has
/// changed it runs only if its statement still means the same and is judged the same.
#[tokio::test]
async fn a_portal_bound_before_a_migration_runs_only_if_it_means_the_same() {
    let su = superuser().await;
    su.batch_execute(
        "DROP SCHEMA IF EXISTS rt154 CASCADE; DROP SCHEMA IF EXISTS rt154_new CASCADE;
         CREATE SCHEMA rt154; CREATE SCHEMA rt154_new;
         CREATE TABLE rt154.people (id int, name text);
         INSERT INTO rt154.people SELECT g, 'n' || g FROM generate_series(1, 3) g;
         GRANT USAGE ON SCHEMA rt154, rt154_new TO u_trust; GRANT SELECT ON rt154.people TO u_trust;",
    )
    .await
    .unwrap();
    let p = proxy_with(ProxyOptions {
        policies: vec![(
            "rt154.yaml".into(),
            "campaign: rt154\ntables: [rt154.*, rt154_new.*]\npurposes:\n  transparency:\n    tables:\n      rt154.people: { columns: all }\n".into(),
        )],
        ..Default::default()
    })
    .await;
    let mut r = Raw::lab(p.addr.port()).await;
    exchange(&mut r, &[raw::query("SET search_path = rt154_new, rt154; BEGIN")]).await;
    let first = exchange(
        &mut r,
        &[
            raw::parse("s154", "SELECT id, name FROM people ORDER BY id", &[]),
            raw::bind("p1", "s154", &[], &[]),
            raw::execute("p1", 1),
            raw::sync(),
        ],
    )
    .await;
    assert!(first.contains("n1") && !first.contains("n2"), "{first}");
    // A change that leaves the statement's meaning alone: the portal goes on.
    su.batch_execute("CREATE TABLE rt154.later (id int)").await.unwrap();
    p.shared.refresh_catalog_now().await.unwrap();
    let second = exchange(&mut r, &[raw::execute("p1", 1), raw::sync()]).await;
    assert!(second.contains("n2") && !second.contains("ERROR"), "{second}");
    // One that makes `people` another table: not run again.
    su.batch_execute("CREATE TABLE rt154_new.people (id int, name text)")
        .await
        .unwrap();
    p.shared.refresh_catalog_now().await.unwrap();
    let rest = exchange(&mut r, &[raw::execute("p1", 0), raw::sync()]).await;
    assert!(rest.contains("bind it again") && !rest.contains("n3"), "{rest}");
    exchange(&mut r, &[raw::query("ROLLBACK")]).await;
}

/// Round 245 CD1: a reload that drops a column a prepared statement returns, or masks one it
/// passed, changes the rows under the RowDescription the client was told at Describe; asyncpg
/// then failed every run of its cached statement ("6 columns, described 7"), and a driver that
/// does not count would read values under other columns' names. The Bind gets Postgres's own
/// error for it, which drivers meet by preparing again; a mask that keeps another part of a
/// masked column changes nothing the client was told.
#[tokio::test]
async fn a_reload_that_changes_a_described_statements_columns_asks_for_it_to_be_prepared_again() {
    let p = proxy().await;
    let set_iban = |rule: &str| {
        let path = p.dir.join("policies/stadtwerke.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("iban:"))
            .unwrap()
            .to_owned();
        std::fs::write(&path, text.replacen(&line, &format!("          iban: {rule}"), 1)).unwrap();
    };
    let c = p.connect("agent_wasser", "wasser").await;
    let sql = "SELECT * FROM stadtwerke.customers WHERE customer_no = 1001";
    let stmt = c.prepare(sql).await.unwrap();
    assert_eq!(stmt.columns().len(), 8, "birth_date and notes are dropped");
    let iban = |row: &tokio_postgres::Row| row.get::<_, String>(7);
    assert_eq!(
        iban(&c.query_one(&stmt, &[]).await.unwrap()),
        "DE89 **** **** **** **30 00"
    );
    set_iban("{ mask: redact }");
    p.shared.reload().await.unwrap();
    assert_eq!(iban(&c.query_one(&stmt, &[]).await.unwrap()), "****");
    set_iban("drop");
    p.shared.reload().await.unwrap();
    let e = c.query_one(&stmt, &[]).await.unwrap_err();
    let db = e.as_db_error().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(
        (db.code().code(), db.message()),
        ("0A000", "cached plan must not change result type"),
        "{e:?}"
    );
    // The session goes on, and the statement prepared again describes and returns one column less.
    let again = c.prepare(sql).await.unwrap();
    assert_eq!(again.columns().len(), 7);
    let row = c.query_one(&again, &[]).await.unwrap();
    assert_eq!(row.len(), 7);
    assert_eq!(row.get::<_, String>(1), "Anna Schmidt");
    // The column back, in clear; then masked, which turns its type into text.
    set_iban("allow");
    p.shared.reload().await.unwrap();
    let e = c.query_one(&again, &[]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("0A000"), "{e:?}");
    let third = c.prepare(sql).await.unwrap();
    assert_eq!(c.query_one(&third, &[]).await.unwrap().len(), 8);
    set_iban("{ mask: iban }");
    p.shared.reload().await.unwrap();
    let e = c.query_one(&third, &[]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("0A000"), "{e:?}");
    assert_no_protected(&format!("{e:?}"), "a changed statement's error");
}
