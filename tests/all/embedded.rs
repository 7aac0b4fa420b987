//! The host as a library, where what happens after `shutdown` can still be read: past the
//! drain timeout, every job left is cancelled, and its record says so and is counted.

use std::time::Duration;

use serde_json::json;
use taskhost::config::RequestedLimits;
use taskhost::jobs::{ErrorCode, JobStatus, Kind, Until};
use taskhost::{Host, JobRequest, ServeArgs};
use taskhost_tests::{Exposition, fixtures};

/// An IO job sleeping far longer than any test runs.
fn long_sleep() -> JobRequest {
    JobRequest {
        task: "sleep".into(),
        input: json!({"ms": 300_000}),
        kind: Some(Kind::Io),
        limits: RequestedLimits {
            timeout_ms: Some(300_000),
            ..RequestedLimits::default()
        },
        ..JobRequest::default()
    }
}

#[test]
fn shutdown_past_the_drain_timeout_leaves_every_io_job_failed_cancelled_and_counted() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = ServeArgs::defaults(fixtures::TASKS_DIR, data_dir.path());
    settings.workers = Some(1);
    settings.max_io_jobs = 2;
    settings.drain_timeout_ms = 100;
    settings.wait_for_tasks = true;
    let host = Host::start(&settings.validate().unwrap()).unwrap();

    // Two IO jobs sleeping in their slots, two more waiting for a slot. (No CPU job: the
    // engine threads' shutdown waits for a CPU job to stop, which would give the IO jobs
    // time to stop too.)
    let jobs: Vec<_> = (0..4)
        .map(|_| host.submit(long_sleep()).unwrap().id)
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for id in &jobs[..2] {
        let started =
            runtime.block_on(host.wait_until(*id, Until::Started, Duration::from_secs(60)));
        assert_eq!(started.unwrap().status, JobStatus::Running);
    }

    let report = host.shutdown();
    assert!(!report.drained);
    assert_eq!((report.cancelled, report.unstopped), (4, 0), "{report:?}");
    for id in &jobs {
        let record = host.job(*id).unwrap();
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        assert_eq!(
            record.error.as_ref().map(|error| error.code),
            Some(ErrorCode::Cancelled),
            "{record:?}"
        );
    }
    let metrics = Exposition::parse(&host.metrics());
    let cancelled = metrics.value(
        "taskhost_jobs_finished_total",
        &[("task", "sleep"), ("outcome", "cancelled")],
    );
    assert_eq!(cancelled, 4.0, "running and waiting jobs alike");
    assert_eq!(metrics.value("taskhost_jobs_running", &[]), 0.0);
}
