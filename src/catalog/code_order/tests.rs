//! Tables of (function code, whether it takes rows in the order a plan reads them).

use std::collections::HashMap;

use super::takes_rows_in_order;
use crate::catalog::Catalog;

fn catalog() -> (Catalog, HashMap<u32, Vec<Vec<i16>>>) {
    let catalog = crate::catalog::offline::from_schema_sql(
        "CREATE TABLE public.agent_session (pid int PRIMARY KEY, campaign text);
         CREATE TABLE public.assignments (login text, campaign text);
         CREATE TABLE public.agents (login text PRIMARY KEY, team text);
         CREATE TABLE public.teams (team text PRIMARY KEY, campaign text);",
        "test.sql",
    )
    .unwrap();
    let keys = catalog
        .relations()
        .map(|(_, r)| (r.oid, r.unique_keys.clone()))
        .collect();
    (catalog, keys)
}

#[test]
fn lookups_by_unique_keys_and_aggregates_find_one_row() {
    let (catalog, keys) = catalog();
    let fine = [
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
