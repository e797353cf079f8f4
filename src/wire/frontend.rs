//! Typed, borrowing views of the client messages the session inspects: Query, Parse, Bind, Describe, Execute, Close.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Reader, WireError};

pub const QUERY: u8 = b'Q';
pub const PARSE: u8 = b'P';
pub const BIND: u8 = b'B';
pub const DESCRIBE: u8 = b'D';
pub const EXECUTE: u8 = b'E';
pub const CLOSE: u8 = b'C';
pub const SYNC: u8 = b'S';
pub const FLUSH: u8 = b'H';
pub const TERMINATE: u8 = b'X';
pub const COPY_DATA: u8 = b'd';
pub const COPY_DONE: u8 = b'c';
pub const COPY_FAIL: u8 = b'f';
pub const FUNCTION_CALL: u8 = b'F';
pub const PASSWORD: u8 = b'p';

/// The SQL text of a simple-protocol Query.
pub fn query(body: &[u8]) -> Result<&str, WireError> {
    let mut r = Reader::new(body, "Query");
    let sql = r.cstr()?;
    r.finish()?;
    Ok(sql)
}

#[derive(Debug, PartialEq, Eq)]
pub struct Parse<'a> {
    pub name: &'a str,
    pub sql: &'a str,
    pub param_types: Vec<u32>,
}

pub fn parse(body: &[u8]) -> Result<Parse<'_>, WireError> {
    let mut r = Reader::new(body, "Parse");
    let name = r.cstr()?;
    let sql = r.cstr()?;
    let n = r.i16()?;
    if n < 0 || (n as usize) * 4 > r.remaining() {
        return Err(WireError::malformed("Parse", "bad parameter count"));
    }
    let mut param_types = Vec::with_capacity(n as usize);
    for _ in 0..n {
        param_types.push(r.i32()? as u32);
    }
    r.finish()?;
    Ok(Parse { name, sql, param_types })
}

/// A Bind, decoded only as far as the proxy needs: names and the result formats,
/// plus where the result-format section starts so it can be replaced without touching parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct Bind<'a> {
    pub portal: &'a str,
    pub statement: &'a str,
    pub param_count: usize,
    pub result_formats: Vec<i16>,
    result_formats_at: usize,
}

pub fn bind(body: &[u8]) -> Result<Bind<'_>, WireError> {
    const W: &str = "Bind";
    let mut r = Reader::new(body, W);
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    let nfmt = r.i16()?;
    if nfmt < 0 {
        return Err(WireError::malformed(W, "negative format count"));
    }
    for _ in 0..nfmt {
        check_format(r.i16()?)?;
    }
    let nparams = r.i16()?;
    if nparams < 0 {
        return Err(WireError::malformed(W, "negative parameter count"));
    }
    for _ in 0..nparams {
        let len = r.i32()?;
        if len >= 0 {
            r.bytes(len as usize)?;
        } else if len != -1 {
            return Err(WireError::malformed(W, "bad parameter length"));
        }
    }
    let result_formats_at = r.pos();
    let nres = r.i16()?;
    if nres < 0 || (nres as usize) * 2 > r.remaining() {
        return Err(WireError::malformed(W, "bad result format count"));
    }
    let mut result_formats = Vec::with_capacity(nres as usize);
    for _ in 0..nres {
        result_formats.push(check_format(r.i16()?)?);
    }
    r.finish()?;
    Ok(Bind {
        portal,
        statement,
        param_count: nparams as usize,
        result_formats,
        result_formats_at,
    })
}

/// One bound parameter: its format code (0 text, 1 binary) and its value (None for NULL).
pub type BoundValue<'a> = (i16, Option<&'a [u8]>);

