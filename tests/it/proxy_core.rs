//! Issue 2: the proxy is transparent for everything it does not need to change.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::raw::{self, Raw};

const U: &str = "u_trust";

async fn raw_pair() -> (Raw, Raw, Proxy) {
    let p = proxy().await;
    let direct = Raw::connect(db().port(), U, &[]).await;
    let via = Raw::connect(p.addr.port(), U, &[]).await;
    (direct, via, p)
}

/// The same messages, direct and through the proxy, give the same bytes back.
#[tokio::test]
async fn transparent_byte_for_byte() {
    let (mut d, mut v, _p) = raw_pair().await;
    let cases: Vec<Vec<Vec<u8>>> = vec![
        vec![raw::query("SELECT * FROM lab.items WHERE id <= 5 ORDER BY id")],
        vec![raw::query(
            "SELECT id, label FROM lab.items ORDER BY id LIMIT 3; SELECT count(*) FROM lab.items",
        )],
        vec![raw::query(
            "SELECT 1; SELECT 1 FROM lab.items WHERE id = (SELECT id FROM lab.items); SELECT 2",
        )],
        vec![raw::query("")],
        vec![raw::query(";")],
        vec![raw::query("ROLLBACK")],
        vec![raw::query(
            "BEGIN; INSERT INTO lab.inbox (body, n) VALUES ('x', 1) RETURNING body, n; ROLLBACK",
        )],
        vec![
            raw::query("BEGIN"),
            raw::query("SELECT 1 FROM lab.items WHERE id = (SELECT id FROM lab.items)"),
            raw::query("SELECT 1"),
            raw::query("ROLLBACK"),
        ],
        vec![
            raw::parse(
                "s1",
                "SELECT id, label, price, created, tags, doc, flag, blob FROM lab.items WHERE id = $1",
                &[23],
            ),
            raw::bind("", "s1", &[Some("7")], &[1]),
            raw::describe(b'P', ""),
            raw::execute("", 0),
            raw::bind("", "s1", &[Some("8")], &[0]),
            raw::describe(b'P', ""),
            raw::execute("", 0),
            raw::sync(),
        ],
        vec![
            raw::parse("s2", "SELECT * FROM lab.items WHERE id = $1", &[]),
            raw::describe(b'S', "s2"),
            raw::close(b'S', "s2"),
            raw::sync(),
        ],
        (1..=10)
            .flat_map(|i| {
                vec![
                    raw::parse("", "SELECT label FROM lab.items WHERE id = $1", &[]),
                    raw::bind("", "", &[Some(&i.to_string())], &[]),
                    raw::execute("", 0),
                ]
            })
            .chain([raw::sync()])
            .collect(),
        vec![
            raw::parse("", "SELECT 1", &[]),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
            raw::parse("", "SELECT 1 FROM lab.items WHERE id = (SELECT id FROM lab.items)", &[]),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
            raw::parse("", "SELECT 2", &[]),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
            raw::sync(),
            raw::query("SELECT 3"),
        ],
        vec![
            raw::parse("", "SELECT id FROM lab.items ORDER BY id", &[]),
            raw::bind("p1", "", &[], &[]),
            raw::execute("p1", 3),
            raw::execute("p1", 3),
            raw::close(b'P', "p1"),
            raw::sync(),
        ],
        vec![
            raw::query("DECLARE c CURSOR WITH HOLD FOR SELECT id, label FROM lab.items ORDER BY id"),
            raw::query("FETCH 2 FROM c"),
            raw::query("MOVE 5 IN c"),
            raw::query("FETCH 1 FROM c; CLOSE c"),
        ],
        vec![
            raw::query("PREPARE q(int) AS SELECT label FROM lab.items WHERE id = $1"),
            raw::query("EXECUTE q(42)"),
            raw::query("DEALLOCATE q"),
        ],
        vec![
            raw::query("SET application_name = 'transparency'"),
            raw::query("SHOW application_name"),
        ],
    ];
    for (i, case) in cases.iter().enumerate() {
        let mut db = Vec::new();
        let mut px = Vec::new();
        for m in case {
            d.send(m).await;
            v.send(m).await;
        }
        let syncs = case.iter().filter(|m| m[0] == b'S' || m[0] == b'Q').count();
        for _ in 0..syncs {
            db.extend(d.bytes_until_ready().await);
            px.extend(v.bytes_until_ready().await);
        }
        assert_eq!(
            String::from_utf8_lossy(&px),
            String::from_utf8_lossy(&db),
            "case {i} differs"
        );
        assert_eq!(px, db, "case {i} differs in bytes");
    }
}

