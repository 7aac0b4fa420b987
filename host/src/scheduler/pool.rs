//! A pool of engine threads, pinned to cores if asked, fed by work stealing.
//!
//! A global [`Injector`] takes new work; each engine thread keeps a local deque, refills it in
//! batches from the injector, and steals from its siblings when both are empty, so no thread
//! sits idle while another has a queue. A thread that runs out of work watches the queues for
//! a few hundred microseconds, yielding its core to any other thread that wants it (waking a
//! parked thread costs tens of microseconds, far more than a short job), then parks on a
//! condition variable until new work wakes it; parked threads use no CPU, and submitting
//! costs no system call while no thread is parked.

use std::iter;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use serde::Serialize;

/// A unit of work for an engine thread. It returns its last step, which runs once the
/// thread's counters count the work done: so whoever sees the result of the work (a
/// finished job record) also sees it counted.
pub type Work = Box<dyn FnOnce() -> Finish + Send + 'static>;

/// The last step of a piece of work: publishing its result.
pub type Finish = Box<dyn FnOnce() + Send + 'static>;

/// A pool of engine threads.
pub struct CpuPool {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

struct Shared {
    injector: Injector<Work>,
    stealers: Vec<Stealer<Work>>,
    stats: Vec<WorkerStats>,
    parking: Mutex<()>,
    wake: Condvar,
    /// Threads parked or about to park: submitters wake one only if this is nonzero.
    sleepers: AtomicUsize,
    stopping: AtomicBool,
}

/// How long an idle thread watches the queues before parking: a few times what waking a
/// parked thread costs. While it watches it yields its core to any thread that wants it: the
/// engine threads share the cores with the HTTP workers that make their next jobs, and a
/// watch that held the core took 3-23% of the sync no-op throughput over HTTP at 64
/// connections (`benches/http/compare.sh`, 2 cores), while parking after 50 µs instead
/// doubled the p50 at one connection (yielding: p50 135-168 µs, vs 252-301 µs parking early).
const WATCH_BEFORE_PARKING: Duration = Duration::from_micros(300);

/// Counters of one engine thread, updated as it works.
#[derive(Default)]
struct WorkerStats {
    core: Mutex<Option<usize>>,
    running: AtomicBool,
    completed: AtomicU64,
    stolen: AtomicU64,
    busy_nanos: AtomicU64,
}

/// A snapshot of one engine thread's counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WorkerStatus {
    /// The thread's index in the pool.
    pub index: usize,
    /// The core it is pinned to, if pinning succeeded.
    pub core: Option<usize>,
    /// Whether it is running a job now.
    pub running: bool,
    /// Pieces of work it finished.
    pub completed: u64,
    /// Pieces of work it took from a sibling's deque.
    pub stolen: u64,
    /// Time it spent running work, in milliseconds.
    pub busy_ms: u64,
}

