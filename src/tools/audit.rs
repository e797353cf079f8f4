//! `unscharf audit list|summary|verify FILE`: the security team's view of the trail.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::audit::event::Event;
use crate::audit::verify;

/// Which events to look at.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub user: Option<String>,
    pub purpose: Option<String>,
    pub reason: Option<String>,
    /// Only events that touched this campaign.
    pub campaign: Option<String>,
}

/// Reads the end of a time range: a date means the end of that day (UTC), so `--since D --until
/// D` lists day D (round 116: it listed nothing).
pub fn parse_until(s: &str) -> Result<DateTime<Utc>, String> {
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => Ok(d
            .succ_opt()
            .unwrap_or(d)
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()),
        Err(_) => parse_time(s),
    }
}

/// Reads an RFC 3339 timestamp or a date (midnight UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| format!("`{s}` is neither an RFC 3339 time (2026-11-29T08:00:00Z) nor a date (2026-11-29)"))
}

impl Filter {
    /// A filter that could only ever match nothing is a mistake, not an answer: a misspelt reason
    /// or a reversed range printed "0 event(s)" (round 116).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(r) = &self.reason {
            if crate::policy::Reason::from_code(r).is_none() {
                let known: Vec<&str> = crate::policy::Reason::all().iter().map(|r| r.code()).collect();
                return Err(format!("unknown reason `{r}`; the reasons are {}", known.join(", ")));
            }
        }
        if let (Some(s), Some(u)) = (self.since, self.until) {
            if s >= u {
                return Err("--since is not before --until (a date in --until counts up to that day's end)".into());
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.since.is_none()
            && self.until.is_none()
            && self.user.is_none()
            && self.purpose.is_none()
            && self.reason.is_none()
            && self.campaign.is_none()
    }

    pub fn matches(&self, e: &Event) -> bool {
        let ts = DateTime::parse_from_rfc3339(&e.ts).map(|t| t.with_timezone(&Utc)).ok();
        self.since.is_none_or(|s| ts.is_some_and(|t| t >= s))
            && self.until.is_none_or(|u| ts.is_some_and(|t| t < u))
            && self.user.as_ref().is_none_or(|u| &e.user == u)
            && self.purpose.as_ref().is_none_or(|p| &e.purpose == p)
            && self.reason.as_ref().is_none_or(|r| &e.reason == r)
            && self.campaign.as_ref().is_none_or(|c| e.campaigns.contains(c))
    }
}

pub fn list(path: &Path, f: &Filter) -> std::io::Result<Vec<Event>> {
    Ok(verify::read_all(path)?.into_iter().filter(|e| f.matches(e)).collect())
}

/// Filter values no event of the whole trail has: most likely misspelt, so "0 event(s)" would
/// mislead (round 125).
pub fn unknown_values(path: &Path, f: &Filter) -> std::io::Result<Vec<String>> {
    let all = verify::read_all(path)?;
    let mut out = Vec::new();
    let mut check = |flag: &str, value: &Option<String>, has: &dyn Fn(&Event, &str) -> bool| {
        if let Some(v) = value {
            if !all.iter().any(|e| has(e, v)) {
                out.push(format!("no event of the trail has {flag} {v}; is it spelt right?"));
            }
        }
    };
    check("--user", &f.user, &|e, v| e.user == v);
    check("--purpose", &f.purpose, &|e, v| e.purpose == v);
    check("--campaign", &f.campaign, &|e, v| e.campaigns.iter().any(|c| c == v));
    Ok(out)
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

pub fn render_list(events: &[Event]) -> String {
    let mut out = format!(
        "{:<27} {:>6}  {:<14} {:<19} {:<8} {:<22} {}\n",
        "time", "seq", "user", "purpose", "decision", "reason", "statement"
    );
    for e in events {
        out.push_str(&format!(
            "{:<27} {:>6}  {:<14} {:<19} {:<8} {:<22} {}\n",
            cut(&e.ts, 27),
            e.seq,
            cut(&e.user, 14),
            cut(&e.purpose, 19),
            e.decision.as_str(),
            cut(&e.reason, 22),
            cut(&e.statement, 70)
        ));
        if !e.detail.is_empty() {
            out.push_str(&format!("{:>36}{}\n", "↳ ", cut(&e.detail, 110)));
        }
    }
    out.push_str(&format!("{} event(s)\n", events.len()));
    out
}

/// One group of the summary.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Group {
    pub user: String,
    pub purpose: String,
    pub reason: String,
    pub campaign: String,
    pub count: u64,
}

