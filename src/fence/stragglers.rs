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
        // the server has answered everything they sent.
        // Not past OWED_PATIENCE, though: a session pipelining a thousand batches would otherwise
        // hold every migration until it is rolled back, and every session with it (round 218
        // BC4); what is still queued then is the residual the README names.
        let owing = match start.elapsed() < OWED_PATIENCE {
            true => shared.fence.owing(shared.fence.epoch()),
            false => Vec::new(),
        };
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
