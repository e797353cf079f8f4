//! A throwaway Postgres cluster from the local server binaries (initdb, pg_ctl), for `unscharf demo`
//! and the tests. Postgres refuses to run as root, so as root the server runs as the `postgres` user.
//! A watchdog process removes the cluster even when this process dies without cleaning up.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0} not found on PATH: install the PostgreSQL server binaries (Debian: apt-get install postgresql)")]
    Missing(&'static str),
    #[error("running as root needs the `postgres` OS user to run the server (Debian's postgresql package creates it)")]
    NoPostgresUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Options for a new cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Extra lines for pg_hba.conf, before the defaults.
    pub hba: Vec<String>,
    /// Extra postgresql.conf settings.
    pub settings: Vec<(String, String)>,
    /// Files to place in the data directory before the server starts (e.g. TLS certificate and key).
    pub files: Vec<(String, Vec<u8>)>,
    /// The port to listen on; a free one when None.
    pub port: Option<u16>,
}

pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    run_as: Option<(u32, u32)>,
    watchdog: Option<(Child, ChildStdin)>,
    stopped: bool,
}

fn which(bin: &'static str) -> Result<PathBuf, ClusterError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain(["/usr/lib/postgresql/15/bin".into(), "/usr/local/bin".into()]) {
        let candidate = dir.join(bin);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(ClusterError::Missing(bin))
}

fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"postgres")).then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a throwaway cluster). The
/// kernel hands a just-released port out again, so a port this process was given once is never
/// given again: clusters started side by side (the tests') would otherwise share one.
pub fn free_port() -> std::io::Result<u16> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..64 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free port left"))
}

