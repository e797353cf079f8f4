//! Postgres's lexer (scan.l) for the DBA code scan: where comments, strings and names begin and end.
//!
//! The scan read DBA code word by word, with string and comment skipping of its own, and rounds 150,
//! 252, 254, 255 and 258 each found text it cut differently from Postgres: a `"` in a string, a
//! `'\'` under standard_conforming_strings off, a string continued on the next line after `E'…'`.
//! Each time a write into another campaign hid in what the scan took for a comment or a string.
//! This lexer follows scan.l's rules for the tokens that decide those boundaries, and is tested
//! against libpg_query's scanner (see the tests). Text Postgres rejects (trailing junk after a
//! number, an unterminated string) cannot run, so how it is read here does not matter.

use std::ops::Range;

/// What a backslash in a plain `'…'` string does, which standard_conforming_strings decides when
/// Postgres reads the code: a function's own `SET` clause, its owner's or the database's defaults,
/// or the session's setting when it is compiled. unscharf does not follow which, and reads code
/// both ways (round 255 CN1: under `SET standard_conforming_strings = off`, `'caller\'s /* '`
/// was read as a string ending at the backslash and a comment that hid two writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backslash {
    /// standard_conforming_strings on: a backslash escapes only in `E'…'`.
    Plain,
    /// standard_conforming_strings off: a backslash escapes in every `'…'` string.
    Escapes,
}

impl Backslash {
    pub const BOTH: [Backslash; 2] = [Backslash::Plain, Backslash::Escapes];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A keyword or an unquoted name.
    Word,
    /// A quoted name (`"…"`).
    Name,
    /// A `U&"…"` name, whose letters may be escapes.
    UnicodeName,
    /// A string constant of any kind, dollar-quoted too.
    Str,
    Comment,
    /// A number or a parameter (`$1`).
    Number,
    /// An operator character or punctuation.
    Punct,
}

/// One token: its kind, its bytes in the source, the bytes between a string's delimiters, and for
/// strings and quoted names their value (doubled quotes and, in escaping strings, `\'` and `\\`
/// undone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub span: Range<usize>,
    pub inner: Range<usize>,
    pub value: String,
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn ident_cont(c: u8) -> bool {
    ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// The tokens of `text` read as Postgres reads it with the given standard_conforming_strings.
pub fn lex(text: &str, reading: Backslash) -> Vec<Token> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let at = |j: usize| b.get(j).copied().unwrap_or(0);
        let start = i;
        let (kind, value);
        let mut inner = None;
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b') {
            i += 1;
            continue;
        } else if c == b'-' && at(i + 1) == b'-' {
            i = line_end(b, i);
            (kind, value) = (Kind::Comment, String::new());
        } else if c == b'/' && at(i + 1) == b'*' {
            i = comment_end(b, i);
            (kind, value) = (Kind::Comment, String::new());
        } else if c == b'\'' {
            let escapes = reading == Backslash::Escapes;
            let quote = if escapes { Quote::Escapes } else { Quote::Doubled };
            (inner, i, value) = quoted_string(text, i, quote);
            kind = Kind::Str;
        } else if matches!(c, b'e' | b'E') && at(i + 1) == b'\'' {
            (inner, i, value) = quoted_string(text, i + 1, Quote::Escapes);
            kind = Kind::Str;
        } else if matches!(c, b'b' | b'B' | b'x' | b'X') && at(i + 1) == b'\'' {
            (inner, i, value) = quoted_string(text, i + 1, Quote::Single);
            kind = Kind::Str;
        } else if matches!(c, b'u' | b'U') && at(i + 1) == b'&' && at(i + 2) == b'\'' {
            (inner, i, value) = quoted_string(text, i + 2, Quote::Doubled);
            kind = Kind::Str;
        } else if matches!(c, b'u' | b'U') && at(i + 1) == b'&' && at(i + 2) == b'"' {
            (i, value) = quoted_name(text, i + 2);
            kind = Kind::UnicodeName;
        } else if matches!(c, b'n' | b'N') && at(i + 1) == b'\'' {
            // `N'…'` is the keyword NCHAR and a string read as any other (scan.l's xnstart).
            i += 1;
            (kind, value) = (Kind::Word, "nchar".to_owned());
        } else if c == b'"' {
            (i, value) = quoted_name(text, i);
            kind = Kind::Name;
        } else if c == b'$' {
            match dollar_tag(b, i) {
                Some(tag_end) => {
                    let tag = &text[i..tag_end];
                    let close = text[tag_end..].find(tag).map_or(b.len(), |n| tag_end + n);
                    value = text[tag_end..close].to_owned();
                    inner = Some(tag_end..close);
                    i = (close + tag.len()).min(b.len());
                    kind = Kind::Str;
                }
                None if at(i + 1).is_ascii_digit() => {
                    i = digits(b, i + 1);
                    (kind, value) = (Kind::Number, text[start..i].to_owned());
                }
                None => {
                    i += 1;
                    (kind, value) = (Kind::Punct, "$".to_owned());
                }
            }
        } else if ident_start(c) {
            while i < b.len() && ident_cont(b[i]) {
                i += 1;
            }
            (kind, value) = (Kind::Word, text[start..i].to_lowercase());
        } else if c == b'.' && at(i + 1) == b'.' {
            // scan.l's DOT_DOT (`FOR i IN 1..2`): `..2` is not `.` and `.2`.
            i += 2;
            (kind, value) = (Kind::Punct, "..".to_owned());
        } else if c.is_ascii_digit() || (c == b'.' && at(i + 1).is_ascii_digit()) {
            i = number_end(b, i);
            (kind, value) = (Kind::Number, text[start..i].to_owned());
        } else {
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            i += len;
            (kind, value) = (Kind::Punct, text[start..i].to_owned());
        }
        let span = start..i.min(b.len());
        out.push(Token {
            kind,
            inner: inner.unwrap_or_else(|| span.clone()),
            span,
            value,
        });
    }
    out
}

