//! One accepted job on its way through the scheduler: handed to an engine thread or the IO
//! executor, run, its outcome published; and a batch's held-back jobs, released one by one as
//! its running jobs finish.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::Instrument;

use crate::cache::Compiled;
use crate::engine::{
    CompileError, ErrorCode, JobControl, JobError, Kind, Limits, Metering, Outcome, TaskEngine,
};
use crate::jobs::{JobId, JobStore};
use crate::memo::{Memo, MemoCache, MemoKey};
use crate::metrics::Metrics;
use crate::registry::TaskVersion;
use crate::scheduler::{Demand, Finish, Scheduler, Share, Ticket};

use super::dispatch::Dispatcher;

/// An accepted job with its place in the queue, ready to hand to the scheduler.
pub(super) struct Admitted {
    pub ticket: Ticket,
    pub kind: Kind,
    pub run: RunJob,
}

impl Admitted {
    /// Hands the job to an engine thread (`cpu`) or the IO executor (`io`), to start once
    /// what it may use is free. Its code must be ready: see [`Dispatcher`].
    pub fn dispatch(self, scheduler: &Scheduler) {
        let Self { ticket, kind, run } = self;
        let demand = Demand {
            memory_bytes: run.limits.memory_bytes as u64,
            pool_memories: run
                .code
                .as_ref()
                .map_or(0, |code| code.task.pool_memories()),
            group: run.version.group(),
            long: scheduler.is_long(run.limits.timeout),
            share: run.share,
        };
        match kind {
            Kind::Cpu => scheduler.run_cpu(ticket, demand, Box::new(move || run.run())),
            Kind::Io => scheduler.run_io(ticket, demand, Box::pin(run.run_async())),
        }
    }
}

/// A batch's jobs held back by its concurrency bound, in order. Each job of the batch, as it
/// finishes, releases the next. (Held jobs do not point back here until released, so there
/// is no reference cycle.)
pub(super) struct Held {
    jobs: Mutex<VecDeque<Admitted>>,
    dispatcher: Arc<Dispatcher>,
}

impl Held {
    pub fn new(jobs: VecDeque<Admitted>, dispatcher: Arc<Dispatcher>) -> Self {
        Self {
            jobs: Mutex::new(jobs),
            dispatcher,
        }
    }

    /// Hands the next held job, if any, to the scheduler; it will release the one after.
    fn release_next(self: &Arc<Self>) {
        let next = self.jobs.lock().expect("held jobs poisoned").pop_front();
        if let Some(mut next) = next {
            next.run.batch = Some(self.clone());
            self.dispatcher.dispatch(next);
        }
    }
}

/// Where a memoized job's result is kept.
pub(super) struct Memoized {
    pub cache: Arc<MemoCache>,
    pub key: MemoKey,
}

/// One accepted job, as an engine thread or the IO executor runs it.
pub(super) struct RunJob {
    pub id: JobId,
    pub version: Arc<TaskVersion>,
    /// The code it runs: its version's, or that code's variant its fuel budget needs (see
    /// [`Dispatcher`]); or why that variant could not be compiled, which the job then fails
    /// with.
    pub code: Result<Arc<Compiled>, Arc<CompileError>>,
    pub input: String,
    /// Where its result is memoized, when the job asked for that.
    pub memo: Option<Memoized>,
    pub limits: Limits,
    /// Whose it is, for sharing the engine threads and IO slots between tenants.
    pub share: Share,
    pub control: JobControl,
    pub engine: Arc<TaskEngine>,
    pub jobs: Arc<JobStore>,
    pub metrics: Arc<Metrics>,
    /// When it was accepted.
    pub accepted: Instant,
    /// The rest of its batch, when it is one of a batch with a concurrency bound.
    pub batch: Option<Arc<Held>>,
}

impl RunJob {
    /// The code the job has and the kind its fuel budget needs, when they differ: the code
    /// to compile that variant of.
    pub fn code_to_compile(&self) -> Option<(Arc<Compiled>, Metering)> {
        let code = self.code.as_ref().ok()?;
        let needed = self
            .engine
            .settings()
            .fuel_metering
            .for_budget(self.limits.fuel);
        (code.task.metering() != needed).then(|| (code.clone(), needed))
    }

