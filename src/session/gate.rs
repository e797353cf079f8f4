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

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A startup younger than this is never ended to make room.
pub const MIN_AGE: Duration = Duration::from_secs(1);

/// An authenticating startup is ended for a waiting login only once it has authenticated this
/// long (counted from its turn, not its arrival: round 205 AP1, round 206 AQ1, logins that had
/// waited their turn in a burst were ended as soon as they got it). A real client answers the
/// password challenge in milliseconds, a slow one or one far away in well under this. With
/// `AUTH_PLACES`, it sets how fast a flood of logins that stop at the challenge may come (about 85
/// a second) before real logins wait out their time in line (round 207 AR1).
pub const AUTH_MIN_AGE: Duration = Duration::from_millis(1500);

/// Places at the least, whatever the session limit: a place costs a socket and a small buffer,
/// and the more there are, the more connections a second a flood of silent ones needs to keep
/// every place younger than `MIN_AGE` (round 201 AL4: 20 a second against 10 places).
pub const MIN_PLACES: usize = 1024;

/// Startups that may authenticate at once. Each holds a connection to the server from its startup
/// packet on, before any password: unbounded, clients that stop at the password challenge filled
/// the server's max_connections and locked every agent out (round 203 AN3). The others wait
/// their turn in order of arrival.
pub const AUTH_PLACES: usize = 128;

/// Places for connections in startup.
pub struct StartupGate {
    places: usize,
    auth_places: usize,
    min_age: Duration,
    auth_min_age: Duration,
    inner: Mutex<Inner>,
    next: AtomicU64,
}

#[derive(Default)]
struct Inner {
    /// Startups under way by arrival.
    pending: BTreeMap<u64, Pending>,
    /// Startups waiting for their turn to authenticate, first come first.
    waiting: VecDeque<u64>,
}

struct Pending {
    since: Instant,
    /// When it began to authenticate: from then on it holds (or is about to take) a session slot
    /// and a server connection.
    authenticating: Option<Instant>,
    /// How to tell it to end.
    notify: Arc<Notify>,
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
    pub fn new(places: usize) -> Self {
        Self::exactly(places.max(MIN_PLACES), AUTH_PLACES, MIN_AGE, AUTH_MIN_AGE)
    }

    fn exactly(places: usize, auth_places: usize, min_age: Duration, auth_min_age: Duration) -> Self {
        StartupGate {
            places: places.max(1),
            auth_places: auth_places.max(1),
            min_age,
            auth_min_age,
            inner: Mutex::new(Inner::default()),
            next: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for a startup arriving now; None when all are taken and none may be ended
    /// for it.
    pub fn enter(&self, now: Instant) -> Option<Place<'_>> {
        let mut inner = self.lock();
        let mut ended_another = false;
        if inner.pending.len() >= self.places {
            let victim = victim(&inner.pending, now, self.min_age, |_, p| Some(p.since))?;
            inner.end(victim);
            ended_another = true;
        }
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        inner.pending.insert(
            seq,
            Pending {
                since: now,
                authenticating: None,
                notify: notify.clone(),
            },
        );
        Some(Place {
            ended_another,
            gate: self,
            seq,
            notify,
        })
    }

    /// How many startups may be under way at once.
    pub fn places(&self) -> usize {
        self.places
    }

    /// Startups under way now.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }
}

/// The startup to end for a newcomer, of those whose clock `started` gives (None: not a
/// candidate): the one that started first, once it is `min_age` old. Only by age: preferring a
/// busier address ended young real logins from a CRM server's or a NAT's one address when a
/// flood came from many (round 207 AR2).
fn victim(
    pending: &BTreeMap<u64, Pending>,
    now: Instant,
    min_age: Duration,
    started: impl Fn(u64, &Pending) -> Option<Instant>,
) -> Option<u64> {
    pending
        .iter()
        .filter_map(|(&seq, p)| started(seq, p).map(|t| (seq, t)))
        .min_by_key(|&(_, t)| t)
        .filter(|&(_, t)| now.saturating_duration_since(t) >= min_age)
        .map(|(seq, _)| seq)
}

impl Inner {
    /// Tells startup `seq` to end and gives its place back.
    fn end(&mut self, seq: u64) {
        self.waiting.retain(|&w| w != seq);
        if let Some(p) = self.pending.remove(&seq) {
            // notify_one keeps the wake-up if the startup is not waiting on it yet.
            p.notify.notify_one();
        }
    }
}

impl Place<'_> {
    /// This startup's turn to authenticate, before it connects to the server: true once it may;
    /// false while it waits (it keeps its place in line; ask again). When `AUTH_PLACES` startups
    /// authenticate, the one first in line ends one that has authenticated `AUTH_MIN_AGE`;
    /// `ended` counts it.
    pub fn authenticate(&self, now: Instant, ended: &AtomicU64) -> bool {
        let gate = self.gate;
        let mut inner = gate.lock();
        if inner.pending.get(&self.seq).is_some_and(|p| p.authenticating.is_some()) {
            return true;
        }
        if !inner.waiting.contains(&self.seq) {
            inner.waiting.push_back(self.seq);
        }
        if inner.waiting.front() != Some(&self.seq) {
            return false;
        }
        let busy = inner.pending.values().filter(|p| p.authenticating.is_some()).count();
        if busy >= gate.auth_places {
            let Some(v) = victim(&inner.pending, now, gate.auth_min_age, |_, p| p.authenticating) else {
                return false;
            };
            inner.end(v);
            ended.fetch_add(1, Ordering::Relaxed);
        }
        inner.waiting.pop_front();
        match inner.pending.get_mut(&self.seq) {
            Some(p) => {
                p.authenticating = Some(now);
                true
            }
            None => false,
        }
    }

