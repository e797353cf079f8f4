//! What a DBA's functions and views do, followed through the calls between them: a function whose
//! code calls one that reads a setting or draws from a sequence does so too (round 141: a policy's
//! helper called `app_config()`, which read `current_setting`; round 142: a view did).

use std::collections::{HashMap, HashSet};

use crate::policy::QName;

/// A DBA's function and its source text.
pub struct Code<'a> {
    pub name: QName,
    pub source: &'a str,
}

/// The identifiers of SQL or PL text, lower-cased: what a call of a function by name looks like.
/// Letters beyond ASCII count (round 142: `kampagne_für_sitzung()` split in two and was not
/// followed).
fn words(source: &str) -> impl Iterator<Item = String> {
    streams(source).into_iter().flatten()
}

/// The words of `source` in order, several times: with its comments blanked (a comment between
/// `INSERT INTO` and the table hid the write, round 149), and as written, in case the blanking
/// misread the text (round 150: an `E'…\'…'` string made a later `'--'` blank the line holding a
/// read). Each name is one word in its place, so that what follows INTO is the written table however
/// the name is spelled. Then, in no order, the words no place holds: the parts of a quoted
/// identifier (round 150: `"dob-matches"()`), a long name before Postgres cut it, and `U_AMP_NAME`
/// (round 252 CK1: the parts of `"zeitung".t` stood in place, `INTO "zeitung".t` put the table
/// four words after INTO, and its write into another campaign went unseen).
/// The code is also read with its string literals blanked: a `"` inside one (`'"'`) would
/// otherwise open a quoted name that ran on to the next `"`, swallowing the words between (round
/// 254 CM1: `INSERT INTO zeitung."leads"` after it went unseen). The others still read inside
/// strings, where `EXECUTE 'INSERT INTO …'` keeps its SQL.
/// Both readings are taken once per `Backslash`: which one Postgres uses depends on the
/// standard_conforming_strings in force where the code is compiled (round 255 CN1).
pub(super) fn streams(source: &str) -> Vec<Vec<String>> {
    let (raw, mut extra) = lex(source);
    let mut out = vec![raw];
    for reading in Backslash::BOTH {
        let plain = without_comments(source, reading);
        let (stripped, more) = lex(&plain);
        let (code, most) = lex(&super::code_order::blank_strings(&plain, reading));
        extra.extend(more);
        extra.extend(most);
        out.extend([stripped, code]);
    }
    out.push(extra);
    out
}

/// What a backslash in a plain `'…'` string does, which standard_conforming_strings decides when
/// Postgres reads the code: a function's own `SET` clause, its owner's or the database's defaults,
/// or the session's setting when it is compiled. unscharf does not follow which, and reads code
/// both ways (round 255 CN1: under `SET standard_conforming_strings = off`, `'caller\'s /* '`
/// was read as a string ending at the backslash and a comment that hid two writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Backslash {
    /// standard_conforming_strings on: a backslash escapes only in `E'…'`.
    Plain,
    /// standard_conforming_strings off: a backslash escapes in every `'…'` string.
    Escapes,
}

impl Backslash {
    pub(super) const BOTH: [Backslash; 2] = [Backslash::Plain, Backslash::Escapes];
}

/// The words of `text` in order, one per name (see `streams`).
pub(super) fn tokens(text: &str) -> Vec<String> {
    lex(text).0
}

