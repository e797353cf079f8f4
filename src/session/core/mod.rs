//! The protocol state machine of one ready session, free of I/O: client and server frames in,
//! frames for both sides and audit records out. Every statement passes `decide` here, and every
//! result passes the plan of the statement that produced it.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::registry::{BoundTo, PortalInfo, Registry, Stored, Tag};
use crate::analyze::facts::{Kind, PathChange, StatementFacts, TxControl};
use crate::analyze::{cache::AnalysisCache, AnalyzeCtx, AnalyzeError};
use crate::audit::{Decision, Record};
use crate::catalog::Catalog;
use crate::judge::{judge_all, judge_statement, refusal_for, Allowed, JudgeCtx};
use crate::policy::decide::{ColAction, Guard, Plan};
use crate::policy::{PolicySet, Reason, Refusal};
use crate::wire::build::{self, Severity};
use crate::wire::frontend::{self as fe, encode};
use crate::wire::{Frame, WireError};

mod clock;
mod extended;
mod memo;
mod pending;
mod replies;
pub(in crate::session) use replies::check_parameter;
mod requests;
mod settle;
mod stale;

use pending::{result_plan, CopyIn, CopyOutState, Pending, Result_};

/// The statement text sent upstream in place of a refused one: it fails to parse, so the server
/// raises an error exactly where the refused statement would have run, aborting a transaction block
/// and skipping the rest of an extended-protocol batch, as if the server itself had refused it.
pub const REFUSED_SQL: &str = "/* unscharf: statement refused by policy */ unscharf_refused";
pub use crate::analyze::RESERVED_PREFIX;
/// A statement name no client may use.
const REFUSED_NAME: &str = "unscharf_refused";

/// What goes upstream in place of a refused Bind, Describe or Execute: a Parse of text that does
/// not parse, under a name no client may use. It fails whatever the server holds, and a failed
/// named Parse changes nothing there (round 181 F3: a DBA's function opened a cursor under the
/// reserved name, and the Execute that stood in for a refused one ran it).
fn stand_in() -> Bytes {
    encode::parse(REFUSED_NAME, REFUSED_SQL)
}
/// search_path, the login's roles, and whether the session still acts as its login (database
/// code may have run `set_config('role', …)`: round 121).
const PROBE_SQL: &str = "SELECT pg_catalog.current_setting('search_path'), \
     (SELECT pg_catalog.array_agg(r.rolname) FROM pg_catalog.pg_roles r \
      WHERE pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER') \
      AND (r.rolname = session_user OR NOT (SELECT s.rolsuper FROM pg_catalog.pg_roles s WHERE s.rolname = session_user)))::pg_catalog.text, \
     (current_user = session_user)::pg_catalog.text";

/// Why the session must end; mapped to a FATAL ErrorResponse in exactly one place (session::errors).
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("unexpected {0} message from the client")]
    ClientProtocol(char),
    #[error("unexpected {0} message from the server")]
    ServerProtocol(char),
    #[error("result cut off: {0}")]
    CutOff(String),
    #[error("the server reported {0}, which unscharf cannot analyze safely")]
    UnsafeSetting(String),
}

/// The probe's answer.
#[derive(Debug)]
struct Probed {
    setting: String,
    roles: Option<String>,
}

/// A large statement's analysis, done off the session thread (session::large) for the `analyze`
/// that judges it, under the same catalog and search_path.
struct PreAnalyzed {
    sql: String,
    catalog: u64,
    fingerprint: u64,
    paths: Vec<Vec<String>>,
    revert: Vec<Vec<String>>,
    /// None: the analysis failed there (a panic), and the frame is judged on the session thread.
    looked: Option<Result<crate::analyze::cache::Looked, crate::analyze::lexer::LexError>>,
}

/// Whether a pre-analysis was made under the catalog in force: the same generation, or the same
/// content under a new one.
fn same_catalog(p: &PreAnalyzed, catalog: &crate::catalog::Catalog) -> bool {
    p.catalog == catalog.generation || (p.fingerprint != 0 && p.fingerprint == catalog.fingerprint)
}

