//! How instances get their memory: from a pool reserved once at start (instantiation is then
//! a few page-table operations, and the pages a job dirtied stay mapped for the next), or on
//! demand per instance.
//!
//! The pool reserves virtual address space up front: one slot per instance that may exist at
//! once, each with a linear memory reservation of about 4 GiB (so bounds checks can be
//! elided). Where the reservation fails (a `ulimit -v`, a container's limits) the engine
//! falls back to on-demand allocation and says so in the log and in `/v1/status`.

use serde::Serialize;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limiter::{MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLE_ELEMENTS, MAX_TABLES};

/// Address space one pooled instance reserves: a 4 GiB linear memory with its guard regions,
/// rounded up.
pub const POOL_SLOT_BYTES: u64 = (4 << 30) + (64 << 20);

/// Size of the instance pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// Component instances that may exist at once: one per engine thread plus one per
    /// IO-bound job that may run at once.
    pub instances: u32,
    /// Async stacks: one per IO-bound job that may run at once.
    pub async_stacks: u32,
    /// Largest linear memory of any job, in bytes.
    pub max_memory_bytes: usize,
    /// Most bytes of each slot's memory kept resident between jobs: the pages a job
    /// dirtied, up to this many, are zeroed in place (found with Linux's `PAGEMAP_SCAN`
    /// where the kernel has it) instead of being handed back to the kernel, so the next job
    /// in the slot takes no page faults on them.
    pub keep_resident_bytes: usize,
    /// Most bytes the idle slots keep resident together: each slot's share, what it keeps
    /// at most, is this divided among the slots (and no more than `keep_resident_bytes`).
    /// Every other page a job dirtied goes back to the kernel when the job ends.
    pub max_resident_bytes: usize,
}

impl Default for PoolSettings {
    /// The pool of `taskhost serve` without flags: a slot for every job that may run at once
    /// (one per engine thread, one per IO job), each with an async stack, memories up to a
    /// job's largest memory limit; idle slots keep 2 MiB resident each, 64 MiB together.
    fn default() -> Self {
        let scheduler = crate::scheduler::SchedulerSettings::default();
        let slots = u32::try_from(scheduler.workers + scheduler.max_io_running).unwrap_or(u32::MAX);
        Self {
            instances: slots,
            async_stacks: slots,
            max_memory_bytes: crate::config::LimitPolicy::DEFAULT.max_memory_bytes,
            keep_resident_bytes: 2 << 20,
            max_resident_bytes: 64 << 20,
        }
    }
}

impl PoolSettings {
    /// One of two pools sharing this pool's resident budget: the same slots, half of
    /// [`max_resident_bytes`](Self::max_resident_bytes), so that the idle slots of both
    /// together keep no more than this pool's would. (The second pool is for fuel-metered
    /// code, when only jobs with a budget run it: allocating its instances on demand instead
    /// would map and unmap a memory reservation per job, costing a short job 3x.)
    pub fn half(self) -> Self {
        Self {
            max_resident_bytes: self.max_resident_bytes / 2,
            ..self
        }
    }
}

/// Host pages are this size (and wasmtime rounds what slots keep to them).
const PAGE_BYTES: usize = 4096;

/// Memory an idle slot keeps before its tables keep a page each: more than a job of any
/// example task dirties (a no-op dirties 20 KiB).
const MIN_MEMORY_KEPT: usize = 32 << 10;

impl PoolSettings {
    /// What each idle slot keeps resident at most, in bytes: its share of the total, half
    /// for its tables (spread over the most it may have) if that comes to whole pages each,
    /// else a page per table if the share holds those and [`MIN_MEMORY_KEPT`] besides; the
    /// rest for its memory. A table that keeps nothing is decommitted after every job that
    /// used it: an `madvise`, and a TLB shootdown on every core, per table per job, which
    /// costs more than faulting in a few pages of memory. Async stacks keep nothing: a job's
    /// stack is a few pages deep and faulting them in again is cheap, while thousands of idle
    /// stacks keeping a few pages each would hold tens of MiB.
    fn resident_per_slot(&self) -> Resident {
        let pages = |bytes: usize| bytes / PAGE_BYTES * PAGE_BYTES;
        let share = self.max_resident_bytes / self.instances.max(1) as usize;
        let table = match pages(share / 2 / MAX_TABLES) {
            0 if share >= MAX_TABLES * PAGE_BYTES + MIN_MEMORY_KEPT => PAGE_BYTES,
            half => half,
        }
        .min(pages(self.keep_resident_bytes));
        Resident {
            memory: pages(share - table * MAX_TABLES).min(pages(self.keep_resident_bytes)),
            table,
        }
    }
}

