//! `unscharf check`: validate config and policies; with `--live`, compare every table and column
//! they name with the upstream catalog, and list campaigns past their contract end that still hold rows.

use std::collections::HashMap;

use serde::Serialize;

mod dba;

use dba::dba_code;
pub use dba::{
    listed_bodies, views_filtering_on_protected, views_over_protected, views_past_row_security, views_without_barrier,
};

use crate::catalog::Catalog;
use crate::policy::{Columns, PolicySet, QName};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// `error` (exit 1), `warning` or `info`.
    pub level: String,
    pub what: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub policy_version: String,
    pub campaigns: Vec<CampaignSummary>,
    pub purposes: Vec<PurposeSummary>,
    pub shared: Vec<String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CampaignSummary {
    pub name: String,
    pub tables: Vec<String>,
    pub contract_ends: Option<String>,
    pub ended: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PurposeSummary {
    pub name: String,
    pub members: Vec<String>,
    pub tables: Vec<String>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.level == "error").count()
    }
}

fn finding(level: &str, what: String) -> Finding {
    Finding {
        level: level.to_owned(),
        what,
    }
}

/// The offline part: what the policies say.
pub fn summarize(policy: &PolicySet, today: chrono::NaiveDate) -> Report {
    let campaigns = policy
        .campaigns
        .iter()
        .map(|c| CampaignSummary {
            name: c.name.clone(),
            tables: c.tables.clone(),
            contract_ends: c.contract_ends.map(|d| d.to_string()),
            ended: c.ended(today),
        })
        .collect();
    let purposes = policy
        .purposes
        .values()
        .map(|p| {
            let mut tables: Vec<String> = p
                .tables
                .iter()
                .map(|(q, g)| {
                    let cols = match &g.columns {
                        Columns::All => "all columns".to_owned(),
                        Columns::Listed(m) => {
                            let mut v: Vec<String> = m.iter().map(|(c, r)| format!("{c}: {r}")).collect();
                            v.sort();
                            v.join(", ")
                        }
                    };
                    let write = if g.write.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; write: {}",
                            g.write.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(", ")
                        )
                    };
                    format!("{q} ({cols}{write})")
                })
                .collect();
            tables.sort();
            PurposeSummary {
                name: p.name.clone(),
                members: p
                    .members
                    .iter()
                    .map(|m| match m {
                        crate::policy::Member::Login(l) => l.clone(),
                        crate::policy::Member::Role(r) => format!("role:{r}"),
                    })
                    .collect(),
                tables,
            }
        })
        .collect();
    let mut shared: Vec<String> = policy.shared.keys().map(|q| q.to_string()).collect();
    shared.sort();
    let mut findings = Vec::new();
    for p in policy.purposes.values() {
        if p.members.is_empty() {
            findings.push(finding("warning", format!("purpose {} has no members", p.name)));
        }
    }
    findings.extend(policy.warnings.iter().map(|w| finding("warning", w.to_string())));
    Report {
        policy_version: policy.version.clone(),
        campaigns,
        purposes,
        shared,
        findings,
    }
}

