//! Statements forwarded before the fence closed that still run or wait: cancelled before the
//! fence lets the migration commit.
//!
//! A statement that runs on past a migration's commit does the rest of its work under the new
//! definitions. The fence withholds its answer (`session::fence`), but not what it does: round 212
//! AW3, an INSERT that waited on the migration's locks ran the trigger the migration added, which
//! copied a dropped birth date into the ticket, and committed; round 214 AY1, an INSERT queued
//! behind a `pg_sleep` in the same message; AY3, a listed helper's INSERT planned only when it ran,
//! after a slow argument. So while the fence holds the migration at its commit, every backend of an
//! unscharf session that is inside a transaction is cancelled (one idle in a transaction ignores a
//! cancel; a running statement fails, and the rest of its message or pipeline with it), then the
//! ones that wait for a lock or whose session is still owed answers by the server (a batch queued
//! behind the running one), again and again, for SETTLE at least, and all of them once more just
//! before the fence lets go. The price: a migration's commit cancels whatever unscharf's sessions are running
//! at that moment, whether it touches them or not.
//!
//! Cancels end one batch at a time. A session still owed answers after OWED_PATIENCE has more
//! queued than they can end in time (round 218 BC4: a thousand pipelined sleeps); its backend is
//! ended with `pg_terminate_backend`, which the catalog role may do only as a member of
//! `pg_signal_backend`. Without that the migration commits, and what is still queued runs on: the
//! gap the README names.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::server::{CancelTarget, Shared};

/// Which of these backends are inside a transaction (they hold their virtual transaction id's
/// lock), and whether each waits for a lock.
const BUSY: &str = "SELECT l.pid, pg_catalog.bool_or(NOT l.granted) FROM pg_catalog.pg_locks l
    WHERE l.pid = ANY ($1::pg_catalog.int4[]) AND (NOT l.granted OR l.locktype = 'virtualxid')
    GROUP BY l.pid";
/// How long after the fence closed it keeps looking, and how often.
const SETTLE: Duration = Duration::from_millis(150);
const STEP: Duration = Duration::from_millis(25);
/// How long sessions the server still owes answers keep the migration waiting.
const OWED_PATIENCE: Duration = Duration::from_secs(2);
/// After this the migration is likely to give up (its trigger waits 10 s): said once in the log.
const PATIENCE: Duration = Duration::from_secs(8);
/// By then the migration has been rolled back (its trigger waits 10 s for the fence), so what
/// still waits runs under the definitions it was judged by; a cancel that never lands (a lock
/// wait on a server unscharf cannot reach for cancels) must not hold every session for good.
const GIVE_UP: Duration = Duration::from_secs(12);

/// Cancels the statements of unscharf's sessions that run or wait, as the module says. Fails
/// closed: while one waits the fence keeps the migration waiting, up to GIVE_UP.
pub(super) async fn cancel_waiting(
    shared: &Shared,
    client: &tokio_postgres::Client,
) -> Result<(), tokio_postgres::Error> {
    let start = Instant::now();
    let mut warned = false;
    let mut first = true;
    let mut ends = Ends::default();
    loop {
        let targets: Vec<CancelTarget> = shared
            .cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .copied()
            .collect();
        let pids: Vec<i32> = targets.iter().map(|t| t.pid).collect();
        let busy: Vec<(i32, bool)> = match client.query(BUSY, &[&pids]).await {
            Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            // The migration's trigger cancels the fence connection's statements while it asks.
            Err(e) if super::cancelled(&e) => continue,
            Err(e) => return Err(e),
        };
        // Sessions whose server still owes them answers: a batch queued behind the one running
        // would start once that one is cancelled (round 216 BA1), so they are cancelled until
        // the server has answered everything they sent. Past OWED_PATIENCE their backends are
        // ended: the migration waits until Postgres has taken the ask (round 220 BE2: the
        // trigger cancelled one ask and the fence gave up on the rest), not until they are gone:
        // a backend told to end starts nothing more, and one statement that ignores the signal
        // for 40 s would otherwise have every migration rolled back (round 222 BG1). Those
        // unscharf may not end no longer hold the migration either: a session pipelining a
        // thousand batches would otherwise hold every migration until it is rolled back, and
        // every session with it (round 218 BC4); what is still queued then is the residual the
        // README names.
        let owing = shared.fence.owing(shared.fence.epoch());
        let patient = start.elapsed() < OWED_PATIENCE;
        if !patient {
            ends.end(shared, client, &owing).await;
        }
        let owing: Vec<i32> = owing.into_iter().filter(|p| patient || ends.waits_for(p)).collect();
        let waiting = busy.iter().any(|(_, w)| *w) || !owing.is_empty();
        let done = (!waiting && start.elapsed() >= SETTLE) || start.elapsed() >= GIVE_UP;
        let cancel = |pid: &i32| owing.contains(pid) || busy.iter().any(|(p, w)| p == pid && (*w || first || done));
        for t in targets.iter().filter(|t| cancel(&t.pid)) {
            crate::session::startup::send_cancel(shared, *t).await;
            shared.metrics.fence_cancels.fetch_add(1, Ordering::Relaxed);
        }
        if done {
            return Ok(());
        }
        first = false;
        if !warned && start.elapsed() > PATIENCE {
            tracing::warn!(
                "statements forwarded before a migration still wait for locks; the migration waits for them"
            );
            warned = true;
        }
        tokio::time::sleep(STEP).await;
    }
}

/// Ends a backend (of a session the server still owes answers) without waiting for it to go: it
/// ends at its next check for interrupts, before it reads another message, and a short ask is
/// rarely caught by the trigger's cancels.
const TERMINATE: &str = "SELECT pg_catalog.pg_terminate_backend($1)";

/// Whether the catalog role was found unable to end backends (said once in the log).
static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The backends the fence asked Postgres to end, and those it may not.
#[derive(Default)]
struct Ends {
    signalled: std::collections::HashSet<i32>,
    unable: std::collections::HashSet<i32>,
}

impl Ends {
    /// Whether the migration still waits for `pid`: not once Postgres was told to end it, or
    /// refused to.
    fn waits_for(&self, pid: &i32) -> bool {
        !self.signalled.contains(pid) && !self.unable.contains(pid)
    }

    /// Asks Postgres to end each of `pids` not yet told to end, nor refused; a cancelled ask is
    /// made again on the next call.
    async fn end(&mut self, shared: &Shared, client: &tokio_postgres::Client, pids: &[i32]) {
        for pid in pids {
            if !self.waits_for(pid) {
                continue;
            }
            match client.query_one(TERMINATE, &[pid]).await {
                Ok(_) => {
                    if self.signalled.insert(*pid) {
                        shared.metrics.fence_terminations.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
                    self.unable.insert(*pid);
                    if !WARNED.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "a session had more work queued at the server than cancels could end before a migration's commit; \
                             it runs on under the new definitions. Grant pg_signal_backend to the catalog role to let unscharf end such backends"
                        );
                    }
                }
                // Cancelled by the migration's trigger: asked again next time round.
                Err(e) => tracing::debug!(error = %e, "ending a backend the fence waits for"),
            }
        }
    }
}