/// The words of `text` in order, and those no place holds (see `streams`).
fn lex(text: &str) -> (Vec<String>, Vec<String>) {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let (mut out, mut extra) = (Vec::new(), Vec::new());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| is_word(c) || c == '"') {
        // A `U&"…"` name spells its letters as escapes, which no word shows (round 153):
        // `U_AMP_NAME` counts as SQL built at run time.
        let at = text.len() - rest.len() + start;
        let before = &text.as_bytes()[..at];
        if rest[start..].starts_with('"')
            && before.len() >= 2
            && before.ends_with(b"&")
            && before[at - 2] | 0x20 == b'u'
        {
            extra.push(U_AMP_NAME.to_owned());
        }
        rest = &rest[start..];
        if let Some(quoted) = rest.strip_prefix('"') {
            // A doubled quote is a quote inside the name (round 254: `"a""b"` read as two names).
            let mut end = 0;
            while let Some(n) = quoted[end..].find('"') {
                end += n;
                if !quoted[end + 1..].starts_with('"') {
                    break;
                }
                end += 2;
            }
            let end = if quoted[end..].starts_with('"') {
                end
            } else {
                quoted.len()
            };
            let unquoted = quoted[..end].replace("\"\"", "\"");
            let name = unquoted.as_str();
            // Postgres cuts a quoted name to 63 bytes too (round 254 CM3).
            let mut cut = name.len().min(63);
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(name[..cut].to_lowercase());
            if cut < name.len() {
                extra.push(name.to_lowercase());
            }
            if name.contains(|c: char| !is_word(c)) {
                extra.extend(
                    name.split(|c: char| !is_word(c))
                        .filter(|w| !w.is_empty())
                        .map(str::to_lowercase),
                );
            }
            rest = quoted.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
            let word = rest[..end].to_lowercase();
            // Postgres cuts a name to 63 bytes (round 155: a view named with 64 letters).
            if word.len() > 63 {
                let mut cut = 63;
                while !word.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push(word[..cut].to_owned());
                extra.push(word);
            } else {
                out.push(word);
            }
            rest = &rest[end..];
        }
    }
    (out, extra)
}

/// The word `tokens` gives a `U&"…"` name: see `code_reads::DYNAMIC_WORDS`.
pub const U_AMP_NAME: &str = "u&\"";

/// The string literal that starts at byte `i` of `text`, if one does (`'…'`, `E'…'` with its
/// backslash escapes, or dollar-quoted): where its contents start and end, and where the text
/// after it starts. Comment blanking and the PL/pgSQL reading of `code_order` skip strings alike.
pub(super) fn string_at(text: &str, i: usize, reading: Backslash) -> Option<(usize, usize, usize)> {
    let b = text.as_bytes();
    let ident = |j: usize| b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'$' || b[j] >= 0x80;
    match *b.get(i)? {
        b'\'' => {
            let escapes =
                reading == Backslash::Escapes || (i > 0 && matches!(b[i - 1], b'e' | b'E') && !(i > 1 && ident(i - 2)));
            let mut j = i + 1;
            while j < b.len() {
                match b[j] {
                    b'\\' if escapes => j += 2,
                    b'\'' if b.get(j + 1) == Some(&b'\'') => j += 2,
                    b'\'' => break,
                    _ => j += 1,
                }
            }
            let end = j.min(b.len());
            Some((i + 1, end, (end + 1).min(b.len())))
        }
        b'$' if !(i > 0 && ident(i - 1)) => {
            let end = i
                + 1
                + b[i + 1..]
                    .iter()
                    .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80))?;
            if b[end] != b'$' || b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            let tag = &text[i..=end];
            let body = end + 1;
            let close = text[body..].find(tag).map_or(b.len(), |n| body + n);
            Some((body, close, (close + tag.len()).min(b.len())))
        }
        _ => None,
    }
}

/// `source` with its comments (`-- …` and nested `/* … */`, outside string literals, `E'…'`
/// strings with their backslash escapes, dollar-quoted strings and quoted identifiers) blanked.
pub(super) fn without_comments(source: &str, reading: Backslash) -> String {
    let b = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
                i += 1;
            }
            b'\'' | b'$' => match string_at(source, i, reading) {
                Some((_, _, next)) => i = next,
                None => i += 1,
            },
            b'-' if b.get(i + 1) == Some(&b'-') => {
                out.push_str(&source[copied..i]);
                out.push(' ');
                // Postgres ends it at a line feed or a carriage return (round 227 BL2: a body
                // with CR line ends had the rest of it, a SET included, read as the comment).
                i = source[i..].find(['\n', '\r']).map_or(b.len(), |n| i + n);
                copied = i;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                out.push_str(&source[copied..i]);
                out.push(' ');
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(source.get(copied..).unwrap_or(""));
    out
}

