//! Issue 3: statements judged against the purpose policies and results masked, through every
//! protocol path and with real clients; no protected sample value ever reaches a client.

use std::time::Duration;

use crate::harness::*;
use crate::raw::{self, Raw};

async fn wasser(p: &Proxy) -> tokio_postgres::Client {
    p.connect("agent_wasser", "wasser").await
}

fn text_of(rows: &[tokio_postgres::SimpleQueryMessage]) -> String {
    let mut out = String::new();
    for m in rows {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            for i in 0..r.len() {
                out.push_str(r.get(i).unwrap_or("NULL"));
                out.push('|');
            }
            out.push('\n');
        }
    }
    out
}

fn err_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} {} {:?} {:?}", d.code().code(), d.message(), d.detail(), d.hint()),
        None => e.to_string(),
    }
}

#[tokio::test]
async fn binary_extended_results_are_masked_and_described_as_text() {
    let p = proxy().await;
    let c = wasser(&p).await;
    let rows = c
        .query("SELECT * FROM stadtwerke.customers ORDER BY customer_no", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    let cols: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        cols,
        [
            "customer_no",
            "name",
            "street",
            "postcode",
            "city",
            "phone",
            "email",
            "iban"
        ],
        "birth_date and notes dropped"
    );
    assert_eq!(rows[0].columns()[5].type_(), &tokio_postgres::types::Type::TEXT);
    let r = &rows[0];
    assert_eq!(r.get::<_, i32>("customer_no"), 1001);
    assert_eq!(r.get::<_, &str>("name"), "Anna Schmidt");
    assert_eq!(r.get::<_, &str>("phone"), "+** ** ****567");
    assert_eq!(r.get::<_, &str>("email"), "a***@example.org");
    assert_eq!(r.get::<_, &str>("iban"), "DE89 **** **** **** **30 00");
    assert_eq!(rows[4].get::<_, Option<&str>>("phone"), None, "NULL stays NULL");
    let mut all = String::new();
    for r in &rows {
        for i in 0..r.len() {
            if let Ok(v) = r.try_get::<_, Option<String>>(i) {
                all.push_str(&format!("{v:?}|"));
            }
        }
    }
    assert_no_protected(&all, "binary extended results");
    // A lookup by the number on screen works; the number itself stays masked.
    let r = c
        .query_one(
            "SELECT customer_no, phone FROM stadtwerke.customers WHERE phone = $1",
            &[&"+49 30 1234567"],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, i32>(0), r.get::<_, &str>(1)), (1001, "+** ** ****567"));
    // Statements prepared once and bound many times keep masking.
    let stmt = c
        .prepare("SELECT iban FROM stadtwerke.customers WHERE customer_no = $1")
        .await
        .unwrap();
    for no in 1001..1005 {
        let v: String = c.query_one(&stmt, &[&no]).await.unwrap().get(0);
        assert!(v.contains("**** ****"), "{v}");
        assert_no_protected(&v, "prepared statement");
    }
}

