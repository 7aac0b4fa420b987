//! Which admitted job starts next, and when: a job starts only once what it may use is free.
//!
//! Every job states its [`Demand`]: a lane (an engine thread or an IO slot), the memory its
//! limit allows it (reserved whole, so the jobs running can never use more than the host's
//! ceiling together), the instance-pool memories its component instantiates, the group it
//! belongs to (its task) and whether it is long (its deadline is past the long-job
//! threshold). The gate holds jobs that cannot start yet, in the order they came, and starts
//! them as running jobs give back what they held:
//!
//! - **Memory and pool slots, in order.** The oldest job that may start next is never
//!   overtaken for memory: if it does not fit, nothing behind it in its lane starts until it
//!   does, so a large job cannot be starved by a stream of small ones.
//! - **Engine threads per group.** A group holds at most `group_threads` engine threads while
//!   another group's job waits for one; with nothing else waiting it may use them all, so no
//!   thread idles while work waits.
//! - **Long jobs** run on at most `long_threads` engine threads, always, so a few jobs with
//!   deadlines of minutes cannot take every thread from short ones.
//!
//! The gate is plain data, driven under its owner's lock: [`Gate::enter`] and
//! [`Gate::leave`] change it, [`Gate::next`] takes the next job that may start.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

/// Where a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// On an engine thread.
    Cpu,
    /// On the IO executor.
    Io,
}

/// What a job holds while it runs, besides its lane's thread or slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Demand {
    /// The memory its limit allows, in bytes.
    pub memory_bytes: u64,
    /// The linear memories its instance takes from the instance pool.
    pub pool_memories: u32,
    /// Jobs of one group (a task) share the group's ceiling on engine threads.
    pub group: u64,
    /// Whether it runs in the long-job lane.
    pub long: bool,
}

/// How much the gate lets run at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateLimits {
    /// Engine threads.
    pub workers: usize,
    /// IO-bound jobs.
    pub io_slots: usize,
    /// Memory of all running jobs together, in bytes.
    pub memory_bytes: u64,
    /// Linear memories of the instance pool; `None` without a pool.
    pub pool_memories: Option<u32>,
    /// Engine threads one group may hold while another group's job waits.
    pub group_threads: usize,
    /// Engine threads long jobs may hold.
    pub long_threads: usize,
}

/// Why a waiting job has not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Reason {
    EngineThreads,
    IoSlots,
    Memory,
    PoolSlots,
    GroupThreads,
    LongLane,
}

/// What the gate holds and lets run, for `/v1/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GateStatus {
    /// Memory of all running jobs together may not pass this, in bytes
    /// (`--max-jobs-memory-mib`).
    pub memory_bytes: u64,
    /// Memory the running jobs' limits reserve, in bytes.
    pub memory_reserved_bytes: u64,
    /// Memory left for more jobs, in bytes.
    pub memory_free_bytes: u64,
    /// Linear memories of the instance pool in use, and in all (absent without a pool).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub pool_memories: Option<PoolUse>,
    /// Engine threads one task may hold while another task's job waits.
    pub task_thread_ceiling: usize,
    /// Engine threads long jobs may hold, and hold now.
    pub long_jobs: LaneUse,
    /// IO-bound jobs running, and most that may run at once (`--max-io-jobs`).
    pub io_jobs: LaneUse,
    /// Jobs waiting to start, by what they wait for.
    pub waiting: Waiting,
}

/// Slots of the instance pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PoolUse {
    /// In use.
    pub used: u32,
    /// In all.
    pub total: u32,
}

/// Jobs running in a lane, and the lane's bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LaneUse {
    /// Running now.
    pub running: usize,
    /// Most that may run at once.
    pub max: usize,
}

/// Waiting jobs, counted by what they wait for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Waiting {
    /// A free engine thread: every one is busy.
    pub engine_threads: usize,
    /// A free IO slot (`--max-io-jobs`).
    pub io_slots: usize,
    /// Memory: their limits do not fit what the running jobs leave (`--max-jobs-memory-mib`).
    pub memory: usize,
    /// Slots of the instance pool.
    pub pool_slots: usize,
    /// Their task holds its ceiling of engine threads while other tasks' jobs wait
    /// (`--max-task-threads`).
    pub task_thread_ceiling: usize,
    /// Their deadline makes them long jobs, and the long-job lane is full
    /// (`--long-job-ms`, `--long-job-threads`).
    pub long_job_lane: usize,
}

