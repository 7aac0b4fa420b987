//! `wordcount`: counts the lines, words and characters of a text, as `wc` does. Its result
//! depends on its input alone, so it declares `memoize`: the host remembers results, and a
//! job with a text seen before is answered without running.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct In {
    text: String,
}

#[derive(Serialize)]
struct Out {
    lines: usize,
    words: usize,
    chars: usize,
}

#[taskhost_sdk::task(memoize)]
fn run(input: In) -> Out {
    let text = input.text;
    Out {
        lines: text.lines().count(),
        words: text.split_whitespace().count(),
        chars: text.chars().count(),
    }
}