#[tokio::test]
async fn simple_protocol_cursors_execute_and_copy_are_masked() {
    let p = proxy().await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for sql in [
        "SELECT * FROM stadtwerke.customers",
        "SELECT c.name, c.phone, c.email FROM stadtwerke.customers c; SELECT iban FROM stadtwerke.customers",
        "WITH x AS (SELECT phone AS p, iban AS i FROM stadtwerke.customers) SELECT p, i FROM x",
        "SELECT phone FROM stadtwerke.customers UNION ALL SELECT phone FROM stadtwerke.customers",
        "SELECT (SELECT email FROM stadtwerke.customers WHERE customer_no = 1002) AS e",
    ] {
        let rows = c
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {}", err_text(&e)));
        seen.push_str(&text_of(&rows));
    }
    assert!(
        seen.contains("+** ** ****567") && seen.contains("b***@example.net"),
        "{seen}"
    );
    c.batch_execute("PREPARE q(int) AS SELECT name, phone, iban FROM stadtwerke.customers WHERE customer_no = $1")
        .await
        .unwrap();
    seen.push_str(&text_of(&c.simple_query("EXECUTE q(1003)").await.unwrap()));
    assert!(seen.contains("Cem Yılmaz"));
    // Prepared and executed in one message, and a cursor declared and fetched in one message.
    let one = c
        .simple_query(
            "PREPARE r AS SELECT customer_no, phone FROM stadtwerke.customers WHERE customer_no = 1001; EXECUTE r",
        )
        .await
        .unwrap();
    assert!(text_of(&one).contains("1001|+** ** ****567|"), "{}", text_of(&one));
    seen.push_str(&text_of(&one));
    let one = c
        .simple_query("BEGIN; DECLARE k CURSOR FOR SELECT iban FROM stadtwerke.customers ORDER BY customer_no; FETCH 1 FROM k; COMMIT")
        .await
        .unwrap();
    assert!(
        text_of(&one).contains("DE89 **** **** **** **30 00"),
        "{}",
        text_of(&one)
    );
    seen.push_str(&text_of(&one));
    c.batch_execute(
        "BEGIN; DECLARE cur CURSOR FOR SELECT customer_no, email, iban FROM stadtwerke.customers ORDER BY 1",
    )
    .await
    .unwrap();
    seen.push_str(&text_of(&c.simple_query("FETCH 2 FROM cur").await.unwrap()));
    seen.push_str(&text_of(&c.simple_query("FETCH ALL FROM cur").await.unwrap()));
    c.batch_execute("COMMIT").await.unwrap();
    for sql in [
        "COPY stadtwerke.customers (customer_no, phone, email, iban) TO STDOUT",
        "COPY (SELECT name, iban FROM stadtwerke.customers) TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';')",
    ] {
        let out = crate::proxy_core::copy_out_text(&c, sql).await;
        assert!(out.contains("****"), "{out}");
        seen.push_str(&out);
    }
    assert_no_protected(&seen, "simple-protocol results, EXECUTE, FETCH and COPY");
    assert!(seen.contains("DE44 **** **** **** **78 90"), "{seen}");
}

#[tokio::test]
async fn raw_execute_without_describe_and_declared_portals_are_masked() {
    let p = proxy().await;
    // agent_wasser needs SCRAM; the raw client speaks trust only, so bind a trust user to the purpose.
    let policy =
        "campaign: rawtest\ntables: [rawtest.*]\npurposes:\n  billing_hotline:\n    members: [u_trust]\n".to_string();
    drop(p);
    let p = proxy_with(ProxyOptions {
        policies: vec![("rawtest.yaml".into(), policy)],
        ..Default::default()
    })
    .await;
    let mut r = Raw::connect(
        p.addr.port(),
        "u_trust",
        &[("options", "-c unscharf.purpose=billing_hotline")],
    )
    .await;
    // Binary results for everything, no Describe: the proxy still knows which columns to mask.
    r.send(
        &[
            raw::parse(
                "",
                "SELECT customer_no, phone, iban, email FROM stadtwerke.customers ORDER BY 1",
                &[],
            ),
            raw::bind("", "", &[], &[1]),
            raw::execute("", 0),
            raw::sync(),
        ]
        .concat(),
    )
    .await;
    let frames = r.until_ready().await;
    assert_eq!(raw::tags(&frames), "12DDDDDCZ");
    let bytes: Vec<u8> = frames.iter().flat_map(|f| f.raw.to_vec()).collect();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("+** ** ****567"), "{text}");
    assert_no_protected(&text, "raw binary Execute");
    // A cursor declared in SQL, fetched through the extended protocol by its portal name.
    r.send(&raw::query(
        "BEGIN; DECLARE c1 CURSOR FOR SELECT iban, phone FROM stadtwerke.customers",
    ))
    .await;
    r.until_ready().await;
    r.send(&[raw::describe(b'P', "c1"), raw::execute("c1", 2), raw::sync()].concat())
        .await;
    let frames = r.until_ready().await;
    let text: String = frames
        .iter()
        .map(|f| String::from_utf8_lossy(&f.raw).into_owned())
        .collect();
    assert_eq!(raw::tags(&frames), "TDDsZ");
    assert!(text.contains("DE89 ****"), "{text}");
    assert_no_protected(&text, "portal of a declared cursor");
    r.send(&raw::query("COMMIT")).await;
    r.until_ready().await;
}

