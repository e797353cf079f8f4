//! Mask function tests: spelling, each mask on typical and hostile values, pseudonym keys.

use super::*;

#[test]
fn ascii_fast_path_agrees_with_the_scalar_path() {
    let keep_last3 = |i: usize, total: usize| i >= total.saturating_sub(3);
    let keep_iban = |i: usize, total: usize| total > 8 && (i < 4 || i >= total - 4);
    for v in [
        "",
        "+49 30 1234567",
        "DE89 3704 0044 0532 0130 00",
        "a-b_c.d",
        "12",
        "~!@#",
        "x\u{7f}y9",
    ] {
        for keep in [&keep_last3 as &dyn Fn(usize, usize) -> bool, &keep_iban] {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            star_alnum(v.as_bytes(), &mut fast, keep);
            star_alnum_scalars(v.as_bytes(), &mut slow, keep);
            assert_eq!(fast, slow, "{v:?}");
        }
    }
}

fn run(mask: &str, value: &[u8]) -> String {
    let key = PseudonymKey::derive(b"master", "campaign");
    let (mask, mut out) = (mask.parse::<Mask>().unwrap(), b"prefix:".to_vec());
    assert!(mask.apply(value, Some(&key), &mut out));
    String::from_utf8(out.split_off(7)).unwrap()
}

fn check(mask: &str, cases: &[(&str, &str)]) {
    for (input, want) in cases {
        assert_eq!(run(mask, input.as_bytes()), *want, "{mask} of {input:?}");
    }
}

#[test]
#[rustfmt::skip]
fn spec_examples() {
    check("redact", &[("Anna Schmidt", "****"), ("", "****")]);
    check("first(2)", &[("Schmidt", "Sc*****")]);
    check("last(3)", &[("+49 30 1234567", "+** ** ****567")]);
    check("email", &[("anna.schmidt@example.org", "a***@example.org")]);
    check("iban", &[("DE89 3704 0044 0532 0130 00", "DE89 **** **** **** **30 00")]);
    check("year", &[("1984-07-02", "1984")]);
    check("round(10)", &[("137.4", "140")]);
    check("round(0.5)", &[("1.26", "1.5")]);
    check("constant('it''s')", &[("anything", "it's")]);
}

#[test]
fn null_mask_writes_nothing() {
    let mut out = b"x".to_vec();
    assert!(!Mask::Null.apply(b"Anna", None, &mut out));
    assert_eq!(out, b"x");
}

#[test]
#[rustfmt::skip]
fn first_and_last() {
    check("first(2)", &[("Jürgen", "Jü****"), ("Çelik", "Çe***"), ("", ""), ("A", "A")]);
    check("first(1)", &[("😀😀😀", "😀**"), ("Anna Schmidt", "A***********")]);
    check("first(99)", &[("Jürgen", "Jürgen")]);
    check("last(2)", &[("Çelik", "***ik"), ("Jürgen", "****en"), ("--/ .", "--/ ."), ("", "")]);
    check("last(1)", &[("a😀b", "**b"), ("ab-12", "**-*2")]);
    // Only ASCII separators pass: tag digits, combining accents (round 202 AM2) are starred.
    check("last(3)", &[("0171 \u{E0035}\u{E0035}\u{E0035} 9876", "**** *** *876"), ("Jose\u{301}", "*ose*")]);
    check("iban", &[("DE89\u{2800}3704 0044 0532 0130 00", "DE89***** **** **** **30 00")]);
    check("last(50)", &[("+49 30", "+49 30")]);
    // Invalid UTF-8 reads like from_utf8_lossy: one replacement character per bad sequence.
    assert_eq!(run("first(1)", b"\xffabc"), "\u{FFFD}***");
    assert_eq!(run("last(1)", b"ab\xf0\x9f"), "*b*");
    assert_eq!(run("last(1)", b"ab\xff\xfe"), "*b**");
}

