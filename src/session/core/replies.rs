//! Server messages, matched to the request that caused them: results are checked against the plan's
//! rule 10 guard and rewritten, refusals replace the stand-in's error, errors are redacted (rule 11),
//! and an error in an extended-protocol batch skips to Sync exactly as the server does.

use std::sync::Arc;

use bytes::{BufMut, Bytes};

use super::Probed;
use super::{CopyOutState, Core, CoreError, Env, Out, Pending, Result_};
use crate::analyze::facts::{CopyOut, TxControl};
use crate::catalog::{parse_name_array, parse_search_path};
use crate::mask::copy::CopyFormat;
use crate::mask::redact;
use crate::mask::rows;
use crate::policy::decide::{ColAction, Guard};
use crate::session::registry::Registry;
use crate::wire::backend as be;
use crate::wire::build;
use crate::wire::Frame;

fn cut(e: impl std::fmt::Display) -> CoreError {
    CoreError::CutOff(e.to_string())
}

/// The client's format for visible result column `i`, from Bind's format list.
fn client_format(formats: &[i16], i: usize) -> i16 {
    match formats.len() {
        0 => 0,
        1 => formats[0],
        _ => formats.get(i).copied().unwrap_or(0),
    }
}

impl Core {
    pub fn on_upstream(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out) -> Result<(), CoreError> {
        self.reply(f, env, out)?;
        if f.tag == be::READY_FOR_QUERY {
            self.readies += 1;
        }
        // Every request answered (the session's own and unscharf's probes): once nothing is left
        // that could run under an earlier value, what the server has reported is the session's.
        if f.tag == be::READY_FOR_QUERY && self.pending.is_empty() {
            self.clock
                .settled(self.tx_status == b'I' && !self.registry.has_held_cursors());
        }
        Ok(())
    }