impl CpuPool {
    /// Starts `workers` engine threads; with `pin`, thread `i` is pinned to core
    /// `i mod cores` (where the OS refuses, a warning is logged once and threads run unpinned).
    pub fn start(workers: usize, pin: bool) -> Self {
        let locals: Vec<Worker<Work>> = (0..workers).map(|_| Worker::new_fifo()).collect();
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            stealers: locals.iter().map(Worker::stealer).collect(),
            stats: (0..workers).map(|_| WorkerStats::default()).collect(),
            parking: Mutex::new(()),
            wake: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        });
        let cores = if pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        if pin && cores.is_empty() {
            tracing::warn!("cannot list this machine's cores; engine threads run unpinned");
        }
        let threads = locals
            .into_iter()
            .enumerate()
            .map(|(index, local)| {
                let shared = shared.clone();
                let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
                thread::Builder::new()
                    .name(format!("taskhost-engine-{index}"))
                    .spawn(move || {
                        if let Some(core) = core {
                            shared.pin(index, core);
                        }
                        shared.work_loop(index, &local);
                    })
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
        // Either this sees a thread that is going to park, or that thread sees this work:
        // both sides write, fence, then read (see `Shared::park`).
        fence(Ordering::SeqCst);
        if self.shared.sleepers.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders this wake-up after the parking thread's last look at
            // the queues, so the wake-up cannot be lost.
            drop(self.shared.parking.lock().expect("pool lock poisoned"));
            self.shared.wake.notify_one();
        }
    }

    /// A snapshot of every engine thread's counters.
    pub fn status(&self) -> Vec<WorkerStatus> {
        self.shared
            .stats
            .iter()
            .enumerate()
            .map(|(index, stats)| WorkerStatus {
                index,
                core: *stats.core.lock().expect("pool lock poisoned"),
                running: stats.running.load(Ordering::Relaxed),
                completed: stats.completed.load(Ordering::Relaxed),
                stolen: stats.stolen.load(Ordering::Relaxed),
                busy_ms: stats.busy_nanos.load(Ordering::Relaxed) / 1_000_000,
            })
            .collect()
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
    fn pin(&self, index: usize, core: core_affinity::CoreId) {
        if core_affinity::set_for_current(core) {
            *self.stats[index].core.lock().expect("pool lock poisoned") = Some(core.id);
        } else {
            static WARN_ONCE: Once = Once::new();
            WARN_ONCE.call_once(|| {
                tracing::warn!("the OS refused to pin engine threads to cores; they run unpinned");
            });
        }
    }

    fn work_loop(&self, index: usize, local: &Worker<Work>) {
        let stats = &self.stats[index];
        loop {
            if let Some(work) = self.find_work(index, local) {
                stats.running.store(true, Ordering::Relaxed);
                let started = Instant::now();
                // Work reports its own failures; a panic here must not take the thread down.
                let finish = catch_unwind(AssertUnwindSafe(work));
                let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                stats.busy_nanos.fetch_add(busy, Ordering::Relaxed);
                stats.completed.fetch_add(1, Ordering::Relaxed);
                stats.running.store(false, Ordering::Relaxed);
                match finish.map(|finish| catch_unwind(AssertUnwindSafe(finish))) {
                    Ok(Ok(())) => {}
                    _ => tracing::error!(worker = index, "work panicked on an engine thread"),
                }
                continue;
            }
            if self.watch_for_work() {
                continue;
            }
            if !self.park() {
                return;
            }
        }
    }

    /// Spins briefly until work shows up; true if it did.
    fn watch_for_work(&self) -> bool {
        let until = Instant::now() + WATCH_BEFORE_PARKING;
        while Instant::now() < until {
            if self.has_queued_work() {
                return true;
            }
            // Looking rarely (every few microseconds) keeps the queues' cache lines with
            // the threads that submit, rather than bouncing them between cores.
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            // A thread that wants this core (an HTTP worker making the next job) gets it.
            thread::yield_now();
        }
        false
    }

    /// Parks until woken by new work (or spuriously); false once the pool is stopping and
    /// no work is left.
    fn park(&self) -> bool {
        let parked = self.parking.lock().expect("pool lock poisoned");
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let keep_going = if self.has_queued_work() {
            true
        } else if self.stopping.load(Ordering::SeqCst) {
            false
        } else {
            drop(self.wake.wait(parked).expect("pool lock poisoned"));
            true
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        keep_going
    }

    /// Local deque first, then a batch from the injector, then a sibling's deque.
    fn find_work(&self, index: usize, local: &Worker<Work>) -> Option<Work> {
        if let Some(work) = local.pop() {
            return Some(work);
        }
        iter::repeat_with(|| {
            self.injector.steal_batch_and_pop(local).or_else(|| {
                let stolen: Steal<Work> = self
                    .stealers
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != index)
                    .map(|(_, stealer)| stealer.steal())
                    .collect();
                if stolen.is_success() {
                    self.stats[index].stolen.fetch_add(1, Ordering::Relaxed);
                }
                stolen
            })
        })
        .find(|steal| !steal.is_retry())
        .and_then(Steal::success)
    }

    fn has_queued_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|stealer| !stealer.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn every_submitted_piece_of_work_runs() {
        let pool = CpuPool::start(3, false);
        let (done, finished) = mpsc::channel();
        for i in 0..1000 {
            let done = done.clone();
            pool.submit(Box::new(move || {
                done.send(i).unwrap();
                Box::new(|| ())
            }));
        }
        let mut seen: Vec<i32> = (0..1000)
            .map(|_| finished.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_piece_of_work_does_not_kill_its_thread() {
        let pool = CpuPool::start(1, false);
        pool.submit(Box::new(|| panic!("boom")));
        pool.submit(Box::new(|| Box::new(|| panic!("boom, finishing"))));
        let (done, finished) = mpsc::channel();
        pool.submit(Box::new(move || {
            done.send(()).unwrap();
            Box::new(|| ())
        }));
        finished.recv_timeout(Duration::from_secs(30)).unwrap();
    }

    #[test]
    fn shutdown_finishes_queued_work_first_and_counts_it() {
        let pool = CpuPool::start(2, true);
        let (done, finished) = mpsc::channel();
        for _ in 0..100 {
            let done = done.clone();
            pool.submit(Box::new(move || {
                done.send(()).unwrap();
                Box::new(|| ())
            }));
        }
        pool.shutdown();
        drop(done);
        assert_eq!(finished.iter().count(), 100);
        let completed: u64 = pool.status().iter().map(|worker| worker.completed).sum();
        assert_eq!(completed, 100);
    }

    #[test]
    fn a_blocked_thread_does_not_hold_up_the_queue() {
        // One thread blocks until the end; the other must run everything else.
        let pool = CpuPool::start(2, false);
        let (release, blocked) = mpsc::channel::<()>();
        pool.submit(Box::new(move || {
            let _ = blocked.recv();
            Box::new(|| ())
        }));
        let (done, finished) = mpsc::channel();
        for _ in 0..50 {
            let done = done.clone();
            pool.submit(Box::new(move || {
                done.send(()).unwrap();
                Box::new(|| ())
            }));
        }
        for _ in 0..50 {
            finished.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        release.send(()).unwrap();
    }
}
