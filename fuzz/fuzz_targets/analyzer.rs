//! Lexer, parser-differential check, analysis and decision on arbitrary SQL text.
#![no_main]
use std::collections::BTreeSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use unscharf::analyze::{analyze, AnalyzeCtx};
use unscharf::catalog::{offline, Catalog};
use unscharf::judge::{judge_all, JudgeCtx, NoRegistry};
use unscharf::policy::{load::load_texts, PolicySet};

fn fixture() -> &'static (Catalog, PolicySet) {
    static F: OnceLock<(Catalog, PolicySet)> = OnceLock::new();
    F.get_or_init(|| {
        let cat = offline::from_schema_sql(include_str!("../../sample/schema.sql"), "schema.sql").unwrap();
        let pol = load_texts(unscharf::demo::SAMPLE_POLICIES, Some(b"fuzz")).unwrap();
        (cat, pol)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    let _ = unscharf::analyze::lexer::normalize(sql);
    let (cat, pol) = fixture();
    let paths = vec![vec!["$user".to_owned(), "public".to_owned()]];
    let ctx = AnalyzeCtx { catalog: cat, search_paths: &paths, user: "agent_wasser", revert_paths: &[], abandoned: Default::default() };
    if let Ok(a) = analyze(sql, ctx) {
        let read = BTreeSet::new();
        for purpose in pol.purposes.values() {
            let j = JudgeCtx { policy: pol, purpose, catalog: cat, today: chrono_today(), read_campaigns: &read };
            let _ = judge_all(&a, &j, &NoRegistry);
        }
    }
});

fn chrono_today() -> unscharf::policy::Today {
    unscharf::policy::Today::from_ymd_opt(2026, 11, 29).unwrap()
}