#[test]
#[rustfmt::skip]
fn email_and_iban() {
    check("email", &[
        ("ü@x.de", "ü***@x.de"), ("\"a@b\"@example.org", "\"***@example.org"),
        ("@example.org", "****"), ("no-at-sign", "****"), ("", "****"), ("a@", "****"),
        ("anna@example.org  ", "a***@example.org"), ("anna@müller.de", "a***@müller.de"),
        // Only a host name is shown (round 202 AM1).
        ("kurt@example.org (privat: +49 171 5559876)", "****"), ("kurt@0171.5559876", "****"),
        ("kurt@example.org/0171", "****"), ("kurt@localhost", "****"), ("kurt@a..de", "****"),
    ]);
    check("iban", &[
        ("DE89370400440532013000", "DE89**************3000"), ("DE89 3704", "**** ****"),
        ("12345678", "********"), ("123456789", "1234*6789"), ("", ""), ("-- --", "-- --"),
    ]);
}

#[test]
#[rustfmt::skip]
fn year_in_every_datestyle() {
    check("year", &[
        ("1984-07-02 13:45:00+02", "1984"), ("07/02/1984", "1984"), ("02.07.1984", "1984"),
        ("Mon Jul 02 13:45:00 1984 PST", "1984"), ("Mon Jul 02 13:45:00.123456 1984 PST", "1984"),
        ("07/02/1984 13:45:00.5 CEST", "1984"), ("10000-01-01", "10000"),
        ("0044-03-15 BC", "0044 BC"), ("0044-03-15 00:00:00+00:53:28 BC", "0044 BC"),
        ("infinity", "infinity"), ("-infinity", "-infinity"), ("12:34:56.7890", "****"),
        ("07/02/84", "****"), ("", "****"), ("Jürgen", "****"),
    ]);
}