#[tokio::test]
async fn refusals_keep_transaction_state_in_step_with_the_server() {
    let p = proxy().await;
    let c = wasser(&p).await;
    c.batch_execute("BEGIN").await.unwrap();
    let e = c
        .simple_query("SELECT lower(iban) FROM stadtwerke.customers")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    assert!(
        err_text(&e).contains(
            "column stadtwerke.customers.iban is masked for purpose billing_hotline and cannot be used in lower()"
        ),
        "{}",
        err_text(&e)
    );
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(
        e.code().map(|c| c.code()),
        Some("25P02"),
        "the transaction is aborted, as if the server had refused"
    );
    c.batch_execute("ROLLBACK").await.unwrap();
    assert!(c.simple_query("SELECT 1").await.is_ok());
    // The same through the extended protocol (a prepared statement in a transaction).
    c.batch_execute("BEGIN").await.unwrap();
    let e = c
        .query("SELECT name FROM stadtwerke.customers WHERE iban LIKE $1", &[&"DE%"])
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    let e = c.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("25P02"));
    c.batch_execute("ROLLBACK").await.unwrap();
    // Outside a transaction a refusal changes nothing else.
    let _ = c
        .simple_query("SELECT phone || 'x' FROM stadtwerke.customers")
        .await
        .unwrap_err();
    assert!(c.simple_query("SELECT 1").await.is_ok());
    // A refused statement inside a multi-statement message: nothing of the message runs.
    let before: i64 = c
        .query_one("SELECT count(*) FROM stadtwerke.tickets", &[])
        .await
        .unwrap()
        .get(0);
    let e = c.simple_query("INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (1001, 'smuggled'); SELECT lower(phone) FROM stadtwerke.customers").await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    let after: i64 = c
        .query_one("SELECT count(*) FROM stadtwerke.tickets", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after, "the INSERT before the refused statement did not run");
}

#[tokio::test]
async fn pipelined_refusal_skips_to_sync_like_the_server() {
    let policy =
        "campaign: rawtest\ntables: [rawtest.*]\npurposes:\n  billing_hotline:\n    members: [u_trust]\n".to_string();
    let p = proxy_with(ProxyOptions {
        policies: vec![("rawtest.yaml".into(), policy)],
        ..Default::default()
    })
    .await;
    let mut r = Raw::connect(
        p.addr.port(),
        "u_trust",
        &[("options", "-c unscharf.purpose=billing_hotline")],
    )
    .await;
    r.send(&raw::query("BEGIN")).await;
    r.until_ready().await;
    r.send(
        &[
            raw::parse(
                "",
                "SELECT name FROM stadtwerke.customers WHERE customer_no = 1001",
                &[],
            ),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
            raw::parse("", "SELECT md5(iban) FROM stadtwerke.customers", &[]),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
            raw::parse("", "SELECT 2", &[]),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
            raw::sync(),
        ]
        .concat(),
    )
    .await;
    let frames = r.until_ready().await;
    assert_eq!(
        raw::tags(&frames),
        "12DCEZ",
        "one result, the refusal, then nothing until Sync"
    );
    assert_eq!(raw::error_code(&frames[4]), "42501");
    assert_eq!(frames[5].body(), b"E", "the transaction is failed on both sides");
    r.send(&raw::query("ROLLBACK")).await;
    let frames = r.until_ready().await;
    assert_eq!(frames.last().unwrap().body(), b"I");
}

