//! Code of the DBA's however it is spelled (round 150): names that are not one word, strings with
//! backslash escapes, functions that run SQL text, operators and casts that code runs without
//! showing them, and trigger functions in C. Each shape answered birth-date guesses or showed
//! another campaign's rows; each is now judged by what it may read.

use crate::dba::{own_cluster, proxy_on, refusal};
use crate::dba_code::customers_writable;
use crate::dba_rows::{assert_hidden, proxy_on_shared, SECRET_CALLER, SECRET_DEAL};
use crate::harness::*;
use crate::policy::{text_of, wasser};

/// Trigger functions on the tickets that compare the caller's birth date with the customers'.
const VERIFIERS: &str = r#"
ALTER TABLE stadtwerke.tickets ADD COLUMN caller_dob date, ADD COLUMN updated_at timestamptz;
CREATE FUNCTION public.verify_xml() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM unnest(xpath('//row[customer_no=' || NEW.customer_no || ']/birth_date/text()',
       schema_to_xml('stadtwerke', true, false, ''))) d WHERE d::text = NEW.caller_dob::text)
  THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
CREATE FUNCTION public.verify_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF ts_rewrite('x'::tsquery, format('SELECT ''x''::tsquery, ''ok''::tsquery FROM %s.%s WHERE customer_no = %s AND birth_date = %L',
       'stadtwerke', TG_ARGV[0], NEW.customer_no, NEW.caller_dob))::text <> '''ok''' THEN RAISE EXCEPTION 'no'; END IF;
  RETURN NEW; END $$;
CREATE FUNCTION public.verify_escape() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE msg text := E'Caller\'s date of birth does not match';
BEGIN
  RAISE DEBUG '-- identity check'; IF NEW.caller_dob IS DISTINCT FROM (SELECT c.birth_date FROM stadtwerke.customers c WHERE c.customer_no = NEW.customer_no) THEN RAISE EXCEPTION '%', msg; END IF;
  RETURN NEW; END $$;
CREATE FUNCTION public."dob-matches"(cust int, dob date) RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT dob = (SELECT c.birth_date FROM stadtwerke.customers c WHERE c.customer_no = cust) $$;
CREATE FUNCTION public.verify_hyphen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF NOT public."dob-matches"(NEW.customer_no, NEW.caller_dob) THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
CREATE VIEW stadtwerke."kunden-geburtstage" AS SELECT customer_no, birth_date FROM stadtwerke.customers;
CREATE FUNCTION public.verify_view() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF NEW.caller_dob IS DISTINCT FROM (SELECT k.birth_date FROM stadtwerke."kunden-geburtstage" k
    WHERE k.customer_no = NEW.customer_no) THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
CREATE FUNCTION public.dob_is(cust int, dob date) RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT dob = (SELECT c.birth_date FROM stadtwerke.customers c WHERE c.customer_no = cust) $$;
CREATE FUNCTION public.verify_distinct() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF NEW.customer_no IS DISTINCT FROM NEW.caller_dob THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
CREATE FUNCTION public.ticket_match(t stadtwerke.tickets) RETURNS numeric LANGUAGE sql STABLE AS
  $$ SELECT CASE WHEN t.caller_dob = (SELECT c.birth_date FROM stadtwerke.customers c
       WHERE c.customer_no = t.customer_no) THEN 1 ELSE 0 END $$;
CREATE FUNCTION public.verify_decimal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF NEW::decimal < 1 THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
CREATE EXTENSION refint;
CREATE EXTENSION moddatetime;
CREATE FUNCTION public.birthdays() RETURNS jsonb LANGUAGE sql STABLE AS
  $$ SELECT jsonb_object_agg(customer_no, birth_date) FROM stadtwerke.customers $$;
CREATE FUNCTION public.claim_matches(cust int, dob date, known jsonb DEFAULT public.birthdays()) RETURNS boolean
  LANGUAGE sql STABLE AS $$ SELECT (known->>cust::text)::date = dob $$;
CREATE FUNCTION public.verify_default() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF NOT public.claim_matches(NEW.customer_no, NEW.caller_dob) THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
CREATE FUNCTION public.verify_uamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF NEW.caller_dob IS DISTINCT FROM (SELECT c.birth_date FROM stadtwerke.U&"\0063ustomers" c
    WHERE c.customer_no = NEW.customer_no) THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