/// A job held by the gate.
struct Held<W> {
    /// Order of arrival.
    seq: u64,
    lane: Lane,
    demand: Demand,
    work: W,
}

/// Jobs waiting to start, and what the running ones hold.
pub struct Gate<W> {
    limits: GateLimits,
    next_seq: u64,
    /// CPU jobs by group and length, each queue in order of arrival.
    cpu: BTreeMap<(u64, bool), VecDeque<Held<W>>>,
    io: VecDeque<Held<W>>,
    cpu_running: usize,
    io_running: usize,
    long_running: usize,
    memory_used: u64,
    pool_memories_used: u32,
    threads_by_group: HashMap<u64, usize>,
}

impl<W> Gate<W> {
    /// An empty gate with `limits`.
    pub fn new(limits: GateLimits) -> Self {
        Self {
            limits,
            next_seq: 0,
            cpu: BTreeMap::new(),
            io: VecDeque::new(),
            cpu_running: 0,
            io_running: 0,
            long_running: 0,
            memory_used: 0,
            pool_memories_used: 0,
            threads_by_group: HashMap::new(),
        }
    }

    /// Whether a job in `lane` with `demand` may start at once, without waiting: nothing
    /// waits in its lane (which it would overtake) and what it asks for is free. If so it is
    /// counted as holding it. The path of every job on a host that is keeping up: it costs
    /// no allocation, where [`enter`](Self::enter) and [`next`](Self::next) queue.
    pub fn start_now(&mut self, lane: Lane, demand: &Demand) -> bool {
        let free = match lane {
            Lane::Cpu => {
                self.cpu.is_empty()
                    && self.cpu_running < self.limits.workers
                    && !(demand.long && self.long_running >= self.limits.long_threads)
            }
            Lane::Io => self.io.is_empty() && self.io_running < self.limits.io_slots,
        };
        let start = free && self.fits(demand);
        if start {
            self.hold(lane, demand);
        }
        start
    }

    /// Holds `work`, which runs in `lane`, until its `demand` can be met; take it with
    /// [`next`](Self::next).
    pub fn enter(&mut self, lane: Lane, demand: Demand, work: W) {
        let held = Held {
            seq: self.next_seq,
            lane,
            demand,
            work,
        };
        self.next_seq += 1;
        match lane {
            Lane::Cpu => self
                .cpu
                .entry((demand.group, demand.long))
                .or_default()
                .push_back(held),
            Lane::Io => self.io.push_back(held),
        }
    }

    /// Gives back what a job in `lane` with `demand` held: it has finished.
    pub fn leave(&mut self, lane: Lane, demand: &Demand) {
        self.memory_used -= demand.memory_bytes;
        self.pool_memories_used -= demand.pool_memories;
        match lane {
            Lane::Io => self.io_running -= 1,
            Lane::Cpu => {
                self.cpu_running -= 1;
                self.long_running -= usize::from(demand.long);
                if let Some(threads) = self.threads_by_group.get_mut(&demand.group) {
                    *threads -= 1;
                    if *threads == 0 {
                        self.threads_by_group.remove(&demand.group);
                    }
                }
            }
        }
    }

    /// The next job that may start, counted as holding what it asked for; `None` while none
    /// can.
    pub fn next(&mut self) -> Option<(Lane, Demand, W)> {
        let cpu = self.next_cpu_queue().filter(|key| {
            let head = &self.cpu[key][0];
            self.fits(&head.demand)
        });
        let io = self
            .io
            .front()
            .filter(|head| self.io_running < self.limits.io_slots && self.fits(&head.demand))
            .map(|head| head.seq);
        let held = match (cpu, io) {
            (None, None) => return None,
            (Some(key), Some(io)) if io < self.cpu[&key][0].seq => self.take_io(),
            (Some(key), _) => self.take_cpu(key),
            (None, Some(_)) => self.take_io(),
        };
        self.hold(held.lane, &held.demand);
        Some((held.lane, held.demand, held.work))
    }