#[tokio::test]
async fn search_path_is_tracked_and_shadowing_is_refused() {
    let su = superuser().await;
    su.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS shadowa; CREATE SCHEMA IF NOT EXISTS shadowb;
         CREATE TABLE IF NOT EXISTS shadowa.customers (customer_no int, phone text);
         CREATE TABLE IF NOT EXISTS shadowb.customers (customer_no int, phone text);
         TRUNCATE shadowa.customers, shadowb.customers;
         INSERT INTO shadowa.customers VALUES (1, 'harmless');
         INSERT INTO shadowb.customers VALUES (1, 'SECRET-7788');
         GRANT USAGE ON SCHEMA shadowa, shadowb TO u_scram; GRANT SELECT ON shadowa.customers, shadowb.customers TO u_scram;
         GRANT USAGE ON SCHEMA shadowa, shadowb TO unscharf;",
    )
    .await
    .unwrap();
    let policy = "campaign: shadow\ntables: [shadowa.*, shadowb.*]\npurposes:\n  shadowing:\n    members: [u_scram]\n    tables:\n      shadowa.customers: { columns: all }\n      shadowb.customers: { columns: { customer_no: allow, phone: { mask: last(2) } } }\n";
    let p = proxy_with(ProxyOptions {
        policies: vec![("shadow.yaml".into(), policy.into())],
        ..Default::default()
    })
    .await;
    let c = p
        .try_connect("options='-c unscharf.purpose=shadowing'", "u_scram", "pw-scram")
        .await
        .unwrap();
    let mut seen = String::new();
    c.batch_execute("SET search_path = shadowa").await.unwrap();
    seen.push_str(&text_of(&c.simple_query("SELECT phone FROM customers").await.unwrap()));
    assert!(seen.contains("harmless"));
    // Switching and reading in one message: the proxy may not judge the read under the old path.
    let r = c
        .simple_query("SET search_path = shadowb; SELECT phone FROM customers UNION ALL SELECT phone FROM customers")
        .await;
    match &r {
        Ok(rows) => seen.push_str(&text_of(rows)),
        Err(e) => assert!(err_text(e).contains("qualify the name"), "{}", err_text(e)),
    }
    // Once the switch has run, the proxy knows the new path: the column is masked.
    c.batch_execute("SET search_path = shadowb").await.unwrap();
    let rows = c.simple_query("SELECT phone FROM customers").await.unwrap();
    seen.push_str(&text_of(&rows));
    assert!(text_of(&rows).contains("******-**88"), "{}", text_of(&rows));
    // set_config with a parameter: the path is unknown until the proxy asks the server.
    let _ = c
        .query("SELECT set_config('search_path', $1, false)", &[&"shadowa"])
        .await
        .unwrap();
    seen.push_str(&text_of(&c.simple_query("SELECT phone FROM customers").await.unwrap()));
    // SET LOCAL is undone at COMMIT: the proxy follows.
    c.batch_execute("BEGIN; SET LOCAL search_path = shadowb").await.unwrap();
    seen.push_str(&text_of(&c.simple_query("SELECT phone FROM customers").await.unwrap()));
    c.batch_execute("COMMIT").await.unwrap();
    let rows = c.simple_query("SELECT phone FROM customers").await.unwrap();
    assert!(text_of(&rows).contains("harmless"), "back to shadowa after COMMIT");
    seen.push_str(&text_of(&rows));
    // COMMIT inside the same message brings back the session value for what follows it.
    c.batch_execute("SET search_path = shadowb").await.unwrap();
    c.batch_execute("BEGIN; SET LOCAL search_path = shadowa").await.unwrap();
    match c
        .simple_query("COMMIT; SELECT phone FROM customers UNION ALL SELECT phone FROM customers")
        .await
    {
        Ok(rows) => seen.push_str(&text_of(&rows)),
        Err(e) => {
            assert!(err_text(&e).contains("qualify the name"), "{}", err_text(&e));
            c.batch_execute("ROLLBACK").await.unwrap();
        }
    }
    let rows = c.simple_query("SELECT phone FROM customers").await.unwrap();
    assert!(text_of(&rows).contains("******-**88"), "{}", text_of(&rows));
    assert!(!seen.contains("SECRET-7788"), "{seen}");
}

