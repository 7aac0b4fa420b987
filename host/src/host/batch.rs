//! Batches on the facade: submit many jobs at once (all accepted or none), read a batch's
//! records in order, wait for it, cancel it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::run::{Admitted, Held};
use super::{CANCEL_WAIT, Host, JobRequest, SubmitError};
use crate::batches::{Batch, BatchId, BatchRecord};
use crate::jobs::Until;
use crate::scheduler::QueueFull;
use crate::tenants::{QuotaExceeded, TenantId};
use crate::timestamp::Timestamp;

/// Many jobs to submit at once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchRequest {
    /// The tenant whose batch it is: every job is this tenant's, whatever its own request
    /// says.
    pub tenant: TenantId,
    /// The jobs, in order.
    pub jobs: Vec<JobRequest>,
    /// Most of them running at once; `None`: as many as the host runs.
    pub max_concurrent: Option<usize>,
}

/// Errors from submitting a batch. Nothing of a refused batch was accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The batch has no jobs.
    #[error("a batch needs at least one job")]
    Empty,
    /// The batch has more jobs than the queue can ever hold.
    #[error(
        "a batch may hold at most {max} jobs (the queue's size, --max-queued); this one has {count}"
    )]
    TooLarge {
        /// Jobs in the batch.
        count: usize,
        /// Most jobs a batch may hold.
        max: usize,
    },
    /// `max_concurrent` is zero.
    #[error("max_concurrent must be at least 1")]
    NoConcurrency,
    /// One of the jobs cannot be submitted.
    #[error("jobs[{index}]: {source}")]
    Job {
        /// Where it is in the batch, from 0.
        index: usize,
        /// Why.
        source: SubmitError,
    },
    /// The queue has no room for the whole batch.
    #[error(transparent)]
    QueueFull(#[from] QueueFull),
    /// The whole batch is over one of the tenant's quotas (queued jobs, submission rate).
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
}

impl Host {
    /// Accepts every job of `request` or none: each is checked, then all are queued at once.
    /// With `max_concurrent`, the jobs past the bound wait (counted as queued) and start in
    /// order as earlier ones finish. Returns the batch's record, its jobs in order.
    pub fn submit_batch(&self, request: BatchRequest) -> Result<BatchRecord, BatchError> {
        let count = request.jobs.len();
        let max = self.scheduler.max_queued();
        match (count, request.max_concurrent) {
            (0, _) => return Err(BatchError::Empty),
            (count, _) if count > max => return Err(BatchError::TooLarge { count, max }),
            (_, Some(0)) => return Err(BatchError::NoConcurrency),
            _ => {}
        }
        let id = BatchId::new();
        let tenant = request.tenant;
        let quotas = self.tenants.quotas(&tenant);
        let prepared = request
            .jobs
            .into_iter()
            .enumerate()
            .map(|(index, job)| {
                let job = JobRequest {
                    tenant: tenant.clone(),
                    ..job
                };
                self.prepare(job, Some(id), &quotas)
                    .map_err(|source| BatchError::Job { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.admit_for_tenant(&tenant, &quotas, count as u64)?;
        let tickets = self.scheduler.admit_all(count)?;

        let batch = Batch {
            id,
            tenant,
            created_at: Timestamp::now(),
            max_concurrent: request.max_concurrent,
            jobs: prepared.iter().map(|(record, ..)| record.id).collect(),
        };
        let records: Vec<_> = prepared.iter().map(|(record, ..)| record.clone()).collect();
        let mut admitted: VecDeque<Admitted> = prepared
            .into_iter()
            .zip(tickets)
            .map(|((record, kind, run), ticket)| {
                self.jobs.insert(record, run.control.clone());
                Admitted { ticket, kind, run }
            })
            .collect();
        self.batches.insert(batch.clone());

        let first = request.max_concurrent.unwrap_or(count).min(count);
        let now: Vec<Admitted> = admitted.drain(..first).collect();
        let held =
            (!admitted.is_empty()).then(|| Arc::new(Held::new(admitted, self.dispatcher.clone())));
        for mut job in now {
            job.run.batch = held.clone();
            self.dispatcher.dispatch(job);
        }
        Ok(BatchRecord::new(&batch, records.into_iter().map(Some)))
    }

    /// `tenant`'s batch `id` (another tenant's is none of this one's).
    fn batch_of(&self, tenant: &TenantId, id: BatchId) -> Option<Batch> {
        self.batches.get(id).filter(|batch| batch.tenant == *tenant)
    }

    /// `tenant`'s batch's record: its jobs' records in order.
    pub fn batch(&self, tenant: &TenantId, id: BatchId) -> Option<BatchRecord> {
        let batch = self.batch_of(tenant, id)?;
        Some(self.batch_record(&batch))
    }

    /// `tenant`'s batch's record once every job has finished, or as it is after `wait`
    /// (capped at the configured maximum wait).
    pub async fn wait_batch(
        &self,
        tenant: &TenantId,
        id: BatchId,
        wait: Duration,
    ) -> Option<BatchRecord> {
        let batch = self.batch_of(tenant, id)?;
        self.wait_for_jobs(&batch, wait.min(self.max_wait)).await;
        Some(self.batch_record(&batch))
    }

    /// Cancels every job of the batch that has not finished (held and queued jobs never
    /// start, running ones stop at their next epoch tick); returns the batch's record once
    /// they have.
    pub async fn cancel_batch(&self, tenant: &TenantId, id: BatchId) -> Option<BatchRecord> {
        let batch = self.batch_of(tenant, id)?;
        for job in batch.jobs.iter() {
            self.jobs.cancel(&batch.tenant, *job);
        }
        self.wait_for_jobs(&batch, CANCEL_WAIT).await;
        Some(self.batch_record(&batch))
    }

    /// Waits up to `wait` in all for every job of `batch` to finish.
    async fn wait_for_jobs(&self, batch: &Batch, wait: Duration) {
        let deadline = Instant::now() + wait;
        for job in batch.jobs.iter() {
            let left = deadline.saturating_duration_since(Instant::now());
            self.jobs
                .wait(&batch.tenant, *job, Until::Finished, left)
                .await;
        }
    }

    fn batch_record(&self, batch: &Batch) -> BatchRecord {
        BatchRecord::new(
            batch,
            batch
                .jobs
                .iter()
                .map(|job| self.jobs.get(&batch.tenant, *job)),
        )
    }
}
