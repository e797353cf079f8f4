//! Which server messages a session may pass on once the migration fence (`crate::fence`) moved
//! under statements it had forwarded.
//!
//! A message carrying data that was read after the fence closed may come from a statement Postgres
//! analyzed after the commit, under definitions unscharf has not read. It waits until the fence
//! opens again; if the catalog then read is the content the statement was judged by, it passes,
//! else the session is cut off.

/// Where the fence stood, and which catalog content was in force, when the session's outstanding
/// statements were judged.
#[derive(Debug, Default)]
pub struct FenceCheck {
    /// The epoch and catalog fingerprint of the first statement forwarded since the session was
    /// last quiet.
    stamp: Option<(u64, u64)>,
}

/// A message that may pass on what Postgres produced after a migration unscharf has not read.
#[derive(Debug, PartialEq, Eq)]
pub struct Moved;

/// Messages that carry nothing of the data: completions of Parse, Bind and Close, a statement's
/// parameter types and NoData, ReadyForQuery, ParameterStatus (checked by the core), other
/// sessions' notifications. Anything else may: rows, tags, errors, notices, COPY data. An answer
/// already streaming when the fence closed is no exception: a function it calls may plan its
/// queries only when first called (round 152: row 2,000 of 3,000 ran a helper under the new
/// definitions).
fn neutral(tag: u8) -> bool {
    matches!(tag, b'1' | b'2' | b'3' | b'n' | b't' | b'Z' | b'S' | b'A')
}

impl FenceCheck {
    /// Before judging client frames in `epoch` under a catalog with `fingerprint`; `quiet` when
    /// nothing is outstanding.
    pub fn forwarding(&mut self, epoch: u64, fingerprint: u64, quiet: bool) {
        if quiet || self.stamp.is_none() {
            self.stamp = Some((epoch, fingerprint));
        }
    }

    /// Every answer has arrived.
    pub fn quiet(&mut self) {
        self.stamp = None;
    }

    /// A server message with `tag`, read while the fence stood at `epoch`.
    pub fn passes(&self, tag: u8, epoch: u64) -> Result<(), Moved> {
        match self.stamp {
            Some((stamped, _)) if stamped != epoch && !neutral(tag) => Err(Moved),
            _ => Ok(()),
        }
    }

    /// The fence is open at `epoch` on a catalog with `fingerprint`. When that is the content the
    /// outstanding statements were judged by, whatever committed meanwhile changed nothing they
    /// mean (a `COMMENT`, a no-op `CREATE TABLE IF NOT EXISTS`, a rolled-back migration), and they
    /// pass; else they cannot.
    pub fn reopened(&mut self, epoch: u64, fingerprint: u64) -> bool {
        match &mut self.stamp {
            None => true,
            Some((stamped, judged)) if *judged == fingerprint && fingerprint != 0 => {
                *stamped = epoch;
                true
            }
            Some(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FenceCheck, Moved};

    fn run(check: &FenceCheck, script: &[(u8, u64)]) -> Result<(), (usize, Moved)> {
        for (i, &(tag, epoch)) in script.iter().enumerate() {
            check.passes(tag, epoch).map_err(|m| (i, m))?;
        }
        Ok(())
    }

    #[test]
    fn nothing_moved_passes_everything() {
        let mut c = FenceCheck::default();
        c.forwarding(2, 7, true);
        assert_eq!(
            run(&c, &[(b'1', 2), (b'2', 2), (b'T', 2), (b'D', 2), (b'C', 2), (b'Z', 2)]),
            Ok(())
        );
    }

    #[test]
    fn anything_with_data_after_the_fence_moved_does_not_pass() {
        // Round 148: the statement waited on the migration's lock; its rows come after. Round 152:
        // rows of an answer begun before do not pass either.
        for tag in [b'T', b'D', b'C', b'E', b'N', b'I', b's', b'H', b'd', b'c', b'G'] {
            let mut c = FenceCheck::default();
            c.forwarding(2, 7, true);
            assert_eq!(run(&c, &[(tag, 3)]), Err((0, Moved)), "{}", tag as char);
        }
        let mut c = FenceCheck::default();
        c.forwarding(2, 7, true);
        assert_eq!(run(&c, &[(b'T', 2), (b'D', 2), (b'D', 3)]), Err((2, Moved)));
        // Completions and ReadyForQuery carry nothing.
        assert_eq!(
            run(&c, &[(b'1', 3), (b'2', 5), (b'Z', 5), (b'S', 5), (b'A', 5)]),
            Ok(())
        );
    }

    #[test]
    fn a_reopened_fence_passes_what_was_judged_by_the_same_content() {
        let mut c = FenceCheck::default();
        c.forwarding(2, 7, true);
        assert!(c.reopened(4, 7));
        assert_eq!(run(&c, &[(b'T', 4), (b'D', 4)]), Ok(()));
        assert!(!c.reopened(6, 8), "new content");
        assert_eq!(run(&c, &[(b'D', 6)]), Err((0, Moved)));
        // An unknown fingerprint (0) proves nothing.
        let mut c = FenceCheck::default();
        c.forwarding(2, 0, true);
        assert!(!c.reopened(4, 0));
        // Nothing outstanding: nothing to refuse.
        assert!(FenceCheck::default().reopened(4, 9));
    }

    #[test]
    fn the_stamp_is_the_oldest_outstanding_statement() {
        let mut c = FenceCheck::default();
        c.forwarding(2, 7, true);
        c.forwarding(4, 8, false);
        assert_eq!(run(&c, &[(b'C', 4)]), Err((0, Moved)));
        c.quiet();
        c.forwarding(4, 8, false);
        assert_eq!(run(&c, &[(b'C', 4), (b'Z', 4)]), Ok(()));
        // A quiet session passes what the server sends by itself.
        c.quiet();
        assert_eq!(run(&c, &[(b'N', 11)]), Ok(()));
    }
}
