//! One task per client: startup, then a loop in which `select!` only yields events and a `match`
//! on (phase, event) handles them. Protocol decisions live in `core`, which does no I/O.

pub mod core;
pub mod errors;
pub mod options;
pub mod registry;
pub mod startup;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::Instrument;

use self::core::{Core, CoreError, Env, Out};
use crate::net::{write_all, BoxRead, BoxWrite, Conn};
use crate::policy::{Reason, Refusal};
use crate::server::Shared;
use crate::wire::{next_frame, Frame};
use errors::SessionError;
use startup::{Negotiated, Started};

/// Stop reading a side once this much output waits for the other side.
const HIGH_WATER: usize = 256 * 1024;

/// Runs one client connection to its end.
pub async fn run(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let id = shared.next_session_id();
    let span = tracing::info_span!("session", id, client = %peer, user = tracing::field::Empty, purpose = tracing::field::Empty);
    async move {
        let permit = shared.sessions.clone().try_acquire_owned().ok();
        let config = shared.state.load_full().config.clone();
        let deadline = Instant::now() + config.limits.startup_timeout();
        let mut cbuf = BytesMut::with_capacity(8 * 1024);
        let negotiated = tokio::time::timeout_at(
            deadline.into(),
            startup::negotiate(Conn::Tcp(stream), &mut cbuf, &shared),
        )
        .await;
        let (client, negotiated) = match negotiated {
            Ok(x) => x,
            Err(_) => return,
        };
        let Some(mut client) = client else { return };
        let msg = match negotiated {
            Ok(Negotiated::Cancel { pid, secret }) => return startup::cancel(&shared, pid, secret).await,
            Ok(Negotiated::Startup(m)) => m,
            Err(e) => return finish(&mut client, e).await,
        };
        if permit.is_none() {
            shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
            return finish(
                &mut client,
                SessionError::TooManyClients(config.limits.max_client_sessions),
            )
            .await;
        }
        let started = tokio::time::timeout_at(
            deadline.into(),
            startup::authenticate(&mut client, &mut cbuf, msg, peer, id, &shared),
        )
        .await;
        let started = match started {
            Err(_) => {
                return finish(
                    &mut client,
                    SessionError::StartupTimeout(config.limits.startup_timeout_secs),
                )
                .await
            }
            Ok(Err(e)) => {
                shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
                return finish(&mut client, e).await;
            }
            Ok(Ok(s)) => s,
        };
        shared.metrics.sessions_total.fetch_add(1, Ordering::Relaxed);
        // Released on every exit, a panic's unwinding included.
        let _guard = ActiveSession::new(&shared, started.proxy_key);
        let result = relay(client, cbuf, started, &shared, shutdown).await;
        drop(permit);
        if let Err(e) = result {
            tracing::debug!(error = %e, "session ended");
        }
    }
    .instrument(span)
    .await
}

/// Counts a session as active and owns its cancel key until dropped.
struct ActiveSession<'a> {
    shared: &'a Shared,
    key: (i32, i32),
}

impl<'a> ActiveSession<'a> {
    fn new(shared: &'a Shared, key: (i32, i32)) -> Self {
        shared.metrics.sessions_active.fetch_add(1, Ordering::Relaxed);
        ActiveSession { shared, key }
    }
}

impl Drop for ActiveSession<'_> {
    fn drop(&mut self) {
        self.shared.forget_cancel_key(self.key);
        self.shared.metrics.sessions_active.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn finish(client: &mut Conn, e: SessionError) {
    tracing::debug!(error = %e, "connection refused");
    if let Some(fatal) = e.fatal() {
        let _ = write_all(client, &fatal).await;
    }
    let _ = client.shutdown().await;
}

/// What the loop waits for.
enum Event {
    ClientRead(std::io::Result<usize>),
    UpstreamRead(std::io::Result<usize>),
    ClientWrote(std::io::Result<usize>),
    UpstreamWrote(std::io::Result<usize>),
    Shutdown,
    GraceOver,
    Idle,
}

/// The phase of a ready session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Shutdown asked: finish what is in flight, then close.
    Draining,
    /// Client sent Terminate: flush to the upstream, then close.
    Terminating,
}

struct Relay<'a> {
    shared: &'a Arc<Shared>,
    core: Core,
    out: Out,
    cin: BytesMut,
    uin: BytesMut,
    max_frame: usize,
    max_pipeline: usize,
    /// A client frame to handle again after a catalog refresh.
    retry: Option<Frame>,
    counters: Arc<crate::metrics::PurposeCounters>,
}

