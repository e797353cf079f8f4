//! The migration fence: while a transaction that ran DDL commits, unscharf forwards nothing, and
//! an answer that began after it comes from definitions the statement was not judged by.
//!
//! Postgres analyzes a statement that waited on a migration's locks under the definitions the
//! migration commits; unscharf judged it by the ones before (red-team round 148). The trigger in
//! `deploy/catalog_watch.sql` therefore asks, at the migration's commit and before its locks go,
//! every unscharf holding the advisory lock `KEY` to let go of it. Letting go means: the epoch
//! turns odd (closed) first, so sessions forward nothing more, and every statement forwarded
//! before whose answer had not begun is cut off (`session::fence`). Once the migration has ended
//! the catalog is read again and the epoch turns even (open).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::server::Shared;

mod blockers;
mod stragglers;

/// The advisory lock every forwarding unscharf holds shared (`deploy/catalog_watch.sql`).
const LOCK: &str = "SELECT pg_catalog.pg_advisory_lock_shared(1970172771, 1)";
/// All of them: a session-level lock granted just before a cancel ended its statement stays held,
/// and the retry holds it twice (round 153: one unlock then left it held, and every migration
/// after was rolled back). The fence connection holds no other advisory lock.
const UNLOCK: &str = "SELECT pg_catalog.pg_advisory_unlock_all()";
/// What the fence connection runs, again and again, while it holds the lock: the trigger cancels
/// it to ask. A statement holds a snapshot while it runs, which CREATE INDEX CONCURRENTLY waits
/// for and behind which VACUUM keeps dead rows (round 158: an hour's sleep held both up), so each
/// lasts a second. A cancel that falls between two is repeated by the trigger a second later.
const WAIT: &str = "SELECT pg_catalog.pg_sleep(1)";
const INSTALLED: &str =
    "SELECT 1 FROM pg_catalog.pg_trigger WHERE tgname = 'unscharf_fence_at_commit' AND tgenabled <> 'D'";

/// Even epochs are open, odd ones closed. Every change is a new epoch, so a session that stamps
/// its statements with the epoch it judged them in can tell whether the fence moved since.
pub struct Fence {
    epoch: AtomicU64,
    changes: watch::Sender<u64>,
    /// What Postgres last said holds up what the closed fence waits for (see `blockers`).
    blockers: Mutex<Option<blockers::Blockers>>,
    /// The backends the closed fence waits on (see `blockers::Roots`).
    roots: blockers::Roots,
    /// What sessions told the closed fence: by upstream backend, the epoch and how many
    /// ReadyForQuery the server still owes them, i.e. whether work they forwarded may still run
    /// (see `stragglers`).
    owed: Mutex<std::collections::HashMap<i32, (u64, usize)>>,
}

impl Default for Fence {
    fn default() -> Self {
        Fence {
            epoch: AtomicU64::new(0),
            changes: watch::channel(0).0,
            blockers: Mutex::new(None),
            roots: Default::default(),
            owed: Mutex::default(),
        }
    }
}

impl Fence {
    /// Read before the catalog snapshot a statement is judged by: the catalog is installed before
    /// the epoch opens, so an open epoch read first guarantees the catalog it opened with.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn is_open(epoch: u64) -> bool {
        epoch.is_multiple_of(2)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn close(&self) {
        self.turn(false);
    }

    pub fn open(&self) {
        self.turn(true);
    }

    /// Whether the backend `pid` may hold up what the closed fence waits for: false only when
    /// Postgres said, in this closed epoch and just now, that it does not.
    pub fn holds_up(&self, pid: i32) -> bool {
        let Ok(b) = self.blockers.lock() else { return true };
        b.as_ref().is_none_or(|b| b.holds_up(pid, self.epoch()))
    }

    /// A session whose upstream backend is `pid` says, in closed `epoch`, that the server owes it
    /// `owed` ReadyForQuery: batches it forwarded that may still run (0: none).
    pub fn owe(&self, pid: i32, epoch: u64, owed: usize) {
        if let Ok(mut m) = self.owed.lock() {
            if owed == 0 {
                m.remove(&pid);
            } else {
                m.insert(pid, (epoch, owed));
            }
        }
    }

    /// The backends that said, in `epoch`, that work they were sent may still run.
    fn owing(&self, epoch: u64) -> Vec<i32> {
        let Ok(m) = self.owed.lock() else { return Vec::new() };
        m.iter()
            .filter(|(_, (e, _))| *e == epoch)
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Marks `pid` as a backend the fence may wait on (a catalog read) while the guard lives.
    pub fn waits_on(&self, pid: i32) -> blockers::Root<'_> {
        self.roots.add(pid)
    }

