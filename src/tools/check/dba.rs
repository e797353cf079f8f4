//! `check --live` on a DBA's objects: what they make unscharf refuse (code Postgres runs
//! unnamed, foreign tables, rules) and what they show that the policy may not mean to (listed
//! functions reading protected columns, views under looser rules than their tables).

use std::collections::{HashMap, HashSet};

use super::{finding, Report};
use crate::catalog::{Catalog, RelKind};
use crate::policy::{ColumnRule, PolicySet, QName};

/// What a DBA's objects make unscharf refuse, which a DBA would otherwise learn from agents: code
/// Postgres runs without a statement naming it, and columns whose type runs such code.
pub(super) fn dba_code(policy: &PolicySet, catalog: &Catalog, report: &mut Report) {
    for (func, what) in &catalog.implicit_code {
        let mut holding: Vec<&str> = policy
            .purposes
            .values()
            .filter(|p| !p.functions.contains(func))
            .map(|p| p.name.as_str())
            .collect();
        holding.sort_unstable();
        if !holding.is_empty() {
            report.findings.push(finding(
                "warning",
                format!(
                    "the database has {what} that runs {func}: purposes {} refuse every statement that evaluates an expression until they list {func} in functions (or the object is dropped)",
                    holding.join(", ")
                ),
            ));
        }
    }
    for (id, r) in catalog.relations() {
        for (other, c) in policy.campaigns_behind(catalog, id) {
            report.findings.push(finding(
                "warning",
                format!(
                    "rows of {} come from {other} (campaign {}): every statement on {} is refused as cross_campaign",
                    r.name, c.name, r.name
                ),
            ));
        }
    }
    // One pass over the granted relations: foreign tables behind them (round 98), and columns
    // of types a DBA's code guards.
    let (mut foreign, mut guarded, mut ruled): (Vec<String>, Vec<String>, Vec<String>) =
        (Vec::new(), Vec::new(), Vec::new());
    for p in policy.purposes.values() {
        for (q, grant) in &p.tables {
            let Some(id) = catalog.lookup(q) else { continue };
            let r = catalog.rel(id);
            if let Some(ft) = catalog.foreign_behind(r.oid) {
                foreign.push(format!("{q} (through {})", ft.name));
            }
            let rules = catalog
                .reached(r.oid)
                .filter_map(|o| catalog.write_rules.get(&o))
                .flatten();
            if !grant.write.is_empty() {
                ruled.extend(rules.map(|rule| format!("{q} (rule {rule})")));
            }
            for c in &r.columns {
                if catalog.user_cast_type_oids.contains(&c.type_oid) {
                    guarded.push(format!("{q}.{}", c.name));
                }
            }
        }
    }
    warn_about(
        report,
        ruled,
        "rules rewrite the writes of these writable relations into statements unscharf cannot judge, so every write to them is refused",
    );
    warn_about(
        report,
        foreign,
        "rows of these granted relations come from foreign tables, whose source unscharf cannot judge, so every statement on them is refused",
    );
    warn_about(
        report,
        guarded,
        "columns whose type runs a DBA's function (a CREATE CAST, a domain's CHECK or a default operator class) can only be selected as they are, not written, compared or sorted",
    );
}

/// One warning naming each of `what` once, in order, if there is any.
fn warn_about(report: &mut Report, mut what: Vec<String>, why: &str) {
    what.sort_unstable();
    what.dedup();
    if !what.is_empty() {
        report
            .findings
            .push(finding("warning", format!("{why}: {}", what.join(", "))));
    }
}

