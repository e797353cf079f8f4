//! Bounds the connections still starting up (before authentication ends) apart from the session
//! limit, and makes room by ending the one that has waited longest.
//!
//! A socket that connects and says nothing must not hold a session's slot: at the session limit a
//! few hundred of them locked every agent out for the startup timeout (round 190 AA5). Startups
//! now take a place in this gate instead, and a session slot only once the client has sent its
//! startup packet. When every place is taken, the newcomer ends the oldest startup if that one has
//! waited at least `MIN_AGE` (a real client's handshake takes milliseconds), and is refused
//! otherwise, so a burst of real logins does not end each other.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A startup younger than this is never ended to make room.
pub const MIN_AGE: Duration = Duration::from_secs(1);

/// Places for connections in startup.
pub struct StartupGate {
    places: usize,
    min_age: Duration,
    /// Startups under way by arrival: when each came, and how to tell it to end.
    pending: Mutex<BTreeMap<u64, (Instant, Arc<Notify>)>>,
    next: AtomicU64,
}

/// A place in the gate, given back on drop.
pub struct Place<'a> {
    /// Whether taking this place ended an older startup.
    pub ended_another: bool,
    gate: &'a StartupGate,
    seq: u64,
    notify: Arc<Notify>,
}

impl StartupGate {
    pub fn new(places: usize, min_age: Duration) -> Self {
        StartupGate {
            places: places.max(1),
            min_age,
            pending: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        }
    }

    /// Takes a place for a startup arriving now; None when all are taken by startups younger than
    /// the minimum age.
    pub fn enter(&self, now: Instant) -> Option<Place<'_>> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut ended_another = false;
        if pending.len() >= self.places {
            let (&oldest, &(since, _)) = pending.first_key_value()?;
            if now.saturating_duration_since(since) < self.min_age {
                return None;
            }
            if let Some((_, notify)) = pending.remove(&oldest) {
                // notify_one keeps the wake-up if the startup is not waiting on it yet.
                notify.notify_one();
                ended_another = true;
            }
        }
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        pending.insert(seq, (now, notify.clone()));
        Some(Place {
            ended_another,
            gate: self,
            seq,
            notify,
        })
    }

    /// Startups under way now.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Place<'_> {
    /// Resolves when a newer startup ended this one to make room.
    pub async fn evicted(&self) {
        self.notify.notified().await
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut pending = self.gate.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.remove(&self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_full_gate_ends_the_oldest_startup_once_it_is_old_enough() {
        let gate = StartupGate::new(2, Duration::from_millis(1000));
        let t = Instant::now();
        let a = gate.enter(at(t, 0)).unwrap();
        let _b = gate.enter(at(t, 10)).unwrap();
        // Both are young: the newcomer is refused, nobody is ended.
        assert!(gate.enter(at(t, 500)).is_none());
        assert!(futures_util::FutureExt::now_or_never(a.evicted()).is_none());
        // a has waited a second: it makes room.
        let c = gate.enter(at(t, 1000)).unwrap();
        assert!(c.ended_another);
        assert_eq!(gate.pending(), 2);
        let woke = futures_util::FutureExt::now_or_never(a.evicted());
        assert!(woke.is_some(), "the oldest startup is told to end");
        // Dropping the ended place does not free anyone else's.
        drop(a);
        assert_eq!(gate.pending(), 2);
        drop(c);
        assert_eq!(gate.pending(), 1);
        assert!(gate.enter(at(t, 1001)).is_some());
    }

    #[test]
    fn places_come_back_when_startups_end() {
        let gate = StartupGate::new(1, Duration::from_secs(60));
        let t = Instant::now();
        let a = gate.enter(t).unwrap();
        assert!(!a.ended_another);
        assert!(gate.enter(t).is_none());
        drop(a);
        let b = gate.enter(t).unwrap();
        assert!(futures_util::FutureExt::now_or_never(b.evicted()).is_none());
    }
}
