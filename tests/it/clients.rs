//! Real clients as separate processes: psql, psycopg 3, asyncpg, pgjdbc, pgbench.

use crate::harness::*;

#[tokio::test]
async fn psql_output_matches_direct() {
    let p = proxy().await;
    let script = "SELECT * FROM lab.items WHERE id <= 3 ORDER BY id;
SELECT 1; SELECT 1 FROM lab.items WHERE id = (SELECT id FROM lab.items); SELECT 2;
\\copy (SELECT id, label FROM lab.items WHERE id <= 4 ORDER BY id) TO STDOUT
\\copy (SELECT id, label, price FROM lab.items WHERE id <= 4 ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)
BEGIN;
INSERT INTO lab.inbox (body, n) VALUES ('psql', 1) RETURNING body, n;
ROLLBACK;
BEGIN;
SET search_path = lab, public;
COPY lab.inbox (body, n) FROM STDIN;
psql-copy	7
\\.
SELECT body, n FROM lab.inbox WHERE body = 'psql-copy';
ROLLBACK;
\\d lab.items
\\dt lab.*
";
    let run = |port: u16| {
        let mut child = tool("psql", "postgresql-client")
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "tester",
                "-d",
                "crm",
                "-f",
                "-",
            ])
            .env("PGPASSWORD", "tester")
            .env("PGCLIENTENCODING", "UTF8")
            .env("PGSSLMODE", "disable")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (d_out, d_err) = tokio::task::spawn_blocking(move || run(db().port())).await.unwrap();
    let port = p.addr.port();
    let (p_out, p_err) = tokio::task::spawn_blocking(move || run(port)).await.unwrap();
    assert!(
        d_out.contains("item 1") && d_out.contains("Table \"lab.items\""),
        "{d_out}\n{d_err}"
    );
    assert_eq!(p_out, d_out);
    assert_eq!(p_err, d_err);
}

#[tokio::test]
async fn psycopg_results_match_direct() {
    let p = proxy().await;
    let py = python();
    let script = format!("{}/tests/py/lab_queries.py", env!("CARGO_MANIFEST_DIR"));
    let run = |url: String| {
        let py = py.clone();
        let script = script.clone();
        async move {
            let out = tokio::process::Command::new(py)
                .arg(script)
                .arg(url)
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "psycopg script failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let direct = run(format!(
        "host=127.0.0.1 port={} dbname=crm user=tester password=tester sslmode=disable",
        db().port()
    ))
    .await;
    let via = run(format!(
        "host=127.0.0.1 port={} dbname=crm user=tester password=tester sslmode=disable",
        p.addr.port()
    ))
    .await;
    assert!(
        direct.contains("item 1") && direct.contains("still usable") && direct.contains("21000"),
        "{direct}"
    );
    assert_eq!(via, direct);
}

#[tokio::test]
async fn pgbench_short_runs_have_no_failures() {
    let p = proxy().await;
    for mode in ["simple", "extended", "prepared"] {
        let port = p.addr.port().to_string();
        let out = tokio::task::spawn_blocking(move || {
            tool("pgbench", "postgresql-client")
                .args([
                    "-n",
                    "-S",
                    "-M",
                    mode,
                    "-c",
                    "4",
                    "-j",
                    "2",
                    "-T",
                    "2",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "bench",
                    "crm",
                ])
                .env("PGPASSWORD", "bench")
                .env("PGSSLMODE", "disable")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "pgbench -M {mode}: {stdout}\n{stderr}");
        assert!(stdout.contains("number of failed transactions: 0"), "{stdout}");
        let processed: u64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
            .and_then(|n| n.split('/').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        assert!(processed > 100, "pgbench -M {mode} processed {processed}: {stdout}");
    }
    // pgbench's standard TPC-B-like script writes too: it runs, within the bench purpose's grants.
    let port = p.addr.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        tool("pgbench", "postgresql-client")
            .args([
                "-n",
                "-M",
                "prepared",
                "-c",
                "2",
                "-T",
                "2",
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
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("number of failed transactions: 0"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// asyncpg prepares every statement, reads every result in binary, sends `client_encoding` quoted
/// (`'utf-8'`) at startup, and reads portals in batches: round 94 found it could not connect.
#[tokio::test]
async fn asyncpg_runs_a_billing_hotline_workflow() {
    let p = proxy().await;
    let script = format!("{}/tests/py/asyncpg_crm.py", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(python())
        .arg(script)
        .arg("127.0.0.1")
        .arg(p.addr.port().to_string())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "BY_NO {'customer_no': 1001, 'name': 'Anna Schmidt', 'phone': '+** ** ****567'",
        "BY_PHONE Anna Schmidt",
        "TICKET closed",
        "CURSOR {'customer_no': 1001, 'phone': '+** ** ****567'",
        "READINGS",
        "ERROR 42501",
        "PING 1",
        "DONE",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in\n{stdout}");
    }
    assert!(!stdout.contains("UNEXPECTED SUCCESS"), "{stdout}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ALL ")).collect();
    assert_eq!(rows.len(), 5, "{stdout}");
    for r in rows {
        assert!(
            !r.contains("birth_date") && !r.contains("notes"),
            "a dropped column came out: {r}"
        );
    }
    assert_no_protected(&format!("{stdout}{stderr}"), "asyncpg");
}

/// pgjdbc with its defaults sends `DateStyle=ISO` and `extra_float_digits=2` at startup, then `SET
/// extra_float_digits = 3` (round 234 BS1, BS2: every masked date of its sessions was refused, and
/// under a database's non-ISO DateStyle too), and reads results in binary once a statement is
/// prepared on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgjdbc_reads_masked_dates_as_a_crm_would() {
    let jar = "/usr/share/java/postgresql.jar";
    assert!(
        std::path::Path::new(jar).is_file(),
        "pgjdbc is needed for this test: install libpostgresql-jdbc-java"
    );
    let (cluster, _su) = crate::dba::own_cluster("ALTER DATABASE crm SET DateStyle = 'SQL, DMY';").await;
    let p = crate::dba::proxy_on(&cluster, |t| {
        t.replacen("birth_date: drop", "birth_date: { mask: first(4) }", 1)
    })
    .await;
    let url = format!("jdbc:postgresql://127.0.0.1:{}/crm?sslmode=disable", p.addr.port());
    let out = tool("java", "default-jdk-headless")
        .args([
            "-cp",
            jar,
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/java/JdbcCrm.java"),
        ])
        .args([url.as_str(), "agent_wasser", "wasser"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("SETTINGS ISO, MDY|3"),
        "premise: pgjdbc's settings\n{stdout}"
    );
    let star = stdout.lines().find(|l| l.starts_with("STAR ")).unwrap_or_default();
    assert!(
        star.contains("|1984******") && star.contains("+** ** ****567"),
        "{stdout}"
    );
    for i in 0..7 {
        assert!(
            stdout.contains(&format!("PREPARED{i} 1001|1984******|+** ** ****567")),
            "execution {i}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("ERROR 42501") && !stdout.contains("UNEXPECTED"),
        "{stdout}"
    );
    assert!(stdout.contains("AFTER ") && stdout.contains("DONE"), "{stdout}");
    assert_no_protected(&format!("{stdout}{stderr}"), "pgjdbc");
    assert!(!stdout.contains("07-02") && !stdout.contains("02/07"), "{stdout}");
}