#[tokio::test]
async fn flush_without_sync_answers_at_once() {
    let p = proxy().await;
    let mut v = Raw::connect(p.addr.port(), U, &[]).await;
    v.send(
        &[
            raw::parse("s", "SELECT 42 AS answer", &[]),
            raw::describe(b'S', "s"),
            raw::flush(),
        ]
        .concat(),
    )
    .await;
    let tags: String = [v.frame().await, v.frame().await, v.frame().await]
        .iter()
        .map(|f| f.tag as char)
        .collect();
    assert_eq!(
        tags, "1tT",
        "ParseComplete, ParameterDescription and RowDescription before any Sync"
    );
    v.send(&[raw::bind("", "s", &[], &[]), raw::execute("", 0), raw::flush()].concat())
        .await;
    let tags: String = [v.frame().await, v.frame().await, v.frame().await]
        .iter()
        .map(|f| f.tag as char)
        .collect();
    assert_eq!(tags, "2DC");
    v.send(&raw::sync()).await;
    assert_eq!(raw::tags(&v.until_ready().await), "Z");
}

#[tokio::test]
async fn ssl_and_gss_requests_are_declined() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = proxy().await;
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    s.write_all(&unscharf::wire::startup::ssl_request()).await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"N");
    s.write_all(b"\0\0\0\x08\x04\xd2\x16\x30").await.unwrap();
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"N");
    let mut r = Raw::startup_sent(s, U).await;
    let frames = r.until_ready().await;
    assert_eq!(frames[0].tag, b'R');
    r.send(&raw::query("SELECT 1")).await;
    assert_eq!(raw::tags(&r.until_ready().await), "TDCZ");
}

#[tokio::test]
async fn unscharf_parameters_are_consumed_and_purpose_binding_is_enforced() {
    let p = proxy().await;
    let c = p
        .try_connect(
            "options='-c unscharf.purpose=transparency -c application_name=from_options'",
            "tester",
            "tester",
        )
        .await
        .unwrap();
    let row = c.query_one("SHOW application_name", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "from_options");
    let row = c
        .query_one("SELECT current_setting('unscharf.purpose', true)", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(0),
        None,
        "the upstream never sees unscharf settings"
    );
    // As a startup parameter of its own (asyncpg's server_settings).
    let mut r = Raw::connect(p.addr.port(), U, &[("unscharf.purpose", "transparency")]).await;
    r.send(&raw::query("SELECT current_setting('unscharf.purpose', true) IS NULL"))
        .await;
    let frames = r.until_ready().await;
    assert!(String::from_utf8_lossy(&frames[1].raw).contains('t'));
    // A purpose the user is not a member of: refused, with the choices listed.
    let e = p
        .try_connect("options='-c unscharf.purpose=billing_hotline'", "tester", "tester")
        .await
        .unwrap_err();
    let msg = e
        .as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string());
    assert!(
        msg.contains("may not act under purpose billing_hotline") && msg.contains("transparency"),
        "{msg}"
    );
    // A member of two purposes must name one; the named one's grants apply.
    let e = p.try_connect("", "u_two", "u-two").await.unwrap_err();
    let msg = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(
        msg.contains("several purposes") && msg.contains("lab_review") && msg.contains("transparency"),
        "{msg}"
    );
    let review = p
        .try_connect("options='-c unscharf.purpose=lab_review'", "u_two", "u-two")
        .await
        .unwrap();
    review
        .simple_query("SELECT label FROM lab.items WHERE id = 1")
        .await
        .unwrap();
    let e = review
        .simple_query("UPDATE lab.items SET label = label WHERE id = 1")
        .await
        .unwrap_err();
    let why = e
        .as_db_error()
        .map(|d| format!("{} {:?}", d.message(), d.detail()))
        .unwrap_or_default();
    assert!(why.contains("lab_review"), "{why}");
    let write = p
        .try_connect("options='-c unscharf.purpose=transparency'", "u_two", "u-two")
        .await
        .unwrap();
    write
        .simple_query("UPDATE lab.items SET label = label WHERE id = 1")
        .await
        .unwrap();
    // A member of no purpose at all.
    let e = p.try_connect("", "nobody", "nobody").await.unwrap_err();
    let msg = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(msg.contains("member of no purpose"), "{msg}");
    assert_eq!(
        e.as_db_error().map(|d| d.code().code().to_owned()).as_deref(),
        Some("28000")
    );
    // Unsafe pinned settings are refused before anything reaches the server.
    let e = p
        .try_connect("options='-c standard_conforming_strings=off'", "tester", "tester")
        .await
        .unwrap_err();
    let msg = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(msg.contains("standard_conforming_strings"), "{msg}");
    // A role default of `off` is overridden by the pinned startup value, so the session works and
    // Postgres reads strings as the analyzer does.
    let show = "SELECT current_setting('standard_conforming_strings'), length('a\\b')";
    let row = direct("u_scs_off", "u-scs-off")
        .await
        .query_one(show, &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "off",
        "the fixture must make the role default off"
    );
    let c = p.connect("u_scs_off", "u-scs-off").await;
    let row = c.query_one(show, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "on");
    assert_eq!(
        row.get::<_, i32>(1),
        3,
        "a backslash in a plain string is one character"
    );
    let audit = p.audit().await;
    assert!(audit.iter().any(|e| e.reason == "no_purpose" && e.user == "nobody"));
}

