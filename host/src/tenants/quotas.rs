//! A tenant's quotas, and the refusal a request over one of them gets.
//!
//! Each quota is optional: one a tenant does not set does not bound it beyond the host's own
//! limits. Per-job ceilings (timeout, memory, fuel) lower the host's: a job asking for more
//! than its tenant's ceiling is refused, and one asking for nothing gets the host's default
//! or the ceiling, whichever is lower.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::TenantId;
use crate::config::RequestedLimits;
use crate::engine::Limits;

/// What a tenant may use. Every field is optional; set fields bound the tenant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Most of its jobs queued (accepted, not yet started) at once; past it, `429`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queued_jobs: Option<u64>,
    /// Jobs it may submit per second, on average (a token bucket); past it, `429`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submissions_per_second: Option<u64>,
    /// How many submissions it may make at once above the rate (the bucket's size; the rate,
    /// at least 1, when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_burst: Option<u64>,
    /// Longest deadline one of its jobs may have, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeout_ms: Option<u64>,
    /// Largest memory limit one of its jobs may have, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mib: Option<u64>,
    /// Largest fuel budget one of its jobs may have; with it set, every job of the tenant
    /// has a budget (this one unless it asks for less).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fuel: Option<u64>,
    /// Most of its CPU-bound jobs running at once (on engine threads); the rest wait,
    /// queued, while the threads go to other tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running_cpu_jobs: Option<u32>,
    /// Most of its IO-bound jobs running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running_io_jobs: Option<u32>,
    /// Not a bound but its share: when tenants' jobs wait for the same engine threads (or IO
    /// slots), each gets their time in the ratio of the weights (1 unless set; at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Largest component it may upload, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_task_bytes: Option<u64>,
    /// Most tasks of its own it may have uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks: Option<u64>,
    /// Most bytes its uploaded tasks may take together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stored_task_bytes: Option<u64>,
}

impl Quotas {
    /// Whether no quota is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// These quotas, with each one not set taken from `defaults`.
    pub fn or(self, defaults: Quotas) -> Quotas {
        Quotas {
            max_queued_jobs: self.max_queued_jobs.or(defaults.max_queued_jobs),
            submissions_per_second: self
                .submissions_per_second
                .or(defaults.submissions_per_second),
            submission_burst: self.submission_burst.or(defaults.submission_burst),
            max_timeout_ms: self.max_timeout_ms.or(defaults.max_timeout_ms),
            max_memory_mib: self.max_memory_mib.or(defaults.max_memory_mib),
            max_fuel: self.max_fuel.or(defaults.max_fuel),
            max_running_cpu_jobs: self.max_running_cpu_jobs.or(defaults.max_running_cpu_jobs),
            max_running_io_jobs: self.max_running_io_jobs.or(defaults.max_running_io_jobs),
            weight: self.weight.or(defaults.weight),
            max_task_bytes: self.max_task_bytes.or(defaults.max_task_bytes),
            max_tasks: self.max_tasks.or(defaults.max_tasks),
            max_stored_task_bytes: self
                .max_stored_task_bytes
                .or(defaults.max_stored_task_bytes),
        }
    }

    /// Refused if `used` plus `adding` would pass the quota `quota` (of limit `limit`).
    pub(crate) fn check(
        quota: &'static str,
        limit: Option<u64>,
        used: u64,
        adding: u64,
    ) -> Result<(), QuotaExceeded> {
        match limit {
            Some(limit) if used.saturating_add(adding) > limit => Err(QuotaExceeded {
                quota,
                limit,
                used,
                retry_after: None,
            }),
            _ => Ok(()),
        }
    }
}

impl Quotas {
    /// `limits`, which the host's policy resolved from `requested`, within the tenant's
    /// ceilings: a limit the job asked for above a ceiling is refused; one it left to the
    /// default is lowered to the ceiling. The fuel ceiling applies only where the host lets
    /// jobs have budgets (`budgets_allowed`).
    pub(crate) fn cap(
        &self,
        mut limits: Limits,
        requested: &RequestedLimits,
        budgets_allowed: bool,
    ) -> Result<Limits, QuotaExceeded> {
        let timeout = ceiling(
            "max_timeout_ms",
            self.max_timeout_ms,
            requested.timeout_ms,
            limits.timeout.as_millis() as u64,
        )?;
        limits.timeout = Duration::from_millis(timeout);
        let memory_mib = ceiling(
            "max_memory_mib",
            self.max_memory_mib,
            requested.memory_mib.map(|mib| mib as u64),
            (limits.memory_bytes >> 20) as u64,
        )?;
        limits.memory_bytes = (memory_mib as usize) << 20;
        if let Some(max) = self.max_fuel.filter(|_| budgets_allowed) {
            let resolved = limits.fuel.unwrap_or(max);
            limits.fuel = Some(ceiling("max_fuel", Some(max), requested.fuel, resolved)?);
        }
        Ok(limits)
    }
}

/// `resolved` within the ceiling `max` of the quota `quota`: refused if the job `asked` for
/// more.
fn ceiling(
    quota: &'static str,
    max: Option<u64>,
    asked: Option<u64>,
    resolved: u64,
) -> Result<u64, QuotaExceeded> {
    let Some(max) = max else {
        return Ok(resolved);
    };
    match asked {
        Some(asked) if asked > max => Err(QuotaExceeded {
            quota,
            limit: max,
            used: asked,
            retry_after: None,
        }),
        _ => Ok(resolved.min(max)),
    }
}