/// What a large statement is analyzed with off the session thread (see `Core::analysis_job`).
#[derive(Debug, Clone)]
pub struct AnalysisJob {
    pub sql: String,
    pub catalog: u64,
    /// The catalog's content (see `Catalog::fingerprint`): the periodic refresh makes a new
    /// generation of an unchanged catalog every minute, and an analysis that took longer was
    /// queued again forever (round 139).
    pub fingerprint: u64,
    pub paths: Vec<Vec<String>>,
    pub revert: Vec<Vec<String>>,
    pub user: String,
}

/// Frames larger than this may hold a statement whose analysis takes long (round 129: a select
/// list of 60,000 items took half a second and 400 MB); smaller ones are judged where they are.
pub const LARGE_FRAME: usize = 16 << 10;

/// Who the session is; fixed at startup.
#[derive(Debug, Clone)]
pub struct Identity {
    pub session: u64,
    pub user: String,
    pub client_addr: String,
    pub purpose: String,
}

/// The snapshots one message is judged with: taken once per message, so a reload never tears it.
pub struct Env<'a> {
    pub policy: &'a PolicySet,
    pub catalog: &'a Catalog,
    pub cache: &'a AnalysisCache,
    pub today: chrono::NaiveDate,
    pub log_allowed: bool,
    /// Refuse every statement with this reason (e.g. the audit trail cannot be written).
    pub refuse_all: Option<Refusal>,
    /// The logins' lookup allowances and `limits.lookups_per_minute`.
    pub lookups: &'a crate::session::lookups::LookupBudget,
    pub lookups_per_minute: u32,
    /// `limits.max_statement_bytes`.
    pub max_statement_bytes: usize,
}

/// What the session should send and record after a frame.
#[derive(Default)]
pub struct Out {
    pub to_client: BytesMut,
    pub to_upstream: BytesMut,
    pub records: Vec<Record>,
    /// The client said Terminate.
    pub terminate: bool,
    /// A statement referred to something the catalog does not know: refresh and retry this frame.
    pub refresh_catalog: bool,
    /// The frame was not handled: hand it in again once the server has answered more.
    pub hold: bool,
    /// Decisions since the last drain, for the metrics.
    pub tally: Tally,
}

/// Statement decisions counted for /metrics.
#[derive(Default)]
pub struct Tally {
    pub allowed: u32,
    pub masked: u32,
    pub refused: Vec<Reason>,
}

