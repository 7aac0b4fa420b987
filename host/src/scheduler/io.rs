//! The IO executor: a tokio runtime of its own, where IO-bound jobs wait without holding an
//! engine thread. A semaphore bounds how many run at once; the rest wait their turn, in the
//! order they came.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Work waiting for a slot.
type Waiting = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs IO-bound work on a dedicated multi-threaded tokio runtime.
pub struct IoExecutor {
    handle: Handle,
    runtime: Mutex<Option<Runtime>>,
    slots: Arc<Semaphore>,
    /// Work that found no free slot, in order; [`dispatch`] starts it as slots free up.
    queue: mpsc::UnboundedSender<Waiting>,
    /// Work handed over and waiting for a slot.
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
        let slots = Arc::new(Semaphore::new(max_running));
        let waiting = Arc::<AtomicUsize>::default();
        let (queue, queued) = mpsc::unbounded_channel();
        runtime.spawn(dispatch(queued, slots.clone(), waiting.clone()));
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            slots,
            queue,
            waiting,
            max_running,
            threads,
        })
    }

    /// Runs `work` now if a slot is free, else once every job handed over before it has
    /// started and a slot is free. (Spawning each waiting job as a task of its own would not
    /// keep this order: the runtime's threads poll new tasks in no fixed order.)
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        // Only when nothing waits: work handed over later must not overtake work waiting.
        let free_slot = match self.waiting.load(Ordering::Acquire) {
            0 => self.slots.clone().try_acquire_owned().ok(),
            _ => None,
        };
        match free_slot {
            Some(slot) => start(&self.handle, slot, work),
            None => {
                self.waiting.fetch_add(1, Ordering::AcqRel);
                // Refused only once the runtime has shut down: the work is dropped unstarted,
                // as the runtime would have dropped it.
                let _ = self.queue.send(Box::pin(work));
            }
        }
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

/// Starts the waiting work in order, each once a slot is free.
async fn dispatch(
    mut queued: mpsc::UnboundedReceiver<Waiting>,
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
) {
    while let Some(work) = queued.recv().await {
        // The semaphore is never closed, so acquiring only waits.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        waiting.fetch_sub(1, Ordering::AcqRel);
        start(&Handle::current(), slot, work);
    }
}

/// Runs `work` as a task of its own, holding `slot` until it ends.
fn start(
    handle: &Handle,
    slot: OwnedSemaphorePermit,
    work: impl Future<Output = ()> + Send + 'static,
) {
    handle.spawn(async move {
        let _slot = slot;
        work.await;
    });
}

impl Drop for IoExecutor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    #[test]
    fn work_waiting_for_a_slot_starts_in_the_order_it_came() {
        let executor = IoExecutor::start(2, 1).unwrap();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        executor.spawn(async move {
            let _ = released.await;
        });
        let (started, order) = std_mpsc::channel();
        for index in 0..50 {
            let started = started.clone();
            executor.spawn(async move { started.send(index).unwrap() });
        }
        assert_eq!(executor.status().waiting, 50);
        release.send(()).unwrap();
        let order: Vec<i32> = (0..50)
            .map(|_| order.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        assert_eq!(order, (0..50).collect::<Vec<_>>());
        assert_eq!(executor.status().waiting, 0);
    }
}
