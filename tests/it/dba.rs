//! Objects a DBA creates that make Postgres run or compare more than a statement names: implicit
//! casts, operator classes, unique indexes, partitions. Each test runs on its own cluster, since
//! such an object changes what every statement of the database may do.

use crate::harness::*;
use crate::policy::{err_text, text_of, wasser};

/// A cluster of its own with the sample data and a DBA's `ddl`, and its superuser. The cluster
/// stops when dropped.
pub(crate) async fn own_cluster(ddl: &str) -> (unscharf::cluster::Cluster, tokio_postgres::Client) {
    let cluster = new_cluster();
    let su = connect_url(&cluster.superuser_url("crm")).await;
    su.batch_execute(ddl).await.unwrap();
    (cluster, su)
}

/// A proxy on `cluster` whose billing_hotline purpose is edited by `edit` (sample text in, new
/// text out).
pub(crate) async fn proxy_on(cluster: &unscharf::cluster::Cluster, edit: impl Fn(&str) -> String) -> Proxy {
    let policy = edit(include_str!("../../policies/stadtwerke.yaml"));
    proxy_with(ProxyOptions {
        upstream_port: Some(cluster.port),
        policies: vec![("stadtwerke.yaml".into(), policy)],
        ..Default::default()
    })
    .await
}

/// The sample policy with `grant` (indented table entries) added to billing_hotline's tables.
pub(crate) fn granting(grant: &'static str) -> impl Fn(&str) -> String {
    move |text: &str| {
        let at = "      stadtwerke.meter_readings: { columns: all }\n";
        assert!(text.contains(at));
        text.replacen(at, &format!("{at}{grant}"), 1)
    }
}

/// The refusal of `sql`, whose text must mention `why`.
pub(crate) async fn refusal(c: &tokio_postgres::Client, sql: &str, why: &str) -> String {
    match c.simple_query(sql).await {
        Ok(rows) => panic!("{sql}: allowed, returned {}", text_of(&rows)),
        Err(e) => {
            let text = err_text(&e);
            assert!(text.contains(why), "{sql}: {text}");
            text
        }
    }
}

/// What `unscharf check --live` prints for the proxy's config.
pub(crate) async fn check_live(p: &Proxy) -> String {
    let config = p.dir.join("unscharf.yaml");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_unscharf"))
            .args(["check", "--live", "--config", config.to_str().unwrap()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sample policy as it is.
fn sample(text: &str) -> String {
    text.to_owned()
}

/// Round 64: a DBA's implicit cast runs wherever Postgres coerces its source type, with no cast,
/// column or function name in the statement to show it. On its own cluster, since the cast
/// changes what every statement of the database may run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_implicit_cast_a_dba_wrote_holds_every_statement_until_its_function_is_listed() {
    let (cluster, su) = own_cluster(
        "CREATE FUNCTION public.rt64_label(int4) RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT string_agg(concat_ws(' ', name, phone, iban, birth_date, notes), '; ')
              FROM stadtwerke.customers WHERE $1 IS NOT NULL $$;
         CREATE CAST (int4 AS text) WITH FUNCTION public.rt64_label(int4) AS IMPLICIT;",
    )
    .await;
    let p = proxy_on(&cluster, sample).await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for sql in [
        "SELECT lower(1)",
        "SELECT upper(customer_no) FROM stadtwerke.customers",
        "SELECT name FROM stadtwerke.customers WHERE customer_no = 1001",
    ] {
        match c.simple_query(sql).await {
            Ok(rows) => seen.push_str(&text_of(&rows)),
            Err(e) => {
                assert!(
                    err_text(&e).contains("an implicit cast integer → text that runs public.rt64_label"),
                    "{sql}: {}",
                    err_text(&e)
                );
                seen.push_str(&err_text(&e));
            }
        }
    }
    assert_no_protected(&seen, "an implicit cast a DBA wrote");
    assert!(!seen.contains("Anna"), "{seen}");
    // Statements that evaluate nothing go ahead.
    c.batch_execute("BEGIN; SET LOCAL search_path = stadtwerke; COMMIT")
        .await
        .unwrap();
    // A purpose that lists the function accepts what the DBA's cast may run.
    let p = proxy_on(&cluster, |t| {
        t.replacen("functions: []", "functions: [public.rt64_label]", 1)
    })
    .await;
    let rows = wasser(&p)
        .await
        .simple_query("SELECT name FROM stadtwerke.customers WHERE customer_no = 1001")
        .await
        .unwrap();
    assert!(text_of(&rows).contains("Anna Schmidt"), "{}", text_of(&rows));
    // A default operator class a DBA gave a built-in type runs on every sort of its values.
    su.batch_execute(
        "DROP CAST (int4 AS text);
         CREATE FUNCTION public.rt64_cmp(json, json) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT 0 $$;
         CREATE OPERATOR CLASS public.rt64_json_ops DEFAULT FOR TYPE json USING btree AS
           FUNCTION 1 public.rt64_cmp(json, json);",
    )
    .await
    .unwrap();
    let p = proxy_on(&cluster, sample).await;
    refusal(
        &wasser(&p).await,
        "SELECT DISTINCT j FROM (SELECT to_json(1) AS j) s",
        "the default btree operator class rt64_json_ops for json that runs public.rt64_cmp",
    )
    .await;
}

/// Round 66: a unique index compares a written value with every stored row, so a duplicate-key
/// error (or ON CONFLICT's choice) answered whether a guessed e-mail address was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_index_on_a_protected_column_does_not_answer_guesses() {
    let (cluster, su) = own_cluster(
        "CREATE UNIQUE INDEX rt66_email ON stadtwerke.customers (email);
         CREATE UNIQUE INDEX rt66_iban ON stadtwerke.customers (lower(iban)) WHERE city IS NOT NULL;
         CREATE INDEX rt186_city_email ON stadtwerke.customers (city, email);
         GRANT INSERT, UPDATE ON stadtwerke.customers TO agent_wasser;",
    )
    .await;
    // Round 186 W2, the premise straight to Postgres: an index entry holds the written city beside
    // the stored email, and its size limit fails the write by the email's length.
    // Hex of a simple generator: text that does not compress.
    let long = |n: usize| {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let city: String = (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                char::from_digit(((x >> 33) % 16) as u32, 16).unwrap_or('0')
            })
            .collect();
        format!("UPDATE stadtwerke.customers SET city = '{city}' WHERE customer_no = 1002")
    };
    let fails = |e: Result<u64, tokio_postgres::Error>| {
        e.err()
            .and_then(|e| e.as_db_error().map(|d| d.message().to_owned()))
            .unwrap_or_default()
    };
    assert_eq!(fails(su.execute(&long(2600), &[]).await), "", "premise: short enough");
    assert!(
        fails(su.execute(&long(2700), &[]).await).contains("index row size"),
        "premise: too long"
    );
    let p = proxy_on(&cluster, |t| {
        t.replacen(
            "      stadtwerke.customers:\n        columns:\n",
            "      stadtwerke.customers:\n        write: [insert, update]\n        columns:\n",
            1,
        )
    })
    .await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for sql in [
        "INSERT INTO stadtwerke.customers (customer_no, name, email) VALUES (9001, 'x', 'anna.schmidt@example.org')",
        "INSERT INTO stadtwerke.customers (customer_no, name, email) VALUES (9001, 'x', 'anna.schmidt@example.org') ON CONFLICT (email) DO NOTHING RETURNING customer_no",
        "UPDATE stadtwerke.customers SET email = 'anna.schmidt@example.org' WHERE customer_no = 1002",
        "UPDATE stadtwerke.customers SET iban = 'de89 3704 0044 0532 0130 00' WHERE customer_no = 1002",
        long(2700).as_str(),
    ] {
        seen.push_str(&refusal(&c, sql, "an index of the table keeps").await);
    }
    assert_no_protected(&seen, "a unique index");
    // Writes that compare only columns the purpose may read go ahead.
    c.batch_execute(
        "INSERT INTO stadtwerke.customers (customer_no, name) VALUES (9001, 'x');
         UPDATE stadtwerke.customers SET name = 'y' WHERE customer_no = 9001",
    )
    .await
    .unwrap();
}