CREATE FUNCTION public.dob_like(cust int, dob text) RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT dob = (SELECT c.birth_date::text FROM stadtwerke.customers c WHERE c.customer_no = cust) $$;
CREATE FUNCTION public.verify_similar() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  IF NOT (NEW.customer_no SIMILAR TO NEW.caller_dob::text) THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
CREATE FUNCTION public.claim_check(cust int, dob date) RETURNS boolean LANGUAGE sql IMMUTABLE AS
  $$ SELECT dob = (SELECT c.birth_date FROM stadtwerke.customers c WHERE c.customer_no = cust) $$;
CREATE TYPE public.caller_claim AS (customer_no int, dob date);
CREATE FUNCTION public.claim_ok(c public.caller_claim) RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT c.dob = (SELECT k.birth_date FROM stadtwerke.customers k WHERE k.customer_no = c.customer_no) $$;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_code_is_read_however_it_is_spelled() {
    let (cluster, su) = own_cluster(VERIFIERS).await;
    let policy = customers_writable(
        "public.verify_xml, public.verify_rewrite, public.verify_escape, public.verify_hyphen, public.verify_view, public.verify_distinct, public.verify_decimal, public.check_primary_key, public.moddatetime, public.verify_default, public.verify_uamp, public.verify_similar, public.verify_domain, public.verify_xml_domain, public.claim_check, public.verify_wrapped, public.verify_array, public.verify_rowtype, public.verify_audit",
    )
    .replacen(
        "      stadtwerke.meter_readings: { columns: all }\n",
        "      stadtwerke.meter_readings: { columns: all }\n      stadtwerke.claim_log: { columns: all }\n",
        1,
    );
    let guess = "UPDATE stadtwerke.tickets SET caller_dob = '1984-07-02' WHERE ticket_id = 1";
    let mut seen = String::new();
    let trigger = |f: &str| {
        format!("CREATE TRIGGER t BEFORE INSERT OR UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION {f}")
    };
    // With the DBA's own `=` in public, the agent's `=` would be refused before the trigger is.
    let qualified = guess.replace(" = 1", " OPERATOR(pg_catalog.=) 1");
    for (ddl, why) in [
        (trigger("public.verify_xml()"), "runs code whose tables unscharf cannot tell"),
        (trigger("public.verify_rewrite('customers')"), "runs code whose tables unscharf cannot tell"),
        (trigger("public.verify_escape()"), "reads stadtwerke.customers."),
        (trigger("public.verify_hyphen()"), "reads stadtwerke.customers."),
        (trigger("public.verify_view()"), "runs on a write of stadtwerke.tickets"),
        // Code-free spellings of the DBA's own `=` and cast: they run for any code.
        (
            format!(
                "CREATE OPERATOR public.= (LEFTARG = int, RIGHTARG = date, FUNCTION = public.dob_is); {}",
                trigger("public.verify_distinct()")
            ),
            "runs code whose tables unscharf cannot tell",
        ),
        (
            format!(
                "DROP OPERATOR public.= (int, date);
                 CREATE CAST (stadtwerke.tickets AS numeric) WITH FUNCTION public.ticket_match(stadtwerke.tickets); {}",
                trigger("public.verify_decimal()")
            ),
            "runs code whose tables unscharf cannot tell",
        ),
        // contrib's refint, in C: its arguments name the customers' birth dates.
        (
            format!(
                "DROP CAST (stadtwerke.tickets AS numeric); {}",
                trigger("check_primary_key('customer_no', 'caller_dob', 'stadtwerke.customers', 'customer_no', 'birth_date')")
            ),
            "runs code whose tables unscharf cannot tell",
        ),
        // Round 153: an argument's default, a `U&` name, SIMILAR TO running the DBA's `~`, and a
        // domain whose CHECK reads the customers.
        (trigger("public.verify_default()"), "reads stadtwerke.customers."),
        (trigger("public.verify_uamp()"), "builds SQL at run time"),
        (
            format!(
                "CREATE OPERATOR public.~ (LEFTARG = int, RIGHTARG = text, FUNCTION = public.dob_like); {}",
                trigger("public.verify_similar()")
            ),
            "runs code whose tables unscharf cannot tell",
        ),
        (
            format!(
                "DROP OPERATOR public.~ (int, text);
                 CREATE DOMAIN public.verified_claim AS public.caller_claim CHECK (public.claim_ok(VALUE));
                 CREATE FUNCTION public.verify_domain() RETURNS trigger LANGUAGE plpgsql AS $$
                   DECLARE v public.verified_claim; BEGIN v := ROW(NEW.customer_no, NEW.caller_dob); RETURN NEW; END $$; {}",
                trigger("public.verify_domain()")
            ),
            "runs code whose tables unscharf cannot tell",
        ),
        // Round 155: a domain whose CHECK runs SQL text, and a stored generated column computed
        // by a helper that reads the customers.
        (
            format!(
                "DROP FUNCTION public.verify_domain(); DROP DOMAIN public.verified_claim;
                 CREATE DOMAIN public.xml_claim AS public.caller_claim CHECK (xpath_exists('//row', query_to_xml(
                   'SELECT 1 FROM stadtwerke.customers WHERE customer_no = ' || (VALUE).customer_no
                   || ' AND birth_date = ' || quote_literal((VALUE).dob), false, false, '')));
                 CREATE FUNCTION public.verify_xml_domain() RETURNS trigger LANGUAGE plpgsql AS $$
                   DECLARE v public.xml_claim; BEGIN v := ROW(NEW.customer_no, NEW.caller_dob); RETURN NEW; END $$; {}",
                trigger("public.verify_xml_domain()")
            ),
            "runs code whose tables unscharf cannot tell",
        ),
        // Round 156: such a domain inside a composite type, which the code names instead.
        (
            format!(
                "DROP FUNCTION public.verify_xml_domain(); DROP DOMAIN public.xml_claim;
                 CREATE DOMAIN public.dob_known AS date CHECK (xpath_exists('//row', query_to_xml(
                   'SELECT 1 FROM stadtwerke.customers WHERE birth_date = ' || quote_literal(VALUE), false, false, '')));
                 CREATE TYPE public.claim_wrapper AS (customer_no int, dob public.dob_known);
                 CREATE FUNCTION public.verify_wrapped() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   PERFORM ROW(NEW.customer_no, NEW.caller_dob)::public.claim_wrapper; RETURN NEW; END $$; {}",
                trigger("public.verify_wrapped()")
            ),
            "runs code whose tables unscharf cannot tell",
        ),
        // Round 157: the domain reached by the name of the composite's array type, by a table's
        // row type, and by a trigger's write into a column of the composite type.
        (
            format!(
                "DROP FUNCTION public.verify_wrapped();
                 CREATE FUNCTION public.verify_array() RETURNS trigger LANGUAGE plpgsql AS $$
                   DECLARE v public._claim_wrapper; BEGIN v := ARRAY[ROW(NEW.customer_no, NEW.caller_dob)]; RETURN NEW; END $$; {}",
                trigger("public.verify_array()")
            ),
            "runs code whose tables unscharf cannot tell",
        ),
        (
            format!(
                "DROP FUNCTION public.verify_array();
                 CREATE TABLE stadtwerke.claim_log (c public.claim_wrapper, note text);
                 CREATE FUNCTION public.verify_rowtype() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   PERFORM ROW(ROW(NEW.customer_no, NEW.caller_dob), 'x')::stadtwerke.claim_log; RETURN NEW; END $$; {}",
                trigger("public.verify_rowtype()")
            ),
            "runs code whose tables unscharf cannot tell",
        ),
        (
            format!(
                "DROP FUNCTION public.verify_rowtype(); DROP TABLE stadtwerke.claim_log;
                 CREATE TABLE public.claim_audit (w public.claim_wrapper, at timestamptz DEFAULT now());
                 CREATE FUNCTION public.verify_audit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN
                   INSERT INTO public.claim_audit (w) VALUES (ROW(NEW.customer_no, NEW.caller_dob)); RETURN NEW; END $$; {}",
                trigger("public.verify_audit()")
            ),
            "code this write runs writes into public.claim_audit, and the domain dob_known of column w there calls query_to_xml",
        ),
        (
            "DROP FUNCTION public.verify_audit(); DROP TABLE public.claim_audit;
             DROP TYPE public.claim_wrapper; DROP DOMAIN public.dob_known;
             ALTER TABLE stadtwerke.tickets ADD COLUMN dob_ok boolean
               GENERATED ALWAYS AS (public.claim_check(customer_no, caller_dob)) STORED"
                .to_owned(),
            "reads stadtwerke.customers.",
        ),
    ] {
        su.batch_execute(&format!("DROP TRIGGER IF EXISTS t ON stadtwerke.tickets; {ddl}"))
            .await
            .unwrap();
        let p = proxy_on(&cluster, |_| policy.clone()).await;
        let c = wasser(&p).await;
        seen.push_str(&refusal(&c, &format!("BEGIN; {qualified}; ROLLBACK"), why).await);
    }
    // contrib's moddatetime, in C too, reads nothing: an `updated_at` trigger lets writes through.
    su.batch_execute(
        "DROP TRIGGER IF EXISTS t ON stadtwerke.tickets;
         ALTER TABLE stadtwerke.tickets DROP COLUMN dob_ok;
         CREATE TRIGGER touch BEFORE UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION moddatetime(updated_at)",
    )
    .await
    .unwrap();
    let p = proxy_on(&cluster, |_| policy.clone()).await;
    let c = wasser(&p).await;
    c.batch_execute("UPDATE stadtwerke.tickets SET status = 'open' WHERE ticket_id = 1")
        .await
        .unwrap();
    assert_hidden(&seen, "trigger code however spelled");
}

