//! Hot reload: the tasks directory is loaded in the background at start, then watched, and
//! each changed file loaded again.
//!
//! Events arrive from `notify` (inotify on Linux) on one thread. They are gathered until the
//! directory has been quiet for the debounce time, so an editor's save (write a temporary file,
//! rename it over the old one) or a copy in many writes is loaded once, when it is complete.
//! What an event says happened is not trusted: each name it touches is simply brought in line
//! with its file as it is now (see [`TaskLoader::load`]), which is right for every sequence of
//! writes, renames and removals. A file caught half-written fails to load, the old version
//! keeps serving, and the write's next event loads it again.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
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
    /// The tasks directory could not be listed.
    #[error("cannot read the tasks directory {dir}: {source}")]
    ReadDir {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The loader thread could not be started.
    #[error("cannot start the task loader thread: {0}")]
    Thread(std::io::Error),
}

/// The thread that loads the tasks directory and, if watching, keeps it loaded.
pub struct TaskWatcher {
    /// Dropping it ends the watch and with it the thread.
    watcher: Option<RecommendedWatcher>,
    /// Receives once, when the first load of every file has finished.
    loaded: Mutex<Option<Receiver<()>>>,
}

impl TaskWatcher {
    /// Marks every task file as loading, then loads them on a new thread; with `watch`, that
    /// thread goes on loading files as they change, each once no event has come for
    /// `debounce`. If the directory cannot be watched, this says so in the log and serves
    /// without reloading.
    pub fn start(
        loader: Arc<TaskLoader>,
        watch: bool,
        debounce: Duration,
    ) -> Result<Self, WatchError> {
        let (events_tx, events) = mpsc::channel();
        let watcher = if watch {
            match watch_dir(loader.dir(), events_tx) {
                Ok(watcher) => Some(watcher),
                Err(error) => {
                    tracing::warn!(
                        dir = %loader.dir().display(),
                        %error,
                        "cannot watch the tasks directory; changed files load only after a restart"
                    );
                    None
                }
            }
        } else {
            None
        };
        let names = loader
            .mark_loading()
            .map_err(|source| WatchError::ReadDir {
                dir: loader.dir().to_owned(),
                source,
            })?;
        let (loaded_tx, loaded) = mpsc::channel();
        std::thread::Builder::new()
            .name("task-loader".into())
            .spawn(move || {
                guarded(|| loader.load_many(&names));
                let _ = loaded_tx.send(());
                follow(&loader, &events, debounce);
            })
            .map_err(WatchError::Thread)?;
        Ok(Self {
            watcher,
            loaded: Mutex::new(Some(loaded)),
        })
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
}

fn watch_dir(
    dir: &Path,
    events: mpsc::Sender<notify::Result<Event>>,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(events)?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Loads changed files until the watcher is dropped (which closes `events`).
fn follow(loader: &TaskLoader, events: &Receiver<notify::Result<Event>>, debounce: Duration) {
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
        guarded(|| changes.load(loader));
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
    names: BTreeSet<String>,
    /// Events were lost: look at every file.
    everything: bool,
}

impl Changes {
    fn note(&mut self, event: notify::Result<Event>) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "watching the tasks directory; rescanning it");
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
            if let Some(name) = task_name(path) {
                self.names.insert(name.to_owned());
            }
        }
    }

    fn load(self, loader: &TaskLoader) {
        if self.everything {
            if let Err(error) = loader.load_all() {
                tracing::error!(%error, "cannot rescan the tasks directory");
            }
        } else {
            loader.load_many(&self.names);
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
            changes.names.into_iter().collect::<Vec<_>>(),
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
