//! Refusals: the stand-in's error, settings that end the session, lookup limits, audit records.

use super::*;

#[test]
fn refusal_replaces_the_stand_ins_error_and_keeps_the_servers_status() {
    let fx = fixture();
    let mut c = core();
    let mut out = Out::default();
    c.on_client(
        &q("SELECT lower(iban) FROM stadtwerke.customers"),
        &env(&fx),
        &mut out,
        false,
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&out.to_upstream).contains(REFUSED_SQL));
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].reason, "protected_column");
    let mut out = Out::default();
    c.on_upstream(
        &up(
            b'E',
            b"SERROR\0C42601\0Msyntax error at or near \"unscharf_refused\"\0\0",
        ),
        &env(&fx),
        &mut out,
    )
    .unwrap();
    c.on_upstream(&up(b'Z', b"E"), &env(&fx), &mut out).unwrap();
    let text = String::from_utf8_lossy(&out.to_client);
    assert!(
        text.contains("C42501") && text.contains("lower()") && !text.contains("syntax error"),
        "{text}"
    );
    assert!(
        out.to_client.ends_with(b"Z\0\0\0\x05E"),
        "the status the server reports passes through"
    );
    assert_eq!(c.tx_status(), b'E');
}

#[test]
fn server_settings_that_change_parsing_end_the_session() {
    let fx = fixture();
    let mut c = core();
    let mut out = Out::default();
    assert!(c
        .on_upstream(&up(b'S', b"standard_conforming_strings\0off\0"), &env(&fx), &mut out)
        .is_err());
    assert!(c
        .on_upstream(&up(b'S', b"client_encoding\0SJIS\0"), &env(&fx), &mut out)
        .is_err());
    assert!(c
        .on_upstream(&up(b'S', b"application_name\0x\0"), &env(&fx), &mut out)
        .is_ok());
}

/// Round 217 BB3: text sent before the server answered a statement that may change settings
/// (a SET here; a function of the DBA's in round 217) is read by settings it may have changed
/// unseen; with a backslash or bytes above ASCII it is refused. Alone, behind plain reads
/// (round 221 BF2), or once the answer came, it is judged as usual.
#[test]
fn text_that_settings_change_waits_for_the_answer_before_it() {
    let fx = fixture();
    let e = env(&fx);
    let mut c = core();
    let refused = |c: &mut Core, sql: &str| {
        let mut out = Out::default();
        c.on_client(&q(sql), &e, &mut out, false).unwrap();
        out.records
            .iter()
            .any(|r| r.detail.contains("backslashes or non-ASCII"))
    };
    assert!(!refused(&mut c, r"SELECT 'a\b', 'Müller'"));
    assert!(!refused(&mut c, "SELECT 'Müller'"), "behind plain reads");
    assert!(!refused(&mut c, "SET application_name = 'crm'"));
    for sql in [r"SELECT 'a\b'", "SELECT 'Müller'", r"SELECT E'\n'"] {
        assert!(refused(&mut c, sql), "{sql}");
    }
    assert!(!refused(&mut c, "SELECT 'plain'"));
    // Once the server has answered what was sent before, the settings it reported are known.
    let mut c = core();
    assert!(!refused(&mut c, "SET application_name = 'crm'"));
    let mut out = Out::default();
    for f in [up(b'C', b"SET\0"), up(b'Z', b"I")] {
        c.on_upstream(&f, &e, &mut out).unwrap();
    }
    assert!(c.idle());
    assert!(!refused(&mut c, "SELECT 'Müller'"));
    // Round 221 BF1: a Flush gets an Execute answered without ReadyForQuery; the settings it may
    // have changed are reported only with the next one.
    let mut c = core();
    let mut parse = b"\0".to_vec();
    parse.extend_from_slice(b"SET application_name = 'crm'\0\0\0");
    for f in [
        frame(b'P', &parse),
        frame(b'B', b"\0\0\0\0\0\0\0\0"),
        frame(b'E', b"\0\0\0\0\0"),
        frame(b'H', b""),
    ] {
        c.on_client(&f, &e, &mut Out::default(), false).unwrap();
    }
    for f in [up(b'1', b""), up(b'2', b""), up(b'C', b"SET\0")] {
        c.on_upstream(&f, &e, &mut Out::default()).unwrap();
    }
    assert!(c.idle());
    let mut parse = b"\0".to_vec();
    parse.extend_from_slice("SELECT 'Müller'\0\0\0".as_bytes());
    let mut out = Out::default();
    c.on_client(&frame(b'P', &parse), &e, &mut out, false).unwrap();
    assert!(out
        .records
        .iter()
        .any(|r| r.detail.contains("backslashes or non-ASCII")));
}