    fn turn(&self, open: bool) {
        // One writer (the fence task); the check keeps a repeated close from opening.
        let e = self.epoch.load(Ordering::Acquire);
        if Self::is_open(e) != open {
            self.epoch.store(e + 1, Ordering::Release);
            self.changes.send_replace(e + 1);
        }
    }
}

/// Holds the fence for as long as the proxy runs: closed while there is no fence connection, as
/// a migration could then commit without asking.
pub async fn keep(shared: Arc<Shared>) {
    tokio::join!(keep_lock(&shared), blockers::watch(&shared));
}

async fn keep_lock(shared: &Arc<Shared>) {
    let mut warned = false;
    loop {
        turn(shared, false);
        match hold(shared, &mut warned).await {
            Ok(()) => {}
            Err(e) if !warned => {
                tracing::warn!(error = %e, "the migration fence connection failed; statements wait until it is back");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Turns the fence and its gauge in /metrics.
fn turn(shared: &Shared, open: bool) {
    match open {
        true => shared.fence.open(),
        false => shared.fence.close(),
    }
    shared.metrics.fence_open.store(u64::from(open), Ordering::Relaxed);
}

#[derive(Debug, thiserror::Error)]
enum FenceError {
    #[error(transparent)]
    Catalog(#[from] crate::catalog::live::CatalogError),
    #[error("fence connection: {0}")]
    Query(#[from] tokio_postgres::Error),
}

async fn hold(shared: &Shared, warned: &mut bool) -> Result<(), FenceError> {
    let config = shared.state.load().config.clone();
    let client = crate::catalog::live::connect(&config).await?;
    // While it waits for the lock, what blocks it holds the fence closed.
    let pid: i32 = client.query_one(blockers::BACKEND_PID, &[]).await?.get(0);
    let _root = shared.fence.waits_on(pid);
    let installed = client.query_opt(INSTALLED, &[]).await?.is_some();
    if !installed && !*warned {
        tracing::warn!(
            "the migration fence is not installed: run this version's deploy/catalog_watch.sql as a superuser"
        );
    }
    loop {
        // Granted once no migration that asked is still open; the catalog read after it is the
        // one that migration committed. It is read on a connection of its own while this one
        // waits, so that a migration asking meanwhile is heard (round 152: a refresh that another
        // migration's locks held up kept the wait from starting, and that migration was rolled
        // back after 10 s).
        run(&client, LOCK).await?;
        // The wait runs beside the read and is sent again each time its second passes; a
        // second that passed is no ask, and the read goes on (round 160: a read longer than the
        // wait was dropped at every second, and the fence never opened again).
        let mut read = Box::pin(shared.refresh_catalog_now());
        let mut reading = true;
        let mut wait = Box::pin(client.simple_query(WAIT));
        loop {
            tokio::select! {
                r = &mut read, if reading => {
                    reading = false;
                    r?;
                    turn(shared, true);
                    *warned = false;
                }
                w = &mut wait => {
                    if asked(w)? {
                        break;
                    }
                    wait = Box::pin(client.simple_query(WAIT));
                }
            }
        }
        turn(shared, false);
        shared.metrics.fence_closes.fetch_add(1, Ordering::Relaxed);
        stragglers::cancel_waiting(shared, &client).await?;
        run(&client, UNLOCK).await?;
    }
}

/// A cancel meant for the wait can arrive while another statement runs: that one is sent again.
async fn run(client: &tokio_postgres::Client, sql: &str) -> Result<(), tokio_postgres::Error> {
    loop {
        match client.simple_query(sql).await {
            Err(e) if cancelled(&e) => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// Whether the wait ended because a migration asked (true), or its second passed (false).
fn asked(wait: Result<Vec<tokio_postgres::SimpleQueryMessage>, tokio_postgres::Error>) -> Result<bool, FenceError> {
    match wait {
        Ok(_) => Ok(false),
        Err(e) if cancelled(&e) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

fn cancelled(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
}

#[cfg(test)]
mod tests {
    use super::Fence;

    #[test]
    fn every_change_is_a_new_epoch_and_repeats_change_nothing() {
        let f = Fence::default();
        assert!(Fence::is_open(f.epoch()));
        f.close();
        f.close();
        assert_eq!(f.epoch(), 1);
        f.open();
        f.open();
        assert_eq!(f.epoch(), 2);
        assert!(Fence::is_open(f.epoch()));
        assert_eq!(*f.subscribe().borrow(), 2);
    }
}
