//! `unscharf explain`: the decision for a statement without running it, from the same analysis and
//! decision code the proxy uses.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::analyze::facts::Outputs;
use crate::analyze::{lexer, AnalyzeCtx};
use crate::catalog::Catalog;
use crate::judge::{judge_statement, refusal_for, JudgeCtx, NoRegistry};
use crate::policy::decide::ColAction;
use crate::policy::PolicySet;

/// One statement's decision, as printed and as `--json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatementDecision {
    pub statement: String,
    /// `allowed`, `masked` or `refused`.
    pub decision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub columns: Vec<ColumnDecision>,
    pub campaigns: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ColumnDecision {
    pub name: String,
    /// `pass`, `mask` or `drop`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Explanation {
    pub user: String,
    pub purpose: Option<String>,
    /// Why no purpose could be bound, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose_error: Option<String>,
    pub statements: Vec<StatementDecision>,
}

/// What explain needs to know about the session it imagines.
pub struct Session<'a> {
    pub user: &'a str,
    pub purpose: Option<&'a str>,
    pub roles: &'a [String],
    pub search_path: Vec<String>,
}

/// Explains every statement of `sql` for `session`; `today` decides contract ends.
pub fn explain(
    sql: &str,
    s: &Session<'_>,
    policy: &PolicySet,
    catalog: &Catalog,
    today: chrono::NaiveDate,
) -> Explanation {
    let mut roles: Vec<String> = s.roles.to_vec();
    roles.push(s.user.to_owned());
    let purpose = crate::session::startup::bind_purpose(policy, s.user, &roles, s.purpose);
    let mut out = Explanation {
        user: s.user.to_owned(),
        purpose: purpose.as_ref().ok().cloned(),
        purpose_error: purpose.as_ref().err().cloned(),
        statements: Vec::new(),
    };
    let Ok(purpose_name) = purpose else {
        return out;
    };
    let purpose = &policy.purposes[&purpose_name];
    let paths = vec![s.search_path.clone()];
    let ctx = AnalyzeCtx {
        catalog,
        search_paths: &paths,
        user: s.user,
        revert_paths: &[],
        abandoned: Default::default(),
    };
    let texts: Vec<String> = match lexer::split_statements(sql) {
        Ok(ranges) if !ranges.is_empty() => ranges.into_iter().map(|r| sql[r].to_owned()).collect(),
        _ => vec![sql.trim().to_owned()],
    };
    let analysis = crate::analyze::analyze(sql, ctx);
    let read = BTreeSet::new();
    let jcx = JudgeCtx {
        policy,
        purpose,
        catalog,
        today,
        read_campaigns: &read,
        // As for a session that did not choose its path at login.
        dba_path: Some(&s.search_path),
        settings_moved: None,
        path_moved: None,
    };
    match analysis {
        Err(e) => {
            let r = refusal_for(&e);
            out.statements.push(refused(sql.trim(), &r));
        }
        Ok(a) => {
            // A setting changed earlier in the message counts for the statements after it, as in
            // judge_all (round 166 I1).
            let mut settings_set: Option<crate::policy::decide::SettingsMove> = None;
            let mut path_set: Option<String> = None;
            for (i, f) in a.statements.iter().enumerate() {
                let text = texts.get(i).cloned().unwrap_or_default();
                let jcx = JudgeCtx {
                    settings_moved: settings_set.as_ref(),
                    path_moved: path_set.as_deref(),
                    ..jcx
                };
                let verdict = judge_statement(f, &jcx, &NoRegistry);
                if let Some(m) = crate::judge::change_move(f, catalog, "an earlier statement of this message changes") {
                    crate::policy::decide::widen(&mut settings_set, m);
                }
                if let Some(c) = crate::judge::path_change_text(f, catalog) {
                    path_set = Some(format!("an earlier statement of this message changes ({c})"));
                }
                out.statements.push(match verdict {
                    Err(r) => refused(&text, &r),
                    Ok(allowed) => {
                        let names: Vec<String> = match &allowed.facts.outputs {
                            Outputs::Known(o) => o.iter().map(|o| o.name.clone()).collect(),
                            _ => Vec::new(),
                        };
                        let columns: Vec<ColumnDecision> = match &allowed.plan.columns {
                            None => names
                                .iter()
                                .map(|n| ColumnDecision {
                                    name: n.clone(),
                                    action: "pass".into(),
                                    mask: None,
                                    source: None,
                                })
                                .collect(),
                            Some(plan) => plan
                                .iter()
                                .enumerate()
                                .map(|(i, a)| {
                                    let name = names.get(i).cloned().unwrap_or_else(|| format!("#{}", i + 1));
                                    match a {
                                        ColAction::Pass => ColumnDecision {
                                            name,
                                            action: "pass".into(),
                                            mask: None,
                                            source: None,
                                        },
                                        ColAction::Drop => ColumnDecision {
                                            name,
                                            action: "drop".into(),
                                            mask: None,
                                            source: None,
                                        },
                                        ColAction::Mask(m) => ColumnDecision {
                                            name,
                                            action: "mask".into(),
                                            mask: Some(m.mask.to_string()),
                                            source: Some(catalog.column_name(m.column)),
                                        },
                                    }
                                })
                                .collect(),
                        };
                        let masked = allowed.plan.masked() || allowed.plan.dropped();
                        StatementDecision {
                            statement: text,
                            decision: if masked { "masked" } else { "allowed" }.into(),
                            reason: None,
                            detail: None,
                            columns,
                            campaigns: allowed.plan.campaigns.clone(),
                        }
                    }
                });
            }
        }
    }
    out
}

