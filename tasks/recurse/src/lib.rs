//! `recurse`: recurses `depth` levels deep; a stack overflow when `depth` is large.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct In {
    depth: u64,
}

#[derive(Serialize)]
struct Out {
    depth: u64,
}

#[taskhost_sdk::task]
fn run(input: In) -> Out {
    Out {
        depth: descend(input.depth),
    }
}

/// Counts the levels on the way back up, so that no level can become a tail call.
#[inline(never)]
fn descend(depth: u64) -> u64 {
    if depth == 0 {
        0
    } else {
        std::hint::black_box(descend(std::hint::black_box(depth - 1))) + 1
    }
}
