//! Task names and the component version each one runs.
//!
//! At start the registry compiles every `NAME.wasm` in the tasks directory; a task's name is
//! its file stem. A job holds its [`TaskVersion`] by `Arc` for its whole life, so replacing a
//! name's version never disturbs a job already running.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::cache::{Compiled, ComponentCache};
use crate::engine::CompileError;

/// One compiled version of a task.
pub struct TaskVersion {
    /// The task's name.
    pub name: String,
    /// Size of the component in bytes.
    pub size: usize,
    /// The compiled component, shared with every other name for the same bytes; its
    /// `hash` is the version's identity.
    pub compiled: Arc<Compiled>,
}

/// Errors from loading tasks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The tasks directory could not be listed.
    #[error("cannot read the tasks directory {dir}: {source}")]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A component file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A component file did not compile.
    #[error("{path}: {source}")]
    Compile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Arc<CompileError>,
    },
}

/// Task names and their current versions.
#[derive(Default)]
pub struct Registry {
    tasks: RwLock<HashMap<String, Arc<TaskVersion>>>,
}

impl Registry {
    /// Compiles every `*.wasm` file in `dir`. A file that fails to load is logged and
    /// skipped, so one bad task never keeps the others from serving.
    pub fn load_dir(cache: &ComponentCache, dir: &Path) -> Result<Self, RegistryError> {
        let registry = Self::default();
        let entries = std::fs::read_dir(dir).map_err(|source| RegistryError::ReadDir {
            dir: dir.to_owned(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| RegistryError::ReadDir {
                    dir: dir.to_owned(),
                    source,
                })?
                .path();
            let Some(name) = task_name(&path) else {
                continue;
            };
            match load_file(cache, name, &path) {
                Ok(version) => {
                    tracing::info!(
                        task = %version.name,
                        hash = %version.compiled.hash,
                        size = version.size,
                        source = ?version.compiled.source,
                        load_ms = version.compiled.load_time.as_millis() as u64,
                        "task loaded"
                    );
                    registry.insert(version);
                }
                Err(error) => tracing::error!(%error, "task not loaded"),
            }
        }
        Ok(registry)
    }

    /// The current version of the task called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<TaskVersion>> {
        self.tasks
            .read()
            .expect("registry poisoned")
            .get(name)
            .cloned()
    }

    /// How many tasks there are.
    pub fn len(&self) -> usize {
        self.tasks.read().expect("registry poisoned").len()
    }

    /// Whether there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every task's current version, sorted by name.
    pub fn list(&self) -> Vec<Arc<TaskVersion>> {
        let mut versions: Vec<_> = self
            .tasks
            .read()
            .expect("registry poisoned")
            .values()
            .cloned()
            .collect();
        versions.sort_by(|a, b| a.name.cmp(&b.name));
        versions
    }

    fn insert(&self, version: TaskVersion) {
        self.tasks
            .write()
            .expect("registry poisoned")
            .insert(version.name.clone(), Arc::new(version));
    }
}

/// The task name of a component file: the stem of `NAME.wasm`, if it is a valid name.
fn task_name(path: &Path) -> Option<&str> {
    if path.extension()? != "wasm" {
        return None;
    }
    let name = path.file_stem()?.to_str()?;
    if is_valid_task_name(name) {
        Some(name)
    } else {
        tracing::warn!(path = %path.display(), "skipped: a task name is 1-64 of [A-Za-z0-9_-]");
        None
    }
}

/// Whether `name` can name a task: 1 to 64 ASCII letters, digits, `_` or `-`.
pub fn is_valid_task_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// Reads a component once; the cache hashes and compiles that same buffer.
fn load_file(
    cache: &ComponentCache,
    name: &str,
    path: &Path,
) -> Result<TaskVersion, RegistryError> {
    let bytes = std::fs::read(path).map_err(|source| RegistryError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let compiled = cache
        .get_or_compile(&bytes)
        .map_err(|source| RegistryError::Compile {
            path: path.to_owned(),
            source,
        })?;
    Ok(TaskVersion {
        name: name.to_owned(),
        size: bytes.len(),
        compiled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TaskEngine;

    #[test]
    fn task_names_are_short_and_plain() {
        assert!(is_valid_task_name("uppercase"));
        assert!(is_valid_task_name("my-task_2"));
        assert!(!is_valid_task_name(""));
        assert!(!is_valid_task_name("a.b"));
        assert!(!is_valid_task_name("../etc"));
        assert!(!is_valid_task_name(&"x".repeat(65)));
    }

    #[test]
    fn a_bad_file_is_skipped_and_the_rest_still_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.wasm"), b"not wasm").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        let engine = std::sync::Arc::new(TaskEngine::for_tests());
        let cache = ComponentCache::open(engine, 4, &dir.path().join("cache")).unwrap();
        let registry = Registry::load_dir(&cache, dir.path()).unwrap();
        assert!(registry.is_empty());
    }
}
