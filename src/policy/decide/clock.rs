//! The clock and the local times a DBA's row filters read, and the session settings that move them.
//!
//! `now()`, `CURRENT_DATE` and their kin give the same instant to every session, but what a
//! filter makes of it (`now()::time`, `extract(hour FROM now())`, `to_char(now(), 'HH24')`, a
//! `date` compared with `now()`) depends on the session's TimeZone, DateStyle, IntervalStyle and
//! lc_time, which an agent sets as it likes (round 163: a row-level security policy that let
//! agents read only during their shift let them read at night after `SET TimeZone`). Unlike a
//! setting read outright, the clock is a fair thing to key rows on (a contract's end, a shift),
//! so a statement reaching such a filter is refused only while the session's settings differ
//! from the server's.

/// Words in SQL text that read the clock: functions with brackets, SQL keywords without.
const CLOCK_CALLS: &[&str] = &["now", "statement_timestamp", "transaction_timestamp", "clock_timestamp"];
const CLOCK_KEYWORDS: &[&str] = &["current_timestamp", "current_date"];
/// What turns a stored time into a local one, a part of one, or text, which the same settings
/// decide (`extract(hour FROM created_at)`, `to_char(created_at, 'HH24')`, `created_at::date`,
/// `age(birth)` from today): functions with brackets, and type names as casts print them. (A
/// time cast to text with no type name, `created_at::text`, is not seen.)
const LOCAL_TIME_CALLS: &[&str] = &[
    "age",
    "to_char",
    "extract",
    "date_part",
    "date_trunc",
    "timezone",
    "to_timestamp",
    "make_timestamptz",
];
const LOCAL_TIME_TYPES: &[&str] = &["date", "time", "timetz", "timestamp", "timestamptz", "interval"];
/// Strings whose cast at run time reads the clock (`('now'::text)::timestamptz`); written as a
/// literal of the type, Postgres reads them once, when the filter is created.
const CLOCK_STRINGS: &[&str] = &["'now'", "'today'", "'tomorrow'", "'yesterday'"];

/// The settings Postgres reports to the client (ParameterStatus) that change what a filter
/// computes: unscharf compares their values with the server's.
pub const REPORTED_SETTINGS: &[&str] = &["timezone", "datestyle", "intervalstyle"];

/// Settings that change no value a filter computes (timeouts, logging, transaction modes, JIT).
/// Any other may (TimeZone, DateStyle, lc_time, lc_numeric, extra_float_digits, bytea_output,
/// default_text_search_config, …): an unknown one counts. search_path has rules of its own.
/// Extensions' dotted settings count: they change what their functions compute (round 166:
/// `pg_trgm.word_similarity_threshold`, `plpgsql.check_asserts`). So do the planner's levers
/// (`work_mem`, `hash_mem_multiplier`, parallel workers, the collapse limits, geqo, the plan
/// cache): they change the order a plan reads rows in, and with it what a filter that takes rows
/// in that order computes (round 179 Q1: `string_agg` over a GROUP BY that work_mem turned from
/// sorted to hashed).
const NEUTRAL_SETTINGS: &[&str] = &[
    "application_name",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "jit",
    "maintenance_work_mem",
    "temp_buffers",
    "client_min_messages",
    "search_path",
    "random_page_cost",
    "seq_page_cost",
    "effective_cache_size",
    "effective_io_concurrency",
    "synchronous_commit",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "default_transaction_deferrable",
    "transaction_isolation",
    "transaction_read_only",
    "transaction_deferrable",
    "transaction",
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "row_security",
    "default_statistics_target",
];
/// Prefixes of more such settings (`jit_above_cost`, `log_min_duration_statement`, …; `enable_*` and
/// the `cpu_*` costs are forbidden outright).
const NEUTRAL_PREFIXES: &[&str] = &["enable_", "jit_", "cpu_", "log_", "track_"];

/// The planner's levers among the settings that count (see NEUTRAL_SETTINGS): they change the
/// order a plan reads rows in, never how a value prints.
const PLANNER_LEVERS: &[&str] = &[
    "work_mem",
    "hash_mem_multiplier",
    "max_parallel_workers_per_gather",
    "max_parallel_workers",
    "parallel_leader_participation",
    "min_parallel_table_scan_size",
    "min_parallel_index_scan_size",
    "from_collapse_limit",
    "join_collapse_limit",
    "plan_cache_mode",
    "constraint_exclusion",
    "cursor_tuple_fraction",
    "geqo",
    "geqo_threshold",
    "geqo_effort",
    "geqo_pool_size",
    "geqo_generations",
    "geqo_selection_bias",
    "geqo_seed",
];

