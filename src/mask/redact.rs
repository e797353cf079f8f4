//! Rule 11: errors and notices reaching the client carry no row values. DETAIL, WHERE and internal
//! queries are replaced or removed; the message of data exceptions (classes 22, 23) and of PL/pgSQL
//! RAISE (class P0) is replaced; SQLSTATE and identifier fields are kept for drivers.

/// Redacts the fields of an ErrorResponse or NoticeResponse; returns None when nothing changed.
pub fn redact(fields: &[(u8, &str)]) -> Option<Vec<(u8, String)>> {
    let code = fields.iter().find(|(c, _)| *c == b'C').map(|(_, v)| *v).unwrap_or("");
    let class = code.get(..2).unwrap_or("");
    let withheld_message = matches!(class, "22" | "23" | "P0");
    let needs = fields
        .iter()
        .any(|(c, _)| matches!(c, b'D' | b'W' | b'q' | b'p') || (withheld_message && *c == b'M'));
    if !needs {
        return None;
    }
    let mut out = Vec::with_capacity(fields.len());
    for (c, v) in fields {
        match c {
            b'D' => out.push((*c, "detail withheld by unscharf (it may contain row values)".to_owned())),
            b'W' => out.push((*c, "context withheld by unscharf".to_owned())),
            b'q' | b'p' => {}
            b'M' if withheld_message => out.push((*c, withheld(class, code))),
            _ => out.push((*c, (*v).to_owned())),
        }
    }
    Some(out)
}

fn withheld(class: &str, code: &str) -> String {
    let what = match class {
        "22" => "data exception",
        "23" => "integrity constraint violation",
        _ => "error raised by a function",
    };
    format!("{what} (SQLSTATE {code}); the message was withheld by unscharf because it may contain row values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_exceptions_lose_message_and_detail() {
        let f = [
            (b'S', "ERROR"),
            (b'C', "23505"),
            (
                b'M',
                "duplicate key value violates unique constraint \"leads_email_key\"",
            ),
            (b'D', "Key (email)=(anna.schmidt@example.org) already exists."),
            (b's', "zeitung"),
            (b'n', "leads_email_key"),
        ];
        let out = redact(&f).unwrap();
        let text = format!("{out:?}");
        assert!(!text.contains("anna.schmidt"));
        assert!(out.contains(&(b'C', "23505".into())));
        assert!(out.contains(&(b'n', "leads_email_key".into())));
        assert!(out.iter().any(|(c, m)| *c == b'M' && m.contains("23505")));
    }

    #[test]
    fn other_errors_keep_message_but_lose_context() {
        let f = [
            (b'C', "42703"),
            (b'M', "column \"x\" does not exist"),
            (b'W', "SQL function f line 1"),
        ];
        let out = redact(&f).unwrap();
        assert!(out.contains(&(b'M', "column \"x\" does not exist".into())));
        assert!(out.contains(&(b'W', "context withheld by unscharf".into())));
        assert_eq!(redact(&[(b'C', "42601"), (b'M', "syntax error")]), None);
    }
}