pub struct Core {
    pub id: Identity,
    registry: Registry,
    pending: VecDeque<Pending>,
    seq: u64,
    tx_status: u8,
    read_campaigns: BTreeSet<String>,
    /// Every search_path the session may have until the next probe answers.
    paths: Vec<Vec<String>>,
    default_path: Vec<String>,
    /// The login's search_path when the DBA set it (for the role or database), not the client.
    dba_path: Option<Vec<String>>,
    path_dirty: bool,
    txn_path_changed: bool,
    /// search_path values seen since the transaction block that changed it began.
    txn_paths_seen: Vec<Vec<String>>,
    /// The plan of the result being streamed (simple protocol, after its RowDescription).
    current: Option<Arc<Vec<ColAction>>>,
    copy_out: Option<CopyOutState>,
    /// A COPY FROM STDIN forwarded and not yet finished by the server.
    copy_in: Option<CopyIn>,
    /// An extended-protocol message failed before the client sent its Sync: the server ignores
    /// every message until that Sync, and so does the proxy (nothing forwarded, no reply expected).
    skipping: bool,
    /// unscharf refused a message of the batch since the last Sync: the server skips the rest up
    /// to the Sync, so a Bind or Execute refused only because it names the statement or portal
    /// refused before is no refusal of its own and is not audited again (round 97: one refused
    /// libpq call wrote three records).
    batch_refused: bool,
    /// Extended-protocol messages went upstream since the last Sync or Flush: their replies may sit
    /// in the server's output buffer.
    unflushed: bool,
    /// Extended-protocol messages went upstream since the last Sync or Query: a Query now joins
    /// their implicit transaction, and commits it after its last statement.
    unsynced: bool,
    /// `unsynced` before the frame being handled.
    unsynced_before: bool,
    /// ReadyForQuery frames read from the server so far, and the count at which the last message
    /// that may run code (a Query, Bind or Execute) has been answered: settings that code changes
    /// are reported only then (see `settings_unsure`).
    readies: u64,
    code_answered_at: u64,
    /// The client message at hand forwarded a statement that may change such settings (see
    /// `judge::may_move_settings`).
    moves_settings: bool,
    /// The guard with the policy version, catalog generation and catalog content it was built for.
    guard: Option<(String, u64, u64, Arc<Guard>)>,
    /// The guard before the last reload or catalog refresh that kept the catalog's content:
    /// statements judged just before it may still be answering, under the rules they were judged by.
    previous_guard: Option<Arc<Guard>>,
    scratch: Vec<u8>,
    copy_scratch: Vec<u8>,
    memo: memo::Memo,
    /// The catalog generation search_path and the roles were last read under. A schema-change
    /// (a table created early in the path, a GRANT or REVOKE of USAGE) or a role-membership
    /// change moves the catalog on, and both are read again before the next statement is judged.
    pub probed_generation: u64,
    /// The login's roles as last read, for binding its purpose again after a reload (rule 2).
    pub roles: Vec<String>,
    /// The policy generation the purpose was last bound under.
    bound_policy: u64,
    /// Why the login no longer holds its purpose (a role revoked, a policy edited): every
    /// statement is refused until it does again.
    purpose_lost: Option<String>,
    /// The catalog changed and the login's roles could not be read again yet: only transaction
    /// control is judged until they are.
    roles_stale: bool,
    /// Whether a probe may be sent for the next message; false from a failed probe until the
    /// client's next ReadyForQuery, so that a probe that keeps failing cannot loop.
    probe_retry: bool,
    /// See `PreAnalyzed`; taken by the next `analyze` of the same text.
    pre_analyzed: std::sync::Mutex<Option<PreAnalyzed>>,
    /// The session's settings a filter computes with, as far as they are known.
    pub clock: clock::Clock,
    /// Why they may differ from the server's (`clock.moved`), as of the frame being handled.
    settings_moved: Option<crate::policy::decide::SettingsMove>,
    /// Why search_path may differ from the DBA's for the login, as of the client message at hand.
    path_moved: Option<&'static str>,
}

fn refusal_frame(r: &Refusal) -> Bytes {
    build::error(Severity::Error, "42501", &r.message(), Some(r.reason.hint()))
}

/// Postgres's error for a Bind of a prepared statement whose result columns changed since it was
/// described, word for word: pgjdbc and asyncpg recognize it and prepare the statement again.
fn result_changed_frame() -> Bytes {
    build::error(
        Severity::Error,
        "0A000",
        "cached plan must not change result type",
        Some("a policy reload changed which columns this statement returns, or how; prepare it again"),
    )
}

impl Core {
    /// `path_chosen`: the client chose the login's search_path (startup parameter or options).
    pub fn new(id: Identity, search_path: Vec<String>, path_chosen: bool, tx_status: u8) -> Core {
        Core {
            id,
            registry: Registry::default(),
            pending: VecDeque::new(),
            seq: 0,
            tx_status,
            read_campaigns: BTreeSet::new(),
            paths: vec![search_path.clone()],
            txn_paths_seen: vec![search_path.clone()],
            dba_path: (!path_chosen).then(|| search_path.clone()),
            default_path: search_path,
            path_dirty: false,
            txn_path_changed: false,
            current: None,
            copy_out: None,
            copy_in: None,
            skipping: false,
            batch_refused: false,
            unflushed: false,
            unsynced: false,
            unsynced_before: false,
            readies: 0,
            code_answered_at: 0,
            moves_settings: false,
            guard: None,
            previous_guard: None,
            scratch: Vec::new(),
            copy_scratch: Vec::new(),
            memo: memo::Memo::default(),
            probed_generation: 0,
            roles: Vec::new(),
            bound_policy: 0,
            purpose_lost: None,
            roles_stale: false,
            probe_retry: true,
            pre_analyzed: std::sync::Mutex::new(None),
            clock: clock::Clock::default(),
            settings_moved: None,
            path_moved: None,
        }
    }