/// Counts by user, purpose, reason and campaign (an event touching two campaigns counts for each).
pub fn summary(events: &[Event]) -> Vec<Group> {
    let mut m: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
    for e in events {
        let campaigns = if e.campaigns.is_empty() {
            vec!["-".to_owned()]
        } else {
            e.campaigns.clone()
        };
        for c in campaigns {
            *m.entry((e.user.clone(), e.purpose.clone(), e.reason.clone(), c))
                .or_default() += 1;
        }
    }
    let mut v: Vec<Group> = m
        .into_iter()
        .map(|((user, purpose, reason, campaign), count)| Group {
            user,
            purpose,
            reason,
            campaign,
            count,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.user.cmp(&b.user)));
    v
}

pub fn render_summary(groups: &[Group], events: usize) -> String {
    let mut out = format!(
        "{:>6}  {:<16} {:<20} {:<22} {}\n",
        "count", "user", "purpose", "reason", "campaign"
    );
    for g in groups {
        out.push_str(&format!(
            "{:>6}  {:<16} {:<20} {:<22} {}\n",
            g.count,
            cut(&g.user, 16),
            cut(&g.purpose, 20),
            cut(&g.reason, 22),
            g.campaign
        ));
    }
    out.push_str(&format!("{events} event(s) in {} group(s)\n", groups.len()));
    out
}

/// An intact chain can still be incomplete: the proxy records how many events it had to drop.
fn dropped_note(r: &verify::Report) -> String {
    if r.dropped == 0 {
        return String::new();
    }
    // Named by file once the trail has rotated: every file's seqs start at 1 (round 175 F7).
    let rotated = r.files.len() > 1;
    let seqs: Vec<String> = r
        .dropped_at
        .iter()
        .zip(&r.dropped_in)
        .take(10)
        .map(|(seq, file)| match (rotated, file.file_name()) {
            (true, Some(name)) => format!("{}:{seq}", name.to_string_lossy()),
            _ => seq.to_string(),
        })
        .collect();
    format!(
        "INCOMPLETE: the proxy dropped {} event(s) because its audit queue was full (recorded at seq {}{})\n",
        r.dropped,
        seqs.join(", "),
        if r.dropped_at.len() > 10 { ", …" } else { "" }
    )
}

/// The exit status of `audit verify`: 0 for a complete, unbroken trail, 1 when the chain is
/// broken, 2 when it is unbroken but the proxy recorded that it dropped events (round 253 CL1: a
/// monitor that checked the status alone missed 7,926 dropped refusals).
pub fn verify_status(r: &verify::Report) -> i32 {
    match (&r.problem, r.dropped) {
        (Some(_), _) => 1,
        (None, 0) => 0,
        (None, _) => 2,
    }
}

pub fn render_verify(r: &verify::Report) -> String {
    let files: Vec<String> = r.files.iter().map(|f| f.display().to_string()).collect();
    let chain = || {
        format!(
            "{} event(s) in {} file(s) form an unbroken hash chain{}\n  {}\n",
            r.events,
            r.files.len(),
            if r.anchored {
                ", ending where the writer's anchor says"
            } else {
                " (no anchor file: lines cut off the end would go unnoticed)"
            },
            files.join("\n  ")
        )
    };
    match &r.problem {
        // Incomplete first: a reader who stops at the first line must not read "OK" (round 253 CL1).
        None if r.dropped > 0 => dropped_note(r) + "The recorded " + &chain(),
        None => "OK: ".to_owned() + &chain(),
        Some(p) => {
            let mut out = format!(
                "BROKEN at {}:{}: {}\n({} event(s) verified before it)\n",
                p.file.display(),
                p.line,
                p.what,
                r.events
            );
            if !r.later.is_empty() {
                out.push_str("The check went on from each break, and found also:\n");
                for l in &r.later {
                    out.push_str(&format!("  {}:{}: {}\n", l.file.display(), l.line, l.what));
                }
                if r.later.len() == verify::MAX_LATER {
                    out.push_str("  … (only the first of the later problems are listed)\n");
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Round 175 F7: in a rotated trail, "seq 11" named a record in each of its files.
    #[test]
    fn drops_in_a_rotated_trail_are_named_by_file() {
        let files = vec![PathBuf::from("/a/audit.jsonl.1"), PathBuf::from("/a/audit.jsonl")];
        let report = verify::Report {
            files: files.clone(),
            events: 20,
            problem: None,
            later: Vec::new(),
            anchored: true,
            dropped: 5,
            dropped_at: vec![11, 3],
            dropped_in: files,
        };
        let text = render_verify(&report);
        assert!(
            text.contains("recorded at seq audit.jsonl.1:11, audit.jsonl:3"),
            "{text}"
        );
        let one = verify::Report {
            files: vec![PathBuf::from("/a/audit.jsonl")],
            dropped_at: vec![11],
            dropped_in: vec![PathBuf::from("/a/audit.jsonl")],
            ..report
        };
        assert!(render_verify(&one).contains("recorded at seq 11)"));
    }
}
