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
    /// An operator or punctuation, as written (`!=` as `<>`, which it is to the server).
    Op(String),
}

impl SigItem {
    /// An operator or punctuation as both lexers' readings are compared.
    pub fn op(text: &str) -> SigItem {
        SigItem::Op(if text == "!=" { "<>".into() } else { text.into() })
    }
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
            Kind::Literal(kind) => {
                n.literals += 1;
                // N'…' is a bpchar cast and B'…'/X'…' are bit strings: shapes of their own, so a
                // cached analysis of a plain string never stands in for them (their column names
                // and types differ).
                n.text.push_str(match kind {
                    LiteralKind::National => "N?",
                    LiteralKind::Bit => "B?",
                    LiteralKind::Hex => "X?",
                    _ => "?",
                });
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

/// Slow path for cache misses: words, quoted identifiers, literals, parameters, operators and
/// punctuation in order.
pub fn signature(sql: &str) -> Result<Vec<SigItem>, LexError> {
    lex_statement(sql).map(|l| l.signature)
}

/// Words that nest one expression inside another without a bracket (sqlparser's own recursion
/// limit only counts brackets and subqueries).
const CHAINING_WORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "is",
    "isnull",
    "notnull",
    "like",
    "ilike",
    "similar",
    "between",
    "in",
    "collate",
    "at",
    "escape",
    "overlaps",
    "union",
    "intersect",
    "except",
    // `OPERATOR(+)`: the bracket holds the operator, not an operand (round 27: its `+` was counted
    // inside and dropped at `)`, and 70,000 of them overflowed a worker's stack).
    "operator",
    // Not Postgres, but sqlparser chains them all the same.
    "xor",
    "regexp",
    "rlike",
    "div",
    "glob",
    "match",
    "member",
];

/// One statement as unscharf's lexer reads it, for the checks before and the parse after.
pub struct Lexed {
    /// `signature`'s items.
    pub signature: Vec<SigItem>,
    /// An upper bound on how deeply operators nest in the syntax tree. A chain like `1+1+…` nests
    /// one level per link without any bracket, and sqlparser builds and drops such a tree
    /// recursively, so the bound is checked before parsing. Links are counted per bracket level; a
    /// comma starts a new list item, whose tree is a sibling rather than a child.
    pub depth: usize,
    /// How deeply brackets nest, at the most.
    pub brackets: usize,
    /// The text with every comment, and every blank between tokens, turned into spaces (newlines
    /// kept), byte for byte. sqlparser reads this instead of the client's text, so that no comment
    /// can hide from one lexer what the other sees: sqlparser takes `||--` for one operator, where
    /// the server ends the operator before `--`, and the rest of a line was code to the proxy and a
    /// comment to Postgres (round 21).
    pub clean: String,
}

/// Reads `sql` once for its signature, its operator depth and its comment-free text.
pub fn lex_statement(sql: &str) -> Result<Lexed, LexError> {
    let bytes = sql.as_bytes();
    let blank = |gap: &[u8], out: &mut Vec<u8>| out.extend(gap.iter().map(|&b| if b == b'\n' { b } else { b' ' }));
    let mut clean = Vec::with_capacity(sql.len());
    let mut last = 0;
    let mut lx = Lexer::new(sql)?;
    let mut out = Vec::new();
    // Links at each open bracket level; the deepest path is the sum along the stack.
    let mut levels: Vec<usize> = vec![0];
    let (mut current, mut deepest, mut brackets) = (0usize, 0usize, 0usize);
    while let Some(t) = lx.next_token()? {
        blank(&bytes[last..t.start], &mut clean);
        clean.extend_from_slice(&bytes[t.start..t.end]);
        last = t.end;
        let text = lx.text(t);
        let link = match t.kind {
            Kind::Word => CHAINING_WORDS.iter().any(|w| text.eq_ignore_ascii_case(w)),
            Kind::Op => true,
            Kind::Punct => match text {
                "::" => true,
                "(" | "[" => {
                    levels.push(0);
                    brackets = brackets.max(levels.len() - 1);
                    false
                }
                ")" | "]" => {
                    current -= levels.pop().unwrap_or(0);
                    if levels.is_empty() {
                        levels.push(0);
                    }
                    false
                }
                "," | ";" => {
                    if let Some(top) = levels.last_mut() {
                        current -= *top;
                        *top = 0;
                    }
                    false
                }
                _ => false,
            },
            _ => false,
        };
        if link {
            if let Some(top) = levels.last_mut() {
                *top += 1;
            }
            current += 1;
            deepest = deepest.max(current);
        }
        out.push(match t.kind {
            Kind::Word => SigItem::Word(text.to_ascii_lowercase()),
            Kind::Quoted => {
                let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
                SigItem::Quoted(inner.replace("\"\"", "\""))
            }
            Kind::Literal(k) => SigItem::Literal(k),
            Kind::Param(p) => SigItem::Param(p),
            Kind::Op | Kind::Punct => SigItem::op(text),
        });
    }
    blank(&bytes[last..], &mut clean);
    let clean = String::from_utf8(clean).map_err(|e| LexError::BadCharacter {
        offset: e.utf8_error().valid_up_to(),
    })?;
    Ok(Lexed {
        signature: out,
        depth: deepest,
        brackets,
        clean,
    })
}

/// The byte range of each token of `sql`, in the order `lex_statement` gives its signature.
pub fn token_spans(sql: &str) -> Result<Vec<std::ops::Range<usize>>, LexError> {
    let mut lx = Lexer::new(sql)?;
    let mut out = Vec::new();
    while let Some(t) = lx.next_token()? {
        out.push(t.start..t.end);
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
mod tests;
