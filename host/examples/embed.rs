//! Embedding taskhost in a Rust program: start a host in-process, submit jobs, await their
//! results, read its status and shut it down, with no HTTP involved.
//!
//! `cargo run -p taskhost --example embed -- [TASKS_DIR]` (default `target/tasks`, where
//! `tasks/build.sh` puts the example tasks).

use std::time::Duration;

use serde_json::json;
use taskhost::{Host, JobRequest, ServeArgs};

fn main() -> anyhow::Result<()> {
    let tasks_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/tasks".into());
    println!("{}", run(&tasks_dir)?);
    Ok(())
}

/// Runs `uppercase` and a batch of `fib` jobs on a host over `tasks_dir`; returns a report.
fn run(tasks_dir: &str) -> anyhow::Result<String> {
    let data_dir = tempfile::tempdir()?;
    let mut settings = ServeArgs::defaults(tasks_dir, data_dir.path());
    settings.workers = Some(2);
    // Compile every task before `start` returns; otherwise they load in the background and
    // `submit` refuses a task still loading (`Host::wait_for_task` waits for one).
    settings.wait_for_tasks = true;
    let host = Host::start(&settings.validate()?)?;
    // `Host`'s waits are async: any executor will do.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let job = host.submit(JobRequest {
        task: "uppercase".into(),
        input: json!({"text": "hello from an embedding"}),
        ..JobRequest::default()
    })?;
    let upper = runtime
        .block_on(host.wait(&job.tenant, job.id, Duration::from_secs(60)))
        .ok_or_else(|| anyhow::anyhow!("job {} vanished", job.id))?;

    let fibs: Vec<_> = (20..30)
        .map(|n| {
            host.submit(JobRequest {
                task: "fib".into(),
                input: json!({ "n": n }),
                ..JobRequest::default()
            })
        })
        .collect::<Result<_, _>>()?;
    let mut values = Vec::new();
    for job in fibs {
        let done = runtime.block_on(host.wait(&job.tenant, job.id, Duration::from_secs(60)));
        let output = done.and_then(|record| record.output);
        values.push(output.map(|output| output.to_value()["value"].clone()));
    }

    let status = host.status();
    let report = host.shutdown();
    Ok(format!(
        "uppercase: {}\nfib(20..30): {}\njobs completed: {}\ndrained: {}",
        upper
            .output
            .map(|output| output.to_value())
            .unwrap_or_default(),
        serde_json::json!(values),
        status.parts.scheduler.completed,
        report.drained
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedding_example_runs_jobs_and_shuts_down() {
        let report = super::run(taskhost_tests::fixtures::TASKS_DIR).unwrap();
        assert!(report.contains("HELLO FROM AN EMBEDDING"), "{report}");
        assert!(report.contains("[6765,10946,"), "{report}");
        assert!(report.contains("drained: true"), "{report}");
    }
}
