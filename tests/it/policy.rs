//! Issue 3: statements judged against the purpose policies and results masked, through every
//! protocol path and with real clients; no protected sample value ever reaches a client.

use std::time::Duration;

use crate::harness::*;
use crate::raw::{self, Raw};

pub async fn wasser(p: &Proxy) -> tokio_postgres::Client {
    p.connect("agent_wasser", "wasser").await
}

pub fn text_of(rows: &[tokio_postgres::SimpleQueryMessage]) -> String {
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

pub fn err_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} {} {:?} {:?}", d.code().code(), d.message(), d.detail(), d.hint()),
        None => e.to_string(),
    }
}

/// A proxy whose `u_trust` belongs to billing_hotline (agent_wasser needs SCRAM, and the raw
/// client speaks trust only), with `extra` config, and a raw session of that user.
pub async fn billing_raw(extra: &str) -> (Proxy, Raw) {
    let policy = "campaign: rawtest\ntables: [rawtest.*]\npurposes:\n  billing_hotline:\n    members: [u_trust]\n";
    let p = proxy_with(ProxyOptions {
        policies: vec![("rawtest.yaml".into(), policy.into())],
        extra: extra.into(),
        ..Default::default()
    })
    .await;
    let r = Raw::connect(
        p.addr.port(),
        "u_trust",
        &[("options", "-c unscharf.purpose=billing_hotline")],
    )
    .await;
    (p, r)
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
    // psql's forms without FROM (round 198 AI1): masked all the same.
    for fetch in ["FETCH 1 cur", "FETCH cur", "fetch next \"cur\""] {
        let rows = c.simple_query(fetch).await;
        let rows = text_of(&rows.unwrap_or_else(|e| panic!("{fetch}: {}", err_text(&e))));
        assert_eq!(rows.lines().count(), 1, "{fetch}: {rows}");
        seen.push_str(&rows);
    }
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
    // Round 15: a text-format header line is column names, passed as they are; the rows after
    // it are masked, and HEADER false leaves the first row a row.
    for (sql, first) in [
        (
            "COPY (SELECT customer_no, iban FROM stadtwerke.customers ORDER BY 1) TO STDOUT WITH (FORMAT text, HEADER)",
            "customer_no\tiban",
        ),
        (
            "COPY (SELECT customer_no, iban FROM stadtwerke.customers ORDER BY 1) TO STDOUT WITH (FORMAT text, HEADER false)",
            "1001\tDE89 **** **** **** **30 00",
        ),
    ] {
        let out = crate::proxy_core::copy_out_text(&c, sql).await;
        assert_eq!(out.lines().next(), Some(first), "{out}");
        assert!(out.contains("1002\tDE12 **** **** **** **98 90"), "{out}");
        seen.push_str(&out);
    }
    assert_no_protected(&seen, "simple-protocol results, EXECUTE, FETCH and COPY");
    assert!(seen.contains("DE44 **** **** **** **78 90"), "{seen}");
}

