//! Client messages: each statement is analyzed and judged before anything reaches the server; a
//! refused one is replaced by the stand-in, an allowed one is forwarded with the plan its results need.

use super::*;
use crate::analyze::bound_array_len;
use crate::judge::{check_array_lookups, path_changed, same_paths};

impl Core {
    /// Handles one client frame. `retried` is set when the frame is handled again after a catalog refresh.
    pub fn on_client(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out, retried: bool) -> Result<(), CoreError> {
        // While a COPY's data flows only copy messages may come (others end the session below);
        // after its end, anything may, and it must wait like any other message.
        let copying = self.copy_in.as_ref().is_some_and(|ci| !ci.ended);
        if !self.skipping && !copying && self.must_wait(f)? {
            out.hold = true;
            return Ok(());
        }
        if env.policy.generation != self.bound_policy {
            self.bind_purpose(env);
        }
        // Whether a batch was open before this frame; a frame handed in again after a catalog
        // refresh has already counted itself in `unsynced`.
        if !retried {
            self.unsynced_before = self.unsynced;
        }
        let judged = matches!(f.tag, fe::QUERY | fe::PARSE | fe::BIND | fe::DESCRIBE | fe::EXECUTE);
        if judged && !self.skipping && !copying && self.probed_generation != env.catalog.generation {
            // What search_path reaches and which roles the login has may have changed with the
            // catalog: read them again before judging. Inside a batch no query can go ahead of the
            // message, so the path is unknown there until the batch ends.
            self.path_dirty = true;
            // A Query between a batch's messages would end its implicit transaction and drop
            // its unnamed statement: only before a batch's first message (nothing unsynced).
            if self.tx_status != b'E' && self.probe_retry && !self.unsynced_before && self.maybe_probe(env, out) {
                out.hold = true;
                return Ok(());
            }
            // No probe now: the path is unknown until one succeeds. In a failed transaction block
            // (where the probe would fail too) or after a probe that just failed, so are the
            // roles, and only transaction control passes (round 24). Inside an unfinished batch
            // or COPY the batch goes on under the roles read before; its Sync lets the probe go.
            self.paths.clear();
            if self.tx_status == b'E' || !self.probe_retry {
                self.roles_stale = true;
            }
        }
        if judged {
            // Keep rule 10's guard at the rules this message is judged by, so that after a reload
            // its answers are checked against them (see previous_guard).
            self.refresh_guard(env);
        }
        let extended = matches!(f.tag, fe::PARSE | fe::BIND | fe::DESCRIBE | fe::EXECUTE | fe::CLOSE);
        self.unflushed = extended || (self.unflushed && !matches!(f.tag, fe::SYNC | fe::FLUSH | fe::QUERY));
        // Ended only by a Sync that reaches the server (a held one may be dropped) or by a Query,
        // which joins that transaction (see query()).
        self.unsynced |= extended;
        if self.skipping {
            match f.tag {
                fe::SYNC => self.skipping = false,
                fe::TERMINATE => {}
                // Postgres ignores it: judging it, or waiting for its answer, would misalign replies.
                _ => return Ok(()),
            }
        }
        if let Some(ci) = &mut self.copy_in {
            match f.tag {
                fe::COPY_DATA | fe::COPY_DONE | fe::COPY_FAIL if !ci.ended => {
                    ci.data = true;
                    ci.ended = f.tag != fe::COPY_DATA;
                    // The data starts while the COPY is live: in copy mode the server would have
                    // ignored the held Syncs, and out of it, it now drops the data.
                    ci.held_syncs = 0;
                }
                fe::SYNC if !ci.ended && !ci.data => {
                    ci.held_syncs += 1;
                    return Ok(());
                }
                // After the data's end the server reads messages as usual once the COPY is done.
                _ if ci.ended => {}
                fe::FLUSH | fe::TERMINATE => {}
                // Amid the data: a Sync may be ignored or answered, and anything else ends the
                // connection in Postgres too.
                other => return Err(CoreError::ClientProtocol(other as char)),
            }
        }
        let refused_before = out.tally.refused.len();
        let done = self.dispatch(f, env, out, retried);
        if extended && out.tally.refused.len() > refused_before {
            self.batch_refused = true;
        } else if matches!(f.tag, fe::SYNC | fe::QUERY) {
            self.batch_refused = false;
        }
        done
    }

