//! COPY FROM and the Syncs around it: replies stay matched to their statements however a COPY ends.

use super::*;

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
