//! IO-bound jobs on the async executor: they wait without holding engine threads.

use serde_json::json;

use crate::{run_job, server, server_with};

#[test]
fn many_sleeping_io_jobs_do_not_stop_cpu_jobs() {
    let server = server_with(&[
        "--workers",
        "1",
        "--io-threads",
        "1",
        "--max-io-jobs",
        "500",
    ]);
    let sleepers = 500;
    let ids: Vec<String> = (0..sleepers)
        .map(|_| {
            let response = server.post_json(
                "/v1/jobs",
                // Each job reserves its memory limit while it runs: sleepers need little.
                &json!({"task": "sleep", "input": {"ms": 600_000}, "timeout_ms": 120_000,
                        "memory_mib": 8}),
            );
            assert_eq!(response.status, 202, "{}", response.text);
            assert_eq!(response.json["kind"], "io");
            response.json["id"].as_str().unwrap().to_owned()
        })
        .collect();

    // Every sleeper starts: none waits behind the others for an executor thread.
    for id in &ids {
        let started = server
            .get(&format!("/v1/jobs/{id}?wait_ms=60000&until=started"))
            .json;
        assert_eq!(started["status"], "running", "{started}");
    }

    // The single engine thread is free: CPU jobs run while every sleeper waits.
    for n in 0..5 {
        let job = run_job(&server, json!({"task": "fib", "input": {"n": 20 + n}}));
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    let status = server.get("/v1/status").json;
    assert_eq!(status["scheduler"]["io"]["running"], sleepers, "{status}");
    assert_eq!(status["scheduler"]["queued"], 0, "{status}");
}

#[test]
fn a_deadline_stops_a_job_while_it_waits_in_a_host_call() {
    let server = server();
    let job = run_job(
        &server,
        json!({"task": "sleep", "input": {"ms": 600_000}, "timeout_ms": 200}),
    );
    assert_eq!(job["error"]["code"], "timeout", "{job}");
    assert!(job["wall_ms"].as_f64().unwrap() < 60_000.0, "{job}");
}

#[test]
fn a_sleeping_job_is_cancelled_at_once() {
    let server = server();
    let job = server.post_json(
        "/v1/jobs",
        &json!({"task": "sleep", "input": {"ms": 600_000}}),
    );
    let id = job.json["id"].as_str().unwrap();
    let cancelled = server.delete(&format!("/v1/jobs/{id}")).json;
    let record = server.get(&format!("/v1/jobs/{id}")).json;
    assert_eq!(
        cancelled["error"]["code"], "cancelled",
        "{cancelled} {record}"
    );
}

#[test]
fn kind_can_be_chosen_per_job() {
    let server = server();
    let sleep_on_cpu = run_job(
        &server,
        json!({"task": "sleep", "input": {"ms": 20}, "kind": "cpu"}),
    );
    assert_eq!(sleep_on_cpu["kind"], "cpu");
    assert!(sleep_on_cpu["output"]["slept_ms"].as_u64().unwrap() >= 20);

    let fib_on_io = run_job(
        &server,
        json!({"task": "fib", "input": {"n": 25}, "kind": "io"}),
    );
    assert_eq!(fib_on_io["kind"], "io");
    assert_eq!(fib_on_io["output"]["value"], 75025);

    let stopped = run_job(
        &server,
        json!({"task": "loop", "kind": "io", "timeout_ms": 200}),
    );
    assert_eq!(
        stopped["error"]["code"], "timeout",
        "an IO-run loop still meets its deadline"
    );

    let bad = server.post_json("/v1/jobs", &json!({"task": "fib", "kind": "gpu"}));
    assert_eq!(bad.status, 400, "{}", bad.text);
}

#[test]
fn a_computing_io_job_yields_so_it_cannot_starve_the_executor() {
    // One executor thread: the loop must yield at every epoch tick for the sleeper to finish.
    let server = server_with(&["--io-threads", "1"]);
    let looping = server.post_json(
        "/v1/jobs",
        &json!({"task": "loop", "kind": "io", "timeout_ms": 20000}),
    );
    let loop_id = looping.json["id"].as_str().unwrap();
    let running = server
        .get(&format!("/v1/jobs/{loop_id}?wait_ms=60000&until=started"))
        .json;
    assert_eq!(running["status"], "running", "{running}");

    let sleeper = run_job(&server, json!({"task": "sleep", "input": {"ms": 10}}));
    assert_eq!(sleeper["status"], "succeeded", "{sleeper}");
    let looping = server.get(&format!("/v1/jobs/{loop_id}")).json;
    assert_eq!(
        looping["status"], "running",
        "the sleeper finished first: {looping}"
    );
    server.delete(&format!("/v1/jobs/{loop_id}"));
}
