//! The resource limiter of a job's store: one memory budget for all of the job's linear
//! memories and tables together, the peak they reached, and what it refused.

use wasmtime::ResourceLimiter;

/// A task may have this many instances, tables and memories in its store: enough for any
/// component the SDK builds (a handful of core modules, one memory), not a bomb.
const MAX_INSTANCES: usize = 64;
/// Core instances one component may instantiate (what the instance pool allows for it).
pub(crate) const MAX_CORE_INSTANCES: usize = 16;
pub(crate) const MAX_TABLES: usize = 16;
pub(crate) const MAX_MEMORIES: usize = 2;
/// Elements one table may hold (function tables of large programs have a few thousand).
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// What one table element costs the host, in bytes: a function reference is a pointer.
pub(crate) const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// Limits one job's linear memories and tables to one budget for them all (a component of
/// several core instances has a memory, and tables, per instance), remembering the peak of
/// their sum and any refusal.
pub(crate) struct JobLimiter {
    memory_limit: usize,
    /// Bytes the job's memories and tables take now.
    used: usize,
    /// Largest `used` reached, in bytes.
    pub(crate) peak_memory: usize,
    /// What the job's memories and tables would have taken together after a refused growth.
    pub(crate) refused_memory: Option<usize>,
    /// The elements a table was refused to grow to, past [`MAX_TABLE_ELEMENTS`].
    pub(crate) refused_table_elements: Option<usize>,
}

impl JobLimiter {
    pub(crate) fn new(memory_limit: usize) -> Self {
        Self {
            memory_limit,
            used: 0,
            peak_memory: 0,
            refused_memory: None,
            refused_table_elements: None,
        }
    }

    /// Grows what the job uses from `current` to `desired` bytes of one memory or table, if
    /// the sum stays within the budget.
    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let total = (self.used - current.min(self.used)).saturating_add(desired);
        if total > self.memory_limit {
            self.refused_memory = Some(total);
            return false;
        }
        self.used = total;
        self.peak_memory = self.peak_memory.max(total);
        true
    }
}

impl ResourceLimiter for JobLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Refused, the guest sees a failed `memory.grow` (-1), as the spec says; a Rust task
        // then aborts on its allocation failure, and the job reports `memory_limit`. (A
        // memory's initial size comes here too, from 0: an instance whose memories do not
        // fit the budget fails to instantiate.)
        Ok(self.grow(current, desired))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.refused_table_elements = Some(desired);
            return Ok(false);
        }
        Ok(self.grow(current * TABLE_ELEMENT_BYTES, desired * TABLE_ELEMENT_BYTES))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut limiter = JobLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(
            !limiter.memory_growing(0, 60, None).unwrap(),
            "a second memory counts with the first"
        );
        assert_eq!(limiter.refused_memory, Some(120));
        assert!(limiter.memory_growing(0, 30, None).unwrap());
        assert!(limiter.table_growing(0, 1, None).unwrap());
        assert!(!limiter.table_growing(1, 2, None).unwrap());
        assert!(limiter.memory_growing(30, 32, None).unwrap());
        assert_eq!(limiter.peak_memory, 60 + 32 + TABLE_ELEMENT_BYTES);
    }

    #[test]
    fn a_table_past_its_element_cap_is_refused_and_remembered() {
        let mut limiter = JobLimiter::new(usize::MAX);
        assert!(limiter.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        assert!(
            !limiter
                .table_growing(0, MAX_TABLE_ELEMENTS + 1, None)
                .unwrap()
        );
        assert_eq!(limiter.refused_table_elements, Some(MAX_TABLE_ELEMENTS + 1));
    }
}
