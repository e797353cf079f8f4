//! The relay's handling of what arrives from each side: client frames judged and forwarded under
//! one snapshot per batch, server frames passed through the core and the migration fence.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use tracing::Instrument;

use super::core::{Core, CoreError, Env, Out};
use super::errors::SessionError;
use super::{analyst, fence};
use crate::policy::{Reason, Refusal};
use crate::server::Shared;
use crate::wire::{next_frame, Frame};

pub(super) struct Relay<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) core: Core,
    pub(super) out: Out,
    pub(super) cin: BytesMut,
    pub(super) uin: BytesMut,
    pub(super) max_frame: usize,
    pub(super) max_pipeline: usize,
    /// A client frame to handle again, after a catalog refresh (flag set) or once the server has
    /// answered the messages it must wait for.
    pub(super) retry: Option<(Frame, bool)>,
    /// The analysis of `retry`'s large statement, under way on the analysis thread.
    pub(super) analysis: Option<(crate::session::core::AnalysisJob, analyst::Answer)>,
    pub(super) counters: Arc<crate::metrics::PurposeCounters>,
    pub(super) span: &'a tracing::Span,
    pub(super) fence: fence::FenceCheck,
    /// The server's answers wait in `uin` until the fence opens again (see `session::fence`).
    pub(super) fence_held: bool,
    /// What `cin` and `uin` hold of the budget all sessions share for large messages.
    pub(super) buffers: super::buffers::BufferHold<'a>,
    pub(super) max_buffered: usize,
}

/// What the client frames' loop stopped for.
enum Next {
    /// Nothing more to do until more bytes or answers arrive.
    Done,
    /// The catalog lacked a relation the frame names.
    Refresh(Frame),
    /// A large statement to analyze off the session thread first.
    Analyze(crate::session::core::AnalysisJob),
    /// This session has judged for a turn: the other sessions of its thread go first.
    Yield,
}

/// How long a session judges buffered frames before the other sessions of its thread get a turn:
/// a client pipelining hundreds of statements just under LARGE_FRAME kept its thread for
/// 47 seconds (round 130).
const INLINE_TURN: std::time::Duration = std::time::Duration::from_millis(5);

/// The audit detail of a session the migration fence ended.
const FENCED: &str =
    "the database's definitions changed (a migration committed) while the statement's answer was under way; Postgres may have read it by definitions unscharf had not judged it by";