/// Granted views and materialized views that show, under a rule less strict than the purpose's
/// own, a column of a granted table behind them: the view's rule is what applies, so `columns:
/// all` on a view over the customers shows the phone the purpose masks on the table (round 115).
/// Columns are matched by name, since unscharf does not map a view's columns to its tables'.
pub fn views_over_protected(policy: &PolicySet, catalog: &Catalog, report: &mut Report) {
    for (p, q, view_grant, view) in granted_views(policy, catalog) {
        let mut shown: Vec<String> = Vec::new();
        for base in catalog.behind(view.oid).into_iter().filter_map(|o| catalog.by_oid(o)) {
            let b = catalog.rel(base);
            let Some(base_grant) = policy.shared.get(&b.name).or_else(|| p.tables.get(&b.name)) else {
                continue;
            };
            for c in &view.columns {
                let (theirs, ours) = (base_grant.rule(&c.name), view_grant.rule(&c.name));
                if b.column_index(&c.name).is_some()
                    && !theirs.is_allow()
                    && ours != theirs
                    && !matches!(ours, ColumnRule::Drop)
                {
                    shown.push(format!("{} ({ours} there, {theirs} on {})", c.name, b.name));
                }
            }
        }
        if !shown.is_empty() {
            report.findings.push(finding(
                "warning",
                format!(
                    "purpose {} reads {q} under rules other than those of the tables behind it: {}; the view's rules are the ones applied",
                    p.name,
                    shown.join(", ")
                ),
            ));
        }
    }
}

/// Granted views and materialized views whose query reads a column that the purpose may not read
/// as it is on the granted or shared table it comes from: the view's rules apply, so the rows it
/// shows can follow that column (`WHERE phone LIKE '+49 30%'`), and so can a row-level security
/// policy that reads the view (round 248 CG1). Columns the view shows are `views_over_protected`'s.
pub fn views_filtering_on_protected(policy: &PolicySet, catalog: &Catalog, report: &mut Report) {
    for (p, q, _, view) in granted_views(policy, catalog) {
        let mut read: Vec<String> = std::iter::once(view.oid)
            .chain(catalog.behind(view.oid))
            .flat_map(|v| catalog.view_column_reads.get(&v).into_iter().flatten())
            .filter_map(|&(base, attnum)| {
                let b = catalog.rel(catalog.by_oid(base)?);
                let column = &b.columns[b.attnum_index(attnum)?];
                let rule = policy
                    .shared
                    .get(&b.name)
                    .or_else(|| p.tables.get(&b.name))?
                    .rule(&column.name);
                let shown = view.column_index(&column.name).is_some();
                (!rule.is_allow() && !shown).then(|| format!("{}.{} ({rule})", b.name, column.name))
            })
            .collect();
        read.sort();
        read.dedup();
        if !read.is_empty() {
            report.findings.push(finding(
                "warning",
                format!(
                    "purpose {} reads view {q}, whose query reads {} without showing it: the view's rules apply, so which rows it shows can follow that column, for the agent and for a row-level security policy that reads the view",
                    p.name,
                    read.join(", ")
                ),
            ));
        }
    }
}

/// Every view and materialized view each purpose is granted, by purpose and then by name, with
/// the grant: what the view checks here look at.
fn granted_views<'a>(
    policy: &'a PolicySet,
    catalog: &'a Catalog,
) -> impl Iterator<
    Item = (
        &'a crate::policy::Purpose,
        &'a QName,
        &'a crate::policy::TableGrant,
        &'a crate::catalog::Relation,
    ),
> + 'a {
    policy.purposes.values().flat_map(move |p| {
        let mut granted: Vec<(&QName, &crate::policy::TableGrant)> = p.tables.iter().collect();
        granted.sort_by_key(|(q, _)| *q);
        granted.into_iter().filter_map(move |(q, g)| {
            let view = catalog.rel(catalog.lookup(q)?);
            matches!(view.kind, RelKind::View | RelKind::MaterializedView).then_some((p, q, g, view))
        })
    })
}

