//! Batches: many jobs submitted in one request. A batch remembers its jobs in the order they
//! were given, and how many of them may run at once; the jobs themselves are ordinary jobs in
//! the job store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::jobs::{JobId, JobRecord, JobStatus};
use crate::tenants::TenantId;
use crate::timestamp::Timestamp;

crate::id::uuid_id!(
    /// A batch's id: a UUIDv7, so ids sort by submission time.
    BatchId
);

/// Most batches remembered; the oldest are forgotten first. Their jobs stay as long as job
/// records do.
const MAX_BATCHES: usize = 10_000;

/// A batch as the host remembers it.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Its id.
    pub id: BatchId,
    /// The tenant whose batch it is.
    pub tenant: TenantId,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// Most of its jobs running at once; `None`: no bound but the host's.
    pub max_concurrent: Option<usize>,
    /// Its jobs, in the order they were submitted.
    pub jobs: Arc<[JobId]>,
}

/// The batches this host remembers.
#[derive(Default)]
pub struct BatchStore {
    batches: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    by_id: HashMap<BatchId, Batch>,
    /// Oldest first, to forget past [`MAX_BATCHES`].
    order: VecDeque<BatchId>,
}

impl BatchStore {
    /// Remembers a new batch, forgetting the oldest past the bound.
    pub fn insert(&self, batch: Batch) {
        let mut batches = self.batches.lock().expect("batch store poisoned");
        batches.order.push_back(batch.id);
        batches.by_id.insert(batch.id, batch);
        if batches.order.len() > MAX_BATCHES
            && let Some(oldest) = batches.order.pop_front()
        {
            batches.by_id.remove(&oldest);
        }
    }

    /// How many batches are remembered, and how many at most.
    pub fn status(&self) -> BatchStoreStatus {
        BatchStoreStatus {
            kept: self
                .batches
                .lock()
                .expect("batch store poisoned")
                .by_id
                .len(),
            max_kept: MAX_BATCHES,
        }
    }

    /// The batch with this id.
    pub fn get(&self, id: BatchId) -> Option<Batch> {
        let batches = self.batches.lock().expect("batch store poisoned");
        batches.by_id.get(&id).cloned()
    }
}

/// The batches remembered, for `/v1/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BatchStoreStatus {
    /// Batches remembered now.
    pub kept: usize,
    /// Most batches remembered; the oldest are forgotten past it.
    pub max_kept: usize,
}

/// Whether a batch has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Some of its jobs are queued or running.
    Running,
    /// Every job has finished (succeeded or failed).
    Finished,
}

/// How many of a batch's jobs are where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchCounts {
    /// Jobs waiting to run (held back by the batch's bound, or queued).
    pub queued: usize,
    /// Jobs running.
    pub running: usize,
    /// Jobs that succeeded.
    pub succeeded: usize,
    /// Jobs that failed (cancelled ones included).
    pub failed: usize,
}

/// A batch and its jobs' records, in order: what `GET /v1/batches/{id}` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchRecord {
    /// The batch's id.
    pub id: BatchId,
    /// Whether every job has finished.
    pub status: BatchStatus,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// Most of its jobs running at once, if bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1)]
    pub max_concurrent: Option<usize>,
    /// How many jobs it has.
    pub total: usize,
    /// Where they are.
    pub counts: BatchCounts,
    /// Their records, in the order they were submitted.
    pub jobs: Vec<JobRecord>,
    /// Jobs whose records are so old they were forgotten (see `--max-finished-jobs`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub forgotten: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

impl BatchRecord {
    /// The record of `batch`, from its jobs' records (`None` for a forgotten one), in order.
    pub(crate) fn new(batch: &Batch, jobs: impl IntoIterator<Item = Option<JobRecord>>) -> Self {
        let mut counts = BatchCounts::default();
        let mut records = Vec::with_capacity(batch.jobs.len());
        for record in jobs.into_iter().flatten() {
            match record.status {
                JobStatus::Queued => counts.queued += 1,
                JobStatus::Running => counts.running += 1,
                JobStatus::Succeeded => counts.succeeded += 1,
                JobStatus::Failed => counts.failed += 1,
            }
            records.push(record);
        }
        let status = if counts.queued + counts.running == 0 {
            BatchStatus::Finished
        } else {
            BatchStatus::Running
        };
        Self {
            id: batch.id,
            status,
            created_at: batch.created_at,
            max_concurrent: batch.max_concurrent,
            total: batch.jobs.len(),
            counts,
            forgotten: batch.jobs.len() - records.len(),
            jobs: records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{JobLog, Kind, Outcome, Receipt};
    use crate::jobs::JobRecord;

    fn batch(jobs: &[JobId]) -> Batch {
        Batch {
            tenant: TenantId::default(),
            id: BatchId::new(),
            created_at: Timestamp::now(),
            max_concurrent: Some(2),
            jobs: jobs.into(),
        }
    }

    #[test]
    fn a_record_counts_jobs_in_order_and_notes_forgotten_ones() {
        let ids = [JobId::new(), JobId::new(), JobId::new()];
        let queued = JobRecord::queued(ids[0], "t", "h", Kind::Cpu);
        let mut done = JobRecord::queued(ids[2], "t", "h", Kind::Cpu);
        done.finish(Outcome {
            result: Ok(crate::engine::RawJson::from_value(&serde_json::json!(1))),
            log: JobLog::default(),
            receipt: Receipt::default(),
        });
        let record = BatchRecord::new(&batch(&ids), [Some(queued), None, Some(done)]);
        assert_eq!(record.status, BatchStatus::Running);
        assert_eq!((record.counts.queued, record.counts.succeeded), (1, 1));
        assert_eq!(record.forgotten, 1);
        assert_eq!(record.jobs[0].id, ids[0]);
        assert_eq!(record.jobs[1].id, ids[2]);
    }

    #[test]
    fn the_oldest_batches_are_forgotten_past_the_bound() {
        let store = BatchStore::default();
        let first = batch(&[]);
        store.insert(first.clone());
        for _ in 0..MAX_BATCHES {
            store.insert(batch(&[]));
        }
        assert!(store.get(first.id).is_none());
        assert_eq!(store.status().kept, MAX_BATCHES);
    }
}
