//! What the DBA's code does, read into a catalog snapshot: which functions and views read
//! settings, the clock or sequences, build SQL, change settings, handle cursors or keep the first
//! of several rows, followed through the calls between them, and what the views, policies and
//! triggers that call them therefore do.

use tokio_postgres::Row;

use super::live::CatalogError;
use super::{Catalog, HiddenCall};
use crate::policy::QName;

/// The rows of the snapshot's code queries (see `queries`), and what proves a lookup finds one row.
pub(super) struct CodeRows<'r> {
    /// DBA_CODE.
    pub dba_code: &'r [Row],
    /// HIDDEN_CALLS.
    pub hidden: &'r [Row],
    /// HIDDEN_SQL.
    pub hidden_sql: &'r [Row],
    /// DBA_OPERATORS_AND_CASTS.
    pub dba_ops: &'r [Row],
    /// USER_CAST_TYPES.
    pub cast_types: &'r [Row],
    /// ONE_ROW_KEYS and SET_RETURNING.
    pub lookups: &'r super::code_order::Lookups,
}

pub(super) fn read_code(catalog: &mut Catalog, rows: &CodeRows<'_>) -> Result<(), CatalogError> {
    let CodeRows {
        dba_code,
        hidden,
        hidden_sql,
        dba_ops,
        cast_types,
        lookups,
    } = *rows;
    let code: Vec<super::code::Code<'_>> = dba_code
        .iter()
        .map(|r| super::code::Code {
            name: QName::new(r.get(0), r.get(1)),
            source: r.get::<_, Option<&str>>(2).unwrap_or(""),
        })
        .collect();
    let callers = super::code::Callers::new(&code);
    catalog.code_writers = super::code::writers(&code)
        .into_iter()
        .map(|(table, (words, positional))| (table, (words.into_iter().collect(), positional)))
        .collect();
    let reads_settings = callers.closure(|c| crate::policy::decide::setting_read_in(c.source).is_some());
    let reads_clock = callers.closure(|c| crate::policy::decide::clock_read_in(c.source).is_some());
    // What a function reaches that `find` finds (a clock read, one of SETTING_READERS), for the
    // refusal's message.
    let first_in = |func: &QName, find: fn(&str) -> Option<&'static str>, otherwise: &'static str| {
        super::code::reached_reads(&code, func)
            .sources
            .iter()
            .find_map(|s| find(s))
            .unwrap_or(otherwise)
    };
    let clock = |func: &QName| first_in(func, crate::policy::decide::clock_read_in, "now");
    let reader = |func: &QName| first_in(func, crate::policy::decide::setting_read_in, "current_setting");
    let names_sequence: std::collections::HashSet<&QName> = dba_code
        .iter()
        .zip(&code)
        // A sequence named at run time (`nextval('case_no_' || year)`) is drawn from all the same
        // (round 147).
        .filter(|(r, c)| r.get::<_, bool>(3) || super::code_reads::draws_by_name(c.source))
        .map(|(_, c)| &c.name)
        .collect();
    let draws_numbers = callers.closure(|c| names_sequence.contains(&c.name));
    // Functions that keep whichever row a plan reads first, and the code that calls them (round
    // 183 T1): a row-level security policy calling one is refused like one that takes rows in
    // order itself.
    let first_rows: std::collections::HashMap<&QName, String> = dba_code
        .iter()
        .zip(&code)
        .filter_map(|(r, c)| {
            let language: &str = r.get::<_, Option<&str>>(4)?;
            let setof = r.get::<_, Option<bool>>(5).unwrap_or(false);
            let body = r.get::<_, Option<&str>>(6).unwrap_or("");
            super::code_order::takes_rows_in_order(language, setof, body, catalog, lookups).map(|why| (&c.name, why))
        })
        .collect();
    let takes_first = callers.closure(|c| first_rows.contains_key(&c.name));
    let first_why = |f: &QName| {
        first_rows
            .get(f)
            .cloned()
            .unwrap_or_else(|| "it calls code that keeps whichever row comes first".to_owned())
    };
    let on_write: Vec<(u32, QName)> = hidden
        .iter()
        .filter(|r| r.get::<_, bool>(4))
        .map(|r| (r.get(0), QName::new(r.get(1), r.get(2))))
        .collect();
    catalog.user_cast_type_oids = cast_types.iter().map(|r| r.get::<_, u32>(0)).collect();
    catalog.user_cast_types = cast_types.iter().map(|r| QName::new(r.get(1), r.get(2))).collect();
    let ops: Vec<(String, QName)> = dba_ops
        .iter()
        .map(|r| (r.get(0), QName::new(r.get(1), r.get(2))))
        .collect();
    let graph = super::code_reads::Graph::new(catalog, &code, &ops);
    let cascades = super::code_reads::cascades_into(catalog);
    catalog.function_writes = graph
        .function_writes(&callers, &on_write, &cascades)
        .into_iter()
        .collect();
    let (words, dynamic) = graph.table_words();
    catalog.code_words = words.into_iter().collect();
    catalog.dynamic_code = dynamic;
    catalog.dynamic_functions = callers.closure(super::code_reads::builds_sql).into_iter().collect();
    let mut setters = callers
        .closure(|c| super::code_reads::builds_sql(c) || super::code_reads::sets_settings(c.source))
        .into_iter()
        .collect();
    catalog.setting_tables =
        super::code_reads::close_over_writes(&mut setters, &on_write, &catalog.function_writes, &cascades);
    catalog.setting_functions = setters;
    let mut by_name = callers
        .closure(super::code_reads::sets_settings_by_name)
        .into_iter()
        .collect();
    catalog.name_setting_tables =
        super::code_reads::close_over_writes(&mut by_name, &on_write, &catalog.function_writes, &cascades);
    catalog.name_setters = by_name;
    catalog.cursor_functions = callers
        .closure(|c| super::code_reads::builds_sql(c) || super::code_order::handles_cursors(c.source))
        .into_iter()
        .collect();
    catalog.steerable_functions = catalog
        .dynamic_functions
        .iter()
        .filter(|f| reads_settings.contains(*f))
        .cloned()
        .collect();
    // With what they call: a helper may build the name (round 155).
    catalog.dynamic_words = catalog
        .dynamic_functions
        .iter()
        .flat_map(|f| super::code::reached_reads(&code, f).words)
        .collect();
    for row in hidden_sql {
        let (what, sql, on_write): (String, Option<&str>, bool) = (row.get(1), row.get(2), row.get(3));
        // pg_get_triggerdef and its kin return NULL for an object dropped since the snapshot
        // began (round 142's DDL beside a refresh made this panic).
        let Some(sql) = sql else {
            return Err(CatalogError::Changed(what));
        };
        if let Some(word) = crate::policy::decide::setting_read_in(sql) {
            catalog.hidden_calls.entry(row.get(0)).or_default().push(HiddenCall {
                func: QName::new("pg_catalog", word),
                what: what.clone(),
                on_write,
            });
        } else if let Some(through) = super::code::named_in(sql, &reads_settings) {
            // A view of the DBA's that reads a setting, named by a policy or another view.
            catalog.hidden_calls.entry(row.get(0)).or_default().push(HiddenCall {
                func: QName::new("pg_catalog", reader(through)),
                what: format!("{what}, through {through},"),
                on_write,
            });
        }
        // The clock and local times, which the session's settings shift (see
        // policy::decide::clock), in the text of a filter and of the code it names: triggers,
        // defaults and constraints run on what the agent writes anyway.
        if !on_write {
            let found = match crate::policy::decide::clock_read_in(sql) {
                Some(word) => Some((what.clone(), word)),
                None => super::code::named_in(sql, &reads_clock).map(|f| (format!("{what}, through {f},"), clock(f))),
            };
            if let Some((what, word)) = found {
                catalog
                    .session_filters
                    .entry(row.get(0))
                    .or_default()
                    .push((what, word.to_owned()));
            }
        }
        if let (true, Some(f)) = (
            what.starts_with("the row-level security policy "),
            super::code::named_in(sql, &takes_first),
        ) {
            let entry = catalog.order_filters.entry(row.get(0)).or_default();
            entry.push((format!("{what}, through {f},"), first_why(f)));
        }
        for name in crate::policy::decide::forbidden_calls_in(sql) {
            catalog.hidden_calls.entry(row.get(0)).or_default().push(HiddenCall {
                func: QName::new("pg_catalog", &name),
                what: what.clone(),
                on_write,
            });
        }
    }
    for row in hidden {
        let (func, what, on_write): (QName, String, bool) =
            (QName::new(row.get(1), row.get(2)), row.get(3), row.get(4));
        // The relations a policy's function reads, through the functions and views it calls:
        // judged as the policy's own reads (round 144: a helper read a session table the agents
        // write).
        if let Some(policy) = what.strip_prefix("the row-level security policy ") {
            let read = graph.policy_reads(&func);
            let entry = catalog.policy_columns.entry(row.get(0)).or_default();
            entry.extend(
                read.into_iter()
                    .map(|oid| (format!("{policy} (through {func})"), oid, 0)),
            );
        }
        if on_write {
            let read = graph.write_reads(row.get(0), &func);
            let entry = catalog.write_reads.entry(row.get(0)).or_default();
            entry.extend(read.into_iter().map(|oid| (format!("{what} (through {func})"), oid)));
        }
        if what.starts_with("the row-level security policy ") && takes_first.contains(&func) {
            let entry = catalog.order_filters.entry(row.get(0)).or_default();
            entry.push((format!("{what}, through {func},"), first_why(&func)));
        }
        if reads_clock.contains(&func) && !on_write {
            catalog
                .session_filters
                .entry(row.get(0))
                .or_default()
                .push((format!("{what}, through {func},"), clock(&func).to_owned()));
        }
        let calls = catalog.hidden_calls.entry(row.get(0)).or_default();
        if reads_settings.contains(&func) {
            calls.push(HiddenCall {
                func: QName::new("pg_catalog", reader(&func)),
                what: format!("{what}, through {func},"),
                on_write,
            });
        }
        calls.push(HiddenCall { func, what, on_write });
    }
    catalog.sequence_functions = draws_numbers.into_iter().collect();
    Ok(())
}
