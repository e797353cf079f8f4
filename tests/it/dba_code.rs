//! A DBA's functions as Postgres runs them behind a statement: helpers of row-level security
//! policies and defaults, however their bodies are written, and trigger functions that compare the
//! stored row with the written one (round 142).

use crate::dba::{own_cluster, refusal};
use crate::dba_rows::{assert_hidden, proxy_on_shared, SECRET_CALLER, SECRET_DEAL};
use crate::harness::*;
use crate::policy::{text_of, wasser};

/// Round 142: helpers written with a SQL-standard body (`RETURN …`, no prosrc), one reading a
/// setting through a view, one named with an umlaut, one running `SHOW` through EXECUTE; a
/// numbering default whose SQL-standard helper draws from a sequence; a policy reading the
/// settings view itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpers_are_read_however_their_bodies_are_written() {
    let mut ddl = String::from(
        "CREATE VIEW public.session_ctx AS SELECT current_setting('app.campaign', true) AS campaign;
         CREATE FUNCTION public.std_campaign() RETURNS text LANGUAGE sql STABLE
           RETURN current_setting('app.campaign', true);
         CREATE FUNCTION public.ctx_campaign() RETURNS text LANGUAGE sql STABLE
           AS $$ SELECT campaign FROM public.session_ctx $$;
         CREATE FUNCTION public.kampagne_für_sitzung() RETURNS text LANGUAGE sql STABLE
           AS $$ SELECT current_setting('app.campaign', true) $$;
         CREATE FUNCTION public.umlaut_campaign() RETURNS text LANGUAGE sql STABLE
           AS $$ SELECT public.kampagne_für_sitzung() $$;
         CREATE FUNCTION public.shown_campaign() RETURNS text LANGUAGE plpgsql STABLE
           AS $$ DECLARE v text; BEGIN EXECUTE 'SHOW app.campaign' INTO v; RETURN v; END $$;
         CREATE SEQUENCE public.case_seq; GRANT USAGE ON SEQUENCE public.case_seq TO crm_agents;
         CREATE FUNCTION public.next_case_no() RETURNS text LANGUAGE sql VOLATILE
           BEGIN ATOMIC SELECT 'C-' || nextval('public.case_seq'); END;
         ALTER TABLE stadtwerke.tickets ADD COLUMN case_no text DEFAULT public.next_case_no();",
    );
    let policies = [
        ("by_std", "campaign = public.std_campaign()"),
        ("by_ctx", "campaign = public.ctx_campaign()"),
        ("by_umlaut", "campaign = public.umlaut_campaign()"),
        ("by_show", "campaign = public.shown_campaign()"),
        ("by_view", "campaign = (SELECT c.campaign FROM public.session_ctx c)"),
    ];
    let mut shared = String::new();
    for (t, using) in policies {
        ddl.push_str(&format!(
            "CREATE TABLE public.{t} (campaign text, caller text);
             INSERT INTO public.{t} VALUES ('zeitung', '{SECRET_CALLER}');
             ALTER TABLE public.{t} ENABLE ROW LEVEL SECURITY;
             CREATE POLICY mine ON public.{t} USING ({using});
             GRANT SELECT ON public.{t} TO crm_agents;
             GRANT SELECT ON public.session_ctx TO crm_agents;"
        ));
        shared.push_str(&format!("  public.{t}: {{ columns: all }}\n"));
    }
    let (cluster, _su) = own_cluster(&ddl).await;
    let stadtwerke = crate::dba_rows::stadtwerke_listing(
        "public.std_campaign, public.ctx_campaign, public.umlaut_campaign, public.shown_campaign, public.next_case_no",
    );
    let p = proxy_on_shared(&cluster, stadtwerke, &shared).await;
    let c = wasser(&p).await;
    c.batch_execute("SET app.campaign = 'zeitung'").await.unwrap();
    let mut seen = String::new();
    for (sql, why) in [
        ("SELECT caller FROM public.by_std", "through public.std_campaign"),
        ("SELECT caller FROM public.by_ctx", "through public.ctx_campaign"),
        ("SELECT caller FROM public.by_umlaut", "through public.umlaut_campaign"),
        ("SELECT caller FROM public.by_show", "through public.shown_campaign"),
        (
            "SELECT caller FROM public.by_view",
            "filters by public.session_ctx.campaign",
        ),
        (
            "INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (1001, 'x') RETURNING case_no",
            "calls public.next_case_no, whose code draws from a sequence",
        ),
    ] {
        seen.push_str(&refusal(&c, sql, why).await);
    }
    assert_hidden(&seen, "helpers however written");
}

