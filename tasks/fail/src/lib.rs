//! `fail`: fails on request, to show (and test) how each kind of failure is reported.

use serde::Deserialize;
use taskhost_sdk::TaskError;

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    /// Return a task error: the job fails with `task_error`.
    Error,
    /// Panic: the job fails with `panic` and the panic message.
    Panic,
    /// Execute `unreachable`: the job fails with `trap`.
    Trap,
}

#[derive(Deserialize)]
struct In {
    mode: Mode,
}

#[taskhost_sdk::task]
fn run(input: In) -> Result<(), TaskError> {
    match input.mode {
        Mode::Error => {
            taskhost_sdk::warn!("failing on request");
            Err(TaskError::new("failed on request"))
        }
        Mode::Panic => panic!("panicked on request"),
        Mode::Trap => trap(),
    }
}

#[cfg(target_family = "wasm")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_family = "wasm"))]
fn trap() -> ! {
    std::process::abort()
}