    /// What startup read: under which catalog and policy generations, and the login's roles.
    pub fn started(&mut self, catalog_generation: u64, roles: Vec<String>, policy_generation: u64) {
        self.probed_generation = catalog_generation;
        self.roles = roles;
        self.bound_policy = policy_generation;
    }

    /// While the proxy's own probe is in flight, client messages wait: their analysis depends on its answer.
    /// Gives back what a large masked value grew the rewrite buffers to.
    pub fn shrink_scratch(&mut self) {
        super::buffers::shrink_scratch(&mut self.scratch);
        super::buffers::shrink_scratch(&mut self.copy_scratch);
    }

    pub fn stalled(&self) -> bool {
        self.pending.iter().any(|p| matches!(p, Pending::Probe { .. }))
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// How many ReadyForQuery the server owes: one per Query and Sync forwarded and not yet
    /// answered.
    pub fn ready_owed(&self) -> usize {
        self.pending
            .iter()
            .filter(|p| !p.is_extended() || matches!(p, Pending::Sync))
            .count()
    }

    /// A message sent before may still run code at the server (a Bind plans, an Execute or Query
    /// runs) whose changes to settings the server has not yet reported: it reports them only with
    /// the ReadyForQuery after it, not with the message's own answer (round 221 BF1: a Flush got
    /// the Execute answered, and the Parse after it was read with backslash escapes).
    fn settings_unsure(&self) -> bool {
        self.readies < self.code_answered_at
    }

    /// After a client message: one that forwarded a statement that may change settings (see
    /// `note_settings`) keeps `settings_unsure` until the next
    /// ReadyForQuery the server sends after it (a Query's own; for a Bind or Execute the next
    /// Sync's or Query's).
    pub(super) fn note_code_sent(&mut self, pending_before: usize) {
        if !std::mem::take(&mut self.moves_settings) || self.pending.len() <= pending_before {
            return;
        }
        let ready_after = match self.pending.back() {
            Some(Pending::Simple { refusal: None, .. }) => 0,
            Some(Pending::Bind { refusal: None, .. } | Pending::Execute { refusal: None, .. }) => 1,
            _ => return,
        };
        let at = self.readies + (self.ready_owed() + ready_after) as u64;
        self.code_answered_at = self.code_answered_at.max(at);
    }

    pub fn idle(&self) -> bool {
        self.pending.is_empty() && self.copy_out.is_none() && self.copy_in.is_none()
    }

    /// Extended-protocol messages went upstream since the last Sync: the server keeps their
    /// implicit transaction, and its locks, open until it comes.
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }

    pub fn tx_status(&self) -> u8 {
        self.tx_status
    }

