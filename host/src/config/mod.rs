//! The server's configuration: settings from a TOML file, environment variables and flags
//! (flags win, then the environment, then the file, then the defaults), checked all at once
//! before anything starts.
//!
//! - `args`: the settings, [`ServeArgs`]: one clap argument each, whose id is also the
//!   setting's key in a config file.
//! - `check`: checking settings and making a [`Config`] of them, listing every problem.
//! - `setting`: what the clap argument of a setting says (key, flag, variable, value type), so
//!   that nothing else lists the settings again.
//! - `file`: reading a config file into values per setting.
//! - `sources`: [`ServeOptions`], and layering flags, environment, file and defaults.
//! - `resolved`: the layered settings, [`Resolved`]: checked, or written out as TOML with
//!   where each value came from.
//! - `limits`: per-job limits, their defaults and ceilings.

mod args;
mod check;
mod file;
mod limits;
mod resolved;
mod setting;
mod sources;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use args::{InstanceAllocation, ServeArgs};
pub use limits::{LimitError, LimitPolicy, RequestedLimits};
pub use resolved::Resolved;
pub use sources::{Origin, ServeOptions};

pub use crate::compile::CompileSettings;
pub use crate::egress::{HttpAllowList, HttpTrust, InvalidHostPattern, TrustError};
pub use crate::engine::{ComponentLimits, EngineSettings, FuelMetering, LogLimits, PoolSettings};
pub use crate::registry::TasksSettings;
pub use crate::scheduler::SchedulerSettings;
pub use crate::server::ServerSettings;
pub use crate::tenants::{Auth, TenantsConfig};

/// Validated configuration of a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Whether requests need API keys.
    pub auth: Auth,
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
    /// Most memory the records of finished jobs may take, in bytes.
    pub max_records_bytes: usize,
    /// Compiled components kept in memory.
    pub max_cached_components: usize,
    /// Largest component an upload may send, in bytes.
    pub max_upload_bytes: usize,
    /// How components are compiled, and what components are.
    pub compile: CompileSettings,
    /// Memory for memoized results, in bytes; 0 turns memoization off.
    pub memo_cache_bytes: u64,
    /// Settings of the HTTP server.
    pub http: ServerSettings,
    /// Tenants of the config file, and the quotas of tenants that set none.
    pub tenants: TenantsConfig,
}

impl Default for Config {
    /// The configuration of `taskhost serve` without flags, environment or config file:
    /// each part's own defaults, on 127.0.0.1:7070, with state in `.taskhost` (compiled
    /// artifacts in `.taskhost/cache`). Waits of at most a minute; 30 s to drain; records of
    /// 100,000 finished jobs, 1 GiB at most; 256 compiled components in memory; uploads as
    /// large as a component may be; 64 MiB of memoized results.
    fn default() -> Self {
        let compile = CompileSettings::default();
        let data_dir = PathBuf::from(".taskhost");
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            auth: Auth::Keys,
            tasks: TasksSettings::default(),
            cache_dir: data_dir.join("cache"),
            data_dir,
            engine: EngineSettings::default(),
            scheduler: SchedulerSettings::default(),
            limits: LimitPolicy::DEFAULT,
            max_wait: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            max_finished_jobs: 100_000,
            max_records_bytes: 1 << 30,
            max_cached_components: 256,
            max_upload_bytes: compile.limits.max_bytes,
            compile,
            memo_cache_bytes: 64 << 20,
            http: ServerSettings::DEFAULT,
            tenants: TenantsConfig::default(),
        }
    }
}

/// Everything wrong with a configuration, each with what to change.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// `taskhost config`: the configuration, without serving.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Check the settings `serve` would run with (the same file, environment and flags) and
    /// print them as TOML, each with where it came from; or print every problem. Starts
    /// nothing and creates no directory.
    Check(ServeOptions),
}

impl ConfigCommand {
    /// Runs the command: what it prints on success.
    pub fn run(self) -> Result<String, ConfigError> {
        match self {
            Self::Check(options) => {
                let resolved = options.resolve();
                resolved.check()?;
                Ok(resolved.to_toml())
            }
        }
    }
}
