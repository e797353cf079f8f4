//! The one place serde_yaml is called: typed YAML loading with errors that name the file, line and key.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A YAML document that could not be read into the expected structure.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct YamlError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// serde_yaml's message, which starts with the dotted path of the offending key.
    pub message: String,
}

/// Parses `text` (the contents of `file`) as `T`, rejecting unknown keys where `T` says so, and a
/// key repeated in one map: the typed maps keep the last one silently (round 262 CU1: a second
/// `stadtwerke.customers: { columns: all }`, as a merge leaves it, showed every masked column).
pub fn from_yaml<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, YamlError> {
    let typed = serde_yaml::from_str(text).map_err(|e| yaml_error(text, file, e))?;
    serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| yaml_error(text, file, e))?;
    Ok(typed)
}

fn yaml_error(text: &str, file: &Path, e: serde_yaml::Error) -> YamlError {
    let mut message = e.to_string();
    let line = e.location().map(|l| l.line());
    let line = duplicate_line(text, &message, line).or(line);
    // serde_yaml appends " at line L column C"; the line already leads the message.
    if let Some(pos) = message.rfind(" at line ") {
        message.truncate(pos);
    }
    message.push_str(hint(&message));
    YamlError {
        file: file.to_path_buf(),
        line,
        message,
    }
}

/// serde_yaml places a repeated key at the start of its map; the line of its second use is the
/// one to show.
fn duplicate_line(text: &str, message: &str, map_line: Option<usize>) -> Option<usize> {
    let key = match message.split_once("duplicate entry with key \"") {
        Some((_, rest)) => rest.split('"').next()?,
        None => message.split_once("duplicate field `")?.1.split('`').next()?,
    };
    let from = map_line?.saturating_sub(1);
    let rest: String = text.lines().skip(from).map(|l| format!("{l}\n")).collect();
    let first = block_key_line(&rest, key)?;
    let after: String = rest.lines().skip(first).map(|l| format!("{l}\n")).collect();
    Some(from + first + block_key_line(&after, key)?)
}

/// What to do about the messages a DBA met without a clue (round 94): the YAML parser's, where
/// indentation broke the structure, and chrono's for a date.
fn hint(message: &str) -> &'static str {
    const STRUCTURE: &[&str] = &[
        "did not find expected key",
        "mapping values are not allowed",
        "did not find expected '-'",
        "while parsing a block",
    ];
    const DATE: &[&str] = &[
        "input is out of range",
        "input contains invalid characters",
        "premature end of input",
        "trailing input",
    ];
    if message.contains("found character that cannot start any token") {
        " (YAML indents with spaces, never tabs; a value that starts with @ or ` must be quoted)"
    } else if message.contains("expected a sequence") {
        " (write a list, e.g. `[insert, update]` or `[agent_wasser]`)"
    } else if message.contains("expected a boolean") {
        " (write true or false)"
    } else if message.contains("missing field") {
        " (is the key missing, misspelt, or indented under another key than it belongs to?)"
    } else if STRUCTURE.iter().any(|m| message.contains(m)) {
        " (check this line's indentation against the lines above it: keys of one map line up, and a nested map is indented deeper than its key)"
    } else if DATE.iter().any(|m| message.ends_with(m)) {
        " (expected a date as YYYY-MM-DD, e.g. 2027-03-31)"
    } else {
        ""
    }
}

/// Finds the 1-based line of `key`, for errors found after parsing (validation) that serde cannot
/// locate itself: first as a block key (`key:` starting a line), else as a token in flow style
/// (`{ key: v }`, `[a, key]`).
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    block_key_line(text, key).or_else(|| flow_token_line(text, key))
}

/// Finds the line of a nested key given as its path (`["hotline", "water.customers"]`): each part
/// is looked for from the line of the part before it on, so a name that also occurs earlier in the
/// file is found where it is meant.
pub fn line_of_path(text: &str, path: &[&str]) -> Option<usize> {
    let mut found = None;
    let mut skip = 0;
    for part in path {
        let rest: String = text.lines().skip(skip).map(|l| format!("{l}\n")).collect();
        if let Some(l) = line_of_key(&rest, part) {
            skip += l - 1;
            found = Some(skip + 1);
        }
    }
    found
}

fn block_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.strip_prefix(key)
                .map(|rest| rest.trim_start().starts_with(':'))
                .unwrap_or(false)
                || t.strip_prefix(&format!("\"{key}\""))
                    .map(|rest| rest.trim_start().starts_with(':'))
                    .unwrap_or(false)
        })
        .map(|i| i + 1)
}

