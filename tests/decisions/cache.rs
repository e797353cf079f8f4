//! The analysis cache against fresh analysis. The cache serves one analysis for every statement of
//! the same shape (literals stripped), so a statement whose analysis depends on a literal's value
//! must never get another's: every statement of the tables, and variants of each with one literal
//! swapped for another, is analyzed through one cache (in two orders) and afresh, and both must agree.

#[path = "../common/literals.rs"]
mod literals;

use unscharf::analyze::cache::AnalysisCache;
use unscharf::analyze::AnalyzeError;

use super::*;

/// Byte ranges of the string and integer literals of `sql` (a plain scan; enough to make variants).
fn literal_spans(sql: &str) -> Vec<(std::ops::Range<usize>, bool)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                let start = i;
                i += 1;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                out.push((start..(i + 1).min(b.len()), true));
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
            }
            c if c.is_ascii_digit()
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b"$_.".contains(&b[i - 1]))) =>
            {
                let start = i;
                while i + 1 < b.len() && b[i + 1].is_ascii_digit() {
                    i += 1;
                }
                if !b
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_' || *c == b'.')
                {
                    out.push((start..i + 1, false));
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {
                while i + 1 < b.len() && (b[i + 1].is_ascii_alphanumeric() || b[i + 1] == b'_' || b[i + 1] == b'$') {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

#[test]
fn cached_analysis_agrees_with_fresh_analysis() {
    let cat = catalog();
    let mut sqls = BTreeSet::new();
    for src in [
        include_str!("main.rs"),
        include_str!("attacks.rs"),
        include_str!("statements.rs"),
        include_str!("variants.rs"),
    ] {
        sqls.extend(literals::string_literals(src));
    }
    for line in include_str!("../corpus/driver_queries.jsonl").lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        sqls.insert(v["sql"].as_str().unwrap().to_owned());
    }
    // Every string literal of the tables is a candidate replacement, so names that decide (a
    // setting, a sequence, a COPY option) meet each other; numbers change positions and counts.
    let mut strings: BTreeSet<String> = BTreeSet::new();
    for s in &sqls {
        for (r, is_string) in literal_spans(s) {
            if is_string && r.len() < 60 {
                strings.insert(s[r].to_owned());
            }
        }
    }
    let strings: Vec<String> = strings.into_iter().collect();
    let numbers = ["0", "1", "2", "3", "11"];
    let mut all: Vec<String> = sqls.iter().cloned().collect();
    for (k, s) in sqls.iter().enumerate() {
        for (n, (r, is_string)) in literal_spans(s).into_iter().take(4).enumerate() {
            for j in 0..4 {
                let with = if is_string {
                    strings[(k * 7 + n * 13 + j * 31) % strings.len()].clone()
                } else {
                    numbers[(k + n + j) % numbers.len()].to_owned()
                };
                all.push(format!("{}{with}{}", &s[..r.start], &s[r.end..]));
            }
        }
    }
    let path = vec![vec!["$user".to_owned(), "public".to_owned()]];
    let ctx = AnalyzeCtx {
        catalog: &cat,
        search_paths: &path,
        user: "agent",
        revert_paths: &[],
        abandoned: Default::default(),
    };
    let mut mismatches = Vec::new();
    let mut hits = 0;
    for order in [false, true] {
        let cache = AnalysisCache::new(1 << 20);
        let seq: Vec<&String> = if order {
            all.iter().rev().collect()
        } else {
            all.iter().collect()
        };
        for sql in seq {
            let Ok(looked) = cache.analyze(sql, ctx) else { continue };
            hits += looked.hit as usize;
            let fresh = analyze(sql, ctx);
            // A statement sqlparser cannot read is refused when analyzed afresh; a cached analysis
            // of the same shape (the Postgres-faithful lexer's tokens) describes it correctly.
            let unreadable = matches!(fresh, Err(AnalyzeError::Differential(_) | AnalyzeError::Parse(_)));
            if looked.analysis.as_deref().ok() != fresh.as_ref().ok() && !unreadable {
                if std::env::var("DBG").is_ok() {
                    eprintln!("{sql}\n  cached {:?}\n  fresh  {:?}", looked.analysis, fresh);
                }
                mismatches.push(format!("  {sql}"));
            }
        }
    }
    assert!(hits > 1000, "too few cache hits to test anything: {hits}");
    mismatches.sort();
    mismatches.dedup();
    assert!(
        mismatches.is_empty(),
        "{} of {} statements got a cached analysis that differs from their own:\n{}",
        mismatches.len(),
        all.len(),
        mismatches.join("\n")
    );
}
