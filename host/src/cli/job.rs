//! `taskhost job`: submit jobs, wait for them, cancel them, list them.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::Serialize;
use serde_json::Value;
use taskhost::jobs::{JobRecord, JobStatus};

use super::client::{Client, JobQuery, wire_name};
use super::output::{print_json, print_table, time};
use super::{JobCommand, JobOptions, ListArgs, SubmitArgs};

/// The body of a submission.
#[derive(Serialize)]
struct JobSpec<'a> {
    task: &'a str,
    input: Value,
    #[serde(flatten)]
    options: &'a JobOptions,
}

/// Runs a `job` command.
pub fn run(client: &Client, command: JobCommand) -> anyhow::Result<()> {
    match command {
        JobCommand::Submit(args) => submit(client, &args),
        JobCommand::Get { id } => print_json(&client.job(id)?),
        JobCommand::Wait { id, timeout_ms } => {
            let record = client.wait(id, timeout_ms.map(Duration::from_millis))?;
            print_json(&record)?;
            outcome(&record)
        }
        JobCommand::Cancel { id } => print_json(&client.cancel(id)?),
        JobCommand::List(args) => list(client, &args),
    }
}

fn submit(client: &Client, args: &SubmitArgs) -> anyhow::Result<()> {
    let spec = JobSpec {
        task: &args.task,
        input: input(args.input.as_deref())?,
        options: &args.options,
    };
    let key = args.idempotency_key.as_deref();
    if args.wait {
        let record = client.run(&spec, key)?;
        print_json(&record)?;
        outcome(&record)
    } else {
        print_json(&client.submit(&spec, key)?)
    }
}

/// The job's input: `text` as JSON; stdin for `-`, or when absent and stdin is not a
/// terminal (empty stdin is null); else null.
fn input(text: Option<&str>) -> anyhow::Result<Value> {
    let text = match text {
        Some("-") => stdin()?,
        Some(text) => text.to_owned(),
        None if std::io::stdin().is_terminal() => return Ok(Value::Null),
        None => stdin()?,
    };
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|error| {
        anyhow!(
            "the input is not JSON ({error}): give JSON text, e.g. '{{\"text\": \"hi\"}}' or \
             '\"a string\"'"
        )
    })
}

fn stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the input from stdin")?;
    Ok(text)
}

/// Success for a job that succeeded; an error saying why for one that failed or has not
/// finished.
fn outcome(record: &JobRecord) -> anyhow::Result<()> {
    match (record.status, &record.error) {
        (JobStatus::Succeeded, _) => Ok(()),
        (JobStatus::Failed, Some(error)) => Err(anyhow!(
            "job {} failed: {} ({})",
            record.id,
            error.message,
            wire_name(error.code)
        )),
        (status, _) => Err(anyhow!(
            "job {} did not finish in time: it is still {}",
            record.id,
            wire_name(status)
        )),
    }
}

fn list(client: &Client, args: &ListArgs) -> anyhow::Result<()> {
    let query = JobQuery {
        status: args.status,
        task: args.task.clone(),
        limit: args.limit,
    };
    let mut page = client.jobs(&query, None)?;
    while let Some(cursor) = page.next_cursor.filter(|_| args.all) {
        let next = client.jobs(&query, Some(cursor))?;
        page.jobs.extend(next.jobs);
        page.next_cursor = next.next_cursor;
    }
    if args.json {
        return print_json(&page);
    }
    let rows: Vec<_> = page
        .jobs
        .iter()
        .map(|job| {
            [
                job.id.to_string(),
                job.task.clone(),
                wire_name(job.status),
                time(&wire_name(job.queued_at)),
                job.wall_ms
                    .map(|ms| format!("{ms:.2} ms"))
                    .unwrap_or_default(),
                job.error
                    .as_ref()
                    .map(|e| wire_name(e.code))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    if rows.is_empty() {
        writeln!(std::io::stdout(), "no jobs")?;
    } else {
        print_table(
            ["ID", "TASK", "STATUS", "QUEUED AT", "WALL", "ERROR"],
            &rows,
        )?;
    }
    if page.next_cursor.is_some() {
        eprintln!("(more jobs: --all lists every page)");
    }
    Ok(())
}
