//! Bringing a name's entry in the registry in line with its file.
//!
//! Loading is by content: the file is read once, and the cache hashes and compiles that same
//! buffer, so a file changing while it compiles can never give a version whose hash does not
//! match its code. A file whose hash is the one already serving is left alone.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Registry, TaskVersion};
use crate::cache::{Compiled, ComponentCache, HashedWasm};
use crate::engine::CompileError;
use crate::metrics::Metrics;
use crate::tenants::TenantId;
use crate::timestamp::Timestamp;

/// Loads the component files of one directory into a registry.
pub struct TaskLoader {
    dir: PathBuf,
    /// The tenant whose directory it is; `None` for the operator's.
    owner: Option<TenantId>,
    cache: Arc<ComponentCache>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
}

impl TaskLoader {
    /// A loader of the `NAME.wasm` files in `dir`, `owner`'s tasks (`None`: the operator's),
    /// into `registry`, compiling through `cache`; each version gets its task's handles from
    /// `metrics`.
    pub fn new(
        dir: PathBuf,
        owner: Option<TenantId>,
        cache: Arc<ComponentCache>,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            dir,
            owner,
            cache,
            registry,
            metrics,
        }
    }

    /// The directory loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads every task file of the directory, and forgets names whose file is gone.
    pub fn load_all(&self) -> std::io::Result<()> {
        self.load_many(&self.mark_loading()?);
        Ok(())
    }

    /// [`load`](TaskLoader::load)s each of `names`, as many at once as the compiler compiles
    /// (this thread and more of its own).
    pub fn load_many(&self, names: &BTreeSet<String>) {
        let next = Mutex::new(names.iter());
        let work = || {
            loop {
                // The lock is released before the name loads.
                let Some(name) = next.lock().expect("names poisoned").next() else {
                    break;
                };
                self.load(name);
            }
        };
        let helpers = self
            .cache
            .compiler()
            .jobs()
            .min(names.len())
            .saturating_sub(1);
        std::thread::scope(|scope| {
            for _ in 0..helpers {
                // A thread that cannot start leaves its share to the others.
                let _ = std::thread::Builder::new()
                    .name("task-loader".into())
                    .spawn_scoped(scope, work);
            }
            work();
        });
    }

    /// Marks the directory's task files that have no version yet as loading; returns every
    /// name to load: those, and the names the registry has that may have lost their file.
    pub fn mark_loading(&self) -> std::io::Result<BTreeSet<String>> {
        let on_disk = self.names_on_disk()?;
        self.registry.start_loading(on_disk.iter().cloned());
        let mut names = self.registry.names();
        names.extend(on_disk);
        Ok(names)
    }

    /// Brings `name` in line with its file: loads a new version, keeps the current one (with
    /// a problem recorded) if the file does not load, or forgets the name if the file is gone.
    pub fn load(&self, name: &str) {
        let path = self.dir.join(format!("{name}.wasm"));
        let bytes = match self.read(&path) {
            Ok(bytes) => bytes,
            Err(Unread::Io(error)) if error.kind() == ErrorKind::NotFound => {
                if let Some(old) = self.registry.remove(name) {
                    tracing::info!(task = name, hash = %old.compiled.hash, "task removed");
                }
                return;
            }
            Err(Unread::Io(error)) => {
                return self.refuse(name, format!("cannot read {}: {error}", path.display()));
            }
            Err(Unread::TooLarge(error)) => {
                return self.refuse(name, format!("{}: {error}", path.display()));
            }
        };
        let wasm = HashedWasm::new(&bytes);
        let current = self.registry.get(name);
        if current.is_some_and(|current| current.compiled.hash == wasm.hash()) {
            self.registry.clear_problem(name);
            return;
        }
        match self.cache.get_or_compile(&wasm) {
            Ok(compiled) => {
                let version = self.version(name, bytes.len(), compiled);
                tracing::info!(
                    task = name,
                    hash = %version.compiled.hash,
                    size = version.size,
                    source = ?version.compiled.source,
                    load_ms = version.compiled.load_time.as_millis() as u64,
                    "task loaded"
                );
                if let Some(old) = self.registry.install(version) {
                    tracing::info!(task = name, old = %old.compiled.hash, "replaced the previous version");
                }
            }
            Err(error) => self.refuse(name, format!("{}: {error}", path.display())),
        }
    }

    /// The bytes of the file at `path`, unless it is larger than a component may be.
    fn read(&self, path: &Path) -> Result<Vec<u8>, Unread> {
        let file = File::open(path).map_err(Unread::Io)?;
        let size = file.metadata().map_err(Unread::Io)?.len();
        let limits = self.cache.compiler().limits();
        limits.check_size(size).map_err(Unread::TooLarge)?;
        let mut bytes = Vec::with_capacity(size as usize);
        // Should the file grow meanwhile, validation refuses what was read past the limit.
        file.take(limits.max_bytes as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(Unread::Io)?;
        Ok(bytes)
    }

    /// Makes `bytes` the task `name`, as an upload: compiled and checked first (nothing
    /// changes if they do not load), then written into the directory (temporary file, then
    /// renamed over, so the watcher never sees half a file) and installed. Returns the new
    /// version and whether it replaced one.
    pub fn upload(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Arc<TaskVersion>, bool), UploadError> {
        let compiled = self
            .cache
            .get_or_compile(&HashedWasm::new(bytes))
            .map_err(UploadError::Compile)?;
        let path = self.dir.join(format!("{name}.wasm"));
        let temporary = self
            .dir
            .join(format!(".{name}.wasm.upload-{}", compiled.hash));
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|source| {
                let _ = std::fs::remove_file(&temporary);
                UploadError::Write { path, source }
            })?;
        let version = self.version(name, bytes.len(), compiled);
        tracing::info!(task = name, hash = %version.compiled.hash, size = version.size, "task uploaded");
        let replaced = self.registry.install(version.clone()).is_some();
        Ok((version, replaced))
    }

    /// A new version of `name`, `size` bytes compiled to `compiled`, serving from now.
    fn version(&self, name: &str, size: usize, compiled: Arc<Compiled>) -> Arc<TaskVersion> {
        let metrics = match &self.owner {
            None => self.metrics.task(name),
            Some(owner) => self.metrics.task(&format!("{}/{name}", owner.as_str())),
        };
        Arc::new(TaskVersion {
            name: name.to_owned(),
            owner: self.owner.clone(),
            size,
            compiled,
            serving_since: Timestamp::now(),
            metrics,
        })
    }

    /// Deletes the task `name` and its file; false if there was neither.
    pub fn delete(&self, name: &str) -> Result<bool, std::io::Error> {
        let path = self.dir.join(format!("{name}.wasm"));
        let file_removed = match std::fs::remove_file(&path) {
            Ok(()) => true,
            Err(error) if error.kind() == ErrorKind::NotFound => false,
            Err(error) => return Err(error),
        };
        // The watcher may see the file go and forget the task first: the file still counts.
        let was_served = self.registry.remove(name).is_some();
        Ok(file_removed || was_served)
    }

    fn refuse(&self, name: &str, error: String) {
        let keeps = if self.registry.get(name).is_some() {
            "the previous version keeps serving"
        } else {
            "the task is not served"
        };
        tracing::error!(task = name, %error, "task file did not load; {keeps}");
        self.registry.record_problem(name, error);
    }

    /// The names of the task files in the directory.
    fn names_on_disk(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            match task_name(&path) {
                Some(name) => names.push(name.to_owned()),
                None if path.extension().is_some_and(|ext| ext == "wasm") => {
                    tracing::warn!(path = %path.display(), "skipped: a task name is 1-64 of [A-Za-z0-9_-]");
                }
                None => {}
            }
        }
        Ok(names)
    }
}