/// Round 150 F5 and F6: row-level security keyed on a session table that a listed function
/// writes through a helper whose name is not one word, or after an `E'…\'…'` string; and keyed
/// on a setting read two calls down through such a helper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_security_helpers_are_followed_however_they_are_named() {
    let (cluster, _su) = own_cluster(&format!(
        r#"CREATE TABLE public.agent_session (pid int PRIMARY KEY, campaign text);
         CREATE TABLE public.dial_queue (campaign text, caller text);
         INSERT INTO public.dial_queue VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue ENABLE ROW LEVEL SECURITY;
         CREATE FUNCTION public.session_campaign() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER AS
           $$ SELECT campaign FROM public.agent_session WHERE pid = pg_backend_pid() $$;
         CREATE POLICY own ON public.dial_queue FOR SELECT USING (campaign = public.session_campaign());
         GRANT SELECT ON public.dial_queue, public.agent_session TO crm_agents;
         CREATE FUNCTION public."agent-session-write"(c text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN
           DELETE FROM public.agent_session WHERE pid = pg_backend_pid();
           INSERT INTO public.agent_session VALUES (pg_backend_pid(), c); END $$;
         CREATE FUNCTION public.start_session_h(c text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN
           PERFORM public."agent-session-write"(c); END $$;
         CREATE FUNCTION public.start_session_e(c text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN
           RAISE LOG E'agent\'s campaign is now %', c;
           RAISE LOG '-- session %', pg_backend_pid(); DELETE FROM public.agent_session WHERE pid = pg_backend_pid(); INSERT INTO public.agent_session VALUES (pg_backend_pid(), c);
           END $$;
         CREATE TABLE public.dial_queue2 (campaign text, caller text);
         INSERT INTO public.dial_queue2 VALUES ('zeitung', '{SECRET_DEAL}');
         ALTER TABLE public.dial_queue2 ENABLE ROW LEVEL SECURITY;
         CREATE FUNCTION public."app-setting"(k text) RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT current_setting('app.' || k, true) $$;
         CREATE FUNCTION public.session_campaign2() RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT public."app-setting"('campaign') $$;
         CREATE POLICY own2 ON public.dial_queue2 FOR SELECT USING (campaign = public.session_campaign2());
         GRANT SELECT ON public.dial_queue2 TO crm_agents;
         CREATE TABLE public.dial_queue3 (campaign text, caller text);
         INSERT INTO public.dial_queue3 VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue3 ENABLE ROW LEVEL SECURITY;
         CREATE FUNCTION public.session_campaign3(c text DEFAULT current_setting('app.campaign', true)) RETURNS text
           LANGUAGE sql STABLE AS $$ SELECT c $$;
         CREATE POLICY own3 ON public.dial_queue3 FOR SELECT USING (campaign = public.session_campaign3());
         GRANT SELECT ON public.dial_queue3 TO crm_agents;
         CREATE FUNCTION public.cfg(text, boolean) RETURNS text LANGUAGE internal STABLE AS 'show_config_by_name_missing_ok';
         CREATE FUNCTION public.session_campaign4() RETURNS text LANGUAGE sql STABLE AS $$ SELECT public.cfg('app.campaign', true) $$;
         CREATE FUNCTION public.session_campaign5() RETURNS text LANGUAGE sql STABLE
           AS $$ SELECT U&"\0063urrent_setting"('app.campaign', true) $$;
         CREATE TABLE public.dial_queue4 (campaign text, caller text);
         INSERT INTO public.dial_queue4 VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue4 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own4 ON public.dial_queue4 FOR SELECT USING (campaign = public.session_campaign4());
         CREATE TABLE public.dial_queue5 (LIKE public.dial_queue4);
         INSERT INTO public.dial_queue5 VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue5 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own5 ON public.dial_queue5 FOR SELECT USING (campaign = public.session_campaign5());
         GRANT SELECT ON public.dial_queue4, public.dial_queue5 TO crm_agents;
         CREATE FUNCTION public.session_campaign6() RETURNS text LANGUAGE sql STABLE
           AS $$ SELECT substring(current_query() from 'campaign=([a-z]+)') $$;
         CREATE TABLE public.dial_queue6 (LIKE public.dial_queue4);
         INSERT INTO public.dial_queue6 VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue6 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own6 ON public.dial_queue6 FOR SELECT USING (campaign = public.session_campaign6());
         GRANT SELECT ON public.dial_queue6 TO crm_agents;
         CREATE FUNCTION public.session_campaign7() RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT substr(c, 10) FROM pg_listening_channels() c WHERE c LIKE 'campaign_%' LIMIT 1 $$;
         CREATE FUNCTION public.session_campaign8() RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT (regexp_match(string_agg(statement, ' '), 'campaign=(\w+)'))[1] FROM pg_cursors $$;
         CREATE FUNCTION public.session_campaign9() RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT (regexp_match(string_agg(statement, ' '), 'campaign=(\w+)'))[1] FROM pg_prepared_statements $$;
         CREATE TABLE public.dial_queue7 (LIKE public.dial_queue4);
         INSERT INTO public.dial_queue7 VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue7 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own7 ON public.dial_queue7 FOR SELECT USING (campaign = public.session_campaign7());
         CREATE TABLE public.dial_queue8 (LIKE public.dial_queue7 INCLUDING ALL);
         INSERT INTO public.dial_queue8 VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue8 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own8 ON public.dial_queue8 FOR SELECT USING (campaign = public.session_campaign8());
         CREATE TABLE public.dial_queue9 (LIKE public.dial_queue7 INCLUDING ALL);
         INSERT INTO public.dial_queue9 VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue9 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own9 ON public.dial_queue9 FOR SELECT USING (campaign = public.session_campaign9());
         GRANT SELECT ON public.dial_queue7, public.dial_queue8, public.dial_queue9 TO crm_agents;
         CREATE FUNCTION public.all_settings(OUT name text, OUT setting text, OUT unit text, OUT category text,
           OUT short_desc text, OUT extra_desc text, OUT context text, OUT vartype text, OUT source text,
           OUT min_val text, OUT max_val text, OUT enumvals text[], OUT boot_val text, OUT reset_val text,
           OUT sourcefile text, OUT sourceline int, OUT pending_restart boolean)
           RETURNS SETOF record LANGUAGE internal STABLE AS 'show_all_settings';
         CREATE FUNCTION public.session_campaign10() RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT s.setting FROM public.all_settings() s WHERE s.name = 'application_name' $$;
         CREATE TABLE public.dial_queue10 (LIKE public.dial_queue7 INCLUDING ALL);
         INSERT INTO public.dial_queue10 VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue10 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own10 ON public.dial_queue10 FOR SELECT USING (campaign = public.session_campaign10());
         GRANT SELECT ON public.dial_queue10 TO crm_agents;
         CREATE TABLE public.dial_queue11 (LIKE public.dial_queue7 INCLUDING ALL);
         INSERT INTO public.dial_queue11 VALUES ('zeitung', '{SECRET_CALLER}');
         ALTER TABLE public.dial_queue11 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own11 ON public.dial_queue11 FOR SELECT
           USING (campaign = CASE WHEN LOCALTIME < '12:00' THEN 'stadtwerke' ELSE 'zeitung' END);
         GRANT SELECT ON public.dial_queue11 TO crm_agents;"#
    ))
    .await;
    let listing = |functions: &str| {
        let stadtwerke = crate::dba_rows::stadtwerke_listing(functions);
        proxy_on_shared(
            &cluster,
            stadtwerke,
            "  public.agent_session: { columns: all }\n  public.dial_queue: { columns: all }\n  public.dial_queue2: { columns: all }\n  public.dial_queue3: { columns: all }\n  public.dial_queue4: { columns: all }\n  public.dial_queue5: { columns: all }\n  public.dial_queue6: { columns: all }\n  public.dial_queue7: { columns: all }\n  public.dial_queue8: { columns: all }\n  public.dial_queue9: { columns: all }\n  public.dial_queue10: { columns: all }\n  public.dial_queue11: { columns: all }\n",
        )
    };
    let mut seen = String::new();
    for start in ["start_session_h", "start_session_e"] {
        let p = listing(&format!("public.{start}, public.session_campaign")).await;
        let c = wasser(&p).await;
        c.simple_query(&format!("SELECT public.{start}('zeitung')"))
            .await
            .unwrap();
        let why = format!("which purpose billing_hotline may write (through its function public.{start})");
        seen.push_str(&refusal(&c, "SELECT caller FROM public.dial_queue", &why).await);
    }
    let p = listing(
        "public.session_campaign2, public.session_campaign3, public.session_campaign4, public.session_campaign5, public.session_campaign6, public.session_campaign7, public.session_campaign8, public.session_campaign9, public.session_campaign10",
    )
    .await;
    let c = wasser(&p).await;
    c.batch_execute("SET app.campaign = 'zeitung'").await.unwrap();
    seen.push_str(&refusal(&c, "SELECT caller FROM public.dial_queue2", "current_setting").await);
    // Round 153: read in an argument's default.
    seen.push_str(&refusal(&c, "SELECT caller FROM public.dial_queue3", "current_setting").await);
    // Round 155: through a `LANGUAGE internal` alias of current_setting's C function, and `U&`.
    seen.push_str(
        &refusal(
            &c,
            "SELECT caller FROM public.dial_queue4",
            "reads a setting with show_config_by_name_missing_ok",
        )
        .await,
    );
    seen.push_str(&refusal(&c, "SELECT caller FROM public.dial_queue5", "of public.dial_queue5").await);
    // Round 156: the statement's own text, which the agent writes.
    seen.push_str(
        &refusal(
            &c,
            "SELECT caller FROM public.dial_queue6 /* campaign=zeitung */",
            "of public.dial_queue6 reads the session's query text with current_query",
        )
        .await,
    );
    // Round 157: the channels the session listens on, and the texts of its cursors and prepared
    // statements.
    c.batch_execute("LISTEN campaign_zeitung").await.unwrap();
    seen.push_str(
        &refusal(
            &c,
            "SELECT caller FROM public.dial_queue7",
            "reads the channels the session listens on with pg_listening_channels",
        )
        .await,
    );
    seen.push_str(
        &refusal(
            &c,
            "BEGIN; DECLARE k CURSOR FOR SELECT caller FROM public.dial_queue8 /* campaign=zeitung */; FETCH ALL FROM k; COMMIT",
            "reads the session's cursors with pg_cursors",
        )
        .await,
    );
    c.batch_execute("ROLLBACK").await.unwrap();
    seen.push_str(
        &refusal(
            &c,
            "PREPARE q9 AS SELECT caller FROM public.dial_queue9 /* campaign=zeitung */",
            "reads the session's prepared statements with pg_prepared_statements",
        )
        .await,
    );
    // Round 159: a `LANGUAGE internal` alias of pg_show_all_settings.
    c.batch_execute("SET application_name = 'zeitung'").await.unwrap();
    seen.push_str(
        &refusal(
            &c,
            "SELECT caller FROM public.dial_queue10",
            "reads a setting with show_all_settings",
        )
        .await,
    );
    // Round 161: the time of day, which SET TimeZone moves.
    seen.push_str(
        &refusal(
            &c,
            "SELECT caller FROM public.dial_queue11",
            "reads the time of day in the session's TimeZone with localtime",
        )
        .await,
    );
    assert_hidden(&seen, "row security helpers however named");
}

/// Round 150 F2: a search_path the agent chose while it steered nothing stays the agent's choice
/// once the DBA deploys code that builds its table names at run time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_chosen_before_a_deployment_is_judged_as_chosen_after_it() {
    let (cluster, su) = own_cluster(
        "CREATE TABLE stadtwerke.callbacks_2026_11 (callback_id int PRIMARY KEY, phone text);
         INSERT INTO stadtwerke.callbacks_2026_11 VALUES (1, '+49 30 1111111');
         GRANT SELECT ON stadtwerke.callbacks_2026_11 TO crm_agents;
         ALTER ROLE agent_wasser SET search_path = stadtwerke, public;
         CREATE FUNCTION public.due_monthly() RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$ BEGIN
           RETURN QUERY SELECT '+49 30 1111111'::text; END $$;",
    )
    .await;
    let p = listing_with_zeitung(
        &cluster,
        "public.due_monthly, public.due_by_month, public.tenant_callbacks, public.due_via_helper",
        "public.callbacks_2026_11, public.callbacks_2026_12, public.dec_callbacks, public.xmas_lists",
    )
    .await;
    let morning = wasser(&p).await;
    // Nothing builds names yet, and public holds no other campaign's table: allowed.
    morning.batch_execute("SET search_path = public").await.unwrap();
    let chosen_at_login = p
        .try_connect("options='-c search_path=public'", "agent_wasser", "wasser")
        .await
        .unwrap();
    // The deployment: zeitung's month table in public, and a helper that builds the name.
    su.batch_execute(&format!(
        "CREATE TABLE public.callbacks_2026_11 (callback_id int PRIMARY KEY, phone text);
         INSERT INTO public.callbacks_2026_11 VALUES (2, '{SECRET_DEAL}');
         GRANT SELECT ON public.callbacks_2026_11 TO crm_agents;
         CREATE OR REPLACE FUNCTION public.due_monthly() RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$ BEGIN
           RETURN QUERY EXECUTE format('SELECT phone FROM %I', 'callbacks_2026_' || '11'); END $$;"
    ))
    .await
    .unwrap();
    p.shared.refresh_catalog_now().await.unwrap();
    let mut seen = String::new();
    for c in [&morning, &chosen_at_login] {
        seen.push_str(
            &refusal(
                c,
                "SELECT * FROM public.due_monthly()",
                "search_path names schema public, where the unqualified name",
            )
            .await,
        );
    }
    // On the path the DBA set for the role, stadtwerke's table comes first.
    let own = wasser(&p).await;
    let rows = text_of(&own.simple_query("SELECT * FROM public.due_monthly()").await.unwrap());
    assert!(rows.contains("+49 30 1111111"), "{rows}");
    seen.push_str(&rows);
    // F3: zeitung's table for the next month, made ahead. `SET TimeZone` moves `now()` there
    // without touching search_path, so code that builds names counts every name on any path.
    seen.push_str(
        &deployed_then_refused(
            &su,
            &p,
            &own,
            &format!(
                "CREATE TABLE public.callbacks_2026_12 (callback_id int PRIMARY KEY, phone text);
                 INSERT INTO public.callbacks_2026_12 VALUES (3, '{SECRET_DEAL}');
                 GRANT SELECT ON public.callbacks_2026_12 TO crm_agents;"
            ),
            "SELECT * FROM public.due_monthly()",
            "the unqualified name callbacks_2026_12 means public.callbacks_2026_12",
        )
        .await,
    );
    // Round 153: the varying part first (`dec_callbacks`), and a schema chosen by a setting.
    seen.push_str(
        &deployed_then_refused(
            &su,
            &p,
            &own,
            &format!(
                "DROP TABLE public.callbacks_2026_12;
                 CREATE TABLE public.dec_callbacks (callback_id int PRIMARY KEY, phone text);
                 INSERT INTO public.dec_callbacks VALUES (4, '{SECRET_DEAL}');
                 GRANT SELECT ON public.dec_callbacks TO crm_agents;
                 CREATE FUNCTION public.due_by_month() RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$ BEGIN
                   RETURN QUERY EXECUTE format('SELECT phone FROM %I', to_char(now(), 'mon') || '_callbacks'); END $$;
                 CREATE TABLE zeitung.callbacks (callback_id int PRIMARY KEY, phone text);
                 INSERT INTO zeitung.callbacks VALUES (5, '{SECRET_DEAL}');
                 CREATE FUNCTION public.tenant_callbacks() RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$ BEGIN
                   RETURN QUERY EXECUTE format('SELECT phone FROM %I.callbacks', current_setting('app.tenant')); END $$;"
            ),
            "SELECT * FROM public.due_by_month()",
            "the unqualified name dec_callbacks means public.dec_callbacks",
        )
        .await,
    );
    // Round 155: a helper builds the name.
    seen.push_str(
        &deployed_then_refused(
            &su,
            &p,
            &own,
            &format!(
                "DROP TABLE public.dec_callbacks;
                 CREATE TABLE public.xmas_lists (callback_id int PRIMARY KEY, phone text);
                 INSERT INTO public.xmas_lists VALUES (6, '{SECRET_DEAL}');
                 GRANT SELECT ON public.xmas_lists TO crm_agents;
                 CREATE FUNCTION public.list_name() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'xmas_' || 'lists' $$;
                 CREATE FUNCTION public.due_via_helper() RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$ BEGIN
                   RETURN QUERY EXECUTE format('SELECT phone FROM %I', public.list_name()); END $$;"
            ),
            "SELECT * FROM public.due_via_helper()",
            "the unqualified name xmas_lists means public.xmas_lists",
        )
        .await,
    );
    own.batch_execute("SET app.tenant = 'zeitung'").await.unwrap();
    seen.push_str(
        &refusal(
            &own,
            "SELECT * FROM public.tenant_callbacks()",
            "builds SQL at run time from what the session can set",
        )
        .await,
    );
    assert_hidden(&seen, "a path chosen before a deployment");
}

/// Round 152 F2: the catalog keeps a dropped table's entry (so that statements prepared before
/// keep their ids), and it shadowed another campaign's table of the same name later on the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_table_shadows_no_other_campaigns_table() {
    let (cluster, su) = own_cluster(&format!(
        "CREATE TABLE stadtwerke.callbacks (callback_id int PRIMARY KEY, phone text);
         INSERT INTO stadtwerke.callbacks VALUES (1, '+49 30 1111111');
         CREATE TABLE public.callbacks (LIKE stadtwerke.callbacks);
         INSERT INTO public.callbacks VALUES (2, '{SECRET_DEAL}');
         GRANT SELECT ON stadtwerke.callbacks, public.callbacks TO crm_agents;
         ALTER ROLE agent_wasser SET search_path = stadtwerke, public;
         CREATE FUNCTION public.due_callbacks() RETURNS SETOF text LANGUAGE sql STABLE
           AS $$ SELECT phone FROM callbacks $$;"
    ))
    .await;
    let p = listing_with_zeitung(&cluster, "public.due_callbacks", "public.callbacks").await;
    let c = wasser(&p).await;
    let rows = text_of(&c.simple_query("SELECT * FROM public.due_callbacks()").await.unwrap());
    assert!(rows.contains("+49 30 1111111"), "{rows}");
    su.batch_execute("DROP TABLE stadtwerke.callbacks").await.unwrap();
    p.shared.refresh_catalog_now().await.unwrap();
    let mut seen = rows;
    seen.push_str(
        &refusal(
            &c,
            "SELECT * FROM public.due_callbacks()",
            "the unqualified name callbacks means public.callbacks",
        )
        .await,
    );
    assert_hidden(&seen, "a dropped table's shadow");
}