/// Round 67: a partitioned table's rows lie where their values put them, so `tableoid` told the
/// decade of a dropped birth date; a partition's own unique index compared an IBAN written through
/// the parent; a DBA's default operator class for a DBA type ran on every ORDER BY of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_and_a_dba_types_sort_order_tell_nothing() {
    let (cluster, _su) = own_cluster(
        "CREATE TYPE stadtwerke.rt67_kind AS ENUM ('a', 'b');
         CREATE FUNCTION public.rt67_cmp(stadtwerke.rt67_kind, stadtwerke.rt67_kind) RETURNS int
           LANGUAGE sql IMMUTABLE AS $$ SELECT 0 $$;
         CREATE OPERATOR CLASS public.rt67_kind_ops DEFAULT FOR TYPE stadtwerke.rt67_kind USING btree AS
           FUNCTION 1 public.rt67_cmp(stadtwerke.rt67_kind, stadtwerke.rt67_kind);
         CREATE TABLE stadtwerke.rt67_contracts (contract_no int, iban text, born date, kind stadtwerke.rt67_kind)
           PARTITION BY RANGE (born);
         CREATE TABLE stadtwerke.rt67_c_1980s PARTITION OF stadtwerke.rt67_contracts
           FOR VALUES FROM ('1980-01-01') TO ('1990-01-01');
         CREATE TABLE stadtwerke.rt67_c_other PARTITION OF stadtwerke.rt67_contracts DEFAULT;
         CREATE UNIQUE INDEX ON stadtwerke.rt67_c_other (iban);
         INSERT INTO stadtwerke.rt67_contracts VALUES (1, 'DE89 3704 0044 0532 0130 00', '1984-07-02', 'a'),
           (2, 'DE12 5001 0517 0648 4898 90', '1961-11-23', 'b');
         GRANT SELECT, INSERT ON stadtwerke.rt67_contracts TO agent_wasser;",
    )
    .await;
    let p = proxy_on(
        &cluster,
        granting(
            "      stadtwerke.rt67_contracts:
        columns: { contract_no: allow, iban: { mask: iban }, born: drop, kind: allow }
        write: [insert]\n",
        ),
    )
    .await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for (sql, why) in [
        (
            "SELECT contract_no, tableoid::regclass FROM stadtwerke.rt67_contracts",
            "whole-row reference rt67_contracts.tableoid",
        ),
        (
            "INSERT INTO stadtwerke.rt67_contracts (contract_no, iban, born) VALUES (3, 'DE12 5001 0517 0648 4898 90', '1950-01-01')",
            "an index of the table keeps",
        ),
        (
            "SELECT contract_no FROM stadtwerke.rt67_contracts ORDER BY kind",
            "a function a DBA wrote",
        ),
    ] {
        seen.push_str(&refusal(&c, sql, why).await);
    }
    assert!(!seen.contains("1980s"), "{seen}");
    // What the purpose may read still works: the parent's own rows, without the partition.
    let rows = c
        .simple_query("SELECT contract_no, kind FROM stadtwerke.rt67_contracts WHERE contract_no = 1")
        .await
        .unwrap();
    assert!(text_of(&rows).contains('a'), "{}", text_of(&rows));
}

/// Round 67: a foreign key compares what is written with the referenced table, so a violation
/// (or its absence) answered whether a guessed e-mail was a customer's, within the campaign and
/// from the other one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_does_not_answer_guesses() {
    let (cluster, _su) = own_cluster(
        "ALTER TABLE stadtwerke.customers ADD UNIQUE (email);
         ALTER TABLE stadtwerke.tickets ADD COLUMN email_ref text REFERENCES stadtwerke.customers (email);
         ALTER TABLE zeitung.subscriptions ADD COLUMN customer_email text REFERENCES stadtwerke.customers (email);",
    )
    .await;
    let p = proxy_on(&cluster, sample).await;
    let wasser = wasser(&p).await;
    let zeitung = p.connect("agent_zeitung", "zeitung").await;
    let mut seen = String::new();
    for (c, sql, why) in [
        (
            &wasser,
            "INSERT INTO stadtwerke.tickets (subject, email_ref) VALUES ('x', 'anna.schmidt@example.org')",
            "stadtwerke.customers.email",
        ),
        (
            &zeitung,
            "INSERT INTO zeitung.subscriptions (lead_id, product, starts_on, monthly_eur, customer_email) VALUES (1, 'x', now(), 1, 'anna.schmidt@example.org')",
            "campaigns zeitung and stadtwerke",
        ),
        (
            &zeitung,
            "UPDATE zeitung.subscriptions SET customer_email = 'anna.schmidt@example.org' WHERE subscription_id = 1",
            "campaigns zeitung and stadtwerke",
        ),
    ] {
        seen.push_str(&refusal(c, sql, why).await);
    }
    assert_no_protected(&seen, "a foreign key");
    // Writes whose keys the purpose may read still work.
    wasser
        .batch_execute("INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (1001, 'x')")
        .await
        .unwrap();
}

/// Round 70: a foreign key into a partition is one into its parent too, and ON DELETE CASCADE is
/// a write: a DELETE through the parent deleted the other campaign's subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascading_foreign_key_through_a_partition_is_a_write() {
    let (cluster, su) = own_cluster(
        "CREATE TABLE stadtwerke.rt70_contracts (contract_no int, region text) PARTITION BY LIST (region);
         CREATE TABLE stadtwerke.rt70_nord PARTITION OF stadtwerke.rt70_contracts FOR VALUES IN ('nord');
         ALTER TABLE stadtwerke.rt70_nord ADD PRIMARY KEY (contract_no);
         ALTER TABLE zeitung.subscriptions ADD COLUMN contract_no int
           REFERENCES stadtwerke.rt70_nord ON DELETE CASCADE;
         INSERT INTO stadtwerke.rt70_contracts VALUES (1, 'nord'), (2, 'nord');
         UPDATE zeitung.subscriptions SET contract_no = 1;
         GRANT SELECT, UPDATE, DELETE ON stadtwerke.rt70_contracts TO agent_wasser;",
    )
    .await;
    let p = proxy_on(
        &cluster,
        granting("      stadtwerke.rt70_contracts: { columns: all, write: [update, delete] }\n"),
    )
    .await;
    let c = wasser(&p).await;
    let count = "SELECT count(*) FROM zeitung.subscriptions";
    let before: i64 = su.query_one(count, &[]).await.unwrap().get(0);
    for sql in [
        "DELETE FROM stadtwerke.rt70_contracts WHERE contract_no = 1",
        "UPDATE stadtwerke.rt70_contracts SET contract_no = 3 WHERE contract_no = 1",
    ] {
        refusal(&c, sql, "cross_campaign").await;
    }
    let after: i64 = su.query_one(count, &[]).await.unwrap().get(0);
    assert_eq!(before, after, "the other campaign's rows are untouched");
    // A contract nothing references, by a statement that reaches no other table, goes.
    c.batch_execute("UPDATE stadtwerke.rt70_contracts SET region = 'nord' WHERE contract_no = 2")
        .await
        .unwrap();
}

