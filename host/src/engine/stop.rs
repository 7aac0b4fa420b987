//! The reasons the host stops a running job.

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
