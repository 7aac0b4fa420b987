//! The server's configuration: command-line flags (with environment fallbacks), checked all at
//! once before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::{
    EngineSettings, HttpAllowList, Limits, LogLimits, POOL_SLOT_BYTES, PoolSettings,
};
use crate::registry::TasksSettings;
use crate::scheduler::SchedulerSettings;

/// Flags of `taskhost serve`. Every flag can also be set with the environment variable named
/// in its help.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to serve the HTTP API on; port 0 picks a free port.
    #[arg(long, env = "TASKHOST_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,

    /// Directory of task components: every NAME.wasm in it is served as task NAME.
    #[arg(long, env = "TASKHOST_TASKS_DIR", default_value = "target/tasks")]
    pub tasks_dir: PathBuf,

    /// Load task files again as they change (added, saved, renamed or removed): jobs already
    /// running finish on the version they started with.
    #[arg(long, env = "TASKHOST_WATCH_TASKS", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch_tasks: bool,

    /// How long the tasks directory must be quiet before changes load, in milliseconds, so
    /// that a save in several writes loads once, complete.
    #[arg(long, env = "TASKHOST_RELOAD_DEBOUNCE_MS", default_value_t = 50)]
    pub reload_debounce_ms: u64,

    /// Compile every task before serving, instead of in the background (where a job for a
    /// task still compiling waits for it).
    #[arg(long, env = "TASKHOST_WAIT_FOR_TASKS")]
    pub wait_for_tasks: bool,

    /// Directory for the host's own state; created if missing.
    #[arg(long, env = "TASKHOST_DATA_DIR", default_value = ".taskhost")]
    pub data_dir: PathBuf,

    /// A host tasks may send HTTP requests to: `api.example.com`, `localhost:8080` (that port
    /// only) or `*.example.com` (its subdomains). Repeat it, or comma-separate in the
    /// environment variable. None by default: every request is denied.
    #[arg(
        long = "allow-http-host",
        env = "TASKHOST_ALLOW_HTTP_HOSTS",
        value_delimiter = ','
    )]
    pub allow_http_hosts: Vec<String>,

    /// Engine threads that run jobs [default: one per core].
    #[arg(long, env = "TASKHOST_WORKERS")]
    pub workers: Option<usize>,

    /// Wall-clock limit of a job that does not ask for one (`timeout_ms`), in milliseconds.
    #[arg(long, env = "TASKHOST_JOB_TIMEOUT_MS", default_value_t = 30_000)]
    pub job_timeout_ms: u64,

    /// Largest `timeout_ms` a job may ask for.
    #[arg(long, env = "TASKHOST_MAX_JOB_TIMEOUT_MS", default_value_t = 300_000)]
    pub max_job_timeout_ms: u64,

    /// Linear memory limit of a job that does not ask for one (`memory_mib`), in MiB.
    #[arg(long, env = "TASKHOST_MEMORY_LIMIT_MIB", default_value_t = 256)]
    pub memory_limit_mib: usize,

    /// Largest `memory_mib` a job may ask for.
    #[arg(long, env = "TASKHOST_MAX_MEMORY_LIMIT_MIB", default_value_t = 1024)]
    pub max_memory_limit_mib: usize,

    /// Meter fuel: jobs can be given deterministic CPU budgets (`fuel`) and report the fuel
    /// they consumed. Costs some speed (see the benchmarks); `false` turns it off.
    #[arg(long, env = "TASKHOST_FUEL_METERING", default_value_t = true, action = clap::ArgAction::Set)]
    pub fuel_metering: bool,

    /// Largest `fuel` a job may ask for [default: no limit].
    #[arg(long, env = "TASKHOST_MAX_FUEL")]
    pub max_fuel: Option<u64>,

    /// Largest wasm stack of a job, in KiB; deeper recursion fails with `stack_overflow`.
    #[arg(long, env = "TASKHOST_MAX_WASM_STACK_KIB", default_value_t = 512)]
    pub max_wasm_stack_kib: usize,

    /// Most lines a job's log keeps (SDK log lines, stdout and stderr lines); later ones are
    /// dropped and the log marked truncated.
    #[arg(long, env = "TASKHOST_MAX_LOG_LINES", default_value_t = 1000)]
    pub max_log_lines: usize,

    /// Most text a job's log keeps, in KiB.
    #[arg(long, env = "TASKHOST_MAX_LOG_KIB", default_value_t = 64)]
    pub max_log_kib: usize,

    /// Most jobs waiting for an engine thread; further submissions get 429.
    #[arg(long, env = "TASKHOST_MAX_QUEUED", default_value_t = 10_000)]
    pub max_queued: usize,

    /// Threads of the async executor that runs IO-bound jobs.
    #[arg(long, env = "TASKHOST_IO_THREADS", default_value_t = 2)]
    pub io_threads: usize,

    /// Most IO-bound jobs running at once (waiting ones included); more wait in the queue.
    #[arg(long, env = "TASKHOST_MAX_IO_JOBS", default_value_t = 4096)]
    pub max_io_jobs: usize,

    /// Where instances get their memory: `pooling` reserves address space for every instance
    /// that may exist at once (workers + max IO jobs) and instantiates fastest; `on-demand`
    /// allocates per instance. If the reservation fails, the host falls back to on-demand.
    #[arg(long, env = "TASKHOST_INSTANCE_ALLOCATION", value_enum, default_value_t = InstanceAllocation::Pooling)]
    pub instance_allocation: InstanceAllocation,

    /// Memory kept resident per instance-pool slot between jobs, in KiB: the next job in the
    /// slot then takes no page faults on it. 0 hands every page back to the kernel.
    #[arg(long, env = "TASKHOST_POOL_KEEP_RESIDENT_KIB", default_value_t = 2048)]
    pub pool_keep_resident_kib: usize,

    /// Pin each engine thread to a core.
    #[arg(long, env = "TASKHOST_PIN_WORKERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub pin_workers: bool,

    /// Longest a request may wait for a job to finish (`wait_ms`), in milliseconds.
    #[arg(long, env = "TASKHOST_MAX_WAIT_MS", default_value_t = 60_000)]
    pub max_wait_ms: u64,

    /// Directory of compiled artifacts, so restarts load instead of compiling
    /// [default: DATA_DIR/cache].
    #[arg(long, env = "TASKHOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compiled components kept in memory; the least recently used go first.
    #[arg(long, env = "TASKHOST_MAX_CACHED_COMPONENTS", default_value_t = 256)]
    pub max_cached_components: usize,

    /// Largest component `PUT /v1/tasks/{name}` accepts, in MiB.
    #[arg(long, env = "TASKHOST_MAX_UPLOAD_MIB", default_value_t = 64)]
    pub max_upload_mib: usize,

    /// Finished jobs whose records are kept (for `GET /v1/jobs/{id}`); older ones are
    /// forgotten first.
    #[arg(long, env = "TASKHOST_MAX_FINISHED_JOBS", default_value_t = 100_000)]
    pub max_finished_jobs: usize,

    /// On SIGINT/SIGTERM, how long accepted jobs may take to finish before the rest are
    /// cancelled, in milliseconds.
    #[arg(long, env = "TASKHOST_DRAIN_TIMEOUT_MS", default_value_t = 30_000)]
    pub drain_timeout_ms: u64,
}

