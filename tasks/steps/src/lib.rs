//! `steps`: works through `steps` steps of `ms` milliseconds each (waiting on the WASI
//! monotonic clock), logging each and reporting its progress, as a long job that people
//! watch does. IO-bound, like `sleep`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct In {
    steps: u64,
    #[serde(default)]
    ms: u64,
}

#[derive(Serialize)]
struct Out {
    steps: u64,
}

#[taskhost_sdk::task]
fn run(input: In) -> Out {
    for step in 1..=input.steps {
        std::thread::sleep(Duration::from_millis(input.ms));
        taskhost_sdk::info!("step {step} done");
        taskhost_sdk::progress_message(step, input.steps, &format!("step {step}"));
    }
    Out { steps: input.steps }
}
