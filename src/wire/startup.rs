//! The untagged packets of the startup phase: SSLRequest, GSSENCRequest, CancelRequest and StartupMessage.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Reader, WireError};

/// Postgres refuses startup packets above this size (pqcomm.h MAX_STARTUP_PACKET_LENGTH).
pub const MAX_STARTUP_PACKET: usize = 10_000;

const SSL_REQUEST: i32 = 80877103;
const GSSENC_REQUEST: i32 = 80877104;
const CANCEL_REQUEST: i32 = 80877102;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    Cancel { pid: i32, secret: i32 },
    Startup(StartupMessage),
}

/// A StartupMessage: protocol version and the parameters in the order the client sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupMessage {
    pub major: u16,
    pub minor: u16,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StartupError {
    #[error("invalid length of startup packet ({0} bytes)")]
    BadLength(i64),
    #[error("unsupported frontend protocol {0}.{1}: unscharf speaks protocol 3")]
    Protocol(u16, u16),
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Splits the next complete startup-phase packet off `buf`, or `None` when more bytes are needed.
pub fn next_startup_packet(buf: &mut BytesMut) -> Result<Option<Bytes>, StartupError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if !(8..=MAX_STARTUP_PACKET as i32).contains(&len) {
        return Err(StartupError::BadLength(len as i64));
    }
    if buf.len() < len as usize {
        return Ok(None);
    }
    Ok(Some(buf.split_to(len as usize).freeze()))
}

/// Reads a complete startup-phase packet (length word included).
pub fn parse_startup_packet(packet: &[u8]) -> Result<StartupPacket, StartupError> {
    let mut r = Reader::new(packet, "startup");
    let _len = r.i32()?;
    let code = r.i32()?;
    match code {
        SSL_REQUEST => Ok(StartupPacket::SslRequest),
        GSSENC_REQUEST => Ok(StartupPacket::GssEncRequest),
        CANCEL_REQUEST => {
            let pid = r.i32()?;
            let secret = r.i32()?;
            Ok(StartupPacket::Cancel { pid, secret })
        }
        _ => {
            let (major, minor) = ((code >> 16) as u16, (code & 0xffff) as u16);
            if major != 3 {
                return Err(StartupError::Protocol(major, minor));
            }
            let mut params = Vec::new();
            loop {
                let key = r.cstr()?;
                if key.is_empty() {
                    break;
                }
                let value = r.cstr()?;
                params.push((key.to_owned(), value.to_owned()));
            }
            r.finish()?;
            Ok(StartupPacket::Startup(StartupMessage { major, minor, params }))
        }
    }
}

impl StartupMessage {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Encodes the message as the upstream will receive it.
    pub fn encode(&self) -> Bytes {
        let mut body = BytesMut::with_capacity(128);
        body.put_u16(self.major);
        body.put_u16(self.minor);
        for (k, v) in &self.params {
            body.put_slice(k.as_bytes());
            body.put_u8(0);
            body.put_slice(v.as_bytes());
            body.put_u8(0);
        }
        body.put_u8(0);
        let mut out = BytesMut::with_capacity(body.len() + 4);
        out.put_i32(body.len() as i32 + 4);
        out.put_slice(&body);
        out.freeze()
    }
}

/// Encodes a CancelRequest for the upstream.
pub fn cancel_request(pid: i32, secret: i32) -> Bytes {
    let mut out = BytesMut::with_capacity(16);
    out.put_i32(16);
    out.put_i32(CANCEL_REQUEST);
    out.put_i32(pid);
    out.put_i32(secret);
    out.freeze()
}

/// Encodes an SSLRequest for the upstream.
pub fn ssl_request() -> Bytes {
    let mut out = BytesMut::with_capacity(8);
    out.put_i32(8);
    out.put_i32(SSL_REQUEST);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_round_trip() {
        let msg = StartupMessage {
            major: 3,
            minor: 0,
            params: vec![
                ("user".into(), "agent_wasser".into()),
                ("database".into(), "crm".into()),
            ],
        };
        let raw = msg.encode();
        let mut buf = BytesMut::from(&raw[..]);
        let packet = next_startup_packet(&mut buf).unwrap().unwrap();
        assert_eq!(parse_startup_packet(&packet).unwrap(), StartupPacket::Startup(msg));
    }

    #[test]
    fn recognises_negotiation_and_cancel_packets() {
        assert_eq!(parse_startup_packet(&ssl_request()).unwrap(), StartupPacket::SslRequest);
        assert_eq!(
            parse_startup_packet(b"\0\0\0\x08\x04\xd2\x16\x30").unwrap(),
            StartupPacket::GssEncRequest
        );
        assert_eq!(
            parse_startup_packet(&cancel_request(42, -7)).unwrap(),
            StartupPacket::Cancel { pid: 42, secret: -7 }
        );
    }

    #[test]
    fn rejects_bad_packets() {
        let mut buf = BytesMut::from(&b"\0\0\0\x04"[..]);
        assert!(next_startup_packet(&mut buf).is_err());
        let mut buf = BytesMut::from(&b"\x7f\0\0\0"[..]);
        assert!(next_startup_packet(&mut buf).is_err());
        assert!(matches!(
            parse_startup_packet(b"\0\0\0\x08\0\x02\0\0"),
            Err(StartupError::Protocol(2, 0))
        ));
        // A parameter name without its value, and one without a terminator.
        assert!(parse_startup_packet(b"\0\0\0\x0d\0\x03\0\0user\0").is_err());
        assert!(parse_startup_packet(b"\0\0\0\x0c\0\x03\0\0user").is_err());
        assert!(parse_startup_packet(b"\0\0\0\x0e\0\x03\0\0u\0\xff\0\0").is_err());
    }
}
