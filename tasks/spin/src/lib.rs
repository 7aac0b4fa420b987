//! `spin`: computes for `ms` milliseconds of wall-clock time, then rests `rest_ms` (default 0),
//! as a throttled batch job does between rounds, and says how many rounds it computed.
//!
//! It declares `kind = "cpu"`: resting with `std::thread::sleep` imports `wasi:io/poll`, which
//! alone would make the host run it as IO-bound, but its rests are short and its work is
//! computing.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct In {
    ms: u64,
    #[serde(default)]
    rest_ms: u64,
}

#[derive(Serialize)]
struct Out {
    rounds: u64,
}

#[taskhost_sdk::task(kind = "cpu")]
fn run(input: In) -> Out {
    let until = Instant::now() + Duration::from_millis(input.ms);
    let mut rounds: u64 = 0;
    while Instant::now() < until {
        rounds = std::hint::black_box(rounds + 1);
    }
    std::thread::sleep(Duration::from_millis(input.rest_ms));
    Out { rounds }
}