/// Round 142: a listed trigger function that bumps `updated_at` only when the row changed
/// (`IF NEW IS DISTINCT FROM OLD`) showed through RETURNING whether a guess equalled the stored
/// birth date; a unique index on a function of the whole row answered it by duplicate-key errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_functions_and_keys_that_read_the_whole_row_compare_nothing_protected() {
    let (cluster, su) = own_cluster(
        "GRANT INSERT, UPDATE ON stadtwerke.customers TO crm_agents;
         ALTER TABLE stadtwerke.customers ADD COLUMN updated_at timestamptz;
         CREATE FUNCTION stadtwerke.touch() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW IS DISTINCT FROM OLD THEN NEW.updated_at := clock_timestamp(); END IF; RETURN NEW; END $$;
         CREATE TRIGGER touch BEFORE UPDATE ON stadtwerke.customers
           FOR EACH ROW EXECUTE FUNCTION stadtwerke.touch();
         CREATE FUNCTION stadtwerke.stamp() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$;
         CREATE TRIGGER stamp BEFORE UPDATE ON stadtwerke.tickets
           FOR EACH ROW EXECUTE FUNCTION stadtwerke.stamp();
         CREATE FUNCTION stadtwerke.person_key(stadtwerke.customers) RETURNS text LANGUAGE sql IMMUTABLE
           AS $$ SELECT lower($1.name) || '|' || coalesce($1.birth_date::text, '') $$;",
    )
    .await;
    let policy = customers_writable("stadtwerke.touch, stadtwerke.stamp, stadtwerke.person_key");
    let proxy = |policy: String| {
        proxy_with(ProxyOptions {
            upstream_port: Some(cluster.port),
            policies: vec![("stadtwerke.yaml".into(), policy)],
            ..Default::default()
        })
    };
    su.batch_execute("ALTER TABLE stadtwerke.tickets ADD COLUMN updated_at timestamptz")
        .await
        .unwrap();
    let p = proxy(policy.clone()).await;
    let c = wasser(&p).await;
    let mut seen = refusal(
        &c,
        "UPDATE stadtwerke.customers SET birth_date = '1984-07-02' RETURNING customer_no, updated_at",
        "the trigger touch of stadtwerke.customers reads the stored row's",
    )
    .await;
    // A trigger function that does not read OLD compares nothing.
    c.batch_execute("UPDATE stadtwerke.tickets SET status = 'done' WHERE ticket_id = 1")
        .await
        .unwrap();
    su.batch_execute(
        "DROP TRIGGER touch ON stadtwerke.customers;
         CREATE UNIQUE INDEX customers_person ON stadtwerke.customers (stadtwerke.person_key(customers));",
    )
    .await
    .unwrap();
    let p = proxy(policy.clone()).await;
    let c = wasser(&p).await;
    for sql in [
        "UPDATE stadtwerke.customers SET name = 'x' WHERE customer_no = 1002",
        "INSERT INTO stadtwerke.customers (customer_no, name, birth_date) VALUES (9001, 'x', '1984-07-02')",
    ] {
        seen.push_str(&refusal(&c, sql, "protected").await);
    }
    // Round 144: a trigger function that reads the stored row through its own table instead of
    // OLD, a DBA's internal-language alias of suppress_redundant_updates_trigger, and a statement
    // trigger with transition tables.
    su.batch_execute("DROP INDEX stadtwerke.customers_person")
        .await
        .unwrap();
    for (trigger, ddl) in [
        (
            "peek",
            "CREATE FUNCTION stadtwerke.peek() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               IF EXISTS (SELECT 1 FROM stadtwerke.customers s WHERE s.customer_no = NEW.customer_no
                 AND s.birth_date IS NOT DISTINCT FROM NEW.birth_date) THEN RETURN NULL; END IF; RETURN NEW; END $$;
             CREATE TRIGGER peek BEFORE UPDATE ON stadtwerke.customers FOR EACH ROW EXECUTE FUNCTION stadtwerke.peek();",
        ),
        (
            "same_row",
            "CREATE FUNCTION stadtwerke.same_row() RETURNS trigger LANGUAGE internal
               AS 'suppress_redundant_updates_trigger';
             CREATE TRIGGER same_row BEFORE UPDATE ON stadtwerke.customers FOR EACH ROW EXECUTE FUNCTION stadtwerke.same_row();",
        ),
        (
            "changes",
            "CREATE TABLE stadtwerke.change_log (n bigint);
             CREATE FUNCTION stadtwerke.log_changes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               INSERT INTO stadtwerke.change_log SELECT count(*) FROM newrows; RETURN NULL; END $$;
             CREATE TRIGGER changes AFTER UPDATE ON stadtwerke.customers REFERENCING OLD TABLE oldrows NEW TABLE newrows
               FOR EACH STATEMENT EXECUTE FUNCTION stadtwerke.log_changes();",
        ),
    ] {
        su.batch_execute(&format!(
            "DROP TRIGGER IF EXISTS peek ON stadtwerke.customers; DROP TRIGGER IF EXISTS same_row ON stadtwerke.customers; {ddl}"
        ))
        .await
        .unwrap();
        let listed = policy.replacen("stadtwerke.person_key]", "stadtwerke.person_key, stadtwerke.peek, stadtwerke.same_row, stadtwerke.log_changes]", 1);
        let p = proxy(listed).await;
        let c = wasser(&p).await;
        seen.push_str(
            &refusal(
                &c,
                "UPDATE stadtwerke.customers SET birth_date = '1984-07-02' RETURNING customer_no",
                &format!("the trigger {trigger} of stadtwerke.customers reads the stored row's"),
            )
            .await,
        );
    }
    assert_hidden(&seen, "trigger functions and whole-row keys");
}

/// The sample Stadtwerke policy with customers writable (insert, update), their `updated_at`
/// column allowed, and `functions` listed for billing_hotline.
pub(crate) fn customers_writable(functions: &str) -> String {
    include_str!("../../policies/stadtwerke.yaml")
        .replacen(
            "      stadtwerke.customers:\n",
            "      stadtwerke.customers:\n        write: [insert, update]\n",
            1,
        )
        .replacen(
            "          birth_date: drop",
            "          updated_at: allow\n          birth_date: drop",
            1,
        )
        .replacen("    functions: []", &format!("    functions: [{functions}]"), 1)
}

