//! `[NOT] DEFERRABLE` in transaction statements, which sqlparser does not know: SQLAlchemy on
//! psycopg sends `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY NOT DEFERRABLE` for every
//! read-only connection (round 104). The mode only makes a serializable read-only transaction
//! wait for a safe snapshot; the analyzer reads the statement without it, and the server gets
//! the text as sent.

/// The statement without its `[NOT] DEFERRABLE` modes, when it is a plain BEGIN, START
/// TRANSACTION, SET TRANSACTION or SET SESSION CHARACTERISTICS made of words and commas only;
/// None when there is nothing to take out.
pub(super) fn without_deferrable(clean: &str) -> Option<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in clean.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c.to_ascii_lowercase());
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        match c {
            ',' => tokens.push(",".into()),
            ';' => tokens.push(";".into()),
            c if c.is_whitespace() => {}
            _ => return None,
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    let words: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let head = match words.as_slice() {
        ["begin", ..] => 1,
        ["start", "transaction", ..] | ["set", "transaction", ..] => 2,
        ["set", "session", "characteristics", "as", "transaction", ..] => 5,
        _ => return None,
    };
    // Transaction modes only: anything else is for sqlparser to read as it is.
    const MODES: &[&str] = &[
        "work",
        "transaction",
        "isolation",
        "level",
        "serializable",
        "repeatable",
        "read",
        "committed",
        "uncommitted",
        "write",
        "only",
        "not",
        "deferrable",
        ",",
        ";",
    ];
    if !words[head..].iter().all(|w| MODES.contains(w)) {
        return None;
    }
    let mut out: Vec<&str> = words[..head].to_vec();
    let mut removed = false;
    let mut i = head;
    while i < words.len() {
        let (skip, is_mode) = match &words[i..] {
            ["not", "deferrable", ..] => (2, true),
            ["deferrable", ..] => (1, true),
            _ => (1, false),
        };
        if is_mode {
            removed = true;
            // The comma that joined it to the mode before it, or else the one after it.
            if out.last() == Some(&",") {
                out.pop();
            } else if words.get(i + skip) == Some(&",") {
                i += 1;
            }
        } else {
            out.extend(&words[i..i + skip]);
        }
        i += skip;
    }
    removed.then(|| {
        let mut text = String::new();
        for t in out {
            if !text.is_empty() && t != "," && t != ";" {
                text.push(' ');
            }
            text.push_str(t);
        }
        text
    })
}

#[cfg(test)]
mod tests {
    use super::without_deferrable;

    #[test]
    fn deferrable_modes_are_taken_out_of_transaction_statements_only() {
        for (sql, want) in [
            (
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY NOT DEFERRABLE",
                Some("begin isolation level repeatable read read only"),
            ),
            (
                "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE",
                Some("begin isolation level serializable read only"),
            ),
            ("BEGIN DEFERRABLE", Some("begin")),
            (
                "START TRANSACTION READ ONLY, DEFERRABLE, ISOLATION LEVEL SERIALIZABLE",
                Some("start transaction read only, isolation level serializable"),
            ),
            (
                "SET TRANSACTION DEFERRABLE ,READ ONLY;",
                Some("set transaction read only;"),
            ),
            (
                "SET SESSION CHARACTERISTICS AS TRANSACTION NOT DEFERRABLE",
                Some("set session characteristics as transaction"),
            ),
            ("BEGIN READ ONLY", None),
            ("SELECT deferrable FROM t", None),
            ("SET TRANSACTION SNAPSHOT '00000003-1'", None),
            ("BEGIN; SELECT 1 AS deferrable", None),
        ] {
            assert_eq!(without_deferrable(sql).as_deref(), want, "{sql}");
        }
    }
}
