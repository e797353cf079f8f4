//! The unscharf.yaml config file: structure, defaults, validation, path resolution and secrets from the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::yaml::{from_yaml, YamlError};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("{}: {key}: {problem}", file.display())]
    Invalid {
        file: PathBuf,
        key: &'static str,
        problem: String,
    },
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the proxy listens on for CRM clients.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The Postgres server behind the proxy.
    pub upstream: Upstream,
    /// The proxy's own read-only metadata connection.
    #[serde(default)]
    pub catalog: Catalog,
    /// Directory of policy YAML files; relative paths are relative to the config file.
    #[serde(default = "default_policies")]
    pub policies: PathBuf,
    /// Where refusals (and optionally every statement) are recorded.
    #[serde(default)]
    pub audit: Audit,
    /// Client-side TLS; omitted means plaintext only.
    #[serde(default)]
    pub tls: Option<ClientTls>,
    /// The admin HTTP endpoint with /metrics and /healthz; omitted means none.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Name of the environment variable holding the master secret of the pseudonym mask.
    #[serde(default = "default_pseudonym_env")]
    pub pseudonym_key_env: String,
    /// A file holding that secret (e.g. a mounted Kubernetes secret); used when the variable is unset.
    #[serde(default)]
    pub pseudonym_key_file: Option<PathBuf>,
    /// Resource limits that keep one session from hurting the others.
    #[serde(default)]
    pub limits: Limits,
    /// Directory the config file lives in; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The config file itself, for error messages.
    #[serde(skip)]
    pub file: PathBuf,
}

/// The upstream Postgres server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Host name or address of the Postgres server.
    pub host: String,
    /// Port of the Postgres server.
    #[serde(default = "default_pg_port")]
    pub port: u16,
    /// Database used when the client names none (and by the catalog connection).
    #[serde(default = "default_database")]
    pub database: String,
    /// TLS towards the upstream: disable, require or verify-full.
    #[serde(default)]
    pub tls: UpstreamTls,
    /// CA bundle for verify-full.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

/// TLS mode towards the upstream, named like libpq's sslmode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTls {
    /// Plain TCP.
    #[default]
    Disable,
    /// TLS without certificate verification.
    Require,
    /// TLS with the server certificate verified against `ca` and the host name.
    VerifyFull,
}

/// The proxy's metadata connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Login role of the metadata connection; it needs no access to customer rows.
    #[serde(default = "default_catalog_user")]
    pub user: String,
    /// Environment variable holding that role's password (secrets never live in the file).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Hold the migration fence of `deploy/catalog_watch.sql`: forward nothing while a migration
    /// commits, and end a session whose statement's answer began after it. Turn it off only where
    /// migrations run while agents are logged out.
    #[serde(default = "default_migration_fence")]
    pub migration_fence: bool,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            user: default_catalog_user(),
            password_env: None,
            migration_fence: true,
        }
    }
}

/// The audit trail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// JSON-lines file; "-" writes to stdout.
    #[serde(default = "default_audit_file")]
    pub file: PathBuf,
    /// true: record every statement, not only refusals.
    #[serde(default)]
    pub log_allowed: bool,
    /// What to do when events can no longer be written: refuse statements (default) or continue.
    #[serde(default)]
    pub on_write_failure: OnWriteFailure,
    /// Capacity of the queue between sessions and the writer; events beyond it are dropped and counted.
    #[serde(default = "default_audit_queue")]
    pub queue: usize,
    /// Rotate the file once it reaches this many bytes (0 = never).
    #[serde(default)]
    pub rotate_bytes: u64,
    /// Optional second sink: a table in a Postgres database.
    #[serde(default)]
    pub database: Option<AuditDatabase>,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            file: default_audit_file(),
            log_allowed: false,
            on_write_failure: OnWriteFailure::default(),
            queue: default_audit_queue(),
            rotate_bytes: 0,
            database: None,
        }
    }
}

/// Policy for a broken audit sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnWriteFailure {
    /// Refuse new statements while events cannot be written: a gap in the trail is a compliance failure.
    #[default]
    Refuse,
    /// Keep serving and count the lost events.
    Continue,
}

/// The audit table sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditDatabase {
    /// libpq-style connection string, e.g. "host=127.0.0.1 port=5432 dbname=audit user=unscharf_audit".
    pub url: String,
    /// Environment variable with the password, if the connection needs one.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Table the events go to (created if missing).
    #[serde(default = "default_audit_table")]
    pub table: String,
}

