//! Row filters of the DBA's that take rows in the order a plan reads them (round 179 Q1): an
//! unordered `string_agg` over a GROUP BY hid the other campaign's row while the planner sorted
//! the group and showed it once `SET work_mem` made the planner hash it; another session's scan
//! of a large table moves where a synchronized sequential scan starts (round 182 S2). A row-level
//! security policy that does so is refused outright; a view's query only once the planner's
//! settings moved. Filters that do not depend on the order run.
use crate::dba::{own_cluster, refusal};
use crate::dba_rows::{assert_hidden, proxy_on_shared, SECRET_CALLER};
use crate::policy::{err_text, text_of, wasser};

/// `hold.{t}` has a child with the other campaign's caller, hidden by `using`.
pub(crate) fn hidden(t: &str, using: &str) -> String {
    format!(
        "CREATE TABLE hold.{t} (campaign text, caller text);
         CREATE TABLE hold.{t}_legal () INHERITS (hold.{t});
         INSERT INTO hold.{t}_legal VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE hold.{t} ENABLE ROW LEVEL SECURITY;
         CREATE POLICY no_legal ON hold.{t} FOR SELECT USING ({using});
         GRANT SELECT ON hold.{t} TO crm_agents;"
    )
}

/// The first tag of `hold.modes`, grouped: `allow` in index order (sorted group), another in the
/// order of a hash table (hashed group), which work_mem or hash_mem_multiplier chooses.
const FIRST_TAG: &str =
    "(SELECT left(string_agg(g.tag, ','), 5) FROM (SELECT m.tag FROM hold.modes m GROUP BY m.tag) g) <> 'allow'";

fn ddl() -> String {
    [
        "CREATE SCHEMA hold;
         GRANT USAGE ON SCHEMA hold TO crm_agents;
         CREATE TABLE hold.modes (tag text);
         INSERT INTO hold.modes SELECT 'v' || g FROM generate_series(1, 200000) g;
         INSERT INTO hold.modes VALUES ('allow'), ('hold');
         CREATE INDEX modes_tag ON hold.modes (tag);
         GRANT SELECT ON hold.modes TO crm_agents;
         ANALYZE hold.modes;"
            .to_owned(),
        hidden("agg", FIRST_TAG),
        // The same query behind two views: what a view computes runs inside the filter.
        format!(
            "CREATE VIEW hold.first_tag AS SELECT {} AS hide;
             CREATE VIEW hold.first_tag2 AS SELECT hide FROM hold.first_tag;
             GRANT SELECT ON hold.first_tag, hold.first_tag2 TO crm_agents;",
            FIRST_TAG.trim_end_matches(" <> 'allow'")
        ),
        hidden("viewed", "(SELECT hide FROM hold.first_tag2) <> 'allow'"),
        // No order: the same groups counted.
        hidden(
            "counted",
            "(SELECT count(*) FROM (SELECT m.tag FROM hold.modes m GROUP BY m.tag) g) <> 200002",
        ),
        // Round 182 S3: which of 1.0 and 1.00 min returns follows the order.
        "CREATE TABLE hold.amounts (v numeric);
         INSERT INTO hold.amounts VALUES (1.0), (1.00);
         GRANT SELECT ON hold.amounts TO crm_agents;"
            .to_owned(),
        hidden("scaled", "(SELECT scale(min(v)) FROM hold.amounts) <> 2"),
        // Round 183 T2, T3: 'allow' and 'allow ' are one char(10); a sample is chosen at random.
        "CREATE TABLE hold.codes (c char(10));
         GRANT SELECT ON hold.codes TO crm_agents;"
            .to_owned(),
        hidden("padded", "(SELECT min(c) FROM hold.codes)::text <> 'allow'"),
        hidden(
            "sampled",
            "NOT EXISTS (SELECT FROM hold.amounts TABLESAMPLE BERNOULLI (50))",
        ),
        // Round 184 U1-U3: min as a window function, INTERSECT ALL, chance.
        hidden(
            "windowed",
            "NOT EXISTS (SELECT FROM (SELECT min(v) OVER () AS m FROM hold.amounts) s WHERE scale(s.m) = 2)",
        ),
        hidden(
            "intersected",
            "NOT EXISTS (SELECT FROM (SELECT v FROM hold.amounts INTERSECT ALL SELECT 1.00) s WHERE scale(s.v) = 2)",
        ),
        hidden("chance", "random() < 0"),
        // Round 185 V1, V3: an aggregate's own DISTINCT keeps one of 1.0 and 1.00; a random UUID.
        hidden("distinct_sum", "(SELECT scale(sum(DISTINCT v)) FROM hold.amounts) <> 2"),
        hidden("uuid_chance", "gen_random_uuid()::text < '0'"),
        // Distinct text of a deterministic collation prints the same whichever row it came from.
        hidden(
            "distinct_text",
            "campaign IN (SELECT DISTINCT m.tag FROM hold.modes m WHERE m.tag = 'stadtwerke')",
        ),
        // A view whose query hides the row the same way.
        format!(
            "CREATE TABLE hold.calls (campaign text, caller text);
             INSERT INTO hold.calls VALUES ('zeitung', '{SECRET_CALLER}');
             CREATE VIEW hold.open_calls AS SELECT campaign, caller FROM hold.calls WHERE {FIRST_TAG};
             GRANT SELECT ON hold.open_calls TO crm_agents;"
        ),
    ]
    .concat()
}