    /// Why search_path may not be the one the DBA set for the login: a filter that prints or
    /// looks up names by it (`Catalog::path_filters`) would compute otherwise.
    fn path_moved_now(&self) -> Option<&'static str> {
        match (&self.dba_path, self.paths.as_slice()) {
            (None, _) => Some("this session chose its own search_path at connection start"),
            (Some(dba), [now]) if now == dba => None,
            (Some(_), []) => Some("this session's search_path is not known until unscharf reads it again"),
            (Some(_), _) => Some("this session has set search_path"),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn record(
        &self,
        env: &Env<'_>,
        decision: Decision,
        reason: &str,
        detail: &str,
        normalized: &str,
        campaigns: Vec<String>,
    ) -> Record {
        use crate::audit::event::{scrub, scrub_detail, scrub_names, scrub_words};
        let known = |w: &str| env.catalog.knows_word(w);
        let scrubbed = scrub_words(&scrub_names(&scrub(normalized), known), known);
        Record {
            session: self.id.session,
            user: self.id.user.clone(),
            client_addr: self.id.client_addr.clone(),
            purpose: self.id.purpose.clone(),
            campaigns,
            decision,
            reason: reason.to_owned(),
            detail: crate::audit::event::bounded(scrub_detail(&scrub_names(&scrub(detail), known), normalized, known)),
            statement: crate::audit::event::bounded(crate::audit::event::compact(&scrubbed)),
            // Of the text as recorded, all of it: one of the text before scrubbing would give back
            // by brute force the names and quoted values scrubbing took out (round 204 AO1).
            fingerprint: crate::analyze::lexer::fingerprint(&scrubbed),
            policy_version: env.policy.version.clone(),
        }
    }

    fn refuse(&self, env: &Env<'_>, out: &mut Out, r: &Refusal, normalized: &str) -> Bytes {
        out.tally.refused.push(r.reason);
        out.records.push(self.record(
            env,
            Decision::Refused,
            r.reason.code(),
            &r.detail,
            normalized,
            r.campaigns.clone(),
        ));
        refusal_frame(r)
    }

    /// Statements let through (for EXECUTE and FETCH, what they run) that may change settings a
    /// filter computes with (see `clock`).
    fn note_settings<'f>(&mut self, env: &Env<'_>, statements: impl IntoIterator<Item = &'f StatementFacts>) {
        for f in statements {
            self.moves_settings |= crate::judge::may_move_settings(f, env.catalog);
            for (name, via) in crate::judge::setting_changes(f, env.catalog) {
                self.clock.changed(&name, via);
            }
        }
    }

