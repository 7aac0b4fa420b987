//! Job records: ids, status transitions, and waiting for a job to finish.
//!
//! The store keeps every record behind a `watch` channel, so any number of waiters (HTTP
//! long-polls, the `wait_ms` of a submission) wake the moment the job's record changes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::batches::BatchId;
use crate::engine::{CancelToken, ErrorCode, JobError, JobLog, Kind, Outcome};
use crate::timestamp::Timestamp;

crate::id::uuid_id!(
    /// A job's id: a UUIDv7, so ids sort by submission time.
    JobId
);

/// Where a job is in its life. `Succeeded` and `Failed` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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

/// What a waiter waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Until {
    /// The job has finished (the default).
    #[default]
    Finished,
    /// The job has started (or already finished, or was cancelled before it started).
    Started,
}

impl Until {
    fn reached(self, status: JobStatus) -> bool {
        match self {
            Self::Finished => status.is_final(),
            Self::Started => status != JobStatus::Queued,
        }
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
    /// Whether it runs on an engine thread (`cpu`) or the IO executor (`io`).
    pub kind: Kind,
    /// The batch it was submitted in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchId>,
    /// Where it is in its life.
    pub status: JobStatus,
    /// When it was accepted.
    pub queued_at: Timestamp,
    /// When it started running, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it finished, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
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
    /// CPU time the job used, in milliseconds, once finished: the task's code and the host
    /// calls it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<f64>,
    /// Wall-clock time the job spent in host calls (WASI, HTTP, logging, waits), in
    /// milliseconds, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_call_ms: Option<f64>,
    /// Fuel the task consumed, once finished, when the host meters fuel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_consumed: Option<u64>,
    /// Largest size the task's linear memory reached, in bytes, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<usize>,
}

impl JobRecord {
    /// The record of a job just accepted.
    pub fn queued(id: JobId, task: &str, hash: &str, kind: Kind) -> Self {
        Self {
            id,
            task: task.to_owned(),
            hash: hash.to_owned(),
            kind,
            batch: None,
            status: JobStatus::Queued,
            queued_at: Timestamp::now(),
            started_at: None,
            finished_at: None,
            output: None,
            error: None,
            log: None,
            wall_ms: None,
            cpu_ms: None,
            host_call_ms: None,
            fuel_consumed: None,
            peak_memory_bytes: None,
        }
    }

    /// Records how the job ended.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        self.finished_at = Some(Timestamp::now());
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
        self.cpu_ms = Some(milliseconds(outcome.receipt.cpu));
        self.host_call_ms = Some(milliseconds(outcome.receipt.host_calls));
        self.fuel_consumed = outcome.receipt.fuel_consumed;
        self.peak_memory_bytes = Some(outcome.receipt.peak_memory_bytes);
    }
}

/// A duration in milliseconds, to the microsecond.
fn milliseconds(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1e3
}

/// Which jobs a listing shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub status: Option<JobStatus>,
    /// Only jobs of this task.
    pub task: Option<String>,
    /// Only jobs of this batch.
    pub batch: Option<BatchId>,
}

impl JobFilter {
    fn matches(&self, record: &JobRecord) -> bool {
        self.status.is_none_or(|status| record.status == status)
            && self.task.as_ref().is_none_or(|task| record.task == *task)
            && self.batch.is_none_or(|batch| record.batch == Some(batch))
    }
}

/// What asking a job to stop did.
#[derive(Clone, Debug, PartialEq)]
pub enum Cancelled {
    /// The job had not started: it is now failed with `cancelled`.
    BeforeStart(JobRecord),
    /// The job is running: it stops at its next epoch tick.
    Stopping,
    /// The job had already finished; nothing changed.
    AlreadyFinished(JobRecord),
}

/// All jobs this host knows, in memory: every job not yet finished, and the most recent
/// finished ones (the oldest are forgotten past a bound, so memory stays bounded).
pub struct JobStore {
    /// By id, so by submission time (ids are UUIDv7).
    jobs: RwLock<BTreeMap<JobId, Entry>>,
    /// Finished jobs, oldest first.
    finished: Mutex<VecDeque<JobId>>,
    max_finished: usize,
}

struct Entry {
    record: watch::Sender<JobRecord>,
    cancel: CancelToken,
}

impl JobStore {
    /// An empty store that keeps the records of at most `max_finished` finished jobs.
    pub fn new(max_finished: usize) -> Self {
        Self {
            jobs: RwLock::default(),
            finished: Mutex::default(),
            max_finished,
        }
    }

    /// Adds a new job's record; the token stops it once it runs.
    pub fn insert(&self, record: JobRecord, cancel: CancelToken) {
        let id = record.id;
        let (record, _) = watch::channel(record);
        self.jobs
            .write()
            .expect("job store poisoned")
            .insert(id, Entry { record, cancel });
    }