/// A granted view over rows the purpose may not read, without security_barrier: every statement on
/// it is refused (a condition could run on the rows it hides first, round 134).
pub fn views_without_barrier(policy: &PolicySet, catalog: &Catalog, report: &mut Report) {
    for (p, q, _, view) in granted_views(policy, catalog).filter(|(_, _, _, v)| v.kind == RelKind::View && !v.barrier) {
        let readable = |b: &crate::catalog::Relation| {
            b.is_system() || policy.shared.contains_key(&b.name) || p.tables.contains_key(&b.name)
        };
        let hidden: Vec<String> = catalog
            .view_bases
            .get(&view.oid)
            .into_iter()
            .flatten()
            .filter_map(|o| catalog.by_oid(*o).map(|id| catalog.rel(id)))
            .filter(|b| !readable(b))
            .map(|b| b.name.to_string())
            .collect();
        if !hidden.is_empty() {
            report.findings.push(finding(
                "warning",
                format!(
                    "purpose {} reads view {q}, which shows rows of {} (not granted to it) and is not a security_barrier view: every statement on it is refused until `ALTER VIEW {q} SET (security_barrier = true)`",
                    p.name,
                    hidden.join(", ")
                ),
            ));
        }
    }
}

/// Views a purpose reads that read a table with row-level security as a role its policies do not
/// apply to (see `Catalog::rls_skipped`): agents see every row of the table through them, which
/// the DBA may mean (a dashboard of counts) or not (round 244 CC1: a superuser's view of tickets
/// kept per agent showed each agent the others').
pub fn views_past_row_security(policy: &PolicySet, catalog: &Catalog, report: &mut Report) {
    for (p, q, _, view) in granted_views(policy, catalog).filter(|(_, _, _, v)| v.kind == RelKind::View) {
        let mut skipped: Vec<String> = std::iter::once(view.oid)
            .chain(catalog.behind(view.oid))
            .flat_map(|v| catalog.rls_skipped.get(&v).into_iter().flatten())
            .map(|(table, owner)| {
                let table = catalog
                    .by_oid(*table)
                    .map_or_else(|| table.to_string(), |t| catalog.rel(t).name.to_string());
                format!("{table} (read as {owner})")
            })
            .collect();
        skipped.sort();
        skipped.dedup();
        if !skipped.is_empty() {
            report.findings.push(finding(
                "warning",
                format!(
                    "purpose {} reads view {q}, which reads {} with row-level security as a role its policies do not apply to: agents see every row through it. If they should see only their own, `ALTER VIEW {q} SET (security_invoker = true)` (or FORCE ROW LEVEL SECURITY on a table the view's owner owns)",
                    p.name,
                    skipped.join(", ")
                ),
            ));
        }
    }
}