    /// The CPU queue whose head starts next, if an engine thread is free for it: the oldest
    /// head among groups below their thread ceiling, else (no such group waiting) the oldest
    /// head of all. Long jobs only while the long lane has room.
    fn next_cpu_queue(&self) -> Option<(u64, bool)> {
        if self.cpu_running >= self.limits.workers {
            return None;
        }
        let long_lane_full = self.long_running >= self.limits.long_threads;
        let startable = self
            .cpu
            .iter()
            .filter(|((_, long), _)| !(*long && long_lane_full))
            .map(|(key, queue)| (*key, queue[0].seq));
        let below_ceiling = startable
            .clone()
            .filter(|((group, _), _)| self.group_threads(*group) < self.limits.group_threads)
            .min_by_key(|(_, seq)| *seq);
        below_ceiling
            .or_else(|| startable.min_by_key(|(_, seq)| *seq))
            .map(|(key, _)| key)
    }

    fn take_io(&mut self) -> Held<W> {
        self.io.pop_front().expect("the IO queue has a head")
    }

    fn take_cpu(&mut self, key: (u64, bool)) -> Held<W> {
        let queue = self.cpu.get_mut(&key).expect("the queue exists");
        let held = queue.pop_front().expect("the queue has a head");
        if queue.is_empty() {
            self.cpu.remove(&key);
        }
        held
    }

    fn fits(&self, demand: &Demand) -> bool {
        self.memory_used + demand.memory_bytes <= self.limits.memory_bytes
            && self
                .limits
                .pool_memories
                .is_none_or(|total| self.pool_memories_used + demand.pool_memories <= total)
    }

    fn hold(&mut self, lane: Lane, demand: &Demand) {
        self.memory_used += demand.memory_bytes;
        self.pool_memories_used += demand.pool_memories;
        match lane {
            Lane::Io => self.io_running += 1,
            Lane::Cpu => {
                self.cpu_running += 1;
                self.long_running += usize::from(demand.long);
                *self.threads_by_group.entry(demand.group).or_default() += 1;
            }
        }
    }

    fn group_threads(&self, group: u64) -> usize {
        self.threads_by_group.get(&group).copied().unwrap_or(0)
    }

    /// Why the head of a queue waits (every job behind it waits for the same).
    fn reason(&self, lane: Lane, demand: &Demand) -> Reason {
        let lane_full = match lane {
            Lane::Cpu => self.cpu_running >= self.limits.workers,
            Lane::Io => self.io_running >= self.limits.io_slots,
        };
        if lane == Lane::Cpu && demand.long && self.long_running >= self.limits.long_threads {
            Reason::LongLane
        } else if lane_full {
            match lane {
                Lane::Cpu => Reason::EngineThreads,
                Lane::Io => Reason::IoSlots,
            }
        } else if self.memory_used + demand.memory_bytes > self.limits.memory_bytes {
            Reason::Memory
        } else if lane == Lane::Cpu && self.group_threads(demand.group) >= self.limits.group_threads
        {
            Reason::GroupThreads
        } else if !self.fits(demand) {
            Reason::PoolSlots
        } else {
            // Free to start, but behind an older job that is not (no overtaking for memory).
            Reason::Memory
        }
    }

