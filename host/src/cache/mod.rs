//! Compiled components, addressed by content: a component's identity is the blake3 hash of
//! its bytes, so the same bytes under two names (or, later, two tenants) compile once.
//! Entries are per hash and kind of code ([`Metering`]): a task's fuel-metered variant, when
//! jobs ask for one, is an entry of its own.
//!
//! Two tiers. In memory: a bounded map from hash to compiled component, least recently used
//! out first; evicting an entry never disturbs a job, which holds its component by `Arc`. On
//! disk (module `disk`): serialized artifacts, checked before they are loaded, so a restart does
//! not compile again. A memory miss tries the disk, then compiles (and writes the disk).
//! Either way it is single-flight: callers asking for the same bytes at once wait for one
//! load or compilation.

mod disk;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use wasmtime::component::Component;

use crate::compile::{Artifact, CompileSettings, Compiler};
use crate::engine::{CompileError, CompiledTask, Manifest, Metering, TaskEngine, compiling_engine};
use crate::metrics::Metrics;
use disk::{DiskCache, Lookup};

/// A component compiled from some bytes.
pub struct Compiled {
    /// The blake3 hash of the bytes.
    pub hash: blake3::Hash,
    /// The compiled, linked component.
    pub task: CompiledTask,
    /// Where the compiled code came from.
    pub source: Source,
    /// How long compiling (or loading) took.
    pub load_time: Duration,
    /// The component's bytes, kept while this host may be asked for code of another kind
    /// than this (see [`ComponentCache::variant`]).
    wasm: Option<Arc<[u8]>>,
}

/// Where a compiled component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Compiled by Cranelift.
    Compiled,
    /// Loaded from the disk cache.
    Disk,
}

type CompileResult = Result<Arc<Compiled>, Arc<CompileError>>;

/// A component's bytes with their blake3 hash (the cache key), computed once.
#[derive(Clone, Copy)]
pub struct HashedWasm<'a> {
    bytes: &'a [u8],
    hash: blake3::Hash,
}

impl<'a> HashedWasm<'a> {
    /// Hashes `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            hash: blake3::hash(bytes),
        }
    }

    /// The bytes' blake3 hash.
    pub fn hash(&self) -> blake3::Hash {
        self.hash
    }
}

/// The memory tier of compiled components.
pub struct ComponentCache {
    engine: Arc<TaskEngine>,
    compiler: Compiler,
    disk: DiskCache,
    entries: Mutex<HashMap<(blake3::Hash, Metering), Entry>>,
    max_entries: usize,
    uses: AtomicU64,
    hits: AtomicU64,
    compiles: AtomicU64,
    evictions: AtomicU64,
    disk_hits: AtomicU64,
    disk_rejected: AtomicU64,
    disk_write_errors: AtomicU64,
    /// Whether the latest write to disk failed: the cache is degraded until one succeeds.
    disk_write_failing: AtomicBool,
    metrics: Arc<Metrics>,
}

struct Entry {
    /// Filled once, by the first caller; the others wait on it.
    slot: Arc<OnceLock<CompileResult>>,
    last_used: u64,
}

/// Counters of the cache, for `/v1/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    /// Components loaded from disk instead of compiled.
    pub disk_hits: u64,
    /// Disk artifacts that failed their checks and were deleted.
    pub disk_rejected: u64,
    /// Compiled components that could not be written to the disk tier (they compile again
    /// after a restart).
    pub disk_write_errors: u64,
    /// Whether the latest write to the disk tier failed (a full or read-only disk, say);
    /// false again once one succeeds.
    pub disk_write_failing: bool,
    /// Compiles running.
    pub compiling: usize,
    /// Compiles waiting for a slot (`--compile-jobs`).
    pub compiles_waiting: usize,
    /// Jobs waiting, queued, for code to compile: their fuel budget needs metered code their
    /// task does not have yet (`--fuel-metering on-demand`).
    pub jobs_waiting_for_code: usize,
}