    fn allowed(&mut self, env: &Env<'_>, out: &mut Out, normalized: &str, plans: &[&Plan]) {
        for p in plans {
            if !p.reads.is_empty() {
                self.read_campaigns.extend(p.reads.iter().cloned());
            }
            if p.masked() || p.dropped() {
                out.tally.masked += 1;
            } else {
                out.tally.allowed += 1;
            }
        }
        if env.log_allowed {
            let masked = plans.iter().any(|p| p.masked() || p.dropped());
            let campaigns: Vec<String> = plans
                .iter()
                .flat_map(|p| p.campaigns.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let (d, reason) = if masked {
                (Decision::Masked, "masked")
            } else {
                (Decision::Allowed, "allowed")
            };
            out.records.push(self.record(env, d, reason, "", normalized, campaigns));
        }
    }

    fn analyze_ctx<'a>(&'a self, env: &Env<'a>) -> AnalyzeCtx<'a> {
        AnalyzeCtx {
            catalog: env.catalog,
            search_paths: &self.paths,
            user: &self.id.user,
            revert_paths: if self.txn_path_changed {
                &self.txn_paths_seen
            } else {
                &[]
            },
            abandoned: Default::default(),
        }
    }

    fn judge_ctx<'a>(&'a self, env: &Env<'a>) -> Result<JudgeCtx<'a>, Refusal> {
        if self.roles_stale {
            return Err(Self::stale_roles());
        }
        self.judge_ctx_known(env)
    }

    fn stale_roles() -> Refusal {
        Refusal::new(
            Reason::NoPurpose,
            "the database's roles or schemas changed, and unscharf has not read this login's roles again yet: end the transaction or the pipeline (Sync) and send the statement again",
        )
    }

    /// judge_ctx when the roles are known, or when only transaction control is judged.
    fn judge_ctx_known<'a>(&'a self, env: &Env<'a>) -> Result<JudgeCtx<'a>, Refusal> {
        if let Some(why) = &self.purpose_lost {
            return Err(Refusal::new(Reason::NoPurpose, why.clone()));
        }
        let purpose = env.policy.purposes.get(&self.id.purpose).ok_or_else(|| {
            Refusal::new(
                Reason::NoPurpose,
                format!("purpose {} no longer exists in the policies in force", self.id.purpose),
            )
        })?;
        Ok(JudgeCtx {
            policy: env.policy,
            purpose,
            catalog: env.catalog,
            today: env.today,
            read_campaigns: &self.read_campaigns,
            dba_path: self.dba_path.as_deref(),
            settings_moved: self.settings_moved.as_ref(),
            path_moved: self.path_moved,
        })
    }

    /// judge_statement for one statement of this session, remembered while nothing it depends on changes.
    fn judge(&self, facts: &Arc<StatementFacts>, env: &Env<'_>) -> Result<Allowed, Refusal> {
        if self.roles_stale && !matches!(facts.kind, Kind::Transaction(_)) {
            return Err(Self::stale_roles());
        }
        if let Kind::Execute { name } = &facts.kind {
            self.current(name, env)?;
        }
        let jcx = self.judge_ctx_known(env)?;
        let key = memo::VerdictKey {
            policy: env.policy.generation,
            purpose: jcx.purpose as *const _ as usize,
            catalog: env.catalog.generation,
            today: env.today,
            reads: self.read_campaigns.len(),
            settings_moved: crate::policy::decide::level(self.settings_moved.as_ref()),
            path_moved: self.path_moved.is_some(),
        };
        if let Some(a) = self.memo.verdict(facts, &key) {
            return Ok(a);
        }
        let allowed = judge_statement(facts, &jcx, &self.registry)?;
        self.memo.remember_verdict(facts, key, &allowed);
        Ok(allowed)
    }

    /// The analysis a large Query or Parse needs, to run off the session thread before the frame
    /// is judged; None for other frames, small ones, and one already analyzed.
    pub fn analysis_job(&self, f: &Frame, env: &Env<'_>) -> Option<AnalysisJob> {
        if f.raw.len() <= LARGE_FRAME {
            return None;
        }
        let sql = match f.tag {
            fe::QUERY => fe::query(f.body()).ok()?,
            fe::PARSE => fe::parse(f.body()).ok()?.sql,
            _ => return None,
        };
        if sql.len() > env.max_statement_bytes {
            return None;
        }
        let cx = self.analyze_ctx(env);
        // One analyzed under another catalog or search_path does not fit: analyzed again off the
        // thread too (round 133: the periodic catalog refresh, which always makes a new
        // generation, sent 1 MiB statements waiting at that moment back to their session threads).
        let fits = |p: &PreAnalyzed| {
            p.sql == sql && same_catalog(p, env.catalog) && p.paths == cx.search_paths && p.revert == cx.revert_paths
        };
        if self.pre_analyzed.lock().ok()?.as_ref().is_some_and(fits) {
            return None;
        }
        Some(AnalysisJob {
            sql: sql.to_owned(),
            catalog: env.catalog.generation,
            fingerprint: env.catalog.fingerprint,
            paths: cx.search_paths.to_vec(),
            revert: cx.revert_paths.to_vec(),
            user: cx.user.to_owned(),
        })
    }

    /// Keeps what `job` found for the `analyze` that judges its frame.
    pub fn pre_analyzed(
        &self,
        job: AnalysisJob,
        looked: Option<Result<crate::analyze::cache::Looked, crate::analyze::lexer::LexError>>,
    ) {
        if let Ok(mut p) = self.pre_analyzed.lock() {
            *p = Some(PreAnalyzed {
                sql: job.sql,
                catalog: job.catalog,
                fingerprint: job.fingerprint,
                paths: job.paths,
                revert: job.revert,
                looked,
            });
        }
    }

    /// Analysis of a whole message text; a catalog miss asks the session to refresh and retry once.
    fn analyze(
        &self,
        sql: &str,
        env: &Env<'_>,
        out: &mut Out,
        retried: bool,
    ) -> (String, Result<Arc<crate::analyze::facts::Analysis>, Refusal>) {
        if sql.len() > env.max_statement_bytes {
            let why = format!(
                "the statement is {} bytes long; unscharf analyzes at most {} (limits.max_statement_bytes)",
                sql.len(),
                env.max_statement_bytes
            );
            return (
                "(statement too long)".into(),
                Err(Refusal::new(Reason::UnsupportedStatement, why)),
            );
        }
        if self.settings_unsure() && crate::analyze::reads_by_session_settings(sql.as_bytes()) {
            let normalized =
                crate::analyze::lexer::normalize(sql).map_or_else(|_| "(not normalizable)".into(), |n| n.text);
            let why = "a statement with backslashes or non-ASCII characters sent before the server answered the one before it: a function that one runs may change standard_conforming_strings or client_encoding, which Postgres would read this by before unscharf can see it (send it after the answer)";
            return (normalized, Err(Refusal::new(Reason::UnsupportedStatement, why)));
        }
        let cx = self.analyze_ctx(env);
        let key = memo::AnalysisKey {
            catalog: env.catalog.generation,
            paths: cx.search_paths,
            revert_paths: cx.revert_paths,
        };
        if let Some((normalized, analysis)) = self.memo.analysis(sql, &key) {
            return (normalized, Ok(analysis));
        }
        let pre = self.pre_analyzed.lock().ok().and_then(|mut p| p.take()).filter(|p| {
            p.sql == sql && same_catalog(p, env.catalog) && p.paths == cx.search_paths && p.revert == cx.revert_paths
        });
        let looked = match pre.and_then(|p| p.looked) {
            Some(looked) => looked,
            None => env.cache.analyze(sql, cx),
        };
        match looked {
            Err(e) => ("(not normalizable)".into(), Err(refusal_for(&AnalyzeError::Lex(e)))),
            Ok(l) => {
                if let Ok(a) = &l.analysis {
                    self.memo.remember_analysis(sql, &key, &l.normalized, a);
                }
                let result = l.analysis.map_err(|e| {
                    if !retried
                        && matches!(
                            e,
                            AnalyzeError::UnknownRelation(_)
                                | AnalyzeError::UnknownColumn(_)
                                | AnalyzeError::UnknownFunction(_)
                        )
                    {
                        out.refresh_catalog = true;
                    }
                    refusal_for(&e)
                });
                (l.normalized, result)
            }
        }
    }

    /// When the proxy stops reading a full pipeline, the server must still answer what it has:
    /// without a Sync or Flush it keeps extended-protocol replies in its buffer, and both would wait.
    pub fn flush_for_backpressure(&mut self, out: &mut Out) {
        if self.unflushed {
            out.to_upstream.extend_from_slice(&encode::flush());
            self.unflushed = false;
        }
    }

    /// The audit record of a result cut off by rule 10.
    /// The record of a session the migration fence ended: unscharf cannot know what Postgres ran.
    pub fn fence_record(&self, policy_version: &str, why: &str) -> Record {
        Record {
            reason: Reason::UnsupportedStatement.code().to_owned(),
            detail: why.to_owned(),
            ..self.cutoff_record(policy_version, why)
        }
    }

    pub fn cutoff_record(&self, policy_version: &str, why: &str) -> Record {
        Record {
            session: self.id.session,
            user: self.id.user.clone(),
            client_addr: self.id.client_addr.clone(),
            purpose: self.id.purpose.clone(),
            campaigns: Vec::new(),
            decision: Decision::Refused,
            reason: Reason::ProtectedColumn.code().to_owned(),
            detail: format!("result cut off by the second line of defence: {why}"),
            statement: "(result)".into(),
            fingerprint: String::new(),
            policy_version: policy_version.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
