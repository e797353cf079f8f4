//! Row filters of the DBA's keyed on the clock (round 163): `now()`, `CURRENT_TIMESTAMP`,
//! `CURRENT_DATE` read the same instant in every session, but what a filter makes of it (and of a
//! stored time, `created_at::date`) depends on the session's TimeZone and DateStyle, which an agent sets in a statement, in a pipeline, at
//! connection start or with set_config. Each way is refused while it is in force; with the
//! server's settings the filter holds and statements run.

use crate::dba::{own_cluster, refusal};
use crate::dba_order::hidden;
use crate::dba_rows::{assert_hidden, proxy_on_shared, SECRET_CALLER};
use crate::policy::{err_text, text_of, wasser};

/// Queues whose rows a session sees only in the zone UTC+14 (or, for the fourth, with a DateStyle
/// that writes dates month first), and a barrier view that filters the same way.
fn ddl() -> String {
    let queue = |n: u8, filter: &str| {
        format!(
            "CREATE TABLE public.night_queue{n} (campaign text, caller text);
             INSERT INTO public.night_queue{n} VALUES ('zeitung', '{SECRET_CALLER}');
             ALTER TABLE public.night_queue{n} ENABLE ROW LEVEL SECURITY;
             CREATE POLICY shift ON public.night_queue{n} FOR SELECT USING ({filter});
             GRANT SELECT ON public.night_queue{n} TO crm_agents;"
        )
    };
    [
        queue(1, "to_char(now(), 'TZH') = '+14'"),
        queue(2, "extract(timezone_hour FROM CURRENT_TIMESTAMP) = 14"),
        "CREATE FUNCTION public.shift_open() RETURNS boolean LANGUAGE sql STABLE AS
           $$ SELECT to_char(statement_timestamp(), 'TZH') = '+14' $$;"
            .to_owned(),
        queue(3, "public.shift_open()"),
        queue(4, "substr(CURRENT_DATE::text, 3, 1) = '/'"),
        queue(5, "false"),
        format!(
            "CREATE TABLE public.night_queue6 (caller text, created_at timestamptz);
             INSERT INTO public.night_queue6 VALUES ('{SECRET_CALLER}', '2026-01-01 23:30+00');
             ALTER TABLE public.night_queue6 ENABLE ROW LEVEL SECURITY;
             CREATE POLICY next_day ON public.night_queue6 FOR SELECT USING (created_at::date = '2026-01-02');
             GRANT SELECT ON public.night_queue6 TO crm_agents;"
        ),
        // Round 164 F5 and F6: a date compared with a timestamptz (converted at local midnight,
        // no cast printed), and text search with the default configuration.
        format!(
            "CREATE TABLE public.calls (caller text, contract_start date, called_at timestamptz);
             INSERT INTO public.calls VALUES ('{SECRET_CALLER}', '2026-01-02', '2026-01-01 23:30+00');
             ALTER TABLE public.calls ENABLE ROW LEVEL SECURITY;
             CREATE POLICY in_contract ON public.calls FOR SELECT USING (called_at >= contract_start);
             CREATE TABLE public.escalations (caller text, note text);
             INSERT INTO public.escalations VALUES ('{SECRET_CALLER}', 'Customer threatens lawyers, complaints to regulator');
             ALTER TABLE public.escalations ENABLE ROW LEVEL SECURITY;
             CREATE POLICY no_legal ON public.escalations FOR SELECT
               USING (NOT (to_tsvector(note) @@ to_tsquery('lawyer | complaint')));
             GRANT SELECT ON public.calls, public.escalations TO crm_agents;
             CREATE FUNCTION public.use_zone(z text) RETURNS text LANGUAGE sql AS $$ SELECT set_config('TimeZone', z, false) $$;"
        ),
        // Round 166: a row comparison (stored with operator numbers only), an XML value made from
        // a timestamptz, an IMMUTABLE function of the DBA's doing the comparison, and an ASSERT
        // that `plpgsql.check_asserts` turns off.
        format!(
            "CREATE TABLE public.calls2 (LIKE public.calls);
             INSERT INTO public.calls2 SELECT * FROM public.calls;
             ALTER TABLE public.calls2 ENABLE ROW LEVEL SECURITY;
             CREATE POLICY in_contract ON public.calls2 FOR SELECT USING ((called_at, 0) >= (contract_start, 0));
             CREATE TABLE public.calls3 (LIKE public.calls);
             INSERT INTO public.calls3 SELECT * FROM public.calls;
             ALTER TABLE public.calls3 ENABLE ROW LEVEL SECURITY;
             CREATE POLICY next_day ON public.calls3 FOR SELECT
               USING (xmlelement(name t, called_at)::text LIKE '%2026-01-02%');
             CREATE TABLE public.calls4 (LIKE public.calls);
             INSERT INTO public.calls4 SELECT * FROM public.calls;
             CREATE FUNCTION public.in_contract(a timestamptz, b date) RETURNS boolean LANGUAGE sql IMMUTABLE
               AS $$ SELECT a >= b $$;
             ALTER TABLE public.calls4 ENABLE ROW LEVEL SECURITY;
             CREATE POLICY in_contract ON public.calls4 FOR SELECT USING (public.in_contract(called_at, contract_start));
             CREATE FUNCTION public.not_zeitung(c text) RETURNS boolean LANGUAGE plpgsql STABLE AS
               $$ BEGIN ASSERT c <> 'zeitung'; RETURN true; EXCEPTION WHEN assert_failure THEN RETURN false; END $$;
             CREATE TABLE public.asserted (campaign text, caller text);
             INSERT INTO public.asserted VALUES ('zeitung', '{SECRET_CALLER}');
             ALTER TABLE public.asserted ENABLE ROW LEVEL SECURITY;
             CREATE POLICY own ON public.asserted FOR SELECT USING (public.not_zeitung(campaign));
             GRANT SELECT ON public.calls2, public.calls3, public.calls4, public.asserted TO crm_agents;"
        ),
        // Round 167 W1: a window frame a day back over a timestamptz steps across the change to
        // summer time in the session's zone (the step is the frame's in-range function).
        format!(
            "CREATE TABLE public.callog (caller text, called_at timestamptz);
             INSERT INTO public.callog VALUES ('{SECRET_CALLER}', '2026-03-28 12:00+00'),
               ('{SECRET_CALLER}', '2026-03-29 11:30+00'), ('+49 30 1111111', '2026-03-20 10:00+00');
             CREATE TABLE public.hotline (caller text, note text);
             INSERT INTO public.hotline VALUES ('+49 30 1111111', 'ok'), ('{SECRET_CALLER}', 'escalated');
             ALTER TABLE public.hotline ENABLE ROW LEVEL SECURITY;
             CREATE POLICY no_repeat ON public.hotline FOR SELECT USING (caller NOT IN (
               SELECT s.caller FROM (SELECT l.caller, count(*) OVER (PARTITION BY l.caller ORDER BY l.called_at
                 RANGE BETWEEN make_interval(days => 1) PRECEDING AND CURRENT ROW) AS n FROM public.callog l) s
               WHERE s.n >= 2));
             GRANT SELECT ON public.callog, public.hotline TO crm_agents;"
        ),
        "CREATE VIEW public.night_view WITH (security_barrier) AS SELECT caller FROM public.night_queue5
           WHERE to_char(clock_timestamp(), 'TZH') = '+14';
         GRANT SELECT ON public.night_view TO crm_agents;"
            .to_owned(),
    ]
    .concat()
}

