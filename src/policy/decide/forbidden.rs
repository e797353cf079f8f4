//! What rule 7 and rule 9 name outright: settings a session may not change, catalogs that expose
//! other sessions or row values, and functions no purpose may call.

/// Settings a session may not change (rule 9); `unscharf.*` too.
pub const FORBIDDEN_SETTINGS: &[&str] = &[
    "standard_conforming_strings",
    "client_encoding",
    "role",
    "session_authorization",
    // Parse and plan trees sent to the client as LOG notices: a view's definition, and the
    // statement's constants, outside rule 11's redaction.
    "debug_print_parse",
    "debug_print_rewritten",
    "debug_print_plan",
    // GIN index scans return a random subset of large matches: a row filter that hides rows
    // through a GIN-indexed deny list (`NOT EXISTS … callers @> ARRAY[caller]`) hides fewer
    // (round 168 F2), whatever functions it calls.
    "gin_fuzzy_search_limit",
    // The planner's cost constants and size thresholds: where a plan changes as one is moved
    // tells the table's size in pages, which protected columns' values fill (round 170: a key
    // lookup switched between index and sequential scan at a seq_page_cost that gave the pages
    // of the tickets, whose notes qa_lead sees masked; the rows' order showed which).
    "seq_page_cost",
    "random_page_cost",
    "cpu_tuple_cost",
    "cpu_index_tuple_cost",
    "cpu_operator_cost",
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "min_parallel_table_scan_size",
    "min_parallel_index_scan_size",
    "effective_cache_size",
];

/// Whether a session may not change `name` (rule 9): the list above, and the planner's `enable_*`
/// switches, which turn a filter whose rows depend on the plan's order (`LIMIT` without a full
/// `ORDER BY`) to other rows at will (round 178 P4: `enable_seqscan = off` showed a hidden row).
pub fn is_forbidden_setting(name: &str) -> bool {
    FORBIDDEN_SETTINGS.contains(&name) || name.starts_with("enable_")
}

/// Catalog relations that expose row values or other sessions' query texts (rule 3).
pub const LEAKY_CATALOGS: &[&str] = &[
    // Every sequence's last value: how many rows each campaign's tables have had.
    "pg_sequences",
    "pg_stats",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
    "pg_statistic",
    "pg_statistic_ext_data",
    "pg_stat_activity",
    "pg_stat_statements",
    "pg_largeobject",
    // Every session's locks, advisory keys included: a channel between sessions.
    "pg_locks",
    "pg_prepared_xacts",
    // Activity counters (scans, tuples, blocks, progress, WAL): one campaign's session moves them
    // by amounts it chooses and another campaign's session reads them back, and they show the
    // other campaign's table sizes.
    "pg_stat_all_tables",
    "pg_stat_user_tables",
    "pg_stat_sys_tables",
    "pg_stat_xact_all_tables",
    "pg_stat_xact_user_tables",
    "pg_stat_xact_sys_tables",
    "pg_stat_all_indexes",
    "pg_stat_user_indexes",
    "pg_stat_sys_indexes",
    "pg_statio_all_tables",
    "pg_statio_user_tables",
    "pg_statio_sys_tables",
    "pg_statio_all_indexes",
    "pg_statio_user_indexes",
    "pg_statio_sys_indexes",
    "pg_statio_all_sequences",
    "pg_statio_user_sequences",
    "pg_statio_sys_sequences",
    "pg_stat_user_functions",
    "pg_stat_xact_user_functions",
    "pg_stat_database",
    "pg_stat_database_conflicts",
    "pg_stat_progress_analyze",
    "pg_stat_progress_basebackup",
    "pg_stat_progress_cluster",
    "pg_stat_progress_copy",
    "pg_stat_progress_create_index",
    "pg_stat_progress_vacuum",
    "pg_stat_bgwriter",
    "pg_stat_wal",
    "pg_stat_slru",
    "pg_stat_archiver",
    "pg_stat_replication_slots",
];

