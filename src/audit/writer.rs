//! The audit writer: sessions hand records to a bounded channel (never blocking, drops counted);
//! one task seals them into the hash chain and appends them to the JSON-lines file.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::anchor::{anchor_path, discontinuity, edited_marker};
use super::event::{Event, Record, GENESIS};

/// Shared view of the trail's health, read by sessions and /metrics.
#[derive(Debug, Default)]
pub struct AuditState {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub failed_writes: AtomicU64,
    /// Events can currently not be written (disk full, file gone, permissions).
    pub broken: AtomicBool,
    /// Dropped events by login since the last marker (see `dropped_marker`), for the first
    /// MAX_DROP_USERS logins; the rest count in `dropped` only.
    pub dropped_by: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// The `audit.database` copy's counters, when it is on (round 175 F5: its drops were silent).
    pub copy: Option<Arc<super::db::DbSinkState>>,
}

/// Logins whose dropped events a marker names one by one.
const MAX_DROP_USERS: usize = 64;

/// The time a record is stamped with: when its session queued it, not when the writer got to
/// it (round 135: under a flood, events were stamped 50 seconds late).
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The sessions' end of the channel.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<(Record, String)>,
    pub state: Arc<AuditState>,
}

impl AuditSink {
    /// Queues a record without waiting; a full queue drops it and counts the drop.
    pub fn send(&self, r: Record) {
        if let Err(e) = self.tx.try_send((r, now())) {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
            let (r, _) = e.into_inner();
            if let Ok(mut by) = self.state.dropped_by.lock() {
                if let Some(n) = by.get_mut(&r.user) {
                    *n += 1;
                } else if by.len() < MAX_DROP_USERS {
                    by.insert(r.user, 1);
                }
            }
        }
    }

    /// Whether events can currently be written.
    pub fn healthy(&self) -> bool {
        !self.state.broken.load(Ordering::Relaxed)
    }
}

/// Where the chain continues: the last sequence number and hash of an existing file.
pub fn tail_of(path: &Path) -> std::io::Result<(u64, String)> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, GENESIS.to_owned())),
        Err(e) => return Err(e),
    };
    let mut last = None;
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            last = Some(line);
        }
    }
    match last {
        None => Ok((0, GENESIS.to_owned())),
        Some(l) => {
            let e: Event = serde_json::from_str(&l)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("last audit line: {e}")))?;
            Ok((e.seq, e.hash.unwrap_or_default()))
        }
    }
}

/// The destination of the trail.
pub enum Target {
    Stdout,
    File(PathBuf),
}

struct Writer {
    target: Target,
    file: Option<std::fs::File>,
    /// (device, inode) of the open file, to notice when the path no longer names it.
    identity: Option<(u64, u64)>,
    seq: u64,
    prev: String,
    rotate_bytes: u64,
    size: u64,
    state: Arc<AuditState>,
    extra: Option<mpsc::Sender<Event>>,
}

impl Writer {
    fn open(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        if let Target::File(p) = &self.target {
            // A deleted or replaced trail must not swallow events into an unlinked file.
            if let (Some(_), Some(id)) = (&self.file, self.identity) {
                let same = std::fs::metadata(p).map(|m| (m.dev(), m.ino()) == id).unwrap_or(false);
                if !same {
                    tracing::error!(path = %p.display(), "the audit file was deleted or replaced; continuing the chain in a new file");
                    self.file = None;
                }
            }
            if self.file.is_none() {
                let f = std::fs::OpenOptions::new().create(true).append(true).open(p)?;
                let m = f.metadata()?;
                if !m.is_file() {
                    return Err(std::io::Error::other("the audit path is not a regular file"));
                }
                self.size = m.len();
                self.identity = Some((m.dev(), m.ino()));
                self.file = Some(f);
            }
        }
        Ok(())
    }