#[test]
#[rustfmt::skip]
fn round_numbers() {
    check("round(10)", &[
        ("-137.4", "-140"), ("137.40", "140"), ("-12", "-10"), ("-15", "-20"), ("15", "20"),
        ("0", "0"), ("-0", "0"), ("-4.9", "0"), ("1e3", "1000"), ("1E+3", "1000"), ("+7", "10"),
        ("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), (" 44 ", "40"),
        ("1e-400", "0"), ("1e400", "****"), ("99999999999999999999999999999999999999999", "****"),
        ("0000000000000000000000000000000000000000000012", "10"),
    ]);
    check("round(1)", &[("-0.4", "0"), ("-0.5", "-1"), ("2.5", "3"), ("1.5E-3", "0"), (".5", "1")]);
    check("round(0.001)", &[("1.5E-3", "0.002"), ("-1.5e-3", "-0.002")]);
    check("round(0.1)", &[("0.15", "0.2"), ("0.25", "0.3"), ("-0.04", "0.0"), ("7", "7.0")]);
    check("round(0.25)", &[("0.125", "0.25"), ("0.124", "0.00"), ("1.2345678901234567e+20", "123456789012345670000.00")]);
    check("round(0.01)", &[("1234.5678", "1234.57"), ("0.30000000000000004", "0.30")]);
    check("round(1000)", &[("12345", "12000"), ("-500", "-1000"), ("499.99", "0")]);
    check("round(7)", &[("10", "7"), ("10.5", "14"), ("10.49", "7")]);
    for bad in ["abc", "", "1e", "--1", "1.2.3", ".", "-", "1e+", "0x10", "1,5", "$3"] {
        assert_eq!(run("round(10)", bad.as_bytes()), "****", "{bad:?}");
    }
}

#[test]
#[rustfmt::skip]
fn pseudonym_tokens() {
    let key = PseudonymKey::derive(b"master", "campaign");
    let token = |key: &PseudonymKey, v: &[u8]| {
        let mut out = Vec::new();
        assert!(Mask::Pseudonym.apply(v, Some(key), &mut out));
        String::from_utf8(out).unwrap()
    };
    let email = b"anna.schmidt@example.org";
    let t = token(&key, email);
    assert_eq!(t.len(), 19);
    assert!(t.starts_with("ps_") && t[3..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert_eq!(t, token(&PseudonymKey::derive(b"master", "campaign"), email));
    assert_ne!(t, token(&PseudonymKey::derive(b"master", "campaign2"), email));
    assert_ne!(t, token(&PseudonymKey::derive(b"other", "campaign"), email));
    assert_ne!(t, token(&key, b"anna.schmidt@example.com"));
    let mut out = Vec::new();
    assert!(Mask::Pseudonym.apply(b"anna", None, &mut out));
    assert_eq!(out, STARS);
    assert_eq!(format!("{key:?}"), "PseudonymKey { .. }");
}

#[test]
#[rustfmt::skip]
fn spec_parse_and_display_round_trip() {
    let step = |units, scale| Mask::Round(RoundStep { units, scale });
    let cases = [
        ("redact", Mask::Redact), ("null", Mask::Null), ("first(2)", Mask::First(2)),
        ("last(3)", Mask::Last(3)), ("email", Mask::Email), ("iban", Mask::Iban),
        ("year", Mask::Year), ("pseudonym", Mask::Pseudonym), ("round(10)", step(10, 0)),
        ("round(0.5)", step(5, 1)), ("round(1.50)", step(150, 2)), ("round(0.001)", step(1, 3)),
        ("constant('text')", Mask::Constant("text".into())),
        ("constant('it''s (ok)')", Mask::Constant("it's (ok)".into())),
        ("constant('')", Mask::Constant(String::new())), ("constant('''')", Mask::Constant("'".into())),
    ];
    for (spec, mask) in cases {
        assert_eq!(spec.parse::<Mask>(), Ok(mask.clone()), "{spec}");
        assert_eq!(mask.to_string(), spec);
        assert_eq!(mask.yields_text(), mask != Mask::Null);
        assert_eq!(mask.needs_key(), mask == Mask::Pseudonym);
        assert!(spec.starts_with(mask.name()));
    }
    assert_eq!(" last( 3 ) ".parse(), Ok(Mask::Last(3)));
    assert_eq!("first (02)".parse(), Ok(Mask::First(2)));
    assert_eq!("constant( ' a ' )".parse(), Ok(Mask::Constant(" a ".into())));
    assert_eq!(" round( 0.5 )".parse(), Ok(step(5, 1)));
}

#[test]
#[rustfmt::skip]
fn spec_errors() {
    use MaskSpecError::*;
    let count = |mask, got: &str| BadCount { mask, got: got.into() };
    let cases = [
        ("", Empty), ("  ", Empty), ("lst(3)", Unknown("lst(3)".into())),
        ("REDACT", Unknown("REDACT".into())), ("first", MissingArgument("first(n)")),
        ("constant", MissingArgument("constant('text')")), ("email(1)", UnexpectedArgument("email")),
        ("null()", UnexpectedArgument("null")), ("first(2", Unclosed("first(2".into())),
        ("first()", count("first", "")), ("first(0)", count("first", "0")),
        ("last(x)", count("last", "x")), ("last(-1)", count("last", "-1")), ("last(+1)", count("last", "+1")),
        ("first(99999999999999999999999)", count("first", "99999999999999999999999")),
        ("round(0)", BadStep("0".into())), ("round(0.00)", BadStep("0.00".into())),
        ("round(-1)", BadStep("-1".into())), ("round(1e3)", BadStep("1e3".into())),
        ("round(5.)", BadStep("5.".into())), ("round(.5)", BadStep(".5".into())),
        ("round(1234567890.123456789)", BadStep("1234567890.123456789".into())),
        ("constant(text)", BadConstant("text".into())), ("constant('a'b')", BadConstant("'a'b'".into())),
        ("constant('a') x)", BadConstant("'a') x".into())), ("constant('open)", BadConstant("'open".into())),
    ];
    for (spec, err) in cases {
        assert_eq!(spec.parse::<Mask>(), Err(err), "{spec}");
    }
    assert_eq!(
        "lst(3)".parse::<Mask>().unwrap_err().to_string(),
        "unknown mask `lst(3)`; known masks: redact, null, first(n), last(n), email, iban, year, round(n), pseudonym, constant('text')"
    );
    assert_eq!("first(x)".parse::<Mask>().unwrap_err().to_string(), "first(n) needs a whole number n ≥ 1, got `x`");
}

#[test]
#[rustfmt::skip]
fn never_panics_on_odd_bytes() {
    let masks = ["redact", "first(1)", "last(2)", "email", "iban", "year", "round(0.5)", "pseudonym"];
    let values: [&[u8]; 8] = [b"", b"\xff", b"@", b"\xf0\x9f", b"1e99999999999999999999", b"9.", b"-.", b"e5"];
    let key = PseudonymKey::derive(b"", "");
    for mask in masks.iter().map(|m| m.parse::<Mask>().unwrap()) {
        for v in values {
            assert!(mask.apply(v, Some(&key), &mut Vec::new()));
        }
    }
}
