//! Extended-protocol attacks found by red-teaming: names Postgres truncates, the proxy's stand-in
//! names, and portals whose EXECUTE or FETCH target is redefined after Bind. None may return the
//! masked `lab.vault.secret` in clear.

use crate::harness::*;
use crate::raw::{self, Raw};

const SECRET: &[u8] = b"VAULT-SECRET";

/// Sends `msgs` and returns every byte the client receives up to ReadyForQuery.
async fn exchange(r: &mut Raw, msgs: &[Vec<u8>]) -> Vec<u8> {
    r.send(&msgs.concat()).await;
    tokio::time::timeout(std::time::Duration::from_secs(20), r.bytes_until_ready())
        .await
        .unwrap_or_else(|_| panic!("no ReadyForQuery within 20 s after {} messages", msgs.len()))
}

fn assert_hidden(bytes: &[u8], what: &str) {
    assert!(
        !bytes.windows(SECRET.len()).any(|w| w == SECRET),
        "{what}: the masked value came through:\n{}",
        String::from_utf8_lossy(bytes)
    );
}

/// The proxy refused the statement (SQLSTATE 42501).
fn assert_refused(out: &[u8], what: &str) {
    let text = String::from_utf8_lossy(out);
    assert!(text.contains("42501"), "{what}: not refused: {text}");
}

/// The secret stays hidden, and a masked row (`****`) shows the statement did run.
fn assert_masked(bytes: &[u8], what: &str) {
    assert_hidden(bytes, what);
    assert!(
        bytes.windows(4).any(|w| w == b"****"),
        "{what}: no masked row: {}",
        String::from_utf8_lossy(bytes)
    );
}

#[tokio::test]
async fn names_longer_than_63_bytes_are_one_object_as_in_postgres() {
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let (n1, n2) = (format!("{}1", "b".repeat(63)), format!("{}2", "b".repeat(63)));
    let evil = "SELECT * FROM lab.vault";
    let mut seen = Vec::new();
    seen.extend(exchange(&mut r, &[raw::parse(&n2, "SELECT 1", &[]), raw::sync()]).await);
    seen.extend(exchange(&mut r, &[raw::close(b'S', &n1), raw::sync()]).await);
    seen.extend(exchange(&mut r, &[raw::parse(&n1, evil, &[]), raw::sync()]).await);
    let out = exchange(
        &mut r,
        &[raw::bind("", &n2, &[], &[]), raw::execute("", 0), raw::sync()],
    )
    .await;
    assert!(
        out.windows(4).any(|w| w == b"****"),
        "the row comes back masked: {}",
        String::from_utf8_lossy(&out)
    );
    seen.extend(out);
    // The portal variant.
    seen.extend(exchange(&mut r, &[raw::query("BEGIN")]).await);
    seen.extend(
        exchange(
            &mut r,
            &[
                raw::parse("benign", "SELECT 1", &[]),
                raw::parse("evil", evil, &[]),
                raw::sync(),
            ],
        )
        .await,
    );
    seen.extend(exchange(&mut r, &[raw::bind(&n2, "benign", &[], &[]), raw::sync()]).await);
    seen.extend(
        exchange(
            &mut r,
            &[raw::close(b'P', &n1), raw::bind(&n1, "evil", &[], &[]), raw::sync()],
        )
        .await,
    );
    seen.extend(exchange(&mut r, &[raw::execute(&n2, 0), raw::sync()]).await);
    assert_hidden(&seen, "names that differ after byte 63");
}

