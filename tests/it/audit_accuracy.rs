//! What the audit trail says about pipelined statements: each record names the statement that ran
//! or was refused, never one a name meant before.

use crate::harness::*;
use crate::raw::{self, Raw};

/// Round 175 F6: a Bind pipelined after a refused Parse of the unnamed statement was judged
/// against the statement the name had before, and recorded as that one, allowed, though the
/// server skipped it. Postgres drops the unnamed statement even when its Parse fails, so a Bind in
/// a later batch finds none either.
#[tokio::test]
async fn a_refused_parse_leaves_no_stale_unnamed_statement() {
    let p = proxy_with(ProxyOptions {
        extra: "audit:\n  file: audit.jsonl\n  log_allowed: true\n".into(),
        ..Default::default()
    })
    .await;
    let mut r = Raw::lab(p.addr.port()).await;
    let run = |sql: &str| {
        [
            raw::parse("", sql, &[]),
            raw::bind("", "", &[], &[]),
            raw::execute("", 0),
            raw::sync(),
        ]
        .concat()
    };
    r.send(&run("SELECT pi() AS stale_one")).await;
    assert_eq!(raw::tags(&r.until_ready().await), "12DCZ");
    r.send(&run("SELECT lower(secret) FROM lab.vault")).await;
    let refused = r.until_ready().await;
    assert_eq!(raw::tags(&refused), "EZ");
    assert_eq!(raw::error_code(&refused[0]), "42501");
    // In a batch of its own, a Bind of the unnamed statement finds none, as in Postgres.
    r.send(&[raw::bind("", "", &[], &[]), raw::execute("", 0), raw::sync()].concat())
        .await;
    assert_eq!(raw::tags(&r.until_ready().await), "EZ");

    let events = p.audit().await;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.decision.as_str(), e.statement.as_str()))
        .collect();
    // The alias is scrubbed as a word that may be a value (round 235 BT3); the call is not.
    let stale = seen
        .iter()
        .filter(|(_, s)| s.replace(" (", "(").contains("pi("))
        .count();
    assert_eq!(stale, 1, "the first statement is recorded once: {seen:?}");
    assert!(
        seen.iter().any(|(d, s)| *d == "refused" && s.contains("lab.vault")),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|(d, s)| *d != "refused" && s.contains("lab.vault")),
        "{seen:?}"
    );
}

/// Round 177 N8: what a client pipelines after a refused message in the same batch never runs
/// (the server skips to the Sync), so it is neither judged nor recorded as allowed; the next
/// batch is judged as usual.
#[tokio::test]
async fn messages_pipelined_after_a_refusal_are_skipped_unrecorded() {
    let p = proxy_with(ProxyOptions {
        extra: "audit:\n  file: audit.jsonl\n  log_allowed: true\n".into(),
        ..Default::default()
    })
    .await;
    let mut r = Raw::lab(p.addr.port()).await;
    let step = |name: &str, sql: &str| {
        [
            raw::parse(name, sql, &[]),
            raw::bind("", name, &[], &[]),
            raw::execute("", 0),
        ]
        .concat()
    };
    let batch = [
        step("", "SELECT lower(secret) FROM lab.vault"),
        step("", "SELECT abs(2) AS never_ran"),
        step("n9", "SELECT exp(3) AS never_ran_either"),
        raw::flush(),
        raw::query("SELECT ln(4) AS skipped_query"),
        raw::sync(),
    ]
    .concat();
    r.send(&batch).await;
    let replies = r.until_ready().await;
    assert_eq!(raw::tags(&replies), "EZ");
    assert_eq!(raw::error_code(&replies[0]), "42501");
    // The named statement was never made, as in Postgres.
    r.send(&[raw::bind("", "n9", &[], &[]), raw::execute("", 0), raw::sync()].concat())
        .await;
    assert_eq!(raw::tags(&r.until_ready().await), "EZ");
    r.send(&[step("", "SELECT mod(5, 2) AS next_batch"), raw::sync()].concat())
        .await;
    assert_eq!(raw::tags(&r.until_ready().await), "12DCZ");

    let events = p.audit().await;
    // Told apart by their calls: an alias is scrubbed as a word that may be a value.
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.decision.as_str(), e.statement.as_str()))
        .collect();
    assert!(
        !seen
            .iter()
            .any(|(_, s)| ["abs(", "exp(", "ln("].iter().any(|f| s.replace(" (", "(").contains(f))),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|(d, _)| *d == "refused").count(),
        2,
        "the refusal, and the Bind of the statement never made: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(d, s)| *d != "refused" && s.replace(" (", "(").contains("mod(")),
        "{seen:?}"
    );
}

/// Round 208 AS1: a refusal names every campaign it concerns: a write after reading another
/// campaign names the campaign read too. (The purpose is granted both: a write into a table it is
/// not granted is outside it, round 241 BZ1.)
#[tokio::test]
async fn refusals_name_every_campaign_they_concern() {
    let policy = "campaign: crossover\ntables: [crossover.*]\npurposes:\n  crossover:\n    members: [u_md5]\n    tables:\n      stadtwerke.tickets: { columns: all, write: [insert] }\n      zeitung.leads: { columns: { lead_id: allow } }\n";
    superuser()
        .await
        .batch_execute("GRANT USAGE ON SCHEMA stadtwerke, zeitung TO u_md5; GRANT SELECT ON zeitung.leads TO u_md5;")
        .await
        .unwrap();
    let p = proxy_with(ProxyOptions {
        policies: vec![("crossover.yaml".into(), policy.into())],
        ..Default::default()
    })
    .await;
    let c = p
        .try_connect("options='-c unscharf.purpose=crossover'", "u_md5", "pw-md5")
        .await
        .unwrap();
    c.simple_query("SELECT lead_id FROM zeitung.leads LIMIT 1")
        .await
        .unwrap();
    let e = c
        .simple_query("INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (1001, 'x')")
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("cross_campaign"), "{e:?}");
    let events = p.audit().await;
    let refused = events.iter().find(|e| e.reason == "cross_campaign").expect("recorded");
    assert_eq!(refused.campaigns, ["stadtwerke", "zeitung"], "{refused:?}");
    // A purpose granted nothing in the campaign written is refused that as outside_purpose.
    let z = p.connect("agent_zeitung", "zeitung").await;
    z.simple_query("SELECT lead_id FROM zeitung.leads LIMIT 1")
        .await
        .unwrap();
    let e = z
        .simple_query("INSERT INTO stadtwerke.tickets (customer_no, subject) VALUES (1001, 'x')")
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("outside_purpose"), "{e:?}");
}
