//! Tables of (function code, whether it takes rows in the order a plan reads them).

use super::{takes_rows_in_order, Lookups};
use crate::catalog::Catalog;

fn catalog() -> (Catalog, Lookups) {
    let catalog = crate::catalog::offline::from_schema_sql(
        "CREATE TABLE public.agent_session (pid int PRIMARY KEY, campaign text);
         CREATE TABLE public.assignments (login text, campaign text);
         CREATE TABLE public.agents (login text PRIMARY KEY, team text);
         CREATE TABLE public.teams (team text PRIMARY KEY, campaign text);
         CREATE TABLE public.rates (plan int PRIMARY KEY, rate numeric, since date);",
        "test.sql",
    )
    .unwrap();
    let lookups = Lookups {
        keys: catalog
            .relations()
            .map(|(_, r)| (r.oid, r.unique_keys.clone()))
            .collect(),
        set_returning: ["generate_series", "unnest", "all_campaigns"].map(String::from).into(),
        loose_collations: false,
    };
    (catalog, lookups)
}

#[test]
fn lookups_by_unique_keys_and_aggregates_find_one_row() {
    let (catalog, keys) = catalog();
    let fine = [
        ("sql", "SELECT max(since) FROM rates WHERE plan > 0"),
        ("sql", "SELECT count(*) FROM rates"),
        ("sql", "SELECT max(plan) FROM rates"),
        ("plpgsql", "DECLARE c text; BEGIN RAISE NOTICE 'insert into x;'; SELECT campaign INTO c FROM agent_session WHERE pid = 1; RETURN c; END"),
        ("sql", "SELECT a.team FROM agents a LEFT JOIN teams t ON t.team = a.team WHERE a.login = current_user"),
        ("sql", "SELECT campaign FROM public.agent_session WHERE pid = pg_backend_pid()"),
        ("sql", "SELECT s.campaign FROM agent_session s WHERE s.pid = pg_backend_pid() AND true"),
        ("sql", "SELECT current_setting('app.campaign', true)"),
        ("sql", "SELECT public.session_campaign()"),
        ("sql", "SELECT count(*) > 0 FROM assignments WHERE login = current_user"),
        ("sql", "SELECT min(campaign) FROM assignments WHERE login = $1"),
        ("sql", "SELECT t.campaign FROM agents a JOIN teams t ON t.team = a.team WHERE a.login = current_user"),
        ("sql", "SELECT t.campaign FROM teams t, agents a WHERE a.login = current_user AND t.team = a.team"),
        ("sql", "CREATE TEMP TABLE x (); SELECT campaign FROM agent_session WHERE (pid) = $1"),
        ("sql", "RETURN (SELECT campaign FROM assignments WHERE login = current_user)"),
        ("sql", "BEGIN ATOMIC SELECT campaign FROM agent_session WHERE pid = pg_backend_pid(); END"),
        ("plpgsql", "BEGIN RETURN public.App_Config('campaign', 'none'); END"),
        ("plpgsql", "DECLARE c text; BEGIN SELECT campaign INTO STRICT c FROM assignments WHERE login = current_user; RETURN c; END"),
        ("plpgsql", "DECLARE c text; BEGIN SELECT campaign INTO c FROM agent_session WHERE pid = pg_backend_pid(); RETURN c; END"),
        ("plpgsql", "DECLARE c text; BEGIN SELECT INTO c campaign FROM agent_session WHERE pid = pg_backend_pid(); RETURN c; END"),
        ("plpgsql", "DECLARE c text; BEGIN c := (SELECT campaign FROM assignments WHERE login = current_user); RETURN c; END"),
        ("plpgsql", "BEGIN INSERT INTO public.agent_session VALUES (pg_backend_pid(), 'x') RETURNING campaign INTO c; END"),
        ("plpgsql", "BEGIN ASSERT c <> 'zeitung'; RETURN true; EXCEPTION WHEN assert_failure THEN RETURN false; END"),
    ];
    for (lang, body) in fine {
        assert_eq!(takes_rows_in_order(lang, false, body, &catalog, &keys), None, "{body}");
    }
    // A set-returning SQL function returns every row.
    assert_eq!(
        takes_rows_in_order("sql", true, "SELECT campaign FROM assignments", &catalog, &keys),
        None
    );
}

