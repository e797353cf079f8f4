//! search_path as the DBA's code will resolve names on it: no path may make a name that code
//! uses mean another campaign's table (rounds 141, 144, 145 and 147).

use super::DecideCtx;
use crate::analyze::facts::StatementFacts;
use crate::catalog::Catalog;
use crate::policy::{PolicySet, Purpose, Reason, Refusal};
use ahash::AHashSet as HashSet;

/// A schema whose tables belong to a campaign the purpose is granted none of, and that holds none
/// the purpose may read: another campaign's schema, whatever code of the DBA's names.
fn foreign_schema<'p>(policy: &'p PolicySet, purpose: &Purpose, catalog: &Catalog, schema: &str) -> Option<&'p str> {
    let mut other = None;
    for (_, r) in catalog.live_relations() {
        if r.name.schema != schema || r.is_system() {
            continue;
        }
        if policy.shared.contains_key(&r.name) {
            return None;
        }
        match policy.campaign_index(&r.name) {
            Some(_) if purpose.tables.contains_key(&r.name) => return None,
            Some(c) => other = other.or(Some(policy.campaigns[c].name.as_str())),
            None => {}
        }
    }
    other
}

/// Why a search_path may not be the session's: it names another campaign's schema, or a table name the DBA's code uses would resolve on
/// it, unqualified, to a table of a campaign the purpose has no grant in (see steered_code). A
/// shared table or one of the purpose's beside it in the same schema does not excuse it, only one
/// of the same name earlier on the path (round 145: `public` held the shared postcodes and
/// zeitung's callbacks). Names no code of the DBA's holds resolve only in the agent's own
/// statements, which are judged as they resolve; but where some of that code builds SQL at run
/// time, any name may be one, so on a path the agent chose (`chosen`: by SET, set_config or the
/// startup packet) every name counts (round 147: `'callbacks_' || to_char(now(), 'YYYY_MM')`).
/// A path the DBA set for the role is not the agent's doing.
/// Judged at login too, since `RESET search_path` brings the startup value back where unscharf no
/// longer knows the path (round 144).
pub fn foreign_path(
    policy: &PolicySet,
    purpose: &Purpose,
    catalog: &Catalog,
    path: &[String],
    chosen: bool,
) -> Option<String> {
    let names = match chosen && catalog.dynamic_code {
        true => Names::Every,
        false => Names::Words,
    };
    foreign_path_for(policy, purpose, catalog, path, names)
}

/// Which table names on a path the DBA's code may resolve.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    /// Those its words hold.
    Words,
    /// Those too that begin with a word (of three letters or more) of its code that builds SQL at
    /// run time: a name built from a prefix and a date (round 150: `SET TimeZone` moved `now()`
    /// into the next month, whose table in `public` was another campaign's).
    Prefixed,
    Every,
}

fn counts(catalog: &Catalog, names: Names, name: &str) -> bool {
    let name = name.to_lowercase();
    match names {
        Names::Every => true,
        Names::Words => catalog.code_words.contains(&name),
        Names::Prefixed => {
            catalog.code_words.contains(&name)
                || catalog.dynamic_words.iter().any(|w| match w.chars().count() {
                    // Built from a prefix, or with one in the middle (round 153:
                    // `to_char(now(), 'mon') || '_callbacks'`).
                    3 => name.starts_with(w.as_str()),
                    n => n > 3 && name.contains(w.as_str()),
                })
        }
    }
}

fn foreign_path_for(
    policy: &PolicySet,
    purpose: &Purpose,
    catalog: &Catalog,
    path: &[String],
    names: Names,
) -> Option<String> {
    if let Some(why) = path.iter().find_map(|schema| {
        foreign_schema(policy, purpose, catalog, schema).map(|c| {
            format!(
                "search_path names schema {schema}, which holds tables of campaign {c} and none of purpose {}: code of the DBA's would resolve its names there",
                purpose.name
            )
        })
    }) {
        return Some(why);
    }
    let granted: Vec<usize> = purpose.tables.keys().filter_map(|n| policy.campaign_index(n)).collect();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for schema in path {
        for (_, r) in catalog.live_relations() {
            if r.name.schema != *schema
                || r.is_system()
                || !counts(catalog, names, &r.name.name)
                || !seen.insert(r.name.name.as_str())
            {
                continue;
            }
            if policy.shared.contains_key(&r.name) {
                continue;
            }
            match policy.campaign_index(&r.name) {
                Some(c) if !granted.contains(&c) => {
                    return Some(format!(
                        "search_path names schema {schema}, where the unqualified name {} means {}, a table of campaign {} and none of purpose {}: code of the DBA's would resolve its names there",
                        r.name.name, r.name, policy.campaigns[c].name, purpose.name
                    ))
                }
                _ => {}
            }
        }
    }
    None
}