/// The live part: tables and columns named by the policies, compared with the catalog.
pub fn compare(policy: &PolicySet, catalog: &Catalog, report: &mut Report) {
    let mut named: Vec<(QName, Option<&Columns>, String)> = Vec::new();
    for (q, g) in &policy.shared {
        named.push((q.clone(), Some(&g.columns), "shared.yaml".into()));
    }
    for p in policy.purposes.values() {
        for (q, g) in &p.tables {
            named.push((q.clone(), Some(&g.columns), format!("purpose {}", p.name)));
        }
    }
    for (q, cols, whence) in &named {
        let Some(id) = catalog.lookup(q) else {
            report.findings.push(finding(
                "error",
                format!("{q} ({whence}) does not exist in the database"),
            ));
            continue;
        };
        let rel = catalog.rel(id);
        if let Some(Columns::Listed(m)) = cols {
            for c in m.keys() {
                if rel.column_index(c).is_none() {
                    report.findings.push(finding(
                        "error",
                        format!("{q}.{c} ({whence}) does not exist in the database"),
                    ));
                }
            }
            let unlisted: Vec<&str> = rel
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .filter(|c| !m.contains_key(*c))
                .collect();
            if !unlisted.is_empty() {
                report.findings.push(finding(
                    "info",
                    format!("{q} ({whence}): unlisted, so dropped: {}", unlisted.join(", ")),
                ));
            }
        }
    }
    for c in &policy.campaigns {
        for pattern in &c.tables {
            if let Some(schema) = pattern.strip_suffix(".*") {
                if !catalog.has_schema(schema) {
                    report.findings.push(finding(
                        "error",
                        format!("campaign {}: schema {schema} does not exist", c.name),
                    ));
                }
            } else if let Ok(q) = QName::parse(pattern) {
                if catalog.lookup(&q).is_none() {
                    report.findings.push(finding(
                        "error",
                        format!("campaign {}: table {q} does not exist", c.name),
                    ));
                }
            }
        }
    }
    dba_code(policy, catalog, report);
    views_over_protected(policy, catalog, report);
    views_without_barrier(policy, catalog, report);
    views_past_row_security(policy, catalog, report);
    views_filtering_on_protected(policy, catalog, report);
    // Tables of a campaign that no purpose grants: nobody can use them (often intended, worth knowing).
    for (_, r) in catalog.relations() {
        if r.is_system() {
            continue;
        }
        if let Some(c) = policy.campaign_of(&r.name) {
            if !policy.purposes.values().any(|p| p.tables.contains_key(&r.name)) {
                report.findings.push(finding(
                    "info",
                    format!("{} (campaign {}) is granted to no purpose", r.name, c.name),
                ));
            }
        }
    }
}

/// Members and listed functions that do not exist: a misspelt login or role locks its agents out
/// at connection time, and a misspelt function is refused at the first call, however clean the
/// rest of the check looks (round 94). `roles` are the server's role names.
pub fn members_and_functions(
    policy: &PolicySet,
    catalog: &Catalog,
    roles: &std::collections::HashSet<String>,
    report: &mut Report,
) {
    for p in policy.purposes.values() {
        for m in &p.members {
            let (kind, name) = match m {
                crate::policy::Member::Login(n) => ("login", n),
                crate::policy::Member::Role(n) => ("role", n),
            };
            if !roles.contains(name) {
                report.findings.push(finding(
                    "error",
                    format!(
                        "purpose {}: member {kind} {name} does not exist in the database",
                        p.name
                    ),
                ));
            }
        }
        let mut functions: Vec<&QName> = p.functions.iter().collect();
        functions.sort();
        for f in functions {
            if !catalog.function_schemas(&f.name).contains(&f.schema) {
                report.findings.push(finding(
                    "error",
                    format!("purpose {}: function {f} does not exist in the database", p.name),
                ));
            }
        }
    }
}

/// Logins that are members of more than one purpose, by name or through roles: their clients
/// must name one with `unscharf.purpose`, or every connection is refused, which a reload would
/// otherwise only show when pools reconnect (round 116). `logins` maps each login to the roles it
/// is a member of (itself included).
/// The logins the files name, each a member of itself only: what is known without the server.
pub fn named_logins(policy: &PolicySet) -> HashMap<String, Vec<String>> {
    policy
        .purposes
        .values()
        .flat_map(|p| &p.members)
        .filter_map(|m| match m {
            crate::policy::Member::Login(l) => Some((l.clone(), vec![l.clone()])),
            crate::policy::Member::Role(_) => None,
        })
        .collect()
}

