//! Process-wide counters and the added-latency histogram, rendered in Prometheus text format.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::policy::Reason;

/// Statement counts of one purpose; sessions hold an Arc, so counting takes no lock.
#[derive(Debug, Default)]
pub struct PurposeCounters {
    pub allowed: AtomicU64,
    pub masked: AtomicU64,
    pub refused: [AtomicU64; 12],
}

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 11] = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 12],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = d.as_micros() as u64;
        let i = BUCKETS_US.iter().position(|b| us <= *b).unwrap_or(BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub sessions_total: AtomicU64,
    pub sessions_active: AtomicU64,
    pub sessions_refused: AtomicU64,
    /// Connections ended in startup to make room for a newer one (`session/gate.rs`).
    pub startups_ended: AtomicU64,
    pub bytes_from_clients: AtomicU64,
    pub bytes_to_clients: AtomicU64,
    pub catalog_refreshes: AtomicU64,
    pub cutoffs: AtomicU64,
    /// Migrations that closed the fence (`fence.rs`), and sessions it ended.
    pub fence_closes: AtomicU64,
    pub fence_cutoffs: AtomicU64,
    pub fence_held_ends: AtomicU64,
    /// Cancels sent to statements that ran or waited while a migration committed.
    pub fence_cancels: AtomicU64,
    /// Backends the fence ended (`pg_terminate_backend`): more queued than cancels could end.
    pub fence_terminations: AtomicU64,
    /// 1 while the fence is open (statements flow), 0 while a migration or a lost fence
    /// connection holds them.
    pub fence_open: AtomicU64,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Time the proxy spends handling each read from a client or the server.
    pub latency: Histogram,
    purposes: Mutex<HashMap<String, Arc<PurposeCounters>>>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters of a purpose, created on first use.
    pub fn purpose(&self, name: &str) -> Arc<PurposeCounters> {
        let mut m = self.purposes.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(name.to_owned()).or_default().clone()
    }

    /// Prometheus text exposition of everything, plus the audit trail's counters.
    pub fn render(&self, audit: &crate::audit::AuditState) -> String {
        let mut out = String::with_capacity(4096);
        let g = |o: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        g(
            &mut out,
            "unscharf_sessions_active",
            "gauge",
            "Client sessions open now.",
            l(&self.sessions_active),
        );
        g(
            &mut out,
            "unscharf_sessions_total",
            "counter",
            "Client sessions that completed startup.",
            l(&self.sessions_total),
        );
        g(
            &mut out,
            "unscharf_sessions_refused_total",
            "counter",
            "Connections refused at startup (limits, purpose binding, authentication).",
            l(&self.sessions_refused),
        );
        g(
            &mut out,
            "unscharf_startups_ended_total",
            "counter",
            "Connections ended in startup to make room for a newer one (limits.max_client_sessions places).",
            l(&self.startups_ended),
        );
        g(
            &mut out,
            "unscharf_client_bytes_received_total",
            "counter",
            "Bytes received from clients.",
            l(&self.bytes_from_clients),
        );
        g(
            &mut out,
            "unscharf_client_bytes_sent_total",
            "counter",
            "Bytes sent to clients.",
            l(&self.bytes_to_clients),
        );
        g(
            &mut out,
            "unscharf_catalog_refreshes_total",
            "counter",
            "Catalog snapshots read from the upstream.",
            l(&self.catalog_refreshes),
        );
        g(
            &mut out,
            "unscharf_result_cutoffs_total",
            "counter",
            "Results cut off by the RowDescription guard (rule 10).",
            l(&self.cutoffs),
        );
        g(
            &mut out,
            "unscharf_fence_closes_total",
            "counter",
            "Migrations whose commit closed the fence (deploy/catalog_watch.sql).",
            l(&self.fence_closes),
        );
        g(
            &mut out,
            "unscharf_fence_cancels_total",
            "counter",
            "Cancels of statements that ran or waited while a migration committed (deploy/catalog_watch.sql).",
            l(&self.fence_cancels),
        );
        g(
            &mut out,
            "unscharf_fence_terminations_total",
            "counter",
            "Backends ended at a migration's commit because more work was queued at them than cancels could end.",
            l(&self.fence_terminations),
        );
        g(
            &mut out,
            "unscharf_fence_cutoffs_total",
            "counter",
            "Sessions ended because a statement's answer began after a migration committed.",
            l(&self.fence_cutoffs),
        );
        g(
            &mut out,
            "unscharf_fence_open",
            "gauge",
            "1 while the migration fence lets statements through, 0 while it holds them.",
            l(&self.fence_open),
        );
        g(
            &mut out,
            "unscharf_fence_held_ends_total",
            "counter",
            "Sessions in a transaction ended because the fence stayed closed for 5 s (they may hold locks a migration waits for).",
            l(&self.fence_held_ends),
        );
        let _ = writeln!(out, "# HELP unscharf_reloads_total Config and policy reloads by outcome.\n# TYPE unscharf_reloads_total counter");
        let _ = writeln!(out, "unscharf_reloads_total{{outcome=\"ok\"}} {}", l(&self.reloads_ok));
        let _ = writeln!(
            out,
            "unscharf_reloads_total{{outcome=\"failed\"}} {}",
            l(&self.reloads_failed)
        );
        g(
            &mut out,
            "unscharf_audit_events_written_total",
            "counter",
            "Audit events written to the trail.",
            l(&audit.written),
        );
        g(
            &mut out,
            "unscharf_audit_events_dropped_total",
            "counter",
            "Audit events dropped because the queue was full.",
            l(&audit.dropped),
        );
        g(
            &mut out,
            "unscharf_audit_write_failures_total",
            "counter",
            "Failed attempts to write the audit trail.",
            l(&audit.failed_writes),
        );
        g(
            &mut out,
            "unscharf_audit_broken",
            "gauge",
            "1 while the audit trail cannot be written.",
            audit.broken.load(Ordering::Relaxed) as u64,
        );
        if let Some(copy) = &audit.copy {
            g(
                &mut out,
                "unscharf_audit_copy_written_total",
                "counter",
                "Audit events copied into the audit.database table.",
                l(&copy.written),
            );
            g(
                &mut out,
                "unscharf_audit_copy_dropped_total",
                "counter",
                "Audit events the audit.database table will never get (the file holds them).",
                l(&copy.dropped),
            );
            g(
                &mut out,
                "unscharf_audit_copy_failures_total",
                "counter",
                "Failed connections to or inserts into the audit.database table.",
                l(&copy.failures),
            );
        }
        let _ = writeln!(out, "# HELP unscharf_statements_total Statements judged, by decision, reason and purpose.\n# TYPE unscharf_statements_total counter");
        let purposes: Vec<(String, Arc<PurposeCounters>)> = {
            let m = self.purposes.lock().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        for (p, c) in &purposes {
            let p = p.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "unscharf_statements_total{{decision=\"allowed\",reason=\"\",purpose=\"{p}\"}} {}",
                l(&c.allowed)
            );
            let _ = writeln!(
                out,
                "unscharf_statements_total{{decision=\"masked\",reason=\"\",purpose=\"{p}\"}} {}",
                l(&c.masked)
            );
            for (i, r) in Reason::all().iter().enumerate() {
                let n = l(&c.refused[i]);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "unscharf_statements_total{{decision=\"refused\",reason=\"{}\",purpose=\"{p}\"}} {n}",
                        r.code()
                    );
                }
            }
        }
        let refused: u64 = purposes.iter().flat_map(|(_, c)| c.refused.iter()).map(l).sum();
        g(
            &mut out,
            "unscharf_refusals_total",
            "counter",
            "Statements refused, all reasons and purposes.",
            refused,
        );
        let _ = writeln!(out, "# HELP unscharf_proxy_latency_seconds Time the proxy adds handling one read from a client or the server.\n# TYPE unscharf_proxy_latency_seconds histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cumulative += l(&self.latency.buckets[i]);
            let _ = writeln!(
                out,
                "unscharf_proxy_latency_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *b as f64 / 1e6
            );
        }
        cumulative += l(&self.latency.buckets[BUCKETS_US.len()]);
        let _ = writeln!(out, "unscharf_proxy_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "unscharf_proxy_latency_seconds_sum {}",
            l(&self.latency.sum_ns) as f64 / 1e9
        );
        let _ = writeln!(out, "unscharf_proxy_latency_seconds_count {}", l(&self.latency.count));
        out
    }
}

