//! The state machine with byte literals: client and server frames in, frames out, no sockets.

use bytes::BytesMut;

use super::*;
use crate::analyze::cache::AnalysisCache;
use crate::catalog::offline::from_schema_sql;
use crate::wire::backend::FieldDesc;
use crate::wire::frame::frame;

struct Fixture {
    policy: PolicySet,
    catalog: Catalog,
    cache: AnalysisCache,
    lookups: crate::session::lookups::LookupBudget,
}

fn fixture() -> Fixture {
    let texts: Vec<(&str, &str)> = crate::demo::SAMPLE_POLICIES.to_vec();
    Fixture {
        policy: crate::policy::load::load_texts(&texts, Some(b"k")).unwrap(),
        catalog: from_schema_sql(include_str!("../../../sample/schema.sql"), "schema.sql").unwrap(),
        cache: AnalysisCache::new(100),
        lookups: Default::default(),
    }
}

fn env(f: &Fixture) -> Env<'_> {
    Env {
        policy: &f.policy,
        catalog: &f.catalog,
        cache: &f.cache,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
        log_allowed: false,
        refuse_all: None,
        lookups: &f.lookups,
        lookups_per_minute: 3,
        max_statement_bytes: 1 << 20,
    }
}

fn core() -> Core {
    Core::new(
        Identity {
            session: 1,
            user: "agent_wasser".into(),
            client_addr: "test".into(),
            purpose: "billing_hotline".into(),
        },
        vec!["$user".into(), "public".into()],
        b'I',
    )
}

fn q(sql: &str) -> Frame {
    let mut b = sql.as_bytes().to_vec();
    b.push(0);
    frame(b'Q', &b)
}

fn up(tag: u8, body: &[u8]) -> Frame {
    frame(tag, body)
}

fn row_description(f: &Fixture, cols: &[(&str, &str)]) -> Frame {
    let fields: Vec<FieldDesc> = cols
        .iter()
        .map(|(table, col)| {
            let rel = f.catalog.rel(
                f.catalog
                    .lookup(&crate::policy::QName::new("stadtwerke", table))
                    .unwrap(),
            );
            let c = &rel.columns[rel.column_index(col).unwrap()];
            FieldDesc {
                name: col.as_bytes(),
                table_oid: rel.oid,
                attnum: c.attnum,
                type_oid: 25,
                type_len: -1,
                type_mod: -1,
                format: 0,
            }
        })
        .collect();
    let raw = build::row_description(&fields);
    up(b'T', &raw[5..])
}

