//! The `taskhost` commands besides `serve`: clients of a running server (`task`, `job`,
//! `batch`, `tenant`) and helpers for writing tasks (`new`, `build`).
//!
//! This module holds the clap types; each command group runs in its own module, [`client`]
//! speaks HTTP and [`output`] prints. Errors end here: printed as `error: ...`, exit code 1.

mod batch;
mod checkout;
mod client;
mod job;
mod output;
mod scaffold;
mod task;
mod tenant;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use taskhost::host::is_valid_task_name;
use taskhost::jobs::{JobId, JobStatus, Kind};

use client::Client;

/// The commands besides `serve`.
#[derive(Subcommand)]
pub enum Command {
    /// Upload, list and delete the tasks a server runs.
    Task {
        #[command(flatten)]
        server: ServerArg,
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Submit jobs, wait for them, cancel them, list them.
    Job {
        #[command(flatten)]
        server: ServerArg,
        #[command(subcommand)]
        command: JobCommand,
    },
    /// Create, list and delete tenants; issue and revoke their API keys. Takes the admin key:
    /// --key, TASKHOST_KEY, or DATA_DIR/admin.key.
    Tenant {
        #[command(flatten)]
        server: ServerArg,
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Run many jobs from JSON lines, a few at a time; print their results in input order.
    ///
    /// Each line is a job spec, `{"task", "input", ...}` with the fields of `POST /v1/jobs`,
    /// or with --task, the input of a job of that task. Blank lines are skipped. Each result
    /// is written to stdout as one JSON line, in the order of the input: the job's final
    /// record, or `{"line", "error": {"code", "message"}}` for a line that could not be
    /// submitted. Job options (--timeout-ms ...) apply to every job whose line does not set
    /// them. A full queue (429) is waited out and retried. A progress bar shows on stderr
    /// when it is a terminal. Exits non-zero if any job failed or any line could not
    /// be submitted, with a summary on stderr.
    Batch(BatchArgs),
    /// Create a task crate that builds as it is.
    ///
    /// Inside a taskhost checkout the crate goes to tasks/NAME, where it joins the tasks
    /// workspace and `taskhost build NAME` builds it. Elsewhere (--dir) it is a crate of its
    /// own that depends on the checkout's SDK.
    New(NewArgs),
    /// Build tasks to components in target/tasks/ (runs the checkout's tasks/build.sh).
    Build(BuildArgs),
}

/// `--server` and the API key, for every command that talks to a server.
#[derive(Args)]
pub struct ServerArg {
    /// The taskhost server to talk to.
    #[arg(
        long = "server",
        value_name = "URL",
        env = "TASKHOST_URL",
        default_value = "http://127.0.0.1:7070",
        value_parser = server_url,
        global = true
    )]
    url: String,
    /// The API key to send [default: the one in DATA_DIR/default.key, which a server started
    /// without tenants writes].
    #[arg(long, env = "TASKHOST_KEY", hide_env_values = true, global = true)]
    key: Option<String>,
    /// The data directory of a server started here, whose default.key to send when no key
    /// is given.
    #[arg(long, env = "TASKHOST_DATA_DIR", default_value_os_t = taskhost::Config::default().data_dir, global = true)]
    data_dir: PathBuf,
}

impl ServerArg {
    /// A client of the server, sending the key given, else the default tenant's of the data
    /// directory, if it has one.
    fn client(&self) -> Client {
        self.client_with(taskhost::tenants::DEFAULT_KEY_FILE)
    }

    /// A client of the server's admin routes, sending the key given, else the admin key of
    /// the data directory, if it has one.
    fn admin_client(&self) -> Client {
        self.client_with(taskhost::tenants::ADMIN_KEY_FILE)
    }

    /// A client sending the key given, else the one in `key_file` of the data directory.
    fn client_with(&self, key_file: &str) -> Client {
        let key = self.key.clone().or_else(|| {
            std::fs::read_to_string(self.data_dir.join(key_file))
                .ok()
                .map(|key| key.trim().to_owned())
        });
        Client::new(&self.url, key.as_deref())
    }
}