    /// Ends another authenticating startup, one that may be ended for this one (every session
    /// slot is taken); whether there was one.
    pub fn end_one_authenticating(&self, now: Instant) -> bool {
        let gate = self.gate;
        let mut inner = gate.lock();
        let own = self.seq;
        let found = victim(&inner.pending, now, gate.auth_min_age, |seq, p| {
            p.authenticating.filter(|_| seq != own)
        });
        match found {
            Some(v) => {
                inner.end(v);
                true
            }
            None => false,
        }
    }

    /// Whether another startup authenticates (and so may give a session slot back soon).
    pub fn others_authenticating(&self) -> bool {
        let own = self.seq;
        self.gate
            .lock()
            .pending
            .iter()
            .any(|(&seq, p)| seq != own && p.authenticating.is_some())
    }

    /// Resolves when a newer startup ended this one to make room.
    pub async fn evicted(&self) {
        self.notify.notified().await
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut inner = self.gate.lock();
        inner.pending.remove(&self.seq);
        inner.waiting.retain(|&w| w != self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn ended(p: &Place<'_>) -> bool {
        futures_util::FutureExt::now_or_never(p.evicted()).is_some()
    }

    #[test]
    fn a_full_gate_ends_the_oldest_startup_once_it_is_old_enough() {
        let gate = StartupGate::exactly(2, 64, Duration::from_millis(1000), Duration::from_millis(3000));
        let t = Instant::now();
        let a = gate.enter(at(t, 0)).unwrap();
        let _b = gate.enter(at(t, 10)).unwrap();
        // Both are young: the newcomer is refused.
        assert!(gate.enter(at(t, 500)).is_none());
        assert!(!ended(&a));
        // a has waited a second: it makes room.
        let c = gate.enter(at(t, 1000)).unwrap();
        assert!(c.ended_another);
        assert_eq!(gate.pending(), 2);
        assert!(ended(&a), "the oldest startup is told to end");
        // Dropping the ended place does not free anyone else's.
        drop(a);
        assert_eq!(gate.pending(), 2);
        drop(c);
        assert_eq!(gate.pending(), 1);
        assert!(gate.enter(at(t, 1001)).is_some());
    }

    #[test]
    fn authenticating_startups_are_bounded_and_take_turns() {
        let gate = StartupGate::exactly(100, 2, Duration::from_millis(1000), Duration::from_millis(3000));
        let t = Instant::now();
        let counted = AtomicU64::new(0);
        let silent = gate.enter(at(t, 0)).unwrap();
        let s1 = gate.enter(at(t, 0)).unwrap();
        let s2 = gate.enter(at(t, 10)).unwrap();
        let s3 = gate.enter(at(t, 20)).unwrap();
        let s4 = gate.enter(at(t, 30)).unwrap();
        assert!(s1.authenticate(at(t, 0), &counted) && s2.authenticate(at(t, 10), &counted));
        // Two authenticate; the next ones wait in line, in order, while those are young.
        assert!(!s3.authenticate(at(t, 500), &counted));
        assert!(!s4.authenticate(at(t, 500), &counted));
        // s1's place comes back (its login ended): s3, first in line, takes it; s4 may not jump.
        drop(s1);
        assert!(!s4.authenticate(at(t, 600), &counted), "s4 is behind s3");
        assert!(s3.authenticate(at(t, 700), &counted));
        // s2 has authenticated 3 s: it is ended for s4, which had waited long itself but only
        // now begins, and is not ended for the next one at once.
        assert!(!s4.authenticate(at(t, 2900), &counted));
        assert!(s4.authenticate(at(t, 3010), &counted));
        assert!(
            ended(&s2) && !ended(&silent),
            "the silent one holds no server connection"
        );
        assert_eq!(counted.load(Ordering::Relaxed), 1);
        let s5 = gate.enter(at(t, 3100)).unwrap();
        assert!(
            !s5.authenticate(at(t, 3200), &counted),
            "s3 (2.5 s) and s4 (0.2 s) are young"
        );
        assert!(s5.authenticate(at(t, 3700), &counted), "s3 has authenticated 3 s");
        assert!(ended(&s3) && !ended(&s4));
        // Short of a session slot, it ends another authenticating startup, never itself.
        assert!(s5.end_one_authenticating(at(t, 6100)));
        assert!(ended(&s4) && !ended(&s5));
        assert!(!s5.end_one_authenticating(at(t, 9000)));
    }

    #[test]
    fn places_come_back_when_startups_end() {
        let gate = StartupGate::exactly(1, 64, Duration::from_secs(60), Duration::from_secs(60));
        let t = Instant::now();
        let a = gate.enter(t).unwrap();
        assert!(!a.ended_another);
        assert!(gate.enter(t).is_none());
        drop(a);
        let b = gate.enter(t).unwrap();
        assert!(!ended(&b));
    }
}
