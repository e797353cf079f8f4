//! The session state machine: arbitrary client and server frames, interleaved, against real policies.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use unscharf::analyze::cache::AnalysisCache;
use unscharf::catalog::{offline, Catalog};
use unscharf::policy::{load::load_texts, PolicySet};
use unscharf::session::core::{Core, Env, Identity, Out};
use unscharf::wire::next_frame;

fn fixture() -> &'static (Catalog, PolicySet, AnalysisCache) {
    static F: OnceLock<(Catalog, PolicySet, AnalysisCache)> = OnceLock::new();
    F.get_or_init(|| {
        let cat = offline::from_schema_sql(include_str!("../../sample/schema.sql"), "schema.sql").unwrap();
        let pol = load_texts(unscharf::demo::SAMPLE_POLICIES, Some(b"fuzz")).unwrap();
        (cat, pol, AnalysisCache::new(1000))
    })
}

fuzz_target!(|data: &[u8]| {
    let (catalog, policy, cache) = fixture();
    let budget = unscharf::session::lookups::LookupBudget::default();
    let env = Env {
        policy,
        catalog,
        cache,
        today: unscharf::policy::Today::from_ymd_opt(2026, 11, 29).unwrap(),
        log_allowed: true,
        refuse_all: None,
        lookups: &budget,
        lookups_per_minute: 0,
        now: std::time::Instant::now(),
    };
    let mut core = Core::new(
        Identity { session: 1, user: "agent_wasser".into(), client_addr: "fuzz".into(), purpose: "billing_hotline".into() },
        vec!["$user".into(), "public".into()],
        b'I',
    );
    // The first byte of each chunk says which side it comes from.
    let mut buf = bytes::BytesMut::from(data);
    let mut out = Out::default();
    while !buf.is_empty() {
        let from_client = buf[0] & 1 == 0;
        let _ = bytes::Buf::advance(&mut buf, 1);
        let Ok(Some(f)) = next_frame(&mut buf, 1 << 20) else { break };
        let r = if from_client { core.on_client(&f, &env, &mut out, false) } else { core.on_upstream(&f, &env, &mut out) };
        if r.is_err() {
            break;
        }
    }
});
