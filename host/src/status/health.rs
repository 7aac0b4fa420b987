//! Whether each part of the host works as it should, judged from its status alone.
//!
//! A part is `degraded` while it serves but not as configured: task files that did not load,
//! an instance pool that fell back to on-demand allocation, a disk cache that cannot be
//! written, a queue nearly full, an IO executor with every slot taken and jobs waiting. The
//! job and batch stores are bounded by design (they forget the oldest records), so they have
//! no health of their own. `/readyz` is separate: it says whether the tasks found at start
//! have loaded.

use serde::Serialize;

use super::Parts;
use crate::engine::Allocation;

/// A queue this full (in tenths of its capacity) or fuller counts as nearly full.
const QUEUE_NEARLY_FULL_TENTHS: usize = 9;

/// Whether a part works as it should.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// It does.
    Ok,
    /// It serves, but not as configured: the reasons say how.
    Degraded,
}

/// One part's health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ComponentHealth {
    /// `ok` or `degraded`.
    pub status: HealthState,
    /// Why it is degraded; empty when it is not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl ComponentHealth {
    fn from_reasons(reasons: Vec<String>) -> Self {
        let status = if reasons.is_empty() {
            HealthState::Ok
        } else {
            HealthState::Degraded
        };
        Self { status, reasons }
    }

    /// Whether it is `ok`.
    pub fn is_ok(&self) -> bool {
        self.status == HealthState::Ok
    }
}

/// The health of each part, and of the whole (`degraded` if any part is).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `degraded` if any part is.
    pub status: HealthState,
    /// The task files: all loaded?
    pub tasks: ComponentHealth,
    /// The engine: instance pool as configured?
    pub engine: ComponentHealth,
    /// The compiled-component cache: disk tier writable?
    pub cache: ComponentHealth,
    /// The queue: room left?
    pub scheduler: ComponentHealth,
    /// The IO executor: slots free, or nobody waiting?
    pub io: ComponentHealth,
}

impl Health {
    /// The health of parts whose status is `parts`.
    pub(crate) fn of(parts: &Parts) -> Self {
        let tasks = &parts.tasks;
        let mut task_reasons: Vec<String> = tasks
            .problems
            .iter()
            .map(|(name, problem)| format!("task file {name:?} did not load: {}", problem.error))
            .collect();
        if tasks.loading > 0 {
            task_reasons.push(format!("{} task files still loading", tasks.loading));
        }
        let engine_reasons = match &parts.engine.allocation {
            Allocation::OnDemand {
                fallback_reason: Some(reason),
            } => vec![format!(
                "the instance pool could not be reserved; instances are allocated on demand: \
                 {reason}"
            )],
            _ => Vec::new(),
        };
        let cache = &parts.cache;
        let cache_reasons = cache
            .disk_write_failing
            .then(|| {
                format!(
                    "the latest compiled component could not be written to the disk cache \
                     ({} failed writes since start); tasks compile again after a restart",
                    cache.disk_write_errors
                )
            })
            .into_iter()
            .collect();
        let scheduler = &parts.scheduler;
        let nearly_full = scheduler.max_queued * QUEUE_NEARLY_FULL_TENTHS;
        let scheduler_reasons = (scheduler.queued > 0 && scheduler.queued * 10 >= nearly_full)
            .then(|| {
                format!(
                    "the queue is nearly full: {} of {} places taken",
                    scheduler.queued, scheduler.max_queued
                )
            })
            .into_iter()
            .collect();
        let admission = &scheduler.admission;
        let io_reasons = (admission.waiting.io_slots > 0)
            .then(|| {
                format!(
                    "all {} IO slots are busy and {} IO-bound jobs wait for one",
                    admission.io_jobs.max, admission.waiting.io_slots
                )
            })
            .into_iter()
            .collect();
        let parts = [
            ComponentHealth::from_reasons(task_reasons),
            ComponentHealth::from_reasons(engine_reasons),
            ComponentHealth::from_reasons(cache_reasons),
            ComponentHealth::from_reasons(scheduler_reasons),
            ComponentHealth::from_reasons(io_reasons),
        ];
        let status = if parts.iter().all(ComponentHealth::is_ok) {
            HealthState::Ok
        } else {
            HealthState::Degraded
        };
        let [tasks, engine, cache, scheduler, io] = parts;
        Self {
            status,
            tasks,
            engine,
            cache,
            scheduler,
            io,
        }
    }

    /// Each part's health, by name.
    pub fn components(&self) -> [(&'static str, &ComponentHealth); 5] {
        [
            ("tasks", &self.tasks),
            ("engine", &self.engine),
            ("cache", &self.cache),
            ("scheduler", &self.scheduler),
            ("io", &self.io),
        ]
    }
}
