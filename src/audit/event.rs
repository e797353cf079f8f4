//! One audit event as sessions produce it, and its JSON form (DESIGN.md "Audit event").

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Refused,
    Allowed,
    Masked,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Refused => "refused",
            Decision::Allowed => "allowed",
            Decision::Masked => "masked",
        }
    }
}

/// What a session knows about a decision; the writer adds `ts`, `seq`, `prev` and `hash`.
/// It never holds a customer value: `statement` is normalized (every literal and parameter is `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub session: u64,
    pub user: String,
    pub client_addr: String,
    pub purpose: String,
    pub campaigns: Vec<String>,
    pub decision: Decision,
    pub reason: String,
    pub detail: String,
    pub statement: String,
    pub fingerprint: String,
    pub policy_version: String,
}

/// An event as written: the record plus trail bookkeeping. Field order is the canonical order the
/// hash covers; `hash = sha256(prev || canonical JSON of every field but hash)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub ts: String,
    pub seq: u64,
    pub session: u64,
    pub user: String,
    pub client_addr: String,
    pub purpose: String,
    pub campaigns: Vec<String>,
    pub decision: Decision,
    pub reason: String,
    pub detail: String,
    pub statement: String,
    pub fingerprint: String,
    pub policy_version: String,
    pub prev: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// The `prev` of the first event of a fresh trail.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Event {
    pub fn new(r: Record, ts: String, seq: u64, prev: String) -> Event {
        Event {
            ts,
            seq,
            session: r.session,
            user: r.user,
            client_addr: r.client_addr,
            purpose: r.purpose,
            campaigns: r.campaigns,
            decision: r.decision,
            reason: r.reason,
            detail: r.detail,
            statement: r.statement,
            fingerprint: r.fingerprint,
            policy_version: r.policy_version,
            prev,
            hash: None,
        }
    }

    /// The canonical JSON of every field except `hash`.
    pub fn canonical(&self) -> String {
        let mut e = self.clone();
        e.hash = None;
        serde_json::to_string(&e).unwrap_or_default()
    }

    pub fn compute_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.prev.as_bytes());
        h.update(self.canonical().as_bytes());
        hex::encode(h.finalize())
    }

    /// Seals the event and returns its line (without newline).
    pub fn seal(mut self) -> (Event, String) {
        self.hash = Some(self.compute_hash());
        let line = serde_json::to_string(&self).unwrap_or_default();
        (self, line)
    }
}

/// Longest statement text a record keeps; the fingerprint still covers all of it.
pub const MAX_RECORDED_STATEMENT: usize = 4096;

/// `text` cut to `MAX_RECORDED_STATEMENT` bytes (on a character boundary), marked when cut.
pub fn bounded(mut text: String) -> String {
    if text.len() > MAX_RECORDED_STATEMENT {
        let mut end = MAX_RECORDED_STATEMENT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let total = text.len();
        text.truncate(end);
        text.push_str(&format!(" … ({total} bytes)"));
    }
    text
}

/// Text for the trail and the log: control characters escaped, so that a name cannot hide or
/// forge lines where the security team reads them, and quoted names (`"…"`, `` `…` ``) that are
/// not identifier-shaped, or that hold four digits or more, replaced by `?`. Literals are already
/// gone from normalized SQL, but an agent who double-quotes a phone number or an IBAN
/// (`WHERE phone = "+49 30 …"`, `"DE8937…"`) writes an identifier.
/// A scrubbed statement closer to how people write it: `stadtwerke.customers`, `f (a, b)`, so a
/// reviewer's grep for a table name finds it (round 116: the trail held `stadtwerke . customers`).
/// Scrubbed quoted names hold no blanks, so no name is changed.
pub fn compact(scrubbed: &str) -> String {
    scrubbed
        .replace(" . ", ".")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
}

pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['"', '`']) {
        push_printable(&mut out, &rest[..i]);
        let q = rest.as_bytes()[i] as char;
        let body_start = i + 1;
        // A doubled quote stands for one quote inside a quoted name.
        let mut j = body_start;
        let end = loop {
            match rest[j..].find(q) {
                Some(k) if rest[j + k + 1..].starts_with(q) => j += k + 2,
                Some(k) => break Some(j + k),
                None => break None,
            }
        };
        // An unmatched quote: what follows may be a name that held a quote of its own, printed
        // without doubling it (round 103), so none of it is kept.
        let Some(end) = end else {
            out.push(q);
            out.push('?');
            return out;
        };
        let name = &rest[body_start..end];
        out.push(q);
        if name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '.' | '*'))
            && name.chars().filter(char::is_ascii_digit).count() < 4
        {
            out.push_str(name);
        } else {
            out.push('?');
        }
        out.push(q);
        rest = &rest[end + 1..];
    }
    push_printable(&mut out, rest);
    out
}

/// Characters that change how the text around them reads without being seen: bidirectional
/// overrides and isolates, zero-width characters, line and paragraph separators (round 29: a
/// right-to-left override in a name made `audit list` show another statement than was sent).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// `scrubbed` (see `scrub`) with every unquoted word that may be a value replaced by `?`: an agent
/// who types a value without quotes writes words (round 190 AA1: `WHERE iban = DE8937…`, `name =
/// Anna Schmidt`, `email = anna.schmidt@example.org` reached the trail and the log). A word stays
/// if it is a SQL keyword, a name `known` knows (the catalog's), or short (an alias, up to three
/// characters), and holds fewer than four digits.
pub fn scrub_words(scrubbed: &str, known: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(scrubbed.len());
    let mut rest = scrubbed;
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    while let Some(start) =
        rest.find(|c: char| c.is_alphabetic() || c == '_' || c == '"' || c == '`' || c.is_ascii_digit())
    {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let first = rest.chars().next().unwrap_or(' ');
        if first == '"' || first == '`' {
            // A quoted name, already scrubbed: kept as it is.
            let end = rest[1..].find(first).map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        let digits = word.chars().filter(char::is_ascii_digit).count();
        if first.is_ascii_digit() {
            // A number the normalizer left: short ones are no value.
            out.push_str(if digits < 4 { word } else { "?" });
            continue;
        }
        // An alias counts as any other word: an agent can type a value there as well as anywhere
        // (round 235 BT3: `AS Schmidt` was kept, `AS "Schmidt"` was not).
        out.push_str(if keeps_word(word, &known) { word } else { "?" });
    }
    out.push_str(rest);
    out
}

/// Whether an unquoted word of a statement is no value: a SQL keyword, a name the catalog knows,
/// or short (an alias, up to three characters), and in each case fewer than four digits.
fn keeps_word(word: &str, known: impl Fn(&str) -> bool) -> bool {
    let digits = word.chars().filter(char::is_ascii_digit).count();
    let keyword = || {
        sqlparser::keywords::ALL_KEYWORDS
            .binary_search(&word.to_ascii_uppercase().as_str())
            .is_ok()
    };
    // Postgres's statement words sqlparser has no keyword for, and unscharf's own note for text it
    // could not normalize (round 235 BT6: recorded as `?` and `(not ?)`; round 247 CF2: ON
    // CONFLICT's `excluded` read like a parameter).
    const WORDS: &[&str] = &["move", "checkpoint", "normalizable", "excluded"];
    let lower = word.to_lowercase();
    digits < 4 && (word.chars().count() <= 3 || keyword() || WORDS.contains(&lower.as_str()) || known(&lower))
}

/// A refusal's `detail` (already through `scrub` and `scrub_names`) with every word that the
/// statement's scrubbing takes out (see `scrub_words`, over `normalized`, quoted names included)
/// taken out wherever it stands (a contract's end date, unscharf's own, stays). A detail quotes the
/// statement, but its own quoting cannot be trusted to pair (round 235 BT1: a backtick inside a
/// quoted cursor name closed the detail's backtick span, and the rest of the name, a phone number
/// or an IBAN, reached the trail), and some details repeat a word unquoted (BT4: `VACUUM
/// HOFFMANN is not supported`). Words of unscharf's own wording stay.
pub fn scrub_detail(detail: &str, normalized: &str, known: impl Fn(&str) -> bool) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let words = |text: &str| -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices() {
            match (is_word(c), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    spans.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            spans.push((s, text.len()));
        }
        spans
    };
    let value = |word: &str| !keeps_word(word, &known);
    let sent: std::collections::HashSet<String> = words(normalized)
        .into_iter()
        .map(|(a, b)| &normalized[a..b])
        .filter(|w| value(w))
        .map(str::to_lowercase)
        .collect();
    let mut out = String::with_capacity(detail.len());
    let mut last = 0;
    for (a, b) in words(detail) {
        let word = &detail[a..b];
        out.push_str(&detail[last..a]);
        out.push_str(if sent.contains(&word.to_lowercase()) { "?" } else { word });
        last = b;
    }
    out.push_str(&detail[last..]);
    out
}