/// Round 141: a listed helper whose code names `callbacks` without a schema read zeitung's
/// callbacks once the agent had set search_path to zeitung's schema, by SET or in the startup
/// packet's options.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_path_does_not_steer_a_dbas_code_into_another_campaign() {
    let (cluster, _su) = own_cluster(&format!(
        "CREATE TABLE stadtwerke.callbacks (callback_id int PRIMARY KEY, phone text);
         CREATE TABLE zeitung.callbacks (LIKE stadtwerke.callbacks);
         INSERT INTO stadtwerke.callbacks VALUES (1, '+49 30 1111111');
         INSERT INTO zeitung.callbacks VALUES (2, '{SECRET_CALLER}');
         GRANT SELECT ON stadtwerke.callbacks, zeitung.callbacks TO crm_agents;
         CREATE FUNCTION public.due_callbacks() RETURNS TABLE (callback_id int, phone text)
           LANGUAGE plpgsql STABLE AS $$ BEGIN
             RETURN QUERY SELECT c.callback_id, c.phone FROM callbacks c; END $$;"
    ))
    .await;
    let stadtwerke = include_str!("../../policies/stadtwerke.yaml")
        .replacen(
            "      stadtwerke.meter_readings: { columns: all }\n",
            "      stadtwerke.meter_readings: { columns: all }\n      stadtwerke.callbacks: { columns: all }\n",
            1,
        )
        .replacen("    functions: []", "    functions: [public.due_callbacks]", 1);
    let stadtwerke_policy = stadtwerke.clone();
    let p = proxy_on_shared(&cluster, stadtwerke, "").await;
    let c = wasser(&p).await;
    let mut seen = refusal(
        &c,
        "SET search_path = zeitung, public",
        "search_path names schema zeitung",
    )
    .await;
    c.batch_execute("SET search_path = stadtwerke, public").await.unwrap();
    let rows = crate::policy::text_of(&c.simple_query("SELECT * FROM public.due_callbacks()").await.unwrap());
    assert!(rows.contains("+49 30 1111111"), "{rows}");
    // From the startup packet (round 144: then `RESET search_path` in the same message as the
    // call brought it back where unscharf no longer knew the path): the login is refused.
    let e = p
        .try_connect("options='-c search_path=zeitung,public'", "agent_wasser", "wasser")
        .await
        .map(|_| ())
        .unwrap_err();
    let e = crate::policy::err_text(&e);
    assert!(e.contains("search_path names schema zeitung"), "{e}");
    seen.push_str(&e);
    // Round 145: a schema with shared tables beside one of the other campaign's (`public` held
    // the postcodes and zeitung's old callbacks) is no excuse; what `callbacks` means there is.
    _su.batch_execute(&format!(
        "CREATE TABLE public.callbacks (LIKE stadtwerke.callbacks);
         INSERT INTO public.callbacks VALUES (3, '{SECRET_DEAL}');
         GRANT SELECT ON public.callbacks TO crm_agents;
         ALTER ROLE agent_wasser SET search_path = stadtwerke, public;"
    ))
    .await
    .unwrap();
    let zeitung = include_str!("../../policies/zeitung.yaml").replacen(
        "tables: [zeitung.*]",
        "tables: [zeitung.*, public.callbacks]",
        1,
    );
    let p = proxy_with(ProxyOptions {
        upstream_port: Some(cluster.port),
        policies: vec![
            ("stadtwerke.yaml".into(), stadtwerke_policy.clone()),
            ("zeitung.yaml".into(), zeitung),
        ],
        ..Default::default()
    })
    .await;
    let c = wasser(&p).await;
    for sql in [
        "SET search_path = public, stadtwerke",
        "SELECT set_config('search_path', 'public', false)",
    ] {
        seen.push_str(&refusal(&c, sql, "the unqualified name callbacks means public.callbacks").await);
    }
    // Where stadtwerke's callbacks come first, the helper reads them.
    c.batch_execute("SET search_path = stadtwerke, public").await.unwrap();
    let rows = crate::policy::text_of(&c.simple_query("SELECT * FROM public.due_callbacks()").await.unwrap());
    assert!(rows.contains("+49 30 1111111"), "{rows}");
    seen.push_str(&rows);
    let e = p
        .try_connect("options='-c search_path=public'", "agent_wasser", "wasser")
        .await
        .map(|_| ())
        .unwrap_err();
    let e = crate::policy::err_text(&e);
    assert!(
        e.contains("the unqualified name callbacks means public.callbacks"),
        "{e}"
    );
    seen.push_str(&e);
    // Round 147: a helper that builds its table's name at run time names no table in its code;
    // on a path the agent chooses, every name then counts.
    _su.batch_execute(&format!(
        "DROP TABLE public.callbacks;
         CREATE TABLE public.callbacks_2026_11 (LIKE stadtwerke.callbacks);
         INSERT INTO public.callbacks_2026_11 VALUES (4, '{SECRET_DEAL}');
         GRANT SELECT ON public.callbacks_2026_11 TO crm_agents;
         CREATE FUNCTION public.due_monthly() RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$ BEGIN
           RETURN QUERY EXECUTE format('SELECT phone FROM %I', 'callbacks_' || to_char(now(), 'YYYY_MM')); END $$;"
    ))
    .await
    .unwrap();
    let p = proxy_with(ProxyOptions {
        upstream_port: Some(cluster.port),
        policies: vec![
            (
                "stadtwerke.yaml".into(),
                stadtwerke_policy.replacen("public.due_callbacks]", "public.due_callbacks, public.due_monthly]", 1),
            ),
            (
                "zeitung.yaml".into(),
                include_str!("../../policies/zeitung.yaml").replacen(
                    "tables: [zeitung.*]",
                    "tables: [zeitung.*, public.callbacks_2026_11]",
                    1,
                ),
            ),
        ],
        ..Default::default()
    })
    .await;
    let c = wasser(&p).await;
    // Round 149: also set beside a call of the DBA's code, or as one of two values.
    for sql in [
        "SET search_path = public, stadtwerke",
        "SELECT * FROM public.due_monthly() WHERE set_config('search_path', 'public', false) IS NOT NULL",
        "SELECT set_config('search_path', 'public', false), set_config('search_path', 'stadtwerke, public', true)",
    ] {
        seen.push_str(&refusal(&c, sql, "search_path names schema public, where the unqualified name").await);
    }
    assert_hidden(&seen, "a steered helper");
}

/// Round 144: row-level security keyed on a session table the agents may write
/// (`agent_session(pid, campaign)`, read by a helper with pg_backend_pid()): after an UPDATE of
/// its own row an agent read the other campaign's rows of a shared dial queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_security_keyed_on_a_table_the_agent_writes_is_refused() {
    let (cluster, _su) = own_cluster(&format!(
        "CREATE TABLE public.agent_session (pid int PRIMARY KEY, campaign text);
         GRANT SELECT, UPDATE ON public.agent_session TO crm_agents;
         CREATE FUNCTION public.session_campaign() RETURNS text LANGUAGE sql STABLE
           AS $$ SELECT s.campaign FROM public.agent_session s WHERE s.pid = pg_backend_pid() $$;
         CREATE FUNCTION public.my_campaign() RETURNS text LANGUAGE sql STABLE
           AS $$ SELECT public.session_campaign() $$;
         CREATE TABLE public.dial_queue (campaign text, caller text);
         INSERT INTO public.dial_queue VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON public.dial_queue USING (campaign = public.my_campaign());
         CREATE TABLE public.dial_queue2 (campaign text, caller text);
         ALTER TABLE public.dial_queue2 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON public.dial_queue2 USING (campaign =
           (SELECT s.campaign FROM public.agent_session s WHERE s.pid = pg_backend_pid()));
         GRANT SELECT ON public.dial_queue, public.dial_queue2 TO crm_agents;"
    ))
    .await;
    let stadtwerke = crate::dba_rows::stadtwerke_listing("public.my_campaign");
    let p = proxy_on_shared(
        &cluster,
        stadtwerke,
        "  public.agent_session: { columns: all, write: [update] }\n  public.dial_queue: { columns: all }\n  public.dial_queue2: { columns: all }\n",
    )
    .await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for (sql, why) in [
        (
            "SELECT caller FROM public.dial_queue",
            "reads public.agent_session, which purpose billing_hotline may write",
        ),
        (
            "SELECT caller FROM public.dial_queue2",
            "reads public.agent_session, which purpose billing_hotline may write",
        ),
    ] {
        seen.push_str(&refusal(&c, sql, why).await);
    }
    // Round 145: agents may only read the session table, but a listed SECURITY DEFINER function
    // the CRM calls at login writes it for them.
    _su.batch_execute(
        "REVOKE UPDATE ON public.agent_session FROM crm_agents;
         CREATE FUNCTION public.start_session(c text) RETURNS void LANGUAGE sql SECURITY DEFINER
           AS $$ INSERT INTO public.agent_session VALUES (pg_backend_pid(), c)
                 ON CONFLICT (pid) DO UPDATE SET campaign = excluded.campaign $$;",
    )
    .await
    .unwrap();
    let stadtwerke = crate::dba_rows::stadtwerke_listing("public.my_campaign, public.start_session");
    let p = proxy_on_shared(
        &cluster,
        stadtwerke,
        "  public.agent_session: { columns: all }\n  public.dial_queue: { columns: all }\n",
    )
    .await;
    let c = wasser(&p).await;
    c.simple_query("SELECT public.start_session('zeitung')").await.unwrap();
    seen.push_str(
        &refusal(
            &c,
            "SELECT caller FROM public.dial_queue",
            "which purpose billing_hotline may write (through its function public.start_session)",
        )
        .await,
    );
    assert_hidden(&seen, "a policy keyed on a table the agent writes");
}