#[tokio::test]
async fn errors_and_notices_carry_no_row_values() {
    let p = proxy().await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for sql in [
        "SELECT name::int FROM stadtwerke.customers",
        "INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (999999, 'fk')",
        "SELECT city::int FROM stadtwerke.customers",
    ] {
        let e = c.simple_query(sql).await.unwrap_err();
        seen.push_str(&err_text(&e));
        seen.push('\n');
    }
    assert!(
        !seen.contains("Anna") && !seen.contains("Berlin") && !seen.contains("999999"),
        "{seen}"
    );
    assert!(
        seen.contains("22P02") && seen.contains("23503"),
        "SQLSTATEs are kept: {seen}"
    );
    assert_no_protected(&seen, "errors");

    // A notice reaches the client with its message, but the row value in its DETAIL does not.
    let mut r = crate::raw::Raw::lab(p.addr.port()).await;
    r.send(&crate::raw::query(
        "SELECT lab.shout(label) FROM lab.items WHERE id = 7",
    ))
    .await;
    let frames = r.until_ready().await;
    let notice = frames.iter().find(|f| f.tag == b'N').expect("the notice is forwarded");
    let fields = unscharf::wire::backend::error_fields(notice.body()).unwrap();
    let field = |c: u8| fields.iter().find(|(k, _)| *k == c).map(|(_, v)| v.to_string());
    assert_eq!(field(b'M').as_deref(), Some("shouting"));
    let detail = field(b'D').unwrap_or_default();
    assert!(!detail.contains("item 7"), "the DETAIL carries a row value: {detail}");
    assert!(frames.iter().any(|f| f.tag == b'D'), "the statement itself ran");
}

#[tokio::test]
async fn psql_and_psycopg_see_no_protected_value() {
    let p = proxy().await;
    let port = p.addr.port();
    let out = tokio::task::spawn_blocking(move || {
        tool("psql", "postgresql-client")
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "agent_wasser",
                "-d",
                "crm",
            ])
            .args(["-c", "SELECT * FROM stadtwerke.customers"])
            .args([
                "-c",
                "\\copy (SELECT customer_no, email, iban FROM stadtwerke.customers) TO STDOUT",
            ])
            .args(["-c", "SELECT lower(phone) FROM stadtwerke.customers"])
            .args(["-c", "\\d stadtwerke.customers"])
            .args(["-c", "\\dt stadtwerke.*"])
            .args([
                "-c",
                "SELECT name FROM stadtwerke.customers WHERE phone = '+49 30 1234567'",
            ])
            .env("PGPASSWORD", "wasser")
            .env("PGCLIENTENCODING", "UTF8")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("+** ** ****567")
            && stdout.contains("Table \"stadtwerke.customers\"")
            && stdout.contains("Anna Schmidt"),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("protected_column"), "{stderr}");
    assert_no_protected(&format!("{stdout}{stderr}"), "psql");

    let py = python();
    let script = format!("{}/tests/py/masked_queries.py", env!("CARGO_MANIFEST_DIR"));
    let url = format!("host=127.0.0.1 port={port} dbname=crm user=agent_wasser password=wasser sslmode=disable");
    let out = tokio::process::Command::new(py)
        .arg(script)
        .arg(url)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("+** ** ****567") && stdout.contains("COPY 1001"),
        "{stdout}"
    );
    assert!(!stdout.contains("UNEXPECTED SUCCESS"), "{stdout}");
    assert_eq!(stdout.matches("ERROR 42501").count(), 4, "{stdout}");
    assert_no_protected(&stdout, "psycopg");
}