/// Round 141: a cascade's own cascades write too. An UPDATE of a ticket's id cascaded into
/// stadtwerke's ticket links, and from there into a zeitung table that referenced them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascades_are_followed_down_the_chain() {
    let (cluster, su) = own_cluster(
        "CREATE TABLE stadtwerke.ticket_links (ticket_id int PRIMARY KEY
           REFERENCES stadtwerke.tickets ON UPDATE CASCADE ON DELETE CASCADE, note text);
         CREATE TABLE zeitung.crosssell (lead_id int, ticket_id int
           REFERENCES stadtwerke.ticket_links ON UPDATE CASCADE ON DELETE CASCADE);
         INSERT INTO stadtwerke.ticket_links SELECT ticket_id, 'link' FROM stadtwerke.tickets;
         INSERT INTO zeitung.crosssell SELECT 1, max(ticket_id) FROM stadtwerke.tickets;
         GRANT SELECT, UPDATE, DELETE ON stadtwerke.ticket_links TO crm_agents;",
    )
    .await;
    let p = proxy_on(
        &cluster,
        granting("      stadtwerke.ticket_links: { columns: all, write: [update, delete] }\n"),
    )
    .await;
    let c = wasser(&p).await;
    let last: i32 = su
        .query_one("SELECT max(ticket_id) FROM stadtwerke.tickets", &[])
        .await
        .unwrap()
        .get(0);
    for sql in [
        format!("UPDATE stadtwerke.tickets SET ticket_id = 9000 WHERE ticket_id = {last}"),
        format!("UPDATE stadtwerke.ticket_links SET ticket_id = 9000 WHERE ticket_id = {last}"),
        format!("DELETE FROM stadtwerke.ticket_links WHERE ticket_id = {last}"),
    ] {
        refusal(&c, &sql, "cross_campaign").await;
    }
    let kept: i32 = su
        .query_one("SELECT ticket_id FROM zeitung.crosssell", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, last, "the other campaign's row is untouched");
}

/// Round 72: a partition a DBA placed in another campaign's schema holds that campaign's rows, and
/// reading the parent reads them; a view reads the tables behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_in_another_campaigns_schema_is_that_campaigns() {
    let (cluster, _su) = own_cluster(
        "CREATE TABLE stadtwerke.rt72_notes (region text, note text) PARTITION BY LIST (region);
         CREATE TABLE stadtwerke.rt72_nord PARTITION OF stadtwerke.rt72_notes FOR VALUES IN ('nord');
         CREATE TABLE zeitung.rt72_sued PARTITION OF stadtwerke.rt72_notes FOR VALUES IN ('sued');
         INSERT INTO stadtwerke.rt72_notes VALUES ('nord', 'wasser'), ('sued', 'Frieda Hoffmann +49 30 2223334');
         GRANT SELECT ON stadtwerke.rt72_notes TO agent_wasser;
         CREATE VIEW stadtwerke.rt72_leads AS SELECT name, phone FROM zeitung.leads;
         GRANT SELECT ON stadtwerke.rt72_leads TO agent_wasser;",
    )
    .await;
    let p = proxy_on(
        &cluster,
        granting("      stadtwerke.rt72_notes: { columns: all }\n      stadtwerke.rt72_leads: { columns: all }\n"),
    )
    .await;
    let c = wasser(&p).await;
    let text = refusal(
        &c,
        "SELECT note FROM stadtwerke.rt72_notes",
        "rows of stadtwerke.rt72_notes come from zeitung.rt72_sued",
    )
    .await;
    assert!(!text.contains("Frieda"), "{text}");
    // A view in one campaign's schema over the other campaign's table reads that table.
    refusal(
        &c,
        "SELECT name, phone FROM stadtwerke.rt72_leads",
        "rows of stadtwerke.rt72_leads come from zeitung.leads",
    )
    .await;
}