/// Where instances get their memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InstanceAllocation {
    /// A pool reserved at start.
    Pooling,
    /// Per instance, on demand.
    OnDemand,
}

/// How request limits become a job's [`Limits`]: defaults for what a request leaves out, and
/// ceilings it may not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitPolicy {
    /// Deadline of a job that asks for none.
    pub default_timeout: Duration,
    /// Longest deadline a job may ask for.
    pub max_timeout: Duration,
    /// Memory limit of a job that asks for none, in bytes.
    pub default_memory_bytes: usize,
    /// Largest memory limit a job may ask for, in bytes.
    pub max_memory_bytes: usize,
    /// Largest fuel a job may ask for; `None` is no ceiling.
    pub max_fuel: Option<u64>,
    /// Whether fuel is metered at all.
    pub fuel_metering: bool,
}

/// Limits a job asked for, in the units of the API; `None` takes the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestedLimits {
    /// `timeout_ms`.
    pub timeout_ms: Option<u64>,
    /// `fuel`.
    pub fuel: Option<u64>,
    /// `memory_mib`.
    pub memory_mib: Option<usize>,
}

/// A limit a job asked for that this host does not allow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// Above the host's ceiling, or zero.
    #[error("{field} must be between 1 and {max}, got {requested}")]
    OutOfRange {
        /// The request field.
        field: &'static str,
        /// What was asked.
        requested: u64,
        /// The ceiling.
        max: u64,
    },
    /// `fuel` was given but this host does not meter fuel.
    #[error(
        "this host runs without fuel metering (--fuel-metering false), so `fuel` cannot be set"
    )]
    FuelNotMetered,
}

