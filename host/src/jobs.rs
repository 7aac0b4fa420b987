//! Job records: ids, status transitions, and waiting for a job to finish.
//!
//! The store keeps every record behind a `watch` channel, so any number of waiters (HTTP
//! long-polls, the `wait_ms` of a submission) wake the moment the job's record changes; the
//! start wakes only those who watch for it, so a request waiting for the end wakes once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

pub use crate::batches::{BatchCounts, BatchId, BatchRecord, BatchStatus};
pub use crate::engine::{
    ErrorCode, JobError, JobLog, Kind, KindSource, LogLevel, LogLine, LogStream, Progress, RawJson,
};
use crate::engine::{JobControl, LiveLog, Outcome};
use crate::memo::Memo;
use crate::tenants::TenantId;
pub use crate::timestamp::Timestamp;

crate::id::uuid_id!(
    /// A job's id: a UUIDv7, so ids sort by submission time.
    JobId
);

/// Where a job is in its life. `Succeeded` and `Failed` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobRecord {
    /// The job's id.
    pub id: JobId,
    /// The tenant whose job it is: only its keys see it.
    #[serde(default)]
    #[schema(value_type = String)]
    pub tenant: TenantId,
    /// The name of the task it runs.
    #[schema(value_type = crate::registry::TaskName)]
    pub task: String,
    /// The blake3 hash of the component it runs, in hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    /// Whether it runs on an engine thread (`cpu`) or the IO executor (`io`).
    pub kind: Kind,
    /// The batch it was submitted in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub batch: Option<BatchId>,
    /// Where it is in its life.
    pub status: JobStatus,
    /// The job whose result this one reused instead of running (see `memoize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub memoized_from: Option<JobId>,
    /// When it was accepted.
    pub queued_at: Timestamp,
    /// When it started running, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub started_at: Option<Timestamp>,
    /// When it finished, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub finished_at: Option<Timestamp>,
    /// The task's output (any JSON), once succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub output: Option<RawJson>,
    /// Why it failed, once failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<JobError>,
    /// How far the task has come, as it last reported (while it runs, and once finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub progress: Option<Progress>,
    /// What the task logged, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub log: Option<JobLog>,
    /// Wall-clock time the task ran, in milliseconds, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub wall_ms: Option<f64>,
    /// CPU time the job used, in milliseconds, once finished: the task's code and the host
    /// calls it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub cpu_ms: Option<f64>,
    /// Wall-clock time the job spent in host calls (WASI, HTTP, logging, waits), in
    /// milliseconds, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub host_call_ms: Option<f64>,
    /// Fuel the task consumed, once finished, when it ran fuel-metered code (it had a `fuel`
    /// budget, or the host meters every job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fuel_consumed: Option<u64>,
    /// Largest size the task's linear memories and tables reached together, in bytes, once
    /// finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub peak_memory_bytes: Option<usize>,
}

impl JobRecord {
    /// The record of a job just accepted.
    pub(crate) fn queued(id: JobId, task: &str, hash: &str, kind: Kind) -> Self {
        Self {
            id,
            tenant: TenantId::default(),
            task: task.to_owned(),
            hash: hash.to_owned(),
            kind,
            batch: None,
            status: JobStatus::Queued,
            memoized_from: None,
            queued_at: Timestamp::now(),
            started_at: None,
            finished_at: None,
            output: None,
            error: None,
            progress: None,
            log: None,
            wall_ms: None,
            cpu_ms: None,
            host_call_ms: None,
            fuel_consumed: None,
            peak_memory_bytes: None,
        }
    }

    /// Roughly the memory the record takes, in bytes: what it holds of variable size (output,
    /// error, log, progress) and a fixed cost.
    fn size_bytes(&self) -> usize {
        let output = self.output.as_ref().map_or(0, RawJson::len);
        let error = self.error.as_ref().map_or(0, |error| error.message.len());
        let log = self.log.as_ref().map_or(0, JobLog::size_bytes);
        let progress = self
            .progress
            .as_ref()
            .and_then(|progress| progress.message.as_ref());
        std::mem::size_of::<Self>() + output + error + log + progress.map_or(0, String::len)
    }

