//! Postgres's reading of a statement: libpg_query's parse tree, walked as JSON so that no node type is skipped.

use serde_json::{Map, Value};

use super::{alias, alias_body, AnalyzeError, Facts, Out};

/// CoercionForm's COERCE_EXPLICIT_CALL in libpg_query's protobuf: a call written `f(…)`.
const COERCE_EXPLICIT_CALL: i64 = 1;

/// Calls Postgres's grammar makes for operators (`LIKE … ESCAPE`, `SIMILAR TO`, `OVERLAPS`).
const GRAMMAR_CALLS: &[&str] = &["like_escape", "similar_to_escape", "overlaps"];

pub(super) fn postgres_facts(sql: &str) -> Result<Facts, AnalyzeError> {
    // The parser's message may quote the statement, and so a customer value: it is not passed on.
    let parsed =
        pg_query::parse(sql).map_err(|_| AnalyzeError::Differential("Postgres's parser does not accept it".into()))?;
    let [raw] = parsed.protobuf.stmts.as_slice() else {
        return Err(AnalyzeError::Differential("statement boundaries differ".into()));
    };
    let tree = serde_json::to_value(raw).map_err(|_| AnalyzeError::Differential("unreadable parse tree".into()))?;
    let top = tree.pointer("/stmt/node").and_then(Value::as_object);
    let (kind, _) = top
        .and_then(|m| m.iter().next())
        .ok_or_else(|| AnalyzeError::Differential("empty parse tree".into()))?;
    let mut names = Vec::new();
    walk_pg(&tree, "", "", 0, &mut names);
    names.sort_unstable();
    Ok(Facts {
        kind: pg_kind(kind),
        names,
    })
}

fn pg_kind(node: &str) -> &'static str {
    match node {
        "SelectStmt" => "query",
        "InsertStmt" => "insert",
        "UpdateStmt" => "update",
        "DeleteStmt" => "delete",
        "MergeStmt" => "merge",
        "CopyStmt" => "copy",
        "DeclareCursorStmt" => "declare",
        "FetchStmt" => "fetch",
        "ClosePortalStmt" => "close",
        "PrepareStmt" => "prepare",
        "ExecuteStmt" => "execute",
        "DeallocateStmt" => "deallocate",
        "ExplainStmt" => "explain",
        "VariableSetStmt" => "set",
        "VariableShowStmt" => "show",
        "TransactionStmt" => "transaction",
        "ListenStmt" => "listen",
        "UnlistenStmt" => "unlisten",
        "NotifyStmt" => "notify",
        "DiscardStmt" => "discard",
        "CreateTableAsStmt" => "create table as",
        _ => "other",
    }
}

fn text(v: &Value) -> Option<&str> {
    v.pointer("/node/String/sval").and_then(Value::as_str)
}

fn strings(list: Option<&Value>) -> Vec<String> {
    let items = list.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .map(|v| match v.pointer("/node/AStar") {
            Some(_) => "*".to_string(),
            None => text(v).unwrap_or("?").to_string(),
        })
        .collect()
}

/// A RangeVar or an Alias is not always wrapped in a typed node (an INSERT's `relation` is a bare
/// RangeVar), so those two are recognised by their fields. `level` counts the queries around a
/// node (see `Out`).
fn walk_pg(v: &Value, parent: &str, field: &str, level: usize, out: &mut Out) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| walk_pg(i, parent, field, level, out)),
        Value::Object(m) => {
            if let Some(Value::Object(node)) = m.get("node") {
                if let Some((ty, body)) = node.iter().next() {
                    pg_node(ty, body, parent, field, level, out);
                    return;
                }
            }
            if m.contains_key("relname") && m.contains_key("inh") {
                pg_node("RangeVar", v, parent, field, level, out);
            } else if m.contains_key("aliasname") && m.contains_key("colnames") {
                pg_node("Alias", v, parent, field, level, out);
            } else {
                fields(m, parent, level, out);
            }
        }
        _ => {}
    }
}

fn fields(m: &Map<String, Value>, ty: &str, level: usize, out: &mut Out) {
    for (k, child) in m {
        walk_pg(child, ty, k, level, out);
    }
}

fn pg_node(ty: &str, body: &Value, parent: &str, field: &str, level: usize, out: &mut Out) {
    let Some(m) = body.as_object() else { return };
    let mut push = |fact: String| out.push(format!("{level}: {fact}"));
    match ty {
        // The operands of a set operation (`larg`, `rarg`, bare SelectStmts) belong to its level.
        "SelectStmt" => return fields(m, ty, level + 1, out),
        "ColumnRef" => push(format!("column {}", strings(m.get("fields")).join("."))),
        "AIndirection" => {
            for item in m.get("indirection").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = text(item) {
                    push(format!("field {name}"));
                } else if item.pointer("/node/AStar").is_some() {
                    push("field *".into());
                }
            }
        }
        // Calls written as calls; the SQL-syntax forms (EXTRACT, TRIM, …) are pg_catalog's
        // whatever sqlparser makes of them.
        "FuncCall" if m.get("funcformat").and_then(Value::as_i64) == Some(COERCE_EXPLICIT_CALL) => {
            let name = strings(m.get("funcname"));
            if !matches!(name.as_slice(), [s, f] if s == "pg_catalog" && GRAMMAR_CALLS.contains(&f.as_str())) {
                push(format!("function {}", name.join(".")))
            }
        }
        "SetToDefault" => push("DEFAULT".into()),
        // `SET (a, b) = (SELECT …)`: Postgres's tree repeats the source under every target.
        "MultiAssignRef" if m.get("colno").and_then(Value::as_i64) != Some(1) => return,
        "ColumnDef" => push(format!(
            "column definition {}",
            m.get("colname").and_then(Value::as_str).unwrap_or_default()
        )),
        "RangeVar" => push(format!(
            "relation {}",
            join_nonempty(&[m.get("catalogname"), m.get("schemaname"), m.get("relname")])
        )),
        "Alias" => {
            let name = m.get("aliasname").and_then(Value::as_str).unwrap_or_default();
            return push(alias(name, &strings(m.get("colnames"))));
        }
        "ResTarget" => {
            let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
            let path = std::iter::once(name.to_string())
                .chain(strings(m.get("indirection")))
                .collect::<Vec<_>>();
            // A SELECT's targets and RETURNING lists name outputs; the target lists of UPDATE, ON
            // CONFLICT DO UPDATE and MERGE, and an INSERT's column list, name columns written.
            match (parent, field) {
                ("SelectStmt", "target_list") | (_, "returning_list") if !name.is_empty() => {
                    push(format!("output {name}"))
                }
                ("SelectStmt", "target_list") | (_, "returning_list") => {}
                (_, "target_list" | "cols") => push(format!("target {}", path.join("."))),
                _ => {}
            }
        }
        "CommonTableExpr" => {
            let name = m.get("ctename").and_then(Value::as_str).unwrap_or_default();
            push(format!("cte {}", alias_body(name, &strings(m.get("aliascolnames")))));
        }
        "CopyStmt" => {
            for col in strings(m.get("attlist")) {
                push(format!("target {col}"));
            }
        }
        _ => {}
    }
    fields(m, ty, level, out);
}

fn join_nonempty(parts: &[Option<&Value>]) -> String {
    parts
        .iter()
        .filter_map(|p| p.and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}