pub fn several_purposes(policy: &PolicySet, logins: &HashMap<String, Vec<String>>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut names: Vec<&String> = logins.keys().collect();
    names.sort();
    for login in names {
        let of: Vec<&str> = policy
            .purposes
            .values()
            .filter(|p| p.admits(login, &logins[login]))
            .map(|p| p.name.as_str())
            .collect();
        if of.len() > 1 {
            out.push(finding(
                "warning",
                format!(
                    "login {login} is a member of purposes {}: its clients must name one with the startup parameter unscharf.purpose, or its connections are refused",
                    of.join(", ")
                ),
            ));
        }
    }
    out
}

/// Tables of campaigns whose contract ended: the data must be deleted.
pub fn ended_tables<'a>(policy: &'a PolicySet, catalog: &'a Catalog, today: chrono::NaiveDate) -> Vec<(String, QName)> {
    let mut out = Vec::new();
    for (_, r) in catalog.relations() {
        // A materialized view stores rows as a table does (round 190 AA4).
        let stores = matches!(
            r.kind,
            crate::catalog::RelKind::Table | crate::catalog::RelKind::MaterializedView
        );
        if r.is_system() || !stores {
            continue;
        }
        if let Some(c) = policy.campaign_of(&r.name) {
            if c.ended(today) {
                out.push((c.name.clone(), r.name.clone()));
            }
        }
    }
    out
}

pub fn render(r: &Report) -> String {
    // The verdict comes last (`N error(s)`): a headline saying "ok" above errors misled (round 94).
    let mut out = format!("policies read (version {})\n", r.policy_version);
    out.push_str("\ncampaigns:\n");
    for c in &r.campaigns {
        let end = match (&c.contract_ends, c.ended) {
            (Some(d), true) => format!("contract ENDED {d}"),
            (Some(d), false) => format!("contract ends {d}"),
            (None, _) => "no contract end".to_owned(),
        };
        out.push_str(&format!("  {:<14} {:<28} {}\n", c.name, end, c.tables.join(", ")));
    }
    out.push_str("\npurposes:\n");
    for p in &r.purposes {
        out.push_str(&format!("  {} (members: {})\n", p.name, p.members.join(", ")));
        for t in &p.tables {
            out.push_str(&format!("    {t}\n"));
        }
    }
    if !r.shared.is_empty() {
        out.push_str(&format!("\nshared: {}\n", r.shared.join(", ")));
    }
    if !r.findings.is_empty() {
        out.push('\n');
        for f in &r.findings {
            out.push_str(&format!("{:<7}  {}\n", f.level.to_uppercase(), f.what));
        }
    }
    out.push_str(&format!("\n{} error(s)\n", r.errors()));
    out
}

/// Whether deploy/catalog_watch.sql's event trigger is installed and enabled: without it the proxy
/// sees DDL done outside it only on its periodic refresh.
pub async fn watch_finding(client: &tokio_postgres::Client) -> Option<Finding> {
    let installed = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'unscharf_catalog_changed' AND evtenabled <> 'D'",
            &[],
        )
        .await
        .ok()
        .flatten()
        .is_some();
    if !installed {
        return Some(finding(
            "warning",
            "the schema-change trigger is not installed: unscharf sees DDL done outside it only on its periodic refresh (every 60 s); run deploy/catalog_watch.sql as a superuser".to_owned(),
        ));
    }
    let fenced = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_trigger WHERE tgname = 'unscharf_fence_at_commit' AND tgenabled <> 'D'",
            &[],
        )
        .await
        .ok()
        .flatten()
        .is_some();
    (!fenced).then(|| {
        finding(
            "warning",
            "the migration fence is not installed: a statement that waits on a migration's locks is answered under definitions unscharf has not read; run this version's deploy/catalog_watch.sql as a superuser".to_owned(),
        )
    })
}

