//! Typed, borrowing views of the server messages the session inspects.

use super::{Reader, WireError};

pub const AUTHENTICATION: u8 = b'R';
pub const PARAMETER_STATUS: u8 = b'S';
pub const BACKEND_KEY_DATA: u8 = b'K';
pub const READY_FOR_QUERY: u8 = b'Z';
pub const ROW_DESCRIPTION: u8 = b'T';
pub const DATA_ROW: u8 = b'D';
pub const COMMAND_COMPLETE: u8 = b'C';
pub const EMPTY_QUERY: u8 = b'I';
pub const ERROR_RESPONSE: u8 = b'E';
pub const NOTICE_RESPONSE: u8 = b'N';
pub const NOTIFICATION: u8 = b'A';
pub const PARSE_COMPLETE: u8 = b'1';
pub const BIND_COMPLETE: u8 = b'2';
pub const CLOSE_COMPLETE: u8 = b'3';
pub const NO_DATA: u8 = b'n';
pub const PORTAL_SUSPENDED: u8 = b's';
pub const PARAMETER_DESCRIPTION: u8 = b't';
pub const COPY_IN_RESPONSE: u8 = b'G';
pub const COPY_OUT_RESPONSE: u8 = b'H';
pub const COPY_BOTH_RESPONSE: u8 = b'W';
pub const COPY_DATA: u8 = b'd';
pub const COPY_DONE: u8 = b'c';
pub const NEGOTIATE_PROTOCOL: u8 = b'v';

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDesc<'a> {
    pub name: &'a [u8],
    pub table_oid: u32,
    pub attnum: i16,
    pub type_oid: u32,
    pub type_len: i16,
    pub type_mod: i32,
    pub format: i16,
}

pub fn row_description(body: &[u8]) -> Result<Vec<FieldDesc<'_>>, WireError> {
    let mut r = Reader::new(body, "RowDescription");
    let n = r.i16()?;
    if n < 0 || (n as usize) * 19 > r.remaining() {
        return Err(WireError::malformed("RowDescription", "bad field count"));
    }
    let mut fields = Vec::with_capacity(n as usize);
    for _ in 0..n {
        fields.push(FieldDesc {
            name: r.cstr_bytes()?,
            table_oid: r.i32()? as u32,
            attnum: r.i16()?,
            type_oid: r.i32()? as u32,
            type_len: r.i16()?,
            type_mod: r.i32()?,
            format: r.i16()?,
        });
    }
    r.finish()?;
    Ok(fields)
}

/// Iterates the fields of a DataRow body: `None` is SQL NULL.
pub struct DataRowFields<'a> {
    r: Reader<'a>,
    left: usize,
}

pub fn data_row(body: &[u8]) -> Result<DataRowFields<'_>, WireError> {
    let mut r = Reader::new(body, "DataRow");
    let n = r.i16()?;
    if n < 0 || (n as usize) * 4 > r.remaining() {
        return Err(WireError::malformed("DataRow", "bad field count"));
    }
    Ok(DataRowFields { r, left: n as usize })
}

impl<'a> DataRowFields<'a> {
    pub fn len(&self) -> usize {
        self.left
    }

    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// Checks that the fields consumed so far were all the body held.
    pub fn finish(&self) -> Result<(), WireError> {
        self.r.finish()
    }
}

impl<'a> Iterator for DataRowFields<'a> {
    type Item = Result<Option<&'a [u8]>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(match self.r.i32() {
            Err(e) => Err(e),
            Ok(-1) => Ok(None),
            Ok(len) if len < 0 => Err(WireError::malformed("DataRow", "bad field length")),
            Ok(len) => self.r.bytes(len as usize).map(Some),
        })
    }
}

/// The (code, value) fields of an ErrorResponse or NoticeResponse.
pub fn error_fields(body: &[u8]) -> Result<Vec<(u8, &str)>, WireError> {
    let mut r = Reader::new(body, "ErrorResponse");
    let mut fields = Vec::with_capacity(8);
    loop {
        let code = r.u8()?;
        if code == 0 {
            break;
        }
        fields.push((code, r.cstr()?));
    }
    r.finish()?;
    Ok(fields)
}

/// ReadyForQuery's transaction status: b'I' idle, b'T' in a block, b'E' failed block.
pub fn ready_status(body: &[u8]) -> Result<u8, WireError> {
    match body {
        [s @ (b'I' | b'T' | b'E')] => Ok(*s),
        _ => Err(WireError::malformed("ReadyForQuery", "bad status")),
    }
}

pub fn parameter_status(body: &[u8]) -> Result<(&str, &str), WireError> {
    let mut r = Reader::new(body, "ParameterStatus");
    let name = r.cstr()?;
    let value = r.cstr()?;
    r.finish()?;
    Ok((name, value))
}