/// A new, empty directory of this process's own under the temp dir. `create_dir` fails when the
/// name exists, so two clusters can never share one (one's cleanup would stop the other's server).
fn fresh_dir() -> std::io::Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("unscharf-pg-{}-{n}-{nanos:x}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

impl Cluster {
    fn command(&self, bin: &Path) -> Command {
        let mut c = Command::new(bin);
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid);
        }
        c.env_remove("PGDATA").env("LC_ALL", "C.UTF-8").env("LANG", "C.UTF-8");
        c
    }

    fn run(&self, what: &str, mut c: Command) -> Result<String, ClusterError> {
        let out = c.stdin(Stdio::null()).output()?;
        if !out.status.success() {
            return Err(ClusterError::Command {
                what: what.to_owned(),
                detail: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// initdb on a free port in a fresh temporary directory, configured and started.
    pub fn start(opts: ClusterOptions) -> Result<Cluster, ClusterError> {
        let initdb = which("initdb")?;
        which("pg_ctl")?;
        let run_as = if is_root() {
            Some(postgres_user().ok_or(ClusterError::NoPostgresUser)?)
        } else {
            None
        };
        let base = fresh_dir()?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&base, Some(uid), Some(gid))?;
        }
        let port = match opts.port {
            Some(p) => p,
            None => free_port()?,
        };
        let mut cluster = Cluster {
            dir: base.clone(),
            port,
            run_as,
            watchdog: None,
            stopped: false,
        };
        cluster.spawn_watchdog()?;
        let data = base.join("data");
        let mut c = cluster.command(&initdb);
        c.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]);
        cluster.run("initdb", c)?;
        let mut conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 700\nshared_buffers = 128MB\nlogging_collector = off\nssl = off\n",
            base.display()
        );
        for (k, v) in &opts.settings {
            conf.push_str(&format!("{k} = {v}\n"));
        }
        append(&data.join("postgresql.conf"), &conf)?;
        let mut hba = String::new();
        for l in &opts.hba {
            hba.push_str(l);
            hba.push('\n');
        }
        hba.push_str("local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all unscharf 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n");
        std::fs::write(data.join("pg_hba.conf"), hba)?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(data.join("pg_hba.conf"), Some(uid), Some(gid))?;
        }
        for (name, bytes) in &opts.files {
            use std::os::unix::fs::PermissionsExt;
            let p = data.join(name);
            std::fs::write(&p, bytes)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            if let Some((uid, gid)) = run_as {
                std::os::unix::fs::chown(&p, Some(uid), Some(gid))?;
            }
        }
        let mut tries = 0;
        while let Err(e) = cluster.pg_ctl_start() {
            // A chosen port can be taken between its choice and the server's bind when clusters
            // start side by side (the tests'): try again on another one.
            if opts.port.is_some() || tries == 2 {
                return Err(e);
            }
            tries += 1;
            cluster.port = free_port()?;
            append(&data.join("postgresql.conf"), &format!("port = {}\n", cluster.port))?;
        }
        Ok(cluster)
    }

    fn spawn_watchdog(&mut self) -> Result<(), ClusterError> {
        let pg_ctl = which("pg_ctl")?;
        let data = self.dir.join("data");
        let stop = match self.run_as {
            Some(_) => format!(
                "runuser -u postgres -- '{}' -D '{}' stop -m immediate",
                pg_ctl.display(),
                data.display()
            ),
            None => format!("'{}' -D '{}' stop -m immediate", pg_ctl.display(), data.display()),
        };
        let script = format!("read _x; {stop} >/dev/null 2>&1; rm -rf '{}'", self.dir.display());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("watchdog stdin"))?;
        self.watchdog = Some((child, stdin));
        Ok(())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn pg_ctl_start(&self) -> Result<(), ClusterError> {
        let mut c = self.command(&which("pg_ctl")?);
        c.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "start"]);
        self.run("pg_ctl start", c).map(|_| ())
    }

    /// Starts the server again after `kill9` or `stop_server`; retries while crashed backends let go
    /// of shared memory.
    pub fn start_server(&self) -> Result<(), ClusterError> {
        let mut last = None;
        for _ in 0..10 {
            match self.pg_ctl_start() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(last.unwrap_or(ClusterError::Missing("pg_ctl")))
    }

    pub fn stop_server(&self) -> Result<(), ClusterError> {
        let mut c = self.command(&which("pg_ctl")?);
        c.arg("-D").arg(self.data_dir()).args(["-w", "-m", "fast", "stop"]);
        self.run("pg_ctl stop", c).map(|_| ())
    }

    /// Kills the postmaster and its backends with SIGKILL, as a crashed server disappears.
    pub fn kill9(&self) -> Result<(), ClusterError> {
        let pid_file = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))?;
        let pid = pid_file.lines().next().unwrap_or("").trim().to_owned();
        let children = Command::new("pgrep").args(["-P", &pid]).output()?;
        let mut pids = vec![pid];
        pids.extend(
            String::from_utf8_lossy(&children.stdout)
                .split_whitespace()
                .map(str::to_owned),
        );
        Command::new("kill").arg("-9").args(&pids).status()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// A libpq-style connection string for the superuser.
    pub fn superuser_url(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={db}", self.port)
    }

    /// Creates database `crm` with the sample schema, data and roles.
    pub async fn load_sample(&self) -> Result<(), ClusterError> {
        let err = |what: &str| {
            let what = what.to_owned();
            move |e: tokio_postgres::Error| ClusterError::Command {
                what: what.clone(),
                detail: e
                    .as_db_error()
                    .map(|d| d.message().to_owned())
                    .unwrap_or_else(|| e.to_string()),
            }
        };
        let (client, conn) = tokio_postgres::connect(&self.superuser_url("postgres"), tokio_postgres::NoTls)
            .await
            .map_err(err("connect"))?;
        let h = tokio::spawn(conn);
        client
            .batch_execute("CREATE DATABASE crm")
            .await
            .map_err(err("create database"))?;
        drop(client);
        let _ = h.await;
        let (client, conn) = tokio_postgres::connect(&self.superuser_url("crm"), tokio_postgres::NoTls)
            .await
            .map_err(err("connect"))?;
        tokio::spawn(conn);
        client
            .batch_execute(include_str!("../sample/schema.sql"))
            .await
            .map_err(err("sample/schema.sql"))?;
        client
            .batch_execute(include_str!("../sample/data.sql"))
            .await
            .map_err(err("sample/data.sql"))?;
        client
            .batch_execute(include_str!("../sample/roles.sql"))
            .await
            .map_err(err("sample/roles.sql"))?;
        // The script's DROP … IF EXISTS notices "does not exist, skipping" on a new cluster, which
        // read in the demo's log as if the trigger were missing (round 116).
        client
            .batch_execute("SET client_min_messages = warning")
            .await
            .map_err(err("client_min_messages"))?;
        client
            .batch_execute(include_str!("../deploy/catalog_watch.sql"))
            .await
            .map_err(err("deploy/catalog_watch.sql"))?;
        Ok(())
    }

    /// Stops the server and removes the directory.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Ok(pg_ctl) = which("pg_ctl") {
            let mut c = self.command(&pg_ctl);
            c.arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = c.status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(text.as_bytes())
}
