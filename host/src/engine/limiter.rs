//! The resource limiter of a job's store: memory and table limits, and what it refused.

use wasmtime::ResourceLimiter;

/// A task may have this many instances, tables and memories in its store: enough for any
/// component the SDK builds (a handful of core modules, one memory), not a bomb.
const MAX_INSTANCES: usize = 64;
pub(crate) const MAX_TABLES: usize = 16;
pub(crate) const MAX_MEMORIES: usize = 2;
/// Elements one table may hold (function tables of large programs have a few thousand).
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Limits one job's linear memories and tables, remembering the peak and any refusal.
pub(crate) struct JobLimiter {
    memory_limit: usize,
    /// Largest size any memory of the job reached, in bytes.
    pub(crate) peak_memory: usize,
    /// The size a refused memory growth asked for, if one was refused.
    pub(crate) refused_memory: Option<usize>,
}

impl JobLimiter {
    pub(crate) fn new(memory_limit: usize) -> Self {
        Self {
            memory_limit,
            peak_memory: 0,
            refused_memory: None,
        }
    }
}

impl ResourceLimiter for JobLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            // The guest sees a failed `memory.grow` (-1), as the spec says; a Rust task then
            // aborts on its allocation failure, and the job reports `memory_limit`.
            self.refused_memory = Some(desired);
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}
