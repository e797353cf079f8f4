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

/// Parses `text` (the contents of `file`) as `T`, rejecting unknown keys where `T` says so.
pub fn from_yaml<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, YamlError> {
    serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        let mut message = e.to_string();
        // serde_yaml appends " at line L column C"; the line already leads the message.
        if let Some(pos) = message.rfind(" at line ") {
            message.truncate(pos);
        }
        YamlError {
            file: file.to_path_buf(),
            line,
            message,
        }
    })
}

/// Finds the 1-based line of `key:` at the start of a line (after indentation), for errors
/// found after parsing (validation) that serde cannot locate itself.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
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
    fn errors_name_file_line_and_key() {
        let e = from_yaml::<Outer>("inner:\n  port: 1\n  prot: 2\n", Path::new("x.yaml")).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("x.yaml:3: inner: unknown field `prot`"), "{text}");
        let e = from_yaml::<Outer>("inner:\n  port: nope\n", Path::new("x.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("x.yaml:2: inner.port: invalid type"), "{e}");
    }

    #[test]
    fn finds_key_lines() {
        let text = "a: 1\nb:\n  c: 2\n  \"d.e\": 3\n";
        assert_eq!(line_of_key(text, "c"), Some(3));
        assert_eq!(line_of_key(text, "d.e"), Some(4));
        assert_eq!(line_of_key(text, "zz"), None);
    }
}
