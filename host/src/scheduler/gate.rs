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
//! - **Tenants share by weight.** Each job names its tenant's [`Share`]. Of the jobs that may
//!   start, the one whose tenant has had the least time in the lane so far, divided by its
//!   weight, starts first (a tenant's jobs keep their order): a tenant that floods the queue
//!   delays another's job by at most the jobs already running, and tenants that both keep
//!   the lane busy get its time in the ratio of their weights. A tenant that was idle starts
//!   level with the least-served tenant at work, so idling banks no credit. A tenant may
//!   also be capped at some jobs running at once in a lane.
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

/// Whose a job is, for sharing the lanes between tenants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// The tenant, as a number (any value that tells tenants apart).
    pub tenant: u64,
    /// Its weight, at least 1: of two tenants that keep a lane busy, one of weight 3 gets
    /// three times the time of one of weight 1.
    pub weight: u32,
    /// Most of the tenant's jobs running at once in the job's lane; `None`: no bound.
    pub max_running: Option<u32>,
}

impl Share {
    /// One tenant, of weight 1, unbounded: a host without tenants.
    pub const DEFAULT: Self = Self {
        tenant: 0,
        weight: 1,
        max_running: None,
    };
}

impl Default for Share {
    fn default() -> Self {
        Self::DEFAULT
    }
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
    /// Whose it is.
    pub share: Share,
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
    TenantRunning,
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
    /// Their tenant has as many jobs running in their lane as its quota allows
    /// (`max_running_cpu_jobs`, `max_running_io_jobs`).
    pub tenant_running_ceiling: usize,
}

/// A job held by the gate.
struct Held<W> {
    /// Order of arrival.
    seq: u64,
    lane: Lane,
    demand: Demand,
    work: W,
}

/// The index of a lane in per-lane arrays.
fn lane_index(lane: Lane) -> usize {
    match lane {
        Lane::Cpu => 0,
        Lane::Io => 1,
    }
}

/// What the gate knows of a tenant with jobs waiting or running, per lane.
#[derive(Clone, Copy, Default)]
struct TenantUse {
    /// Seconds of the lane its jobs have had, divided by its weight.
    served: [f64; 2],
    running: [u32; 2],
    waiting: [usize; 2],
}

impl TenantUse {
    fn active(&self, lane: usize) -> bool {
        self.running[lane] > 0 || self.waiting[lane] > 0
    }
}

/// A CPU queue: a tenant's jobs of one group and length.
type CpuKey = (u64, u64, bool);

