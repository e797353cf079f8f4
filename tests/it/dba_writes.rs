//! Code of the DBA's that a write runs (triggers of every event, CHECK constraints, and what
//! they call, write into or build at run time) reads nothing the purpose may not read (rounds 145
//! and 147): each shape below answered birth-date guesses through whether a write succeeded.

use crate::dba::{own_cluster, proxy_on, refusal};
use crate::dba_code::customers_writable;
use crate::dba_rows::assert_hidden;
use crate::policy::wasser;

/// Round 145: DBA code a write runs that reads stored rows without naming `OLD`: by the table's
/// name a trigger is told (`TG_RELNAME`) and a key column passed as an argument, through a helper
/// the trigger asks, on INSERT (a dedupe trigger), or from another table (a caller check, as a
/// trigger or as a CHECK constraint's helper). Each answered birth-date guesses. A trigger that
/// only writes an audit log still lets the write through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_a_write_runs_reads_nothing_protected() {
    let (cluster, su) = own_cluster(
        "GRANT INSERT, UPDATE ON stadtwerke.customers TO crm_agents;
         ALTER TABLE stadtwerke.customers ADD COLUMN updated_at timestamptz;
         ALTER TABLE stadtwerke.tickets ADD COLUMN caller_dob date;
         CREATE FUNCTION public.touch_generic() RETURNS trigger LANGUAGE plpgsql AS $$
           DECLARE changed boolean; BEGIN
             EXECUTE format('SELECT $1 IS DISTINCT FROM s FROM %I.%I s WHERE s.%I = ($1).%I',
               TG_TABLE_SCHEMA, TG_RELNAME, TG_ARGV[0], TG_ARGV[0]) INTO changed USING NEW;
             IF changed THEN NEW.updated_at := now(); END IF; RETURN NEW; END $$;
         CREATE FUNCTION public.stored_differs(c stadtwerke.customers) RETURNS boolean LANGUAGE sql STABLE
           AS $$ SELECT c IS DISTINCT FROM s FROM stadtwerke.customers s WHERE s.customer_no = c.customer_no $$;
         CREATE FUNCTION public.touch_via_helper() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF public.stored_differs(NEW) THEN NEW.updated_at := now(); END IF; RETURN NEW; END $$;
         CREATE FUNCTION public.skip_duplicate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF EXISTS (SELECT 1 FROM stadtwerke.customers c WHERE c.name = NEW.name AND c.birth_date = NEW.birth_date)
             THEN RETURN NULL; END IF; RETURN NEW; END $$;
         CREATE FUNCTION public.verify_caller() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NEW.caller_dob IS DISTINCT FROM (SELECT c.birth_date FROM stadtwerke.customers c
             WHERE c.customer_no = NEW.customer_no) THEN RAISE EXCEPTION 'caller not verified'; END IF;
           RETURN NEW; END $$;
         CREATE FUNCTION public.dob_matches(cust int, dob date) RETURNS boolean LANGUAGE sql STABLE
           AS $$ SELECT dob IS NULL OR dob = (SELECT c.birth_date FROM stadtwerke.customers c WHERE c.customer_no = cust) $$;
         CREATE FUNCTION public.verify_built() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE stored date; BEGIN
           EXECUTE format('SELECT birth_date FROM %I.%I WHERE customer_no = $1', 'stadtwerke', 'custom' || 'ers')
             INTO stored USING NEW.customer_no;
           IF NEW.caller_dob IS DISTINCT FROM stored THEN RAISE EXCEPTION 'caller not verified'; END IF; RETURN NEW; END $$;
         CREATE FUNCTION public.dob_ok(cust int, dob date) RETURNS boolean LANGUAGE sql STABLE
           AS $$ SELECT dob = (SELECT c.birth_date FROM stadtwerke.customers c WHERE c.customer_no = cust) $$;
         CREATE OPERATOR public.### (LEFTARG = int, RIGHTARG = date, FUNCTION = public.dob_ok);
         CREATE FUNCTION public.verify_op() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NOT (NEW.customer_no OPERATOR(public.###) NEW.caller_dob) THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
         CREATE TABLE stadtwerke.ticket_events (customer_no int, caller_dob date);
         GRANT INSERT ON stadtwerke.ticket_events TO crm_agents;
         CREATE TRIGGER verify_event BEFORE INSERT ON stadtwerke.ticket_events FOR EACH ROW EXECUTE FUNCTION public.verify_caller();
         CREATE FUNCTION public.log_ticket() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           INSERT INTO stadtwerke.ticket_events VALUES (NEW.customer_no, NEW.caller_dob); RETURN NEW; END $$;
         CREATE TABLE stadtwerke.\"CustomerIdentity\" (\"customerNo\" int, \"birthDate\" date);
         GRANT SELECT ON stadtwerke.\"CustomerIdentity\" TO crm_agents;
         CREATE FUNCTION public.verify_prisma() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NEW.caller_dob IS DISTINCT FROM (SELECT c.\"birthDate\" FROM stadtwerke.\"CustomerIdentity\" c
             WHERE c.\"customerNo\" = NEW.customer_no) THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
         CREATE FUNCTION public.open_ticket(cust int, dob date) RETURNS int LANGUAGE sql
           AS $$ INSERT INTO stadtwerke.tickets (customer_no, subject, caller_dob) VALUES (cust, 'x', dob) RETURNING ticket_id $$;
         CREATE FUNCTION public.verify_tilde() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NOT (NEW.customer_no ~ NEW.caller_dob) THEN RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$;
         CREATE TABLE public.audit_log (tbl text, op text, row_data jsonb);
         GRANT INSERT ON public.audit_log TO crm_agents;
         CREATE FUNCTION public.audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           INSERT INTO public.audit_log VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW)); RETURN NEW; END $$;",
    )
    .await;
    let policy = customers_writable(
        "public.touch_generic, public.touch_via_helper, public.skip_duplicate, public.verify_caller, public.dob_matches, public.audit, public.verify_built, public.verify_op, public.log_ticket, public.verify_prisma, public.open_ticket, public.verify_tilde",
    );
    let guess_update = "UPDATE stadtwerke.customers SET birth_date = '1961-11-23' RETURNING customer_no, updated_at";
    let guess_insert = "INSERT INTO stadtwerke.customers (customer_no, name, birth_date) VALUES (9001, 'Bernd Müller', '1961-11-23') RETURNING customer_no";
    let guess_ticket = "UPDATE stadtwerke.tickets SET caller_dob = '1984-07-02' WHERE ticket_id = 1";
    let mut seen = String::new();
    for (ddl, sql, why) in [
        (
            "CREATE TRIGGER t BEFORE UPDATE ON stadtwerke.customers FOR EACH ROW EXECUTE FUNCTION public.touch_generic('customer_no')",
            guess_update,
            "the trigger t (through public.touch_generic) runs on a write of stadtwerke.customers and runs code whose tables unscharf cannot tell",
        ),
        (
            "CREATE TRIGGER t BEFORE UPDATE ON stadtwerke.customers FOR EACH ROW EXECUTE FUNCTION public.touch_via_helper()",
            guess_update,
            "(through public.touch_via_helper) runs on a write of stadtwerke.customers and reads the stored rows'",
        ),
        (
            "CREATE TRIGGER t BEFORE INSERT ON stadtwerke.customers FOR EACH ROW EXECUTE FUNCTION public.skip_duplicate()",
            guess_insert,
            "(through public.skip_duplicate) runs on a write of stadtwerke.customers",
        ),
        (
            "CREATE TRIGGER t BEFORE INSERT OR UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION public.verify_caller()",
            guess_ticket,
            "(through public.verify_caller) runs on a write of stadtwerke.tickets and reads stadtwerke.customers.",
        ),
        (
            "ALTER TABLE stadtwerke.tickets ADD CONSTRAINT caller_verified CHECK (public.dob_matches(customer_no, caller_dob)) NOT VALID",
            guess_ticket,
            "the constraint caller_verified (through public.dob_matches) runs on a write of stadtwerke.tickets and reads stadtwerke.customers.",
        ),
        // Round 147: a table name built from pieces, an operator whose function reads the
        // customers, a trigger of a table the trigger writes into, a quoted mixed-case table, and
        // a listed function that runs the write itself.
        (
            "ALTER TABLE stadtwerke.tickets DROP CONSTRAINT caller_verified;
             CREATE TRIGGER t BEFORE INSERT OR UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION public.verify_built()",
            guess_ticket,
            "runs code whose tables unscharf cannot tell",
        ),
        (
            "CREATE TRIGGER t BEFORE INSERT OR UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION public.verify_op()",
            guess_ticket,
            "runs code whose tables unscharf cannot tell",
        ),
        (
            "CREATE TRIGGER t AFTER INSERT OR UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION public.log_ticket()",
            guess_ticket,
            "(through public.verify_caller) runs on a write of stadtwerke.ticket_events and reads stadtwerke.customers.",
        ),
        // Round 149: a one-character operator of the DBA's.
        // (Since round 153 the DBA's `~` counts for all code, as `SIMILAR TO` runs it unwritten:
        // it exists for this case only.)
        (
            "CREATE OPERATOR public.~ (LEFTARG = int, RIGHTARG = date, FUNCTION = public.dob_ok);
             CREATE TRIGGER t BEFORE INSERT OR UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION public.verify_tilde()",
            guess_ticket,
            "runs code whose tables unscharf cannot tell",
        ),
        (
            "DROP OPERATOR public.~ (int, date);
             CREATE TRIGGER t BEFORE INSERT OR UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION public.verify_prisma()",
            guess_ticket,
            "CustomerIdentity",
        ),
        (
            "CREATE TRIGGER t BEFORE INSERT OR UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION public.verify_caller()",
            "SELECT public.open_ticket(1001, '1984-07-02')",
            "(through public.verify_caller) runs on a write of stadtwerke.tickets",
        ),
    ] {
        su.batch_execute(&format!(
            "DROP TRIGGER IF EXISTS t ON stadtwerke.customers; DROP TRIGGER IF EXISTS t ON stadtwerke.tickets; {ddl}"
        ))
        .await
        .unwrap();
        let p = proxy_on(&cluster, |_| policy.clone()).await;
        let c = wasser(&p).await;
        seen.push_str(&refusal(&c, &format!("BEGIN; {sql}; ROLLBACK"), why).await);
    }
    // An audit trigger that writes a log, and names its table by TG_TABLE_NAME, reads nothing of
    // the log, and only the ticket's own columns, all readable.
    su.batch_execute(
        "DROP TRIGGER IF EXISTS t ON stadtwerke.tickets;
         CREATE TRIGGER audit AFTER INSERT OR UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION public.audit();",
    )
    .await
    .unwrap();
    let p = proxy_on(&cluster, |_| policy.clone()).await;
    let c = wasser(&p).await;
    c.batch_execute("INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (1001, 'Abschlag')")
        .await
        .unwrap();
    assert_hidden(&seen, "code a write runs");
}

