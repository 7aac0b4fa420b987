//! End-to-end tests: the real `taskhost` binary, real components, real HTTP.
//!
//! One test binary with a module per area (run by the `taskhost` package, so that
//! `CARGO_BIN_EXE_taskhost` is the binary built in this very run).

mod api;
mod api_edges;
mod auth;
mod batches;
mod cache;
mod cli;
mod compile_limits;
mod config;
mod embedded;
mod events;
mod flow;
mod fuel;
mod hardening;
mod hardening_http;
mod hostile;
mod http;
mod io;
mod jobs;
mod kind;
mod limits;
mod memo;
mod metrics;
mod namespaces;
mod openapi;
mod pool;
mod quotas;
mod reload;
mod report;
mod tenants;
mod upload;

use std::path::Path;

use serde_json::{Value, json};
use taskhost_tests::{Hostile, Server, fixtures};

use crate::upload::server_over;

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

/// A server with `flags` over a tasks directory of its own holding the example tasks, so that
/// tests may upload to it; the directory lives as long as the server.
struct Hostiles {
    server: Server,
    _tasks: tempfile::TempDir,
}

impl Hostiles {
    /// Kills the server and starts it again over the same tasks and data directories.
    fn restart(self) -> Self {
        Self {
            server: self.server.restart(),
            _tasks: self._tasks,
        }
    }
}

impl std::ops::Deref for Hostiles {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

fn hostiles_with(flags: &[&str]) -> Hostiles {
    let tasks = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures::TASKS_DIR).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tasks.path().join(path.file_name().unwrap())).unwrap();
    }
    let server = server_over(tasks.path(), flags);
    server.loaded_tasks();
    Hostiles {
        server,
        _tasks: tasks,
    }
}

/// Uploads `hostile` as task `name`.
fn upload(server: &Server, name: &str, hostile: &Hostile) {
    let response = server.put(
        &format!("/v1/tasks/{name}"),
        "application/wasm",
        &hostile.component(),
    );
    assert!(
        [200, 201].contains(&response.status),
        "uploading {name}: {}; server log:\n{}",
        response.text,
        server.log()
    );
}

/// Submits `job` without waiting; returns its id.
fn submit(server: &Server, job: Value) -> String {
    let response = server.post_json("/v1/jobs", &job);
    assert_eq!(response.status, 202, "{}", response.text);
    response.json["id"].as_str().unwrap().to_owned()
}

/// The record of job `id` once it has started (or finished).
fn started(server: &Server, id: &str) -> Value {
    server
        .get(&format!("/v1/jobs/{id}?wait_ms=60000&until=started"))
        .json
}

/// The record of job `id` once it has finished.
fn finished(server: &Server, id: &str) -> Value {
    server.get(&format!("/v1/jobs/{id}?wait_ms=60000")).json
}

/// Asserts that the server answers `/healthz` and runs a real job.
/// A mebibyte.
const MIB: u64 = 1 << 20;

/// Asserts that the server's memory by `measure` (RSS, peak RSS, PSS), `before` and `after`
/// an attack in bytes, grew by less than the 100 MiB the hardening issue allows.
fn assert_memory_came_back(measure: &str, before: u64, after: u64) {
    assert!(
        after < before + MEMORY_SLACK,
        "{measure} grew from {} to {} MiB",
        before / MIB,
        after / MIB
    );
}

/// How far the server's memory may stay above its baseline after an attack (the issue's
/// bound).
const MEMORY_SLACK: u64 = 100 * MIB;

/// Waits up to `within` for the server's `measure` (as `read` reads it) to come back within
/// [`MEMORY_SLACK`] of `before`: what the host gives back once idle comes back a moment later.
fn wait_for_memory_to_come_back(
    measure: &str,
    before: u64,
    within: std::time::Duration,
    read: impl Fn() -> u64,
) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let now = read();
        if now < before + MEMORY_SLACK {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{measure} stayed at {} MiB, from {} MiB before",
            now / MIB,
            before / MIB
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn assert_still_serving(server: &Server) {
    assert_eq!(server.get("/healthz").status, 200);
    let job = run_job(
        server,
        json!({"task": "uppercase", "input": {"text": "ok"}}),
    );
    assert_eq!(job["output"]["upper"], "OK", "{job}");
}
