//! Rule 11: errors and notices reaching the client carry no row values. DETAIL, WHERE and internal
//! queries are replaced or removed; the message of data exceptions (classes 22, 23), of exceeded
//! limits (class 54, which state sizes of stored values), of PL/pgSQL RAISE (class P0) and of name
//! errors read from values (classes 42, 3F without a position) is replaced; SQLSTATE and
//! identifier fields are kept for drivers. What database
//! code raised itself (RAISE, plpy.notice, elog …) can say anything in any field and any class, so
//! only its severity and SQLSTATE pass.

/// A LOG or DEBUG notice: the server's own tracing (`trace_sort`, `debug_print_*`, debug levels of
/// `client_min_messages`), which reports sizes of sorted rows, transaction ids and plan trees.
/// Clients never need it, and it reaches them only when they ask; it is dropped, not redacted.
pub fn server_trace(fields: &[(u8, &str)]) -> bool {
    let severity = fields
        .iter()
        .find(|(c, _)| *c == b'V')
        .or_else(|| fields.iter().find(|(c, _)| *c == b'S'))
        .map_or("", |(_, v)| *v);
    severity == "LOG" || severity.starts_with("DEBUG")
}

/// An ErrorResponse or NoticeResponse as the client may see it, appended to `out`: redacted, and
/// nothing at all for a notice of the server's own tracing. The session and its startup share it.
pub fn forward(f: &crate::wire::Frame, notice: bool, out: &mut bytes::BytesMut) -> Result<(), crate::wire::WireError> {
    let fields = crate::wire::backend::error_fields(f.body())?;
    if notice && server_trace(&fields) {
        return Ok(());
    }
    match redact(&fields) {
        None => out.extend_from_slice(&f.raw),
        Some(r) => out.extend_from_slice(&crate::wire::build::error_or_notice(notice, r)),
    }
    Ok(())
}

/// Redacts the fields of an ErrorResponse or NoticeResponse; returns None when nothing changed.
pub fn redact(fields: &[(u8, &str)]) -> Option<Vec<(u8, String)>> {
    let field = |code: u8| fields.iter().find(|(c, _)| *c == code).map(|(_, v)| *v);
    let code = field(b'C').unwrap_or("");
    let class = code.get(..2).unwrap_or("");
    // A message with a context arose inside a function, trigger or COPY: a built-in raising it
    // there echoes what that code passed it (`current_setting('x_' || phone)`).
    let by_code = raised_by_code(field(b'F'), field(b'R')) || field(b'W').is_some();
    // Class 54 states sizes: "index row size 2720 exceeds maximum 2704" counts the stored
    // values an index keeps beside the written one (round 186 W2).
    // A name error with no position in the statement came from a value read as a name while the
    // statement ran (round 235 BT2: `quote_ident(name)::regclass`, `current_setting(city)`,
    // `to_tsquery(note)`, a jsonpath made of a value): the quoted name is that value. Errors in
    // the statement's own text carry its position, and `permission denied for table t` quotes
    // nothing.
    let value_named =
        matches!(class, "42" | "3F") && field(b'P').is_none() && field(b'M').is_some_and(|m| m.contains('"'));
    let withheld_message = by_code || value_named || matches!(class, "22" | "23" | "54" | "P0");
    let drop = |c: u8| match c {
        b'q' | b'p' => true,
        // A hint of a data exception may quote the data.
        b'H' => withheld_message,
        // `RAISE … USING COLUMN = …` and its kind fill these with whatever the code chose.
        b's' | b't' | b'c' | b'd' | b'n' => by_code,
        _ => false,
    };
    let needs = fields
        .iter()
        .any(|(c, _)| matches!(c, b'D' | b'W') || drop(*c) || (withheld_message && *c == b'M'));
    if !needs {
        return None;
    }
    let mut out = Vec::with_capacity(fields.len());
    for (c, v) in fields {
        match c {
            c if drop(*c) => {}
            b'D' => out.push((*c, "detail withheld by unscharf (it may contain row values)".to_owned())),
            b'W' => out.push((*c, "context withheld by unscharf".to_owned())),
            b'M' if withheld_message => out.push((*c, withheld(class, code, by_code, &field))),
            _ => out.push((*c, (*v).to_owned())),
        }
    }
    Some(out)
}

