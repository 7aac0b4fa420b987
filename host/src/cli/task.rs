//! `taskhost task`: upload, list and delete the tasks a server runs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::TaskCommand;
use super::client::{Client, TaskSummary, wire_name};
use super::output::{print_json, print_table, size, time};

/// How many hex digits of a hash the table shows.
const HASH_PREFIX: usize = 12;

/// Runs a `task` command.
pub fn run(client: &Client, command: TaskCommand) -> anyhow::Result<()> {
    match command {
        TaskCommand::Push { name, file, .. } => push(client, &name, &file),
        TaskCommand::List { json, .. } => list(client, json),
        TaskCommand::Rm { name, .. } => {
            client.delete_task(&name)?;
            writeln!(std::io::stdout(), "deleted task {name}")?;
            Ok(())
        }
    }
}

fn push(client: &Client, name: &str, file: &Path) -> anyhow::Result<()> {
    let component =
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let upload = client.upload_task(name, &component)?;
    let task = upload.task;
    writeln!(
        std::io::stdout(),
        "{} task {name} ({}, {}): blake3 {}",
        if upload.replaced {
            "replaced"
        } else {
            "created"
        },
        size(task.size),
        wire_name(task.kind),
        task.hash
    )?;
    Ok(())
}

/// `GET /v1/tasks`: the parts the table shows.
#[derive(Deserialize)]
struct TaskList {
    tasks: Vec<TaskSummary>,
    loading: Vec<String>,
    problems: BTreeMap<String, Problem>,
}

/// A file that did not load.
#[derive(Deserialize)]
struct Problem {
    error: String,
    since: String,
}

fn list(client: &Client, json: bool) -> anyhow::Result<()> {
    let list = client.tasks()?;
    if json {
        return print_json(&list);
    }
    let list: TaskList =
        serde_json::from_value(list).context("the server's task list has an unexpected shape")?;
    let rows: Vec<_> = list
        .tasks
        .iter()
        .map(|task| {
            [
                task.name.clone(),
                format!("{} ({})", wire_name(task.kind), wire_name(task.kind_source)),
                size(task.size),
                task.hash.chars().take(HASH_PREFIX).collect(),
                time(&task.serving_since),
                task.origin.clone(),
            ]
        })
        .collect();
    let mut stdout = std::io::stdout();
    if rows.is_empty() {
        writeln!(stdout, "no tasks served")?;
    } else {
        print_table(
            ["NAME", "KIND", "SIZE", "HASH", "SERVING SINCE", "ORIGIN"],
            &rows,
        )?;
    }
    if !list.loading.is_empty() {
        writeln!(stdout, "\nloading: {}", list.loading.join(", "))?;
    }
    if !list.problems.is_empty() {
        writeln!(stdout, "\nnot loaded:")?;
        for (name, problem) in &list.problems {
            let since = time(&problem.since);
            writeln!(stdout, "  {name}: {} (since {since})", problem.error)?;
        }
    }
    Ok(())
}
