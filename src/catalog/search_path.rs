//! search_path as Postgres reads and applies it: the setting's syntax, name arrays, and the effective path.

use super::Catalog;

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

/// Splits a search_path setting (`"$user", public, "My Schema"`) into schema names exactly as
/// Postgres's SplitIdentifierString does, since any difference lets a name resolve elsewhere than
/// judged: only its five ASCII whitespace characters separate (a no-break space is part of a
/// name), unquoted names fold to lower case in ASCII only, and names are cut to 63 bytes. None
/// for a list Postgres rejects, and for one of more than MAX_PATH_SCHEMAS names.
pub fn parse_search_path(setting: &str) -> Option<Vec<String>> {
    let out = split_search_path(setting)?;
    (out.len() <= MAX_PATH_SCHEMAS).then_some(out)
}

/// Schemas a search_path may name through unscharf: each unqualified name is looked up along
/// every one, so a path of a million names made each lookup take 15 ms and each copy of it
/// megabytes (round 143).
pub const MAX_PATH_SCHEMAS: usize = 100;

fn split_search_path(setting: &str) -> Option<Vec<String>> {
    let b = setting.as_bytes();
    let space = |i: usize| {
        b.get(i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c))
    };
    let mut i = 0;
    while space(i) {
        i += 1;
    }
    let mut out = Vec::new();
    if i == b.len() {
        return Some(out);
    }
    loop {
        let mut name = String::new();
        if b[i] == b'"' {
            i += 1;
            loop {
                let end = i + setting[i..].find('"')?;
                name.push_str(&setting[i..end]);
                i = end + 1;
                if b.get(i) != Some(&b'"') {
                    break;
                }
                name.push('"');
                i += 1;
            }
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' && !space(i) {
                i += 1;
            }
            if i == start {
                return None;
            }
            name = setting[start..i].to_ascii_lowercase();
        }
        while space(i) {
            i += 1;
        }
        out.push(truncate_identifier(name));
        match b.get(i) {
            None => return Some(out),
            Some(b',') => {
                i += 1;
                while space(i) {
                    i += 1;
                }
                if i == b.len() {
                    return None;
                }
            }
            Some(_) => return None,
        }
    }
}

/// The elements of a name[] in Postgres's array text form (`{crm_agents,"a b"}`: the probe's roles).
pub fn parse_name_array(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => item.push(chars.next()?),
                    '"' => break,
                    c => item.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                item.push(c);
            }
        }
        out.push(item);
        match chars.next() {
            None => break,
            Some(',') if chars.peek().is_some() => {}
            Some(_) => return None,
        }
    }
    Some(out)
}

/// A name cut to NAMEDATALEN - 1 bytes, at a character boundary, as Postgres stores it.
pub fn truncate_identifier(mut name: String) -> String {
    if name.len() > 63 {
        let mut at = 63;
        while !name.is_char_boundary(at) {
            at -= 1;
        }
        name.truncate(at);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_parsing() {
        let p = |s: &str| parse_search_path(s);
        let v = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(p("\"$user\", public"), v(&["$user", "public"]));
        assert_eq!(p("Stadtwerke,\"My \"\"S\"\"\""), v(&["stadtwerke", "My \"S\""]));
        assert_eq!(p(""), v(&[]));
        assert_eq!(p(" \t\n\r\x0c "), v(&[]));
        // Only ASCII whitespace separates: other spaces belong to the name (round 20).
        assert_eq!(p("\u{a0}stadtwerke, zeitung"), v(&["\u{a0}stadtwerke", "zeitung"]));
        assert_eq!(p("stadtwerke\u{3000},zeitung"), v(&["stadtwerke\u{3000}", "zeitung"]));
        assert_eq!(p("\x0bstadtwerke"), v(&["\x0bstadtwerke"]));
        // Whitespace inside an unquoted item ends it: what follows is a syntax error.
        assert_eq!(p("stadtwerke zeitung"), None);
        // Only ASCII letters fold; names are cut to 63 bytes, at a character boundary.
        assert_eq!(p("ÄBC"), v(&["Äbc"]));
        assert_eq!(p(&"a".repeat(70)), v(&[&"a".repeat(63)]));
        assert_eq!(p(&format!("{}é", "a".repeat(62))), v(&[&"a".repeat(62)]));
        assert_eq!(p("\"\", a"), v(&["", "a"]));
        for bad in ["a,", ",a", "a,,b", "\"a", "\"a\"b", "a b"] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn name_arrays_are_read_as_postgres_writes_them() {
        let v = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(parse_name_array("{\"a b\",\"q\\\"\",c}"), v(&["a b", "q\"", "c"]));
        // Role names come through as named (the temp-schema renaming served current_schemas,
        // which the probe no longer reads).
        assert_eq!(parse_name_array("{pg_temp_3,public}"), v(&["pg_temp_3", "public"]));
        assert_eq!(parse_name_array("{}"), v(&[]));
        for bad in ["", "{", "{a,}", "{\"a}", "{a\"b\"c}x"] {
            assert_eq!(parse_name_array(bad), None, "{bad}");
        }
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