/// Index of a reason in `PurposeCounters::refused`.
pub fn reason_index(r: Reason) -> usize {
    Reason::all().iter().position(|x| *x == r).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_label_and_a_cumulative_histogram() {
        let m = Metrics::default();
        let p = m.purpose("billing_hotline");
        p.allowed.fetch_add(3, Ordering::Relaxed);
        p.refused[reason_index(Reason::ProtectedColumn)].fetch_add(2, Ordering::Relaxed);
        m.latency.observe(Duration::from_micros(7));
        m.latency.observe(Duration::from_millis(20));
        let text = m.render(&crate::audit::AuditState::default());
        assert!(
            text.contains("unscharf_statements_total{decision=\"allowed\",reason=\"\",purpose=\"billing_hotline\"} 3")
        );
        assert!(text.contains(
            "unscharf_statements_total{decision=\"refused\",reason=\"protected_column\",purpose=\"billing_hotline\"} 2"
        ));
        assert!(text.contains("unscharf_refusals_total 2"));
        assert!(text.contains("unscharf_proxy_latency_seconds_bucket{le=\"0.00001\"} 1"));
        assert!(text.contains("unscharf_proxy_latency_seconds_bucket{le=\"+Inf\"} 2"));
        assert_eq!(Reason::all().len(), p.refused.len());
    }
}
