//! One accepted job on its way through the scheduler: handed to an engine thread or the IO
//! executor, run, its outcome published; and a batch's held-back jobs, released one by one as
//! its running jobs finish.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use tracing::Instrument;

use crate::engine::{CancelToken, ErrorCode, JobError, Kind, Limits, Outcome, TaskEngine};
use crate::jobs::{JobId, JobStore};
use crate::registry::TaskVersion;
use crate::scheduler::{Finish, Scheduler, Ticket};

/// An accepted job with its place in the queue, ready to hand to the scheduler.
pub(super) struct Admitted {
    pub ticket: Ticket,
    pub kind: Kind,
    pub run: RunJob,
}

impl Admitted {
    /// Hands the job to an engine thread (`cpu`) or the IO executor (`io`).
    pub fn dispatch(self, scheduler: &Scheduler) {
        let Self { ticket, kind, run } = self;
        match kind {
            Kind::Cpu => scheduler.run_cpu(ticket, Box::new(move || run.run())),
            Kind::Io => scheduler.run_io(ticket, Box::pin(run.run_async())),
        }
    }
}

/// A batch's jobs held back by its concurrency bound, in order. Each job of the batch, as it
/// finishes, releases the next. (Held jobs do not point back here until released, so there
/// is no reference cycle.)
pub(super) struct Held {
    jobs: Mutex<VecDeque<Admitted>>,
    scheduler: Arc<Scheduler>,
}

impl Held {
    pub fn new(jobs: VecDeque<Admitted>, scheduler: Arc<Scheduler>) -> Self {
        Self {
            jobs: Mutex::new(jobs),
            scheduler,
        }
    }

    /// Hands the next held job, if any, to the scheduler; it will release the one after.
    fn release_next(self: &Arc<Self>) {
        let next = self.jobs.lock().expect("held jobs poisoned").pop_front();
        if let Some(mut next) = next {
            next.run.batch = Some(self.clone());
            next.dispatch(&self.scheduler);
        }
    }
}

/// One accepted job, as an engine thread or the IO executor runs it.
pub(super) struct RunJob {
    pub id: JobId,
    pub version: Arc<TaskVersion>,
    pub input: String,
    pub limits: Limits,
    pub cancel: CancelToken,
    pub engine: Arc<TaskEngine>,
    pub jobs: Arc<JobStore>,
    /// The rest of its batch, when it is one of a batch with a concurrency bound.
    pub batch: Option<Arc<Held>>,
}

impl RunJob {
    /// Runs the job on this (engine) thread; returns the step that publishes its outcome.
    fn run(self) -> Finish {
        if !self.jobs.mark_running(self.id) {
            return self.skipped();
        }
        let span = tracing::info_span!("job", id = %self.id, task = %self.version.name);
        let _entered = span.enter();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.engine.run(
                &self.version.compiled.task,
                &self.input,
                self.limits,
                self.cancel.clone(),
            )
        }))
        .unwrap_or_else(|_| internal_failure());
        self.publish(outcome)
    }

    /// Runs the job on the IO executor; returns the step that publishes its outcome.
    async fn run_async(self) -> Finish {
        if !self.jobs.mark_running(self.id) {
            return self.skipped();
        }
        let span = tracing::info_span!("job", id = %self.id, task = %self.version.name);
        let engine = self.engine.clone();
        let version = self.version.clone();
        let (input, limits, cancel) = (self.input.clone(), self.limits, self.cancel.clone());
        // A task of its own, so that a panic in the host ends this job, not the executor.
        let run = tokio::spawn(
            async move {
                engine
                    .run_async(&version.compiled.task, &input, limits, cancel)
                    .await
            }
            .instrument(span),
        );
        let outcome = run.await.unwrap_or_else(|_| internal_failure());
        self.publish(outcome)
    }

    /// The step for a job cancelled while it was queued: its record is final already.
    fn skipped(self) -> Finish {
        Box::new(move || self.release_next())
    }

    /// The step that records the outcome, wakes the job's waiters, and lets the next job of
    /// its batch start.
    fn publish(self, outcome: Outcome) -> Finish {
        match &outcome.result {
            Ok(_) => tracing::debug!(id = %self.id, wall = ?outcome.receipt.wall, "job succeeded"),
            Err(error) => tracing::info!(id = %self.id, code = ?error.code, "job failed"),
        }
        Box::new(move || {
            self.jobs.finish(self.id, outcome);
            self.release_next();
        })
    }

    fn release_next(&self) {
        if let Some(held) = &self.batch {
            held.release_next();
        }
    }
}

/// The outcome of a job during which the host itself failed (a bug, logged where it happened).
fn internal_failure() -> Outcome {
    Outcome::failed(JobError {
        code: ErrorCode::Internal,
        message: "the host failed while running this job; it has been logged".into(),
    })
}