/// Rounds 149 F4, 153 N6 and 159: the table a listed trigger writes into runs its own rules, keys
/// and row-level security on the written row. A rule that marked the ticket verified when the logged birth
/// date matched the customer's, and a foreign key of the log into the customers' (number, birth
/// date), each answered birth-date guesses; both are refused, and the plain audit trigger still
/// lets the write through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_code_writes_into_runs_its_own_rules_and_keys() {
    let (cluster, su) = own_cluster(
        "ALTER TABLE stadtwerke.tickets ADD COLUMN caller_dob date;
         ALTER TABLE stadtwerke.tickets ADD COLUMN verified boolean NOT NULL DEFAULT false;
         CREATE TABLE public.audit_log (id bigserial PRIMARY KEY, tbl text, op text, row_data jsonb);
         GRANT INSERT ON public.audit_log TO crm_agents;
         GRANT USAGE ON SEQUENCE public.audit_log_id_seq TO crm_agents;
         CREATE FUNCTION public.audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           INSERT INTO public.audit_log (tbl, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW)); RETURN NEW; END $$;
         CREATE TRIGGER audit AFTER INSERT OR UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION public.audit();
         CREATE TABLE public.known_dobs (customer_no int, birth_date date, UNIQUE (customer_no, birth_date));
         INSERT INTO public.known_dobs SELECT customer_no, birth_date FROM stadtwerke.customers;
         CREATE FUNCTION public.remember() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           INSERT INTO public.known_dobs VALUES (NEW.customer_no, NEW.caller_dob); RETURN NEW; END $$;
         CREATE TABLE public.xml_claims (customer_no int, dob date, CHECK (xpath_exists('//row', query_to_xml(
           'SELECT 1 FROM stadtwerke.customers WHERE customer_no = ' || customer_no
           || ' AND birth_date = ' || quote_literal(dob), false, false, ''))));
         CREATE FUNCTION public.claim_xml() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           INSERT INTO public.xml_claims VALUES (NEW.customer_no, NEW.caller_dob); RETURN NEW; END $$;
         CREATE TABLE public.dob_numbers (id serial PRIMARY KEY, n bigint UNIQUE);
         INSERT INTO public.dob_numbers (n) SELECT to_char(birth_date, 'YYYYMMDD')::bigint FROM stadtwerke.customers WHERE birth_date IS NOT NULL;
         CREATE FUNCTION public.claim_number() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           INSERT INTO public.dob_numbers (n) VALUES (to_char(NEW.caller_dob, 'YYYYMMDD')::bigint); RETURN NEW; END $$;
         CREATE TABLE public.dob_ids (id serial PRIMARY KEY, note text);
         INSERT INTO public.dob_ids (id) SELECT to_char(birth_date, 'YYYYMMDD')::int FROM stadtwerke.customers WHERE birth_date IS NOT NULL;
         CREATE FUNCTION public.claim_id() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           INSERT INTO public.dob_ids (id) VALUES (to_char(NEW.caller_dob, 'YYYYMMDD')::int); RETURN NEW; END $$;
         CREATE TABLE public.dob_checks (customer_no int, birth_date date);
         ALTER TABLE public.dob_checks ENABLE ROW LEVEL SECURITY;
         ALTER TABLE public.dob_checks FORCE ROW LEVEL SECURITY;
         CREATE POLICY matches ON public.dob_checks WITH CHECK (EXISTS (SELECT 1 FROM stadtwerke.customers c
           WHERE c.customer_no = dob_checks.customer_no AND c.birth_date = dob_checks.birth_date));
         CREATE FUNCTION public.check_dob() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           INSERT INTO public.dob_checks VALUES (NEW.customer_no, NEW.caller_dob); RETURN NEW; END $$;
         ALTER TABLE stadtwerke.customers ADD UNIQUE (customer_no, birth_date);
         CREATE TABLE public.dob_claims (customer_no int, birth_date date,
           FOREIGN KEY (customer_no, birth_date) REFERENCES stadtwerke.customers (customer_no, birth_date));
         GRANT INSERT ON public.dob_claims TO crm_agents;
         CREATE FUNCTION public.claim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           INSERT INTO public.dob_claims VALUES (NEW.customer_no, NEW.caller_dob); RETURN NEW; END $$;",
    )
    .await;
    let policy = customers_writable(
        "public.audit, public.claim, public.remember, public.check_dob, public.by_type, public.claim_xml, public.claim_number, public.claim_id",
    );
    let guess = "UPDATE stadtwerke.tickets SET caller_dob = '1984-07-02' WHERE ticket_id = 1";
    // The control first: the audit trigger alone.
    let p = proxy_on(&cluster, |_| policy.clone()).await;
    let c = wasser(&p).await;
    c.batch_execute(&format!("BEGIN; {guess}; ROLLBACK")).await.unwrap();
    let mut seen = String::new();
    // The trigger t on the tickets, (re)created to run `f` after each update.
    let trigger = |f: &str| {
        format!(
            "DROP TRIGGER IF EXISTS t ON stadtwerke.tickets;
             CREATE TRIGGER t AFTER UPDATE ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION {f}"
        )
    };
    for (ddl, why) in [
        (
            "CREATE RULE caller_verified AS ON INSERT TO public.audit_log
               WHERE NEW.tbl = 'tickets' AND (NEW.row_data->>'caller_dob') IS NOT NULL
               DO ALSO UPDATE stadtwerke.tickets t SET verified = true FROM stadtwerke.customers c
                 WHERE t.ticket_id = (NEW.row_data->>'ticket_id')::int AND c.customer_no = t.customer_no
                   AND NOT t.verified AND c.birth_date = (NEW.row_data->>'caller_dob')::date"
                .to_owned(),
            "the rule caller_verified on public.audit_log rewrites",
        ),
        (
            format!("DROP RULE caller_verified ON public.audit_log; {}", trigger("public.claim()")),
            "writes into public.dob_claims, whose foreign key compares what it writes with stadtwerke.customers.birth_date",
        ),
        // Round 159: a unique key of a table prefilled with the birth dates, a row-level security
        // policy that checks the written row against them, and a domain's CHECK run by a type
        // the trigger is told.
        (
            trigger("public.remember()"),
            "writes into public.known_dobs, whose unique key compares what it writes with public.known_dobs.",
        ),
        // Round 161: a CHECK running query_to_xml there, and keys a sequence does not fill: another
        // key beside a serial id, and a serial id the code writes itself.
        (
            trigger("public.claim_xml()"),
            "writes into public.xml_claims, and the constraint xml_claims_check there calls query_to_xml",
        ),
        (
            trigger("public.claim_number()"),
            "writes into public.dob_numbers, whose unique key compares what it writes with public.dob_numbers.n",
        ),
        (
            trigger("public.claim_id()"),
            "writes into public.dob_ids, whose unique key compares what it writes with public.dob_ids.id",
        ),
        (
            trigger("public.check_dob()"),
            "writes into public.dob_checks, whose row-level security policy matches reads stadtwerke.customers.",
        ),
        (
            // (A domain whose CHECK calls SQL code refuses every trigger's write: it comes last.)
            format!(
                "CREATE FUNCTION public.dob_exists(d date) RETURNS boolean LANGUAGE sql STABLE AS
                   $$ SELECT EXISTS (SELECT 1 FROM stadtwerke.customers WHERE birth_date = d) $$;
                 CREATE DOMAIN public.known_dob AS date CHECK (public.dob_exists(VALUE));
                 CREATE FUNCTION public.by_type() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   PERFORM domain_in(NEW.caller_dob::text::cstring, TG_ARGV[0]::regtype, -1); RETURN NEW; END $$; {}",
                trigger("public.by_type('public.known_dob')")
            ),
            "runs code whose tables unscharf cannot tell",
        ),
    ] {
        su.batch_execute(&ddl).await.unwrap();
        let p = proxy_on(&cluster, |_| policy.clone()).await;
        let c = wasser(&p).await;
        seen.push_str(&refusal(&c, &format!("BEGIN; {guess}; SELECT verified FROM stadtwerke.tickets WHERE ticket_id = 1; ROLLBACK"), why).await);
    }
    assert_hidden(&seen, "rules and keys of what code writes into");
}