#[tokio::test]
async fn refusals_are_audited_without_values() {
    let p = proxy().await;
    let c = wasser(&p).await;
    let _ = c
        .simple_query("SELECT name FROM stadtwerke.customers WHERE phone LIKE '+49 30 1234567%'")
        .await
        .unwrap_err();
    let _ = c
        .query(
            "SELECT name FROM stadtwerke.customers WHERE iban = $1",
            &[&"DE89 3704 0044 0532 0130 00"],
        )
        .await
        .unwrap_err();
    let _ = c.simple_query("SELECT * FROM zeitung.leads").await.unwrap_err();
    // Refusals that name the statement name its keywords only, never what follows them.
    for sql in [
        "LOAD 'anna.schmidt@example.org'",
        "CALL f('DE89370400440532013000')",
        "EXPLAIN EXECUTE p('+49 30 1234567')",
        "PREPARE q AS LOAD 'bernd.mueller@example.net'",
    ] {
        let e = c.simple_query(sql).await.unwrap_err();
        let db = e.as_db_error().unwrap();
        assert_no_protected(&format!("{} {:?}", db.message(), db.detail()), sql);
    }
    let events = p.audit().await;
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    assert!(
        reasons.contains(&"protected_column") && reasons.contains(&"outside_purpose"),
        "{reasons:?}"
    );
    let text = std::fs::read_to_string(p.audit_path()).unwrap();
    assert_no_protected(&text, "the audit trail");
    assert!(text.contains("LIKE ?"), "literals are replaced by ?: {text}");
    let e = events.iter().find(|e| e.reason == "outside_purpose").unwrap();
    assert_eq!(
        (e.user.as_str(), e.purpose.as_str(), e.decision.as_str()),
        ("agent_wasser", "billing_hotline", "refused")
    );
    assert_eq!(e.hash.as_deref(), Some(e.compute_hash().as_str()));
}

