//! `taskhost batch`: many jobs from JSON lines, a bounded number in flight, each result
//! written as soon as every line before it has its own, so the output follows the input.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Map, Value};
use taskhost::jobs::{JobRecord, JobStatus};

use super::BatchArgs;
use super::client::{Client, ClientError};

/// How long to wait before submitting again when the server is busy but does not say.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);

/// A line of the input that holds a job.
struct Line<'a> {
    /// Its line number, from 1.
    number: usize,
    text: &'a str,
}

/// What became of a line: its job's final record, or why it has none. (An `Err` beside it
/// means nothing more can run: the batch stops.)
enum Outcome {
    Ran(Box<JobRecord>),
    Refused(Refusal),
}

/// Why a line has no job, in the API's error shape.
#[derive(Serialize)]
struct Refusal {
    code: String,
    message: String,
}

/// The result written for a line that has no job.
#[derive(Serialize)]
struct LineError {
    line: usize,
    error: Refusal,
}

/// How lines become submissions.
struct Specs {
    /// With --task: each line is an input of this task.
    task: Option<String>,
    /// Job options from the command line, for lines that do not set them.
    defaults: Map<String, Value>,
}

/// What the batch did so far.
#[derive(Default)]
struct Tally {
    succeeded: usize,
    failed: usize,
    refused: usize,
}

/// Runs a batch.
pub fn run(client: &Client, args: &BatchArgs) -> anyhow::Result<()> {
    let text = read_input(args.file.as_deref())?;
    let lines: Vec<Line> = (1..)
        .zip(text.lines())
        .filter(|(_, text)| !text.trim().is_empty())
        .map(|(number, text)| Line { number, text })
        .collect();
    let specs = Specs {
        task: args.task.clone(),
        defaults: match serde_json::to_value(&args.options)? {
            Value::Object(options) => options,
            _ => Map::new(),
        },
    };
    let progress = progress_bar(lines.len());
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (done, results) = mpsc::channel();
    let mut tally = Tally::default();

    let fatal = std::thread::scope(|scope| {
        for _ in 0..args.max_concurrent.min(lines.len()) {
            let (done, lines, specs, next, stop) = (done.clone(), &lines, &specs, &next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(line) = lines.get(index) else { break };
                    if done.send((index, run_line(client, specs, line))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        let written = write_in_order(&lines, results, &progress, &mut tally);
        // Whatever ended the writing, no more jobs start (on success none are left).
        stop.store(true, Ordering::Relaxed);
        written
    })?;
    progress.finish_and_clear();
    if let Some(error) = fatal {
        return Err(anyhow!(error).context(format!(
            "the batch stopped after {} of {} jobs",
            tally.succeeded + tally.failed + tally.refused,
            lines.len()
        )));
    }
    tally.finish(lines.len())
}

/// Writes each line's result to stdout once every line before it has its own; counts them.
/// Stops at the first fatal error, and returns it.
fn write_in_order(
    lines: &[Line],
    results: mpsc::Receiver<(usize, Result<Outcome, ClientError>)>,
    progress: &ProgressBar,
    tally: &mut Tally,
) -> anyhow::Result<Option<ClientError>> {
    let mut pending = BTreeMap::new();
    let mut written = 0;
    for (index, result) in results {
        progress.inc(1);
        match result {
            Ok(outcome) => pending.insert(index, outcome),
            Err(fatal) => return Ok(Some(fatal)),
        };
        while let Some(outcome) = pending.remove(&written) {
            let out = match outcome {
                Outcome::Ran(record) => {
                    tally.count(&record);
                    serde_json::to_string(&record)?
                }
                Outcome::Refused(error) => {
                    tally.refused += 1;
                    let line = lines[written].number;
                    serde_json::to_string(&LineError { line, error })?
                }
            };
            progress.suspend(|| writeln!(std::io::stdout(), "{out}"))?;
            progress.set_message(tally.failures());
            written += 1;
        }
    }
    Ok(None)
}

/// Runs one line's job to its end; waits out a busy server (`Retry-After`) and submits again.
fn run_line(client: &Client, specs: &Specs, line: &Line) -> Result<Outcome, ClientError> {
    let spec = match specs.spec(line) {
        Ok(spec) => spec,
        Err(refusal) => return Ok(Outcome::Refused(refusal)),
    };
    loop {
        match client.run(&spec, None) {
            Ok(record) => return Ok(Outcome::Ran(Box::new(record))),
            // The job was not taken, for now.
            Err(ClientError::Api {
                code, retry_after, ..
            }) if code == "queue_full" || code == "task_loading" => {
                std::thread::sleep(retry_after.unwrap_or(DEFAULT_RETRY));
            }
            Err(ClientError::Api { code, message, .. }) => {
                return Ok(Outcome::Refused(Refusal { code, message }));
            }
            Err(error) => return Err(error),
        }
    }
}

impl Specs {
    /// The submission `line` asks for.
    fn spec(&self, line: &Line) -> Result<Map<String, Value>, Refusal> {
        let refused = |code: &str, message: String| Refusal {
            code: code.to_owned(),
            message,
        };
        let value: Value = serde_json::from_str(line.text)
            .map_err(|error| refused("malformed_json", format!("the line is not JSON: {error}")))?;
        let mut spec = match (&self.task, value) {
            (Some(task), input) => Map::from_iter([
                ("task".to_owned(), Value::from(task.as_str())),
                ("input".to_owned(), input),
            ]),
            (None, Value::Object(spec)) => spec,
            (None, _) => {
                return Err(refused(
                    "invalid_request",
                    "a job spec is a JSON object, {\"task\": NAME, \"input\": ...}; with \
                     --task, each line is an input"
                        .to_owned(),
                ));
            }
        };
        for (field, value) in &self.defaults {
            spec.entry(field).or_insert_with(|| value.clone());
        }
        Ok(spec)
    }
}

/// The input's text: FILE, or stdin for `-` or no FILE (a terminal only when asked with `-`).
fn read_input(file: Option<&Path>) -> anyhow::Result<String> {
    let mut text = String::new();
    match file {
        Some(path) if path != Path::new("-") => {
            return std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()));
        }
        None if std::io::stdin().is_terminal() => {
            bail!("give the job lines as FILE, or on stdin (`-` reads them from the terminal)")
        }
        _ => std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the job lines from stdin")?,
    };
    Ok(text)
}

/// A bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar(jobs: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} jobs  {elapsed}  {msg}")
        .expect("the template is valid")
        .progress_chars("=> ");
    ProgressBar::new(jobs as u64).with_style(style)
}

impl Tally {
    fn count(&mut self, record: &JobRecord) {
        match record.status {
            JobStatus::Succeeded => self.succeeded += 1,
            _ => self.failed += 1,
        }
    }

    /// What went wrong so far, for the progress bar.
    fn failures(&self) -> String {
        match self.failed + self.refused {
            0 => String::new(),
            n => format!("{n} failed"),
        }
    }

    /// Reports the batch on stderr: success if every job succeeded.
    fn finish(&self, jobs: usize) -> anyhow::Result<()> {
        if jobs == 0 {
            eprintln!("no jobs: the input has no lines");
            return Ok(());
        }
        if self.failed + self.refused == 0 {
            eprintln!("{} jobs succeeded", self.succeeded);
            return Ok(());
        }
        Err(anyhow!(
            "{} of {jobs} jobs succeeded, {} failed, {} could not be submitted",
            self.succeeded,
            self.failed,
            self.refused
        ))
    }
}
