//! Memoized results of deterministic tasks: a task that imports nothing that observes the
//! outside world (no clock, no randomness, no network) gives the same result for the same
//! input every time, so a job that asks for it can take the result of an earlier run of the
//! same component (by content hash) on the same input instead of running.
//!
//! Only results that follow from the input alone are kept: outputs, and the task's own
//! failures (`invalid_input`, `task_error`, `panic`). Limits, deadlines and cancellation are not
//! the task's doing and are never kept; a kept run is only reused for a job whose fuel and
//! memory limits would have let it finish the same way. The cache is bounded in bytes and
//! evicts what is least likely to be asked for again (S3-FIFO, from `quick_cache`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use serde::Serialize;

use crate::engine::{ErrorCode, JobError, JobLog, Limits, Outcome, Progress, RawJson, Receipt};
use crate::jobs::JobId;
use crate::tenants::TenantId;

/// What identifies a result: the tenant, the component's hash and the input, hashed
/// together. An output is its tenant's data: another tenant's job with the same component and
/// input runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemoKey(blake3::Hash);

impl MemoKey {
    /// The key of `tenant`'s running the component with hash `component` on `input` (JSON
    /// text, as the job passes it to the task).
    pub fn new(tenant: &TenantId, component: &blake3::Hash, input: &str) -> Self {
        let mut hasher = blake3::Hasher::new();
        // Length-prefixed: no tenant id and input can be confused with another pair.
        hasher.update(&(tenant.as_str().len() as u64).to_le_bytes());
        hasher.update(tenant.as_str().as_bytes());
        hasher.update(component.as_bytes());
        hasher.update(input.as_bytes());
        Self(hasher.finalize())
    }
}

/// A run kept for reuse.
#[derive(Debug)]
pub struct Memo {
    /// The job that ran.
    pub job: JobId,
    /// Its output, or the task's own failure.
    pub result: Result<RawJson, JobError>,
    /// What it logged.
    pub log: JobLog,
    /// The progress it last reported.
    pub progress: Option<Progress>,
    /// Fuel it consumed, when metered: a job with less fuel would not have finished.
    fuel_consumed: Option<u64>,
    /// Its largest linear memory: a job allowed less would not have finished.
    peak_memory_bytes: usize,
    /// Roughly how much memory this takes, in bytes.
    size: u64,
}

impl Memo {
    /// The outcome of a job that reuses this run: its result and log, no resources used.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            result: self.result.clone(),
            log: self.log.clone(),
            receipt: Receipt::default(),
        }
    }

    /// Whether a job with `limits` would have finished the same way.
    fn fits(&self, limits: &Limits) -> bool {
        let fuel_enough = match (self.fuel_consumed, limits.fuel) {
            (Some(consumed), Some(fuel)) => consumed <= fuel,
            // Run by code that counted no fuel: nothing says it would have fit the budget.
            (None, Some(_)) => false,
            (_, None) => true,
        };
        let output_fits =
            !matches!(&self.result, Ok(output) if output.len() > limits.max_output_bytes);
        fuel_enough && output_fits && self.peak_memory_bytes <= limits.memory_bytes
    }
}

/// Counts of the memo cache, for the status endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MemoStatus {
    /// Results kept.
    pub entries: usize,
    /// Bytes they take, roughly.
    pub bytes: u64,
    /// The bound on that.
    pub max_bytes: u64,
    /// Jobs answered from the cache.
    pub hits: u64,
    /// Jobs that asked for a memoized result and ran.
    pub misses: u64,
}

/// The results of deterministic tasks, by [`MemoKey`], bounded in bytes.
pub struct MemoCache {
    results: Cache<MemoKey, Arc<Memo>, MemoWeighter>,
    max_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Clone)]
struct MemoWeighter;

impl Weighter<MemoKey, Arc<Memo>> for MemoWeighter {
    fn weight(&self, _: &MemoKey, memo: &Arc<Memo>) -> u64 {
        memo.size
    }
}