/// `taskhost tenant ...`.
#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create tenant ID, with no keys yet (`taskhost tenant key new ID` issues one).
    Add {
        /// 1 to 63 of a-z, 0-9 and -.
        id: String,
        /// A quota of the tenant, as NAME=VALUE (`--quota max_queued_jobs=100`); repeat for
        /// more. The names are those of `taskhost tenant quotas --help`.
        #[arg(long = "quota", value_name = "NAME=VALUE", value_parser = quota)]
        quotas: Vec<(String, u64)>,
    },
    /// Show tenant ID's quotas, or replace them with those given (a quota not given is no
    /// longer set): max_queued_jobs, submissions_per_second, submission_burst,
    /// max_timeout_ms, max_memory_mib, max_fuel, max_running_cpu_jobs, max_running_io_jobs,
    /// weight, max_task_bytes, max_tasks, max_stored_task_bytes.
    Quotas {
        /// The tenant.
        id: String,
        /// A quota, as NAME=VALUE; repeat for more.
        #[arg(long = "quota", value_name = "NAME=VALUE", value_parser = quota)]
        quotas: Vec<(String, u64)>,
        /// Remove every quota of the tenant.
        #[arg(long, conflicts_with = "quotas")]
        clear: bool,
    },
    /// List the tenants, with their keys' ids.
    List {
        /// Print the server's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete tenant ID: its keys stop working at once.
    Rm {
        /// The tenant.
        id: String,
    },
    /// Issue or revoke a tenant's API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

/// `NAME=VALUE`, a quota and its value.
fn quota(text: &str) -> Result<(String, u64), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE (e.g. max_queued_jobs=100)"))?;
    let value = value
        .parse()
        .map_err(|_| format!("the value of {name} must be a whole number, not {value:?}"))?;
    Ok((name.to_owned(), value))
}

/// `taskhost tenant key ...`.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Issue tenant ID a new key: printed on stdout, this once.
    New {
        /// The tenant.
        id: String,
    },
    /// Make a new key without a server, for a tenant of the config file: the key on stdout,
    /// its hash (for `key_hashes` in `[[tenants]]`) on stderr.
    Generate,
    /// Revoke key KEY_ID of tenant ID: refused from the next request on.
    Revoke {
        /// The tenant.
        id: String,
        /// The key's id (`taskhost tenant list` shows them).
        key_id: String,
    },
}

/// `taskhost task ...`.
#[derive(Subcommand)]
pub enum TaskCommand {
    /// Upload a component as task NAME, the key's tenant's own (seen by that tenant alone,
    /// over any shared task of the name), or with --shared every tenant's; it serves once it
    /// has compiled. Replaces an earlier version: jobs already running finish on the version
    /// they started with.
    Push {
        /// The task's name: 1 to 64 ASCII letters, digits, `_` or `-`.
        #[arg(value_parser = task_name)]
        name: String,
        /// The component, e.g. target/tasks/NAME.wasm.
        file: PathBuf,
        #[command(flatten)]
        shared: SharedArg,
    },
    /// List the tasks the key's tenant sees (its own and the shared ones; name, kind, size,
    /// hash, since when, origin), the tasks still loading, and files that did not load.
    List {
        /// Print the server's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        shared: SharedArg,
    },
    /// Delete task NAME (the key's tenant's own, or with --shared the shared one) and its file.
    Rm {
        /// The task's name.
        #[arg(value_parser = task_name)]
        name: String,
        #[command(flatten)]
        shared: SharedArg,
    },
}

impl TaskCommand {
    /// Whether the command acts on the shared tasks, with the admin key.
    fn shared(&self) -> bool {
        let (Self::Push { shared, .. } | Self::List { shared, .. } | Self::Rm { shared, .. }) =
            self;
        shared.shared
    }
}

/// `--shared`: act on the tasks every tenant shares.
#[derive(Args)]
pub struct SharedArg {
    /// The tasks every tenant shares (the operator's): sends the admin key (--key, else
    /// DATA_DIR/admin.key) instead of a tenant's.
    #[arg(long)]
    shared: bool,
}

/// `taskhost job ...`.
#[derive(Subcommand)]
pub enum JobCommand {
    /// Submit a job and print its record (as JSON, indented on a terminal).
    Submit(SubmitArgs),
    /// Print a job's record.
    Get {
        /// The job's id.
        #[arg(value_parser = job_id)]
        id: JobId,
    },
    /// Wait for a job to finish and print its record; exit non-zero if it failed (or did not
    /// finish within --timeout-ms).
    Wait {
        /// The job's id.
        #[arg(value_parser = job_id)]
        id: JobId,
        /// How long to wait at most, in milliseconds [default: until it finishes].
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
    },
    /// Cancel a job and print its final record: a queued job never starts, a running one is
    /// stopped.
    Cancel {
        /// The job's id.
        #[arg(value_parser = job_id)]
        id: JobId,
    },
    /// List jobs, newest first.
    List(ListArgs),
}

