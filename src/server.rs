//! The running proxy: shared state (policy and catalog snapshots, caches, audit, cancel keys,
//! session limit), the accept loop, and catalog refreshes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::analyze::cache::AnalysisCache;
use crate::audit::AuditSink;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::policy::PolicySet;

/// Where a proxy cancel key leads upstream.
#[derive(Debug, Clone, Copy)]
pub struct CancelTarget {
    pub pid: i32,
    pub secret: i32,
}

/// The config and the policies in force, swapped together so a reload never mixes them.
pub struct State {
    pub config: Config,
    pub policy: PolicySet,
    /// TLS towards the upstream, built from `config.upstream`.
    pub upstream_tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
}

/// Everything sessions share. Snapshots are swapped whole; a session loads one per message.
pub struct Shared {
    pub state: ArcSwap<State>,
    pub catalog: ArcSwap<Catalog>,
    pub cache: AnalysisCache,
    pub audit: AuditSink,
    pub metrics: Metrics,
    pub sessions: Arc<Semaphore>,
    /// The session limit the semaphore was made with (a reload does not change it).
    pub max_sessions: usize,
    /// Connections still starting up, bounded apart from sessions (as many places as sessions).
    pub startups: crate::session::gate::StartupGate,
    pub cancel: Mutex<HashMap<(i32, i32), CancelTarget>>,
    next_session: AtomicU64,
    catalog_refresh: tokio::sync::Mutex<Instant>,
    pub tls: ArcSwap<Option<crate::tls::Acceptor>>,
    pub today: crate::clock::TodayClock,
    pub lookups: crate::session::lookups::LookupBudget,
    /// The memory sessions' buffers hold for large messages, all together.
    pub buffers: crate::session::buffers::BufferBudget,
    pub fence: crate::fence::Fence,
}

impl Shared {
    pub fn new(
        config: Config,
        policy: PolicySet,
        catalog: Catalog,
        audit: AuditSink,
        tls: Option<crate::tls::Acceptor>,
        upstream_tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    ) -> Arc<Shared> {
        let max = config.limits.max_client_sessions;
        Arc::new(Shared {
            state: ArcSwap::from_pointee(State {
                config,
                policy,
                upstream_tls,
            }),
            catalog: ArcSwap::from_pointee(catalog),
            cache: AnalysisCache::new(100_000),
            audit,
            metrics: Metrics::default(),
            sessions: Arc::new(Semaphore::new(max)),
            max_sessions: max,
            startups: crate::session::gate::StartupGate::new(max),
            cancel: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            catalog_refresh: tokio::sync::Mutex::new(Instant::now() - Duration::from_secs(3600)),
            tls: ArcSwap::from_pointee(tls),
            today: Default::default(),
            lookups: Default::default(),
            buffers: Default::default(),
            fence: Default::default(),
        })
    }

