//! Reading the trail back: the chain of files (rotated ones first), and verification that finds the
//! first edited, deleted, inserted, reordered or truncated line.

use std::path::{Path, PathBuf};

use super::anchor::anchor_path;
use super::event::{Event, GENESIS};

/// The files of one trail in chain order: `FILE.1`, `FILE.2`, …, then `FILE`.
pub fn chain_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u64, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let prefix = format!("{}.", name.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(num) = n.strip_prefix(&prefix).and_then(|r| r.parse::<u64>().ok()) {
                    rotated.push((num, e.path()));
                }
            }
        }
    }
    rotated.sort();
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    files
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub files: Vec<PathBuf>,
    /// Events verified before the first problem (all of them when there is none).
    pub events: u64,
    pub problem: Option<Problem>,
    /// Problems after the first, up to `MAX_LATER`: the check goes on from each broken line, so
    /// one break (an innocent "edited at start" record) hides no later deletion (round 204 AO3).
    pub later: Vec<Problem>,
    /// Whether the end of the chain could be checked against the writer's anchor.
    pub anchored: bool,
    /// Events the proxy dropped because its queue was full, and the seqs of the records saying so.
    pub dropped: u64,
    pub dropped_at: Vec<u64>,
    /// The file of each record in `dropped_at`: seqs restart in every rotated file.
    pub dropped_in: Vec<PathBuf>,
}

/// Problems after the first that a report keeps.
pub const MAX_LATER: usize = 100;

impl Report {
    fn found(&mut self, p: Problem) {
        match self.problem {
            None => self.problem = Some(p),
            Some(_) if self.later.len() < MAX_LATER => self.later.push(p),
            Some(_) => {}
        }
    }
}

/// Verifies the hash chain across all files of the trail at `path`, going on past each problem
/// from the broken line.
pub fn verify(path: &Path) -> std::io::Result<Report> {
    let files = chain_files(path);
    let mut report = Report {
        files: files.clone(),
        events: 0,
        problem: None,
        later: Vec::new(),
        anchored: false,
        dropped: 0,
        dropped_at: Vec::new(),
        dropped_in: Vec::new(),
    };
    if files.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such audit trail", path.display()),
        ));
    }
    let mut prev: Option<String> = None;
    let mut last_seq = 0;
    // After a line that does not parse, the next one is taken as it is (its seq and prev).
    let mut resync = false;
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        let mut expected_seq = 1u64;
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for (i, raw) in lines.iter().enumerate() {
            let lineno = i + 1;
            let problem = |what: String| Problem {
                file: file.clone(),
                line: lineno,
                what,
            };
            if raw.trim().is_empty() {
                continue;
            }
            let complete = raw.ends_with('\n');
            let e: Event = match serde_json::from_str(raw.trim_end()) {
                Ok(e) => e,
                Err(_) if !complete => {
                    report.found(problem("the line is cut off: the file was truncated".into()));
                    resync = true;
                    continue;
                }
                Err(err) => {
                    report.found(problem(format!("not a valid audit event ({err}): the line was edited")));
                    resync = true;
                    continue;
                }
            };
            let broken = if e.hash.as_deref() != Some(e.compute_hash().as_str()) {
                Some(format!(
                    "seq {}: the content does not match its hash: the line was edited",
                    e.seq
                ))
            } else if resync {
                None
            // Per file, seq restarts at 1 only for a rotated chain; a trail recreated after deletion continues.
            } else if i == 0 && prev.is_none() && e.seq != 1 {
                Some(format!(
                    "the trail starts at seq {}: earlier lines or files are missing",
                    e.seq
                ))
            } else if e.seq != expected_seq && !(i == 0 && prev.is_some()) {
                Some(if e.seq > expected_seq {
                    format!("seq jumps from {} to {}: lines were deleted", expected_seq - 1, e.seq)
                } else {
                    format!(
                        "seq {} follows seq {}: lines were reordered or repeated",
                        e.seq,
                        expected_seq - 1
                    )
                })
            } else if e.prev != prev.clone().unwrap_or_else(|| GENESIS.to_owned()) {
                Some(if prev.is_none() {
                    "the first event does not start the chain: earlier events are missing".to_owned()
                } else {
                    format!(
                        "seq {} does not chain to the line before it: a line was deleted, inserted or reordered",
                        e.seq
                    )
                })
            } else {
                super::anchor::edited_note(&e).map(|why| format!("seq {}: {why}", e.seq))
            };
            resync = false;
            if let Some(what) = broken {
                report.found(problem(what));
            }
            if let Some(n) = super::writer::dropped_count(&e) {
                report.dropped += n;
                report.dropped_at.push(e.seq);
                report.dropped_in.push(file.clone());
            }
            // The check goes on from this line, whatever was wrong with it.
            prev = e.hash.clone();
            last_seq = e.seq;
            expected_seq = e.seq + 1;
            if report.problem.is_none() {
                report.events += 1;
            }
        }
    }
    // The writer's anchor says where the chain ended; lines cut off the end show up here. Without
    // it, cutting the end and deleting the anchor would leave a chain that looks whole (round 23).
    let anchor = anchor_path(path);
    if !anchor.exists() {
        let last = files.last().cloned().unwrap_or_default();
        let lines = std::fs::read_to_string(&last).map(|t| t.lines().count()).unwrap_or(0);
        report.found(Problem {
            file: last,
            line: lines + 1,
            what: format!(
                "the writer's anchor {} is missing, so whether lines were cut off the end cannot be checked",
                anchor.display()
            ),
        });
        return Ok(report);
    }
    let last = files.last().cloned().unwrap_or_default();
    let end = |what: String| {
        let lines = std::fs::read_to_string(&last).map(|t| t.lines().count()).unwrap_or(0);
        Problem {
            file: last.clone(),
            line: lines + 1,
            what,
        }
    };
    match super::anchor::read_anchor(path) {
        None => {}
        // Round 175 F2: an anchor that cannot be read hides a cut end as well as a missing one.
        Some(Err(e)) => report.found(end(format!("the writer's anchor cannot be read: {e}"))),
        Some(Ok((seq, hash))) => {
            report.anchored = true;
            if Some(hash.as_str()) != prev.as_deref() && !(seq == 0 && prev.is_none()) {
                report.found(end(if seq > last_seq {
                    format!("the trail ends at seq {last_seq} but the writer wrote up to seq {seq}: lines were removed from the end")
                } else {
                    "the end of the trail does not match the writer's anchor".to_owned()
                }));
            }
        }
    }
    Ok(report)
}

