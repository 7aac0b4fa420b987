//! The IO executor: a tokio runtime of its own, where IO-bound jobs wait without holding an
//! engine thread. A semaphore bounds how many run at once; the rest wait their turn.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Semaphore;

use std::future::Future;

/// Runs IO-bound work on a dedicated multi-threaded tokio runtime.
pub struct IoExecutor {
    handle: Handle,
    runtime: Mutex<Option<Runtime>>,
    slots: Arc<Semaphore>,
    /// Work spawned and waiting for a slot.
    waiting: Arc<AtomicUsize>,
    max_running: usize,
    threads: usize,
}

/// A snapshot of the IO executor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IoStatus {
    /// Threads of the executor.
    pub threads: usize,
    /// IO-bound jobs running now (many may be waiting on timers or the network).
    pub running: usize,
    /// IO-bound jobs handed to the executor and waiting for a free slot.
    pub waiting: usize,
    /// Most IO-bound jobs that may run at once.
    pub max_running: usize,
}

impl IoExecutor {
    /// Starts the runtime with `threads` worker threads.
    pub fn start(threads: usize, max_running: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("taskhost-io")
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            slots: Arc::new(Semaphore::new(max_running)),
            waiting: Arc::default(),
            max_running,
            threads,
        })
    }

    /// Runs `work` once a slot is free.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let slots = self.slots.clone();
        let waiting = self.waiting.clone();
        waiting.fetch_add(1, Ordering::Relaxed);
        self.handle.spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let slot = slots.acquire_owned().await;
            waiting.fetch_sub(1, Ordering::Relaxed);
            let Ok(_slot) = slot else {
                return;
            };
            work.await;
        });
    }

    /// A snapshot of the executor.
    pub fn status(&self) -> IoStatus {
        IoStatus {
            threads: self.threads,
            running: self.max_running - self.slots.available_permits(),
            waiting: self.waiting.load(Ordering::Relaxed),
            max_running: self.max_running,
        }
    }

    /// Stops the runtime without waiting for work still on it (the scheduler drains first).
    pub fn shutdown(&self) {
        if let Some(runtime) = self
            .runtime
            .lock()
            .expect("io executor lock poisoned")
            .take()
        {
            runtime.shutdown_background();
        }
    }
}

impl Drop for IoExecutor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
