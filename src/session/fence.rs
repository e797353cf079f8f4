//! Which server messages a session may pass on once the migration fence (`crate::fence`) moved
//! under statements it had forwarded: only those of an answer that began before.
//!
//! An answer that had begun when the fence closed was produced before the migration committed,
//! so by a plan made under the definitions the statement was judged by (a running plan does not
//! change). Any other message carrying data may come from a statement Postgres analyzed after the
//! commit, under definitions unscharf has not read: the session is cut off.

/// Where the fence stood when the session's outstanding statements were judged, and when the
/// answer now passing began.
#[derive(Debug, Default)]
pub struct FenceCheck {
    /// The epoch of the first statement forwarded since the session was last quiet.
    stamp: Option<u64>,
    /// The epoch at which the answer now passing (rows, COPY data) began.
    answer: Option<u64>,
}

/// A message that would pass on what Postgres produced after a migration unscharf has not read.
#[derive(Debug, PartialEq, Eq)]
pub struct Moved;

enum Kind {
    /// Carries nothing of the data: completions of Parse, Bind, Close, descriptions' types,
    /// ReadyForQuery, ParameterStatus (checked by the core), notifications of other sessions.
    Neutral,
    /// Begins or continues an answer: RowDescription, DataRow, COPY.
    Answer,
    /// Ends an answer, or is one by itself: command tags, errors, PortalSuspended.
    End,
    /// A notice: part of the answer it comes with, or data by itself.
    Notice,
}

fn kind(tag: u8) -> Kind {
    match tag {
        b'1' | b'2' | b'3' | b'n' | b't' | b'Z' | b'S' | b'A' => Kind::Neutral,
        b'T' | b'D' | b'H' | b'G' | b'W' | b'd' | b'c' => Kind::Answer,
        b'N' => Kind::Notice,
        _ => Kind::End,
    }
}

impl FenceCheck {
    /// Before judging client frames in epoch `epoch`; `quiet` when nothing is outstanding.
    pub fn forwarding(&mut self, epoch: u64, quiet: bool) {
        if quiet || self.stamp.is_none() {
            self.stamp = Some(epoch);
            self.answer = None;
        }
    }

    /// Every answer has arrived.
    pub fn quiet(&mut self) {
        self.stamp = None;
        self.answer = None;
    }

    /// A server message with `tag`, read while the fence stood at `epoch`.
    pub fn passes(&mut self, tag: u8, epoch: u64) -> Result<(), Moved> {
        let Some(stamp) = self.stamp else {
            return Ok(());
        };
        let unmoved = epoch == stamp;
        let begun_before = self.answer == Some(stamp);
        match kind(tag) {
            Kind::Neutral => {
                // A new statement's answer begins after these.
                self.answer = None;
                Ok(())
            }
            Kind::Answer if unmoved || begun_before => {
                self.answer.get_or_insert(epoch);
                Ok(())
            }
            Kind::Notice | Kind::End if unmoved || begun_before => {
                if matches!(kind(tag), Kind::End) {
                    self.answer = None;
                }
                Ok(())
            }
            _ => Err(Moved),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FenceCheck, Moved};

    fn run(check: &mut FenceCheck, script: &[(u8, u64)]) -> Result<(), (usize, Moved)> {
        for (i, &(tag, epoch)) in script.iter().enumerate() {
            check.passes(tag, epoch).map_err(|m| (i, m))?;
        }
        Ok(())
    }

    #[test]
    fn nothing_moved_passes_everything() {
        let mut c = FenceCheck::default();
        c.forwarding(2, true);
        assert_eq!(
            run(
                &mut c,
                &[(b'1', 2), (b'2', 2), (b'T', 2), (b'D', 2), (b'C', 2), (b'Z', 2)]
            ),
            Ok(())
        );
    }

    #[test]
    fn rows_that_began_before_the_commit_finish_after_it() {
        let mut c = FenceCheck::default();
        c.forwarding(2, true);
        assert_eq!(
            run(
                &mut c,
                &[(b'T', 2), (b'D', 2), (b'D', 3), (b'N', 3), (b'C', 3), (b'Z', 3)]
            ),
            Ok(())
        );
        // COPY TO STDOUT too, its CopyDone and tag included.
        c.forwarding(4, true);
        assert_eq!(
            run(&mut c, &[(b'H', 4), (b'd', 5), (b'c', 5), (b'C', 5), (b'Z', 6)]),
            Ok(())
        );
    }

    #[test]
    fn an_answer_that_begins_after_the_commit_is_cut_off() {
        // Round 148: the statement waited on the migration's lock; its rows come after.
        let mut c = FenceCheck::default();
        c.forwarding(2, true);
        assert_eq!(run(&mut c, &[(b'T', 3)]), Err((0, Moved)));
        // A pipeline: the first Execute's rows began before, the second's after.
        let mut c = FenceCheck::default();
        c.forwarding(2, true);
        let script = [(b'1', 2), (b'2', 2), (b'D', 2), (b'C', 3), (b'2', 3), (b'D', 3)];
        assert_eq!(run(&mut c, &script), Err((5, Moved)));
        // A described statement's row type came before, but its Bind planned it again after.
        let mut c = FenceCheck::default();
        c.forwarding(2, true);
        assert_eq!(
            run(&mut c, &[(b't', 2), (b'T', 2), (b'2', 3), (b'D', 3)]),
            Err((3, Moved))
        );
    }

    #[test]
    fn tags_errors_and_notices_of_a_statement_run_after_the_commit_are_cut_off() {
        for tag in [b'C', b'E', b'N', b'I', b's'] {
            let mut c = FenceCheck::default();
            c.forwarding(2, true);
            assert_eq!(run(&mut c, &[(tag, 4)]), Err((0, Moved)), "{}", tag as char);
        }
        // A multi-statement query: the second statement's rows begin after the first's tag.
        let mut c = FenceCheck::default();
        c.forwarding(2, true);
        assert_eq!(
            run(&mut c, &[(b'T', 2), (b'D', 3), (b'C', 3), (b'T', 3)]),
            Err((3, Moved))
        );
    }

    #[test]
    fn the_stamp_is_the_oldest_outstanding_statement() {
        let mut c = FenceCheck::default();
        c.forwarding(2, true);
        // More frames judged after the fence moved twice: the first statement is still at risk.
        c.forwarding(4, false);
        assert_eq!(run(&mut c, &[(b'C', 4)]), Err((0, Moved)));
        // Quiet again: a new stamp.
        c.quiet();
        c.forwarding(4, false);
        assert_eq!(run(&mut c, &[(b'C', 4), (b'Z', 4)]), Ok(()));
    }

    #[test]
    fn a_quiet_session_passes_what_the_server_sends_by_itself() {
        let mut c = FenceCheck::default();
        assert_eq!(run(&mut c, &[(b'A', 7), (b'S', 9), (b'N', 11)]), Ok(()));
    }
}