#[tokio::test]
async fn backend_key_is_the_proxys_and_cancel_reaches_the_right_query() {
    let p = proxy().await;
    let mut r = Raw::connect(p.addr.port(), U, &[]).await;
    r.send(&raw::query("SELECT pg_backend_pid()")).await;
    let frames = r.until_ready().await;
    let pid: i32 = String::from_utf8_lossy(&frames[1].body()[6..]).parse().unwrap();
    assert_ne!(r.key.0, pid, "the client must not see the upstream's key");

    // Two sessions sleep; cancelling one leaves the other running.
    let a = p.connect("tester", "tester").await;
    let b = p.connect("tester", "tester").await;
    let token = a.cancel_token();
    let slow_a = tokio::spawn(async move { a.simple_query("SELECT pg_sleep(20)").await });
    let slow_b = tokio::spawn(async move { b.simple_query("SELECT pg_sleep(1.5)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let err = slow_a.await.unwrap().unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        slow_b.await.unwrap().is_ok(),
        "the other session's query was not cancelled"
    );

    // libpq, pgjdbc and asyncpg send SSLRequest first on the cancel connection.
    let c = p.connect("tester", "tester").await;
    let mut r = Raw::connect(p.addr.port(), U, &[]).await;
    let key = r.key;
    r.send(&raw::query("SELECT pg_sleep(20)")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        s.write_all(&unscharf::wire::startup::ssl_request()).await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"N");
        s.write_all(&unscharf::wire::startup::cancel_request(key.0, key.1))
            .await
            .unwrap();
    }
    let frames = r.until_ready().await;
    let err = frames.iter().find(|f| f.tag == b'E').expect("the sleep was cancelled");
    assert_eq!(raw::error_code(err), "57014");
    drop(c);
}

#[tokio::test]
async fn authentication_is_relayed_for_every_method() {
    let p = proxy().await;
    for (user, pw) in [
        ("u_trust", ""),
        ("u_password", "pw-plain"),
        ("u_md5", "pw-md5"),
        ("u_scram", "pw-scram"),
        ("tester", "tester"),
    ] {
        let c = p
            .try_connect("", user, pw)
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        let row = c.query_one("SELECT current_user::text", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), user);
    }
    for (user, pw) in [("u_password", "wrong"), ("u_md5", "wrong"), ("u_scram", "wrong")] {
        let started = Instant::now();
        let e = p.try_connect("", user, pw).await.unwrap_err();
        let msg = e
            .as_db_error()
            .map(|d| d.message().to_owned())
            .unwrap_or_else(|| e.to_string());
        assert!(msg.contains("password authentication failed"), "{user}: {msg}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{user}: the wrong password must not hang"
        );
    }
    // The proxy never offers channel binding, which cannot cross it.
    let s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    let mut r = Raw::startup_sent(s, "u_scram").await;
    let f = r.frame().await;
    let mechs = unscharf::wire::backend::sasl_mechanisms(f.body()).unwrap();
    assert_eq!(mechs, vec!["SCRAM-SHA-256"]);
}