/// Round 206 AQ2: `COPY (SELECT * …) TO STDOUT` leaves out the columns the purpose drops, as the
/// same SELECT does: from every row, from the header, and from the CopyOutResponse's width.
#[tokio::test]
async fn a_copy_of_a_star_query_leaves_dropped_columns_out() {
    let (_p, mut r) = billing_raw("").await;
    // Eight of the ten columns: birth_date and notes are dropped for billing_hotline.
    for (sql, header) in [
        ("COPY (SELECT * FROM stadtwerke.customers ORDER BY 1) TO STDOUT", None),
        (
            "COPY (SELECT * FROM stadtwerke.customers ORDER BY 1) TO STDOUT (FORMAT text, HEADER)",
            Some("customer_no\tname\tstreet\tpostcode\tcity\tphone\temail\tiban\n"),
        ),
        (
            "COPY (SELECT c.* FROM stadtwerke.customers c ORDER BY 1) TO STDOUT (FORMAT csv, HEADER)",
            Some("customer_no,name,street,postcode,city,phone,email,iban\n"),
        ),
    ] {
        r.send(&raw::query(sql)).await;
        let frames = r.until_ready().await;
        let rows = 5 + usize::from(header.is_some());
        assert_eq!(raw::tags(&frames), format!("H{}cCZ", "d".repeat(rows)), "{sql}");
        // CopyOutResponse: overall format, then the number of columns.
        let h = &frames[0].raw;
        assert_eq!(i16::from_be_bytes([h[6], h[7]]), 8, "{sql}");
        let mut data: Vec<String> = frames
            .iter()
            .filter(|f| f.tag == b'd')
            .map(|f| String::from_utf8_lossy(&f.raw[5..]).into_owned())
            .collect();
        if let Some(want) = header {
            assert_eq!(data.remove(0), want, "{sql}");
        }
        let delimiter = if sql.contains("csv") { ',' } else { '\t' };
        assert_eq!(data.len(), 5, "{sql}");
        for row in &data {
            // No value of these rows holds the delimiter (the sample data's), so fields count.
            assert_eq!(row.matches(delimiter).count(), 7, "{sql}: {row}");
        }
        let all = data.concat();
        assert!(
            all.contains("+** ** ****567") && all.contains("DE89 ****"),
            "{sql}: {all}"
        );
        assert_no_protected(&all, sql);
    }
    // Round 215 AZ2: an unquoted upper-case delimiter is a lower-case one to Postgres; split on
    // the upper-case one, each whole row fell into the first column and passed in clear.
    let sql = "COPY (SELECT *, 'QQQQQQQQQQ' AS pad FROM stadtwerke.customers) TO STDOUT WITH (FORMAT csv, DELIMITER Q)";
    r.send(&raw::query(sql)).await;
    let frames = r.until_ready().await;
    assert_eq!(raw::tags(&frames), "EZ", "{sql}");
    let text: String = frames
        .iter()
        .map(|f| String::from_utf8_lossy(&f.raw).into_owned())
        .collect();
    assert!(text.contains("upper-case letter"), "{text}");
    assert_no_protected(&text, sql);
}

