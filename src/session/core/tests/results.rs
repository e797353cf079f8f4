//! Results under their plan: masking, rule 10's cut-off and the width check.

use super::*;

#[test]
fn masks_rows_of_the_statement_that_produced_them() {
    let fx = fixture();
    let mut c = core();
    let mut out = Out::default();
    c.on_client(
        &q("SELECT name, phone FROM stadtwerke.customers; SELECT 1"),
        &env(&fx),
        &mut out,
        false,
    )
    .unwrap();
    assert_eq!(
        &out.to_upstream[5..out.to_upstream.len() - 1],
        b"SELECT name, phone FROM stadtwerke.customers; SELECT 1"
    );
    let mut out = Out::default();
    for f in [
        row_description(&fx, &[("customers", "name"), ("customers", "phone")]),
        data_row(&["Anna Schmidt", "+49 30 1234567"]),
        up(b'C', b"SELECT 1\0"),
        up(
            b'T',
            b"\0\x01?column?\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
        ),
        data_row(&["+49 30 1234567"]),
        up(b'C', b"SELECT 1\0"),
        up(b'Z', b"I"),
    ] {
        c.on_upstream(&f, &env(&fx), &mut out).unwrap();
    }
    let text = String::from_utf8_lossy(&out.to_client);
    assert!(text.contains("+** ** ****567"), "{text}");
    assert_eq!(
        text.matches("+49 30 1234567").count(),
        1,
        "only the second statement's unprotected value passes: {text}"
    );
    assert!(c.idle());
}

#[test]
fn rule_10_cuts_off_a_protected_column_the_plan_does_not_cover() {
    let fx = fixture();
    let mut c = core();
    let mut out = Out::default();
    c.on_client(
        &q("SELECT customer_no FROM stadtwerke.customers"),
        &env(&fx),
        &mut out,
        false,
    )
    .unwrap();
    // The server describes the column as customers.phone (say, the analyzer was fooled).
    let err = c
        .on_upstream(&row_description(&fx, &[("customers", "phone")]), &env(&fx), &mut out)
        .unwrap_err();
    assert!(matches!(err, CoreError::CutOff(_)), "{err}");
    // A dropped column the plan does not drop is cut off too.
    let mut c = core();
    c.on_client(
        &q("SELECT customer_no FROM stadtwerke.customers"),
        &env(&fx),
        &mut out,
        false,
    )
    .unwrap();
    assert!(c
        .on_upstream(
            &row_description(&fx, &[("customers", "birth_date")]),
            &env(&fx),
            &mut out
        )
        .is_err());
    // More columns than the plan: cut off.
    let mut c = core();
    c.on_client(
        &q("SELECT name, phone FROM stadtwerke.customers"),
        &env(&fx),
        &mut out,
        false,
    )
    .unwrap();
    assert!(c
        .on_upstream(&row_description(&fx, &[("customers", "name")]), &env(&fx), &mut out)
        .is_err());
}

/// A result whose columns all pass still has the width the analyzer expects: another width means
/// it misread the statement, and a column it judged harmless may hold anything.
#[test]
fn a_result_of_another_width_is_cut_off_even_when_every_column_passes() {
    let fx = fixture();
    let unnamed = |n: usize| {
        let mut b = (n as i16).to_be_bytes().to_vec();
        for _ in 0..n {
            b.extend_from_slice(b"x\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0");
        }
        up(b'T', &b)
    };
    let started = |sql: &str| {
        let mut c = core();
        c.on_client(&q(sql), &env(&fx), &mut Out::default(), false).unwrap();
        c
    };
    // The width it expects passes through unchanged, rows too.
    let mut c = started("SELECT name, city FROM stadtwerke.customers");
    let mut out = Out::default();
    let (t, d) = (unnamed(2), data_row(&["Anna", "Musterstadt"]));
    c.on_upstream(&t, &env(&fx), &mut out).unwrap();
    c.on_upstream(&d, &env(&fx), &mut out).unwrap();
    assert_eq!(&out.to_client[..], [&t.raw[..], &d.raw[..]].concat());
    // One column more in the description, or in a row: cut off.
    let mut c = started("SELECT name, city FROM stadtwerke.customers");
    let err = c.on_upstream(&unnamed(3), &env(&fx), &mut Out::default()).unwrap_err();
    assert!(matches!(err, CoreError::CutOff(_)), "{err}");
    let mut c = started("SELECT name, city FROM stadtwerke.customers");
    c.on_upstream(&unnamed(2), &env(&fx), &mut Out::default()).unwrap();
    let err = c
        .on_upstream(
            &data_row(&["Anna", "Musterstadt", "+49 30 1234567"]),
            &env(&fx),
            &mut Out::default(),
        )
        .unwrap_err();
    assert!(matches!(err, CoreError::CutOff(_)), "{err}");
    // COPY's column count is checked the same way.
    let mut c = started("COPY (SELECT name FROM stadtwerke.customers) TO STDOUT");
    let err = c
        .on_upstream(&up(b'H', b"\0\0\x02\0\0\0\0"), &env(&fx), &mut Out::default())
        .unwrap_err();
    assert!(matches!(err, CoreError::CutOff(_)), "{err}");
    let mut c = started("COPY (SELECT name FROM stadtwerke.customers) TO STDOUT (FORMAT binary)");
    c.on_upstream(&up(b'H', b"\x01\0\x01\0\x01"), &env(&fx), &mut Out::default())
        .unwrap();
    // A width the analyzer cannot know (SHOW ALL has three columns) is not checked.
    let mut c = started("SHOW ALL");
    c.on_upstream(&unnamed(3), &env(&fx), &mut Out::default()).unwrap();
}
