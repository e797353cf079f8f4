//! Cursors and portals end with their transaction, in the proxy as in Postgres (round 181 F1): a
//! name Postgres had dropped at ROLLBACK, COMMIT, ROLLBACK TO or a Sync kept its old plan in the
//! proxy, and an Execute of it ran the cursor a DBA's function then opened under that name with
//! that plan, unmasked.

use crate::harness::*;
use crate::raw::{self, Raw};

const SECRET: &str = "VAULT-SECRET";

/// A listed function that opens a cursor over lab.vault under the caller's name for it, as a
/// CRM's "open a cursor for me" helper does.
const OPENER: &str = "CREATE FUNCTION lab.open_vault(r refcursor) RETURNS refcursor LANGUAGE plpgsql
      SET search_path = lab, pg_catalog AS $$ BEGIN OPEN r FOR SELECT id, open, secret FROM lab.vault; RETURN r; END $$;
    GRANT EXECUTE ON FUNCTION lab.open_vault(refcursor) TO u_trust;";

async fn setup() -> (unscharf::cluster::Cluster, Proxy) {
    let cluster = new_cluster();
    let su = connect_url(&cluster.superuser_url("crm")).await;
    su.batch_execute(OPENER).await.unwrap();
    let lab = include_str!("../fixtures/policies/lab.yaml").replacen(
        "functions: [lab.shout, lab.scream]",
        "functions: [lab.shout, lab.scream, lab.open_vault]",
        1,
    );
    let p = proxy_with(ProxyOptions {
        upstream_port: Some(cluster.port),
        policies: vec![("lab.yaml".into(), lab)],
        ..Default::default()
    })
    .await;
    (cluster, p)
}

/// Sends `sql` as one Query and returns its frames' bytes.
async fn q(r: &mut Raw, sql: &str) -> Vec<u8> {
    r.send(&raw::query(sql)).await;
    r.bytes_until_ready().await
}