    /// This record with only the fields `fields` asks for of those that can be large.
    fn with_fields(&self, fields: RecordFields) -> Self {
        Self {
            tenant: self.tenant.clone(),
            task: self.task.clone(),
            hash: self.hash.clone(),
            output: fields.output.then(|| self.output.clone()).flatten(),
            error: self.error.clone(),
            progress: self.progress.clone(),
            log: fields.log.then(|| self.log.clone()).flatten(),
            ..*self
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
    /// Only jobs of this tenant.
    pub tenant: Option<TenantId>,
    /// Only jobs in this state.
    pub status: Option<JobStatus>,
    /// Only jobs of this task.
    pub task: Option<String>,
    /// Only jobs of this batch.
    pub batch: Option<BatchId>,
}

impl JobFilter {
    fn matches(&self, record: &JobRecord) -> bool {
        self.tenant
            .as_ref()
            .is_none_or(|tenant| record.tenant == *tenant)
            && self.status.is_none_or(|status| record.status == status)
            && self.task.as_ref().is_none_or(|task| record.task == *task)
            && self.batch.is_none_or(|batch| record.batch == Some(batch))
    }
}

/// Which of the fields of a record that can be large a listing includes: without them a
/// record is a few hundred bytes, whatever its job returned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordFields {
    /// The job's output.
    pub output: bool,
    /// The job's log.
    pub log: bool,
}

impl RecordFields {
    /// Every field.
    pub const ALL: Self = Self {
        output: true,
        log: true,
    };
}

/// What asking a job to stop did.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cancelled {
    /// The job had not started: it is now failed with `cancelled`.
    BeforeStart(JobRecord),
    /// The job is running: it stops at its next epoch tick.
    Stopping,
    /// The job had already finished; nothing changed.
    AlreadyFinished(JobRecord),
}

/// All jobs this host knows, in memory: every job not yet finished, and the most recent
/// finished ones (the oldest are forgotten past a bound, so memory stays bounded).
pub(crate) struct JobStore {
    /// By id, so by submission time (ids are UUIDv7).
    jobs: RwLock<BTreeMap<JobId, Entry>>,
    /// Finished jobs, oldest first, with the size of each record.
    finished: Mutex<Finished>,
    max_finished: usize,
    max_bytes: usize,
    counts: Counts,
    /// Each tenant's records by status (its entries share them), so that a tenant's counts
    /// are read without a walk over the records.
    tenant_counts: Mutex<HashMap<TenantId, Arc<Counts>>>,
}

/// The finished jobs a store keeps, oldest first, and what their records take.
#[derive(Default)]
struct Finished {
    jobs: VecDeque<(JobId, usize)>,
    bytes: usize,
}

/// Records kept by status, updated at every transition (atomics: no lock of their own).
#[derive(Default)]
struct Counts {
    /// Indexed by `JobStatus as usize`.
    by_status: [AtomicUsize; 4],
    forgotten: AtomicU64,
}

impl Counts {
    fn add(&self, status: JobStatus) {
        self.by_status[status as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn remove(&self, status: JobStatus) {
        self.by_status[status as usize].fetch_sub(1, Ordering::Relaxed);
    }

    fn moved(&self, from: JobStatus, to: JobStatus) {
        if from != to {
            self.remove(from);
            self.add(to);
        }
    }

    fn get(&self, status: JobStatus) -> usize {
        self.by_status[status as usize].load(Ordering::Relaxed)
    }
}

/// The counts a record is counted in: the store's, and its tenant's.
#[derive(Clone, Copy)]
struct CountedIn<'a> {
    store: &'a Counts,
    tenant: &'a Counts,
}

impl CountedIn<'_> {
    fn moved(self, from: JobStatus, to: JobStatus) {
        self.store.moved(from, to);
        self.tenant.moved(from, to);
    }

    fn remove(self, status: JobStatus) {
        self.store.remove(status);
        self.tenant.remove(status);
    }
}

/// What the job store holds, for `/v1/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JobStoreStatus {
    /// Records kept.
    pub records: usize,
    /// Of which queued.
    pub queued: usize,
    /// Of which running.
    pub running: usize,
    /// Of which succeeded.
    pub succeeded: usize,
    /// Of which failed.
    pub failed: usize,
    /// Most finished records kept; the oldest are forgotten past it.
    pub max_finished: usize,
    /// Memory the finished records take, roughly, in bytes.
    pub bytes: usize,
    /// Most memory finished records may take; the oldest are forgotten past it.
    pub max_bytes: usize,
    /// Finished records forgotten since start.
    pub forgotten: u64,
}

/// One tenant's job records kept, by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct JobCounts {
    /// Queued.
    pub queued: usize,
    /// Running.
    pub running: usize,
    /// Succeeded.
    pub succeeded: usize,
    /// Failed.
    pub failed: usize,
}