fn refused(text: &str, r: &crate::policy::Refusal) -> StatementDecision {
    StatementDecision {
        statement: text.to_owned(),
        decision: "refused".into(),
        reason: Some(r.reason.code().to_owned()),
        detail: Some(r.detail.clone()),
        columns: Vec::new(),
        campaigns: Vec::new(),
    }
}

/// The human-readable form.
pub fn render(e: &Explanation) -> String {
    let mut out = String::new();
    match (&e.purpose, &e.purpose_error) {
        (Some(p), _) => out.push_str(&format!("user {} acts under purpose {p}\n", e.user)),
        (None, Some(err)) => {
            out.push_str(&format!("connection refused (no_purpose): {err}\n"));
            return out;
        }
        _ => {}
    }
    for (i, s) in e.statements.iter().enumerate() {
        out.push_str(&format!("\nstatement {}: {}\n", i + 1, s.statement));
        match s.decision.as_str() {
            "refused" => {
                out.push_str(&format!("  REFUSED  rule: {}\n", s.reason.as_deref().unwrap_or("")));
                out.push_str(&format!("           {}\n", s.detail.as_deref().unwrap_or("")));
            }
            d => {
                out.push_str(&format!("  {}", d.to_uppercase()));
                if !s.campaigns.is_empty() {
                    out.push_str(&format!("  (campaign {})", s.campaigns.join(", ")));
                }
                out.push('\n');
                let width = s.columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
                for c in &s.columns {
                    let what = match c.action.as_str() {
                        "mask" => format!(
                            "masked with {} ({})",
                            c.mask.as_deref().unwrap_or(""),
                            c.source.as_deref().unwrap_or("")
                        ),
                        "drop" => "dropped".to_owned(),
                        _ => "as is".to_owned(),
                    };
                    out.push_str(&format!("    {:width$}  {what}\n", c.name));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_masks_drops_and_refusals() {
        let cat = crate::catalog::offline::from_schema_sql(include_str!("../../sample/schema.sql"), "s").unwrap();
        let texts: Vec<(&str, &str)> = crate::demo::SAMPLE_POLICIES.to_vec();
        let pol = crate::policy::load::load_texts(&texts, Some(b"k")).unwrap();
        let s = Session {
            user: "agent_wasser",
            purpose: None,
            roles: &[],
            search_path: vec!["$user".into(), "public".into()],
        };
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let e = explain(
            "SELECT * FROM stadtwerke.customers; SELECT lower(iban) FROM stadtwerke.customers",
            &s,
            &pol,
            &cat,
            today,
        );
        assert_eq!(e.purpose.as_deref(), Some("billing_hotline"));
        assert_eq!(e.statements[0].decision, "masked");
        assert!(e.statements[0]
            .columns
            .iter()
            .any(|c| c.name == "phone" && c.mask.as_deref() == Some("last(3)")));
        assert!(e.statements[0]
            .columns
            .iter()
            .any(|c| c.name == "birth_date" && c.action == "drop"));
        assert_eq!(e.statements[1].reason.as_deref(), Some("protected_column"));
        let text = render(&e);
        assert!(
            text.contains("masked with last(3) (stadtwerke.customers.phone)") && text.contains("REFUSED"),
            "{text}"
        );
        let nobody = Session { user: "nobody", ..s };
        assert!(explain("SELECT 1", &nobody, &pol, &cat, today).purpose_error.is_some());
    }
}