const TABLES: [&str; 3] = ["hold.agg", "hold.viewed", "hold.open_calls"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_that_follow_the_plans_row_order_are_refused() {
    let (cluster, su) = own_cluster(&ddl()).await;
    // The premise, straight to Postgres: the agent's planner settings open every one.
    su.batch_execute("SET ROLE agent_wasser").await.unwrap();
    for t in TABLES {
        let rows = su.simple_query(&format!("SELECT caller FROM {t}")).await.unwrap();
        assert_eq!(text_of(&rows), "", "premise: {t} hidden with the server's settings");
    }
    for lever in ["work_mem = '16MB'", "hash_mem_multiplier = 8"] {
        su.batch_execute(&format!("SET {lever}")).await.unwrap();
        for t in TABLES {
            let rows = su.simple_query(&format!("SELECT caller FROM {t}")).await.unwrap();
            assert!(text_of(&rows).contains(SECRET_CALLER), "premise: SET {lever} opens {t}");
        }
        su.batch_execute("RESET ALL").await.unwrap();
    }

    let grants: String = [
        "hold.agg",
        "hold.viewed",
        "hold.counted",
        "hold.modes",
        "hold.first_tag",
        "hold.first_tag2",
        "hold.open_calls",
        "hold.calls",
        "hold.amounts",
        "hold.scaled",
        "hold.codes",
        "hold.padded",
        "hold.sampled",
        "hold.windowed",
        "hold.intersected",
        "hold.chance",
        "hold.distinct_sum",
        "hold.uuid_chance",
        "hold.distinct_text",
    ]
    .iter()
    .map(|t| format!("  {t}: {{ columns: all }}\n"))
    .collect();
    let p = proxy_on_shared(
        &cluster,
        include_str!("../../policies/stadtwerke.yaml").to_owned(),
        &grants,
    )
    .await;
    let c = wasser(&p).await;
    let outright = "takes rows in the order a plan reads them";
    let mut seen = String::new();
    // A row-level security policy: refused whatever the settings, also through a view it reads.
    for t in [
        "hold.agg",
        "hold.viewed",
        "hold.scaled",
        "hold.padded",
        "hold.sampled",
        "hold.windowed",
        "hold.intersected",
        "hold.chance",
        "hold.distinct_sum",
        "hold.uuid_chance",
    ] {
        seen.push_str(&refusal(&c, &format!("SELECT caller FROM {t}"), outright).await);
    }
    // A view's query and a filter without order run with the server's settings.
    for t in ["hold.open_calls", "hold.counted", "hold.distinct_text"] {
        let rows = c.simple_query(&format!("SELECT caller FROM {t}")).await.unwrap();
        assert_eq!(text_of(&rows), "", "{t} with the server's settings");
    }
    // The view, once a planner lever moved: by SET, SET LOCAL, set_config in the same statement,
    // at connection start, and for a statement prepared before.
    let why = "computes with the session's settings";
    for lever in ["work_mem = '16MB'", "hash_mem_multiplier = 8"] {
        let s = wasser(&p).await;
        s.batch_execute(&format!("SET {lever}")).await.unwrap();
        let text = refusal(&s, "SELECT caller FROM hold.open_calls", why).await;
        assert!(text.contains("the order a plan reads them"), "{text}");
        seen.push_str(&text);
        let rows = s.simple_query("SELECT caller FROM hold.counted").await.unwrap();
        assert_eq!(text_of(&rows), "", "hold.counted after SET {lever}");
    }
    for sql in [
        "BEGIN; SET LOCAL work_mem = '16MB'; SELECT caller FROM hold.open_calls",
        "SELECT set_config('work_mem', '16MB', false), caller FROM hold.open_calls",
    ] {
        let s = wasser(&p).await;
        seen.push_str(&refusal(&s, sql, why).await);
    }
    let started = p
        .try_connect("options='-c work_mem=16MB'", "agent_wasser", "wasser")
        .await
        .unwrap();
    seen.push_str(&refusal(&started, "SELECT caller FROM hold.open_calls", why).await);
    // Round 229 BN1: as the role's or the database's default, which masks of printed values
    // ignore (round 228 BM2).
    for (set, reset) in [
        (
            "ALTER ROLE agent_wasser SET work_mem = '16MB'",
            "ALTER ROLE agent_wasser RESET work_mem",
        ),
        (
            "ALTER DATABASE crm SET hash_mem_multiplier = 8",
            "ALTER DATABASE crm RESET hash_mem_multiplier",
        ),
        // Round 231 BP3: every role's default.
        ("ALTER ROLE ALL SET work_mem = '16MB'", "ALTER ROLE ALL RESET work_mem"),
    ] {
        su.batch_execute(&format!("RESET ROLE; {set}")).await.unwrap();
        let s = wasser(&p).await;
        seen.push_str(&refusal(&s, "SELECT caller FROM hold.open_calls", why).await);
        let rows = s.simple_query("SELECT caller FROM hold.counted").await.unwrap();
        assert_eq!(text_of(&rows), "", "hold.counted under {set}");
        su.batch_execute(reset).await.unwrap();
    }
    let s = wasser(&p).await;
    let stmt = s.prepare("SELECT caller FROM hold.open_calls").await.unwrap();
    s.batch_execute("SET work_mem = '16MB'").await.unwrap();
    let e = s.query(&stmt, &[]).await.expect_err("prepared after SET work_mem");
    assert!(err_text(&e).contains(why), "{}", err_text(&e));
    seen.push_str(&err_text(&e));
    assert_hidden(&seen, "filters that follow the plan's row order");
}

/// Round 183 T1: a DBA's helper that keeps whichever row a plan reads first (a scalar SQL
/// function's first row, PL/pgSQL's `SELECT … INTO`) decides a row-level security policy by the
/// plan; a lookup by a unique key, or one that errs on a second row, does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpers_that_keep_the_first_of_several_rows_are_refused() {
    let helpers = [
        ("first_row", "sql", "SELECT campaign FROM hold.assign WHERE login = current_user"),
        (
            "into_first",
            "plpgsql",
            "DECLARE c text; BEGIN SELECT campaign INTO c FROM hold.assign WHERE login = current_user; RETURN c; END",
        ),
        ("calls_first", "sql", "SELECT hold.first_row()"),
        ("keyed", "sql", "SELECT campaign FROM hold.sess WHERE login = current_user"),
        (
            "into_strict",
            "plpgsql",
            "DECLARE c text; BEGIN SELECT campaign INTO STRICT c FROM hold.assign WHERE login = current_user AND campaign = 'stadtwerke'; RETURN c; END",
        ),
    ];
    let mut ddl = String::from(
        "CREATE SCHEMA hold;
         GRANT USAGE ON SCHEMA hold TO crm_agents;
         CREATE TABLE hold.assign (login text, campaign text);
         INSERT INTO hold.assign VALUES ('agent_wasser', 'stadtwerke'), ('agent_wasser', 'zeitung');
         CREATE INDEX assign_login ON hold.assign (login, campaign DESC);
         CREATE TABLE hold.sess (login text PRIMARY KEY, campaign text);
         INSERT INTO hold.sess VALUES ('agent_wasser', 'stadtwerke');
         GRANT SELECT ON hold.assign, hold.sess TO crm_agents;",
    );
    for (name, language, body) in helpers {
        ddl.push_str(&format!(
            "CREATE FUNCTION hold.{name}() RETURNS text LANGUAGE {language} STABLE AS $${body}$$;"
        ));
        ddl.push_str(&hidden(name, &format!("campaign = hold.{name}()")));
    }
    // Through a view the policy reads.
    ddl.push_str(
        "CREATE VIEW hold.first_view AS SELECT hold.first_row() AS c;
         GRANT SELECT ON hold.first_view TO crm_agents;",
    );
    ddl.push_str(&hidden("viewed_first", "campaign = (SELECT c FROM hold.first_view)"));
    let (cluster, _su) = own_cluster(&ddl).await;
    // The premise, straight to Postgres: the plan chooses which campaign the helpers return (each
    // in a session of its own: PL/pgSQL keeps a session's first plan).
    for t in ["first_row", "into_first", "calls_first", "viewed_first"] {
        for (scan, shown) in [("enable_indexscan", false), ("enable_seqscan", true)] {
            let su = crate::harness::connect_url(&cluster.superuser_url("crm")).await;
            su.batch_execute(&format!(
                "SET ROLE agent_wasser; SET {scan} = off; SET enable_bitmapscan = off"
            ))
            .await
            .unwrap();
            let rows = su.simple_query(&format!("SELECT caller FROM hold.{t}")).await.unwrap();
            assert_eq!(
                text_of(&rows).contains(SECRET_CALLER),
                shown,
                "premise: hold.{t} without {scan}"
            );
        }
    }

    let names: Vec<String> = helpers.iter().map(|(n, _, _)| format!("hold.{n}")).collect();
    let stadtwerke = crate::dba_rows::stadtwerke_listing(&names.join(", "));
    let grants: String = helpers
        .iter()
        .map(|(n, _, _)| *n)
        .chain(["viewed_first", "first_view", "assign", "sess"])
        .map(|t| format!("  hold.{t}: {{ columns: all }}\n"))
        .collect();
    let p = proxy_on_shared(&cluster, stadtwerke, &grants).await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for (t, why) in [
        ("first_row", "returns the first"),
        ("into_first", "SELECT … INTO without STRICT"),
        ("calls_first", "through hold.calls_first"),
        ("viewed_first", "through hold.first_view"),
    ] {
        let text = refusal(
            &c,
            &format!("SELECT caller FROM hold.{t}"),
            "takes rows in the order a plan reads them",
        )
        .await;
        assert!(text.contains(why), "hold.{t}: {text}");
        seen.push_str(&text);
    }
    for t in ["keyed", "into_strict"] {
        let rows = c.simple_query(&format!("SELECT caller FROM hold.{t}")).await.unwrap();
        assert_eq!(text_of(&rows), "", "hold.{t} runs and hides the row");
    }
    assert_hidden(&seen, "helpers that keep the first row");
}