    /// Re-reads the config file and the policies. On any error the old ones stay in force and the
    /// error is returned; sessions pick up the new ones at their next statement.
    pub async fn reload(&self) -> Result<String, String> {
        let old = self.state.load_full();
        let result = (|| {
            let config = Config::load(&old.config.file).map_err(|e| e.to_string())?;
            for key in restart_only_changes(&old.config, &config) {
                tracing::warn!(
                    key,
                    "this setting changed, and takes effect only at a restart; the old value stays in force"
                );
            }
            let policy = crate::policy::load::load_dir(&config.policies_dir(), config.pseudonym_key().as_deref())
                .map_err(|e| e.to_string())?;
            let tls = match &config.tls {
                Some(t) => Some(
                    crate::tls::Acceptor::load(&config.resolve(&t.cert), &config.resolve(&t.key), t.require)
                        .map_err(|e| e.to_string())?,
                ),
                None => None,
            };
            let upstream_tls = crate::tls::upstream_client_config(&config).map_err(|e| e.to_string())?;
            Ok::<_, String>((config, policy, tls, upstream_tls))
        })();
        match result {
            Ok((config, policy, tls, upstream_tls)) => {
                let version = policy.version.clone();
                for w in &policy.warnings {
                    tracing::warn!(warning = %w, "policy");
                }
                self.state.store(Arc::new(State {
                    config,
                    policy,
                    upstream_tls,
                }));
                self.tls.store(Arc::new(tls));
                self.metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(policy_version = %version, "config and policies reloaded");
                if let Err(e) = self.refresh_catalog_now().await {
                    tracing::warn!(error = %e, "catalog refresh after reload failed");
                }
                warn_several_purposes(&self.state.load().policy, &self.catalog.load());
                Ok(version)
            }
            Err(e) => {
                self.metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "reload failed; the previous config and policies stay in force");
                Err(e)
            }
        }
    }

    /// Refreshes the catalog regardless of the rate limit (reload, periodic refresh), and installs
    /// it even unchanged: sessions then read their roles again, which a GRANT and a REVOKE between
    /// two refreshes leave looking unchanged (round 24).
    pub async fn refresh_catalog_now(&self) -> Result<(), crate::catalog::live::CatalogError> {
        *self.catalog_refresh.lock().await = Instant::now() - Duration::from_secs(3600);
        self.refresh(true).await
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Random 32-bit values for the proxy's own BackendKeyData.
    pub fn new_cancel_key(&self, target: CancelTarget) -> (i32, i32) {
        let mut cancel = self.cancel.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let mut b = [0u8; 8];
            if getrandom::fill(&mut b).is_err() {
                let t = Instant::now().elapsed().as_nanos() as u64 ^ self.next_session.load(Ordering::Relaxed);
                b = t.to_le_bytes();
            }
            let pid = i32::from_le_bytes([b[0], b[1], b[2], b[3] & 0x7f]).max(1);
            let secret = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            if let std::collections::hash_map::Entry::Vacant(e) = cancel.entry((pid, secret)) {
                e.insert(target);
                return (pid, secret);
            }
        }
    }

    pub fn forget_cancel_key(&self, key: (i32, i32)) {
        self.cancel.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }

    pub fn cancel_target(&self, key: (i32, i32)) -> Option<CancelTarget> {
        self.cancel.lock().unwrap_or_else(|e| e.into_inner()).get(&key).copied()
    }

    /// Reloads the catalog from the upstream, at most once a second however many sessions ask,
    /// keeping the snapshot when nothing changed (an agent may ask by naming unknown tables).
    pub async fn refresh_catalog(&self) -> Result<(), crate::catalog::live::CatalogError> {
        self.refresh(false).await
    }

    async fn refresh(&self, force: bool) -> Result<(), crate::catalog::live::CatalogError> {
        let mut last = self.catalog_refresh.lock().await;
        if last.elapsed() < Duration::from_secs(1) {
            return Ok(());
        }
        let state = self.state.load_full();
        let generation = self.catalog.load().generation + 1;
        let mut client = crate::catalog::live::connect(&state.config).await?;
        let fresh = self.load_watched(&mut client, generation).await?;
        *last = Instant::now();
        self.install_catalog(fresh, force);
        Ok(())
    }

    /// Reads the catalog over `client` (the watch's own connection, which needs no free slot on
    /// the server: an agent holding every slot cannot stop refreshes).
    pub async fn refresh_catalog_over(
        &self,
        client: &mut tokio_postgres::Client,
        force: bool,
    ) -> Result<(), crate::catalog::live::CatalogError> {
        let _last = self.catalog_refresh.lock().await;
        let generation = self.catalog.load().generation + 1;
        let fresh = self.load_watched(client, generation).await?;
        self.install_catalog(fresh, force);
        Ok(())
    }

    /// Reads the catalog, its backend marked as one the migration fence may wait on (a read held
    /// up by a migration's locks keeps the fence closed; see fence::blockers).
    async fn load_watched(
        &self,
        client: &mut tokio_postgres::Client,
        generation: u64,
    ) -> Result<Catalog, crate::catalog::live::CatalogError> {
        let pid: i32 = client
            .query_one("SELECT pg_catalog.pg_backend_pid()", &[])
            .await?
            .get(0);
        let _root = self.fence.waits_on(pid);
        // DDL that commits while the snapshot is read can drop an object its definition queries
        // still list; reading again sees the catalog after it. Migrations come in bursts, so the
        // tries wait longer each time (0.75 s in all), and then the error stands: the old
        // catalog stays in force (a CI run saw one such race).
        let mut wait = Duration::from_millis(25);
        loop {
            match crate::catalog::live::load(client, generation).await {
                Err(crate::catalog::live::CatalogError::Changed(what)) if wait <= Duration::from_millis(400) => {
                    tracing::debug!(%what, "changed while the catalog was read; reading it again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                done => return done,
            }
        }
    }

    fn install_catalog(&self, fresh: Catalog, force: bool) {
        let old = self.catalog.load();
        if !force && fresh.fingerprint == old.fingerprint && old.fingerprint != 0 {
            // Nothing changed: analyses cached, and search paths read, under it stay good.
            return;
        }
        let catalog = fresh.keep_ids_of(&old);
        self.catalog.store(Arc::new(catalog));
        self.metrics.catalog_refreshes.fetch_add(1, Ordering::Relaxed);
    }
}

/// Accepts clients until `shutdown` turns true; each session runs in its own task, so a panic in
/// one never takes the others down.
pub async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    pool: Option<&crate::pool::SessionPool>,
) {
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let (stream, peer): (tokio::net::TcpStream, SocketAddr) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let shutdown = shutdown.clone();
                // Moved to the session thread's reactor; the std socket stays non-blocking.
                let Some(pool) = pool else {
                    tokio::spawn(crate::session::run(stream, peer, shared, shutdown));
                    continue;
                };
                match stream.into_std() {
                    Ok(std) => pool.spawn(async move {
                        match tokio::net::TcpStream::from_std(std) {
                            Ok(stream) => crate::session::run(stream, peer, shared, shutdown).await,
                            Err(e) => tracing::warn!(error = %e, "cannot hand a client to its session thread"),
                        }
                    }),
                    Err(e) => tracing::warn!(error = %e, "accepted socket unusable"),
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Policy(#[from] crate::policy::load::PolicyErrors),
    #[error("audit trail {path}: {source}")]
    Audit { path: String, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("listener: {0}")]
    Listen(std::io::Error),
}

/// Loads policies, the catalog and the audit trail, and builds the shared state.
pub async fn prepare(config: Config) -> Result<(Arc<Shared>, tokio::task::JoinHandle<()>), ServeError> {
    let policy = crate::policy::load::load_dir(&config.policies_dir(), config.pseudonym_key().as_deref())?;
    let target = match config.resolve(&config.audit.file) {
        p if p == std::path::Path::new("-") => crate::audit::writer::Target::Stdout,
        p => crate::audit::writer::Target::File(p),
    };
    let audit_path = config.resolve(&config.audit.file).display().to_string();
    let copy_state = config.audit.database.as_ref().map(|_| Arc::new(Default::default()));
    let extra = config
        .audit
        .database
        .clone()
        .zip(copy_state.clone())
        .map(|(db, state)| crate::audit::db::spawn(db, state));
    let (audit, writer) = crate::audit::writer::spawn(crate::audit::writer::WriterOptions {
        target,
        queue: config.audit.queue,
        rotate_bytes: config.audit.rotate_bytes,
        extra,
        copy_state,
    })
    .map_err(|source| ServeError::Audit {
        path: audit_path,
        source,
    })?;
    let tls = match &config.tls {
        Some(t) => Some(crate::tls::Acceptor::load(
            &config.resolve(&t.cert),
            &config.resolve(&t.key),
            t.require,
        )?),
        None => None,
    };
    let upstream_tls = crate::tls::upstream_client_config(&config)?;
    let catalog = match crate::catalog::connect_and_load(&config, 1).await {
        Ok(c) => c,
        Err(e) => {
            // Start anyway: sessions fail with a clear error until the upstream is back, and the
            // first statement that needs the catalog refreshes it.
            tracing::warn!(error = %e, "catalog unavailable at start; using the built-in pg_catalog snapshot until it is");
            Catalog::default().with_system_snapshot()
        }
    };
    tracing::info!(policy_version = %policy.version, purposes = policy.purposes.len(), campaigns = policy.campaigns.len(), "policies loaded");
    for w in &policy.warnings {
        tracing::warn!(warning = %w, "policy");
    }
    warn_several_purposes(&policy, &catalog);
    Ok((Shared::new(config, policy, catalog, audit, tls, upstream_tls), writer))
}

/// The config keys a reload reads but does not apply: the listeners, the audit trail's
/// destinations, the session limit and threads (round 190 AA3: a reload said "reloaded" and the
/// old audit settings and session limit stayed).
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let differ = |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    [
        ("listen", differ(&old.listen, &new.listen)),
        ("audit", differ(&old.audit, &new.audit)),
        ("admin", differ(&old.admin, &new.admin)),
        (
            "limits.max_client_sessions",
            differ(&old.limits.max_client_sessions, &new.limits.max_client_sessions),
        ),
        (
            "limits.session_threads",
            differ(&old.limits.session_threads, &new.limits.session_threads),
        ),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(key, _)| key)
    .collect()
}

/// Logins the policies put into several purposes: their clients must name one, or every new
/// connection is refused, which a reload would otherwise show only when pools reconnect (round 125).
fn warn_several_purposes(policy: &PolicySet, catalog: &Catalog) {
    for f in crate::tools::check::several_purposes(policy, &catalog.login_roles) {
        tracing::warn!(warning = %f.what, "policy");
    }
}

/// Runs the proxy on `listener` until `shutdown` turns true, then drains sessions within the grace time.
pub async fn serve(config: Config, listener: TcpListener, shutdown: watch::Receiver<bool>) -> Result<(), ServeError> {
    let (shared, _writer) = prepare(config).await?;
    run_until(shared, listener, shutdown).await;
    Ok(())
}

/// Background upkeep: the catalog is re-read every minute, so DDL done outside the proxy is seen
/// even when no statement stumbles over it.
pub fn spawn_maintenance(shared: Arc<Shared>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = shared.refresh_catalog_now().await {
                tracing::warn!(error = %e, "periodic catalog refresh failed");
            }
        }
    });
}