/// `scrubbed` (see `scrub`) with every quoted name `known` does not know, and longer than three
/// characters, replaced by `?`: a value double-quoted by habit (`WHERE name = "Schmidt"`) is
/// identifier-shaped (round 191 AB1), and a refusal's detail quotes the unknown name it met.
pub fn scrub_names(scrubbed: &str, known: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(scrubbed.len());
    let mut rest = scrubbed;
    while let Some(i) = rest.find(['"', '`']) {
        let q = rest.as_bytes()[i] as char;
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let Some(end) = rest.find(q) else {
            out.push_str(rest);
            return out;
        };
        let name = &rest[..end];
        let keep = name == "?" || name.chars().count() <= 3 || known(&name.to_lowercase());
        out.push_str(if keep { name } else { "?" });
        out.push(q);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn push_printable(out: &mut String, s: &str) {
    for c in s.chars() {
        if c.is_control() || invisible(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod scrub_tests {
    use super::{bounded, compact, scrub, scrub_detail, scrub_names, scrub_words, MAX_RECORDED_STATEMENT};

    /// Round 191 AB1: a double-quoted value is a name no catalog knows.
    #[test]
    fn quoted_names_the_catalog_does_not_know_are_scrubbed() {
        let known = |w: &str| ["customers", "name"].contains(&w);
        assert_eq!(
            scrub_names(
                &scrub("SELECT \"Name\" FROM customers WHERE name = \"Schmidt\" AND \"ok\" = 1"),
                known
            ),
            "SELECT \"Name\" FROM customers WHERE name = \"?\" AND \"ok\" = 1"
        );
        assert_eq!(
            scrub_names(&scrub("column \"schmidt\" does not exist"), known),
            "column \"?\" does not exist"
        );
    }

    /// Round 190 AA1: values typed without quotes are words.
    #[test]
    fn unquoted_values_are_scrubbed_and_names_kept() {
        let known = |w: &str| ["stadtwerke", "customers", "iban", "email", "name", "lower"].contains(&w);
        assert_eq!(
            scrub_words(
                "SELECT name, lower(c.email) FROM stadtwerke.customers c WHERE iban = DE89370400440532013000",
                known
            ),
            "SELECT name, lower(c.email) FROM stadtwerke.customers c WHERE iban = ?"
        );
        assert_eq!(
            scrub_words(
                "SELECT iban FROM customers WHERE name = Anna Schmidt OR email = anna.schmidt@example.org",
                known
            ),
            "SELECT iban FROM customers WHERE name = ? ? OR email = ?.?@?.org"
        );
        assert_eq!(
            scrub_words("MOVE 2 IN c1 ; CHECKPOINT ; (not normalizable)", known),
            "MOVE 2 IN c1 ; CHECKPOINT ; (not normalizable)"
        );
        assert_eq!(
            scrub_words(
                "INSERT INTO t (email) VALUES (?) ON CONFLICT DO UPDATE SET email = EXCLUDED.email",
                known
            ),
            "INSERT INTO t (email) VALUES (?) ON CONFLICT DO UPDATE SET email = EXCLUDED.email"
        );
        assert_eq!(
            scrub_words("FETCH ALL FROM DE8937 ; SELECT \"?\", \"ok\" FROM t1 LIMIT ?", known),
            "FETCH ALL FROM ? ; SELECT \"?\", \"ok\" FROM t1 LIMIT ?"
        );
        // Round 235 BT3: an alias is a word like any other.
        assert_eq!(
            scrub_words("SELECT ? AS Schmidt, ? AS Anna1234, ? AS n, lower(?) AS email", known),
            "SELECT ? AS ?, ? AS ?, ? AS n, lower(?) AS email"
        );
    }

    /// Round 235 BT1, BT4: a detail loses what the statement's scrubbing loses, however it quotes
    /// it, and keeps unscharf's own words.
    #[test]
    fn a_detail_keeps_no_word_the_statement_scrubbing_takes_out() {
        let known = |w: &str| ["stadtwerke", "customers", "name"].contains(&w);
        let cases = [
            (
                "FETCH ALL FROM \"unscharf_x`+49 30 1234567\"",
                "names starting with unscharf_ are reserved (`\"unscharf_x`+49 30 1234567\"`)",
                "names starting with unscharf_ are reserved (`?`+49 30 ?\"?",
            ),
            (
                "FETCH ALL FROM \"unscharf_`anna.schmidt@example.org\"",
                "names starting with unscharf_ are reserved (`\"unscharf_`anna.schmidt@example.org\"`)",
                // The statement's own word `unscharf_` goes from unscharf's wording too.
                "names starting with ? are reserved (`?`?.?@?.org\"?",
            ),
            (
                "VACUUM Hoffmann",
                "VACUUM HOFFMANN is not supported",
                "VACUUM ? is not supported",
            ),
            (
                "SELECT name FROM stadtwerke.customers",
                "column stadtwerke.customers.name is not visible to purpose billing_hotline",
                "column stadtwerke.customers.name is not visible to purpose billing_hotline",
            ),
            (
                "SELECT 1 FROM t WHERE iban = DE89370400440532013000",
                "DE89370400440532013000 after the contract ended on 2026-11-28",
                "? after the contract ended on 2026-11-28",
            ),
        ];
        for (statement, detail, want) in cases {
            let first = scrub_names(&scrub(detail), known);
            assert_eq!(scrub_detail(&first, statement, known), want, "{statement}");
        }
    }

    /// Red-team round 14: a phone number in double quotes reached the trail and the log, and escape
    /// sequences and newlines in names hid records from `audit list` and forged log lines.
    #[test]
    fn values_written_as_names_and_control_characters_do_not_reach_the_trail() {
        assert_eq!(
            scrub("SELECT name FROM stadtwerke.customers WHERE phone = \"+49 30 1234567\""),
            "SELECT name FROM stadtwerke.customers WHERE phone = \"?\""
        );
        assert_eq!(
            scrub("column `anna.schmidt@example.org` does not exist"),
            "column `?` does not exist"
        );
        assert_eq!(
            scrub("SELECT \"Zeitung\".\"leads\".*"),
            "SELECT \"Zeitung\".\"leads\".*"
        );
        assert_eq!(scrub("SELECT \"a\"\"b c\" FROM t"), "SELECT \"?\" FROM t");
        assert_eq!(
            scrub("SELECT 1 -- \u{202e}1 = 1\u{2028}x\u{200b}"),
            "SELECT 1 -- \\u{202e}1 = 1\\u{2028}x\\u{200b}"
        );
        // Round 15: identifier-shaped values.
        assert_eq!(scrub("WHERE iban = \"DE89370400440532013000\""), "WHERE iban = \"?\"");
        assert_eq!(
            scrub("cursor \"03012345678\" is not known"),
            "cursor \"?\" is not known"
        );
        assert_eq!(scrub("SELECT \"address_line2\""), "SELECT \"address_line2\"");
        let forged = scrub("SELECT 1 AS \"x\u{1b}[2K\u{1b}[1A\" -- \n2026-11-29T00:00:00Z INFO fake");
        assert!(!forged.contains('\u{1b}') && !forged.contains('\n'), "{forged}");
        assert_eq!(scrub("SELECT 1 -- \u{7}"), "SELECT 1 -- \\u{7}");
        // Round 103: what follows an unmatched quote may be the rest of a name.
        assert_eq!(scrub("unterminated \"abc"), "unterminated \"?");
        let long = bounded(format!("SELECT {}", "?, ".repeat(5000)));
        assert!(
            long.len() < MAX_RECORDED_STATEMENT + 32 && long.ends_with(" … (15007 bytes)"),
            "{long}"
        );
        assert_eq!(bounded("SELECT ?".into()), "SELECT ?");
    }

    #[test]
    fn statements_read_as_written() {
        assert_eq!(
            compact(&scrub(
                "SELECT t . subject , count ( * ) FROM \"a b\" . x JOIN \"Lab\" . v ON f ( ? , ? )"
            )),
            "SELECT t.subject, count (*) FROM \"?\".x JOIN \"Lab\".v ON f (?, ?)"
        );
    }
}
