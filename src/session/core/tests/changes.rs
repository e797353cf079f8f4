//! Reloads, catalog changes and role probes: what was bound or remembered is judged as things stand.

use super::*;

/// Red-team round 12: a portal bound before a policy reload ran under the rules of its Bind. It
/// runs only if today's rules plan its result alike; otherwise it is refused.
#[test]
fn a_portal_bound_before_a_reload_runs_only_under_the_same_plan() {
    let policies = edited_policies;
    let before = fixture();
    let bound = |c: &mut Core| bind_portal_p(c, &env(&before), "SELECT name, phone FROM stadtwerke.customers");
    let execute = |c: &mut Core, fx: &Fixture| {
        let mut out = Out::default();
        c.on_client(&frame(b'E', b"p\0\0\0\0\0"), &env(fx), &mut out, false)
            .unwrap();
        String::from_utf8_lossy(&out.to_upstream).contains("unscharf_refused")
    };
    // A reload that changes nothing for this result: it runs.
    let mut same = fixture();
    same.policy = policies(&|t| format!("{t}\n# reloaded\n"));
    assert_ne!(same.policy.version, before.policy.version);
    let mut c = core();
    bound(&mut c);
    assert!(!execute(&mut c, &same));
    // A reload that unmasks the phone: refused, the portal must be bound again.
    let mut unmasked = fixture();
    unmasked.policy = policies(&|t| t.replace("phone: { mask: last(3), lookup: true }", "phone: allow"));
    let mut c = core();
    bound(&mut c);
    assert!(execute(&mut c, &unmasked));
}

/// Red-team round 13: rule 4 was checked at Bind only. A write bound before the session read
/// another campaign ran after that read, and carried its data across (through set_config).
#[test]
fn a_bound_write_meets_rule_4_as_it_stands_when_it_runs() {
    let mut fx = fixture();
    fx.policy = edited_policies(&|t| {
        t.replace(
            "          customer_no: { mask: pseudonym }\n",
            "          customer_no: { mask: pseudonym }\n        write: [update]\n",
        )
    });
    let e = env(&fx);
    let mut c = core();
    c.id.user = "qa_lead".into();
    c.id.purpose = "quality_review".into();
    let mut out = Out::default();
    for f in [
        frame(
            b'P',
            b"w\0UPDATE stadtwerke.tickets SET subject = current_setting('x.v') WHERE ticket_id = 1\0\0\0",
        ),
        frame(b'B', b"\0w\0\0\0\0\0\0\0"),
    ] {
        c.on_client(&f, &e, &mut out, false).unwrap();
    }
    assert!(!String::from_utf8_lossy(&out.to_upstream).contains("unscharf_refused"));
    c.on_client(
        &q("SELECT set_config('x.v', (SELECT string_agg(product, ',') FROM zeitung.subscriptions), false)"),
        &e,
        &mut out,
        false,
    )
    .unwrap();
    let mut out = Out::default();
    for f in [
        up(b'1', b""),
        up(b'2', b""),
        up(
            b'T',
            b"\0\x01set_config\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0",
        ),
        data_row(&["Digital Plus"]),
        up(b'C', b"SELECT 1\0"),
        up(b'Z', b"T"),
    ] {
        c.on_upstream(&f, &e, &mut out).unwrap();
    }
    let mut out = Out::default();
    c.on_client(&frame(b'E', b"\0\0\0\0\0"), &e, &mut out, false).unwrap();
    assert!(!out.hold);
    assert!(
        String::from_utf8_lossy(&out.to_upstream).contains("unscharf_refused"),
        "the UPDATE runs after a read of zeitung"
    );
    assert!(out.records.iter().any(|r| r.reason == "cross_campaign"));
}

/// Red-team round 13: a portal bound while the contract ran went on running after its end.
#[test]
fn a_portal_bound_before_the_contract_ended_does_not_run_after_it() {
    let fx = fixture();
    let mut c = core();
    let mut e = env(&fx);
    e.today = chrono::NaiveDate::from_ymd_opt(2027, 3, 31).unwrap();
    bind_portal_p(&mut c, &e, "SELECT name FROM stadtwerke.customers");
    let run = |c: &mut Core, e: &Env<'_>| {
        let mut out = Out::default();
        for f in [frame(b'E', b"p\0\0\0\0\x01"), frame(b'S', b"")] {
            c.on_client(&f, e, &mut out, false).unwrap();
        }
        out.records.first().map(|r| r.reason.clone())
    };
    assert_eq!(run(&mut c, &e), None, "the contract's last day");
    for f in [up(b's', b""), up(b'Z', b"T")] {
        c.on_upstream(&f, &e, &mut Out::default()).unwrap();
    }
    e.today = chrono::NaiveDate::from_ymd_opt(2027, 4, 1).unwrap();
    assert_eq!(run(&mut c, &e).as_deref(), Some("contract_ended"));
}