impl Relay<'_> {
    /// The snapshots one message is judged with.
    fn with_env<T>(&mut self, f: impl FnOnce(&mut Core, &Env<'_>, &mut Out) -> T) -> T {
        let shared = self.shared;
        let state = shared.state.load();
        let (policy, config) = (&state.policy, &state.config);
        let catalog = shared.catalog.load();
        let refuse_all = (!shared.audit.healthy()
            && config.audit.on_write_failure == crate::config::OnWriteFailure::Refuse)
            .then(|| {
                Refusal::new(
                    Reason::AuditUnavailable,
                    "the audit trail cannot be written, so unscharf refuses statements until it can",
                )
            });
        let env = Env {
            policy,
            catalog: &catalog,
            cache: &shared.cache,
            today: shared.today.today(),
            log_allowed: config.audit.log_allowed,
            refuse_all,
        };
        f(&mut self.core, &env, &mut self.out)
    }

    fn flush_records(&mut self) {
        let t = std::mem::take(&mut self.out.tally);
        if t.allowed > 0 {
            self.counters.allowed.fetch_add(t.allowed as u64, Ordering::Relaxed);
        }
        if t.masked > 0 {
            self.counters.masked.fetch_add(t.masked as u64, Ordering::Relaxed);
        }
        for r in t.refused {
            self.counters.refused[crate::metrics::reason_index(r)].fetch_add(1, Ordering::Relaxed);
        }
        for r in self.out.records.drain(..) {
            if r.decision == crate::audit::Decision::Refused {
                tracing::info!(reason = %r.reason, statement = %r.statement, "refused");
            }
            self.shared.audit.send(r);
        }
    }

    /// Handles buffered client frames until the core must wait (probe, refresh) or the pipeline is full.
    async fn client_frames(&mut self) -> Result<(), SessionError> {
        loop {
            if self.core.in_flight() >= self.max_pipeline {
                self.core.flush_for_backpressure(&mut self.out);
                return Ok(());
            }
            if self.core.stalled() || self.out.terminate {
                return Ok(());
            }
            let (frame, retried) = match self.retry.take() {
                Some(f) => (f, true),
                None => match next_frame(&mut self.cin, self.max_frame)? {
                    Some(f) => (f, false),
                    None => return Ok(()),
                },
            };
            self.shared
                .metrics
                .bytes_from_clients
                .fetch_add(frame.raw.len() as u64, Ordering::Relaxed);
            self.with_env(|core, env, out| core.on_client(&frame, env, out, retried))?;
            self.flush_records();
            if self.out.refresh_catalog {
                self.out.refresh_catalog = false;
                if let Err(e) = self.shared.refresh_catalog().await {
                    tracing::warn!(error = %e, "catalog refresh failed");
                }
                self.retry = Some(frame);
            }
        }
    }

    fn upstream_frames(&mut self) -> Result<(), SessionError> {
        while let Some(frame) = next_frame(&mut self.uin, self.max_frame)? {
            let r = self.with_env(|core, env, out| core.on_upstream(&frame, env, out));
            if let Err(CoreError::CutOff(why)) = &r {
                self.shared.metrics.cutoffs.fetch_add(1, Ordering::Relaxed);
                let rec = self.core.cutoff_record(&self.shared.state.load().policy.version, why);
                self.out.records.push(rec);
                self.flush_records();
            }
            r?;
        }
        self.flush_records();
        Ok(())
    }
}

fn reserve(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
}