/// `source` as its statements' words: comments (as `without_comments` reads them) and string
/// literals blanked, each quoted name made the word `q`; what is left of it is keywords, names,
/// operators and `;`.
pub(super) fn skeleton(source: &str, reading: Backslash) -> String {
    let text = without_comments(source, reading);
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        let next = match b[i] {
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && !(b[j] == b'"' && b.get(j + 1) != Some(&b'"')) {
                    j += if b[j] == b'"' { 2 } else { 1 };
                }
                Some(((j + 1).min(b.len()), " q "))
            }
            b'\'' | b'$' => string_at(&text, i, reading).map(|(_, _, next)| (next, " ")),
            _ => None,
        };
        match next {
            Some((next, stand_in)) => {
                out.push_str(&text[copied..i]);
                out.push_str(stand_in);
                i = next;
                copied = next;
            }
            None => i += 1,
        }
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    out
}

/// Who names whom among `code`, read once for any number of closures (a catalog load takes one
/// per table its functions write).
pub struct Callers<'c, 'a> {
    code: &'c [Code<'a>],
    /// For each function name, the functions whose source holds it as a word.
    named_by: HashMap<String, Vec<usize>>,
}

impl<'c, 'a> Callers<'c, 'a> {
    pub fn new(code: &'c [Code<'a>]) -> Self {
        let names: HashSet<String> = code.iter().map(|c| c.name.name.to_lowercase()).collect();
        let mut named_by: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in code.iter().enumerate() {
            let mine: HashSet<String> = words(c.source).filter(|w| names.contains(w)).collect();
            for w in mine {
                named_by.entry(w).or_default().push(i);
            }
        }
        Callers { code, named_by }
    }

    /// The functions `seed` picks, and every function whose source names one of those (by its
    /// name alone, in any schema: a name that could be a call counts), transitively.
    pub fn closure(&self, seed: impl Fn(&Code<'_>) -> bool) -> HashSet<QName> {
        let code = self.code;
        let mut flagged: Vec<bool> = code.iter().map(&seed).collect();
        let mut queue: Vec<usize> = (0..code.len()).filter(|&i| flagged[i]).collect();
        while let Some(i) = queue.pop() {
            let name = code[i].name.name.to_lowercase();
            for &j in self.named_by.get(&name).map(Vec::as_slice).unwrap_or_default() {
                if !flagged[j] {
                    flagged[j] = true;
                    queue.push(j);
                }
            }
        }
        code.iter()
            .zip(flagged)
            .filter(|(_, f)| *f)
            .map(|(c, _)| c.name.clone())
            .collect()
    }
}

/// What the code of `start` (all its overloads) and of everything it names (at any depth) holds:
/// every word, the words it may read from, and the sources themselves, for what words do not show
/// (operators). A name only ever written into (`INSERT INTO audit_log`, schema-qualified or not)
/// is not read, unless the code handles conflicts, which compare with the stored rows.
pub struct Reached<'a> {
    pub words: HashSet<String>,
    pub read: HashSet<String>,
    pub sources: Vec<&'a str>,
}

/// One walk of the calls from `start`, each source read once.
pub fn reached_reads<'a>(code: &[Code<'a>], start: &QName) -> Reached<'a> {
    let (mut words, mut read, mut sources) = (HashSet::new(), HashSet::new(), Vec::new());
    for c in reached_code(code, start) {
        sources.push(c.source);
        for tokens in streams(c.source) {
            let conflicts = tokens.iter().any(|t| t == "conflict");
            for (i, t) in tokens.iter().enumerate() {
                let at = |back: usize| i.checked_sub(back).map(|j| tokens[j].as_str());
                let into = |back: usize| at(back) == Some("into") && at(back + 1) != Some("merge");
                if conflicts || !(into(1) || into(2)) {
                    read.insert(t.clone());
                }
            }
            words.extend(tokens);
        }
    }
    Reached { words, read, sources }
}