/// A NotificationResponse's sending backend and channel, as sent (the payload follows them).
pub fn notification(body: &[u8]) -> Result<(i32, &[u8]), WireError> {
    let mut r = Reader::new(body, "NotificationResponse");
    let pid = r.i32()?;
    let channel = r.cstr_bytes()?;
    r.cstr_bytes()?;
    r.finish()?;
    Ok((pid, channel))
}

pub fn command_tag(body: &[u8]) -> Result<&str, WireError> {
    let mut r = Reader::new(body, "CommandComplete");
    let tag = r.cstr()?;
    r.finish()?;
    Ok(tag)
}

pub fn backend_key(body: &[u8]) -> Result<(i32, i32), WireError> {
    let mut r = Reader::new(body, "BackendKeyData");
    let pid = r.i32()?;
    let secret = r.i32()?;
    r.finish()?;
    Ok((pid, secret))
}

/// The authentication request code (0 ok, 3 cleartext, 5 md5, 10 SASL, 11 SASL continue, 12 SASL final).
pub fn auth_code(body: &[u8]) -> Result<i32, WireError> {
    Reader::new(body, "Authentication").i32()
}

/// The mechanism names of an AuthenticationSASL (code 10) body.
pub fn sasl_mechanisms(body: &[u8]) -> Result<Vec<&str>, WireError> {
    let mut r = Reader::new(body, "AuthenticationSASL");
    r.i32()?;
    let mut out = Vec::new();
    loop {
        let m = r.cstr()?;
        if m.is_empty() {
            break;
        }
        out.push(m);
    }
    r.finish()?;
    Ok(out)
}

/// CopyInResponse/CopyOutResponse: overall format (0 text, 1 binary) and per-column formats.
pub fn copy_response(body: &[u8]) -> Result<(i8, Vec<i16>), WireError> {
    let mut r = Reader::new(body, "CopyResponse");
    let overall = r.u8()? as i8;
    let n = r.i16()?;
    if n < 0 || (n as usize) * 2 > r.remaining() {
        return Err(WireError::malformed("CopyResponse", "bad column count"));
    }
    let mut cols = Vec::with_capacity(n as usize);
    for _ in 0..n {
        cols.push(r.i16()?);
    }
    r.finish()?;
    Ok((overall, cols))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use pgwire::messages::data::{DataRow, FieldDescription, RowDescription};
    use pgwire::messages::response::ErrorResponse;
    use pgwire::messages::Message;

    #[test]
    fn row_description_matches_pgwire_encoding() {
        let mut f = FieldDescription::new("phone".into(), 16400, 6, 25, -1, -1, 0);
        f.format_code = 1;
        let mut buf = BytesMut::new();
        RowDescription::new(vec![f]).encode(&mut buf).unwrap();
        let fields = row_description(&buf[5..]).unwrap();
        assert_eq!(
            fields,
            vec![FieldDesc {
                name: b"phone",
                table_oid: 16400,
                attnum: 6,
                type_oid: 25,
                type_len: -1,
                type_mod: -1,
                format: 1
            }]
        );
        assert!(row_description(&buf[5..buf.len() - 1]).is_err());
    }

    #[test]
    fn data_row_fields_and_nulls() {
        let mut buf = BytesMut::new();
        let mut body = BytesMut::new();
        body.extend_from_slice(b"\0\0\0\x03abc\xff\xff\xff\xff");
        DataRow::new(body, 2).encode(&mut buf).unwrap();
        let fields: Vec<_> = data_row(&buf[5..]).unwrap().collect();
        assert_eq!(fields, vec![Ok(Some(&b"abc"[..])), Ok(None)]);
        let bad: Vec<_> = data_row(b"\0\x01\0\0\0\x09ab").unwrap().collect();
        assert!(bad[0].is_err());
        assert!(data_row(b"\x7f\xff").is_err());
    }

    #[test]
    fn error_fields_round_trip() {
        let mut buf = BytesMut::new();
        ErrorResponse::new(vec![(b'S', "ERROR".into()), (b'C', "22P02".into())])
            .encode(&mut buf)
            .unwrap();
        assert_eq!(error_fields(&buf[5..]).unwrap(), vec![(b'S', "ERROR"), (b'C', "22P02")]);
        assert!(error_fields(b"SERROR").is_err());
    }

    #[test]
    fn small_messages() {
        assert_eq!(ready_status(b"T").unwrap(), b'T');
        assert!(ready_status(b"X").is_err());
        assert_eq!(parameter_status(b"a\0b\0").unwrap(), ("a", "b"));
        assert_eq!(command_tag(b"SELECT 1\0").unwrap(), "SELECT 1");
        assert_eq!(backend_key(b"\0\0\0\x01\0\0\0\x02").unwrap(), (1, 2));
        assert_eq!(
            sasl_mechanisms(b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0").unwrap(),
            vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
        );
        assert_eq!(copy_response(b"\0\0\x02\0\0\0\0").unwrap(), (0, vec![0, 0]));
    }
}
