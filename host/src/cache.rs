//! Compiled components, addressed by content: a component's identity is the blake3 hash of
//! its bytes, so the same bytes under two names (or, later, two tenants) compile once.
//!
//! This is the memory tier: a bounded map from hash to compiled component, least recently
//! used out first. Compilation is single-flight: callers asking for the same uncompiled
//! bytes at once wait for one compilation. Evicting an entry never disturbs a job: jobs hold
//! their component by `Arc`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::{CompileError, CompiledTask, TaskEngine};

/// A component compiled from some bytes.
pub struct Compiled {
    /// The blake3 hash of the bytes.
    pub hash: blake3::Hash,
    /// The compiled, linked component.
    pub task: CompiledTask,
    /// How long Cranelift took.
    pub compile_time: Duration,
}

type CompileResult = Result<Arc<Compiled>, Arc<CompileError>>;

/// The memory tier of compiled components.
pub struct ComponentCache {
    engine: Arc<TaskEngine>,
    entries: Mutex<HashMap<blake3::Hash, Entry>>,
    max_entries: usize,
    uses: AtomicU64,
    hits: AtomicU64,
    compiles: AtomicU64,
    evictions: AtomicU64,
}

struct Entry {
    /// Filled once, by the first caller; the others wait on it.
    slot: Arc<OnceLock<CompileResult>>,
    last_used: u64,
}

/// Counters of the cache, for `/v1/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CacheStatus {
    /// Compiled components held.
    pub entries: usize,
    /// Most components held.
    pub max_entries: usize,
    /// Requests answered without compiling.
    pub hits: u64,
    /// Compilations run.
    pub compiles: u64,
    /// Components dropped to stay within the bound.
    pub evictions: u64,
}

impl ComponentCache {
    /// An empty cache holding at most `max_entries` compiled components.
    pub fn new(engine: Arc<TaskEngine>, max_entries: usize) -> Self {
        Self {
            engine,
            entries: Mutex::default(),
            max_entries: max_entries.max(1),
            uses: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// The compiled component for `bytes`: from memory if these bytes were compiled before,
    /// else compiled now (once, however many callers ask at the same time).
    pub fn get_or_compile(&self, bytes: &[u8]) -> CompileResult {
        let hash = blake3::hash(bytes);
        let slot = self.slot(hash);
        let mut compiled_here = false;
        let result = slot
            .get_or_init(|| {
                compiled_here = true;
                self.compiles.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                self.engine
                    .compile(bytes)
                    .map(|task| {
                        Arc::new(Compiled {
                            hash,
                            task,
                            compile_time: started.elapsed(),
                        })
                    })
                    .map_err(Arc::new)
            })
            .clone();
        if !compiled_here {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        if result.is_err() {
            // Do not keep failures: the next attempt (after a fix on disk, say) compiles again.
            self.entries.lock().expect("cache poisoned").remove(&hash);
        }
        result
    }

    /// The cache's counters.
    pub fn status(&self) -> CacheStatus {
        CacheStatus {
            entries: self.entries.lock().expect("cache poisoned").len(),
            max_entries: self.max_entries,
            hits: self.hits.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// The slot for `hash`, marked as just used; a new one (evicting the least recently used
    /// entry if full) if there is none.
    fn slot(&self, hash: blake3::Hash) -> Arc<OnceLock<CompileResult>> {
        let now = self.uses.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().expect("cache poisoned");
        if let Some(entry) = entries.get_mut(&hash) {
            entry.last_used = now;
            return entry.slot.clone();
        }
        if entries.len() >= self.max_entries {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(hash, _)| *hash);
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        let slot = Arc::new(OnceLock::new());
        entries.insert(
            hash,
            Entry {
                slot: slot.clone(),
                last_used: now,
            },
        );
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskhost_tests::fixtures;

    fn cache(max_entries: usize) -> ComponentCache {
        ComponentCache::new(Arc::new(TaskEngine::for_tests()), max_entries)
    }

    fn bytes(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    #[test]
    fn the_same_bytes_compile_once() {
        let cache = cache(4);
        let noop = bytes(fixtures::NOOP);
        let first = cache.get_or_compile(&noop).unwrap();
        let second = cache.get_or_compile(&noop.clone()).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.hash, blake3::hash(&noop));
        let status = cache.status();
        assert_eq!((status.compiles, status.hits, status.entries), (1, 1, 1));
    }

    #[test]
    fn concurrent_first_uses_wait_for_one_compilation() {
        let cache = cache(4);
        let noop = bytes(fixtures::NOOP);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| cache.get_or_compile(&noop).unwrap());
            }
        });
        let status = cache.status();
        assert_eq!((status.compiles, status.hits), (1, 7));
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted() {
        let cache = cache(1);
        let (noop, fib) = (bytes(fixtures::NOOP), bytes(fixtures::FIB));
        let kept = cache.get_or_compile(&noop).unwrap();
        cache.get_or_compile(&fib).unwrap();
        assert_eq!(cache.status().evictions, 1);
        assert_eq!(cache.status().entries, 1);
        // An evicted component still serves whoever holds it; asking again recompiles.
        assert_eq!(kept.hash, blake3::hash(&noop));
        cache.get_or_compile(&noop).unwrap();
        assert_eq!(cache.status().compiles, 3);
    }

    #[test]
    fn failures_are_not_kept() {
        let cache = cache(4);
        assert!(cache.get_or_compile(b"not wasm").is_err());
        assert!(cache.get_or_compile(b"not wasm").is_err());
        let status = cache.status();
        assert_eq!((status.entries, status.compiles), (0, 2));
    }
}
