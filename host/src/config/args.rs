//! The settings of `taskhost serve`, one clap argument each.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::LazyLock;

use clap::builder::BoolishValueParser;

use super::{Auth, Config, LimitPolicy, sources};
use crate::engine::{FuelMetering, LogLimits, PoolSettings};
use crate::server::ServerSettings;

/// The defaults of the settings, which the flags' defaults are (made once, when the flags
/// are).
static DEFAULTS: LazyLock<Config> = LazyLock::new(Config::default);
/// The defaults of per-job limits.
const LIMITS: LimitPolicy = LimitPolicy::DEFAULT;
/// The defaults of a job's log.
const LOG: LogLimits = LogLimits::DEFAULT;
/// The HTTP server's defaults.
const HTTP: ServerSettings = ServerSettings::DEFAULT;

/// The default instance pool's settings.
fn pool() -> PoolSettings {
    DEFAULTS.engine.pool.unwrap_or_default()
}

/// `duration` in whole milliseconds, as the flags take it.
const fn millis(duration: std::time::Duration) -> u64 {
    duration.as_millis() as u64
}

/// Settings of `taskhost serve`. Each is a flag, an environment variable (named in its help)
/// and a key of the config file (the field's name); flags win over variables, which win over
/// the file, which wins over the defaults. Switches take `true`/`false`, `1`/`0`, `yes`/`no`
/// or `on`/`off`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to serve the HTTP API on; port 0 picks a free port.
    #[arg(long, env = "TASKHOST_LISTEN", default_value_t = DEFAULTS.listen)]
    pub listen: SocketAddr,

    /// Whether `/v1` requests need API keys: `keys`, or `off` for a machine of one's own
    /// (requests without a key act as the operator and the `default` tenant). `off` is
    /// refused beyond a loopback address unless --auth-off-beyond-loopback confirms it.
    #[arg(long, env = "TASKHOST_AUTH", value_enum, default_value_t = DEFAULTS.auth)]
    pub auth: Auth,

    /// Confirms `--auth off` on a listen address other than loopback: anyone who reaches
    /// the port may then run code and manage tenants.
    #[arg(long, env = "TASKHOST_AUTH_OFF_BEYOND_LOOPBACK", default_value_t = false, action = clap::ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub auth_off_beyond_loopback: bool,

    /// Directory of task components: every NAME.wasm in it is served as task NAME.
    #[arg(long, env = "TASKHOST_TASKS_DIR", default_value_os_t = DEFAULTS.tasks.dir.clone())]
    pub tasks_dir: PathBuf,

    /// Load task files again as they change (added, saved, renamed or removed): jobs already
    /// running finish on the version they started with.
    #[arg(long, env = "TASKHOST_WATCH_TASKS", default_value_t = DEFAULTS.tasks.watch, action = clap::ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub watch_tasks: bool,

    /// How long the tasks directory must be quiet before changes load, in milliseconds, so
    /// that a save in several writes loads once, complete.
    #[arg(long, env = "TASKHOST_RELOAD_DEBOUNCE_MS", default_value_t = millis(DEFAULTS.tasks.debounce))]
    pub reload_debounce_ms: u64,

    /// Compile every task before serving, instead of in the background (where a job for a
    /// task still compiling waits for it).
    #[arg(long, env = "TASKHOST_WAIT_FOR_TASKS", value_parser = BoolishValueParser::new())]
    pub wait_for_tasks: bool,

    /// Directory for the host's own state; created if missing.
    #[arg(long, env = "TASKHOST_DATA_DIR", default_value_os_t = DEFAULTS.data_dir.clone())]
    pub data_dir: PathBuf,

    /// A host tasks may send HTTP requests to: `api.example.com`, `localhost:8080` (that port
    /// only) or `*.example.com` (its subdomains). Repeat it, or comma-separate in the
    /// environment variable. None by default: every request is denied. A name reaches only
    /// the public addresses it resolves to (never loopback, private, link-local such as cloud
    /// metadata, ...); to reach an internal service, allow its IP address (`10.0.0.5:8080`);
    /// `localhost` reaches loopback.
    #[arg(
        long = "allow-http-host",
        env = "TASKHOST_ALLOW_HTTP_HOSTS",
        value_delimiter = ','
    )]
    pub allow_http_hosts: Vec<String>,

    /// A PEM file of CA certificates that HTTPS requests from tasks trust, besides the
    /// Mozilla roots: for internal services whose certificates an internal CA signed. Repeat
    /// it, or comma-separate in the environment variable.
    #[arg(
        long = "http-ca-file",
        env = "TASKHOST_HTTP_CA_FILES",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    pub http_ca_files: Vec<PathBuf>,

    /// Engine threads that run jobs [default: one per core].
    #[arg(long, env = "TASKHOST_WORKERS")]
    pub workers: Option<usize>,

    /// Wall-clock limit of a job that does not ask for one (`timeout_ms`), in milliseconds.
    #[arg(long, env = "TASKHOST_JOB_TIMEOUT_MS", default_value_t = millis(LIMITS.default_timeout))]
    pub job_timeout_ms: u64,

    /// Largest `timeout_ms` a job may ask for.
    #[arg(long, env = "TASKHOST_MAX_JOB_TIMEOUT_MS", default_value_t = millis(LIMITS.max_timeout))]
    pub max_job_timeout_ms: u64,

    /// Linear memory limit of a job that does not ask for one (`memory_mib`), in MiB.
    #[arg(long, env = "TASKHOST_MEMORY_LIMIT_MIB", default_value_t = LIMITS.default_memory_bytes >> 20)]
    pub memory_limit_mib: usize,

    /// Largest `memory_mib` a job may ask for.
    #[arg(long, env = "TASKHOST_MAX_MEMORY_LIMIT_MIB", default_value_t = LIMITS.max_memory_bytes >> 20)]
    pub max_memory_limit_mib: usize,

    /// Which jobs count fuel, for deterministic CPU budgets (`fuel`) and a report of the fuel
    /// consumed. Metered code is slower (see the benchmarks): `on-demand` runs it only for
    /// jobs with a budget (every job, under `--max-fuel`), compiling a task's metered variant
    /// when its first such job arrives; `always` meters every job; `never` allows no budgets.
    #[arg(long, env = "TASKHOST_FUEL_METERING", value_enum, default_value_t = LIMITS.fuel_metering)]
    pub fuel_metering: FuelMetering,

    /// Largest `fuel` a job may ask for [default: no limit].
    #[arg(long, env = "TASKHOST_MAX_FUEL")]
    pub max_fuel: Option<u64>,

    /// Largest wasm stack of a job, in KiB; deeper recursion fails with `stack_overflow`.
    #[arg(long, env = "TASKHOST_MAX_WASM_STACK_KIB", default_value_t = DEFAULTS.engine.max_wasm_stack >> 10)]
    pub max_wasm_stack_kib: usize,

    /// Largest output a job may return, in KiB (the JSON text): a larger one fails the job
    /// with `output_too_large`. Also the ceiling of a job's own `max_output_kib`.
    #[arg(long, env = "TASKHOST_MAX_OUTPUT_KIB", default_value_t = LIMITS.max_output_bytes >> 10)]
    pub max_output_kib: usize,

    /// Most lines a job's log keeps (SDK log lines, stdout and stderr lines); later ones are
    /// dropped and the log marked truncated.
    #[arg(long, env = "TASKHOST_MAX_LOG_LINES", default_value_t = LOG.max_lines)]
    pub max_log_lines: usize,

    /// Most text a job's log keeps, in KiB.
    #[arg(long, env = "TASKHOST_MAX_LOG_KIB", default_value_t = LOG.max_bytes >> 10)]
    pub max_log_kib: usize,

    /// Most jobs waiting for an engine thread; further submissions get 429.
    #[arg(long, env = "TASKHOST_MAX_QUEUED", default_value_t = DEFAULTS.scheduler.max_queued)]
    pub max_queued: usize,

    /// Threads of the async executor that runs IO-bound jobs.
    #[arg(long, env = "TASKHOST_IO_THREADS", default_value_t = DEFAULTS.scheduler.io_threads)]
    pub io_threads: usize,

    /// Most IO-bound jobs running at once (waiting ones included); more wait in the queue.
    #[arg(long, env = "TASKHOST_MAX_IO_JOBS", default_value_t = DEFAULTS.scheduler.max_io_running)]
    pub max_io_jobs: usize,

    /// Most memory the running jobs may use together, in MiB: each job reserves its whole
    /// limit (`memory_mib`) when it starts, and a job whose limit does not fit what the
    /// running ones leave waits in the queue [default: three quarters of the machine's
    /// memory].
    #[arg(long, env = "TASKHOST_MAX_JOBS_MEMORY_MIB")]
    pub max_jobs_memory_mib: Option<usize>,

    /// Most engine threads the jobs of one task may hold while another task's job waits for
    /// one (with nothing else waiting, a task may use them all) [default: all but one].
    #[arg(long, env = "TASKHOST_MAX_TASK_THREADS")]
    pub max_task_threads: Option<usize>,

    /// Jobs whose deadline (`timeout_ms`) is longer than this, in milliseconds, are long
    /// jobs: they run on at most --long-job-threads engine threads, so that they cannot hold
    /// every thread while short jobs wait.
    #[arg(long, env = "TASKHOST_LONG_JOB_MS", default_value_t = millis(DEFAULTS.scheduler.long_job))]
    pub long_job_ms: u64,

    /// Most engine threads long jobs may hold at once [default: half of them, at least one].
    #[arg(long, env = "TASKHOST_LONG_JOB_THREADS")]
    pub long_job_threads: Option<usize>,

    /// Where instances get their memory: `pooling` reserves address space for every instance
    /// that may exist at once (workers + max IO jobs) and instantiates fastest; `on-demand`
    /// allocates per instance. If the reservation fails, the host falls back to on-demand.
    #[arg(long, env = "TASKHOST_INSTANCE_ALLOCATION", value_enum, default_value_t = InstanceAllocation::Pooling)]
    pub instance_allocation: InstanceAllocation,

    /// Memory kept resident per instance-pool slot between jobs, in KiB: the next job in the
    /// slot then takes no page faults on it. 0 hands every page back to the kernel.
    #[arg(long, env = "TASKHOST_POOL_KEEP_RESIDENT_KIB", default_value_t = pool().keep_resident_bytes >> 10)]
    pub pool_keep_resident_kib: usize,

    /// Memory the idle instance-pool slots keep resident together at most, in MiB: each
    /// slot keeps its share (this divided among `workers + max IO jobs` slots, at most
    /// `--pool-keep-resident-kib`), and gives back every other page when its job ends. So
    /// after a burst of jobs the host's memory returns to its baseline plus this.
    #[arg(long, env = "TASKHOST_POOL_KEEP_RESIDENT_MIB", default_value_t = pool().max_resident_bytes >> 20)]
    pub pool_keep_resident_mib: usize,

    /// Pin each engine thread to a core.
    #[arg(long, env = "TASKHOST_PIN_WORKERS", default_value_t = DEFAULTS.scheduler.pin_workers, action = clap::ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub pin_workers: bool,

    /// Longest a request may wait for a job to finish (`wait_ms`), in milliseconds.
    #[arg(long, env = "TASKHOST_MAX_WAIT_MS", default_value_t = millis(DEFAULTS.max_wait))]
    pub max_wait_ms: u64,

    /// Directory of compiled artifacts, so restarts load instead of compiling
    /// [default: DATA_DIR/cache].
    #[arg(long, env = "TASKHOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compiled components kept in memory; the least recently used go first.
    #[arg(long, env = "TASKHOST_MAX_CACHED_COMPONENTS", default_value_t = DEFAULTS.max_cached_components)]
    pub max_cached_components: usize,

    /// Memory for memoized results of deterministic tasks (jobs with `memoize`), in MiB; 0
    /// turns memoization off.
    #[arg(long, env = "TASKHOST_MEMO_CACHE_MIB", default_value_t = DEFAULTS.memo_cache_bytes >> 20)]
    pub memo_cache_mib: u64,

    /// Largest component `PUT /v1/tasks/{name}` accepts, in MiB; a larger file in the tasks
    /// directory does not load either.
    #[arg(long, env = "TASKHOST_MAX_UPLOAD_MIB", default_value_t = DEFAULTS.max_upload_bytes >> 20)]
    pub max_upload_mib: usize,

    /// Most functions a component may define (its core modules together); one with more is
    /// refused before it compiles.
    #[arg(long, env = "TASKHOST_MAX_FUNCTIONS", default_value_t = DEFAULTS.compile.limits.max_functions)]
    pub max_functions: u64,

    /// Largest function body of a component, in KiB.
    #[arg(long, env = "TASKHOST_MAX_FUNCTION_KIB", default_value_t = DEFAULTS.compile.limits.max_function_bytes >> 10)]
    pub max_function_kib: usize,

    /// Most bytes of data segments (initial memory contents) of a component, in MiB.
    #[arg(long, env = "TASKHOST_MAX_DATA_MIB", default_value_t = DEFAULTS.compile.limits.max_data_bytes >> 20)]
    pub max_data_mib: usize,

    /// Most imports of a component and its core modules together.
    #[arg(long, env = "TASKHOST_MAX_IMPORTS", default_value_t = DEFAULTS.compile.limits.max_imports)]
    pub max_imports: u64,

    /// Components compiling at once [default: one per core]. Components over 4 MiB take at
    /// most all but one of these, so small ones never wait behind them.
    #[arg(long, env = "TASKHOST_COMPILE_JOBS")]
    pub compile_jobs: Option<usize>,

    /// Longest a component may take to compile (wall-clock and CPU time), in milliseconds:
    /// the compile is then stopped and the component refused.
    #[arg(long, env = "TASKHOST_COMPILE_TIMEOUT_MS", default_value_t = millis(DEFAULTS.compile.timeout))]
    pub compile_timeout_ms: u64,

    /// Memory (address space) a compile may use, in MiB: the compile is then stopped and the
    /// component refused.
    #[arg(long, env = "TASKHOST_COMPILE_MEMORY_MIB", default_value_t = DEFAULTS.compile.memory_bytes >> 20)]
    pub compile_memory_mib: u64,

    /// Largest compiled component kept, in MiB; a component that compiles to more is refused.
    #[arg(long, env = "TASKHOST_MAX_ARTIFACT_MIB", default_value_t = DEFAULTS.compile.max_artifact_bytes >> 20)]
    pub max_artifact_mib: u64,

    /// The `taskhost` binary that compiles each component in a child process, within the
    /// limits above [default: this binary, under `taskhost serve`; a program embedding the
    /// host compiles in its own process, where time and memory limits cannot stop a compile].
    #[arg(long, env = "TASKHOST_COMPILER", value_name = "PATH")]
    pub compiler: Option<PathBuf>,

    /// Finished jobs whose records are kept (for `GET /v1/jobs/{id}`); older ones are
    /// forgotten first.
    #[arg(long, env = "TASKHOST_MAX_FINISHED_JOBS", default_value_t = DEFAULTS.max_finished_jobs)]
    pub max_finished_jobs: usize,

    /// Most memory the records of finished jobs may take (outputs, errors, logs), in MiB;
    /// past it the oldest are forgotten first, as past --max-finished-jobs.
    #[arg(long, env = "TASKHOST_MAX_RECORDS_MIB", default_value_t = DEFAULTS.max_records_bytes >> 20)]
    pub max_records_mib: usize,

    /// On SIGINT/SIGTERM, how long accepted jobs may take to finish before the rest are
    /// cancelled, in milliseconds.
    #[arg(long, env = "TASKHOST_DRAIN_TIMEOUT_MS", default_value_t = millis(DEFAULTS.drain_timeout))]
    pub drain_timeout_ms: u64,

    /// Most HTTP connections served at once; past it a connection gets `503
    /// too_many_connections` and is closed [default: half of what the open-file limit leaves
    /// after 320, at most 10000].
    #[arg(long, env = "TASKHOST_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,

    /// How long a connection may take to send a request's headers, from when it opens or
    /// from the request's first byte, in milliseconds; then it is closed.
    #[arg(
        long,
        env = "TASKHOST_HTTP_HEADER_TIMEOUT_MS",
        default_value_t = millis(HTTP.header_timeout)
    )]
    pub http_header_timeout_ms: u64,

    /// How long a connection may stay idle between requests, in milliseconds.
    #[arg(long, env = "TASKHOST_HTTP_IDLE_TIMEOUT_MS", default_value_t = millis(HTTP.idle_timeout))]
    pub http_idle_timeout_ms: u64,

    /// How long writing a response may wait on a client that reads none of it, in
    /// milliseconds: a connection whose response (a listing, an event stream) makes no
    /// progress for this long is closed.
    #[arg(long, env = "TASKHOST_HTTP_WRITE_TIMEOUT_MS", default_value_t = millis(HTTP.write_timeout))]
    pub http_write_timeout_ms: u64,

    /// The window over which a request body's rate is measured, in milliseconds: a body
    /// bringing less than --http-body-min-bytes-per-sec over one is cut (`408 body_timeout`).
    #[arg(long, env = "TASKHOST_HTTP_BODY_TIMEOUT_MS", default_value_t = millis(HTTP.body_timeout))]
    pub http_body_timeout_ms: u64,

    /// The rate a request body must keep, in bytes per second.
    #[arg(
        long,
        env = "TASKHOST_HTTP_BODY_MIN_BYTES_PER_SEC",
        default_value_t = HTTP.body_min_bytes_per_sec
    )]
    pub http_body_min_bytes_per_sec: u64,

    /// Requests served on one connection; the last answer says `Connection: close`.
    #[arg(
        long,
        env = "TASKHOST_HTTP_MAX_REQUESTS_PER_CONNECTION",
        default_value_t = HTTP.max_requests_per_connection
    )]
    pub http_max_requests_per_connection: u64,
}

/// Where instances get their memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InstanceAllocation {
    /// A pool reserved at start.
    Pooling,
    /// Per instance, on demand.
    OnDemand,
}

impl ServeArgs {
    /// The settings `taskhost serve` has with no flags, ignoring `TASKHOST_*` environment
    /// variables and config files, but with these directories: for embedding, where a program
    /// sets fields, then [`validate`](ServeArgs::validate)s.
    pub fn defaults(tasks_dir: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        let mut args = sources::merge(&[]).args;
        args.tasks_dir = tasks_dir.into();
        args.data_dir = data_dir.into();
        args
    }
}
