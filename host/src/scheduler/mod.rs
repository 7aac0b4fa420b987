//! Admission and execution of jobs: a bounded queue in front of the engine threads (CPU-bound
//! work) and the async IO executor (IO-bound work), the counters that show how it is doing,
//! and draining on shutdown.
//!
//! The scheduler runs opaque work; it knows nothing of wasm. Submission is refused at once
//! when the queue is full (the caller answers 429 with a retry hint); work it accepts is
//! always run or, on shutdown past the drain timeout, handed back as cancelled: never dropped
//! silently. Accepted work waits at the gate (`gate`) until what it will hold is free: a thread
//! or IO slot, its memory, its instance-pool slots, its task's and the long-job lane's share
//! of the engine threads.

mod gate;
mod io;
mod pool;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use gate::{Demand, GateStatus, Lane, LaneUse, PoolUse, Share, Waiting};
pub use io::{IoExecutor, IoStatus};
pub use pool::{CpuPool, Finish, Work, WorkerStatus};

use gate::{Gate, GateLimits};

/// A unit of IO-bound work for the async executor; like [`Work`], it returns its last step.
pub type IoWork = Pin<Box<dyn Future<Output = Finish> + Send + 'static>>;

/// How the scheduler is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerSettings {
    /// Number of engine threads.
    pub workers: usize,
    /// Pin engine threads to cores.
    pub pin_workers: bool,
    /// Most jobs waiting to run; more are refused.
    pub max_queued: usize,
    /// Threads of the IO executor.
    pub io_threads: usize,
    /// Most IO-bound jobs running at once; more wait in the queue.
    pub max_io_running: usize,
    /// Most memory the running jobs' limits may reserve together, in bytes.
    pub max_jobs_memory_bytes: u64,
    /// Linear memories of the instance pool, `None` without a pool.
    pub pool_memories: Option<u32>,
    /// Engine threads one task may hold while another task's job waits for one.
    pub max_task_threads: usize,
    /// Jobs whose deadline is past this are long jobs.
    pub long_job: Duration,
    /// Engine threads long jobs may hold at once.
    pub long_job_threads: usize,
}

impl Default for SchedulerSettings {
    /// The settings of `taskhost serve` without flags: one engine thread per core, placed by
    /// the kernel (pinning them measured slower where the HTTP threads share their cores);
    /// a queue of 10,000 jobs; 2 IO threads running at most 256 IO jobs; three quarters of
    /// the machine's memory for running jobs; a task may hold all threads but one; jobs past
    /// 30 s are long and hold at most half of the threads.
    fn default() -> Self {
        let workers = default_workers();
        Self {
            workers,
            pin_workers: false,
            max_queued: 10_000,
            io_threads: 2,
            max_io_running: 256,
            max_jobs_memory_bytes: (default_jobs_memory_mib() as u64) << 20,
            pool_memories: None,
            max_task_threads: default_max_task_threads(workers),
            long_job: Duration::from_secs(30),
            long_job_threads: default_long_job_threads(workers),
        }
    }
}

/// Engine threads by default: one per core.
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Memory for running jobs by default, in MiB: three quarters of the machine's, 4 GiB where
/// it cannot be read.
pub(crate) fn default_jobs_memory_mib() -> usize {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| {
            let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        });
    total_kib.map_or(4096, |kib| kib / 1024 * 3 / 4)
}

/// Engine threads one task may hold by default, of `workers`: all but one, at least one.
pub(crate) fn default_max_task_threads(workers: usize) -> usize {
    workers.saturating_sub(1).max(1)
}

/// Engine threads long jobs may hold by default, of `workers`: half, at least one.
pub(crate) fn default_long_job_threads(workers: usize) -> usize {
    workers.div_ceil(2)
}

/// The queue is full: try again after the given delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the job queue is full ({capacity} jobs waiting); retry after {} s", retry_after.as_secs())]
pub struct QueueFull {
    /// How many jobs the queue holds.
    pub capacity: usize,
    /// A guess at when there will be room: the queue's expected drain time, 1 s to 60 s.
    pub retry_after: Duration,
}

/// Admits jobs into a bounded queue and runs them on the engine threads or the IO executor.
pub struct Scheduler {
    pool: CpuPool,
    io: IoExecutor,
    /// Accepted work not started yet, and what the running work holds.
    gate: Mutex<Gate<Start>>,
    long_job: Duration,
    max_queued: usize,
    /// Jobs accepted and not yet finished (queued or running), behind one lock so that
    /// admission is exact and drain can wait on it.
    in_flight: Mutex<InFlight>,
    idle: Condvar,
    accepted: AtomicU64,
    rejected: AtomicU64,
    completed: AtomicU64,
}

