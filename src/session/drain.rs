//! A session's server connection after the session ended with work still queued at the server:
//! kept open, its answers read and dropped, until the backend has run out of work and closed.
//!
//! A backend goes on with every message it was sent before its socket closed, out of the
//! migration fence's sight once the session is gone (round 218 BC1: a Terminate sent behind
//! `SELECT pg_sleep(4); INSERT …`; BC3: a session the fence ended, its next batch queued). So the
//! session's end half-closes the connection (the backend ends after what it has, and a frame cut
//! short by that is dropped whole) and waits here for the backend to close its side, telling the
//! fence all along that it still owes answers, so that the fence cancels what runs at a
//! migration's commit. Unless the client asked to end (Terminate), the work is cancelled here
//! too: after every ReadyForQuery, since the batch queued behind it starts then (round 218 BC2:
//! two hundred batches outlasted a cancel every 200 ms), and every TICK for a cancel that fell
//! between two batches; after a Terminate, only once LIMIT has passed. The session's slot is held
//! until the backend has gone.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;

use crate::fence::Fence;
use crate::net::BoxRead;
use crate::server::{CancelTarget, Shared};

/// How often the work is cancelled again, and the fence told.
const TICK: Duration = Duration::from_millis(200);
/// After this what the backend still has is cancelled even after a Terminate (logged): closing
/// the connection instead would let it run on out of the fence's sight (round 220 BE1: a sleep of
/// 630 s, then an INSERT, ran past a migration at 610 s).
const LIMIT: Duration = Duration::from_secs(600);

/// Reads `ur` until the server closes it; `uin` holds what was read and not yet handled, from a
/// frame's start. `cancel`: whether the leftover work is cancelled from the start.
pub(super) async fn drain(
    shared: &Shared,
    target: CancelTarget,
    ur: &mut BoxRead,
    uin: &mut BytesMut,
    mut cancel: bool,
) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut fence_moves = shared.fence.subscribe();
    let mut frames = Frames::default();
    let mut tick = tokio::time::Instant::now();
    loop {
        let epoch = shared.fence.epoch();
        if !Fence::is_open(epoch) {
            shared.fence.owe(target.pid, epoch, 1);
        }
        let now = tokio::time::Instant::now();
        let ready = frames.take(uin);
        if cancel && (ready || now >= tick) {
            crate::session::startup::send_cancel(shared, target).await;
            tick = tokio::time::Instant::now() + TICK;
        }
        if uin.capacity() - uin.len() < 4096 {
            uin.reserve(16 * 1024);
        }
        tokio::select! {
            n = ur.read_buf(uin) => {
                if matches!(n, Ok(0) | Err(_)) {
                    return;
                }
            }
            _ = fence_moves.changed() => {}
            _ = tokio::time::sleep_until(tick), if cancel => {}
            _ = tokio::time::sleep_until(deadline), if !cancel => {
                tracing::warn!(
                    "a session's server connection still had work queued {} s after its client ended it; cancelling it",
                    LIMIT.as_secs()
                );
                cancel = true;
            }
        }
    }
}

/// Walks the server's frames without keeping them.
#[derive(Default)]
struct Frames {
    /// Bytes of the current frame not yet seen.
    skip: usize,
}

impl Frames {
    /// Drops the complete frames at the head of `buf`; whether a ReadyForQuery was among them.
    fn take(&mut self, buf: &mut BytesMut) -> bool {
        let mut ready = false;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len());
                buf.advance(n);
                self.skip -= n;
                if self.skip > 0 {
                    return ready;
                }
            }
            let [tag, a, b, c, d, ..] = buf[..] else { return ready };
            ready |= tag == b'Z';
            // A malformed length is skipped as the smallest frame: the socket's end ends this.
            self.skip = 1 + (u32::from_be_bytes([a, b, c, d]) as usize).max(4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_for_query_is_seen_across_reads() {
        let mut f = Frames::default();
        let mut buf = BytesMut::from(&b"D\0\0\0\x08abcdZ\0\0"[..]);
        assert!(!f.take(&mut buf), "the Z frame is not complete yet, but its tag is");
        // The tag was seen with its length incomplete: nothing taken of it.
        assert_eq!(&buf[..], b"Z\0\0");
        buf.extend_from_slice(b"\0\x05I");
        assert!(f.take(&mut buf));
        assert!(buf.is_empty());
        let mut big = BytesMut::from(&b"D\0\x01\0\0"[..]);
        assert!(!f.take(&mut big));
        // A 64 KiB frame: its five header bytes taken, the rest still to skip.
        assert_eq!(f.skip, 1 + 0x10000 - 5);
    }
}