    fn reply(&mut self, f: &Frame, env: &Env<'_>, out: &mut Out) -> Result<(), CoreError> {
        match f.tag {
            be::NOTICE_RESPONSE => return Ok(redact::forward(f, true, &mut out.to_client)?),
            be::NOTIFICATION => {
                // The payload is whatever the notifying code chose, judged by no policy (round 186
                // W1: a DBA's change-feed trigger sent whole customer rows to every listener). The
                // notification itself still comes, so a CRM knows to query again, through unscharf.
                let (pid, channel) = crate::wire::backend::notification(f.body())?;
                out.to_client
                    .extend_from_slice(&crate::wire::build::notification_without_payload(pid, channel));
                return Ok(());
            }
            be::PARAMETER_STATUS => {
                let (name, value) = check_parameter(f)?;
                self.clock.report(name, value);
                out.to_client.extend_from_slice(&f.raw);
                return Ok(());
            }
            be::ERROR_RESPONSE => return self.on_error(f, out),
            _ => {}
        }
        if f.tag != be::READY_FOR_QUERY && self.pending.front().is_some_and(|p| p.awaits_refusal()) {
            return Err(cut("the server answered a refused message's stand-in as if it had run"));
        }
        let Some(head) = self.pending.front_mut() else {
            return Err(CoreError::ServerProtocol(f.tag as char));
        };
        match head {
            Pending::Simple {
                seq,
                results,
                idx,
                failed,
                ..
            } => match f.tag {
                be::ROW_DESCRIPTION => {
                    let plan = results
                        .get(*idx)
                        .ok_or_else(|| cut("the server returned more results than the message has statements"))?
                        .plan
                        .clone();
                    self.row_description(f, plan.as_deref().map(|p| p.as_slice()), &[], env, out)?;
                    self.current = plan;
                }
                be::DATA_ROW => match &self.current {
                    None => out.to_client.extend_from_slice(&f.raw),
                    Some(plan) => {
                        rows::rewrite_data_row(f.body(), plan, &mut out.to_client, &mut self.scratch).map_err(cut)?
                    }
                },
                be::COMMAND_COMPLETE | be::EMPTY_QUERY => {
                    if self.copy_in.as_ref().is_some_and(|c| c.started) {
                        self.copy_in = None;
                    }
                    self.registry.commit((*seq, *idx as u32));
                    if let Some(tx) = results.get(*idx).and_then(|r| r.tx.as_ref()) {
                        tx_completed(&mut self.registry, tx, f.body());
                    }
                    *idx += 1;
                    self.current = None;
                    out.to_client.extend_from_slice(&f.raw);
                }
                be::COPY_OUT_RESPONSE => {
                    let r = results
                        .get(*idx)
                        .cloned()
                        .ok_or_else(|| cut("COPY for a statement the proxy did not see"))?;
                    self.start_copy_out(f, &r, out)?;
                }
                be::COPY_IN_RESPONSE => self.start_copy_in(f, out)?,
                be::COPY_DONE => {
                    self.copy_out = None;
                    out.to_client.extend_from_slice(&f.raw);
                }
                be::COPY_DATA => self.copy_data(f, out)?,
                be::READY_FOR_QUERY => {
                    // Every statement answered, or an error ended the message: anything else is a
                    // ReadyForQuery meant for another request, and the results would shift.
                    if !*failed && *idx < results.len() {
                        return Err(CoreError::ServerProtocol('Z'));
                    }
                    let (seq, idx) = (*seq, *idx as u32);
                    self.registry.discard(seq, idx);
                    self.pending.pop_front();
                    // A COPY FROM of this message is over, whatever became of it: Syncs still held
                    // for it would otherwise wait forever.
                    if let Some(c) = self.copy_in.take_if(|c| c.seq == seq) {
                        self.release_syncs(c.held_syncs, out);
                    }
                    self.ready(f, out)?;
                }
                other => return Err(CoreError::ServerProtocol(other as char)),
            },
            Pending::Execute { seq, result, .. } => match f.tag {
                be::DATA_ROW => match &result.plan {
                    None => out.to_client.extend_from_slice(&f.raw),
                    Some(plan) => {
                        rows::rewrite_data_row(f.body(), plan, &mut out.to_client, &mut self.scratch).map_err(cut)?
                    }
                },
                be::COMMAND_COMPLETE | be::EMPTY_QUERY | be::PORTAL_SUSPENDED => {
                    if self.copy_in.as_ref().is_some_and(|c| c.started) {
                        self.copy_in = None;
                    }
                    self.registry.commit((*seq, 0));
                    if let Some(tx) = &result.tx {
                        tx_completed(&mut self.registry, tx, f.body());
                    }
                    self.pending.pop_front();
                    self.copy_out = None;
                    out.to_client.extend_from_slice(&f.raw);
                }
                be::COPY_OUT_RESPONSE => {
                    let r = result.clone();
                    self.start_copy_out(f, &r, out)?;
                }
                be::COPY_IN_RESPONSE => self.start_copy_in(f, out)?,
                be::COPY_DONE => {
                    self.copy_out = None;
                    out.to_client.extend_from_slice(&f.raw);
                }
                be::COPY_DATA => self.copy_data(f, out)?,
                other => return Err(CoreError::ServerProtocol(other as char)),
            },
            Pending::Parse { .. } | Pending::Bind { .. } | Pending::Close { .. } => {
                let (expected, seq) = match head {
                    Pending::Parse { seq, .. } => (be::PARSE_COMPLETE, *seq),
                    Pending::Bind { seq, .. } => (be::BIND_COMPLETE, *seq),
                    Pending::Close { seq } => (be::CLOSE_COMPLETE, *seq),
                    _ => unreachable!("matched above"),
                };
                if f.tag != expected {
                    return Err(CoreError::ServerProtocol(f.tag as char));
                }
                self.registry.commit((seq, 0));
                self.pending.pop_front();
                out.to_client.extend_from_slice(&f.raw);
            }
            Pending::DescribeStatement { plan, .. } => match f.tag {
                be::PARAMETER_DESCRIPTION => out.to_client.extend_from_slice(&f.raw),
                be::ROW_DESCRIPTION => {
                    let plan = plan.take();
                    self.pending.pop_front();
                    self.row_description(f, plan.as_deref().map(|p| p.as_slice()), &[], env, out)?;
                }
                be::NO_DATA => {
                    self.pending.pop_front();
                    out.to_client.extend_from_slice(&f.raw);
                }
                other => return Err(CoreError::ServerProtocol(other as char)),
            },
            Pending::DescribePortal { plan, formats, .. } => match f.tag {
                be::ROW_DESCRIPTION => {
                    let (plan, formats) = (plan.take(), std::mem::take(formats));
                    self.pending.pop_front();
                    self.row_description(f, plan.as_deref().map(|p| p.as_slice()), &formats, env, out)?;
                }
                be::NO_DATA => {
                    self.pending.pop_front();
                    out.to_client.extend_from_slice(&f.raw);
                }
                other => return Err(CoreError::ServerProtocol(other as char)),
            },
            Pending::Sync | Pending::Refused { .. } => {
                if f.tag != be::READY_FOR_QUERY {
                    return Err(CoreError::ServerProtocol(f.tag as char));
                }
                self.pending.pop_front();
                self.registry.synced();
                self.ready(f, out)?;
            }
            Pending::Probe { value, generation } => match f.tag {
                be::ROW_DESCRIPTION | be::COMMAND_COMPLETE => {}
                be::DATA_ROW => {
                    let mut fields = be::data_row(f.body())?;
                    let mut text = || match fields.next() {
                        Some(Ok(Some(v))) => std::str::from_utf8(v).ok().map(str::to_owned),
                        _ => None,
                    };
                    *value = text().map(|setting| Probed { setting, roles: text() });
                    if text().as_deref() != Some("true") {
                        return Err(CoreError::UnsafeSetting(
                            "a role other than the login's, set by database code".into(),
                        ));
                    }
                }
                be::READY_FOR_QUERY => {
                    let (value, generation) = (value.take(), *generation);
                    self.pending.pop_front();
                    self.tx_status = be::ready_status(f.body())?;
                    if self.tx_status == b'I' {
                        self.registry.idle();
                    }
                    if value.is_some() {
                        self.probed_generation = generation;
                        self.roles_stale = false;
                    } else {
                        // Failed (e.g. in a failed transaction block): the path is unknown, and
                        // after a catalog change the roles are too, until a probe succeeds.
                        let _ = generation;
                        // Nor is it known whether database code changed the role (round 123): only
                        // transaction control passes, and the next message brings another probe.
                        self.roles_stale = true;
                        self.path_dirty = true;
                        self.probe_retry = false;
                    }
                    self.probed(value, env);
                }
                other => return Err(CoreError::ServerProtocol(other as char)),
            },
        }
        Ok(())
    }