/// Round 74: code a statement runs without naming it, behind a view, a trigger or a row-level
/// security policy, returned the other campaign's leads. Rule 7 and rule 4 hold for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_behind_views_triggers_and_policies_is_judged_like_a_written_call() {
    let (cluster, _su) = own_cluster(
        "CREATE FUNCTION public.rt74_leads() RETURNS SETOF text LANGUAGE sql STABLE AS
           $$ SELECT name || ' ' || phone FROM zeitung.leads $$;
         CREATE VIEW stadtwerke.rt74_v1 AS SELECT x FROM public.rt74_leads() x;
         CREATE VIEW stadtwerke.rt74_v2 AS
           SELECT query_to_xml('SELECT name, phone FROM zeitung.leads', true, false, '')::text AS x;
         CREATE FUNCTION public.rt74_fill() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN NEW.note := (SELECT string_agg(name || ' ' || phone, '; ') FROM zeitung.leads); RETURN NEW; END $$;
         CREATE TRIGGER rt74_t BEFORE INSERT ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION public.rt74_fill();
         CREATE TABLE stadtwerke.rt74_rls (x text);
         ALTER TABLE stadtwerke.rt74_rls ENABLE ROW LEVEL SECURITY;
         CREATE POLICY rt74_p ON stadtwerke.rt74_rls USING (x IN (SELECT phone FROM zeitung.leads));
         INSERT INTO stadtwerke.rt74_rls VALUES ('+49 30 2223334'), ('+49 30 0000000');
         GRANT SELECT ON stadtwerke.rt74_v1, stadtwerke.rt74_v2, stadtwerke.rt74_rls TO agent_wasser;
         CREATE FUNCTION public.rt74_one() RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT min(name || ' ' || phone) FROM zeitung.leads $$;
         CREATE TABLE stadtwerke.rt74_w (n int, x text DEFAULT public.rt74_one());
         GRANT SELECT, INSERT ON stadtwerke.rt74_w TO agent_wasser;
         CREATE FUNCTION public.rt78_op(text, text) RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT min(name || ' ' || phone) FROM zeitung.leads $$;
         CREATE OPERATOR public.@%@ (LEFTARG = text, RIGHTARG = text, FUNCTION = public.rt78_op);
         CREATE VIEW stadtwerke.rt78_v AS SELECT 'a'::text OPERATOR(public.@%@) 'b'::text AS x;
         CREATE DOMAIN stadtwerke.rt78_d AS text DEFAULT public.rt74_one();
         CREATE TABLE stadtwerke.rt78_w (n int, x stadtwerke.rt78_d);
         GRANT SELECT ON stadtwerke.rt78_v TO agent_wasser;
         GRANT SELECT, INSERT ON stadtwerke.rt78_w TO agent_wasser;
         CREATE FUNCTION public.rt80_chk(text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT true $$;
         CREATE TABLE stadtwerke.rt80_i (x text);
         CREATE INDEX rt80_i_x ON stadtwerke.rt80_i (public.rt80_chk(x));
         CREATE DOMAIN stadtwerke.rt80_d AS text CHECK (public.rt80_chk(VALUE));
         CREATE VIEW stadtwerke.rt80_v AS SELECT ARRAY['a']::stadtwerke.rt80_d[] AS x;
         GRANT SELECT, INSERT ON stadtwerke.rt80_i TO agent_wasser;
         GRANT SELECT ON stadtwerke.rt80_v TO agent_wasser;
         CREATE FUNCTION public.rt82_diff(float8, float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$ SELECT $1 - $2 $$;
         CREATE TYPE stadtwerke.rt82_range AS RANGE (subtype = float8, subtype_diff = public.rt82_diff);
         CREATE TABLE stadtwerke.rt82_t (id int, r stadtwerke.rt82_range);
         CREATE INDEX ON stadtwerke.rt82_t USING gist (r);
         GRANT SELECT, INSERT ON stadtwerke.rt82_t TO agent_wasser;
         CREATE FUNCTION public.rt83_cmp(float8, float8) RETURNS int LANGUAGE sql IMMUTABLE AS
           $$ SELECT CASE WHEN $1 < $2 THEN -1 WHEN $1 > $2 THEN 1 ELSE 0 END $$;
         CREATE OPERATOR CLASS public.rt83_ops FOR TYPE float8 USING btree AS FUNCTION 1 public.rt83_cmp(float8, float8);
         CREATE TYPE stadtwerke.rt83_range AS RANGE (subtype = float8, subtype_opclass = public.rt83_ops);
         CREATE TYPE stadtwerke.rt85_mt;
         CREATE FUNCTION stadtwerke.rt85_in(cstring) RETURNS stadtwerke.rt85_mt LANGUAGE internal IMMUTABLE STRICT AS 'int4in';
         CREATE FUNCTION stadtwerke.rt85_out(stadtwerke.rt85_mt) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'int4out';
         CREATE FUNCTION stadtwerke.rt85_tmin(cstring[]) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 7; END $$;
         CREATE TYPE stadtwerke.rt85_mt (input = stadtwerke.rt85_in, output = stadtwerke.rt85_out, internallength = 4,
           passedbyvalue, alignment = int4, typmod_in = stadtwerke.rt85_tmin);",
    )
    .await;
    let p = proxy_on(
        &cluster,
        granting(
            "      stadtwerke.rt74_v1: { columns: all }
      stadtwerke.rt74_v2: { columns: all }
      stadtwerke.rt74_rls: { columns: all }
      stadtwerke.rt74_w: { columns: all, write: [insert] }
      stadtwerke.rt78_v: { columns: all }
      stadtwerke.rt78_w: { columns: { n: allow }, write: [insert] }
      stadtwerke.rt80_i: { columns: all, write: [insert] }
      stadtwerke.rt80_v: { columns: all }
      stadtwerke.rt82_t: { columns: all, write: [insert] }\n",
        ),
    )
    .await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for (sql, why) in [
        (
            "SELECT x FROM stadtwerke.rt74_v1",
            "the view or rule _RETURN of stadtwerke.rt74_v1 runs public.rt74_leads",
        ),
        ("SELECT x FROM stadtwerke.rt74_v2", "runs pg_catalog.query_to_xml"),
        (
            "INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (1001, 'x') RETURNING note",
            "the trigger rt74_t of stadtwerke.tickets runs public.rt74_fill",
        ),
        ("SELECT x FROM stadtwerke.rt74_rls", "come from zeitung.leads"),
        (
            "INSERT INTO stadtwerke.rt74_w (n) VALUES (1) RETURNING x",
            "the default of column x of stadtwerke.rt74_w runs public.rt74_one",
        ),
        // Round 78: one step further, an operator in a view and a domain's DEFAULT.
        (
            "SELECT x FROM stadtwerke.rt78_v",
            "of stadtwerke.rt78_v runs public.rt78_op",
        ),
        (
            "INSERT INTO stadtwerke.rt78_w (n) VALUES (1)",
            "the domain of column x of stadtwerke.rt78_w runs public.rt74_one",
        ),
        // Round 80: an expression index, and an array of a domain in a view.
        (
            "INSERT INTO stadtwerke.rt80_i VALUES ('a')",
            "the index stadtwerke.rt80_i_x of stadtwerke.rt80_i runs public.rt80_chk",
        ),
        (
            "SELECT x FROM stadtwerke.rt80_v",
            "of stadtwerke.rt80_v runs public.rt80_chk",
        ),
        // Round 82: a range type's subtype_diff, which a GiST index runs on every insert.
        (
            "INSERT INTO stadtwerke.rt82_t SELECT g, ('[' || g || ',' || (g + 1) || ')')::stadtwerke.rt82_range FROM generate_series(1, 10) g",
            "stadtwerke.rt82_range: its type may run a function a DBA wrote",
        ),
        // Round 83: a range type's subtype operator class orders its bounds, even on a read.
        ("SELECT '[1,2)'::stadtwerke.rt83_range", "its type may run a function a DBA wrote"),
        // Round 85: a type modifier function in PL/pgSQL runs when a cast names a modifier.
        ("SELECT '1'::stadtwerke.rt85_mt(5)", "its type may run a function a DBA wrote"),
    ] {
        seen.push_str(&refusal(&c, sql, why).await);
    }
    assert!(!seen.contains("2223334") && !seen.contains("Frieda"), "{seen}");
    // Reading a table with a trigger or a default runs neither.
    c.simple_query("SELECT ticket_id FROM stadtwerke.tickets LIMIT 1")
        .await
        .unwrap();
    c.simple_query("SELECT n FROM stadtwerke.rt74_w").await.unwrap();
}

/// Round 96: a DBA who installs an extension into pg_catalog (`CREATE EXTENSION xml2 SCHEMA
/// pg_catalog`) or creates a helper there made it built-in to unscharf, which judged functions,
/// relations and operators by their schema alone: xpath_table ran a query given as text and
/// returned the other campaign's phones and the dropped birth dates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_a_dba_puts_into_pg_catalog_are_not_built_in() {
    let (cluster, _su) = own_cluster(
        "CREATE EXTENSION xml2 SCHEMA pg_catalog;
         CREATE FUNCTION pg_catalog.rt96_customers(int) RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT string_agg(concat_ws(' ', phone, iban, birth_date, notes), '; ')
              FROM stadtwerke.customers WHERE $1 IS NOT NULL $$;
         SET allow_system_table_mods = on;
         CREATE VIEW pg_catalog.rt96_born AS SELECT name, birth_date::text, notes FROM stadtwerke.customers;
         GRANT SELECT ON pg_catalog.rt96_born TO PUBLIC;
         CREATE FUNCTION pg_catalog.rt96_op(text, text) RETURNS text LANGUAGE sql STABLE AS
           $$ SELECT string_agg(name || ' ' || phone, '; ') FROM zeitung.leads $$;
         CREATE OPERATOR pg_catalog.<%> (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_catalog.rt96_op);",
    )
    .await;
    let p = proxy_on(&cluster, sample).await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for (sql, why) in [
        (
            "SELECT * FROM xpath_table('phone', '''<a/>''', 'zeitung.leads', '/a', 'true') AS t(k text, x text)",
            "forbidden_function",
        ),
        (
            "SELECT * FROM pg_catalog.xpath_table('name||''|''||iban||''|''||birth_date', '''<a/>''', 'stadtwerke.customers', '/a', 'true') AS t(k text, x text)",
            "forbidden_function",
        ),
        ("SELECT pg_catalog.rt96_customers(1)", "forbidden_function"),
        ("SELECT rt96_customers(1)", "forbidden_function"),
        // Refused as a view over a campaign's table already; no longer a system catalog either.
        ("SELECT * FROM pg_catalog.rt96_born", "pg_catalog.rt96_born"),
        ("SELECT name, birth_date, notes FROM rt96_born", "pg_catalog.rt96_born"),
        ("SELECT 'a'::text OPERATOR(pg_catalog.<%>) 'b'::text", "defined one of that name in pg_catalog"),
    ] {
        seen.push_str(&refusal(&c, sql, why).await);
    }
    // What the agent does every day still works.
    let rows = c
        .simple_query("SELECT upper(name), phone FROM stadtwerke.customers WHERE customer_no = 1001")
        .await
        .unwrap();
    seen.push_str(&text_of(&rows));
    assert!(
        seen.contains("ANNA SCHMIDT") && seen.contains("+** ** ****567"),
        "{seen}"
    );
    assert_no_protected(&seen, "pg_catalog objects");
    assert!(!seen.contains("2223334"), "a zeitung lead's phone: {seen}");
}