/// A DBA's function resolves the names its code does not qualify on the session's search_path,
/// which an agent sets (round 141: after `SET search_path = zeitung, public`, a listed
/// `due_callbacks()` read zeitung's callbacks). So search_path may not name another campaign's
/// schema: not by SET or set_config (whose value the analysis requires to be a literal), and not
/// (from the startup packet, say) while the DBA's code runs.
pub(super) fn steered_code(f: &StatementFacts, cx: &DecideCtx<'_>) -> Result<(), Refusal> {
    use crate::analyze::facts::PathChange;
    let set = match &f.path_change {
        Some(PathChange::To(p)) => p.as_slice(),
        _ => &[],
    };
    // Where search_path is not known (after a set_config in a statement that also ran DBA code,
    // or two values in one statement), the DBA's code may resolve its names anywhere (round 149).
    if f.runs_dba_code && f.paths.is_empty() {
        return Err(Refusal::new(
            Reason::ForbiddenSetting,
            "search_path is not known here, and code of the DBA's would resolve its names on it: set it to a literal value first".to_owned(),
        ));
    }
    let every = match cx.catalog.dynamic_code {
        true => Names::Every,
        false => Names::Words,
    };
    let chosen = std::iter::once(set)
        .chain(f.set_paths.iter().map(Vec::as_slice))
        .map(|p| (p, every));
    // A path in force is the agent's doing unless it is the one the DBA set for the role (round
    // 150: `SET search_path = public` while no code of the DBA's built names, then a deployment).
    // Code that builds names at run time builds names the agent may steer without touching the
    // path (round 150: `SET TimeZone`), so on the DBA's path too, names it may build count.
    // A name setter is code of the DBA's, so only a statement that runs such code can call one;
    // the guard keeps the walk off every other statement's judgement.
    let by_name = (f.runs_dba_code && runs_code_of(f, cx.catalog, &cx.catalog.name_setters))
        || f.writes_into(cx.catalog, &cx.catalog.name_setting_tables);
    if by_name {
        return Err(Refusal::new(
            Reason::ForbiddenSetting,
            "the statement runs code of the DBA's that may set a setting whose name it is given when it runs (set_config with a name that is not a literal, pg_settings, or SQL built at run time in code that says SET or RESET): the agent could set any setting through it, those unscharf refuses included (name the setting in the function's code, and build no SQL there)".to_owned(),
        ));
    }
    let dynamic = f.runs_dba_code && runs_code_of(f, cx.catalog, &cx.catalog.dynamic_functions);
    if dynamic && runs_code_of(f, cx.catalog, &cx.catalog.steerable_functions) {
        return Err(Refusal::new(
            Reason::ForbiddenFunction,
            "the statement runs code of the DBA's that builds SQL at run time from what the session can set to anything (a setting, its own query text, its LISTEN channels, cursors or prepared statements), or from a name spelled U&\"…\", which unscharf does not decode: the agent would choose what it runs".to_owned(),
        ));
    }
    let in_force = f.paths.iter().filter(|_| f.runs_dba_code).map(|p| {
        let names = match (cx.dba_path != Some(p.as_slice()), dynamic) {
            (true, _) => every,
            (false, true) => Names::Prefixed,
            (false, false) => Names::Words,
        };
        (p.as_slice(), names)
    });
    for (path, names) in chosen.chain(in_force) {
        if let Some(why) = foreign_path_for(cx.policy, cx.purpose, cx.catalog, path, names) {
            return Err(Refusal::new(
                Reason::ForbiddenSetting,
                format!("{why} (RESET search_path)"),
            ));
        }
    }
    Ok(())
}

/// Whether the statement runs one of `functions`, itself or behind a relation it reads or writes.
fn runs_code_of(f: &StatementFacts, catalog: &Catalog, functions: &HashSet<crate::policy::QName>) -> bool {
    f.runs_function(catalog, |schema, name| {
        functions.contains(&crate::policy::QName::new(schema, name))
    })
}