/// Round 247 CF1: a listed trigger function on the newspaper's subscriptions wrote each sale's
/// product (here the lead's phone) into the utility's callbacks: one statement touching two
/// campaigns (rule 4), let through after the utility's contract had ended too (rule 5). What the
/// DBA's code writes counts for both rules; a trigger that writes within the campaign still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_a_write_runs_writes_into_no_other_campaign() {
    let (cluster, su) = own_cluster(
        "CREATE TABLE stadtwerke.callbacks (callback_id serial PRIMARY KEY, subject text NOT NULL);
         CREATE TABLE zeitung.sales_log (product text);
         CREATE FUNCTION zeitung.notify_partner() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
           BEGIN INSERT INTO stadtwerke.callbacks (subject) VALUES ('Zeitung sale: ' || NEW.product); RETURN NEW; END $$;
         CREATE FUNCTION zeitung.log_sale() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
           BEGIN INSERT INTO zeitung.sales_log VALUES (NEW.product); RETURN NEW; END $$;
         CREATE TRIGGER log_sale AFTER INSERT ON zeitung.subscriptions FOR EACH ROW EXECUTE FUNCTION zeitung.log_sale();
         CREATE TABLE zeitung.partner_callbacks (subject text);
         CREATE FUNCTION public.cb_helper(s text) RETURNS void LANGUAGE sql SECURITY DEFINER
           AS $$ INSERT INTO \"zeitung\".partner_callbacks VALUES (s) $$;
         CREATE FUNCTION public.request_callback(s text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
           AS $$ BEGIN PERFORM public.cb_helper(s); END $$;
         GRANT EXECUTE ON FUNCTION public.request_callback(text) TO crm_agents;
         SET standard_conforming_strings = off;
         CREATE FUNCTION public.log_callback(p_no int) RETURNS text LANGUAGE plpgsql SECURITY DEFINER
           SET standard_conforming_strings = off AS $f$
           DECLARE x text; y text;
           BEGIN
             x := 'caller\\'s number /* ';
             INSERT INTO /* the partner list */ zeitung.partner_callbacks
               SELECT c.phone FROM stadtwerke.customers c WHERE c.customer_no = p_no;
             DELETE /* stale */ FROM zeitung.subscriptions WHERE true;
             y := ' */ ';
             RETURN 'ok';
           END $f$;
         RESET standard_conforming_strings;
         GRANT EXECUTE ON FUNCTION public.log_callback(int) TO crm_agents;
         CREATE FUNCTION public.log_continued(p_no int) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $f$
           DECLARE x text; y text;
           BEGIN
             x := E'caller'
'\\' /* ';
             y := 'c:\\' || ' /* \" ';
             INSERT INTO zeitung.\"partner_callbacks\" SELECT c.phone FROM stadtwerke.customers c WHERE c.customer_no = p_no;
             y := ' */ */ ';
             RETURN 'ok';
           END $f$;
         CREATE FUNCTION public.clear_sales() RETURNS void LANGUAGE sql SECURITY DEFINER
           AS $$ DELETE FROM crm.zeitung.subscriptions WHERE true $$;
         GRANT EXECUTE ON FUNCTION public.log_continued(int), public.clear_sales() TO crm_agents;",
    )
    .await;
    let zeitung = include_str!("../../policies/zeitung.yaml").replacen(
        "      zeitung.subscriptions: { columns: all, write: [insert, update] }\n",
        "      zeitung.subscriptions: { columns: all, write: [insert, update] }\n    functions: [zeitung.notify_partner, zeitung.log_sale]\n",
        1,
    );
    let p = crate::harness::proxy_with(crate::harness::ProxyOptions {
        upstream_port: Some(cluster.port),
        policies: vec![
            (
                "stadtwerke.yaml".into(),
                crate::dba_rows::stadtwerke_listing(
                    "public.request_callback, public.log_callback, public.log_continued, public.clear_sales",
                ),
            ),
            ("zeitung.yaml".into(), zeitung),
        ],
        ..Default::default()
    })
    .await;
    let c = p.connect("agent_zeitung", "zeitung").await;
    let sale = "INSERT INTO zeitung.subscriptions (lead_id, product, starts_on, monthly_eur) VALUES (1, 'Abo', '2027-01-01', 30)";
    c.batch_execute(sale).await.unwrap();
    su.batch_execute(
        "CREATE TRIGGER partner AFTER INSERT ON zeitung.subscriptions FOR EACH ROW EXECUTE FUNCTION zeitung.notify_partner()",
    )
    .await
    .unwrap();
    p.shared.refresh_catalog_now().await.unwrap();
    // The newspaper's purpose is granted nothing in the utility's campaign (outside_purpose);
    // were it, the statement would touch both (cross_campaign).
    refusal(&c, sale, "writes into stadtwerke.callbacks of campaign stadtwerke").await;
    let written = rows_in(&su, "stadtwerke.callbacks").await;
    assert_eq!(written, 0, "the sale reached the utility's table");
    // Round 250 CI1: a function listed for the billing hotline whose helper writes into the
    // newspaper's table, from a session that has read nothing: a campaign the purpose is granted
    // nothing in. Round 252 CK1: the helper quotes the schema's name, which hid the write.
    let w = crate::policy::wasser(&p).await;
    refusal(
        &w,
        "SELECT public.request_callback('+49 30 1234567')",
        "writes into zeitung.partner_callbacks of campaign zeitung, in which purpose billing_hotline is granted nothing",
    )
    .await;
    let written = rows_in(&su, "zeitung.partner_callbacks").await;
    assert_eq!(written, 0, "the billing hotline wrote into the newspaper's table");
    // Round 255 CN1: code compiled with standard_conforming_strings off, where `\'` does not end
    // a string; read with it on, `/* ';` opened a comment that hid both writes.
    let before = rows_in(&su, "zeitung.subscriptions").await;
    refusal(
        &w,
        "SELECT public.log_callback(1001)",
        "of campaign zeitung, in which purpose billing_hotline is granted nothing",
    )
    .await;
    let written = rows_in(&su, "zeitung.partner_callbacks").await;
    assert_eq!(written, 0, "the utility's phone reached the newspaper's table");
    // Round 258 CQ1: `E'…'` continued on the next line keeps its escapes; CQ2: a table named
    // with the database's name.
    for call in ["SELECT public.log_continued(1001)", "SELECT public.clear_sales()"] {
        refusal(
            &w,
            call,
            "of campaign zeitung, in which purpose billing_hotline is granted nothing",
        )
        .await;
    }
    let written = rows_in(&su, "zeitung.partner_callbacks").await;
    assert_eq!(written, 0, "the utility's phone reached the newspaper's table");
    let after = rows_in(&su, "zeitung.subscriptions").await;
    assert_eq!(
        (before > 0, after),
        (true, before),
        "the newspaper's subscriptions were deleted"
    );
}