    /// Runs the job on this (engine) thread; returns the step that publishes its outcome.
    fn run(self) -> Finish {
        if !self.jobs.mark_running(self.id) {
            return self.skipped();
        }
        let started = self.started(Kind::Cpu);
        if let Some(memo) = self.memoized_result() {
            return self.publish_memoized(memo, started);
        }
        let code = match &self.code {
            Ok(code) => code.clone(),
            Err(error) => {
                let outcome = uncompiled(error);
                return self.publish(outcome, started);
            }
        };
        let span = tracing::info_span!("job", id = %self.id, task = %self.version.name);
        let _entered = span.enter();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.engine
                .run(&code.task, &self.input, self.limits, self.control.clone())
        }))
        .unwrap_or_else(|_| internal_failure());
        self.publish(outcome, started)
    }

    /// Runs the job on the IO executor; returns the step that publishes its outcome.
    async fn run_async(self) -> Finish {
        if !self.jobs.mark_running(self.id) {
            return self.skipped();
        }
        let started = self.started(Kind::Io);
        if let Some(memo) = self.memoized_result() {
            return self.publish_memoized(memo, started);
        }
        let code = match &self.code {
            Ok(code) => code.clone(),
            Err(error) => {
                let outcome = uncompiled(error);
                return self.publish(outcome, started);
            }
        };
        let span = tracing::info_span!("job", id = %self.id, task = %self.version.name);
        let engine = self.engine.clone();
        let (input, limits, control) = (self.input.clone(), self.limits, self.control.clone());
        // A task of its own, so that a panic in the host ends this job, not the executor.
        let run = tokio::spawn(
            async move { engine.run_async(&code.task, &input, limits, control).await }
                .instrument(span),
        );
        let outcome = run.await.unwrap_or_else(|_| internal_failure());
        self.publish(outcome, started)
    }

    /// Records how long the job waited to start, as `kind`; returns when it started.
    fn started(&self, kind: Kind) -> Instant {
        let now = Instant::now();
        self.metrics.job_started(kind, now - self.accepted);
        now
    }

    /// The result of an earlier run this job may reuse, when it asked to be memoized.
    fn memoized_result(&self) -> Option<Arc<Memo>> {
        let memo = self.memo.as_ref()?;
        memo.cache.get(&memo.key, &self.limits)
    }

    /// The step that finishes the job with the result of an earlier run.
    fn publish_memoized(self, memo: Arc<Memo>, started: Instant) -> Finish {
        tracing::debug!(id = %self.id, from = %memo.job, "job memoized");
        let outcome = memo.outcome();
        self.version.metrics.finished(&outcome, started.elapsed());
        Box::new(move || {
            self.jobs.finish_memoized(self.id, outcome, &memo);
            self.release_next();
        })
    }

    /// The step for a job cancelled while it was queued: its record is final already.
    fn skipped(self) -> Finish {
        self.version.metrics.ended_unstarted(ErrorCode::Cancelled);
        Box::new(move || self.release_next())
    }

    /// The step that records the outcome (counted in the task's metrics first), wakes the
    /// job's waiters, and lets the next job of its batch start.
    fn publish(self, outcome: Outcome, started: Instant) -> Finish {
        self.version.metrics.finished(&outcome, started.elapsed());
        if let Some(memo) = &self.memo {
            let progress = self.control.log.progress();
            memo.cache.remember(memo.key, self.id, &outcome, progress);
        }
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

/// The outcome of a job whose code could not be compiled.
fn uncompiled(error: &CompileError) -> Outcome {
    Outcome::failed(JobError {
        code: ErrorCode::CompileFailed,
        message: format!("the fuel-metered code this job's budget needs did not compile: {error}"),
    })
}

/// The outcome of a job during which the host itself failed (a bug, logged where it happened).
fn internal_failure() -> Outcome {
    Outcome::failed(JobError {
        code: ErrorCode::Internal,
        message: "the host failed while running this job; it has been logged".into(),
    })
}
