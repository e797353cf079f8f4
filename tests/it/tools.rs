//! DBA tools as processes: `unscharf check [--live]` and `unscharf explain`, against the real cluster.

use crate::harness::*;

fn unscharf(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unscharf"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn check_live_compares_policies_with_the_catalog() {
    let p = proxy().await;
    let config = p.dir.join("unscharf.yaml");
    let config = config.to_str().unwrap().to_owned();
    let c = config.clone();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || unscharf(&["check", "--config", &c, "--live", "--json"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["level"] != "error"), "{out}");
    // The harness installs deploy/catalog_watch.sql, as the demo does.
    assert!(!out.contains("schema-change trigger"), "{out}");
    assert!(
        findings
            .iter()
            .any(|f| f["what"].as_str().unwrap().contains("unlisted, so dropped: notes")),
        "{out}"
    );
    // A typo in a column name and a table that does not exist: errors, exit 1.
    std::fs::write(
        p.dir.join("policies/typo.yaml"),
        "campaign: typo\ntables: [nosuch.*]\npurposes:\n  typo:\n    members: [x]\n    tables:\n      nosuch.nothing_here: { columns: all }\n",
    )
    .unwrap();
    let c = config.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || unscharf(&["check", "--config", &c, "--live"]))
        .await
        .unwrap();
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("nosuch.nothing_here") && out.contains("does not exist"),
        "{out}"
    );
    std::fs::remove_file(p.dir.join("policies/typo.yaml")).unwrap();
    // A listed function whose body reads what its purpose may not see: a warning (round 111).
    superuser()
        .await
        .batch_execute(
            "CREATE FUNCTION public.it_callback_note(integer) RETURNS text LANGUAGE sql \
             AS $$ SELECT 'Rückruf an ' || phone FROM stadtwerke.customers WHERE customer_no = $1 $$",
        )
        .await
        .unwrap();
    std::fs::write(
        p.dir.join("policies/callbacks.yaml"),
        "campaign: callbacks\ntables: [callbacks.*]\npurposes:\n  callbacks:\n    members: [agent_wasser]\n    tables:\n      stadtwerke.tickets: { columns: all }\n    functions: [public.it_callback_note]\n",
    )
    .unwrap();
    let c = config.clone();
    let (_, out, err) = tokio::task::spawn_blocking(move || unscharf(&["check", "--config", &c, "--live"]))
        .await
        .unwrap();
    std::fs::remove_file(p.dir.join("policies/callbacks.yaml")).unwrap();
    superuser()
        .await
        .batch_execute("DROP FUNCTION public.it_callback_note(integer)")
        .await
        .unwrap();
    // Other tests' tables named `customers` may be named too: the scan goes by word.
    let line = out
        .lines()
        .find(|l| l.contains("purpose callbacks lists public.it_callback_note, whose body names"))
        .unwrap_or_default();
    assert!(line.contains("stadtwerke.customers (not granted)"), "{out}{err}");
    // A role that puts every agent into a second purpose: each login named (round 116).
    std::fs::write(
        p.dir.join("policies/survey.yaml"),
        "campaign: survey\ntables: [survey.*]\npurposes:\n  survey:\n    members: [role:crm_agents]\n    tables:\n      stadtwerke.tickets: { columns: { ticket_id: allow } }\n",
    )
    .unwrap();
    let c = config.clone();
    let (_, out, err) = tokio::task::spawn_blocking(move || unscharf(&["check", "--config", &c, "--live"]))
        .await
        .unwrap();
    std::fs::remove_file(p.dir.join("policies/survey.yaml")).unwrap();
    for expected in [
        "login agent_wasser is a member of purposes billing_hotline, survey",
        "login qa_lead is a member of purposes quality_review, survey",
        "`stadtwerke.tickets` belongs to campaign `stadtwerke`",
    ] {
        assert!(out.contains(expected), "{expected}: {out}{err}");
    }
    // A campaign past its contract end whose tables still hold rows must be reported with counts.
    let zeitung = std::fs::read_to_string(p.dir.join("policies/zeitung.yaml"))
        .unwrap()
        .replace("contract_ends: 2027-12-31", "contract_ends: 2020-01-31");
    std::fs::write(p.dir.join("policies/zeitung.yaml"), zeitung).unwrap();
    superuser()
        .await
        .batch_execute("ANALYZE zeitung.leads, zeitung.subscriptions")
        .await
        .unwrap();
    let c = config.clone();
    let (code, out, _) = tokio::task::spawn_blocking(move || unscharf(&["check", "--config", &c, "--live"]))
        .await
        .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("contract of campaign zeitung has ended but zeitung.leads still holds"),
        "{out}"
    );
    // A broken policy file: no check passes, and the error names file, line and key.
    std::fs::write(
        p.dir.join("policies/broken.yaml"),
        "campaign: b\ntables: [b.*]\npurposes:\n  p:\n    membres: [x]\n",
    )
    .unwrap();
    let c = config.clone();
    let (code, _, err) = tokio::task::spawn_blocking(move || unscharf(&["check", "--config", &c]))
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(
        err.contains("broken.yaml:5") && err.contains("unknown field `membres`"),
        "{err}"
    );
}