/// Listed functions whose body names a column the purpose may not read as it is, or a relation
/// outside the purpose. Listing a function trusts everything it reads: a trigger that fills a
/// ticket's note from the customer's phone shows the phone in clear to whoever reads the note
/// (round 111). `bodies` are the source texts of functions in SQL-level languages; the scan is by
/// word (every protected column of a table it names when it holds a `*`), so it warns about names
/// in comments too, and misses names the body builds at run time.
/// Of those in `unpinned` (no `SET search_path` of their own), it names those whose body names
/// a table by a name several schemas have: the agent's search_path picks which one it reads
/// (round 141: `SET search_path = zeitung` made a listed `due_callbacks()` read zeitung's
/// callbacks).
pub fn listed_bodies(
    policy: &PolicySet,
    catalog: &Catalog,
    bodies: &HashMap<QName, String>,
    unpinned: &HashSet<QName>,
    report: &mut Report,
) {
    for p in policy.purposes.values() {
        let mut functions: Vec<&QName> = p.functions.iter().collect();
        functions.sort();
        for f in functions {
            row_results(p, f, policy, catalog, report);
            let Some(body) = bodies.get(f) else { continue };
            let words = words_of(body);
            let tokens = tokens_of(body);
            let mut named: Vec<String> = Vec::new();
            for (_, r) in catalog.relations() {
                if r.is_system() || !words.contains(&r.name.name.to_lowercase()) {
                    continue;
                }
                let whole = body.contains('*') || whole_row_use(&tokens, &r.name.name.to_lowercase());
                match policy.shared.get(&r.name).or_else(|| p.tables.get(&r.name)) {
                    None => named.push(format!("{} (not granted)", r.name)),
                    // A `*` (or what may be one) reads every column without naming it (round
                    // 181 F2: `RETURNS SETOF customers … SELECT *` returned them all in clear), and
                    // so does a whole row (round 199 AJ4: `to_jsonb(c)`).
                    Some(grant) => named.extend(
                        r.columns
                            .iter()
                            .filter(|c| {
                                !grant.rule(&c.name).is_allow() && (whole || words.contains(&c.name.to_lowercase()))
                            })
                            .map(|c| format!("{}.{} ({})", r.name, c.name, grant.rule(&c.name))),
                    ),
                }
            }
            if !named.is_empty() {
                named.sort_unstable();
                report.findings.push(finding(
                    "warning",
                    format!(
                        "purpose {} lists {f}, whose body names {}: what it returns, or writes as a trigger, reaches the purpose's agents unmasked; list it only if that is intended",
                        p.name,
                        named.join(", ")
                    ),
                ));
            }
            if !unpinned.contains(f) {
                continue;
            }
            let lower = body.to_lowercase();
            let mut steerable: Vec<String> = words
                .iter()
                .filter(|w| unqualified_in(&lower, w))
                .filter_map(|w| {
                    let mut schemas: Vec<&str> = catalog
                        .named(w)
                        .iter()
                        .map(|&id| catalog.rel(id))
                        .filter(|r| !r.is_system())
                        .map(|r| r.name.schema.as_str())
                        .collect();
                    schemas.sort_unstable();
                    (schemas.len() > 1).then(|| format!("{w} ({})", schemas.join(", ")))
                })
                .collect();
            if !steerable.is_empty() {
                steerable.sort_unstable();
                report.findings.push(finding(
                    "warning",
                    format!(
                        "purpose {} lists {f}, which has no search_path of its own and names {}: a name without its schema resolves on the agent's search_path, which the agent may set (`SET search_path = …`) to read another schema's table; qualify the names or `ALTER FUNCTION {f} SET search_path = …`",
                        p.name,
                        steerable.join(", ")
                    ),
                ));
            }
        }
    }
}

/// A listed function whose result type holds the row type of a table with columns the purpose
/// may not read as they are: the proxy refuses every call of it (round 197 AH1), whatever its
/// body looks like (`SELECT c FROM customers c` names no column).
fn row_results(p: &crate::policy::Purpose, f: &QName, policy: &PolicySet, catalog: &Catalog, report: &mut Report) {
    let Some(oids) = catalog.row_results.get(f) else { return };
    for r in oids
        .iter()
        .filter_map(|&oid| catalog.by_oid(oid))
        .map(|id| catalog.rel(id))
    {
        let protected: Vec<String> = match policy.shared.get(&r.name).or_else(|| p.tables.get(&r.name)) {
            None => vec!["not granted".to_owned()],
            Some(grant) => r
                .columns
                .iter()
                .filter(|c| !c.dropped && !grant.rule(&c.name).is_allow())
                .map(|c| format!("{} ({})", c.name, grant.rule(&c.name)))
                .collect(),
        };
        if !protected.is_empty() {
            report.findings.push(finding(
                "warning",
                format!(
                    "purpose {} lists {f}, whose result or arguments carry whole rows of {} ({}): unscharf refuses every call of it for this purpose; take and return only the columns the purpose may read",
                    p.name,
                    r.name,
                    protected.join(", ")
                ),
            ));
        }
    }
}

/// Whether `word` stands in `text` as a name of its own, not after `schema.`.
fn unqualified_in(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| part(c) || c == '.' || c == '"') && !after.is_some_and(part)
    })
}

