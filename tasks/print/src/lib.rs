//! `print`: writes lines to stdout and stderr (`times` rounds of each), as tasks that print
//! instead of logging do; what it writes ends up in the job's log.

use std::io::Write;

use serde::{Deserialize, Serialize};
use taskhost_sdk::TaskError;

#[derive(Deserialize)]
struct In {
    #[serde(default)]
    stdout: Vec<String>,
    #[serde(default)]
    stderr: Vec<String>,
    #[serde(default = "once")]
    times: usize,
}

fn once() -> usize {
    1
}

#[derive(Serialize)]
struct Out {
    bytes: usize,
}

#[taskhost_sdk::task]
fn run(input: In) -> Result<Out, TaskError> {
    let mut bytes = 0;
    for _ in 0..input.times {
        for line in &input.stdout {
            println!("{line}");
            bytes += line.len() + 1;
        }
        for line in &input.stderr {
            eprintln!("{line}");
            bytes += line.len() + 1;
        }
    }
    std::io::stdout().flush()?;
    Ok(Out { bytes })
}
