//! The lexer against libpg_query's scanner (Postgres's scan.l, standard_conforming_strings on),
//! on the spellings rounds used and on generated text made of the characters that decide where
//! strings, names and comments end.

use super::{lex, Backslash, Kind};
use pg_query::protobuf::{KeywordKind, Token as PgToken};

/// The tokens both lexers must agree on: strings, comments, names, numbers, by kind and span.
fn ours(text: &str) -> Vec<(Kind, usize, usize)> {
    lex(text, Backslash::Plain)
        .into_iter()
        .filter(|t| t.kind != Kind::Punct)
        // scan.l gives `N'…'` as the keyword NCHAR over the `n` alone.
        .map(|t| (t.kind, t.span.start, t.span.end))
        .collect()
}

/// libpg_query's scanner returns comments as tokens, and so does not read a `--` comment between
/// two parts of a continued string (`'a' -- note` and `'b'` on the next line) as Postgres 15 does,
/// which continues the string (checked against a server): such text is not compared.
fn commented_continuation(text: &str, theirs: &[(Kind, usize, usize)]) -> bool {
    theirs.windows(3).any(|w| {
        let (first, between, next) = (w[0], w[1], w[2]);
        first.0 == Kind::Str && between.0 == Kind::Comment && text[between.1..].starts_with("--") && next.0 == Kind::Str
    })
}

fn postgres(text: &str) -> Option<Vec<(Kind, usize, usize)>> {
    let scanned = pg_query::scan(text).ok()?;
    let mut out = Vec::new();
    for t in scanned.tokens {
        let (start, end) = (t.start as usize, t.end as usize);
        let token = PgToken::try_from(t.token).ok()?;
        let kind = match token {
            PgToken::Sconst | PgToken::Usconst | PgToken::Bconst | PgToken::Xconst => Kind::Str,
            PgToken::SqlComment | PgToken::CComment => Kind::Comment,
            PgToken::Iconst | PgToken::Fconst | PgToken::Param => Kind::Number,
            PgToken::Uident => Kind::UnicodeName,
            PgToken::Ident if text.as_bytes()[start] == b'"' => Kind::Name,
            PgToken::Ident => Kind::Word,
            _ if t.keyword_kind != KeywordKind::NoKeyword as i32 => Kind::Word,
            _ => continue,
        };
        out.push((kind, start, end));
    }
    Some(out)
}

const SPELLINGS: &[&str] = &[
    // Round 255 CN1 and round 258 CQ1.
    "x := 'caller\\'s number /* '; INSERT INTO /* the list */ zeitung.leads SELECT 1; y := ' */ ';",
    "x := E'caller'\n'\\' /* ';\n y := 'c:\\' || ' /* \" ';\n INSERT INTO zeitung.\"leads\" SELECT 1;\n y := ' */ */ ';",
    "x := 'a'\n  -- note\n  'b' || E'c\\'d' || $q$ e ' \" $q$ || $$ $a$ $$;",
    "SELECT 'a' /* c */\n'b', e'\\\\', B'01', X'1F', N'x', U&'d\\0061t' UESCAPE '!', U&\"d\\0061t\"",
    "SELECT \"a\"\"b\", a$b, $1, $1$$x$$, 1.5e3, .5, 1..2, a.b.c, \"x y\".z",
    "/* a /* nested */ comment */ SELECT 1 -- to the end\r SELECT 2 --",
    "SELECT $a$ $b$ $a$, $_x1$ y $_x1$, 'it''s', '' , E'\\\\' , E'\\''",
    "SELECT kundenä, \"Größe\", ñ$1 FROM t",
    "x := 'a'\t\n'b'\n/* c */'d'",
    "x := 'a' -- c\n'b'",
    "x := 'a'\n-- c\n'b'",
];

#[test]
fn the_spellings_rounds_used_are_read_as_postgres_reads_them() {
    // Text Postgres's scanner rejects with standard_conforming_strings on (CN1's) runs only with
    // it off, and is not compared.
    let mut compared = 0;
    for text in SPELLINGS {
        if let Some(theirs) = postgres(text).filter(|t| !commented_continuation(text, t)) {
            assert_eq!(ours(text), theirs, "{text:?}");
            compared += 1;
        }
    }
    assert!(compared >= 7, "{compared}");
    // Postgres 15 continues a string over a `--` comment and a line break, not over `/* */`.
    let continued = ours("x := 'a' -- note\n  'b' /* c */\n'd'");
    let strings: Vec<(usize, usize)> = continued
        .iter()
        .filter(|t| t.0 == Kind::Str)
        .map(|t| (t.1, t.2))
        .collect();
    assert_eq!(strings, [(5, 22), (31, 34)]);
}

/// Text made of the pieces that decide where strings, names and comments end, from a fixed seed:
/// wherever libpg_query's scanner accepts it, both lexers must cut it alike.
#[test]
fn generated_text_is_cut_as_postgres_cuts_it() {
    const PIECES: &[&str] = &[
        "'", "'", "\"", "\\", "$", "$$", "$a$", "e", "E'", "b'", "x'", "n'", "u&'", "U&\"", "/*", "*/", "--", "\n",
        "\r", " ", "\t", "a", "1", ".", "-", "*", "/", ";", "ä", "''", "\"\"", "e'", "\\'",
    ];
    let mut state: u64 = 0x5eed_cafe_f00d_beef;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut compared, mut total) = (0, 0);
    for _ in 0..20_000 {
        let len = 1 + (next() % 14) as usize;
        let text: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        total += 1;
        if let Some(theirs) = postgres(&text).filter(|t| !commented_continuation(&text, t)) {
            compared += 1;
            assert_eq!(ours(&text), theirs, "{text:?}");
        }
    }
    // Enough of the text is accepted for the comparison to mean something.
    assert!(compared * 4 > total, "{compared} of {total}");
}

#[test]
fn strings_read_both_ways_and_values_are_unquoted() {
    let text = "x := 'a\\'b' ; y";
    let plain = lex(text, Backslash::Plain);
    let escapes = lex(text, Backslash::Escapes);
    assert_eq!(plain[3].value, "a\\");
    assert_eq!(plain.last().map(|t| t.kind), Some(Kind::Str));
    assert_eq!(escapes[3].value, "a'b");
    assert_eq!(escapes.last().map(|t| t.value.as_str()), Some("y"));
    let name = lex("\"a\"\"b\"", Backslash::Plain);
    assert_eq!((name[0].kind, name[0].value.as_str()), (Kind::Name, "a\"b"));
    let blank = super::blanked(
        "a 'xy' /* c */ $t$ z $t$ b",
        &lex("a 'xy' /* c */ $t$ z $t$ b", Backslash::Plain),
        true,
    );
    assert_eq!(blank, "a '  '         $t$   $t$ b");
}