/// Every word of every function and view of the DBA's: the names their code may resolve on the
/// session's search_path.
pub fn all_words(code: &[Code<'_>]) -> HashSet<String> {
    code.iter().flat_map(|c| words(c.source)).collect()
}

/// The names `source` writes into: after INSERT INTO, MERGE INTO, UPDATE, DELETE FROM or
/// TRUNCATE, schema-qualified or not. A PL/pgSQL `SELECT … INTO variable` counts too, which only
/// errs towards writing.
pub fn written_names(source: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for tokens in streams(source) {
        written_in(&tokens, &mut out);
    }
    out
}

/// For each table name the code writes into: the words of all code that does, and whether any of
/// it writes a row without naming the columns (`INSERT INTO t VALUES`, `… SELECT`, `… DEFAULT
/// VALUES`, MERGE's `INSERT VALUES`), which writes every column.
pub fn writers(code: &[Code<'_>]) -> HashMap<String, (HashSet<String>, bool)> {
    let mut out: HashMap<String, (HashSet<String>, bool)> = HashMap::new();
    for c in code {
        let written = written_names(c.source);
        if written.is_empty() {
            continue;
        }
        let positional = streams(c.source).iter().any(|tokens| {
            tokens.windows(2).any(|w| {
                let columns_follow = !matches!(
                    w[1].as_str(),
                    "values" | "select" | "default" | "overriding" | "with" | "table" | "execute"
                );
                !columns_follow && (w[0] == "insert" || written.contains(&w[0]))
            })
        });
        let words: HashSet<String> = words(c.source).collect();
        for name in written {
            let entry = out.entry(name).or_default();
            entry.0.extend(words.iter().cloned());
            entry.1 |= positional;
        }
    }
    out
}

fn written_in(tokens: &[String], out: &mut HashSet<String>) {
    for (i, t) in tokens.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| tokens[j].as_str());
        // `COPY t FROM` writes (round 254 CM4); `COPY t TO` counts too, which only errs towards
        // writing. `TABLE` takes in `CREATE TABLE … AS`, `VIEW` `REFRESH MATERIALIZED VIEW`.
        let verb = matches!(t.as_str(), "into" | "update" | "truncate" | "table" | "copy" | "view")
            || (t == "from" && before == Some("delete"));
        if !verb {
            continue;
        }
        // `UPDATE ONLY t`, `DELETE FROM ONLY s.t` (round 149), `CREATE TABLE IF NOT EXISTS t`,
        // `REFRESH MATERIALIZED VIEW CONCURRENTLY v` (round 254): the name, schema-qualified or
        // not, is the first two words after these.
        let named = tokens[i + 1..]
            .iter()
            .skip_while(|w| matches!(w.as_str(), "only" | "if" | "not" | "exists" | "concurrently"));
        out.extend(named.take(2).cloned());
        // `TRUNCATE a, b, …` (round 254 CM2): the words hold no commas, so every word up to its
        // options counts, which may take in the next statement's and only errs towards writing.
        if t == "truncate" {
            out.extend(
                tokens[i + 1..]
                    .iter()
                    .take_while(|w| !matches!(w.as_str(), "restart" | "continue" | "cascade" | "restrict"))
                    .take(32)
                    .cloned(),
            );
        }
    }
}

/// The code of `start` (all its overloads) and of the functions and views it names, at any depth.
fn reached_code<'c, 'a>(code: &'c [Code<'a>], start: &QName) -> Vec<&'c Code<'a>> {
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, c) in code.iter().enumerate() {
        by_name.entry(c.name.name.to_lowercase()).or_default().push(i);
    }
    let mut seen: HashSet<usize> = HashSet::new();
    let mut queue: Vec<usize> = (0..code.len()).filter(|&i| code[i].name == *start).collect();
    let mut out = Vec::new();
    while let Some(i) = queue.pop() {
        if !seen.insert(i) {
            continue;
        }
        out.push(&code[i]);
        for w in words(code[i].source) {
            if let Some(next) = by_name.get(&w) {
                queue.extend(next.iter().filter(|j| !seen.contains(j)));
            }
        }
    }
    out
}

