//! Cutting complete tagged frames out of a receive buffer, with the length checked before any allocation.

use bytes::{Bytes, BytesMut};

/// One complete protocol message: the tag byte, the length word and the body, exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub raw: Bytes,
}

impl Frame {
    /// The message body after the 5-byte header.
    pub fn body(&self) -> &[u8] {
        &self.raw[5..]
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    #[error("message '{}' of {len} bytes exceeds the limit of {max} bytes", *tag as char)]
    TooLarge { tag: u8, len: usize, max: usize },
    #[error("message '{}' has an impossible length {len}", *tag as char)]
    BadLength { tag: u8, len: i64 },
}

/// Splits the next complete frame off `buf`, or returns `None` when more bytes are needed.
/// On `None` the buffer has room reserved for the rest of the frame, so the caller's
/// next `read_buf` can complete it without repeated reallocation.
pub fn next_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let declared = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if declared < 4 {
        return Err(FrameError::BadLength {
            tag,
            len: declared as i64,
        });
    }
    let total = declared as usize + 1;
    if total > max_len {
        return Err(FrameError::TooLarge {
            tag,
            len: total,
            max: max_len,
        });
    }
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let raw = buf.split_to(total).freeze();
    // What follows a large frame moves to a buffer of its own: left as a view of the frame's
    // allocation it would keep all of it alive after the frame is passed on (round 172: a 60 MiB
    // CopyData stayed in memory while its session waited).
    if total > LARGE {
        let mut rest = BytesMut::with_capacity(buf.len().max(16 * 1024));
        rest.extend_from_slice(buf);
        *buf = rest;
    }
    Ok(Some(Frame { tag, raw }))
}

/// Frames above this size are large: they do not share their allocation with what follows them,
/// and a buffer grown for one counts against the sessions' budget (see session::buffers).
pub const LARGE: usize = 64 * 1024;

/// The declared size of the frame at the front of `buf` (tag included), or 0 before its header.
pub fn pending_len(buf: &[u8]) -> usize {
    match buf {
        [_, a, b, c, d, ..] => (i32::from_be_bytes([*a, *b, *c, *d]).max(0) as usize).saturating_add(1),
        _ => 0,
    }
}

/// Builds a frame from a tag and body; used for messages the proxy writes itself.
pub fn frame(tag: u8, body: &[u8]) -> Frame {
    let mut raw = BytesMut::with_capacity(body.len() + 5);
    raw.extend_from_slice(&[tag]);
    raw.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    raw.extend_from_slice(body);
    Frame { tag, raw: raw.freeze() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_frame_shares_its_allocation_with_nothing_after_it() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[b'd', 0, 2, 0, 4]);
        buf.extend_from_slice(&[b'x'; 0x20000]);
        buf.extend_from_slice(b"c\0\0\0\x04");
        let f = next_frame(&mut buf, 1 << 20).unwrap().unwrap();
        // The frame's bytes are its own: nothing else keeps them alive once it is dropped.
        assert!(f.raw.is_unique());
        assert_eq!(&buf[..], b"c\0\0\0\x04");
    }

    #[test]
    fn splits_frames_and_waits_for_more() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x0dSELECT 1\0S\0\0\0\x04Z\0"[..]);
        let f = next_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(f.tag, b'Q');
        assert_eq!(f.body(), b"SELECT 1\0");
        let s = next_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!((s.tag, s.body()), (b'S', &b""[..]));
        assert_eq!(next_frame(&mut buf, 1024).unwrap(), None);
        assert_eq!(&buf[..], b"Z\0");
    }

    #[test]
    fn rejects_bad_and_oversized_lengths_before_allocating() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x03"[..]);
        assert!(matches!(next_frame(&mut buf, 1024), Err(FrameError::BadLength { .. })));
        let mut buf = BytesMut::from(&b"Q\xff\xff\xff\xff"[..]);
        assert!(matches!(next_frame(&mut buf, 1024), Err(FrameError::BadLength { .. })));
        let mut buf = BytesMut::from(&b"D\x7f\xff\xff\xff"[..]);
        assert!(matches!(
            next_frame(&mut buf, 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(buf.capacity() < 1 << 20);
    }

    #[test]
    fn built_frames_round_trip() {
        let f = frame(b'Q', b"SELECT 1\0");
        let mut buf = BytesMut::from(&f.raw[..]);
        assert_eq!(next_frame(&mut buf, 64).unwrap(), Some(f));
    }
}