#[tokio::test]
async fn cross_campaign_writes_after_reads_are_refused_for_the_session() {
    let policy = "campaign: crossover\ntables: [crossover.*]\npurposes:\n  crossover:\n    members: [u_md5]\n    tables:\n      stadtwerke.tickets: { columns: all, write: [insert] }\n      zeitung.subscriptions: { columns: all, write: [insert] }\n";
    let su = superuser().await;
    su.batch_execute("GRANT USAGE ON SCHEMA stadtwerke, zeitung TO u_md5; GRANT SELECT, INSERT ON stadtwerke.tickets, zeitung.subscriptions TO u_md5; GRANT USAGE ON ALL SEQUENCES IN SCHEMA stadtwerke, zeitung TO u_md5;").await.unwrap();
    let p = proxy_with(ProxyOptions {
        policies: vec![("crossover.yaml".into(), policy.into())],
        ..Default::default()
    })
    .await;
    let c = p
        .try_connect("options='-c unscharf.purpose=crossover'", "u_md5", "pw-md5")
        .await
        .unwrap();
    c.simple_query("SELECT count(*) FROM zeitung.subscriptions")
        .await
        .unwrap();
    c.simple_query("SELECT count(*) FROM stadtwerke.tickets").await.unwrap();
    let e = c
        .simple_query(
            "INSERT INTO zeitung.subscriptions (lead_id, product, starts_on, monthly_eur) VALUES (1, 'x', now(), 1)",
        )
        .await
        .unwrap_err();
    assert!(err_text(&e).contains("cross_campaign"), "{}", err_text(&e));
    let e = c
        .simple_query("SELECT t.subject FROM stadtwerke.tickets t JOIN zeitung.subscriptions s USING (agent)")
        .await
        .unwrap_err();
    assert!(err_text(&e).contains("cross_campaign"), "{}", err_text(&e));
    // A fresh session has read nothing yet.
    let fresh = p
        .try_connect("options='-c unscharf.purpose=crossover'", "u_md5", "pw-md5")
        .await
        .unwrap();
    fresh.simple_query("BEGIN; INSERT INTO zeitung.subscriptions (lead_id, product, starts_on, monthly_eur) VALUES (1, 'x', now(), 1); ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn unknown_relations_refresh_the_catalog() {
    let p = proxy().await;
    let c = wasser(&p).await;
    let su = superuser().await;
    let name = format!("late_{}", std::process::id());
    su.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS stadtwerke.{name} (x int); GRANT SELECT ON stadtwerke.{name} TO crm_agents"
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Created after the proxy started: found after a refresh, and refused because no purpose grants it.
    let e = c
        .simple_query(&format!("SELECT * FROM stadtwerke.{name}"))
        .await
        .unwrap_err();
    assert!(err_text(&e).contains("outside_purpose"), "{}", err_text(&e));
    su.batch_execute(&format!("DROP TABLE stadtwerke.{name}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn lookups_test_at_most_ten_values_however_they_are_sent() {
    let p = proxy().await;
    let c = wasser(&p).await;
    let guesses = |n: usize| -> Vec<String> {
        let mut v: Vec<String> = (0..n).map(|i| format!("+49 30 99999{i:02}")).collect();
        v.push("+49 30 1234567".into());
        v
    };
    let sql = "SELECT customer_no FROM stadtwerke.customers WHERE phone = ANY($1)";
    // The number on the screen, in two spellings: found.
    let rows = c.query(sql, &[&guesses(1)]).await.unwrap();
    assert_eq!(rows.len(), 1);
    // Eleven guesses in one bound array (binary format): refused at Bind, nothing answered.
    let e = c.query(sql, &[&guesses(10)]).await.unwrap_err();
    let db = e.as_db_error().unwrap();
    assert!(db.message().contains("at most 10"), "{db:?}");
    // The same through SQL-level PREPARE/EXECUTE with a literal array, and as a long IN list.
    c.batch_execute("PREPARE look(text[]) AS SELECT customer_no FROM stadtwerke.customers WHERE phone = ANY($1)")
        .await
        .unwrap();
    let list = |n: usize| {
        guesses(n)
            .iter()
            .map(|g| format!("\"{g}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let found = c
        .simple_query(&format!("EXECUTE look('{{{}}}')", list(1)))
        .await
        .unwrap();
    assert!(text_of(&found).contains("1001"), "{}", text_of(&found));
    let e = c
        .simple_query(&format!("EXECUTE look('{{{}}}')", list(10)))
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{e:?}");
    let in_list = guesses(10)
        .iter()
        .map(|g| format!("'{g}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let e = c
        .simple_query(&format!(
            "SELECT customer_no FROM stadtwerke.customers WHERE phone IN ({in_list})"
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{e:?}");
    let events = p.audit().await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert_no_protected(&std::fs::read_to_string(p.audit_path()).unwrap(), "the audit trail");
}

#[tokio::test]
async fn a_result_the_plan_does_not_cover_is_cut_off() {
    let p = proxy().await;
    let mut r = crate::raw::Raw::lab(p.addr.port()).await;
    r.send(&crate::raw::query("SELECT a FROM lab.swap")).await;
    let frames = r.until_ready().await;
    assert_eq!(&frames[1].body()[6..], b"visible");
    // A DBA swaps the column names directly on the server; the proxy's catalog has not seen it, so
    // it plans `a` as the allowed column, while the server sends the protected one.
    superuser()
        .await
        .batch_execute(
            "ALTER TABLE lab.swap RENAME a TO tmp; ALTER TABLE lab.swap RENAME b TO a; ALTER TABLE lab.swap RENAME tmp TO b",
        )
        .await
        .unwrap();
    let generation = |p: &Proxy| p.shared.catalog.load().generation;
    let before = generation(&p);
    r.send(&crate::raw::query("SELECT a FROM lab.swap")).await;
    let mut seen = Vec::new();
    while let Some(f) = r.try_frame().await {
        seen.extend_from_slice(&f.raw);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(!text.contains("SECRET-b"), "the protected value came through: {text}");
    assert!(
        text.contains("second line of defence") || text.contains("cut off"),
        "{text}"
    );
    assert_eq!(p.shared.metrics.cutoffs.load(std::sync::atomic::Ordering::Relaxed), 1);
    // The cut-off makes the proxy re-read the catalog, which now knows the new names.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while generation(&p) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no catalog refresh after the cut-off"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let events = p.audit().await;
    assert!(
        events
            .iter()
            .any(|e| e.reason == "protected_column" && e.detail.contains("second line of defence")),
        "{events:?}"
    );
}
