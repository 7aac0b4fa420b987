//! The host as a library, where what happens after `shutdown` can still be read: past the
//! drain timeout, every job left is cancelled, and its record says so and is counted.

use std::time::Duration;

use serde_json::json;
use taskhost::config::RequestedLimits;
use taskhost::host::{CompileError, Scope, UploadError};
use taskhost::jobs::{ErrorCode, JobStatus, Kind, Until};
use taskhost::tenants::TenantId;
use taskhost::{Host, JobRequest, ServeArgs};
use taskhost_tests::{Exposition, Hostile, fixtures};

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
        let started = runtime.block_on(host.wait_until(
            &TenantId::default(),
            *id,
            Until::Started,
            Duration::from_secs(60),
        ));
        assert_eq!(started.unwrap().status, JobStatus::Running);
    }

    let report = host.shutdown();
    assert!(!report.drained);
    assert_eq!((report.cancelled, report.unstopped), (4, 0), "{report:?}");
    for id in &jobs {
        let record = host.job(&TenantId::default(), *id).unwrap();
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

#[test]
fn an_embedder_compiling_in_process_is_told_a_component_does_not_fit_the_pool() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = ServeArgs::defaults(fixtures::TASKS_DIR, data_dir.path());
    settings.workers = Some(1);
    let config = settings.validate().unwrap();
    assert!(
        config.compile.compiler.is_none(),
        "an embedder compiles in process"
    );
    let host = Host::start(&config).unwrap();

    let huge_table = Hostile {
        initial_table: 10_000_000,
        ..Hostile::default()
    };
    let Err(UploadError::Compile(error)) =
        host.upload_task(Scope::Shared, "huge-table", &huge_table.component())
    else {
        panic!("a 10M-element table was accepted");
    };
    assert!(
        matches!(*error, CompileError::DoesNotFit(_)),
        "{error:?} should be DoesNotFit"
    );
    assert!(error.to_string().contains("exceeds the limit"), "{error}");

    let broken = [b"\0asm\x0d\0\x01\0".as_slice(), &[0xff; 16]].concat();
    let Err(UploadError::Compile(error)) = host.upload_task(Scope::Shared, "broken", &broken)
    else {
        panic!("a malformed component was accepted");
    };
    assert!(!matches!(*error, CompileError::DoesNotFit(_)), "{error:?}");
    host.shutdown();
}