/// Catalog columns that count rows and pages of every table, another campaign's too: how many
/// customers it has, and (VACUUM and ANALYZE update them) how that changes. Drivers read them only
/// as plain result columns (pgjdbc's getIndexInfo), so every purpose gets them as NULL.
/// (relation, column, the relation's OID, the column's attnum), fixed by initdb.
pub const CATALOG_ESTIMATES: &[(&str, &str, u32, i16)] = &[
    ("pg_class", "relpages", 1259, 10),
    ("pg_class", "reltuples", 1259, 11),
    ("pg_class", "relallvisible", 1259, 12),
];

/// The OIDs of xid, cid, xid8, txid_snapshot and pg_snapshot (see analyze::operators::COUNTER_TYPES).
pub(super) const COUNTER_TYPE_OIDS: &[u32] = &[28, 29, 5069, 2970, 5038];

/// Functions that read files, run SQL given as text, reach other databases, act on other sessions
/// or leak into side channels (rule 7). A trailing `*` matches a prefix.
pub const FORBIDDEN_FUNCTIONS: &[&str] = &[
    "dblink*",
    "pg_read_*",
    "pg_ls_*",
    "pg_stat_file",
    "pg_file_*",
    "lo_*",
    "loread",
    "lowrite",
    "query_to_xml*",
    "cursor_to_xml*",
    "table_to_xml*",
    "schema_to_xml*",
    "database_to_xml*",
    "ts_stat",
    "ts_rewrite",
    "pg_notify",
    // Locks other sessions can list in pg_locks: their keys carry data between campaigns.
    // Unlocking one's own (asyncpg's pool reset calls pg_advisory_unlock_all) stays allowed.
    "pg_advisory_lock*",
    "pg_advisory_xact_lock*",
    "pg_try_advisory_*",
    // The functions behind the pg_stat_* views: the same counters, per relation OID.
    "pg_stat_get_*",
    // Whether another campaign's table has statistics yet (round 126).
    "pg_stat_have_stats",
    // A snapshot's name holds the backend slot and how many transactions it has run, kept from
    // the slot's previous session: another campaign's activity, or a channel (round 137).
    "pg_export_snapshot",
    // The last number any code of the session drew, from whichever sequence: after a write whose
    // trigger logs into a shared table with a serial id, it counts every campaign's logged writes
    // (round 141). RETURNING gives an insert's own key.
    "lastval",
    // Server-wide counters any session moves by amounts it chooses and every other reads:
    // transaction ids, WAL positions, relation and database sizes.
    "txid_current*",
    "pg_current_xact_id*",
    "pg_current_snapshot",
    "txid_status",
    "pg_xact_status",
    "pg_current_wal_*",
    "pg_last_wal_*",
    "pg_database_size",
    "pg_tablespace_size",
    // The same counters read another way (age('3'::xid) is the distance to the next id), and
    // casts to their types, which the analyzer records as calls of `::type`.
    "mxid_age",
    "age(xid)",
    "::*",
    "txid_snapshot*",
    "pg_snapshot*",
    "txid_visible_in_snapshot",
    "pg_visible_in_snapshot",
    "pg_xact_commit_timestamp*",
    "pg_last_committed_xact",
    "pg_get_multixact_members",
    "pg_control_*",
    // Other sessions' locks and who blocks whom (the functions behind pg_locks), prepared
    // transactions, and a row's update history by relation name (the name, a text, escapes rule 4).
    "pg_lock_status",
    "pg_blocking_pids",
    "pg_safe_snapshot_blocking_pids",
    "pg_isolation_test_session_is_blocked",
    "pg_prepared_xact",
    "currtid*",
    "pg_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_total_relation_size",
    "pg_stat_statements*",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile*",
    "pg_logical_*",
    "pg_replication_*",
    "pg_create_*",
    "pg_drop_replication_slot",
    "pg_copy_*",
    "pg_promote",
    "pg_switch_wal",
    "pg_backup_*",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_import_system_collations",
    "binary_upgrade_*",
    "pg_stat_reset*",
    "pg_log_backend_memory_contexts",
    "pg_current_logfile",
    // A type's input functions called by hand (TYPE_INPUTS), and the populate functions: they
    // run a domain's CHECK or a type's casts for a type named by value (round 31).
    "json_populate_record*",
    "jsonb_populate_record*",
    // Extensions' functions that run a query given as text (xml2, tablefunc) or read a table's raw
    // pages (pageinspect), wherever a DBA installs them (round 96).
    "xpath_table",
    "crosstab*",
    "connectby",
    "get_raw_page",
    "heap_page_item*",
    "tuple_data_split",
];