    /// The current record of a job.
    pub fn get(&self, id: JobId) -> Option<JobRecord> {
        self.with_entry(id, |entry| entry.record.borrow().clone())
    }

    /// Up to `limit` records matching `filter`, newest first, submitted before `before` (a
    /// job id: the last of the previous page) if given.
    pub fn list(&self, filter: &JobFilter, before: Option<JobId>, limit: usize) -> Vec<JobRecord> {
        let jobs = self.jobs.read().expect("job store poisoned");
        let older = match before {
            Some(before) => jobs.range(..before),
            None => jobs.range(..),
        };
        older
            .rev()
            .map(|(_, entry)| entry.record.borrow())
            .filter(|record| filter.matches(record))
            .take(limit)
            .map(|record| record.clone())
            .collect()
    }

    /// Marks a queued job as running; false if it is no longer queued (it was cancelled).
    pub fn mark_running(&self, id: JobId) -> bool {
        self.with_entry(id, |entry| {
            entry.record.send_if_modified(|record| {
                let queued = record.status == JobStatus::Queued;
                if queued {
                    record.status = JobStatus::Running;
                    record.started_at = Some(Timestamp::now());
                }
                queued
            })
        })
        .unwrap_or(false)
    }

    /// Records how a job ended and wakes everyone waiting on it.
    pub fn finish(&self, id: JobId, outcome: Outcome) {
        self.with_entry(id, |entry| {
            entry.record.send_modify(|record| record.finish(outcome))
        });
        self.retire(id);
    }

    /// Asks a job to stop: a queued job fails with `cancelled` at once, a running one at its
    /// next epoch tick. `None` if there is no such job.
    pub fn cancel(&self, id: JobId) -> Option<Cancelled> {
        let cancelled = self.with_entry(id, cancel_entry)?;
        if let Cancelled::BeforeStart(_) = cancelled {
            self.retire(id);
        }
        Some(cancelled)
    }

    /// Cancels every job that has not finished; returns how many there were.
    pub fn cancel_all(&self) -> usize {
        let outcomes: Vec<(JobId, Cancelled)> = self
            .jobs
            .read()
            .expect("job store poisoned")
            .iter()
            .map(|(id, entry)| (*id, cancel_entry(entry)))
            .collect();
        let mut count = 0;
        for (id, cancelled) in outcomes {
            match cancelled {
                Cancelled::BeforeStart(_) => self.retire(id),
                Cancelled::Stopping => {}
                Cancelled::AlreadyFinished(_) => continue,
            }
            count += 1;
        }
        count
    }

    /// Counts a job as finished, forgetting the oldest finished job past the bound.
    fn retire(&self, id: JobId) {
        let forgotten = {
            let mut finished = self.finished.lock().expect("job store poisoned");
            finished.push_back(id);
            (finished.len() > self.max_finished)
                .then(|| finished.pop_front())
                .flatten()
        };
        if let Some(forgotten) = forgotten {
            self.jobs
                .write()
                .expect("job store poisoned")
                .remove(&forgotten);
        }
    }

    /// The job's record once it has reached `until`, or as it is after `timeout`; `None` if
    /// there is no such job.
    pub async fn wait(&self, id: JobId, until: Until, timeout: Duration) -> Option<JobRecord> {
        let mut updates = self.with_entry(id, |entry| entry.record.subscribe())?;
        let finished = tokio::time::timeout(
            timeout,
            updates.wait_for(|record| until.reached(record.status)),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|record| record.clone());
        let record = finished.unwrap_or_else(|| updates.borrow().clone());
        Some(record)
    }

    fn with_entry<T>(&self, id: JobId, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        self.jobs
            .read()
            .expect("job store poisoned")
            .get(&id)
            .map(f)
    }
}

