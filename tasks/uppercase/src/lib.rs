//! `uppercase`: upper-cases a text and counts its words.

use serde::{Deserialize, Serialize};
use taskhost_sdk::TaskError;

#[derive(Deserialize)]
struct In {
    text: String,
}

#[derive(Serialize)]
struct Out {
    upper: String,
    words: usize,
}

#[taskhost_sdk::task]
fn run(input: In) -> Result<Out, TaskError> {
    taskhost_sdk::debug!("upper-casing {} bytes", input.text.len());
    Ok(Out {
        upper: input.text.to_uppercase(),
        words: input.text.split_whitespace().count(),
    })
}