    /// What the gate holds and lets run.
    pub fn status(&self) -> GateStatus {
        let mut waiting = Waiting::default();
        let queues = self.cpu.values().chain(std::iter::once(&self.io));
        for queue in queues.filter(|queue| !queue.is_empty()) {
            let count = match self.reason(queue[0].lane, &queue[0].demand) {
                Reason::EngineThreads => &mut waiting.engine_threads,
                Reason::IoSlots => &mut waiting.io_slots,
                Reason::Memory => &mut waiting.memory,
                Reason::PoolSlots => &mut waiting.pool_slots,
                Reason::GroupThreads => &mut waiting.task_thread_ceiling,
                Reason::LongLane => &mut waiting.long_job_lane,
            };
            *count += queue.len();
        }
        GateStatus {
            memory_bytes: self.limits.memory_bytes,
            memory_reserved_bytes: self.memory_used,
            memory_free_bytes: self.limits.memory_bytes - self.memory_used,
            pool_memories: self.limits.pool_memories.map(|total| PoolUse {
                used: self.pool_memories_used,
                total,
            }),
            task_thread_ceiling: self.limits.group_threads,
            long_jobs: LaneUse {
                running: self.long_running,
                max: self.limits.long_threads,
            },
            io_jobs: LaneUse {
                running: self.io_running,
                max: self.limits.io_slots,
            },
            waiting,
        }
    }

    /// Takes every job still waiting, oldest first (at shutdown).
    pub fn take_waiting(&mut self) -> Vec<W> {
        let mut held: Vec<Held<W>> = std::mem::take(&mut self.cpu)
            .into_values()
            .flatten()
            .chain(self.io.drain(..))
            .collect();
        held.sort_by_key(|held| held.seq);
        held.into_iter().map(|held| held.work).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn limits() -> GateLimits {
        GateLimits {
            workers: 2,
            io_slots: 10,
            memory_bytes: 1024 * MIB,
            pool_memories: Some(100),
            group_threads: 1,
            long_threads: 1,
        }
    }

    fn cpu(group: u64, memory_mib: u64) -> (Lane, Demand) {
        let demand = Demand {
            memory_bytes: memory_mib * MIB,
            pool_memories: 1,
            group,
            long: false,
        };
        (Lane::Cpu, demand)
    }

    fn io(memory_mib: u64) -> (Lane, Demand) {
        (Lane::Io, cpu(0, memory_mib).1)
    }

    fn enter(gate: &mut Gate<&'static str>, (lane, demand): (Lane, Demand), name: &'static str) {
        gate.enter(lane, demand, name);
    }

    fn leave(gate: &mut Gate<&'static str>, (lane, demand): (Lane, Demand)) {
        gate.leave(lane, &demand);
    }

    /// Every job that may start now, by name.
    fn started(gate: &mut Gate<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| gate.next().map(|(_, _, name)| name)).collect()
    }

    #[test]
    fn jobs_start_in_order_as_far_as_threads_allow() {
        let mut gate = Gate::new(GateLimits {
            group_threads: 2,
            ..limits()
        });
        for name in ["a", "b", "c"] {
            enter(&mut gate, cpu(1, 1), name);
        }
        assert_eq!(started(&mut gate), ["a", "b"]);
        assert_eq!(gate.status().waiting.engine_threads, 1);
        leave(&mut gate, cpu(1, 1));
        assert_eq!(started(&mut gate), ["c"]);
    }

    #[test]
    fn memory_is_reserved_whole_and_the_oldest_job_is_not_overtaken_for_it() {
        let mut gate = Gate::new(limits());
        enter(&mut gate, io(600), "first");
        enter(&mut gate, io(600), "big");
        enter(&mut gate, io(100), "small");
        assert_eq!(started(&mut gate), ["first"]);
        let status = gate.status();
        assert_eq!(status.memory_reserved_bytes, 600 * MIB);
        assert_eq!(status.memory_free_bytes, 424 * MIB);
        assert_eq!(status.waiting.memory, 2, "{status:?}");
        leave(&mut gate, io(600));
        assert_eq!(started(&mut gate), ["big", "small"]);
    }

    #[test]
    fn pool_slots_are_reserved_per_memory_of_the_component() {
        let mut gate = Gate::new(GateLimits {
            pool_memories: Some(3),
            ..limits()
        });
        let two_memories = (
            Lane::Io,
            Demand {
                pool_memories: 2,
                ..io(1).1
            },
        );
        enter(&mut gate, two_memories, "a");
        enter(&mut gate, two_memories, "b");
        assert_eq!(started(&mut gate), ["a"]);
        assert_eq!(gate.status().waiting.pool_slots, 1);
        leave(&mut gate, two_memories);
        assert_eq!(started(&mut gate), ["b"]);
    }