/// Fills the name `r` with the function's cursor and runs it by a protocol Execute without
/// Describe: the proxy must not know the name, and no value may come out.
async fn refill_and_execute(r: &mut Raw, name: &str, case: &str) -> String {
    let opened = q(r, &format!("SELECT lab.open_vault('{name}')")).await;
    assert!(!contains(&opened, SECRET), "{case}: the call itself shows the secret");
    r.send(&[raw::execute(name, 0), raw::sync()].concat()).await;
    let frames = r.until_ready().await;
    let bytes: Vec<u8> = frames.iter().flat_map(|f| f.raw.to_vec()).collect();
    assert!(!contains(&bytes, SECRET), "{case}: the secret came out");
    assert_eq!(raw::tags(&frames), "EZ", "{case}: refused");
    let text = raw::error_message(&frames[0]);
    q(r, "ROLLBACK").await;
    text
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portals_postgres_dropped_are_not_run_under_their_old_plan() {
    let (_cluster, p) = setup().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let plant = "DECLARE r CURSOR FOR SELECT 1, 2, 3";
    let mut seen = Vec::new();

    // ROLLBACK, COMMIT of a cursor without HOLD, and ROLLBACK TO a savepoint before it.
    for (case, before, after) in [
        ("rollback", format!("BEGIN; {plant}; ROLLBACK"), "BEGIN"),
        ("commit", format!("BEGIN; {plant}; COMMIT"), "BEGIN"),
        (
            "savepoint",
            format!("BEGIN; SAVEPOINT s; {plant}; ROLLBACK TO s"),
            "SELECT 1",
        ),
    ] {
        q(&mut r, &before).await;
        q(&mut r, after).await;
        seen.push(refill_and_execute(&mut r, "r", case).await);
    }
    // A WITH HOLD cursor of a transaction that failed: its COMMIT rolled back.
    q(&mut r, "BEGIN; DECLARE r CURSOR WITH HOLD FOR SELECT 1, 2, 3").await;
    q(&mut r, "SELECT 1/0").await;
    q(&mut r, "COMMIT").await;
    q(&mut r, "BEGIN").await;
    seen.push(refill_and_execute(&mut r, "r", "hold, rolled back").await);
    // A Bind portal: of an explicit transaction rolled back, and of an implicit one, which ends
    // at its Sync.
    for (case, begin) in [("bind, rollback", true), ("bind, sync", false)] {
        if begin {
            q(&mut r, "BEGIN").await;
        }
        let bind = [
            raw::parse("s3", "SELECT 1, 2, 3", &[]),
            raw::bind("r", "s3", &[], &[]),
            raw::sync(),
        ];
        r.send(&bind.concat()).await;
        assert_eq!(raw::tags(&r.until_ready().await), "12Z", "{case}");
        if begin {
            q(&mut r, "ROLLBACK").await;
        }
        q(&mut r, "BEGIN; CLOSE ALL").await;
        seen.push(refill_and_execute(&mut r, "r", case).await);
        q(&mut r, "DEALLOCATE s3").await;
    }
    // All in one message: the cursor's FETCH after the ROLLBACK is refused, not run.
    let one = q(
        &mut r,
        &format!("BEGIN; {plant}; ROLLBACK; BEGIN; SELECT lab.open_vault('r'); FETCH ALL FROM r"),
    )
    .await;
    assert!(!contains(&one, SECRET), "one message: the secret came out");
    assert!(contains(&one, "not known"), "{}", String::from_utf8_lossy(&one));
    q(&mut r, "ROLLBACK").await;
    for text in &seen {
        assert!(text.contains("not known"), "{text}");
    }

    // Round 182 S1: all of it in one batch, before any answer.
    let step = |sql: &str| {
        [
            raw::parse("", sql, &[]),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
        ]
        .concat()
    };
    q(&mut r, "BEGIN").await;
    let batch = [
        step("DECLARE r CURSOR FOR SELECT 1, 2, 3"),
        step("ROLLBACK"),
        step("BEGIN"),
        step("SELECT lab.open_vault('r')"),
        raw::execute("r", 0),
        raw::sync(),
    ]
    .concat();
    r.send(&batch).await;
    let frames = r.until_ready().await;
    let bytes: Vec<u8> = frames.iter().flat_map(|f| f.raw.to_vec()).collect();
    assert!(!contains(&bytes, SECRET), "one batch: the secret came out");
    assert!(raw::tags(&frames).ends_with("EZ"), "{}", raw::tags(&frames));
    q(&mut r, "ROLLBACK").await;

    // Round 181 F3: a cursor under the proxy's reserved name does not turn a refusal's stand-in
    // into a run of it; the session goes on.
    q(&mut r, "BEGIN").await;
    let opened = q(&mut r, "SELECT lab.open_vault('unscharf_refused')").await;
    assert!(!contains(&opened, SECRET));
    r.send(&[raw::execute("nosuchportal", 0), raw::sync()].concat()).await;
    let frames = r.until_ready().await;
    assert_eq!(raw::tags(&frames), "EZ");
    assert!(
        raw::error_message(&frames[0]).contains("not known"),
        "{}",
        raw::error_message(&frames[0])
    );
    q(&mut r, "ROLLBACK").await;

    // What Postgres keeps, the proxy keeps: a WITH HOLD cursor committed, a cursor made before a
    // savepoint rolled back to, and a Bind portal of an open transaction after its Sync.
    let held = q(
        &mut r,
        "BEGIN; DECLARE h CURSOR WITH HOLD FOR SELECT id, open FROM lab.vault; COMMIT",
    )
    .await;
    assert_eq!(held.last(), Some(&b'I'));
    r.send(&raw::query("FETCH ALL FROM h")).await;
    assert_eq!(raw::tags(&r.until_ready().await), "TDCZ", "the held cursor");
    q(&mut r, "CLOSE h").await;
    q(
        &mut r,
        "BEGIN; DECLARE k CURSOR FOR SELECT id FROM lab.vault; SAVEPOINT s; ROLLBACK TO s",
    )
    .await;
    r.send(&raw::query("FETCH ALL FROM k")).await;
    assert_eq!(
        raw::tags(&r.until_ready().await),
        "TDCZ",
        "the cursor before the savepoint"
    );
    r.send(
        &[
            raw::parse("s1", "SELECT id FROM lab.vault", &[]),
            raw::bind("b", "s1", &[], &[]),
            raw::sync(),
        ]
        .concat(),
    )
    .await;
    assert_eq!(raw::tags(&r.until_ready().await), "12Z");
    r.send(&[raw::execute("b", 0), raw::sync()].concat()).await;
    assert_eq!(raw::tags(&r.until_ready().await), "DCZ");
    q(&mut r, "COMMIT").await;
}

/// Round 185 V2: a listed helper that closes the cursor or portal it is given and opens its own
/// under that name (a CRM's "re-open my cursor"). Postgres's PL/pgSQL finds the client's DECLAREs
/// and Bind portals by name; the proxy cannot see which it closed, so after the call it knows
/// none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_that_reopens_a_cursor_leaves_no_portal_known() {
    let cluster = new_cluster();
    let su = connect_url(&cluster.superuser_url("crm")).await;
    su.batch_execute(
        "CREATE FUNCTION lab.reopen(r refcursor) RETURNS refcursor LANGUAGE plpgsql
           SET search_path = lab, pg_catalog AS $$
           BEGIN
             BEGIN CLOSE r; EXCEPTION WHEN invalid_cursor_name THEN NULL; END;
             OPEN r FOR SELECT id, open, secret || '' FROM lab.vault;
             RETURN r;
           END $$;
         GRANT EXECUTE ON FUNCTION lab.reopen(refcursor) TO u_trust;",
    )
    .await
    .unwrap();
    // The premise, straight to Postgres: the helper swaps what the declared name runs.
    let direct = connect_url(&format!("host=127.0.0.1 port={} user=u_trust dbname=crm", cluster.port)).await;
    let rows = direct
        .simple_query("BEGIN; DECLARE r CURSOR FOR SELECT 1, 2, 3; SELECT lab.reopen('r'); FETCH ALL FROM r")
        .await
        .unwrap();
    assert!(crate::policy::text_of(&rows).contains(SECRET), "premise");
    direct.batch_execute("ROLLBACK").await.unwrap();

    let lab = include_str!("../fixtures/policies/lab.yaml").replacen(
        "functions: [lab.shout, lab.scream]",
        "functions: [lab.shout, lab.scream, lab.reopen]",
        1,
    );
    let p = proxy_with(ProxyOptions {
        upstream_port: Some(cluster.port),
        policies: vec![("lab.yaml".into(), lab)],
        ..Default::default()
    })
    .await;
    let mut r = Raw::lab(p.addr.port()).await;
    // A declared cursor, in one message and in two.
    let one = q(
        &mut r,
        "BEGIN; DECLARE r CURSOR FOR SELECT 1, 2, 3; SELECT lab.reopen('r'); FETCH ALL FROM r",
    )
    .await;
    assert!(!contains(&one, SECRET), "one message: the secret came out");
    assert!(contains(&one, "not known"), "{}", String::from_utf8_lossy(&one));
    q(&mut r, "ROLLBACK").await;
    q(&mut r, "BEGIN; DECLARE r CURSOR FOR SELECT 1, 2, 3").await;
    q(&mut r, "SELECT lab.reopen('r')").await;
    let fetched = q(&mut r, "FETCH ALL FROM r").await;
    assert!(!contains(&fetched, SECRET), "FETCH: the secret came out");
    assert!(contains(&fetched, "not known"), "{}", String::from_utf8_lossy(&fetched));
    q(&mut r, "ROLLBACK").await;
    // A Bind portal, run by a protocol Execute after the call.
    q(&mut r, "BEGIN").await;
    r.send(
        &[
            raw::parse("s1", "SELECT 1, 2, 3", &[]),
            raw::bind("p", "s1", &[], &[]),
            raw::describe(b'P', "p"),
            raw::sync(),
        ]
        .concat(),
    )
    .await;
    assert_eq!(raw::tags(&r.until_ready().await), "12TZ");
    q(&mut r, "SELECT lab.reopen('p')").await;
    r.send(&[raw::execute("p", 0), raw::sync()].concat()).await;
    let frames = r.until_ready().await;
    let bytes: Vec<u8> = frames.iter().flat_map(|f| f.raw.to_vec()).collect();
    assert!(!contains(&bytes, SECRET), "Execute: the secret came out");
    assert_eq!(raw::tags(&frames), "EZ");
    assert!(raw::error_message(&frames[0]).contains("not known"));
    q(&mut r, "ROLLBACK").await;
    // A cursor declared without such a call still runs.
    q(&mut r, "BEGIN; DECLARE k CURSOR FOR SELECT id FROM lab.vault").await;
    r.send(&raw::query("FETCH ALL FROM k")).await;
    assert_eq!(raw::tags(&r.until_ready().await), "TDCZ");
    q(&mut r, "ROLLBACK").await;
}
