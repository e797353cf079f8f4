//! PostgreSQL v3 wire protocol: frame boundaries, startup packets, and typed views of the few messages unscharf inspects.
//!
//! Nothing here does I/O. Frames are cut out of a session-owned buffer as `Bytes`
//! and forwarded untouched; typed views borrow from those bytes and are decoded
//! only for the messages the session must look at.

pub mod backend;
pub mod build;
pub mod frame;
pub mod frontend;
pub mod startup;

pub use frame::{next_frame, Frame, FrameError};

/// Why a frame's body could not be read as the message its tag promises.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("malformed {what} message: {problem}")]
    Malformed { what: &'static str, problem: &'static str },
    #[error("{what} message is not valid UTF-8")]
    NotUtf8 { what: &'static str },
}

impl WireError {
    pub(crate) fn malformed(what: &'static str, problem: &'static str) -> Self {
        WireError::Malformed { what, problem }
    }
}

/// A cursor over a message body with bounds-checked reads; every read fails instead of panicking.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn short(&self) -> WireError {
        WireError::malformed(self.what, "message ends early")
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(self.short());
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated string's bytes, without the NUL.
    pub(crate) fn cstr_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let rest = &self.buf[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(WireError::malformed(self.what, "string is not NUL-terminated"))?;
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    /// A NUL-terminated string that must be UTF-8: the proxy pins client_encoding to UTF8,
    /// so anything else is a protocol violation, never something to guess at.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, WireError> {
        let what = self.what;
        std::str::from_utf8(self.cstr_bytes()?).map_err(|_| WireError::NotUtf8 { what })
    }

    pub(crate) fn finish(&self) -> Result<(), WireError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(WireError::malformed(self.what, "trailing bytes"))
        }
    }
}