/// Round 98: rows and numbers a DBA's objects bring in from elsewhere. A foreign table below a
/// granted table, or granted itself, returned the other campaign's leads from a server unscharf
/// cannot see; a STORED generated column held what a DBA function computed when the column was
/// added, and a read returned it; a default drawing from the other campaign's sequence counted
/// its subscriptions into ticket ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_a_dba_brings_in_from_elsewhere_are_judged() {
    let (cluster, _su) = own_cluster(
        "CREATE EXTENSION postgres_fdw;
         CREATE SERVER rt98 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'crm');
         CREATE FOREIGN TABLE stadtwerke.rt98_child () INHERITS (stadtwerke.tickets)
           SERVER rt98 OPTIONS (table_name 'leads_as_tickets');
         CREATE FOREIGN TABLE stadtwerke.rt98_mirror (name text, phone text)
           SERVER rt98 OPTIONS (schema_name 'zeitung', table_name 'leads');
         GRANT SELECT ON stadtwerke.rt98_mirror TO agent_wasser;
         CREATE FUNCTION public.rt98_leads(int) RETURNS text LANGUAGE sql IMMUTABLE AS
           $$ SELECT string_agg(name || ' ' || phone, '; ') FROM zeitung.leads WHERE $1 IS NOT NULL $$;
         ALTER TABLE stadtwerke.meter_readings
           ADD COLUMN rt98_ref text GENERATED ALWAYS AS (public.rt98_leads(customer_no)) STORED;
         CREATE TABLE stadtwerke.rt98_notes (id int DEFAULT nextval('zeitung.subscriptions_subscription_id_seq'), x text);
         GRANT SELECT, INSERT ON stadtwerke.rt98_notes TO agent_wasser;
         CREATE DOMAIN public.rt208_ref AS bigint DEFAULT nextval('zeitung.subscriptions_subscription_id_seq');
         CREATE DOMAIN public.rt208_outer AS public.rt208_ref;
         CREATE TABLE stadtwerke.rt208_cases (x text, case_ref public.rt208_outer);
         GRANT SELECT, INSERT ON stadtwerke.rt208_cases TO agent_wasser;
         CREATE DOMAIN public.rt209_late AS bigint DEFAULT nextval('zeitung.subscriptions_subscription_id_seq'::text);
         CREATE TABLE stadtwerke.rt209_cases (x text, case_ref public.rt209_late,
           case_no bigint DEFAULT nextval('zeitung.subscriptions_subscription_id_seq'::text));
         GRANT SELECT, INSERT ON stadtwerke.rt209_cases TO agent_wasser;
         CREATE OPERATOR public.@+ (RIGHTARG = regclass, FUNCTION = pg_catalog.nextval);
         CREATE TABLE stadtwerke.rt211_op (x text,
           n bigint DEFAULT @+ ('zeitung.subscriptions_subscription_id_seq'::text)::regclass);
         CREATE TABLE stadtwerke.rt211_last (x text,
           n bigint DEFAULT pg_sequence_last_value(('zeitung.subscriptions_subscription_id_seq'::text)::regclass));
         GRANT SELECT, INSERT ON stadtwerke.rt211_op, stadtwerke.rt211_last TO agent_wasser;
         CREATE SEQUENCE stadtwerke.rt212_own;
         CREATE TABLE stadtwerke.rt212_pad (x text, n bigint DEFAULT CASE WHEN 'stadtwerke.rt212_own'::regclass IS NULL
           THEN 0 ELSE nextval('zeitung.subscriptions_subscription_id_seq'::text) END);
         CREATE TABLE stadtwerke.rt212_chk (x text CHECK (nextval('zeitung.subscriptions_subscription_id_seq') > 0));
         CREATE TABLE stadtwerke.rt212_chk_late (x text CHECK (nextval('zeitung.subscriptions_subscription_id_seq'::text) > 0));
         CREATE FUNCTION public.rt212_peek() RETURNS bigint LANGUAGE sql AS
           $$ SELECT PG_SEQUENCE_LAST_VALUE('ZEITUNG.SUBSCRIPTIONS_SUBSCRIPTION_ID_SEQ') $$;
         CREATE FUNCTION public.rt212_peek_by(s text) RETURNS bigint LANGUAGE sql AS
           $$ SELECT pg_sequence_last_value(s::regclass) $$;
         CREATE TABLE stadtwerke.rt212_peek (x text, n bigint DEFAULT public.rt212_peek(),
           m bigint DEFAULT public.rt212_peek_by('zeitung.subscriptions_subscription_id_seq'));
         GRANT SELECT, INSERT ON stadtwerke.rt212_pad, stadtwerke.rt212_chk, stadtwerke.rt212_chk_late,
           stadtwerke.rt212_peek TO agent_wasser;",
    )
    .await;
    let p = proxy_on(
        &cluster,
        granting(
            "      stadtwerke.rt98_mirror: { columns: all }
      stadtwerke.rt98_notes: { columns: all, write: [insert] }
      stadtwerke.rt208_cases: { columns: all, write: [insert] }
      stadtwerke.rt209_cases: { columns: all, write: [insert] }
      stadtwerke.rt211_op: { columns: all, write: [insert] }
      stadtwerke.rt211_last: { columns: all, write: [insert] }
      stadtwerke.rt212_pad: { columns: all, write: [insert] }
      stadtwerke.rt212_chk: { columns: all, write: [insert] }
      stadtwerke.rt212_chk_late: { columns: all, write: [insert] }
      stadtwerke.rt212_peek: { columns: all, write: [insert] }\n",
        ),
    )
    .await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for (sql, why) in [
        (
            "SELECT subject FROM stadtwerke.tickets",
            "the foreign table stadtwerke.rt98_child",
        ),
        (
            "SELECT name, phone FROM stadtwerke.rt98_mirror",
            "the foreign table stadtwerke.rt98_mirror",
        ),
        (
            "SELECT * FROM stadtwerke.meter_readings",
            "the generated column rt98_ref of stadtwerke.meter_readings runs public.rt98_leads",
        ),
        (
            "INSERT INTO stadtwerke.rt98_notes (x) VALUES ('a') RETURNING id",
            "draws from zeitung.subscriptions_subscription_id_seq, which belongs to campaign zeitung",
        ),
        // Round 208 AS2: the default of the column's domain (of a domain) draws from it.
        (
            "INSERT INTO stadtwerke.rt208_cases (x) VALUES ('a') RETURNING case_ref",
            "draws from zeitung.subscriptions_subscription_id_seq, which belongs to campaign zeitung",
        ),
        // Round 209 AT1: a default (or a domain's) naming its sequence in text, bound at run time.
        (
            "INSERT INTO stadtwerke.rt209_cases (x) VALUES ('a') RETURNING case_no, case_ref",
            "a sequence its default names in text",
        ),
        // Round 211 AV1: an operator over nextval, and pg_sequence_last_value, on a name in text.
        (
            "INSERT INTO stadtwerke.rt211_op (x) VALUES ('a') RETURNING n",
            "a sequence its default names in text",
        ),
        (
            "INSERT INTO stadtwerke.rt211_last (x) VALUES ('a') RETURNING n",
            "a sequence its default names in text",
        ),
        // Round 212 AW4: an unused regclass constant of its own campaign's beside a late-bound call.
        (
            "INSERT INTO stadtwerke.rt212_pad (x) VALUES ('a') RETURNING n",
            "a sequence its default names in text",
        ),
        // AW5: a CHECK constraint runs on every write as a default does.
        (
            "INSERT INTO stadtwerke.rt212_chk (x) VALUES ('a')",
            "draws from zeitung.subscriptions_subscription_id_seq, which belongs to campaign zeitung",
        ),
        (
            "INSERT INTO stadtwerke.rt212_chk_late (x) VALUES ('a')",
            "a sequence its default names in text",
        ),
        // AW1: a helper naming the sequence in capitals, or reading one it is given by name.
        (
            "INSERT INTO stadtwerke.rt212_peek (x) VALUES ('a') RETURNING n, m",
            "whose code draws from a sequence",
        ),
    ] {
        seen.push_str(&refusal(&c, sql, why).await);
    }
    let rows = c.simple_query("SELECT x FROM stadtwerke.rt98_notes").await.unwrap();
    seen.push_str(&text_of(&rows));
    // Round 209 AT2: the refusal's record names the sequence's campaign too.
    let events = p.audit().await;
    let e = events
        .iter()
        .find(|e| e.detail.contains("rt98_notes draws from zeitung"))
        .expect("recorded");
    assert_eq!(e.campaigns, ["stadtwerke", "zeitung"], "{e:?}");
    assert_no_protected(&seen, "objects bringing rows in");
    assert!(!seen.contains("2223334"), "a zeitung lead's phone: {seen}");
}

