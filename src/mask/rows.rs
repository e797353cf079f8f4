//! Applying a plan to result messages: DataRow and COPY rows (masked fields replaced, others copied as
//! byte slices, dropped ones left out), RowDescription (masked columns described as text), and the
//! result formats of Bind (masked columns fetched as text).

use bytes::{BufMut, BytesMut};

use super::copy::{encode_field, split_row, CopyFormat, CopyRowError};
use crate::policy::decide::ColAction;
use crate::wire::backend::{data_row, FieldDesc};
use crate::wire::frontend::Bind;
use crate::wire::WireError;

pub const TEXT_OID: u32 = 25;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RowError {
    #[error("result row has {got} columns but the plan expects {expected}")]
    Width { expected: usize, got: usize },
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("COPY row: {0}")]
    Copy(#[from] CopyRowError),
}

/// How many columns of a result the client sees under `plan`.
pub fn visible_width(plan: &[ColAction]) -> usize {
    plan.iter().filter(|a| !matches!(a, ColAction::Drop)).count()
}

/// Every column passes unchanged: only the width is checked.
pub fn all_pass(plan: &[ColAction]) -> bool {
    plan.iter().all(ColAction::is_pass)
}

/// Writes the rewritten DataRow (a whole frame) for `body` under `plan` to `out`.
pub fn rewrite_data_row(
    body: &[u8],
    plan: &[ColAction],
    out: &mut BytesMut,
    scratch: &mut Vec<u8>,
) -> Result<(), RowError> {
    let fields = data_row(body)?;
    if fields.len() != plan.len() {
        return Err(RowError::Width {
            expected: plan.len(),
            got: fields.len(),
        });
    }
    if all_pass(plan) {
        out.reserve(body.len() + 5);
        out.put_u8(b'D');
        out.put_i32(body.len() as i32 + 4);
        out.put_slice(body);
        return Ok(());
    }
    let start = out.len();
    out.reserve(body.len() + 16);
    out.put_u8(b'D');
    out.put_i32(0);
    out.put_i16(visible_width(plan) as i16);
    let mut fields = fields;
    for action in plan {
        let field = fields
            .next()
            .unwrap_or(Err(WireError::malformed("DataRow", "too few fields")))?;
        match (action, field) {
            (ColAction::Drop, _) => {}
            (_, None) => out.put_i32(-1),
            (ColAction::Pass, Some(v)) => {
                out.put_i32(v.len() as i32);
                out.put_slice(v);
            }
            (ColAction::Mask(m), Some(v)) => {
                scratch.clear();
                if m.mask.apply(v, m.key.as_deref(), scratch) {
                    out.put_i32(scratch.len() as i32);
                    out.put_slice(scratch);
                } else {
                    out.put_i32(-1);
                }
            }
        }
    }
    fields.finish()?;
    let len = (out.len() - start - 1) as i32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The RowDescription the client sees: dropped columns removed, masked ones described as text
/// (the `null` mask keeps its type). `format` gives the format code for visible column i.
pub fn rewrite_row_description<'a>(
    fields: &[FieldDesc<'a>],
    plan: &[ColAction],
    format: impl Fn(usize) -> i16,
) -> Result<Vec<FieldDesc<'a>>, RowError> {
    if fields.len() != plan.len() {
        return Err(RowError::Width {
            expected: plan.len(),
            got: fields.len(),
        });
    }
    let mut out = Vec::with_capacity(fields.len());
    for (f, action) in fields.iter().zip(plan) {
        match action {
            ColAction::Drop => continue,
            ColAction::Pass => out.push(f.clone()),
            ColAction::Mask(m) => {
                let mut f = f.clone();
                if m.mask.yields_text() {
                    f.type_oid = TEXT_OID;
                    f.type_len = -1;
                    f.type_mod = -1;
                }
                out.push(f);
            }
        }
        let i = out.len() - 1;
        out[i].format = format(i);
    }
    Ok(out)
}