/// Whether `name` (lower-cased) is one of the planner's levers. A role's or database's default of
/// one still counts for filters, whose rows may follow the plan (round 229 BN1: a `work_mem` role
/// default let a view's `string_agg` over a GROUP BY show another campaign's caller), but not for
/// masks of printed values (round 228 BM2: every masked date of the login was refused for good).
pub fn is_planner_lever(name: &str) -> bool {
    // By name, not by prefix: the name is the agent's text, and a lever's reason shows it (round
    // 238 BW1: `set_config('geqo DE8937… Anna Schmidt', …)`).
    PLANNER_LEVERS.contains(&name)
}

/// How the reason a session's settings moved begins when all that moved is planner levers (see
/// `is_planner_lever`), set by the role's or database's defaults or by the session.
pub const LEVERS_ONLY: &str = "only the planner's settings moved, which change the order a plan reads rows in: ";

/// How the reason begins when what moved is the day order of an ISO DateStyle, which changes how
/// date input is read and no printed date (round 239 BX1: `ISO, DMY` refused every masked date).
pub const DAY_ORDER_ONLY: &str = "only the day order of DateStyle moved, which changes how dates are read: ";

/// A setting's name as a reason may show it: a name unscharf lists, else a phrase. The name is
/// the agent's text, and a reason reaches the audit trail in later refusals, where the statement
/// that set it is not there to scrub it by (round 237 BV1: `SET "+49 30 1234567" = 1`,
/// `set_config('plpgsql.de8937…', 'x', false)`).
pub fn setting_label(name: &str) -> &str {
    const LISTED: &[&str] = &[
        FLOAT_DIGITS,
        "bytea_output",
        "lc_time",
        "lc_monetary",
        "lc_numeric",
        "lc_messages",
        "default_text_search_config",
        "xmloption",
        "xmlbinary",
        "all",
    ];
    let listed = LISTED.contains(&name)
        || REPORTED_SETTINGS.contains(&name)
        || NEUTRAL_SETTINGS.contains(&name)
        || is_planner_lever(name);
    if name == "?" {
        // A DBA's function whose code changes settings (see `judge::setting_changes`).
        "any setting"
    } else if listed {
        name
    } else {
        "a setting unscharf does not list by name"
    }
}

/// The one setting that changes how floats print and nothing else a mask works on (pgjdbc sets it
/// after connecting unless told the server's version: round 234 BS1 refused every masked date and
/// bytea of such sessions).
pub const FLOAT_DIGITS: &str = "extra_float_digits";

/// How far a session's settings may have moved, by what they may change; each level includes the
/// ones before it. A filter counts any move; a mask of a printed value counts `FloatPrint` for
/// floats and `Anything` for every type whose text follows settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Moved {
    #[default]
    No,
    /// Only what prints no value differently: the planner's levers (the order rows are read in),
    /// or the day order of an ISO DateStyle (how date input is read).
    NoPrint,
    /// Only extra_float_digits besides: also how floats print.
    FloatPrint,
    /// Anything, as far as unscharf knows.
    Anything,
}

/// Why a session's settings may have moved, and how far. The level is decided where the reason
/// is written, from what moved, never read back from its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsMove {
    /// What the move may change (see `Moved`).
    pub level: Moved,
    /// What moved, in unscharf's words, for refusals: never a value or a name the agent chose.
    pub why: String,
}

impl SettingsMove {
    pub fn new(level: Moved, why: impl Into<String>) -> Self {
        SettingsMove { level, why: why.into() }
    }

    /// A change of setting `name` (lower-cased, as `setting_label` takes it), as `why` words it:
    /// extra_float_digits alone moves only floats; any other counts as anything.
    pub fn of_setting(name: &str, why: impl Into<String>) -> Self {
        let level = match name {
            FLOAT_DIGITS => Moved::FloatPrint,
            _ => Moved::Anything,
        };
        SettingsMove::new(level, why)
    }
}

/// How far `m` moved: `No` for none.
pub fn level(m: Option<&SettingsMove>) -> Moved {
    m.map_or(Moved::No, |m| m.level)
}