/// `limits.lookups_per_minute` (3 here) per login: statements and Binds that look up a protected
/// column are counted, others are not, and a message whose lookups do not all fit is refused whole.
#[test]
fn lookups_of_protected_columns_are_limited_per_login() {
    let fx = fixture();
    let e = env(&fx);
    let lookup = "SELECT name FROM stadtwerke.customers WHERE phone = '+49 30 1234567'";
    let send = |c: &mut Core, f: &Frame| {
        let mut out = Out::default();
        c.on_client(f, &e, &mut out, false).unwrap();
        match out.records.first() {
            Some(r) if String::from_utf8_lossy(&out.to_upstream).contains("unscharf_refused") => {
                assert_eq!(r.reason, "protected_column");
                assert!(r.detail.contains("lookups_per_minute"), "{}", r.detail);
                false
            }
            _ => true,
        }
    };
    let mut c = core();
    assert!(send(&mut c, &q(lookup)));
    assert!(send(
        &mut c,
        &q("SELECT name FROM stadtwerke.customers WHERE customer_no = 1001")
    ));
    assert!(send(
        &mut c,
        &q("PREPARE p AS SELECT name FROM stadtwerke.customers WHERE phone = $1")
    ));
    // The server's answers: later messages wait for the PREPARE's.
    for f in [
        up(b'C', b"SELECT 0\0"),
        up(b'Z', b"I"),
        up(b'C', b"SELECT 0\0"),
        up(b'Z', b"I"),
        up(b'C', b"PREPARE\0"),
        up(b'Z', b"I"),
    ] {
        c.on_upstream(&f, &e, &mut Out::default()).unwrap();
    }
    assert!(
        !send(&mut c, &q(&format!("{lookup}; {lookup}; {lookup}"))),
        "three do not fit in two"
    );
    assert!(send(&mut c, &q(&format!("{lookup}; {lookup}"))));
    assert!(!send(&mut c, &q(lookup)), "the fourth within the minute");
    assert!(send(
        &mut c,
        &q("SELECT name FROM stadtwerke.customers WHERE customer_no = 1002")
    ));
    // Another session of the same login shares the allowance.
    assert!(!send(&mut core(), &q(lookup)));
    // Another login has its own, and Binds count.
    let mut other = Core::new(
        Identity {
            session: 2,
            user: "agent_wasser2".into(),
            client_addr: "test".into(),
            purpose: "billing_hotline".into(),
        },
        vec!["$user".into(), "public".into()],
        false,
        b'I',
    );
    other.started(e.catalog.generation, vec!["wasser_agents".into()], e.policy.generation);
    let parse = frame(b'P', b"s\0SELECT name FROM stadtwerke.customers WHERE phone = $1\0\0\0");
    assert!(send(&mut other, &parse));
    other.on_upstream(&up(b'1', b""), &e, &mut Out::default()).unwrap();
    let bind = frame(b'B', b"\0s\0\0\0\0\0\0\0");
    for _ in 0..3 {
        assert!(send(&mut other, &bind));
        other.on_upstream(&up(b'2', b""), &e, &mut Out::default()).unwrap();
    }
    assert!(!send(&mut other, &bind));
}