#[test]
fn a_remembered_verdict_is_decided_again_when_what_it_depends_on_changes() {
    let fx = fixture();
    let mut c = core();
    let sql = "SELECT name, phone FROM stadtwerke.customers";
    let analyzed = |c: &Core, e: &Env<'_>| {
        let (_, a) = c.analyze(sql, e, &mut Out::default(), false);
        a.unwrap().statements[0].clone()
    };
    let e = env(&fx);
    let facts = analyzed(&c, &e);
    assert!(Arc::ptr_eq(&facts, &analyzed(&c, &e)), "the text is analyzed once");
    let first = c.judge(&facts, &e).unwrap();
    assert!(Arc::ptr_eq(&first.plan, &c.judge(&facts, &e).unwrap().plan));
    // Each of these decides again: a reload, another day, another campaign read (rule 4).
    let mut reloaded = fixture();
    reloaded.policy = edited_policies(&|t| t.replace("phone: { mask: last(3), lookup: true }", "phone: allow"));
    let now = c.judge(&facts, &env(&reloaded)).unwrap();
    assert!(!now.plan.masked(), "the reload unmasked the phone");
    let tomorrow = Env {
        today: e.today.succ_opt().unwrap(),
        ..env(&fx)
    };
    assert!(!Arc::ptr_eq(&first.plan, &c.judge(&facts, &tomorrow).unwrap().plan));
    c.read_campaigns.insert("zeitung".into());
    let after_read = c.judge(&facts, &e);
    assert!(after_read.as_ref().map_or(true, |a| !Arc::ptr_eq(&first.plan, &a.plan)));
    // Another search_path analyzes the text again.
    c.paths = vec![vec!["stadtwerke".into()]];
    assert!(!Arc::ptr_eq(&facts, &analyzed(&c, &e)));
}

/// Round 24: after a catalog change the login's roles are read again before the next statement.
/// In a failed transaction block no probe can go ahead of the message (it would fail too), so
/// only transaction control passes until one has.
#[test]
fn roles_not_read_again_after_a_catalog_change_admit_only_transaction_control() {
    let fx = fixture();
    let mut changed = fixture();
    changed.catalog.generation = fx.catalog.generation + 1;
    let refused = |c: &mut Core, f: &Frame, e: &Env<'_>| {
        let mut out = Out::default();
        c.on_client(f, e, &mut out, false).unwrap();
        assert!(!out.hold, "nothing could be probed here");
        String::from_utf8_lossy(&out.to_upstream).contains("unscharf_refused")
    };
    let select = "SELECT name FROM stadtwerke.customers WHERE customer_no = 1001";
    let mut c = core();
    c.started(fx.catalog.generation, vec![], fx.policy.generation);
    c.tx_status = b'E';
    assert!(refused(&mut c, &q(&format!("ROLLBACK; {select}")), &env(&changed)));
    // The stand-in fails, and so does the probe sent behind it, in the failed block.
    for f in [error("42501"), up(b'Z', b"E"), error("25P02"), up(b'Z', b"E")] {
        c.on_upstream(&f, &env(&changed), &mut Out::default()).unwrap();
    }
    assert!(!refused(&mut c, &q("ROLLBACK"), &env(&changed)));
    // The block ends, the probe that went up behind the ROLLBACK answers, and the roles are known.
    for f in [
        up(b'C', b"ROLLBACK\0"),
        up(b'Z', b"I"),
        data_row(&["\"$user\", public", "{agent_wasser}", "true"]),
        up(b'C', b"SELECT 1\0"),
        up(b'Z', b"I"),
    ] {
        c.on_upstream(&f, &env(&changed), &mut Out::default()).unwrap();
    }
    assert!(!refused(&mut c, &q(select), &env(&changed)));
}