    fn dispatch(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out, retried: bool) -> Result<(), CoreError> {
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
                self.unsynced = false;
                self.pending.push_back(Pending::Sync);
                self.registry.close_batch();
                self.maybe_probe(env, out);
                Ok(())
            }
            fe::COPY_DONE | fe::COPY_FAIL => {
                // Outside a COPY the server drops these (a COPY that failed before the client noticed).
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
    fn effects(&mut self, seq: u64, sub: u32, f: &Arc<StatementFacts>) {
        let tag: Tag = (seq, sub);
        match &f.kind {
            Kind::Prepare { name } => self.registry.set_statement(tag, name, Arc::new(f.prepared())),
            Kind::Deallocate { name } => self.registry.drop_statement(tag, name.as_deref()),
            Kind::Declare { name } => self.registry.set_portal(
                tag,
                name,
                Arc::new(PortalInfo {
                    facts: f.clone(),
                    plan: None,
                    formats: Vec::new(),
                    bound_to: None,
                    policy_generation: 0,
                    reads_seen: 0,
                    judged_on: chrono::NaiveDate::MIN,
                }),
            ),
            Kind::ClosePortal { name } => self.registry.drop_portal(tag, name.as_deref()),
            Kind::Discard { all: true } => {
                self.registry.drop_statement(tag, None);
                self.registry.drop_portal(tag, None);
            }
            _ => {}
        }
        self.path_effects(f);
        // EXECUTE, FETCH and MOVE run a statement whose effects on search_path happen now.
        if let Some(r) = crate::judge::runs_by_name(&f.kind, &self.registry) {
            self.path_effects(&r);
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

    fn path_effects(&mut self, f: &StatementFacts) {
        let Some(change) = &f.path_change else { return };
        self.path_dirty = true;
        let to = match change {
            PathChange::To(p) => p.clone(),
            PathChange::Reset => self.default_path.clone(),
            PathChange::Unknown => {
                self.paths.clear();
                // What a COMMIT or ROLLBACK may bring back is then unknown too: a path of a
                // schema that cannot exist (Postgres names hold no NUL) resolves no name, so
                // every unqualified name is ambiguous after one, until the probe answers.
                let unknown = vec!["\u{0}unknown".to_owned()];
                if !self.txn_paths_seen.contains(&unknown) {
                    self.txn_paths_seen.push(unknown);
                }
                return;
            }
        };
        if !self.paths.contains(&to) && !self.paths.is_empty() {
            self.paths.push(to.clone());
        }
        // A later SET LOCAL may hide this value from the probe, and a COMMIT or ROLLBACK (TO)
        // bring it back: every value a transaction sets is one it may end with.
        if !self.txn_paths_seen.contains(&to) {
            self.txn_paths_seen.push(to);
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
            // One statement is judge_all's single step, and can be remembered.
            let allowed = match a.statements.as_slice() {
                [one] => vec![self.judge(one, env)?],
                _ => judge_all(&a, &self.judge_ctx(env)?, &self.registry)?,
            };
            let runs = a.statements.iter().zip(&allowed).filter(|(s, _)| runs_query(&s.kind));
            self.spend_lookups(env, runs.map(|(_, a)| &*a.plan))?;
            Ok((a, allowed))
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
                    failed: false,
                    commits_after_last: false,
                });
            }
            Ok((analysis, allowed)) => {
                let copies = analysis.statements.iter().any(|s| s.kind == Kind::CopyFrom);
                if copies && self.copy_in.is_some() {
                    // One COPY FROM STDIN at a time: the Syncs around two could not be told apart.
                    return Err(CoreError::ClientProtocol('Q'));
                }
                if copies {
                    self.copy_in = Some(CopyIn::new(seq));
                }
                let plans: Vec<&Plan> = allowed.iter().map(|a| &*a.plan).collect();
                self.allowed(env, out, &normalized, &plans);
                let results = allowed.iter().map(|a| Result_::of(&a.plan, &a.facts)).collect();
                // Registry effects come from the statements as written; what EXECUTE and FETCH
                // run may still change search_path.
                for (i, st) in analysis.statements.iter().enumerate() {
                    self.effects(seq, i as u32, st);
                }

                out.to_upstream.extend_from_slice(&f.raw);
                // Alone in its transaction, one statement has nothing to fail at commit.
                let commits_after_last = analysis.statements.len() > 1 || self.unsynced;
                self.pending.push_back(Pending::Simple {
                    seq,
                    results,
                    idx: 0,
                    refusal: None,
                    failed: false,
                    commits_after_last,
                });
            }
        }
        self.unsynced = false;
        // Forwarded, so the server answers everything before it without waiting for the client.
        self.registry.close_batch();
        self.maybe_probe(env, out);
        Ok(())
    }