/// Round 145: a row-level security policy keyed on a setting read in an aggregate's state
/// function, which the code graph did not follow (aggregates have no source of their own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregates_state_function_is_followed() {
    let (cluster, _su) = own_cluster(&format!(
        "CREATE FUNCTION public.agg_step(text, text) RETURNS text LANGUAGE sql STABLE
           AS $$ SELECT current_setting('app.campaign', true) $$;
         CREATE AGGREGATE public.campaign_agg(text) (SFUNC = public.agg_step, STYPE = text, INITCOND = '');
         CREATE TABLE public.by_agg (campaign text, caller text);
         INSERT INTO public.by_agg VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.by_agg ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON public.by_agg USING (campaign = (SELECT public.campaign_agg(x) FROM (VALUES ('a')) v(x)));
         GRANT SELECT ON public.by_agg TO crm_agents;
         CREATE FUNCTION public.same_campaign(a text, b int) RETURNS boolean LANGUAGE sql STABLE
           AS $$ SELECT a = current_setting('app.campaign', true) $$;
         CREATE OPERATOR public.=== (LEFTARG = text, RIGHTARG = int, FUNCTION = public.same_campaign);
         CREATE FUNCTION public.visible(c text) RETURNS boolean LANGUAGE sql STABLE
           AS $$ SELECT c OPERATOR(public.===) 1 $$;
         CREATE TABLE public.by_op (campaign text, caller text);
         INSERT INTO public.by_op VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.by_op ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON public.by_op USING (public.visible(campaign));
         GRANT SELECT ON public.by_op TO crm_agents;"
    ))
    .await;
    let stadtwerke = crate::dba_rows::stadtwerke_listing("public.campaign_agg, public.agg_step, public.visible");
    let p = proxy_on_shared(
        &cluster,
        stadtwerke,
        "  public.by_agg: { columns: all }\n  public.by_op: { columns: all }\n",
    )
    .await;
    let c = wasser(&p).await;
    c.batch_execute("SET app.campaign = 'zeitung'").await.unwrap();
    let mut seen = refusal(&c, "SELECT caller FROM public.by_agg", "through public.campaign_agg").await;
    // Round 147: a helper that reads the setting through an operator of the DBA's.
    seen.push_str(
        &refusal(
            &c,
            "SELECT caller FROM public.by_op",
            "runs code whose tables unscharf cannot tell",
        )
        .await,
    );
    assert_hidden(&seen, "an aggregate's state function");
}

