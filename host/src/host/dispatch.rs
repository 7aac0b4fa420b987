//! Handing accepted jobs to the scheduler once the code they run is ready: at once for nearly
//! every job; after a compile for a job whose fuel budget needs metered code its task does not
//! have yet (`--fuel-metering on-demand` compiles a task's metered variant when the first job
//! with a budget arrives). Jobs waiting for the same code wait together, for one compile,
//! queued and holding their place in the queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cache::{Compiled, ComponentCache};
use crate::engine::{CompileError, Metering};
use crate::scheduler::Scheduler;

use super::run::Admitted;

/// Hands jobs to the scheduler, compiling first what they need.
pub(super) struct Dispatcher {
    scheduler: Arc<Scheduler>,
    cache: Arc<ComponentCache>,
    /// Jobs waiting for code being compiled, by component and kind of code.
    waiting: Mutex<HashMap<(blake3::Hash, Metering), Vec<Admitted>>>,
}

impl Dispatcher {
    pub fn new(scheduler: Arc<Scheduler>, cache: Arc<ComponentCache>) -> Self {
        Self {
            scheduler,
            cache,
            waiting: Mutex::default(),
        }
    }

    /// Hands `job` to the scheduler now if its code is ready, else once it is compiled.
    pub fn dispatch(self: &Arc<Self>, mut job: Admitted) {
        let Some((base, metering)) = job.run.code_to_compile() else {
            return job.dispatch(&self.scheduler);
        };
        if let Some(code) = self.cache.cached_variant(base.hash, metering) {
            job.run.code = Ok(code);
            return job.dispatch(&self.scheduler);
        }
        let key = (base.hash, metering);
        let first = {
            let mut waiting = self.lock();
            let jobs = waiting.entry(key).or_default();
            jobs.push(job);
            jobs.len() == 1
        };
        if first {
            tracing::info!(hash = %base.hash, ?metering, "compiling a variant for a job's fuel budget");
            let dispatcher = self.clone();
            let started = std::thread::Builder::new()
                .name("taskhost-variant".into())
                .spawn(move || dispatcher.compile_then_dispatch(&base, metering));
            if let Err(error) = started {
                let error = CompileError::CompilerUnavailable(error);
                self.release(key, &Err(Arc::new(error)));
            }
        }
    }

    /// How many jobs wait for their code to compile.
    pub fn waiting(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Compiles `base`'s variant of `metering` (on this thread, through the compiler's
    /// lanes), then hands its waiting jobs on.
    fn compile_then_dispatch(&self, base: &Arc<Compiled>, metering: Metering) {
        let code = self.cache.variant(base, metering);
        if let Err(error) = &code {
            tracing::warn!(hash = %base.hash, ?metering, %error, "the variant did not compile");
        }
        self.release((base.hash, metering), &code);
    }

    /// Hands every job waiting for `key` to the scheduler with `code`: to run, or to fail at
    /// once with why it could not compile.
    fn release(
        &self,
        key: (blake3::Hash, Metering),
        code: &Result<Arc<Compiled>, Arc<CompileError>>,
    ) {
        let jobs = self.lock().remove(&key).unwrap_or_default();
        for mut job in jobs {
            job.run.code = code.clone();
            job.dispatch(&self.scheduler);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(blake3::Hash, Metering), Vec<Admitted>>> {
        self.waiting.lock().expect("dispatcher poisoned")
    }
}
