//! Counters and histograms of events: jobs finishing, time in the queue, components loading.
//!
//! Why a module of its own: `status` holds no state (it reads each part's `status()` at
//! scrape time, and that covers every gauge and every counter a part already keeps, such as
//! the scheduler's accepted and rejected jobs or the cache's hits). What no part keeps is the
//! distribution of events as they happen: how long each job waited and ran, how each ended,
//! what it cost. Those instruments live here, recorded where the event happens, and `status`
//! exports them with the rest.
//!
//! Nothing here takes a lock on a job's path: each task version holds its [`TaskMetrics`]
//! (handles resolved once, when the version is installed), counters are atomics and
//! histograms are lock-free (`histogram`).
//!
//! Label cardinality is bounded: `task` takes the names of the registry, at most
//! [`MAX_TASK_LABELS`] of them (jobs of names past that count under `task="_other"`); `outcome`
//! is `succeeded` or an [`ErrorCode`]; `kind` is `cpu` or `io`; `source` is `compiled` or
//! `disk`.

mod histogram;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::registry::{Metric, Registry, Unit};

use crate::engine::{ErrorCode, Kind, Outcome};
pub use histogram::Histogram;

/// Most distinct task names that get series of their own.
pub const MAX_TASK_LABELS: usize = 1000;

/// The `task` label of jobs whose task name came past [`MAX_TASK_LABELS`].
pub const OTHER_TASKS: &str = "_other";

/// Seconds a job waits between acceptance and start: 100 µs to a minute.
const QUEUE_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];
/// Seconds a job runs: 100 µs to five minutes.
const RUN_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Bytes of a job's linear memory at its largest: 64 KiB to 4 GiB, by powers of four.
const MEMORY_BYTES: &[f64] = &[
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
];
/// Seconds to compile a component or load it from the disk cache: 1 ms to a minute.
const LOAD_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

type Labels<const N: usize> = [(&'static str, String); N];
type HistogramFamily = Family<Labels<1>, Histogram, Buckets>;
type SecondsCounter = Counter<f64, AtomicU64>;

/// Makes each histogram of a family with these bucket bounds.
#[derive(Clone, Copy, Debug)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0)
    }
}

/// Registers `metric` in `registry` as `name`, with `unit` as its name's suffix if given.
fn add(registry: &mut Registry, name: &str, help: &str, unit: Option<Unit>, metric: impl Metric) {
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, metric),
        None => registry.register(name, help, metric),
    }
}

/// A family of histograms over `bounds`, labelled by one label.
fn histograms(bounds: &'static [f64]) -> HistogramFamily {
    Family::new_with_constructor(Buckets(bounds))
}

/// The host's event instruments, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    jobs_finished: Family<Labels<2>, Counter>,
    run_seconds: HistogramFamily,
    peak_memory_bytes: HistogramFamily,
    fuel_consumed: Family<Labels<1>, Counter>,
    cpu_seconds: Family<Labels<1>, SecondsCounter>,
    queued_cpu: Histogram,
    queued_io: Histogram,
    loaded_compiled: Histogram,
    loaded_from_disk: Histogram,
    quota_refusals: Family<Labels<2>, Counter>,
    /// Each task name's handles, so that a name installed again keeps its series.
    tasks: Mutex<HashMap<String, Arc<TaskMetrics>>>,
}

