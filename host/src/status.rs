//! The state of the host's parts, as `GET /v1/status` shows it. Each part reports its own
//! status; this module only gives the whole its shape.

use serde::Serialize;

use crate::engine::EngineSettings;
use crate::scheduler::SchedulerStatus;

/// The state of a whole host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Number of tasks served.
    pub tasks: usize,
    /// The engine's settings.
    pub engine: EngineStatus,
    /// The queue and the engine threads.
    pub scheduler: SchedulerStatus,
}

/// The engine's settings that matter to users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct EngineStatus {
    /// Whether fuel is metered.
    pub fuel_metering: bool,
    /// Largest wasm stack of a job, in bytes.
    pub max_wasm_stack: usize,
}

impl From<EngineSettings> for EngineStatus {
    fn from(settings: EngineSettings) -> Self {
        Self {
            fuel_metering: settings.fuel_metering,
            max_wasm_stack: settings.max_wasm_stack,
        }
    }
}