/// The result formats to ask the upstream for, when they differ from the client's: masked and dropped
/// columns as text, the others as the client asked (indexed by visible column). `None` keeps the Bind as is.
pub fn upstream_formats(plan: &[ColAction], bind: &Bind<'_>) -> Result<Option<Vec<i16>>, String> {
    let n_visible = visible_width(plan);
    let n = bind.result_formats.len();
    if n > 1 && n != n_visible {
        return Err(format!(
            "Bind has {n} result formats but the statement returns {n_visible} columns"
        ));
    }
    let needs_text = plan.iter().any(|a| !a.is_pass());
    let any_binary = bind.result_formats.contains(&1);
    let dropped = plan.len() != n_visible;
    if !needs_text || (!any_binary && (!dropped || n <= 1)) {
        return Ok(None);
    }
    let mut vi = 0;
    let formats = plan
        .iter()
        .map(|a| match a {
            ColAction::Drop => 0,
            ColAction::Mask(_) => {
                vi += 1;
                0
            }
            ColAction::Pass => {
                vi += 1;
                bind.result_format(vi - 1)
            }
        })
        .collect();
    Ok(Some(formats))
}

/// Rewrites one COPY TO row (with its line terminator) under `plan`; masked fields re-encoded,
/// dropped ones left out. A header line (`header`) keeps every name it does not drop: names are
/// encoded as values are, so the line splits the same way.
pub fn rewrite_copy_row(
    fmt: &CopyFormat,
    row: &[u8],
    plan: &[ColAction],
    header: bool,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(), RowError> {
    let (fields, terminator) = split_row(fmt, row)?;
    if fields.len() != plan.len() {
        return Err(RowError::Width {
            expected: plan.len(),
            got: fields.len(),
        });
    }
    let delimiter = match fmt {
        CopyFormat::Text { delimiter, .. } | CopyFormat::Csv { delimiter, .. } => *delimiter,
    };
    let mut first = true;
    for (field, action) in fields.iter().zip(plan) {
        if matches!(action, ColAction::Drop) {
            continue;
        }
        if !std::mem::take(&mut first) {
            out.push(delimiter);
        }
        match (action, &field.value) {
            (ColAction::Mask(m), Some(v)) if !header => {
                scratch.clear();
                let value = m.mask.apply(v, m.key.as_deref(), scratch).then_some(scratch.as_slice());
                encode_field(fmt, value, out);
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    out.extend_from_slice(terminator);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::functions::Mask;
    use crate::policy::decide::MaskAction;
    use crate::wire::frontend::bind;

    fn mask(spec: &str) -> ColAction {
        ColAction::Mask(Box::new(MaskAction {
            mask: spec.parse().unwrap(),
            key: None,
            column: crate::analyze::facts::ColRef { rel: 0, col: 0 },
        }))
    }

    fn row(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i16(fields.len() as i16);
        for f in fields {
            match f {
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v);
                }
                None => b.put_i32(-1),
            }
        }
        b.to_vec()
    }

    #[test]
    fn data_row_masks_drops_and_copies() {
        let plan = [
            ColAction::Pass,
            mask("last(3)"),
            ColAction::Drop,
            mask("email"),
            mask("null"),
        ];
        let body = row(&[
            Some(b"Anna"),
            Some(b"+49 30 1234567"),
            Some(b"1984-07-02"),
            None,
            Some(b"x"),
        ]);
        let mut out = BytesMut::new();
        rewrite_data_row(&body, &plan, &mut out, &mut Vec::new()).unwrap();
        let expected = row(&[Some(b"Anna"), Some(b"+** ** ****567"), None, None]);
        assert_eq!(out[0], b'D');
        assert_eq!(&out[5..], &expected[..]);
        assert_eq!(
            i32::from_be_bytes([out[1], out[2], out[3], out[4]]) as usize,
            expected.len() + 4
        );
        let short = row(&[Some(b"x")]);
        assert!(matches!(
            rewrite_data_row(&short, &plan, &mut out, &mut Vec::new()),
            Err(RowError::Width { .. })
        ));
    }

    #[test]
    fn row_description_describes_masked_as_text() {
        let f = |name: &'static [u8], ty: u32| FieldDesc {
            name,
            table_oid: 16400,
            attnum: 1,
            type_oid: ty,
            type_len: 4,
            type_mod: -1,
            format: 1,
        };
        let fields = vec![f(b"no", 23), f(b"phone", 25), f(b"birth", 1082), f(b"n", 23)];
        let plan = [ColAction::Pass, mask("last(3)"), ColAction::Drop, mask("null")];
        let out = rewrite_row_description(&fields, &plan, |i| if i == 0 { 1 } else { 0 }).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!((out[0].type_oid, out[0].format), (23, 1));
        assert_eq!((out[1].type_oid, out[1].type_len, out[1].format), (TEXT_OID, -1, 0));
        assert_eq!(out[2].type_oid, 23, "the null mask keeps the type");
    }

    #[test]
    fn bind_formats_fetch_masked_columns_as_text() {
        let plan = [ColAction::Pass, mask("iban"), ColAction::Drop, ColAction::Pass];
        let b = |fmts: &[i16]| {
            let mut v = b"\0s\0\0\0\0\0".to_vec();
            v.extend_from_slice(&(fmts.len() as i16).to_be_bytes());
            for f in fmts {
                v.extend_from_slice(&f.to_be_bytes());
            }
            v
        };
        let all_binary = b(&[1]);
        assert_eq!(
            upstream_formats(&plan, &bind(&all_binary).unwrap()).unwrap(),
            Some(vec![1, 0, 0, 1])
        );
        let per_col = b(&[1, 1, 0]);
        assert_eq!(
            upstream_formats(&plan, &bind(&per_col).unwrap()).unwrap(),
            Some(vec![1, 0, 0, 0])
        );
        let text = b(&[]);
        assert_eq!(upstream_formats(&plan, &bind(&text).unwrap()).unwrap(), None);
        let wrong = b(&[1, 1]);
        assert!(upstream_formats(&plan, &bind(&wrong).unwrap()).is_err());
        let pass = [ColAction::Pass, ColAction::Pass];
        assert_eq!(upstream_formats(&pass, &bind(&all_binary).unwrap()).unwrap(), None);
    }

    #[test]
    fn copy_rows_are_rewritten_in_text_and_csv() {
        let plan = [ColAction::Pass, mask("iban")];
        let rewrite = |fmt: &CopyFormat, row: &[u8], plan: &[ColAction], header: bool| {
            let mut out = Vec::new();
            rewrite_copy_row(fmt, row, plan, header, &mut out, &mut Vec::new()).map(|_| out)
        };
        let text = CopyFormat::text_default();
        let csv = CopyFormat::csv_default();
        assert_eq!(
            rewrite(&text, b"1001\tDE89 3704 0044 0532 0130 00\n", &plan, false).unwrap(),
            b"1001\tDE89 **** **** **** **30 00\n"
        );
        assert_eq!(
            rewrite(&csv, b"\"a,b\",\n", &plan, false).unwrap(),
            b"\"a,b\",\n",
            "NULL stays NULL, untouched fields keep their bytes"
        );
        assert!(rewrite(&text, b"1\n", &plan, false).is_err());
        // Dropped fields are left out, with their delimiters, first, last or between.
        let drops = [
            ColAction::Drop,
            ColAction::Pass,
            ColAction::Drop,
            mask("last(2)"),
            ColAction::Drop,
        ];
        assert_eq!(
            rewrite(&text, b"x\t1\ty\t4930\tz\n", &drops, false).unwrap(),
            b"1\t**30\n"
        );
        assert_eq!(
            rewrite(&csv, b"\"a,\"\"x\",1,\"y\n\",4930,\r\n", &drops, false).unwrap(),
            b"1,**30\r\n"
        );
        // A header keeps the names it does not drop, masked columns' too.
        assert_eq!(
            rewrite(&csv, b"birth_date,customer_no,notes,phone,\"x\"\"y\"\n", &drops, true).unwrap(),
            b"customer_no,phone\n"
        );
        let only_dropped = [ColAction::Drop, ColAction::Pass];
        assert_eq!(
            rewrite(&text, b"secret\t\\N\n", &only_dropped, false).unwrap(),
            b"\\N\n"
        );
        let _ = Mask::Redact;
    }
}
