//! The state of the host's parts, as `GET /v1/status` shows it, each part's health, and the
//! same read as metrics for `GET /metrics`. Each part reports its own status; this module
//! only gives the whole its shape, judges health from it (`health`) and writes it out for
//! Prometheus (`export`). It holds no state of its own.

mod export;
mod health;

use std::collections::BTreeMap;

use serde::Serialize;

pub(crate) use export::{CONTENT_TYPE, export};
pub use health::{ComponentHealth, Health, HealthState};

pub use crate::batches::BatchStoreStatus;
pub use crate::cache::CacheStatus;
pub use crate::engine::{Allocation, PoolStatus};
use crate::engine::{FuelMetering, TaskEngine};
pub use crate::jobs::{JobCounts, JobStoreStatus};
pub use crate::memo::MemoStatus;
use crate::registry::Problem;
pub use crate::scheduler::{
    GateStatus, IoStatus, LaneUse, PoolUse, SchedulerStatus, Waiting, WorkerStatus,
};
use crate::server::HttpStatus;

/// The state of a whole host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// Each part's own status.
    #[serde(flatten)]
    pub parts: Parts,
    /// Whether each part is working as it should, and if not, why.
    pub health: Health,
}

/// The state of each part of a host, as the parts report it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Parts {
    /// The tasks.
    pub tasks: TasksStatus,
    /// The engine's settings.
    pub engine: EngineStatus,
    /// The compiled-component cache.
    pub cache: CacheStatus,
    /// The queue, the engine threads and the IO executor.
    pub scheduler: SchedulerStatus,
    /// The job records kept.
    pub jobs: JobStoreStatus,
    /// The batches remembered.
    pub batches: BatchStoreStatus,
    /// Memoized results (`max_bytes` 0: memoization is off).
    pub memo: MemoStatus,
    /// The HTTP server's connections (absent for a host embedded without the server).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub http: Option<HttpStatus>,
}

impl Status {
    /// The status of a host whose parts report `parts`, with their health judged from it.
    pub(crate) fn new(parts: Parts) -> Self {
        let health = Health::of(&parts);
        Self { parts, health }
    }
}

/// `GET /v1/status`: the host's state for the admin key, the caller's own for a tenant's.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StatusView {
    /// The whole host's, for the operator.
    Host(Box<Status>),
    /// One tenant's.
    Tenant(TenantStatus),
}

/// What a tenant sees of the host: its own jobs, and the tasks it may run.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TenantStatus {
    /// The tenant.
    pub tenant: String,
    /// Its job records kept, by state.
    pub jobs: JobCounts,
    /// The tasks.
    pub tasks: TasksStatus,
}

/// The tasks: how many serve, how many are loading, and which files did not load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EngineStatus {
    /// Which jobs count fuel (`--fuel-metering`).
    pub fuel_metering: FuelMetering,
    /// Largest wasm stack of a job, in bytes.
    pub max_wasm_stack: usize,
    /// How instances are allocated.
    pub allocation: Allocation,
    /// What the instance pool holds now (absent without a pool).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub pool: Option<PoolStatus>,
    /// Hosts tasks may send HTTP requests to.
    pub http_allowed: Vec<String>,
    /// CA certificates HTTPS requests trust besides the Mozilla roots (`--http-ca-file`).
    pub http_added_cas: usize,
}

impl EngineStatus {
    /// The status of `engine`.
    pub(crate) fn of(engine: &TaskEngine) -> Self {
        let settings = engine.settings();
        Self {
            fuel_metering: settings.fuel_metering,
            max_wasm_stack: settings.max_wasm_stack,
            allocation: engine.allocation().clone(),
            pool: engine.pool_status(),
            http_allowed: settings.http_allowed.entries(),
            http_added_cas: settings.http_trust.added(),
        }
    }
}