/// Round 213 AX1: a portal bound while a filter's helper was proved to return one row (a unique
/// key) ran after the DBA dropped that key: the catalog's fingerprint left the keys out, so the
/// portal was not judged again, and its Execute returned the row the filter had hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_is_judged_again_once_a_helpers_one_row_proof_is_gone() {
    let ddl = format!(
        "CREATE SCHEMA hold;
         GRANT USAGE ON SCHEMA hold TO crm_agents;
         CREATE TABLE hold.scope (login text NOT NULL, campaign text NOT NULL);
         CREATE UNIQUE INDEX scope_login ON hold.scope (login);
         INSERT INTO hold.scope VALUES ('agent_wasser', 'stadtwerke');
         GRANT SELECT ON hold.scope TO crm_agents;
         CREATE FUNCTION hold.my_campaign() RETURNS text LANGUAGE plpgsql VOLATILE AS
           $$DECLARE c text; BEGIN SELECT campaign INTO c FROM hold.scope WHERE login = current_user; RETURN c; END$$;
         {}",
        hidden("scoped", "campaign = hold.my_campaign()")
    );
    let (cluster, su) = own_cluster(&ddl).await;
    let stadtwerke = crate::dba_rows::stadtwerke_listing("hold.my_campaign");
    let p = proxy_on_shared(
        &cluster,
        stadtwerke,
        "  hold.scoped: { columns: all }\n  hold.scope: { columns: all }\n",
    )
    .await;
    let mut c = wasser(&p).await;
    let tx = c.transaction().await.unwrap();
    let stmt = tx.prepare("SELECT caller FROM hold.scoped").await.unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    // The key goes, and the scope table now keeps zeitung's row first. (The helper is VOLATILE:
    // the planner would run a STABLE one to estimate the filter, and the agent's transaction
    // would then hold a lock on hold.scope.)
    su.batch_execute(
        "DROP INDEX hold.scope_login;
         CREATE INDEX scope_login ON hold.scope (login);
         DELETE FROM hold.scope;
         INSERT INTO hold.scope VALUES ('agent_wasser', 'zeitung'), ('agent_wasser', 'stadtwerke');",
    )
    .await
    .unwrap();
    // The premise, straight to Postgres: the helper now returns zeitung, and the filter shows
    // zeitung's row.
    su.batch_execute("SET ROLE agent_wasser").await.unwrap();
    let direct = su.simple_query("SELECT caller FROM hold.scoped").await.unwrap();
    assert!(text_of(&direct).contains(SECRET_CALLER), "premise");
    su.batch_execute("RESET ROLE").await.unwrap();
    // Once the proxy has read the change (its event trigger tells it), the portal is refused.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut seen = String::new();
    match tx.query_portal(&portal, 0).await {
        Ok(rows) => {
            for r in &rows {
                seen.push_str(r.get::<_, &str>(0));
            }
            panic!("the old portal ran: {seen:?}");
        }
        Err(e) => seen.push_str(&err_text(&e)),
    }
    assert_hidden(&seen, "a portal bound before the key was dropped");
}