#[tokio::test]
async fn extended_protocol_binary_and_pipelined_results_match_direct() {
    let p = proxy().await;
    let via = p.connect("tester", "tester").await;
    let direct = direct("tester", "tester").await;
    let sql = "SELECT id, label, price, created, tags, doc::text, flag, blob FROM lab.items WHERE id BETWEEN $1 AND $2 ORDER BY id";
    let run = |c: &'static tokio_postgres::Client| {
        async move {
            let stmt = c.prepare(sql).await.unwrap();
            // join_all pipelines all of them on one connection before any reply arrives.
            let futs = (0..20).map(|i| {
                let c = &c;
                let stmt = &stmt;
                async move { c.query(stmt, &[&(i * 10), &(i * 10 + 15)]).await.unwrap() }
            });
            let results = futures_util::future::join_all(futs).await;
            results
                .into_iter()
                .flatten()
                .map(|r| {
                    let id: i32 = r.get(0);
                    let label: String = r.get(1);
                    let tags: Vec<String> = r.get(4);
                    let doc: String = r.get(5);
                    let flag: bool = r.get(6);
                    let blob: Vec<u8> = r.get(7);
                    format!("{id}|{label}|{tags:?}|{doc}|{flag}|{blob:?}")
                })
                .collect::<Vec<_>>()
        }
    };
    let via: &'static tokio_postgres::Client = Box::leak(Box::new(via));
    let direct: &'static tokio_postgres::Client = Box::leak(Box::new(direct));
    let a = run(via).await;
    let b = run(direct).await;
    assert!(a.len() > 100);
    assert_eq!(a, b);
}

