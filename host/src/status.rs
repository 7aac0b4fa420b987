//! The state of the host's parts, as `GET /v1/status` shows it. Each part reports its own
//! status; this module only gives the whole its shape.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cache::CacheStatus;
use crate::engine::{Allocation, TaskEngine};
use crate::registry::Problem;
use crate::scheduler::SchedulerStatus;

/// The state of a whole host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The tasks.
    pub tasks: TasksStatus,
    /// The engine's settings.
    pub engine: EngineStatus,
    /// The compiled-component cache.
    pub cache: CacheStatus,
    /// The queue and the engine threads.
    pub scheduler: SchedulerStatus,
}

/// The tasks: how many serve, how many are loading, and which files did not load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TasksStatus {
    /// Tasks serving a version.
    pub served: usize,
    /// Tasks whose file is being compiled for the first time.
    pub loading: usize,
    /// Whether changed task files are loaded as they change.
    pub watching: bool,
    /// Task files that did not load, by name: the name serves its previous version, if any.
    pub problems: BTreeMap<String, Problem>,
}

/// The engine's settings that matter to users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EngineStatus {
    /// Whether fuel is metered.
    pub fuel_metering: bool,
    /// Largest wasm stack of a job, in bytes.
    pub max_wasm_stack: usize,
    /// How instances are allocated.
    pub allocation: Allocation,
    /// Hosts tasks may send HTTP requests to.
    pub http_allowed: Vec<String>,
}

impl EngineStatus {
    /// The status of `engine`.
    pub fn of(engine: &TaskEngine) -> Self {
        let settings = engine.settings();
        Self {
            fuel_metering: settings.fuel_metering,
            max_wasm_stack: settings.max_wasm_stack,
            allocation: engine.allocation().clone(),
            http_allowed: settings.http_allowed.entries(),
        }
    }
}