impl LimitPolicy {
    /// The limits of a job that asked for `requested`.
    pub fn resolve(&self, requested: RequestedLimits) -> Result<Limits, LimitError> {
        let timeout_ms = in_range(
            "timeout_ms",
            requested.timeout_ms,
            self.default_timeout.as_millis() as u64,
            self.max_timeout.as_millis() as u64,
        )?;
        let memory_mib = in_range(
            "memory_mib",
            requested.memory_mib.map(|mib| mib as u64),
            (self.default_memory_bytes >> 20) as u64,
            (self.max_memory_bytes >> 20) as u64,
        )?;
        let fuel = match requested.fuel {
            Some(_) if !self.fuel_metering => return Err(LimitError::FuelNotMetered),
            Some(fuel) => Some(in_range(
                "fuel",
                Some(fuel),
                fuel,
                self.max_fuel.unwrap_or(u64::MAX),
            )?),
            None => self.max_fuel,
        };
        Ok(Limits {
            timeout: Duration::from_millis(timeout_ms),
            fuel,
            memory_bytes: (memory_mib as usize) << 20,
        })
    }
}

fn in_range(
    field: &'static str,
    requested: Option<u64>,
    default: u64,
    max: u64,
) -> Result<u64, LimitError> {
    match requested {
        None => Ok(default),
        Some(value) if (1..=max).contains(&value) => Ok(value),
        Some(requested) => Err(LimitError::OutOfRange {
            field,
            requested,
            max,
        }),
    }
}

/// Validated configuration of a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Where tasks come from.
    pub tasks: TasksSettings,
    /// Directory for the host's own state.
    pub data_dir: PathBuf,
    /// Directory of compiled artifacts.
    pub cache_dir: PathBuf,
    /// Settings of the wasmtime engine.
    pub engine: EngineSettings,
    /// Settings of the queue and engine threads.
    pub scheduler: SchedulerSettings,
    /// Defaults and ceilings of per-job limits.
    pub limits: LimitPolicy,
    /// Longest a request may wait for a job.
    pub max_wait: Duration,
    /// How long accepted jobs may take to finish on shutdown.
    pub drain_timeout: Duration,
    /// Finished jobs whose records are kept.
    pub max_finished_jobs: usize,
    /// Compiled components kept in memory.
    pub max_cached_components: usize,
    /// Largest component an upload may send, in bytes.
    pub max_upload_bytes: usize,
}

/// Everything wrong with a configuration, each with what to change.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// Most engine threads accepted.
const MAX_WORKERS: usize = 1024;
/// Largest per-job memory accepted, in MiB (the 32-bit wasm address space).
const MAX_MEMORY_MIB: usize = 4096;
/// Most address space the instance pool may reserve: a quarter of x86-64's 128 TiB user
/// address space, leaving the rest for everything else.
const MAX_POOL_RESERVATION: u64 = 32 << 40;
/// Longest debounce of task reloads accepted, in milliseconds: past a minute, a saved task
/// would seem not to load at all.
const MAX_RELOAD_DEBOUNCE_MS: u64 = 60_000;
/// Bounds of the wasm stack setting, in KiB: below 64 little real code runs; above 64 MiB
/// exceeds what engine threads' native stacks can back.
const MIN_WASM_STACK_KIB: usize = 64;
const MAX_WASM_STACK_KIB: usize = 64 << 10;
/// Most log lines a job may keep.
const MAX_LOG_LINES: usize = 100_000;
/// Most log text a job may keep, in KiB.
const MAX_LOG_KIB: usize = 16 << 10;