#[tokio::test]
async fn raw_execute_without_describe_and_declared_portals_are_masked() {
    let (_p, mut r) = billing_raw("").await;
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
    // Another test's DDL can change the catalog just now: then the session cannot read its roles
    // again inside the failed block, and refuses (42501, roles not read yet) before the server
    // could (25P02). Either way nothing ran.
    let aborted = |e: &tokio_postgres::Error| {
        let code = e.code().map(|c| c.code());
        code == Some("25P02") || (code == Some("42501") && err_text(e).contains("not read this login's roles"))
    };
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        aborted(&e),
        "the transaction is aborted, as if the server had refused: {}",
        err_text(&e)
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
    assert!(aborted(&e), "{}", err_text(&e));
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
    let (_p, mut r) = billing_raw("").await;
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
    // set_config with a parameter: a path unscharf cannot read is refused (round 141: it could
    // name another campaign's schema, where a DBA's code would resolve its names); a literal one
    // is followed.
    let e = c
        .query("SELECT set_config('search_path', $1, false)", &[&"shadowa"])
        .await
        .unwrap_err();
    assert!(err_text(&e).contains("string literal"), "{}", err_text(&e));
    c.query("SELECT set_config('search_path', 'shadowa', false)", &[])
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
    // Round 15: EXECUTE of a prepared set_config changes the path too. The scalar subquery's
    // column has no table OID, so rule 10 cannot catch what the analyzer gets wrong.
    c.batch_execute("SET search_path = shadowa").await.unwrap();
    c.batch_execute("PREPARE sp AS SELECT set_config('search_path', 'shadowb', false)")
        .await
        .unwrap();
    for exec in ["EXECUTE sp", "SELECT 1; EXECUTE sp"] {
        c.batch_execute("SET search_path = shadowa").await.unwrap();
        seen.push_str(&text_of(&c.simple_query(exec).await.unwrap()));
        let rows = c.simple_query("SELECT (SELECT phone) FROM customers").await.unwrap();
        assert!(
            text_of(&rows).contains("******-**88"),
            "after {exec}: {}",
            text_of(&rows)
        );
        seen.push_str(&text_of(&rows));
    }
    // Round 18: a session value hidden by SET LOCAL in the same message (the probe sees only the
    // local one) comes back at COMMIT, or at ROLLBACK TO before a later SET.
    for (setup, then) in [
        (
            "BEGIN; SET search_path = shadowb; SET LOCAL search_path = shadowa",
            "COMMIT; SELECT (SELECT phone) FROM customers",
        ),
        (
            "BEGIN; SET search_path = shadowb; SAVEPOINT s; SET search_path = shadowa",
            "ROLLBACK TO s; SELECT (SELECT phone) FROM customers",
        ),
        // Round 19: two changes in one statement, the second local.
        (
            "BEGIN; SELECT set_config('search_path', 'shadowb', false), set_config('search_path', 'shadowa', true)",
            "COMMIT; SELECT (SELECT phone) FROM customers",
        ),
    ] {
        c.batch_execute("SET search_path = shadowa").await.unwrap();
        c.batch_execute(setup).await.unwrap();
        match c.simple_query(then).await {
            Ok(rows) => seen.push_str(&text_of(&rows)),
            Err(e) => assert!(err_text(&e).contains("qualify the name"), "{then}: {}", err_text(&e)),
        }
        c.batch_execute("ROLLBACK").await.unwrap();
    }
    // Round 16: names after such an EXECUTE, FETCH or MOVE in the same Query.
    c.batch_execute(
        "BEGIN; DECLARE spc CURSOR WITH HOLD FOR SELECT set_config('search_path', 'shadowb', false); COMMIT",
    )
    .await
    .unwrap();
    for then in [
        "EXECUTE sp; SELECT (SELECT phone) FROM customers",
        "FETCH NEXT FROM spc; SELECT (SELECT phone) FROM customers",
        "EXECUTE sp; EXECUTE sp",
    ] {
        c.batch_execute("SET search_path = shadowa").await.unwrap();
        match c.simple_query(then).await {
            Ok(rows) => seen.push_str(&text_of(&rows)),
            Err(e) => assert!(err_text(&e).contains("changes search_path"), "{then}: {}", err_text(&e)),
        }
    }
    // The same EXECUTE sent through the extended protocol.
    c.batch_execute("SET search_path = shadowa").await.unwrap();
    let _ = c.query("EXECUTE sp", &[]).await.unwrap();
    let rows = c.simple_query("SELECT (SELECT phone) FROM customers").await.unwrap();
    assert!(
        text_of(&rows).contains("******-**88"),
        "after a Bind of EXECUTE: {}",
        text_of(&rows)
    );
    seen.push_str(&text_of(&rows));
    assert!(!seen.contains("SECRET-7788"), "{seen}");
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
            // Round 242 CA1: `TABLE t` alone was refused as unparsable.
            .args(["-c", "TABLE stadtwerke.customers"])
            .args([
                "-c",
                "\\copy (SELECT customer_no, email, iban FROM stadtwerke.customers) TO STDOUT",
            ])
            .args(["-c", "SELECT lower(phone) FROM stadtwerke.customers"])
            // Round 206 AQ2: the `*` of a COPY's query drops columns as a SELECT's does.
            .args([
                "-c",
                "\\copy (SELECT * FROM stadtwerke.customers ORDER BY 1) TO STDOUT WITH (FORMAT csv, HEADER)",
            ])
            .args(["-c", "\\d stadtwerke.customers"])
            .args(["-c", "\\dt stadtwerke.*"])
            // Both read a catalog's system column tableoid.
            .args(["-c", "\\dd"])
            .args(["-c", "\\dL"])
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
            && stdout.contains("customer_no,name,street,postcode,city,phone,email,iban\n1001,Anna Schmidt,")
            && stdout.contains("Table \"stadtwerke.customers\"")
            && stdout.contains("Object descriptions")
            && stdout.contains("List of languages")
            && stdout.contains("Anna Schmidt"),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("protected_column"), "{stderr}");
    assert!(
        stdout.matches("+** ** ****567").count() >= 2 && !stderr.contains("unparsable"),
        "{stdout}\n{stderr}"
    );
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
async fn cross_campaign_writes_after_reads_are_refused_for_the_session() {
    let policy = "campaign: crossover\ntables: [crossover.*]\npurposes:\n  crossover:\n    members: [u_md5]\n    tables:\n      stadtwerke.tickets: { columns: all, write: [insert] }\n      zeitung.subscriptions: { columns: all, write: [insert] }\n      zeitung.leads: { columns: { lead_id: allow } }\n";
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

/// nextval on another campaign's sequence is a write into that campaign (Postgres would allow it:
/// the roles have USAGE on every sequence); on the purpose's own writable table it works.
#[tokio::test]
async fn sequence_functions_are_judged_by_their_table() {
    let p = proxy().await;
    let c = wasser(&p).await;
    let su = superuser().await;
    let last = || async {
        su.query_one("SELECT last_value, is_called FROM zeitung.leads_lead_id_seq", &[])
            .await
            .map(|r| (r.get::<_, i64>(0), r.get::<_, bool>(1)))
            .unwrap()
    };
    let before = last().await;
    // Allowed first, so a cached analysis of the same shape cannot vouch for the others.
    c.simple_query("SELECT nextval('stadtwerke.tickets_ticket_id_seq')")
        .await
        .unwrap();
    c.query("SELECT nextval('stadtwerke.tickets_ticket_id_seq')", &[])
        .await
        .unwrap();
    for sql in [
        "SELECT nextval('zeitung.leads_lead_id_seq')",
        "SELECT nextval(' Zeitung.Leads_Lead_Id_Seq ')",
        "SELECT currval('zeitung.leads_lead_id_seq')",
    ] {
        // outside_purpose, or cross_campaign once the session has drawn a stadtwerke number.
        let e = c.simple_query(sql).await.unwrap_err();
        assert!(
            err_text(&e).starts_with("42501") && err_text(&e).contains("zeitung"),
            "{sql}: {}",
            err_text(&e)
        );
        let e = c.query(sql, &[]).await.unwrap_err();
        assert!(
            err_text(&e).starts_with("42501") && err_text(&e).contains("zeitung"),
            "{sql}: {}",
            err_text(&e)
        );
    }
    assert_eq!(last().await, before, "the other campaign's sequence moved");
    let row = c
        .query_one("SELECT nextval('stadtwerke.tickets_ticket_id_seq')", &[])
        .await
        .unwrap();
    assert!(row.get::<_, i64>(0) > 0);
}

/// Round 23: Postgres counts a superuser a member of every role, so a superuser logging in through
/// the proxy was bound to billing_hotline, whose members include `role:wasser_agents`. A
/// superuser now holds only purposes that name it.
#[tokio::test]
async fn a_superuser_holds_no_purpose_through_roles() {
    let p = proxy().await;
    let Err(e) = p.try_connect("", "postgres", "unused").await else {
        panic!("the superuser is refused");
    };
    let text = err_text(&e);
    assert!(text.contains("member of no purpose"), "{text}");
    // An agent holding the purpose through the same role still does.
    let c = p.connect("agent_wasser2", "wasser2").await;
    assert!(c.simple_query("SELECT name FROM stadtwerke.customers").await.is_ok());
}

/// Round 104: `[NOT] DEFERRABLE` in a transaction statement was refused as unparsable, which broke
/// every read-only SQLAlchemy connection on psycopg and asyncpg's and psycopg's deferrable
/// transactions. The server gets the statement as sent.
#[tokio::test]
async fn deferrable_transaction_modes_pass_as_sent() {
    let p = proxy().await;
    let c = wasser(&p).await;
    for begin in [
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY NOT DEFERRABLE",
        "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE",
        "START TRANSACTION READ ONLY, DEFERRABLE, ISOLATION LEVEL SERIALIZABLE",
    ] {
        c.batch_execute(begin).await.unwrap();
        let rows = c
            .simple_query(
                "SHOW transaction_deferrable; SELECT phone FROM stadtwerke.customers WHERE customer_no = 1001",
            )
            .await
            .unwrap();
        let text = text_of(&rows);
        let expected = if begin.contains("NOT DEFERRABLE") { "off" } else { "on" };
        assert!(
            text.starts_with(expected) && text.contains("+** ** ****567"),
            "{begin}: {text}"
        );
        c.batch_execute("COMMIT").await.unwrap();
    }
}