/// Decides from the record's status first, then signals the token: signalled first, a
/// running job could stop and finish its record before the status is read, and its own
/// cancellation would be reported as "already finished".
fn cancel_entry(entry: &Entry) -> Cancelled {
    let mut outcome = Cancelled::Stopping;
    entry.record.send_if_modified(|record| match record.status {
        JobStatus::Queued => {
            record.finish(Outcome::failed(JobError {
                code: ErrorCode::Cancelled,
                message: "the job was cancelled before it started".into(),
            }));
            outcome = Cancelled::BeforeStart(record.clone());
            true
        }
        JobStatus::Running => false,
        JobStatus::Succeeded | JobStatus::Failed => {
            outcome = Cancelled::AlreadyFinished(record.clone());
            false
        }
    });
    if !matches!(outcome, Cancelled::AlreadyFinished(_)) {
        entry.cancel.cancel();
    }
    outcome
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

    /// A task waiting (up to a minute) for job `id` to reach `until`.
    fn spawn_waiter(
        store: &std::sync::Arc<JobStore>,
        id: JobId,
        until: Until,
    ) -> tokio::task::JoinHandle<Option<JobRecord>> {
        let store = store.clone();
        tokio::spawn(async move { store.wait(id, until, Duration::from_secs(60)).await })
    }

    /// What a waiter returned, once it woke (within ten seconds).
    async fn woken(waiter: tokio::task::JoinHandle<Option<JobRecord>>) -> JobRecord {
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter woke")
            .unwrap()
            .unwrap()
    }

    fn store_with_queued_job() -> (JobStore, JobId) {
        let store = JobStore::new(100);
        let id = JobId::new();
        store.insert(
            JobRecord::queued(id, "t", "h", Kind::Cpu),
            CancelToken::default(),
        );
        (store, id)
    }

    #[test]
    fn cancelling_a_queued_job_fails_it_at_once_and_it_never_runs() {
        let (store, id) = store_with_queued_job();
        let Some(Cancelled::BeforeStart(record)) = store.cancel(id) else {
            panic!("expected the queued job to be cancelled");
        };
        assert_eq!(record.status, JobStatus::Failed);
        assert_eq!(record.error.unwrap().code, ErrorCode::Cancelled);
        assert!(!store.mark_running(id), "a cancelled job must not start");
    }

    #[test]
    fn cancelling_a_running_job_signals_its_token() {
        let store = JobStore::new(100);
        let id = JobId::new();
        let token = CancelToken::default();
        store.insert(JobRecord::queued(id, "t", "h", Kind::Cpu), token.clone());
        assert!(store.mark_running(id));
        assert_eq!(store.cancel(id), Some(Cancelled::Stopping));
        assert!(token.is_cancelled());
        assert_eq!(store.get(id).unwrap().status, JobStatus::Running);
    }

    #[test]
    fn cancelling_a_finished_job_changes_nothing() {
        let (store, id) = store_with_queued_job();
        store.mark_running(id);
        store.finish(id, succeeded());
        let Some(Cancelled::AlreadyFinished(record)) = store.cancel(id) else {
            panic!("expected the job to be already finished");
        };
        assert_eq!(record.status, JobStatus::Succeeded);
        assert_eq!(store.cancel_all(), 0);
    }

    #[tokio::test]
    async fn wait_returns_as_soon_as_the_job_finishes() {
        let (store, id) = store_with_queued_job();
        let store = std::sync::Arc::new(store);
        let waiter = spawn_waiter(&store, id, Until::Finished);
        store.mark_running(id);
        store.finish(id, succeeded());
        let record = woken(waiter).await;
        assert_eq!(record.status, JobStatus::Succeeded);
        assert_eq!(record.output, Some(serde_json::json!({"ok": true})));
    }

    #[test]
    fn only_the_newest_finished_jobs_are_kept() {
        let store = JobStore::new(2);
        let ids: Vec<JobId> = (0..3).map(|_| JobId::new()).collect();
        for id in &ids {
            store.insert(
                JobRecord::queued(*id, "t", "h", Kind::Cpu),
                CancelToken::default(),
            );
        }
        let running = JobId::new();
        store.insert(
            JobRecord::queued(running, "t", "h", Kind::Cpu),
            CancelToken::default(),
        );
        store.mark_running(running);
        for id in &ids {
            store.mark_running(*id);
            store.finish(*id, succeeded());
        }
        assert!(
            store.get(ids[0]).is_none(),
            "the oldest finished job is forgotten"
        );
        assert!(store.get(ids[1]).is_some());
        assert!(store.get(ids[2]).is_some());
        assert!(
            store.get(running).is_some(),
            "unfinished jobs are never forgotten"
        );
    }

    #[tokio::test]
    async fn waiting_until_started_returns_once_the_job_runs() {
        let (store, id) = store_with_queued_job();
        let store = std::sync::Arc::new(store);
        let waiter = spawn_waiter(&store, id, Until::Started);
        store.mark_running(id);
        let record = woken(waiter).await;
        assert_eq!(record.status, JobStatus::Running);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_gives_up_after_its_timeout_with_the_record_so_far() {
        let (store, id) = store_with_queued_job();
        store.mark_running(id);
        let record = store
            .wait(id, Until::Finished, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(record.status, JobStatus::Running);
    }

    #[tokio::test]
    async fn unknown_jobs_are_none() {
        let store = JobStore::new(100);
        assert!(store.get(JobId::new()).is_none());
        assert!(
            store
                .wait(JobId::new(), Until::Finished, Duration::ZERO)
                .await
                .is_none()
        );
    }
}