/// How often the catalog watch compares the event triggers (see `live::event_triggers`).
const EVENT_TRIGGER_POLL: Duration = Duration::from_secs(1);

/// What woke the catalog watch: a notification (false: the connection closed), or its poll.
enum Wake {
    Notified(bool),
    Poll,
}

/// Refreshes the catalog as soon as the upstream reports DDL (`deploy/catalog_watch.sql` installs
/// the event trigger that notifies), so that statements are not judged by a catalog older than the
/// server's: a table created or dropped in a schema early in search_path changes what a name
/// means. Without the trigger nothing arrives, and the periodic refresh is all there is.
async fn watch_catalog(shared: Arc<Shared>) {
    let mut warned = false;
    let mut first = true;
    loop {
        let config = shared.state.load().config.clone();
        match crate::catalog::live::listen(&config).await {
            Ok((mut client, mut changes)) => {
                warned = false;
                // What changed while nobody listened; the first time, the catalog was just read
                // at start, and a refresh finding nothing new keeps it (sessions need not ask again).
                let mut changed = true;
                let mut force = !first;
                first = false;
                while changed {
                    while changes.try_recv().is_ok() {}
                    if let Err(e) = shared.refresh_catalog_over(&mut client, force).await {
                        tracing::warn!(error = %e, "catalog refresh after a schema change failed");
                        break;
                    }
                    changed = loop {
                        let event = tokio::select! {
                            c = changes.recv() => Wake::Notified(c.is_some()),
                            _ = tokio::time::sleep(EVENT_TRIGGER_POLL) => Wake::Poll,
                        };
                        match event {
                            Wake::Notified(open) => break open,
                            // Against what the catalog in force was read with.
                            Wake::Poll => match crate::catalog::live::event_triggers(&client).await {
                                Ok(now) if now != shared.catalog.load().event_triggers => break true,
                                Ok(_) => {}
                                Err(_) => break false,
                            },
                        }
                    };
                    force = true;
                }
                tracing::warn!("the catalog watch connection closed; reconnecting");
            }
            Err(e) if !warned => {
                tracing::warn!(error = %e, "cannot listen for schema changes; retrying every second");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// After the accept loop: lets the audit writer flush what sessions queued.
pub async fn finish(shared: Arc<Shared>, writer: tokio::task::JoinHandle<()>) {
    drop(shared);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

/// The accept loop and the drain after it; split from `serve` so callers can keep the shared state.
pub async fn run_until(shared: Arc<Shared>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    let threads = shared.state.load().config.limits.session_threads;
    let pool = match crate::pool::SessionPool::start(threads) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(error = %e, "sessions run on the main runtime instead");
            None
        }
    };
    let watch = tokio::spawn(watch_catalog(shared.clone()));
    let fenced = shared.state.load().config.catalog.migration_fence;
    shared.metrics.fence_open.store(u64::from(!fenced), Ordering::Relaxed);
    let fence = fenced.then(|| {
        // Closed until the fence connection holds its lock: a migration committing before could not ask.
        shared.fence.close();
        tokio::spawn(crate::fence::keep(shared.clone()))
    });
    accept_loop(listener, shared.clone(), shutdown, pool.as_ref()).await;
    watch.abort();
    let grace = Duration::from_secs(shared.state.load().config.limits.shutdown_grace_secs + 2);
    let deadline = Instant::now() + grace;
    while shared.metrics.sessions_active.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Kept until the sessions are gone: a draining session still forwards statements.
    if let Some(fence) = fence {
        fence.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_what_only_a_restart_applies() {
        let path = std::path::Path::new("/etc/u/unscharf.yaml");
        let old = Config::from_text("upstream:\n  host: db\n", path).unwrap();
        let same = Config::from_text("upstream:\n  host: db\n  port: 5432\n", path).unwrap();
        assert!(restart_only_changes(&old, &same).is_empty());
        let new = Config::from_text(
            "upstream:\n  host: db\nlimits:\n  max_client_sessions: 50\naudit:\n  file: other.jsonl\nadmin:\n  listen: 127.0.0.1:9\n",
            path,
        )
        .unwrap();
        assert_eq!(
            restart_only_changes(&old, &new),
            ["audit", "admin", "limits.max_client_sessions"]
        );
    }
}
