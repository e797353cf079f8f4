//! `unscharf demo`: a throwaway Postgres with the sample call-center data, the proxy on
//! 127.0.0.1:6432 with the sample policies, and what to try. Ctrl-C removes everything.

use std::path::{Path, PathBuf};

use crate::cluster::{Cluster, ClusterOptions};
use crate::config::Config;

/// The sample policies, embedded so the demo runs from any directory.
pub const SAMPLE_POLICIES: &[(&str, &str)] = &[
    ("stadtwerke.yaml", include_str!("../policies/stadtwerke.yaml")),
    ("zeitung.yaml", include_str!("../policies/zeitung.yaml")),
    ("shared.yaml", include_str!("../policies/shared.yaml")),
];

/// The sample policies' test files, and the schema they name (`../../sample/schema.sql`), so that
/// `unscharf test --config DEMO/unscharf.yaml` runs them against the demo's copy (round 116).
const SAMPLE_TESTS: &[(&str, &str)] = &[
    ("stadtwerke.yaml", include_str!("../policies/tests/stadtwerke.yaml")),
    ("zeitung.yaml", include_str!("../policies/tests/zeitung.yaml")),
    (
        "quality_review.yaml",
        include_str!("../policies/tests/quality_review.yaml"),
    ),
];

/// Writes a demo/test configuration for `cluster` into `dir` and returns its path.
pub fn write_config(dir: &Path, upstream_port: u16, listen: &str, extra: &str) -> std::io::Result<PathBuf> {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    for (name, text) in SAMPLE_POLICIES {
        std::fs::write(policies.join(name), text)?;
    }
    std::fs::create_dir_all(policies.join("tests"))?;
    for (name, text) in SAMPLE_TESTS {
        std::fs::write(policies.join("tests").join(name), text)?;
    }
    std::fs::create_dir_all(dir.join("sample"))?;
    std::fs::write(dir.join("sample/schema.sql"), include_str!("../sample/schema.sql"))?;
    let mut key = [0u8; 16];
    let _ = getrandom::fill(&mut key);
    std::fs::write(dir.join("pseudonym.key"), hex::encode(key))?;
    // `extra` may bring its own audit section (tests do).
    let audit = if extra.lines().any(|l| l.starts_with("audit:")) {
        ""
    } else {
        "audit:\n  file: audit.jsonl\n"
    };
    let config = format!(
        "listen: {listen}\nupstream:\n  host: 127.0.0.1\n  port: {upstream_port}\n  database: crm\ncatalog:\n  user: unscharf\npolicies: policies/\n{audit}pseudonym_key_file: pseudonym.key\n{extra}"
    );
    let path = dir.join("unscharf.yaml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// pg_hba lines for demo and tests: the catalog role connects without a password.
pub fn demo_hba() -> Vec<String> {
    vec!["host all unscharf 127.0.0.1/32 trust".to_owned()]
}

pub struct Demo {
    pub cluster: Cluster,
    pub config: Config,
    pub dir: PathBuf,
}

/// Starts the cluster, loads the sample data and writes the proxy's config.
pub async fn prepare(listen: &str) -> anyhow_free::Result<Demo> {
    let cluster = Cluster::start(ClusterOptions {
        hba: demo_hba(),
        ..Default::default()
    })?;
    cluster.load_sample().await?;
    let dir = cluster.dir.join("proxy");
    std::fs::create_dir_all(&dir)?;
    let path = write_config(&dir, cluster.port, listen, "")?;
    let config = Config::load(&path)?;
    Ok(Demo { cluster, config, dir })
}

/// Plain error boxing for the demo; the binary's main wraps it in anyhow.
pub mod anyhow_free {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

pub fn banner(listen: &str, demo: &Demo) -> String {
    let (host, port) = listen.rsplit_once(':').unwrap_or(("127.0.0.1", "6432"));
    let conn = |user: &str, pw: &str| format!("psql \"host={host} port={port} dbname=crm user={user} password={pw}\"");
    format!(
        r#"
unscharf demo is running.
  proxy:     {listen}  (policies: {policies})
  postgres:  127.0.0.1:{pg} (throwaway cluster in {dir}; removed on Ctrl-C)
  audit:     {audit}

Connect as one of the sample agents:
  {w}    # billing_hotline (Stadtwerke)
  {z}   # subscription_sales (Tageszeitung)
  {q}             # quality_review (both campaigns' tickets/subscriptions)

Try, as agent_wasser:
  SELECT * FROM stadtwerke.customers;                         -- phone/email/IBAN masked, birth_date and notes dropped
  SELECT name FROM stadtwerke.customers WHERE phone = '+49 30 1234567';   -- exact lookup by the caller's number: allowed
  SELECT name FROM stadtwerke.customers WHERE phone LIKE '+49 30%';       -- refused: protected_column
  SELECT lower(iban) FROM stadtwerke.customers;               -- refused: masked data cannot be computed on
  SELECT * FROM zeitung.leads;                                -- refused: outside_purpose
  INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (1001, 'Rückruf');
As qa_lead:
  SELECT t.subject, s.product FROM stadtwerke.tickets t JOIN zeitung.subscriptions s USING (agent);  -- refused: cross_campaign

For the DBA and security-team walkthroughs in the README:
  export DEMO={dir_proxy}    # config, policies and audit trail of this demo
  kill -HUP {pid}            # reloads $DEMO/unscharf.yaml and $DEMO/policies after an edit
Every refusal lands in the audit trail; verify it with:
  {exe} audit verify $DEMO/audit.jsonl
Press Ctrl-C to stop and remove everything.
"#,
        // The binary that runs the demo, however it was started (cargo run, or installed).
        exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "unscharf".into()),
        dir_proxy = demo.dir.display(),
        pid = std::process::id(),
        policies = demo.dir.join("policies").display(),
        pg = demo.cluster.port,
        dir = demo.cluster.dir.display(),
        audit = demo.dir.join("audit.jsonl").display(),
        w = conn("agent_wasser", "wasser"),
        z = conn("agent_zeitung", "zeitung"),
        q = conn("qa_lead", "qa"),
    )
}
