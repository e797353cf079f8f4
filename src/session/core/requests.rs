//! Client messages: each statement is analyzed and judged before anything reaches the server; a
//! refused one is replaced by the stand-in, an allowed one is forwarded with the plan its results need.

use super::*;

impl Core {
    /// Handles one client frame. `retried` is set when the frame is handled again after a catalog refresh.
    pub fn on_client(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out, retried: bool) -> Result<(), CoreError> {
        let before = self.pending.len();
        let r = self.client_message(f, env, out, retried);
        self.note_code_sent(before);
        r
    }

    fn client_message(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out, retried: bool) -> Result<(), CoreError> {
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
        self.settings_moved = self
            .clock
            .moved_under(env.catalog.generation, &env.catalog.clock_defaults);
        self.path_moved = self.path_moved_now();
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
            // The server skips everything up to the Sync after the stand-in's error, and so does
            // the proxy from now on: what the client pipelined after a refused message is neither
            // judged nor recorded as allowed (round 177 N8: it was, though it never ran).
            self.skipping = true;
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
                let seq = self.next_seq();
                self.registry.boundary((seq, 0));
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
                // A query ends the implicit transaction, as a Sync does.
                let seq = self.next_seq();
                self.registry.boundary((seq, 0));
                Ok(())
            }
            other => Err(CoreError::ClientProtocol(other as char)),
        }
    }

    /// Registry changes and search_path effects of statements that will run; `sub` numbers them within a message.
    /// `fingerprint` is the catalog content the statements were analyzed under.
    pub(super) fn effects(&mut self, seq: u64, sub: u32, f: &Arc<StatementFacts>, catalog: &Catalog) {
        let tag: Tag = (seq, sub);
        let fingerprint = catalog.fingerprint;
        match &f.kind {
            Kind::Prepare { name } => self.registry.set_statement(
                tag,
                name,
                Stored {
                    facts: Arc::new(f.prepared()),
                    source: None,
                    fingerprint: fingerprint.into(),
                    changed: Default::default(),
                    described: Default::default(),
                },
            ),
            Kind::Deallocate { name } => self.registry.drop_statement(tag, name.as_deref()),
            Kind::Declare { name, .. } => {
                self.registry
                    .set_portal(tag, name, Arc::new(PortalInfo::declared(f.clone())))
            }
            Kind::ClosePortal { name } => self.registry.drop_portal(tag, name.as_deref()),
            Kind::Transaction(TxControl::Commit | TxControl::Rollback | TxControl::RollbackTo(_)) => {
                self.registry.boundary(tag)
            }
            Kind::Discard { all: true } => {
                self.registry.drop_statement(tag, None);
                self.registry.drop_portal(tag, None);
            }
            _ => {}
        }
        self.path_effects(f);
        self.cursor_effects(tag, f, catalog);
        // EXECUTE, FETCH and MOVE run a statement whose effects on search_path happen now.
        if let Some(r) = crate::judge::runs_by_name(&f.kind, &self.registry) {
            self.path_effects(&r);
            self.cursor_effects(tag, &r, catalog);
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

    /// A statement that runs code of the DBA's that may close or open cursors leaves every portal
    /// unknown (round 185 V2: a listed helper closed the cursor the agent had declared and opened
    /// its own under that name, and the next FETCH was judged by the old query).
    pub(super) fn cursor_effects(&mut self, tag: Tag, f: &StatementFacts, catalog: &Catalog) {
        if crate::judge::runs_cursor_code(f, catalog) {
            self.registry.drop_portal(tag, None);
        }
    }

    pub(super) fn path_effects(&mut self, f: &StatementFacts) {
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
            // SQL PREPARE keeps its analysis for the session like a Parse does (round 139).
            if a.statements.iter().any(|s| matches!(s.kind, Kind::Prepare { .. })) && self.registry.is_full() {
                return Err(Refusal::new(
                    Reason::UnsupportedStatement,
                    "too many prepared statements in this session",
                ));
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
                self.note_settings(env, analysis.statements.iter().map(|s| &**s));
                self.note_settings(env, allowed.iter().map(|a| &*a.facts));
                let results = allowed.iter().map(|a| Result_::of(&a.plan, &a.facts)).collect();
                // Registry effects come from the statements as written; what EXECUTE and FETCH
                // run may still change search_path.
                for (i, st) in analysis.statements.iter().enumerate() {
                    self.effects(seq, i as u32, st, env.catalog);
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
        // Its implicit transaction ends with it, and so do the portals it made.
        self.registry.boundary((seq, u32::MAX));
        // Forwarded, so the server answers everything before it without waiting for the client.
        self.registry.close_batch();
        self.maybe_probe(env, out);
        Ok(())
    }

    /// Charges the login's lookup allowance (`limits.lookups_per_minute`) for the statements that
    /// look up protected columns; all of them or, refusing, none.
    pub(super) fn spend_lookups<'p>(
        &self,
        env: &Env<'_>,
        plans: impl Iterator<Item = &'p Plan>,
    ) -> Result<(), Refusal> {
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

    pub(super) fn reserved(name: &str) -> bool {
        name.starts_with(RESERVED_PREFIX)
    }

    /// Postgres's FirstNormalObjectId: objects created after initdb have OIDs from here on.
    pub(super) const FIRST_NORMAL_OBJECT_ID: u32 = 16384;

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

/// Whether running the statement runs its query's WHERE (FETCH and MOVE read rows already chosen,
/// PREPARE only names the query; EXECUTE and DECLARE count).
pub(super) fn runs_query(kind: &Kind) -> bool {
    !matches!(kind, Kind::Fetch { .. } | Kind::Move { .. } | Kind::Prepare { .. })
}
