//! Process-wide counters for /metrics (Prometheus text format) and the operators.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub sessions_total: AtomicU64,
    pub sessions_active: AtomicU64,
    pub sessions_refused: AtomicU64,
    pub statements_allowed: AtomicU64,
    pub statements_masked: AtomicU64,
    pub statements_refused: AtomicU64,
    pub bytes_from_clients: AtomicU64,
    pub bytes_to_clients: AtomicU64,
    pub catalog_refreshes: AtomicU64,
    pub cutoffs: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
