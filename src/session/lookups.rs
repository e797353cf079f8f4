//! Lookup budgets: how many statements a login may run per minute that look up a protected column
//! (`lookup: true`). A lookup finds the caller by the number on screen; ten guesses per statement
//! without a rate would still search a phone number's few unknown digits in seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A token bucket per login, shared by all its sessions: a full minute's allowance at once, refilled
/// continuously. Kept in memory only; a restart forgives.
#[derive(Debug, Default)]
pub struct LookupBudget {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Logins remembered before the full buckets are forgotten (a full bucket is the default state).
const PRUNE_AT: usize = 10_000;

impl LookupBudget {
    /// Takes `n` lookups from `user`'s allowance of `per_minute` (0: unlimited); false, taking
    /// nothing, when fewer are left.
    pub fn take(&self, user: &str, n: u32, per_minute: u32, now: Instant) -> bool {
        if per_minute == 0 || n == 0 {
            return true;
        }
        let cap = f64::from(per_minute);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT && !buckets.contains_key(user) {
            buckets.retain(|_, b| refill(*b, cap, now).tokens < cap);
        }
        let b = buckets
            .entry(user.to_owned())
            .or_insert(Bucket { tokens: cap, at: now });
        *b = refill(*b, cap, now);
        if b.tokens + 1e-9 < f64::from(n) {
            return false;
        }
        b.tokens -= f64::from(n);
        true
    }
}

fn refill(b: Bucket, cap: f64, now: Instant) -> Bucket {
    let secs = now.saturating_duration_since(b.at).as_secs_f64();
    Bucket {
        tokens: (b.tokens + secs * cap / 60.0).min(cap),
        at: now.max(b.at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_minutes_allowance_then_one_per_refill_interval_per_login() {
        let b = LookupBudget::default();
        let t0 = Instant::now();
        for _ in 0..6 {
            assert!(b.take("agent", 1, 6, t0));
        }
        assert!(!b.take("agent", 1, 6, t0), "the seventh in the same instant");
        assert!(b.take("other", 1, 6, t0), "another login has its own allowance");
        // 6 per minute: one more every 10 s.
        assert!(!b.take("agent", 1, 6, t0 + Duration::from_secs(9)));
        assert!(b.take("agent", 1, 6, t0 + Duration::from_secs(10)));
        assert!(!b.take("agent", 1, 6, t0 + Duration::from_secs(10)));
        // Several at once take all or nothing.
        assert!(!b.take("agent", 3, 6, t0 + Duration::from_secs(30)));
        assert!(b.take("agent", 2, 6, t0 + Duration::from_secs(30)));
        // Refills up to a minute's worth, not beyond.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..6 {
            assert!(b.take("agent", 1, 6, later));
        }
        assert!(!b.take("agent", 1, 6, later));
        assert!(b.take("agent", 1000, 0, later), "0 means unlimited");
    }

    #[test]
    fn full_buckets_are_forgotten_when_many_logins_were_seen() {
        let b = LookupBudget::default();
        let t0 = Instant::now();
        for i in 0..PRUNE_AT {
            assert!(b.take(&format!("u{i}"), 1, 60, t0));
        }
        assert!(b.take("u0", 59, 60, t0));
        // A minute later every bucket but u0's (empty again) is full and can go.
        let t1 = t0 + Duration::from_secs(60);
        assert!(b.take("u0", 60, 60, t1));
        assert!(b.take("new", 1, 60, t1));
        let n = b.buckets.lock().unwrap().len();
        assert_eq!(n, 2, "u0 (empty) and new are kept");
    }
}
