//! `grep`: finds the matches of a regular expression in a text. It links the `regex` crate
//! with its Unicode tables, which makes it the largest example component (the cache's
//! benchmarks use it).

use regex::Regex;
use serde::{Deserialize, Serialize};
use taskhost_sdk::TaskError;

#[derive(Deserialize)]
struct In {
    pattern: String,
    text: String,
}

#[derive(Serialize)]
struct Out {
    matches: Vec<Match>,
}

#[derive(Serialize)]
struct Match {
    start: usize,
    end: usize,
    text: String,
}

#[taskhost_sdk::task]
fn run(input: In) -> Result<Out, TaskError> {
    let pattern = Regex::new(&input.pattern)
        .map_err(|error| TaskError::invalid_input(format!("bad pattern: {error}")))?;
    let matches = pattern
        .find_iter(&input.text)
        .map(|found| Match {
            start: found.start(),
            end: found.end(),
            text: found.as_str().to_owned(),
        })
        .collect();
    Ok(Out { matches })
}
