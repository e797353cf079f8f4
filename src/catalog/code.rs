//! What a DBA's functions and views do, followed through the calls between them: a function whose
//! code calls one that reads a setting or draws from a sequence does so too (round 141: a policy's
//! helper called `app_config()`, which read `current_setting`; round 142: a view did).

use std::collections::{HashMap, HashSet};

pub(super) use super::code_lex::Backslash;
use super::code_lex::{self, Kind, Token};
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

/// The words of `source` in order, several times over. Each name is one word in its place, so that
/// what follows INTO is the written table however the name is spelled (round 252 CK1: the parts of
/// `"zeitung".t` stood in place and put the table four words after INTO).
/// - For each reading of a backslash (`Backslash`; round 255 CN1), Postgres's tokens (`code_lex`)
///   outside comments and strings, and the same with the words of each string in its place,
///   where `EXECUTE 'INSERT INTO …'` keeps its SQL.
/// - The text cut into words as written, comments and strings and all, in case the lexer and
///   Postgres ever part (round 258 CQ1 fooled a word scan that read strings its own way).
/// - Then, in no order, the words no place holds: the parts of a quoted name (round 150:
///   `"dob-matches"()`), a long name before Postgres cut it, and `U_AMP_NAME`.
pub(super) fn streams(source: &str) -> Vec<Vec<String>> {
    streams_of(source, &lexed(source))
}

/// Postgres's tokens of `source`, once per reading of a backslash (`Backslash::BOTH`).
pub(super) fn lexed(source: &str) -> [Vec<Token>; 2] {
    Backslash::BOTH.map(|reading| code_lex::lex(source, reading))
}

/// `streams` from tokens already read (`lexed`).
pub(super) fn streams_of(source: &str, lexed: &[Vec<Token>; 2]) -> Vec<Vec<String>> {
    let (raw, mut extra) = as_written(source);
    let mut out = vec![raw];
    for (reading, tokens) in Backslash::BOTH.into_iter().zip(lexed) {
        let mut in_strings = Vec::new();
        let code = code_words(tokens, reading, &mut extra, Some(&mut in_strings), 0);
        out.extend([code, in_strings]);
    }
    out.push(extra);
    out
}

/// How deep strings in strings are read as SQL (an `EXECUTE` of SQL that holds a string).
const STRING_DEPTH: usize = 3;

/// The words of `tokens` outside comments and strings, and, into `in_strings` if given, the same
/// with the words of each string's value in its place.
fn code_words(
    tokens: &[Token],
    reading: Backslash,
    extra: &mut Vec<String>,
    mut in_strings: Option<&mut Vec<String>>,
    depth: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    for t in tokens {
        match t.kind {
            Kind::Comment | Kind::Punct => {}
            Kind::Str => {
                if let Some(words) = in_strings.as_deref_mut() {
                    if depth < STRING_DEPTH {
                        let inner = code_lex::lex(&t.value, reading);
                        let mut nested = Vec::new();
                        code_words(&inner, reading, extra, Some(&mut nested), depth + 1);
                        words.extend(nested);
                    }
                }
            }
            _ => {
                let word = token_word(t, extra);
                if let Some(words) = in_strings.as_deref_mut() {
                    words.push(word.clone());
                }
                out.push(word);
            }
        }
    }
    out
}

/// A word, name or number as the scan matches it: lower-cased and cut to 63 bytes as Postgres cuts
/// names (round 155: a view named with 64 letters; round 254 CM3: a quoted one). What no place
/// holds goes into `extra`.
fn token_word(t: &Token, extra: &mut Vec<String>) -> String {
    // Cut before lower-casing, as Postgres cuts the name as written (round 263 CV5: `İ` grows by
    // a byte when lower-cased, and a name cut after it no longer matched its table).
    let mut cut = t.value.len().min(63);
    while !t.value.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut < t.value.len() {
        extra.push(t.value.to_lowercase());
    }
    let name = t.value[..cut].to_lowercase();
    if t.kind == Kind::UnicodeName {
        // A `U&"…"` name spells its letters as escapes, which no word shows (round 153):
        // `U_AMP_NAME` counts as SQL built at run time.
        extra.push(U_AMP_NAME.to_owned());
    }
    if matches!(t.kind, Kind::Name | Kind::UnicodeName) && name.contains(|c: char| !is_word(c)) {
        extra.extend(
            name.split(|c: char| !is_word(c))
                .filter(|w| !w.is_empty())
                .map(str::to_owned),
        );
    }
    name
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The words of code in order, outside comments and strings (see `streams`).
pub(super) fn tokens(text: &str) -> Vec<String> {
    code_words(
        &code_lex::lex(text, Backslash::Plain),
        Backslash::Plain,
        &mut Vec::new(),
        None,
        0,
    )
}

/// The words of `text` cut at every character that is not a letter, digit, `_` or `$`, comments
/// and strings included, one per quoted name, and those no place holds (see `streams`).
fn as_written(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut out, mut extra) = (Vec::new(), Vec::new());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| is_word(c) || c == '"') {
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
        let (kind, end, value) = match rest.strip_prefix('"') {
            Some(quoted) => {
                let close = quoted.find('"');
                let name = &quoted[..close.unwrap_or(quoted.len())];
                (Kind::Name, close.map_or(rest.len(), |n| n + 2), name.to_owned())
            }
            None => {
                let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
                (Kind::Word, end, rest[..end].to_owned())
            }
        };
        let token = Token {
            kind,
            span: 0..0,
            inner: 0..0,
            value,
        };
        out.push(token_word(&token, &mut extra));
        rest = &rest[end..];
    }
    (out, extra)
}

