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

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A startup younger than this is ended to make room only for a newcomer from a less busy address.
pub const MIN_AGE: Duration = Duration::from_secs(1);

/// Places at the least, whatever the session limit: a place costs a socket and a small buffer,
/// and the more there are, the more connections a second a flood of silent ones needs to keep
/// every place younger than `MIN_AGE` (round 201 AL4: 20 a second against 10 places).
pub const MIN_PLACES: usize = 1024;

/// Startups that may authenticate at once. Each holds a connection to the server from its startup
/// packet on, before any password: unbounded, clients that stop at the password challenge filled
/// the server's max_connections and locked every agent out (round 203 AN3). Real logins take
/// milliseconds, so a few dozen at once is a shift's start.
pub const AUTH_PLACES: usize = 64;

/// Places for connections in startup.
pub struct StartupGate {
    places: usize,
    auth_places: usize,
    min_age: Duration,
    /// Startups under way by arrival.
    pending: Mutex<BTreeMap<u64, Pending>>,
    next: AtomicU64,
}

struct Pending {
    since: Instant,
    /// How to tell it to end.
    notify: Arc<Notify>,
    /// It authenticates: it holds (or is about to take) a session slot and a server connection.
    authenticating: bool,
    addr: IpAddr,
}

/// A place in the gate, given back on drop.
pub struct Place<'a> {
    /// Whether taking this place ended an older startup.
    pub ended_another: bool,
    gate: &'a StartupGate,
    seq: u64,
    addr: IpAddr,
    notify: Arc<Notify>,
}

impl StartupGate {
    pub fn new(places: usize, min_age: Duration) -> Self {
        Self::exactly(places.max(MIN_PLACES), AUTH_PLACES, min_age)
    }

    fn exactly(places: usize, auth_places: usize, min_age: Duration) -> Self {
        StartupGate {
            places: places.max(1),
            auth_places: auth_places.max(1),
            min_age,
            pending: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for a startup from `addr` arriving now; None when all are taken and none
    /// may be ended for it.
    pub fn enter(&self, now: Instant, addr: IpAddr) -> Option<Place<'_>> {
        let mut pending = self.lock();
        let mut ended_another = false;
        if pending.len() >= self.places {
            let victim = self.victim(&pending, now, addr, |_, _| true)?;
            end(&mut pending, victim);
            ended_another = true;
        }
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        pending.insert(
            seq,
            Pending {
                since: now,
                notify: notify.clone(),
                authenticating: false,
                addr,
            },
        );
        Some(Place {
            ended_another,
            gate: self,
            seq,
            addr,
            notify,
        })
    }

    /// The startup to end for a newcomer from `addr`, of those `which` selects: the oldest that
    /// has waited `min_age`, or else the oldest from the address with the most of them under way,
    /// when that address has more than the newcomer's own and one more (a flood from one address
    /// does not keep the others out by staying young).
    fn victim(
        &self,
        pending: &BTreeMap<u64, Pending>,
        now: Instant,
        addr: IpAddr,
        which: impl Fn(u64, &Pending) -> bool,
    ) -> Option<u64> {
        let candidates = || pending.iter().filter(|(&seq, p)| which(seq, p));
        if let Some((&seq, _)) = candidates().find(|(_, p)| now.saturating_duration_since(p.since) >= self.min_age) {
            return Some(seq);
        }
        let mut per_addr: HashMap<IpAddr, usize> = HashMap::new();
        for (_, p) in candidates() {
            *per_addr.entry(p.addr).or_default() += 1;
        }
        let own = per_addr.get(&addr).copied().unwrap_or(0);
        let (&busiest, &n) = per_addr.iter().max_by_key(|(_, &n)| n)?;
        if n <= own + 1 {
            return None;
        }
        candidates().find(|(_, p)| p.addr == busiest).map(|(&seq, _)| seq)
    }

    /// How many startups may be under way at once.
    pub fn places(&self) -> usize {
        self.places
    }

    /// Startups under way now.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }
}

/// Tells startup `seq` to end and gives its place back.
fn end(pending: &mut BTreeMap<u64, Pending>, seq: u64) {
    if let Some(p) = pending.remove(&seq) {
        // notify_one keeps the wake-up if the startup is not waiting on it yet.
        p.notify.notify_one();
    }
}

impl Place<'_> {
    /// Marks this startup as authenticating, before it connects to the server: false when
    /// `AUTH_PLACES` startups already do and none of them may be ended for it. `ended` counts one
    /// that was.
    pub fn authenticate(&self, now: Instant, ended: &AtomicU64) -> bool {
        let gate = self.gate;
        let mut pending = gate.lock();
        let others = pending.values().filter(|p| p.authenticating).count();
        if others >= gate.auth_places {
            let Some(victim) = gate.victim(&pending, now, self.addr, |_, p| p.authenticating) else {
                return false;
            };
            end(&mut pending, victim);
            ended.fetch_add(1, Ordering::Relaxed);
        }
        match pending.get_mut(&self.seq) {
            Some(p) => {
                p.authenticating = true;
                true
            }
            None => false,
        }
    }