/// The forbidden functions and the session setters SQL text calls (a word before `(`), for text
/// unscharf does not analyze (a view's definition). A word in a string literal counts too: a
/// refusal, never a miss.
pub fn forbidden_calls_in(sql: &str) -> Vec<String> {
    calls_in(sql, |name| {
        is_forbidden_function(name) || SESSION_SETTERS.contains(&name)
    })
}

/// What reads the session's settings, which an agent sets as it likes (`SET app.campaign =
/// 'zeitung'`, `SET search_path`, `options`): a row-level security policy or view that keys its
/// rows on one hides nothing from the agent (rounds 136 and 138). Words, not calls:
/// `CURRENT_SCHEMA` takes no brackets, `pg_settings` is a view. (`application_name` is a setting
/// too, read through those or pg_stat_activity; as a word it is a common column name.)
pub const SETTING_READERS: &[&str] = &[
    "current_setting",
    "current_schema",
    "current_schemas",
    "pg_settings",
    // What pg_settings reads (round 141), and the sessions' application_name.
    "pg_show_all_settings",
    // Its C function, which a DBA's `LANGUAGE internal` function can name (round 159).
    "show_all_settings",
    "pg_stat_activity",
    "pg_stat_get_activity",
    // `EXECUTE 'SHOW app.campaign'` in a function (round 142).
    "show",
    // The C functions behind current_setting, which a DBA's `LANGUAGE internal` function can name
    // (round 155).
    "show_config_by_name",
    "show_config_by_name_missing_ok",
    // The statement's own text, which the agent writes (round 156: a tag in a comment).
    "current_query",
    "pg_stat_get_backend_activity",
    // Other state of the session the agent's statements set (round 157: a campaign's LISTEN
    // channel, a tag in a cursor's or prepared statement's text), with the functions behind the
    // views: prepared transactions' names, advisory locks, cached query texts, and the texts
    // pg_stat_statements keeps.
    "pg_listening_channels",
    "pg_cursors",
    "pg_cursor",
    "pg_prepared_statements",
    "pg_prepared_statement",
    "pg_prepared_xacts",
    "pg_prepared_xact",
    "pg_locks",
    "pg_lock_status",
    "pg_backend_memory_contexts",
    "pg_get_backend_memory_contexts",
    "pg_stat_statements",
    // The last number the session drew, which the agent moves with its own inserts, and the
    // time of day in the session's TimeZone (round 161: row-level security keyed on each).
    "lastval",
    "currval",
    "localtime",
    "localtimestamp",
    "current_time",
    "timeofday",
];

/// What SETTING_READERS' `word` reads, for refusal messages.
pub fn read_state(word: &str) -> &'static str {
    match word {
        "current_query" | "pg_stat_get_backend_activity" | "pg_stat_statements" => "the session's query text",
        "pg_listening_channels" => "the channels the session listens on",
        "pg_cursors" | "pg_cursor" => "the session's cursors",
        "pg_prepared_statements" | "pg_prepared_statement" => "the session's prepared statements",
        "pg_prepared_xacts" | "pg_prepared_xact" => "prepared transactions' names",
        "pg_locks" | "pg_lock_status" => "the locks sessions hold",
        "lastval" | "currval" => "the last number the session drew",
        "localtime" | "localtimestamp" | "current_time" | "timeofday" => "the time of day in the session's TimeZone",
        "pg_backend_memory_contexts" | "pg_get_backend_memory_contexts" => "the session's cached query texts",
        _ => "a setting",
    }
}