/// Bytes one idle pool slot keeps resident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Resident {
    memory: usize,
    table: usize,
}

/// The allocation strategy the engine ended up with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum Allocation {
    /// Instances come from a pre-reserved pool.
    Pooling {
        /// Instance slots in the pool.
        instances: u32,
        /// Most bytes an idle slot's memory keeps resident for the next job.
        slot_keep_resident_bytes: usize,
        /// Most bytes the idle slots keep resident together (`--pool-keep-resident-mib`; each
        /// of two pools keeps half, when fuel-metered code has a pool of its own).
        max_resident_bytes: usize,
    },
    /// Instances are allocated on demand.
    OnDemand {
        /// Why the pool is not used, when one was asked for.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        fallback_reason: Option<String>,
    },
}

impl Allocation {
    /// The linear memories of the pool (one per instance slot), if instances come from one.
    pub fn pool_memories(&self) -> Option<u32> {
        match self {
            Self::Pooling { instances, .. } => Some(*instances),
            Self::OnDemand { .. } => None,
        }
    }
}

/// What the instance pool holds now, from wasmtime's own counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PoolStatus {
    /// Linear memories the running jobs use.
    pub memories_in_use: usize,
    /// Async stacks the running jobs use.
    pub stacks_in_use: usize,
    /// Idle memory slots a job has used: each keeps up to its share of pages resident.
    pub warm_idle_memories: u32,
    /// Bytes the idle slots keep resident: their memories, tables and async stacks (at most
    /// the allocation's `max_resident_bytes`).
    pub idle_resident_bytes: usize,
}

/// What the instance pools of `engines` hold now, together; `None` without a pool.
pub(crate) fn pool_status<'a>(engines: impl IntoIterator<Item = &'a Engine>) -> Option<PoolStatus> {
    engines
        .into_iter()
        .filter_map(Engine::pooling_allocator_metrics)
        .map(|metrics| PoolStatus {
            memories_in_use: metrics.memories(),
            stacks_in_use: metrics.stacks(),
            warm_idle_memories: metrics.unused_warm_memories(),
            idle_resident_bytes: metrics.unused_memory_bytes_resident()
                + metrics.unused_table_bytes_resident()
                + metrics.unused_stack_bytes_resident().unwrap_or(0),
        })
        .reduce(|one, other| PoolStatus {
            memories_in_use: one.memories_in_use + other.memories_in_use,
            stacks_in_use: one.stacks_in_use + other.stacks_in_use,
            warm_idle_memories: one.warm_idle_memories + other.warm_idle_memories,
            idle_resident_bytes: one.idle_resident_bytes + other.idle_resident_bytes,
        })
}

/// Creates the engine from `config`, with the pool if `pool` is given and its reservation
/// succeeds, else on demand.
pub(crate) fn create_engine(
    config: &mut Config,
    pool: Option<PoolSettings>,
) -> wasmtime::Result<(Engine, Allocation)> {
    let Some(pool) = pool else {
        let engine = Engine::new(config)?;
        return Ok((
            engine,
            Allocation::OnDemand {
                fallback_reason: None,
            },
        ));
    };
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(pool)));
    // A stack handed back to the pool is decommitted whole: no job's stack data reaches the
    // next job, and idle stacks hold no memory.
    config.async_stack_zeroing(true);
    match Engine::new(config) {
        Ok(engine) => Ok((
            engine,
            Allocation::Pooling {
                instances: pool.instances,
                slot_keep_resident_bytes: pool.resident_per_slot().memory,
                max_resident_bytes: pool.max_resident_bytes,
            },
        )),
        Err(error) => {
            let reason = format!("{error:#}");
            tracing::warn!(
                instances = pool.instances,
                %reason,
                "could not reserve the instance pool; falling back to on-demand allocation"
            );
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            let engine = Engine::new(config)?;
            Ok((
                engine,
                Allocation::OnDemand {
                    fallback_reason: Some(reason),
                },
            ))
        }
    }
}

