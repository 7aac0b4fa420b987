//! Stopping runaway jobs: deadlines, fuel, memory, stack. Each gives a clear error and leaves
//! the host serving.

use serde_json::json;

use crate::{run_job, server, server_with};

#[test]
fn an_infinite_loop_is_stopped_at_its_deadline_while_other_jobs_keep_completing() {
    let server = server_with(&["--workers", "2"]);
    let looping = server.post_json("/v1/jobs", &json!({"task": "loop", "timeout_ms": 3000}));
    assert_eq!(looping.status, 202, "{}", looping.text);
    let id = looping.json["id"].as_str().unwrap();

    // The loop holds one engine thread; the other keeps serving.
    for n in 0..10 {
        let job = run_job(&server, json!({"task": "fib", "input": {"n": n}}));
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    let still = server.get(&format!("/v1/jobs/{id}")).json;
    assert_eq!(
        still["status"], "running",
        "the loop outlived the other jobs: {still}"
    );

    let stopped = server.get(&format!("/v1/jobs/{id}?wait_ms=60000")).json;
    assert_eq!(stopped["status"], "failed");
    assert_eq!(stopped["error"]["code"], "timeout", "{stopped}");
    assert!(
        stopped["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3000 ms")
    );
    let wall = stopped["wall_ms"].as_f64().unwrap();
    assert!(wall >= 3000.0, "stopped early: {wall} ms");
}

#[test]
fn fuel_exhaustion_is_reported_with_the_fuel_consumed() {
    let server = server();
    let job = run_job(
        &server,
        json!({"task": "fib", "input": {"n": 30}, "fuel": 100_000}),
    );
    assert_eq!(job["error"]["code"], "fuel_exhausted", "{job}");
    assert_eq!(job["fuel_consumed"], 100_000);

    // The same job with enough fuel finishes, and reports the same cost every time.
    let enough = json!({"task": "fib", "input": {"n": 20}, "fuel": 100_000_000});
    let first = run_job(&server, enough.clone());
    let second = run_job(&server, enough);
    assert_eq!(first["output"]["value"], 6765);
    let consumed = first["fuel_consumed"].as_u64().unwrap();
    assert!(
        consumed > 10_000,
        "fib(20) costs more than that: {consumed}"
    );
    assert_eq!(second["fuel_consumed"], consumed, "fuel is deterministic");
}

#[test]
fn a_memory_bomb_is_refused_at_its_limit() {
    let server = server_with(&["--memory-limit-mib", "64"]);
    let bomb = run_job(&server, json!({"task": "alloc", "input": {"mb": 128}}));
    assert_eq!(bomb["status"], "failed");
    assert_eq!(bomb["error"]["code"], "memory_limit", "{bomb}");
    assert!(
        bomb["error"]["message"]
            .as_str()
            .unwrap()
            .contains("64 MiB"),
        "{bomb}"
    );

    let fits = run_job(&server, json!({"task": "alloc", "input": {"mb": 16}}));
    assert_eq!(fits["status"], "succeeded", "{fits}");
    assert!(
        fits["peak_memory_bytes"].as_u64().unwrap() >= 16 << 20,
        "{fits}"
    );

    // A job may ask for more, up to the host's ceiling.
    let bigger = run_job(
        &server,
        json!({"task": "alloc", "input": {"mb": 128}, "memory_mib": 256}),
    );
    assert_eq!(bigger["status"], "succeeded", "{bigger}");
}

#[test]
fn deep_recursion_is_reported_as_stack_overflow() {
    let server = server();
    let deep = run_job(
        &server,
        json!({"task": "recurse", "input": {"depth": 10_000_000}}),
    );
    assert_eq!(deep["error"]["code"], "stack_overflow", "{deep}");

    let shallow = run_job(
        &server,
        json!({"task": "recurse", "input": {"depth": 1000}}),
    );
    assert_eq!(shallow["output"], json!({"depth": 1000}));
}

#[test]
fn limits_above_the_ceilings_are_refused_before_running() {
    let server = server_with(&["--max-fuel", "1000000"]);
    for (field, value) in [
        ("timeout_ms", 10_000_000),
        ("memory_mib", 100_000),
        ("fuel", 2_000_000),
        ("timeout_ms", 0),
    ] {
        let response = server.post_json("/v1/jobs", &json!({"task": "noop", field: value}));
        assert_eq!(response.status, 400, "{field}: {}", response.text);
        assert_eq!(response.json["error"]["code"], "invalid_limit");
        assert!(
            response.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field)
        );
    }
}

#[test]
fn without_fuel_metering_jobs_report_no_fuel_and_cannot_ask_for_it() {
    let server = server_with(&["--fuel-metering", "false"]);
    let job = run_job(&server, json!({"task": "fib", "input": {"n": 15}}));
    assert_eq!(job["output"]["value"], 610);
    assert!(job.get("fuel_consumed").is_none(), "{job}");
    let refused = server.post_json(
        "/v1/jobs",
        &json!({"task": "fib", "input": {"n": 1}, "fuel": 10}),
    );
    assert_eq!(
        refused.json["error"]["code"], "invalid_limit",
        "{}",
        refused.text
    );
}