#[tokio::test]
async fn explain_uses_live_roles_and_prints_decisions() {
    let p = proxy().await;
    let config = p.dir.join("unscharf.yaml").to_str().unwrap().to_owned();
    let c = config.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        unscharf(&[
            "explain",
            "--config",
            &c,
            "--user",
            "agent_wasser2",
            "SELECT customer_no, phone, birth_date FROM stadtwerke.customers",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("acts under purpose billing_hotline"),
        "membership of role wasser_agents read from the upstream: {out}"
    );
    assert!(out.contains("REFUSED") && out.contains("birth_date"), "{out}");
    let c = config.clone();
    let (_, out, _) = tokio::task::spawn_blocking(move || {
        unscharf(&[
            "explain",
            "--config",
            &c,
            "--user",
            "agent_wasser2",
            "--json",
            "SELECT customer_no, phone FROM stadtwerke.customers",
        ])
    })
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["statements"][0]["decision"], "masked");
    assert_eq!(v["statements"][0]["columns"][1]["mask"], "last(3)");
    let schema = format!("{}/sample/schema.sql", env!("CARGO_MANIFEST_DIR"));
    let c = config.clone();
    let (_, out, _) = tokio::task::spawn_blocking(move || {
        unscharf(&[
            "explain",
            "--config",
            &c,
            "--user",
            "qa_lead",
            "--schema",
            &schema,
            "SELECT t.subject FROM stadtwerke.tickets t JOIN zeitung.subscriptions s USING (agent)",
        ])
    })
    .await
    .unwrap();
    assert!(out.contains("cross_campaign"), "{out}");
    // Round 116: a login not created yet is imagined with --role, and a misspelt one is named.
    let c = config.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        unscharf(&[
            "explain",
            "--config",
            &c,
            "--user",
            "newhire",
            "--role",
            "wasser_agents",
            "SELECT name FROM stadtwerke.customers",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("acts under purpose billing_hotline") && err.contains("imagined"),
        "{out}{err}"
    );
    assert!(!err.contains("(--role) does not exist"), "{err}");
    let c = config.clone();
    let (_, _, err) = tokio::task::spawn_blocking(move || {
        unscharf(&[
            "explain",
            "--config",
            &c,
            "--user",
            "agent_wasser",
            "--role",
            "wasser_agnets",
            "SELECT 1",
        ])
    })
    .await
    .unwrap();
    assert!(
        err.contains("note: role wasser_agnets (--role) does not exist on the server"),
        "{err}"
    );
    let c = config.clone();
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        unscharf(&["explain", "--config", &c, "--user", "agent_wassr", "SELECT 1"])
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("login agent_wassr does not exist on the server"), "{err}");
    // Round 262 CU3: a login's own search_path (its role's settings) is the one explained, as
    // the proxy reads it at login.
    superuser()
        .await
        .batch_execute(
            "DROP ROLE IF EXISTS explain_path; CREATE ROLE explain_path LOGIN IN ROLE wasser_agents;
             ALTER ROLE explain_path SET search_path = stadtwerke, public",
        )
        .await
        .unwrap();
    let c = config.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        unscharf(&[
            "explain",
            "--config",
            &c,
            "--user",
            "explain_path",
            "SELECT phone FROM customers",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("note: search_path stadtwerke, public"), "{err}");
    assert!(out.contains("last(3)") && !out.contains("REFUSED"), "{out}");
}

/// Round 190 AA4: the catalog role cannot count an ended campaign's rows, and its statistics read
/// 0 after `pg_stat_reset()` (or a crash); a materialized view stores rows as a table does. Round
/// 191 AB3: a table the role may read but whose policies hide its rows from it is not empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_live_finds_an_ended_campaigns_rows_without_statistics() {
    let (cluster, su) = crate::dba::own_cluster(
        "CREATE MATERIALIZED VIEW zeitung.lead_phones AS SELECT lead_id, phone FROM zeitung.leads;
         CREATE TABLE zeitung.call_notes (note text);
         INSERT INTO zeitung.call_notes VALUES ('call back');
         CREATE TABLE zeitung.archive (lead_id int, phone text) PARTITION BY RANGE (lead_id);
         CREATE TABLE public.archive_old PARTITION OF zeitung.archive FOR VALUES FROM (0) TO (1000);
         INSERT INTO zeitung.archive VALUES (1, '+49 170 9999999');
         CREATE TABLE zeitung.old_leads (lead_id int);
         CREATE TABLE public.old_leads_child () INHERITS (zeitung.old_leads);
         INSERT INTO public.old_leads_child VALUES (1);
         ANALYZE zeitung.leads, zeitung.subscriptions;
         ALTER TABLE zeitung.subscriptions ENABLE ROW LEVEL SECURITY;
         CREATE POLICY none_for_unscharf ON zeitung.subscriptions TO unscharf USING (false);
         GRANT SELECT ON zeitung.subscriptions TO unscharf;",
    )
    .await;
    su.batch_execute("SELECT pg_catalog.pg_stat_reset()").await.unwrap();
    let p = crate::dba::proxy_on(&cluster, |t| t.to_owned()).await;
    let zeitung = std::fs::read_to_string(p.dir.join("policies/zeitung.yaml"))
        .unwrap()
        .replace("contract_ends: 2027-12-31", "contract_ends: 2020-01-31");
    std::fs::write(p.dir.join("policies/zeitung.yaml"), zeitung).unwrap();
    let config = p.dir.join("unscharf.yaml").to_str().unwrap().to_owned();
    let (code, out, err) = tokio::task::spawn_blocking(move || unscharf(&["check", "--config", &config, "--live"]))
        .await
        .unwrap();
    assert_eq!(code, 1, "{out}{err}");
    // The planner's estimate survives the reset; a table never analyzed has only its pages.
    for (table, how) in [
        ("zeitung.leads", "still holds about 3 rows"),
        // Round 191 AB3: readable by the catalog role, but its policies hide every row from it.
        ("zeitung.subscriptions", "still holds about"),
        ("zeitung.call_notes", "may still hold rows: the catalog role cannot count them, and its statistics say none, but its files hold data"),
        ("zeitung.lead_phones", ""),
        // Round 193 AD1: rows in a partition or inheritance child outside the campaign's schema.
        ("zeitung.archive", "may still hold rows"),
        ("zeitung.old_leads", "may still hold rows"),
    ] {
        let expected = format!("contract of campaign zeitung has ended but {table} {how}");
        assert!(out.contains(&expected), "{expected}: {out}");
    }
}
