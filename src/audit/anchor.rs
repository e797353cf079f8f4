//! The writer's anchor beside the trail (`FILE.head`: where it left the chain), and what the
//! writer does at start when the trail no longer ends there.

use std::path::{Path, PathBuf};

use super::event::{Event, Record, GENESIS};
use super::writer::{by_proxy, proxy_record};

/// Whether the file at `path` still ends where its anchor says the writer left it: the anchor's
/// hash is a line's (or what the first line chains to, after a rotation), and every line after it
/// is sealed and chained. Lines the writer wrote after its last anchor (a crash) are fine; lines
/// cut, rewritten or re-sealed while the proxy was stopped are not (round 175 F1: the proxy
/// continued from such an end and re-anchored it, and the trail verified).
fn ends_at_anchor(path: &Path, anchor: &(u64, String)) -> std::io::Result<bool> {
    use std::io::BufRead;
    let mut reached = anchor.1 == GENESIS;
    let mut prev: Option<String> = None;
    // From the newest file that holds the anchor's hash: the writer may have rotated, even many
    // times, after its last anchor and been killed (round 177 N4, round 179 Q3). Line by line: a
    // trail that is never rotated can be larger than memory.
    let mut files = super::verify::chain_files(path);
    if !files.iter().any(|f| f == path) {
        files.push(path.to_path_buf());
    }
    let start = match files.iter().rposition(|f| holds(f, &anchor.1)) {
        Some(i) => i,
        None if reached => 0,
        None => return Ok(false),
    };
    for file in &files[start..] {
        let file = match std::fs::File::open(file) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in std::io::BufReader::new(file).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let Ok(e) = serde_json::from_str::<Event>(&line) else {
                return Ok(false);
            };
            let sealed = e.hash.as_deref() == Some(e.compute_hash().as_str());
            if prev.is_none() && e.prev == anchor.1 {
                reached = true;
            }
            if reached && (!sealed || prev.as_ref().is_some_and(|p| *p != e.prev)) {
                return Ok(false);
            }
            if sealed && e.seq == anchor.0 && e.hash.as_deref() == Some(anchor.1.as_str()) {
                reached = true;
            }
            prev = e.hash;
        }
    }
    Ok(reached)
}

/// Whether a line of `file` mentions `hash` (as its own hash or as the one it chains to).
fn holds(file: &Path, hash: &str) -> bool {
    use std::io::BufRead;
    std::fs::File::open(file)
        .map(|f| {
            std::io::BufReader::new(f)
                .lines()
                .any(|l| l.is_ok_and(|l| l.contains(hash)))
        })
        .unwrap_or(false)
}

/// The last rotated file of the trail at `path` (`FILE.N` with the highest N), if any.
pub(super) fn newest_rotated(path: &Path) -> Option<PathBuf> {
    super::verify::chain_files(path).into_iter().rev().find(|f| f != path)
}

/// The anchor beside the trail at `path`: None when there is none, an error text when it cannot
/// be read.
pub fn read_anchor(path: &Path) -> Option<Result<(u64, String), String>> {
    let anchor = anchor_path(path);
    let text = match std::fs::read_to_string(&anchor) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("{}: {e}", anchor.display()))),
        Ok(t) => t,
    };
    let parsed = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|a| Some((a.get("seq")?.as_u64()?, a.get("hash")?.as_str()?.to_owned())));
    Some(parsed.ok_or_else(|| format!("{}: not an anchor (seq and hash)", anchor.display())))
}

/// Why the trail at `path` cannot be continued as it is, if it cannot: it holds events and its
/// anchor is missing, unreadable or not where the file ends.
pub(super) fn discontinuity(path: &Path, tail: &(u64, String)) -> std::io::Result<Option<String>> {
    let has_events = tail.1 != GENESIS;
    Ok(match read_anchor(path) {
        None if has_events => Some("its anchor was missing".to_owned()),
        None => None,
        Some(Err(e)) => Some(format!("its anchor could not be read ({e})")),
        Some(Ok(anchor)) if !ends_at_anchor(path, &anchor)? => Some(format!(
            "it ended at seq {} where its anchor said seq {}",
            tail.0, anchor.0
        )),
        Some(Ok(_)) => None,
    })
}

/// The start of the record that stands in the chain for a trail found edited at start.
const EDITED_AT_START: &str = "the audit trail was found edited at start: ";

/// The record that stands in the chain for a trail found edited while the proxy was stopped.
pub(super) fn edited_marker(why: &str) -> Record {
    proxy_record(format!(
        "{EDITED_AT_START}{why}; lines before this one were cut, rewritten or re-sealed"
    ))
}

/// What a record says when it is the writer's note that the trail was found edited at start.
pub fn edited_note(e: &super::event::Event) -> Option<&str> {
    if !by_proxy(e) {
        return None;
    }
    e.detail.strip_prefix(EDITED_AT_START)
}

