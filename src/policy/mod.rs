//! Purpose policies: the loaded, validated rule set and the pure decision over analyzed statements.

pub mod decide;
pub mod load;
pub mod model;

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use chrono::NaiveDate;

/// A calendar day, as decisions about contract ends take it.
pub type Today = NaiveDate;

pub use model::{ColumnRule, WriteKind};

use crate::mask::functions::PseudonymKey;

/// A schema-qualified name as stored in the catalog (no case folding, no quotes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QName {
    pub schema: String,
    pub name: String,
}

impl QName {
    pub fn new(schema: &str, name: &str) -> Self {
        QName {
            schema: schema.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Parses `schema.name` as written in a policy file.
    pub fn parse(s: &str) -> Result<QName, String> {
        match s.split_once('.') {
            Some((schema, name))
                if !schema.is_empty() && !name.is_empty() && !name.contains('.') && !s.contains('*') =>
            {
                Ok(QName::new(schema, name))
            }
            _ => Err(format!("`{s}`: expected a schema-qualified name like schema.table")),
        }
    }
}

impl fmt::Display for QName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// One campaign: a client engagement owning tables.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    pub description: String,
    pub contract_ends: Option<NaiveDate>,
    /// The `tables:` patterns as written.
    pub tables: Vec<String>,
    /// Key of the pseudonym mask for this campaign's columns.
    pub pseudonym: Option<std::sync::Arc<PseudonymKey>>,
}

impl Campaign {
    /// True from the day after `contract_ends` on.
    pub fn ended(&self, today: NaiveDate) -> bool {
        self.contract_ends.is_some_and(|end| today > end)
    }
}

/// Who may act under a purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Login(String),
    Role(String),
}

/// A purpose after merging every campaign file that grants to it.
#[derive(Debug, Clone)]
pub struct Purpose {
    pub name: String,
    pub description: String,
    pub members: Vec<Member>,
    pub tables: HashMap<QName, TableGrant>,
    pub functions: HashSet<QName>,
    /// Campaign files that mention the purpose.
    pub defined_in: Vec<String>,
}

impl Purpose {
    /// Whether a login with these role memberships (including itself) may act under the purpose.
    pub fn admits(&self, login: &str, roles: &[String]) -> bool {
        self.members.iter().any(|m| match m {
            Member::Login(l) => l == login,
            Member::Role(r) => roles.iter().any(|x| x == r),
        })
    }
}

/// The column rules and write grant of one table under one purpose (or shared).
#[derive(Debug, Clone)]
pub struct TableGrant {
    pub columns: Columns,
    pub write: BTreeSet<WriteKind>,
}

#[derive(Debug, Clone)]
pub enum Columns {
    All,
    Listed(HashMap<String, ColumnRule>),
}

static ALLOW: ColumnRule = ColumnRule::Allow;
static DROP: ColumnRule = ColumnRule::Drop;

impl TableGrant {
    /// The rule of a column; unlisted columns are dropped (new data is private by default).
    pub fn rule(&self, column: &str) -> &ColumnRule {
        match &self.columns {
            Columns::All => &ALLOW,
            Columns::Listed(m) => m.get(column).unwrap_or(&DROP),
        }
    }

    pub fn all_allowed(&self) -> bool {
        matches!(self.columns, Columns::All)
    }
}

/// The complete, validated policy in force.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    /// Hash of the loaded files: audit events carry it so reviewers know which rules applied.
    pub version: String,
    /// Unique to this load, unlike `version` (the same files may load twice with another secret):
    /// sessions key the decisions they remember on it.
    pub generation: u64,
    pub campaigns: Vec<Campaign>,
    pub purposes: std::collections::BTreeMap<String, Purpose>,
    pub shared: HashMap<QName, TableGrant>,
    pub shared_pseudonym: Option<std::sync::Arc<PseudonymKey>>,
    pub files: Vec<PathBuf>,
    /// Valid but worth a DBA's look (a file granting another campaign's table, a purpose whose
    /// files list different members): `check` prints them, a reload logs them.
    pub warnings: Vec<load::PolicyError>,
    table_owner: HashMap<QName, usize>,
    schema_owner: HashMap<String, usize>,
}

impl PolicySet {
    /// The campaign owning a relation, if any.
    pub fn campaign_index(&self, q: &QName) -> Option<usize> {
        self.table_owner
            .get(q)
            .or_else(|| self.schema_owner.get(&q.schema))
            .copied()
    }

