//! The protocol state machine of one ready session, free of I/O: client and server frames in,
//! frames for both sides and audit records out. Every statement passes `decide` here, and every
//! result passes the plan of the statement that produced it.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::registry::{PortalInfo, Registry, Tag};
use crate::analyze::facts::{CopyOut, Kind, PathChange, StatementFacts};
use crate::analyze::{cache::AnalysisCache, AnalyzeCtx, AnalyzeError};
use crate::audit::{Decision, Record};
use crate::catalog::Catalog;
use crate::judge::{judge_statement, refusal_for, Allowed, JudgeCtx};
use crate::mask::copy::CopyFormat;
use crate::policy::decide::{ColAction, Guard, Plan};
use crate::policy::{PolicySet, Reason, Refusal};
use crate::wire::build::{self, Severity};
use crate::wire::frontend::{self as fe, encode};
use crate::wire::{Frame, WireError};

/// The statement text sent upstream in place of a refused one: it fails to parse, so the server
/// raises an error exactly where the refused statement would have run, aborting a transaction block
/// and skipping the rest of an extended-protocol batch, as if the server itself had refused it.
pub const REFUSED_SQL: &str = "/* unscharf: statement refused by policy */ unscharf_refused";
/// A statement and portal name no client may use, so a substituted Bind/Describe/Execute always fails.
pub const RESERVED_PREFIX: &str = "unscharf_";
const REFUSED_NAME: &str = "unscharf_refused";
const PROBE_SQL: &str = "SELECT pg_catalog.current_setting('search_path')";

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

/// A statement's result plan as the replies need it.
#[derive(Debug, Clone, Default)]
struct Result_ {
    plan: Option<Arc<Vec<ColAction>>>,
    copy: Option<CopyOut>,
}

impl Result_ {
    fn of(plan: &Plan, facts: &StatementFacts) -> Self {
        Result_ {
            plan: plan.columns.clone().map(Arc::new),
            copy: match &facts.kind {
                Kind::CopyTo(c) => Some(c.clone()),
                _ => None,
            },
        }
    }
}

enum Pending {
    /// A simple Query: one result per statement, then ReadyForQuery.
    Simple {
        seq: u64,
        results: Vec<Result_>,
        idx: usize,
        refusal: Option<Bytes>,
    },
    Parse {
        seq: u64,
        refusal: Option<Bytes>,
    },
    Bind {
        seq: u64,
        refusal: Option<Bytes>,
    },
    DescribeStatement {
        plan: Option<Arc<Vec<ColAction>>>,
        refusal: Option<Bytes>,
    },
    DescribePortal {
        plan: Option<Arc<Vec<ColAction>>>,
        formats: Vec<i16>,
        refusal: Option<Bytes>,
    },
    Execute {
        seq: u64,
        result: Result_,
        refusal: Option<Bytes>,
    },
    Close {
        seq: u64,
    },
    Sync,
    /// A FunctionCall, replaced by a failing query: ErrorResponse then ReadyForQuery.
    Refused {
        refusal: Bytes,
    },
    /// The proxy's own search_path query; its replies never reach the client.
    Probe {
        value: Option<String>,
    },
}

impl Pending {
    fn is_extended(&self) -> bool {
        !matches!(
            self,
            Pending::Simple { .. } | Pending::Sync | Pending::Refused { .. } | Pending::Probe { .. }
        )
    }
}

/// COPY TO STDOUT data being masked.
struct CopyOutState {
    format: CopyFormat,
    plan: Arc<Vec<ColAction>>,
    header: bool,
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
    path_dirty: bool,
    txn_path_changed: bool,
    /// search_path values seen since the transaction block that changed it began.
    txn_paths_seen: Vec<Vec<String>>,
    /// The plan of the result being streamed (simple protocol, after its RowDescription).
    current: Option<Arc<Vec<ColAction>>>,
    copy_out: Option<CopyOutState>,
    /// The server is in COPY FROM STDIN: it ignores Sync and Flush until CopyDone or CopyFail.
    copy_in: bool,
    /// Extended-protocol messages went upstream since the last Sync or Flush: their replies may sit
    /// in the server's output buffer.
    unflushed: bool,
    guard: Option<(String, u64, Arc<Guard>)>,
    scratch: Vec<u8>,
    copy_scratch: Vec<u8>,
}