/// Round 102: a row-level security policy is a WHERE the DBA wrote. One comparing the masked phone
/// with a setting the agent may change (`crm.area_code`) answered prefix guesses digit by digit;
/// a sequence in public that both campaigns' defaults draw from counted the other campaign's
/// subscriptions into ticket ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_security_policy_on_a_protected_column_and_a_shared_sequence_tell_nothing() {
    let (cluster, _su) = own_cluster(
        "ALTER TABLE stadtwerke.customers ENABLE ROW LEVEL SECURITY;
         CREATE POLICY rt102_area ON stadtwerke.customers
           USING (phone LIKE coalesce(current_setting('crm.area_code', true), '') || '%');
         CREATE SEQUENCE public.rt102_ids;
         GRANT USAGE ON SEQUENCE public.rt102_ids TO PUBLIC;
         CREATE TABLE stadtwerke.rt102_notes (id bigint DEFAULT nextval('public.rt102_ids'), x text);
         CREATE TABLE zeitung.rt102_notes (id bigint DEFAULT nextval('public.rt102_ids'), x text);
         ALTER TABLE zeitung.subscriptions ALTER COLUMN subscription_id SET DEFAULT nextval('stadtwerke.tickets_ticket_id_seq');
         CREATE TABLE stadtwerke.rt127 (id int GENERATED BY DEFAULT AS IDENTITY, x text);
         ALTER TABLE zeitung.leads ALTER COLUMN lead_id SET DEFAULT nextval('stadtwerke.rt127_id_seq');
         GRANT INSERT ON stadtwerke.rt127 TO agent_wasser;
         CREATE TABLE stadtwerke.rt127b (id bigserial, x text);
         GRANT INSERT ON stadtwerke.rt127b TO agent_wasser; GRANT USAGE ON SEQUENCE stadtwerke.rt127b_id_seq TO agent_wasser;
         CREATE FUNCTION zeitung.number_lead() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN NEW.lead_id := nextval('stadtwerke.rt127b_id_seq'); RETURN NEW; END $$;
         CREATE TRIGGER number_lead BEFORE INSERT ON zeitung.leads FOR EACH ROW EXECUTE FUNCTION zeitung.number_lead();
         GRANT SELECT, INSERT ON stadtwerke.rt102_notes TO agent_wasser;
         CREATE TABLE stadtwerke.rt212b (id bigserial, x text);
         GRANT INSERT ON stadtwerke.rt212b TO agent_wasser; GRANT USAGE ON SEQUENCE stadtwerke.rt212b_id_seq TO agent_wasser;
         CREATE FUNCTION zeitung.rt212_order_no() RETURNS bigint LANGUAGE sql AS $$ SELECT NEXTVAL('STADTWERKE.RT212B_ID_SEQ') $$;
         ALTER TABLE zeitung.leads ADD COLUMN rt212_order_no bigint DEFAULT zeitung.rt212_order_no();",
    )
    .await;
    let p = proxy_on(
        &cluster,
        granting("      stadtwerke.rt102_notes: { columns: all, write: [insert] }\n      stadtwerke.rt127: { columns: all, write: [insert] }\n      stadtwerke.rt127b: { columns: all, write: [insert] }\n      stadtwerke.rt212b: { columns: all, write: [insert] }\n"),
    )
    .await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    c.batch_execute("SET crm.area_code = '+49 30 123456'").await.unwrap();
    for (sql, why) in [
        (
            "SELECT customer_no, phone FROM stadtwerke.customers",
            "the row-level security policy rt102_area of stadtwerke.customers filters by stadtwerke.customers.phone",
        ),
        (
            "SELECT count(*) FROM stadtwerke.customers",
            "the row-level security policy rt102_area",
        ),
        (
            "INSERT INTO stadtwerke.rt102_notes (x) VALUES ('a') RETURNING id",
            "draws from public.rt102_ids, which lies outside campaign stadtwerke",
        ),
        // Round 124: zeitung's subscriptions draw their ids from the tickets' own sequence.
        (
            "INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (1001, 'x') RETURNING ticket_id",
            "draws from stadtwerke.tickets_ticket_id_seq, which a default of zeitung.subscriptions draws from too",
        ),
        // Round 127: an identity column's sequence has no default to show it.
        (
            "INSERT INTO stadtwerke.rt127 (x) VALUES ('a')",
            "draws from stadtwerke.rt127_id_seq, which a default of zeitung.leads draws from too",
        ),
        // Round 127: nor has a trigger's code that draws from it for another campaign's table.
        (
            "INSERT INTO stadtwerke.rt127b (x) VALUES ('a')",
            "draws from stadtwerke.rt127b_id_seq, which a function's code names too",
        ),
        // Round 212 AW2: in capitals, as a regclass string folds them.
        (
            "INSERT INTO stadtwerke.rt212b (x) VALUES ('a')",
            "draws from stadtwerke.rt212b_id_seq, which a function's code names too",
        ),
    ] {
        seen.push_str(&refusal(&c, sql, why).await);
    }
    assert_no_protected(&seen, "a row security policy");
}