/// `taskhost job submit`.
#[derive(Args)]
pub struct SubmitArgs {
    /// The task to run.
    task: String,
    /// The job's input as JSON text, e.g. '{"text": "hi"}'; `-` reads it from stdin. When
    /// absent, stdin is read if it is not a terminal; else the input is null.
    input: Option<String>,
    /// Wait for the job to finish and print its final record; exit non-zero if it failed.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    options: JobOptions,
    /// Submit at most once: a retry with the same key (and body) returns the first job.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
}

/// Limits and placement of a job: the optional fields of a submission. Unset, the server's
/// defaults apply.
#[derive(Args, Serialize)]
#[command(next_help_heading = "Job options")]
pub struct JobOptions {
    /// The job's wall-clock deadline, in milliseconds.
    #[arg(long, value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    /// The job's CPU budget, in fuel units.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    fuel: Option<u64>,
    /// The job's linear memory limit, in MiB.
    #[arg(long, value_name = "MIB")]
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_mib: Option<usize>,
    /// Where the job runs [default: the task's own kind].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<Kind>,
    /// Reuse the result of an earlier run on the same input instead of running, if there
    /// is one (deterministic tasks only: no clock, randomness or network); `--memoize=false`
    /// runs even a task that declares `memoize` [default: as the task declares].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    memoize: Option<bool>,
}

/// `taskhost job list`.
#[derive(Args)]
pub struct ListArgs {
    /// Only jobs in this status.
    #[arg(long)]
    status: Option<JobStatus>,
    /// Only jobs of this task.
    #[arg(long)]
    task: Option<String>,
    /// Jobs per page, 1 to 1000 [server's default: 50].
    #[arg(long)]
    limit: Option<usize>,
    /// Every page, not only the first.
    #[arg(long)]
    all: bool,
    /// Print JSON, `{"jobs", "next_cursor"}` as the API pages them, instead of a table.
    #[arg(long)]
    json: bool,
}

/// `taskhost batch`.
#[derive(Args)]
pub struct BatchArgs {
    #[command(flatten)]
    server: ServerArg,
    /// Run this task, with each line as its input.
    #[arg(long)]
    task: Option<String>,
    /// How many jobs may be in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_concurrent: usize,
    #[command(flatten)]
    options: JobOptions,
    /// The JSON lines to run; `-` or absent: stdin.
    file: Option<PathBuf>,
}

/// `taskhost new`.
#[derive(Args)]
pub struct NewArgs {
    /// The task's name, also its crate's: a letter, then letters, digits, `_` or `-` (at most
    /// 64 in all).
    name: String,
    /// Where to create the crate [default: tasks/NAME in the taskhost checkout around the
    /// current directory].
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// `taskhost build`.
#[derive(Args)]
pub struct BuildArgs {
    /// The tasks to build, by directory name under tasks/ [default: every task].
    #[arg(value_name = "NAME")]
    names: Vec<String>,
}

/// Runs `command`; prints its error, if any, to stderr and says how the process should exit.
pub fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Task { server, command } => {
            // A tenant's key acts on the tenant's own tasks; the admin key on the shared ones.
            let client = if command.shared() {
                server.admin_client()
            } else {
                server.client()
            };
            task::run(&client, command)
        }
        Command::Job { server, command } => job::run(&server.client(), command),
        Command::Tenant { server, command } => tenant::run(&server.admin_client(), command),
        Command::Batch(args) => batch::run(&args.server.client(), &args),
        Command::New(args) => scaffold::run(&args),
        Command::Build(args) => checkout::build(&args.names),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `--server`: an http or https URL.
fn server_url(url: &str) -> Result<String, String> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|error| format!("{error}: give a URL like http://127.0.0.1:7070"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(url.to_owned()),
        _ => Err("give an http:// or https:// URL, like http://127.0.0.1:7070".to_owned()),
    }
}

/// Parses a job id.
fn job_id(id: &str) -> Result<JobId, &'static str> {
    id.parse()
        .map_err(|_| "job ids are UUIDs, like 01a207ca-450d-700d-aa08-3dfac68c4bfa")
}

/// Parses a task name in a path (`/v1/tasks/{name}`).
fn task_name(name: &str) -> Result<String, &'static str> {
    if is_valid_task_name(name) {
        Ok(name.to_owned())
    } else {
        Err("a task name is 1 to 64 ASCII letters, digits, `_` or `-`")
    }
}
