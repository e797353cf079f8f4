//! Lexer tests: normalization, signatures checked against sqlparser's tokenizer, statement splitting.

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
            "? ? ? B? B? X? X? N? N? ? ? ? ?",
        ),
        ("'it''s' E'a''b'", "? ?"),
        ("'a'\n'b'", "?"),
        ("'a' 'b'", "? ?"),
        ("'a' -- c\n  -- d\n\t'b' 'c'", "? ?"),
        ("'a' /* c */\n'b'", "? ?"),
        ("'a'\n/* c */'b'", "? ?"),
        ("B'1'\n'0' X'f'\r'0' N'a'\n'b'", "B? X? N?"),
        ("E'a'\n'\\'' x", "? x"),
        ("B'1''0'", "B? ?"),
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
        let words: Vec<SigItem> = signature(sql)
            .unwrap()
            .into_iter()
            .filter(|i| !matches!(i, SigItem::Op(_)))
            .collect();
        assert_eq!(words, want, "input {sql:?}");
    }
}

/// signature() against the proxy's reading of sqlparser's PostgreSQL tokens on ordinary
/// application queries. Known differences (asserted at the end):
/// - string continuation: `'a'\n'b'` is one literal here, two SingleQuotedStrings there;
/// - `123abc`, `1e5x`, `0x1F`, `$1abc` are errors here (PostgreSQL 15), tokens there;
/// - `B'1''0'` / `X'1''2'` are two literals here (no `''` escape in bit strings), one there;
/// - operators split differently, all rejected by the server: `1..2` is `1` `..` `2` here,
///   `1.` `.2` there; `a!=-1` is the operator `!=-` here, `!=` `-` there; `a@-1` is `@-` here;
/// - `||--` is one operator there, `||` and a comment here (round 21); analyze() hands sqlparser
///   the text with comments blanked, so it never meets one.
#[test]
fn agrees_with_sqlparser() {
    fn agree(sql: &str) -> bool {
        match (signature(sql), crate::analyze::differential::sqlparser_signature(sql)) {
            (Ok(ours), Ok(theirs)) => crate::analyze::differential::same_signature(&ours, &theirs),
            _ => false,
        }
    }
    let agreeing = [
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
    for sql in agreeing {
        assert!(agree(sql), "input {sql:?}: {:?}", signature(sql));
    }
    let differ = [
        "SELECT 'a'\n'b'",
        "SELECT 123abc",
        "SELECT 1e5x",
        "SELECT 0x1F",
        "SELECT $1abc",
        "SELECT B'1''0'",
        "SELECT X'1''2'",
        "SELECT 1..2",
        "SELECT a!=-1",
        "SELECT a@-1",
        "SELECT '' ||--[]\nphone FROM t",
    ];
    for sql in differ {
        assert!(!agree(sql), "input {sql:?}");
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
        "'", "\"", "$", "$$", "$a$", "--", "/*", "*/", "\n", " ", "e'", "B'", "x'", "n'", "U&", "u&'", "\\", "1", "9",
        ".", "e", "+", "-", "<", "=", "?", ":", ";", "(", "[", "é", "ß", "select", "uescape", "_", "\r", "\t", "''",
        "\"\"", "1e",
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

mod split_tests {
    use crate::analyze::lexer::split_statements;

    #[test]
    fn splits_at_semicolon_tokens_only() {
        let sql = "SELECT ';' ; ;/* ; */ SELECT $$;$$;\n";
        let parts: Vec<&str> = split_statements(sql).unwrap().into_iter().map(|r| &sql[r]).collect();
        assert_eq!(parts, vec!["SELECT ';'", "SELECT $$;$$"]);
        assert!(split_statements(" ; -- x\n").unwrap().is_empty());
    }
}

#[test]
fn chain_depth_counts_links_per_bracket_level() {
    let depth = |sql: &str| lex_statement(sql).unwrap().depth;
    for (sql, want) in [
        ("SELECT 1", 0),
        ("SELECT 1+1+1", 2),
        ("SELECT a::int::text", 2),
        ("SELECT NOT a AND b IS NULL", 3),
        // Commas separate sibling trees; brackets add their links to the enclosing chain.
        ("SELECT 1+1, 2+2, 3+3", 1),
        ("SELECT f(1+1, 2+2+2) + 1", 2),
        ("SELECT (1+1) + (1+1+1)", 3),
        ("SELECT a FROM t WHERE x = 1; SELECT 1", 1),
        ("SELECT 1 UNION SELECT 2 UNION SELECT 3", 2),
        // Unbalanced brackets are the parser's business; the count stays sane.
        ("SELECT ))) 1+1", 1),
    ] {
        assert_eq!(depth(sql), want, "{sql}");
    }
}