/// Round 108: an exemption for extensions' compiled operators (tried for round 102's citext) was
/// faked: a DBA made an internal-language wrapper of text_lt a member of citext and defined
/// public.= over it, so with public first in search_path the phone lookup became a less-than
/// oracle. Every operator of a built-in's name outside pg_catalog holds unqualified uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_a_dba_passes_off_as_an_extensions_holds_every_comparison() {
    let (cluster, _su) = own_cluster(
        "CREATE EXTENSION citext;
         CREATE FUNCTION public.rt108_lt(text, text) RETURNS boolean LANGUAGE internal IMMUTABLE STRICT AS 'text_lt';
         ALTER EXTENSION citext ADD FUNCTION public.rt108_lt(text, text);
         CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.rt108_lt);",
    )
    .await;
    let p = proxy_on(&cluster, sample).await;
    let c = wasser(&p).await;
    c.batch_execute("SET search_path = public, pg_catalog").await.unwrap();
    let seen = refusal(
        &c,
        "SELECT name FROM stadtwerke.customers WHERE phone = '+49 30 5'",
        "operator = is also defined outside pg_catalog",
    )
    .await;
    assert_no_protected(&seen, "an operator passed off as an extension's");
}

/// Round 150: an extension installed in a schema of its own, on no agent's search_path, holds no
/// unqualified operator; once its schema is on the path, every one of its names is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_in_a_schema_off_the_path_hold_nothing() {
    let (cluster, _su) = own_cluster(
        "CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext; CREATE EXTENSION pg_trgm SCHEMA ext;
         GRANT USAGE ON SCHEMA ext TO crm_agents;",
    )
    .await;
    let p = proxy_on(&cluster, sample).await;
    let c = wasser(&p).await;
    for sql in [
        "SELECT name FROM stadtwerke.customers WHERE customer_no = 1001",
        "SELECT name FROM stadtwerke.customers WHERE name <> 'x' AND customer_no % 2 = 1",
        "SELECT name FROM stadtwerke.customers WHERE customer_no IN (1001, 1002)",
    ] {
        c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    c.batch_execute("SET search_path = stadtwerke, ext").await.unwrap();
    let seen = refusal(
        &c,
        "SELECT name FROM stadtwerke.customers WHERE customer_no = 1001",
        "operator = is also defined outside pg_catalog",
    )
    .await;
    assert_no_protected(&seen, "an extension's operators on the path");
}

/// Round 105: a row-level security policy on tickets showed a probe ticket only while the
/// customer's dropped birth date was earlier than the date in its subject, so four probes told
/// the birth date. A policy's columns of other tables count like its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_security_policy_reading_another_tables_protected_column_tells_nothing() {
    let (cluster, _su) = own_cluster(
        "ALTER TABLE stadtwerke.tickets ENABLE ROW LEVEL SECURITY;
         CREATE POLICY rt105_probe ON stadtwerke.tickets USING (subject NOT LIKE 'probe%' OR EXISTS (
           SELECT 1 FROM stadtwerke.customers c
           WHERE c.customer_no = tickets.customer_no AND c.birth_date::text < substr(subject, 7)));
         ALTER TABLE stadtwerke.meter_readings ENABLE ROW LEVEL SECURITY;
         CREATE POLICY rt108_row ON stadtwerke.meter_readings USING (EXISTS (
           SELECT FROM stadtwerke.customers c WHERE c.customer_no = meter_readings.customer_no
             AND c::text LIKE coalesce(current_setting('rt.guess', true), '%')));",
    )
    .await;
    let p = proxy_on(&cluster, sample).await;
    let c = wasser(&p).await;
    let mut seen = refusal(
        &c,
        "SELECT ticket_id, subject FROM stadtwerke.tickets",
        "the row-level security policy rt105_probe of stadtwerke.tickets filters by stadtwerke.customers.",
    )
    .await;
    // Round 108: the whole row of another table, which pg_depend records without columns.
    c.batch_execute("SET rt.guess = '(1001,\"Anna Schmidt\",%'")
        .await
        .unwrap();
    seen.push_str(
        &refusal(
            &c,
            "SELECT count(*) FROM stadtwerke.meter_readings",
            "the row-level security policy rt108_row of stadtwerke.meter_readings filters by stadtwerke.customers.",
        )
        .await,
    );
    assert_no_protected(&seen, "a row security policy over another table");
}

/// Round 115: a write through a view meets the unique indexes and foreign keys of the tables
/// behind it, which compare it with rows the view's rules protect: `INSERT … ON CONFLICT DO
/// NOTHING` through a view answered `INSERT 0 0` for a stored e-mail. The tables behind a written
/// view count as written, so their keys are judged by their own rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_a_view_meets_the_keys_behind_it() {
    let (cluster, _su) = own_cluster(
        "CREATE UNIQUE INDEX rt115_email ON stadtwerke.customers (lower(email));
         CREATE VIEW stadtwerke.customer_signup AS SELECT customer_no, name, email FROM stadtwerke.customers;
         CREATE VIEW stadtwerke.open_tickets AS SELECT ticket_id, customer_no, subject FROM stadtwerke.tickets;
         CREATE VIEW stadtwerke.customer_card AS SELECT customer_no, phone, iban FROM stadtwerke.customers;
         GRANT SELECT, INSERT, UPDATE, DELETE ON stadtwerke.customer_signup, stadtwerke.open_tickets TO agent_wasser;
         GRANT SELECT ON stadtwerke.customer_card TO agent_wasser;",
    )
    .await;
    let p = proxy_on(
        &cluster,
        granting(
            "      stadtwerke.customer_signup: { write: [insert, update, delete], columns: { customer_no: allow, name: allow, email: { mask: email } } }\n      stadtwerke.open_tickets: { write: [insert], columns: all }\n      stadtwerke.customer_card: { columns: all }\n",
        ),
    )
    .await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    for sql in [
        "INSERT INTO stadtwerke.customer_signup (customer_no, name, email) VALUES (9001, 'x', 'Anna.Schmidt@example.org') ON CONFLICT DO NOTHING",
        "INSERT INTO stadtwerke.customer_signup (customer_no, name, email) VALUES (9001, 'x', 'bernd.mueller@example.net')",
        "UPDATE stadtwerke.customer_signup SET email = 'bernd.mueller@example.net' WHERE customer_no = 1001",
    ] {
        seen.push_str(&refusal(&c, sql, "an index of the table keeps").await);
    }
    assert_no_protected(&seen, "a write through a view");
    // A view over a table whose keys and foreign keys compare only columns the purpose reads.
    let rows = c
        .simple_query(
            "INSERT INTO stadtwerke.open_tickets (customer_no, subject) VALUES (1001, 'Zählerstand') RETURNING subject",
        )
        .await
        .unwrap();
    assert!(text_of(&rows).contains("Zählerstand"), "{}", text_of(&rows));
    // A view granted under looser rules than the table behind it: check --live says so.
    let out = check_live(&p).await;
    assert!(
        out.contains("purpose billing_hotline reads stadtwerke.customer_card under rules other than those of the tables behind it: phone (allow there, mask last(3) (lookup) on stadtwerke.customers), iban (allow there, mask iban on stadtwerke.customers)"),
        "{out}"
    );
    assert!(!out.contains("reads stadtwerke.customer_signup under"), "{out}");
}

