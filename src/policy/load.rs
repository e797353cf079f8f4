//! Loading a policy directory: parse every file strictly, validate across files, and build one PolicySet.
//! A directory with any error yields only errors, so a broken edit is never half-applied.

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::model::{CampaignFile, ColumnRule, ColumnsSpec, SharedFile, TableSpec};
use super::{Campaign, Columns, Member, PolicySet, Purpose, QName, TableGrant};
use crate::mask::functions::{Mask, PseudonymKey};
use crate::yaml::{from_yaml, line_of_key, line_of_path};

/// One problem in one policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {key}: {problem}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct PolicyError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub problem: String,
}

/// Every problem found in a policy directory.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} error(s) in policies (a file's YAML is read up to its first error, so fix those and check again):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
pub struct PolicyErrors(pub Vec<PolicyError>);

struct Source {
    path: PathBuf,
    text: String,
}

impl Source {
    fn err(&self, key: &str, problem: impl Into<String>) -> PolicyError {
        let path: Vec<&str> = key.split(" → ").collect();
        PolicyError {
            file: self.path.clone(),
            line: line_of_path(&self.text, &path),
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// An error about `key`, located at the first line that mentions `token`.
    fn err_near(&self, key: &str, token: &str, problem: impl Into<String>) -> PolicyError {
        PolicyError {
            file: self.path.clone(),
            line: line_of_key(&self.text, token),
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Loads `dir/*.yaml` (and `*.yml`); `pseudonym_master` is the deployment secret for the pseudonym mask.
pub fn load_dir(dir: &Path, pseudonym_master: Option<&[u8]>) -> Result<PolicySet, PolicyErrors> {
    let dir_err = |problem: String| {
        PolicyErrors(vec![PolicyError {
            file: dir.to_path_buf(),
            line: None,
            key: "policies".into(),
            problem,
        }])
    };
    let entries = std::fs::read_dir(dir).map_err(|e| dir_err(format!("cannot read directory: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    let mut sources = Vec::new();
    for path in paths {
        // A policy file that cannot be read is an error, not a campaign gone (round 262 CU2: a
        // dangling symlink was skipped without a word).
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(dir_err(format!("{}: not a regular file", path.display()))),
            Err(e) => return Err(dir_err(format!("{}: {e}", path.display()))),
        }
        let text = std::fs::read_to_string(&path).map_err(|e| dir_err(format!("{}: {e}", path.display())))?;
        sources.push(Source { path, text });
    }
    if sources.is_empty() {
        return Err(dir_err("no policy files (*.yaml) found".into()));
    }
    build(&sources, pseudonym_master)
}

/// Loads policies from in-memory (name, text) pairs; used by tests and tools.
pub fn load_texts(files: &[(&str, &str)], pseudonym_master: Option<&[u8]>) -> Result<PolicySet, PolicyErrors> {
    let sources: Vec<Source> = files
        .iter()
        .map(|(n, t)| Source {
            path: PathBuf::from(n),
            text: t.to_string(),
        })
        .collect();
    build(&sources, pseudonym_master)
}

fn is_shared(path: &Path) -> bool {
    path.file_stem().and_then(|s| s.to_str()) == Some("shared")
}

fn build(sources: &[Source], master: Option<&[u8]>) -> Result<PolicySet, PolicyErrors> {
    let mut errors = Vec::new();
    let mut campaigns: Vec<(usize, CampaignFile)> = Vec::new();
    let mut shared_files: Vec<(usize, SharedFile)> = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        if is_shared(&src.path) {
            match from_yaml::<SharedFile>(&src.text, &src.path) {
                Ok(f) => shared_files.push((i, f)),
                Err(e) => errors.push(yaml_error(e)),
            }
        } else {
            match from_yaml::<CampaignFile>(&src.text, &src.path) {
                Ok(f) => campaigns.push((i, f)),
                Err(e) => errors.push(yaml_error(e)),
            }
        }
    }

    let mut set = PolicySet::default();
    // Campaigns and the tables they claim.
    let mut claimed: Vec<(String, usize, usize)> = Vec::new(); // pattern, campaign index, source
    for (src_i, file) in &campaigns {
        let src = &sources[*src_i];
        if set.campaigns.iter().any(|c| c.name == file.campaign) {
            errors.push(src.err("campaign", format!("campaign `{}` is defined twice", file.campaign)));
            continue;
        }
        let idx = set.campaigns.len();
        for pattern in &file.tables {
            match parse_pattern(pattern) {
                Err(p) => errors.push(src.err(&format!("tables → {pattern}"), p)),
                Ok(_) => {
                    if let Some((other, oc, _)) = claimed.iter().find(|(o, _, _)| patterns_overlap(o, pattern)) {
                        errors.push(src.err(
                            &format!("tables → {pattern}"),
                            format!(
                                "`{pattern}` overlaps `{other}` claimed by campaign `{}`: a table belongs to one campaign",
                                campaign_name(&campaigns, *oc)
                            ),
                        ));
                    }
                    claimed.push((pattern.clone(), idx, *src_i));
                }
            }
        }
        let needs_key = file
            .purposes
            .values()
            .flat_map(|p| p.tables.values())
            .any(spec_uses_pseudonym);
        if needs_key && master.is_none() {
            errors.push(src.err_near(
                "mask",
                "pseudonym",
                "the pseudonym mask needs a secret: set the environment variable named by pseudonym_key_env",
            ));
        }
        set.campaigns.push(Campaign {
            name: file.campaign.clone(),
            description: file.description.clone().unwrap_or_default(),
            contract_ends: file.contract_ends,
            tables: file.tables.clone(),
            pseudonym: master.map(|m| std::sync::Arc::new(PseudonymKey::derive(m, &file.campaign))),
        });
    }
    for (pattern, idx, _) in &claimed {
        if let Some(schema) = pattern.strip_suffix(".*") {
            set.schema_owner.insert(schema.to_owned(), *idx);
        } else if let Ok(q) = QName::parse(pattern) {
            set.table_owner.insert(q, *idx);
        }
    }

    // Shared reference tables.
    for (src_i, file) in &shared_files {
        let src = &sources[*src_i];
        for (table, spec) in &file.shared {
            let key = format!("shared → {table}");
            match QName::parse(table) {
                Err(p) => errors.push(src.err(&key, p)),
                Ok(q) => {
                    if let Some(c) = set.campaign_index(&q) {
                        errors.push(src.err(
                            &key,
                            format!(
                                "`{table}` belongs to campaign `{}` and cannot be shared",
                                set.campaigns[c].name
                            ),
                        ));
                    } else if spec_uses_pseudonym(spec) && master.is_none() {
                        errors.push(src.err(&key, "the pseudonym mask needs a secret: set the environment variable named by pseudonym_key_env"));
                    } else if set.shared.insert(q, grant(spec)).is_some() {
                        errors.push(src.err(&key, "listed twice"));
                    }
                }
            }
        }
    }
    set.shared_pseudonym = master.map(|m| std::sync::Arc::new(PseudonymKey::derive(m, "shared")));

    // Purposes: the same name in several campaign files is one purpose, each file granting its part.
    let mut members_by_file: HashMap<&str, Vec<(usize, &[String])>> = HashMap::new();
    for (src_i, file) in &campaigns {
        let src = &sources[*src_i];
        for (pname, spec) in &file.purposes {
            // Validate against campaigns and shared tables first; the purpose entry borrows `set` mutably.
            let mut grants = Vec::new();
            for (table, tspec) in &spec.tables {
                let key = format!("{pname} → {table}");
                match QName::parse(table) {
                    Err(p) => errors.push(src.err(&key, p)),
                    Ok(q) if set.shared.contains_key(&q) => {
                        errors.push(src.err(&key, format!("`{table}` is shared: its rules live in shared.yaml")))
                    }
                    Ok(q) if set.campaign_index(&q).is_none() => errors.push(src.err(
                        &key,
                        format!("`{table}` belongs to no campaign: add it to a campaign's `tables:` or to shared.yaml"),
                    )),
                    Ok(q) => {
                        // Each file grants its own campaign's part: another campaign's table
                        // granted here escapes the review of that campaign's file (round 116).
                        let owner = set.campaign_index(&q).map(|c| set.campaigns[c].name.as_str());
                        if let Some(owner) = owner.filter(|o| *o != file.campaign) {
                            set.warnings.push(src.err(
                                &key,
                                format!("`{table}` belongs to campaign `{owner}`: grant it in that campaign's file, where its rules are reviewed"),
                            ));
                        }
                        grants.push((key, table, q, grant(tspec)))
                    }
                }
            }
            members_by_file
                .entry(pname.as_str())
                .or_default()
                .push((*src_i, spec.members.as_slice()));
            let purpose = set.purposes.entry(pname.clone()).or_insert_with(|| Purpose {
                name: pname.clone(),
                description: String::new(),
                members: Vec::new(),
                tables: HashMap::new(),
                functions: HashSet::new(),
                defined_in: Vec::new(),
            });
            purpose.defined_in.push(file.campaign.clone());
            if purpose.description.is_empty() {
                purpose.description = spec.description.clone().unwrap_or_default();
            }
            for m in &spec.members {
                let member = match m.strip_prefix("role:") {
                    Some(r) if !r.is_empty() => Member::Role(r.to_owned()),
                    Some(_) => {
                        errors.push(src.err(pname, format!("member `{m}` names no role")));
                        continue;
                    }
                    None if m.is_empty() => {
                        errors.push(src.err(pname, "empty member name"));
                        continue;
                    }
                    None => Member::Login(m.clone()),
                };
                if !purpose.members.contains(&member) {
                    purpose.members.push(member);
                }
            }
            for f in &spec.functions {
                match QName::parse(f) {
                    Ok(q) => {
                        purpose.functions.insert(q);
                    }
                    Err(p) => errors.push(src.err(&format!("functions → {f}"), p)),
                }
            }
            for (key, table, q, g) in grants {
                if purpose.tables.insert(q, g).is_some() {
                    errors.push(src.err(&key, format!("`{table}` is granted to purpose `{pname}` twice")));
                }
            }
        }
    }

    // A purpose copied from another campaign's file under the same name merges with it: the
    // members of each file then read what both grant (round 116).
    for (pname, defs) in &members_by_file {
        // A file that only adds grants (no members: the way to grant another campaign's part)
        // widens nobody's membership.
        let defs: Vec<&(usize, &[String])> = defs.iter().filter(|(_, m)| !m.is_empty()).collect();
        let mut lists: Vec<Vec<&String>> = defs
            .iter()
            .map(|(_, m)| {
                let mut v: Vec<&String> = m.iter().collect();
                v.sort();
                v
            })
            .collect();
        lists.dedup();
        if lists.len() > 1 {
            let files: Vec<String> = defs
                .iter()
                .map(|(i, m)| format!("{} [{}]", sources[*i].path.display(), m.join(", ")))
                .collect();
            let (first, _) = defs[0];
            set.warnings.push(sources[*first].err(
                pname,
                format!(
                    "purpose `{pname}` is defined with different members in {}: one purpose, so every member reads what each file grants",
                    files.join(" and ")
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(PolicyErrors(errors));
    }
    let mut hasher = Sha256::new();
    for src in sources {
        hasher.update(
            src.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        hasher.update([0]);
        hasher.update(&src.text);
        hasher.update([0]);
    }
    set.version = hex::encode(&hasher.finalize()[..8]);
    static LOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    set.generation = LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    set.files = sources.iter().map(|s| s.path.clone()).collect();
    Ok(set)
}

fn yaml_error(e: crate::yaml::YamlError) -> PolicyError {
    // serde_yaml puts the key path first ("purposes.p.tables: unknown field ..."); split it off.
    let (key, problem) = match e.message.split_once(": ") {
        Some((k, rest)) if !k.contains(' ') => (k.to_owned(), rest.to_owned()),
        _ => ("(document)".to_owned(), e.message.clone()),
    };
    PolicyError {
        file: e.file,
        line: e.line,
        key,
        problem,
    }
}

fn campaign_name(campaigns: &[(usize, CampaignFile)], idx: usize) -> String {
    campaigns.get(idx).map(|(_, f)| f.campaign.clone()).unwrap_or_default()
}

fn spec_uses_pseudonym(spec: &TableSpec) -> bool {
    match &spec.columns {
        ColumnsSpec::All => false,
        ColumnsSpec::Listed(m) => m.values().any(|r| {
            matches!(
                r,
                ColumnRule::Mask {
                    mask: Mask::Pseudonym,
                    ..
                }
            )
        }),
    }
}

fn grant(spec: &TableSpec) -> TableGrant {
    TableGrant {
        columns: match &spec.columns {
            ColumnsSpec::All => Columns::All,
            ColumnsSpec::Listed(m) => Columns::Listed(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        },
        write: spec.write.iter().copied().collect::<BTreeSet<_>>(),
    }
}

fn parse_pattern(p: &str) -> Result<(), String> {
    match p.strip_suffix(".*") {
        Some(schema) if !schema.is_empty() && !schema.contains('.') && !schema.contains('*') => Ok(()),
        Some(_) => Err(format!("`{p}`: expected schema.table or schema.*")),
        None => QName::parse(p).map(|_| ()),
    }
}

fn patterns_overlap(a: &str, b: &str) -> bool {
    let schema = |p: &str| p.split('.').next().unwrap_or("").to_owned();
    match (a.ends_with(".*"), b.ends_with(".*")) {
        (false, false) => a == b,
        _ => schema(a) == schema(b),
    }
}

/// Every table a purpose may read, sorted; for `explain` and `check` output.
pub fn granted_tables(p: &Purpose) -> BTreeMap<String, &TableGrant> {
    p.tables.iter().map(|(q, g)| (q.to_string(), g)).collect()
}

#[cfg(test)]
mod tests;