/// The pool's budget agrees with what one component may use, so that a job the scheduler
/// lets start always gets its slots: every instance slot can hold a component with the most
/// core instances and tables a task may have (a core instance is only counted, and a table
/// slot reserves a few hundred KiB of address space). Linear memories, whose slots reserve
/// 4 GiB of address space each, are one per instance slot; the scheduler reserves as many
/// as each job's component instantiates before the job starts.
fn pooling_config(pool: PoolSettings) -> PoolingAllocationConfig {
    let resident = pool.resident_per_slot();
    let mut config = PoolingAllocationConfig::new();
    config
        .total_component_instances(pool.instances)
        .total_core_instances(pool.instances.saturating_mul(MAX_CORE_INSTANCES as u32))
        .total_memories(pool.instances)
        .total_tables(pool.instances.saturating_mul(MAX_TABLES as u32))
        .total_stacks(pool.async_stacks)
        .max_memory_size(pool.max_memory_bytes)
        .max_core_instances_per_component(MAX_CORE_INSTANCES as u32)
        .max_memories_per_component(MAX_MEMORIES as u32)
        .max_tables_per_component(MAX_TABLES as u32)
        .table_elements(MAX_TABLE_ELEMENTS)
        .linear_memory_keep_resident(resident.memory)
        .table_keep_resident(resident.table)
        .async_stack_keep_resident(0)
        .pagemap_scan(Enabled::Auto);
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(instances: u32, keep_kib: usize, total_mib: usize) -> PoolSettings {
        PoolSettings {
            instances,
            async_stacks: instances,
            max_memory_bytes: 256 << 20,
            keep_resident_bytes: keep_kib << 10,
            max_resident_bytes: total_mib << 20,
        }
    }

    #[test]
    fn idle_slots_together_keep_no_more_than_the_total() {
        for (instances, keep_kib, total_mib) in [
            (4098, 2048, 64),
            (600, 2048, 64),
            (66, 2048, 64),
            (1, 2048, 64),
            (4098, 0, 64),
            (10, 2048, 0),
        ] {
            let settings = pool(instances, keep_kib, total_mib);
            let resident = settings.resident_per_slot();
            let per_slot = resident.memory + MAX_TABLES * resident.table;
            assert!(
                per_slot * instances as usize <= settings.max_resident_bytes,
                "{settings:?}: {resident:?}"
            );
            assert!(
                resident.memory <= settings.keep_resident_bytes,
                "{resident:?}"
            );
            assert_eq!(resident.memory % PAGE_BYTES, 0);
            assert_eq!(resident.table % PAGE_BYTES, 0);
        }
    }

    #[test]
    fn a_small_pool_keeps_the_per_slot_most_and_a_large_one_its_share() {
        let small = pool(66, 2048, 1024).resident_per_slot();
        assert_eq!(small.memory, 2 << 20, "{small:?}");
        assert!(small.table > 0, "{small:?}");
        // The server's default pool, 2 engine threads and 256 IO slots, keeps a page per
        // table and 188 KiB of memory per slot: more than any example task dirties, so their
        // jobs give nothing back to the kernel (each `madvise` would cost every core a TLB
        // shootdown).
        let default = pool(258, 2048, 64).resident_per_slot();
        assert_eq!(
            default,
            Resident {
                memory: 188 << 10,
                table: 4 << 10
            }
        );
        // Half of that, for each of two pools: still a page per table, and 60 KiB of memory.
        let half = pool(258, 2048, 64).half().resident_per_slot();
        assert_eq!(
            half,
            Resident {
                memory: 60 << 10,
                table: 4 << 10
            }
        );
        // With 4,096 IO slots the share is too small for a table page.
        let large = pool(4098, 2048, 64).resident_per_slot();
        assert_eq!(
            large,
            Resident {
                memory: 12 << 10,
                table: 0
            }
        );
    }
}
