//! Criterion benches of the per-statement work: a cache hit (normalize, look up, decide), a cache miss
//! (lex, parse, differential check, analyze, decide) and the DataRow rewrite per masked field.

use std::collections::BTreeSet;
use std::hint::black_box;

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion};
use unscharf::analyze::cache::AnalysisCache;
use unscharf::analyze::{analyze, AnalyzeCtx};
use unscharf::catalog::offline;
use unscharf::judge::{judge_all, JudgeCtx, NoRegistry};
use unscharf::mask::rows::rewrite_data_row;
use unscharf::policy::decide::{ColAction, MaskAction};
use unscharf::policy::load::load_texts;

/// Statements a CRM sends all day.
const CRM: &[&str] = &[
    "SELECT customer_no, name, street, postcode, city, phone, email, iban FROM stadtwerke.customers WHERE customer_no = $1",
    "SELECT name FROM stadtwerke.customers WHERE phone = '+49 30 1234567'",
    "SELECT m.read_on, m.cubic_m FROM stadtwerke.meter_readings m JOIN stadtwerke.customers c USING (customer_no) WHERE c.customer_no = 1001 ORDER BY m.read_on DESC LIMIT 10",
    "INSERT INTO stadtwerke.tickets (customer_no, subject, note) VALUES (1001, 'Abschlag', 'Kundin ruft an') RETURNING ticket_id",
    "SELECT abalance FROM pgbench_accounts WHERE aid = 48213",
];

fn benches(c: &mut Criterion) {
    let mut schema = include_str!("../sample/schema.sql").to_owned();
    schema.push_str("CREATE TABLE public.pgbench_accounts (aid int, bid int, abalance int, filler char(84));");
    let cat = offline::from_schema_sql(&schema, "schema.sql").unwrap();
    let mut files: Vec<(&str, &str)> = unscharf::demo::SAMPLE_POLICIES.to_vec();
    files.push(("bench.yaml", "campaign: bench\ntables: [public.pgbench_accounts]\npurposes:\n  benchmark:\n    members: [agent_wasser]\n    tables:\n      public.pgbench_accounts: { columns: { aid: allow, bid: allow, abalance: allow, filler: { mask: redact } } }\n"));
    let pol = load_texts(&files, Some(b"bench")).unwrap();
    let paths = vec![vec!["$user".to_owned(), "public".to_owned()]];
    let ctx = AnalyzeCtx {
        catalog: &cat,
        search_paths: &paths,
        user: "agent_wasser",
        revert_paths: &[],
        abandoned: Default::default(),
    };
    let read = BTreeSet::new();
    let purpose = &pol.purposes["billing_hotline"];
    let bench_purpose = &pol.purposes["benchmark"];
    let jcx = |p| JudgeCtx {
        policy: &pol,
        purpose: p,
        catalog: &cat,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
        read_campaigns: &read,
        dba_path: None,
        settings_moved: None,
        path_moved: None,
    };

    let cache = AnalysisCache::new(10_000);
    let mut g = c.benchmark_group("statement");
    for (i, sql) in CRM.iter().enumerate() {
        let p = if sql.contains("pgbench") {
            bench_purpose
        } else {
            purpose
        };
        let _ = cache.analyze(sql, ctx).unwrap();
        g.bench_function(format!("hit/{i}"), |b| {
            b.iter(|| {
                let l = cache.analyze(black_box(sql), ctx).unwrap();
                let a = l.analysis.unwrap();
                black_box(judge_all(&a, &jcx(p), &NoRegistry).unwrap());
            })
        });
        g.bench_function(format!("miss/{i}"), |b| {
            b.iter(|| {
                let a = analyze(black_box(sql), ctx).unwrap();
                black_box(judge_all(&a, &jcx(p), &NoRegistry).unwrap());
            })
        });
    }
    g.finish();

    // One DataRow of a customer with three masked fields (phone, email, IBAN) and five passed ones.
    let mask = |spec: &str| {
        ColAction::Mask(Box::new(MaskAction {
            mask: spec.parse().unwrap(),
            key: None,
            column: unscharf::analyze::facts::ColRef { rel: 0, col: 0 },
        }))
    };
    let plan = vec![
        ColAction::Pass,
        ColAction::Pass,
        ColAction::Pass,
        ColAction::Pass,
        ColAction::Pass,
        mask("last(3)"),
        mask("email"),
        mask("iban"),
    ];
    let values: [&[u8]; 8] = [
        b"1001",
        b"Anna Schmidt",
        b"Lindenstrasse 5",
        b"10115",
        b"Berlin",
        b"+49 30 1234567",
        b"anna.schmidt@example.org",
        b"DE89 3704 0044 0532 0130 00",
    ];
    let mut body = BytesMut::new();
    body.put_i16(values.len() as i16);
    for v in values {
        body.put_i32(v.len() as i32);
        body.put_slice(v);
    }
    let passthrough = vec![ColAction::Pass; 8];
    let mut out = BytesMut::with_capacity(1 << 16);
    let mut scratch = Vec::new();
    let mut g = c.benchmark_group("datarow");
    g.bench_function("three_masked_fields", |b| {
        b.iter(|| {
            out.clear();
            rewrite_data_row(black_box(&body), &plan, &mut out, &mut scratch).unwrap();
        })
    });
    g.bench_function("no_masked_fields", |b| {
        b.iter(|| {
            out.clear();
            rewrite_data_row(black_box(&body), &passthrough, &mut out, &mut scratch).unwrap();
        })
    });
    g.finish();
}

criterion_group!(name = group; config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2)); targets = benches);
criterion_main!(group);