#[derive(Default)]
struct InFlight {
    queued: usize,
    running: usize,
    /// Whether `drain` is waiting: only then is the condition variable signalled (a signal
    /// is a system call, too dear for every job).
    draining: bool,
}

/// A snapshot of the scheduler's queue and threads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SchedulerStatus {
    /// Jobs waiting for an engine thread.
    pub queued: usize,
    /// Jobs running now.
    pub running: usize,
    /// Most jobs that may wait.
    pub max_queued: usize,
    /// Jobs accepted since start.
    pub accepted: u64,
    /// Jobs refused because the queue was full.
    pub rejected: u64,
    /// Jobs finished since start (in any way).
    pub completed: u64,
    /// Each engine thread.
    pub workers: Vec<WorkerStatus>,
    /// The IO executor.
    pub io: IoStatus,
    /// What the running jobs hold (memory, pool slots, lanes) and why queued jobs wait.
    pub admission: GateStatus,
}

/// Accepted work, and where it runs once the gate lets it start.
enum Start {
    Cpu(Ticket, Work),
    Io(Ticket, IoWork),
}

impl Scheduler {
    /// Starts the engine threads and the IO executor.
    pub fn start(settings: SchedulerSettings) -> std::io::Result<Self> {
        let limits = GateLimits {
            workers: settings.workers,
            io_slots: settings.max_io_running,
            memory_bytes: settings.max_jobs_memory_bytes,
            pool_memories: settings.pool_memories,
            group_threads: settings.max_task_threads,
            long_threads: settings.long_job_threads,
        };
        Ok(Self {
            pool: CpuPool::start(settings.workers, settings.pin_workers),
            io: IoExecutor::start(settings.io_threads)?,
            gate: Mutex::new(Gate::new(limits)),
            long_job: settings.long_job,
            max_queued: settings.max_queued,
            in_flight: Mutex::default(),
            idle: Condvar::new(),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            completed: AtomicU64::new(0),
        })
    }

    /// Counts one job in as queued, or refuses it at once when the queue is full. The ticket
    /// holds its place until its work is handed over with [`run_cpu`](Self::run_cpu) or
    /// [`run_io`](Self::run_io) (or dropped).
    pub fn admit(self: &Arc<Self>) -> Result<Ticket, QueueFull> {
        self.reserve(1)?;
        Ok(Ticket::new(self.clone()))
    }

    /// Counts `count` jobs in as queued, all or none: refused when the queue has no room for
    /// all of them. Work accepted now may be handed over later: a batch's jobs beyond its
    /// concurrency bound wait holding their tickets.
    pub fn admit_all(self: &Arc<Self>, count: usize) -> Result<Vec<Ticket>, QueueFull> {
        self.reserve(count)?;
        Ok((0..count).map(|_| Ticket::new(self.clone())).collect())
    }

    /// Whether a job with a deadline of `timeout` is a long job.
    pub fn is_long(&self, timeout: Duration) -> bool {
        timeout > self.long_job
    }

    /// Hands CPU-bound `work`, admitted with `ticket`, to the engine threads once `demand`
    /// can be met.
    pub fn run_cpu(&self, ticket: Ticket, demand: Demand, work: Work) {
        self.enter(Lane::Cpu, demand, Start::Cpu(ticket, work));
    }

    /// Hands IO-bound `work`, admitted with `ticket`, to the async executor once `demand` can
    /// be met.
    pub fn run_io(&self, ticket: Ticket, demand: Demand, work: IoWork) {
        self.enter(Lane::Io, demand, Start::Io(ticket, work));
    }

    fn enter(&self, lane: Lane, demand: Demand, start: Start) {
        let mut gate = self.gate();
        if gate.start_now(lane, &demand) {
            drop(gate);
            self.launch(lane, demand, start);
        } else {
            gate.enter(lane, demand, start);
            drop(gate);
            self.start_ready();
        }
    }

    /// Starts every job the gate lets start now.
    fn start_ready(&self) {
        while let Some((lane, demand, start)) = self.gate().next() {
            self.launch(lane, demand, start);
        }
    }

    /// Starts a job the gate counts as holding `demand` in `lane`.
    fn launch(&self, lane: Lane, demand: Demand, start: Start) {
        match start {
            Start::Cpu(mut ticket, work) => {
                ticket.held = Some((lane, demand));
                self.pool.submit(Box::new(move || {
                    let running = ticket.start();
                    let finish = work();
                    drop(running);
                    finish
                }));
            }
            Start::Io(mut ticket, work) => {
                ticket.held = Some((lane, demand));
                self.io.spawn(async move {
                    let running = ticket.start();
                    let finish = work.await;
                    drop(running);
                    finish();
                });
            }
        }
    }

