//! The state of the host's parts, as `GET /v1/status` shows it. Each part reports its own
//! status; this module only gives the whole its shape.

use serde::Serialize;

use crate::cache::CacheStatus;
use crate::engine::{Allocation, TaskEngine};
use crate::scheduler::SchedulerStatus;

/// The state of a whole host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Number of tasks served.
    pub tasks: usize,
    /// The engine's settings.
    pub engine: EngineStatus,
    /// The compiled-component cache.
    pub cache: CacheStatus,
    /// The queue and the engine threads.
    pub scheduler: SchedulerStatus,
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
}

impl EngineStatus {
    /// The status of `engine`.
    pub fn of(engine: &TaskEngine) -> Self {
        let settings = engine.settings();
        Self {
            fuel_metering: settings.fuel_metering,
            max_wasm_stack: settings.max_wasm_stack,
            allocation: engine.allocation().clone(),
        }
    }
}
