//! Checking settings and turning them into a [`Config`]: every problem at once, each with what
//! to change.

use std::path::Path;
use std::time::Duration;

use super::{
    Auth, Config, ConfigError, InstanceAllocation, LimitPolicy, ServeArgs, TenantsConfig, setting,
};
use crate::compile::CompileSettings;
use crate::egress::{HttpAllowList, HttpTrust};
use crate::engine::{ComponentLimits, EngineSettings, LogLimits, POOL_SLOT_BYTES, PoolSettings};
use crate::registry::TasksSettings;
use crate::scheduler::{
    SchedulerSettings, default_jobs_memory_mib, default_long_job_threads, default_max_task_threads,
    default_workers,
};
use crate::server::ServerSettings;

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
/// Largest memo cache accepted, in MiB (64 GiB): a larger one is surely a typo.
const MAX_MEMO_CACHE_MIB: u64 = 64 << 10;
/// Bounds of the wasm stack setting, in KiB: below 64 little real code runs; above 64 MiB
/// exceeds what engine threads' native stacks can back.
const MIN_WASM_STACK_KIB: usize = 64;
const MAX_WASM_STACK_KIB: usize = 64 << 10;
/// Longest compile deadline accepted, in milliseconds (an hour).
const MAX_COMPILE_TIMEOUT_MS: u64 = 3_600_000;
/// Bounds of a compile's address space, in MiB: below 256 MiB the compiler barely starts;
/// above 1 TiB is surely a typo.
const MIN_COMPILE_MEMORY_MIB: u64 = 256;
const MAX_COMPILE_MEMORY_MIB: u64 = 1 << 20;
/// Most log lines a job may keep.
const MAX_LOG_LINES: usize = 100_000;
/// Most log text a job may keep, in KiB.
const MAX_LOG_KIB: usize = 16 << 10;
/// Largest `--max-output-kib`: a job's output is held whole while it is checked.
const MAX_OUTPUT_KIB: usize = 256 << 10;
/// Longest HTTP header or body timeout accepted, in milliseconds (10 minutes).
const MAX_HTTP_TIMEOUT_MS: u64 = 600_000;
/// Longest HTTP idle timeout accepted, in milliseconds (an hour).
const MAX_HTTP_IDLE_TIMEOUT_MS: u64 = 3_600_000;
/// Most HTTP connections accepted.
const MAX_HTTP_CONNECTIONS: usize = 1 << 20;