/// One of `names` that `source` names as a word (by its name alone, in any schema).
pub fn named_in<'n>(source: &str, names: &'n HashSet<QName>) -> Option<&'n QName> {
    if names.is_empty() {
        return None;
    }
    let words: HashSet<String> = words(source).collect();
    names.iter().find(|n| words.contains(&n.name.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<'a>(schema: &str, name: &str, source: &'a str) -> Code<'a> {
        Code {
            name: QName::new(schema, name),
            source,
        }
    }

    #[test]
    fn callers_of_a_reader_read_too_at_any_depth() {
        let all = [
            code("public", "app_config", "SELECT current_setting('app.' || key, true)"),
            code(
                "public",
                "current_campaign",
                "SELECT public.App_Config('campaign', 'none')",
            ),
            code("public", "tenant_of", "BEGIN RETURN current_campaign(); END"),
            code("public", "unrelated", "SELECT app_configuration FROM t"),
            code("public", "next_no", "SELECT nextval('s')"),
            code("public", "kampagne_für_sitzung", "SELECT current_setting('app.k')"),
            code("public", "sitzung", "SELECT public.Kampagne_Für_Sitzung()"),
        ];
        let got = Callers::new(&all).closure(|c| c.source.contains("current_setting"));
        let mut got: Vec<String> = got.into_iter().map(|q| q.name).collect();
        got.sort();
        assert_eq!(
            got,
            [
                "app_config",
                "current_campaign",
                "kampagne_für_sitzung",
                "sitzung",
                "tenant_of"
            ]
        );
        let readers: HashSet<QName> = [QName::new("public", "session_ctx")].into_iter().collect();
        assert!(named_in("(campaign = ( SELECT session_ctx.campaign FROM session_ctx))", &readers).is_some());
        assert!(named_in("(campaign = 'x')", &readers).is_none());
        let reached = reached_reads(&all, &QName::new("public", "tenant_of")).words;
        assert!(
            reached.contains("current_setting") && reached.contains("campaign"),
            "{reached:?}"
        );
        assert!(!reached.contains("nextval"));
        // Written into only, a table is not read; compared with, or merged into, it is.
        let triggers = [
            code(
                "public",
                "audit",
                "BEGIN INSERT INTO public.audit_log VALUES (to_jsonb(NEW)); PERFORM dedupe(NEW); RETURN NEW; END",
            ),
            code(
                "public",
                "dedupe",
                "SELECT EXISTS (SELECT 1 FROM stadtwerke.customers c WHERE c.name = $1.name)",
            ),
            code(
                "public",
                "upsert",
                "INSERT INTO counters VALUES (1) ON CONFLICT (k) DO UPDATE SET n = counters.n + 1",
            ),
            code(
                "public",
                "merger",
                "MERGE INTO ledger l USING (SELECT 1) s ON true WHEN MATCHED THEN DO NOTHING",
            ),
        ];
        let r = reached_reads(&triggers, &QName::new("public", "audit"));
        assert!(r.words.contains("audit_log") && !r.read.contains("audit_log"));
        assert!(r.read.contains("customers") && r.read.contains("name"));
        assert!(reached_reads(&triggers, &QName::new("public", "upsert"))
            .read
            .contains("counters"));
        assert!(reached_reads(&triggers, &QName::new("public", "merger"))
            .read
            .contains("ledger"));
        let written = written_names(
            "INSERT INTO public.agent_session VALUES (pg_backend_pid(), c) ON CONFLICT (pid) DO UPDATE SET campaign = c;
             DELETE FROM queue WHERE true; UPDATE counters SET n = n + 1; SELECT x FROM dial_queue",
        );
        for t in ["agent_session", "queue", "counters"] {
            assert!(written.contains(t), "{t}: {written:?}");
        }
        assert!(!written.contains("dial_queue"));
        // Comments and ONLY do not hide a write; a comment names nothing.
        let written = written_names(
            "UPDATE ONLY public.agent_session SET c = 1; INSERT INTO /* the log */ audit_log VALUES (1); -- counters\n SELECT '--' || x FROM t",
        );
        assert!(
            written.contains("agent_session") && written.contains("audit_log"),
            "{written:?}"
        );
        assert!(!written.contains("counters") && all_words(&[code("s", "f", "SELECT '--', y -- z")]).contains("y"));
        // Round 150: a quoted name is one word; an E'' string's \' and a dollar-quoted '--' start
        // no comment; and what the blanking drops is still counted as written.
        let all = all_words(&[code("s", "f", r#"PERFORM public."Agent-Session-Write"(c)"#)]);
        assert!(all.contains("agent-session-write") && all.contains("write"), "{all:?}");
        let escaped = "RAISE LOG E'agent\\'s campaign'; RAISE LOG '-- x'; DELETE FROM agent_session; SELECT $q$ -- $q$, birth_date FROM customers /* a /* nested */ comment */ WHERE true";
        let blanked = without_comments(escaped, Backslash::Plain);
        assert!(
            blanked.contains("DELETE FROM agent_session") && blanked.contains("birth_date FROM customers"),
            "{blanked}"
        );
        assert!(!blanked.contains("nested"), "{blanked}");
        assert!(written_names(escaped).contains("agent_session"));
        assert!(written_names("INSERT INTO \"sess-table\" VALUES (1)").contains("sess-table"));
        // Round 252 CK1: a quoted schema, a quoted name with parts, a long schema name: the table
        // is still the word after the verb, and an INSERT's is not read.
        for (sql, table) in [
            (
                "INSERT INTO \"zeitung\".partner_callbacks VALUES (s)",
                "partner_callbacks",
            ),
            ("DELETE FROM \"zeitung\".\"partner_callbacks\"", "partner_callbacks"),
            ("UPDATE \"my-schema\".t SET a = 1", "t"),
            // Round 254: a `"` in a string, TRUNCATE of several, a quoted name over 63 bytes, COPY.
            ("x := '\"'; INSERT INTO zeitung.\"leads\" VALUES (1)", "leads"),
            ("TRUNCATE stadtwerke.scratch, zeitung.victim RESTART IDENTITY", "victim"),
            (
                &format!("INSERT INTO zeitung.\"{}\" VALUES (1)", "l".repeat(70)),
                &"l".repeat(63),
            ),
            ("COPY zeitung.leads FROM '/tmp/x.csv'", "leads"),
            ("INSERT INTO zeitung.\"a\"\"b\" VALUES (1)", "a\"b"),
            (
                "REFRESH MATERIALIZED VIEW CONCURRENTLY zeitung.lead_stats",
                "lead_stats",
            ),
            ("CREATE TABLE IF NOT EXISTS zeitung.copy_of AS SELECT 1", "copy_of"),
            ("DELETE FROM ONLY zeitung.leads", "leads"),
            // Round 255 CN1: `\'` ends no string under standard_conforming_strings off.
            (
                "x := 'caller\\'s /* '; INSERT INTO /* list */ zeitung.leads SELECT 1; y := ' */ ';",
                "leads",
            ),
            (
                "x := 'a\\'; /* '; DELETE /* stale */ FROM zeitung.subs; y := ' */ ';",
                "subs",
            ),
            (&format!("INSERT INTO {}.t VALUES (1)", "s".repeat(70)), "t"),
        ] {
            assert!(written_names(sql).contains(table), "{sql}: {:?}", written_names(sql));
            let only_written = [code("s", "f", sql)];
            assert!(
                !sql.starts_with("INSERT") || !reached_reads(&only_written, &QName::new("s", "f")).read.contains(table),
                "{sql}"
            );
        }
        // Postgres cuts names to 63 bytes (round 155).
        let long = format!("{}_x", "k".repeat(70));
        assert!(all_words(&[code("s", "f", &format!("SELECT * FROM {long}"))]).contains(&"k".repeat(63)));
        // Cycles end.
        let cyclic = [code("s", "a", "b()"), code("s", "b", "a() + nextval('q')")];
        assert_eq!(Callers::new(&cyclic).closure(|c| c.source.contains("nextval")).len(), 2);
    }
}
