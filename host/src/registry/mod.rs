//! Task names and the component version each one runs.
//!
//! A task's name is the stem of its file, `NAME.wasm`, in a tasks directory: the operator's,
//! shared by every tenant, or a tenant's own (see [`Catalogue`]). The [`TaskLoader`] reads and
//! compiles one directory's files; the [`TaskWatcher`] runs the loaders over their whole
//! directories at start and again for every file that changes. A [`Registry`] maps each name
//! of one directory to its current [`TaskVersion`].
//!
//! A job holds its version by `Arc` for its whole life, so a reload never disturbs a job
//! already running: jobs submitted before a switch finish on the old version, jobs submitted
//! after it run the new one. A file that fails to load leaves the name's previous version
//! serving (if it had one) and records a [`Problem`] until a later save loads.

mod catalogue;
mod load;
mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch as signal;

use crate::cache::Compiled;
use crate::metrics::TaskMetrics;
use crate::tenants::TenantId;
use crate::timestamp::Timestamp;

pub use catalogue::{Catalogue, Scope};
pub use load::{TaskLoader, UploadError, is_valid_task_name};
pub use watch::{TaskWatcher, WatchError};

/// Where tasks come from and how changes to them are followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TasksSettings {
    /// The directory of `NAME.wasm` components.
    pub dir: PathBuf,
    /// Whether files are loaded again as they change.
    pub watch: bool,
    /// How long the directory must be quiet before changes are loaded.
    pub debounce: Duration,
    /// Whether starting waits until every file has loaded (else they load in the background).
    pub wait_until_loaded: bool,
}

impl Default for TasksSettings {
    /// The settings of `taskhost serve` without flags: `target/tasks` (where `tasks/build.sh`
    /// puts the example tasks), watched, reloaded after 50 ms of quiet, loaded in the
    /// background.
    fn default() -> Self {
        Self {
            dir: "target/tasks".into(),
            watch: true,
            debounce: Duration::from_millis(50),
            wait_until_loaded: false,
        }
    }
}

/// One compiled version of a task.
pub struct TaskVersion {
    /// The task's name.
    pub name: String,
    /// The tenant whose upload it is; `None` for the operator's (shared) tasks.
    pub owner: Option<TenantId>,
    /// Size of the component in bytes.
    pub size: usize,
    /// The compiled component, shared with every other name for the same bytes; its
    /// `hash` is the version's identity.
    pub(crate) compiled: Arc<Compiled>,
    /// When this version started serving under this name.
    pub serving_since: Timestamp,
    /// What its jobs record into (shared by every version of the name).
    pub(crate) metrics: Arc<TaskMetrics>,
}

impl TaskVersion {
    /// The blake3 hash of the component's bytes: the version's identity.
    pub fn hash(&self) -> blake3::Hash {
        self.compiled.hash
    }

    /// The scheduling group of the task's jobs (they share a ceiling on engine threads): the
    /// same for every version of the name in its owner's namespace.
    pub(crate) fn group(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&self.owner, &self.name).hash(&mut hasher);
        hasher.finish()
    }
}

/// Why a task's latest file is not serving.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// What went wrong, for a person.
    pub error: String,
    /// When it was found.
    pub since: Timestamp,
}

/// A task's name in the API's schema: the pattern [`is_valid_task_name`] checks, as the
/// OpenAPI component `TaskName`.
pub struct TaskName;

impl utoipa::PartialSchema for TaskName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Za-z0-9_-]{1,64}$"))
            .description(Some(
                "A task's name: 1 to 64 ASCII letters, digits, `_` and `-`",
            ))
            .into()
    }
}

impl utoipa::ToSchema for TaskName {}

/// What the registry knows of a name.
pub enum Lookup {
    /// It serves this version.
    Ready(Arc<TaskVersion>),
    /// Its file is being loaded for the first time.
    Loading,
    /// No version serves under this name; if its file failed to load, why.
    Missing(Option<Problem>),
}

/// The registry at one moment.
pub struct Snapshot {
    /// Counts changes: any change to the registry gives a larger revision.
    pub revision: u64,
    /// Every task's current version, by name.
    pub tasks: Vec<Arc<TaskVersion>>,
    /// Names whose latest file did not load, by name.
    pub problems: BTreeMap<String, Problem>,
    /// Names still loading for the first time.
    pub loading: BTreeSet<String>,
}