fn flow_token_line(text: &str, key: &str) -> Option<usize> {
    if key.is_empty() {
        return None;
    }
    text.lines()
        .position(|line| {
            if line.trim_start().starts_with('#') {
                return false;
            }
            let code = line.split(" #").next().unwrap_or(line);
            code.match_indices(key).any(|(i, _)| {
                let before = code[..i].chars().next_back();
                let after = code[i + key.len()..].chars().next();
                matches!(before, None | Some(' ' | '[' | '{' | ',' | '"' | '\''))
                    && matches!(after, None | Some(':' | ',' | ']' | '}' | ' ' | '"' | '\''))
            })
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        port: u16,
    }

    #[test]
    fn a_key_given_twice_is_an_error() {
        let e = from_yaml::<Outer>("inner:\n  port: 1\n  port: 2\n", Path::new("x.yaml")).unwrap_err();
        assert!(
            e.to_string().starts_with("x.yaml:3: inner: duplicate field `port`"),
            "{e}"
        );
        let e = from_yaml::<std::collections::BTreeMap<String, u8>>("{a: 1, a: 2}\n", Path::new("x.yaml")).unwrap_err();
        assert!(e.to_string().contains("duplicate entry"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = from_yaml::<Outer>("inner:\n  port: 1\n  prot: 2\n", Path::new("x.yaml")).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("x.yaml:3: inner: unknown field `prot`"), "{text}");
        let e = from_yaml::<Outer>("inner:\n  port: nope\n", Path::new("x.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("x.yaml:2: inner.port: invalid type"), "{e}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Dated {
        on: chrono::NaiveDate,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Listed {
        items: Vec<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Flag {
        on: bool,
    }

    #[test]
    fn parser_messages_come_with_what_to_do() {
        let e = from_yaml::<Outer>("inner:\n  port: 1\n prot: 2\n", Path::new("x.yaml")).unwrap_err();
        assert!(e.to_string().contains("check this line's indentation"), "{e}");
        let e = from_yaml::<Dated>("on: 2027-31-03\n", Path::new("x.yaml")).unwrap_err();
        assert!(e.to_string().contains("expected a date as YYYY-MM-DD"), "{e}");
        let e = from_yaml::<Outer>("inner:\n  port: 1\n", Path::new("x.yaml"));
        assert!(e.is_ok());
        // Round 116: a tab, a scalar for a list, `yes` for a boolean, a key under the wrong parent.
        let e = from_yaml::<Outer>("inner:\n\tport: 1\n", Path::new("x.yaml")).unwrap_err();
        assert!(e.to_string().contains("never tabs"), "{e}");
        let e = from_yaml::<Listed>("items: one\n", Path::new("x.yaml")).unwrap_err();
        assert!(e.to_string().contains("write a list"), "{e}");
        let e = from_yaml::<Flag>("on: yes\n", Path::new("x.yaml")).unwrap_err();
        assert!(e.to_string().contains("write true or false"), "{e}");
        let e = from_yaml::<Outer>("inner: {}\n", Path::new("x.yaml")).unwrap_err();
        assert!(e.to_string().contains("indented under another key"), "{e}");
    }

    #[test]
    fn finds_key_lines() {
        let text = "a: 1\nb:\n  c: 2\n  \"d.e\": 3\n";
        assert_eq!(line_of_key(text, "c"), Some(3));
        assert_eq!(line_of_key(text, "d.e"), Some(4));
        assert_eq!(line_of_key(text, "zz"), None);
        let flow = "# mask: in a comment\ntables: [a.*, b.c]\nx: { phone: { mask: last(3) } }\n";
        assert_eq!(line_of_key(flow, "b.c"), Some(2));
        assert_eq!(line_of_key(flow, "a.*"), Some(2));
        assert_eq!(line_of_key(flow, "mask"), Some(3));
        assert_eq!(line_of_key(flow, "b"), None, "only whole tokens");
        let nested = "campaign: water\ntables: [water.*]\nhotline:\n  water.x: 1\n";
        assert_eq!(line_of_path(nested, &["tables", "water.*"]), Some(2));
        assert_eq!(line_of_path(nested, &["hotline", "water.x"]), Some(4));
        assert_eq!(line_of_path(nested, &["nothing", "water.x"]), Some(4));
    }
}
