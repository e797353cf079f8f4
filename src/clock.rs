//! Today's local date, which end dates are compared with, cheap enough to read for every message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{Datelike, Local, NaiveDate};

/// Asking the time zone is what costs; the answer is reused until the next local midnight, and at
/// most this long, so a changed zone or clock is noticed.
const RECHECK_SECS: u64 = 300;

/// The cached date and until when it holds, packed into one atomic so readers never see a torn pair:
/// days since 0001-01-01 in the high half, the Unix second it expires in the low half.
#[derive(Debug, Default)]
pub struct TodayClock {
    cached: AtomicU64,
}

impl TodayClock {
    pub fn today(&self) -> NaiveDate {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let c = self.cached.load(Ordering::Relaxed);
        if now < c & 0xffff_ffff {
            if let Some(d) = NaiveDate::from_num_days_from_ce_opt((c >> 32) as u32 as i32) {
                return d;
            }
        }
        let today = Local::now().date_naive();
        let midnight = today
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|m| m.and_local_timezone(Local).earliest())
            .and_then(|t| u64::try_from(t.timestamp()).ok());
        let until = midnight.unwrap_or(now).min(now + RECHECK_SECS).min(u64::from(u32::MAX));
        let days = u64::from(today.num_days_from_ce() as u32);
        self.cached.store(days << 32 | until, Ordering::Relaxed);
        today
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_time_zone_and_caches() {
        let clock = TodayClock::default();
        let first = clock.today();
        assert_eq!(first, Local::now().date_naive());
        let c = clock.cached.load(Ordering::Relaxed);
        assert_eq!(clock.today(), first);
        assert_eq!(
            clock.cached.load(Ordering::Relaxed),
            c,
            "the second read came from the cache"
        );
        // An expired entry is recomputed, not trusted.
        clock.cached.store(1 << 32, Ordering::Relaxed);
        assert_eq!(clock.today(), first);
    }
}