#[derive(Default)]
struct Tasks {
    current: HashMap<String, Arc<TaskVersion>>,
    problems: BTreeMap<String, Problem>,
    loading: BTreeSet<String>,
}

/// Task names and their current versions.
pub struct Registry {
    tasks: RwLock<Tasks>,
    revision: signal::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            tasks: RwLock::default(),
            revision: signal::Sender::new(0),
        }
    }
}

impl Registry {
    /// What the registry knows of `name`.
    pub fn lookup(&self, name: &str) -> Lookup {
        let tasks = self.read();
        if let Some(version) = tasks.current.get(name) {
            Lookup::Ready(version.clone())
        } else if tasks.loading.contains(name) {
            Lookup::Loading
        } else {
            Lookup::Missing(tasks.problems.get(name).cloned())
        }
    }

    /// The current version of the task called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<TaskVersion>> {
        self.read().current.get(name).cloned()
    }

    /// Everything the registry holds, sorted by name.
    pub fn snapshot(&self) -> Snapshot {
        // Read under the lock: the content may be newer than the revision, never older.
        let tasks = self.read();
        let mut versions: Vec<_> = tasks.current.values().cloned().collect();
        versions.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot {
            revision: self.revision(),
            tasks: versions,
            problems: tasks.problems.clone(),
            loading: tasks.loading.clone(),
        }
    }

    /// How many names are loading for the first time.
    pub fn loading(&self) -> usize {
        self.read().loading.len()
    }

    /// Counts changes: any change to the registry gives a larger revision.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// A receiver that sees every change of the revision.
    pub fn subscribe(&self) -> signal::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Marks `names` as loading for the first time (those without a version yet).
    fn start_loading(&self, names: impl IntoIterator<Item = String>) {
        self.change(|tasks| {
            for name in names {
                if !tasks.current.contains_key(&name) {
                    tasks.loading.insert(name);
                }
            }
        });
    }

    /// Makes `version` the one its name serves, clearing any problem and loading mark.
    fn install(&self, version: Arc<TaskVersion>) -> Option<Arc<TaskVersion>> {
        self.change(|tasks| {
            tasks.loading.remove(&version.name);
            tasks.problems.remove(&version.name);
            tasks.current.insert(version.name.clone(), version)
        })
    }

    /// Records that `name`'s file did not load; any version it had keeps serving.
    fn record_problem(&self, name: &str, error: String) {
        self.change(|tasks| {
            tasks.loading.remove(name);
            let problem = Problem {
                error,
                since: Timestamp::now(),
            };
            tasks.problems.insert(name.to_owned(), problem);
        });
    }

    /// Clears the problem of `name`, whose file is what it serves again.
    fn clear_problem(&self, name: &str) {
        if self.read().problems.contains_key(name) {
            self.change(|tasks| tasks.problems.remove(name));
        }
    }

    /// Forgets `name`: its file is gone. A name the registry has no record of changes
    /// nothing, so it wakes no one waiting for a change.
    fn remove(&self, name: &str) -> Option<Arc<TaskVersion>> {
        self.change_if(|tasks| {
            let loading = tasks.loading.remove(name);
            let problem = tasks.problems.remove(name).is_some();
            let version = tasks.current.remove(name);
            let changed = loading || problem || version.is_some();
            (version, changed)
        })
    }

    /// Every name the registry has any record of.
    fn names(&self) -> BTreeSet<String> {
        let tasks = self.read();
        tasks
            .current
            .keys()
            .chain(tasks.problems.keys())
            .chain(&tasks.loading)
            .cloned()
            .collect()
    }

    /// Applies `edit`, then announces a new revision. The announcement comes after the lock
    /// is released, so a waiter may look the registry up while it is woken.
    fn change<R>(&self, edit: impl FnOnce(&mut Tasks) -> R) -> R {
        self.change_if(|tasks| (edit(tasks), true))
    }

    /// Applies `edit`, which says whether it changed anything, and if it did announces a new
    /// revision as [`change`](Self::change) does.
    fn change_if<R>(&self, edit: impl FnOnce(&mut Tasks) -> (R, bool)) -> R {
        let (result, changed) = edit(&mut self.tasks.write().expect("registry poisoned"));
        if changed {
            self.revision.send_modify(|revision| *revision += 1);
        }
        result
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tasks> {
        self.tasks.read().expect("registry poisoned")
    }
}