/// Jobs waiting to start, and what the running ones hold.
pub struct Gate<W> {
    limits: GateLimits,
    next_seq: u64,
    /// CPU jobs by tenant, group and length, each queue in order of arrival.
    cpu: BTreeMap<CpuKey, VecDeque<Held<W>>>,
    /// IO jobs by tenant, each queue in order of arrival.
    io: BTreeMap<u64, VecDeque<Held<W>>>,
    /// The tenants with jobs waiting or running (forgotten when they have none).
    tenants: HashMap<u64, TenantUse>,
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
            io: BTreeMap::new(),
            tenants: HashMap::new(),
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
        let start = free && self.fits(demand) && !self.at_tenant_ceiling(lane, &demand.share);
        if start {
            self.activate(lane, &demand.share);
        }
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
        self.activate(lane, &demand.share);
        let tenant = demand.share.tenant;
        if let Some(tenant) = self.tenants.get_mut(&tenant) {
            tenant.waiting[lane_index(lane)] += 1;
        }
        match lane {
            Lane::Cpu => self
                .cpu
                .entry((tenant, demand.group, demand.long))
                .or_default()
                .push_back(held),
            Lane::Io => self.io.entry(tenant).or_default().push_back(held),
        }
    }

    /// Gives back what a job in `lane` with `demand` held, having run for `ran`: it has
    /// finished. Its tenant is charged `ran`, divided by its weight.
    pub fn leave(&mut self, lane: Lane, demand: &Demand, ran: std::time::Duration) {
        let index = lane_index(lane);
        let share = &demand.share;
        if let Some(tenant) = self.tenants.get_mut(&share.tenant) {
            tenant.running[index] -= 1;
            tenant.served[index] += ran.as_secs_f64() / f64::from(share.weight.max(1));
            if !tenant.active(0) && !tenant.active(1) {
                self.tenants.remove(&share.tenant);
            }
        }
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
        let cpu = self
            .next_cpu_queue()
            .filter(|key| self.fits(&self.cpu[key][0].demand));
        let io = self
            .next_io_queue()
            .filter(|key| self.fits(&self.io[key][0].demand));
        // The lanes are separate resources: between their picks, the older goes first.
        let held = match (cpu, io) {
            (None, None) => return None,
            (Some(key), Some(io)) if self.io[&io][0].seq < self.cpu[&key][0].seq => {
                take(&mut self.io, io)
            }
            (Some(key), _) => take(&mut self.cpu, key),
            (None, Some(io)) => take(&mut self.io, io),
        };
        if let Some(tenant) = self.tenants.get_mut(&held.demand.share.tenant) {
            tenant.waiting[lane_index(held.lane)] -= 1;
        }
        self.hold(held.lane, &held.demand);
        Some((held.lane, held.demand, held.work))
    }

    /// The CPU queue whose head starts next, if an engine thread is free for it: the fairest
    /// head (see [`Gate::fairest`]) among groups below their thread ceiling, else (no such
    /// group waiting) the fairest of all. Long jobs only while the long lane has room; a
    /// tenant's only while it is below its ceiling of running jobs.
    fn next_cpu_queue(&self) -> Option<CpuKey> {
        if self.cpu_running >= self.limits.workers {
            return None;
        }
        let long_lane_full = self.long_running >= self.limits.long_threads;
        let startable = self.cpu.iter().filter(|((_, _, long), queue)| {
            let in_long_lane = *long && long_lane_full;
            !in_long_lane && !self.at_tenant_ceiling(Lane::Cpu, &queue[0].demand.share)
        });
        let below_ceiling = self.fairest(
            Lane::Cpu,
            startable.clone().filter(|((_, group, _), _)| {
                self.group_threads(*group) < self.limits.group_threads
            }),
        );
        below_ceiling.or_else(|| self.fairest(Lane::Cpu, startable))
    }

    /// The IO queue whose head starts next, if an IO slot is free for it: the fairest head of
    /// the tenants below their ceiling of running jobs.
    fn next_io_queue(&self) -> Option<u64> {
        if self.io_running >= self.limits.io_slots {
            return None;
        }
        let startable = self
            .io
            .iter()
            .filter(|(_, queue)| !self.at_tenant_ceiling(Lane::Io, &queue[0].demand.share));
        self.fairest(Lane::Io, startable)
    }

    /// Of `queues`, the key of the one whose head is fairest to start next in `lane`: its
    /// tenant has had the least time in the lane for its weight; on a tie, the tenant with
    /// fewer jobs running (a tenant just come has none), then the oldest head.
    fn fairest<'a, K: Copy + 'a>(
        &self,
        lane: Lane,
        queues: impl Iterator<Item = (&'a K, &'a VecDeque<Held<W>>)>,
    ) -> Option<K>
    where
        W: 'a,
    {
        let index = lane_index(lane);
        let rank = |queue: &VecDeque<Held<W>>| {
            let head = &queue[0];
            let tenant = self.tenants.get(&head.demand.share.tenant);
            let served = tenant.map_or(0.0, |tenant| tenant.served[index]);
            let running = tenant.map_or(0, |tenant| tenant.running[index]);
            (served, running, head.seq)
        };
        queues
            .map(|(key, queue)| (*key, rank(queue)))
            .min_by(|(_, a), (_, b)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)))
            .map(|(key, _)| key)
    }

    /// Whether the tenant of `share` has as many jobs running in `lane` as it may.
    fn at_tenant_ceiling(&self, lane: Lane, share: &Share) -> bool {
        let running = self
            .tenants
            .get(&share.tenant)
            .map_or(0, |tenant| tenant.running[lane_index(lane)]);
        share.max_running.is_some_and(|max| running >= max)
    }

    /// Counts the tenant of `share` in for a job in `lane`. A tenant that had no job in the
    /// lane starts level with the least-served tenant at work there (it banks no credit by
    /// idling).
    fn activate(&mut self, lane: Lane, share: &Share) {
        let index = lane_index(lane);
        let idle = self
            .tenants
            .get(&share.tenant)
            .is_none_or(|tenant| !tenant.active(index));
        if idle {
            let floor = self
                .tenants
                .iter()
                .filter(|(id, tenant)| **id != share.tenant && tenant.active(index))
                .map(|(_, tenant)| tenant.served[index])
                .min_by(f64::total_cmp);
            let tenant = self.tenants.entry(share.tenant).or_default();
            if let Some(floor) = floor {
                tenant.served[index] = tenant.served[index].max(floor);
            }
        }
    }

    fn fits(&self, demand: &Demand) -> bool {
        self.memory_used + demand.memory_bytes <= self.limits.memory_bytes
            && self
                .limits
                .pool_memories
                .is_none_or(|total| self.pool_memories_used + demand.pool_memories <= total)
    }

    fn hold(&mut self, lane: Lane, demand: &Demand) {
        if let Some(tenant) = self.tenants.get_mut(&demand.share.tenant) {
            tenant.running[lane_index(lane)] += 1;
        }
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
        } else if self.at_tenant_ceiling(lane, &demand.share) {
            Reason::TenantRunning
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
        let queues = self.cpu.values().chain(self.io.values());
        for queue in queues.filter(|queue| !queue.is_empty()) {
            let count = match self.reason(queue[0].lane, &queue[0].demand) {
                Reason::EngineThreads => &mut waiting.engine_threads,
                Reason::IoSlots => &mut waiting.io_slots,
                Reason::Memory => &mut waiting.memory,
                Reason::PoolSlots => &mut waiting.pool_slots,
                Reason::GroupThreads => &mut waiting.task_thread_ceiling,
                Reason::LongLane => &mut waiting.long_job_lane,
                Reason::TenantRunning => &mut waiting.tenant_running_ceiling,
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
        self.tenants.clear();
        let mut held: Vec<Held<W>> = std::mem::take(&mut self.cpu)
            .into_values()
            .flatten()
            .chain(std::mem::take(&mut self.io).into_values().flatten())
            .collect();
        held.sort_by_key(|held| held.seq);
        held.into_iter().map(|held| held.work).collect()
    }
}

/// Takes the head of the queue `key` of `queues`, dropping the queue if that empties it.
fn take<K: Ord, W>(queues: &mut BTreeMap<K, VecDeque<Held<W>>>, key: K) -> Held<W> {
    let queue = queues.get_mut(&key).expect("the queue exists");
    let held = queue.pop_front().expect("a queue has a head");
    if queue.is_empty() {
        queues.remove(&key);
    }
    held
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
            share: Share::DEFAULT,
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
        gate.leave(lane, &demand, std::time::Duration::from_millis(10));
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

    /// A CPU job of `tenant`, of `weight`, at most `max_running` of the tenant's at once.
    fn of_tenant(tenant: u64, weight: u32, max_running: Option<u32>) -> (Lane, Demand) {
        let demand = Demand {
            share: Share {
                tenant,
                weight,
                max_running,
            },
            ..cpu(1, 1).1
        };
        (Lane::Cpu, demand)
    }

    #[test]
    fn a_flooding_tenant_delays_another_s_job_by_the_jobs_running_only() {
        let mut gate = Gate::new(GateLimits {
            group_threads: 2,
            ..limits()
        });
        let (flood, other) = (of_tenant(1, 1, None), of_tenant(2, 1, None));
        for _ in 0..100 {
            enter(&mut gate, flood, "flood");
        }
        assert_eq!(started(&mut gate), ["flood", "flood"]);
        enter(&mut gate, other, "other");
        leave(&mut gate, flood);
        assert_eq!(
            started(&mut gate),
            ["other"],
            "next, ahead of 98 older jobs"
        );
        // Served alike so far, the tenant with fewer jobs running (to be charged) goes first.
        enter(&mut gate, other, "other2");
        leave(&mut gate, other);
        assert_eq!(started(&mut gate), ["other2"]);
        leave(&mut gate, flood);
        assert_eq!(
            started(&mut gate),
            ["flood"],
            "the other has nothing waiting"
        );
    }

    #[test]
    fn tenants_that_keep_the_lane_busy_share_it_by_weight() {
        let mut gate = Gate::new(GateLimits {
            workers: 1,
            group_threads: 1,
            ..limits()
        });
        let (heavy, light) = (of_tenant(1, 3, None), of_tenant(2, 1, None));
        for _ in 0..1000 {
            enter(&mut gate, heavy, "heavy");
            enter(&mut gate, light, "light");
        }
        let mut counts = HashMap::new();
        for _ in 0..400 {
            let (lane, demand, name) = gate.next().expect("a job starts");
            *counts.entry(name).or_insert(0) += 1;
            gate.leave(lane, &demand, std::time::Duration::from_millis(10));
        }
        assert!((297..=303).contains(&counts["heavy"]), "{counts:?}");
        assert!((97..=103).contains(&counts["light"]), "{counts:?}");
    }

    #[test]
    fn a_tenant_at_its_running_ceiling_waits_and_leaves_threads_to_others() {
        let mut gate = Gate::new(GateLimits {
            group_threads: 2,
            ..limits()
        });
        let capped = of_tenant(1, 1, Some(1));
        for _ in 0..3 {
            enter(&mut gate, capped, "capped");
        }
        assert_eq!(started(&mut gate), ["capped"], "a thread stays free");
        assert_eq!(gate.status().waiting.tenant_running_ceiling, 2);
        let (lane, demand) = capped;
        assert!(!gate.start_now(lane, &demand), "not even at once");
        enter(&mut gate, of_tenant(2, 1, None), "other");
        assert_eq!(started(&mut gate), ["other"]);
        leave(&mut gate, capped);
        assert_eq!(started(&mut gate), ["capped"], "its next, one at a time");
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