    #[test]
    fn a_task_at_its_thread_ceiling_yields_to_other_tasks_but_not_to_idle_threads() {
        let mut gate = Gate::new(limits());
        for name in ["a1", "a2", "a3"] {
            enter(&mut gate, cpu(1, 1), name);
        }
        enter(&mut gate, cpu(2, 1), "b1");
        // a1 takes one thread; the other goes to b1 although a2 came first.
        assert_eq!(started(&mut gate), ["a1", "b1"]);
        leave(&mut gate, cpu(2, 1));
        // No other task waits: task 1 may have both threads.
        assert_eq!(started(&mut gate), ["a2"]);
        enter(&mut gate, cpu(2, 1), "b2");
        assert_eq!(gate.status().waiting.engine_threads, 2);
        leave(&mut gate, cpu(1, 1));
        assert_eq!(started(&mut gate), ["b2"], "task 2 is below its ceiling");
    }

    #[test]
    fn long_jobs_never_take_more_than_their_lane() {
        let mut gate = Gate::new(GateLimits {
            group_threads: 2,
            ..limits()
        });
        let long = (
            Lane::Cpu,
            Demand {
                long: true,
                ..cpu(1, 1).1
            },
        );
        enter(&mut gate, long, "long1");
        enter(&mut gate, long, "long2");
        enter(&mut gate, cpu(1, 1), "short");
        assert_eq!(started(&mut gate), ["long1", "short"]);
        leave(&mut gate, cpu(1, 1));
        assert_eq!(
            started(&mut gate),
            Vec::<&str>::new(),
            "long2 waits for its lane"
        );
        assert_eq!(gate.status().waiting.long_job_lane, 1);
        enter(&mut gate, cpu(1, 1), "short2");
        assert_eq!(started(&mut gate), ["short2"]);
        leave(&mut gate, long);
        assert_eq!(started(&mut gate), ["long2"]);
    }

    #[test]
    fn cpu_and_io_jobs_start_in_the_order_they_came() {
        let mut gate = Gate::new(limits());
        enter(&mut gate, io(1), "io1");
        enter(&mut gate, cpu(1, 1), "cpu1");
        enter(&mut gate, io(1), "io2");
        assert_eq!(started(&mut gate), ["io1", "cpu1", "io2"]);
        let status = gate.status();
        assert_eq!(status.memory_reserved_bytes, 3 * MIB);
        assert_eq!(
            status.pool_memories,
            Some(PoolUse {
                used: 3,
                total: 100
            })
        );
    }

    #[test]
    fn a_job_starts_at_once_only_when_nothing_waits_in_its_lane_and_it_fits() {
        let mut gate = Gate::new(GateLimits {
            group_threads: 2,
            ..limits()
        });
        let (lane, demand) = cpu(1, 1);
        assert!(gate.start_now(lane, &demand));
        assert!(gate.start_now(lane, &demand));
        assert!(
            !gate.start_now(lane, &demand),
            "both engine threads are held"
        );
        enter(&mut gate, cpu(1, 1), "queued");
        leave(&mut gate, cpu(1, 1));
        assert!(
            !gate.start_now(lane, &demand),
            "a job waits in the lane: it goes first"
        );
        assert_eq!(started(&mut gate), ["queued"]);

        let (lane, big) = io(1000);
        assert!(gate.start_now(lane, &big));
        assert!(!gate.start_now(lane, &io(100).1), "memory is reserved");
        let status = gate.status();
        assert_eq!(status.memory_reserved_bytes, 1002 * MIB);
        assert_eq!(status.io_jobs.running, 1);
    }

    #[test]
    fn waiting_jobs_are_handed_back_oldest_first() {
        let mut gate = Gate::new(GateLimits {
            workers: 0,
            io_slots: 0,
            ..limits()
        });
        enter(&mut gate, cpu(2, 1), "a");
        enter(&mut gate, io(1), "b");
        enter(&mut gate, cpu(1, 1), "c");
        assert_eq!(gate.take_waiting(), ["a", "b", "c"]);
        assert!(gate.next().is_none());
    }
}
