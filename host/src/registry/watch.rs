//! Hot reload: the tasks directories are loaded in the background at start, then watched,
//! and each changed file loaded again.
//!
//! Events arrive from `notify` (inotify on Linux) on one thread. They are gathered until the
//! directory has been quiet for the debounce time, so an editor's save (write a temporary file,
//! rename it over the old one) or a copy in many writes is loaded once, when it is complete.
//! What an event says happened is not trusted: each name it touches is simply brought in line
//! with its file as it is now (see [`TaskLoader::load`]), which is right for every sequence of
//! writes, renames and removals. A file caught half-written fails to load, the old version
//! keeps serving, and the write's next event loads it again.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::TaskLoader;
use super::load::task_name;

/// However busy the directory, changes are loaded at least this often.
const MAX_BATCH_DELAY: Duration = Duration::from_secs(2);

/// Errors from starting the watcher.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// A tasks directory could not be listed.
    #[error("cannot read the tasks directory {dir}: {source}")]
    ReadDir {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A tenant's tasks directory could not be made.
    #[error("cannot make the tasks directory {dir}: {source}")]
    CreateDir {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The loader thread could not be started.
    #[error("cannot start the task loader thread: {0}")]
    Thread(std::io::Error),
}

/// The loaders of the directories followed, by directory (as the watcher names it in events).
type Loaders = Arc<RwLock<BTreeMap<PathBuf, Arc<TaskLoader>>>>;

/// The thread that loads tasks directories and, if watching, keeps them loaded: one thread
/// and one inotify instance however many directories (the operator's and each tenant's).
pub struct TaskWatcher {
    /// Dropping it ends the watch and with it the thread; `None` if not watching.
    watcher: Option<Mutex<RecommendedWatcher>>,
    loaders: Loaders,
    /// Receives once, when the first load of every file has finished.
    loaded: Mutex<Option<Receiver<()>>>,
}

impl TaskWatcher {
    /// Marks every task file of each loader's directory as loading, then loads them on a new
    /// thread; with `watch`, that thread goes on loading files as they change, each once no
    /// event has come for `debounce`. A directory that cannot be watched is logged and served
    /// without reloading.
    pub fn start(
        loaders: Vec<Arc<TaskLoader>>,
        watch: bool,
        debounce: Duration,
    ) -> Result<Self, WatchError> {
        let (events_tx, events) = mpsc::channel();
        let watcher = if watch {
            match notify::recommended_watcher(events_tx) {
                Ok(watcher) => Some(Mutex::new(watcher)),
                Err(error) => {
                    tracing::warn!(%error, "cannot watch tasks directories; changed files load only after a restart");
                    None
                }
            }
        } else {
            None
        };
        let this = Self {
            watcher,
            loaders: Loaders::default(),
            loaded: Mutex::default(),
        };
        // Watched first, so that nothing written while the files are listed is missed.
        let mut first_load = Vec::new();
        for loader in loaders {
            this.follow_dir(loader.clone());
            first_load.push((loader.clone(), mark_loading(&loader)?));
        }
        let (loaded_tx, loaded) = mpsc::channel();
        let followed = this.loaders.clone();
        std::thread::Builder::new()
            .name("task-loader".into())
            .spawn(move || {
                for (loader, names) in first_load {
                    guarded(|| loader.load_many(&names));
                }
                let _ = loaded_tx.send(());
                follow(&followed, &events, debounce);
            })
            .map_err(WatchError::Thread)?;
        *this.loaded.lock().expect("watcher poisoned") = Some(loaded);
        Ok(this)
    }

    /// Loads `loader`'s directory now, on this thread, and follows it from now on.
    pub fn add(&self, loader: Arc<TaskLoader>) -> Result<(), WatchError> {
        self.follow_dir(loader.clone());
        loader.load_many(&mark_loading(&loader)?);
        Ok(())
    }

    /// Stops following `dir`.
    pub fn remove(&self, dir: &Path) {
        self.loaders.write().expect("watcher poisoned").remove(dir);
        if let Some(watcher) = &self.watcher {
            let _ = watcher.lock().expect("watcher poisoned").unwatch(dir);
        }
    }

    /// Whether changed files are loaded as they change.
    pub fn is_watching(&self) -> bool {
        self.watcher.is_some()
    }

    /// Blocks until the first load of every file has finished.
    pub fn wait_until_loaded(&self) {
        if let Some(loaded) = self.loaded.lock().expect("watcher poisoned").take() {
            let _ = loaded.recv();
        }
    }

    /// Routes the events of `loader`'s directory to it, and watches the directory if
    /// watching.
    fn follow_dir(&self, loader: Arc<TaskLoader>) {
        let dir = loader.dir().to_owned();
        if let Some(watcher) = &self.watcher
            && let Err(error) = watcher
                .lock()
                .expect("watcher poisoned")
                .watch(&dir, RecursiveMode::NonRecursive)
        {
            tracing::warn!(
                dir = %dir.display(),
                %error,
                "cannot watch the tasks directory; changed files load only after a restart"
            );
        }
        self.loaders
            .write()
            .expect("watcher poisoned")
            .insert(dir, loader);
    }
}

/// Marks `loader`'s files as loading; the names to load.
fn mark_loading(loader: &TaskLoader) -> Result<BTreeSet<String>, WatchError> {
    loader.mark_loading().map_err(|source| WatchError::ReadDir {
        dir: loader.dir().to_owned(),
        source,
    })
}

/// Loads changed files until the watcher is dropped (which closes `events`).
fn follow(loaders: &Loaders, events: &Receiver<notify::Result<Event>>, debounce: Duration) {
    while let Ok(first) = events.recv() {
        let mut changes = Changes::default();
        changes.note(first);
        let give_up_waiting = Instant::now() + MAX_BATCH_DELAY;
        loop {
            let quiet = debounce.min(give_up_waiting.saturating_duration_since(Instant::now()));
            match events.recv_timeout(quiet) {
                Ok(event) => changes.note(event),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        // The map is read once, so a directory added or removed meanwhile waits for the next
        // batch, and no lock is held while files load.
        let followed = loaders.read().expect("watcher poisoned").clone();
        guarded(|| changes.load(&followed));
    }
}

/// Runs `load`, logging instead of ending the thread if it panics: one bad file must not end
/// hot reload for every other.
fn guarded(load: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(load)).is_err() {
        tracing::error!("loading tasks panicked; the loader goes on with the next change");
    }
}

/// What a batch of events touched.
#[derive(Default)]
struct Changes {
    /// The task names touched, by directory.
    names: BTreeMap<PathBuf, BTreeSet<String>>,
    /// Events were lost: look at every file.
    everything: bool,
}

impl Changes {
    fn note(&mut self, event: notify::Result<Event>) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "watching the tasks directories; rescanning them");
                self.everything = true;
                return;
            }
        };
        if event.need_rescan() {
            self.everything = true;
        }
        // Opening and reading files (the loader's own reads among them) change nothing.
        if let EventKind::Access(kind) = event.kind
            && kind != AccessKind::Close(AccessMode::Write)
        {
            return;
        }
        for path in &event.paths {
            if let (Some(name), Some(dir)) = (task_name(path), path.parent()) {
                self.names
                    .entry(dir.to_owned())
                    .or_default()
                    .insert(name.to_owned());
            }
        }
    }

    fn load(self, loaders: &BTreeMap<PathBuf, Arc<TaskLoader>>) {
        if self.everything {
            for loader in loaders.values() {
                if let Err(error) = loader.load_all() {
                    tracing::error!(dir = %loader.dir().display(), %error, "cannot rescan the tasks directory");
                }
            }
            return;
        }
        for (dir, names) in &self.names {
            if let Some(loader) = loaders.get(dir) {
                loader.load_many(names);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RemoveKind};

    fn event(kind: EventKind, path: &str) -> notify::Result<Event> {
        Ok(Event::new(kind).add_path(path.into()))
    }

    #[test]
    fn events_name_the_tasks_they_touch_and_reads_are_ignored() {
        let mut changes = Changes::default();
        changes.note(event(
            EventKind::Create(CreateKind::File),
            "/t/.fib.wasm.tmp",
        ));
        changes.note(event(EventKind::Modify(ModifyKind::Any), "/t/fib.wasm"));
        changes.note(event(EventKind::Remove(RemoveKind::File), "/t/noop.wasm"));
        changes.note(event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            "/t/uppercase.wasm",
        ));
        changes.note(event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            "/t/alloc.wasm",
        ));
        assert_eq!(
            changes.names[Path::new("/t")].iter().collect::<Vec<_>>(),
            ["alloc", "fib", "noop"]
        );
        assert!(!changes.everything);
    }

    #[test]
    fn lost_events_rescan_everything() {
        let mut changes = Changes::default();
        changes.note(Err(notify::Error::generic("queue overflow")));
        assert!(changes.everything);
    }
}