/// Bind's parameter values with their formats, read again only when a plan needs them.
pub fn bind_values(body: &[u8]) -> Result<Vec<BoundValue<'_>>, WireError> {
    const W: &str = "Bind";
    let mut r = Reader::new(body, W);
    r.cstr()?;
    r.cstr()?;
    let nfmt = r.i16()?.max(0) as usize;
    let mut formats = Vec::with_capacity(nfmt.min(r.remaining() / 2));
    for _ in 0..nfmt {
        formats.push(check_format(r.i16()?)?);
    }
    let nparams = r.i16()?.max(0) as usize;
    let mut values = Vec::with_capacity(nparams.min(r.remaining() / 4));
    for i in 0..nparams {
        let format = match formats.as_slice() {
            [] => 0,
            [one] => *one,
            many => *many
                .get(i)
                .ok_or_else(|| WireError::malformed(W, "fewer formats than parameters"))?,
        };
        let len = r.i32()?;
        let value = if len >= 0 { Some(r.bytes(len as usize)?) } else { None };
        values.push((format, value));
    }
    Ok(values)
}

fn check_format(code: i16) -> Result<i16, WireError> {
    match code {
        0 | 1 => Ok(code),
        _ => Err(WireError::malformed("Bind", "format code is neither 0 nor 1")),
    }
}

impl Bind<'_> {
    /// The client's wish for result column `i` of `n` (0 = text, 1 = binary).
    pub fn result_format(&self, i: usize) -> i16 {
        match self.result_formats.len() {
            0 => 0,
            1 => self.result_formats[0],
            _ => self.result_formats.get(i).copied().unwrap_or(0),
        }
    }

    /// Re-encodes this Bind (whose body is `body`) with other result formats; parameters are copied as bytes.
    pub fn with_result_formats(&self, body: &[u8], formats: &[i16]) -> Bytes {
        let prefix = &body[..self.result_formats_at];
        let mut out = BytesMut::with_capacity(prefix.len() + 7 + formats.len() * 2);
        out.put_u8(BIND);
        out.put_i32((4 + prefix.len() + 2 + formats.len() * 2) as i32);
        out.put_slice(prefix);
        out.put_i16(formats.len() as i16);
        for f in formats {
            out.put_i16(*f);
        }
        out.freeze()
    }
}

/// Describe and Close name either a prepared statement ('S') or a portal ('P').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Statement,
    Portal,
}

fn target_and_name<'a>(body: &'a [u8], what: &'static str) -> Result<(Target, &'a str), WireError> {
    let mut r = Reader::new(body, what);
    let target = match r.u8()? {
        b'S' => Target::Statement,
        b'P' => Target::Portal,
        _ => return Err(WireError::malformed(what, "target is neither 'S' nor 'P'")),
    };
    let name = r.cstr()?;
    r.finish()?;
    Ok((target, name))
}

pub fn describe(body: &[u8]) -> Result<(Target, &str), WireError> {
    target_and_name(body, "Describe")
}

pub fn close(body: &[u8]) -> Result<(Target, &str), WireError> {
    target_and_name(body, "Close")
}

/// Execute: the portal name and the row limit (0 = all rows).
pub fn execute(body: &[u8]) -> Result<(&str, i32), WireError> {
    let mut r = Reader::new(body, "Execute");
    let portal = r.cstr()?;
    let max_rows = r.i32()?;
    r.finish()?;
    Ok((portal, max_rows))
}

/// Encoders for client messages the proxy itself sends upstream (probes, refusal stand-ins).
pub mod encode {
    use super::*;

