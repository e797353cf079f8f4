//! Which backends hold up what the closed fence waits for, as Postgres sees it: a session held
//! past FENCE_PATIENCE ends only if it is one of them (round 158: ending every session inside a
//! transaction ended agents nothing waited for; round 162 F1: a slow catalog read after one
//! COMMENT did).
//!
//! While the fence is closed it waits on backends: its own connection, for the lock a migration
//! holds; the migration, for locks of other sessions; the catalog read, for a migration's locks.
//! Those are the roots (the holder of the migration's exclusive lock, found by its lock, and the
//! backends registered with `Roots`); everything that blocks a root, at any remove
//! (pg_blocking_pids, which sees locks of sessions idle in a transaction too), may be a session
//! whose next statement the fence holds, which Postgres cannot see. With no root, or no fresh
//! answer, every held session counts.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::server::Shared;

pub(super) const BACKEND_PID: &str = "SELECT pg_catalog.pg_backend_pid()";

/// The roots and what blocks them, at any remove. Roots are in the answer.
const BLOCKERS: &str = "WITH RECURSIVE r AS (
      SELECT l.pid FROM pg_catalog.pg_locks l
      WHERE l.locktype = 'advisory' AND l.classid = 1970172771 AND l.objid = 1 AND l.objsubid = 2
        AND l.mode = 'ExclusiveLock' AND l.granted
        AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
      UNION SELECT pg_catalog.unnest($1::int4[])),
    b(pid) AS (SELECT pid FROM r UNION SELECT pg_catalog.unnest(pg_catalog.pg_blocking_pids(b.pid)) FROM b)
    SELECT pid FROM b";
/// How long the fence stays closed before unscharf asks, and how often it asks again; an answer
/// older than FRESH counts as none.
const AFTER: Duration = Duration::from_secs(2);
const EVERY: Duration = Duration::from_secs(1);
const FRESH: Duration = Duration::from_secs(3);

/// The backends that block the roots, as read in one closed epoch at one moment.
pub(super) struct Blockers {
    epoch: u64,
    at: Instant,
    pids: HashSet<i32>,
}

impl Blockers {
    /// Whether `pid` may hold up the fence in `epoch`.
    pub(super) fn holds_up(&self, pid: i32, epoch: u64) -> bool {
        self.epoch != epoch || self.at.elapsed() > FRESH || self.pids.contains(&pid)
    }
}

/// Backends of unscharf's own that the fence may wait on, each once per registration.
#[derive(Default)]
pub(super) struct Roots(Mutex<Vec<i32>>);

/// Removes its backend from the roots when dropped.
pub struct Root<'a>(&'a Roots, i32);

impl Roots {
    pub(super) fn add(&self, pid: i32) -> Root<'_> {
        if let Ok(mut r) = self.0.lock() {
            r.push(pid);
        }
        Root(self, pid)
    }

    fn list(&self) -> Vec<i32> {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Root<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.0 .0.lock() {
            if let Some(i) = r.iter().position(|p| *p == self.1) {
                r.swap_remove(i);
            }
        }
    }
}

/// Asks every second, while the fence is closed (after AFTER), on a connection of its own, and
/// publishes the answer; on a failure publishes none and connects again.
pub(super) async fn watch(shared: &Arc<Shared>) {
    let mut moves = shared.fence.subscribe();
    loop {
        let config = shared.state.load().config.clone();
        let Ok(client) = crate::catalog::live::connect(&config).await else {
            tokio::time::sleep(EVERY).await;
            continue;
        };
        loop {
            let epoch = shared.fence.epoch();
            if super::Fence::is_open(epoch) {
                let _ = moves.changed().await;
                continue;
            }
            tokio::time::sleep(AFTER).await;
            let mut failed = false;
            while shared.fence.epoch() == epoch && !failed {
                let roots = shared.fence.roots.list();
                let asked = tokio::time::timeout(EVERY, client.query(BLOCKERS, &[&roots])).await;
                let pids: Option<HashSet<i32>> = match asked {
                    Ok(Ok(rows)) => Some(rows.iter().map(|r| r.get(0)).collect()),
                    _ => None,
                };
                failed = pids.is_none();
                publish(shared, epoch, pids.filter(|p| !p.is_empty()));
                tokio::time::sleep(EVERY).await;
            }
            if failed {
                break;
            }
        }
    }
}

fn publish(shared: &Shared, epoch: u64, pids: Option<HashSet<i32>>) {
    if let Ok(mut b) = shared.fence.blockers.lock() {
        *b = pids.map(|pids| Blockers {
            epoch,
            at: Instant::now(),
            pids,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_fresh_answer_of_the_same_epoch_excuses_a_session() {
        let b = Blockers {
            epoch: 3,
            at: Instant::now(),
            pids: HashSet::from([10, 11]),
        };
        assert!(b.holds_up(10, 3));
        assert!(!b.holds_up(12, 3));
        assert!(b.holds_up(12, 5), "another closure");
        let old = Blockers {
            at: Instant::now() - FRESH - Duration::from_millis(1),
            ..b
        };
        assert!(old.holds_up(12, 3), "stale");
    }

    #[test]
    fn roots_leave_with_their_guard() {
        let roots = Roots::default();
        let a = roots.add(7);
        {
            let _b = roots.add(8);
            assert_eq!(roots.list(), vec![7, 8]);
        }
        assert_eq!(roots.list(), vec![7]);
        drop(a);
        assert!(roots.list().is_empty());
    }
}
