//! The integration-test harness: one throwaway Postgres cluster per test binary with the sample data,
//! proxies started in-process on port 0 with their own config, and connection helpers.

#![allow(dead_code)] // helpers shared by test modules; not every binary uses every one

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use unscharf::cluster::{Cluster, ClusterOptions};
use unscharf::config::Config;
use unscharf::server::Shared;

pub struct Db {
    pub cluster: Cluster,
}

impl Db {
    pub fn port(&self) -> u16 {
        self.cluster.port
    }
}

static DB: OnceLock<Db> = OnceLock::new();

/// pg_hba lines for the test roles, one per authentication method.
pub fn test_hba() -> Vec<String> {
    let mut hba = unscharf::demo::demo_hba();
    hba.extend(
        [
            "host all u_trust 127.0.0.1/32 trust",
            "host all u_password 127.0.0.1/32 password",
            "host all u_md5 127.0.0.1/32 md5",
            "host all u_scram 127.0.0.1/32 scram-sha-256",
        ]
        .map(String::from),
    );
    hba
}

/// Starts and loads a cluster (sample data, lab objects, pgbench tables). Runs on its own thread,
/// so it can be called from inside a test's runtime.
pub fn new_cluster() -> Cluster {
    new_cluster_with(ClusterOptions::default())
}

pub fn new_cluster_with(opts: ClusterOptions) -> Cluster {
    std::thread::spawn(move || new_cluster_inner(opts))
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn new_cluster_inner(mut opts: ClusterOptions) -> Cluster {
    let mut hba = test_hba();
    hba.append(&mut opts.hba);
    let cluster =
        Cluster::start(ClusterOptions { hba, ..opts }).unwrap_or_else(|e| panic!("cannot start the test cluster: {e}"));
    let url = cluster.superuser_url("crm");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        cluster
            .load_sample()
            .await
            .unwrap_or_else(|e| panic!("loading the sample data: {e}"));
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c.batch_execute(include_str!("../fixtures/lab.sql")).await.unwrap();
    });
    let pgbench = std::process::Command::new("pgbench")
        .args([
            "-i",
            "-s",
            "1",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            "postgres",
            "crm",
        ])
        .output()
        .unwrap_or_else(|e| panic!("pgbench is needed for the tests (Debian: apt-get install postgresql-client): {e}"));
    assert!(
        pgbench.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&pgbench.stderr)
    );
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c.batch_execute("GRANT SELECT, UPDATE ON pgbench_accounts, pgbench_branches, pgbench_tellers TO bench; GRANT INSERT ON pgbench_history TO bench; GRANT USAGE ON SCHEMA public TO bench; ANALYZE;").await.unwrap();
    });
    cluster
}

/// The cluster shared by every test of this binary.
pub fn db() -> &'static Db {
    DB.get_or_init(|| Db { cluster: new_cluster() })
}

static PROXY_SEQ: AtomicU32 = AtomicU32::new(0);

/// An in-process proxy with its own config directory, stopped on drop.
pub struct Proxy {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Options for a test proxy.
#[derive(Default, Clone)]
pub struct ProxyOptions {
    /// Extra YAML appended to the config.
    pub extra: String,
    /// Upstream port (default: the shared cluster).
    pub upstream_port: Option<u16>,
    /// Extra policy files (name, text).
    pub policies: Vec<(String, String)>,
    /// Files placed beside the config before the proxy starts (name, contents).
    pub files: Vec<(String, String)>,
    /// Hold the migration fence. Off by default: every test's DDL in the shared cluster would close
    /// it and end other tests' sessions with a statement under way (tests/it/fence.rs has its own
    /// cluster).
    pub fence: bool,
}

pub async fn proxy() -> Proxy {
    proxy_with(ProxyOptions::default()).await
}

pub async fn proxy_with(opts: ProxyOptions) -> Proxy {
    let port = opts.upstream_port.unwrap_or_else(|| db().port());
    let dir = std::env::temp_dir().join(format!(
        "unscharf-test-{}-{}",
        std::process::id(),
        PROXY_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = unscharf::demo::write_config(&dir, port, "127.0.0.1:0", &opts.extra).unwrap();
    if !opts.fence {
        without_fence(&path);
    }
    let policies = dir.join("policies");
    std::fs::write(policies.join("lab.yaml"), include_str!("../fixtures/policies/lab.yaml")).unwrap();
    std::fs::write(
        policies.join("bench.yaml"),
        include_str!("../../bench/policies/bench.yaml"),
    )
    .unwrap();
    for (name, text) in &opts.policies {
        std::fs::write(policies.join(name), text).unwrap();
    }
    for (name, text) in &opts.files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let config = Config::load(&path).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shared, _writer) = unscharf::server::prepare(config)
        .await
        .unwrap_or_else(|e| panic!("proxy: {e}"));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(unscharf::server::run_until(shared.clone(), listener, rx));
    Proxy {
        addr,
        dir,
        shared,
        stop,
        task,
    }
}

impl Proxy {
    pub fn url(&self, user: &str, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname=crm",
            self.addr.port()
        )
    }

    pub async fn connect(&self, user: &str, password: &str) -> tokio_postgres::Client {
        connect_url(&self.url(user, password)).await
    }

    pub async fn try_connect(
        &self,
        url_extra: &str,
        user: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let url = format!("{} {url_extra}", self.url(user, password));
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(c)
    }

    /// The audit trail so far (waits briefly for the writer).
    /// The trail's events, once it has stopped growing: the writer appends on a task of its own,
    /// which a loaded machine runs late (a fixed wait of 150 ms saw two of four records).
    pub async fn audit(&self) -> Vec<unscharf::audit::Event> {
        let read = || std::fs::read_to_string(self.dir.join("audit.jsonl")).unwrap_or_default();
        let mut text: Option<String> = None;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let now = read();
            if text.as_ref() == Some(&now) {
                break;
            }
            text = Some(now);
        }
        let text = text.unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
        remove_dir_settled(&self.dir);
    }
}