const GRANTS: &str = "  public.callog: { columns: all }\n  public.hotline: { columns: all }\n  public.calls2: { columns: all }\n  public.calls3: { columns: all }\n  public.calls4: { columns: all }\n  public.asserted: { columns: all }\n  public.calls: { columns: all }\n  public.escalations: { columns: all }\n  public.night_queue6: { columns: all }\n  public.night_queue1: { columns: all }\n  public.night_queue2: { columns: all }\n  public.night_queue3: { columns: all }\n  public.night_queue4: { columns: all }\n  public.night_view: { columns: all }\n";

const ZONE: &str = "Pacific/Kiritimati";

/// The queues and the view each client reads with the server's settings and after SET TimeZone.
const QUEUES: [&str; 5] = [
    "night_queue1",
    "night_queue2",
    "night_queue3",
    "night_queue4",
    "night_view",
];

/// Checks that the agent's `setting` (on `su`, acting as the agent) opens each of `tables`
/// straight against Postgres, then sets everything back.
async fn opened(su: &tokio_postgres::Client, setting: &str, tables: &[&str]) {
    su.batch_execute(setting).await.unwrap();
    for t in tables {
        let rows = su
            .simple_query(&format!("SELECT caller FROM public.{t}"))
            .await
            .unwrap();
        assert!(
            text_of(&rows).contains(SECRET_CALLER),
            "premise: `{setting}` opens public.{t}"
        );
    }
    su.batch_execute("RESET ALL").await.unwrap();
}