    fn ready(&mut self, f: &Frame, out: &mut Out) -> Result<(), CoreError> {
        self.tx_status = be::ready_status(f.body())?;
        if self.tx_status == b'I' {
            self.registry.idle();
        }
        self.probe_retry = true;

        self.current = None;
        out.to_client.extend_from_slice(&f.raw);
        Ok(())
    }

    /// The probe answered: search_path is known again. Inside a transaction block that changed it,
    /// a later COMMIT or ROLLBACK may bring back an earlier value; those are remembered for analysis.
    fn probed(&mut self, value: Option<Probed>, env: &Env<'_>) {
        if let Some(roles) = value
            .as_ref()
            .and_then(|v| v.roles.as_deref())
            .and_then(parse_name_array)
        {
            self.roles = roles;
            self.bind_purpose(env);
        }
        // The setting is the path, whichever schemas Postgres skips for now: the analyzer refuses
        // a name two of its schemas hold (round 22).
        let now = value.and_then(|v| parse_search_path(&v.setting));
        let Some(now) = now else {
            self.paths.clear();
            return;
        };
        if self.tx_status == b'I' {
            self.txn_path_changed = false;
            self.txn_paths_seen = vec![now.clone()];
        } else {
            self.txn_path_changed = true;
            if !self.txn_paths_seen.contains(&now) {
                self.txn_paths_seen.push(now.clone());
            }
        }
        self.paths = vec![now];
    }

    /// Rule 10's guard for the current policy and catalog.
    fn guard(&mut self, env: &Env<'_>) -> Arc<Guard> {
        self.refresh_guard(env);
        self.guard.as_ref().map(|(_, _, _, g)| g.clone()).unwrap_or_default()
    }

    /// Builds the guard once per version of the policy and catalog, keeping the one before.
    pub(super) fn refresh_guard(&mut self, env: &Env<'_>) {
        let fresh =
            matches!(&self.guard, Some((v, g, _, _)) if *v == env.policy.version && *g == env.catalog.generation);
        if !fresh {
            let guard = match env.policy.purposes.get(&self.id.purpose) {
                Some(p) => Guard::build(env.policy, p, env.catalog),
                None => Guard::default(),
            };
            let old = self.guard.replace((
                env.policy.version.clone(),
                env.catalog.generation,
                env.catalog.fingerprint,
                Arc::new(guard),
            ));
            // Not across a change of the catalog's content: the old guard would let pass the
            // columns and tables it has not seen (round 146).
            self.previous_guard = old
                .filter(|(_, _, f, _)| *f == env.catalog.fingerprint)
                .map(|(_, _, _, g)| g);
        }
    }

