//! End-to-end tests: the real `taskhost` binary, real components, real HTTP.
//!
//! One test binary with a module per area (run by the `taskhost` package, so that
//! `CARGO_BIN_EXE_taskhost` is the binary built in this very run).

mod api;
mod api_edges;
mod batches;
mod cache;
mod cli;
mod compile_limits;
mod config;
mod embedded;
mod events;
mod flow;
mod hardening;
mod hardening_http;
mod http;
mod io;
mod jobs;
mod kind;
mod limits;
mod memo;
mod metrics;
mod openapi;
mod pool;
mod reload;
mod report;
mod upload;

use std::path::Path;

use taskhost_tests::Server;
use taskhost_tests::fixtures;

/// A server running every example task.
fn server() -> Server {
    server_with(&[])
}

/// A server running every example task, with extra `serve` flags.
fn server_with(flags: &[&str]) -> Server {
    Server::start(
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        fixtures::TASKS_DIR,
        flags,
    )
}

/// Submits a job and waits for it to finish; returns its record.
fn run_job(server: &Server, mut job: serde_json::Value) -> serde_json::Value {
    job["wait_ms"] = 60_000.into();
    let response = server.post_json("/v1/jobs", &job);
    assert_eq!(response.status, 200, "{}", response.text);
    response.json
}

/// The entry for task `name` in a task list (`GET /v1/tasks`).
fn summary<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["name"] == name)
        .unwrap_or_else(|| panic!("no task {name} in {list}"))
}