/// Round 260 CS1: a listed helper creates a scratch table, and the DDL runs the DBA's event
/// trigger, whose function writes into the newspaper's table (or sets settings). The event
/// trigger's code counts as the helper's. Round 263 CV1: an event trigger created while the proxy
/// runs, which fires no event trigger and so no catalog watch notification, is seen within a
/// second or two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_triggers_count_as_the_code_of_every_function() {
    let (cluster, su) = own_cluster(
        "CREATE TABLE zeitung.ddl_log (tag text);
         CREATE FUNCTION public.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO zeitung.ddl_log VALUES (tg_tag); END $$;
         CREATE FUNCTION public.scratch() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$
           BEGIN CREATE TEMP TABLE IF NOT EXISTS scratch_rows (n int); RETURN 1; END $$;
         CREATE FUNCTION public.plain() RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT 1 $$;
         CREATE FUNCTION public.select_into() RETURNS int LANGUAGE sql AS
           $$ SELECT 1 AS x INTO TEMP scratch_si; SELECT 1 $$;
         GRANT EXECUTE ON FUNCTION public.scratch(), public.plain(), public.select_into() TO crm_agents;
         CREATE TABLE stadtwerke.fk_parent (id int PRIMARY KEY);
         CREATE TABLE stadtwerke.fk_child (pid int REFERENCES stadtwerke.fk_parent ON DELETE CASCADE);
         INSERT INTO stadtwerke.fk_parent VALUES (1); INSERT INTO stadtwerke.fk_child VALUES (1);
         CREATE FUNCTION public.child_gone() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
           BEGIN INSERT INTO zeitung.ddl_log VALUES ('child gone'); RETURN OLD; END $$;
         CREATE TRIGGER child_gone AFTER DELETE ON stadtwerke.fk_child FOR EACH ROW EXECUTE FUNCTION public.child_gone();
         CREATE FUNCTION public.drop_parent(n int) RETURNS int LANGUAGE sql SECURITY DEFINER
           AS $$ DELETE FROM stadtwerke.fk_parent WHERE id = n; SELECT 1 $$;
         GRANT EXECUTE ON FUNCTION public.drop_parent(int) TO crm_agents;",
    )
    .await;
    let p = crate::harness::proxy_with(crate::harness::ProxyOptions {
        upstream_port: Some(cluster.port),
        policies: vec![
            (
                "stadtwerke.yaml".into(),
                crate::dba::granting(
                    "      stadtwerke.fk_parent: { columns: all }\n      stadtwerke.fk_child: { columns: all }\n",
                )(&crate::dba_rows::stadtwerke_listing(
                    "public.scratch, public.plain, public.select_into, public.drop_parent",
                )),
            ),
            (
                "zeitung.yaml".into(),
                include_str!("../../policies/zeitung.yaml").into(),
            ),
        ],
        ..Default::default()
    })
    .await;
    // After the catalog watch's first read, which would see it.
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    su.batch_execute(
        "CREATE EVENT TRIGGER log_ddl ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
           EXECUTE FUNCTION public.log_ddl()",
    )
    .await
    .unwrap();
    // Round 266 CY1: the query the watch compares runs (it did not, and the watch reconnected
    // every two seconds instead).
    let events = unscharf::catalog::live::event_triggers(&su).await.unwrap();
    assert_eq!(events.split(',').count(), 2, "{events}");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    // Round 268 DA3: the catalog in force holds the event triggers its snapshot saw, which the
    // watch compares with.
    assert_eq!(p.shared.catalog.load().event_triggers, events);
    let w = crate::policy::wasser(&p).await;
    // Round 266 CY2: in a SQL function, `SELECT … INTO` creates a table.
    // Round 268 DA1: a listed function's DELETE cascades into a table whose trigger writes there.
    for call in [
        "SELECT public.scratch()",
        "SELECT public.select_into()",
        "SELECT public.drop_parent(1)",
    ] {
        refusal(
            &w,
            call,
            "writes into zeitung.ddl_log of campaign zeitung, in which purpose billing_hotline is granted nothing",
        )
        .await;
    }
    assert_eq!(
        rows_in(&su, "zeitung.ddl_log").await,
        0,
        "the event trigger wrote into the newspaper's table"
    );
    // Code that runs no DDL does not run the event trigger (round 263 CV4).
    let rows = w.simple_query("SELECT public.plain()").await.unwrap();
    assert!(format!("{rows:?}").contains("CommandComplete(1)"), "{rows:?}");
}

/// How many rows `table` holds, as the superuser sees them.
async fn rows_in(su: &tokio_postgres::Client, table: &str) -> i64 {
    su.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}
