//! Stopping a running job from outside: cancellation tokens and the reasons a job is stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Asks a job to stop. Cloning shares the token; a running job notices at its next epoch
/// tick (see [`EPOCH_TICK`](super::EPOCH_TICK)).
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// Asks the job to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the job was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why the host stopped a job: raised from the epoch callback, found again in the trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Stopped {
    /// The job ran past its deadline.
    #[error("the job ran past its deadline")]
    Timeout,
    /// The job was cancelled.
    #[error("the job was cancelled")]
    Cancelled,
}