/// Where the writer records the end of the chain: `FILE.head` beside `FILE`.
pub fn anchor_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".head");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::writer::tests::record;
    use crate::audit::writer::{spawn, Target, WriterOptions};

    /// Starts a writer on `path`, writes `n` records and stops it.
    fn run(path: &Path, n: u64) {
        run_rotating(path, n, 0)
    }

    fn run_rotating(path: &Path, n: u64, rotate_bytes: u64) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (sink, handle) = spawn(WriterOptions {
                target: Target::File(path.to_path_buf()),
                queue: 64,
                rotate_bytes,
                extra: None,
                copy_state: None,
            })
            .unwrap();
            for i in 0..n {
                sink.send(record(i + 1));
            }
            drop(sink);
            handle.await.unwrap();
        });
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn put(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    }

    fn verified(path: &Path) -> Option<String> {
        crate::audit::verify::verify(path).unwrap().problem.map(|p| p.what)
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("unscharf-anchor-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("audit.jsonl")
    }

    /// Round 175 F1: lines cut off the end, or a login's lines deleted and the chain re-sealed,
    /// while the proxy was stopped. The proxy used to continue from that end and re-anchor it.
    #[test]
    fn a_trail_edited_while_the_proxy_was_stopped_is_marked_at_start() {
        let path = scratch("cut");
        run(&path, 5);
        let all = lines(&path);
        put(&path, &all[..3]);
        run(&path, 1);
        let problem = verified(&path).expect("a cut end is reported after a restart");
        assert!(
            problem.contains("seq 4: it ended at seq 3 where its anchor said seq 5"),
            "{problem}"
        );

        let path = scratch("resealed");
        run(&path, 5);
        let mut prev = GENESIS.to_owned();
        let mut resealed = Vec::new();
        for (i, line) in lines(&path).iter().enumerate().filter(|(i, _)| *i != 1) {
            let e: Event = serde_json::from_str(line).unwrap();
            let r = record(i as u64 + 1);
            let (e, text) = Event::new(r, e.ts, resealed.len() as u64 + 1, prev).seal();
            prev = e.hash.unwrap();
            resealed.push(text);
        }
        put(&path, &resealed);
        assert!(verified(&path).is_some(), "the anchor tells before a restart");
        run(&path, 1);
        let problem = verified(&path).expect("a re-sealed trail is reported after a restart");
        assert!(problem.contains("where its anchor said seq 5"), "{problem}");

        let path = scratch("unanchored");
        run(&path, 2);
        std::fs::remove_file(anchor_path(&path)).unwrap();
        run(&path, 1);
        let problem = verified(&path).expect("a deleted anchor is reported after a restart");
        assert!(problem.contains("its anchor was missing"), "{problem}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Lines the writer wrote after its last anchor (it was killed before rewriting it) are not
    /// an edit; a fresh trail is not either.
    #[test]
    fn lines_after_the_last_anchor_are_not_an_edit() {
        let path = scratch("crash");
        run(&path, 4);
        let second: Event = serde_json::from_str(&lines(&path)[1]).unwrap();
        std::fs::write(
            anchor_path(&path),
            serde_json::json!({"file": "audit.jsonl", "seq": 2, "hash": second.hash}).to_string(),
        )
        .unwrap();
        run(&path, 1);
        assert_eq!(verified(&path), None);
        assert_eq!(lines(&path).len(), 5);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Round 177 N4: killed after a rotation, before the anchor was rewritten, or before the
    /// new file's first event. Neither is an edit, and the chain goes on unbroken.
    #[test]
    fn a_crash_around_a_rotation_is_not_an_edit() {
        let path = scratch("rotated");
        run_rotating(&path, 14, 600);
        // The anchor as it was before the rotations: a line of the first rotated file, several
        // files back.
        let files = crate::audit::verify::chain_files(&path);
        assert!(files.len() > 3, "{files:?}");
        let first: Event = serde_json::from_str(&lines(&files[0])[0]).unwrap();
        std::fs::write(
            anchor_path(&path),
            serde_json::json!({"file": "audit.jsonl", "seq": first.seq, "hash": first.hash}).to_string(),
        )
        .unwrap();
        run_rotating(&path, 1, 600);
        assert_eq!(verified(&path), None);

        // Killed between the rename and the new file's first event.
        let files = crate::audit::verify::chain_files(&path);
        let next = PathBuf::from(format!("{}.{}", path.display(), files.len()));
        std::fs::rename(&path, &next).unwrap();
        std::fs::write(&path, "").unwrap();
        run_rotating(&path, 1, 600);
        assert_eq!(verified(&path), None);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Round 177 N7: a symlink planted where the anchor is written first made the writer
    /// overwrite the file it pointed to.
    #[test]
    fn the_anchor_is_not_written_through_a_planted_symlink() {
        let path = scratch("symlink");
        let victim = path.parent().unwrap().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let mut tmp = anchor_path(&path).into_os_string();
        tmp.push(".tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        run(&path, 2);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(verified(&path), None);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Round 175 F2: an anchor that cannot be read passed as "no anchor".
    #[test]
    fn an_unreadable_anchor_does_not_verify() {
        let path = scratch("garbage");
        run(&path, 3);
        let all = lines(&path);
        put(&path, &all[..2]);
        for bad in ["garbage", "", "{\"seq\": 3}"] {
            std::fs::write(anchor_path(&path), bad).unwrap();
            let problem = verified(&path).unwrap_or_else(|| panic!("anchor {bad:?} passed"));
            assert!(problem.contains("cannot be read"), "{problem}");
        }
        std::fs::remove_file(anchor_path(&path)).unwrap();
        std::fs::create_dir(anchor_path(&path)).unwrap();
        assert!(verified(&path).is_some(), "an anchor that is a directory passed");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