/// Why a task file was not read.
enum Unread {
    Io(std::io::Error),
    TooLarge(CompileError),
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The bytes are not a component of the task world.
    #[error(transparent)]
    Compile(Arc<CompileError>),
    /// The upload is over one of its tenant's quotas.
    #[error(transparent)]
    Quota(#[from] crate::tenants::QuotaExceeded),
    /// The uploading tenant was deleted meanwhile.
    #[error("the tenant has been deleted")]
    TenantGone,
    /// The tasks directory could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The task name of a component file: the stem of `NAME.wasm`, if it is a valid name.
pub(super) fn task_name(path: &Path) -> Option<&str> {
    if path.extension()? != "wasm" {
        return None;
    }
    let name = path.file_stem()?.to_str()?;
    is_valid_task_name(name).then_some(name)
}

/// Whether `name` can name a task: 1 to 64 ASCII letters, digits, `_` or `-`.
pub fn is_valid_task_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::CompileSettings;
    use crate::engine::TaskEngine;
    use crate::registry::Lookup;
    use taskhost_tests::fixtures;

    #[test]
    fn task_names_are_short_and_plain() {
        assert!(is_valid_task_name("uppercase"));
        assert!(is_valid_task_name("my-task_2"));
        assert!(!is_valid_task_name(""));
        assert!(!is_valid_task_name("a.b"));
        assert!(!is_valid_task_name("../etc"));
        assert!(!is_valid_task_name(&"x".repeat(65)));
        assert_eq!(task_name(Path::new("/t/.fib.wasm.swp")), None);
        assert_eq!(task_name(Path::new("/t/fib.wasm")), Some("fib"));
    }

    struct Fixture {
        loader: TaskLoader,
        registry: Arc<Registry>,
        cache: Arc<ComponentCache>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let tasks = dir.path().join("tasks");
        std::fs::create_dir(&tasks).unwrap();
        let engine = Arc::new(TaskEngine::for_tests());
        let cache = Arc::new(
            ComponentCache::open(
                engine,
                CompileSettings::default(),
                4,
                &dir.path().join("cache"),
                Arc::default(),
            )
            .unwrap(),
        );
        let registry = Arc::new(Registry::default());
        let loader = TaskLoader::new(tasks, None, cache.clone(), registry.clone(), Arc::default());
        Fixture {
            loader,
            registry,
            cache,
            _dir: dir,
        }
    }

    impl Fixture {
        fn write(&self, name: &str, bytes: &[u8]) {
            std::fs::write(self.loader.dir().join(name), bytes).unwrap();
        }

        fn hash(&self, name: &str) -> Option<blake3::Hash> {
            self.registry.get(name).map(|version| version.compiled.hash)
        }
    }

    fn bytes(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    #[test]
    fn a_bad_file_is_refused_and_the_rest_still_load() {
        let fixture = fixture();
        fixture.write("broken.wasm", b"not wasm");
        fixture.write("notes.txt", b"ignored");
        fixture.write("noop.wasm", &bytes(fixtures::NOOP));
        fixture.loader.load_all().unwrap();
        let snapshot = fixture.registry.snapshot();
        assert_eq!(snapshot.tasks.len(), 1);
        assert!(snapshot.problems["broken"].error.contains("broken.wasm"));
        assert!(snapshot.loading.is_empty());
        assert!(matches!(
            fixture.registry.lookup("broken"),
            Lookup::Missing(Some(_))
        ));
    }

    #[test]
    fn a_changed_file_replaces_the_version_and_a_broken_one_keeps_it() {
        let fixture = fixture();
        let (noop, fib) = (bytes(fixtures::NOOP), bytes(fixtures::FIB));
        fixture.write("task.wasm", &noop);
        fixture.loader.load_all().unwrap();
        let first = fixture.registry.get("task").unwrap();
        assert_eq!(first.compiled.hash, blake3::hash(&noop));

        fixture.write("task.wasm", &fib);
        fixture.loader.load("task");
        assert_eq!(fixture.hash("task"), Some(blake3::hash(&fib)));
        // The old version still works for whoever holds it.
        assert_eq!(first.compiled.hash, blake3::hash(&noop));

        fixture.write("task.wasm", &fib[..fib.len() / 2]);
        fixture.loader.load("task");
        assert_eq!(fixture.hash("task"), Some(blake3::hash(&fib)));
        assert!(fixture.registry.snapshot().problems.contains_key("task"));

        fixture.write("task.wasm", &fib);
        fixture.loader.load("task");
        assert!(fixture.registry.snapshot().problems.is_empty());
        // noop and fib: the half file failed validation, and fib's bytes again compiled
        // nothing.
        assert_eq!(fixture.cache.status().compiles, 2);
    }

    #[test]
    fn a_removed_file_removes_the_task() {
        let fixture = fixture();
        fixture.write("noop.wasm", &bytes(fixtures::NOOP));
        fixture.loader.load_all().unwrap();
        let before = fixture.registry.snapshot().revision;
        std::fs::remove_file(fixture.loader.dir().join("noop.wasm")).unwrap();
        fixture.loader.load_all().unwrap();
        assert!(matches!(
            fixture.registry.lookup("noop"),
            Lookup::Missing(None)
        ));
        assert!(fixture.registry.snapshot().revision > before);
    }
}