/// Removes a proxy's directory. Its audit writer may still be writing the trail's anchor (a
/// temporary file renamed into place) for the last sessions, which makes one removal fail with
/// the directory not empty; a few retries outlast it.
fn remove_dir_settled(dir: &Path) {
    for _ in 0..40 {
        if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

pub async fn connect_url(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e} {:?}", e.as_db_error().map(|d| d.message())));
    tokio::spawn(conn);
    c
}

/// A direct connection to the cluster, bypassing the proxy.
pub async fn direct(user: &str, password: &str) -> tokio_postgres::Client {
    connect_url(&format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname=crm",
        db().port()
    ))
    .await
}

pub async fn superuser() -> tokio_postgres::Client {
    connect_url(&db().cluster.superuser_url("crm")).await
}

/// Every sample value that must never reach a client of billing_hotline unmasked.
pub const PROTECTED: &[&str] = &[
    "+49 30 1234567",
    "1234567",
    "7654321",
    "5550123",
    "9988776",
    "anna.schmidt",
    "bernd.mueller",
    "cem.yilmaz",
    "doris.becker",
    "3704 0044 0532",
    "5001 0517 0648",
    "2005 0550 1234",
    "3705 0198 0001",
    "DE89370400440532013000",
    "1984-07-02",
    "1961-11-23",
    "1990-02-14",
    "1947-05-30",
    "Hörgerät",
    "Zahlt immer",
    "Ratenzahlung",
];

/// Asserts that none of the protected sample values occur in `text`.
pub fn assert_no_protected(text: &str, context: &str) {
    // Case-insensitive: a value upper-cased in a message has leaked all the same.
    let lower = text.to_lowercase();
    for v in PROTECTED {
        assert!(
            !lower.contains(&v.to_lowercase()),
            "protected value {v:?} leaked in {context}:\n{text}"
        );
    }
}

/// A command from PATH, or a failure saying what to install.
pub fn tool(name: &str, package: &str) -> std::process::Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(found, "{name} is needed for this test: install {package}");
    std::process::Command::new(name)
}

/// The project-local Python with psycopg 3 and asyncpg, created on first use (`target/pyenv`).
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let venv = root.join("target/pyenv");
        let py = venv.join("bin/python");
        let ready = |py: &Path| {
            std::process::Command::new(py)
                .args(["-c", "import psycopg, asyncpg"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !ready(&py) {
            let lock = root.join("target/pyenv.lock");
            let _ = std::fs::create_dir_all(root.join("target"));
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "exec 9>'{lock}'; flock 9; [ -x '{py}' ] || python3 -m venv '{venv}' && '{py}' -c 'import psycopg, asyncpg' 2>/dev/null || '{venv}/bin/pip' install -q 'psycopg[binary]>=3.1' 'asyncpg>=0.29'",
                    lock = lock.display(),
                    py = py.display(),
                    venv = venv.display()
                ))
                .status()
                .expect("python3 is needed for the psycopg and asyncpg tests: install python3 and python3-venv");
            assert!(status.success() && ready(&py), "could not install psycopg and asyncpg into target/pyenv (needs python3-venv and PyPI access)");
        }
        py
    })
    .clone()
}

/// Turns the migration fence off in a config `write_config` wrote (see `ProxyOptions::fence`).
fn without_fence(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.replace(
        "catalog:\n  user: unscharf\n",
        "catalog:\n  user: unscharf\n  migration_fence: false\n",
    );
    assert!(
        text.contains("migration_fence"),
        "write_config's catalog section changed"
    );
    std::fs::write(path, text).unwrap();
}

/// A config directory for running the `unscharf` binary as a process on a free port.
pub struct BinaryConfig {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub port: u16,
    pub admin_port: u16,
}

impl Drop for BinaryConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn binary_config(extra: &str) -> BinaryConfig {
    let port = unscharf::cluster::free_port().unwrap();
    let admin_port = unscharf::cluster::free_port().unwrap();
    let dir = std::env::temp_dir().join(format!(
        "unscharf-bin-{}-{}",
        std::process::id(),
        PROXY_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let extra = format!("admin:\n  listen: 127.0.0.1:{admin_port}\n{extra}");
    let config = unscharf::demo::write_config(&dir, db().port(), &format!("127.0.0.1:{port}"), &extra).unwrap();
    without_fence(&config);
    std::fs::write(
        dir.join("policies/lab.yaml"),
        include_str!("../fixtures/policies/lab.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("policies/bench.yaml"),
        include_str!("../../bench/policies/bench.yaml"),
    )
    .unwrap();
    BinaryConfig {
        dir,
        config,
        port,
        admin_port,
    }
}

/// A running `unscharf serve` child process, killed on drop.
pub struct Serve {
    pub child: std::process::Child,
    pub stderr: PathBuf,
}

impl Serve {
    pub fn start(cfg: &BinaryConfig, args: &[&str]) -> Serve {
        let stderr = cfg.dir.join("stderr.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_unscharf"))
            .args(args)
            .args(["serve", "--config", cfg.config.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", cfg.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "unscharf did not start: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Serve { child, stderr }
    }

    pub fn signal(&self, sig: &str) {
        std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP GET; returns status line and body.
pub async fn http_get(port: u16, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.lines().next().unwrap_or("").to_owned(), body.to_owned())
}