/// A catalog change in the middle of a batch sends no probe there: a Query between a batch's
/// messages would end its implicit transaction and drop its unnamed statement. The batch goes on
/// (with the path unknown), and the probe waits for its Sync.
#[test]
fn a_catalog_change_mid_batch_sends_no_query_into_the_batch() {
    let fx = fixture();
    let mut changed = fixture();
    changed.catalog.generation = fx.catalog.generation + 1;
    let mut c = core();
    c.started(fx.catalog.generation, vec![], fx.policy.generation);
    let select = b"\0SELECT name FROM stadtwerke.customers WHERE customer_no = 1001\0\0\0";
    let mut out = Out::default();
    c.on_client(&frame(b'P', select), &env(&fx), &mut out, false).unwrap();
    c.on_upstream(&up(b'1', b""), &env(&fx), &mut Out::default()).unwrap();
    for f in [frame(b'B', b"\0\0\0\0\0\0\0\0"), frame(b'E', b"\0\0\0\0\0")] {
        let mut out = Out::default();
        c.on_client(&f, &env(&changed), &mut out, false).unwrap();
        let up = String::from_utf8_lossy(&out.to_upstream).into_owned();
        assert!(
            !out.hold && !up.contains("pg_has_role") && !up.contains("unscharf_refused"),
            "{up}"
        );
    }
    let mut out = Out::default();
    c.on_client(&frame(b'S', b""), &env(&changed), &mut out, false).unwrap();
    assert!(String::from_utf8_lossy(&out.to_upstream).contains("pg_has_role"));
}

/// Round 26: a portal bound before the login lost its purpose kept serving rows at Execute, which
/// judged it again only after a reload, a new campaign read or a new day.
#[test]
fn a_portal_bound_before_the_purpose_was_lost_does_not_run() {
    let fx = fixture();
    let e = env(&fx);
    let mut c = Core::new(
        Identity {
            session: 3,
            user: "agent_wasser2".into(),
            client_addr: "test".into(),
            purpose: "billing_hotline".into(),
        },
        vec!["$user".into(), "public".into()],
        false,
        b'I',
    );
    c.started(
        fx.catalog.generation,
        vec!["wasser_agents".into()],
        fx.policy.generation,
    );
    bind_portal_p(&mut c, &e, "SELECT name, phone FROM stadtwerke.customers");
    // A probe read the roles again: wasser_agents was revoked.
    c.roles.clear();
    c.bind_purpose(&e);
    let mut out = Out::default();
    c.on_client(&frame(b'E', b"p\0\0\0\0\0"), &e, &mut out, false).unwrap();
    assert!(String::from_utf8_lossy(&out.to_upstream).contains("unscharf_refused"));
    assert_eq!(out.records.first().map(|r| r.reason.as_str()), Some("no_purpose"));
}

/// Round 121: database code ran `set_config('role', …)`; the probe after it finds the session
/// acting as another role, and the session ends.
#[test]
fn a_probe_that_finds_another_role_ends_the_session() {
    let fx = fixture();
    let mut c = core();
    c.started(fx.catalog.generation, vec![], fx.policy.generation);
    c.path_dirty = true;
    let mut out = Out::default();
    assert!(c.maybe_probe(&env(&fx), &mut out));
    let e = c
        .on_upstream(
            &data_row(&["\"$user\", public", "{agent_wasser}", "false"]),
            &env(&fx),
            &mut Out::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("a role other than the login's"), "{e}");
}

/// Round 123: a probe that fails (a failed block, a timeout) leaves open whether database code
/// changed the role. Until one succeeds only transaction control passes, and the next message
/// brings a probe.
#[test]
fn a_failed_probe_admits_only_transaction_control_until_one_succeeds() {
    let fx = fixture();
    let e = env(&fx);
    let select = "SELECT name FROM stadtwerke.customers WHERE customer_no = 1001";
    let sent = |c: &mut Core, sql: &str| {
        let mut out = Out::default();
        c.on_client(&q(sql), &e, &mut out, false).unwrap();
        String::from_utf8_lossy(&out.to_upstream).into_owned()
    };
    let mut c = core();
    c.started(fx.catalog.generation, vec![], fx.policy.generation);
    c.path_dirty = true;
    assert!(c.maybe_probe(&e, &mut Out::default()));
    for f in [error("57014"), up(b'Z', b"I")] {
        c.on_upstream(&f, &e, &mut Out::default()).unwrap();
    }
    // Refused; the probe goes up behind the stand-in.
    let upstream = sent(&mut c, select);
    assert!(
        upstream.contains("unscharf_refused") && upstream.contains("current_user = session_user"),
        "{upstream}"
    );
    assert!(!sent(&mut c, "ROLLBACK").contains("unscharf_refused"));
    for f in [
        error("42501"),
        up(b'Z', b"I"),
        data_row(&["\"$user\", public", "{agent_wasser}", "true"]),
        up(b'C', b"SELECT 1\0"),
        up(b'Z', b"I"),
        up(b'C', b"ROLLBACK\0"),
        up(b'Z', b"I"),
    ] {
        c.on_upstream(&f, &e, &mut Out::default()).unwrap();
    }
    assert!(!sent(&mut c, select).contains("unscharf_refused"));
}