/// Round 197 AH1: listed helpers that return the customers' own row type (a row, a set of rows,
/// an OUT parameter holding an array of them, a composite wrapping one) gave every column in
/// clear, and Postgres reports their result columns with table OID 0, out of the RowDescription
/// guard's sight. A call of one is a whole-row reference; a helper returning rows of a table the
/// purpose reads in full still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpers_that_return_a_protected_tables_rows_are_refused() {
    let (cluster, su) = own_cluster(
        "CREATE FUNCTION stadtwerke.customer(p_no int) RETURNS stadtwerke.customers
           LANGUAGE sql STABLE AS $$ SELECT c FROM stadtwerke.customers c WHERE c.customer_no = p_no $$;
         CREATE FUNCTION stadtwerke.customers_in(p_city text) RETURNS SETOF stadtwerke.customers
           LANGUAGE plpgsql STABLE AS $$ DECLARE r stadtwerke.customers;
           BEGIN FOR r IN TABLE stadtwerke.customers LOOP
             IF r.city = p_city THEN RETURN NEXT r; END IF; END LOOP; END $$;
         CREATE FUNCTION stadtwerke.all_customers(OUT n int, OUT rows stadtwerke.customers[])
           LANGUAGE sql STABLE AS $$ SELECT count(*)::int, array_agg(c) FROM stadtwerke.customers c $$;
         CREATE TYPE stadtwerke.card AS (kind text, who stadtwerke.customers);
         CREATE FUNCTION stadtwerke.card_of(p_no int) RETURNS stadtwerke.card
           LANGUAGE sql STABLE AS $$ SELECT ROW('card', c)::stadtwerke.card FROM stadtwerke.customers c WHERE c.customer_no = p_no $$;
         CREATE FUNCTION stadtwerke.readings_of(p_no int) RETURNS SETOF stadtwerke.meter_readings
           LANGUAGE sql STABLE AS $$ SELECT * FROM stadtwerke.meter_readings m WHERE m.customer_no = p_no $$;
         CREATE FUNCTION public.first_of(t anyelement) RETURNS anyelement LANGUAGE plpgsql STABLE AS $$
           DECLARE r ALIAS FOR $0;
           BEGIN EXECUTE format('SELECT * FROM %s LIMIT 1', pg_typeof(t)) INTO r; RETURN r; END $$;
         CREATE FUNCTION public.every(t anyelement) RETURNS anyarray LANGUAGE plpgsql STABLE AS $$
           DECLARE r ALIAS FOR $0;
           BEGIN EXECUTE format('SELECT array_agg(x) FROM %s x', pg_typeof(t)) INTO r; RETURN r; END $$;
         CREATE FUNCTION stadtwerke.customer_json(p_no int) RETURNS jsonb LANGUAGE sql STABLE AS
           $$ SELECT to_jsonb(c) FROM stadtwerke.customers c WHERE c.customer_no = p_no $$;
         CREATE FUNCTION stadtwerke.label(c stadtwerke.customers) RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT c.name || ', ' || c.city $$;
         CREATE FUNCTION public.pick(n int, t anyelement DEFAULT NULL::stadtwerke.customers) RETURNS anyelement
           LANGUAGE plpgsql STABLE AS $$ DECLARE r ALIAS FOR $0;
           BEGIN EXECUTE format('SELECT * FROM %s LIMIT 1 OFFSET %s', pg_typeof(t), n) INTO r; RETURN r; END $$;
         CREATE TYPE stadtwerke.span AS RANGE (subtype = stadtwerke.customers);
         CREATE FUNCTION stadtwerke.spans() RETURNS stadtwerke.span_multirange LANGUAGE sql STABLE AS
           $$ SELECT stadtwerke.span_multirange(stadtwerke.span(c, c, '[]')) FROM stadtwerke.customers c LIMIT 1 $$;
         GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA stadtwerke, public TO crm_agents;",
    )
    .await;
    // The premise, straight to Postgres as the agent: the helper hands out the IBAN.
    su.batch_execute("SET ROLE agent_wasser").await.unwrap();
    let rows = su.simple_query("SELECT stadtwerke.customer(1001)").await.unwrap();
    assert!(
        text_of(&rows).contains("DE89 3704 0044 0532 0130 00"),
        "premise: {}",
        text_of(&rows)
    );
    su.batch_execute("RESET ROLE").await.unwrap();

    let p = crate::dba::proxy_on(&cluster, |t| {
        t.replacen(
            "    functions: []",
            "    functions: [stadtwerke.customer, stadtwerke.customers_in, stadtwerke.all_customers, stadtwerke.card_of, stadtwerke.readings_of, public.first_of, public.every, stadtwerke.spans, stadtwerke.customer_json, stadtwerke.label, public.pick]",
            1,
        )
    })
    .await;
    let c = wasser(&p).await;
    let why = "whose result or arguments hold rows of stadtwerke.customers";
    let mut seen = String::new();
    for sql in [
        "SELECT stadtwerke.customer(1003)",
        "SELECT (stadtwerke.customer(1001)).iban",
        "SELECT row_to_json(stadtwerke.customer(1001))",
        "SELECT ARRAY[stadtwerke.customer(1001)]",
        "SELECT * FROM stadtwerke.customers_in('Berlin')",
        "SELECT * FROM stadtwerke.customers_in('Berlin') AS f(a, b, c, d, e, g, h, i, j, k)",
        "SELECT iban FROM stadtwerke.customers_in('Berlin')",
        "SELECT * FROM stadtwerke.all_customers()",
        "SELECT (stadtwerke.card_of(1001)).who",
        "SELECT stadtwerke.spans()",
        // Round 201 AL1: a parameter typed by a helper's argument, handed to a polymorphic one;
        // AL2: a polymorphic argument's default of the row type.
        "PREPARE al1 AS SELECT stadtwerke.label($1), public.first_of($1)",
        "SELECT public.pick(1)",
        "SELECT name FROM stadtwerke.customers WHERE customer_no = (SELECT (stadtwerke.customer(1001)).customer_no)",
    ] {
        seen.push_str(&refusal(&c, sql, why).await);
    }
    // Round 199 AJ2: polymorphic helpers return rows of the type the agent feeds them; AJ3: a
    // multirange over the row type.
    su.batch_execute("SET ROLE agent_wasser").await.unwrap();
    let rows = su
        .simple_query("SELECT public.every(NULL::stadtwerke.customers)")
        .await
        .unwrap();
    assert!(
        text_of(&rows).contains("DE89 3704 0044 0532 0130 00"),
        "premise: {}",
        text_of(&rows)
    );
    su.batch_execute("RESET ROLE").await.unwrap();
    for sql in [
        "SELECT public.first_of(NULL::stadtwerke.customers)",
        "SELECT public.every(NULL::stadtwerke.customers)",
        "SELECT public.every(CAST(NULL AS stadtwerke.customers))",
        "SELECT public.every(NULL::customers)",
        "SELECT (public.every(NULL::stadtwerke.customers[]))[1]",
        "SELECT public.first_of(stadtwerke.customers 'x')",
    ] {
        seen.push_str(&refusal(&c, sql, "which holds rows of stadtwerke.customers").await);
    }
    // The extended protocol, with the parameter's type left to Postgres.
    let e = c
        .query("SELECT stadtwerke.label($1), public.first_of($1)", &[&None::<String>])
        .await
        .unwrap_err();
    assert!(
        crate::policy::err_text(&e).contains(why),
        "{}",
        crate::policy::err_text(&e)
    );
    // The extended protocol, with the argument bound.
    let e = c
        .query("SELECT * FROM stadtwerke.customers_in($1)", &[&"Berlin"])
        .await
        .unwrap_err();
    let text = crate::policy::err_text(&e);
    assert!(text.contains(why), "{text}");
    seen.push_str(&text);
    assert_no_protected(&seen, "helpers returning customers' rows");
    // Rows of a table the purpose reads in full come through.
    let rows = c
        .simple_query("SELECT count(*) FROM stadtwerke.readings_of(1001)")
        .await
        .unwrap();
    assert!(!text_of(&rows).is_empty());
    let rows = c
        .simple_query("SELECT public.first_of(NULL::stadtwerke.meter_readings) IS NOT NULL")
        .await
        .unwrap();
    assert_eq!(text_of(&rows), "t|\n");
    // check --live names the helpers.
    let out = crate::dba::check_live(&p).await;
    for f in [
        "stadtwerke.customer,",
        "stadtwerke.customers_in,",
        "stadtwerke.all_customers,",
        "stadtwerke.card_of,",
    ] {
        assert!(
            out.lines().any(|l| l.contains(&format!(
                "lists {f} whose result or arguments carry whole rows of stadtwerke.customers"
            ))),
            "{f}\n{out}"
        );
    }
    assert!(!out.contains("lists stadtwerke.readings_of, whose result"), "{out}");
    assert!(
        out.contains("lists public.pick, whose result or arguments carry whole rows of stadtwerke.customers"),
        "{out}"
    );
    // A listed function that returns a whole row as a value of another type is trusted with it,
    // and check --live says so (round 199 AJ4: its body names no column).
    assert!(
        out.contains("lists stadtwerke.customer_json, whose body names stadtwerke.customers.birth_date (drop)"),
        "{out}"
    );
}

/// Round 203 AN1, AN2: a column whose type is a protected table's row type holds whole rows of
/// it, and even a NULL of it hands that type to a polymorphic helper, which returned whole
/// customers; a parameter written into such a column takes its type too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_of_a_protected_tables_row_type_are_whole_rows() {
    let (cluster, su) = own_cluster(
        "CREATE TABLE stadtwerke.callbacks (id int PRIMARY KEY, snapshot stadtwerke.customers);
         INSERT INTO stadtwerke.callbacks VALUES (1, NULL);
         GRANT SELECT, UPDATE ON stadtwerke.callbacks TO crm_agents;
         CREATE FUNCTION public.first_of(t anyelement) RETURNS anyelement LANGUAGE plpgsql STABLE AS $$
           DECLARE r ALIAS FOR $0;
           BEGIN EXECUTE format('SELECT * FROM %s LIMIT 1', pg_typeof(t)) INTO r; RETURN r; END $$;
         GRANT EXECUTE ON FUNCTION public.first_of(anyelement) TO crm_agents;",
    )
    .await;
    let attack = "SELECT public.first_of(snapshot) FROM stadtwerke.callbacks";
    su.batch_execute("SET ROLE agent_wasser").await.unwrap();
    let rows = su.simple_query(attack).await.unwrap();
    assert!(
        text_of(&rows).contains("DE89 3704 0044 0532 0130 00"),
        "premise: {}",
        text_of(&rows)
    );
    su.batch_execute("RESET ROLE").await.unwrap();
    let listed = |t: &str| {
        crate::dba::granting("      stadtwerke.callbacks: { columns: all, write: [update] }\n")(t).replacen(
            "    functions: []",
            "    functions: [public.first_of]",
            1,
        )
    };
    let p = crate::dba::proxy_on(&cluster, listed).await;
    let c = wasser(&p).await;
    let why = "column stadtwerke.callbacks.snapshot holds whole rows of stadtwerke.customers";
    let mut seen = String::new();
    for sql in [
        attack,
        "SELECT public.first_of(coalesce(snapshot, NULL)) FROM stadtwerke.callbacks",
        "SELECT snapshot FROM stadtwerke.callbacks",
        "SELECT cb FROM stadtwerke.callbacks cb",
        "PREPARE an2 AS WITH w AS (UPDATE stadtwerke.callbacks SET snapshot = $1 WHERE false RETURNING 1) SELECT public.first_of($1)",
    ] {
        seen.push_str(&refusal(&c, sql, why).await);
    }
    assert_no_protected(&seen, "a column of the customers' row type");
    // The table's other columns are read as ever.
    let rows = c.simple_query("SELECT id FROM stadtwerke.callbacks").await.unwrap();
    assert_eq!(text_of(&rows), "1|\n");
}