/// Of two moves, the one that says more moved: a session's narrow move must not hide a wider
/// one a statement adds (a planner lever of the role's defaults, then `SET bytea_output = escape;
/// SELECT scan …` in one message).
pub fn wider<'a>(a: Option<&'a SettingsMove>, b: Option<&'a SettingsMove>) -> Option<&'a SettingsMove> {
    if level(b) > level(a) {
        b
    } else {
        a
    }
}

/// Keeps in `slot` the wider of its move and `m` (see `wider`): a message's statements, one
/// after another.
pub fn widen(slot: &mut Option<SettingsMove>, m: SettingsMove) {
    if m.level > level(slot.as_ref()) {
        *slot = Some(m);
    }
}

/// Whether a SET, RESET or set_config of `name` (lower-cased; `all` for RESET ALL) may change
/// what a filter computes. A dotted name counts when `extension` says its prefix names an
/// extension or procedural language; other dotted names are custom settings.
pub fn moves_values(name: &str, extension: impl Fn(&str) -> bool) -> bool {
    match name.split_once('.') {
        Some((prefix, _)) => extension(prefix),
        None => !(NEUTRAL_SETTINGS.contains(&name) || NEUTRAL_PREFIXES.iter().any(|p| name.starts_with(p))),
    }
}

/// The first clock read in SQL text, as a word, or None.
pub fn clock_read_in(sql: &str) -> Option<&'static str> {
    let lower = sql.to_ascii_lowercase();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    let found = |w: &str, call: bool| {
        lower.match_indices(w).any(|(i, _)| {
            let before = i.checked_sub(1).map(|j| lower.as_bytes()[j]);
            let rest = &lower[i + w.len()..];
            let after = rest.as_bytes().first().copied();
            // A quoted name (`"now"()`) counts as the word.
            let rest = rest.strip_prefix('"').unwrap_or(rest).trim_start();
            !before.is_some_and(word) && !after.is_some_and(word) && (!call || rest.starts_with('('))
        })
    };
    // The clock first, for the refusal's message.
    CLOCK_CALLS
        .iter()
        .find(|w| found(w, true))
        .or_else(|| CLOCK_KEYWORDS.iter().find(|w| found(w, false)))
        .or_else(|| CLOCK_STRINGS.iter().find(|w| lower.contains(*w)))
        .or_else(|| LOCAL_TIME_CALLS.iter().find(|w| found(w, true)))
        .or_else(|| LOCAL_TIME_TYPES.iter().find(|w| found(w, false)))
        .copied()
}

/// A TimeZone as Postgres's zone files name it, case aside: the aliases of UTC are one zone
/// (pgjdbc sends the JVM's `UTC` to a server set to `Etc/UTC`).
fn zone(value: &str) -> String {
    let v = value.trim().to_ascii_lowercase();
    let bare = v.strip_prefix("etc/").unwrap_or(&v);
    match bare {
        "utc" | "uct" | "zulu" | "universal" | "gmt" | "gmt0" | "gmt+0" | "gmt-0" | "greenwich" => "utc".into(),
        _ => v,
    }
}

