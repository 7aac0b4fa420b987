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
    /// Bytes of each slot's memory and tables kept resident between jobs: the pages a job
    /// dirtied, up to this many, are zeroed in place (found with Linux's `PAGEMAP_SCAN`
    /// where the kernel has it) instead of being handed back to the kernel, so the next job
    /// in the slot takes no page faults on them. Costs up to this much resident memory per
    /// slot that has been used.
    pub keep_resident_bytes: usize,
}

/// The allocation strategy the engine ended up with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum Allocation {
    /// Instances come from a pre-reserved pool.
    Pooling {
        /// Instance slots in the pool.
        instances: u32,
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
            Self::Pooling { instances } => Some(*instances),
            Self::OnDemand { .. } => None,
        }
    }
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
    match Engine::new(config) {
        Ok(engine) => Ok((
            engine,
            Allocation::Pooling {
                instances: pool.instances,
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
        .linear_memory_keep_resident(pool.keep_resident_bytes)
        .table_keep_resident(pool.keep_resident_bytes)
        .pagemap_scan(Enabled::Auto);
    config
}