impl MemoCache {
    /// An empty cache that keeps results of up to about `max_bytes` in all.
    pub fn new(max_bytes: u64) -> Self {
        // quick_cache sizes its table from an estimate of the number of entries.
        let estimated_entries = (max_bytes / 1024).clamp(16, 1 << 20) as usize;
        Self {
            results: Cache::with_weighter(estimated_entries, max_bytes, MemoWeighter),
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The kept run for `key`, if there is one that a job with `limits` may reuse.
    pub fn get(&self, key: &MemoKey, limits: &Limits) -> Option<Arc<Memo>> {
        let memo = self.results.get(key).filter(|memo| memo.fits(limits));
        let counter = if memo.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        memo
    }

    /// Keeps the outcome of job `job` under `key`, if it follows from the input alone.
    pub fn remember(
        &self,
        key: MemoKey,
        job: JobId,
        outcome: &Outcome,
        progress: Option<Progress>,
    ) {
        let deterministic = match &outcome.result {
            Ok(_) => true,
            Err(error) => matches!(
                error.code,
                ErrorCode::InvalidInput | ErrorCode::TaskError | ErrorCode::Panic
            ),
        };
        if !deterministic {
            return;
        }
        let size = (outcome.size_bytes() + std::mem::size_of::<Memo>()) as u64;
        let memo = Memo {
            job,
            result: outcome.result.clone(),
            log: outcome.log.clone(),
            progress,
            fuel_consumed: outcome.receipt.fuel_consumed,
            peak_memory_bytes: outcome.receipt.peak_memory_bytes,
            size,
        };
        self.results.insert(key, Arc::new(memo));
    }

    /// How full the cache is and how often it answered.
    pub fn status(&self) -> MemoStatus {
        MemoStatus {
            entries: self.results.len(),
            bytes: self.results.weight(),
            max_bytes: self.max_bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: Limits = Limits {
        timeout: Duration::from_secs(1),
        fuel: Some(1000),
        memory_bytes: 1 << 20,
        max_output_bytes: 1 << 20,
    };

    fn outcome(result: Result<serde_json::Value, ErrorCode>, fuel: u64) -> Outcome {
        Outcome {
            result: result
                .as_ref()
                .map(RawJson::from_value)
                .map_err(|&code| JobError {
                    code,
                    message: "m".into(),
                }),
            log: JobLog::default(),
            receipt: Receipt {
                fuel_consumed: Some(fuel),
                peak_memory_bytes: 64 << 10,
                ..Receipt::default()
            },
        }
    }

    #[test]
    fn the_same_component_and_input_hit_and_anything_else_misses() {
        let cache = MemoCache::new(1 << 20);
        let component = blake3::hash(b"component");
        let key = MemoKey::new(&TenantId::default(), &component, r#"{"n":1}"#);
        let job = JobId::new();
        cache.remember(key, job, &outcome(Ok(serde_json::json!(1)), 10), None);

        assert_eq!(cache.get(&key, &LIMITS).unwrap().job, job);
        let other_input = MemoKey::new(&TenantId::default(), &component, r#"{"n":2}"#);
        let other_component =
            MemoKey::new(&TenantId::default(), &blake3::hash(b"other"), r#"{"n":1}"#);
        let other_tenant = TenantId::try_from("other".to_owned()).unwrap();
        let other_tenant = MemoKey::new(&other_tenant, &component, r#"{"n":1}"#);
        assert!(
            cache.get(&other_tenant, &LIMITS).is_none(),
            "never shared across tenants"
        );
        assert!(cache.get(&other_input, &LIMITS).is_none());
        assert!(cache.get(&other_component, &LIMITS).is_none());
        let status = cache.status();
        assert_eq!((status.entries, status.hits, status.misses), (1, 1, 3));
    }

    #[test]
    fn a_run_is_not_reused_by_a_job_whose_limits_would_have_stopped_it() {
        let cache = MemoCache::new(1 << 20);
        let key = MemoKey::new(&TenantId::default(), &blake3::hash(b"c"), "null");
        cache.remember(
            key,
            JobId::new(),
            &outcome(Ok(serde_json::json!(1)), 500),
            None,
        );
        let less_fuel = Limits {
            fuel: Some(499),
            ..LIMITS
        };
        let less_memory = Limits {
            memory_bytes: 32 << 10,
            ..LIMITS
        };
        let smaller_output = Limits {
            max_output_bytes: 0,
            ..LIMITS
        };
        assert!(cache.get(&key, &less_fuel).is_none());
        assert!(cache.get(&key, &less_memory).is_none());
        assert!(cache.get(&key, &smaller_output).is_none());
        assert!(cache.get(&key, &LIMITS).is_some());

        // A run of code that counted no fuel says nothing of what a budget would have done.
        let unmetered = MemoKey::new(&TenantId::default(), &blake3::hash(b"c"), "1");
        let mut outcome = outcome(Ok(serde_json::json!(1)), 0);
        outcome.receipt.fuel_consumed = None;
        cache.remember(unmetered, JobId::new(), &outcome, None);
        assert!(cache.get(&unmetered, &LIMITS).is_none());
        let no_budget = Limits {
            fuel: None,
            ..LIMITS
        };
        assert!(cache.get(&unmetered, &no_budget).is_some());
    }

    #[test]
    fn only_failures_of_the_task_itself_are_kept() {
        let cache = MemoCache::new(1 << 20);
        for (code, kept) in [
            (ErrorCode::TaskError, true),
            (ErrorCode::InvalidInput, true),
            (ErrorCode::Panic, true),
            (ErrorCode::Timeout, false),
            (ErrorCode::FuelExhausted, false),
            (ErrorCode::MemoryLimit, false),
            (ErrorCode::Cancelled, false),
            (ErrorCode::Trap, false),
            (ErrorCode::Internal, false),
        ] {
            let key = MemoKey::new(
                &TenantId::default(),
                &blake3::hash(b"c"),
                &format!("{code:?}"),
            );
            cache.remember(key, JobId::new(), &outcome(Err(code), 1), None);
            assert_eq!(cache.get(&key, &LIMITS).is_some(), kept, "{code:?}");
        }
    }

    #[test]
    fn the_cache_stays_within_its_byte_bound() {
        let cache = MemoCache::new(64 << 10);
        let big = serde_json::json!("x".repeat(4096));
        for i in 0..100 {
            let key = MemoKey::new(&TenantId::default(), &blake3::hash(b"c"), &i.to_string());
            cache.remember(key, JobId::new(), &outcome(Ok(big.clone()), 1), None);
        }
        let status = cache.status();
        assert!(status.bytes <= 64 << 10, "{status:?}");
        assert!(status.entries < 100, "{status:?}");
    }
}
