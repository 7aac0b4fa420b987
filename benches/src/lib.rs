//! Shared pieces of taskhost's benchmarks: a bare wasmtime embedding to measure the host
//! against, and hosts set up for benchmarking.

pub mod bare;

use std::sync::Arc;
use std::time::Duration;

use taskhost::config::{
    Config, EngineSettings, FuelMetering, LimitPolicy, PoolSettings, SchedulerSettings,
    TasksSettings,
};
use taskhost::internals::TaskEngine;
use taskhost::{Host, JobRequest};
use taskhost_tests::fixtures;

/// The path of an example task's component.
pub fn task_path(name: &str) -> String {
    format!("{}/{name}.wasm", fixtures::TASKS_DIR)
}

/// An engine as the server sets one up (fuel metered for jobs with a budget), with the
/// instance pool or not.
pub fn engine(pooling: bool) -> TaskEngine {
    TaskEngine::new(EngineSettings {
        pool: pooling.then_some(pool(64)),
        ..EngineSettings::default()
    })
    .expect("creating an engine")
}

/// An instance pool of `instances` slots, 64 async stacks and memories up to 256 MiB, whose
/// idle slots keep up to 1 GiB resident together.
fn pool(instances: u32) -> PoolSettings {
    PoolSettings {
        instances,
        async_stacks: 64,
        max_memory_bytes: 256 << 20,
        max_resident_bytes: 1 << 30,
        ..PoolSettings::default()
    }
}

/// A host over the example tasks with `workers` engine threads, fuel metering as given, and
/// the instance pool or not.
pub fn host(workers: usize, fuel_metering: FuelMetering, pooling: bool) -> Arc<Host> {
    let config = config(workers, fuel_metering, pooling);
    Arc::new(Host::start(&config).expect("starting a host"))
}

/// The configuration of [`host`]: every task compiled before it starts, no watching; limits
/// and bounds large enough that no benchmark meets them.
pub fn config(workers: usize, fuel_metering: FuelMetering, pooling: bool) -> Config {
    let data_dir = std::env::temp_dir().join("taskhost-bench");
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tasks: TasksSettings {
            dir: fixtures::TASKS_DIR.into(),
            watch: false,
            debounce: Duration::ZERO,
            wait_until_loaded: true,
        },
        cache_dir: data_dir.join("cache"),
        data_dir,
        engine: EngineSettings {
            fuel_metering,
            pool: pooling.then_some(pool(workers as u32 + 64)),
            ..EngineSettings::default()
        },
        scheduler: SchedulerSettings {
            workers,
            max_queued: 1 << 20,
            io_threads: 1,
            max_io_running: 64,
            max_jobs_memory_bytes: 1 << 40,
            max_task_threads: workers,
            long_job: Duration::from_secs(60),
            long_job_threads: workers,
            ..SchedulerSettings::default()
        },
        limits: LimitPolicy {
            default_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(60),
            max_memory_bytes: 256 << 20,
            fuel_metering,
            ..LimitPolicy::default()
        },
        drain_timeout: Duration::from_secs(60),
        max_finished_jobs: 1 << 20,
        max_records_bytes: 1 << 40,
        max_cached_components: 64,
        ..Config::default()
    }
}

/// A request for `task` with `input`.
pub fn request(task: &str, input: serde_json::Value) -> JobRequest {
    JobRequest {
        task: task.into(),
        input,
        ..JobRequest::default()
    }
}
