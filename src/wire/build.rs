//! Encoders for the server messages unscharf writes itself, built on pgwire's message codec.

use bytes::{Bytes, BytesMut};
use pgwire::messages::data::{FieldDescription, RowDescription};
use pgwire::messages::response::{ErrorResponse, NoticeResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus, SecretKey};
use pgwire::messages::Message;

use super::backend::FieldDesc;

fn encode<M: Message>(m: &M) -> Bytes {
    let mut buf = BytesMut::with_capacity(m.message_length() + 1);
    // Encoding only fails for messages over pgwire's size limits; ours are small and bounded.
    if m.encode(&mut buf).is_err() {
        buf.clear();
    }
    buf.freeze()
}

/// Severity of a message the proxy raises itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

/// An ErrorResponse raised by the proxy: severity, SQLSTATE, message and an optional hint.
pub fn error(severity: Severity, code: &str, message: &str, hint: Option<&str>) -> Bytes {
    let mut fields = vec![
        (b'S', severity.as_str().to_owned()),
        (b'V', severity.as_str().to_owned()),
        (b'C', code.to_owned()),
        (b'M', message.to_owned()),
    ];
    if let Some(h) = hint {
        fields.push((b'H', h.to_owned()));
    }
    encode(&ErrorResponse::new(fields))
}

/// Re-encodes error or notice fields (after redaction) as the given message kind.
pub fn error_or_notice(notice: bool, fields: Vec<(u8, String)>) -> Bytes {
    if notice {
        encode(&NoticeResponse::new(fields))
    } else {
        encode(&ErrorResponse::new(fields))
    }
}

pub fn ready_for_query(status: u8) -> Bytes {
    let status = match status {
        b'T' => TransactionStatus::Transaction,
        b'E' => TransactionStatus::Error,
        _ => TransactionStatus::Idle,
    };
    encode(&ReadyForQuery::new(status))
}

pub fn backend_key_data(pid: i32, secret: i32) -> Bytes {
    encode(&BackendKeyData::new(pid, SecretKey::I32(secret)))
}

pub fn parameter_status(name: &str, value: &str) -> Bytes {
    encode(&ParameterStatus::new(name.to_owned(), value.to_owned()))
}

/// A NotificationResponse with its channel's bytes as the server sent them and an empty payload.
pub fn notification_without_payload(pid: i32, channel: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(channel.len() + 11);
    buf.extend_from_slice(b"A");
    buf.extend_from_slice(&((channel.len() + 10) as i32).to_be_bytes());
    buf.extend_from_slice(&pid.to_be_bytes());
    buf.extend_from_slice(channel);
    buf.extend_from_slice(&[0, 0]);
    buf.freeze()
}

pub fn auth_sasl(mechanisms: &[&str]) -> Bytes {
    encode(&Authentication::SASL(
        mechanisms.iter().map(|m| m.to_string()).collect(),
    ))
}

pub fn auth_ok() -> Bytes {
    encode(&Authentication::Ok)
}

/// A RowDescription from (possibly rewritten) field descriptions.
/// A CopyOutResponse of `columns` text-format columns (a masked COPY with some left out).
pub fn copy_out_text(columns: usize) -> Bytes {
    let n = i16::try_from(columns).unwrap_or(i16::MAX);
    let mut b = BytesMut::with_capacity(8 + 2 * columns);
    bytes::BufMut::put_u8(&mut b, b'H');
    bytes::BufMut::put_i32(&mut b, 4 + 1 + 2 + 2 * i32::from(n));
    bytes::BufMut::put_u8(&mut b, 0);
    bytes::BufMut::put_i16(&mut b, n);
    for _ in 0..n {
        bytes::BufMut::put_i16(&mut b, 0);
    }
    b.freeze()
}

pub fn row_description(fields: &[FieldDesc<'_>]) -> Bytes {
    let fields = fields
        .iter()
        .map(|f| {
            FieldDescription::new(
                String::from_utf8_lossy(f.name).into_owned(),
                f.table_oid as i32,
                f.attnum,
                f.type_oid,
                f.type_len,
                f.type_mod,
                f.format,
            )
        })
        .collect();
    encode(&RowDescription::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::backend;

    #[test]
    fn error_carries_code_and_message() {
        let e = error(Severity::Error, "42501", "unscharf: no", Some("ask the DBA"));
        assert_eq!(e[0], b'E');
        let fields = backend::error_fields(&e[5..]).unwrap();
        assert!(fields.contains(&(b'C', "42501")));
        assert!(fields.contains(&(b'M', "unscharf: no")));
        assert!(fields.contains(&(b'H', "ask the DBA")));
    }

    #[test]
    fn small_messages_decode_back() {
        assert_eq!(&ready_for_query(b'E')[..], b"Z\0\0\0\x05E");
        assert_eq!(backend::backend_key(&backend_key_data(7, 9)[5..]).unwrap(), (7, 9));
        assert_eq!(
            backend::sasl_mechanisms(&auth_sasl(&["SCRAM-SHA-256"])[5..]).unwrap(),
            vec!["SCRAM-SHA-256"]
        );
        // The channel's bytes as sent; the payload gone.
        let sent = b"A\0\0\0\x16\0\0\0\x07feed\xc3\xa4\0{\"iban\"}\0";
        let (pid, channel) = backend::notification(&sent[5..]).unwrap();
        assert_eq!((pid, channel), (7, &b"feed\xc3\xa4"[..]));
        assert_eq!(
            &notification_without_payload(pid, channel)[..],
            b"A\0\0\0\x10\0\0\0\x07feed\xc3\xa4\0\0"
        );
        assert!(backend::notification(b"\0\0\0\x07feed").is_err());
    }
}