/// Round 97: a refused libpq call (Parse, Bind, Describe, Execute, Sync in one write) wrote three
/// records, the Bind and Execute refused only for naming what was refused; and a Bind of an unknown
/// statement wrote the name, which may hold a value, into the trail unscrubbed.
#[test]
fn one_refused_call_is_one_record_and_names_are_scrubbed() {
    let fx = fixture();
    let e = env(&fx);
    let mut c = core();
    let mut out = Out::default();
    for f in [
        frame(b'P', b"\0SELECT lower(iban) FROM stadtwerke.customers\0\0\0"),
        frame(b'B', b"\0\0\0\0\0\0\0\0"),
        frame(b'D', b"P\0"),
        frame(b'E', b"\0\0\0\0\0"),
        frame(b'S', b""),
    ] {
        c.on_client(&f, &e, &mut out, false).unwrap();
    }
    let reasons: Vec<&str> = out.records.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["protected_column"], "{:?}", out.records);
    // After the Sync a new batch: a Bind of an unknown statement is a refusal of its own.
    let mut out = Out::default();
    let name = "anna.schmidt@example.org DE89 3704 0044 0532 0130 00";
    let mut body = Vec::new();
    body.push(0);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(b"\0\0\0\0\0\0\0");
    c.on_client(&frame(b'B', &body), &e, &mut out, false).unwrap();
    c.on_client(&frame(b'E', b"\0\0\0\0\0"), &e, &mut out, false).unwrap();
    assert_eq!(out.records.len(), 1, "{:?}", out.records);
    let text = format!("{:?}", out.records);
    assert!(!text.contains("anna.schmidt") && !text.contains("0532"), "{text}");
}

/// Round 129: a large statement is analyzed off the session thread first; the frame is then
/// judged with that analysis, under the same catalog and search_path only, and asks for no second.
#[test]
fn a_large_statement_is_judged_with_its_analysis_from_off_the_thread() {
    let fx = fixture();
    let e = env(&fx);
    let mut c = core();
    c.started(fx.catalog.generation, vec![], fx.policy.generation);
    let big = format!(
        "SELECT customer_no, phone FROM stadtwerke.customers WHERE customer_no IN ({}1001)",
        "1001, ".repeat(4000)
    );
    assert!(
        c.analysis_job(&q("SELECT 1"), &e).is_none(),
        "small frames are judged where they are"
    );
    let job = c.analysis_job(&q(&big), &e).expect("a job for a large Query");
    let ctx = crate::analyze::AnalyzeCtx {
        catalog: &fx.catalog,
        search_paths: &job.paths,
        user: &job.user,
        revert_paths: &job.revert,
        abandoned: Default::default(),
    };
    let looked = fx.cache.analyze(&job.sql, ctx);
    // Round 133: one analyzed under another catalog generation (the periodic refresh makes one
    // every minute) is analyzed off the thread again, not where the frame is judged.
    let mut stale = job.clone();
    stale.catalog += 1;
    c.pre_analyzed(stale, Some(fx.cache.analyze(&job.sql, ctx)));
    let again = c
        .analysis_job(&q(&big), &e)
        .expect("a stale analysis is done again off the thread");
    assert_eq!(again.catalog, fx.catalog.generation);
    // Round 139: the periodic refresh makes a new generation of an unchanged catalog every
    // minute; an analysis under the same content still fits, or a long one is queued forever.
    let mut same = fx.catalog.clone();
    same.fingerprint = 42;
    same.generation += 1;
    let e2 = Env {
        catalog: &same,
        ..env(&fx)
    };
    let mut older = job.clone();
    older.fingerprint = 42;
    c.pre_analyzed(older, Some(fx.cache.analyze(&job.sql, ctx)));
    assert!(c.analysis_job(&q(&big), &e2).is_none(), "the same content fits");
    c.pre_analyzed(job, Some(looked));
    assert!(c.analysis_job(&q(&big), &e).is_none(), "analyzed once");
    let mut out = Out::default();
    c.on_client(&q(&big), &e, &mut out, false).unwrap();
    // Judged and forwarded, with phone masked by the plan.
    assert!(!String::from_utf8_lossy(&out.to_upstream).contains("unscharf_refused"));
    assert!(c.pre_analyzed.lock().unwrap().is_none(), "taken by the judging");
}