/// How long [`JobStore::wait_blocking`] watches before it sleeps: about what waking a
/// sleeping thread costs.
const WATCH_BEFORE_SLEEPING: Duration = Duration::from_micros(50);

/// Sleeps until `updates` changes (true), or `deadline` passes or the record is dropped
/// (false).
fn sleep_until_changed(updates: &mut watch::Receiver<JobRecord>, deadline: Instant) -> bool {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut context = Context::from_waker(&waker);
    // Kept across the sleeps: dropping it would take the waker off the channel's list.
    let mut changed = pin!(updates.changed());
    loop {
        match changed.as_mut().poll(&mut context) {
            Poll::Ready(result) => return result.is_ok(),
            Poll::Pending => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                thread::park_timeout(left);
            }
        }
    }
}

/// Wakes a thread sleeping in [`JobStore::wait_blocking`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

struct Entry {
    record: watch::Sender<JobRecord>,
    control: JobControl,
    /// Watchers that care about the job starting ([`StartWatchers::watch`]): only while there
    /// are any does the start wake the record's receivers, so a request waiting for the end
    /// is woken once, at the end.
    start_watchers: StartWatchers,
    /// Its tenant's counts.
    tenant_counts: Arc<Counts>,
}

/// How many watchers of one job care about its start.
#[derive(Clone, Default)]
struct StartWatchers(Arc<AtomicUsize>);

impl StartWatchers {
    /// Counts a watcher until the returned guard is dropped. Call it before subscribing to
    /// the record: a start that found no watcher changed the record without waking anyone,
    /// and a watcher that subscribes afterwards reads the change itself.
    fn watch(&self) -> StartWatch {
        self.0.fetch_add(1, Ordering::SeqCst);
        StartWatch(self.0.clone())
    }