#[tokio::test]
async fn the_stand_in_names_cannot_be_taken_in_sql() {
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let mut seen = exchange(
        &mut r,
        &[raw::query(
            "DECLARE unscharf_refused CURSOR WITH HOLD FOR SELECT * FROM lab.vault",
        )],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&seen).contains("reserved"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    seen.extend(exchange(&mut r, &[raw::execute("nosuchportal", 0), raw::sync()]).await);
    seen.extend(
        exchange(
            &mut r,
            &[raw::query("PREPARE unscharf_refused AS SELECT * FROM lab.vault")],
        )
        .await,
    );
    seen.extend(
        exchange(
            &mut r,
            &[
                raw::bind("", "nosuchstatement", &[], &[]),
                raw::execute("", 0),
                raw::sync(),
            ],
        )
        .await,
    );
    assert_hidden(&seen, "stand-in names");
    let events = p.audit().await;
    assert!(
        events.iter().filter(|e| e.decision.as_str() == "refused").count() >= 4,
        "{events:?}"
    );
}

/// Defines a target with `define`, binds a portal running `runs` against it, redefines the
/// target with `redefine`, then executes the portal: it must be refused as redefined.
async fn redefined_after_bind(r: &mut Raw, define: &str, runs: &str, redefine: &str) -> Vec<u8> {
    let mut seen = exchange(r, &[raw::query(define)]).await;
    // The statement of an earlier call outlives its transaction: closed first, or this Parse
    // fails and the portal is never made.
    let bind = [
        raw::close(b'S', "s"),
        raw::parse("s", runs, &[]),
        raw::bind("port", "s", &[], &[]),
        raw::sync(),
    ];
    seen.extend(exchange(r, &bind).await);
    seen.extend(exchange(r, &[raw::query(redefine)]).await);
    let out = exchange(r, &[raw::execute("port", 0), raw::sync()]).await;
    assert!(
        String::from_utf8_lossy(&out).contains("redefined"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    seen.extend(out);
    seen.extend(exchange(r, &[raw::query("ROLLBACK")]).await);
    seen
}

#[tokio::test]
async fn a_portal_runs_only_what_it_was_judged_for() {
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let mut seen = redefined_after_bind(
        &mut r,
        "BEGIN; PREPARE p AS SELECT ''::text AS x",
        "EXECUTE p",
        "DEALLOCATE p; PREPARE p AS SELECT secret FROM lab.vault",
    )
    .await;
    seen.extend(
        redefined_after_bind(
            &mut r,
            "BEGIN; DECLARE cur CURSOR FOR SELECT ''::text AS x",
            "FETCH ALL FROM cur",
            "CLOSE cur; DECLARE cur CURSOR FOR SELECT secret FROM lab.vault",
        )
        .await,
    );
    assert_hidden(&seen, "portals of EXECUTE and FETCH");
    // Unchanged, the same portal runs and masks.
    let mut ok = exchange(
        &mut r,
        &[raw::query("BEGIN; PREPARE q AS SELECT secret FROM lab.vault")],
    )
    .await;
    ok.extend(
        exchange(
            &mut r,
            &[
                raw::parse("s3", "EXECUTE q", &[]),
                raw::bind("port3", "s3", &[], &[]),
                raw::execute("port3", 0),
                raw::sync(),
            ],
        )
        .await,
    );
    assert!(ok.windows(4).any(|w| w == b"****"), "{}", String::from_utf8_lossy(&ok));
    assert_hidden(&ok, "an unchanged EXECUTE portal");
}

/// Round 7: a Bind portal that runs `EXECUTE p` kept p's statement from Bind time, and SQL `FETCH`
/// on it (or a portal fetching from it) was judged by that old statement while Postgres ran the
/// new p. Such indirections are refused.
#[tokio::test]
async fn portals_that_run_execute_cannot_be_fetched_or_replay_old_statements() {
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let union = "SELECT secret FROM lab.vault UNION ALL SELECT secret FROM lab.vault WHERE false";
    let mut seen = exchange(&mut r, &[raw::query("BEGIN; PREPARE p AS SELECT ''::text AS x")]).await;
    seen.extend(
        exchange(
            &mut r,
            &[
                raw::parse("s", "EXECUTE p", &[]),
                raw::bind("c", "s", &[], &[]),
                raw::sync(),
            ],
        )
        .await,
    );
    seen.extend(exchange(&mut r, &[raw::query(&format!("DEALLOCATE p; PREPARE p AS {union}"))]).await);
    let fetched = exchange(&mut r, &[raw::query("FETCH ALL FROM c")]).await;
    assert!(
        String::from_utf8_lossy(&fetched).contains("itself runs EXECUTE"),
        "{}",
        String::from_utf8_lossy(&fetched)
    );
    seen.extend(fetched);
    // A portal fetching from that portal is refused at Bind, whatever p becomes later.
    let chained = exchange(
        &mut r,
        &[raw::query("ROLLBACK; BEGIN; PREPARE p AS SELECT ''::text AS x")],
    )
    .await;
    seen.extend(chained);
    seen.extend(
        exchange(
            &mut r,
            &[
                raw::parse("s", "EXECUTE p", &[]),
                raw::bind("c", "s", &[], &[]),
                raw::parse("s2", "FETCH ALL FROM c", &[]),
                raw::bind("d", "s2", &[], &[]),
                raw::sync(),
            ],
        )
        .await,
    );
    seen.extend(exchange(&mut r, &[raw::query(&format!("DEALLOCATE p; PREPARE p AS {union}"))]).await);
    seen.extend(exchange(&mut r, &[raw::execute("d", 0), raw::sync()]).await);
    let bound = exchange(&mut r, &[raw::query("ROLLBACK")]).await;
    assert!(String::from_utf8_lossy(&seen).contains("itself runs EXECUTE"));
    seen.extend(bound);
    // The same union, prepared and run plainly, is masked.
    let now = exchange(&mut r, &[raw::query(&format!("PREPARE u AS {union}; EXECUTE u"))]).await;
    assert!(
        now.windows(4).any(|w| w == b"****"),
        "{}",
        String::from_utf8_lossy(&now)
    );
    seen.extend(now);
    seen.extend(exchange(&mut r, &[raw::query("ROLLBACK")]).await);
    assert_hidden(&seen, "portals running EXECUTE");
}

/// `shadow.vault`, readable by u_trust and in no campaign: a table an unqualified `vault` may
/// resolve to under another search_path, holding the secret in its allowed-looking column. Made
/// once: tests running at the same time would race in CREATE SCHEMA IF NOT EXISTS.
async fn shadow_vault() {
    static MADE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    MADE.get_or_init(|| async {
        let su = superuser().await;
        su.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS shadow; CREATE TABLE IF NOT EXISTS shadow.vault (id int, open text, secret text);
         TRUNCATE shadow.vault; INSERT INTO shadow.vault VALUES (1, 'VAULT-SECRET', 'VAULT-SECRET');
         GRANT USAGE ON SCHEMA shadow TO u_trust; GRANT SELECT ON shadow.vault TO u_trust",
        )
        .await
        .unwrap();
    })
    .await;
}

/// Round 7: Postgres analyzes a prepared statement again when search_path has changed since it was
/// prepared, so an unqualified name may then mean a table of the same name elsewhere. Such an
/// EXECUTE, Bind or Describe is refused.
#[tokio::test]
async fn prepared_statements_are_refused_after_search_path_changes() {
    shadow_vault().await;
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let mut seen = exchange(&mut r, &[raw::query("SET search_path = lab")]).await;
    let prepared = exchange(&mut r, &[raw::query("PREPARE p AS SELECT open || '' AS o FROM vault")]).await;
    assert!(
        !String::from_utf8_lossy(&prepared).contains("unscharf"),
        "{}",
        String::from_utf8_lossy(&prepared)
    );
    seen.extend(prepared);
    seen.extend(
        exchange(
            &mut r,
            &[raw::parse("s", "SELECT open || '' AS o FROM vault", &[]), raw::sync()],
        )
        .await,
    );
    // Unchanged, both run.
    let ok = exchange(&mut r, &[raw::query("EXECUTE p")]).await;
    assert!(
        !String::from_utf8_lossy(&ok).contains("search_path"),
        "{}",
        String::from_utf8_lossy(&ok)
    );
    seen.extend(ok);
    seen.extend(exchange(&mut r, &[raw::query("SET search_path = shadow, lab")]).await);
    for msgs in [
        vec![raw::query("EXECUTE p")],
        vec![raw::bind("", "s", &[], &[]), raw::execute("", 0), raw::sync()],
        vec![raw::describe(b'S', "s"), raw::sync()],
    ] {
        let out = exchange(&mut r, &msgs).await;
        assert!(
            String::from_utf8_lossy(&out).contains("search_path has changed"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        seen.extend(out);
    }
    // Back to the path it was prepared under, it runs again.
    seen.extend(exchange(&mut r, &[raw::query("SET search_path = lab")]).await);
    let again = exchange(&mut r, &[raw::query("EXECUTE p")]).await;
    assert!(
        !String::from_utf8_lossy(&again).contains("search_path"),
        "{}",
        String::from_utf8_lossy(&again)
    );
    seen.extend(again);
    assert_hidden(&seen, "a prepared statement after SET search_path");
}

/// Round 19: a protocol Execute of a cursor's portal runs the cursor's query, set_config calls
/// included, and the proxy took it for a FETCH without effects: the next Query was judged under
/// the old search_path and read shadow.vault as lab.vault.
#[tokio::test]
async fn executing_a_cursor_portal_applies_its_search_path_change() {
    shadow_vault().await;
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let mut seen = exchange(&mut r, &[raw::query("SET search_path = lab")]).await;
    seen.extend(
        exchange(
            &mut r,
            &[raw::query(
                "BEGIN; DECLARE c CURSOR FOR SELECT set_config('search_path', 'shadow, lab', false)",
            )],
        )
        .await,
    );
    seen.extend(exchange(&mut r, &[raw::execute("c", 0), raw::sync()]).await);
    let out = exchange(&mut r, &[raw::query("SELECT (SELECT open) FROM vault")]).await;
    assert_refused(&out, "");
    seen.extend(out);
    seen.extend(exchange(&mut r, &[raw::query("ROLLBACK")]).await);
    assert_hidden(&seen, "a Query after Execute of a cursor that changes search_path");
}

/// Round 20: EXECUTE and COPY are utility statements, whose names Postgres looks up only when their
/// portal runs. A search_path change after Parse made a protocol `EXECUTE p` plan `p` again under
/// the new path; one after Bind did the same, and made a bound COPY open another table.
#[tokio::test]
async fn portals_that_look_names_up_when_they_run_refuse_a_path_change() {
    shadow_vault().await;
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let mut seen = exchange(&mut r, &[raw::query("SET search_path = lab")]).await;
    seen.extend(exchange(&mut r, &[raw::query("PREPARE p AS SELECT open || '' AS o FROM vault")]).await);
    // Unchanged, a portal running EXECUTE p works.
    let ok = exchange(
        &mut r,
        &[
            raw::parse("e", "EXECUTE p", &[]),
            raw::bind("", "e", &[], &[]),
            raw::execute("", 0),
            raw::sync(),
        ],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&ok).contains("open"),
        "{}",
        String::from_utf8_lossy(&ok)
    );
    seen.extend(ok);
    let change = |stmt: &str| {
        vec![
            raw::parse(stmt, "SET search_path = shadow, lab", &[]),
            raw::bind("", stmt, &[], &[]),
            raw::execute("", 0),
        ]
    };
    let after_parse = [
        vec![raw::query("SET search_path = shadow, lab")],
        vec![raw::bind("", "e", &[], &[]), raw::execute("", 0), raw::sync()],
    ];
    let after_bind = |sql: &str, n: usize| {
        let (stmt, portal, set) = (format!("s{n}"), format!("p{n}"), format!("set{n}"));
        let mut msgs = vec![raw::parse(&stmt, sql, &[]), raw::bind(&portal, &stmt, &[], &[])];
        msgs.extend(change(&set));
        msgs.extend([raw::execute(&portal, 0), raw::sync()]);
        vec![msgs]
    };
    for (n, rounds) in [
        after_parse.to_vec(),
        after_bind("EXECUTE p", 1),
        after_bind("COPY vault (open) TO STDOUT", 2),
        after_bind("COPY (SELECT open FROM vault) TO STDOUT", 3),
    ]
    .into_iter()
    .enumerate()
    {
        let mut out = Vec::new();
        for msgs in rounds {
            out.extend(exchange(&mut r, &msgs).await);
        }
        assert!(
            String::from_utf8_lossy(&out).contains("search_path has changed"),
            "case {n}: {}",
            String::from_utf8_lossy(&out)
        );
        seen.extend(out);
        seen.extend(exchange(&mut r, &[raw::query("SET search_path = lab")]).await);
    }
    assert_hidden(&seen, "a portal that looks its names up when it runs");
}

/// Round 20: the proxy trimmed Unicode whitespace from search_path items, where Postgres takes a
/// no-break space (or a vertical tab) as part of the schema name. `\u{a0}lab` names no schema, so
/// Postgres read shadow.vault while the proxy judged lab.vault. An expression carries no table
/// OID, so rule 10 could not catch it.
#[tokio::test]
async fn search_path_items_are_split_as_postgres_splits_them() {
    shadow_vault().await;
    let p = proxy().await;
    let mut seen = Vec::new();
    for space in ["\u{a0}", "\u{b}", "\u{3000}"] {
        let mut r = Raw::lab(p.addr.port()).await;
        let set = format!("SELECT set_config('search_path', '{space}lab, shadow', false)");
        seen.extend(exchange(&mut r, &[raw::query(&set)]).await);
        let out = exchange(&mut r, &[raw::query("SELECT open || '' AS o FROM vault")]).await;
        assert_refused(&out, &format!("{space:?}"));
        seen.extend(out);
    }
    assert_hidden(&seen, "a search_path item with a space Postgres does not trim");
}

/// Round 20: Postgres skips a schema in search_path that the user may not use, so an unqualified
/// name resolved to the next schema's table while the proxy judged the first's. The probe now
/// asks which schemas Postgres searches.
#[tokio::test]
async fn schemas_postgres_skips_in_search_path_are_skipped_when_judging() {
    shadow_vault().await;
    let su = superuser().await;
    su.batch_execute(
        "DROP SCHEMA IF EXISTS locked CASCADE; CREATE SCHEMA locked;
         CREATE TABLE locked.vault (id int, open text, secret text); REVOKE ALL ON SCHEMA locked FROM PUBLIC",
    )
    .await
    .unwrap();
    let policy = "campaign: locked\ntables: [locked.*]\npurposes:\n  transparency:\n    tables:\n      locked.vault: { columns: all }\n";
    let p = proxy_with(ProxyOptions {
        policies: vec![("locked.yaml".into(), policy.into())],
        ..Default::default()
    })
    .await;
    let mut seen = Vec::new();
    for set in [
        "SET search_path = locked, shadow",
        "SELECT set_config('search_path', 'locked, shadow', false)",
    ] {
        let mut r = Raw::lab(p.addr.port()).await;
        seen.extend(exchange(&mut r, &[raw::query(set)]).await);
        let out = exchange(&mut r, &[raw::query("SELECT open || '' AS o FROM vault")]).await;
        assert_refused(&out, set);
        seen.extend(out);
    }
    assert_hidden(&seen, "a search_path naming a schema the user may not use");
    su.batch_execute("DROP SCHEMA locked CASCADE").await.unwrap();
}

/// A lab session with `search_path = {schema}, lab` whose `vault` is still lab.vault, and what it
/// has received so far.
async fn vault_reads_lab_first(p: &Proxy, schema: &str) -> (Raw, Vec<u8>) {
    let mut r = Raw::lab(p.addr.port()).await;
    let set = format!("SET search_path = {schema}, lab");
    let mut seen = exchange(&mut r, &[raw::query(&set)]).await;
    let before = exchange(&mut r, &[raw::query("SELECT open || '' AS o FROM vault")]).await;
    let text = String::from_utf8_lossy(&before).into_owned();
    assert!(text.contains("open") && !text.contains("42501"), "{text}");
    seen.extend(before);
    (r, seen)
}

/// Round 20: DDL done outside the proxy was seen only on the next refresh (an unknown name, or
/// every 60 s). A table created in a schema early in search_path changed what an unqualified name
/// meant to Postgres, while the proxy still resolved it to the later schema's table. With
/// deploy/catalog_watch.sql installed, the server notifies and the proxy refreshes at once.
#[tokio::test]
async fn a_table_created_outside_the_proxy_is_seen_at_once() {
    let su = superuser().await;
    su.batch_execute(
        "DROP SCHEMA IF EXISTS early CASCADE; CREATE SCHEMA early; GRANT USAGE ON SCHEMA early TO u_trust",
    )
    .await
    .unwrap();
    let p = proxy().await;
    let (mut r, mut seen) = vault_reads_lab_first(&p, "early").await;
    su.batch_execute(
        "CREATE TABLE early.vault (id int, open text, secret text);
         INSERT INTO early.vault VALUES (1, 'VAULT-SECRET', 'VAULT-SECRET'); GRANT SELECT ON early.vault TO u_trust",
    )
    .await
    .unwrap();
    // Other tests' DDL refreshes the catalog too: wait for the refresh that has this table.
    let known = || {
        p.shared
            .catalog
            .load()
            .lookup(&unscharf::policy::QName::new("early", "vault"))
            .is_some()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !known() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(known(), "no catalog refresh after the DDL");
    let after = exchange(&mut r, &[raw::query("SELECT open || '' AS o FROM vault")]).await;
    assert_refused(&after, "");
    seen.extend(after);
    assert_hidden(&seen, "a table created outside the proxy");
    su.batch_execute("DROP SCHEMA early CASCADE").await.unwrap();
}

/// Rounds 21 and 22: a GRANT of USAGE on a schema early in search_path changed what an open
/// session's unqualified names meant to Postgres (and Postgres itself notices only at its next
/// cache invalidation), while the proxy kept the schemas it had read. A name two schemas of the
/// path hold is now refused, whether or not the user may use the first at the moment.
#[tokio::test]
async fn a_name_two_schemas_of_the_path_hold_is_refused_whatever_their_privileges() {
    let su = superuser().await;
    su.batch_execute(
        "DROP SCHEMA IF EXISTS granted CASCADE; CREATE SCHEMA granted;
         CREATE TABLE granted.vault (id int, open text, secret text);
         INSERT INTO granted.vault VALUES (1, 'VAULT-SECRET', 'VAULT-SECRET')",
    )
    .await
    .unwrap();
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let mut seen = exchange(&mut r, &[raw::query("SET search_path = granted, lab")]).await;
    let vault = "SELECT open || '' AS o FROM vault";
    let before = exchange(&mut r, &[raw::query(vault)]).await;
    assert_refused(&before, "without USAGE on granted");
    seen.extend(before);
    su.batch_execute("GRANT USAGE ON SCHEMA granted TO u_trust; GRANT SELECT ON granted.vault TO u_trust")
        .await
        .unwrap();
    p.shared.refresh_catalog_now().await.unwrap();
    let piped = [
        raw::parse("", vault, &[]),
        raw::bind("", "", &[], &[]),
        raw::execute("", 0),
        raw::sync(),
    ];
    for msgs in [vec![raw::query(vault)], piped.to_vec()] {
        let after = exchange(&mut r, &msgs).await;
        assert_refused(&after, "with USAGE on granted");
        seen.extend(after);
    }
    // Qualified, each is what it is.
    let lab = exchange(&mut r, &[raw::query("SELECT open || '' AS o FROM lab.vault")]).await;
    assert!(
        !String::from_utf8_lossy(&lab).contains("42501"),
        "{}",
        String::from_utf8_lossy(&lab)
    );
    seen.extend(lab);
    assert_hidden(&seen, "a name two schemas of the path hold");
    su.batch_execute("DROP SCHEMA granted CASCADE").await.unwrap();
}

/// Round 21: a login whose role was revoked kept its purpose for the rest of its session. A role
/// change is seen on the next catalog refresh, and the session's purpose is bound again (rule 2).
#[tokio::test]
async fn a_session_loses_its_purpose_when_its_role_is_revoked() {
    let su = superuser().await;
    su.batch_execute(
        "DROP ROLE IF EXISTS u_revoked; CREATE ROLE u_revoked LOGIN PASSWORD 'revoked' IN ROLE crm_agents, wasser_agents",
    )
    .await
    .unwrap();
    let p = proxy().await;
    let c = p.connect("u_revoked", "revoked").await;
    let sql = "SELECT name FROM stadtwerke.customers WHERE customer_no = 1001";
    assert!(!crate::policy::text_of(&c.simple_query(sql).await.unwrap()).is_empty());
    su.batch_execute("REVOKE wasser_agents FROM u_revoked").await.unwrap();
    // Role memberships are global objects: no event trigger fires; the periodic refresh sees them.
    p.shared.refresh_catalog_now().await.unwrap();
    let e = c.simple_query(sql).await.unwrap_err();
    assert!(
        crate::policy::err_text(&e).contains("no_purpose"),
        "{}",
        crate::policy::err_text(&e)
    );
    su.batch_execute("GRANT wasser_agents TO u_revoked").await.unwrap();
    p.shared.refresh_catalog_now().await.unwrap();
    assert!(c.simple_query(sql).await.is_ok());
    drop(c);
    su.batch_execute("DROP OWNED BY u_revoked; DROP ROLE u_revoked")
        .await
        .unwrap();
}

/// Round 7: facts kept for prepared statements name relations by their index in the catalog
/// snapshot; a refresh after a DBA dropped an earlier table moved every later one, and a masked
/// column then read as a harmless column of the next table. A refresh now keeps indexes.
#[tokio::test]
async fn a_catalog_refresh_does_not_move_what_prepared_statements_name() {
    let su = superuser().await;
    su.batch_execute(
        "DROP SCHEMA IF EXISTS shift CASCADE; CREATE SCHEMA shift;
         CREATE TABLE shift.a (x int); CREATE TABLE shift.v (id int, pad text, secret text, note text);
         CREATE TABLE shift.w (id int, open text);
         INSERT INTO shift.v VALUES (1, 'pad', 'VAULT-SECRET', 'note'); INSERT INTO shift.w VALUES (1, 'open');
         GRANT USAGE ON SCHEMA shift TO u_trust; GRANT SELECT ON ALL TABLES IN SCHEMA shift TO u_trust",
    )
    .await
    .unwrap();
    let policy = "campaign: shift\ntables: [shift.*]\npurposes:\n  transparency:\n    tables:\n      shift.v: { columns: { id: allow, pad: allow, secret: { mask: redact }, note: allow } }\n      shift.w: { columns: all }\n";
    let p = proxy_with(ProxyOptions {
        policies: vec![("shift.yaml".into(), policy.into())],
        ..Default::default()
    })
    .await;
    let mut r = Raw::lab(p.addr.port()).await;
    let prepared = exchange(
        &mut r,
        &[raw::query("PREPARE p AS SELECT (SELECT secret) AS s FROM shift.v")],
    )
    .await;
    assert!(
        !String::from_utf8_lossy(&prepared).contains("unscharf"),
        "{}",
        String::from_utf8_lossy(&prepared)
    );
    let mut seen = prepared;
    // A dropped table before it, and a dropped column before the masked one.
    su.batch_execute("DROP TABLE shift.a; ALTER TABLE shift.v DROP COLUMN pad")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // An unknown relation makes the proxy read the catalog again.
    seen.extend(exchange(&mut r, &[raw::query("SELECT * FROM shift.no_such_table")]).await);
    let after = exchange(&mut r, &[raw::query("EXECUTE p")]).await;
    seen.extend(after);
    // `*` lists what the table has now, in its order: no cut-off, the secret masked.
    let star = exchange(&mut r, &[raw::query("SELECT * FROM shift.v")]).await;
    let text = String::from_utf8_lossy(&star).into_owned();
    assert!(
        text.contains("note") && !text.contains("pad") && !text.contains("cut off"),
        "{text}"
    );
    seen.extend(star);
    assert_hidden(&seen, "a prepared statement across a catalog refresh");
    su.batch_execute("DROP SCHEMA shift CASCADE").await.unwrap();
}

/// Round 8: after a failed extended-protocol message, Postgres ignores everything until the
/// client's Sync, Query messages included. The proxy expected answers to those, so the rows of
/// the statement after the Sync met an earlier statement's plan; and drivers that sent
/// Parse, Bind and Sync in separate writes after a refusal had their session ended.
#[tokio::test]
async fn messages_a_failed_batch_skips_get_no_answers() {
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    r.send(&[raw::parse("", "SELECT lower(secret) FROM lab.vault", &[]), raw::flush()].concat())
        .await;
    let refused = r.frame().await;
    assert_eq!(refused.tag, b'E');
    // Sent after the error arrived: all skipped by the server.
    r.send(
        &[
            raw::query("SELECT 1"),
            raw::query("SELECT ''::text AS s"),
            raw::bind("", "", &[], &[]),
        ]
        .concat(),
    )
    .await;
    r.send(&raw::sync()).await;
    let mut seen = r.bytes_until_ready().await;
    let out = exchange(&mut r, &[raw::query("SELECT (SELECT secret) AS s FROM lab.vault")]).await;
    assert!(
        out.windows(4).any(|w| w == b"****"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    seen.extend(out);
    assert_hidden(&seen, "replies after a failed batch");
    // A driver's Parse (refused), Bind and Sync in separate writes: an error, then the session goes on.
    r.send(&[raw::parse("", "SELECT lower(secret) FROM lab.vault", &[]), raw::flush()].concat())
        .await;
    assert_eq!(r.frame().await.tag, b'E');
    r.send(&raw::bind("", "", &[], &[])).await;
    r.send(&raw::sync()).await;
    assert_eq!(raw::tags(&r.until_ready().await), "Z");
    let ok = exchange(&mut r, &[raw::query("SELECT 1")]).await;
    assert!(ok.contains(&b'D'), "{}", String::from_utf8_lossy(&ok));
}

/// Round 13: a PREPARE, Parse or DECLARE that fails was taken for done by messages sent before
/// its answer came back, in a later batch that the failure does not skip. They were judged by the
/// statement or cursor that was never made, while the server ran the old one: the masked column
/// came out in clear. Such messages now wait for the answer; the rows below must be masked.
#[tokio::test]
async fn a_redefinition_that_fails_is_not_taken_for_done() {
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    // No Describe: without a RowDescription, rule 10 has nothing to check.
    // A simple Query whose PREPARE never runs, then a Bind of that name in the same write.
    exchange(&mut r, &[raw::query("PREPARE p AS SELECT secret FROM lab.vault")]).await;
    let mut seen = exchange(
        &mut r,
        &[
            raw::query("SELECT 1/0; DEALLOCATE p; PREPARE p AS SELECT ''::text AS s"),
            raw::bind("", "p", &[], &[]),
            raw::execute("", 0),
            raw::sync(),
        ],
    )
    .await;
    seen.extend(r.bytes_until_ready().await);
    assert_masked(&seen, "Bind after a failed PREPARE");
    // A named Parse that fails (the name is taken), then a Bind of it after the Sync.
    exchange(
        &mut r,
        &[raw::parse("q", "SELECT secret FROM lab.vault", &[]), raw::sync()],
    )
    .await;
    let mut seen = exchange(
        &mut r,
        &[
            raw::parse("q", "SELECT ''::text AS s", &[]),
            raw::sync(),
            raw::bind("", "q", &[], &[]),
            raw::execute("", 0),
            raw::sync(),
        ],
    )
    .await;
    seen.extend(r.bytes_until_ready().await);
    assert_masked(&seen, "Bind after a failed Parse");
    // A DECLARE of an open cursor's name fails; the FETCH in the next Query reads the old cursor.
    exchange(
        &mut r,
        &[raw::query(
            "DECLARE c CURSOR WITH HOLD FOR SELECT secret FROM lab.vault",
        )],
    )
    .await;
    let mut seen = exchange(
        &mut r,
        &[
            raw::query("DECLARE c CURSOR WITH HOLD FOR SELECT ''::text AS s"),
            raw::query("FETCH ALL FROM c"),
        ],
    )
    .await;
    seen.extend(r.bytes_until_ready().await);
    assert_masked(&seen, "FETCH after a failed DECLARE");
}

/// Round 15: in a Query of several statements, Postgres commits before it completes the last one.
/// When that commit fails (here a holdable cursor whose query divides by zero), the last
/// statement has run but its completion never comes, and PREPARE and DEALLOCATE are not undone by
/// the rollback. The proxy kept the old meaning of the name, and a scalar subquery (no table OID
/// for rule 10) returned the masked column in clear.
#[tokio::test]
async fn a_redefinition_whose_commit_fails_is_not_forgotten() {
    const FAILING_COMMIT: &str = "DECLARE x CURSOR WITH HOLD FOR SELECT 1/(g-1) FROM generate_series(1,1) g";
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    // Each wrapper sends a statement so that Postgres runs it and then fails to commit.
    let multi = |then: &str| vec![raw::query(&format!("{FAILING_COMMIT}; {then}"))];
    // Round 17: a one-statement Query after extended messages without a Sync joins their
    // transaction and commits it after that statement.
    let unsynced = |then: &str| {
        vec![
            raw::parse("", FAILING_COMMIT, &[]),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
            raw::query(then),
        ]
    };
    // Round 18: a Sync held back for a COPY and dropped when its data began never ended that
    // transaction, though the proxy had counted it.
    let through_copy = |then: &str| {
        let mut m = unsynced(then);
        let q = m.pop().unwrap();
        m.extend([
            raw::parse("", "COPY lab.inbox (body, n) FROM STDIN", &[]),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
            raw::sync(),
            raw::msg(b'c', b""),
            q,
        ]);
        m
    };
    let mut seen = Vec::new();
    for (wrap, deallocate) in [
        (&multi as &dyn Fn(&str) -> Vec<Vec<u8>>, "DEALLOCATE p"),
        (&multi, "DEALLOCATE ALL;; ;"),
        (&unsynced, "DEALLOCATE p"),
        (&through_copy, "DEALLOCATE p"),
    ] {
        exchange(&mut r, &[raw::query("DEALLOCATE ALL")]).await;
        exchange(&mut r, &[raw::query("PREPARE p AS SELECT ''::text AS s")]).await;
        let failed = exchange(&mut r, &wrap(deallocate)).await;
        assert!(
            String::from_utf8_lossy(&failed).contains("22012"),
            "{}",
            String::from_utf8_lossy(&failed)
        );
        exchange(&mut r, &wrap("PREPARE p AS SELECT (SELECT secret) AS s FROM lab.vault")).await;
        let out = exchange(&mut r, &[raw::query("EXECUTE p")]).await;
        seen.extend(
            exchange(
                &mut r,
                &[raw::bind("", "p", &[], &[]), raw::execute("", 0), raw::sync()],
            )
            .await,
        );
        assert!(
            String::from_utf8_lossy(&out).contains("not known to unscharf"),
            "after `{deallocate}`: {}",
            String::from_utf8_lossy(&out)
        );
        seen.extend(out);
    }
    assert_hidden(&seen, "EXECUTE after a PREPARE whose commit failed");
    // Once the name is redefined for certain, it runs, masked.
    let out = exchange(
        &mut r,
        &[
            raw::query("DEALLOCATE ALL"),
            raw::query("PREPARE p AS SELECT (SELECT secret) AS s FROM lab.vault"),
            raw::query("EXECUTE p"),
        ],
    )
    .await;
    let out = [out, r.bytes_until_ready().await, r.bytes_until_ready().await].concat();
    assert_masked(&out, "EXECUTE of a certain PREPARE");
}

/// Round 13: setting names were compared case-sensitively, and Postgres finds them in any case.
/// One pipeline turned standard_conforming_strings off, ran a statement that the proxy read as two
/// constants and Postgres as a query of the masked column, and turned it on again before the Sync,
/// so no ParameterStatus ever told the proxy.
#[tokio::test]
async fn a_quoted_setting_name_cannot_change_how_strings_are_read() {
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let step = |sql: &str| {
        [
            raw::parse("", sql, &[]),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
        ]
        .concat()
    };
    let seen = exchange(
        &mut r,
        &[
            step("SET \"STANDARD_CONFORMING_STRINGS\" = off"),
            step("SELECT 'a\\' AS x, ' AS y, secret FROM lab.vault --'"),
            step("SET \"STANDARD_CONFORMING_STRINGS\" = on"),
            raw::sync(),
        ],
    )
    .await;
    assert_hidden(&seen, "a statement after SET \"STANDARD_CONFORMING_STRINGS\" = off");
    assert!(
        String::from_utf8_lossy(&seen).contains("forbidden_setting"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    let after = exchange(&mut r, &[raw::query("SHOW standard_conforming_strings")]).await;
    assert!(String::from_utf8_lossy(&after).contains("on"));
}

/// Round 14: once a COPY FROM's data had ended, messages after it skipped the wait for a
/// redefinition that may fail; the PREPARE before a COPY that never started was taken for done.
#[tokio::test]
async fn a_redefinition_before_a_copy_is_not_taken_for_done() {
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    exchange(&mut r, &[raw::query("PREPARE p AS SELECT secret FROM lab.vault")]).await;
    let mut seen = exchange(
        &mut r,
        &[
            raw::query("PREPARE p AS SELECT ''::text AS s; COPY lab.items (id, label) FROM STDIN"),
            raw::msg(b'c', b""),
            raw::bind("", "p", &[], &[]),
            raw::execute("", 0),
            raw::sync(),
        ],
    )
    .await;
    seen.extend(r.bytes_until_ready().await);
    assert_masked(&seen, "Bind after a COPY whose PREPARE failed");
}

/// Round 97: a refused Query followed, in the same write, by a malformed frame ended the session
/// before the refusal's record was handed to the audit writer.
#[tokio::test]
async fn a_refusal_is_audited_when_a_malformed_frame_follows_it() {
    let p = proxy().await;
    let mut r = Raw::lab(p.addr.port()).await;
    let mut bytes = raw::query("SELECT lower(secret) FROM lab.vault");
    // A Query whose length field is shorter than the length itself.
    bytes.extend_from_slice(&[b'Q', 0, 0, 0, 2]);
    r.send(&bytes).await;
    while r.try_frame().await.is_some() {}
    let events = p.audit().await;
    assert!(
        events
            .iter()
            .any(|e| e.decision.as_str() == "refused" && e.statement.contains("lab.vault")),
        "{events:?}"
    );
}