    /// Gives back what a job in `lane` held at the gate, having run for `ran`, and starts the
    /// jobs that lets start.
    fn release(&self, lane: Lane, demand: &Demand, ran: Duration) {
        let next = {
            let mut gate = self.gate();
            gate.leave(lane, demand, ran);
            gate.next()
        };
        if let Some((lane, demand, start)) = next {
            self.launch(lane, demand, start);
            self.start_ready();
        }
    }

    fn gate(&self) -> MutexGuard<'_, Gate<Start>> {
        self.gate.lock().expect("scheduler gate poisoned")
    }

    /// Most jobs that may wait at once: no more can ever be admitted together.
    pub fn max_queued(&self) -> usize {
        self.max_queued
    }

    /// Waits up to `timeout` for every accepted job to finish; true if they all did.
    pub fn drain(&self, timeout: Duration) -> bool {
        let mut in_flight = self.lock();
        in_flight.draining = true;
        let (mut in_flight, _) = self
            .idle
            .wait_timeout_while(in_flight, timeout, |in_flight| in_flight.total() > 0)
            .expect("scheduler lock poisoned");
        in_flight.draining = false;
        in_flight.total() == 0
    }

    /// Jobs accepted and not finished: queued or running.
    pub fn in_flight(&self) -> usize {
        self.lock().total()
    }

    /// Stops the engine threads once the queued work has run, and the IO executor; work
    /// still waiting at the gate is dropped unstarted.
    pub fn shutdown(&self) {
        // Dropped outside the gate's lock: dropping a ticket takes the queue's.
        let waiting = self.gate().take_waiting();
        drop(waiting);
        self.pool.shutdown();
        self.io.shutdown();
    }

    /// A snapshot of the queue, the engine threads and the IO executor.
    pub fn status(&self) -> SchedulerStatus {
        let (queued, running) = {
            let in_flight = self.lock();
            (in_flight.queued, in_flight.running)
        };
        SchedulerStatus {
            queued,
            running,
            max_queued: self.max_queued,
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            workers: self.pool.status(),
            io: self.io.status(),
            admission: self.gate().status(),
        }
    }

    /// Counts `count` jobs in as queued, or refuses them all when the queue has no room; the
    /// caller makes a [`Ticket`] for each.
    fn reserve(&self, count: usize) -> Result<(), QueueFull> {
        let mut in_flight = self.lock();
        if in_flight.queued + count > self.max_queued {
            self.rejected.fetch_add(count as u64, Ordering::Relaxed);
            return Err(QueueFull {
                capacity: self.max_queued,
                retry_after: self.drain_estimate(in_flight.queued),
            });
        }
        in_flight.queued += count;
        self.accepted.fetch_add(count as u64, Ordering::Relaxed);
        Ok(())
    }

    /// How long `queued` jobs should take to drain, from the mean CPU job time so far.
    fn drain_estimate(&self, queued: usize) -> Duration {
        let workers = self.pool.status();
        let completed: u64 = workers.iter().map(|worker| worker.completed).sum();
        let busy_ms: u64 = workers.iter().map(|worker| worker.busy_ms).sum();
        let mean_ms = busy_ms.checked_div(completed).unwrap_or(0);
        let estimate_ms = mean_ms * queued as u64 / workers.len().max(1) as u64;
        Duration::from_secs(estimate_ms.div_ceil(1000).clamp(1, 60))
    }

    fn update(&self, change: impl FnOnce(&mut InFlight)) {
        let mut in_flight = self.lock();
        change(&mut in_flight);
        if in_flight.draining && in_flight.total() == 0 {
            self.idle.notify_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().expect("scheduler lock poisoned")
    }
}

impl InFlight {
    fn total(&self) -> usize {
        self.queued + self.running
    }
}

/// An admitted job's place in the queue: counted as queued until its work starts, and from
/// when the gate lets it start, what it holds there. Dropped unstarted (its executor shut
/// down, or its work was never handed over), it is uncounted and gives back what it held.
pub struct Ticket {
    scheduler: Option<Arc<Scheduler>>,
    /// Where it runs and what it holds at the gate, once the gate has let it start.
    held: Option<(Lane, Demand)>,
}

impl Ticket {
    fn new(scheduler: Arc<Scheduler>) -> Self {
        Self {
            scheduler: Some(scheduler),
            held: None,
        }
    }

    /// Moves the job from queued to running; the guard counts it finished, and gives back
    /// what it holds, when dropped, however its work ends, panics included.
    fn start(mut self) -> Running {
        let scheduler = self.scheduler.take().expect("a ticket starts once");
        scheduler.update(|in_flight| {
            in_flight.queued -= 1;
            in_flight.running += 1;
        });
        Running {
            scheduler,
            held: self.held.take(),
            started: Instant::now(),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            if let Some((lane, demand)) = self.held.take() {
                scheduler.release(lane, &demand, Duration::ZERO);
            }
            scheduler.update(|in_flight| in_flight.queued -= 1);
        }
    }
}