/// Round 117: a listed trigger function ran `SET search_path = crm` in its body, which Postgres
/// does not undo, and the next statement's `customers` was a legacy copy outside the purpose
/// while unscharf judged it as stadtwerke.customers. A statement that may run a DBA's code leaves
/// search_path unknown until the server has said it again. A DO INSTEAD rule on tickets returned
/// the callback note it filled from the clear phone: writes to a relation with rules are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_a_dba_runs_behind_a_statement_does_not_move_its_names() {
    let (cluster, _su) = own_cluster(
        "CREATE SCHEMA crm;
         CREATE TABLE crm.customers AS SELECT * FROM stadtwerke.customers;
         UPDATE crm.customers SET name = 'LEGACY ' || name;
         GRANT USAGE ON SCHEMA crm TO crm_agents; GRANT SELECT ON crm.customers TO crm_agents;
         ALTER ROLE agent_wasser SET search_path = stadtwerke, public;
         CREATE FUNCTION stadtwerke.tickets_log() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN SET search_path = crm, public; RETURN NEW; END $$;
         CREATE TRIGGER tickets_log AFTER INSERT ON stadtwerke.tickets FOR EACH ROW EXECUTE FUNCTION stadtwerke.tickets_log();
         CREATE TABLE stadtwerke.callbacks (customer_no int, subject text, note text);
         CREATE TABLE stadtwerke.callback_requests (customer_no int, subject text, note text);
         GRANT INSERT, SELECT ON stadtwerke.callbacks, stadtwerke.callback_requests TO crm_agents;
         CREATE DOMAIN stadtwerke.ref_code AS text DEFAULT pg_catalog.set_config('search_path', 'crm, public', false);
         CREATE TABLE stadtwerke.requests (customer_no int, ref stadtwerke.ref_code);
         GRANT INSERT ON stadtwerke.requests TO crm_agents;
         CREATE VIEW stadtwerke.customer_view AS
           SELECT customer_no, pg_catalog.set_config('search_path', 'crm, public', false) AS sp FROM stadtwerke.customers;
         GRANT SELECT ON stadtwerke.customer_view TO crm_agents;
         CREATE RULE callback AS ON INSERT TO stadtwerke.callback_requests DO INSTEAD
           INSERT INTO stadtwerke.callbacks SELECT NEW.customer_no, NEW.subject, 'callback: ' || c.phone
           FROM stadtwerke.customers c WHERE c.customer_no = NEW.customer_no RETURNING callbacks.*;",
    )
    .await;
    let p = proxy_on(&cluster, |t| {
        granting("      stadtwerke.callback_requests: { write: [insert], columns: all }\n      stadtwerke.customer_view: { columns: all }\n      stadtwerke.requests: { write: [insert], columns: all }\n")(t).replacen(
            "    functions: []",
            "    functions: [stadtwerke.tickets_log]",
            1,
        )
    })
    .await;
    let c = wasser(&p).await;
    let mut seen = String::new();
    c.batch_execute("INSERT INTO tickets (customer_no, subject) VALUES (1001, 'Rückruf')")
        .await
        .unwrap();
    for sql in [
        "SELECT name || '' AS n FROM customers",
        "SELECT max(name) FROM customers",
        "INSERT INTO tickets (customer_no, subject) VALUES (1001, 'Rückruf'); SELECT name || '' AS n FROM customers",
    ] {
        match c.simple_query(sql).await {
            Ok(rows) => seen.push_str(&text_of(&rows)),
            Err(e) => seen.push_str(&err_text(&e)),
        }
    }
    assert!(!seen.contains("LEGACY"), "{seen}");
    // What the server says the path is now is what names resolve with: crm.customers is no
    // relation of the purpose.
    refusal(&c, "SELECT name || '' AS n FROM customers", "crm.customers").await;
    let text = refusal(
        &c,
        "INSERT INTO stadtwerke.callback_requests VALUES (1002, 'Rückruf') RETURNING note",
        "the rule callback on stadtwerke.callback_requests rewrites writes",
    )
    .await;
    // Round 119: Postgres's own set_config in a DBA's view moved search_path just the same.
    refusal(
        &c,
        "SELECT customer_no FROM stadtwerke.customer_view",
        "the view or rule _RETURN of stadtwerke.customer_view calls set_config",
    )
    .await;
    // Round 121: so did a domain's DEFAULT, on a write that leaves its column out.
    refusal(
        &c,
        "INSERT INTO stadtwerke.requests (customer_no) VALUES (1001)",
        "the domain ref_code of column ref of stadtwerke.requests calls set_config",
    )
    .await;
    assert_no_protected(&format!("{seen}{text}"), "code behind a statement");
}

/// Round 121: database code that runs `set_config('role', …)` makes the session act as another
/// role from then on, and `ALTER ROLE … SET role` does so from the start. unscharf serves sessions
/// that act as their login: the probe after DBA code ends such a session, and such a login is
/// refused at connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_acts_as_another_role_ends() {
    let (cluster, su) = own_cluster(
        "CREATE FUNCTION stadtwerke.become_agents() RETURNS text LANGUAGE plpgsql AS $$
         BEGIN RETURN pg_catalog.set_config('role', 'crm_agents', false); END $$;
         GRANT EXECUTE ON FUNCTION stadtwerke.become_agents() TO crm_agents;",
    )
    .await;
    let p = proxy_on(&cluster, |t| {
        t.replacen("    functions: []", "    functions: [stadtwerke.become_agents]", 1)
    })
    .await;
    let c = wasser(&p).await;
    let _ = c.simple_query("SELECT stadtwerke.become_agents()").await;
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        err_text(&e).contains("a role other than the login's") || c.is_closed(),
        "{}",
        err_text(&e)
    );
    su.batch_execute("ALTER ROLE agent_wasser SET role = crm_agents")
        .await
        .unwrap();
    let e = p.try_connect("", "agent_wasser", "wasser").await.unwrap_err();
    assert!(format!("{e:?}").contains("start as another role"), "{e:?}");
}
