//! The embedding facade: start a host, submit jobs, read and await their records, shut down.
//! The HTTP API is a thin layer over this; a Rust program can use it directly.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Config;
use crate::engine::{EngineError, ErrorCode, JobError, Limits, Outcome, TaskEngine};
use crate::jobs::{JobId, JobRecord, JobStore};
use crate::registry::{Registry, RegistryError, TaskVersion};
use crate::scheduler::CpuPool;

/// A request to run a task once.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// Name of the task to run.
    pub task: String,
    /// The task's input; `null` when absent.
    #[serde(default)]
    pub input: serde_json::Value,
}

/// Errors from starting a host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The wasmtime engine could not be set up.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The tasks could not be loaded.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Errors from submitting a job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// No task has this name.
    #[error("no task named {0:?}")]
    UnknownTask(String),
}

/// A running task host.
pub struct Host {
    engine: Arc<TaskEngine>,
    registry: Registry,
    jobs: Arc<JobStore>,
    pool: CpuPool,
    limits: Limits,
    max_wait: Duration,
}

impl Host {
    /// Sets up the engine, compiles the tasks in the tasks directory and starts the engine
    /// threads.
    pub fn start(config: &Config) -> Result<Self, StartError> {
        let engine = Arc::new(TaskEngine::new()?);
        let registry = Registry::load_dir(&engine, &config.tasks_dir)?;
        Ok(Self {
            engine,
            registry,
            jobs: Arc::default(),
            pool: CpuPool::start(config.workers),
            limits: Limits {
                timeout: config.job_timeout,
                memory_bytes: config.memory_limit_bytes,
            },
            max_wait: config.max_wait,
        })
    }

    /// The tasks this host serves, by name.
    pub fn tasks(&self) -> Vec<Arc<TaskVersion>> {
        self.registry.list()
    }

    /// Accepts a job and queues it; returns its record as queued.
    pub fn submit(&self, request: JobRequest) -> Result<JobRecord, SubmitError> {
        let version = self
            .registry
            .get(&request.task)
            .ok_or_else(|| SubmitError::UnknownTask(request.task.clone()))?;
        let id = JobId::new();
        let record = JobRecord::queued(id, &version.name, &version.hash.to_hex());
        self.jobs.insert(record.clone());
        let run = RunJob {
            id,
            version,
            input: request.input.to_string(),
            limits: self.limits,
            engine: self.engine.clone(),
            jobs: self.jobs.clone(),
        };
        self.pool.submit(Box::new(move || run.run()));
        Ok(record)
    }

    /// The current record of a job.
    pub fn job(&self, id: JobId) -> Option<JobRecord> {
        self.jobs.get(id)
    }

    /// The job's record once finished, or as it is after `wait` (capped at the configured
    /// maximum wait).
    pub async fn wait(&self, id: JobId, wait: Duration) -> Option<JobRecord> {
        self.jobs.wait(id, wait.min(self.max_wait)).await
    }

    /// Runs the jobs already accepted to the end, then stops the engine threads.
    pub fn shutdown(&self) {
        self.pool.shutdown();
    }
}

/// One accepted job, as an engine thread runs it.
struct RunJob {
    id: JobId,
    version: Arc<TaskVersion>,
    input: String,
    limits: Limits,
    engine: Arc<TaskEngine>,
    jobs: Arc<JobStore>,
}

impl RunJob {
    fn run(self) {
        let span = tracing::info_span!("job", id = %self.id, task = %self.version.name);
        let _entered = span.enter();
        self.jobs.mark_running(self.id);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.engine
                .run(&self.version.compiled, &self.input, self.limits)
        }))
        .unwrap_or_else(|_| {
            Outcome::failed(JobError {
                code: ErrorCode::Internal,
                message: "the host failed while running this job; it has been logged".into(),
            })
        });
        match &outcome.result {
            Ok(_) => tracing::debug!(wall = ?outcome.receipt.wall, "job succeeded"),
            Err(error) => tracing::info!(code = ?error.code, "job failed"),
        }
        self.jobs.finish(self.id, outcome);
    }
}
