//! Job records: ids, status transitions, and waiting for a job to finish.
//!
//! The store keeps every record behind a `watch` channel, so any number of waiters (HTTP
//! long-polls, the `wait_ms` of a submission) wake the moment the job's record changes.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::RwLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::engine::{JobError, JobLog, Outcome};

/// A job's id: a UUIDv7, so ids sort by submission time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(uuid::Uuid);

impl JobId {
    /// A new, unique id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(Self)
    }
}

/// Where a job is in its life. `Succeeded` and `Failed` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Accepted, waiting for an engine thread.
    Queued,
    /// Running on an engine thread.
    Running,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error.
    Failed,
}

impl JobStatus {
    /// Whether the job has finished and its record will not change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// Everything known about one job; what `GET /v1/jobs/{id}` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job's id.
    pub id: JobId,
    /// The name of the task it runs.
    pub task: String,
    /// The blake3 hash of the component it runs, in hex.
    pub hash: String,
    /// Where it is in its life.
    pub status: JobStatus,
    /// The task's output, once succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// Why it failed, once failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// What the task logged, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<JobLog>,
    /// Wall-clock time the task ran, in milliseconds, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<f64>,
}

impl JobRecord {
    /// The record of a job just accepted.
    pub fn queued(id: JobId, task: &str, hash: &str) -> Self {
        Self {
            id,
            task: task.to_owned(),
            hash: hash.to_owned(),
            status: JobStatus::Queued,
            output: None,
            error: None,
            log: None,
            wall_ms: None,
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        match outcome.result {
            Ok(output) => {
                self.status = JobStatus::Succeeded;
                self.output = Some(output);
            }
            Err(error) => {
                self.status = JobStatus::Failed;
                self.error = Some(error);
            }
        }
        self.log = Some(outcome.log);
        self.wall_ms = Some(milliseconds(outcome.receipt.wall));
    }
}

/// A duration in milliseconds, to the microsecond.
fn milliseconds(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1e3
}

/// All jobs this host knows, in memory.
#[derive(Default)]
pub struct JobStore {
    jobs: RwLock<HashMap<JobId, watch::Sender<JobRecord>>>,
}

impl JobStore {
    /// Adds a new job's record.
    pub fn insert(&self, record: JobRecord) {
        let id = record.id;
        let (sender, _) = watch::channel(record);
        self.jobs
            .write()
            .expect("job store poisoned")
            .insert(id, sender);
    }

    /// The current record of a job.
    pub fn get(&self, id: JobId) -> Option<JobRecord> {
        self.with_sender(id, |sender| sender.borrow().clone())
    }

    /// Marks a queued job as running.
    pub fn mark_running(&self, id: JobId) {
        self.with_sender(id, |sender| {
            sender.send_modify(|record| record.status = JobStatus::Running)
        });
    }

    /// Records how a job ended and wakes everyone waiting on it.
    pub fn finish(&self, id: JobId, outcome: Outcome) {
        self.with_sender(id, |sender| {
            sender.send_modify(|record| record.finish(outcome))
        });
    }

    /// The job's record once it has finished, or as it is after `timeout`; `None` if there is
    /// no such job.
    pub async fn wait(&self, id: JobId, timeout: Duration) -> Option<JobRecord> {
        let mut updates = self.with_sender(id, watch::Sender::subscribe)?;
        let finished =
            tokio::time::timeout(timeout, updates.wait_for(|record| record.status.is_final()))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|record| record.clone());
        let record = finished.unwrap_or_else(|| updates.borrow().clone());
        Some(record)
    }

    fn with_sender<T>(
        &self,
        id: JobId,
        f: impl FnOnce(&watch::Sender<JobRecord>) -> T,
    ) -> Option<T> {
        self.jobs
            .read()
            .expect("job store poisoned")
            .get(&id)
            .map(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Receipt;

    fn succeeded() -> Outcome {
        Outcome {
            result: Ok(serde_json::json!({"ok": true})),
            log: JobLog::default(),
            receipt: Receipt::default(),
        }
    }

    #[tokio::test]
    async fn wait_returns_as_soon_as_the_job_finishes() {
        let store = std::sync::Arc::new(JobStore::default());
        let id = JobId::new();
        store.insert(JobRecord::queued(id, "t", "h"));
        let waiter = tokio::spawn({
            let store = store.clone();
            async move { store.wait(id, Duration::from_secs(60)).await }
        });
        store.mark_running(id);
        store.finish(id, succeeded());
        let record = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter woke")
            .unwrap()
            .unwrap();
        assert_eq!(record.status, JobStatus::Succeeded);
        assert_eq!(record.output, Some(serde_json::json!({"ok": true})));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_gives_up_after_its_timeout_with_the_record_so_far() {
        let store = JobStore::default();
        let id = JobId::new();
        store.insert(JobRecord::queued(id, "t", "h"));
        store.mark_running(id);
        let record = store.wait(id, Duration::from_secs(5)).await.unwrap();
        assert_eq!(record.status, JobStatus::Running);
    }

    #[tokio::test]
    async fn unknown_jobs_are_none() {
        let store = JobStore::default();
        assert!(store.get(JobId::new()).is_none());
        assert!(store.wait(JobId::new(), Duration::ZERO).await.is_none());
    }
}
