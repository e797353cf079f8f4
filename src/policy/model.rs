//! The policy files as DBAs write them (POLICY.md "Files"): strict serde structures, nothing resolved yet.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::mask::functions::Mask;

/// A campaign file, e.g. policies/stadtwerke.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignFile {
    /// The campaign's name, unique across files.
    pub campaign: String,
    /// What the engagement is, for humans.
    #[serde(default)]
    pub description: Option<String>,
    /// Last day of the contract; from the next day on, every statement touching its tables is refused.
    #[serde(default)]
    pub contract_ends: Option<NaiveDate>,
    /// Tables and views of this campaign: `schema.table` or `schema.*`.
    pub tables: Vec<String>,
    /// Purposes that may use tables, keyed by purpose name.
    #[serde(default)]
    pub purposes: BTreeMap<String, PurposeSpec>,
}

/// shared.yaml: reference data usable under every purpose.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedFile {
    /// Shared tables and their column rules.
    pub shared: BTreeMap<String, TableSpec>,
}

/// One purpose: who may act under it and what it may touch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeSpec {
    /// What the purpose is for, for humans.
    #[serde(default)]
    pub description: Option<String>,
    /// Login names, or `role:NAME` for members of an upstream role.
    #[serde(default)]
    pub members: Vec<String>,
    /// Granted tables with their column rules, keyed by `schema.table`.
    #[serde(default)]
    pub tables: BTreeMap<String, TableSpec>,
    /// User-defined functions (`schema.name`) this purpose may call.
    #[serde(default)]
    pub functions: Vec<String>,
}

/// Column rules and write grant for one table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// `all`, or a map of column name to rule; unlisted columns are dropped.
    pub columns: ColumnsSpec,
    /// Write statements allowed on the table.
    #[serde(default)]
    pub write: Vec<WriteKind>,
}

/// The kinds of write a table may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteKind {
    /// INSERT, and COPY FROM STDIN.
    Insert,
    /// UPDATE.
    Update,
    /// DELETE.
    Delete,
}

impl fmt::Display for WriteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteKind::Insert => "insert",
            WriteKind::Update => "update",
            WriteKind::Delete => "delete",
        })
    }
}

/// `columns: all` or `columns: { name: rule, ... }`.
#[derive(Debug, Clone)]
pub enum ColumnsSpec {
    All,
    Listed(BTreeMap<String, ColumnRule>),
}

/// The rule for one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnRule {
    Allow,
    Mask { mask: Mask, lookup: bool },
    Drop,
}

impl ColumnRule {
    pub fn is_allow(&self) -> bool {
        matches!(self, ColumnRule::Allow)
    }
}

impl fmt::Display for ColumnRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnRule::Allow => f.write_str("allow"),
            ColumnRule::Drop => f.write_str("drop"),
            ColumnRule::Mask { mask, lookup: true } => write!(f, "mask {mask} (lookup)"),
            ColumnRule::Mask { mask, .. } => write!(f, "mask {mask}"),
        }
    }
}

impl<'de> Deserialize<'de> for ColumnsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ColumnsSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`all` or a map of column names to rules")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ColumnsSpec, E> {
                if v == "all" {
                    Ok(ColumnsSpec::All)
                } else {
                    Err(E::custom(format!("`{v}`: expected `all` or a map of column rules")))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<ColumnsSpec, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, ColumnRule>()? {
                    if out.insert(k.clone(), v).is_some() {
                        return Err(de::Error::custom(format!("column `{k}` listed twice")));
                    }
                }
                Ok(ColumnsSpec::Listed(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ColumnRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ColumnRule;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`allow`, `drop` or `{ mask: F, lookup: true|false }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ColumnRule, E> {
                match v {
                    "allow" => Ok(ColumnRule::Allow),
                    "drop" => Ok(ColumnRule::Drop),
                    _ => Err(E::custom(format!(
                        "unknown column rule `{v}`: expected allow, drop or {{ mask: F }}"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<ColumnRule, A::Error> {
                let mut mask: Option<Mask> = None;
                let mut lookup = false;
                while let Some(key) = m.next_key::<String>()? {
                    match key.as_str() {
                        "mask" => {
                            let spec: String = m.next_value()?;
                            mask = Some(spec.parse().map_err(de::Error::custom)?);
                        }
                        "lookup" => lookup = m.next_value()?,
                        other => {
                            return Err(de::Error::unknown_field(other, &["mask", "lookup"]));
                        }
                    }
                }
                let mask = mask.ok_or_else(|| de::Error::missing_field("mask"))?;
                Ok(ColumnRule::Mask { mask, lookup })
            }
        }
        d.deserialize_any(V)
    }
}