/// A proxy on `cluster` whose billing_hotline lists `functions`, and whose zeitung campaign also
/// holds `tables` (both comma-separated).
async fn listing_with_zeitung(cluster: &unscharf::cluster::Cluster, functions: &str, tables: &str) -> Proxy {
    proxy_with(ProxyOptions {
        upstream_port: Some(cluster.port),
        policies: vec![
            ("stadtwerke.yaml".into(), crate::dba_rows::stadtwerke_listing(functions)),
            (
                "zeitung.yaml".into(),
                include_str!("../../policies/zeitung.yaml").replacen(
                    "tables: [zeitung.*]",
                    &format!("tables: [zeitung.*, {tables}]"),
                    1,
                ),
            ),
        ],
        ..Default::default()
    })
    .await
}

/// Runs the DBA's `ddl`, lets the proxy read the catalog again, and returns `c`'s refusal of `sql`,
/// whose text must mention `why`.
async fn deployed_then_refused(
    su: &tokio_postgres::Client,
    p: &Proxy,
    c: &tokio_postgres::Client,
    ddl: &str,
    sql: &str,
    why: &str,
) -> String {
    su.batch_execute(ddl).await.unwrap();
    p.shared.refresh_catalog_now().await.unwrap();
    refusal(c, sql, why).await
}