/// Where a `--` comment that starts at `i` ends: at a line feed or a carriage return (round 227
/// BL2: a body with CR line ends had the rest of it, a SET included, read as the comment).
fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map_or(b.len(), |n| i + n)
}

/// Where a `/* … */` comment that starts at `i` ends; they nest.
fn comment_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    i
}

/// A number's end: digits, a fraction, an exponent (`1..` is the integer 1 and `..`).
fn number_end(b: &[u8], i: usize) -> usize {
    let mut j = digits(b, i);
    if b.get(j) == Some(&b'.') && b.get(j + 1) != Some(&b'.') {
        j = digits(b, j + 1);
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        let k = j + 1 + usize::from(matches!(b.get(j + 1), Some(b'+' | b'-')));
        if b.get(k).is_some_and(u8::is_ascii_digit) {
            j = digits(b, k);
        }
    }
    j
}

/// The end of a dollar quote's opening tag (`$$`, `$tag$`) that starts at `i`, if one does: a tag
/// is a name without `$` that does not start with a digit.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j).is_some_and(|&c| ident_start(c)) {
        while b.get(j).is_some_and(|&c| ident_cont(c) && c != b'$') {
            j += 1;
        }
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// `''` is a quote.
    Doubled,
    /// `''` and `\'` are quotes; a backslash escapes the byte after it.
    Escapes,
    /// Bit and hex strings: the first quote ends them.
    Single,
}

/// A string whose opening quote is at `i`, with its continuations (a quote after whitespace that
/// holds a line break, scan.l's `quotecontinue`, which keeps the first part's kind: `E'a'` then
/// `'\'…'` on the next line is one escaping string). What lies between its first and last quote,
/// where it ends, and its value.
fn quoted_string(text: &str, i: usize, quote: Quote) -> (Option<Range<usize>>, usize, String) {
    let b = text.as_bytes();
    let mut value = Vec::new();
    let mut j = i + 1;
    loop {
        while j < b.len() {
            match b[j] {
                b'\\' if quote == Quote::Escapes && j + 1 < b.len() => {
                    match b[j + 1] {
                        b'\'' | b'\\' => value.push(b[j + 1]),
                        _ => value.extend_from_slice(&b[j..j + 2]),
                    }
                    j += 2;
                    continue;
                }
                b'\'' if quote != Quote::Single && b.get(j + 1) == Some(&b'\'') => {
                    value.push(b'\'');
                    j += 2;
                    continue;
                }
                b'\'' => break,
                c => value.push(c),
            }
            j += 1;
        }
        if j >= b.len() {
            return (
                Some(i + 1..b.len()),
                b.len(),
                String::from_utf8_lossy(&value).into_owned(),
            );
        }
        match continuation(b, j + 1) {
            Some(next) => j = next + 1,
            None => return (Some(i + 1..j), j + 1, String::from_utf8_lossy(&value).into_owned()),
        }
    }
}

/// Where the quote that continues a string ends at `i` stands, if one does: spaces, tabs, form
/// feeds and `--` comments, a line break, then any whitespace and `--` comments that end in a line
/// break, then `'`. A `/* */` comment between ends the string.
fn continuation(b: &[u8], mut i: usize) -> Option<usize> {
    let mut newline = false;
    while i < b.len() {
        match b[i] {
            b'\n' | b'\r' => {
                newline = true;
                i += 1;
            }
            b' ' | b'\t' | b'\x0c' | b'\x0b' => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = line_end(b, i);
                // After the line break, a comment must end in one.
                if newline && i >= b.len() {
                    return None;
                }
            }
            b'\'' if newline => return Some(i),
            _ => return None,
        }
    }
    None
}

/// A quoted name whose opening quote is at `i`: where it ends, and the name (`""` is a quote).
fn quoted_name(text: &str, i: usize) -> (usize, String) {
    let b = text.as_bytes();
    let mut j = i + 1;
    let mut name = String::new();
    while j < b.len() {
        if b[j] == b'"' {
            if b.get(j + 1) == Some(&b'"') {
                name.push('"');
                j += 2;
                continue;
            }
            return (j + 1, name);
        }
        let ch = text[j..].chars().next().unwrap_or('\u{fffd}');
        name.push(ch);
        j += ch.len_utf8();
    }
    (b.len(), name)
}

/// `text` with its comments, or its comments and the values of its strings, turned into spaces
/// byte for byte, so that offsets stay those of `text`.
pub fn blanked(text: &str, tokens: &[Token], strings_too: bool) -> String {
    let mut out = text.as_bytes().to_vec();
    for t in tokens {
        let blank = match t.kind {
            Kind::Comment => t.span.clone(),
            // Its quotes stay, so that the text still reads as a string there.
            Kind::Str if strings_too => t.inner.clone(),
            _ => continue,
        };
        out[blank].fill(b' ');
    }
    // Whole tokens' bytes were replaced, by ASCII: still UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests;