/// Every event of the trail (all files), for list and summary; unreadable lines are skipped.
pub fn read_all(path: &Path) -> std::io::Result<Vec<Event>> {
    let files = chain_files(path);
    if files.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such audit trail", path.display()),
        ));
    }
    let mut out = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(f)?.lines() {
            if let Ok(e) = serde_json::from_str::<Event>(line) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::{Decision, Record};

    fn record(n: u64) -> Record {
        Record {
            session: n,
            user: "agent_wasser".into(),
            client_addr: "127.0.0.1:5000".into(),
            purpose: "billing_hotline".into(),
            campaigns: vec!["stadtwerke".into()],
            decision: Decision::Refused,
            reason: "protected_column".into(),
            detail: "column x".into(),
            statement: "SELECT ?".into(),
            fingerprint: "f".into(),
            policy_version: "v".into(),
        }
    }

    /// A trail of n events written the way the writer writes them.
    fn trail(dir: &Path, n: u64) -> (PathBuf, Vec<String>) {
        let path = dir.join("audit.jsonl");
        let mut prev = GENESIS.to_owned();
        let mut lines = Vec::new();
        for i in 1..=n {
            let (e, line) = Event::new(record(i), format!("2026-11-29T10:00:{:02}Z", i), i, prev).seal();
            prev = e.hash.unwrap();
            lines.push(line);
        }
        std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        std::fs::write(
            anchor_path(&path),
            serde_json::json!({"file": "audit.jsonl", "seq": n, "hash": prev}).to_string(),
        )
        .unwrap();
        (path, lines)
    }

    /// A scratch directory removed when the test ends, pass or fail.
    struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tmp(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("unscharf-verify-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    fn write(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    }

    #[test]
    fn intact_trail_verifies() {
        let d = tmp("ok");
        let (p, _) = trail(&d, 5);
        let r = verify(&p).unwrap();
        assert_eq!((r.events, r.problem, r.anchored), (5, None, true));
    }

    #[test]
    fn a_trail_without_its_anchor_does_not_verify() {
        let d = tmp("noanchor");
        let (p, lines) = trail(&d, 5);
        // The last two lines cut off, and the anchor that would tell deleted with them.
        write(&p, &lines[..3]);
        std::fs::remove_file(super::super::anchor::anchor_path(&p)).unwrap();
        let r = verify(&p).unwrap();
        assert_eq!(r.events, 3);
        let problem = r.problem.expect("a missing anchor is a problem");
        assert!(problem.what.contains("anchor"), "{}", problem.what);
    }

    /// Round 204 AO3: the check stopped at the first break, so after one (an "edited at start"
    /// record a restore can leave innocently) any later deletion went unseen.
    #[test]
    fn goes_on_past_a_break() {
        let d = tmp("later");
        let (p, lines) = trail(&d, 8);
        let mut edited = lines.clone();
        edited[1] = edited[1].replace("agent_wasser", "agent_zeitung");
        edited.remove(5);
        edited[6] = "{not json".into();
        write(&p, &edited);
        let r = verify(&p).unwrap();
        let first = r.problem.clone().unwrap();
        assert_eq!((first.line, r.events), (2, 1), "{r:?}");
        let later: Vec<(usize, bool)> = r.later.iter().map(|l| (l.line, l.what.contains("deleted"))).collect();
        // The deletion (seq 6 gone: line 6 holds seq 7), the unreadable last line, and so an end
        // short of the anchor's.
        assert_eq!(later, [(6, true), (7, false), (8, false)], "{r:?}");
        // An unreadable line in the middle: the one after it is taken as it is.
        let mut garbled = lines.clone();
        garbled[3] = "{not json".into();
        write(&p, &garbled);
        let r = verify(&p).unwrap();
        assert_eq!((r.problem.map(|p| p.line), r.later), (Some(4), Vec::new()));
    }

    #[test]
    fn finds_the_first_bad_line() {
        let d = tmp("bad");
        let (p, lines) = trail(&d, 6);
        let edited: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 2 {
                    l.replace("agent_wasser", "agent_zeitung")
                } else {
                    l.clone()
                }
            })
            .collect();
        write(&p, &edited);
        let r = verify(&p).unwrap().problem.unwrap();
        assert_eq!(r.line, 3);
        assert!(r.what.contains("edited"), "{}", r.what);

        let mut deleted = lines.clone();
        deleted.remove(3);
        write(&p, &deleted);
        let r = verify(&p).unwrap().problem.unwrap();
        assert_eq!(r.line, 4);
        assert!(r.what.contains("deleted"), "{}", r.what);

        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        write(&p, &swapped);
        let r = verify(&p).unwrap().problem.unwrap();
        assert_eq!(r.line, 2);
        assert!(
            r.what.contains("seq 3 follows seq 1") || r.what.contains("jumps"),
            "{}",
            r.what
        );

        write(&p, &lines[..4]);
        let r = verify(&p).unwrap().problem.unwrap();
        assert!(r.what.contains("removed from the end"), "{}", r.what);

        let cut = format!(
            "{}{}",
            lines[..5].iter().map(|l| format!("{l}\n")).collect::<String>(),
            &lines[5][..40]
        );
        std::fs::write(&p, cut).unwrap();
        let r = verify(&p).unwrap().problem.unwrap();
        assert_eq!(r.line, 6);
        assert!(r.what.contains("truncated"), "{}", r.what);
    }

    #[test]
    fn chain_continues_across_rotated_files() {
        let d = tmp("rot");
        let (p, lines) = trail(&d, 6);
        // Rotate after 4 events: the new file restarts seq at 1 and chains to the old file's end.
        let old: Vec<String> = lines[..4].to_vec();
        write(&d.join("audit.jsonl.1"), &old);
        let last4: Event = serde_json::from_str(&lines[3]).unwrap();
        let mut prev = last4.hash.unwrap();
        let mut new = Vec::new();
        for i in 1..=2 {
            let (e, line) = Event::new(record(10 + i), "2026-11-29T11:00:00Z".into(), i, prev).seal();
            prev = e.hash.unwrap();
            new.push(line);
        }
        write(&p, &new);
        std::fs::write(anchor_path(&p), serde_json::json!({"seq": 2, "hash": prev}).to_string()).unwrap();
        let r = verify(&p).unwrap();
        assert_eq!((r.events, r.problem.clone()), (6, None), "{:?}", r.problem);
        assert_eq!(r.files.len(), 2);
        // Deleting the rotated file is noticed.
        std::fs::remove_file(d.join("audit.jsonl.1")).unwrap();
        let r = verify(&p).unwrap().problem.unwrap();
        assert!(r.what.contains("missing"), "{}", r.what);
    }
}