#[tokio::test]
async fn copy_in_and_out_through_the_proxy() {
    use futures_util::SinkExt;
    let p = proxy().await;
    let c = p.connect("tester", "tester").await;
    c.batch_execute("DELETE FROM lab.inbox WHERE body LIKE 'copy-%'")
        .await
        .unwrap();
    let sink = c.copy_in("COPY lab.inbox (body, n) FROM STDIN").await.unwrap();
    let mut sink = Box::pin(sink);
    let mut data = String::new();
    for i in 0..500 {
        data.push_str(&format!("copy-{i}\t{i}\n"));
    }
    for chunk in data.as_bytes().chunks(4096) {
        sink.send(bytes::Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    let n = sink.as_mut().finish().await.unwrap();
    assert_eq!(n, 500);
    let row = c
        .query_one("SELECT count(*), sum(n) FROM lab.inbox WHERE body LIKE 'copy-%'", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (500, (0..500).sum()));
    let out = copy_out_text(
        &c,
        "COPY (SELECT id, label, price FROM lab.items ORDER BY id) TO STDOUT",
    )
    .await;
    let direct_out = copy_out_text(
        &direct("tester", "tester").await,
        "COPY (SELECT id, label, price FROM lab.items ORDER BY id) TO STDOUT",
    )
    .await;
    assert_eq!(out, direct_out);
    assert_eq!(out.lines().count(), 2000);
}

pub async fn copy_out_text(c: &tokio_postgres::Client, sql: &str) -> String {
    use futures_util::StreamExt;
    let stream = c.copy_out(sql).await.unwrap();
    let mut stream = Box::pin(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn notices_notifications_and_parameter_status() {
    let p = proxy().await;
    let mut r = Raw::connect(p.addr.port(), U, &[]).await;
    r.send(&raw::query("ROLLBACK")).await;
    let frames = r.until_ready().await;
    assert_eq!(
        raw::tags(&frames),
        "NCZ",
        "WARNING: there is no transaction in progress"
    );
    r.send(&raw::query("SET application_name = 'ps-test'")).await;
    let frames = r.until_ready().await;
    assert!(
        frames
            .iter()
            .any(|f| f.tag == b'S' && String::from_utf8_lossy(f.body()).contains("ps-test")),
        "ParameterStatus reaches the client"
    );
    r.send(&raw::query("LISTEN unscharf_test_channel")).await;
    r.until_ready().await;
    let su = superuser().await;
    su.batch_execute("NOTIFY unscharf_test_channel, 'hello from the backend'")
        .await
        .unwrap();
    let f = r.frame().await;
    assert_eq!(f.tag, b'A');
    // Round 186 W1: the channel and sender come, the payload (whatever the notifying code put
    // there, judged by no policy) does not.
    let body = String::from_utf8_lossy(f.body()).into_owned();
    assert!(body.contains("unscharf_test_channel"), "{body:?}");
    assert!(
        !body.contains("hello from the backend") && body.ends_with("\0\0"),
        "{body:?}"
    );
}

async fn backends(app: &str) -> i64 {
    let su = superuser().await;
    su.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
        &[&app],
    )
    .await
    .unwrap()
    .get(0)
}

async fn wait_for_backends(app: &str, n: i64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if backends(app).await == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn terminate_and_vanished_clients_free_their_upstream() {
    let p = proxy().await;
    let mut r = Raw::connect(p.addr.port(), U, &[("application_name", "terminate-test")]).await;
    assert_eq!(backends("terminate-test").await, 1);
    r.send(&raw::msg(b'X', &[])).await;
    assert!(r.try_frame().await.is_none(), "the proxy closes after Terminate");
    assert!(wait_for_backends("terminate-test", 0, Duration::from_secs(3)).await);

    let mut r = Raw::connect(p.addr.port(), U, &[("application_name", "vanish-test")]).await;
    r.send(&raw::query("SELECT pg_sleep(60)")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(r);
    assert!(
        wait_for_backends("vanish-test", 0, Duration::from_secs(5)).await,
        "the upstream query was cancelled and its backend ended"
    );
}

#[tokio::test]
async fn function_call_and_bad_frames_are_refused_without_harming_others() {
    let p = proxy().await;
    let healthy = p.connect("tester", "tester").await;
    let mut r = Raw::connect(p.addr.port(), U, &[]).await;
    // FunctionCall: OID 1 (no such function matters: it never reaches the server).
    r.send(&raw::msg(b'F', b"\0\0\0\x01\0\0\0\0\0\0")).await;
    let frames = r.until_ready().await;
    assert_eq!(raw::tags(&frames), "EZ");
    assert!(raw::error_message(&frames[0]).contains("FunctionCall"));
    r.send(&raw::query("SELECT 1")).await;
    assert_eq!(
        raw::tags(&r.until_ready().await),
        "TDCZ",
        "the session survives the refusal"
    );

    // An oversized frame: FATAL and close, before the proxy allocates anything.
    let mut big = Raw::connect(p.addr.port(), U, &[]).await;
    big.send(b"Q\x7f\xff\xff\xff").await;
    let f = big.frame().await;
    assert_eq!((f.tag, raw::error_code(&f).as_str()), (b'E', "08P01"));
    assert!(big.try_frame().await.is_none());
    // A malformed frame (impossible length) and an unknown message type.
    for junk in [&b"Q\0\0\0\x02"[..], &b"y\0\0\0\x04"[..]] {
        let mut bad = Raw::connect(p.addr.port(), U, &[]).await;
        bad.send(junk).await;
        let f = bad.frame().await;
        assert_eq!(f.tag, b'E');
        assert!(bad.try_frame().await.is_none());
    }
    let row = healthy.query_one("SELECT 41 + 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42, "other sessions keep working");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_death_gives_a_clear_fatal_and_recovery_works() {
    let cluster = new_cluster();
    let p = proxy_with(ProxyOptions {
        upstream_port: Some(cluster.port),
        ..Default::default()
    })
    .await;
    let c = p.connect("tester", "tester").await;
    c.simple_query("SELECT 1").await.unwrap();
    tokio::task::block_in_place(|| cluster.kill9().unwrap());
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    let text = format!("{e} {:?}", e.as_db_error().map(|d| d.message()));
    assert!(
        e.is_closed() || text.contains("closed") || text.contains("terminat"),
        "{text}"
    );
    // While the server is down, new sessions get a clear error instead of hanging.
    let e = p.try_connect("", "tester", "tester").await.unwrap_err();
    let msg = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(msg.contains("cannot reach the database server"), "{msg}");
    assert_eq!(e.code().map(|c| c.code()), Some("08001"));
    tokio::task::block_in_place(|| cluster.start_server().unwrap());
    let c = p.connect("tester", "tester").await;
    let row = c.query_one("SELECT count(*) FROM lab.items", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 2000);
}
