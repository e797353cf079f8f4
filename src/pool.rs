//! Session threads: each runs its own single-threaded runtime and serves the sessions it is given.
//!
//! A session's client and upstream sockets are polled by the thread that runs the session, so a
//! reply from Postgres wakes that thread directly. Tokio's work-stealing runtime moves tasks
//! between threads and wakes idle workers through futexes for every readiness event; on a machine
//! that shares its cores with Postgres and the clients, those wake-ups cost more than they gain
//! (README, Performance).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

struct Worker {
    handle: Handle,
    /// Sessions running on this thread now.
    load: Arc<AtomicUsize>,
    /// Dropped with the pool: the thread's runtime stops and cancels what still runs on it.
    _stop: oneshot::Sender<()>,
}

/// The session threads of one proxy; dropping it stops them.
pub struct SessionPool {
    workers: Vec<Worker>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start session thread: {0}")]
pub struct PoolError(#[from] std::io::Error);

impl SessionPool {
    /// Starts `threads` session threads (0: one per CPU).
    pub fn start(threads: usize) -> Result<SessionPool, PoolError> {
        let n = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = rt.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("unscharf-session-{i}"))
                .spawn(move || {
                    rt.block_on(async {
                        let _ = stopped.await;
                    })
                })?;
            workers.push(Worker {
                handle,
                load: Arc::new(AtomicUsize::new(0)),
                _stop: stop,
            });
        }
        Ok(SessionPool { workers })
    }

    /// Runs a session on the least busy thread. The future is first polled there, so sockets it
    /// registers then (`TcpStream::from_std`) belong to that thread's reactor.
    pub fn spawn(&self, session: impl Future<Output = ()> + Send + 'static) {
        let Some(w) = self.workers.iter().min_by_key(|w| w.load.load(Ordering::Relaxed)) else {
            return;
        };
        w.load.fetch_add(1, Ordering::Relaxed);
        // Counts down also for a session the runtime drops unfinished (pool stopped, panic).
        let guard = LoadGuard(w.load.clone());
        w.handle.spawn(async move {
            let _guard = guard;
            session.await;
        });
    }
}

struct LoadGuard(Arc<AtomicUsize>);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_owned()
    }

    #[test]
    fn sessions_spread_over_the_threads_and_survive_a_panicking_neighbour() {
        let pool = SessionPool::start(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let (release, released) = tokio::sync::watch::channel(false);
        for i in 0..4 {
            let (tx, mut released) = (tx.clone(), released.clone());
            pool.spawn(async move {
                if i == 1 {
                    panic!("a session panics");
                }
                tx.send(thread_name()).unwrap();
                let _ = released.wait_for(|r| *r).await;
                tx.send(format!("{} done", thread_name())).unwrap();
            });
        }
        let mut started: Vec<String> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        started.sort();
        started.dedup();
        assert_eq!(
            started,
            ["unscharf-session-0", "unscharf-session-1"],
            "both threads serve"
        );
        release.send(true).unwrap();
        for _ in 0..3 {
            assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap().ends_with("done"));
        }
        // Finished and panicked sessions no longer count.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.workers.iter().any(|w| w.load.load(Ordering::Relaxed) > 0) {
            assert!(std::time::Instant::now() < deadline, "loads never fell back to 0");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn dropping_the_pool_stops_its_sessions() {
        let pool = SessionPool::start(1).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        struct Dropped(std::sync::mpsc::Sender<()>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        pool.spawn(async move {
            let _d = Dropped(tx);
            std::future::pending::<()>().await;
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(pool);
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the session was dropped with the pool");
    }
}
