//! The log filter: the operator's `UNSCHARF_LOG` for unscharf's own events, with the crates that
//! would print statements and their literals kept quiet at any level.

use tracing_subscriber::EnvFilter;

/// Crates whose debug output holds SQL as a client sent it (round 175 F3: sqlparser's `debug`
/// printed every statement and literal, a caller's phone among them) or the catalog's queries
/// and parameters. Added after the operator's directives, so they win for these targets.
const QUIET: &[&str] = &["sqlparser=off", "tokio_postgres=off", "pg_query=off"];

/// Whether events of `target` may be logged at all: a directive for a module inside one of the
/// quiet crates (`sqlparser::parser=debug`) is more specific than the crate's and would win
/// (round 177 N1), so the quiet crates are also cut off by target, whatever the directives say.
pub fn shown(target: &str) -> bool {
    !QUIET
        .iter()
        .filter_map(|d| d.strip_suffix("=off"))
        .any(|krate| target == krate || target.strip_prefix(krate).is_some_and(|rest| rest.starts_with("::")))
}

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

    #[test]
    fn quiet_crates_are_cut_off_by_target() {
        for target in ["sqlparser", "sqlparser::parser", "tokio_postgres::query", "pg_query"] {
            assert!(!shown(target), "{target}");
        }
        for target in ["unscharf", "unscharf::session", "sqlparser_extra", "tokio"] {
            assert!(shown(target), "{target}");
        }
    }
}
