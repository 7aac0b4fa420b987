//! `fib`: the n-th Fibonacci number, computed the slow recursive way on purpose so that the
//! job is CPU-bound (n = 30 takes a few milliseconds; each step of n costs about 1.6x more).

use serde::{Deserialize, Serialize};
use taskhost_sdk::TaskError;

#[derive(Deserialize)]
struct In {
    n: u32,
}

#[derive(Serialize)]
struct Out {
    value: u64,
}

/// fib(93) is the largest that fits in a u64.
const MAX_N: u32 = 93;

#[taskhost_sdk::task]
fn run(input: In) -> Result<Out, TaskError> {
    if input.n > MAX_N {
        return Err(TaskError::invalid_input(format!(
            "n must be at most {MAX_N}, got {}",
            input.n
        )));
    }
    Ok(Out {
        value: fib(input.n),
    })
}

fn fib(n: u32) -> u64 {
    if n < 2 { n.into() } else { fib(n - 1) + fib(n - 2) }
}
