//! The server's configuration: command-line flags (with environment fallbacks), checked all at
//! once before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

    /// Directory for the host's own state; created if missing.
    #[arg(long, env = "TASKHOST_DATA_DIR", default_value = ".taskhost")]
    pub data_dir: PathBuf,

    /// Engine threads that run jobs [default: one per core].
    #[arg(long, env = "TASKHOST_WORKERS")]
    pub workers: Option<usize>,

    /// Wall-clock limit of one job, in milliseconds.
    #[arg(long, env = "TASKHOST_JOB_TIMEOUT_MS", default_value_t = 30_000)]
    pub job_timeout_ms: u64,

    /// Largest linear memory one job may use, in MiB.
    #[arg(long, env = "TASKHOST_MEMORY_LIMIT_MIB", default_value_t = 256)]
    pub memory_limit_mib: usize,

    /// Longest a request may wait for a job to finish (`wait_ms`), in milliseconds.
    #[arg(long, env = "TASKHOST_MAX_WAIT_MS", default_value_t = 60_000)]
    pub max_wait_ms: u64,
}

/// Validated configuration of a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Directory of task components.
    pub tasks_dir: PathBuf,
    /// Directory for the host's own state.
    pub data_dir: PathBuf,
    /// Number of engine threads.
    pub workers: usize,
    /// Wall-clock limit of one job.
    pub job_timeout: Duration,
    /// Largest linear memory of one job, in bytes.
    pub memory_limit_bytes: usize,
    /// Longest a request may wait for a job.
    pub max_wait: Duration,
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

impl ServeArgs {
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
        if self.job_timeout_ms == 0 {
            problems.push("--job-timeout-ms is 0: give jobs at least 1 ms".into());
        }
        if !(1..=MAX_MEMORY_MIB).contains(&self.memory_limit_mib) {
            problems.push(format!(
                "--memory-limit-mib is {}: use 1 to {MAX_MEMORY_MIB}",
                self.memory_limit_mib
            ));
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Config {
            listen: self.listen,
            tasks_dir: self.tasks_dir,
            data_dir: self.data_dir,
            workers,
            job_timeout: Duration::from_millis(self.job_timeout_ms),
            memory_limit_bytes: self.memory_limit_mib << 20,
            max_wait: Duration::from_millis(self.max_wait_ms),
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
        assert_eq!(config.workers, 2);
        assert_eq!(config.memory_limit_bytes, 256 << 20);
    }
}
