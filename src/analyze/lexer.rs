//! SQL lexer modelled on PostgreSQL 15's scan.l (standard_conforming_strings = on): cache keys, audit text and token signatures.
//!
//! Normalized text: the statement's tokens joined by exactly one space, comments dropped, every
//! literal (strings of every kind, numbers, dollar quotes) and every `$n` parameter printed as `?`,
//! everything else verbatim (`'1'::int` → `? :: int`, `a<=b` → `a <= b`, `a< =b` → `a < = b`).
//! The one exception is the bare operator `?`, printed `OPERATOR(?)` so it cannot pass for a
//! literal. No token prints with a space except a quoted identifier (which starts with `"`), so the
//! text splits back into the same tokens: equal texts mean equal PostgreSQL token sequences up to
//! literal values, literal kinds and literal-vs-parameter.

use sha2::{Digest, Sha256};

/// NAMEDATALEN - 1: the server silently truncates longer identifiers, so it would resolve a
/// different name than the one the policies were checked against.
const MAX_NAME: usize = 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralKind {
    String,
    Escape,
    Bit,
    Hex,
    National,
    Dollar,
    Number,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigItem {
    /// Unquoted identifier or keyword, ASCII-lower-cased as the server folds it.
    Word(String),
    /// Quoted identifier's content with `""` unescaped.
    Quoted(String),
    Literal(LiteralKind),
    Param(u32),
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LexError {
    #[error("U& Unicode escapes are not accepted by unscharf (byte {offset})")]
    UnicodeEscape { offset: usize },
    #[error("UESCAPE is not accepted by unscharf (byte {offset})")]
    Uescape { offset: usize },
    #[error("unterminated {what} at byte {offset}")]
    Unterminated { what: &'static str, offset: usize },
    #[error("zero-length quoted identifier at byte {offset}")]
    EmptyQuotedIdentifier { offset: usize },
    #[error("trailing junk after numeric literal or parameter at byte {offset}")]
    TrailingJunk { offset: usize },
    #[error("unexpected character at byte {offset}")]
    BadCharacter { offset: usize },
    #[error("identifier longer than 63 bytes at byte {offset} (PostgreSQL would truncate it)")]
    IdentifierTooLong { offset: usize },
    #[error("operator longer than 63 bytes at byte {offset}")]
    OperatorTooLong { offset: usize },
    #[error("parameter number too large at byte {offset}")]
    ParamTooLarge { offset: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub text: String,
    pub literals: usize,
    pub params: usize,
    pub semicolons: usize,
}

/// Fast path for every statement: allocates only the output string.
pub fn normalize(sql: &str) -> Result<Normalized, LexError> {
    let mut lx = Lexer::new(sql)?;
    let mut n = Normalized {
        // Worst case is one-byte tokens with no blanks between them; only `OPERATOR(?)` can exceed it.
        text: String::with_capacity(sql.len() * 2),
        literals: 0,
        params: 0,
        semicolons: 0,
    };
    while let Some(t) = lx.next_token()? {
        if !n.text.is_empty() {
            n.text.push(' ');
        }
        let text = lx.text(t);
        match t.kind {
            Kind::Literal(_) => {
                n.literals += 1;
                n.text.push('?');
            }
            Kind::Param(_) => {
                n.params += 1;
                n.text.push('?');
            }
            // Printed as `?`, `a ? b` (jsonb key test, reads column a) would share a cache entry
            // with `a 'x' b` (a typed literal of type a, aliased b).
            Kind::Op if text == "?" => n.text.push_str("OPERATOR(?)"),
            _ => {
                n.semicolons += usize::from(text == ";");
                n.text.push_str(text);
            }
        }
    }
    Ok(n)
}

/// Slow path for cache misses: words, quoted identifiers, literals and parameters in order;
/// operators and punctuation are left out.
pub fn signature(sql: &str) -> Result<Vec<SigItem>, LexError> {
    let mut lx = Lexer::new(sql)?;
    let mut out = Vec::new();
    while let Some(t) = lx.next_token()? {
        let text = lx.text(t);
        out.push(match t.kind {
            Kind::Word => SigItem::Word(text.to_ascii_lowercase()),
            Kind::Quoted => {
                let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
                SigItem::Quoted(inner.replace("\"\"", "\""))
            }
            Kind::Literal(k) => SigItem::Literal(k),
            Kind::Param(p) => SigItem::Param(p),
            Kind::Op | Kind::Punct => continue,
        });
    }
    Ok(out)
}

/// The audit trail's statement fingerprint: first 16 hex chars of SHA-256 of the normalized text.
pub fn fingerprint(normalized: &str) -> String {
    let mut h = hex::encode(Sha256::digest(normalized.as_bytes()));
    h.truncate(16);
    h
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Quoted,
    Literal(LiteralKind),
    Param(u32),
    Op,
    Punct,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// How a quote-delimited literal treats `''` and backslashes (scan.l states xq, xe, xb/xh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Doubled,
    Backslash,
    Raw,
}

fn unterminated(what: &'static str, offset: usize) -> LexError {
    LexError::Unterminated { what, offset }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

fn is_op(c: u8) -> bool {
    b"~!@#^&|`?+-*/%<>=".contains(&c)
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

struct Lexer<'a> {
    src: &'a str,
    s: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Result<Self, LexError> {
        // The wire protocol ends a query at NUL: the server would never see what follows.
        // Rejecting it also lets `at` use 0 as the end-of-input sentinel.
        if let Some(offset) = src.bytes().position(|b| b == 0) {
            return Err(LexError::BadCharacter { offset });
        }
        Ok(Self {
            src,
            s: src.as_bytes(),
            pos: 0,
        })
    }

    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    /// Token boundaries always sit next to ASCII bytes, so this never falls back in practice.
    fn text(&self, t: Token) -> &'a str {
        self.src.get(t.start..t.end).unwrap_or("")
    }

    fn run(&self, from: usize, f: impl Fn(u8) -> bool) -> usize {
        let rest = self.s.get(from..).unwrap_or_default();
        from + rest.iter().take_while(|&&c| f(c)).count()
    }

    fn line_end(&self, i: usize) -> usize {
        self.run(i, |c| c != b'\n' && c != b'\r')
    }

    fn next_token(&mut self) -> Result<Option<Token>, LexError> {
        self.skip_blanks()?;
        let start = self.pos;
        let (c, n) = (self.at(start), self.at(start + 1));
        use LiteralKind as L;
        let (kind, end) = match c {
            0 => return Ok(None),
            b'\'' => self.string(start, start, Quoting::Doubled, L::String)?,
            b'e' | b'E' if n == b'\'' => self.string(start, start + 1, Quoting::Backslash, L::Escape)?,
            b'b' | b'B' if n == b'\'' => self.string(start, start + 1, Quoting::Raw, L::Bit)?,
            b'x' | b'X' if n == b'\'' => self.string(start, start + 1, Quoting::Raw, L::Hex)?,
            // The server turns N'..' into the keyword NCHAR and a plain string.
            b'n' | b'N' if n == b'\'' => self.string(start, start + 1, Quoting::Doubled, L::National)?,
            b'u' | b'U' if n == b'&' && matches!(self.at(start + 2), b'\'' | b'"') => {
                return Err(LexError::UnicodeEscape { offset: start })
            }
            b'"' => self.quoted(start)?,
            b'$' => self.dollar(start)?,
            b'0'..=b'9' => self.number(start)?,
            b'.' if n.is_ascii_digit() => self.number(start)?,
            b'.' if n == b'.' => (Kind::Punct, start + 2),
            b':' if n == b':' || n == b'=' => (Kind::Punct, start + 2),
            b',' | b'(' | b')' | b'[' | b']' | b';' | b'.' | b':' => (Kind::Punct, start + 1),
            c if is_op(c) => self.operator(start)?,
            c if is_ident_start(c) => self.word(start)?,
            _ => return Err(LexError::BadCharacter { offset: start }),
        };
        self.pos = end;
        Ok(Some(Token { kind, start, end }))
    }

    fn skip_blanks(&mut self) -> Result<(), LexError> {
        loop {
            match (self.at(self.pos), self.at(self.pos + 1)) {
                (c, _) if is_space(c) => self.pos += 1,
                (b'-', b'-') => self.pos = self.line_end(self.pos),
                (b'/', b'*') => self.pos = self.block_comment(self.pos)?,
                _ => return Ok(()),
            }
        }
    }

    /// Block comments nest in PostgreSQL (unlike the SQL standard and most other lexers).
    fn block_comment(&self, start: usize) -> Result<usize, LexError> {
        let (mut i, mut depth) = (start, 0usize);
        loop {
            match (self.at(i), self.at(i + 1)) {
                (0, _) => return Err(unterminated("/* comment", start)),
                (b'/', b'*') => {
                    depth += 1;
                    i += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return Ok(i);
                    }
                }
                _ => i += 1,
            }
        }
    }

    fn string(&self, start: usize, quote: usize, q: Quoting, kind: LiteralKind) -> Result<(Kind, usize), LexError> {
        let mut i = quote + 1;
        loop {
            match self.at(i) {
                0 => return Err(unterminated("quoted string", start)),
                b'\\' if q == Quoting::Backslash => i += 2,
                // B'' and X'' have no '' escape: `B'1''0'` is a bit string followed by a string.
                b'\'' if q != Quoting::Raw && self.at(i + 1) == b'\'' => i += 2,
                // A continued literal keeps its quoting: the tail of E'a'\n'\'' is still an E string.
                b'\'' => match self.continuation(i + 1) {
                    Some(next) => i = next + 1,
                    None => return Ok((Kind::Literal(kind), i + 1)),
                },
                _ => i += 1,
            }
        }
    }

    /// scan.l's {quotecontinue}: 'a'<blanks with a newline>'b' is the single literal 'ab'.
    /// `--` comments may sit in the blanks, block comments may not.
    fn continuation(&self, mut i: usize) -> Option<usize> {
        let mut newline = false;
        loop {
            match self.at(i) {
                b'\n' | b'\r' => {
                    newline = true;
                    i += 1;
                }
                b' ' | b'\t' | 0x0b | 0x0c => i += 1,
                b'-' if self.at(i + 1) == b'-' => i = self.line_end(i),
                b'\'' if newline => return Some(i),
                _ => return None,
            }
        }
    }

    fn quoted(&self, start: usize) -> Result<(Kind, usize), LexError> {
        let (mut i, mut escapes) = (start + 1, 0);
        loop {
            match (self.at(i), self.at(i + 1)) {
                (0, _) => return Err(unterminated("quoted identifier", start)),
                (b'"', b'"') => {
                    i += 2;
                    escapes += 1;
                }
                (b'"', _) => break,
                _ => i += 1,
            }
        }
        match i - start - 1 - escapes {
            0 => Err(LexError::EmptyQuotedIdentifier { offset: start }),
            len if len > MAX_NAME => Err(LexError::IdentifierTooLong { offset: start }),
            _ => Ok((Kind::Quoted, i + 1)),
        }
    }

    fn dollar(&self, start: usize) -> Result<(Kind, usize), LexError> {
        let n = self.at(start + 1);
        if n.is_ascii_digit() {
            let end = self.run(start + 1, |c| c.is_ascii_digit());
            if is_ident_start(self.at(end)) {
                return Err(LexError::TrailingJunk { offset: start });
            }
            // The server keeps parameter numbers in an int.
            let num = self.src.get(start + 1..end).and_then(|d| d.parse::<i32>().ok());
            return match num.and_then(|p| u32::try_from(p).ok()) {
                Some(p) => Ok((Kind::Param(p), end)),
                None => Err(LexError::ParamTooLarge { offset: start }),
            };
        }
        // Tag characters exclude `$`, so `$a` without a closing `$` is scan.l's dolqfailed: a lone
        // `$` token, which the grammar rejects.
        let tag_end = self.run(start + 1, |c| is_ident_start(c) || c.is_ascii_digit());
        if self.at(tag_end) != b'$' {
            return Err(LexError::BadCharacter { offset: start });
        }
        let tag = &self.s[start..=tag_end];
        // Every `$` is a place where scan.l tries the delimiter; a mismatch stops at the next `$`,
        // so this scan stays linear.
        let mut i = tag_end + 1;
        while let Some(k) = self.s.iter().skip(i).position(|&c| c == b'$') {
            i += k;
            if self.s[i..].starts_with(tag) {
                return Ok((Kind::Literal(LiteralKind::Dollar), i + tag.len()));
            }
            i += 1;
        }
        Err(unterminated("dollar-quoted string", start))
    }

    fn number(&self, start: usize) -> Result<(Kind, usize), LexError> {
        let lit = Kind::Literal(LiteralKind::Number);
        let mut i = self.run(start, |c| c.is_ascii_digit());
        if self.at(i) == b'.' {
            // scan.l's decimalfail: `1..5` is the integer 1 followed by `..`.
            if self.at(i + 1) == b'.' && i > start {
                return Ok((lit, i));
            }
            i = self.run(i + 1, |c| c.is_ascii_digit());
        }
        if matches!(self.at(i), b'e' | b'E') {
            let digits = i + 1 + usize::from(matches!(self.at(i + 1), b'+' | b'-'));
            if self.at(digits).is_ascii_digit() {
                i = self.run(digits, |c| c.is_ascii_digit());
            } else if digits > i + 1 {
                return Err(LexError::TrailingJunk { offset: start });
            }
        }
        // PostgreSQL 15 rejects `123abc` and `0x1F` instead of reading `123 AS abc`.
        if is_ident_start(self.at(i)) {
            return Err(LexError::TrailingJunk { offset: start });
        }
        Ok((lit, i))
    }

    fn operator(&self, start: usize) -> Result<(Kind, usize), LexError> {
        let mut end = self.run(start, is_op);
        let run = &self.s[start..end];
        // A comment start inside the run cuts the operator short; never at 0, skip_blanks ate those.
        if let Some(k) = run.windows(2).position(|w| w == b"/*" || w == b"--") {
            end = start + k.max(1);
        }
        let run = &self.s[start..end];
        // SQL compatibility: `=-1` is `=` `-` `1`, but `@-` or `!=-` stay one operator.
        if run.len() > 1 && matches!(run[run.len() - 1], b'+' | b'-') && !run.iter().any(|c| b"~!@#^&|`?%".contains(c))
        {
            while end - start > 1 && matches!(self.s[end - 1], b'+' | b'-') {
                end -= 1;
            }
        }
        if end - start > MAX_NAME {
            return Err(LexError::OperatorTooLong { offset: start });
        }
        Ok((Kind::Op, end))
    }

    fn word(&self, start: usize) -> Result<(Kind, usize), LexError> {
        let end = self.run(start + 1, is_ident_cont);
        let w = &self.s[start..end];
        if w.eq_ignore_ascii_case(b"uescape") {
            return Err(LexError::Uescape { offset: start });
        }
        if w.len() > MAX_NAME {
            return Err(LexError::IdentifierTooLong { offset: start });
        }
        Ok((Kind::Word, end))
    }
}

#[cfg(test)]
mod tests {
    use super::LiteralKind as L;
    use super::*;

    fn norm(sql: &str) -> String {
        normalize(sql).unwrap_or_else(|e| panic!("{sql:?}: {e}")).text
    }

    #[test]
    fn normalizes() {
        let long63 = "a".repeat(63);
        let cases: &[(&str, &str)] = &[
            (
                "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
                "SELECT abalance FROM pgbench_accounts WHERE aid = ? ;",
            ),
            (
                "  select\t*\r\n from  t -- secret\n where a=1 /* secret */",
                "select * from t where a = ?",
            ),
            ("/* a /* b */ c */ SELECT 1", "SELECT ?"),
            ("/**/1/*/**/*/2/***/", "? ?"),
            (
                "'x' E'it\\'s' e'\\\\' B'101' b'' X'1F' x'' N'n' n'' $$a$$ $t$ $$ $x$ $t$ $1 $23",
                "? ? ? ? ? ? ? ? ? ? ? ? ?",
            ),
            ("'it''s' E'a''b'", "? ?"),
            ("'a'\n'b'", "?"),
            ("'a' 'b'", "? ?"),
            ("'a' -- c\n  -- d\n\t'b' 'c'", "? ?"),
            ("'a' /* c */\n'b'", "? ?"),
            ("'a'\n/* c */'b'", "? ?"),
            ("B'1'\n'0' X'f'\r'0' N'a'\n'b'", "? ? ?"),
            ("E'a'\n'\\'' x", "? x"),
            ("B'1''0'", "? ?"),
            ("'a\\' b", "? b"),
            ("x::int", "x :: int"),
            ("'1'::int", "? :: int"),
            ("a:=1", "a := ?"),
            ("f(a=>1)", "f ( a => ? )"),
            ("a<=b", "a <= b"),
            ("a< =b", "a < = b"),
            ("a<>b!=c<=>d", "a <> b != c <=> d"),
            ("*/*c*/2", "* ?"),
            ("1--c\n+2", "? + ?"),
            ("a+-/*c*/1", "a + - ?"),
            ("a=-1", "a = - ?"),
            ("a@-1", "a @- ?"),
            ("a!=-1", "a !=- ?"),
            ("a?-b", "a ?- b"),
            ("a ? b ?| c @? d", "a OPERATOR(?) b ?| c @? d"),
            ("`~#%^&|", "`~#%^&|"),
            ("\"Quoted \"\"x\"\"\" \"a b\"", "\"Quoted \"\"x\"\"\" \"a b\""),
            ("straße ÄB", "straße ÄB"),
            ("E 'x' ex'1' u&x x$1 a$b$ _1", "E ? ex ? u & x x$1 a$b$ _1"),
            ("42 3.5 .5 5. 1e10 1.5E-3 1e+3 1.e5 007", "? ? ? ? ? ? ? ? ?"),
            ("1..2", "? .. ?"),
            ("1.2.3 a[1:2] t.5", "? ? a [ ? : ? ] t ?"),
            ("ARRAY[1,2]", "ARRAY [ ? , ? ]"),
            ("$a$x$b$ $$ $a$", "?"),
            ("$a$x$$a$ b", "? b"),
            ("$1+$2", "? + ?"),
            ("SELECT 1;SELECT 2;", "SELECT ? ; SELECT ? ;"),
            ("\x0b\x0cSELECT\x0b1", "SELECT ?"),
            ("", ""),
            ("-- only a comment", ""),
            (&long63, &long63),
        ];
        for (sql, want) in cases {
            assert_eq!(norm(sql), *want, "input {sql:?}");
        }
    }

    #[test]
    fn counts_and_fingerprint() {
        let n = normalize("UPDATE t SET a = 'x', b = $1 WHERE c = 2; SELECT $$s$$;").unwrap();
        assert_eq!((n.literals, n.params, n.semicolons), (3, 1, 2));
        let f = fingerprint(&n.text);
        assert_eq!(f.len(), 16);
        assert!(f.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(f, fingerprint("UPDATE t SET a = ? , b = ? WHERE c = ? ; SELECT ? ;"));
        assert_eq!(fingerprint(""), "e3b0c44298fc1c14");
    }

    #[test]
    fn structurally_different_statements_normalize_differently() {
        let pairs = [
            ("a ? b", "a 'x' b"),
            ("a<=b", "a< =b"),
            ("'a'\n'b'", "'a' 'b'"),
            ("a!=-1", "a!= -1"),
            ("\"a b\"", "\"a\" b"),
            ("1..2", "1. .2"),
            ("SELECT \"x\"", "SELECT x"),
        ];
        for (a, b) in pairs {
            assert_ne!(norm(a), norm(b), "{a:?} vs {b:?}");
        }
        assert_eq!(norm("a=-1"), norm("a = - 1"));
    }

    #[test]
    fn audit_text_keeps_no_customer_data() {
        let sql = "SELECT /* secret */ 'secret', E'secret', $s$secret$s$, B'1', X'5ec', N'secret', 31337 -- secret\n";
        let n = norm(sql);
        assert!(
            !n.contains("secret") && !n.contains("31337") && !n.contains("5ec"),
            "{n}"
        );
    }

    #[test]
    fn rejects() {
        use LexError::*;
        let long = "a".repeat(64);
        let long_quoted = format!("\"{}\"", "b".repeat(64));
        let long_op = "<".repeat(64);
        let un = |what, offset| Unterminated { what, offset };
        let (qs, qi, cm, dq) = (
            "quoted string",
            "quoted identifier",
            "/* comment",
            "dollar-quoted string",
        );
        let cases: &[(&str, LexError)] = &[
            ("SELECT U&'x'", UnicodeEscape { offset: 7 }),
            ("u&\"x\"", UnicodeEscape { offset: 0 }),
            ("SELECT 'x' UESCAPE '!'", Uescape { offset: 11 }),
            ("select uEscape", Uescape { offset: 7 }),
            ("SELECT * FROM 'x", un(qs, 14)),
            ("E'abc\\'", un(qs, 0)),
            ("E'\\", un(qs, 0)),
            ("'a'\n'b", un(qs, 0)),
            ("B'1''", un(qs, 4)),
            ("\"abc", un(qi, 0)),
            ("1 /* a /* b */", un(cm, 2)),
            ("$$abc", un(dq, 0)),
            ("$a$abc$b$", un(dq, 0)),
            ("SELECT \"\"", EmptyQuotedIdentifier { offset: 7 }),
            ("123abc", TrailingJunk { offset: 0 }),
            ("1.5x", TrailingJunk { offset: 0 }),
            ("0x1F", TrailingJunk { offset: 0 }),
            ("1e", TrailingJunk { offset: 0 }),
            ("1e+", TrailingJunk { offset: 0 }),
            ("1.e-x", TrailingJunk { offset: 0 }),
            ("1e5e", TrailingJunk { offset: 0 }),
            (".5_", TrailingJunk { offset: 0 }),
            ("x = $1abc", TrailingJunk { offset: 4 }),
            ("$99999999999", ParamTooLarge { offset: 0 }),
            ("a \\ b", BadCharacter { offset: 2 }),
            ("{}", BadCharacter { offset: 0 }),
            ("a\x01", BadCharacter { offset: 1 }),
            ("SELECT 1\0; DROP", BadCharacter { offset: 8 }),
            ("'\0'", BadCharacter { offset: 1 }),
            ("$", BadCharacter { offset: 0 }),
            ("$abc d", BadCharacter { offset: 0 }),
            ("$ 1", BadCharacter { offset: 0 }),
            (&long, IdentifierTooLong { offset: 0 }),
            (&long_quoted, IdentifierTooLong { offset: 0 }),
            (&long_op, OperatorTooLong { offset: 0 }),
        ];
        for (sql, want) in cases {
            assert_eq!(normalize(sql).err().as_ref(), Some(want), "input {sql:?}");
            assert_eq!(signature(sql).err().as_ref(), Some(want), "input {sql:?}");
        }
        assert_eq!(un(qs, 14).to_string(), "unterminated quoted string at byte 14");
        assert_eq!(
            UnicodeEscape { offset: 7 }.to_string(),
            "U& Unicode escapes are not accepted by unscharf (byte 7)"
        );
        // Quoted or inside literals and comments, uescape is just text.
        assert!(normalize("SELECT \"uescape\", 'uescape' -- uescape").is_ok());
        assert!(normalize("SELECT \"x\"\"\"").is_ok());
    }

    #[test]
    fn signatures() {
        use SigItem::*;
        let w = |s: &str| Word(s.into());
        let q = |s: &str| Quoted(s.into());
        let kinds = [L::String, L::Escape, L::Bit, L::Hex, L::National, L::Dollar, L::Number];
        let cases: Vec<(&str, Vec<SigItem>)> = vec![
            (
                "SELECT \"My \"\"T\"\"\".Id FROM Straße",
                vec![w("select"), q("My \"T\""), w("id"), w("from"), w("straße")],
            ),
            (
                "x = 'a' || E'b' || B'1' || X'f' || N'n' || $t$d$t$ || 1.5 || $3",
                [w("x")]
                    .into_iter()
                    .chain(kinds.map(Literal))
                    .chain([Param(3)])
                    .collect(),
            ),
            (
                "a.b::INT[] <> ALL ($1)",
                vec![w("a"), w("b"), w("int"), w("all"), Param(1)],
            ),
            ("'a'\n'b' 'c'", vec![Literal(L::String), Literal(L::String)]),
        ];
        for (sql, want) in cases {
            assert_eq!(signature(sql).unwrap(), want, "input {sql:?}");
        }
    }

    /// signature() against sqlparser's PostgreSQL tokenizer on ordinary application queries.
    /// Known differences (asserted at the end):
    /// - string continuation: `'a'\n'b'` is one literal here, two SingleQuotedStrings there;
    /// - `123abc`, `1e5x`, `0x1F`, `$1abc` are errors here (PostgreSQL 15), tokens there;
    /// - `B'1''0'` / `X'1''2'` are two literals here (no `''` escape in bit strings), one there.
    ///
    /// Differences the signature cannot see (operators and punctuation are not in it), all of
    /// which the server rejects: `1..2` is `1` `..` `2` here, `1.` `.2` there; `a!=-1` is the
    /// operator `!=-` here, `!=` `-` there; `a@-1` is the operator `@-` here, an error there.
    #[test]
    fn agrees_with_sqlparser() {
        use sqlparser::dialect::PostgreSqlDialect;
        use sqlparser::tokenizer::{Token, Tokenizer};
        fn theirs(sql: &str) -> Option<Vec<SigItem>> {
            let toks = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
            Some(
                toks.into_iter()
                    .filter_map(|t| match t {
                        Token::Word(w) if w.quote_style.is_none() => Some(SigItem::Word(w.value.to_ascii_lowercase())),
                        Token::Word(w) if w.quote_style == Some('"') => Some(SigItem::Quoted(w.value)),
                        Token::Placeholder(p) => Some(SigItem::Param(p.strip_prefix('$')?.parse().ok()?)),
                        t => Some(SigItem::Literal(match t {
                            Token::SingleQuotedString(_) => L::String,
                            Token::EscapedStringLiteral(_) => L::Escape,
                            Token::SingleQuotedByteStringLiteral(_) => L::Bit,
                            Token::HexStringLiteral(_) => L::Hex,
                            Token::NationalStringLiteral(_) => L::National,
                            Token::DollarQuotedString(_) => L::Dollar,
                            Token::Number(..) => L::Number,
                            _ => return None,
                        })),
                    })
                    .collect(),
            )
        }
        let agree = [
            "SELECT c.id, c.first_name, c.last_name FROM crm.customers c WHERE c.phone = $1 AND c.tenant_id = $2 LIMIT 50",
            "SELECT * FROM customers WHERE lower(email) = lower('Jane.Doe@example.com') AND status IN ('active', 'trial')",
            "select t.id, t.subject, a.name as agent from tickets t join agents a on a.id = t.agent_id left outer join calls k using (ticket_id) where t.opened_at >= now() - interval '7 days' order by 1 desc",
            "WITH recent AS (SELECT customer_id, max(created_at) AS last FROM calls GROUP BY customer_id) SELECT c.*, r.last FROM customers c JOIN recent r ON r.customer_id = c.id",
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(customers)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid)",
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a WHERE a.attrelid = '16384'::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            "CREATE FUNCTION f(x int) RETURNS int AS $$ SELECT x + 1 $$ LANGUAGE sql",
            "DO $body$ BEGIN RAISE NOTICE 'hi'; END $body$",
            "SELECT E'line\\nbreak', E'it\\'s', 'plain''quote', N'national', X'DEADbeef', B'0101'",
            "SELECT '2024-01-01'::date, 3.14::numeric(10,2), CAST(x AS text), 1e10, .5, 1.5E-3, 42",
            "SELECT ARRAY[1,2,3], tags[1], (ARRAY['a','b'])[1:2] FROM \"Customer Notes\" WHERE \"Id\" = ANY($1::int[])",
            "INSERT INTO notes (customer_id, body) VALUES ($1, $2) ON CONFLICT (customer_id) DO UPDATE SET body = EXCLUDED.body RETURNING id",
            "UPDATE customers SET phone = NULL WHERE id = 7; DELETE FROM calls WHERE id = 9",
            "SELECT data->>'name', data #> '{a,b}', data @> '{\"x\":1}'::jsonb FROM events WHERE NOT (data ? 'secret')",
            "SELECT count(*) FILTER (WHERE x > 1) OVER (PARTITION BY y ORDER BY z ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM t",
            "/* app=crm */ SELECT 1 -- trailing\n",
            "SELECT straße, \"straße\", a$b, x€y FROM öffentlich",
            "SELECT t.5, 1.5.3, .5., $a$x$$a$, $$x$ $$ FROM t",
        ];
        for sql in agree {
            assert_eq!(signature(sql).ok(), theirs(sql), "input {sql:?}");
        }
        let differ = [
            "SELECT 'a'\n'b'",
            "SELECT 123abc",
            "SELECT 1e5x",
            "SELECT 0x1F",
            "SELECT $1abc",
            "SELECT B'1''0'",
            "SELECT X'1''2'",
        ];
        for sql in differ {
            assert_ne!(signature(sql).ok(), theirs(sql), "input {sql:?}");
        }
    }

    #[test]
    fn random_input_never_panics() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pieces = [
            "'", "\"", "$", "$$", "$a$", "--", "/*", "*/", "\n", " ", "e'", "B'", "x'", "n'", "U&", "u&'", "\\", "1",
            "9", ".", "e", "+", "-", "<", "=", "?", ":", ";", "(", "[", "é", "ß", "select", "uescape", "_", "\r", "\t",
            "''", "\"\"", "1e",
        ];
        for round in 0..100_000 {
            let len = (next() % 40) as usize;
            let sql: String = if round % 2 == 0 {
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                (0..len)
                    .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                    .collect()
            };
            let (n, s) = (normalize(&sql), signature(&sql));
            assert_eq!(n.as_ref().err(), s.as_ref().err(), "input {sql:?}");
            if let (Ok(n), Ok(s)) = (n, s) {
                let lits = s
                    .iter()
                    .filter(|i| matches!(i, SigItem::Literal(_) | SigItem::Param(_)))
                    .count();
                assert_eq!(n.literals + n.params, lits, "input {sql:?}");
            }
        }
        // Long inputs stay linear (dollar-tag search, nested comments, continuations).
        let big = format!(
            "$t$ {} $t$ /*{} {}*/ {}",
            "$t $".repeat(50_000),
            "/*".repeat(49_999),
            "*/".repeat(49_999),
            "'a'\n".repeat(50_000)
        );
        assert!(normalize(&big).is_ok_and(|n| n.text == "? ?"));
    }

    #[test]
    #[ignore = "timing; run with --release -- --ignored --nocapture"]
    fn bench_normalize() {
        let sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;";
        let t = std::time::Instant::now();
        for _ in 0..1_000_000 {
            std::hint::black_box(normalize(std::hint::black_box(sql)).unwrap());
        }
        println!("normalize: {:?}/op", t.elapsed() / 1_000_000);
    }
}

/// Byte ranges of the statements in `sql`, split at `;` tokens as Postgres splits a simple Query;
/// empty statements (`;;`, a pool's `;` ping) are left out.
pub fn split_statements(sql: &str) -> Result<Vec<std::ops::Range<usize>>, LexError> {
    let mut lx = Lexer::new(sql)?;
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    while let Some(t) = lx.next_token()? {
        if t.kind == Kind::Punct && lx.text(t) == ";" {
            if let Some(s) = start.take() {
                out.push(s..end);
            }
        } else {
            start.get_or_insert(t.start);
            end = t.end;
        }
    }
    if let Some(s) = start {
        out.push(s..end);
    }
    Ok(out)
}

#[cfg(test)]
mod split_tests {
    use super::split_statements;

    #[test]
    fn splits_at_semicolon_tokens_only() {
        let sql = "SELECT ';' ; ;/* ; */ SELECT $$;$$;\n";
        let parts: Vec<&str> = split_statements(sql).unwrap().into_iter().map(|r| &sql[r]).collect();
        assert_eq!(parts, vec!["SELECT ';'", "SELECT $$;$$"]);
        assert!(split_statements(" ; -- x\n").unwrap().is_empty());
    }
}