/// The refusal of a portal of `sql` bound before `change` and run after it, in one transaction.
async fn portal_after(c: &mut tokio_postgres::Client, sql: &str, change: &str, why: &str) -> String {
    let tx = c.transaction().await.unwrap();
    let stmt = tx.prepare(sql).await.unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    tx.batch_execute(change).await.unwrap();
    let e = tx.query_portal(&portal, 0).await.expect_err(change);
    assert!(err_text(&e).contains(why), "{}", err_text(&e));
    err_text(&e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_filters_on_the_clock_hold_only_with_the_servers_settings() {
    let (cluster, su) = own_cluster(&ddl()).await;
    // The premise: straight to Postgres, the agent's own settings open every table.
    let server_zone: String = su.query_one("SHOW TimeZone", &[]).await.unwrap().get(0);
    su.batch_execute("SET ROLE agent_wasser").await.unwrap();
    let zone = format!("SET TimeZone = '{ZONE}'");
    let tables = [
        "night_queue1",
        "night_queue2",
        "night_queue3",
        "night_queue6",
        "night_view",
        "calls",
        "calls2",
        "calls3",
        "calls4",
    ];
    opened(&su, &zone, &tables).await;
    opened(&su, "SET default_text_search_config = 'simple'", &["escalations"]).await;
    opened(&su, "SET TimeZone = 'Europe/Berlin'", &["hotline"]).await;
    opened(&su, "SET plpgsql.check_asserts = off", &["asserted"]).await;
    opened(&su, "SET DateStyle = 'SQL, MDY'", &["night_queue4"]).await;

    let stadtwerke = crate::dba_rows::stadtwerke_listing(
        "public.shift_open, public.use_zone, public.in_contract, public.not_zeitung",
    );
    let p = proxy_on_shared(&cluster, stadtwerke, GRANTS).await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    // With the server's settings the filters hold: no refusal, no row.
    for t in QUEUES {
        let rows = c.simple_query(&format!("SELECT caller FROM public.{t}")).await.unwrap();
        assert_eq!(text_of(&rows), "", "{t} with the server's settings");
    }
    let why = "computes with the session's settings";

    // SET, then each table and the view.
    c.batch_execute(&format!("SET TimeZone = '{ZONE}'")).await.unwrap();
    for t in QUEUES {
        let text = refusal(&c, &format!("SELECT caller FROM public.{t}"), why).await;
        assert!(text.contains("set timezone"), "{t}: {text}");
        seen.push_str(&text);
    }
    // Cursors and prepared statements made before the SET run under it too.
    c.batch_execute("RESET TimeZone").await.unwrap();
    c.batch_execute("PREPARE q1 AS SELECT caller FROM public.night_queue1")
        .await
        .unwrap();
    c.batch_execute(&format!("SET TimeZone = '{ZONE}'")).await.unwrap();
    seen.push_str(&refusal(&c, "EXECUTE q1", why).await);
    c.batch_execute("RESET TimeZone").await.unwrap();
    c.batch_execute("BEGIN; DECLARE k CURSOR FOR SELECT caller FROM public.night_queue2")
        .await
        .unwrap();
    c.batch_execute(&format!("SET LOCAL TIME ZONE '{ZONE}'")).await.unwrap();
    seen.push_str(&refusal(&c, "FETCH ALL FROM k", why).await);
    c.batch_execute("ROLLBACK").await.unwrap();
    // Back to the server's: allowed again.
    let rows = c.simple_query("SELECT caller FROM public.night_queue1").await.unwrap();
    assert_eq!(text_of(&rows), "", "after RESET");

    // In the same message, in the same statement, with set_config, with SET LOCAL.
    for sql in [
        format!("SET TIME ZONE '{ZONE}'; SELECT caller FROM public.night_queue1"),
        format!("SELECT set_config('TimeZone', '{ZONE}', false), caller FROM public.night_queue2"),
        format!(
            "WITH z AS MATERIALIZED (SELECT set_config('timezone', '{ZONE}', false)) SELECT caller FROM z, public.night_queue3"
        ),
        format!("BEGIN; SET LOCAL TimeZone = '{ZONE}'; SELECT caller FROM public.night_view; COMMIT"),
        "SET DateStyle = 'SQL, MDY'; SELECT caller FROM public.night_queue4".to_owned(),
    ] {
        let text = refusal(&c, &sql, why).await;
        assert!(
            text.contains("this message changes") || text.contains("this statement changes"),
            "{sql}: {text}"
        );
        seen.push_str(&text);
        let _ = c.batch_execute("ROLLBACK; RESET ALL").await;
    }
    // set_config on its own, then the table in the next message.
    c.simple_query(&format!("SELECT set_config('TimeZone', '{ZONE}', false)"))
        .await
        .unwrap();
    seen.push_str(&refusal(&c, "SELECT caller FROM public.night_queue1", "set timezone").await);
    c.batch_execute("RESET TimeZone").await.unwrap();

    // Pipelined in the extended protocol: the SET is not answered when the SELECT is bound.
    // Both prepared first, so that the first poll of each sends its Bind and Execute in order.
    let set_zone = c.prepare(&format!("SET TIME ZONE '{ZONE}'")).await.unwrap();
    let read = c.prepare("SELECT caller FROM public.night_queue1").await.unwrap();
    let (set, read) = tokio::join!(c.execute(&set_zone, &[]), c.query(&read, &[]));
    set.unwrap();
    let e = read.expect_err("pipelined read after SET TIME ZONE");
    assert!(err_text(&e).contains(why), "{}", err_text(&e));
    seen.push_str(&err_text(&e));
    c.batch_execute("RESET TimeZone").await.unwrap();

    // A portal bound with the server's settings and run after a SET LOCAL.
    let set_local = format!("SET LOCAL TimeZone = '{ZONE}'");
    let mut c2 = wasser(&p).await;
    seen.push_str(&portal_after(&mut c2, "SELECT caller FROM public.night_queue3", &set_local, why).await);

    // At connection start, as a parameter in `options`; the server's own zone is no change
    // (pgjdbc sends the JVM's).
    let shifted = p
        .try_connect(&format!("options='-c TimeZone={ZONE}'"), "agent_wasser", "wasser")
        .await
        .unwrap();
    seen.push_str(&refusal(&shifted, "SELECT caller FROM public.night_queue2", "set timezone").await);
    let same = p
        .try_connect(
            &format!("options='-c TimeZone={server_zone}'"),
            "agent_wasser",
            "wasser",
        )
        .await
        .unwrap();
    let rows = same
        .simple_query("SELECT caller FROM public.night_queue2")
        .await
        .unwrap();
    assert_eq!(text_of(&rows), "", "the server's own zone at connection start");
    // lc_time, which the server does not report, counts once set.
    let lc = p
        .try_connect("options='-c lc_time=C'", "agent_wasser", "wasser")
        .await
        .unwrap();
    seen.push_str(&refusal(&lc, "SELECT caller FROM public.night_queue1", "lc_time").await);

    // Round 164. F1: the change made by what an EXECUTE or FETCH runs, in the same message.
    c.batch_execute(&format!("PREPARE pz AS SELECT set_config('TimeZone', '{ZONE}', false)"))
        .await
        .unwrap();
    let text = refusal(&c, "EXECUTE pz; SELECT caller FROM public.night_queue1", why).await;
    assert!(text.contains("this message changes"), "{text}");
    seen.push_str(&text);
    c.batch_execute(&format!(
        "BEGIN; DECLARE cz CURSOR FOR SELECT set_config('TimeZone', '{ZONE}', true)"
    ))
    .await
    .unwrap();
    seen.push_str(&refusal(&c, "FETCH NEXT FROM cz; SELECT caller FROM public.night_queue1", why).await);
    c.batch_execute("ROLLBACK").await.unwrap();
    // F3: a ROLLBACK that brings a zone set before back, in the same message.
    c.batch_execute(&format!("SET TimeZone = '{ZONE}'")).await.unwrap();
    c.batch_execute("BEGIN; RESET TimeZone").await.unwrap();
    seen.push_str(&refusal(&c, "ROLLBACK; SELECT caller FROM public.night_queue1", why).await);
    // The refusal aborted the transaction block.
    c.batch_execute("ROLLBACK; RESET TimeZone").await.unwrap();
    // F4: a WITH HOLD cursor, filled at COMMIT under a SET LOCAL, fetched after it.
    c.batch_execute("BEGIN; DECLARE h CURSOR WITH HOLD FOR SELECT caller FROM public.night_queue2")
        .await
        .unwrap();
    c.batch_execute(&format!("SET LOCAL TimeZone = '{ZONE}'"))
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    seen.push_str(&refusal(&c, "FETCH ALL FROM h", why).await);
    c.batch_execute("CLOSE h").await.unwrap();
    let rows = c.simple_query("SELECT caller FROM public.night_queue1").await.unwrap();
    assert_eq!(text_of(&rows), "", "once the cursor is closed");
    // F5: a date compared with a timestamptz.
    c.batch_execute(&format!("SET TimeZone = '{ZONE}'")).await.unwrap();
    let text = refusal(&c, "SELECT caller FROM public.calls", why).await;
    assert!(text.contains("timestamptz_ge_date"), "{text}");
    seen.push_str(&text);
    c.batch_execute("RESET TimeZone").await.unwrap();
    let rows = c.simple_query("SELECT caller FROM public.calls").await.unwrap();
    assert_eq!(text_of(&rows), "", "public.calls with the server's zone");
    // Round 166 N1: MOVE counts the rows of a cursor declared before a SET LOCAL.
    c.batch_execute("BEGIN; DECLARE m CURSOR FOR SELECT caller FROM public.night_queue1")
        .await
        .unwrap();
    c.batch_execute(&format!("SET LOCAL TimeZone = '{ZONE}'"))
        .await
        .unwrap();
    seen.push_str(&refusal(&c, "MOVE ALL FROM m", why).await);
    c.batch_execute("ROLLBACK").await.unwrap();
    // N2, N3, N4: filters whose dependence their text does not show.
    c.batch_execute(&format!("SET TimeZone = '{ZONE}'")).await.unwrap();
    for t in ["calls2", "calls3", "calls4"] {
        seen.push_str(&refusal(&c, &format!("SELECT caller FROM public.{t}"), why).await);
    }
    c.batch_execute("RESET TimeZone").await.unwrap();
    for t in ["calls2", "calls3", "calls4", "asserted"] {
        let rows = c.simple_query(&format!("SELECT caller FROM public.{t}")).await.unwrap();
        assert_eq!(text_of(&rows), "", "public.{t} with the server's settings");
    }
    // F7: a listed function of the DBA's that sets the zone, in the same message.
    seen.push_str(
        &refusal(
            &c,
            &format!("SELECT public.use_zone('{ZONE}'); SELECT caller FROM public.night_queue1"),
            why,
        )
        .await,
    );
    // F6: default_text_search_config, which the server does not report: for the rest of the
    // session.
    let fts = wasser(&p).await;
    let rows = fts.simple_query("SELECT caller FROM public.escalations").await.unwrap();
    assert_eq!(text_of(&rows), "", "public.escalations with the server's configuration");
    fts.batch_execute("SET default_text_search_config = 'simple'")
        .await
        .unwrap();
    let text = refusal(&fts, "SELECT caller FROM public.escalations", why).await;
    assert!(text.contains("to_tsvector"), "{text}");
    seen.push_str(&text);
    // Round 167 W1: the window frame's step.
    let berlin = wasser(&p).await;
    let rows = berlin.simple_query("SELECT caller FROM public.hotline").await.unwrap();
    assert_eq!(
        text_of(&rows),
        "+49 30 1111111|\n",
        "public.hotline with the server's zone"
    );
    berlin.batch_execute("SET TimeZone = 'Europe/Berlin'").await.unwrap();
    let text = refusal(&berlin, "SELECT caller FROM public.hotline", why).await;
    assert!(text.contains("in_range"), "{text}");
    seen.push_str(&text);
    // A custom setting (`app.tenant`, a dotted name no extension owns) changes nothing a filter
    // computes: the session still reads tables whose policies call the DBA's functions.
    let tenant = wasser(&p).await;
    tenant.batch_execute("SET app.tenant = 'stadtwerke'").await.unwrap();
    let rows = tenant.simple_query("SELECT caller FROM public.asserted").await.unwrap();
    assert_eq!(text_of(&rows), "", "public.asserted after SET app.tenant");
    // N6: an extension's setting (a dotted name) changes what a function computes.
    let asserts = wasser(&p).await;
    asserts.batch_execute("SET plpgsql.check_asserts = off").await.unwrap();
    seen.push_str(&refusal(&asserts, "SELECT caller FROM public.asserted", why).await);

    // Tables without a clock in their filters are not affected.
    c.batch_execute(&format!("SET TimeZone = '{ZONE}'")).await.unwrap();
    c.simple_query("SELECT count(*) FROM stadtwerke.tickets").await.unwrap();
    assert_hidden(&seen, "row filters on the clock");
    let refused = p
        .audit()
        .await
        .iter()
        .filter(|e| e.reason == "forbidden_setting" && e.detail.contains(why))
        .count();
    assert!(refused >= 12, "audited refusals: {refused}");
}

/// Round 168: filters the node tree's markings hide (an IMMUTABLE aggregate whose support
/// functions print values in the session's zone, `quote_ident` under quote_all_identifiers), a
/// filter on a name printed by search_path, and a setting that drops matches from GIN scans.
/// The tables of `ddl_marked` whose filter the path `hold, public` opens.
const PATH_OPENS: &[&str] = &[
    "hold.calls",
    "hold.pf",
    "hold.xd",
    "hold.fn",
    "hold.yb",
    "hold.jr",
    "hold.rg",
    "hold.ot",
    "hold.hp",
    "hold.rc",
    "hold.vw",
    "hold.it",
    "hold.tv",
];

fn ddl_marked() -> String {
    // A table whose child holds the other campaign's caller, hidden by a filter on its name.
    [
        format!(
            "CREATE TABLE public.blocks (caller text, blocked_until timestamptz);
             INSERT INTO public.blocks VALUES ('{SECRET_CALLER}', '2026-03-28 23:30+00');
             CREATE TABLE public.all_contacts (campaign text, caller text);
             INSERT INTO public.all_contacts VALUES ('zeitung', '{SECRET_CALLER}');
             -- A view: as a row-level security policy, jsonb_object_agg (the last of equal keys
             -- wins) is refused outright (round 182 S2).
             CREATE VIEW public.contacts AS SELECT campaign, caller FROM public.all_contacts WHERE (campaign = 'stadtwerke' OR
               ((SELECT jsonb_object_agg(b.caller, b.blocked_until) FROM public.blocks b) ->> caller) >= '2026-03-29');
             CREATE TABLE public.blocked_sources (qualified_name text);
             INSERT INTO public.blocked_sources VALUES ('zeitung.leads');
             CREATE TABLE public.inbox (src_schema text, src_table text, caller text);
             INSERT INTO public.inbox VALUES ('zeitung', 'leads', '{SECRET_CALLER}');
             ALTER TABLE public.inbox ENABLE ROW LEVEL SECURITY;
             CREATE POLICY unblocked ON public.inbox FOR SELECT USING (quote_ident(src_schema) || '.' ||
               quote_ident(src_table) NOT IN (SELECT qualified_name FROM public.blocked_sources));
             GRANT SELECT ON public.blocks, public.contacts, public.blocked_sources, public.inbox TO crm_agents;
             CREATE SCHEMA hold;
             GRANT USAGE ON SCHEMA hold TO crm_agents;
             CREATE DOMAIN hold.relname AS regclass;
             CREATE TYPE hold.rel AS (r regclass);
             CREATE TYPE hold.relrange AS RANGE (subtype = regclass);
             CREATE FUNCTION public.table_name(o oid) RETURNS text LANGUAGE sql STABLE AS $$ SELECT o::regclass::text $$;
             CREATE FUNCTION public.pinned_name(o oid) RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog
               AS $$ SELECT o::regclass::text $$;
             CREATE FUNCTION public.pinned_row(o oid) RETURNS hold.rel LANGUAGE sql STABLE SET search_path = pg_catalog
               AS $$ SELECT ROW(o::regclass)::hold.rel $$;
             CREATE FUNCTION public.pinned_out(o oid, OUT r regclass, OUT n int) LANGUAGE sql STABLE
               SET search_path = pg_catalog AS $$ SELECT o::regclass, 1 $$;
             CREATE TABLE public.marker ();
             CREATE TABLE hold.marker ();
             GRANT SELECT ON public.marker TO crm_agents;
             CREATE FUNCTION public.pinned_rec(o oid) RETURNS record LANGUAGE sql STABLE
               SET search_path = pg_catalog AS $$ SELECT ROW(o::regclass) $$;
             CREATE FUNCTION public.type_name(oid, int4) RETURNS text LANGUAGE internal STABLE AS 'format_type';
             CREATE VIEW public.vdef AS SELECT FROM hold.marker;
             CREATE TEXT SEARCH CONFIGURATION hold.cfg (COPY = simple);"
        ),
        hidden("calls", "tableoid::regclass::text <> 'hold.calls_legal'"),
        hidden("pf", "format('%s', tableoid::regclass) <> 'hold.pf_legal'"),
        hidden("xd", "format('%s', tableoid::hold.relname) <> 'hold.xd_legal'"),
        hidden("fn", "public.table_name(tableoid) <> 'hold.fn_legal'"),
        hidden("yb", "public.pinned_row(tableoid)::text <> '(hold.yb_legal)'"),
        hidden("pinned", "public.pinned_name(tableoid) <> 'hold.pinned_legal'"),
        // Round 173: a column definition list of built-ins; a range over regclass; a function
        // that sets its own path and returns a regclass through an OUT parameter; a name looked up
        // from text (which `marker` the path finds).
        hidden(
            "jr",
            "NOT EXISTS (SELECT FROM json_to_record(json_build_object('r', tableoid)) AS s(r regclass)
               WHERE s::text = '(hold.jr_legal)')",
        ),
        hidden(
            "rg",
            "('[' || tableoid || ',' || tableoid || ']')::hold.relrange::text <> '[hold.rg_legal,hold.rg_legal]'",
        ),
        hidden("ot", "public.pinned_out(tableoid)::text <> '(hold.ot_legal,1)'"),
        hidden("hp", "NOT has_table_privilege('marker', 'SELECT')"),
        // Round 176: a bare record from a function that sets its own path; a catalog view that
        // prints a definition; a DBA's LANGUAGE internal wrapper of format_type.
        hidden("rc", "public.pinned_rec(tableoid)::text <> '(hold.rc_legal)'"),
        // Round 178 P1: a visibility test whose name has an underscore inside.
        hidden(
            "tv",
            "pg_ts_config_is_visible((SELECT c.oid FROM pg_ts_config c WHERE c.cfgname = 'cfg'))",
        ),
        // Round 180 R2: the default conversion is looked up by the path.
        hidden("cv", "convert_from('\\x41'::bytea, 'LATIN1') <> 'A'"),
        hidden(
            "vw",
            "NOT EXISTS (SELECT FROM pg_views WHERE viewname = 'vdef' AND definition LIKE '%hold.marker%')",
        ),
        hidden(
            "it",
            "public.type_name((SELECT t.oid FROM pg_type t WHERE t.typname = 'relname'), NULL) <> 'hold.relname'",
        ),
    ]
    .concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_whose_markings_hide_a_setting_or_that_print_names_by_search_path_are_refused() {
    let (cluster, su) = own_cluster(&ddl_marked()).await;
    su.batch_execute("SET ROLE agent_wasser").await.unwrap();
    opened(&su, &format!("SET TimeZone = '{ZONE}'"), &["contacts"]).await;
    opened(&su, "SET quote_all_identifiers = on", &["inbox"]).await;
    su.batch_execute("SET search_path = hold, public").await.unwrap();
    for t in PATH_OPENS {
        let rows = su.simple_query(&format!("SELECT caller FROM {t}")).await.unwrap();
        assert!(text_of(&rows).contains(SECRET_CALLER), "premise: the path opens {t}");
    }
    su.batch_execute("RESET ALL").await.unwrap();

    let grants: String = [
        "public.blocks",
        "public.contacts",
        "public.all_contacts",
        "public.blocked_sources",
        "public.inbox",
        "hold.pinned",
        "hold.cv",
    ]
    .iter()
    .chain(PATH_OPENS)
    .map(|t| format!("  {t}: {{ columns: all }}\n"))
    .collect();
    let stadtwerke = crate::dba_rows::stadtwerke_listing("public.table_name, public.pinned_name, public.pinned_row, public.pinned_out, public.pinned_rec, public.type_name");
    let p = proxy_on_shared(&cluster, stadtwerke, &grants).await;
    let c = wasser(&p).await;
    for t in ["public.contacts", "public.inbox", "hold.pinned", "hold.cv"]
        .iter()
        .chain(PATH_OPENS)
    {
        let rows = c.simple_query(&format!("SELECT caller FROM {t}")).await.unwrap();
        assert_eq!(text_of(&rows), "", "{t} with the server's settings");
    }
    let mut seen = String::new();
    let why = "computes with the session's settings";
    // F1: jsonb_object_agg is marked IMMUTABLE; its support functions print the zone.
    c.batch_execute(&format!("SET TimeZone = '{ZONE}'")).await.unwrap();
    let text = refusal(&c, "SELECT caller FROM public.contacts", why).await;
    assert!(text.contains("jsonb_object_agg"), "{text}");
    seen.push_str(&text);
    c.batch_execute("RESET TimeZone").await.unwrap();
    // F3: quote_ident reads quote_all_identifiers.
    c.batch_execute("SET quote_all_identifiers = on").await.unwrap();
    let text = refusal(&c, "SELECT caller FROM public.inbox", why).await;
    assert!(text.contains("quote_ident"), "{text}");
    seen.push_str(&text);

    // F4: the child table's name prints unqualified once the path shows its schema. By SET, in
    // the same message, in the same statement, and for a portal bound before the SET.
    let path = wasser(&p).await;
    let names = "prints or looks up names by the session's search_path";
    path.batch_execute("SET search_path = hold, public").await.unwrap();
    seen.push_str(&refusal(&path, "SELECT caller FROM hold.calls", names).await);
    // Round 170: printed by a function, without a cast.
    seen.push_str(&refusal(&path, "SELECT caller FROM hold.pf", names).await);
    // Round 171: a domain over regclass; a function of the DBA's that runs on the session's path.
    seen.push_str(&refusal(&path, "SELECT caller FROM hold.xd", names).await);
    seen.push_str(&refusal(&path, "SELECT caller FROM hold.fn", names).await);
    // Round 172: a row type with a regclass field, from a function that sets its own path.
    // Round 173: a column definition list, a range, an OUT parameter, a name looked up from text.
    // Round 176: a bare record, a catalog view, an internal wrapper.
    for t in [
        "hold.yb", "hold.jr", "hold.rg", "hold.ot", "hold.hp", "hold.rc", "hold.vw", "hold.it", "hold.tv", "hold.cv",
    ] {
        seen.push_str(&refusal(&path, &format!("SELECT caller FROM {t}"), names).await);
    }
    // What does not depend on the path still runs: a filter on the zone, a function that sets
    // its own path.
    for t in ["public.contacts", "hold.pinned"] {
        let rows = path.simple_query(&format!("SELECT caller FROM {t}")).await.unwrap();
        assert_eq!(text_of(&rows), "", "{t} after SET search_path");
    }
    path.batch_execute("RESET search_path").await.unwrap();
    let rows = path.simple_query("SELECT caller FROM hold.calls").await.unwrap();
    assert_eq!(text_of(&rows), "", "hold.calls after RESET search_path");
    for sql in [
        "SET search_path = hold, public; SELECT caller FROM hold.calls",
        "SELECT set_config('search_path', 'hold, public', false), caller FROM hold.calls",
    ] {
        seen.push_str(&refusal(&path, sql, names).await);
        path.batch_execute("RESET search_path").await.unwrap();
    }
    let mut portal_client = wasser(&p).await;
    let set_local = "SET LOCAL search_path = hold, public";
    seen.push_str(&portal_after(&mut portal_client, "SELECT caller FROM hold.calls", set_local, names).await);
    // A path chosen at connection start.
    let chosen = p
        .try_connect("options='-c search_path=hold,public'", "agent_wasser", "wasser")
        .await
        .unwrap();
    seen.push_str(&refusal(&chosen, "SELECT caller FROM hold.calls", names).await);

    // F2: gin_fuzzy_search_limit drops matches from GIN scans, whatever a filter calls.
    let gin = wasser(&p).await;
    for sql in [
        "SET gin_fuzzy_search_limit = 1",
        "SELECT set_config('gin_fuzzy_search_limit', '1', false)",
    ] {
        refusal(&gin, sql, "gin_fuzzy_search_limit").await;
    }
    let e = p
        .try_connect("options='-c gin_fuzzy_search_limit=1'", "agent_wasser", "wasser")
        .await
        .expect_err("gin_fuzzy_search_limit at connection start");
    assert!(err_text(&e).contains("gin_fuzzy_search_limit"), "{}", err_text(&e));
    assert_hidden(&seen, "filters whose markings hide a setting");
}