impl ServeArgs {
    /// Checks every setting and creates the data directory; lists all problems at once,
    /// naming each setting by its flag.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let config = self
            .check(&setting::flag)
            .map_err(|problems| ConfigError { problems })?;
        create_data_dir(&config, &setting::flag("data_dir"))?;
        Ok(config)
    }

    /// The configuration these settings make, or every problem with them, each naming the
    /// setting as `name` (given its key) does. Changes nothing: a data directory that does
    /// not exist yet is only checked to be creatable.
    pub(super) fn check(self, name: &dyn Fn(&str) -> String) -> Result<Config, Vec<String>> {
        // The setting of `field`, as the user gave it: checked against the field at compile
        // time.
        macro_rules! name {
            ($field:ident) => {{
                let _ = &self.$field;
                name(stringify!($field))
            }};
        }
        let mut problems = Vec::new();
        if self.auth == Auth::Off
            && !self.listen.ip().is_loopback()
            && !self.auth_off_beyond_loopback
        {
            problems.push(format!(
                "{} is off on {}, beyond loopback: anyone who reaches the port could run code \
                 and manage tenants. Listen on 127.0.0.1, turn auth back on, or confirm with {} \
                 true",
                name!(auth),
                self.listen,
                name!(auth_off_beyond_loopback)
            ));
        }
        let workers = self.workers.unwrap_or_else(default_workers);
        if !(1..=MAX_WORKERS).contains(&workers) {
            problems.push(format!(
                "{} is {workers}: use 1 to {MAX_WORKERS} (default: one per core)",
                name!(workers)
            ));
        }
        if !self.tasks_dir.is_dir() {
            problems.push(format!(
                "{} is {}, which is not a directory: build the example tasks with \
                 `tasks/build.sh`, or point it at a directory of NAME.wasm components",
                name!(tasks_dir),
                self.tasks_dir.display()
            ));
        }
        if let Some(file) = in_the_way(&self.data_dir) {
            problems.push(format!(
                "{} is {}, which cannot be a directory ({} is a file): choose another \
                 directory",
                name!(data_dir),
                self.data_dir.display(),
                file.display()
            ));
        }
        if !(1..=self.max_job_timeout_ms).contains(&self.job_timeout_ms) {
            problems.push(format!(
                "{} is {}: use 1 to {} ({})",
                name!(job_timeout_ms),
                self.job_timeout_ms,
                name!(max_job_timeout_ms),
                self.max_job_timeout_ms
            ));
        }
        if !(1..=MAX_MEMORY_MIB).contains(&self.max_memory_limit_mib) {
            problems.push(format!(
                "{} is {}: use 1 to {MAX_MEMORY_MIB}",
                name!(max_memory_limit_mib),
                self.max_memory_limit_mib
            ));
        }
        if !(1..=self.max_memory_limit_mib).contains(&self.memory_limit_mib) {
            problems.push(format!(
                "{} is {}: use 1 to {} ({})",
                name!(memory_limit_mib),
                self.memory_limit_mib,
                name!(max_memory_limit_mib),
                self.max_memory_limit_mib
            ));
        }
        if self.max_fuel.is_some() && !self.fuel_metering.allows_budgets() {
            problems.push(format!(
                "{} needs fuel metering: drop it or set {} to on-demand or always",
                name!(max_fuel),
                name!(fuel_metering)
            ));
        }
        if self.max_fuel == Some(0) {
            problems.push(format!(
                "{} is 0: no job could run; give at least 1",
                name!(max_fuel)
            ));
        }
        if !(MIN_WASM_STACK_KIB..=MAX_WASM_STACK_KIB).contains(&self.max_wasm_stack_kib) {
            problems.push(format!(
                "{} is {}: use {MIN_WASM_STACK_KIB} to {MAX_WASM_STACK_KIB}",
                name!(max_wasm_stack_kib),
                self.max_wasm_stack_kib
            ));
        }
        if !(1..=MAX_LOG_LINES).contains(&self.max_log_lines) {
            problems.push(format!(
                "{} is {}: use 1 to {MAX_LOG_LINES}",
                name!(max_log_lines),
                self.max_log_lines
            ));
        }
        if !(1..=MAX_LOG_KIB).contains(&self.max_log_kib) {
            problems.push(format!(
                "{} is {}: use 1 to {MAX_LOG_KIB}",
                name!(max_log_kib),
                self.max_log_kib
            ));
        }
        if !(1..=MAX_WORKERS).contains(&self.io_threads) {
            problems.push(format!(
                "{} is {}: use 1 to {MAX_WORKERS}",
                name!(io_threads),
                self.io_threads
            ));
        }
        let max_jobs_memory_mib = self
            .max_jobs_memory_mib
            .unwrap_or_else(default_jobs_memory_mib);
        if max_jobs_memory_mib < self.max_memory_limit_mib {
            problems.push(format!(
                "{} is {max_jobs_memory_mib}, less than one job may use ({} is {}): no such \
                 job could ever start; raise it or lower the job limit",
                name!(max_jobs_memory_mib),
                name!(max_memory_limit_mib),
                self.max_memory_limit_mib
            ));
        }
        let max_task_threads = self
            .max_task_threads
            .unwrap_or(default_max_task_threads(workers));
        // Shares of the engine threads are checked only against a valid number of them.
        let workers_valid = (1..=MAX_WORKERS).contains(&workers);
        if workers_valid && !(1..=workers).contains(&max_task_threads) {
            problems.push(format!(
                "{} is {max_task_threads}: use 1 to {workers} (the engine threads)",
                name!(max_task_threads)
            ));
        }
        let long_job_threads = self
            .long_job_threads
            .unwrap_or(default_long_job_threads(workers));
        if workers_valid && !(1..=workers).contains(&long_job_threads) {
            problems.push(format!(
                "{} is {long_job_threads}: use 1 to {workers} (the engine threads)",
                name!(long_job_threads)
            ));
        }
        if self.max_io_jobs == 0 {
            problems.push(format!(
                "{} is 0: no IO-bound job could run; use at least 1",
                name!(max_io_jobs)
            ));
        }
        let http_allowed = HttpAllowList::parse(&self.allow_http_hosts).unwrap_or_else(|error| {
            problems.push(format!("{}: {error}", name!(allow_http_hosts)));
            HttpAllowList::default()
        });
        let http_trust = HttpTrust::with_ca_files(&self.http_ca_files).unwrap_or_else(|error| {
            problems.push(format!("{}: {error}", name!(http_ca_files)));
            HttpTrust::default()
        });
        // Every job may run on an async stack: IO jobs, and CPU jobs of components that can
        // wait (see `TaskEngine::run`).
        let pool =
            (self.instance_allocation == InstanceAllocation::Pooling).then(|| PoolSettings {
                instances: u32::try_from(workers + self.max_io_jobs).unwrap_or(u32::MAX),
                async_stacks: u32::try_from(workers + self.max_io_jobs).unwrap_or(u32::MAX),
                max_memory_bytes: self.max_memory_limit_mib << 20,
                keep_resident_bytes: self.pool_keep_resident_kib << 10,
                max_resident_bytes: self.pool_keep_resident_mib << 20,
            });
        if let Some(pool) = pool {
            let max_instances = MAX_POOL_RESERVATION / POOL_SLOT_BYTES;
            if u64::from(pool.instances) > max_instances {
                problems.push(format!(
                    "{} plus {} is {}: a pool of more than {max_instances} instances does not \
                     fit the address space; lower {} or set {} to on-demand",
                    name!(workers),
                    name!(max_io_jobs),
                    pool.instances,
                    name!(max_io_jobs),
                    name!(instance_allocation)
                ));
            }
        }
        if self.pool_keep_resident_kib > self.max_memory_limit_mib << 10 {
            problems.push(format!(
                "{} is {}: use 0 to {} in KiB ({})",
                name!(pool_keep_resident_kib),
                self.pool_keep_resident_kib,
                name!(max_memory_limit_mib),
                self.max_memory_limit_mib << 10
            ));
        }
        in_range(
            &mut problems,
            name!(pool_keep_resident_mib),
            self.pool_keep_resident_mib,
            0..=1 << 20,
        );
        if !(1..=1024).contains(&self.max_upload_mib) {
            problems.push(format!(
                "{} is {}: use 1 to 1024",
                name!(max_upload_mib),
                self.max_upload_mib
            ));
        }
        let compile_jobs = self.compile_jobs.unwrap_or_else(default_workers);
        in_range(
            &mut problems,
            name!(compile_jobs),
            compile_jobs,
            1..=MAX_WORKERS,
        );
        in_range(
            &mut problems,
            name!(compile_timeout_ms),
            self.compile_timeout_ms,
            1..=MAX_COMPILE_TIMEOUT_MS,
        );
        in_range(
            &mut problems,
            name!(compile_memory_mib),
            self.compile_memory_mib,
            MIN_COMPILE_MEMORY_MIB..=MAX_COMPILE_MEMORY_MIB,
        );
        in_range(
            &mut problems,
            name!(max_artifact_mib),
            self.max_artifact_mib,
            1..=4096,
        );
        in_range(
            &mut problems,
            name!(max_functions),
            self.max_functions,
            1..=1_000_000,
        );
        in_range(
            &mut problems,
            name!(max_function_kib),
            self.max_function_kib,
            1..=(1 << 20),
        );
        in_range(
            &mut problems,
            name!(max_data_mib),
            self.max_data_mib,
            0..=4096,
        );
        in_range(
            &mut problems,
            name!(max_imports),
            self.max_imports,
            0..=1_000_000,
        );
        if let Some(compiler) = &self.compiler
            && !compiler.is_file()
        {
            problems.push(format!(
                "{} is {}, which is not a file: name a taskhost binary, or leave it out",
                name!(compiler),
                compiler.display()
            ));
        }
        if self.memo_cache_mib > MAX_MEMO_CACHE_MIB {
            problems.push(format!(
                "{} is {}: use at most {MAX_MEMO_CACHE_MIB} (0 turns memoization off)",
                name!(memo_cache_mib),
                self.memo_cache_mib
            ));
        }
        if self.max_cached_components == 0 {
            problems.push(format!(
                "{} is 0: keep at least 1",
                name!(max_cached_components)
            ));
        }
        if self.reload_debounce_ms > MAX_RELOAD_DEBOUNCE_MS {
            problems.push(format!(
                "{} is {}: use 0 to {MAX_RELOAD_DEBOUNCE_MS}",
                name!(reload_debounce_ms),
                self.reload_debounce_ms
            ));
        }
        in_range(
            &mut problems,
            name!(max_output_kib),
            self.max_output_kib,
            1..=MAX_OUTPUT_KIB,
        );
        if self.max_records_mib << 10 < self.max_output_kib {
            problems.push(format!(
                "{} is {} MiB, less than one job's largest output ({} is {} KiB): raise it \
                 or lower the output limit",
                name!(max_records_mib),
                self.max_records_mib,
                name!(max_output_kib),
                self.max_output_kib
            ));
        }
        if self.max_queued == 0 {
            problems.push(format!(
                "{} is 0: no job could be accepted; use at least 1",
                name!(max_queued)
            ));
        }
        for (name, value, max) in [
            (
                name!(http_header_timeout_ms),
                self.http_header_timeout_ms,
                MAX_HTTP_TIMEOUT_MS,
            ),
            (
                name!(http_body_timeout_ms),
                self.http_body_timeout_ms,
                MAX_HTTP_TIMEOUT_MS,
            ),
            (
                name!(http_idle_timeout_ms),
                self.http_idle_timeout_ms,
                MAX_HTTP_IDLE_TIMEOUT_MS,
            ),
            (
                name!(http_write_timeout_ms),
                self.http_write_timeout_ms,
                MAX_HTTP_TIMEOUT_MS,
            ),
        ] {
            if !(1..=max).contains(&value) {
                problems.push(format!("{name} is {value}: use 1 to {max}"));
            }
        }
        if self.http_body_min_bytes_per_sec == 0 {
            problems.push(format!(
                "{} is 0: a body that stopped would never be cut; use at least 1",
                name!(http_body_min_bytes_per_sec)
            ));
        }
        if self.http_max_requests_per_connection == 0 {
            problems.push(format!(
                "{} is 0: no request could be served; use at least 1",
                name!(http_max_requests_per_connection)
            ));
        }
        let connections = 1..=MAX_HTTP_CONNECTIONS;
        if let Some(max) = self
            .http_max_connections
            .filter(|max| !connections.contains(max))
        {
            problems.push(format!(
                "{} is {max}: use 1 to {MAX_HTTP_CONNECTIONS}",
                name!(http_max_connections)
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            listen: self.listen,
            auth: self.auth,
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
                http_trust,
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
                max_jobs_memory_bytes: (max_jobs_memory_mib as u64) << 20,
                // The host sets it from the engine it starts: the pool may fall back.
                pool_memories: None,
                max_task_threads,
                long_job: Duration::from_millis(self.long_job_ms),
                long_job_threads,
            },
            limits: LimitPolicy {
                default_timeout: Duration::from_millis(self.job_timeout_ms),
                max_timeout: Duration::from_millis(self.max_job_timeout_ms),
                default_memory_bytes: self.memory_limit_mib << 20,
                max_memory_bytes: self.max_memory_limit_mib << 20,
                max_fuel: self.max_fuel,
                fuel_metering: self.fuel_metering,
                max_output_bytes: self.max_output_kib << 10,
            },
            max_wait: Duration::from_millis(self.max_wait_ms),
            drain_timeout: Duration::from_millis(self.drain_timeout_ms),
            max_finished_jobs: self.max_finished_jobs,
            max_records_bytes: self.max_records_mib << 20,
            max_cached_components: self.max_cached_components,
            max_upload_bytes: self.max_upload_mib << 20,
            compile: CompileSettings {
                compiler: self.compiler,
                jobs: compile_jobs,
                timeout: Duration::from_millis(self.compile_timeout_ms),
                memory_bytes: self.compile_memory_mib << 20,
                max_artifact_bytes: self.max_artifact_mib << 20,
                limits: ComponentLimits {
                    max_bytes: self.max_upload_mib << 20,
                    max_functions: self.max_functions,
                    max_function_bytes: self.max_function_kib << 10,
                    max_data_bytes: self.max_data_mib << 20,
                    max_imports: self.max_imports,
                },
            },
            memo_cache_bytes: self.memo_cache_mib << 20,
            http: ServerSettings {
                max_connections: self.http_max_connections,
                header_timeout: Duration::from_millis(self.http_header_timeout_ms),
                idle_timeout: Duration::from_millis(self.http_idle_timeout_ms),
                write_timeout: Duration::from_millis(self.http_write_timeout_ms),
                body_timeout: Duration::from_millis(self.http_body_timeout_ms),
                body_min_bytes_per_sec: self.http_body_min_bytes_per_sec,
                max_requests_per_connection: self.http_max_requests_per_connection,
            },
            // The config file alone declares tenants: `Resolved::check` adds them.
            tenants: TenantsConfig::default(),
        })
    }
}

