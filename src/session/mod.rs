//! One task per client: startup, then a loop in which `select!` only yields events and a `match`
//! on (phase, event) handles them. Protocol decisions live in `core`, which does no I/O.

mod analyst;
pub mod buffers;
pub mod core;
mod drain;
pub mod errors;
pub mod fence;
pub mod gate;
pub mod lookups;
pub mod options;
pub mod registry;
mod relay;
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

use self::core::Out;
use crate::net::{write_all, BoxRead, BoxWrite, Conn};
use crate::server::Shared;
use errors::SessionError;
use relay::{analyzed, Relay};
use startup::{Negotiated, Started};

/// Stop reading a side once this much output waits for the other side.
const HIGH_WATER: usize = 256 * 1024;

/// Runs one client connection to its end.
pub async fn run(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let id = shared.next_session_id();
    let span = tracing::info_span!("session", session = id, client = %peer, user = tracing::field::Empty, purpose = tracing::field::Empty);
    let Some((client, cbuf, started, permit)) = start(stream, peer, id, &shared).instrument(span.clone()).await else {
        return;
    };
    shared.metrics.sessions_total.fetch_add(1, Ordering::Relaxed);
    // Released on every exit, a panic's unwinding included.
    let _guard = ActiveSession::new(&shared, started.proxy_key);
    // The relay enters the span only where it logs: entering it on every poll costs more than the
    // rest of a cached statement's handling.
    let result = relay(client, cbuf, started, &shared, shutdown, &span).await;
    drop(permit);
    if let Err(e) = result {
        span.in_scope(|| tracing::debug!(error = %crate::audit::event::scrub(&e.to_string()), "session ended"));
    }
}

type Begun = (Conn, BytesMut, Started, tokio::sync::OwnedSemaphorePermit);

/// Startup in a place of the startup gate, which a newer connection may end when this one has
/// waited too long; None when the connection ended there.
async fn start(stream: TcpStream, peer: SocketAddr, id: u64, shared: &Arc<Shared>) -> Option<Begun> {
    let Some(place) = shared.startups.enter(Instant::now()) else {
        shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
        // Said without reading anything: reading is what the bound protects.
        finish(
            &mut Conn::Tcp(stream),
            SessionError::TooManyStartups(shared.startups.places()),
        )
        .await;
        return None;
    };
    if place.ended_another {
        shared.metrics.startups_ended.fetch_add(1, Ordering::Relaxed);
    }
    tokio::select! {
        begun = negotiate_and_authenticate(stream, peer, id, shared, &place) => begun,
        () = place.evicted() => {
            tracing::debug!("startup ended to make room for a newer connection");
            None
        }
    }
}