async fn relay(
    client: Conn,
    cbuf: BytesMut,
    started: Started,
    shared: &Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let config = shared.state.load_full().config.clone();
    let (mut cr, mut cw): (BoxRead, BoxWrite) = client.split();
    let (mut ur, mut uw): (BoxRead, BoxWrite) = started.upstream.split();
    let upstream_key = started.upstream_key;
    let mut r = Relay {
        shared,
        counters: shared.metrics.purpose(&started.core.id.purpose),
        core: started.core,
        out: Out::default(),
        cin: cbuf,
        uin: started.upstream_buf,
        max_frame: config.limits.max_frame_bytes,
        max_pipeline: config.limits.max_pipeline,
        retry: None,
    };
    let idle_timeout = config.limits.idle_timeout();
    let grace = Duration::from_secs(config.limits.shutdown_grace_secs);
    let mut phase = Phase::Serving;
    let mut grace_deadline = tokio::time::Instant::now() + Duration::from_secs(u32::MAX as u64);
    let mut last_activity = tokio::time::Instant::now();
    if *shutdown.borrow() {
        phase = Phase::Draining;
        grace_deadline = tokio::time::Instant::now() + grace;
    }
    let outcome: Result<(), SessionError> = async {
        loop {
            r.client_frames().await?;
            if phase == Phase::Draining && r.core.idle() && r.out.to_upstream.is_empty() && r.retry.is_none() {
                return Err(SessionError::Shutdown);
            }
            if r.out.terminate {
                phase = Phase::Terminating;
            }
            if phase == Phase::Terminating && r.out.to_upstream.is_empty() && r.out.to_client.is_empty() {
                return Ok(());
            }
            reserve(&mut r.cin);
            reserve(&mut r.uin);
            let read_client = phase != Phase::Terminating
                && !r.core.stalled()
                && r.core.in_flight() < r.max_pipeline
                && r.out.to_upstream.len() < HIGH_WATER
                && r.retry.is_none();
            let read_upstream = r.out.to_client.len() < HIGH_WATER;
            let idle_armed = idle_timeout.is_some() && r.core.idle() && r.core.tx_status() == b'I';
            let idle_at = last_activity + idle_timeout.unwrap_or(Duration::from_secs(3600));
            let event = tokio::select! {
                biased;
                w = cw.write(&r.out.to_client), if !r.out.to_client.is_empty() => Event::ClientWrote(w),
                w = uw.write(&r.out.to_upstream), if !r.out.to_upstream.is_empty() => Event::UpstreamWrote(w),
                n = ur.read_buf(&mut r.uin), if read_upstream => Event::UpstreamRead(n),
                n = cr.read_buf(&mut r.cin), if read_client => Event::ClientRead(n),
                _ = shutdown.changed(), if phase == Phase::Serving => Event::Shutdown,
                _ = tokio::time::sleep_until(grace_deadline), if phase == Phase::Draining => Event::GraceOver,
                _ = tokio::time::sleep_until(idle_at), if idle_armed => Event::Idle,
            };
            match (phase, event) {
                (_, Event::ClientWrote(Ok(n))) => {
                    r.shared.metrics.bytes_to_clients.fetch_add(n as u64, Ordering::Relaxed);
                    r.out.to_client.advance(n);
                }
                (_, Event::UpstreamWrote(Ok(n))) => r.out.to_upstream.advance(n),
                (_, Event::ClientWrote(Err(_))) => return Err(SessionError::ClientGone),
                (_, Event::UpstreamWrote(Err(_))) => return Err(SessionError::UpstreamGone),
                (Phase::Terminating, Event::UpstreamRead(Ok(0) | Err(_))) => return Ok(()),
                (_, Event::UpstreamRead(Ok(0) | Err(_))) => return Err(SessionError::UpstreamGone),
                (_, Event::UpstreamRead(Ok(_))) => {
                    let t = Instant::now();
                    r.upstream_frames()?;
                    shared.metrics.latency.observe(t.elapsed());
                }
                (_, Event::ClientRead(Ok(0) | Err(_))) => {
                    // A vanished client must not leave its query running upstream.
                    if !r.core.idle() {
                        startup::send_cancel(shared, upstream_key).await;
                    }
                    return Err(SessionError::ClientGone);
                }
                (_, Event::ClientRead(Ok(_))) => {
                    last_activity = tokio::time::Instant::now();
                    let t = Instant::now();
                    r.client_frames().await?;
                    shared.metrics.latency.observe(t.elapsed());
                }
                (_, Event::Shutdown) => {
                    phase = Phase::Draining;
                    grace_deadline = tokio::time::Instant::now() + grace;
                }
                (_, Event::GraceOver) => return Err(SessionError::Shutdown),
                (_, Event::Idle) => return Err(SessionError::IdleTimeout),
            }
        }
    }
    .await;
    // Tell the client why, then end the upstream session politely.
    if let Err(e) = &outcome {
        if !matches!(e, SessionError::ClientGone) {
            let _ = cw.write_all(&r.out.to_client).await;
            if let Some(fatal) = e.fatal() {
                let _ = cw.write_all(&fatal).await;
            }
            let _ = cw.flush().await;
        }
    }
    if !matches!(outcome, Err(SessionError::UpstreamGone)) && phase != Phase::Terminating {
        let _ = uw.write_all(&crate::wire::frontend::encode::terminate()).await;
    }
    let _ = uw.shutdown().await;
    let _ = cw.shutdown().await;
    let _ = cr.read(&mut [0u8; 0]).await;
    outcome
}