    /// Rule 10 check, then the client's view of a RowDescription.
    fn row_description(
        &mut self,
        f: &Frame,
        plan: Option<&[ColAction]>,
        formats: &[i16],
        env: &Env<'_>,
        out: &mut Out,
    ) -> Result<(), CoreError> {
        let fields = be::row_description(f.body())?;
        let guard = self.guard(env);
        if let Some(p) = plan {
            if p.len() != fields.len() {
                return Err(cut(format!(
                    "the result has {} columns but the plan expects {}",
                    fields.len(),
                    p.len()
                )));
            }
        }
        let previous = self.previous_guard.clone();
        for (i, fd) in fields.iter().enumerate() {
            let action = plan.and_then(|p| p.get(i));
            let known = |oid| env.catalog.by_oid(oid).is_some();
            // A statement judged just before a reload answers under the rules it was judged by.
            guard
                .check(fd.table_oid, fd.attnum, action, known)
                .or_else(|e| match &previous {
                    Some(g) => g.check(fd.table_oid, fd.attnum, action, known).map_err(|_| e),
                    None => Err(e),
                })
                .map_err(cut)?;
        }
        match plan {
            None => out.to_client.extend_from_slice(&f.raw),
            Some(p) if rows::all_pass(p) => out.to_client.extend_from_slice(&f.raw),
            Some(p) => {
                let rewritten =
                    rows::rewrite_row_description(&fields, p, |i| client_format(formats, i)).map_err(cut)?;
                out.to_client.extend_from_slice(&build::row_description(&rewritten));
            }
        }
        Ok(())
    }

    /// COPY FROM STDIN started: the server ignores the Syncs the client sent before its data, so
    /// no ReadyForQuery will answer them. Syncs after the data's end are answered as usual.
    fn start_copy_in(&mut self, f: &Frame, out: &mut Out) -> Result<(), CoreError> {
        let Some(ci) = &mut self.copy_in else {
            return Err(CoreError::ServerProtocol('G'));
        };
        ci.started = true;
        out.to_client.extend_from_slice(&f.raw);
        Ok(())
    }

    fn start_copy_out(&mut self, f: &Frame, r: &Result_, out: &mut Out) -> Result<(), CoreError> {
        let (overall, cols) = be::copy_response(f.body())?;
        if let Some(plan) = &r.plan {
            if cols.len() != plan.len() {
                return Err(cut(format!(
                    "COPY has {} columns but the plan expects {}",
                    cols.len(),
                    plan.len()
                )));
            }
        }
        if let Some(plan) = r.plan.as_ref().filter(|p| !rows::all_pass(p)) {
            if overall != 0 {
                return Err(cut("COPY data does not match the plan"));
            }
            let (format, header) = match &r.copy {
                Some(CopyOut::Text {
                    delimiter,
                    null,
                    header,
                }) => (
                    CopyFormat::Text {
                        delimiter: *delimiter,
                        null: null.clone(),
                    },
                    *header,
                ),
                Some(CopyOut::Csv {
                    delimiter,
                    quote,
                    escape,
                    null,
                    header,
                }) => (
                    CopyFormat::Csv {
                        delimiter: *delimiter,
                        quote: *quote,
                        escape: *escape,
                        null: null.clone(),
                    },
                    *header,
                ),
                _ => return Err(cut("masked COPY data in a format unscharf cannot rewrite")),
            };
            self.copy_out = Some(CopyOutState {
                format,
                plan: plan.clone(),
                header,
            });
            // Columns a `*` of the COPY's query brought and the purpose drops leave the data, so
            // the client is told the narrower width.
            let kept = rows::visible_width(plan);
            if kept != plan.len() {
                out.to_client.extend_from_slice(&build::copy_out_text(kept));
                return Ok(());
            }
        }
        out.to_client.extend_from_slice(&f.raw);
        Ok(())
    }

    fn copy_data(&mut self, f: &Frame, out: &mut Out) -> Result<(), CoreError> {
        let Some(st) = &mut self.copy_out else {
            out.to_client.extend_from_slice(&f.raw);
            return Ok(());
        };
        let header = std::mem::take(&mut st.header);
        self.copy_scratch.clear();
        rows::rewrite_copy_row(
            &st.format,
            f.body(),
            &st.plan,
            header,
            &mut self.copy_scratch,
            &mut self.scratch,
        )
        .map_err(cut)?;
        out.to_client.put_u8(be::COPY_DATA);
        out.to_client.put_i32(self.copy_scratch.len() as i32 + 4);
        out.to_client.extend_from_slice(&self.copy_scratch);
        Ok(())
    }

