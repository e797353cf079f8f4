//! One budget for the memory all sessions' buffers pin while they hold large messages.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;

// Messages up to this size are each session's own business (bounded by the session count); a
// buffer grown for a larger one counts against the budget while the message is under way.
use crate::wire::frame::LARGE as LARGE_BUFFER;

/// Send buffers fill to the session's high-water mark plus one message before it stops reading;
/// past this one a large message is in them, and what is left to send of it counts (the room
/// its buffer grew beyond is reserved, not written).
pub const LARGE_SEND_BUFFER: usize = 1 << 20;

/// Bytes held by the sessions' large receive buffers, all together. Without it, each session's
/// message limit bounded one buffer, not their sum (round 169 I1: twenty sessions that each sent
/// most of a 60 MiB message and stalled held 1.2 GB).
#[derive(Default)]
pub struct BufferBudget {
    used: AtomicUsize,
}

impl BufferBudget {
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// What one session holds of the budget; given back when the session ends.
pub struct BufferHold<'a> {
    budget: &'a BufferBudget,
    held: usize,
}

impl<'a> BufferHold<'a> {
    pub fn new(budget: &'a BufferBudget) -> Self {
        BufferHold { budget, held: 0 }
    }

    /// Holds what the receive buffers `recv` and the send buffers `send` pin now instead of what
    /// was held; false when that would take the budget past `max` (nothing changes then). A large
    /// message moves from one to the other with its share (round 171: a 60 MB answer the client
    /// did not read gave its share back once it left the receive buffer).
    pub fn set(&mut self, recv: &[&BytesMut], send: &[&BytesMut], max: usize) -> bool {
        let need: usize = recv.iter().map(|b| pinned(b)).sum::<usize>()
            + send
                .iter()
                .filter(|b| b.capacity() > LARGE_SEND_BUFFER)
                .map(|b| b.len())
                .sum::<usize>();
        if need <= self.held {
            self.budget.used.fetch_sub(self.held - need, Ordering::Relaxed);
            self.held = need;
            return true;
        }
        let more = need - self.held;
        let taken = self
            .budget
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(more).filter(|total| *total <= max)
            });
        if taken.is_ok() {
            self.held = need;
        }
        taken.is_ok()
    }
}

impl Drop for BufferHold<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// The memory a receive buffer pins for a large message under way. Small messages a pipeline
/// leaves waiting are bounded per session (the session's high-water mark) and do not count.
fn pinned(buf: &BytesMut) -> usize {
    match crate::wire::frame::pending_len(buf) {
        n if n > LARGE_BUFFER => buf.capacity().max(n),
        _ => 0,
    }
}

/// A send buffer a large message grew, given back once it is written. What was written is
/// advanced past and no longer shows in `capacity()`, so the allocation is reclaimed to be seen
/// (round 173 M1: a 60 MiB CopyData with nothing after it kept its allocation).
pub fn shrink_sent(buf: &mut BytesMut) {
    if buf.is_empty() && (buf.capacity() > LARGE_SEND_BUFFER || buf.try_reclaim(LARGE_SEND_BUFFER + 1)) {
        *buf = BytesMut::new();
    }
}

/// A scratch buffer a large value grew, given back once the value is written out: its content
/// lives only while one message is rewritten.
pub fn shrink_scratch(buf: &mut Vec<u8>) {
    if buf.capacity() > LARGE_BUFFER {
        *buf = Vec::new();
    }
}

/// A buffer a large message grew, given back once that message is through: the bytes left (less
/// than a large message) move to a fresh ordinary buffer.
pub fn shrink(buf: &mut BytesMut) {
    let pending = crate::wire::frame::pending_len(buf);
    if buf.capacity() > LARGE_BUFFER && pending <= LARGE_BUFFER && buf.len() <= LARGE_BUFFER {
        let mut fresh = BytesMut::with_capacity(16 * 1024);
        fresh.extend_from_slice(buf);
        *buf = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_count_until_given_back() {
        let budget = BufferBudget::default();
        let (mut a, mut b) = (BufferHold::new(&budget), BufferHold::new(&budget));
        let small = BytesMut::from(&b"Q\0\0\0\x0dSELECT 1\0"[..]);
        // The first bytes of a 1 MiB message, its room reserved as next_frame reserves it.
        let mut large = BytesMut::from(&[b'Q', 0, 0x10, 0, 4][..]);
        assert_eq!(crate::wire::next_frame(&mut large, 2 << 20), Ok(None));
        assert!(a.set(&[&small, &small], &[], 2 << 20));
        assert_eq!(budget.used(), 0);
        assert!(a.set(&[&large, &small], &[], 2 << 20));
        assert_eq!(budget.used(), large.capacity());
        // A second large buffer would pass the budget: refused, nothing taken.
        assert!(!b.set(&[&large, &large], &[], 2 << 20));
        assert_eq!(budget.used(), large.capacity());
        assert!(a.set(&[&small], &[], 2 << 20));
        assert_eq!(budget.used(), 0);
        // A large answer waiting to be sent counts by what is left of it.
        let answer = BytesMut::from(&vec![0u8; 2 << 20][..]);
        assert!(b.set(&[], &[&answer], 3 << 20));
        assert_eq!(budget.used(), 2 << 20);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_send_buffer_written_out_is_given_back() {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        buf.extend_from_slice(&vec![1u8; 2 << 20]);
        bytes::Buf::advance(&mut buf, 2 << 20);
        // All written: `capacity()` no longer shows the allocation, which is still there.
        assert!(buf.capacity() < LARGE_SEND_BUFFER);
        shrink_sent(&mut buf);
        assert!(!buf.try_reclaim(LARGE_SEND_BUFFER));
        // A small buffer stays.
        let mut small = BytesMut::with_capacity(64 * 1024);
        small.extend_from_slice(&[1u8; 1000]);
        bytes::Buf::advance(&mut small, 1000);
        shrink_sent(&mut small);
        assert!(small.try_reclaim(64 * 1024));
    }

    #[test]
    fn scratch_grown_by_a_large_value_is_given_back() {
        let mut small = Vec::with_capacity(1024);
        shrink_scratch(&mut small);
        assert_eq!(small.capacity(), 1024);
        let mut large = vec![0u8; 1 << 20];
        large.clear();
        shrink_scratch(&mut large);
        assert_eq!(large.capacity(), 0);
    }

    #[test]
    fn a_buffer_shrinks_only_between_large_messages() {
        let mut buf = BytesMut::with_capacity(1 << 20);
        // The header of a 1 MiB message: kept for the rest of it.
        buf.extend_from_slice(&[b'Q', 0, 0x10, 0, 4]);
        shrink(&mut buf);
        assert!(buf.capacity() >= 1 << 20);
        // A small message's bytes: moved to an ordinary buffer.
        let mut buf = BytesMut::with_capacity(1 << 20);
        buf.extend_from_slice(b"Q\0\0\0\x0dSELECT 1\0");
        shrink(&mut buf);
        assert!(buf.capacity() <= LARGE_BUFFER);
        assert_eq!(&buf[..], b"Q\0\0\0\x0dSELECT 1\0");
    }
}