impl ComponentCache {
    /// A cache holding at most `max_entries` compiled components in memory, and artifacts
    /// in `dir` (created if missing), compiling as `compile` says; load times go to
    /// `metrics`.
    pub fn open(
        engine: Arc<TaskEngine>,
        compile: CompileSettings,
        max_entries: usize,
        dir: &Path,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            disk: DiskCache::open(dir)?,
            compiler: Compiler::new(engine.clone(), compile, dir.to_owned()),
            engine,
            entries: Mutex::default(),
            max_entries: max_entries.max(1),
            uses: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            disk_rejected: AtomicU64::new(0),
            disk_write_errors: AtomicU64::new(0),
            disk_write_failing: AtomicBool::new(false),
            metrics,
        })
    }

    /// The compiled component for `wasm`, as the code jobs run by default: from memory if
    /// these bytes were compiled before, else compiled now (once, however many callers ask
    /// at the same time).
    pub fn get_or_compile(&self, wasm: &HashedWasm<'_>) -> CompileResult {
        let metering = self.engine.settings().fuel_metering.default_code();
        self.get_or_compile_as(wasm, metering)
    }

    /// `compiled`'s component as code of `metering`: `compiled` itself if it is, else its
    /// variant, from memory, the disk tier or compiled now, like
    /// [`get_or_compile`](Self::get_or_compile). Blocks for as long as a compile takes.
    pub fn variant(&self, compiled: &Arc<Compiled>, metering: Metering) -> CompileResult {
        if compiled.task.metering() == metering {
            return Ok(compiled.clone());
        }
        let Some(bytes) = &compiled.wasm else {
            let error = std::io::Error::other(format!(
                "the bytes of {} were not kept for a {metering:?} variant",
                compiled.hash
            ));
            return Err(Arc::new(CompileError::CompilerUnavailable(error)));
        };
        let wasm = HashedWasm {
            bytes,
            hash: compiled.hash,
        };
        self.get_or_compile_as(&wasm, metering)
    }

    /// The variant of metering `metering` of the component with hash `hash`, if it is in
    /// memory already (marked as just used): what [`variant`](Self::variant) returns without
    /// waiting.
    pub fn cached_variant(&self, hash: blake3::Hash, metering: Metering) -> Option<Arc<Compiled>> {
        let now = self.uses.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().expect("cache poisoned");
        let entry = entries.get_mut(&(hash, metering))?;
        let compiled = entry.slot.get()?.as_ref().ok()?.clone();
        entry.last_used = now;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(compiled)
    }

    fn get_or_compile_as(&self, wasm: &HashedWasm<'_>, metering: Metering) -> CompileResult {
        let HashedWasm { bytes, hash } = *wasm;
        let key = (hash, metering);
        let slot = self.slot(key);
        let mut compiled_here = false;
        let result = slot
            .get_or_init(|| {
                compiled_here = true;
                self.load_or_compile(hash, bytes, metering)
            })
            .clone();
        if !compiled_here {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        if result.is_err() {
            // Do not keep failures: the next attempt (after a fix on disk, say) compiles again.
            self.entries.lock().expect("cache poisoned").remove(&key);
        }
        result
    }

    /// The compiler this cache compiles with.
    pub(crate) fn compiler(&self) -> &Compiler {
        &self.compiler
    }

    /// The component as code of `metering`, if it passes validation: from the disk tier if
    /// it holds a valid artifact, else compiled (and written to the disk tier).
    fn load_or_compile(
        &self,
        hash: blake3::Hash,
        bytes: &[u8],
        metering: Metering,
    ) -> CompileResult {
        let started = Instant::now();
        let loaded = self.compiler.limits().check(bytes).and_then(|()| {
            let manifest = Manifest::read(bytes)?;
            let engine = self.engine.wasmtime(metering)?;
            let (component, source) = match self.load_from_disk(&hash, engine) {
                Some(component) => (component, Source::Disk),
                None => (self.compile(&hash, bytes, metering)?, Source::Compiled),
            };
            Ok((self.engine.link(component, manifest)?, source))
        });
        let load_time = started.elapsed();
        let (task, source) = loaded.map_err(Arc::new)?;
        self.metrics
            .component_loaded(source == Source::Disk, load_time);
        // Code of another kind may be asked for later only of the default code.
        let settings = &self.engine.settings().fuel_metering;
        let keep_bytes = settings.on_demand_code().is_some() && metering == settings.default_code();
        Ok(Arc::new(Compiled {
            hash,
            task,
            source,
            load_time,
            wasm: keep_bytes.then(|| bytes.into()),
        }))
    }

    /// The component from the disk tier, if it holds a valid artifact for `engine`.
    fn load_from_disk(&self, hash: &blake3::Hash, engine: &wasmtime::Engine) -> Option<Component> {
        match self.disk.load(hash, engine) {
            Lookup::Hit(component) => {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                Some(component)
            }
            Lookup::Miss => None,
            Lookup::Rejected => {
                self.disk_rejected.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Compiles the component to code of `metering`, and writes its artifact to the disk
    /// tier.
    fn compile(
        &self,
        hash: &blake3::Hash,
        bytes: &[u8],
        metering: Metering,
    ) -> Result<Component, CompileError> {
        self.compiles.fetch_add(1, Ordering::Relaxed);
        let engine = self.engine.wasmtime(metering)?;
        let Artifact { serialized, loaded } = self.compiler.compile(bytes, metering)?;
        let component = match loaded {
            Some(component) => component,
            None => self
                .disk
                .verify(&serialized, engine)
                .map_err(|error| self.unloadable(hash, &serialized, metering, error))?,
        };
        self.write_to_disk(hash, engine, &serialized);
        Ok(component)
    }

    /// Why a fresh artifact does not load here: the component does not fit this host's
    /// instance pool if the artifact loads in an engine of the same code without one, else
    /// the artifact loads nowhere, a problem of the host (a compiler of another version).
    fn unloadable(
        &self,
        hash: &blake3::Hash,
        artifact: &[u8],
        metering: Metering,
        error: wasmtime::Error,
    ) -> CompileError {
        let loads_without_pool = compiling_engine(self.engine.settings().code(metering))
            .is_ok_and(|engine| self.disk.verify(artifact, &engine).is_ok());
        if loads_without_pool {
            return CompileError::DoesNotFit(format!("{error:#}"));
        }
        tracing::error!(%hash, error = %format!("{error:#}"), "a compiled artifact does not load");
        CompileError::CompilerUnavailable(std::io::Error::other(format!(
            "the compiler's artifact does not load: {error:#}"
        )))
    }

    /// Best effort: a host that cannot write its cache still serves, it just compiles again
    /// after a restart.
    fn write_to_disk(&self, hash: &blake3::Hash, engine: &wasmtime::Engine, artifact: &[u8]) {
        let written = self.disk.store(hash, engine, artifact);
        self.disk_write_failing
            .store(written.is_err(), Ordering::Relaxed);
        if let Err(error) = written {
            self.disk_write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%hash, %error, "could not write the compiled component to the disk cache");
        }
    }

    /// The cache's counters (but for `jobs_waiting_for_code`, which the host counts).
    pub(crate) fn status(&self) -> CacheStatus {
        let compiles = self.compiler.status();
        CacheStatus {
            entries: self.entries.lock().expect("cache poisoned").len(),
            max_entries: self.max_entries,
            hits: self.hits.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            disk_rejected: self.disk_rejected.load(Ordering::Relaxed),
            disk_write_errors: self.disk_write_errors.load(Ordering::Relaxed),
            disk_write_failing: self.disk_write_failing.load(Ordering::Relaxed),
            compiling: compiles.running,
            compiles_waiting: compiles.waiting,
            jobs_waiting_for_code: 0,
        }
    }

    /// The slot for `key`, marked as just used; a new one (evicting the least recently used
    /// entry if full) if there is none.
    fn slot(&self, key: (blake3::Hash, Metering)) -> Arc<OnceLock<CompileResult>> {
        let now = self.uses.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().expect("cache poisoned");
        if let Some(entry) = entries.get_mut(&key) {
            entry.last_used = now;
            return entry.slot.clone();
        }
        if entries.len() >= self.max_entries {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        let slot = Arc::new(OnceLock::new());
        entries.insert(
            key,
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
    use crate::engine::{Kind, KindSource};
    use taskhost_tests::fixtures;

    /// A cache with its disk tier in a fresh directory (kept alive by the returned guard).
    fn cache(max_entries: usize) -> (ComponentCache, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(TaskEngine::for_tests());
        (
            ComponentCache::open(
                engine,
                CompileSettings::default(),
                max_entries,
                dir.path(),
                Arc::default(),
            )
            .unwrap(),
            dir,
        )
    }

    fn bytes(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    fn compile(cache: &ComponentCache, bytes: &[u8]) -> CompileResult {
        cache.get_or_compile(&HashedWasm::new(bytes))
    }

    #[test]
    fn the_same_bytes_compile_once() {
        let (cache, _dir) = cache(4);
        let noop = bytes(fixtures::NOOP);
        let first = compile(&cache, &noop).unwrap();
        let second = compile(&cache, &noop.clone()).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.hash, blake3::hash(&noop));
        let status = cache.status();
        assert_eq!((status.compiles, status.hits, status.entries), (1, 1, 1));
    }

    #[test]
    fn concurrent_first_uses_wait_for_one_compilation() {
        let (cache, _dir) = cache(4);
        let noop = bytes(fixtures::NOOP);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| compile(&cache, &noop).unwrap());
            }
        });
        let status = cache.status();
        assert_eq!((status.compiles, status.hits), (1, 7));
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted() {
        let (cache, _dir) = cache(1);
        let (noop, fib) = (bytes(fixtures::NOOP), bytes(fixtures::FIB));
        let kept = compile(&cache, &noop).unwrap();
        compile(&cache, &fib).unwrap();
        assert_eq!(cache.status().evictions, 1);
        assert_eq!(cache.status().entries, 1);
        // An evicted component still serves whoever holds it; asking again loads it from disk.
        assert_eq!(kept.hash, blake3::hash(&noop));
        let again = compile(&cache, &noop).unwrap();
        assert_eq!(again.source, Source::Disk);
        assert_eq!((cache.status().compiles, cache.status().disk_hits), (2, 1));
    }

    #[test]
    fn a_failing_disk_degrades_the_cache_until_a_write_succeeds() {
        let (cache, dir) = cache(4);
        let artifacts = dir.path().to_owned();
        // A file where the directory was: every write fails, as on a broken disk.
        std::fs::remove_dir_all(&artifacts).unwrap();
        std::fs::write(&artifacts, b"").unwrap();
        assert!(compile(&cache, &bytes(fixtures::NOOP)).is_ok());
        let status = cache.status();
        assert_eq!(
            (status.disk_write_errors, status.disk_write_failing),
            (1, true)
        );

        std::fs::remove_file(&artifacts).unwrap();
        std::fs::create_dir(&artifacts).unwrap();
        assert!(compile(&cache, &bytes(fixtures::FIB)).is_ok());
        let status = cache.status();
        assert_eq!(
            (status.disk_write_errors, status.disk_write_failing),
            (1, false)
        );
    }

    #[test]
    fn failures_are_not_kept() {
        let (cache, _dir) = cache(4);
        // An empty component: valid and compiled (the disk keeps its code), but not a task.
        let empty = b"\0asm\x0d\0\x01\0";
        assert!(compile(&cache, empty).is_err());
        assert!(compile(&cache, empty).is_err());
        let status = cache.status();
        assert_eq!((status.entries, status.hits), (0, 0));
        assert_eq!((status.compiles, status.disk_hits), (1, 1));
    }

    #[test]
    fn a_metered_variant_compiles_once_beside_the_default_code() {
        let (cache, _dir) = cache(4);
        let fib = compile(&cache, &bytes(fixtures::FIB)).unwrap();
        assert_eq!(fib.task.metering(), Metering::Unmetered);
        assert!(cache.cached_variant(fib.hash, Metering::Metered).is_none());

        let metered = cache.variant(&fib, Metering::Metered).unwrap();
        assert_eq!(metered.task.metering(), Metering::Metered);
        assert_eq!(metered.hash, fib.hash);
        let again = cache.variant(&fib, Metering::Metered).unwrap();
        assert!(Arc::ptr_eq(&metered, &again));
        let cached = cache.cached_variant(fib.hash, Metering::Metered).unwrap();
        assert!(Arc::ptr_eq(&metered, &cached));
        // The default code is its own variant.
        assert!(Arc::ptr_eq(
            &cache.variant(&fib, Metering::Unmetered).unwrap(),
            &fib
        ));
        let status = cache.status();
        assert_eq!((status.compiles, status.entries), (2, 2));
    }

    #[test]
    fn what_fails_validation_is_never_compiled() {
        let (cache, _dir) = cache(4);
        let error = compile(&cache, b"not wasm").err().unwrap();
        assert!(matches!(*error, CompileError::NotWasm(_)), "{error}");
        assert_eq!(cache.status().compiles, 0);
    }

    #[test]
    fn a_new_cache_over_the_same_directory_loads_instead_of_compiling() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(TaskEngine::for_tests());
        // spin declares its kind: the declaration survives the disk tier too.
        let spin = bytes(fixtures::SPIN);
        let first = ComponentCache::open(
            engine.clone(),
            CompileSettings::default(),
            4,
            dir.path(),
            Arc::default(),
        )
        .unwrap();
        assert_eq!(compile(&first, &spin).unwrap().source, Source::Compiled);

        let second = ComponentCache::open(
            engine,
            CompileSettings::default(),
            4,
            dir.path(),
            Arc::default(),
        )
        .unwrap();
        let loaded = compile(&second, &spin).unwrap();
        assert_eq!(loaded.source, Source::Disk);
        assert_eq!(
            loaded.task.default_kind(),
            (Kind::Cpu, KindSource::Declared)
        );
        assert_eq!(
            (second.status().compiles, second.status().disk_hits),
            (0, 1)
        );
    }

    #[test]
    fn corrupt_truncated_or_foreign_artifacts_are_deleted_and_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(TaskEngine::for_tests());
        let noop = bytes(fixtures::NOOP);
        let writer = ComponentCache::open(
            engine.clone(),
            CompileSettings::default(),
            4,
            dir.path(),
            Arc::default(),
        )
        .unwrap();
        compile(&writer, &noop).unwrap();
        drop(writer);
        let artifact = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
            .unwrap();
        let original = std::fs::read(&artifact).unwrap();
        let mut flipped = original.clone();
        flipped[original.len() / 2] ^= 0xff;
        let damages: [Vec<u8>; 3] = [
            flipped,
            original[..original.len() / 2].to_vec(),
            b"\x7fELF foreign bytes".to_vec(),
        ];
        for damaged in damages {
            std::fs::write(&artifact, &damaged).unwrap();
            let cache = ComponentCache::open(
                engine.clone(),
                CompileSettings::default(),
                4,
                dir.path(),
                Arc::default(),
            )
            .unwrap();
            let compiled = compile(&cache, &noop).unwrap();
            assert_eq!(compiled.source, Source::Compiled);
            let status = cache.status();
            assert_eq!((status.disk_rejected, status.compiles), (1, 1));
            // The recompiled artifact replaced the damaged one.
            assert_eq!(std::fs::read(&artifact).unwrap().len(), original.len());
        }
    }
}
