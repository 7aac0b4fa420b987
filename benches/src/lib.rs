//! Shared pieces of taskhost's benchmarks: a bare wasmtime embedding to measure the host
//! against, and hosts set up for benchmarking.

pub mod bare;

use std::sync::Arc;
use std::time::Duration;

use taskhost::compile::CompileSettings;
use taskhost::config::{Config, LimitPolicy};
use taskhost::egress::{HttpAllowList, HttpTrust};
use taskhost::engine::{EngineSettings, LogLimits, PoolSettings, TaskEngine};
use taskhost::registry::TasksSettings;
use taskhost::scheduler::SchedulerSettings;
use taskhost::server::ServerSettings;
use taskhost::{Host, JobRequest};
use taskhost_tests::fixtures;

/// The path of an example task's component.
pub fn task_path(name: &str) -> String {
    format!("{}/{name}.wasm", fixtures::TASKS_DIR)
}

/// An engine as the server sets one up, with fuel metering, with the instance pool or not.
pub fn engine(pooling: bool) -> TaskEngine {
    TaskEngine::new(EngineSettings {
        fuel_metering: true,
        max_wasm_stack: 512 << 10,
        pool: pooling.then_some(PoolSettings {
            instances: 64,
            async_stacks: 64,
            max_memory_bytes: 256 << 20,
            keep_resident_bytes: 2 << 20,
            max_resident_bytes: 1 << 30,
        }),
        http_allowed: HttpAllowList::default(),
        http_trust: HttpTrust::default(),
        log: LogLimits::default(),
    })
    .expect("creating an engine")
}

/// A host over the example tasks with `workers` engine threads, fuel metering as given, and
/// the instance pool or not.
pub fn host(workers: usize, fuel_metering: bool, pooling: bool) -> Arc<Host> {
    let config = config(workers, fuel_metering, pooling);
    Arc::new(Host::start(&config).expect("starting a host"))
}

/// The configuration of [`host`]: every task compiled before it starts, no watching.
pub fn config(workers: usize, fuel_metering: bool, pooling: bool) -> Config {
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
            max_wasm_stack: 512 << 10,
            pool: pooling.then_some(PoolSettings {
                instances: workers as u32 + 64,
                async_stacks: 64,
                max_memory_bytes: 256 << 20,
                keep_resident_bytes: 2 << 20,
                max_resident_bytes: 1 << 30,
            }),
            http_allowed: HttpAllowList::default(),
            http_trust: HttpTrust::default(),
            log: LogLimits::default(),
        },
        scheduler: SchedulerSettings {
            workers,
            pin_workers: true,
            max_queued: 1 << 20,
            io_threads: 1,
            max_io_running: 64,
            max_jobs_memory_bytes: 1 << 40,
            pool_memories: None,
            max_task_threads: workers,
            long_job: Duration::from_secs(60),
            long_job_threads: workers,
        },
        limits: LimitPolicy {
            default_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(60),
            default_memory_bytes: 256 << 20,
            max_memory_bytes: 256 << 20,
            max_fuel: None,
            fuel_metering,
            max_output_bytes: 1 << 20,
        },
        max_wait: Duration::from_secs(60),
        drain_timeout: Duration::from_secs(60),
        max_finished_jobs: 1 << 20,
        max_records_bytes: 1 << 40,
        max_cached_components: 64,
        max_upload_bytes: 64 << 20,
        compile: CompileSettings::default(),
        memo_cache_bytes: 64 << 20,
        http: ServerSettings::default(),
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