fn data_row(vals: &[&str]) -> Frame {
    let mut b = BytesMut::new();
    b.extend_from_slice(&(vals.len() as i16).to_be_bytes());
    for v in vals {
        b.extend_from_slice(&(v.len() as i32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    up(b'D', &b)
}

/// The sample policies with `edit` applied to each file's text.
fn edited_policies(edit: &dyn Fn(&str) -> String) -> PolicySet {
    let texts: Vec<(String, String)> = crate::demo::SAMPLE_POLICIES
        .iter()
        .map(|(n, t)| (n.to_string(), edit(t)))
        .collect();
    let refs: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    crate::policy::load::load_texts(&refs, Some(b"k")).unwrap()
}

/// Parses `sql` as the unnamed statement, binds it to portal p and syncs, with the server's answers.
fn bind_portal_p(c: &mut Core, e: &Env<'_>, sql: &str) {
    let mut parse = b"\0".to_vec();
    parse.extend_from_slice(sql.as_bytes());
    parse.extend_from_slice(b"\0\0\0");
    for f in [frame(b'P', &parse), frame(b'B', b"p\0\0\0\0\0\0\0\0"), frame(b'S', b"")] {
        c.on_client(&f, e, &mut Out::default(), false).unwrap();
    }
    for f in [up(b'1', b""), up(b'2', b""), up(b'Z', b"I")] {
        c.on_upstream(&f, e, &mut Out::default()).unwrap();
    }
}

#[test]
fn masks_rows_of_the_statement_that_produced_them() {
    let fx = fixture();
    let mut c = core();
    let mut out = Out::default();
    c.on_client(
        &q("SELECT name, phone FROM stadtwerke.customers; SELECT 1"),
        &env(&fx),
        &mut out,
        false,
    )
    .unwrap();
    assert_eq!(
        &out.to_upstream[5..out.to_upstream.len() - 1],
        b"SELECT name, phone FROM stadtwerke.customers; SELECT 1"
    );
    let mut out = Out::default();
    for f in [
        row_description(&fx, &[("customers", "name"), ("customers", "phone")]),
        data_row(&["Anna Schmidt", "+49 30 1234567"]),
        up(b'C', b"SELECT 1\0"),
        up(
            b'T',
            b"\0\x01?column?\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
        ),
        data_row(&["+49 30 1234567"]),
        up(b'C', b"SELECT 1\0"),
        up(b'Z', b"I"),
    ] {
        c.on_upstream(&f, &env(&fx), &mut out).unwrap();
    }
    let text = String::from_utf8_lossy(&out.to_client);
    assert!(text.contains("+** ** ****567"), "{text}");
    assert_eq!(
        text.matches("+49 30 1234567").count(),
        1,
        "only the second statement's unprotected value passes: {text}"
    );
    assert!(c.idle());
}

#[test]
fn rule_10_cuts_off_a_protected_column_the_plan_does_not_cover() {
    let fx = fixture();
    let mut c = core();
    let mut out = Out::default();
    c.on_client(
        &q("SELECT customer_no FROM stadtwerke.customers"),
        &env(&fx),
        &mut out,
        false,
    )
    .unwrap();
    // The server describes the column as customers.phone (say, the analyzer was fooled).
    let err = c
        .on_upstream(&row_description(&fx, &[("customers", "phone")]), &env(&fx), &mut out)
        .unwrap_err();
    assert!(matches!(err, CoreError::CutOff(_)), "{err}");
    // A dropped column the plan does not drop is cut off too.
    let mut c = core();
    c.on_client(
        &q("SELECT customer_no FROM stadtwerke.customers"),
        &env(&fx),
        &mut out,
        false,
    )
    .unwrap();
    assert!(c
        .on_upstream(
            &row_description(&fx, &[("customers", "birth_date")]),
            &env(&fx),
            &mut out
        )
        .is_err());
    // More columns than the plan: cut off.
    let mut c = core();
    c.on_client(
        &q("SELECT name, phone FROM stadtwerke.customers"),
        &env(&fx),
        &mut out,
        false,
    )
    .unwrap();
    assert!(c
        .on_upstream(&row_description(&fx, &[("customers", "name")]), &env(&fx), &mut out)
        .is_err());
}

/// A result whose columns all pass still has the width the analyzer expects: another width means
/// it misread the statement, and a column it judged harmless may hold anything.
#[test]
fn a_result_of_another_width_is_cut_off_even_when_every_column_passes() {
    let fx = fixture();
    let unnamed = |n: usize| {
        let mut b = (n as i16).to_be_bytes().to_vec();
        for _ in 0..n {
            b.extend_from_slice(b"x\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0");
        }
        up(b'T', &b)
    };
    let started = |sql: &str| {
        let mut c = core();
        c.on_client(&q(sql), &env(&fx), &mut Out::default(), false).unwrap();
        c
    };
    // The width it expects passes through unchanged, rows too.
    let mut c = started("SELECT name, city FROM stadtwerke.customers");
    let mut out = Out::default();
    let (t, d) = (unnamed(2), data_row(&["Anna", "Musterstadt"]));
    c.on_upstream(&t, &env(&fx), &mut out).unwrap();
    c.on_upstream(&d, &env(&fx), &mut out).unwrap();
    assert_eq!(&out.to_client[..], [&t.raw[..], &d.raw[..]].concat());
    // One column more in the description, or in a row: cut off.
    let mut c = started("SELECT name, city FROM stadtwerke.customers");
    let err = c.on_upstream(&unnamed(3), &env(&fx), &mut Out::default()).unwrap_err();
    assert!(matches!(err, CoreError::CutOff(_)), "{err}");
    let mut c = started("SELECT name, city FROM stadtwerke.customers");
    c.on_upstream(&unnamed(2), &env(&fx), &mut Out::default()).unwrap();
    let err = c
        .on_upstream(
            &data_row(&["Anna", "Musterstadt", "+49 30 1234567"]),
            &env(&fx),
            &mut Out::default(),
        )
        .unwrap_err();
    assert!(matches!(err, CoreError::CutOff(_)), "{err}");
    // COPY's column count is checked the same way.
    let mut c = started("COPY (SELECT name FROM stadtwerke.customers) TO STDOUT");
    let err = c
        .on_upstream(&up(b'H', b"\0\0\x02\0\0\0\0"), &env(&fx), &mut Out::default())
        .unwrap_err();
    assert!(matches!(err, CoreError::CutOff(_)), "{err}");
    let mut c = started("COPY (SELECT name FROM stadtwerke.customers) TO STDOUT (FORMAT binary)");
    c.on_upstream(&up(b'H', b"\x01\0\x01\0\x01"), &env(&fx), &mut Out::default())
        .unwrap();
    // A width the analyzer cannot know (SHOW ALL has three columns) is not checked.
    let mut c = started("SHOW ALL");
    c.on_upstream(&unnamed(3), &env(&fx), &mut Out::default()).unwrap();
}

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
fn an_error_in_a_batch_skips_to_sync_and_forgets_its_statements() {
    let fx = fixture();
    let mut c = core();
    let mut out = Out::default();
    let e = env(&fx);
    let parse = |name: &str, sql: &str| {
        let mut b = Vec::new();
        b.extend_from_slice(name.as_bytes());
        b.push(0);
        b.extend_from_slice(sql.as_bytes());
        b.extend_from_slice(b"\0\0\0");
        frame(b'P', &b)
    };
    c.on_client(
        &parse("s1", "SELECT name FROM stadtwerke.customers"),
        &e,
        &mut out,
        false,
    )
    .unwrap();
    c.on_client(
        &parse("s2", "SELECT md5(phone) FROM stadtwerke.customers"),
        &e,
        &mut out,
        false,
    )
    .unwrap();
    c.on_client(&parse("s3", "SELECT 1"), &e, &mut out, false).unwrap();
    c.on_client(&frame(b'S', b""), &e, &mut out, false).unwrap();
    let mut out = Out::default();
    c.on_upstream(&up(b'1', b""), &e, &mut out).unwrap();
    c.on_upstream(&up(b'E', b"SERROR\0C42601\0Msyntax error\0\0"), &e, &mut out)
        .unwrap();
    c.on_upstream(&up(b'Z', b"I"), &e, &mut out).unwrap();
    assert!(c.idle());
    assert!(c.registry.statement("s1").is_some());
    assert!(
        c.registry.statement("s2").is_none(),
        "the refused statement does not exist upstream"
    );
    assert!(c.registry.statement("s3").is_none(), "skipped after the error");
    // Binding the skipped statement later is refused by the proxy (unknown), not passed on.
    let mut out = Out::default();
    let mut bind = b"\0s3\0\0\0\0\0\0\0".to_vec();
    bind.truncate(10);
    c.on_client(&frame(b'B', &bind), &e, &mut out, false).unwrap();
    assert!(String::from_utf8_lossy(&out.to_upstream).contains("unscharf_refused"));
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

/// Round 8: a Sync the client sent after ending a COPY it did not wait for is answered by the
/// server, so the replies after it must still meet the statements that caused them.
#[test]
fn a_sync_after_an_early_copy_done_is_answered() {
    let fx = fixture();
    let mut c = core();
    let client = [
        q("COPY stadtwerke.tickets (subject) FROM STDIN"),
        frame(b'c', b""),
        frame(b'S', b""),
        q("SELECT (SELECT phone) AS a FROM stadtwerke.customers"),
    ];
    let mut server = vec![
        up(b'G', b"\0\0\x01\0\0"),
        up(b'C', b"COPY 0\0"),
        up(b'Z', b"I"),
        // The Sync's own ReadyForQuery.
        up(b'Z', b"I"),
    ];
    server.extend(answer("+49 30 1234567"));
    let text = converse(&mut c, &fx, &client, &server);
    assert!(!text.contains("1234567") && text.contains("***"), "{text}");
    assert!(c.idle());
}

/// Round 8: after an extended-protocol message fails, Postgres ignores everything up to the
/// client's next Sync, Query included; the proxy must not expect answers to those messages.
#[test]
fn messages_after_a_failed_extended_message_are_ignored_until_sync() {
    let fx = fixture();
    let e = env(&fx);
    let mut c = core();
    let refused = frame(b'P', b"\0SELECT lower(iban) FROM stadtwerke.customers\0\0\0");
    // The refusal arrives before the client sends the rest.
    let _ = converse(
        &mut c,
        &fx,
        &[refused, frame(b'H', b"")],
        &[up(b'E', b"SERROR\0C42601\0Msyntax error\0\0")],
    );
    let mut out = Out::default();
    for f in [
        q("SELECT 1"),
        q("SELECT ''::text AS a"),
        frame(b'B', b"\0\0\0\0\0\0\0\0"),
    ] {
        c.on_client(&f, &e, &mut out, false).unwrap();
    }
    assert!(out.to_upstream.is_empty(), "ignored messages are not forwarded");
    let client = [
        frame(b'S', b""),
        q("SELECT (SELECT phone) AS a FROM stadtwerke.customers"),
    ];
    let mut server = vec![up(b'Z', b"I")];
    server.extend(answer("+49 30 1234567"));
    let text = converse(&mut c, &fx, &client, &server);
    assert!(!text.contains("1234567") && text.contains("***"), "{text}");
    assert!(c.idle());
}

const ONE_COL_T: &[u8] = b"\0\x01a\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0";

/// Feeds client frames, then server frames; returns what the client got.
fn converse(c: &mut Core, fx: &Fixture, client: &[Frame], server: &[Frame]) -> String {
    let e = env(fx);
    let mut out = Out::default();
    for f in client {
        c.on_client(f, &e, &mut out, false).unwrap();
    }
    let mut out = Out::default();
    for f in server {
        c.on_upstream(f, &e, &mut out).unwrap();
    }
    String::from_utf8_lossy(&out.to_client).into_owned()
}

fn masked_then_clear() -> [Frame; 2] {
    [
        q("SELECT (SELECT phone) AS a FROM stadtwerke.customers"),
        q("SELECT ''::text AS a"),
    ]
}

/// The server's answer to a one-column query returning `value` once.
fn answer(value: &str) -> [Frame; 4] {
    [
        up(b'T', ONE_COL_T),
        data_row(&[value]),
        up(b'C', b"SELECT 1\0"),
        up(b'Z', b"I"),
    ]
}

/// After `client`, which ends with a Sync the server answers, the masked query and the all-pass
/// one each get their own result: the phone masked, nothing raw, nothing left pending.
fn aligned_after(c: &mut Core, fx: &Fixture, mut client: Vec<Frame>) {
    client.extend(masked_then_clear());
    let mut server = vec![up(b'Z', b"I")];
    server.extend(rows_of_both());
    let text = converse(c, fx, &client, &server);
    assert!(!text.contains("1234567") && text.contains("****567"), "{text}");
    assert!(c.idle());
}

/// The server's answers to `masked_then_clear`: the phone, then an empty string.
fn rows_of_both() -> Vec<Frame> {
    [answer("+49 30 1234567"), answer("")].concat()
}

/// Round 9: an early CopyDone after another query, and a COPY that fails amid its data (simple
/// and extended protocol), must leave every later result under its own plan.
#[test]
fn copy_from_keeps_replies_matched_however_it_ends() {
    let fx = fixture();
    // A query before an early-ended COPY.
    let mut c = core();
    let [m, p] = masked_then_clear();
    let client = [
        q("SELECT 1"),
        q("COPY stadtwerke.tickets (subject) FROM STDIN"),
        frame(b'c', b""),
        frame(b'S', b""),
        m,
        p,
    ];
    let mut server = vec![
        up(b'T', ONE_COL_T),
        data_row(&["1"]),
        up(b'C', b"SELECT 1\0"),
        up(b'Z', b"I"),
        up(b'G', b"\0\0\x01\0\0"),
        up(b'C', b"COPY 0\0"),
        up(b'Z', b"I"),
        up(b'Z', b"I"),
    ];
    server.extend(rows_of_both());
    let text = converse(&mut c, &fx, &client, &server);
    assert!(!text.contains("1234567") && text.contains("****567"), "{text}");
    assert!(c.idle());
    // A COPY that fails amid its data, simple protocol: the Sync the client sends after the
    // error is answered.
    let mut c = core();
    let _ = converse(
        &mut c,
        &fx,
        &[q("COPY stadtwerke.tickets (subject) FROM STDIN")],
        &[up(b'G', b"\0\0\x01\0\0")],
    );
    let _ = converse(
        &mut c,
        &fx,
        &[frame(b'd', b"too\tmany\n")],
        &[up(b'E', b"SERROR\0C22P04\0Mextra data\0\0"), up(b'Z', b"I")],
    );
    aligned_after(&mut c, &fx, vec![frame(b'S', b"")]);
    // The same in the extended protocol: the server skips to the client's next Sync.
    let mut c = core();
    let start = [
        frame(b'P', b"\0COPY stadtwerke.tickets (subject) FROM STDIN\0\0\0"),
        frame(b'B', b"\0\0\0\0\0\0\0\0"),
        frame(b'E', b"\0\0\0\0\0"),
        frame(b'S', b""),
    ];
    let _ = converse(
        &mut c,
        &fx,
        &start,
        &[up(b'1', b""), up(b'2', b""), up(b'G', b"\0\0\x01\0\0")],
    );
    let e = env(&fx);
    c.on_client(&frame(b'd', b"too\tmany\n"), &e, &mut Out::default(), false)
        .unwrap();
    c.on_upstream(&up(b'E', b"SERROR\0C22P04\0Mextra data\0\0"), &e, &mut Out::default())
        .unwrap();
    aligned_after(&mut c, &fx, vec![frame(b'c', b""), frame(b'S', b"")]);
    // Two COPYs in flight, or a Sync amid the data, cannot be matched: the session ends.
    let mut c = core();
    let e = env(&fx);
    let mut out = Out::default();
    c.on_client(&q("COPY stadtwerke.tickets (subject) FROM STDIN"), &e, &mut out, false)
        .unwrap();
    c.on_client(&frame(b'c', b""), &e, &mut out, false).unwrap();
    assert!(c
        .on_client(&q("COPY stadtwerke.tickets (subject) FROM STDIN"), &e, &mut out, false)
        .is_err());
    let mut c = core();
    c.on_client(&q("COPY stadtwerke.tickets (subject) FROM STDIN"), &e, &mut out, false)
        .unwrap();
    c.on_client(&frame(b'd', b"x\n"), &e, &mut out, false).unwrap();
    assert!(c.on_client(&frame(b'S', b""), &e, &mut out, false).is_err());
}

/// Round 10: a COPY can fail after CopyInResponse (COPY FREEZE did), and then the server answers
/// Syncs the client sent before its data. Those are held back: dropped once the data starts,
/// sent (and answered) if an error ends the COPY first.
#[test]
fn syncs_before_copy_data_are_held_until_the_copy_decides() {
    let fx = fixture();
    let copy = "COPY stadtwerke.tickets (subject) FROM STDIN";
    // Simple protocol: the data starts before the failure is seen; the held Sync never goes out.
    let server = [
        up(b'G', b"\0\0\x01\0\0"),
        up(b'E', b"SERROR\0C55000\0Mcannot\0\0"),
        up(b'Z', b"I"),
    ];
    let mut c = core();
    let mut out = Out::default();
    for f in [q(copy), frame(b'S', b""), frame(b'c', b"")] {
        c.on_client(&f, &env(&fx), &mut out, false).unwrap();
    }
    assert!(
        !out.to_upstream.windows(5).any(|w| w == b"S\0\0\0\x04"),
        "the held Sync is not sent"
    );
    let _ = converse(&mut c, &fx, &[], &server);
    let client = masked_then_clear().to_vec();
    let text = converse(&mut c, &fx, &client, &rows_of_both());
    assert!(!text.contains("1234567") && text.contains("****567"), "{text}");
    assert!(c.idle());
    // Extended protocol (libpq: Parse, Bind, Execute, Sync): the failure comes first, the held
    // Sync goes out and is answered, then the client's own Sync after its data.
    let mut c = core();
    let e = env(&fx);
    let mut out = Out::default();
    for f in [
        frame(b'P', b"\0COPY stadtwerke.tickets (subject) FROM STDIN\0\0\0"),
        frame(b'B', b"\0\0\0\0\0\0\0\0"),
        frame(b'E', b"\0\0\0\0\0"),
        frame(b'S', b""),
    ] {
        c.on_client(&f, &e, &mut out, false).unwrap();
    }
    assert!(
        out.to_upstream.ends_with(b"E\0\0\0\x09\0\0\0\0\0"),
        "the Sync is held back"
    );
    let mut out = Out::default();
    for f in [
        up(b'1', b""),
        up(b'2', b""),
        up(b'G', b"\0\0\x01\0\0"),
        up(b'E', b"SERROR\0C55000\0Mcannot\0\0"),
    ] {
        c.on_upstream(&f, &e, &mut out).unwrap();
    }
    assert_eq!(&out.to_upstream[..], b"S\0\0\0\x04", "released once the COPY failed");
    let _ = converse(&mut c, &fx, &[], &[up(b'Z', b"I")]);
    aligned_after(
        &mut c,
        &fx,
        vec![frame(b'd', b"x\n"), frame(b'c', b""), frame(b'S', b"")],
    );
}

/// A ReadyForQuery before every statement of a simple Query was answered (and without an error)
/// belongs to another request: the session ends rather than shift results.
#[test]
fn an_early_ready_for_query_ends_the_session() {
    let fx = fixture();
    let mut c = core();
    let e = env(&fx);
    c.on_client(&q("SELECT 1; SELECT 2"), &e, &mut Out::default(), false)
        .unwrap();
    let mut out = Out::default();
    c.on_upstream(&up(b'C', b"SELECT 1\0"), &e, &mut out).unwrap();
    assert!(c.on_upstream(&up(b'Z', b"I"), &e, &mut out).is_err());
}

/// Defence in depth: a message that was to run a COPY FROM and ends without the COPY starting
/// (the proxy and the server disagreeing about a statement) releases the Syncs held for it.
#[test]
fn a_copy_that_never_starts_releases_its_held_syncs() {
    let fx = fixture();
    let e = env(&fx);
    let mut c = core();
    let mut out = Out::default();
    c.on_client(&q("COPY stadtwerke.tickets (subject) FROM STDIN"), &e, &mut out, false)
        .unwrap();
    c.on_client(&frame(b'S', b""), &e, &mut out, false).unwrap();
    let mut out = Out::default();
    c.on_upstream(&up(b'C', b"COPY 0\0"), &e, &mut out).unwrap();
    c.on_upstream(&up(b'Z', b"I"), &e, &mut out).unwrap();
    assert_eq!(&out.to_upstream[..], b"S\0\0\0\x04");
    c.on_upstream(&up(b'Z', b"I"), &e, &mut Out::default()).unwrap();
    assert!(c.idle());
}

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

fn error(code: &str) -> Frame {
    up(b'E', format!("SERROR\0C{code}\0Mfailed\0\0").as_bytes())
}

/// Red-team round 13: a PREPARE that fails (here never run, after 1/0) was predicted, and a Bind
/// in the next batch was judged by it while the server ran the old statement: its phone numbers
/// came out in clear. A message that uses a name whose change may still fail waits for the answer.
#[test]
fn a_message_waits_while_the_name_it_uses_may_not_be_what_was_predicted() {
    let fx = fixture();
    let e = env(&fx);
    let mut c = core();
    let mut out = Out::default();
    c.on_client(
        &q("PREPARE p AS SELECT name, phone FROM stadtwerke.customers"),
        &e,
        &mut out,
        false,
    )
    .unwrap();
    for f in [up(b'C', b"PREPARE\0"), up(b'Z', b"I")] {
        c.on_upstream(&f, &e, &mut out).unwrap();
    }
    let redefine = q("SELECT 1/0; DEALLOCATE p; PREPARE p AS SELECT ''::text AS a, ''::text AS b");
    let bind = frame(b'B', b"\0p\0\0\0\0\0\0\0");
    let mut out = Out::default();
    c.on_client(&redefine, &e, &mut out, false).unwrap();
    let sent = out.to_upstream.len();
    c.on_client(&bind, &e, &mut out, false).unwrap();
    assert!(out.hold, "Bind of p is held while the PREPARE may fail");
    assert_eq!(out.to_upstream.len(), sent, "nothing of it was forwarded");
    // So are a Query, a Describe and (in a later batch) an Execute that would run p.
    for f in [q("EXECUTE p"), frame(b'D', b"Sp\0")] {
        let mut o = Out::default();
        c.on_client(&f, &e, &mut o, false).unwrap();
        assert!(o.hold);
    }
    // Messages that do not use p go on.
    let mut o = Out::default();
    for f in [frame(b'B', b"\0other\0\0\0\0\0\0\0"), frame(b'S', b"")] {
        c.on_client(&f, &e, &mut o, false).unwrap();
        assert!(!o.hold);
    }
    // The server's answers: the Query failed at 1/0, so p is still the customers query; `other`
    // is unknown.
    let mut out = Out::default();
    for f in [error("22012"), up(b'Z', b"I"), error("26000"), up(b'Z', b"I")] {
        c.on_upstream(&f, &e, &mut out).unwrap();
    }
    let mut out = Out::default();
    for f in [bind, frame(b'D', b"P\0"), frame(b'E', b"\0\0\0\0\0"), frame(b'S', b"")] {
        c.on_client(&f, &e, &mut out, false).unwrap();
        assert!(!out.hold);
    }
    let mut out = Out::default();
    for f in [
        up(b'2', b""),
        row_description(&fx, &[("customers", "name"), ("customers", "phone")]),
        data_row(&["Anna Schmidt", "+49 30 1234567"]),
        up(b'C', b"SELECT 1\0"),
        up(b'Z', b"I"),
    ] {
        c.on_upstream(&f, &e, &mut out).unwrap();
    }
    let text = String::from_utf8_lossy(&out.to_client);
    assert!(text.contains("+** ** ****567") && !text.contains("1234567"), "{text}");
}

/// Within one batch a failure skips the rest, so a message may rely on what came before it:
/// drivers that Parse, Bind and Execute before one Sync never wait.
#[test]
fn messages_of_one_batch_rely_on_each_other_without_waiting() {
    let fx = fixture();
    let e = env(&fx);
    let mut c = core();
    let mut out = Out::default();
    for f in [
        frame(b'P', b"s\0SELECT name FROM stadtwerke.customers\0\0\0"),
        frame(b'B', b"\0s\0\0\0\0\0\0\0"),
        frame(b'D', b"P\0"),
        frame(b'E', b"\0\0\0\0\0"),
        frame(b'S', b""),
        // The next batch binds s again: the server answers the first batch without waiting for it.
        frame(b'B', b"\0s\0\0\0\0\0\0\0"),
    ] {
        c.on_client(&f, &e, &mut out, false).unwrap();
        if f.tag == b'B' && c.in_flight() > 4 {
            assert!(out.hold, "the Parse of s may still fail");
        } else {
            assert!(!out.hold, "{}", f.tag as char);
        }
    }
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