/// Negotiation and authentication, under the startup timeout. The session slot is taken once the
/// client has sent its startup packet, so a silent socket never holds one.
async fn negotiate_and_authenticate(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    shared: &Arc<Shared>,
    place: &gate::Place<'_>,
) -> Option<Begun> {
    let config = shared.state.load_full().config.clone();
    let deadline = Instant::now() + config.limits.startup_timeout();
    let mut cbuf = BytesMut::with_capacity(8 * 1024);
    let negotiated = tokio::time::timeout_at(
        deadline.into(),
        startup::negotiate(Conn::Tcp(stream), &mut cbuf, shared),
    )
    .await;
    let (client, negotiated) = negotiated.ok()?;
    let mut client = client?;
    let msg = match negotiated {
        Ok(Negotiated::Cancel { pid, secret }) => {
            startup::cancel(shared, pid, secret).await;
            return None;
        }
        Ok(Negotiated::Startup(m)) => m,
        Err(e) => {
            finish(&mut client, e).await;
            return None;
        }
    };
    // A burst of real logins (a pool opening its connections) waits its turn; under a flood of
    // stalled ones, the oldest is ended for it once it has waited a second.
    let give_up = Instant::now() + Duration::from_secs(10);
    while !place.authenticate(Instant::now(), &shared.metrics.startups_ended) {
        if Instant::now() >= give_up {
            shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
            finish(
                &mut client,
                SessionError::TooManyLogins(crate::session::gate::AUTH_PLACES),
            )
            .await;
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some(permit) = session_slot(shared, place).await else {
        shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
        finish(&mut client, SessionError::TooManyClients(shared.max_sessions)).await;
        return None;
    };
    let started = tokio::time::timeout_at(
        deadline.into(),
        startup::authenticate(&mut client, &mut cbuf, msg, peer, id, shared),
    )
    .await;
    match started {
        Err(_) => {
            finish(
                &mut client,
                SessionError::StartupTimeout(config.limits.startup_timeout_secs),
            )
            .await;
            None
        }
        Ok(Err(e)) => {
            shared.metrics.sessions_refused.fetch_add(1, Ordering::Relaxed);
            finish(&mut client, e).await;
            None
        }
        Ok(Ok(s)) => Some((client, cbuf, s, permit)),
    }
}

/// A session slot: now, or when an authenticating startup gives one back, ending the one that has
/// authenticated longest (a second at least) for it: a client that stalls at the password
/// challenge must not keep agents out. Up to 5 s; at once None when sessions that began hold
/// every slot.
async fn session_slot(shared: &Arc<Shared>, place: &gate::Place<'_>) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if let Ok(permit) = shared.sessions.clone().try_acquire_owned() {
        return Some(permit);
    }
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        // Every slot held by a session that began: the limit, said at once.
        if !place.others_authenticating() {
            return None;
        }
        if place.end_one_authenticating(Instant::now()) {
            shared.metrics.startups_ended.fetch_add(1, Ordering::Relaxed);
        }
        // Slots come back as startups end, ended or not (round 203 AN4: stalled logins cycled
        // faster than a second kept every slot young); waiters get them in turn.
        let wait = shared.sessions.clone().acquire_owned();
        let now = Instant::now();
        if now >= give_up {
            return None;
        }
        let step = (give_up - now).min(Duration::from_millis(250));
        if let Ok(Ok(permit)) = tokio::time::timeout(step, wait).await {
            return Some(permit);
        }
    }
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
    // Its code only: the message may repeat what the client typed in its startup packet, which
    // the audit trail records scrubbed (round 177 N2, round 179 Q4: a purpose name of digits).
    tracing::debug!(sqlstate = e.sqlstate(), "connection refused");
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
    /// The analysis thread answered (None: the analysis panicked).
    Analyzed(Option<Result<crate::analyze::cache::Looked, crate::analyze::lexer::LexError>>),
    /// The migration fence moved while this session held its client's frames or server's answers.
    Fence,
    /// The fence has held a transaction's statements for FENCE_PATIENCE.
    FenceStuck,
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

/// How long the fence may hold the statements of a transaction, which may hold locks the migration
/// waits for.
const FENCE_PATIENCE: Duration = Duration::from_secs(5);
/// How often, after that, a held session asks again whether the migration waits for it.
const FENCE_RECHECK: Duration = Duration::from_secs(1);

/// select! builds every branch's future each turn, enabled or not; as an async fn this touches the
/// timer only when a branch is enabled and polled.
async fn sleep_until(at: tokio::time::Instant) {
    tokio::time::sleep_until(at).await
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
    span: &tracing::Span,
) -> Result<(), SessionError> {
    let config = shared.state.load_full().config.clone();
    let (mut cr, mut cw): (BoxRead, BoxWrite) = client.split();
    let (mut ur, mut uw): (BoxRead, BoxWrite) = started.upstream.split();
    let upstream_key = started.upstream_key;
    let mut r = Relay {
        shared,
        counters: shared.metrics.purpose(&started.core.id.purpose),
        span,
        core: started.core,
        out: Out::default(),
        cin: cbuf,
        uin: started.upstream_buf,
        max_frame: config.limits.max_frame_bytes,
        max_pipeline: config.limits.max_pipeline,
        retry: None,
        analysis: None,
        fence: Default::default(),
        fence_held: false,
        buffers: buffers::BufferHold::new(&shared.buffers),
        max_buffered: config.limits.max_buffered_bytes,
    };
    let mut stuck_since: Option<tokio::time::Instant> = None;
    let mut fence_moves = shared.fence.subscribe();
    let idle_timeout = config.limits.idle_timeout();
    let grace = Duration::from_secs(config.limits.shutdown_grace_secs);
    let mut phase = Phase::Serving;
    let mut grace_deadline = tokio::time::Instant::now() + Duration::from_secs(u32::MAX as u64);
    let mut last_activity = tokio::time::Instant::now();
    if *shutdown.borrow() {
        phase = Phase::Draining;
        grace_deadline = tokio::time::Instant::now() + grace;
    }
    // Created once: a fresh `changed()` per turn would register with the shared channel each time.
    let mut shutdown_signal = std::pin::pin!(shutdown.changed());
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
            buffers::shrink(&mut r.cin);
            buffers::shrink(&mut r.uin);
            buffers::shrink_sent(&mut r.out.to_client);
            buffers::shrink_sent(&mut r.out.to_upstream);
            r.core.shrink_scratch();
            reserve(&mut r.cin);
            reserve(&mut r.uin);
            // Before more of a large message is read: what the session's buffers were grown to
            // for it counts against the budget of all sessions.
            if !r.buffers.set(
                &[&r.cin, &r.uin],
                &[&r.out.to_client, &r.out.to_upstream],
                r.max_buffered,
            ) {
                return Err(SessionError::Buffers(r.max_buffered));
            }
            // While a frame waits for its analysis the client is still read, a bounded amount,
            // so that a client that leaves ends its session (round 133: sessions whose clients
            // had gone kept their server connections for minutes).
            let epoch = shared.fence.epoch();
            let fence_open = crate::fence::Fence::is_open(epoch);
            // While the fence is closed the client is still read, a bounded amount, so that one
            // that leaves ends its session and frees its locks (round 152).
            let read_client = phase != Phase::Terminating
                && (fence_open || r.cin.len() < HIGH_WATER)
                && !r.core.stalled()
                && r.core.in_flight() < r.max_pipeline
                && r.out.to_upstream.len() < HIGH_WATER
                && (r.retry.is_none() || (r.analysis.is_some() && r.cin.len() < HIGH_WATER));
            // While the fence holds the answers, the server's are still read, a bounded amount, so
            // that the fence sees which batches the server has finished.
            let read_upstream = r.out.to_client.len() < HIGH_WATER && (!r.fence_held || r.uin.len() < HIGH_WATER);
            // A closed fence cancels what the server still owes this session answers for (see
            // `crate::fence`): it is told how much that is, whenever the session wakes. A server
            // blocked writing answers this session cannot take (held for the fence, or a client
            // that reads nothing) cannot be cancelled, and would keep the fence waiting: the
            // session ends, and closing its socket ends that backend's statement (those answers
            // would not have passed unless the migration changed nothing).
            if !fence_open {
                // Extended messages not yet closed by a Sync and not yet answered may still be
                // queued at the server with no ReadyForQuery owed for them (round 223 BH1: a
                // row-limited Execute of a slow query, then an INSERT and COMMIT, and a Flush: the
                // cancel fell between two messages, and the INSERT ran under the migration's
                // trigger). A batch whose messages were all answered waits idle for its Sync.
                let owed = r.owed().max(usize::from(r.core.unsynced() && !r.core.idle()));
                if owed > 0 && !read_upstream {
                    r.fence_cut();
                    return Err(SessionError::Fenced);
                }
                shared.fence.owe(upstream_key.pid, epoch, owed);
            }
            // A transaction whose statements the fence holds may hold locks the migration waits
            // for, which Postgres cannot see, and so may a statement whose answers it holds (the
            // server blocks once the socket is full): either ends after FENCE_PATIENCE (round 152).
            // So may a transaction left idle: an agent idling in one kept every session waiting
            // (round 158), so any session in a transaction counts, and so does one with anything
            // under way (round 160: a long autocommit statement, or an Execute left without Sync,
            // held their locks while the tracked status said idle; round 162: so did an Execute
            // answered but not yet followed by Sync, in psycopg's and libpq's pipeline modes).
            // Those wake when the fence moves.
            let in_transaction = r.core.tx_status() != b'I' || !r.core.idle() || r.core.unsynced();
            let stuck = !fence_open && (r.fence_held || in_transaction);
            let stuck_at = match (stuck, stuck_since) {
                (false, _) => {
                    stuck_since = None;
                    grace_deadline
                }
                (true, Some(t)) => t + FENCE_PATIENCE,
                (true, None) => *stuck_since.insert(tokio::time::Instant::now()) + FENCE_PATIENCE,
            };
            let idle_armed = idle_timeout.is_some() && r.core.idle() && r.core.tx_status() == b'I';
            let idle_at = last_activity + idle_timeout.unwrap_or(Duration::from_secs(3600));
            let event = tokio::select! {
                biased;
                w = cw.write(&r.out.to_client), if !r.out.to_client.is_empty() => Event::ClientWrote(w),
                w = uw.write(&r.out.to_upstream), if !r.out.to_upstream.is_empty() => Event::UpstreamWrote(w),
                n = ur.read_buf(&mut r.uin), if read_upstream => Event::UpstreamRead(n),
                n = cr.read_buf(&mut r.cin), if read_client => Event::ClientRead(n),
                a = analyzed(&mut r.analysis), if r.analysis.is_some() => Event::Analyzed(a),
                _ = fence_moves.changed(), if !fence_open || r.fence_held || in_transaction => Event::Fence,
                _ = sleep_until(stuck_at), if stuck => Event::FenceStuck,
                _ = &mut shutdown_signal, if phase == Phase::Serving => Event::Shutdown,
                _ = sleep_until(grace_deadline), if phase == Phase::Draining => Event::GraceOver,
                _ = sleep_until(idle_at), if idle_armed => Event::Idle,
            };
            match (phase, event) {
                (_, Event::ClientWrote(Ok(n))) => {
                    r.shared.metrics.bytes_to_clients.fetch_add(n as u64, Ordering::Relaxed);
                    r.out.to_client.advance(n);
                }
                (_, Event::UpstreamWrote(Ok(n))) => r.out.to_upstream.advance(n),
                // What a vanished client left running is cancelled in `drain`.
                (_, Event::ClientWrote(Err(_)) | Event::ClientRead(Ok(0) | Err(_))) => {
                    return Err(SessionError::ClientGone)
                }
                (_, Event::UpstreamWrote(Err(_))) => return Err(SessionError::UpstreamGone),
                (Phase::Terminating, Event::UpstreamRead(Ok(0) | Err(_))) => return Ok(()),
                (_, Event::UpstreamRead(Ok(0) | Err(_))) => return Err(SessionError::UpstreamGone),
                (_, Event::UpstreamRead(Ok(_))) => {
                    let t = Instant::now();
                    r.upstream_frames()?;
                    shared.metrics.latency.observe(t.elapsed());
                }
                (_, Event::ClientRead(Ok(_))) => {
                    let t = Instant::now();
                    last_activity = t.into();
                    r.client_frames().await?;
                    shared.metrics.latency.observe(t.elapsed());
                }
                (_, Event::Analyzed(looked)) => {
                    if let Some((job, _)) = r.analysis.take() {
                        r.core.pre_analyzed(job, looked);
                    }
                    r.client_frames().await?;
                }
                (_, Event::Fence) => {
                    if std::mem::take(&mut r.fence_held) {
                        r.upstream_frames()?;
                    }
                    r.client_frames().await?;
                }
                (_, Event::FenceStuck) if !shared.fence.holds_up(upstream_key.pid) => {
                    // Postgres says the migration does not wait for this session: it waits on,
                    // and asks again in a second.
                    stuck_since = Some(tokio::time::Instant::now() - FENCE_PATIENCE + FENCE_RECHECK);
                }
                (_, Event::FenceStuck) => {
                    r.fence_stuck(FENCE_PATIENCE);
                    // A statement under way keeps its locks until it ends, closed socket or not.
                    if !r.core.idle() {
                        startup::send_cancel(shared, upstream_key).await;
                    }
                    return Err(SessionError::FenceHeld(FENCE_PATIENCE.as_secs()));
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
    let upstream_gone = matches!(outcome, Err(SessionError::UpstreamGone));
    // Work the server was sent and has not yet answered would run on once the socket closes: the
    // backend is waited for (see `drain`), cancelling it unless the client asked to end.
    let leftover = !upstream_gone && !r.core.idle();
    let mut uin = std::mem::take(&mut r.uin);
    let to_client = std::mem::take(&mut r.out.to_client);
    // The upstream session ends at once, politely, and its socket half-closes: a backend blocked
    // sending to a client that reads nothing keeps its locks until then (round 165: a session the
    // fence ended wrote its answers to such a client forever, and a migration and every session
    // waited). A Terminate only goes after whole frames: behind a half-written one it would finish
    // that frame with bytes the client never sent. The client is told why meanwhile.
    let server_end = async {
        if !upstream_gone && phase != Phase::Terminating && r.out.to_upstream.is_empty() {
            let _ = tokio::time::timeout(LAST_WRITES, uw.write_all(&crate::wire::frontend::encode::terminate())).await;
        }
        let _ = tokio::time::timeout(LAST_WRITES, uw.shutdown()).await;
        if leftover {
            drain::drain(shared, upstream_key, &mut ur, &mut uin, outcome.is_err()).await;
        }
        shared.fence.owe(upstream_key.pid, 0, 0);
        drop((ur, uw));
    };
    let client_end = async {
        if let Err(e) = &outcome {
            if !matches!(e, SessionError::ClientGone) {
                let _ = tokio::time::timeout(LAST_WRITES, async {
                    cw.write_all(&to_client).await?;
                    if let Some(fatal) = e.fatal() {
                        cw.write_all(&fatal).await?;
                    }
                    cw.flush().await
                })
                .await;
            }
        }
        let _ = tokio::time::timeout(LAST_WRITES, cw.shutdown()).await;
        let _ = cr.read(&mut [0u8; 0]).await;
    };
    tokio::join!(server_end, client_end);
    outcome
}

/// How long a session that ends waits for each of its last writes.
const LAST_WRITES: Duration = Duration::from_secs(10);