    /// The relations behind `rel` (partitions, child tables, the bases of views: see
    /// `Catalog::behind`) that belong to another campaign than `rel`, each with that campaign.
    pub fn campaigns_behind<'a>(
        &'a self,
        catalog: &'a crate::catalog::Catalog,
        rel: crate::catalog::RelId,
    ) -> impl Iterator<Item = (&'a QName, &'a Campaign)> + 'a {
        let r = catalog.rel(rel);
        let campaign = self.campaign_index(&r.name);
        catalog
            .behind(r.oid)
            .into_iter()
            .filter_map(|oid| catalog.by_oid(oid))
            .map(|d| &catalog.rel(d).name)
            .filter_map(move |other| {
                let c = self.campaign_index(other).filter(|c| Some(*c) != campaign)?;
                Some((other, &self.campaigns[c]))
            })
    }

    pub fn campaign_of(&self, q: &QName) -> Option<&Campaign> {
        self.campaign_index(q).map(|i| &self.campaigns[i])
    }

    /// The purposes a login (with its role memberships) belongs to.
    pub fn purposes_for<'a>(&'a self, login: &'a str, roles: &'a [String]) -> impl Iterator<Item = &'a Purpose> + 'a {
        self.purposes.values().filter(move |p| p.admits(login, roles))
    }

    /// Every campaign table pattern and shared table, for `check --live`.
    pub fn pseudonym_key_for(&self, q: &QName) -> Option<&std::sync::Arc<PseudonymKey>> {
        match self.campaign_of(q) {
            Some(c) => c.pseudonym.as_ref(),
            None => self.shared_pseudonym.as_ref(),
        }
    }
}

/// The rule code of a refusal, as POLICY.md names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Unparsable,
    UnsupportedStatement,
    NoPurpose,
    OutsidePurpose,
    UnknownRelation,
    CatalogLeak,
    CrossCampaign,
    ContractEnded,
    ProtectedColumn,
    ForbiddenFunction,
    ForbiddenSetting,
    AuditUnavailable,
}

impl Reason {
    /// What the client's HINT field suggests. SQLSTATE stays 42501 for every refusal (POLICY.md),
    /// so a misspelt name says here that it is a spelling matter, not a permission one.
    pub fn hint(self) -> &'static str {
        match self {
            Reason::UnknownRelation => {
                "unscharf resolves every name before Postgres sees the statement: check the spelling and search_path"
            }
            Reason::Unparsable | Reason::UnsupportedStatement => {
                "unscharf refuses what it cannot fully analyze; rephrase the statement, or ask a DBA if a client needs it"
            }
            _ => "unscharf enforces the purpose policies; ask a DBA if this refusal is wrong",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Reason::Unparsable => "unparsable",
            Reason::UnsupportedStatement => "unsupported_statement",
            Reason::NoPurpose => "no_purpose",
            Reason::OutsidePurpose => "outside_purpose",
            Reason::UnknownRelation => "unknown_relation",
            Reason::CatalogLeak => "catalog_leak",
            Reason::CrossCampaign => "cross_campaign",
            Reason::ContractEnded => "contract_ended",
            Reason::ProtectedColumn => "protected_column",
            Reason::ForbiddenFunction => "forbidden_function",
            Reason::ForbiddenSetting => "forbidden_setting",
            Reason::AuditUnavailable => "audit_unavailable",
        }
    }

    pub fn all() -> &'static [Reason] {
        &[
            Reason::Unparsable,
            Reason::UnsupportedStatement,
            Reason::NoPurpose,
            Reason::OutsidePurpose,
            Reason::UnknownRelation,
            Reason::CatalogLeak,
            Reason::CrossCampaign,
            Reason::ContractEnded,
            Reason::ProtectedColumn,
            Reason::ForbiddenFunction,
            Reason::ForbiddenSetting,
            Reason::AuditUnavailable,
        ]
    }

    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::all().iter().copied().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refused statement: the rule and a sentence naming rule, table or column, position and purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub detail: String,
    /// The campaigns of the tables the refused statement touched, for the audit trail.
    pub campaigns: Vec<String>,
}

impl Refusal {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Refusal {
            reason,
            detail: detail.into(),
            campaigns: Vec::new(),
        }
    }

    /// The message the client sees.
    pub fn message(&self) -> String {
        format!("unscharf: {} ({})", self.detail, self.reason.code())
    }
}