/// Client-side TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// PEM certificate chain presented to clients.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// true: refuse clients that do not use TLS.
    #[serde(default)]
    pub require: bool,
}

/// The admin endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Address of the HTTP listener.
    pub listen: String,
}

/// Resource limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Client sessions served at once; further connections get a FATAL "too many clients".
    #[serde(default = "default_max_sessions")]
    pub max_client_sessions: usize,
    /// Largest message accepted from a client or the upstream, in bytes.
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: usize,
    /// Seconds a client may take from connecting to finishing authentication.
    #[serde(default = "default_startup_timeout")]
    pub startup_timeout_secs: u64,
    /// Seconds of inactivity (outside a running statement) before a session is closed; 0 = never.
    #[serde(default)]
    pub idle_timeout_secs: u64,
    /// Requests a client may have in flight before the proxy stops reading from it.
    #[serde(default = "default_max_pipeline")]
    pub max_pipeline: usize,
    /// Seconds statements in flight may run after SIGTERM before their sessions are closed.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// Statements per minute each login may run that look up a protected column (`lookup: true`);
    /// 0 = unlimited. A lookup finds a caller; a stream of them would test guesses.
    #[serde(default = "default_lookups_per_minute")]
    pub lookups_per_minute: u32,
    /// Threads that run client sessions, each with its own event loop; 0 = one per CPU.
    #[serde(default)]
    pub session_threads: usize,
    /// Longest statement text (a Query or Parse) the proxy analyzes; longer ones are refused.
    /// Analysis runs on the session's thread, which serves other sessions too.
    #[serde(default = "default_max_statement")]
    pub max_statement_bytes: usize,
    /// Bytes all sessions together may hold in buffers grown for large messages (over 64 KiB),
    /// from clients and the server; a session whose next large message would pass it is closed.
    #[serde(default = "default_max_buffered")]
    pub max_buffered_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_client_sessions: default_max_sessions(),
            max_frame_bytes: default_max_frame(),
            startup_timeout_secs: default_startup_timeout(),
            idle_timeout_secs: 0,
            max_pipeline: default_max_pipeline(),
            shutdown_grace_secs: default_shutdown_grace(),
            lookups_per_minute: default_lookups_per_minute(),
            session_threads: 0,
            max_statement_bytes: default_max_statement(),
            max_buffered_bytes: default_max_buffered(),
        }
    }
}

impl Limits {
    pub fn startup_timeout(&self) -> Duration {
        Duration::from_secs(self.startup_timeout_secs)
    }

    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_secs > 0).then(|| Duration::from_secs(self.idle_timeout_secs))
    }
}

fn default_max_statement() -> usize {
    1 << 20
}
fn default_listen() -> String {
    "127.0.0.1:6432".into()
}
fn default_policies() -> PathBuf {
    "policies".into()
}
fn default_pseudonym_env() -> String {
    "UNSCHARF_PSEUDONYM_KEY".into()
}
fn default_pg_port() -> u16 {
    5432
}
fn default_database() -> String {
    "postgres".into()
}
fn default_catalog_user() -> String {
    "unscharf".into()
}
fn default_migration_fence() -> bool {
    true
}
fn default_audit_file() -> PathBuf {
    "audit.jsonl".into()
}
fn default_audit_queue() -> usize {
    65_536
}
fn default_audit_table() -> String {
    "unscharf_audit".into()
}
fn default_max_sessions() -> usize {
    2_000
}
fn default_max_frame() -> usize {
    64 << 20
}
fn default_max_buffered() -> usize {
    256 << 20
}
fn default_startup_timeout() -> u64 {
    15
}
fn default_max_pipeline() -> usize {
    4_096
}
fn default_shutdown_grace() -> u64 {
    10
}

fn default_lookups_per_minute() -> u32 {
    120
}