/// A running job: when dropped, it gives back what it held at the gate (which lets the next
/// jobs start) and is counted finished.
struct Running {
    scheduler: Arc<Scheduler>,
    held: Option<(Lane, Demand)>,
    /// When it started: its tenant is charged the time it ran.
    started: Instant,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some((lane, demand)) = self.held.take() {
            self.scheduler
                .release(lane, &demand, self.started.elapsed());
        }
        self.scheduler.completed.fetch_add(1, Ordering::Relaxed);
        self.scheduler.update(|in_flight| in_flight.running -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const DEMAND: Demand = Demand {
        memory_bytes: 1 << 20,
        pool_memories: 1,
        group: 0,
        long: false,
        share: Share::DEFAULT,
    };

    fn scheduler(workers: usize, max_queued: usize) -> Arc<Scheduler> {
        Arc::new(
            Scheduler::start(SchedulerSettings {
                workers,
                pin_workers: false,
                max_queued,
                io_threads: 1,
                max_io_running: 100,
                max_jobs_memory_bytes: 1 << 30,
                max_task_threads: workers,
                long_job_threads: workers,
                ..SchedulerSettings::default()
            })
            .unwrap(),
        )
    }

    /// Admits `work` as one CPU job, or says why not.
    fn submit_cpu(
        scheduler: &Arc<Scheduler>,
        work: impl FnOnce() -> Finish + Send + 'static,
    ) -> Result<(), QueueFull> {
        let ticket = scheduler.admit()?;
        scheduler.run_cpu(ticket, DEMAND, Box::new(work));
        Ok(())
    }

    /// Occupies the scheduler's only engine thread until the returned sender is used.
    fn block_the_worker(scheduler: &Arc<Scheduler>) -> mpsc::Sender<()> {
        let (release, blocked) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel();
        submit_cpu(scheduler, move || {
            started.send(()).unwrap();
            let _ = blocked.recv();
            Box::new(|| ())
        })
        .unwrap();
        running.recv_timeout(Duration::from_secs(30)).unwrap();
        release
    }

    #[test]
    fn a_full_queue_refuses_at_once_and_loses_nothing_it_accepted() {
        let scheduler = scheduler(1, 3);
        let release = block_the_worker(&scheduler);

        let (done, finished) = mpsc::channel();
        let mut refused = 0;
        for _ in 0..10 {
            let done = done.clone();
            match submit_cpu(&scheduler, move || Box::new(move || done.send(()).unwrap())) {
                Ok(()) => {}
                Err(full) => {
                    assert_eq!(full.capacity, 3);
                    assert!(full.retry_after >= Duration::from_secs(1));
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, 7);
        let status = scheduler.status();
        assert_eq!((status.queued, status.running), (3, 1));
        assert_eq!((status.accepted, status.rejected), (4, 7));

        release.send(()).unwrap();
        drop(done);
        assert_eq!(finished.iter().count(), 3, "every accepted job ran");
        assert!(scheduler.drain(Duration::from_secs(30)));
        assert_eq!(scheduler.status().completed, 4);
    }

    #[test]
    fn admitting_many_takes_all_or_none_and_held_tickets_count_as_queued() {
        let scheduler = scheduler(1, 5);
        let release = block_the_worker(&scheduler);
        assert!(scheduler.admit_all(6).is_err(), "6 do not fit in 5");
        assert_eq!(scheduler.status().queued, 0);

        let mut tickets = scheduler.admit_all(4).unwrap();
        assert_eq!(scheduler.status().queued, 4);
        assert!(scheduler.admit_all(2).is_err(), "one place is left");
        drop(tickets.pop());
        assert_eq!(
            scheduler.status().queued,
            3,
            "a dropped ticket gives its place back"
        );

        let (done, finished) = mpsc::channel();
        for ticket in tickets {
            let done = done.clone();
            scheduler.run_cpu(
                ticket,
                DEMAND,
                Box::new(move || Box::new(move || done.send(()).unwrap())),
            );
        }
        release.send(()).unwrap();
        drop(done);
        assert_eq!(finished.iter().count(), 3);
        assert!(scheduler.drain(Duration::from_secs(30)));
    }

    #[test]
    fn drain_gives_up_after_its_timeout() {
        let scheduler = scheduler(1, 10);
        let release = block_the_worker(&scheduler);
        assert!(!scheduler.drain(Duration::from_millis(20)));
        release.send(()).unwrap();
        assert!(scheduler.drain(Duration::from_secs(30)));
    }
}