/// The word `tokens` gives a `U&"…"` name: see `code_reads::DYNAMIC_WORDS`.
pub const U_AMP_NAME: &str = "u&\"";

/// `source` as its statements' words, read with `reading`: comments and string literals blanked,
/// each quoted name made the word `q`; what is left of it is keywords, names, operators and `;`.
pub(super) fn skeleton(source: &str, reading: Backslash) -> String {
    let mut out = String::with_capacity(source.len());
    for t in &code_lex::lex(source, reading) {
        out.push_str(match t.kind {
            Kind::Name | Kind::UnicodeName => "q",
            Kind::Str | Kind::Comment => "",
            _ => &t.value,
        });
        out.push(' ');
    }
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
    let lexed = lexed(source);
    written_of(&streams_of(source, &lexed), &lexed)
}

/// `written_names` from the code's streams and tokens, read once.
fn written_of(streams: &[Vec<String>], lexed: &[Vec<Token>; 2]) -> HashSet<String> {
    let mut out = HashSet::new();
    for tokens in streams {
        written_in(tokens, &mut out);
    }
    for tokens in lexed {
        qualified_writes(tokens, &mut out);
    }
    out
}

/// For each table name the code writes into: the words of all code that does, and whether any of
/// it writes a row without naming the columns (`INSERT INTO t VALUES`, `… SELECT`, `… DEFAULT
/// VALUES`, MERGE's `INSERT VALUES`), which writes every column.
pub fn writers(code: &[Code<'_>]) -> HashMap<String, (HashSet<String>, bool)> {
    let mut out: HashMap<String, (HashSet<String>, bool)> = HashMap::new();
    for c in code {
        // Each source is lexed once for what it writes, where, and its words.
        let lexed = lexed(c.source);
        let streams = streams_of(c.source, &lexed);
        let written = written_of(&streams, &lexed);
        if written.is_empty() {
            continue;
        }
        let positional = streams.iter().any(|tokens| {
            tokens.windows(2).any(|w| {
                let columns_follow = !matches!(
                    w[1].as_str(),
                    "values" | "select" | "default" | "overriding" | "with" | "table" | "execute"
                );
                !columns_follow && (w[0] == "insert" || written.contains(&w[0]))
            })
        });
        let words: HashSet<String> = streams.into_iter().flatten().collect();
        for name in written {
            let entry = out.entry(name).or_default();
            entry.0.extend(words.iter().cloned());
            entry.1 |= positional;
        }
    }
    out
}

/// Words between a verb that writes and the name written.
const FILLERS: &[&str] = &["only", "if", "not", "exists", "concurrently"];

/// Whether `w` is a verb of `written_in` where `before` is the word before it.
fn writing_verb(w: &str, before: Option<&str>) -> bool {
    matches!(w, "into" | "update" | "truncate" | "table" | "copy" | "view") || (w == "from" && before == Some("delete"))
}

/// Every part of the dotted name after each writing verb, read from Postgres's tokens, so that a
/// name of three parts (round 258 CQ2: `crm.zeitung.leads`, the database's name first) or one with
/// comments or spaces around its dots counts whole.
fn qualified_writes(tokens: &[Token], out: &mut HashSet<String>) {
    let code: Vec<&Token> = tokens.iter().filter(|t| t.kind != Kind::Comment).collect();
    let word = |t: &Token| matches!(t.kind, Kind::Word | Kind::Name | Kind::UnicodeName);
    for (i, t) in code.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| code[j]).filter(|b| b.kind == Kind::Word);
        if t.kind != Kind::Word || !writing_verb(&t.value, before.map(|b| b.value.as_str())) {
            continue;
        }
        let mut j = i + 1;
        while code
            .get(j)
            .is_some_and(|n| n.kind == Kind::Word && FILLERS.contains(&n.value.as_str()))
        {
            j += 1;
        }
        // Each name of a list (`TRUNCATE a, b, …`; round 263 CV2: the 17th went unseen).
        while let Some(part) = code.get(j).filter(|n| word(n)) {
            out.insert(token_word(part, &mut Vec::new()));
            match code.get(j + 1) {
                Some(p) if p.kind == Kind::Punct && p.value == "." => j += 2,
                Some(p) if p.kind == Kind::Punct && p.value == "," => {
                    j += 2;
                    while code
                        .get(j)
                        .is_some_and(|n| n.kind == Kind::Word && FILLERS.contains(&n.value.as_str()))
                    {
                        j += 1;
                    }
                }
                _ => break,
            }
        }
    }
}