/// A raw session of `u_trust`, which the DDL of the test below makes a billing_hotline agent.
async fn billing_session(p: &Proxy) -> crate::raw::Raw {
    crate::raw::Raw::connect(
        p.addr.port(),
        "u_trust",
        &[("options", "-c unscharf.purpose=billing_hotline")],
    )
    .await
}

/// Everything the session sends until it goes quiet or ends.
async fn rest_of(r: &mut crate::raw::Raw) -> String {
    let mut seen = Vec::new();
    while let Some(f) = r.try_frame().await {
        seen.extend_from_slice(&f.raw);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Round 217 BB3: a listed function turned standard_conforming_strings off in the middle of a
/// pipeline; the server reports that only with the batch's ReadyForQuery, and the Parse after it
/// was read with backslash escapes by Postgres only (the proxy saw two constants, Postgres a query
/// of the IBAN). Text sent before that answer must read the same under any setting: with a
/// backslash or bytes above ASCII it is refused. Round 224 BI1: a listed function that sets a
/// setting by the name an agent passes could set any, forbidden ones included: it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_sent_behind_a_listed_function_reads_the_same_under_any_settings() {
    let (cluster, _su) = own_cluster(
        "CREATE FUNCTION public.set_pref(n text, v text) RETURNS text LANGUAGE plpgsql
           AS $$ BEGIN RETURN set_config(n, v, false); END $$;
         CREATE FUNCTION public.set_pref_c(n text, v text) RETURNS text LANGUAGE sql
           AS $$ SELECT set_config /* by name */ (n, v, false) $$;
         CREATE FUNCTION public.set_pref_u(n text, v text) RETURNS text LANGUAGE plpgsql
           AS $$ BEGIN UPDATE pg_settings SET setting = v WHERE name = n; RETURN v; END $$;
         CREATE FUNCTION public.legacy_strings(v text) RETURNS text LANGUAGE plpgsql
           AS $$ BEGIN RETURN set_config('standard_conforming_strings', v, false); END $$;
         GRANT crm_agents, wasser_agents TO u_trust",
    )
    .await;
    let p = proxy_on_shared(
        &cluster,
        crate::dba_rows::stadtwerke_listing(
            "public.set_pref, public.set_pref_c, public.set_pref_u, public.legacy_strings",
        ),
        "",
    )
    .await;
    let mut r = billing_session(&p).await;
    let step = |sql: &str| {
        [
            crate::raw::parse("", sql, &[]),
            crate::raw::bind("", "", &[], &[]),
            crate::raw::execute("", 0),
        ]
        .concat()
    };
    let attack = "SELECT 'a\\' AS x, ' AS y, iban FROM stadtwerke.customers --'";
    // Premise: the function is listed and runs, and the statement alone is two constants.
    for sql in ["SELECT public.legacy_strings('on')", attack] {
        r.send(&[step(sql), crate::raw::sync()].concat()).await;
        let alone = String::from_utf8_lossy(&r.bytes_until_ready().await).into_owned();
        assert!(alone.contains("SELECT 1") && !alone.contains("ERROR"), "{sql}: {alone}");
    }
    // Round 221 BF2: behind a plain read, which runs no code of the DBA's, text reads as usual.
    r.send(&[step("SELECT 1"), step(r"SELECT 'Müller', 'a\b'"), crate::raw::sync()].concat())
        .await;
    let plain = String::from_utf8_lossy(&r.bytes_until_ready().await).into_owned();
    assert!(
        plain.contains(r"Müller") && plain.contains(r"a\b") && !plain.contains("ERROR"),
        "{plain}"
    );
    // Behind the function that turns the setting off, in the same pipeline.
    r.send(
        &[
            step("SELECT public.legacy_strings('off')"),
            step(attack),
            step("SELECT 'Müller'"),
            crate::raw::sync(),
        ]
        .concat(),
    )
    .await;
    let seen = rest_of(&mut r).await;
    assert_no_protected(
        &seen,
        "a pipeline behind a function that turned standard_conforming_strings off",
    );
    assert!(seen.contains("backslashes or non-ASCII"), "{seen}");
    // Round 221 BF1: a Flush instead of a Sync gets the function's Execute answered, without the
    // ReadyForQuery that would report the setting; the statement sent after that answer is still
    // read before it.
    let mut r = billing_session(&p).await;
    r.send(&[step("SELECT public.legacy_strings('off')"), crate::raw::flush()].concat())
        .await;
    while let Some(f) = r.try_frame().await {
        if f.tag == b'C' {
            break;
        }
    }
    r.send(&[step(attack), crate::raw::sync()].concat()).await;
    let seen = rest_of(&mut r).await;
    assert_no_protected(&seen, "a statement sent after a Flush answered the function");
    assert!(seen.contains("backslashes or non-ASCII"), "{seen}");
    // BI1: by a name the agent passes, the listed helper could set what SET may not.
    let mut r = billing_session(&p).await;
    for sql in [
        "SELECT public.set_pref('enable_seqscan', 'off')",
        "SELECT public.set_pref('standard_conforming_strings', 'off')",
        // Round 225 BJ1: other spellings of the same.
        "SELECT public.set_pref_c('enable_seqscan', 'off')",
        "SELECT public.set_pref_u('enable_seqscan', 'off')",
    ] {
        r.send(&crate::raw::query(sql)).await;
        let got = String::from_utf8_lossy(&r.bytes_until_ready().await).into_owned();
        assert!(
            got.contains("forbidden_setting") && got.contains("name it is given"),
            "{sql}: {got}"
        );
    }
    r.send(&crate::raw::query("SHOW enable_seqscan")).await;
    let got = String::from_utf8_lossy(&r.bytes_until_ready().await).into_owned();
    assert!(got.contains("on") && !got.contains("ERROR"), "{got}");
}

/// Round 227: a setting changed where the statement does not name the code that changes it. The
/// sample's customers get a scanned mandate (bytea), masked `first(12)`: under
/// `bytea_output = escape` the mask would keep its first 12 raw bytes, the start of the IBAN.
/// - BL1: a trigger on tickets runs `SET bytea_output`; an INSERT of a ticket fires it.
/// - BL2: a listed helper's comment ends at a carriage return, and a SET follows it.
/// - BL3: a listed helper sets the login's default (`ALTER ROLE CURRENT_USER SET`), in force
///   from its next session.
/// - Round 258 CQ3: a listed helper's strings fooled the code scan into reading a comment over
///   its SET.
///
/// The masked column must not show the raw bytes; in each case the setting did change (premise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changed_out_of_sight_do_not_unmask() {
    let (cluster, su) = own_cluster(
        &[
            MANDATE_SCAN,
            "         CREATE FUNCTION stadtwerke.ticket_defaults() RETURNS trigger LANGUAGE plpgsql
           AS $$ BEGIN SET bytea_output = escape; RETURN NEW; END $$;
         CREATE TRIGGER ticket_defaults BEFORE INSERT ON stadtwerke.tickets
           FOR EACH ROW EXECUTE FUNCTION stadtwerke.ticket_defaults();
         CREATE FUNCTION public.legacy_cr() RETURNS int LANGUAGE plpgsql
           AS E'BEGIN\\r  -- old viewers\\r  SET bytea_output = escape;\\r  RETURN 1;\\rEND';
         CREATE FUNCTION public.remember_escape() RETURNS int LANGUAGE plpgsql
           AS $$ BEGIN ALTER ROLE CURRENT_USER SET bytea_output = 'escape'; RETURN 1; END $$;
         CREATE FUNCTION public.continued() RETURNS int LANGUAGE plpgsql AS $f$
           DECLARE x text; y text; BEGIN
             x := E'caller'
'\\' /* ';
             y := 'c:\\' || ' /* \" ';
             SET bytea_output = escape;
             y := ' */ */ ';
             RETURN 1;
           END $f$;
         GRANT crm_agents, wasser_agents TO u_trust",
        ]
        .concat(),
    )
    .await;
    let policy = masking_the_scan(crate::dba_rows::stadtwerke_listing(
        "stadtwerke.ticket_defaults, public.legacy_cr, public.remember_escape, public.continued",
    ));
    let p = proxy_on_shared(&cluster, policy, "").await;
    let scan = "SELECT mandate_scan FROM stadtwerke.customers WHERE customer_no = 1001";
    // Premise: as the server prints it, the mask keeps the hex text's start.
    let mut r = billing_session(&p).await;
    let plain = ask(&mut r, scan).await;
    assert!(plain.contains(r"\x255044462d") && !plain.contains("ERROR"), "{plain}");
    for (case, change) in [
        (
            "BL1: a trigger",
            "INSERT INTO stadtwerke.tickets (customer_no, agent, subject, status) VALUES (1001, 'u_trust', 'meter', 'open')",
        ),
        ("BL2: a comment ended by CR", "SELECT public.legacy_cr()"),
        // Round 258 CQ3: `E'…'` continued on the next line keeps its escapes.
        ("CQ3: a continued string", "SELECT public.continued()"),
    ] {
        let mut r = billing_session(&p).await;
        let done = ask(&mut r, change).await;
        assert!(!done.contains("ERROR"), "{case}: {done}");
        let now = ask(&mut r, "SHOW bytea_output").await;
        assert!(now.contains("escape"), "{case}: the setting did not change: {now}");
        let seen = ask(&mut r, scan).await;
        assert!(!seen.contains("PDF") && !seen.contains("IBA"), "{case}: {seen}");
        assert_no_protected(&seen, case);
    }
    let mut r = billing_session(&p).await;
    let done = ask(&mut r, "SELECT public.remember_escape()").await;
    assert!(!done.contains("ERROR"), "BL3: {done}");
    let defaults: String = su
        .query_one(
            "SELECT array_to_string(s.setconfig, ',') FROM pg_db_role_setting s
               JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'u_trust'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        defaults.contains("bytea_output=escape"),
        "BL3: the default did not change: {defaults}"
    );
    // Read at login (the probe), and since round 231 overridden by the pinned hex.
    let mut r = billing_session(&p).await;
    let seen = ask(&mut r, scan).await;
    assert!(!seen.contains("PDF") && !seen.contains("IBA"), "BL3: {seen}");
    // Round 228 BM2: a planner lever the DBA sets for the role prints nothing, and leaves the
    // masked column readable.
    su.batch_execute("ALTER ROLE u_trust RESET bytea_output; ALTER ROLE u_trust SET work_mem = '64MB'")
        .await
        .unwrap();
    let mut r = billing_session(&p).await;
    let seen = ask(&mut r, scan).await;
    assert!(seen.contains(r"\x255044462d") && !seen.contains("ERROR"), "BM2: {seen}");
}

