//! Extended-protocol batches: errors skip to Sync, and messages wait only when a name may differ.

use super::*;

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