/// The first of SETTING_READERS that SQL text names, as a whole word.
pub fn setting_read_in(sql: &str) -> Option<&'static str> {
    let lower = sql.to_ascii_lowercase();
    // A `U&"…"` name may spell any of them (round 155: `U&"\0063urrent_setting"`).
    if lower.contains("u&\"") {
        return Some("current_setting");
    }
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    SETTING_READERS.iter().copied().find(|w| {
        lower.match_indices(w).any(|(i, _)| {
            let before = i.checked_sub(1).map(|j| lower.as_bytes()[j]);
            let after = lower.as_bytes().get(i + w.len()).copied();
            !before.is_some_and(word) && !after.is_some_and(word)
        })
    })
}

/// Built-in functions that change the session's settings for the statements after it (search_path
/// among them). An agent's own call is analyzed like `SET`; one in a DBA's view, default or policy
/// would move search_path where no statement shows it (round 119), so there it is refused.
pub const SESSION_SETTERS: &[&str] = &["set_config"];

/// The functions SQL text calls (a word before `(`) that `wanted` picks.
fn calls_in(sql: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let lower = sql.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    let mut found: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !word(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && word(bytes[i]) {
            i += 1;
        }
        // A quoted name (`"pg_ls_dir"(…)`) ends with its quote.
        let rest = lower[i..].strip_prefix('"').unwrap_or(&lower[i..]).trim_start();
        let name = &lower[start..i];
        if rest.starts_with('(') && wanted(name) && !found.iter().any(|f| f == name) {
            found.push(name.to_owned());
        }
    }
    found
}

/// A type's input functions, which take the type as a value (`domain_in('x', 'dom'::regtype,
/// -1)`) and so run a domain's CHECK that no cast shows: forbidden to agents (round 31), and code
/// of the DBA's that calls them may reach any table (round 159).
pub const TYPE_INPUTS: &[&str] = &[
    "domain_in",
    "domain_recv",
    "record_in",
    "record_recv",
    "array_in",
    "array_recv",
    "range_in",
    "range_recv",
    "multirange_in",
    "multirange_recv",
];

pub fn is_forbidden_function(name: &str) -> bool {
    TYPE_INPUTS.contains(&name)
        || FORBIDDEN_FUNCTIONS.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *p,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_in_sql_text() {
        assert_eq!(
            setting_read_in("(campaign = current_setting('app.campaign'::text, true))"),
            Some("current_setting")
        );
        assert_eq!(setting_read_in("(owner = CURRENT_SCHEMA)"), Some("current_schema"));
        assert_eq!(
            setting_read_in("(x IN (SELECT setting FROM pg_settings))"),
            Some("pg_settings")
        );
        assert_eq!(setting_read_in("(x = my_current_schema_copy)"), None);
        // Round 141: what pg_settings reads, called directly.
        assert_eq!(
            setting_read_in("(campaign = (SELECT s.setting FROM pg_catalog.pg_show_all_settings() s))"),
            Some("pg_show_all_settings")
        );
        assert_eq!(
            setting_read_in("pg_has_role(CURRENT_USER, campaign_role, 'MEMBER')"),
            None
        );
    }

    #[test]
    fn forbidden_calls_in_sql_text() {
        let sql = "SELECT query_to_xml ('select 1', true, false, ''), lower(x), \"pg_ls_dir\"(y), pg_ls_dir_x FROM t";
        assert_eq!(
            forbidden_calls_in(sql),
            vec!["query_to_xml".to_string(), "pg_ls_dir".to_string()]
        );
        assert!(forbidden_calls_in("SELECT lower(name), pg_ls_dir_x FROM t").is_empty());
    }
}