    fn msg(tag: u8, body: impl FnOnce(&mut BytesMut)) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        out.put_u8(tag);
        out.put_i32(0);
        body(&mut out);
        let len = (out.len() - 1) as i32;
        out[1..5].copy_from_slice(&len.to_be_bytes());
        out.freeze()
    }

    pub fn query(sql: &str) -> Bytes {
        msg(QUERY, |b| {
            b.put_slice(sql.as_bytes());
            b.put_u8(0);
        })
    }

    pub fn parse(name: &str, sql: &str) -> Bytes {
        msg(PARSE, |b| {
            b.put_slice(name.as_bytes());
            b.put_u8(0);
            b.put_slice(sql.as_bytes());
            b.put_u8(0);
            b.put_i16(0);
        })
    }

    /// A Bind with no parameters and default formats.
    pub fn bind(portal: &str, statement: &str) -> Bytes {
        msg(BIND, |b| {
            b.put_slice(portal.as_bytes());
            b.put_u8(0);
            b.put_slice(statement.as_bytes());
            b.put_u8(0);
            b.put_i16(0);
            b.put_i16(0);
            b.put_i16(0);
        })
    }

    pub fn execute(portal: &str) -> Bytes {
        msg(EXECUTE, |b| {
            b.put_slice(portal.as_bytes());
            b.put_u8(0);
            b.put_i32(0);
        })
    }

    pub fn sync() -> Bytes {
        msg(SYNC, |_| {})
    }

    pub fn flush() -> Bytes {
        msg(FLUSH, |_| {})
    }

    pub fn terminate() -> Bytes {
        msg(TERMINATE, |_| {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::frame;

    fn bind_body(formats: &[i16], params: &[Option<&[u8]>], results: &[i16]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_slice(b"p1\0s1\0");
        b.put_i16(formats.len() as i16);
        formats.iter().for_each(|f| b.put_i16(*f));
        b.put_i16(params.len() as i16);
        for p in params {
            match p {
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v);
                }
                None => b.put_i32(-1),
            }
        }
        b.put_i16(results.len() as i16);
        results.iter().for_each(|f| b.put_i16(*f));
        b.to_vec()
    }

    #[test]
    fn bind_rewrites_only_result_formats() {
        let body = bind_body(&[1], &[Some(b"\0\0\0\x2a"), None], &[1]);
        let b = bind(&body).unwrap();
        assert_eq!((b.portal, b.statement, b.param_count), ("p1", "s1", 2));
        assert_eq!(b.result_formats, vec![1]);
        assert_eq!(b.result_format(3), 1);
        let rewritten = b.with_result_formats(&body, &[1, 0, 1]);
        let expected = frame(BIND, &bind_body(&[1], &[Some(b"\0\0\0\x2a"), None], &[1, 0, 1]));
        assert_eq!(rewritten, expected.raw);
        assert_eq!(
            bind_values(&body).unwrap(),
            vec![(1, Some(&b"\0\0\0\x2a"[..])), (1, None)]
        );
        let per_param = bind_body(&[0, 1], &[Some(b"{a}"), Some(b"x")], &[]);
        assert_eq!(
            bind_values(&per_param).unwrap(),
            vec![(0, Some(&b"{a}"[..])), (1, Some(&b"x"[..]))]
        );
        assert!(bind_values(&bind_body(&[0, 1], &[Some(b"a"), Some(b"b"), Some(b"c")], &[])).is_err());
    }

    #[test]
    fn malformed_client_messages_are_errors() {
        assert!(query(b"SELECT 1").is_err());
        assert!(query(b"SELECT 1\0junk").is_err());
        assert!(query(b"SELECT \xff\0").is_err());
        assert!(parse(b"s\0SELECT 1\0\x7f\xff").is_err());
        assert!(bind(b"p\0s\0\0\x01\0\x07\0\0\0\0").is_err());
        let mut short = bind_body(&[], &[Some(b"abc")], &[]);
        short.truncate(12);
        assert!(bind(&short).is_err());
        assert!(describe(b"X\0").is_err());
        assert_eq!(describe(b"Sfoo\0").unwrap(), (Target::Statement, "foo"));
        assert_eq!(close(b"P\0").unwrap(), (Target::Portal, ""));
        assert_eq!(execute(b"\0\0\0\0\x05").unwrap(), ("", 5));
    }

    #[test]
    fn parse_reads_parameter_types() {
        let p = parse(b"s1\0SELECT $1\0\0\x01\0\0\0\x17").unwrap();
        assert_eq!((p.name, p.sql, p.param_types), ("s1", "SELECT $1", vec![23]));
    }
}