fn refusal_frame(r: &Refusal) -> Bytes {
    build::error(
        Severity::Error,
        "42501",
        &r.message(),
        Some("unscharf enforces the purpose policies; ask a DBA if this refusal is wrong"),
    )
}

impl Core {
    pub fn new(id: Identity, search_path: Vec<String>, tx_status: u8) -> Core {
        Core {
            id,
            registry: Registry::default(),
            pending: VecDeque::new(),
            seq: 0,
            tx_status,
            read_campaigns: BTreeSet::new(),
            paths: vec![search_path.clone()],
            txn_paths_seen: vec![search_path.clone()],
            default_path: search_path,
            path_dirty: false,
            txn_path_changed: false,
            current: None,
            copy_out: None,
            copy_in: false,
            unflushed: false,
            guard: None,
            scratch: Vec::new(),
            copy_scratch: Vec::new(),
        }
    }

    /// While the proxy's own probe is in flight, client messages wait: their analysis depends on its answer.
    pub fn stalled(&self) -> bool {
        self.pending.iter().any(|p| matches!(p, Pending::Probe { .. }))
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    pub fn idle(&self) -> bool {
        self.pending.is_empty() && self.copy_out.is_none() && !self.copy_in
    }

    pub fn tx_status(&self) -> u8 {
        self.tx_status
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
        Record {
            session: self.id.session,
            user: self.id.user.clone(),
            client_addr: self.id.client_addr.clone(),
            purpose: self.id.purpose.clone(),
            campaigns,
            decision,
            reason: reason.to_owned(),
            detail: detail.to_owned(),
            statement: normalized.to_owned(),
            fingerprint: crate::analyze::lexer::fingerprint(normalized),
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
            Vec::new(),
        ));
        refusal_frame(r)
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
        }
    }

    fn judge_ctx<'a>(&'a self, env: &Env<'a>) -> Result<JudgeCtx<'a>, Refusal> {
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
        })
    }

    /// Analysis of a whole message text; a catalog miss asks the session to refresh and retry once.
    fn analyze(
        &self,
        sql: &str,
        env: &Env<'_>,
        out: &mut Out,
        retried: bool,
    ) -> (String, Result<Arc<crate::analyze::facts::Analysis>, Refusal>) {
        match env.cache.analyze(sql, self.analyze_ctx(env)) {
            Err(e) => ("(not normalizable)".into(), Err(refusal_for(&AnalyzeError::Lex(e)))),
            Ok(l) => {
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

    /// Handles one client frame. `retried` is set when the frame is handled again after a catalog refresh.
    pub fn on_client(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out, retried: bool) -> Result<(), CoreError> {
        self.unflushed = matches!(f.tag, fe::PARSE | fe::BIND | fe::DESCRIBE | fe::EXECUTE | fe::CLOSE)
            || (self.unflushed && !matches!(f.tag, fe::SYNC | fe::FLUSH | fe::QUERY));
        match f.tag {
            fe::QUERY => self.query(f, env, out, retried),
            fe::PARSE => self.parse(f, env, out, retried),
            fe::BIND => self.bind(f, env, out),
            fe::DESCRIBE => self.describe(f, env, out),
            fe::EXECUTE => self.execute(f, env, out),
            fe::CLOSE => {
                let (target, name) = fe::close(f.body())?;
                let seq = self.next_seq();
                match target {
                    fe::Target::Statement => self.registry.drop_statement((seq, 0), Some(name)),
                    fe::Target::Portal => self.registry.drop_portal((seq, 0), Some(name)),
                }
                out.to_upstream.extend_from_slice(&f.raw);
                self.pending.push_back(Pending::Close { seq });
                Ok(())
            }
            fe::SYNC => {
                out.to_upstream.extend_from_slice(&f.raw);
                if !self.copy_in {
                    self.pending.push_back(Pending::Sync);
                    self.maybe_probe(out);
                }
                Ok(())
            }
            fe::COPY_DONE | fe::COPY_FAIL => {
                self.copy_in = false;
                out.to_upstream.extend_from_slice(&f.raw);
                Ok(())
            }
            fe::FLUSH | fe::COPY_DATA => {
                out.to_upstream.extend_from_slice(&f.raw);
                Ok(())
            }
            fe::TERMINATE => {
                out.to_upstream.extend_from_slice(&f.raw);
                out.terminate = true;
                Ok(())
            }
            fe::FUNCTION_CALL => {
                let r = Refusal::new(
                    Reason::UnsupportedStatement,
                    "the FunctionCall protocol message is not supported; call the function in a query",
                );
                let refusal = self.refuse(env, out, &r, "(FunctionCall message)");
                out.to_upstream.extend_from_slice(&encode::query(REFUSED_SQL));
                self.pending.push_back(Pending::Refused { refusal });
                Ok(())
            }
            other => Err(CoreError::ClientProtocol(other as char)),
        }
    }

    /// Registry changes and search_path effects of statements that will run; `sub` numbers them within a message.
    fn effects(&mut self, seq: u64, sub: u32, a: &Allowed) {
        let f = &a.facts;
        let tag: Tag = (seq, sub);
        match &f.kind {
            Kind::Prepare { name } => self.registry.set_statement(tag, name, a.facts.clone()),
            Kind::Deallocate { name } => self.registry.drop_statement(tag, name.as_deref()),
            Kind::Declare { name } => self.registry.set_portal(
                tag,
                name,
                Arc::new(PortalInfo {
                    facts: a.facts.clone(),
                    plan: None,
                    formats: Vec::new(),
                }),
            ),
            Kind::ClosePortal { name } => self.registry.drop_portal(tag, name.as_deref()),
            Kind::Discard { all: true } => {
                self.registry.drop_statement(tag, None);
                self.registry.drop_portal(tag, None);
            }
            _ => {}
        }
        if let Some(change) = &f.path_change {
            self.path_dirty = true;
            match change {
                PathChange::To(p) => {
                    if !self.paths.contains(p) && !self.paths.is_empty() {
                        self.paths.push(p.clone());
                    }
                }
                PathChange::Reset => {
                    if !self.paths.contains(&self.default_path) && !self.paths.is_empty() {
                        self.paths.push(self.default_path.clone());
                    }
                }
                PathChange::Unknown => self.paths.clear(),
            }
        }
        if self.txn_path_changed {
            self.path_dirty = true;
            if f.kind.may_revert_settings() && !self.paths.is_empty() {
                for p in &self.txn_paths_seen {
                    if !self.paths.contains(p) {
                        self.paths.push(p.clone());
                    }
                }
            }
        }
    }

    fn query(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out, retried: bool) -> Result<(), CoreError> {
        let sql = fe::query(f.body())?;
        #[cfg(feature = "fault-injection")]
        if sql == "SELECT 'unscharf: panic now'" {
            panic!("fault injection: a session panics on purpose");
        }
        let (normalized, analysis) = self.analyze(sql, env, out, retried);
        if out.refresh_catalog {
            return Ok(());
        }
        let seq = self.next_seq();
        let verdict = analysis.and_then(|a| {
            if let Some(r) = &env.refuse_all {
                return Err(r.clone());
            }
            let jcx = self.judge_ctx(env)?;
            a.statements
                .iter()
                .map(|s| judge_statement(s, &jcx, &self.registry))
                .collect::<Result<Vec<_>, _>>()
        });
        match verdict {
            Err(r) => {
                let refusal = self.refuse(env, out, &r, &normalized);
                out.to_upstream.extend_from_slice(&encode::query(REFUSED_SQL));
                self.pending.push_back(Pending::Simple {
                    seq,
                    results: Vec::new(),
                    idx: 0,
                    refusal: Some(refusal),
                });
            }
            Ok(allowed) => {
                let plans: Vec<&Plan> = allowed.iter().map(|a| &a.plan).collect();
                let plans_owned: Vec<Plan> = plans.iter().map(|p| (*p).clone()).collect();
                self.allowed(env, out, &normalized, &plans_owned.iter().collect::<Vec<_>>());
                let results = allowed.iter().map(|a| Result_::of(&a.plan, &a.facts)).collect();
                for (i, a) in allowed.iter().enumerate() {
                    self.effects(seq, i as u32, a);
                }
                out.to_upstream.extend_from_slice(&f.raw);
                self.pending.push_back(Pending::Simple {
                    seq,
                    results,
                    idx: 0,
                    refusal: None,
                });
            }
        }
        self.maybe_probe(out);
        Ok(())
    }

    fn reserved(name: &str) -> bool {
        name.starts_with(RESERVED_PREFIX)
    }

    fn parse(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out, retried: bool) -> Result<(), CoreError> {
        let p = fe::parse(f.body())?;
        let seq = self.next_seq();
        let (normalized, analysis) = self.analyze(p.sql, env, out, retried);
        if out.refresh_catalog {
            self.seq -= 1;
            return Ok(());
        }
        let verdict = analysis.and_then(|a| {
            if Self::reserved(p.name) {
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    format!("statement names starting with {RESERVED_PREFIX} are reserved"),
                ));
            }
            if self.registry.is_full() {
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    "too many prepared statements in this session",
                ));
            }
            if let Some(r) = &env.refuse_all {
                return Err(r.clone());
            }
            let [facts] = a.statements.as_slice() else {
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    "a prepared statement must contain exactly one statement",
                ));
            };
            let facts = facts.clone();
            let jcx = self.judge_ctx(env)?;
            judge_statement(&facts, &jcx, &self.registry).map(|allowed| (facts, allowed))
        });
        match verdict {
            Err(r) => {
                let refusal = self.refuse(env, out, &r, &normalized);
                out.to_upstream.extend_from_slice(&encode::parse(p.name, REFUSED_SQL));
                self.pending.push_back(Pending::Parse {
                    seq,
                    refusal: Some(refusal),
                });
            }
            Ok((facts, _)) => {
                // Statement effects (SET search_path, PREPARE, DECLARE ...) happen when it is executed.
                self.registry.set_statement((seq, 0), p.name, facts);
                out.to_upstream.extend_from_slice(&f.raw);
                self.pending.push_back(Pending::Parse { seq, refusal: None });
            }
        }
        Ok(())
    }

    fn bind(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out) -> Result<(), CoreError> {
        let b = fe::bind(f.body())?;
        let seq = self.next_seq();
        let normalized = format!("(Bind of prepared statement {})", b.statement);
        let verdict = (|| {
            if Self::reserved(b.portal) {
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    format!("portal names starting with {RESERVED_PREFIX} are reserved"),
                ));
            }
            let facts = self.registry.statement(b.statement).ok_or_else(|| {
                Refusal::new(
                    Reason::UnsupportedStatement,
                    format!("prepared statement \"{}\" is not known to unscharf", b.statement),
                )
            })?;
            if let Some(r) = &env.refuse_all {
                return Err(r.clone());
            }
            let jcx = self.judge_ctx(env)?;
            let allowed = judge_statement(&facts, &jcx, &self.registry)?;
            let formats = match &allowed.plan.columns {
                Some(plan) => crate::mask::rows::upstream_formats(plan, &b)
                    .map_err(|e| Refusal::new(Reason::UnsupportedStatement, e))?,
                None => None,
            };
            Ok((facts, allowed, formats))
        })();
        match verdict {
            Err(r) => {
                let refusal = self.refuse(env, out, &r, &normalized);
                out.to_upstream.extend_from_slice(&encode::bind(b.portal, REFUSED_NAME));
                self.pending.push_back(Pending::Bind {
                    seq,
                    refusal: Some(refusal),
                });
            }
            Ok((_, allowed, formats)) => {
                let plan = Arc::new(allowed.plan.clone());
                self.allowed(env, out, &normalized, &[&allowed.plan]);
                self.registry.set_portal(
                    (seq, 0),
                    b.portal,
                    Arc::new(PortalInfo {
                        facts: allowed.facts.clone(),
                        plan: Some(plan),
                        formats: b.result_formats.clone(),
                    }),
                );
                match formats {
                    Some(fmts) => out
                        .to_upstream
                        .extend_from_slice(&b.with_result_formats(f.body(), &fmts)),
                    None => out.to_upstream.extend_from_slice(&f.raw),
                }
                self.pending.push_back(Pending::Bind { seq, refusal: None });
            }
        }
        Ok(())
    }

    fn describe(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out) -> Result<(), CoreError> {
        let (target, name) = fe::describe(f.body())?;
        let judged = |core: &Self, facts: &Arc<StatementFacts>| -> Result<Allowed, Refusal> {
            let jcx = core.judge_ctx(env)?;
            judge_statement(facts, &jcx, &core.registry)
        };
        match target {
            fe::Target::Statement => match self.registry.statement(name) {
                None => {
                    out.to_upstream.extend_from_slice(&f.raw);
                    self.pending.push_back(Pending::DescribeStatement {
                        plan: None,
                        refusal: None,
                    });
                }
                Some(facts) => match judged(self, &facts) {
                    Ok(a) => {
                        out.to_upstream.extend_from_slice(&f.raw);
                        self.pending.push_back(Pending::DescribeStatement {
                            plan: a.plan.columns.map(Arc::new),
                            refusal: None,
                        });
                    }
                    Err(r) => {
                        let refusal = self.refuse(env, out, &r, &format!("(Describe of prepared statement {name})"));
                        out.to_upstream.extend_from_slice(&describe_frame(b'S', REFUSED_NAME));
                        self.pending.push_back(Pending::DescribeStatement {
                            plan: None,
                            refusal: Some(refusal),
                        });
                    }
                },
            },
            fe::Target::Portal => {
                let portal = self.registry.portal(name);
                let (plan, formats) = match &portal {
                    None => (None, Vec::new()),
                    Some(p) => match &p.plan {
                        Some(plan) => (plan.columns.clone().map(Arc::new), p.formats.clone()),
                        None => match judged(self, &p.facts) {
                            Ok(a) => (a.plan.columns.map(Arc::new), Vec::new()),
                            Err(r) => {
                                let refusal = self.refuse(env, out, &r, &format!("(Describe of portal {name})"));
                                out.to_upstream.extend_from_slice(&describe_frame(b'P', REFUSED_NAME));
                                self.pending.push_back(Pending::DescribePortal {
                                    plan: None,
                                    formats: Vec::new(),
                                    refusal: Some(refusal),
                                });
                                return Ok(());
                            }
                        },
                    },
                };
                out.to_upstream.extend_from_slice(&f.raw);
                self.pending.push_back(Pending::DescribePortal {
                    plan,
                    formats,
                    refusal: None,
                });
            }
        }
        Ok(())
    }

    fn execute(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out) -> Result<(), CoreError> {
        let (portal, _) = fe::execute(f.body())?;
        let seq = self.next_seq();
        let verdict = (|| {
            let info = self.registry.portal(portal).ok_or_else(|| {
                Refusal::new(
                    Reason::UnsupportedStatement,
                    format!("portal \"{portal}\" is not known to unscharf"),
                )
            })?;
            if let Some(r) = &env.refuse_all {
                return Err(r.clone());
            }
            let jcx = self.judge_ctx(env)?;
            match &info.plan {
                // A Bind portal was judged at Bind; its statement's effects happen now.
                Some(plan) => Ok(Allowed {
                    plan: (**plan).clone(),
                    facts: info.facts.clone(),
                }),
                None => judge_statement(&info.facts, &jcx, &self.registry),
            }
        })();
        match verdict {
            Err(r) => {
                let refusal = self.refuse(env, out, &r, &format!("(Execute of portal {portal})"));
                out.to_upstream.extend_from_slice(&encode::execute(REFUSED_NAME));
                self.pending.push_back(Pending::Execute {
                    seq,
                    result: Result_::default(),
                    refusal: Some(refusal),
                });
            }
            Ok(a) => {
                self.effects(seq, 0, &a);
                out.to_upstream.extend_from_slice(&f.raw);
                self.pending.push_back(Pending::Execute {
                    seq,
                    result: Result_::of(&a.plan, &a.facts),
                    refusal: None,
                });
            }
        }
        Ok(())
    }

    /// After a Sync or Query, asks the server for search_path if a statement may have changed it.
    fn maybe_probe(&mut self, out: &mut Out) {
        if !self.path_dirty {
            return;
        }
        // A Query inside an unfinished extended batch would be skipped after an error; wait for the Sync.
        let open_batch = self
            .pending
            .iter()
            .rev()
            .take_while(|p| !matches!(p, Pending::Sync))
            .any(Pending::is_extended);
        if open_batch {
            return;
        }
        self.path_dirty = false;
        out.to_upstream.extend_from_slice(&encode::query(PROBE_SQL));
        self.pending.push_back(Pending::Probe { value: None });
    }
}

fn describe_frame(target: u8, name: &str) -> Bytes {
    let mut body = vec![target];
    body.extend_from_slice(name.as_bytes());
    body.push(0);
    crate::wire::frame::frame(fe::DESCRIBE, &body).raw
}

mod replies;

impl Core {
    /// The audit record of a result cut off by rule 10.
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