impl Config {
    /// Reads, parses and validates a config file; relative paths in it resolve against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_text(&text, path)
    }

    pub fn from_text(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = from_yaml(text, path)?;
        config.file = path.to_path_buf();
        config.base_dir = path
            .parent()
            .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        config.validate()?;
        Ok(config)
    }

    fn invalid(&self, key: &'static str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            key,
            problem: problem.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if let Some(admin) = &self.admin {
            admin
                .listen
                .parse::<SocketAddr>()
                .map_err(|e| self.invalid("admin.listen", format!("`{}`: {e}", admin.listen)))?;
        }
        if self.upstream.tls == UpstreamTls::VerifyFull && self.upstream.ca.is_none() {
            return Err(self.invalid("upstream.ca", "verify-full needs a CA file"));
        }
        if self.limits.max_frame_bytes < 1024 {
            return Err(self.invalid("limits.max_frame_bytes", "must be at least 1024"));
        }
        // A message as large as the limit must fit, with its buffer's slack.
        if self.limits.max_buffered_bytes < self.limits.max_frame_bytes.saturating_mul(2) {
            return Err(self.invalid(
                "limits.max_buffered_bytes",
                "must be at least twice limits.max_frame_bytes",
            ));
        }
        if self.limits.max_client_sessions == 0 {
            return Err(self.invalid("limits.max_client_sessions", "must be at least 1"));
        }
        if let Some(db) = &self.audit.database {
            if !crate::audit::db::valid_table(&db.table) {
                return Err(self.invalid(
                    "audit.database.table",
                    format!("`{}` is not a plain (schema.)table name", db.table),
                ));
            }
            db.url
                .parse::<tokio_postgres::Config>()
                .map_err(|e| self.invalid("audit.database.url", e.to_string()))?;
        }
        if self.audit.queue == 0 {
            return Err(self.invalid("audit.queue", "must be at least 1"));
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen
            .parse()
            .map_err(|e| self.invalid("listen", format!("`{}`: {e}", self.listen)))
    }

    /// Resolves a path from the file against the config file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() || p == Path::new("-") {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    pub fn policies_dir(&self) -> PathBuf {
        self.resolve(&self.policies)
    }

    pub fn catalog_password(&self) -> Option<String> {
        self.catalog.password_env.as_ref().and_then(|v| std::env::var(v).ok())
    }

    /// The pseudonym master secret, if its environment variable is set.
    pub fn pseudonym_key(&self) -> Option<Vec<u8>> {
        std::env::var(&self.pseudonym_key_env)
            .ok()
            .filter(|v| !v.is_empty())
            .map(String::into_bytes)
            .or_else(|| {
                let f = self.pseudonym_key_file.as_ref()?;
                let s = std::fs::read_to_string(self.resolve(f)).ok()?;
                let s = s.trim();
                (!s.is_empty()).then(|| s.as_bytes().to_vec())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_text("upstream:\n  host: db\n", Path::new("/etc/u/unscharf.yaml")).unwrap();
        assert_eq!(c.listen, "127.0.0.1:6432");
        assert_eq!(c.upstream.port, 5432);
        assert_eq!(c.policies_dir(), PathBuf::from("/etc/u/policies"));
        assert_eq!(c.resolve(Path::new("-")), PathBuf::from("-"));
        assert!(!c.audit.log_allowed);
    }

    #[test]
    fn contract_keys_parse() {
        let text = r#"
listen: 127.0.0.1:6432
upstream:
  host: 127.0.0.1
  port: 5432
  database: crm
  tls: disable
catalog:
  user: unscharf
  password_env: UNSCHARF_CATALOG_PASSWORD
policies: policies/
audit:
  file: audit.jsonl
  log_allowed: false
tls:
  cert: server.crt
  key: server.key
  require: false
admin:
  listen: 127.0.0.1:9930
pseudonym_key_env: UNSCHARF_PSEUDONYM_KEY
"#;
        let c = Config::from_text(text, Path::new("unscharf.yaml")).unwrap();
        assert_eq!(c.upstream.database, "crm");
        assert_eq!(c.tls.unwrap().cert, PathBuf::from("server.crt"));
        assert_eq!(c.catalog.password_env.as_deref(), Some("UNSCHARF_CATALOG_PASSWORD"));
    }

    #[test]
    fn bad_configs_name_the_key() {
        let e = Config::from_text("upstream:\n  host: db\n  hots: x\n", Path::new("c.yaml")).unwrap_err();
        assert!(
            e.to_string().contains("c.yaml:3: upstream: unknown field `hots`"),
            "{e}"
        );
        let e = Config::from_text("listen: nowhere\nupstream:\n  host: db\n", Path::new("c.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("c.yaml: listen: `nowhere`"), "{e}");
        let e = Config::from_text("upstream:\n  host: db\n  tls: verify-full\n", Path::new("c.yaml")).unwrap_err();
        assert!(e.to_string().contains("upstream.ca"), "{e}");
        let e = Config::from_text(
            "upstream:\n  host: db\nlimits:\n  max_frame_bytes: 1048576\n  max_buffered_bytes: 1048576\n",
            Path::new("c.yaml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("limits.max_buffered_bytes"), "{e}");
    }
}
