//! `sleep`: waits `ms` milliseconds on the WASI monotonic clock, then returns. IO-bound, as it
//! declares (its import of `wasi:io/poll` would say so too): it runs on the IO executor and
//! holds no engine thread while it waits.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct In {
    ms: u64,
}

#[derive(Serialize)]
struct Out {
    slept_ms: u64,
}

#[taskhost_sdk::task(kind = "io")]
fn run(input: In) -> Out {
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(input.ms));
    Out {
        slept_ms: started.elapsed().as_millis() as u64,
    }
}