    fn on_error(&mut self, f: &Frame, out: &mut Out) -> Result<(), CoreError> {
        self.registry.failed();
        self.current = None;
        self.copy_out = None;
        // The COPY FROM failed, or was skipped with the batch or message it belongs to: the Syncs
        // held back before its data go to the server now, which answers them.
        let copy_seq = self.copy_in.as_ref().map(|c| c.seq);
        let fails_copy = |p: &Pending| copy_seq.is_some_and(|s| p.seq() == Some(s));
        let mut release = 0;
        if let Some(c) = self.copy_in.take_if(|_| self.pending.front().is_some_and(fails_copy)) {
            release = c.held_syncs;
        }
        let refusal: Option<Bytes> = match self.pending.front_mut() {
            None => None,
            // The probe failed (e.g. inside an aborted block): search_path becomes unknown until the next probe.
            Some(Pending::Probe { value, .. }) => {
                *value = None;
                return Ok(());
            }
            Some(Pending::Simple {
                refusal,
                seq,
                idx,
                failed,
                results,
                commits_after_last,
                ..
            }) => {
                *failed = true;
                let (s, i) = (*seq, *idx as u32);
                let r = refusal.take();
                // Postgres commits a Query's implicit transaction before it completes the last
                // statement, so an error there may be the commit's: the statement ran, and a PREPARE
                // or DEALLOCATE is not undone by the rollback. What its names mean is unknown now.
                if *commits_after_last && *idx + 1 == results.len() && r.is_none() {
                    self.registry.forget((s, i));
                }
                self.registry.discard(s, i);
                r
            }
            // Postgres dropped the unnamed statement before the Parse failed.
            Some(Pending::Parse {
                refusal,
                unnamed: true,
                seq,
            }) => {
                self.registry.forget((*seq, 0));
                refusal.take()
            }
            Some(
                Pending::Parse { refusal, .. }
                | Pending::Bind { refusal, .. }
                | Pending::DescribeStatement { refusal, .. }
                | Pending::DescribePortal { refusal, .. }
                | Pending::Execute { refusal, .. },
            ) => refusal.take(),
            Some(Pending::Refused { refusal }) => Some(refusal.clone()),
            Some(Pending::Close { .. } | Pending::Sync) => None,
        };
        match refusal {
            Some(r) => out.to_client.extend_from_slice(&r),
            None => redact::forward(f, false, &mut out.to_client)?,
        }
        if self.pending.front().is_some_and(Pending::is_extended) {
            // The server now ignores everything up to the next Sync: so do the replies we expect,
            // and, if the client has not sent that Sync yet, the messages it sends until then.
            self.skipping = true;
            while let Some(p) = self.pending.front() {
                if let Some(c) = self.copy_in.take_if(|_| fails_copy(p)) {
                    release = c.held_syncs;
                }
                match p {
                    Pending::Sync => {
                        self.skipping = false;
                        break;
                    }
                    Pending::Parse { seq, .. }
                    | Pending::Bind { seq, .. }
                    | Pending::Execute { seq, .. }
                    | Pending::Close { seq }
                    | Pending::Simple { seq, .. } => self.registry.discard(*seq, 0),
                    _ => {}
                }
                self.pending.pop_front();
            }
        }
        self.release_syncs(release, out);
        Ok(())
    }

    /// Sends Syncs held back during a COPY FROM that has ended, as if the client sent them now:
    /// the first ends a skip to Sync, and the server answers each.
    fn release_syncs(&mut self, n: usize, out: &mut Out) {
        for _ in 0..n {
            self.skipping = false;
            self.unsynced = false;
            out.to_upstream
                .extend_from_slice(&crate::wire::frontend::encode::sync());
            self.pending.push_back(Pending::Sync);
            let seq = self.next_seq();
            self.registry.boundary((seq, 0));
        }
    }
}

/// The proxy parses SQL the way Postgres does only with these settings; anything else ends the session.
/// A transaction-control statement completed with CommandComplete `body`: the portals it ends
/// end. COMMIT of a failed transaction completes as ROLLBACK.
fn tx_completed(registry: &mut Registry, tx: &TxControl, body: &[u8]) {
    match tx {
        TxControl::Begin => {}
        TxControl::Commit => registry.ended(body.starts_with(b"COMMIT")),
        TxControl::Rollback => registry.ended(false),
        TxControl::Savepoint(name) => registry.savepoint(name),
        TxControl::Release(name) => registry.release(name),
        TxControl::RollbackTo(name) => registry.rollback_to(name),
    }
}

pub(in crate::session) fn check_parameter(f: &Frame) -> Result<(&str, &str), CoreError> {
    let (name, value) = be::parameter_status(f.body())?;
    let ok = match name {
        "client_encoding" => value.eq_ignore_ascii_case("UTF8"),
        "standard_conforming_strings" => value == "on",
        _ => true,
    };
    if ok {
        Ok((name, value))
    } else {
        Err(CoreError::UnsafeSetting(format!("{name}={value}")))
    }
}
