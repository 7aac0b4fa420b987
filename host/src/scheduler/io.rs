//! The IO executor: a tokio runtime of its own, where IO-bound jobs wait without holding an
//! engine thread. How many run at once, and in what order they start, the scheduler's gate
//! decides; the executor runs what it is handed.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::runtime::{Handle, Runtime};

/// Runs IO-bound work on a dedicated multi-threaded tokio runtime.
pub struct IoExecutor {
    handle: Handle,
    runtime: Mutex<Option<Runtime>>,
    running: Arc<AtomicUsize>,
    threads: usize,
}

/// A snapshot of the IO executor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IoStatus {
    /// Threads of the executor.
    pub threads: usize,
    /// IO-bound jobs running now (many may be waiting on timers or the network).
    pub running: usize,
}

impl IoExecutor {
    /// Starts the runtime with `threads` worker threads.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("taskhost-io")
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            running: Arc::default(),
            threads,
        })
    }

    /// Runs `work` as a task of its own.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let running = Running::new(&self.running);
        self.handle.spawn(async move {
            let _running = running;
            work.await;
        });
    }

    /// A snapshot of the executor.
    pub fn status(&self) -> IoStatus {
        IoStatus {
            threads: self.threads,
            running: self.running.load(Ordering::Relaxed),
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

/// Counts a piece of work as running while it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for IoExecutor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