    /// Charges the login's lookup allowance (`limits.lookups_per_minute`) for the statements that
    /// look up protected columns; all of them or, refusing, none.
    fn spend_lookups<'p>(&self, env: &Env<'_>, plans: impl Iterator<Item = &'p Plan>) -> Result<(), Refusal> {
        let mut n = 0;
        let mut column = None;
        for p in plans {
            if let Some(c) = p.lookups.first() {
                n += 1;
                column.get_or_insert(c);
            }
        }
        match column {
            Some(c) if !env.lookups.take(&self.id.user, n, env.lookups_per_minute, std::time::Instant::now()) => Err(Refusal::new(
                Reason::ProtectedColumn,
                format!(
                    "column {c} is looked up too often: {} may run {} statements a minute that look up protected columns (limits.lookups_per_minute); a lookup finds a caller, it does not test guesses",
                    self.id.user, env.lookups_per_minute
                ),
            )),
            _ => Ok(()),
        }
    }

    fn reserved(name: &str) -> bool {
        name.starts_with(RESERVED_PREFIX)
    }

    /// Postgres's FirstNormalObjectId: objects created after initdb have OIDs from here on.
    const FIRST_NORMAL_OBJECT_ID: u32 = 16384;

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
            // A parameter declared of such a type runs the DBA's code on the value bound (round 28),
            // and a type a DBA defined can become such a type after the Parse (ALTER TYPE … ADD
            // ATTRIBUTE, round 31): only the server's own types (OIDs below 16384) may be declared.
            if p
                .param_types
                .iter()
                .any(|t| *t >= Self::FIRST_NORMAL_OBJECT_ID || env.catalog.user_cast_type_oids.contains(t))
            {
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    "a parameter declared of a type a DBA defined, whose casts or domain CHECK may run a function a DBA wrote",
                ));
            }
            let [facts] = a.statements.as_slice() else {
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    "a prepared statement must contain exactly one statement",
                ));
            };
            let facts = facts.clone();
            self.judge(&facts, env).map(|allowed| (facts, allowed))
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

    /// The normalized SQL a named statement or portal runs, for audit records of messages that
    /// only name it; `what` when the name is unknown.
    fn statement_text(facts: Option<&StatementFacts>, what: impl FnOnce() -> String) -> String {
        match facts {
            Some(f) if !f.statement.is_empty() => f.statement.clone(),
            _ => what(),
        }
    }

    fn bind(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out) -> Result<(), CoreError> {
        let b = fe::bind(f.body())?;
        let seq = self.next_seq();
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
                    format!(
                        "prepared statement {} is not known to unscharf",
                        crate::judge::quoted(b.statement)
                    ),
                )
            })?;
            if let Some(r) = &env.refuse_all {
                return Err(r.clone());
            }
            if !same_paths(&facts, &self.paths) {
                return Err(path_changed(&facts));
            }
            let allowed = self.judge(&facts, env)?;
            if resolves_names_when_run(&facts.kind) && !same_paths(&allowed.facts, &self.paths) {
                return Err(path_changed(&allowed.facts));
            }
            if runs_query(&facts.kind) {
                self.spend_lookups(env, std::iter::once(&*allowed.plan))?;
            }
            if !allowed.plan.bounded_params.is_empty() {
                let values =
                    fe::bind_values(f.body()).map_err(|e| Refusal::new(Reason::UnsupportedStatement, e.to_string()))?;
                check_array_lookups(&allowed.plan, |n| {
                    let (format, value) = values.get(n.wrapping_sub(1))?;
                    value.and_then(|v| bound_array_len(*format, v))
                })?;
            }
            let formats = match &allowed.plan.columns {
                Some(plan) => crate::mask::rows::upstream_formats(plan, &b)
                    .map_err(|e| Refusal::new(Reason::UnsupportedStatement, e))?,
                None => None,
            };
            Ok((facts, allowed, formats))
        })();
        match verdict {
            Err(r) => {
                let facts = self.registry.statement(b.statement);
                // Quoted, so the audit trail's scrubbing hides a name that holds a value (round 97).
                let text = Self::statement_text(facts.as_deref(), || {
                    format!("(Bind of prepared statement {})", crate::judge::quoted(b.statement))
                });
                let refusal = if facts.is_none() && self.batch_refused && !Self::reserved(b.portal) {
                    refusal_frame(&r)
                } else {
                    self.refuse(env, out, &r, &text)
                };
                out.to_upstream.extend_from_slice(&encode::bind(b.portal, REFUSED_NAME));
                self.pending.push_back(Pending::Bind {
                    seq,
                    refusal: Some(refusal),
                });
            }
            Ok((facts, allowed, formats)) => {
                let bound_to = match &facts.kind {
                    Kind::Execute { name } | Kind::Fetch { name } => Some(BoundTo {
                        cursor: matches!(facts.kind, Kind::Fetch { .. }),
                        name: name.clone(),
                        facts: allowed.facts.clone(),
                    }),
                    _ => None,
                };
                let plan = allowed.plan.clone();
                self.allowed(env, out, &allowed.facts.statement, &[&allowed.plan]);
                self.registry.set_portal(
                    (seq, 0),
                    b.portal,
                    Arc::new(PortalInfo {
                        facts: facts.clone(),
                        plan: Some(plan),
                        formats: b.result_formats.clone(),
                        bound_to,
                        policy_generation: env.policy.generation,
                        reads_seen: self.read_campaigns.len(),
                        judged_on: env.today,
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
        let judged = |core: &Self, facts: &Arc<StatementFacts>| -> Result<Allowed, Refusal> { core.judge(facts, env) };
        // Describe of a statement analyzes it again in Postgres when search_path has changed.
        let judged_now = |core: &Self, facts: &Arc<StatementFacts>| -> Result<Allowed, Refusal> {
            if !same_paths(facts, &core.paths) {
                return Err(path_changed(facts));
            }
            judged(core, facts)
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
                Some(facts) => match judged_now(self, &facts) {
                    Ok(a) => {
                        out.to_upstream.extend_from_slice(&f.raw);
                        self.pending.push_back(Pending::DescribeStatement {
                            plan: result_plan(&a.plan, &a.facts),
                            refusal: None,
                        });
                    }
                    Err(r) => {
                        let refusal = self.refuse(env, out, &r, &facts.statement);
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
                        Some(plan) => (result_plan(plan, p.result_facts()), p.formats.clone()),
                        None => match judged(self, &p.facts) {
                            Ok(a) => (result_plan(&a.plan, &a.facts), Vec::new()),
                            Err(r) => {
                                let refusal = self.refuse(env, out, &r, &p.facts.statement);
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
                    format!("portal {} is not known to unscharf", crate::judge::quoted(portal)),
                )
            })?;
            if let Some(r) = &env.refuse_all {
                return Err(r.clone());
            }
            if let Some(b) = info.bound_to.as_ref().filter(|b| !b.unchanged(&self.registry)) {
                let what = if b.cursor { "cursor" } else { "prepared statement" };
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    format!(
                        "{what} {} was redefined after this portal was bound; bind it again",
                        crate::judge::quoted(&b.name)
                    ),
                ));
            }
            if resolves_names_when_run(&info.facts.kind) && !same_paths(info.result_facts(), &self.paths) {
                return Err(path_changed(info.result_facts()));
            }
            // A portal bound before the login lost its purpose (a role revoked, seen by a probe)
            // runs no more; transaction control still does.
            if !matches!(info.facts.kind, Kind::Transaction(_)) {
                self.judge_ctx(env)?;
            }
            match &info.plan {
                // A Bind portal was judged at Bind; its statement runs (and has its effects) now.
                Some(plan) => {
                    // After a reload it runs only if today's rules plan its result as Bind did
                    // (its result formats were chosen then), and refuse nothing. So too once the
                    // session has read another campaign (rule 4 holds when the write runs) or a
                    // day has passed (rule 5: a contract may have ended).
                    if info.policy_generation != env.policy.generation
                        || info.reads_seen != self.read_campaigns.len()
                        || info.judged_on != env.today
                    {
                        let now = self.judge(&info.facts, env)?;
                        if !same_actions(&plan.columns, &now.plan.columns) {
                            return Err(Refusal::new(
                                Reason::UnsupportedStatement,
                                "the policy was reloaded after this portal was bound and masks its result differently; bind it again",
                            ));
                        }
                    }
                    let result = info.bound_to.as_ref().map_or(&info.facts, |b| &b.facts).clone();
                    Ok((
                        Allowed {
                            plan: plan.clone(),
                            facts: result,
                        },
                        Some(info.facts.clone()),
                    ))
                }
                // A cursor's rows: FETCH-like, no effects.
                None => Ok((self.judge(&info.facts, env)?, None)),
            }
        })();
        match verdict {
            Err(r) => {
                let info = self.registry.portal(portal);
                let text = Self::statement_text(info.as_ref().map(|i| &*i.facts), || {
                    format!("(Execute of portal {})", crate::judge::quoted(portal))
                });
                let refusal = if info.is_none() && self.batch_refused {
                    refusal_frame(&r)
                } else {
                    self.refuse(env, out, &r, &text)
                };
                out.to_upstream.extend_from_slice(&encode::execute(REFUSED_NAME));
                self.pending.push_back(Pending::Execute {
                    seq,
                    result: Result_::default(),
                    refusal: Some(refusal),
                });
            }
            Ok((a, statement)) => {
                match &statement {
                    Some(st) => {
                        if st.kind == Kind::CopyFrom {
                            if self.copy_in.is_some() {
                                return Err(CoreError::ClientProtocol('E'));
                            }
                            self.copy_in = Some(CopyIn::new(seq));
                        }
                        self.effects(seq, 0, st);
                    }
                    // A cursor's query runs now, set_config calls in it included, as at FETCH.
                    None => self.path_effects(&a.facts),
                }
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
    /// Whether it asked.
    pub(super) fn maybe_probe(&mut self, env: &Env<'_>, out: &mut Out) -> bool {
        // During a COPY FROM STDIN the server would read the probe as COPY input.
        if !self.path_dirty || self.copy_in.is_some() {
            return false;
        }
        // A Query inside an unfinished extended batch would be skipped after an error; wait for the Sync.
        let open_batch = self
            .pending
            .iter()
            .rev()
            .take_while(|p| !matches!(p, Pending::Sync))
            .any(Pending::is_extended);
        if open_batch {
            return false;
        }
        self.path_dirty = false;
        out.to_upstream.extend_from_slice(&encode::query(PROBE_SQL));
        self.pending.push_back(Pending::Probe {
            value: None,
            generation: env.catalog.generation,
        });
        true
    }

    /// Rule 2 again, with the roles last read and the policy in force: a reload may have taken the
    /// login out of its purpose's members, and a probe may have found a role revoked.
    pub(super) fn bind_purpose(&mut self, env: &Env<'_>) {
        self.bound_policy = env.policy.generation;
        let bound =
            crate::session::startup::bind_purpose(env.policy, &self.id.user, &self.roles, Some(&self.id.purpose));
        self.purpose_lost = bound.err();
    }
}

fn describe_frame(target: u8, name: &str) -> Bytes {
    let mut body = vec![target];
    body.extend_from_slice(name.as_bytes());
    body.push(0);
    crate::wire::frame::frame(fe::DESCRIBE, &body).raw
}

/// Whether running the statement runs its query's WHERE (FETCH and MOVE read rows already chosen,
/// PREPARE only names the query; EXECUTE and DECLARE count).
fn runs_query(kind: &Kind) -> bool {
    !matches!(kind, Kind::Fetch { .. } | Kind::Move { .. } | Kind::Prepare { .. })
}

/// Whether two plans treat every result column alike (pass, drop, or the same mask).
fn same_actions(a: &Option<Vec<ColAction>>, b: &Option<Vec<ColAction>>) -> bool {
    let same = |x: &ColAction, y: &ColAction| match (x, y) {
        (ColAction::Pass, ColAction::Pass) | (ColAction::Drop, ColAction::Drop) => true,
        (ColAction::Mask(m), ColAction::Mask(n)) => m.mask == n.mask && m.key.is_some() == n.key.is_some(),
        _ => false,
    };
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        _ => false,
    }
}

/// Utility statements are not analyzed at Parse or Bind: Postgres looks up their names only when
/// the portal runs. EXECUTE plans its prepared statement then (again, if search_path has changed
/// since it was prepared), and COPY and PREPARE find their tables then. A search_path change
/// between Parse and Execute would make them read what the proxy never judged.
fn resolves_names_when_run(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Execute { .. } | Kind::CopyTo(_) | Kind::CopyFrom | Kind::Prepare { .. }
    )
}
