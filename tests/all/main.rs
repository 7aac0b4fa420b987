//! End-to-end tests: the real `taskhost` binary, real components, real HTTP.
//!
//! One test binary with a module per area (run by the `taskhost` package, so that
//! `CARGO_BIN_EXE_taskhost` is the binary built in this very run).

mod api;
mod jobs;

use std::path::Path;

use taskhost_tests::Server;
use taskhost_tests::fixtures;

/// A server running every example task.
fn server() -> Server {
    Server::start(
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        fixtures::TASKS_DIR,
        &[],
    )
}