#[test]
fn first_rows_limits_loops_and_unknown_code_take_rows_in_order() {
    let (catalog, keys) = catalog();
    let ordered = [
        ("sql", "SELECT campaign FROM assignments WHERE login = current_user"),
        ("sql", "SELECT campaign FROM agent_session WHERE pid > 0"),
        (
            "sql",
            "SELECT campaign FROM agent_session WHERE pid = pg_backend_pid() OR true",
        ),
        (
            "sql",
            "SELECT campaign FROM agent_session WHERE pid = (SELECT 1 FROM assignments)",
        ),
        (
            "sql",
            "SELECT t.campaign FROM agents a JOIN teams t ON t.campaign = a.team WHERE a.login = current_user",
        ),
        (
            "sql",
            "SELECT campaign FROM agent_session WHERE pid = pg_backend_pid() UNION SELECT 'x'",
        ),
        ("sql", "SELECT campaign FROM agent_session GROUP BY campaign"),
        (
            "sql",
            "SELECT campaign FROM public.assignments WHERE login = current_user LIMIT 1",
        ),
        (
            "sql",
            "SELECT campaign FROM (SELECT * FROM agent_session) s WHERE pid = 1",
        ),
        ("sql", "SELECT (SELECT count(*) FROM teams) FROM assignments"),
        ("sql", "SELECT string_agg(campaign, ',') FROM assignments"),
        (
            "sql",
            "SELECT campaign FROM agent_session -- limit\n WHERE pid = pg_backend_pid() FETCH FIRST 1 ROW ONLY",
        ),
        ("sql", "SELECT DISTINCT ON (login) campaign FROM assignments"),
        ("sql", "SELECT campaign FROM U&\"agent_session\" WHERE pid = 1"),
        ("sql", "this is not sql"),
        (
            "sql",
            "BEGIN ATOMIC SELECT campaign FROM assignments WHERE login = current_user; END",
        ),
        (
            "plpgsql",
            "DECLARE c text; BEGIN SELECT campaign INTO c FROM assignments WHERE login = current_user; RETURN c; END",
        ),
        (
            "plpgsql",
            "DECLARE c text; BEGIN SELECT INTO c campaign FROM assignments; RETURN c; END",
        ),
        (
            "plpgsql",
            "DECLARE r record; BEGIN FOR r IN SELECT * FROM assignments LOOP RETURN r.campaign; END LOOP; END",
        ),
        (
            "plpgsql",
            "DECLARE c text; BEGIN EXECUTE 'SELECT 1' INTO c; RETURN c; END",
        ),
        ("plperl", "return 'x';"),
        // Round 187 X1: a LEFT JOIN's ON keeps every row before it.
        ("sql", "SELECT t.campaign FROM assignments a LEFT JOIN agents o ON o.login = a.login AND a.login = current_user LEFT JOIN teams t ON t.team = o.team"),
        ("sql", "SELECT a.campaign FROM assignments a LEFT JOIN agents o ON o.login = a.login AND a.login = current_user"),
        // X2: a set-returning call makes rows.
        ("sql", "SELECT all_campaigns()"),
        ("sql", "RETURN all_campaigns()"),
        ("sql", "SELECT count(*), unnest(ARRAY[1, 2]) FROM rates"),
        ("sql", "SELECT all_campaigns() FROM agent_session WHERE pid = 1"),
        ("plpgsql", "DECLARE q text; BEGIN SELECT all_campaigns() INTO q; RETURN q; END"),
        // X3: strings are not code.
        ("plpgsql", "DECLARE c text; BEGIN SELECT 'insert into a queue first', campaign INTO c FROM assignments; RETURN c; END"),
        ("plpgsql", "DECLARE c text; BEGIN SELECT campaign, 'into strict' INTO c FROM assignments; RETURN c; END"),
        ("plpgsql", "DECLARE c text; BEGIN SELECT E'x\\';', campaign INTO c FROM assignments WHERE login = current_user; RETURN c; END"),
        ("plpgsql", "DECLARE c text; BEGIN WITH x AS (INSERT INTO agents VALUES ('a', 'b') RETURNING 1) SELECT campaign INTO c FROM assignments; RETURN c; END"),
        ("plpgsql", "DECLARE r record; BEGIN TABLE assignments INTO r; RETURN r.campaign; END"),
        // X4: a collation that calls several keys equal.
        ("sql", "SELECT campaign FROM agent_session WHERE pid::text COLLATE \"ci\" = $1"),
        ("sql", "SELECT team FROM agents WHERE login = current_user::text COLLATE \"ci\""),
        // X5: min of numbers keeps one of 2.0 and 2.00.
        ("sql", "SELECT min(rate) FROM rates"),
        ("sql", "SELECT max(rate)::text FROM rates WHERE since IS NOT NULL"),
        ("sql", "SELECT min(rate + 0) FROM rates"),
        ("aggregate", "agg_step"),
    ];
    for (lang, body) in ordered {
        assert!(
            takes_rows_in_order(lang, false, body, &catalog, &keys).is_some(),
            "{lang}: {body}"
        );
    }
    // A set-returning one with a row limit.
    assert!(takes_rows_in_order("sql", true, "SELECT campaign FROM assignments LIMIT 1", &catalog, &keys).is_some());
}