/// Whether a message was raised by code stored in the database rather than by the server itself:
/// a procedural language's own report functions, or no source file named (which the server always
/// names), so unknown origins count as code.
fn raised_by_code(file: Option<&str>, routine: Option<&str>) -> bool {
    const PL_FILES: &[&str] = &["pl_exec.c", "plperl.c", "pltcl.c"];
    match file {
        None => true,
        Some(f) => PL_FILES.contains(&f) || f.starts_with("plpy_") || routine.is_some_and(|r| r == "exec_stmt_raise"),
    }
}

/// The message that replaces a withheld one. For a constraint the server itself reports, it names
/// the kind, table, column and constraint from the identifier fields, which hold no row values
/// (round 76: "integrity constraint violation" alone told a person in psql nothing).
fn withheld<'a>(class: &str, code: &str, by_code: bool, field: &impl Fn(u8) -> Option<&'a str>) -> String {
    let what = match (class, code) {
        _ if by_code => "message raised by database code",
        (_, "23502") => "not-null constraint violated",
        (_, "23503") => "foreign key constraint violated",
        (_, "23505") => "unique constraint violated",
        (_, "23514") => "check constraint violated",
        (_, "23P01") => "exclusion constraint violated",
        ("22", _) => "data exception",
        ("23", _) => "integrity constraint violation",
        ("54", _) => "program limit exceeded",
        ("42" | "3F", _) => "a name that does not exist, read from a value while the statement ran",
        _ => "error raised by a function",
    };
    let mut on = String::new();
    if class == "23" && !by_code {
        let table = match (field(b's'), field(b't')) {
            (Some(s), Some(t)) => Some(format!("{s}.{t}")),
            (None, Some(t)) => Some(t.to_owned()),
            _ => None,
        };
        if let Some(t) = table {
            on.push_str(&format!(" on {t}"));
            if let Some(c) = field(b'c') {
                on.push_str(&format!(".{c}"));
            }
        }
        if let Some(n) = field(b'n') {
            on.push_str(&format!(" ({n})"));
        }
    }
    format!("{what}{on} (SQLSTATE {code}); the message was withheld by unscharf because it may contain row values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_tracing_is_recognised_by_severity() {
        let notice = |v: &'static str| {
            vec![
                (b'S', v),
                (b'V', v),
                (b'C', "00000"),
                (b'M', "internal sort ended, 25 kB used"),
            ]
        };
        assert!(server_trace(&notice("LOG")));
        assert!(server_trace(&notice("DEBUG")));
        assert!(!server_trace(&notice("NOTICE")));
        assert!(!server_trace(&notice("WARNING")));
        assert!(!server_trace(&notice("INFO")));
        // A localized S with no V: the server is older than 9.6, and S is all there is.
        assert!(server_trace(&[(b'S', "LOG"), (b'M', "x")]));
    }

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
            (b'F', "nbtinsert.c"),
        ];
        let out = redact(&f).unwrap();
        let text = format!("{out:?}");
        assert!(!text.contains("anna.schmidt"));
        assert!(out.contains(&(b'C', "23505".into())));
        assert!(out.contains(&(b'n', "leads_email_key".into())));
        assert!(out.iter().any(|(c, m)| *c == b'M' && m.contains("23505")));
        assert!(
            out.iter()
                .any(|(c, m)| *c == b'M' && m.starts_with("unique constraint violated (leads_email_key)")),
            "{out:?}"
        );
        let not_null = [
            (b'C', "23502"),
            (
                b'M',
                "null value in column \"subject\" of relation \"tickets\" violates not-null constraint",
            ),
            (b'D', "Failing row contains (1, x)."),
            (b's', "stadtwerke"),
            (b't', "tickets"),
            (b'c', "subject"),
            (b'F', "execMain.c"),
        ];
        // Round 186 W2: a size counts the stored values an index keeps beside the written one.
        let size = [
            (b'C', "54000"),
            (
                b'M',
                "index row size 2720 exceeds btree version 4 maximum 2704 for index \"leads_name_email\"",
            ),
            (b'F', "nbtutils.c"),
        ];
        let out = format!("{:?}", redact(&size).unwrap());
        assert!(
            !out.contains("2720") && out.contains("program limit exceeded (SQLSTATE 54000)"),
            "{out}"
        );
        let out = redact(&not_null).unwrap();
        assert!(
            out.iter().any(|(c, m)| *c == b'M'
                && m.starts_with("not-null constraint violated on stadtwerke.tickets.subject (SQLSTATE 23502)")),
            "{out:?}"
        );
    }

    #[test]
    fn other_errors_keep_message_but_lose_context() {
        let f = [
            (b'C', "42703"),
            (b'M', "column \"x\" does not exist"),
            (b'P', "8"),
            (b'F', "parse_relation.c"),
        ];
        assert_eq!(redact(&f), None);
        // Inside a function (it has a context), the message is that code's and is withheld too.
        let mut inside = f.to_vec();
        inside.push((b'W', "SQL function f line 1"));
        let out = redact(&inside).unwrap();
        assert!(out.iter().any(|(c, m)| *c == b'M' && m.contains("withheld")));
        assert!(out.contains(&(b'W', "context withheld by unscharf".into())));
        assert_eq!(
            redact(&[(b'C', "42601"), (b'M', "syntax error"), (b'F', "scan.l")]),
            None
        );
        assert_eq!(
            redact(&[
                (b'C', "42501"),
                (b'M', "permission denied for table tickets"),
                (b'F', "aclchk.c")
            ]),
            None
        );
    }

    /// Round 235 BT2: a value read as a name while the statement ran is quoted in the message,
    /// which has no position in the statement.
    #[test]
    fn names_read_from_values_are_withheld() {
        for (code, message, file) in [
            ("42P01", "relation \"Anna Schmidt\" does not exist", "namespace.c"),
            ("3F000", "schema \"Anna Schmidt\" does not exist", "namespace.c"),
            ("42883", "function \"Berlin\" does not exist", "regproc.c"),
            ("42704", "unrecognized configuration parameter \"Berlin\"", "guc.c"),
            ("42601", "syntax error in tsquery: \"Anna Schmidt\"", "tsquery.c"),
        ] {
            let out = redact(&[(b'C', code), (b'M', message), (b'F', file)]).expect(message);
            let m = &out.iter().find(|(c, _)| *c == b'M').unwrap().1;
            assert!(!m.contains("Anna") && !m.contains("Berlin") && m.contains(code), "{m}");
        }
    }

    /// Red-team round 13: a trigger's RAISE NOTICE showed a dropped column, a WARNING's HINT and an
    /// error's COLUMN field masked ones, in SQLSTATE classes the message rule did not cover.
    #[test]
    fn what_database_code_raises_keeps_only_severity_and_sqlstate() {
        for (code, file, routine) in [
            ("00000", "pl_exec.c", "exec_stmt_raise"),
            ("01000", "pl_exec.c", "exec_stmt_raise"),
            ("42501", "pl_exec.c", "exec_stmt_raise"),
            ("25001", "plpy_elog.c", "PLy_elog_impl"),
            ("XX000", "plperl.c", "plperl_util_elog"),
        ] {
            let f = [
                (b'S', "NOTICE"),
                (b'V', "NOTICE"),
                (b'C', code),
                (b'M', "Kunde 1001: IBAN DE89 3704 0044 0532 0130 00"),
                (b'H', "Telefon +49 30 1234567"),
                (b'c', "anna.schmidt@example.org"),
                (b't', "1984-07-02"),
                (b'F', file),
                (b'R', routine),
            ];
            let out = redact(&f).unwrap();
            let text = format!("{out:?}");
            for secret in ["DE89", "1234567", "anna.schmidt", "1984"] {
                assert!(!text.contains(secret), "{code} {file}: {text}");
            }
            assert!(out.contains(&(b'C', code.into())));
            assert!(out.contains(&(b'S', "NOTICE".into())));
        }
        // Round 14: a built-in's error raised inside a trigger echoes what the trigger passed it;
        // its context gives it away.
        let inside = [
            (b'C', "42704"),
            (b'M', "unrecognized configuration parameter \"crm.pref_+49 30 1234567\""),
            (b'W', "PL/pgSQL function stadtwerke.t() line 3 at assignment"),
            (b'F', "guc.c"),
            (b'R', "GetConfigOptionByName"),
        ];
        assert!(!format!("{:?}", redact(&inside).unwrap()).contains("1234567"));
        // No source file: unknown origin counts as code.
        assert!(redact(&[(b'C', "42501"), (b'M', "x 1234567")]).is_some());
        // The server's own notices and errors keep their words and identifiers.
        let own = [
            (b'S', "WARNING"),
            (b'C', "25P01"),
            (b'M', "there is no transaction in progress"),
            (b'F', "xact.c"),
            (b'R', "UserAbortTransactionBlock"),
        ];
        assert_eq!(redact(&own), None);
    }
}
