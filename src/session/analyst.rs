//! The proxy's one analysis thread for large statements, taking logins in turn.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use crate::analyze::cache::Looked;
use crate::analyze::lexer::LexError;
use crate::server::Shared;
use crate::session::core::AnalysisJob;

/// Waiting work, one queue per login, served one item per login in turn. First come, first served
/// let thirty sessions of one login keep a legitimate 17 KB lookup of another waiting for ten
/// seconds (round 130); now it waits for at most one analysis per other login with work queued.
#[derive(Debug)]
pub struct FairQueue<T> {
    queues: HashMap<String, VecDeque<T>>,
    /// Logins with work queued, in the order they are served next.
    turn: VecDeque<String>,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        FairQueue {
            queues: HashMap::new(),
            turn: VecDeque::new(),
        }
    }
}

impl<T> FairQueue<T> {
    pub fn push(&mut self, login: &str, item: T) {
        let queue = self.queues.entry(login.to_owned()).or_default();
        if queue.is_empty() {
            self.turn.push_back(login.to_owned());
        }
        queue.push_back(item);
    }

    /// The next login's oldest item; that login then goes to the back of the turn.
    pub fn pop(&mut self) -> Option<T> {
        let login = self.turn.pop_front()?;
        let queue = self.queues.get_mut(&login)?;
        let item = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&login);
        } else {
            self.turn.push_back(login);
        }
        item
    }
}

type Work = Box<dyn FnOnce() + Send>;

struct Analyst {
    queue: Mutex<FairQueue<Work>>,
    ready: Condvar,
}

impl Analyst {
    fn serve(&self) {
        loop {
            let work = {
                let Ok(mut queue) = self.queue.lock() else { return };
                loop {
                    if let Some(work) = queue.pop() {
                        break work;
                    }
                    queue = match self.ready.wait(queue) {
                        Ok(queue) => queue,
                        Err(_) => return,
                    };
                }
            };
            // A panic ends that analysis only; its session judges the frame itself.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        }
    }
}

/// What the analysis thread answers: None if the analysis panicked.
pub type Answer = tokio::sync::oneshot::Receiver<Result<Looked, LexError>>;

/// Queues a large statement's analysis on the proxy's one analysis thread, in turn with every
/// other session's: judged on the session thread, a client pipelining such statements stalled every
/// session of that thread and new logins for 25 seconds, and several at once took the proxy past
/// a gigabyte (round 129). One thread keeps one allocator arena: on the blocking pool each new
/// thread kept its own (round 130: 1.9 GB). The session waits for the answer as one of its events,
/// so it serves its client meanwhile and ends when the client leaves (round 133). None if the
/// thread is gone: the frame is then judged where it is, as before.
pub fn submit(shared: &Arc<Shared>, job: &mut AnalysisJob) -> Option<Answer> {
    static ANALYST: OnceLock<Option<Arc<Analyst>>> = OnceLock::new();
    let analyst = ANALYST.get_or_init(|| {
        let analyst = Arc::new(Analyst {
            queue: Mutex::new(FairQueue::default()),
            ready: Condvar::new(),
        });
        let worker = analyst.clone();
        std::thread::Builder::new()
            .name("unscharf-analysis".into())
            .spawn(move || worker.serve())
            .ok()
            .map(|_| analyst)
    });
    let analyst = analyst.as_ref()?;
    let (shared, catalog) = (shared.clone(), shared.catalog.load_full());
    // Labelled with the catalog it is analyzed under, which a refresh may have replaced since
    // the job was made.
    (job.catalog, job.fingerprint) = (catalog.generation, catalog.fingerprint);
    let (sql, paths, revert, user) = (job.sql.clone(), job.paths.clone(), job.revert.clone(), job.user.clone());
    let (done, answer) = tokio::sync::oneshot::channel();
    let work: Work = Box::new(move || {
        // Its session has ended (the client left): nobody waits for it.
        if done.is_closed() {
            return;
        }
        // Nor once it ends while this runs (round 140: a 1 MB message ran for a minute after).
        let gone = || done.is_closed();
        let ctx = crate::analyze::AnalyzeCtx {
            catalog: &catalog,
            search_paths: &paths,
            user: &user,
            revert_paths: &revert,
            abandoned: crate::analyze::Abandoned(Some(&gone)),
        };
        let looked = shared.cache.analyze(&sql, ctx);
        let _ = done.send(looked);
    });
    analyst.queue.lock().ok()?.push(&job.user, work);
    analyst.ready.notify_one();
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::FairQueue;

    #[test]
    fn logins_take_turns_whatever_one_of_them_queued() {
        let mut q = FairQueue::default();
        for i in 0..30 {
            q.push("attacker", format!("a{i}"));
        }
        q.push("agent", "lookup".to_string());
        q.push("attacker", "a30".to_string());
        q.push("agent", "second".to_string());
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(&order[..4], ["a0", "lookup", "a1", "second"]);
        assert_eq!(order.len(), 33);
        assert_eq!(order.last().map(String::as_str), Some("a30"));
        assert!(q.pop().is_none());
    }

    #[test]
    fn a_login_that_ran_dry_queues_again_at_the_back() {
        let mut q = FairQueue::default();
        q.push("a", 1);
        q.push("b", 2);
        assert_eq!(q.pop(), Some(1));
        q.push("a", 3);
        q.push("c", 4);
        assert_eq!([q.pop(), q.pop(), q.pop(), q.pop()], [Some(2), Some(3), Some(4), None]);
    }
}
