//! The extended protocol's messages: Parse and Bind judge, Describe and Execute run what was judged.

use super::pending::shape;
use super::requests::runs_query;
use super::*;
use crate::analyze::bound_array_len;
use crate::judge::{check_array_lookups, path_changed, same_paths};
use crate::policy::decide::level;

impl Core {
    pub(super) fn parse(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out, retried: bool) -> Result<(), CoreError> {
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
                // The name means nothing to the messages after it in the batch, which the server
                // skips (round 175 F6: a Bind after it was judged and recorded as the statement
                // the name had before); the unnamed statement is dropped for good (`on_error`).
                self.registry.drop_statement((seq, 0), Some(p.name));
                out.to_upstream.extend_from_slice(&encode::parse(p.name, REFUSED_SQL));
                self.pending.push_back(Pending::Parse {
                    seq,
                    refusal: Some(refusal),
                    unnamed: p.name.is_empty(),
                });
            }
            Ok((facts, _)) => {
                // Statement effects (SET search_path, PREPARE, DECLARE ...) happen when it is executed.
                self.registry.set_statement(
                    (seq, 0),
                    p.name,
                    Stored {
                        facts,
                        source: Some(p.sql.into()),
                        fingerprint: env.catalog.fingerprint.into(),
                        changed: Default::default(),
                        described: Default::default(),
                    },
                );
                out.to_upstream.extend_from_slice(&f.raw);
                self.pending.push_back(Pending::Parse {
                    seq,
                    refusal: None,
                    unnamed: p.name.is_empty(),
                });
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

    pub(super) fn bind(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out) -> Result<(), CoreError> {
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
            self.current(b.statement, env)?;
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
                // Text above ASCII reads by client_encoding, which a function run before may
                // have changed unseen (see `reads_by_session_settings`).
                let unsure = self.settings_unsure();
                check_array_lookups(&allowed.plan, |n| {
                    let (format, value) = values.get(n.wrapping_sub(1))?;
                    let value = (*value)?;
                    if unsure && *format == 0 && value.iter().any(|b| *b >= 0x80) {
                        return None;
                    }
                    bound_array_len(*format, value)
                })?;
            }
            let formats = match &allowed.plan.columns {
                Some(plan) => crate::mask::rows::upstream_formats(plan, &b)
                    .map_err(|e| Refusal::new(Reason::UnsupportedStatement, e))?,
                None => None,
            };
            Ok((facts, allowed, formats))
        })();
        // Postgres's own answer when a prepared statement's result columns changed since the
        // client described it (here: a reload dropped or masked one), which drivers meet by
        // preparing it again (round 245 CD1: asyncpg read 6 columns where it was told 7).
        if let Ok((_, allowed, _)) = &verdict {
            let now = shape(result_plan(&allowed.plan, &allowed.facts).as_deref().map(Vec::as_slice));
            let told = self.registry.stored(b.statement).and_then(|s| s.described.get());
            if told.is_some_and(|told| told != now) {
                tracing::info!("a prepared statement's result columns changed since the client described it");
                out.to_upstream.extend_from_slice(&stand_in());
                self.pending.push_back(Pending::Bind {
                    seq,
                    refusal: Some(result_changed_frame()),
                });
                return Ok(());
            }
        }
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
                out.to_upstream.extend_from_slice(&stand_in());
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
                self.note_settings(env, [&*facts, &*allowed.facts]);
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
                        settings_moved: level(self.settings_moved.as_ref()),
                        path_moved: self.path_moved.is_some(),
                        judged_on: env.today,
                        catalog_fingerprint: env.catalog.fingerprint,
                        bound_from: Some(b.statement.to_owned()),
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

    pub(super) fn describe(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out) -> Result<(), CoreError> {
        let (target, name) = fe::describe(f.body())?;
        let judged = |core: &Self, facts: &Arc<StatementFacts>| -> Result<Allowed, Refusal> { core.judge(facts, env) };
        // Describe of a statement analyzes it again in Postgres when search_path has changed.
        let judged_now = |core: &Self, facts: &Arc<StatementFacts>| -> Result<Allowed, Refusal> {
            if !same_paths(facts, &core.paths) {
                return Err(path_changed(facts));
            }
            core.current(name, env)?;
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
                        let plan = result_plan(&a.plan, &a.facts);
                        if let Some(stored) = self.registry.stored(name) {
                            stored.described.set(Some(shape(plan.as_deref().map(Vec::as_slice))));
                        }
                        out.to_upstream.extend_from_slice(&f.raw);
                        self.pending
                            .push_back(Pending::DescribeStatement { plan, refusal: None });
                    }
                    Err(r) => {
                        let refusal = self.refuse(env, out, &r, &facts.statement);
                        out.to_upstream.extend_from_slice(&stand_in());
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
                                out.to_upstream.extend_from_slice(&stand_in());
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

    pub(super) fn execute(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out) -> Result<(), CoreError> {
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
                    // A portal Postgres planned before a migration runs what it calls under the
                    // new definitions, row by row (round 154: a helper a later row called read
                    // another campaign's new table). It runs only if its statement means the same
                    // under today's catalog and is judged the same below.
                    let catalog_moved = info.catalog_fingerprint != env.catalog.fingerprint;
                    if catalog_moved
                        && !info.bound_from.as_deref().is_some_and(|s| {
                            self.registry.statement(s).is_some_and(|f| Arc::ptr_eq(&f, &info.facts))
                                && self.current(s, env).is_ok()
                        })
                    {
                        return Err(Refusal::new(
                            Reason::UnsupportedStatement,
                            "the database's definitions changed (a migration) after this portal was bound; bind it again",
                        ));
                    }
                    // After a reload it runs only if today's rules plan its result as Bind did
                    // (its result formats were chosen then), and refuse nothing. So too once the
                    // session has read another campaign (rule 4 holds when the write runs) or a
                    // day has passed (rule 5: a contract may have ended).
                    if catalog_moved
                        || info.policy_generation != env.policy.generation
                        || info.reads_seen != self.read_campaigns.len()
                        || level(self.settings_moved.as_ref()) > info.settings_moved
                        || (self.path_moved.is_some() && !info.path_moved)
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
                out.to_upstream.extend_from_slice(&stand_in());
                self.pending.push_back(Pending::Execute {
                    seq,
                    result: Result_::default(),
                    refusal: Some(refusal),
                });
            }
            Ok((a, statement)) => {
                let moves = |f: &StatementFacts| crate::judge::may_move_settings(f, env.catalog);
                self.moves_settings |= statement.as_deref().is_some_and(moves) || moves(&a.facts);
                match &statement {
                    Some(st) => {
                        if st.kind == Kind::CopyFrom {
                            if self.copy_in.is_some() {
                                return Err(CoreError::ClientProtocol('E'));
                            }
                            self.copy_in = Some(CopyIn::new(seq));
                        }
                        self.effects(seq, 0, st, env.catalog);
                    }
                    // A cursor's query runs now, set_config calls in it included, as at FETCH.
                    None => {
                        self.path_effects(&a.facts);
                        self.cursor_effects((seq, 0), &a.facts, env.catalog);
                    }
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
