//! Issue 4: the audit trail and its tools, live reloads, metrics and health, graceful shutdown, logs.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::raw::{error_code, error_message, Raw};

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

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test]
async fn audit_tools_list_summarize_and_verify_the_trail() {
    let p = proxy().await;
    let c = p.connect("agent_wasser", "wasser").await;
    for sql in [
        "SELECT lower(phone) FROM stadtwerke.customers",
        "SELECT * FROM zeitung.leads",
        "SELECT iban || '' FROM stadtwerke.customers",
    ] {
        let _ = c.simple_query(sql).await.unwrap_err();
    }
    let q = p.connect("qa_lead", "qa").await;
    let _ = q
        .simple_query("SELECT t.subject FROM stadtwerke.tickets t JOIN zeitung.subscriptions s USING (agent)")
        .await
        .unwrap_err();
    p.audit().await;
    let trail = p.audit_path().to_str().unwrap().to_owned();

    let t = trail.clone();
    let (code, out, _) = blocking(move || {
        unscharf(&[
            "audit",
            "list",
            &t,
            "--user",
            "agent_wasser",
            "--reason",
            "protected_column",
            "--json",
        ])
    })
    .await;
    assert_eq!(code, 0);
    let events: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(events.len(), 2, "{out}");
    assert!(events
        .iter()
        .all(|e| e["purpose"] == "billing_hotline" && e["decision"] == "refused"));
    let t = trail.clone();
    let (_, out, _) =
        blocking(move || unscharf(&["audit", "list", &t, "--since", "2000-01-01", "--until", "2000-01-02"])).await;
    assert!(out.contains("0 event(s)"), "{out}");
    // Round 116: a date in --until is that whole day, a campaign narrows the list, and a filter
    // that could only match nothing (a misspelt reason, a reversed range) is an error.
    let today = chrono::Utc::now().date_naive().to_string();
    let (t, d) = (trail.clone(), today.clone());
    let (code, out, _) = blocking(move || {
        unscharf(&[
            "audit",
            "list",
            &t,
            "--since",
            &d,
            "--until",
            &d,
            "--campaign",
            "zeitung",
            "--json",
        ])
    })
    .await;
    let events: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!((code, events.len()), (0, 2), "{out}");
    assert!(
        events.iter().all(|e| e["campaigns"].to_string().contains("zeitung")),
        "{out}"
    );
    let t = trail.clone();
    let (code, out, err) = blocking(move || unscharf(&["audit", "list", &t, "--campaign", "zeitng"])).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("0 event(s)") && err.contains("no event of the trail has --campaign zeitng"),
        "{out}{err}"
    );
    let t = trail.clone();
    let (code, _, err) = blocking(move || unscharf(&["audit", "list", &t, "--reason", "cross_campain"])).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("unknown reason `cross_campain`") && err.contains("cross_campaign"),
        "{err}"
    );
    let t = trail.clone();
    let (code, _, err) =
        blocking(move || unscharf(&["audit", "list", &t, "--since", "2026-12-01", "--until", "2026-11-01"])).await;
    assert_eq!(code, 1);
    assert!(err.contains("is not before --until"), "{err}");
    let t = trail.clone();
    let (_, out, _) = blocking(move || unscharf(&["audit", "summary", &t])).await;
    assert!(
        out.contains("agent_wasser") && out.contains("protected_column") && out.contains("cross_campaign"),
        "{out}"
    );
    let t = trail.clone();
    let (_, out, _) = blocking(move || unscharf(&["audit", "summary", &t, "--json"])).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cross = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["reason"] == "cross_campaign")
        .unwrap();
    assert_eq!(
        (cross["user"].as_str(), cross["count"].as_u64()),
        (Some("qa_lead"), Some(1))
    );
    // A time range around now keeps every event; groups carry the campaign.
    let t = trail.clone();
    let (_, out, _) = blocking(move || {
        unscharf(&[
            "audit",
            "summary",
            &t,
            "--since",
            "2000-01-01",
            "--until",
            "2999-01-01",
            "--json",
        ])
    })
    .await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["events"], 4, "{out}");
    assert!(
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["reason"] == "protected_column" && g["campaign"] == "stadtwerke"),
        "{out}"
    );
    // verify takes the same filters: the whole chain is checked, the filters count their events.
    let t = trail.clone();
    let (code, out, _) = blocking(move || unscharf(&["audit", "verify", &t, "--user", "qa_lead"])).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("OK: 4 event(s)") && out.contains("1 of them match the filters"),
        "{out}"
    );

    let t = trail.clone();
    let (code, out, _) = blocking(move || unscharf(&["audit", "verify", &t])).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: 4 event(s)"), "{out}");
    assert_no_protected(&std::fs::read_to_string(&trail).unwrap(), "audit trail");
    // Someone softens a refusal: verify names the line and fails.
    let text = std::fs::read_to_string(&trail).unwrap();
    let edited = text
        .replacen("\"decision\":\"refused\"", "\"decision\":\"allowed\"", 2)
        .replacen("\"decision\":\"allowed\"", "\"decision\":\"refused\"", 1);
    std::fs::write(&trail, edited).unwrap();
    let t = trail.clone();
    let (code, out, _) = blocking(move || unscharf(&["audit", "verify", &t])).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("audit.jsonl:2") && out.contains("edited"), "{out}");
}

