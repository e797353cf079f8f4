//! The schema as the analyzer sees it: relations, columns (table OID, attnum, type), functions, schemas.
//! Pure data with lookups; `live` fills it from the upstream, `offline` from a schema file.

pub mod live;
pub mod offline;

use ahash::{AHashMap as HashMap, AHashSet as HashSet};

use crate::policy::QName;

/// Index of a relation inside one Catalog snapshot.
pub type RelId = u32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub attnum: i16,
    pub type_oid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    Table,
    View,
    MaterializedView,
    Foreign,
    Sequence,
    Other,
}

impl RelKind {
    pub fn from_relkind(c: char) -> RelKind {
        match c {
            'r' | 'p' => RelKind::Table,
            'v' => RelKind::View,
            'm' => RelKind::MaterializedView,
            'f' => RelKind::Foreign,
            'S' => RelKind::Sequence,
            _ => RelKind::Other,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Relation {
    pub oid: u32,
    pub name: QName,
    pub kind: RelKind,
    pub columns: Vec<Column>,
}

impl Relation {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn is_system(&self) -> bool {
        is_system_schema(&self.name.schema)
    }
}

pub fn is_system_schema(schema: &str) -> bool {
    schema == "pg_catalog" || schema == "information_schema"
}

/// One consistent snapshot of the upstream schema.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Bumped on every refresh; analysis caches key on it.
    pub generation: u64,
    relations: Vec<Relation>,
    by_name: HashMap<QName, RelId>,
    by_oid: HashMap<u32, RelId>,
    by_bare_name: HashMap<String, Vec<RelId>>,
    /// Function name → schemas that define a function of that name.
    functions: HashMap<String, Vec<String>>,
    schemas: HashSet<String>,
    /// Operators defined outside pg_catalog (they may run user code).
    pub user_operators: HashSet<String>,
    /// Sequences, with the table that owns each (a serial or identity column), if any.
    sequences: HashMap<QName, Option<RelId>>,
}

impl Catalog {
    pub fn add_schema(&mut self, schema: &str) {
        self.schemas.insert(schema.to_owned());
    }

    pub fn add_relation(&mut self, rel: Relation) -> RelId {
        let id = self.relations.len() as RelId;
        self.schemas.insert(rel.name.schema.clone());
        self.by_name.insert(rel.name.clone(), id);
        if rel.oid != 0 {
            self.by_oid.insert(rel.oid, id);
        }
        self.by_bare_name.entry(rel.name.name.clone()).or_default().push(id);
        self.relations.push(rel);
        id
    }

    pub fn add_sequence(&mut self, name: QName, owner: Option<RelId>) {
        self.schemas.insert(name.schema.clone());
        self.sequences.insert(name, owner);
    }

    /// A sequence by name: Some(owner) when it exists, the owner being its table, if any.
    pub fn sequence(&self, q: &QName) -> Option<Option<RelId>> {
        self.sequences.get(q).copied()
    }

    pub fn add_function(&mut self, schema: &str, name: &str) {
        let schemas = self.functions.entry(name.to_owned()).or_default();
        if !schemas.iter().any(|s| s == schema) {
            schemas.push(schema.to_owned());
        }
    }

    pub fn rel(&self, id: RelId) -> &Relation {
        &self.relations[id as usize]
    }

    pub fn relations(&self) -> impl Iterator<Item = (RelId, &Relation)> {
        self.relations.iter().enumerate().map(|(i, r)| (i as RelId, r))
    }

    pub fn lookup(&self, q: &QName) -> Option<RelId> {
        self.by_name.get(q).copied()
    }

    pub fn by_oid(&self, oid: u32) -> Option<RelId> {
        self.by_oid.get(&oid).copied()
    }

    pub fn has_schema(&self, schema: &str) -> bool {
        self.schemas.contains(schema)
    }

    /// Relations named `name` in any schema.
    pub fn named(&self, name: &str) -> &[RelId] {
        self.by_bare_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Schemas defining a function called `name`.
    pub fn function_schemas(&self, name: &str) -> &[String] {
        self.functions.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// `schema.table.column` of an analyzed column reference.
    pub fn column_name(&self, c: crate::analyze::facts::ColRef) -> String {
        let r = self.rel(c.rel);
        format!(
            "{}.{}",
            r.name,
            r.columns.get(c.col as usize).map(|c| c.name.as_str()).unwrap_or("?")
        )
    }

    pub fn function_exists(&self, schema: &str, name: &str) -> bool {
        self.function_schemas(name).iter().any(|s| s == schema)
    }

    /// Merges the embedded snapshot of pg_catalog and information_schema (used offline).
    pub fn with_system_snapshot(mut self) -> Catalog {
        offline::add_system_snapshot(&mut self);
        self
    }
}

/// The order in which Postgres searches schemas for an unqualified name: pg_catalog first
/// unless the path places it explicitly, then the path's existing schemas.
pub fn effective_path(catalog: &Catalog, path: &[String], user: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(path.len() + 1);
    let explicit_catalog = path.iter().any(|s| s == "pg_catalog");
    if !explicit_catalog {
        out.push("pg_catalog".into());
    }
    for s in path {
        let s = if s == "$user" { user } else { s.as_str() };
        if catalog.has_schema(s) && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

/// Splits a search_path setting (`"$user", public, "My Schema"`) into schema names.
pub fn parse_search_path(setting: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = setting.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut item = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        item.push('"');
                    } else {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            item = item.trim().to_ascii_lowercase();
        }
        while chars.peek().is_some_and(|c| *c != ',') {
            chars.next();
        }
        out.push(item);
    }
    out
}

/// Opens the proxy's metadata connection and reads a snapshot.
pub async fn connect_and_load(config: &crate::config::Config, generation: u64) -> Result<Catalog, live::CatalogError> {
    let client = live::connect(config).await?;
    let mut client = client;
    live::load(&mut client, generation).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_parsing() {
        assert_eq!(parse_search_path("\"$user\", public"), vec!["$user", "public"]);
        assert_eq!(
            parse_search_path("Stadtwerke,\"My \"\"S\"\"\""),
            vec!["stadtwerke", "My \"S\""]
        );
        assert_eq!(parse_search_path(""), Vec::<String>::new());
    }

    #[test]
    fn effective_path_puts_pg_catalog_first_unless_explicit() {
        let mut c = Catalog::default();
        for s in ["pg_catalog", "public", "stadtwerke"] {
            c.add_schema(s);
        }
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            effective_path(&c, &p(&["$user", "public"]), "agent"),
            p(&["pg_catalog", "public"])
        );
        assert_eq!(
            effective_path(&c, &p(&["public", "pg_catalog", "stadtwerke"]), "a"),
            p(&["public", "pg_catalog", "stadtwerke"])
        );
        assert_eq!(
            effective_path(&c, &p(&["$user"]), "stadtwerke"),
            p(&["pg_catalog", "stadtwerke"])
        );
    }
}