    /// Records the chain's end beside the file, so a verifier can tell when lines were cut off the end.
    fn write_anchor(&self) -> std::io::Result<()> {
        let Target::File(p) = &self.target else { return Ok(()) };
        let anchor = anchor_path(p);
        let mut tmp = anchor.clone().into_os_string();
        tmp.push(".tmp");
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A file of the same name, or a symlink planted there, is removed, not written through
        // (round 177 N7: the anchor overwrote a file outside the audit directory).
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(
            serde_json::json!({"file": name, "seq": self.seq, "hash": self.prev})
                .to_string()
                .as_bytes(),
        )?;
        drop(f);
        std::fs::rename(tmp, anchor)
    }

    /// Moves a full file aside as `NAME.N` (N = first free number) and starts a new one whose first
    /// event chains to the old file's last hash.
    fn rotate(&mut self) -> std::io::Result<()> {
        let Target::File(p) = &self.target else {
            return Ok(());
        };
        self.file = None;
        let mut n = 1;
        let rotated = loop {
            let candidate = PathBuf::from(format!("{}.{n}", p.display()));
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        std::fs::rename(p, rotated)?;
        self.seq = 0;
        self.open()
    }

    fn write(&mut self, r: Record, ts: String) -> std::io::Result<()> {
        self.open()?;
        if self.rotate_bytes > 0 && self.size >= self.rotate_bytes {
            self.rotate()?;
        }
        let (event, line) = Event::new(r, ts, self.seq + 1, self.prev.clone()).seal();
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        match &mut self.file {
            Some(f) => {
                f.write_all(&bytes)?;
                f.flush()?;
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes)?;
                out.flush()?;
            }
        }
        self.size += bytes.len() as u64;
        self.seq = event.seq;
        self.prev = event.hash.clone().unwrap_or_default();
        if let Some(x) = &self.extra {
            // The file holds the event; the copy's gap is counted and logged once per run of drops.
            let copied = x.try_send(event).is_ok();
            if let Some(copy) = &self.state.copy {
                if !copied
                    && copy.dropped.fetch_add(1, Ordering::Relaxed) == copy.reported_drops.load(Ordering::Relaxed)
                {
                    tracing::warn!(
                        "the audit database copy is behind: events the file holds are missing from the table"
                    );
                }
                if copied {
                    copy.reported_drops
                        .store(copy.dropped.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

/// Options of the writer.
pub struct WriterOptions {
    pub target: Target,
    pub queue: usize,
    pub rotate_bytes: u64,
    /// A second sink (the audit table) receiving every sealed event, and its counters.
    pub extra: Option<mpsc::Sender<Event>>,
    pub copy_state: Option<Arc<super::db::DbSinkState>>,
}

/// Events written between two rewrites of the anchor at most, within a burst.
const ANCHOR_EVERY: u64 = 256;

/// Retries (200 ms apart) of a failing write after the proxy began shutting down.
const MAX_CLOSING_RETRIES: u32 = 25;

/// Who a record of dropped events is by: the proxy itself, in no session.
pub const PROXY_USER: &str = "unscharf";

/// A record the proxy itself puts in the chain, in no session: what `by_proxy` tells apart.
pub(super) fn proxy_record(detail: String) -> Record {
    Record {
        session: 0,
        user: PROXY_USER.into(),
        client_addr: String::new(),
        purpose: String::new(),
        campaigns: Vec::new(),
        decision: super::event::Decision::Refused,
        reason: crate::policy::Reason::AuditUnavailable.code().into(),
        detail,
        statement: String::new(),
        fingerprint: String::new(),
        policy_version: String::new(),
    }
}

/// Whether an event is one of the proxy's own records (`proxy_record`): a session's never is.
pub(super) fn by_proxy(e: &super::event::Event) -> bool {
    e.session == 0 && e.user == PROXY_USER && e.client_addr.is_empty()
}

/// The record that stands in the chain for `n` events a full queue dropped, naming whose they were
/// (`by`, as far as counted).
pub fn dropped_marker(n: u64, queue: usize, by: &std::collections::BTreeMap<String, u64>) -> Record {
    let whose = match by.is_empty() {
        true => String::new(),
        false => format!(
            " ({})",
            by.iter()
                .map(|(u, k)| format!("{u}: {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    proxy_record(format!(
        "{n} event(s) were not recorded{whose}: the audit queue ({queue} events) was full"
    ))
}

/// How many dropped events a record stands for (see `dropped_marker`).
pub fn dropped_count(e: &super::event::Event) -> Option<u64> {
    if !by_proxy(e) {
        return None;
    }
    e.detail.strip_suffix(" was full")?.split(' ').next()?.parse().ok()
}

/// Starts the writer task; the chain continues from the file's last line.
pub fn spawn(opts: WriterOptions) -> std::io::Result<(AuditSink, tokio::task::JoinHandle<()>)> {
    let (seq, prev) = match &opts.target {
        Target::File(p) => match tail_of(p)? {
            // Killed between a rotation and the new file's first event: the chain goes on from
            // the rotated file's end, as a new file's first event would have (round 177 N4).
            (0, g) if g == GENESIS => match super::anchor::newest_rotated(p) {
                Some(rotated) => (0, tail_of(&rotated)?.1),
                None => (0, g),
            },
            tail => tail,
        },
        Target::Stdout => (0, GENESIS.to_owned()),
    };
    let edited = match &opts.target {
        Target::File(p) => discontinuity(p, &(seq, prev.clone()))?,
        Target::Stdout => None,
    };
    // A trail this start creates gets its anchor at once, so verifying it before the first
    // refusal says "empty", not "anchor missing" (round 116). An existing file without one keeps
    // lacking it: whether its end was cut off is what the anchor would have told.
    let new_file = matches!(&opts.target, Target::File(p) if !p.exists());
    let state = Arc::new(AuditState {
        copy: opts.copy_state.clone(),
        ..Default::default()
    });
    let queue = opts.queue;
    let (tx, mut rx) = mpsc::channel::<(Record, String)>(queue);
    let mut w = Writer {
        target: opts.target,
        file: None,
        identity: None,
        seq,
        prev,
        rotate_bytes: opts.rotate_bytes,
        size: 0,
        state: state.clone(),
        extra: opts.extra,
    };
    w.open()?;
    // The edit stays in the chain for `audit verify` to report; re-anchoring without it would
    // leave no trace of it.
    if let Some(why) = edited {
        tracing::error!(why = %why, "the audit trail was edited while the proxy was stopped; recorded in the trail");
        w.write(edited_marker(&why), now())?;
        w.write_anchor()?;
    } else if new_file {
        w.write_anchor()?;
    }
    let handle = tokio::task::spawn_blocking(move || {
        // Retries once the proxy is shutting down (no sender left): a trail that cannot be
        // written then must not keep the process from exiting.
        let mut closing_retries = 0;
        let mut reported = 0;
        let mut unanchored = 0;
        let take_drops = |w: &Writer, reported: &mut u64| {
            let dropped = w.state.dropped.load(Ordering::Relaxed);
            let marker = (dropped > *reported).then(|| {
                let by = w
                    .state
                    .dropped_by
                    .lock()
                    .map(|mut m| std::mem::take(&mut *m))
                    .unwrap_or_default();
                (dropped_marker(dropped - *reported, queue, &by), now())
            });
            *reported = dropped;
            marker
        };
        while let Some(r) = rx.blocking_recv() {
            // Drops since the last record go into the chain before it, so a verified trail says
            // that it is incomplete, and from when.
            let marker = take_drops(&w, &mut reported);
            for (attempt, ts) in marker.into_iter().chain(std::iter::once(r)) {
                loop {
                    match w.write(attempt.clone(), ts.clone()) {
                        Ok(()) => {
                            w.state.written.fetch_add(1, Ordering::Relaxed);
                            w.state.broken.store(false, Ordering::Relaxed);
                            unanchored += 1;
                            break;
                        }
                        Err(e) => {
                            w.state.failed_writes.fetch_add(1, Ordering::Relaxed);
                            if !w.state.broken.swap(true, Ordering::Relaxed) {
                                tracing::error!(error = %e, "audit trail cannot be written; new statements are refused until it can");
                            }
                            w.file = None;
                            // Keep the event and retry: a gap in the trail is a compliance failure.
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            if rx.is_closed() {
                                closing_retries += 1;
                                if closing_retries >= MAX_CLOSING_RETRIES {
                                    tracing::error!(
                                        lost = 1 + rx.len(),
                                        "audit trail still cannot be written at shutdown; giving up on the events left"
                                    );
                                    return;
                                }
                            }
                        }
                    }
                }
            }
            // The anchor is rewritten once a burst is written (and every ANCHOR_EVERY events
            // within one): rewritten per event it held the writer to 850 events a second, and a
            // flood of refusals filled the queue (round 135).
            if unanchored > 0 && (rx.is_empty() || unanchored >= ANCHOR_EVERY) {
                match w.write_anchor() {
                    Ok(()) => unanchored = 0,
                    Err(e) => {
                        w.state.failed_writes.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "the audit trail's anchor cannot be written");
                    }
                }
            }
        }
        if let Some((marker, ts)) = take_drops(&w, &mut reported) {
            if w.write(marker, ts).is_ok() {
                unanchored += 1;
            }
        }
        // Only after events of its own: an existing trail whose anchor went missing stays so.
        if unanchored > 0 {
            let _ = w.write_anchor();
        }
    });
    Ok((AuditSink { tx, state }, handle))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::audit::event::Decision;

    /// A session's refusal, numbered by its session id.
    pub(in crate::audit) fn record(n: u64) -> Record {
        Record {
            session: n,
            user: "u".into(),
            client_addr: "127.0.0.1:1".into(),
            purpose: "p".into(),
            campaigns: Vec::new(),
            decision: Decision::Refused,
            reason: "protected_column".into(),
            detail: String::new(),
            statement: "SELECT ?".into(),
            fingerprint: String::new(),
            policy_version: String::new(),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (tx, mut rx) = mpsc::channel::<(Record, String)>(2);
        let sink = AuditSink {
            tx,
            state: Arc::new(AuditState::default()),
        };
        for n in 1..=5 {
            sink.send(record(n));
        }
        assert_eq!(sink.state.dropped.load(Ordering::Relaxed), 3);
        // The queued ones are the first two, in order.
        let before = now();
        let first = rx.try_recv().unwrap();
        assert_eq!(first.0.session, 1);
        // Stamped when queued (round 135: the writer's time was 50 s late under a flood).
        assert!(!first.1.is_empty() && first.1 <= before, "{} {before}", first.1);
        assert_eq!(rx.try_recv().map(|(r, _)| r.session).ok(), Some(2));
        assert!(rx.try_recv().is_err());
        // The marker names whose events were dropped, and still says how many.
        let by = sink.state.dropped_by.lock().unwrap().clone();
        assert_eq!(by.get("u"), Some(&3));
        let marker = dropped_marker(3, 2, &by);
        assert!(marker.detail.contains("(u: 3)"), "{}", marker.detail);
        let (event, _) = super::super::event::Event::new(marker, before, 1, GENESIS.to_owned()).seal();
        assert_eq!(dropped_count(&event), Some(3));
    }

    /// Round 15: a flood of refusals filled the queue, the probe it hid was dropped, and `verify`
    /// still called the trail complete. Drops now stand in the chain, and verify reports them.
    #[test]
    fn dropped_events_are_recorded_in_the_chain() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("unscharf-dropped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        rt.block_on(async {
            let (sink, handle) = spawn(WriterOptions {
                target: Target::File(path.clone()),
                queue: 4,
                rotate_bytes: 0,
                extra: None,
                copy_state: None,
            })
            .unwrap();
            let written = |n: u64| {
                let state = sink.state.clone();
                async move {
                    while state.written.load(Ordering::Relaxed) < n {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
            };
            sink.send(record(1));
            written(1).await;
            sink.state.dropped.fetch_add(7, Ordering::Relaxed);
            sink.send(record(2));
            written(3).await;
            // Dropped after the last record: recorded when the writer stops.
            sink.state.dropped.fetch_add(2, Ordering::Relaxed);
            drop(sink);
            handle.await.unwrap();
        });
        let report = crate::audit::verify::verify(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(report.problem.is_none(), "{report:?}");
        assert_eq!(report.events, 4, "two records and two markers");
        assert_eq!(report.dropped, 9);
        assert_eq!(report.dropped_at, vec![2, 4]);
        let text = crate::tools::audit::render_verify(&report);
        // Round 253 CL1: said first, and in the exit status.
        assert!(text.starts_with("INCOMPLETE: the proxy dropped 9 event(s)"), "{text}");
        assert!(!text.contains("OK"), "{text}");
        assert_eq!(crate::tools::audit::verify_status(&report), 2);
    }

    /// Round 175 F5: events the audit table's queue had no room for were lost without a count.
    #[test]
    fn events_the_table_copy_misses_are_counted() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("unscharf-copy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = Arc::new(super::super::db::DbSinkState::default());
        let (tx, rx) = mpsc::channel::<Event>(1);
        rt.block_on(async {
            let (sink, handle) = spawn(WriterOptions {
                target: Target::File(dir.join("audit.jsonl")),
                queue: 16,
                rotate_bytes: 0,
                extra: Some(tx),
                copy_state: Some(copy.clone()),
            })
            .unwrap();
            for n in 0..3 {
                sink.send(record(n));
            }
            drop(sink);
            handle.await.unwrap();
        });
        drop(rx);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(copy.dropped.load(Ordering::Relaxed), 2);
        let metrics = crate::metrics::Metrics::default().render(&AuditState {
            copy: Some(copy),
            ..Default::default()
        });
        assert!(metrics.contains("unscharf_audit_copy_dropped_total 2"), "{metrics}");
    }

    /// A trail that cannot be written keeps its events while the proxy runs, but must not keep
    /// a stopping proxy (or a test's runtime) from exiting.
    #[test]
    fn an_unwritable_trail_lets_a_stopping_proxy_exit() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let finished = rt.block_on(async {
            // The trail's directory disappears (a test's temp dir removed, a volume unmounted).
            let dir = std::env::temp_dir().join(format!("unscharf-writer-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let (sink, handle) = spawn(WriterOptions {
                target: Target::File(dir.join("audit.jsonl")),
                queue: 16,
                rotate_bytes: 0,
                extra: None,
                copy_state: None,
            })
            .unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
            for n in 0..3 {
                sink.send(record(n));
            }
            drop(sink);
            tokio::time::timeout(std::time::Duration::from_secs(20), handle)
                .await
                .is_ok()
        });
        // Not waiting for a writer that would never end: the assertion fails instead of hanging.
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
        assert!(finished, "the writer gives up once the proxy stops");
    }

    /// Round 116: verifying a trail before its first refusal said "anchor missing".
    #[test]
    fn a_new_trail_verifies_as_empty() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("unscharf-newtrail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        // The writer starts on the trail and stops without an event.
        let start_and_stop = || {
            rt.block_on(async {
                let (sink, handle) = spawn(WriterOptions {
                    target: Target::File(path.clone()),
                    queue: 4,
                    rotate_bytes: 0,
                    extra: None,
                    copy_state: None,
                })
                .unwrap();
                drop(sink);
                handle.await.unwrap();
            })
        };
        start_and_stop();
        let r = crate::audit::verify::verify(&path).unwrap();
        assert_eq!((r.events, r.problem.is_none(), r.anchored), (0, true, true), "{r:?}");
        // An existing trail whose anchor went missing still does not verify.
        std::fs::remove_file(anchor_path(&path)).unwrap();
        start_and_stop();
        assert!(crate::audit::verify::verify(&path).unwrap().problem.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