#[tokio::test]
async fn a_broken_audit_trail_refuses_statements_until_it_works_again() {
    let p = proxy().await;
    let c = p.connect("agent_wasser", "wasser").await;
    c.simple_query("SELECT 1").await.unwrap();
    // The trail disappears and a directory takes its place: events can no longer be written.
    let path = p.audit_path();
    let _ = std::fs::remove_file(&path);
    std::fs::create_dir(&path).unwrap();
    let _ = c
        .simple_query("SELECT lower(iban) FROM stadtwerke.customers")
        .await
        .unwrap_err();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = c
        .simple_query("SELECT name FROM stadtwerke.customers")
        .await
        .unwrap_err();
    let msg = e.as_db_error().unwrap().message().to_owned();
    assert!(
        msg.contains("audit trail cannot be written") && msg.contains("audit_unavailable"),
        "{msg}"
    );
    // Repaired: the held events are written and statements run again; nothing was lost.
    std::fs::remove_dir(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if c.simple_query("SELECT name FROM stadtwerke.customers").await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "statements still refused after the trail was repaired"
        );
    }
    let events = p.audit().await;
    assert!(
        events.iter().any(|e| e.reason == "protected_column"),
        "the event raised while broken was kept"
    );
    assert!(events.iter().any(|e| e.reason == "audit_unavailable"));
    assert_eq!(
        p.shared.audit.state.dropped.load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    // With on_write_failure: continue, statements go on while the trail is broken.
    let p = proxy_with(ProxyOptions {
        extra: "audit:\n  file: audit.jsonl\n  on_write_failure: continue\n".into(),
        ..Default::default()
    })
    .await;
    let c = p.connect("agent_wasser", "wasser").await;
    std::fs::create_dir(p.audit_path().with_extension("x")).unwrap();
    let _ = std::fs::remove_file(p.audit_path());
    std::fs::rename(p.audit_path().with_extension("x"), p.audit_path()).unwrap();
    let _ = c
        .simple_query("SELECT lower(iban) FROM stadtwerke.customers")
        .await
        .unwrap_err();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.simple_query("SELECT name FROM stadtwerke.customers").await.unwrap();
}