/// Adds a problem if `value` of the setting `name` is out of `range`.
fn in_range<T: PartialOrd + std::fmt::Display>(
    problems: &mut Vec<String>,
    name: String,
    value: T,
    range: std::ops::RangeInclusive<T>,
) {
    if !range.contains(&value) {
        problems.push(format!(
            "{name} is {value}: use {} to {}",
            range.start(),
            range.end()
        ));
    }
}

/// The file that keeps `dir` from being created as a directory, if any: `dir` itself, or the
/// nearest of its ancestors that exists.
fn in_the_way(dir: &Path) -> Option<&Path> {
    let existing = dir.ancestors().find(|path| path.exists())?;
    (!existing.is_dir()).then_some(existing)
}

/// Creates the data directory of `config`, named `name` in the problem if that fails.
pub(super) fn create_data_dir(config: &Config, name: &str) -> Result<(), ConfigError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|error| ConfigError {
        problems: vec![format!(
            "{name} is {}, which cannot be created ({error}): choose a writable directory",
            config.data_dir.display()
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FuelMetering;
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
        assert_eq!(config.engine.fuel_metering, FuelMetering::OnDemand);
        assert_eq!(config.engine.pool.unwrap().instances, 2 + 256);
    }

    #[test]
    fn the_settings_without_flags_are_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServeArgs::defaults(dir.path(), dir.path().join("state"))
            .check(&setting::flag)
            .unwrap();
        let data_dir = dir.path().join("state");
        let defaults = Config::default();
        assert_eq!(
            config,
            Config {
                tasks: TasksSettings {
                    dir: dir.path().into(),
                    ..defaults.tasks.clone()
                },
                cache_dir: data_dir.join("cache"),
                data_dir,
                ..defaults
            }
        );
        assert_eq!(defaults.cache_dir, defaults.data_dir.join("cache"));
    }
}