/// The lower-cased words of a function body (identifiers, quoted or not).
/// The body's words (lower-cased) and single punctuation characters, in order.
fn tokens_of(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in body.chars() {
        if c.is_alphanumeric() || c == '_' || c == '$' {
            word.extend(c.to_lowercase());
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether the body may use whole rows of `table`: `TABLE t`, `t%ROWTYPE`, or the table's name
/// or an alias given it (`FROM t c`, `FROM t AS c`) standing alone, not before a `.` (`SELECT c`,
/// `to_jsonb(c)`, `array_agg(t)`). By word, so it may warn where no whole row is used.
fn whole_row_use(tokens: &[String], table: &str) -> bool {
    const NOT_ALIASES: &[&str] = &[
        "where",
        "join",
        "on",
        "using",
        "limit",
        "offset",
        "order",
        "group",
        "having",
        "window",
        "union",
        "intersect",
        "except",
        "for",
        "loop",
        "left",
        "right",
        "full",
        "inner",
        "cross",
        "natural",
        "into",
        "returning",
        "set",
        "values",
        "select",
        "from",
        "then",
        "when",
        "end",
        "lateral",
        "tablesample",
    ];
    let mut names = vec![table.to_owned()];
    for (i, t) in tokens.iter().enumerate() {
        if t != table {
            continue;
        }
        // The word before the name, past its schema.
        let start = if i >= 2 && tokens[i - 1] == "." { i - 2 } else { i };
        if start > 0 && tokens[start - 1] == "table" || tokens.get(i + 1).is_some_and(|n| n == "%") {
            return true;
        }
        let mut j = i + 1;
        if tokens.get(j).is_some_and(|n| n == "as") {
            j += 1;
        }
        if let Some(alias) = tokens.get(j) {
            let word = alias.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$');
            if word && !NOT_ALIASES.contains(&alias.as_str()) {
                names.push(alias.clone());
            }
        }
    }
    tokens.iter().enumerate().any(|(i, t)| {
        names.contains(t)
            && tokens.get(i + 1).is_none_or(|n| n != ".")
            && (i == 0 || tokens[i - 1] != ".")
            // The name where it is brought in (`FROM customers c`, `… AS c`) is not a use.
            && !(i > 0 && (tokens[i - 1] == "from" || tokens[i - 1] == "join" || tokens[i - 1] == "as" || tokens[i - 1] == "update" || tokens[i - 1] == "into"))
            && !(t != table && i > 0 && tokens[i - 1] == table)
    })
}

fn words_of(body: &str) -> std::collections::HashSet<String> {
    body.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{tokens_of, whole_row_use};

    #[test]
    fn whole_rows_in_bodies_are_seen_by_word() {
        let uses = |body: &str| whole_row_use(&tokens_of(body), "customers");
        for body in [
            "SELECT c FROM stadtwerke.customers c WHERE c.customer_no = p_no",
            "SELECT to_jsonb(c) FROM stadtwerke.customers AS c",
            "SELECT array_agg(customers) FROM customers",
            "BEGIN FOR r IN TABLE stadtwerke.customers LOOP RETURN NEXT r; END LOOP; END",
            "DECLARE r stadtwerke.customers%ROWTYPE; BEGIN RETURN r; END",
            "SELECT row_to_json(x)::text FROM stadtwerke.customers x JOIN stadtwerke.tickets t USING (customer_no)",
        ] {
            assert!(uses(body), "{body}");
        }
        for body in [
            "SELECT c.name FROM stadtwerke.customers c WHERE c.customer_no = p_no",
            "SELECT name FROM stadtwerke.customers WHERE customer_no = p_no",
            "SELECT count(*) FROM customers JOIN tickets ON customers.customer_no = tickets.customer_no",
            "UPDATE stadtwerke.customers SET city = p_city WHERE customer_no = p_no",
        ] {
            assert!(!uses(body), "{body}");
        }
    }
}