#[tokio::test]
async fn audit_events_also_reach_a_database_table() {
    let table = format!("audit_sink_{}", std::process::id());
    let extra = format!("audit:\n  file: audit.jsonl\n  database:\n    url: host=127.0.0.1 port={} user=postgres dbname=crm\n    table: public.{table}\n", db().port());
    let p = proxy_with(ProxyOptions {
        extra,
        ..Default::default()
    })
    .await;
    let c = p.connect("agent_wasser", "wasser").await;
    for _ in 0..3 {
        let _ = c
            .simple_query("SELECT md5(email) FROM stadtwerke.customers")
            .await
            .unwrap_err();
    }
    let file = p.audit().await;
    let su = superuser().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        if let Ok(rows) = su
            .query(
                &format!("SELECT hash, reason, user_name, statement FROM public.{table} ORDER BY seq"),
                &[],
            )
            .await
        {
            if rows.len() == 3 {
                break rows;
            }
        }
        assert!(Instant::now() < deadline, "events did not reach the table");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (row, e) in rows.iter().zip(&file) {
        assert_eq!(row.get::<_, String>(0), e.hash.clone().unwrap());
        assert_eq!(row.get::<_, String>(1), "protected_column");
        assert_eq!(row.get::<_, String>(2), "agent_wasser");
    }
    // Round 175 F5: the copy's counters reach /metrics.
    let metrics = p.shared.metrics.render(&p.shared.audit.state);
    for line in [
        "unscharf_audit_copy_written_total 3",
        "unscharf_audit_copy_dropped_total 0",
    ] {
        assert!(metrics.contains(line), "{metrics}");
    }
    su.batch_execute(&format!("DROP TABLE public.{table}")).await.unwrap();
}