/// A request over one of its tenant's quotas.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "over the tenant's quota {quota}: its limit is {limit}, and {used} is in use{}",
    retry_after.map(|wait| format!("; retry after {} ms", wait.as_millis())).unwrap_or_default()
)]
pub struct QuotaExceeded {
    /// The quota's name, as [`Quotas`] has it.
    pub quota: &'static str,
    /// Its limit.
    pub limit: u64,
    /// What is used (or, for a ceiling, what was asked).
    pub used: u64,
    /// For a rate or a count that frees up, when trying again may pass; `None` for sizes and
    /// ceilings, which no wait changes.
    pub retry_after: Option<Duration>,
}

/// Each tenant's submissions, counted against its `submissions_per_second` by a token
/// bucket per tenant. (Hand-rolled: a bucket is a few lines, and the rate limiting crates
/// keyed by tenant share one rate among all keys, while each tenant has its own.)
#[derive(Default)]
pub struct SubmissionRates {
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

/// A token bucket: `tokens` as of `at`.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl SubmissionRates {
    /// Takes `count` submissions from `tenant`'s bucket, or refuses them all, saying when
    /// the bucket will hold that many.
    pub fn take(
        &self,
        tenant: &TenantId,
        quotas: &Quotas,
        count: u64,
    ) -> Result<(), QuotaExceeded> {
        let Some(rate) = quotas.submissions_per_second else {
            return Ok(());
        };
        let burst = quotas.submission_burst.unwrap_or(rate).max(1) as f64;
        let rate = rate as f64;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rates poisoned");
        let bucket = buckets.entry(tenant.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        let wanted = count as f64;
        if tokens >= wanted {
            *bucket = Bucket {
                tokens: tokens - wanted,
                at: now,
            };
            return Ok(());
        }
        let wait = match rate > 0.0 && wanted <= burst {
            true => Duration::from_secs_f64((wanted - tokens) / rate),
            // No wait makes room for more than the bucket holds.
            false => Duration::from_secs(1),
        };
        Err(QuotaExceeded {
            quota: "submissions_per_second",
            limit: rate as u64,
            used: (burst - tokens).max(0.0) as u64,
            retry_after: Some(wait),
        })
    }

    /// Forgets `tenant`'s bucket (the tenant is gone, or its rate changed).
    pub fn forget(&self, tenant: &TenantId) {
        self.buckets.lock().expect("rates poisoned").remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_burst_through_then_the_rate() {
        let rates = SubmissionRates::default();
        let tenant = TenantId::default_tenant();
        let quotas = Quotas {
            submissions_per_second: Some(10),
            submission_burst: Some(3),
            ..Quotas::default()
        };
        for _ in 0..3 {
            rates.take(&tenant, &quotas, 1).unwrap();
        }
        let refused = rates.take(&tenant, &quotas, 1).unwrap_err();
        assert_eq!(refused.quota, "submissions_per_second");
        assert_eq!(refused.limit, 10);
        let wait = refused.retry_after.unwrap();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(
            rates.take(&tenant, &quotas, 4).is_err(),
            "more than a burst"
        );
        let other = TenantId::try_from("other".to_owned()).unwrap();
        rates.take(&other, &quotas, 3).unwrap();
        let unbounded = Quotas::default();
        rates.take(&tenant, &unbounded, 1_000).unwrap();
    }

    #[test]
    fn a_tenant_s_ceilings_lower_the_defaults_and_refuse_more() {
        let quotas = Quotas {
            max_timeout_ms: Some(1_000),
            max_memory_mib: Some(64),
            max_fuel: Some(5_000),
            ..Quotas::default()
        };
        let host = Limits {
            timeout: Duration::from_secs(30),
            fuel: None,
            memory_bytes: 256 << 20,
            max_output_bytes: 1 << 20,
        };
        let none = RequestedLimits::default();
        let capped = quotas.cap(host, &none, true).unwrap();
        assert_eq!(capped.timeout, Duration::from_secs(1));
        assert_eq!(capped.memory_bytes, 64 << 20);
        assert_eq!(capped.fuel, Some(5_000), "every job gets a budget");
        assert_eq!(quotas.cap(host, &none, false).unwrap().fuel, None);
        let less = RequestedLimits {
            fuel: Some(10),
            ..none
        };
        let budget = Limits {
            fuel: Some(10),
            ..host
        };
        assert_eq!(quotas.cap(budget, &less, true).unwrap().fuel, Some(10));
        let more = RequestedLimits {
            memory_mib: Some(65),
            ..none
        };
        let refused = quotas.cap(host, &more, true).unwrap_err();
        assert_eq!(
            (refused.quota, refused.limit, refused.used),
            ("max_memory_mib", 64, 65)
        );
        assert_eq!(refused.retry_after, None, "no wait helps");
    }

    #[test]
    fn a_count_past_its_limit_is_refused_with_what_is_used() {
        assert!(Quotas::check("max_tasks", None, 10, 1).is_ok());
        assert!(Quotas::check("max_tasks", Some(11), 10, 1).is_ok());
        let refused = Quotas::check("max_tasks", Some(10), 10, 1).unwrap_err();
        assert_eq!(
            (refused.quota, refused.limit, refused.used),
            ("max_tasks", 10, 10)
        );
        assert_eq!(
            refused.to_string(),
            "over the tenant's quota max_tasks: its limit is 10, and 10 is in use"
        );
    }
}