    fn any(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// One watcher of a job's start, counted while it lives.
pub(crate) struct StartWatch(Arc<AtomicUsize>);

impl Drop for StartWatch {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Entry {
    /// The counts its record is counted in, besides `store`'s own.
    fn counted_in<'a>(&'a self, store: &'a Counts) -> CountedIn<'a> {
        CountedIn {
            store,
            tenant: &self.tenant_counts,
        }
    }

    /// The record as it is now, with the progress reported so far if the job is running.
    fn record(&self) -> JobRecord {
        self.record_with(RecordFields::ALL)
    }

    /// [`record`](Self::record), with only the large `fields` asked for.
    fn record_with(&self, fields: RecordFields) -> JobRecord {
        let mut record = self.record.borrow().with_fields(fields);
        if record.status == JobStatus::Running {
            record.progress = self.control.log.progress();
        }
        record
    }
}

/// What a watcher of one job follows: its record, and its log and progress as they are
/// written.
pub(crate) struct JobWatch {
    /// The record, changing at each step of the job's life.
    pub(crate) record: watch::Receiver<JobRecord>,
    /// The job's live log and progress.
    pub(crate) log: LiveLog,
    /// This watcher is woken when the job starts.
    _start: StartWatch,
}

impl JobStore {
    /// An empty store that keeps the records of at most `max_finished` finished jobs, taking
    /// at most about `max_bytes` together.
    pub(crate) fn new(max_finished: usize, max_bytes: usize) -> Self {
        Self {
            jobs: RwLock::default(),
            finished: Mutex::default(),
            max_finished,
            max_bytes,
            counts: Counts::default(),
            tenant_counts: Mutex::default(),
        }
    }

    /// Adds a new job's record, with the control that stops it and carries its live log.
    pub(crate) fn insert(&self, record: JobRecord, control: JobControl) {
        let id = record.id;
        let tenant_counts = self.counts_of_tenant(&record.tenant);
        self.counts.add(record.status);
        tenant_counts.add(record.status);
        let (record, _) = watch::channel(record);
        self.jobs.write().expect("job store poisoned").insert(
            id,
            Entry {
                record,
                control,
                start_watchers: StartWatchers::default(),
                tenant_counts,
            },
        );
    }

    /// The current record of `tenant`'s job `id` (another tenant's job is none of its).
    pub(crate) fn get(&self, tenant: &TenantId, id: JobId) -> Option<JobRecord> {
        self.with_entry_of(tenant, id, Entry::record)
    }

    /// Follows `tenant`'s job as it changes; `None` if it has no such job.
    pub(crate) fn watch(&self, tenant: &TenantId, id: JobId) -> Option<JobWatch> {
        self.with_entry_of(tenant, id, |entry| {
            let start = entry.start_watchers.watch();
            JobWatch {
                record: entry.record.subscribe(),
                log: entry.control.log.clone(),
                _start: start,
            }
        })
    }

    /// Up to `limit` records matching `filter`, newest first, submitted before `before` (a
    /// job id: the last of the previous page) if given, with the large `fields` asked for.
    pub(crate) fn list(
        &self,
        filter: &JobFilter,
        before: Option<JobId>,
        limit: usize,
        fields: RecordFields,
    ) -> Vec<JobRecord> {
        let jobs = self.jobs.read().expect("job store poisoned");
        let older = match before {
            Some(before) => jobs.range(..before),
            None => jobs.range(..),
        };
        older
            .rev()
            .filter(|(_, entry)| filter.matches(&entry.record.borrow()))
            .take(limit)
            .map(|(_, entry)| entry.record_with(fields))
            .collect()
    }

    /// Marks a queued job as running, waking those who watch for its start; false if it is
    /// no longer queued (it was cancelled).
    pub(crate) fn mark_running(&self, id: JobId) -> bool {
        self.with_entry(id, |entry| {
            let mut started = false;
            entry.record.send_if_modified(|record| {
                started = record.status == JobStatus::Queued;
                if started {
                    record.status = JobStatus::Running;
                    record.started_at = Some(Timestamp::now());
                    entry
                        .counted_in(&self.counts)
                        .moved(JobStatus::Queued, JobStatus::Running);
                }
                started && entry.start_watchers.any()
            });
            started
        })
        .unwrap_or(false)
    }

    /// Records how a job ended and wakes everyone waiting on it.
    pub(crate) fn finish(&self, id: JobId, outcome: Outcome) {
        self.finish_record(id, |entry, record| {
            record.finish(outcome);
            record.progress = entry.control.log.progress();
        });
    }

    /// Records that a job reused the result of an earlier run (`memo`, whose `outcome` it
    /// is) instead of running: it finishes at once, having used no resources.
    pub(crate) fn finish_memoized(&self, id: JobId, outcome: Outcome, memo: &Memo) {
        self.finish_record(id, |_, record| {
            record.finish(outcome);
            record.memoized_from = Some(memo.job);
            record.progress = memo.progress.clone();
            record.peak_memory_bytes = None;
        });
    }

    /// Makes a job's record final with `update`, wakes everyone waiting on it, and counts it
    /// as finished.
    /// The record is counted among the finished before anyone is woken, so whoever sees it
    /// final also sees the store's counts and bounds applied. Usually nothing needs
    /// forgetting, and the record is made final, counted and published in one step.
    fn finish_record(&self, id: JobId, update: impl FnOnce(&Entry, &mut JobRecord)) {
        let forgotten = self.with_entry(id, |entry| {
            let mut forgotten = Vec::new();
            entry.record.send_if_modified(|record| {
                let before = record.status;
                update(entry, record);
                entry.counted_in(&self.counts).moved(before, record.status);
                forgotten = self.count_finished(id, record.size_bytes());
                forgotten.is_empty()
            });
            forgotten
        });
        match forgotten {
            Some(forgotten) if !forgotten.is_empty() => {
                self.forget(forgotten);
                self.with_entry(id, |entry| entry.record.send_modify(|_| {}));
            }
            _ => {}
        }
    }

    /// Asks a job to stop: a queued job fails with `cancelled` at once, a running one at its
    /// next epoch tick. `None` if there is no such job.
    pub(crate) fn cancel(&self, tenant: &TenantId, id: JobId) -> Option<Cancelled> {
        let cancelled = self.with_entry_of(tenant, id, |entry| {
            cancel_entry(entry, entry.counted_in(&self.counts))
        })?;
        if let Cancelled::BeforeStart(record) = &cancelled {
            self.retire(id, record.size_bytes());
        }
        Some(cancelled)
    }

    /// Cancels every job that has not finished; returns how many there were.
    pub(crate) fn cancel_all(&self) -> usize {
        self.cancel_where(|_| true)
    }

    /// Cancels every job of `tenant` that has not finished; returns how many there were.
    pub(crate) fn cancel_all_of(&self, tenant: &TenantId) -> usize {
        self.cancel_where(|entry| entry.record.borrow().tenant == *tenant)
    }

    /// Cancels every unfinished job whose entry `chosen` picks; returns how many there were.
    fn cancel_where(&self, chosen: impl Fn(&Entry) -> bool) -> usize {
        let outcomes: Vec<(JobId, Cancelled)> = self
            .jobs
            .read()
            .expect("job store poisoned")
            .iter()
            .filter(|(_, entry)| chosen(entry))
            .map(|(id, entry)| (*id, cancel_entry(entry, entry.counted_in(&self.counts))))
            .collect();
        let mut count = 0;
        for (id, cancelled) in outcomes {
            match cancelled {
                Cancelled::BeforeStart(record) => self.retire(id, record.size_bytes()),
                Cancelled::Stopping => {}
                Cancelled::AlreadyFinished(_) => continue,
            }
            count += 1;
        }
        count
    }

    /// Counts a job, whose record takes `size` bytes, as finished, forgetting the oldest
    /// finished jobs past the bounds on their number and their size.
    fn retire(&self, id: JobId, size: usize) {
        let forgotten = self.count_finished(id, size);
        self.forget(forgotten);
    }

    /// Counts a job, whose record takes `size` bytes, as finished; returns the oldest
    /// finished jobs, now past the bounds on their number and their size, to forget.
    fn count_finished(&self, id: JobId, size: usize) -> Vec<JobId> {
        let mut finished = self.finished.lock().expect("job store poisoned");
        finished.jobs.push_back((id, size));
        finished.bytes += size;
        let mut forgotten = Vec::new();
        while finished.jobs.len() > self.max_finished || finished.bytes > self.max_bytes {
            let Some((oldest, size)) = finished.jobs.pop_front() else {
                break;
            };
            finished.bytes -= size;
            forgotten.push(oldest);
        }
        forgotten
    }

    /// Drops the records of `forgotten` jobs: takes them out under the lock, and frees them
    /// after it is released, so that no reader or writer of the store waits on the freeing.
    fn forget(&self, forgotten: Vec<JobId>) {
        if forgotten.is_empty() {
            return;
        }
        let mut removed = Vec::with_capacity(forgotten.len());
        {
            let mut jobs = self.jobs.write().expect("job store poisoned");
            removed.extend(forgotten.iter().filter_map(|id| jobs.remove(id)));
        }
        for entry in &removed {
            let status = entry.record.borrow().status;
            entry.counted_in(&self.counts).remove(status);
        }
        let count = removed.len() as u64;
        self.counts.forgotten.fetch_add(count, Ordering::Relaxed);
    }

    /// How many of `tenant`'s jobs the store keeps in each state.
    pub(crate) fn counts_of(&self, tenant: &TenantId) -> JobCounts {
        let by_tenant = self.tenant_counts.lock().expect("job store poisoned");
        let Some(counts) = by_tenant.get(tenant) else {
            return JobCounts::default();
        };
        JobCounts {
            queued: counts.get(JobStatus::Queued),
            running: counts.get(JobStatus::Running),
            succeeded: counts.get(JobStatus::Succeeded),
            failed: counts.get(JobStatus::Failed),
        }
    }

    /// `tenant`'s counts, to count a new job in: made at its first job. (Kept for a tenant
    /// once made: a few words per tenant.)
    fn counts_of_tenant(&self, tenant: &TenantId) -> Arc<Counts> {
        let mut by_tenant = self.tenant_counts.lock().expect("job store poisoned");
        if let Some(counts) = by_tenant.get(tenant) {
            return counts.clone();
        }
        by_tenant.entry(tenant.clone()).or_default().clone()
    }

    /// How many records the store keeps, by status.
    pub(crate) fn status(&self) -> JobStoreStatus {
        let [queued, running, succeeded, failed] = [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
        ]
        .map(|status| self.counts.get(status));
        let bytes = self.finished.lock().expect("job store poisoned").bytes;
        JobStoreStatus {
            records: queued + running + succeeded + failed,
            queued,
            running,
            succeeded,
            failed,
            max_finished: self.max_finished,
            bytes,
            max_bytes: self.max_bytes,
            forgotten: self.counts.forgotten.load(Ordering::Relaxed),
        }
    }

    /// The job's record once it has reached `until`, or as it is after `timeout`; `None` if
    /// there is no such job.
    pub(crate) async fn wait(
        &self,
        tenant: &TenantId,
        id: JobId,
        until: Until,
        timeout: Duration,
    ) -> Option<JobRecord> {
        let (mut updates, _start) = self.subscribe(tenant, id, until)?;
        let finished = tokio::time::timeout(
            timeout,
            updates.wait_for(|record| until.reached(record.status)),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|record| record.clone());
        let record = finished
            .or_else(|| self.get(tenant, id))
            .unwrap_or_else(|| updates.borrow().clone());
        Some(record)
    }

    /// Like [`wait`](Self::wait), for a thread outside any async runtime. It watches the
    /// record for a few microseconds before it sleeps: a short job finishes sooner than a
    /// sleeping thread can be woken.
    pub(crate) fn wait_blocking(
        &self,
        tenant: &TenantId,
        id: JobId,
        until: Until,
        timeout: Duration,
    ) -> Option<JobRecord> {
        let (mut updates, _start) = self.subscribe(tenant, id, until)?;
        let started = Instant::now();
        let (watch_until, deadline) = (started + WATCH_BEFORE_SLEEPING, started + timeout);
        while !until.reached(updates.borrow_and_update().status) {
            let now = Instant::now();
            let changed = if now >= deadline {
                false
            } else if now < watch_until {
                while matches!(updates.has_changed(), Ok(false)) && Instant::now() < watch_until {
                    std::hint::spin_loop();
                }
                true
            } else {
                sleep_until_changed(&mut updates, deadline)
            };
            if !changed {
                break;
            }
        }
        Some(
            self.get(tenant, id)
                .unwrap_or_else(|| updates.borrow().clone()),
        )
    }

    /// A receiver of the job's record for a waiter until `until`, counted as a watcher of
    /// the start if it waits for that.
    fn subscribe(
        &self,
        tenant: &TenantId,
        id: JobId,
        until: Until,
    ) -> Option<(watch::Receiver<JobRecord>, Option<StartWatch>)> {
        self.with_entry_of(tenant, id, |entry| {
            let start = (until == Until::Started).then(|| entry.start_watchers.watch());
            (entry.record.subscribe(), start)
        })
    }

    /// `f` of the entry of `tenant`'s job `id`; `None` if it has no such job (another
    /// tenant's is none of its: one lookup decides both).
    fn with_entry_of<T>(
        &self,
        tenant: &TenantId,
        id: JobId,
        f: impl FnOnce(&Entry) -> T,
    ) -> Option<T> {
        self.with_entry(id, |entry| {
            // The record's borrow ends before `f` borrows it again.
            let owned = entry.record.borrow().tenant == *tenant;
            owned.then(|| f(entry))
        })
        .flatten()
    }

    /// `f` of the entry of the job `id`, whoever's it is: for the host's own bookkeeping.
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
fn cancel_entry(entry: &Entry, counts: CountedIn<'_>) -> Cancelled {
    let mut outcome = Cancelled::Stopping;
    entry.record.send_if_modified(|record| match record.status {
        JobStatus::Queued => {
            record.finish(Outcome::failed(JobError {
                code: ErrorCode::Cancelled,
                message: "the job was cancelled before it started".into(),
            }));
            outcome = Cancelled::BeforeStart(record.clone());
            counts.moved(JobStatus::Queued, JobStatus::Failed);
            true
        }
        JobStatus::Running => false,
        JobStatus::Succeeded | JobStatus::Failed => {
            outcome = Cancelled::AlreadyFinished(record.clone());
            false
        }
    });
    if !matches!(outcome, Cancelled::AlreadyFinished(_)) {
        entry.control.cancel.cancel();
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CancelToken, LogLimits, Receipt};

    fn control() -> JobControl {
        JobControl {
            cancel: CancelToken::default(),
            log: LiveLog::new(LogLimits::default()),
        }
    }

    fn succeeded() -> Outcome {
        Outcome {
            result: Ok(RawJson::from_value(&serde_json::json!({"ok": true}))),
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
        tokio::spawn(async move {
            store
                .wait(&TenantId::default(), id, until, Duration::from_secs(60))
                .await
        })
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
        let store = JobStore::new(100, usize::MAX);
        let id = JobId::new();
        store.insert(JobRecord::queued(id, "t", "h", Kind::Cpu), control());
        (store, id)
    }

    #[tokio::test]
    async fn another_tenant_s_job_is_none_of_its() {
        let (store, id) = store_with_queued_job();
        let other = TenantId::try_from("other".to_owned()).unwrap();
        assert!(store.get(&other, id).is_none());
        assert!(store.watch(&other, id).is_none());
        assert!(store.cancel(&other, id).is_none());
        let quick = Duration::from_millis(1);
        assert!(
            store
                .wait(&other, id, Until::Finished, quick)
                .await
                .is_none()
        );
        assert!(
            store
                .wait_blocking(&other, id, Until::Finished, quick)
                .is_none()
        );
        let record = store.get(&TenantId::default(), id).unwrap();
        assert_eq!(record.status, JobStatus::Queued, "untouched");
    }

    #[test]
    fn cancelling_a_queued_job_fails_it_at_once_and_it_never_runs() {
        let (store, id) = store_with_queued_job();
        let Some(Cancelled::BeforeStart(record)) = store.cancel(&TenantId::default(), id) else {
            panic!("expected the queued job to be cancelled");
        };
        assert_eq!(record.status, JobStatus::Failed);
        assert_eq!(record.error.unwrap().code, ErrorCode::Cancelled);
        assert!(!store.mark_running(id), "a cancelled job must not start");
        let status = store.status();
        assert_eq!((status.queued, status.failed), (0, 1), "{status:?}");
    }

    #[test]
    fn cancelling_a_running_job_signals_its_token() {
        let store = JobStore::new(100, usize::MAX);
        let id = JobId::new();
        let control = control();
        let token = control.cancel.clone();
        store.insert(JobRecord::queued(id, "t", "h", Kind::Cpu), control);
        assert!(store.mark_running(id));
        assert_eq!(
            store.cancel(&TenantId::default(), id),
            Some(Cancelled::Stopping)
        );
        assert!(token.is_cancelled());
        assert_eq!(
            store.get(&TenantId::default(), id).unwrap().status,
            JobStatus::Running
        );
    }

    #[test]
    fn cancelling_a_finished_job_changes_nothing() {
        let (store, id) = store_with_queued_job();
        store.mark_running(id);
        store.finish(id, succeeded());
        let Some(Cancelled::AlreadyFinished(record)) = store.cancel(&TenantId::default(), id)
        else {
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
        assert_eq!(
            record.output.map(|output| output.to_value()),
            Some(serde_json::json!({"ok": true}))
        );
    }

    #[test]
    fn only_the_newest_finished_jobs_are_kept() {
        let store = JobStore::new(2, usize::MAX);
        let ids: Vec<JobId> = (0..3).map(|_| JobId::new()).collect();
        for id in &ids {
            store.insert(JobRecord::queued(*id, "t", "h", Kind::Cpu), control());
        }
        let running = JobId::new();
        store.insert(JobRecord::queued(running, "t", "h", Kind::Cpu), control());
        store.mark_running(running);
        for id in &ids {
            store.mark_running(*id);
            store.finish(*id, succeeded());
        }
        assert!(
            store.get(&TenantId::default(), ids[0]).is_none(),
            "the oldest finished job is forgotten"
        );
        assert!(store.get(&TenantId::default(), ids[1]).is_some());
        assert!(store.get(&TenantId::default(), ids[2]).is_some());
        let status = store.status();
        assert_eq!(
            (
                status.records,
                status.running,
                status.succeeded,
                status.forgotten
            ),
            (3, 1, 2, 1),
            "{status:?}"
        );
        assert!(
            store.get(&TenantId::default(), running).is_some(),
            "unfinished jobs are never forgotten"
        );
    }

    #[test]
    fn finished_records_are_kept_within_their_byte_bound_and_listings_leave_large_fields_out() {
        let output = RawJson::from_value(&serde_json::json!("x".repeat(10_000)));
        let one_record = std::mem::size_of::<JobRecord>() + output.len() + 2;
        let store = JobStore::new(100, 3 * one_record);
        let ids: Vec<JobId> = (0..5).map(|_| JobId::new()).collect();
        for id in &ids {
            store.insert(JobRecord::queued(*id, "t", "h", Kind::Cpu), control());
            store.mark_running(*id);
            let outcome = Outcome {
                result: Ok(output.clone()),
                ..succeeded()
            };
            store.finish(*id, outcome);
        }
        let status = store.status();
        assert!(status.bytes <= 3 * one_record, "{status:?}");
        assert_eq!((status.records, status.forgotten), (3, 2), "{status:?}");
        assert!(
            store.get(&TenantId::default(), ids[1]).is_none()
                && store.get(&TenantId::default(), ids[2]).is_some()
        );

        let filter = JobFilter::default();
        let listed = store.list(&filter, None, 10, RecordFields::default());
        assert_eq!(listed.len(), 3);
        assert!(
            listed
                .iter()
                .all(|record| record.output.is_none() && record.log.is_none())
        );
        let with_output = RecordFields {
            output: true,
            log: false,
        };
        let listed = store.list(&filter, None, 10, with_output);
        assert!(
            listed
                .iter()
                .all(|record| record.output.as_ref() == Some(&output))
        );
        assert!(listed.iter().all(|record| record.log.is_none()));
        assert_eq!(
            store.get(&TenantId::default(), ids[4]).unwrap().output,
            Some(output)
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

    /// Counts how often it is woken.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn the_start_wakes_only_those_who_wait_for_it() {
        for (until, woken_by_start) in [(Until::Finished, 0), (Until::Started, 1)] {
            let (store, id) = store_with_queued_job();
            let counter = Arc::new(CountingWaker::default());
            let waker = Waker::from(counter.clone());
            let mut context = Context::from_waker(&waker);
            let tenant = TenantId::default();
            let mut wait = pin!(store.wait(&tenant, id, until, Duration::from_secs(60)));
            assert!(wait.as_mut().poll(&mut context).is_pending());

            assert!(store.mark_running(id));
            assert_eq!(
                counter.0.load(Ordering::SeqCst),
                woken_by_start,
                "{until:?}"
            );
            if until == Until::Finished {
                store.finish(id, succeeded());
                assert_eq!(counter.0.load(Ordering::SeqCst), 1, "woken at the end");
            }
            let Poll::Ready(Some(record)) = wait.as_mut().poll(&mut context) else {
                panic!("{until:?}: the wait did not end");
            };
            assert!(
                until.reached(record.status),
                "{until:?}: {:?}",
                record.status
            );
        }
    }

    #[tokio::test]
    async fn a_watcher_sees_the_start_whether_it_came_before_or_after() {
        let (store, id) = store_with_queued_job();
        let mut early = store.watch(&TenantId::default(), id).unwrap();
        store.mark_running(id);
        assert!(
            early.record.has_changed().unwrap(),
            "the start woke the watcher"
        );
        let late = store.watch(&TenantId::default(), id).unwrap();
        assert_eq!(late.record.borrow().status, JobStatus::Running);
        assert_eq!(early.record.borrow_and_update().status, JobStatus::Running);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_gives_up_after_its_timeout_with_the_record_so_far() {
        let (store, id) = store_with_queued_job();
        store.mark_running(id);
        let record = store
            .wait(
                &TenantId::default(),
                id,
                Until::Finished,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(record.status, JobStatus::Running);
    }

    #[test]
    fn a_blocking_wait_wakes_whether_the_job_ends_while_it_watches_or_sleeps() {
        // The job ends at a different moment each round, from at once to well past the
        // watching phase, so some rounds find the waiter asleep. A lost wake-up would leave
        // it asleep until its timeout.
        const TIMEOUT: Duration = Duration::from_secs(10);
        let store = std::sync::Arc::new(JobStore::new(1000, usize::MAX));
        for round in 0..200u32 {
            let id = JobId::new();
            store.insert(JobRecord::queued(id, "t", "h", Kind::Cpu), control());
            let waiter = {
                let store = store.clone();
                thread::spawn(move || {
                    let started = Instant::now();
                    let record =
                        store.wait_blocking(&TenantId::default(), id, Until::Finished, TIMEOUT);
                    (record, started.elapsed())
                })
            };
            store.mark_running(id);
            let ends_after = WATCH_BEFORE_SLEEPING * round / 20;
            let started = Instant::now();
            while started.elapsed() < ends_after {
                std::hint::spin_loop();
            }
            store.finish(id, succeeded());
            let (record, waited) = waiter.join().unwrap();
            assert_eq!(
                record.unwrap().status,
                JobStatus::Succeeded,
                "round {round}"
            );
            assert!(waited < TIMEOUT, "round {round}: woken only by its timeout");
        }
    }

    #[test]
    fn a_blocking_wait_gives_up_after_its_timeout_and_knows_no_unknown_job() {
        let (store, id) = store_with_queued_job();
        let record = store
            .wait_blocking(
                &TenantId::default(),
                id,
                Until::Started,
                Duration::from_millis(5),
            )
            .unwrap();
        assert_eq!(record.status, JobStatus::Queued);
        store.mark_running(id);
        let record = store
            .wait_blocking(
                &TenantId::default(),
                id,
                Until::Started,
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(record.status, JobStatus::Running);
        assert!(
            store
                .wait_blocking(
                    &TenantId::default(),
                    JobId::new(),
                    Until::Finished,
                    Duration::ZERO
                )
                .is_none()
        );
    }

    #[tokio::test]
    async fn unknown_jobs_are_none() {
        let store = JobStore::new(100, usize::MAX);
        assert!(store.get(&TenantId::default(), JobId::new()).is_none());
        assert!(
            store
                .wait(
                    &TenantId::default(),
                    JobId::new(),
                    Until::Finished,
                    Duration::ZERO
                )
                .await
                .is_none()
        );
    }
}
