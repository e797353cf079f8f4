//! Statements forwarded before the fence closed that wait on a lock: cancelled before the fence
//! lets the migration commit.
//!
//! A statement that waits on a migration's locks runs once the migration commits, under its new
//! definitions. The fence withholds the answer (`session::fence`), but not what the statement does
//! (round 212 AW3: an INSERT that waited ran the trigger the migration added, which copied a
//! dropped birth date into the ticket, and committed). So while the fence holds the migration at
//! its commit, every backend of an unscharf session that waits for a lock (the migration's, or one
//! held by a statement that waits for it) is cancelled, until none is; the statement fails and
//! its session is cut off as before. A statement still in flight to its backend when the fence
//! closed is caught by looking again for SETTLE.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::server::{CancelTarget, Shared};

/// Which of these backends wait for a lock.
const WAITING: &str =
    "SELECT DISTINCT l.pid FROM pg_catalog.pg_locks l WHERE NOT l.granted AND l.pid = ANY ($1::pg_catalog.int4[])";
/// How long after the fence closed it keeps looking, and how often.
const SETTLE: Duration = Duration::from_millis(150);
const STEP: Duration = Duration::from_millis(25);
/// After this the migration is likely to give up (its trigger waits 10 s): said once in the log.
const PATIENCE: Duration = Duration::from_secs(8);
/// By then the migration has been rolled back (its trigger waits 10 s for the fence), so what
/// still waits runs under the definitions it was judged by; a cancel that never lands (a lock
/// wait on a server unscharf cannot reach for cancels) must not hold every session for good.
const GIVE_UP: Duration = Duration::from_secs(12);

/// Cancels, until none is left and SETTLE has passed, the statements of unscharf's sessions that
/// wait for a lock. Fails closed: while one is left the fence keeps the migration waiting, up to
/// GIVE_UP.
pub(super) async fn cancel_waiting(
    shared: &Shared,
    client: &tokio_postgres::Client,
) -> Result<(), tokio_postgres::Error> {
    let start = Instant::now();
    let mut warned = false;
    loop {
        let targets: Vec<CancelTarget> = shared
            .cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .copied()
            .collect();
        let pids: Vec<i32> = targets.iter().map(|t| t.pid).collect();
        let waiting: Vec<i32> = match client.query(WAITING, &[&pids]).await {
            Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
            // The migration's trigger cancels the fence connection's statements while it asks.
            Err(e) if super::cancelled(&e) => continue,
            Err(e) => return Err(e),
        };
        for t in targets.iter().filter(|t| waiting.contains(&t.pid)) {
            crate::session::startup::send_cancel(shared, *t).await;
            shared.metrics.fence_cancels.fetch_add(1, Ordering::Relaxed);
        }
        if (waiting.is_empty() && start.elapsed() >= SETTLE) || start.elapsed() >= GIVE_UP {
            return Ok(());
        }
        if !warned && start.elapsed() > PATIENCE {
            tracing::warn!(
                waiting = waiting.len(),
                "statements forwarded before a migration still wait for locks; the migration waits for them"
            );
            warned = true;
        }
        tokio::time::sleep(STEP).await;
    }
}