/// One task's handles: what its jobs record into, without looking anything up.
#[derive(Debug)]
pub struct TaskMetrics {
    /// Jobs finished: `succeeded` first, then one per [`ErrorCode`], in [`ErrorCode::ALL`]
    /// order.
    finished: Vec<Counter>,
    run_seconds: Histogram,
    peak_memory_bytes: Histogram,
    fuel_consumed: Counter,
    cpu_seconds: SecondsCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every instrument at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("taskhost");
        let jobs_finished: Family<Labels<2>, Counter> = Family::default();
        let queued = histograms(QUEUE_SECONDS);
        let run_seconds = histograms(RUN_SECONDS);
        let peak_memory_bytes = histograms(MEMORY_BYTES);
        let fuel_consumed: Family<Labels<1>, Counter> = Family::default();
        let cpu_seconds: Family<Labels<1>, SecondsCounter> = Family::default();
        let loaded = histograms(LOAD_SECONDS);
        let quota_refusals: Family<Labels<2>, Counter> = Family::default();
        add(
            &mut registry,
            "quota_refusals",
            "Requests refused for being over a tenant's quota, by tenant and quota",
            None,
            quota_refusals.clone(),
        );
        add(
            &mut registry,
            "jobs_finished",
            "Jobs finished, by task and outcome (succeeded, or the error code)",
            None,
            jobs_finished.clone(),
        );
        add(
            &mut registry,
            "job_queued",
            "Time jobs waited from acceptance to start, by kind",
            Some(Unit::Seconds),
            queued.clone(),
        );
        add(
            &mut registry,
            "job_run",
            "Time jobs ran, from start to finish, by task",
            Some(Unit::Seconds),
            run_seconds.clone(),
        );
        add(
            &mut registry,
            "job_peak_memory",
            "Largest size of jobs' linear memory, by task",
            Some(Unit::Bytes),
            peak_memory_bytes.clone(),
        );
        add(
            &mut registry,
            "job_fuel_consumed",
            "Fuel consumed by jobs, by task (when fuel is metered)",
            None,
            fuel_consumed.clone(),
        );
        add(
            &mut registry,
            "job_cpu",
            "CPU time of jobs, host calls included, by task",
            Some(Unit::Seconds),
            cpu_seconds.clone(),
        );
        add(
            &mut registry,
            "component_load",
            "Time to get a compiled component: compiled by Cranelift, or loaded from the disk cache",
            Some(Unit::Seconds),
            loaded.clone(),
        );
        let kind = |kind: &str| queued.get_or_create_owned(&[("kind", kind.to_owned())]);
        let source = |source: &str| loaded.get_or_create_owned(&[("source", source.to_owned())]);
        Self {
            queued_cpu: kind("cpu"),
            queued_io: kind("io"),
            loaded_compiled: source("compiled"),
            loaded_from_disk: source("disk"),
            registry,
            jobs_finished,
            run_seconds,
            peak_memory_bytes,
            fuel_consumed,
            cpu_seconds,
            quota_refusals,
            tasks: Mutex::default(),
        }
    }

    /// Counts a request of `tenant` refused for being over its quota `quota`.
    pub(crate) fn quota_refused(&self, tenant: &str, quota: &'static str) {
        self.quota_refusals
            .get_or_create_owned(&[("tenant", tenant.to_owned()), ("quota", quota.to_owned())])
            .inc();
    }

    /// The handles of the task called `name` (created, every outcome at zero, the first
    /// time): called when a version is installed, never on a job's path.
    pub(crate) fn task(&self, name: &str) -> Arc<TaskMetrics> {
        let mut tasks = self.tasks.lock().expect("metrics poisoned");
        if let Some(handles) = tasks.get(name) {
            return handles.clone();
        }
        let label = if tasks.len() < MAX_TASK_LABELS {
            name
        } else {
            OTHER_TASKS
        };
        let task = || ("task", label.to_owned());
        let outcomes = std::iter::once("succeeded").chain(ErrorCode::ALL.map(ErrorCode::as_str));
        let handles = Arc::new(TaskMetrics {
            finished: outcomes
                .map(|outcome| {
                    self.jobs_finished
                        .get_or_create_owned(&[task(), ("outcome", outcome.to_owned())])
                })
                .collect(),
            run_seconds: self.run_seconds.get_or_create_owned(&[task()]),
            peak_memory_bytes: self.peak_memory_bytes.get_or_create_owned(&[task()]),
            fuel_consumed: self.fuel_consumed.get_or_create_owned(&[task()]),
            cpu_seconds: self.cpu_seconds.get_or_create_owned(&[task()]),
        });
        if label == name {
            tasks.insert(name.to_owned(), handles.clone());
        }
        handles
    }

    /// Records that a job of `kind` started after waiting `waited` since it was accepted.
    pub(crate) fn job_started(&self, kind: Kind, waited: Duration) {
        let histogram = match kind {
            Kind::Cpu => &self.queued_cpu,
            Kind::Io => &self.queued_io,
        };
        histogram.observe(waited.as_secs_f64());
    }

    /// Records that a component was compiled (or, `from_disk`, loaded from the disk cache)
    /// in `took`.
    pub(crate) fn component_loaded(&self, from_disk: bool, took: Duration) {
        let histogram = if from_disk {
            &self.loaded_from_disk
        } else {
            &self.loaded_compiled
        };
        histogram.observe(took.as_secs_f64());
    }

    /// The registry of these instruments, to encode.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl TaskMetrics {
    /// Records a job of this task that ran for `ran` and ended with `outcome`.
    pub(crate) fn finished(&self, outcome: &Outcome, ran: Duration) {
        self.count(outcome.result.as_ref().err().map(|error| error.code));
        let receipt = &outcome.receipt;
        self.run_seconds.observe(ran.as_secs_f64());
        self.peak_memory_bytes
            .observe(receipt.peak_memory_bytes as f64);
        if let Some(fuel) = receipt.fuel_consumed {
            self.fuel_consumed.inc_by(fuel);
        }
        self.cpu_seconds.inc_by(receipt.cpu.as_secs_f64());
    }

    /// Counts a job of this task that ended without running, with `code`.
    pub(crate) fn ended_unstarted(&self, code: ErrorCode) {
        self.count(Some(code));
    }

    /// Counts one job as succeeded (`None`) or failed with the code.
    fn count(&self, failure: Option<ErrorCode>) {
        let index = failure.map_or(0, |code| code as usize + 1);
        self.finished[index].inc();
    }
}
