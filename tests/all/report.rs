//! What a finished job reports besides its output: its log (SDK lines, stdout, stderr, in
//! order, bounded) and the resources it used.

use serde_json::json;

use crate::{run_job, server, server_with};

#[test]
fn stdout_and_stderr_are_captured_into_the_log_in_order() {
    let server = server();
    let job = run_job(
        &server,
        json!({"task": "print", "input": {"stdout": ["first", "second"], "stderr": ["oops"]}}),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["log"]["lines"],
        json!([
            {"stream": "stdout", "message": "first"},
            {"stream": "stdout", "message": "second"},
            {"stream": "stderr", "message": "oops"},
        ]),
        "{job}"
    );
    assert!(job["log"].get("truncated").is_none());
}

#[test]
fn a_task_that_prints_too_much_is_cut_off_and_marked_and_still_succeeds() {
    let server = server_with(&["--max-log-lines", "5", "--max-log-kib", "1"]);
    let job = run_job(
        &server,
        json!({"task": "print", "input": {"stdout": ["x".repeat(100)], "times": 10000}}),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["output"]["bytes"], 101 * 10000);
    assert_eq!(job["log"]["truncated"], true);
    let lines = job["log"]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 5, "{job}");

    let kept: usize = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap().len())
        .sum();
    let wide = run_job(
        &server,
        json!({"task": "print", "input": {"stdout": ["y".repeat(5000)]}}),
    );
    assert_eq!(wide["log"]["truncated"], true);
    assert_eq!(
        wide["log"]["lines"][0]["message"].as_str().unwrap().len(),
        1024
    );
    assert!(kept <= 1024);
}

#[test]
fn a_job_reports_its_cpu_time_and_its_time_in_host_calls() {
    let server = server();
    let busy = run_job(&server, json!({"task": "fib", "input": {"n": 30}}));
    let (cpu, wall) = (
        busy["cpu_ms"].as_f64().unwrap(),
        busy["wall_ms"].as_f64().unwrap(),
    );
    assert!(cpu > 0.0 && cpu <= wall * 1.05 + 1.0, "{busy}");
    assert!(busy["host_call_ms"].as_f64().unwrap() < wall, "{busy}");

    // A job that waits spends its time in a host call, and waiting costs no CPU.
    let waiting = run_job(&server, json!({"task": "sleep", "input": {"ms": 300}}));
    assert_eq!(waiting["status"], "succeeded", "{waiting}");
    assert!(
        waiting["host_call_ms"].as_f64().unwrap() >= 250.0,
        "{waiting}"
    );
    assert!(waiting["cpu_ms"].as_f64().unwrap() < 100.0, "{waiting}");
}