fn set_iban_mask(dir: &std::path::Path, mask: &str) {
    let path = dir.join("policies/stadtwerke.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("iban:  { mask: ").unwrap();
    let end = start + text[start..].find('}').unwrap();
    let new = format!("{}iban:  {{ mask: {mask} {}", &text[..start], &text[end..]);
    std::fs::write(path, new).unwrap();
}

#[tokio::test]
async fn reload_swaps_policies_for_running_sessions_and_keeps_them_on_errors() {
    let p = proxy().await;
    let c = p.connect("agent_wasser", "wasser").await;
    assert_eq!(iban_of(&c).await, "DE89 **** **** **** **30 00");
    let before = p.shared.state.load().policy.version.clone();
    let refuse = "SELECT lower(iban) FROM stadtwerke.customers";
    c.simple_query(refuse).await.unwrap_err();
    set_iban_mask(&p.dir, "redact");
    let version = p.shared.reload().await.unwrap();
    assert_ne!(version, before, "the policy version is a hash of the files");
    assert_eq!(
        iban_of(&c).await,
        "****",
        "the running session uses the new policy at its next statement"
    );
    // Each audit event names the policy version in force when it was decided.
    c.simple_query(refuse).await.unwrap_err();
    let versions: Vec<String> = p.audit().await.into_iter().map(|e| e.policy_version).collect();
    assert_eq!(versions, vec![before, version.clone()]);
    // A broken policy: the reload fails, the old policy stays in force.
    std::fs::write(
        p.dir.join("policies/broken.yaml"),
        "campaign: b\ntables: [b.*]\nbogus: 1\n",
    )
    .unwrap();
    let err = p.shared.reload().await.unwrap_err();
    assert!(err.contains("broken.yaml") && err.contains("bogus"), "{err}");
    let m = &p.shared.metrics;
    assert_eq!(
        (
            m.reloads_ok.load(Ordering::Relaxed),
            m.reloads_failed.load(Ordering::Relaxed)
        ),
        (1, 1)
    );
    assert_eq!(p.shared.state.load().policy.version, version);
    assert_eq!(iban_of(&c).await, "****");
}

async fn iban_of(c: &tokio_postgres::Client) -> String {
    c.query_one("SELECT iban FROM stadtwerke.customers WHERE customer_no = 1001", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_reloads_under_pgbench_load_fail_no_transaction() {
    let p = proxy().await;
    let port = p.addr.port().to_string();
    let bench = std::thread::spawn(move || {
        tool("pgbench", "postgresql-client")
            .args([
                "-n",
                "-S",
                "-M",
                "prepared",
                "-c",
                "4",
                "-j",
                "2",
                "-T",
                "6",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "bench",
                "crm",
            ])
            .env("PGPASSWORD", "bench")
            .output()
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    for i in 0..10 {
        set_iban_mask(&p.dir, if i % 2 == 0 { "redact" } else { "iban" });
        p.shared.reload().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let out = tokio::task::spawn_blocking(move || bench.join().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("number of failed transactions: 0"), "{stdout}");
    assert!(p.shared.metrics.reloads_ok.load(std::sync::atomic::Ordering::Relaxed) >= 10);
}

#[tokio::test]
async fn sighup_reloads_the_running_binary_and_metrics_and_health_report() {
    let cfg = binary_config("");
    let serve = blocking({
        let cfg_dir = cfg.dir.clone();
        let cfg_path = cfg.config.clone();
        let (port, admin_port) = (cfg.port, cfg.admin_port);
        move || {
            let c = BinaryConfig {
                dir: cfg_dir,
                config: cfg_path,
                port,
                admin_port,
            };
            let s = Serve::start(&c, &["--log-format", "json"]);
            std::mem::forget(c);
            s
        }
    })
    .await;
    let url = format!(
        "host=127.0.0.1 port={} user=agent_wasser password=wasser dbname=crm",
        cfg.port
    );
    let c = connect_url(&url).await;
    let get = || c.query_one("SELECT iban FROM stadtwerke.customers WHERE customer_no = 1001", &[]);
    assert_eq!(get().await.unwrap().get::<_, String>(0), "DE89 **** **** **** **30 00");
    let _ = c
        .simple_query("SELECT lower(iban) FROM stadtwerke.customers")
        .await
        .unwrap_err();
    set_iban_mask(&cfg.dir, "\"constant('[hidden]')\"");
    serve.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if get().await.unwrap().get::<_, String>(0) == "[hidden]" {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload: {}", serve.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = http_get(cfg.admin_port, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    for needle in [
        "unscharf_sessions_active 1",
        "unscharf_statements_total{decision=\"masked\",reason=\"\",purpose=\"billing_hotline\"}",
        "unscharf_statements_total{decision=\"refused\",reason=\"protected_column\",purpose=\"billing_hotline\"} 1",
        "unscharf_reloads_total{outcome=\"ok\"} 1",
        "unscharf_audit_events_dropped_total 0",
        "unscharf_proxy_latency_seconds_count",
    ] {
        assert!(body.contains(needle), "{needle} missing from /metrics:\n{body}");
    }
    let (status, body) = http_get(cfg.admin_port, "/healthz").await;
    assert!(
        status.contains("200") && body.contains("\"upstream\":\"ok\"") && body.contains("\"catalog\":\"ok\""),
        "{status} {body}"
    );
    // Logs are JSON lines carrying the session span, and no customer value.
    let log = serve.log();
    let refused = log
        .lines()
        .find(|l| l.contains("\"refused\""))
        .unwrap_or_else(|| panic!("{log}"));
    let v: serde_json::Value = serde_json::from_str(refused).unwrap();
    assert_eq!(v["span"]["user"], "agent_wasser");
    assert_eq!(v["span"]["purpose"], "billing_hotline");
    assert!(v["span"]["session"].as_u64().is_some(), "{refused}");
    assert_no_protected(&log, "logs");
    drop(c);
    drop(serve);
    drop(cfg);
}

#[tokio::test]
async fn sigterm_drains_statements_in_flight_then_closes_with_57p01() {
    let cfg = binary_config("limits:\n  shutdown_grace_secs: 2\n");
    let c_path = cfg.config.clone();
    let (dir, port, admin_port) = (cfg.dir.clone(), cfg.port, cfg.admin_port);
    let serve = blocking(move || {
        let c = BinaryConfig {
            dir,
            config: c_path,
            port,
            admin_port,
        };
        let s = Serve::start(&c, &[]);
        std::mem::forget(c);
        s
    })
    .await;
    let url = format!(
        "host=127.0.0.1 port={} user=tester password=tester dbname=crm",
        cfg.port
    );
    let busy = connect_url(&url).await;
    // The statement's shape analyzed, and the session's first-statement work done, beforehand: on
    // a loaded machine that took long enough for SIGTERM to come before the statement was in flight.
    busy.simple_query("SELECT pg_sleep(0)").await.unwrap();
    let raw = Raw::lab;
    let mut idle = raw(cfg.port).await;
    let mut stubborn = raw(cfg.port).await;
    stubborn.send(&crate::raw::query("SELECT pg_sleep(30)")).await;
    let slow = tokio::spawn(async move {
        let r = busy.simple_query("SELECT pg_sleep(1)").await;
        (r.is_ok(), busy)
    });
    // SIGTERM once both statements run on the server.
    let su = superuser().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let running: i64 = su
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query IN ('SELECT pg_sleep(1)', 'SELECT pg_sleep(30)')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if running == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the statements did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serve.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new sessions once draining.
    assert!(tokio_postgres::connect(&url, tokio_postgres::NoTls).await.is_err());
    // The idle session is closed with admin_shutdown.
    let f = idle.frame().await;
    assert_eq!(
        (f.tag, error_code(&f).as_str()),
        (b'E', "57P01"),
        "{}",
        error_message(&f)
    );
    assert!(idle.try_frame().await.is_none());
    // The statement in flight finishes within the grace period.
    let (ok, _busy) = slow.await.unwrap();
    assert!(ok, "the statement in flight was allowed to finish");
    // One still running when the grace period ends is closed with admin_shutdown too.
    let f = stubborn.frame().await;
    assert_eq!(
        (f.tag, error_code(&f).as_str()),
        (b'E', "57P01"),
        "{}",
        error_message(&f)
    );
    let mut serve = serve;
    let deadline = Instant::now() + Duration::from_secs(15);
    while serve.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "unscharf did not exit after draining");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn policy_test_files_run_through_the_same_decisions() {
    let p = proxy().await;
    let config = p.dir.join("unscharf.yaml").to_str().unwrap().to_owned();
    let tests = format!("{}/policies/tests", env!("CARGO_MANIFEST_DIR"));
    let c = config.clone();
    let (code, out, err) = blocking(move || unscharf(&["test", "--config", &c, &tests])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 failed"), "{out}");
    // Against the live catalog as well.
    let c = config.clone();
    let tests = format!("{}/policies/tests", env!("CARGO_MANIFEST_DIR"));
    let (code, out, _) = blocking(move || unscharf(&["test", "--config", &c, "--live", &tests])).await;
    assert_eq!(code, 0, "{out}");
    // Round 116: the demo's copy of the policies brings its tests (and the schema they name),
    // and one file can be run on its own.
    let c = config.clone();
    let (code, out, err) = blocking(move || unscharf(&["test", "--config", &c])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("zeitung.yaml") && out.contains("quality_review.yaml"),
        "{out}"
    );
    let c = config.clone();
    let one = p.dir.join("policies/tests/zeitung.yaml").to_str().unwrap().to_owned();
    let (code, out, err) = blocking(move || unscharf(&["test", "--config", &c, &one])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("zeitung.yaml") && !out.contains("quality_review.yaml"),
        "{out}"
    );
    // Several files, as a shell glob gives them (round 125).
    let c = config.clone();
    let (one, two) = (
        p.dir.join("policies/tests/zeitung.yaml").to_str().unwrap().to_owned(),
        p.dir
            .join("policies/tests/stadtwerke.yaml")
            .to_str()
            .unwrap()
            .to_owned(),
    );
    let (code, out, err) = blocking(move || unscharf(&["test", "--config", &c, &one, &two])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("zeitung.yaml") && out.contains("stadtwerke.yaml") && !out.contains("quality_review.yaml"),
        "{out}"
    );
    // A failing case shows expected and actual side by side, and exits 1.
    let dir = p.dir.join("mytests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("wrong.yaml"),
        format!(
            "schema: {}/sample/schema.sql\ncases:\n  - name: thinks iban is visible\n    user: agent_wasser\n    sql: SELECT iban FROM stadtwerke.customers\n    expect: allowed\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let d = dir.to_str().unwrap().to_owned();
    let (code, out, _) = blocking(move || unscharf(&["test", "--config", &config, &d])).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("FAIL") && out.contains("expected: allowed") && out.contains("actual:   masked; masked: iban"),
        "{out}"
    );
}

#[tokio::test]
async fn rotated_trail_files_chain_together() {
    let p = proxy_with(ProxyOptions {
        extra: "audit:\n  file: audit.jsonl\n  rotate_bytes: 1500\n".into(),
        ..Default::default()
    })
    .await;
    let c = p.connect("agent_wasser", "wasser").await;
    for _ in 0..8 {
        let _ = c
            .simple_query("SELECT lower(phone) FROM stadtwerke.customers")
            .await
            .unwrap_err();
    }
    p.audit().await;
    assert!(
        p.dir.join("audit.jsonl.1").exists() && p.dir.join("audit.jsonl.2").exists(),
        "the trail rotated"
    );
    let trail = p.audit_path().to_str().unwrap().to_owned();
    let t = trail.clone();
    let (code, out, _) = blocking(move || unscharf(&["audit", "verify", &t, "--json"])).await;
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["events"], 8);
    assert!(v["files"].as_array().unwrap().len() >= 3);
    // Deleting a rotated file breaks the chain, and verify says so.
    std::fs::remove_file(p.dir.join("audit.jsonl.1")).unwrap();
    let (code, out, _) = blocking(move || unscharf(&["audit", "verify", &trail])).await;
    assert_eq!(code, 1);
    assert!(out.contains("missing"), "{out}");
}

#[tokio::test]
async fn log_allowed_records_every_statement_without_values() {
    let p = proxy_with(ProxyOptions {
        extra: "audit:\n  file: audit.jsonl\n  log_allowed: true\n".into(),
        ..Default::default()
    })
    .await;
    let c = p.connect("agent_wasser", "wasser").await;
    c.simple_query("SELECT name FROM stadtwerke.customers WHERE customer_no = 1001")
        .await
        .unwrap();
    c.query(
        "SELECT phone FROM stadtwerke.customers WHERE phone = $1",
        &[&"+49 30 1234567"],
    )
    .await
    .unwrap();
    c.simple_query("SELECT lower(iban) FROM stadtwerke.customers")
        .await
        .unwrap_err();
    let events = p.audit().await;
    let seen: Vec<(&str, &str, Vec<String>)> = events
        .iter()
        .filter(|e| e.statement.contains("customers"))
        .map(|e| (e.decision.as_str(), e.reason.as_str(), e.campaigns.clone()))
        .collect();
    let sw = || vec!["stadtwerke".to_string()];
    assert_eq!(
        seen,
        vec![
            ("allowed", "allowed", sw()),
            ("masked", "masked", sw()),
            ("refused", "protected_column", sw()),
        ]
    );
    let text = std::fs::read_to_string(p.audit_path()).unwrap();
    // The extended protocol's Bind is recorded with its statement's SQL, literals and parameters as ?.
    assert!(
        text.contains("customer_no = ?") && text.contains("SELECT phone FROM stadtwerke.customers WHERE phone = ?"),
        "{text}"
    );
    assert_no_protected(&text, "the audit trail with log_allowed");
    // Bytes are counted both ways.
    let m = &p.shared.metrics;
    assert!(m.bytes_from_clients.load(Ordering::Relaxed) > 0 && m.bytes_to_clients.load(Ordering::Relaxed) > 0);
}