    /// Ends another authenticating startup, one that may be ended for this one (every session
    /// slot is taken); whether there was one.
    pub fn end_one_authenticating(&self, now: Instant) -> bool {
        let gate = self.gate;
        let mut pending = gate.lock();
        let own = self.seq;
        match gate.victim(&pending, now, self.addr, |seq, p| seq != own && p.authenticating) {
            Some(victim) => {
                end(&mut pending, victim);
                true
            }
            None => false,
        }
    }

    /// Whether another startup authenticates (and so may give a session slot back soon).
    pub fn others_authenticating(&self) -> bool {
        let own = self.seq;
        self.gate.lock().iter().any(|(&seq, p)| seq != own && p.authenticating)
    }

    /// Resolves when a newer startup ended this one to make room.
    pub async fn evicted(&self) {
        self.notify.notified().await
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.gate.lock().remove(&self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn ended(p: &Place<'_>) -> bool {
        futures_util::FutureExt::now_or_never(p.evicted()).is_some()
    }

    #[test]
    fn a_full_gate_ends_the_oldest_startup_once_it_is_old_enough() {
        let gate = StartupGate::exactly(2, 64, Duration::from_millis(1000));
        let t = Instant::now();
        let a = gate.enter(at(t, 0), A).unwrap();
        let _b = gate.enter(at(t, 10), B).unwrap();
        // Both are young and from as busy addresses as the newcomer's: it is refused.
        assert!(gate.enter(at(t, 500), A).is_none());
        assert!(!ended(&a));
        // a has waited a second: it makes room.
        let c = gate.enter(at(t, 1000), A).unwrap();
        assert!(c.ended_another);
        assert_eq!(gate.pending(), 2);
        assert!(ended(&a), "the oldest startup is told to end");
        // Dropping the ended place does not free anyone else's.
        drop(a);
        assert_eq!(gate.pending(), 2);
        drop(c);
        assert_eq!(gate.pending(), 1);
        assert!(gate.enter(at(t, 1001), A).is_some());
    }

    #[test]
    fn a_flood_from_one_address_gives_way_to_others_however_young() {
        let gate = StartupGate::exactly(4, 64, Duration::from_secs(60));
        let t = Instant::now();
        let flood: Vec<Place<'_>> = (0..4).map(|i| gate.enter(at(t, i), A).unwrap()).collect();
        // Another flood connection from A finds no room; an agent from B does.
        assert!(gate.enter(at(t, 10), A).is_none());
        let agent = gate.enter(at(t, 10), B).unwrap();
        assert!(ended(&flood[0]) && !ended(&flood[1]));
        assert!(!ended(&agent));
    }

    #[test]
    fn authenticating_startups_are_bounded_apart() {
        let gate = StartupGate::exactly(100, 2, Duration::from_millis(1000));
        let t = Instant::now();
        let counted = AtomicU64::new(0);
        let silent = gate.enter(at(t, 0), A).unwrap();
        let s1 = gate.enter(at(t, 0), A).unwrap();
        let s2 = gate.enter(at(t, 10), A).unwrap();
        assert!(s1.authenticate(at(t, 0), &counted) && s2.authenticate(at(t, 10), &counted));
        // Two authenticate; a third from the same address waits its turn while they are young.
        let s3 = gate.enter(at(t, 500), A).unwrap();
        assert!(!s3.authenticate(at(t, 500), &counted));
        // Once the oldest has taken a second, it is ended for the newcomer.
        assert!(s3.authenticate(at(t, 1000), &counted));
        assert!(
            ended(&s1) && !ended(&s2) && !ended(&silent),
            "the silent one holds no server connection"
        );
        assert_eq!(counted.load(Ordering::Relaxed), 1);
        // Short of a session slot, it ends another authenticating startup, never itself.
        assert!(s3.end_one_authenticating(at(t, 2000)));
        assert!(ended(&s2) && !ended(&s3));
        assert!(!s3.end_one_authenticating(at(t, 3000)));
    }

    #[test]
    fn places_come_back_when_startups_end() {
        let gate = StartupGate::exactly(1, 64, Duration::from_secs(60));
        let t = Instant::now();
        let a = gate.enter(t, A).unwrap();
        assert!(!a.ended_another);
        assert!(gate.enter(t, A).is_none());
        drop(a);
        let b = gate.enter(t, A).unwrap();
        assert!(!ended(&b));
    }
}