fn written_in(tokens: &[String], out: &mut HashSet<String>) {
    for (i, t) in tokens.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| tokens[j].as_str());
        // `COPY t FROM` writes (round 254 CM4); `COPY t TO` counts too, which only errs towards
        // writing. `TABLE` takes in `CREATE TABLE … AS`, `VIEW` `REFRESH MATERIALIZED VIEW`.
        if !writing_verb(t, before) {
            continue;
        }
        // `UPDATE ONLY t`, `DELETE FROM ONLY s.t` (round 149), `CREATE TABLE IF NOT EXISTS t`,
        // `REFRESH MATERIALIZED VIEW CONCURRENTLY v` (round 254): the name, schema-qualified or
        // not, is in the first two words after these (`qualified_writes` reads longer names). A
        // table named like one of them (`"only"`) is counted too.
        let named = tokens[i + 1..].iter().skip_while(|w| FILLERS.contains(&w.as_str()));
        out.extend(named.take(2).cloned());
        out.extend(tokens[i + 1..].iter().take(2).cloned());
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
        let blanked = code_lex::blanked(escaped, &code_lex::lex(escaped, Backslash::Plain), false);
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
            // Round 258 CQ1: a string continued after `E'…'` escapes; CQ2: the database's name.
            (
                "x := E'caller'\n'\\' /* ';\n y := 'c:\\' || ' /* \" ';\n INSERT INTO zeitung.\"leads\" (name) SELECT 1;\n y := ' */ */ ';",
                "leads",
            ),
            ("INSERT INTO crm.zeitung.leads VALUES (1)", "leads"),
            ("DELETE FROM crm.zeitung.subscriptions WHERE true", "subscriptions"),
            ("INSERT INTO \"only\" VALUES (1)", "only"),
            ("UPDATE crm . /* x */ zeitung\n.\"leads\" SET a = 1", "leads"),
            // Round 263 CV2: the 17th name of a TRUNCATE; CV5: a name that grows when lower-cased.
            (
                &format!("TRUNCATE {} zeitung.ddl_log", "stadtwerke.t, ".repeat(16)),
                "ddl_log",
            ),
            (
                &format!("INSERT INTO zeitung.\"{}_log\" VALUES (1)", "İ".repeat(27)),
                &format!("{}_log", "İ".repeat(27)).to_lowercase(),
            ),
            (&format!("INSERT INTO {}.t VALUES (1)", "s".repeat(70)), "t"),
        ] {
            assert!(written_names(sql).contains(table), "{sql}: {:?}", written_names(sql));
            // A table named with its database counts as read too, which only errs towards reading.
            let only_written = [code("s", "f", sql)];
            let read = reached_reads(&only_written, &QName::new("s", "f")).read;
            assert!(!sql.starts_with("INSERT") || sql.contains("crm.") || !read.contains(table), "{sql}");
        }
        // Postgres cuts names to 63 bytes (round 155).
        let long = format!("{}_x", "k".repeat(70));
        assert!(all_words(&[code("s", "f", &format!("SELECT * FROM {long}"))]).contains(&"k".repeat(63)));
        // Cycles end.
        let cyclic = [code("s", "a", "b()"), code("s", "b", "a() + nextval('q')")];
        assert_eq!(Callers::new(&cyclic).closure(|c| c.source.contains("nextval")).len(), 2);
    }
}