/// Round 228 BM1: the SET is one step further away. A listed trigger on tickets writes a log
/// table, whose own trigger (not listed: the agent never names it) runs `SET bytea_output`. Fails
/// before the fix. And a foreign key cascades an UPDATE of a ticket's id into a table whose
/// trigger does the same: this case passed before the fix too (the cascade's table is among the
/// statement's relations already), and guards it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changed_by_code_that_writes_reach_do_not_unmask() {
    let (cluster, _su) = own_cluster(
        &[
            MANDATE_SCAN,
            "         CREATE FUNCTION public.escape_bytes() RETURNS trigger LANGUAGE plpgsql
           AS $$ BEGIN SET bytea_output = escape; RETURN NEW; END $$;
         CREATE TABLE public.ticket_log (ticket_id int, payload bytea);
         CREATE TRIGGER log_format BEFORE INSERT ON public.ticket_log
           FOR EACH ROW EXECUTE FUNCTION public.escape_bytes();
         CREATE FUNCTION stadtwerke.ticket_audit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
           AS $$ BEGIN INSERT INTO public.ticket_log VALUES (NEW.ticket_id, convert_to(NEW.subject, 'UTF8'));
           RETURN NEW; END $$;
         CREATE TRIGGER ticket_audit AFTER INSERT ON stadtwerke.tickets
           FOR EACH ROW EXECUTE FUNCTION stadtwerke.ticket_audit();
         CREATE TABLE stadtwerke.ticket_refs (ticket_id int REFERENCES stadtwerke.tickets ON UPDATE CASCADE);
         GRANT SELECT, UPDATE ON stadtwerke.ticket_refs TO crm_agents;
         INSERT INTO stadtwerke.ticket_refs SELECT min(ticket_id) FROM stadtwerke.tickets;
         CREATE TRIGGER refs_format BEFORE UPDATE ON stadtwerke.ticket_refs
           FOR EACH ROW EXECUTE FUNCTION public.escape_bytes();
         GRANT crm_agents, wasser_agents TO u_trust",
        ]
        .concat(),
    )
    .await;
    let policy = masking_the_scan(crate::dba_rows::stadtwerke_listing("stadtwerke.ticket_audit, public.escape_bytes"))
        .replacen(
            "      stadtwerke.meter_readings: { columns: all }\n",
            "      stadtwerke.meter_readings: { columns: all }\n      stadtwerke.ticket_refs: { columns: all, write: [update] }\n",
            1,
        );
    let p = proxy_on_shared(&cluster, policy, "").await;
    let scan = "SELECT mandate_scan FROM stadtwerke.customers WHERE customer_no = 1001";
    for (case, change) in [
        (
            "a trigger of a table a listed trigger writes",
            "INSERT INTO stadtwerke.tickets (customer_no, agent, subject, status) VALUES (1001, 'u_trust', 'meter', 'open')",
        ),
        (
            "a trigger of a table a foreign key cascades into",
            "UPDATE stadtwerke.tickets SET ticket_id = ticket_id + 1000 WHERE ticket_id = (SELECT min(ticket_id) FROM stadtwerke.tickets)",
        ),
    ] {
        let mut r = billing_session(&p).await;
        let done = ask(&mut r, change).await;
        let now = ask(&mut r, "SHOW bytea_output").await;
        let seen = ask(&mut r, scan).await;
        assert!(!seen.contains("PDF") && !seen.contains("IBA"), "{case}: {seen}");
        assert_no_protected(&seen, case);
        // Premise: the statement ran and the setting changed (else the scan proves nothing).
        assert!(!done.contains("ERROR"), "{case}: {done}");
        assert!(now.contains("escape"), "{case}: the setting did not change: {now}");
    }
}