/// Whether a reported `value` of setting `name` (lower-cased) reads the clock as `default` does.
pub fn same_as_default(name: &str, value: &str, default: &str) -> bool {
    match name {
        "timezone" => zone(value) == zone(default),
        // `ISO, MDY` and `iso,mdy` are one style.
        _ => {
            let norm = |s: &str| s.to_ascii_lowercase().replace(' ', "");
            norm(value) == norm(default)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_are_found_as_words() {
        let cases: &[(&str, Option<&str>)] = &[
            ("(EXTRACT(hour FROM now()) >= 8::numeric)", Some("now")),
            (
                "((now())::time without time zone < '18:00:00'::time without time zone)",
                Some("now"),
            ),
            (
                "(to_char(CURRENT_TIMESTAMP, 'HH24'::text) < '18'::text)",
                Some("current_timestamp"),
            ),
            ("(contract_end >= CURRENT_DATE)", Some("current_date")),
            (
                "(date_part('hour', statement_timestamp()) < 18)",
                Some("statement_timestamp"),
            ),
            ("(x < ('now'::text)::timestamp with time zone)", Some("'now'")),
            ("(\"now\"() > since)", Some("now")),
            // Stored times made local.
            ("(EXTRACT(hour FROM created_at) < 18::numeric)", Some("extract")),
            ("((created_at)::date = '2026-11-30'::date)", Some("date")),
            ("(age(birth_date) > '18 years'::interval)", Some("age")),
            // A column named like the function, a comment's word, a longer name.
            ("(t.now > 1)", None),
            ("(snow(1) > 0 AND nowhere = 1 AND known = 2)", None),
            ("(current_date_of_contract > 1)", None),
            ("(campaign = 'stadtwerke'::text)", None),
        ];
        for (sql, want) in cases {
            assert_eq!(clock_read_in(sql), *want, "{sql}");
        }
    }

    #[test]
    fn the_wider_move_wins_whichever_comes_first() {
        let levers = SettingsMove::new(Moved::NoPrint, format!("{LEVERS_ONLY}work_mem"));
        let digits = SettingsMove::of_setting(FLOAT_DIGITS, "this statement changes (SET extra_float_digits)");
        let bytea = SettingsMove::of_setting("bytea_output", "changes (SET bytea_output)");
        assert_eq!(digits.level, Moved::FloatPrint);
        assert_eq!(bytea.level, Moved::Anything);
        // A name that ends like the one setting that moves floats alone is another setting.
        assert_eq!(
            SettingsMove::of_setting("my_extra_float_digits", "").level,
            Moved::Anything
        );
        assert_eq!(SettingsMove::of_setting("all", "").level, Moved::Anything);
        assert_eq!(level(None), Moved::No);
        for (a, b, want) in [
            (Some(&levers), Some(&bytea), &bytea),
            (Some(&bytea), Some(&levers), &bytea),
            (Some(&digits), Some(&bytea), &bytea),
            (Some(&levers), Some(&digits), &digits),
            (None, Some(&digits), &digits),
            (Some(&digits), None, &digits),
        ] {
            assert_eq!(wider(a, b), Some(want));
        }
        assert_eq!(wider(None, None), None);
        let mut slot = None;
        widen(&mut slot, digits.clone());
        widen(&mut slot, levers.clone());
        assert_eq!(slot.as_ref(), Some(&digits));
        widen(&mut slot, bytea.clone());
        assert_eq!(slot, Some(bytea));
    }

    #[test]
    fn only_listed_setting_names_are_shown() {
        for listed in [
            "bytea_output",
            "timezone",
            "work_mem",
            "geqo_seed",
            "extra_float_digits",
            "all",
        ] {
            assert_eq!(setting_label(listed), listed);
        }
        // Round 258 CQ4: a DBA's function that may change any setting.
        assert_eq!(setting_label("?"), "any setting");
        for chosen in [
            "+49 30 1234567",
            "plpgsql.de89370400440532013000",
            "geqo de89370400440532013000 anna schmidt",
            "anna_schmidt",
            "app.tenant",
        ] {
            assert!(!setting_label(chosen).contains(chosen), "{chosen}");
        }
    }

    #[test]
    fn the_defaults_compare_as_postgres_reads_them() {
        assert!(same_as_default("timezone", "UTC", "Etc/UTC"));
        assert!(same_as_default("timezone", "Europe/Berlin", "europe/berlin"));
        assert!(!same_as_default("timezone", "Pacific/Kiritimati", "Etc/UTC"));
        assert!(!same_as_default("timezone", "<+14>-14", "UTC"));
        assert!(same_as_default("datestyle", "ISO, MDY", "iso,mdy"));
        assert!(!same_as_default("datestyle", "German, DMY", "ISO, DMY"));
        let ext: std::collections::HashSet<String> = ["plpgsql".to_owned(), "pg_trgm".to_owned()].into();
        let moves = |n: &str| moves_values(n, |p| ext.contains(p));
        assert!(moves("timezone") && moves("all") && moves("default_text_search_config"));
        assert!(!moves("jit") && !moves("enable_seqscan") && !moves("app.tenant"));
        assert!(moves("pg_trgm.similarity_threshold") && moves("plpgsql.check_asserts"));
        // The planner's levers change the order rows are read in (round 179 Q1).
        for lever in [
            "work_mem",
            "hash_mem_multiplier",
            "max_parallel_workers_per_gather",
            "geqo_threshold",
        ] {
            assert!(moves(lever), "{lever}");
        }
        assert!(!moves("statement_timeout") && !moves("application_name"));
    }
}
