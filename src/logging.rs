//! The log filter: the operator's `UNSCHARF_LOG` for unscharf's own events, with the crates that
//! would print statements and their literals kept quiet at any level.

use tracing_subscriber::EnvFilter;

/// Crates whose debug output holds SQL as a client sent it (round 175 F3: sqlparser's `debug`
/// printed every statement and literal, a caller's phone among them) or the catalog's queries
/// and parameters. Added after the operator's directives, so they win for these targets.
const QUIET: &[&str] = &["sqlparser=off", "tokio_postgres=off", "pg_query=off"];

/// The filter for `spec` (`UNSCHARF_LOG`; `info` when unset or unreadable).
pub fn log_filter(spec: Option<&str>) -> EnvFilter {
    let mut filter = spec
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    for directive in QUIET {
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_printing_crates_stay_off_whatever_the_operator_asks() {
        for spec in [
            Some("debug"),
            Some("trace"),
            Some("sqlparser=trace,debug"),
            None,
            Some("nonsense=["),
        ] {
            let shown = log_filter(spec).to_string();
            for quiet in QUIET {
                assert!(shown.contains(quiet), "{spec:?}: {shown}");
            }
            assert!(!shown.contains("sqlparser=trace"), "{spec:?}: {shown}");
        }
        assert!(log_filter(Some("debug")).to_string().contains("debug"));
    }
}