/// Round 231 BP1-BP4: the server's, the database's or every role's defaults (`ALTER SYSTEM` and
/// a reload, also under an open session; `ALTER DATABASE`; `ALTER ROLE ALL`) change how bytea and
/// dates print. unscharf pins bytea_output, DateStyle and IntervalStyle in the startup packet, so
/// a masked scan keeps its hex text's start and a `first(4)` birth date its year.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_role_defaults_do_not_change_what_a_mask_keeps() {
    let (cluster, su) = own_cluster(&[MANDATE_SCAN, " GRANT crm_agents, wasser_agents TO u_trust"].concat()).await;
    let policy = masking_the_scan(crate::dba_rows::stadtwerke_listing("")).replacen(
        "          birth_date: drop\n",
        "          birth_date: { mask: \"first(4)\" }\n",
        1,
    );
    let p = proxy_on_shared(&cluster, policy, "").await;
    let reads = "SELECT mandate_scan, birth_date FROM stadtwerke.customers WHERE customer_no = 1001";
    let kept = |seen: &str, case: &str| {
        assert!(
            seen.contains(r"\x255044462d") && seen.contains("1984") && !seen.contains("ERROR"),
            "{case}: {seen}"
        );
        for clear in ["PDF", "IBA", "02/07", "07/02", "02.07", "02-07"] {
            assert!(!seen.contains(clear), "{case}: {clear} in {seen}");
        }
    };
    let mut open = billing_session(&p).await;
    kept(&ask(&mut open, reads).await, "with the server's settings");
    for sql in [
        "ALTER SYSTEM SET bytea_output = escape",
        "ALTER SYSTEM SET DateStyle = 'SQL, DMY'",
        "ALTER SYSTEM SET IntervalStyle = 'sql_standard'",
        "SELECT pg_reload_conf()",
    ] {
        su.batch_execute(sql).await.unwrap();
    }
    // Premise: a session without the pins prints by the new defaults.
    let direct = connect_url(&cluster.superuser_url("crm")).await;
    let row = direct
        .query_one(
            "SELECT current_setting('bytea_output'), current_setting('DateStyle')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("escape".into(), "SQL, DMY".into())
    );
    kept(&ask(&mut open, reads).await, "a session open across the reload");
    kept(
        &ask(&mut billing_session(&p).await, reads).await,
        "a session after the reload",
    );
    // Round 233 BR1: the client gives the server's DateStyle itself, so no pin is added, and
    // the catalog has read the server's new default (a DDL makes it read again).
    // Only DateStyle differs from the defaults then.
    for sql in ["ALTER SYSTEM RESET IntervalStyle", "SELECT pg_reload_conf()"] {
        su.batch_execute(sql).await.unwrap();
    }
    let generation = p.shared.catalog.load().generation;
    su.batch_execute("CREATE TABLE public.after_reload (x int)")
        .await
        .unwrap();
    for _ in 0..100 {
        if p.shared.catalog.load().generation != generation {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(p
        .shared
        .catalog
        .load()
        .clock_defaults
        .contains(&("datestyle".into(), "SQL, DMY".into())));
    let mut own = crate::raw::Raw::connect(
        p.addr.port(),
        "u_trust",
        &[
            ("options", "-c unscharf.purpose=billing_hotline"),
            ("DateStyle", "SQL, DMY"),
        ],
    )
    .await;
    let seen = ask(&mut own, reads).await;
    assert!(
        seen.contains("forbidden_setting") && seen.contains("SQL, DMY"),
        "BR1: {seen}"
    );
    for clear in ["02/07", "07/02", "02/0"] {
        assert!(!seen.contains(clear), "BR1: {clear} in {seen}");
    }
    // BR2: Postgres would apply only the second `options`, without the first's DateStyle.
    let twice = crate::raw::Raw::startup_answer(
        p.addr.port(),
        &[
            ("user", "u_trust"),
            ("database", "crm"),
            ("options", "-c DateStyle=ISO"),
            ("options", "-c unscharf.purpose=billing_hotline"),
        ],
    )
    .await;
    assert!(twice.starts_with('E') && twice.contains("twice"), "BR2: {twice}");
    for sql in [
        "ALTER SYSTEM RESET ALL",
        "SELECT pg_reload_conf()",
        "ALTER ROLE ALL SET bytea_output = escape",
        "ALTER DATABASE crm SET DateStyle = 'German, DMY'",
    ] {
        su.batch_execute(sql).await.unwrap();
    }
    kept(
        &ask(&mut billing_session(&p).await, reads).await,
        "every role's and the database's defaults",
    );
}

/// The sample customers with a scanned mandate (bytea) whose text starts with the IBAN.
const MANDATE_SCAN: &str = "ALTER TABLE stadtwerke.customers ADD COLUMN mandate_scan bytea;
     UPDATE stadtwerke.customers SET mandate_scan = convert_to('%PDF-1.7 IBAN DE89370400440532013000', 'UTF8');";

/// `stadtwerke` with the scan masked `first(12)` for billing_hotline.
fn masking_the_scan(stadtwerke: String) -> String {
    stadtwerke.replacen(
        "          birth_date: drop\n",
        "          birth_date: drop\n          mandate_scan: { mask: \"first(12)\" }\n",
        1,
    )
}

async fn ask(r: &mut crate::raw::Raw, sql: &str) -> String {
    r.send(&crate::raw::query(sql)).await;
    String::from_utf8_lossy(&r.bytes_until_ready().await).into_owned()
}
