//! The state machine with byte literals: client and server frames in, frames out, no sockets.

use bytes::BytesMut;

use super::*;
use crate::analyze::cache::AnalysisCache;
use crate::catalog::offline::from_schema_sql;
use crate::wire::backend::FieldDesc;
use crate::wire::frame::frame;

mod batches;
mod changes;
mod copy;
mod refusals;
mod results;

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
        catalog: from_schema_sql(include_str!("../../../../sample/schema.sql"), "schema.sql").unwrap(),
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
        false,
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

/// Parses `sql` as the unnamed statement, binds it to portal p and syncs, with the server's answers,
/// inside a transaction block (outside one, the portal would end at the Sync).
fn bind_portal_p(c: &mut Core, e: &Env<'_>, sql: &str) {
    let mut parse = b"\0".to_vec();
    parse.extend_from_slice(sql.as_bytes());
    parse.extend_from_slice(b"\0\0\0");
    for f in [frame(b'P', &parse), frame(b'B', b"p\0\0\0\0\0\0\0\0"), frame(b'S', b"")] {
        c.on_client(&f, e, &mut Out::default(), false).unwrap();
    }
    for f in [up(b'1', b""), up(b'2', b""), up(b'Z', b"T")] {
        c.on_upstream(&f, e, &mut Out::default()).unwrap();
    }
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

fn error(code: &str) -> Frame {
    up(b'E', format!("SERROR\0C{code}\0Mfailed\0\0").as_bytes())
}