impl ServeArgs {
    /// The settings `taskhost serve` has with no flags, ignoring `TASKHOST_*` environment
    /// variables, but with these directories: for embedding, where a program sets fields,
    /// then [`validate`](ServeArgs::validate)s.
    pub fn defaults(tasks_dir: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        use clap::{Args, FromArgMatches};
        let command = Self::augment_args(clap::Command::new("taskhost"))
            .mut_args(|arg| arg.env(None::<&str>));
        let matches = command
            .try_get_matches_from(["taskhost"])
            .expect("every flag has a default");
        let mut args = Self::from_arg_matches(&matches).expect("the defaults parse");
        args.tasks_dir = tasks_dir.into();
        args.data_dir = data_dir.into();
        args
    }

    /// Checks every setting and creates the data directory; lists all problems at once.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let workers = self.workers.unwrap_or_else(default_workers);
        if !(1..=MAX_WORKERS).contains(&workers) {
            problems.push(format!(
                "--workers is {workers}: use 1 to {MAX_WORKERS} (default: one per core)"
            ));
        }
        if !self.tasks_dir.is_dir() {
            problems.push(format!(
                "--tasks-dir {} is not a directory: build the example tasks with \
                 `tasks/build.sh`, or point --tasks-dir at a directory of NAME.wasm components",
                self.tasks_dir.display()
            ));
        }
        if let Err(error) = std::fs::create_dir_all(&self.data_dir) {
            problems.push(format!(
                "--data-dir {} cannot be created ({error}): choose a writable directory",
                self.data_dir.display()
            ));
        }
        if !(1..=self.max_job_timeout_ms).contains(&self.job_timeout_ms) {
            problems.push(format!(
                "--job-timeout-ms is {}: use 1 to --max-job-timeout-ms ({})",
                self.job_timeout_ms, self.max_job_timeout_ms
            ));
        }
        if !(1..=MAX_MEMORY_MIB).contains(&self.max_memory_limit_mib) {
            problems.push(format!(
                "--max-memory-limit-mib is {}: use 1 to {MAX_MEMORY_MIB}",
                self.max_memory_limit_mib
            ));
        }
        if !(1..=self.max_memory_limit_mib).contains(&self.memory_limit_mib) {
            problems.push(format!(
                "--memory-limit-mib is {}: use 1 to --max-memory-limit-mib ({})",
                self.memory_limit_mib, self.max_memory_limit_mib
            ));
        }
        if self.max_fuel.is_some() && !self.fuel_metering {
            problems
                .push("--max-fuel needs fuel metering: drop it or set --fuel-metering true".into());
        }
        if self.max_fuel == Some(0) {
            problems.push("--max-fuel is 0: no job could run; give at least 1".into());
        }
        if !(MIN_WASM_STACK_KIB..=MAX_WASM_STACK_KIB).contains(&self.max_wasm_stack_kib) {
            problems.push(format!(
                "--max-wasm-stack-kib is {}: use {MIN_WASM_STACK_KIB} to {MAX_WASM_STACK_KIB}",
                self.max_wasm_stack_kib
            ));
        }
        if !(1..=MAX_LOG_LINES).contains(&self.max_log_lines) {
            problems.push(format!(
                "--max-log-lines is {}: use 1 to {MAX_LOG_LINES}",
                self.max_log_lines
            ));
        }
        if !(1..=MAX_LOG_KIB).contains(&self.max_log_kib) {
            problems.push(format!(
                "--max-log-kib is {}: use 1 to {MAX_LOG_KIB}",
                self.max_log_kib
            ));
        }
        if !(1..=MAX_WORKERS).contains(&self.io_threads) {
            problems.push(format!(
                "--io-threads is {}: use 1 to {MAX_WORKERS}",
                self.io_threads
            ));
        }
        if self.max_io_jobs == 0 {
            problems.push("--max-io-jobs is 0: no IO-bound job could run; use at least 1".into());
        }
        let http_allowed = HttpAllowList::parse(&self.allow_http_hosts).unwrap_or_else(|error| {
            problems.push(format!("--allow-http-host: {error}"));
            HttpAllowList::default()
        });
        // Every job may run on an async stack: IO jobs, and CPU jobs of components that can
        // wait (see `TaskEngine::run`).
        let pool =
            (self.instance_allocation == InstanceAllocation::Pooling).then(|| PoolSettings {
                instances: u32::try_from(workers + self.max_io_jobs).unwrap_or(u32::MAX),
                async_stacks: u32::try_from(workers + self.max_io_jobs).unwrap_or(u32::MAX),
                max_memory_bytes: self.max_memory_limit_mib << 20,
                keep_resident_bytes: self.pool_keep_resident_kib << 10,
            });
        if let Some(pool) = pool {
            let max_instances = MAX_POOL_RESERVATION / POOL_SLOT_BYTES;
            if u64::from(pool.instances) > max_instances {
                problems.push(format!(
                    "--workers plus --max-io-jobs is {}: a pool of more than {max_instances} \
                     instances does not fit the address space; lower --max-io-jobs or use \
                     --instance-allocation on-demand",
                    pool.instances
                ));
            }
        }
        if self.pool_keep_resident_kib > self.max_memory_limit_mib << 10 {
            problems.push(format!(
                "--pool-keep-resident-kib is {}: use 0 to --max-memory-limit-mib in KiB ({})",
                self.pool_keep_resident_kib,
                self.max_memory_limit_mib << 10
            ));
        }
        if !(1..=1024).contains(&self.max_upload_mib) {
            problems.push(format!(
                "--max-upload-mib is {}: use 1 to 1024",
                self.max_upload_mib
            ));
        }
        if self.max_cached_components == 0 {
            problems.push("--max-cached-components is 0: keep at least 1".into());
        }
        if self.reload_debounce_ms > MAX_RELOAD_DEBOUNCE_MS {
            problems.push(format!(
                "--reload-debounce-ms is {}: use 0 to {MAX_RELOAD_DEBOUNCE_MS}",
                self.reload_debounce_ms
            ));
        }
        if self.max_queued == 0 {
            problems.push("--max-queued is 0: no job could be accepted; use at least 1".into());
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Config {
            listen: self.listen,
            tasks: TasksSettings {
                dir: self.tasks_dir,
                watch: self.watch_tasks,
                debounce: Duration::from_millis(self.reload_debounce_ms),
                wait_until_loaded: self.wait_for_tasks,
            },
            cache_dir: self
                .cache_dir
                .unwrap_or_else(|| self.data_dir.join("cache")),
            data_dir: self.data_dir,
            engine: EngineSettings {
                fuel_metering: self.fuel_metering,
                max_wasm_stack: self.max_wasm_stack_kib << 10,
                pool,
                http_allowed,
                log: LogLimits {
                    max_lines: self.max_log_lines,
                    max_bytes: self.max_log_kib << 10,
                },
            },
            scheduler: SchedulerSettings {
                workers,
                pin_workers: self.pin_workers,
                max_queued: self.max_queued,
                io_threads: self.io_threads,
                max_io_running: self.max_io_jobs,
            },
            limits: LimitPolicy {
                default_timeout: Duration::from_millis(self.job_timeout_ms),
                max_timeout: Duration::from_millis(self.max_job_timeout_ms),
                default_memory_bytes: self.memory_limit_mib << 20,
                max_memory_bytes: self.max_memory_limit_mib << 20,
                max_fuel: self.max_fuel,
                fuel_metering: self.fuel_metering,
            },
            max_wait: Duration::from_millis(self.max_wait_ms),
            drain_timeout: Duration::from_millis(self.drain_timeout_ms),
            max_finished_jobs: self.max_finished_jobs,
            max_cached_components: self.max_cached_components,
            max_upload_bytes: self.max_upload_mib << 20,
        })
    }
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> ServeArgs {
        Cli::parse_from(std::iter::once("taskhost").chain(args.iter().copied())).serve
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let data = tempfile::tempdir().unwrap();
        let data_dir = data.path().join("d");
        let error = parse(&[
            "--tasks-dir",
            "/definitely/not/here",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--workers",
            "0",
            "--job-timeout-ms",
            "0",
            "--memory-limit-mib",
            "5000",
        ])
        .validate()
        .unwrap_err();
        assert_eq!(error.problems.len(), 4, "{error}");
        let text = error.to_string();
        for flag in [
            "--workers",
            "--tasks-dir",
            "--job-timeout-ms",
            "--memory-limit-mib",
        ] {
            assert!(text.contains(flag), "{flag} missing from: {text}");
        }
    }

    #[test]
    fn a_valid_configuration_creates_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("state");
        let config = parse(&[
            "--tasks-dir",
            dir.path().to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--workers",
            "2",
        ])
        .validate()
        .unwrap();
        assert!(data_dir.is_dir());
        assert_eq!(config.scheduler.workers, 2);
        assert_eq!(config.limits.default_memory_bytes, 256 << 20);
        assert!(config.engine.fuel_metering);
        assert_eq!(config.engine.pool.unwrap().instances, 2 + 4096);
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    const POLICY: LimitPolicy = LimitPolicy {
        default_timeout: Duration::from_secs(30),
        max_timeout: Duration::from_secs(300),
        default_memory_bytes: 256 << 20,
        max_memory_bytes: 1024 << 20,
        max_fuel: Some(1_000_000),
        fuel_metering: true,
    };

    #[test]
    fn a_request_without_limits_gets_the_defaults() {
        let limits = POLICY.resolve(RequestedLimits::default()).unwrap();
        assert_eq!(limits.timeout, Duration::from_secs(30));
        assert_eq!(limits.memory_bytes, 256 << 20);
        assert_eq!(
            limits.fuel,
            Some(1_000_000),
            "the fuel ceiling is the default"
        );
    }

    #[test]
    fn requested_limits_within_the_ceilings_are_kept() {
        let limits = POLICY
            .resolve(RequestedLimits {
                timeout_ms: Some(5),
                fuel: Some(7),
                memory_mib: Some(1024),
            })
            .unwrap();
        assert_eq!(limits.timeout, Duration::from_millis(5));
        assert_eq!(limits.fuel, Some(7));
        assert_eq!(limits.memory_bytes, 1024 << 20);
    }

    #[test]
    fn limits_above_the_ceiling_or_zero_are_refused_with_the_field_named() {
        for (requested, field) in [
            (
                RequestedLimits {
                    timeout_ms: Some(300_001),
                    ..Default::default()
                },
                "timeout_ms",
            ),
            (
                RequestedLimits {
                    timeout_ms: Some(0),
                    ..Default::default()
                },
                "timeout_ms",
            ),
            (
                RequestedLimits {
                    memory_mib: Some(1025),
                    ..Default::default()
                },
                "memory_mib",
            ),
            (
                RequestedLimits {
                    fuel: Some(1_000_001),
                    ..Default::default()
                },
                "fuel",
            ),
        ] {
            let error = POLICY.resolve(requested).unwrap_err();
            assert!(error.to_string().starts_with(field), "{error}");
        }
    }

    #[test]
    fn fuel_cannot_be_asked_for_without_metering() {
        let policy = LimitPolicy {
            fuel_metering: false,
            max_fuel: None,
            ..POLICY
        };
        let requested = RequestedLimits {
            fuel: Some(10),
            ..Default::default()
        };
        assert_eq!(policy.resolve(requested), Err(LimitError::FuelNotMetered));
        assert_eq!(
            policy.resolve(RequestedLimits::default()).unwrap().fuel,
            None
        );
    }
}
