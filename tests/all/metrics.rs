//! `GET /metrics` and the parts of `GET /v1/status` it mirrors: exact counts after jobs with
//! known outcomes, cache counters as components compile and load, health.

use std::path::Path;

use serde_json::json;
use taskhost_tests::{Exposition, Server, fixtures};

use crate::cache::two_components_three_names;
use crate::{run_job, server_with};

fn metrics(server: &Server) -> Exposition {
    let response = server.get("/metrics");
    assert_eq!(response.status, 200, "{}", response.text);
    assert!(
        response
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/openmetrics-text")),
        "{:?}",
        response.headers
    );
    assert!(response.text.ends_with("# EOF\n"), "{}", response.text);
    Exposition::parse(&response.text)
}

/// Submits a job without waiting; returns its id.
fn submit(server: &Server, job: serde_json::Value) -> String {
    let response = server.post_json("/v1/jobs", &job);
    assert_eq!(response.status, 202, "{}", response.text);
    response.json["id"].as_str().unwrap().to_owned()
}

#[test]
fn jobs_are_counted_by_task_and_outcome_and_timed() {
    let server = server_with(&["--workers", "1", "--max-queued", "1", "--wait-for-tasks"]);
    for text in ["a", "b"] {
        let job = run_job(
            &server,
            json!({"task": "uppercase", "input": {"text": text}}),
        );
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    let failed = run_job(&server, json!({"task": "fail", "input": {"mode": "error"}}));
    assert_eq!(failed["error"]["code"], "task_error", "{failed}");
    let starved = run_job(
        &server,
        json!({"task": "fib", "input": {"n": 30}, "fuel": 100_000}),
    );
    assert_eq!(starved["error"]["code"], "fuel_exhausted", "{starved}");

    // One job holds the only engine thread, one waits, the next is refused.
    let blocker = submit(
        &server,
        json!({"task": "loop", "kind": "cpu", "timeout_ms": 60_000}),
    );
    let started = server.get(&format!("/v1/jobs/{blocker}?wait_ms=30000&until=started"));
    assert_eq!(started.json["status"], "running");
    let queued = submit(&server, json!({"task": "noop"}));
    let refused = server.post_json("/v1/jobs", &json!({"task": "noop"}));
    assert_eq!(refused.status, 429, "{}", refused.text);

    let during = metrics(&server);
    assert_eq!(during.value("taskhost_jobs_queued", &[]), 1.0);
    assert_eq!(during.value("taskhost_jobs_running", &[]), 1.0);
    assert_eq!(during.value("taskhost_queue_capacity", &[]), 1.0);

    let cancelled = server.delete(&format!("/v1/jobs/{blocker}"));
    assert_eq!(
        cancelled.json["error"]["code"], "cancelled",
        "{}",
        cancelled.text
    );
    let done = server.get(&format!("/v1/jobs/{queued}?wait_ms=60000"));
    assert_eq!(done.json["status"], "succeeded", "{}", done.text);

    let after = metrics(&server);
    let finished = |task: &str, outcome: &str| {
        after.value(
            "taskhost_jobs_finished_total",
            &[("task", task), ("outcome", outcome)],
        )
    };
    assert_eq!(finished("uppercase", "succeeded"), 2.0);
    assert_eq!(finished("fail", "task_error"), 1.0);
    assert_eq!(finished("fib", "fuel_exhausted"), 1.0);
    assert_eq!(finished("loop", "cancelled"), 1.0);
    assert_eq!(finished("noop", "succeeded"), 1.0);
    // Every outcome of every task is there from the start, at zero.
    assert_eq!(finished("uppercase", "timeout"), 0.0);
    assert_eq!(finished("fib", "succeeded"), 0.0);

    assert_eq!(after.value("taskhost_jobs_accepted_total", &[]), 6.0);
    assert_eq!(after.value("taskhost_jobs_rejected_total", &[]), 1.0);
    assert_eq!(after.value("taskhost_jobs_queued", &[]), 0.0);
    assert_eq!(after.value("taskhost_jobs_running", &[]), 0.0);

    let queued_count = |kind| after.value("taskhost_job_queued_seconds_count", &[("kind", kind)]);
    assert_eq!(queued_count("cpu") + queued_count("io"), 6.0);
    let run = |suffix: &str, task: &str| {
        after.value(
            &format!("taskhost_job_run_seconds_{suffix}"),
            &[("task", task)],
        )
    };
    assert_eq!(run("count", "uppercase"), 2.0);
    assert_eq!(
        after.value(
            "taskhost_job_run_seconds_bucket",
            &[("task", "uppercase"), ("le", "+Inf")]
        ),
        2.0
    );
    assert!(
        run("sum", "loop") > 0.0,
        "the loop ran until it was cancelled"
    );
    assert_eq!(
        after.value("taskhost_job_fuel_consumed_total", &[("task", "fib")]),
        100_000.0
    );
    assert!(after.value("taskhost_job_cpu_seconds_total", &[("task", "loop")]) > 0.0);
    assert_eq!(
        after.value("taskhost_job_peak_memory_bytes_count", &[("task", "fail")]),
        1.0
    );
    assert_eq!(
        after.value("taskhost_worker_jobs_completed_total", &[("worker", "0")]),
        6.0
    );

    let records = |status| after.value("taskhost_job_records", &[("status", status)]);
    assert_eq!((records("succeeded"), records("failed")), (3.0, 3.0));
    assert_eq!(records("queued") + records("running"), 0.0);
}

#[test]
fn cache_counters_follow_compiles_memory_hits_and_disk_loads() {
    let tasks = two_components_three_names();
    let cache_dir = tempfile::tempdir().unwrap();
    let start = || {
        Server::start(
            Path::new(env!("CARGO_BIN_EXE_taskhost")),
            tasks.path().to_str().unwrap(),
            &[
                "--wait-for-tasks",
                "--cache-dir",
                cache_dir.path().to_str().unwrap(),
            ],
        )
    };
    let hits =
        |metrics: &Exposition, tier| metrics.value("taskhost_cache_hits_total", &[("tier", tier)]);
    let loads = |metrics: &Exposition, source| {
        metrics.value(
            "taskhost_component_load_seconds_count",
            &[("source", source)],
        )
    };

    let first = start();
    let cold = metrics(&first);
    assert_eq!(cold.value("taskhost_cache_compiles_total", &[]), 2.0);
    assert_eq!((hits(&cold, "memory"), hits(&cold, "disk")), (1.0, 0.0));
    assert_eq!((loads(&cold, "compiled"), loads(&cold, "disk")), (2.0, 0.0));
    assert_eq!(cold.value("taskhost_cache_entries", &[]), 2.0);
    assert_eq!(cold.value("taskhost_tasks", &[("state", "served")]), 3.0);

    // The same bytes uploaded under a third name: one more memory hit, nothing compiled.
    let bytes = std::fs::read(fixtures::UPPERCASE).unwrap();
    let uploaded = first.put("/v1/tasks/yell", "application/wasm", &bytes);
    assert_eq!(uploaded.status, 201, "{}", uploaded.text);
    let warm = metrics(&first);
    assert_eq!(warm.value("taskhost_cache_compiles_total", &[]), 2.0);
    assert_eq!(hits(&warm, "memory"), 2.0);
    drop(first);

    // A restart loads both components from disk and compiles nothing.
    let second = start();
    let restarted = metrics(&second);
    assert_eq!(restarted.value("taskhost_cache_compiles_total", &[]), 0.0);
    assert_eq!(hits(&restarted, "disk"), 2.0);
    assert_eq!(
        (loads(&restarted, "compiled"), loads(&restarted, "disk")),
        (0.0, 2.0)
    );
    let status = second.get("/v1/status").json;
    assert_eq!(status["cache"]["disk_hits"], 2, "{status}");
}

#[test]
fn status_shows_the_job_store_batches_io_and_each_parts_health() {
    let tasks = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures::NOOP, tasks.path().join("noop.wasm")).unwrap();
    std::fs::copy(fixtures::LOOP, tasks.path().join("loop.wasm")).unwrap();
    std::fs::write(tasks.path().join("broken.wasm"), b"not a component").unwrap();
    let server = Server::start(
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        tasks.path().to_str().unwrap(),
        &[
            "--wait-for-tasks",
            "--workers",
            "1",
            "--max-queued",
            "2",
            "--max-finished-jobs",
            "2",
        ],
    );
    let status = server.get("/v1/status").json;
    let health = &status["health"];
    assert_eq!(health["status"], "degraded", "{status}");
    assert_eq!(health["tasks"]["status"], "degraded", "{status}");
    assert!(
        health["tasks"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("\"broken\" did not load"),
        "{status}"
    );
    for part in ["engine", "cache", "scheduler", "io"] {
        assert_eq!(health[part]["status"], "ok", "{part}: {status}");
        assert!(health[part].get("reasons").is_none(), "{status}");
    }
    let exposition = metrics(&server);
    let healthy =
        |component| exposition.value("taskhost_component_healthy", &[("component", component)]);
    assert_eq!((healthy("tasks"), healthy("scheduler")), (0.0, 1.0));
    assert_eq!(
        exposition.value("taskhost_tasks", &[("state", "failed")]),
        1.0
    );

    // Three jobs finish; the store keeps two and says it forgot one.
    for _ in 0..3 {
        run_job(&server, json!({"task": "noop"}));
    }
    let batch = server.post_json(
        "/v1/batches",
        &json!({"task": "noop", "inputs": [null], "wait_ms": 60_000}),
    );
    assert_eq!(batch.status, 200, "{}", batch.text);
    let status = server.get("/v1/status").json;
    assert_eq!(
        status["jobs"],
        json!({"records": 2, "queued": 0, "running": 0, "succeeded": 2, "failed": 0,
               "max_finished": 2, "forgotten": 2, "bytes": status["jobs"]["bytes"],
               "max_bytes": 1 << 30}),
        "{status}"
    );
    let bytes = status["jobs"]["bytes"].as_u64().unwrap();
    assert!((2..4096).contains(&bytes), "two small records: {status}");
    assert_eq!(status["batches"]["kept"], 1, "{status}");
    assert_eq!(
        status["scheduler"]["admission"]["waiting"]["io_slots"], 0,
        "{status}"
    );

    // A full queue degrades the scheduler until it drains.
    let blocker = submit(
        &server,
        json!({"task": "loop", "kind": "cpu", "timeout_ms": 60_000}),
    );
    server.get(&format!("/v1/jobs/{blocker}?wait_ms=30000&until=started"));
    let waiting: Vec<String> = (0..2)
        .map(|_| submit(&server, json!({"task": "noop"})))
        .collect();
    let status = server.get("/v1/status").json;
    assert_eq!(
        status["health"]["scheduler"]["status"], "degraded",
        "{status}"
    );
    assert!(
        status["health"]["scheduler"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("2 of 2"),
        "{status}"
    );
    assert_eq!(status["jobs"]["queued"], 2, "{status}");
    assert_eq!(status["jobs"]["running"], 1, "{status}");
    server.delete(&format!("/v1/jobs/{blocker}"));
    for id in waiting {
        server.get(&format!("/v1/jobs/{id}?wait_ms=60000"));
    }
    let status = server.get("/v1/status").json;
    assert_eq!(status["health"]["scheduler"]["status"], "ok", "{status}");
}
