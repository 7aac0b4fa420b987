//! `alloc`: allocates `mb` MiB and touches every page of it; a memory bomb when `mb` is above
//! the job's memory limit.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct In {
    mb: usize,
}

#[derive(Serialize)]
struct Out {
    mb: usize,
    /// Sum of one byte per touched page, so the touching cannot be optimized away.
    checksum: u64,
}

const PAGE: usize = 64 * 1024;

#[taskhost_sdk::task]
fn run(input: In) -> Out {
    let mut buffer = vec![0u8; input.mb << 20];
    let mut checksum = 0u64;
    for (index, page) in buffer.chunks_mut(PAGE).enumerate() {
        page[0] = index as u8;
        checksum += u64::from(std::hint::black_box(page[0]));
    }
    Out {
        mb: input.mb,
        checksum,
    }
}