/// How many rows a table holds, as far as the catalog role can tell.
pub enum Rows {
    /// Counted.
    Exact(i64),
    /// The larger of the statistics' and the planner's estimates.
    About(i64),
    /// Not known, and why: the estimates say none but the files hold data (round 190 AA4: after
    /// `pg_stat_reset()` or a crash the statistics read 0 for a full table), or nothing could be
    /// read.
    Unknown(&'static str),
}

/// Rows a table holds: exact when the catalog role may count them, else estimated, with its
/// partitions and inheritance children, wherever they are (round 193 AD1).
pub async fn count_rows(client: &tokio_postgres::Client, q: &QName) -> Rows {
    // With row security off, a table whose policies would hide rows from the catalog role errs
    // rather than count what they let through (round 191 AB3: 0 of 3 rows).
    let sql = format!(
        "SET row_security = off; SELECT count(*) FROM {}.{}",
        quote(&q.schema),
        quote(&q.name)
    );
    let counted = client.simple_query(&sql).await;
    let _ = client.batch_execute("RESET row_security").await;
    if let Some(n) = counted.ok().and_then(|msgs| {
        msgs.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse::<i64>().ok()),
            _ => None,
        })
    }) {
        return Rows::Exact(n);
    }
    let est = client
        .query_opt(
            "WITH RECURSIVE t(oid) AS (
                 SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = $2
                 UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN t ON i.inhparent = t.oid)
             SELECT coalesce(sum(GREATEST(coalesce(s.n_live_tup, 0), c.reltuples::int8)), 0)::int8,
                coalesce(bool_or(pg_catalog.pg_relation_size(c.oid) > 0), false)
             FROM t JOIN pg_catalog.pg_class c ON c.oid = t.oid
               LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid",
            &[&q.schema, &q.name],
        )
        .await;
    match est {
        Ok(Some(r)) => match (r.get::<_, i64>(0), r.get::<_, bool>(1)) {
            (0, true) => Rows::Unknown("its statistics say none, but its files hold data"),
            (rows, _) => Rows::About(rows),
        },
        _ => Rows::Unknown("neither its rows nor an estimate of them could be read"),
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn live_comparison_reports_missing_and_unlisted() {
        let texts: Vec<(&str, &str)> = crate::demo::SAMPLE_POLICIES.to_vec();
        let pol = crate::policy::load::load_texts(&texts, Some(b"k")).unwrap();
        let cat = crate::catalog::offline::from_schema_sql(include_str!("../../sample/schema.sql"), "s").unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let mut r = summarize(&pol, today);
        compare(&pol, &cat, &mut r);
        assert_eq!(r.errors(), 0, "{}", render(&r));
        assert!(r
            .findings
            .iter()
            .any(|f| f.what.contains("stadtwerke.customers") && f.what.contains("notes")));
        let broken = crate::policy::load::load_texts(
            &[("x.yaml", "campaign: x\ntables: [stadtwerke.*]\npurposes:\n  p:\n    members: [a]\n    tables:\n      stadtwerke.customers: { columns: { nmae: allow } }\n      stadtwerke.gone: { columns: all }\n")],
            None,
        )
        .unwrap();
        let mut r = summarize(&broken, today);
        compare(&broken, &cat, &mut r);
        assert_eq!(r.errors(), 2, "{}", render(&r));
        let mut cat = cat;
        cat.implicit_code
            .push((QName::new("public", "f"), "an implicit cast integer → text".into()));
        let ticket_type = cat
            .rel(cat.lookup(&QName::new("stadtwerke", "tickets")).unwrap())
            .columns[0]
            .type_oid;
        cat.user_cast_type_oids.insert(ticket_type);
        let mut r = summarize(&pol, today);
        compare(&pol, &cat, &mut r);
        let text = render(&r);
        assert!(
            text.contains("implicit cast integer → text that runs public.f: purposes billing_hotline, quality_review"),
            "{text}"
        );
        assert!(text.contains("stadtwerke.tickets.ticket_id"), "{text}");
        // Round 98: a foreign table below a granted one.
        let tickets = cat.rel(cat.lookup(&QName::new("stadtwerke", "tickets")).unwrap()).oid;
        cat.add_relation(crate::catalog::Relation {
            oid: 99_001,
            name: QName::new("stadtwerke", "remote_tickets"),
            kind: crate::catalog::RelKind::Foreign,
            columns: vec![],
            unique_keys: vec![],
            foreign_keys: vec![],
            checks: vec![],
            generated: vec![],
            barrier: false,
            row_security: false,
            row_triggers: Vec::new(),
        });
        cat.descendants.insert(tickets, vec![99_001]);
        let mut r = summarize(&pol, today);
        compare(&pol, &cat, &mut r);
        let text = render(&r);
        assert!(
            text.contains("come from foreign tables")
                && text.contains("stadtwerke.tickets (through stadtwerke.remote_tickets)"),
            "{text}"
        );
        let late = chrono::NaiveDate::from_ymd_opt(2027, 4, 1).unwrap();
        assert!(ended_tables(&pol, &cat, late)
            .iter()
            .any(|(c, q)| c == "stadtwerke" && q.name == "customers"));
    }

    #[test]
    fn unknown_members_and_functions_are_errors() {
        let cat = crate::catalog::offline::from_schema_sql(include_str!("../../sample/schema.sql"), "s").unwrap();
        let mut cat = cat;
        cat.add_function("util", "dial");
        let pol = crate::policy::load::load_texts(
            &[("x.yaml", "campaign: x\ntables: [stadtwerke.*]\npurposes:\n  p:\n    members: [agent_wassr, role:wasser_agnets, agent_wasser]\n    tables:\n      stadtwerke.tickets: { columns: all }\n    functions: [util.dial, util.no_such_fn]\n")],
            None,
        )
        .unwrap();
        let roles = ["agent_wasser", "wasser_agents"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut r = summarize(&pol, chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        members_and_functions(&pol, &cat, &roles, &mut r);
        let text = render(&r);
        assert_eq!(r.errors(), 3, "{text}");
        for expected in [
            "member login agent_wassr does not exist",
            "member role wasser_agnets does not exist",
            "function util.no_such_fn does not exist",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        assert!(!text.contains("policies ok"), "{text}");
    }

    #[test]
    fn listed_functions_that_read_protected_columns_are_warned_about() {
        let cat = crate::catalog::offline::from_schema_sql(include_str!("../../sample/schema.sql"), "s").unwrap();
        let pol = crate::policy::load::load_texts(
            &[("x.yaml", "campaign: x\ntables: [stadtwerke.*]\npurposes:\n  p:\n    members: [a]\n    tables:\n      stadtwerke.tickets: { columns: all }\n      stadtwerke.customers: { columns: { customer_no: allow, name: allow, phone: { mask: last(3) } } }\n    functions: [util.note_callback, util.clean, util.by_no]\n")],
            None,
        )
        .unwrap();
        let bodies: HashMap<QName, String> = [
            (
                QName::new("util", "note_callback"),
                "BEGIN NEW.note := 'Rückruf an ' || (SELECT c.Phone FROM stadtwerke.customers c WHERE c.customer_no = NEW.customer_no); RETURN NEW; END".to_owned(),
            ),
            (QName::new("util", "clean"), "SELECT lower($1) || (SELECT count(*) FROM zeitung.leads)".to_owned()),
            (QName::new("util", "unlisted"), "SELECT iban FROM stadtwerke.customers".to_owned()),
            // Round 181 F2: every column, named by none.
            (
                QName::new("util", "by_no"),
                "SELECT * FROM stadtwerke.customers WHERE customer_no = $1".to_owned(),
            ),
        ]
        .into_iter()
        .collect();
        let mut r = summarize(&pol, chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        let unpinned: HashSet<QName> = [QName::new("util", "clean")].into_iter().collect();
        listed_bodies(&pol, &cat, &bodies, &unpinned, &mut r);
        let text = render(&r);
        assert_eq!(r.findings.len(), 3, "{text}");
        assert!(
            text.contains("lists util.by_no, whose body names stadtwerke.customers.birth_date (drop)"),
            "{text}"
        );
        assert!(
            text.contains("lists util.note_callback, whose body names stadtwerke.customers.phone (mask last(3))"),
            "{text}"
        );
        assert!(!text.contains("customers.name"), "{text}");
        assert!(
            text.contains("lists util.clean, whose body names zeitung.leads (not granted)"),
            "{text}"
        );
        assert!(!text.contains("unlisted"), "{text}");
    }

    /// Round 141: a listed helper without a search_path of its own read zeitung's callbacks once
    /// the agent had run `SET search_path = zeitung, public`.
    #[test]
    fn listed_functions_whose_names_the_agent_may_steer_are_warned_about() {
        let schema = format!(
            "{}\nCREATE TABLE stadtwerke.callbacks (callback_id int, phone text);\nCREATE TABLE zeitung.callbacks (callback_id int, phone text);\n",
            include_str!("../../sample/schema.sql")
        );
        let cat = crate::catalog::offline::from_schema_sql(&schema, "s").unwrap();
        let pol = crate::policy::load::load_texts(
            &[("x.yaml", "campaign: x\ntables: [stadtwerke.*]\npurposes:\n  p:\n    members: [a]\n    tables:\n      stadtwerke.callbacks: { columns: all }\n    functions: [public.due_callbacks, public.pinned, public.qualified]\n")],
            None,
        )
        .unwrap();
        let body = "BEGIN RETURN QUERY SELECT c.callback_id FROM callbacks c; END".to_owned();
        let bodies: HashMap<QName, String> = [
            (QName::new("public", "due_callbacks"), body.clone()),
            (QName::new("public", "pinned"), body),
            (
                QName::new("public", "qualified"),
                "SELECT callback_id FROM stadtwerke.callbacks".to_owned(),
            ),
        ]
        .into_iter()
        .collect();
        let unpinned: HashSet<QName> = [QName::new("public", "due_callbacks"), QName::new("public", "qualified")]
            .into_iter()
            .collect();
        let mut r = summarize(&pol, chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        listed_bodies(&pol, &cat, &bodies, &unpinned, &mut r);
        let text = render(&r);
        let steer: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("has no search_path of its own"))
            .collect();
        assert_eq!(steer.len(), 1, "{text}");
        assert!(
            steer[0].contains("lists public.due_callbacks")
                && steer[0].contains("callbacks (stadtwerke, zeitung)")
                && steer[0].contains("ALTER FUNCTION public.due_callbacks SET search_path"),
            "{text}"
        );
    }

    #[test]
    fn a_login_in_several_purposes_is_warned_about() {
        let pol = crate::policy::load::load_texts(
            &[("x.yaml", "campaign: x\ntables: [stadtwerke.*]\npurposes:\n  p:\n    members: [agent_wasser]\n    tables:\n      stadtwerke.tickets: { columns: all }\n  q:\n    members: [role:crm_agents]\n    tables:\n      stadtwerke.customers: { columns: { name: allow } }\n")],
            None,
        )
        .unwrap();
        // Offline, the role is unknown: nothing to say.
        assert!(several_purposes(&pol, &named_logins(&pol)).is_empty());
        let logins: HashMap<String, Vec<String>> = [
            (
                "agent_wasser".to_owned(),
                vec!["agent_wasser".to_owned(), "crm_agents".to_owned()],
            ),
            ("qa_lead".to_owned(), vec!["qa_lead".to_owned()]),
        ]
        .into_iter()
        .collect();
        let found = several_purposes(&pol, &logins);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .what
                .starts_with("login agent_wasser is a member of purposes p, q"),
            "{found:?}"
        );
    }
}