/// The snapshots a batch of messages is judged with: loaded once per batch (one read's worth of
/// frames), so a reload never tears a statement and the hot path does not reload per frame.
fn with_env<T>(shared: &Shared, f: impl FnOnce(&Env<'_>) -> T) -> T {
    let state = shared.state.load();
    let (policy, config) = (&state.policy, &state.config);
    let catalog = shared.catalog.load();
    let refuse_all = (!shared.audit.healthy()
        && config.audit.on_write_failure == crate::config::OnWriteFailure::Refuse)
        .then(|| {
            Refusal::new(
                Reason::AuditUnavailable,
                "the audit trail cannot be written, so unscharf refuses statements until it can",
            )
        });
    let env = Env {
        policy,
        catalog: &catalog,
        cache: &shared.cache,
        today: shared.today.today(),
        log_allowed: config.audit.log_allowed,
        refuse_all,
        lookups: &shared.lookups,
        lookups_per_minute: config.limits.lookups_per_minute,
        max_statement_bytes: config.limits.max_statement_bytes,
    };
    f(&env)
}

/// The audit detail of a session the migration fence held too long.
const FENCE_HELD: &str =
    "the migration fence held this session's transaction too long: it may hold locks the migration waits for";

impl Relay<'_> {
    /// Records and counts a session the fence held for `patience` (round 158: without a trace,
    /// the security team saw sessions vanish during a migration).
    pub(super) fn fence_stuck(&mut self, patience: std::time::Duration) {
        let shared = self.shared.clone();
        shared.metrics.fence_held_ends.fetch_add(1, Ordering::Relaxed);
        let record = with_env(&shared, |env| self.core.fence_record(&env.policy.version, FENCE_HELD));
        self.out.records.push(record);
        self.span.in_scope(|| {
            tracing::warn!(
                seconds = patience.as_secs(),
                "the migration fence held this session's transaction too long; ending it"
            )
        });
        self.flush_records();
    }

    /// Records and counts a session the fence ends because the answer it holds fills its buffer.
    pub(super) fn fence_cut(&mut self) {
        let shared = self.shared.clone();
        shared.metrics.fence_cutoffs.fetch_add(1, Ordering::Relaxed);
        let record = with_env(&shared, |env| self.core.fence_record(&env.policy.version, FENCED));
        self.out.records.push(record);
        self.flush_records();
    }

    pub(super) fn flush_records(&mut self) {
        let t = std::mem::take(&mut self.out.tally);
        if t.allowed > 0 {
            self.counters.allowed.fetch_add(t.allowed as u64, Ordering::Relaxed);
        }
        if t.masked > 0 {
            self.counters.masked.fetch_add(t.masked as u64, Ordering::Relaxed);
        }
        for r in t.refused {
            self.counters.refused[crate::metrics::reason_index(r)].fetch_add(1, Ordering::Relaxed);
        }
        for r in self.out.records.drain(..) {
            if r.decision == crate::audit::Decision::Refused {
                self.span
                    // Quoted (Debug), so that no statement text reads as more log fields (round 97).
                    .in_scope(|| tracing::info!(reason = %r.reason, statement = ?r.statement, "refused"));
            }
            self.shared.audit.send(r);
        }
    }

    /// Handles buffered client frames until the core must wait (probe, refresh) or the pipeline is full.
    pub(super) async fn client_frames(&mut self) -> Result<(), SessionError> {
        // Called every turn of the loop; most turns bring nothing from the client. Nothing is
        // judged while the frame ahead waits for its analysis.
        if (self.cin.is_empty() && self.retry.is_none()) || self.analysis.is_some() {
            return Ok(());
        }
        loop {
            // Read before the catalog snapshot the frames are judged by (see `crate::fence`).
            let epoch = self.shared.fence.epoch();
            if !crate::fence::Fence::is_open(epoch) {
                return Ok(());
            }
            let fingerprint = self.shared.catalog.load().fingerprint;
            self.fence.forwarding(epoch, fingerprint, self.core.idle());
            let refresh = {
                let Relay {
                    shared,
                    core,
                    out,
                    cin,
                    retry,
                    max_frame,
                    max_pipeline,
                    ..
                } = self;
                with_env(shared, |env| -> Result<Next, SessionError> {
                    let began = std::time::Instant::now();
                    loop {
                        if core.in_flight() >= *max_pipeline {
                            core.flush_for_backpressure(out);
                            return Ok(Next::Done);
                        }
                        if core.stalled() || out.terminate {
                            return Ok(Next::Done);
                        }
                        let (frame, retried) = match retry.take() {
                            Some(held) => held,
                            None => match next_frame(cin, *max_frame)? {
                                Some(f) => {
                                    shared
                                        .metrics
                                        .bytes_from_clients
                                        .fetch_add(f.raw.len() as u64, Ordering::Relaxed);
                                    (f, false)
                                }
                                None => return Ok(Next::Done),
                            },
                        };
                        if let Some(job) = core.analysis_job(&frame, env) {
                            *retry = Some((frame, retried));
                            return Ok(Next::Analyze(job));
                        }
                        core.on_client(&frame, env, out, retried)?;
                        if out.hold {
                            // Tried again after the next answers from the server.
                            out.hold = false;
                            *retry = Some((frame, retried));
                            return Ok(Next::Done);
                        }
                        if out.refresh_catalog {
                            out.refresh_catalog = false;
                            return Ok(Next::Refresh(frame));
                        }
                        if began.elapsed() > INLINE_TURN {
                            return Ok(Next::Yield);
                        }
                    }
                })
            };
            // Before an error ends the session: a refusal judged earlier in the same read is
            // audited all the same (round 97: a malformed frame after it lost its record).
            self.flush_records();
            let frame = match refresh? {
                Next::Done => return Ok(()),
                Next::Yield => {
                    tokio::task::yield_now().await;
                    continue;
                }
                Next::Analyze(mut job) => match analyst::submit(self.shared, &mut job) {
                    Some(answer) => {
                        self.analysis = Some((job, answer));
                        return Ok(());
                    }
                    None => {
                        self.core.pre_analyzed(job, None);
                        continue;
                    }
                },
                // The catalog lacked a relation the statement names: refresh, then judge it again.
                Next::Refresh(frame) => frame,
            };
            if let Err(e) = self.shared.refresh_catalog().instrument(self.span.clone()).await {
                self.span
                    .in_scope(|| tracing::warn!(error = %e, "catalog refresh failed"));
            }
            self.retry = Some((frame, true));
        }
    }

    /// How many ReadyForQuery the server still owes: those the core waits for, less those read
    /// but held in `uin` (while the fence holds the server's answers).
    pub(super) fn owed(&self) -> usize {
        let (mut held, mut rest) = (0, &self.uin[..]);
        while let [tag, a, b, c, d, ..] = rest {
            let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
            if rest.len() < len + 1 {
                break;
            }
            held += usize::from(*tag == b'Z');
            rest = &rest[len + 1..];
        }
        self.core.ready_owed().saturating_sub(held)
    }

    pub(super) fn upstream_frames(&mut self) -> Result<(), SessionError> {
        let Relay {
            shared,
            core,
            out,
            uin,
            max_frame,
            fence,
            fence_held,
            ..
        } = self;
        // Once per read: what was read before the fence closed was sent before the migration
        // committed.
        let epoch = shared.fence.epoch();
        let r = with_env(shared, |env| -> Result<(), SessionError> {
            loop {
                // Judged before the frame is taken off, so that one held for the fence stays.
                if fence.passes(uin.first().copied().unwrap_or(b'Z'), epoch).is_err() {
                    if !crate::fence::Fence::is_open(epoch) {
                        *fence_held = true;
                        return Ok(());
                    }
                    if !fence.reopened(epoch, env.catalog.fingerprint) {
                        shared.metrics.fence_cutoffs.fetch_add(1, Ordering::Relaxed);
                        out.records.push(core.fence_record(&env.policy.version, FENCED));
                        return Err(SessionError::Fenced);
                    }
                }
                let Some(frame) = next_frame(uin, *max_frame)? else {
                    break;
                };
                if let Err(e) = core.on_upstream(&frame, env, out) {
                    if let CoreError::CutOff(why) = &e {
                        shared.metrics.cutoffs.fetch_add(1, Ordering::Relaxed);
                        out.records.push(core.cutoff_record(&env.policy.version, why));
                        // A plan that missed a protected column most likely met DDL done behind the
                        // proxy's back: re-read the catalog so the next statements are planned right.
                        let shared = shared.clone();
                        tokio::spawn(async move {
                            if let Err(e) = shared.refresh_catalog().await {
                                tracing::warn!(error = %e, "catalog refresh after a cut-off failed");
                            }
                        });
                    }
                    return Err(e.into());
                }
            }
            if core.idle() {
                fence.quiet();
            }
            Ok(())
        });
        self.flush_records();
        r
    }
}

/// The answer of the analysis under way; only polled while there is one.
pub(super) async fn analyzed(
    analysis: &mut Option<(crate::session::core::AnalysisJob, analyst::Answer)>,
) -> Option<Result<crate::analyze::cache::Looked, crate::analyze::lexer::LexError>> {
    match analysis {
        Some((_, answer)) => answer.await.ok(),
        None => std::future::pending().await,
    }
}
