//! Runs work on a pool of engine threads fed by work stealing.
//!
//! A global [`Injector`] takes new work; each engine thread keeps a local deque, refills it
//! in batches from the injector, and steals from its siblings when both are empty, so no
//! thread sits idle while another has a queue. Idle threads park on a condition variable and
//! are woken by new work; they never spin.

use std::iter;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};

use crossbeam_deque::{Injector, Stealer, Worker};

/// A unit of work for an engine thread.
pub type Work = Box<dyn FnOnce() + Send + 'static>;

/// A pool of engine threads.
pub struct CpuPool {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

struct Shared {
    injector: Injector<Work>,
    stealers: Vec<Stealer<Work>>,
    parking: Mutex<()>,
    wake: Condvar,
    stopping: AtomicBool,
}

impl CpuPool {
    /// Starts `workers` engine threads.
    pub fn start(workers: usize) -> Self {
        let locals: Vec<Worker<Work>> = (0..workers).map(|_| Worker::new_fifo()).collect();
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            stealers: locals.iter().map(Worker::stealer).collect(),
            parking: Mutex::new(()),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        let threads = locals
            .into_iter()
            .enumerate()
            .map(|(index, local)| {
                let shared = shared.clone();
                thread::Builder::new()
                    .name(format!("taskhost-engine-{index}"))
                    .spawn(move || shared.work_loop(index, &local))
                    .expect("spawning an engine thread")
            })
            .collect();
        Self {
            shared,
            threads: Mutex::new(threads),
        }
    }

    /// Queues work for the next free engine thread.
    pub fn submit(&self, work: Work) {
        self.shared.injector.push(work);
        // Taking the lock orders this wake-up after any parking thread's last look at the
        // queues, so the wake-up cannot be lost.
        drop(self.shared.parking.lock().expect("pool lock poisoned"));
        self.shared.wake.notify_one();
    }

    /// Finishes the queued work, then stops and joins every engine thread.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        drop(self.shared.parking.lock().expect("pool lock poisoned"));
        self.shared.wake.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().expect("pool lock poisoned"));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for CpuPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn work_loop(&self, index: usize, local: &Worker<Work>) {
        loop {
            if let Some(work) = self.find_work(index, local) {
                // Work reports its own failures; a panic here must not take the thread down.
                if catch_unwind(AssertUnwindSafe(work)).is_err() {
                    tracing::error!(worker = index, "work panicked on an engine thread");
                }
                continue;
            }
            let parked = self.parking.lock().expect("pool lock poisoned");
            if self.has_queued_work() {
                continue;
            }
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            drop(self.wake.wait(parked).expect("pool lock poisoned"));
        }
    }

    /// Local deque first, then a batch from the injector, then a sibling's deque.
    fn find_work(&self, index: usize, local: &Worker<Work>) -> Option<Work> {
        local.pop().or_else(|| {
            iter::repeat_with(|| {
                self.injector.steal_batch_and_pop(local).or_else(|| {
                    self.stealers
                        .iter()
                        .enumerate()
                        .filter(|(other, _)| *other != index)
                        .map(|(_, stealer)| stealer.steal())
                        .collect()
                })
            })
            .find(|steal| !steal.is_retry())
            .and_then(|steal| steal.success())
        })
    }

    fn has_queued_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|stealer| !stealer.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn every_submitted_piece_of_work_runs() {
        let pool = CpuPool::start(3);
        let (done, finished) = mpsc::channel();
        for i in 0..1000 {
            let done = done.clone();
            pool.submit(Box::new(move || done.send(i).unwrap()));
        }
        let mut seen: Vec<i32> = (0..1000)
            .map(|_| finished.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_piece_of_work_does_not_kill_its_thread() {
        let pool = CpuPool::start(1);
        pool.submit(Box::new(|| panic!("boom")));
        let (done, finished) = mpsc::channel();
        pool.submit(Box::new(move || done.send(()).unwrap()));
        finished.recv_timeout(Duration::from_secs(30)).unwrap();
    }

    #[test]
    fn shutdown_finishes_queued_work_first() {
        let pool = CpuPool::start(2);
        let (done, finished) = mpsc::channel();
        for _ in 0..100 {
            let done = done.clone();
            pool.submit(Box::new(move || done.send(()).unwrap()));
        }
        pool.shutdown();
        drop(done);
        assert_eq!(finished.iter().count(), 100);
    }
}
