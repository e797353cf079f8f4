//! Bounds the connections still starting up (before authentication ends) apart from the session
//! limit, and makes room by ending the one that has waited longest.
//!
//! A socket that connects and says nothing must not hold a session's slot: at the session limit a
//! few hundred of them locked every agent out for the startup timeout (round 190 AA5). Startups
//! now take a place in this gate instead, and a session slot only once the client has sent its
//! startup packet. When every place is taken, the newcomer ends the oldest startup if that one has
//! waited at least `MIN_AGE` (a real client's handshake takes milliseconds), and is refused
//! otherwise, so a burst of real logins does not end each other. Likewise, a startup that finds
//! every session slot taken ends the oldest startup that holds one (round 201 AL3: connections
//! left waiting at the password challenge held the slots for the startup timeout).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A startup younger than this is never ended to make room.
pub const MIN_AGE: Duration = Duration::from_secs(1);

/// Places at the least, whatever the session limit: a place costs a socket and a small buffer,
/// and the more there are, the more connections a second a flood of silent ones needs to keep
/// every place younger than `MIN_AGE` (round 201 AL4: 20 a second against 10 places).
pub const MIN_PLACES: usize = 1024;

/// Places for connections in startup.
pub struct StartupGate {
    places: usize,
    min_age: Duration,
    /// Startups under way by arrival: when each came, how to tell it to end, and whether it holds
    /// a session slot.
    pending: Mutex<BTreeMap<u64, Pending>>,
    next: AtomicU64,
}

struct Pending {
    since: Instant,
    notify: Arc<Notify>,
    holds_slot: bool,
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
        Self::exactly(places.max(MIN_PLACES), min_age)
    }

    fn exactly(places: usize, min_age: Duration) -> Self {
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
            if !self.end_oldest(&mut pending, now, |_| true) {
                return None;
            }
            ended_another = true;
        }
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        pending.insert(
            seq,
            Pending {
                since: now,
                notify: notify.clone(),
                holds_slot: false,
            },
        );
        Some(Place {
            ended_another,
            gate: self,
            seq,
            notify,
        })
    }

    /// Ends the oldest startup that holds a session slot and has waited `min_age`; whether there
    /// was one.
    pub fn end_oldest_holding_slot(&self, now: Instant) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        self.end_oldest(&mut pending, now, |p| p.holds_slot)
    }

    fn end_oldest(&self, pending: &mut BTreeMap<u64, Pending>, now: Instant, which: impl Fn(&Pending) -> bool) -> bool {
        let Some((&seq, p)) = pending.iter().find(|(_, p)| which(p)) else {
            return false;
        };
        if now.saturating_duration_since(p.since) < self.min_age {
            return false;
        }
        if let Some(p) = pending.remove(&seq) {
            // notify_one keeps the wake-up if the startup is not waiting on it yet.
            p.notify.notify_one();
        }
        true
    }

    /// How many startups may be under way at once.
    pub fn places(&self) -> usize {
        self.places
    }

    /// Startups under way now.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Place<'_> {
    /// This startup now holds a session slot.
    pub fn holds_slot(&self) {
        let mut pending = self.gate.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pending.get_mut(&self.seq) {
            p.holds_slot = true;
        }
    }

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
        let gate = StartupGate::exactly(2, Duration::from_millis(1000));
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
    fn a_startup_short_of_a_session_slot_ends_the_oldest_that_holds_one() {
        let gate = StartupGate::exactly(10, Duration::from_millis(1000));
        let t = Instant::now();
        let silent = gate.enter(at(t, 0)).unwrap();
        let stalled = gate.enter(at(t, 10)).unwrap();
        stalled.holds_slot();
        assert!(!gate.end_oldest_holding_slot(at(t, 500)), "too young");
        assert!(gate.end_oldest_holding_slot(at(t, 1500)));
        assert!(futures_util::FutureExt::now_or_never(stalled.evicted()).is_some());
        assert!(
            futures_util::FutureExt::now_or_never(silent.evicted()).is_none(),
            "it holds no slot"
        );
        assert!(!gate.end_oldest_holding_slot(at(t, 1600)));
    }

    #[test]
    fn places_come_back_when_startups_end() {
        let gate = StartupGate::exactly(1, Duration::from_secs(60));
        let t = Instant::now();
        let a = gate.enter(t).unwrap();
        assert!(!a.ended_another);
        assert!(gate.enter(t).is_none());
        drop(a);
        let b = gate.enter(t).unwrap();
        assert!(futures_util::FutureExt::now_or_never(b.evicted()).is_none());
    }
}
