//! `unscharf test`: DBAs' policy test cases (user, statement, expected outcome) run through the same
//! analysis and decision code as the proxy, offline against a schema file or against the live catalog.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use super::explain::{explain, Explanation, Session};
use crate::catalog::Catalog;
use crate::policy::PolicySet;
use crate::yaml::from_yaml;

/// A policy test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// `pg_dump --schema-only` output to test against, relative to this file (unless --schema or --live).
    #[serde(default)]
    pub schema: Option<PathBuf>,
    /// The cases.
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows, for the report.
    pub name: String,
    /// Login name of the session.
    pub user: String,
    /// Purpose the session names, if any.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Upstream roles the login is a member of.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The statement(s).
    pub sql: String,
    /// allowed, refused, masked or dropped.
    pub expect: Expect,
    /// With `refused`: the rule code.
    #[serde(default)]
    pub reason: Option<String>,
    /// With `masked`/`dropped`: the result columns masked.
    #[serde(default)]
    pub masked: Vec<String>,
    /// With `masked`/`dropped`: the result columns dropped.
    #[serde(default)]
    pub dropped: Vec<String>,
    /// The day to judge on (contract ends); default today.
    #[serde(default)]
    pub today: Option<NaiveDate>,
    /// The session's search_path; default `"$user", public`.
    #[serde(default)]
    pub search_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allowed,
    Refused,
    Masked,
    Dropped,
}

/// A decision as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub decision: String,
    pub reason: Option<String>,
    pub masked: BTreeSet<String>,
    pub dropped: BTreeSet<String>,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.decision)?;
        if let Some(r) = &self.reason {
            write!(f, " ({r})")?;
        }
        if !self.masked.is_empty() {
            write!(
                f,
                "; masked: {}",
                self.masked.iter().cloned().collect::<Vec<_>>().join(", ")
            )?;
        }
        if !self.dropped.is_empty() {
            write!(
                f,
                "; dropped: {}",
                self.dropped.iter().cloned().collect::<Vec<_>>().join(", ")
            )?;
        }
        Ok(())
    }
}

fn outcome(e: &Explanation) -> Outcome {
    if let Some(err) = &e.purpose_error {
        let _ = err;
        return Outcome {
            decision: "refused".into(),
            reason: Some("no_purpose".into()),
            masked: BTreeSet::new(),
            dropped: BTreeSet::new(),
        };
    }
    if let Some(r) = e.statements.iter().find(|s| s.decision == "refused") {
        return Outcome {
            decision: "refused".into(),
            reason: r.reason.clone(),
            masked: BTreeSet::new(),
            dropped: BTreeSet::new(),
        };
    }
    let cols = |action: &str| {
        e.statements
            .iter()
            .flat_map(|s| s.columns.iter())
            .filter(|c| c.action == action)
            .map(|c| c.name.clone())
            .collect::<BTreeSet<_>>()
    };
    let (masked, dropped) = (cols("mask"), cols("drop"));
    let decision = if masked.is_empty() && dropped.is_empty() {
        "allowed"
    } else {
        "masked"
    };
    Outcome {
        decision: decision.into(),
        reason: None,
        masked,
        dropped,
    }
}

fn expected(c: &Case) -> Outcome {
    let (decision, reason) = match c.expect {
        Expect::Allowed => ("allowed", None),
        Expect::Refused => ("refused", c.reason.clone()),
        Expect::Masked | Expect::Dropped => ("masked", None),
    };
    Outcome {
        decision: decision.into(),
        reason,
        masked: c.masked.iter().cloned().collect(),
        dropped: c.dropped.iter().cloned().collect(),
    }
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: PathBuf,
    pub name: String,
    pub passed: bool,
    pub expected: Outcome,
    pub actual: Outcome,
    pub detail: Option<String>,
}

/// Where the catalog of a file comes from.
pub enum CatalogSource<'a> {
    /// `--schema FILE` or `--live`: the same catalog for every file.
    Fixed(&'a Catalog),
    /// Each file's `schema:` key.
    PerFile,
}

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: no schema to test against: add `schema: FILE` or run with --schema FILE or --live")]
    NoSchema(PathBuf),
    #[error(transparent)]
    Schema(#[from] crate::catalog::offline::SchemaFileError),
    #[error("{0}: case `{1}`: Postgres would reject the search_path {2:?}")]
    SearchPath(PathBuf, String, String),
}

/// Runs the cases of one file.
pub fn run_file(path: &Path, policy: &PolicySet, source: &CatalogSource<'_>) -> Result<Vec<CaseResult>, TestError> {
    let text = std::fs::read_to_string(path).map_err(|e| TestError::Io(path.to_path_buf(), e))?;
    let file: TestFile = from_yaml(&text, path)?;
    let owned;
    let catalog = match (source, &file.schema) {
        (CatalogSource::Fixed(c), _) => *c,
        (CatalogSource::PerFile, Some(s)) => {
            let p = path.parent().unwrap_or(Path::new(".")).join(s);
            let sql = std::fs::read_to_string(&p).map_err(|e| TestError::Io(p.clone(), e))?;
            owned = crate::catalog::offline::from_schema_sql(&sql, &p.display().to_string())?;
            &owned
        }
        (CatalogSource::PerFile, None) => return Err(TestError::NoSchema(path.to_path_buf())),
    };
    let mut out = Vec::new();
    for c in &file.cases {
        let session = Session {
            user: &c.user,
            purpose: c.purpose.as_deref(),
            roles: &c.roles,
            search_path: {
                let text = c.search_path.as_deref().unwrap_or("\"$user\", public");
                crate::catalog::parse_search_path(text)
                    .ok_or_else(|| TestError::SearchPath(path.to_path_buf(), c.name.clone(), text.to_owned()))?
            },
        };
        let today = c.today.unwrap_or_else(|| chrono::Local::now().date_naive());
        let e = explain(&c.sql, &session, policy, catalog, today);
        let actual = outcome(&e);
        let want = expected(c);
        // A refusal with no reason given matches any reason.
        let passed = if want.decision == "refused" && want.reason.is_none() {
            actual.decision == "refused"
        } else {
            actual == want
        };
        let detail = e
            .purpose_error
            .clone()
            .or_else(|| e.statements.iter().find_map(|s| s.detail.clone()));
        out.push(CaseResult {
            file: path.to_path_buf(),
            name: c.name.clone(),
            passed,
            expected: want,
            actual,
            detail,
        });
    }
    Ok(out)
}

/// The test files of a directory (`*.yaml`, sorted), or the one file `dir` names: a DBA writing one
/// campaign's tests runs that file (round 116).
pub fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if dir.is_file() {
        return Ok(vec![dir.to_owned()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    v.sort();
    Ok(v)
}

pub fn render(results: &[CaseResult]) -> String {
    let mut out = String::new();
    for r in results {
        let file = r
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if r.passed {
            out.push_str(&format!("ok    {file}: {}\n", r.name));
        } else {
            out.push_str(&format!(
                "FAIL  {file}: {}\n      expected: {}\n      actual:   {}\n",
                r.name, r.expected, r.actual
            ));
            if let Some(d) = &r.detail {
                out.push_str(&format!("      because:  {d}\n"));
            }
        }
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    out.push_str(&format!(
        "\n{} case(s), {} passed, {failed} failed\n",
        results.len(),
        results.len() - failed
    ));
    out
}
