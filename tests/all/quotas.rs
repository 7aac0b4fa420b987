//! Tenants' quotas: a request over one is refused with the quota's name, its limit and what
//! is used (`403` for ceilings and sizes, `429` with `Retry-After` for rates and queued
//! jobs), counted in the metrics, and nothing else is affected: other tenants, and the
//! tenant's requests within its quotas, go on as before.

use serde_json::{Value, json};
use taskhost_tests::{Hostile, Response, Server, fixtures};

use crate::hostiles_with;

/// Creates the tenant `id` with `quotas`; one of its keys.
fn tenant_with(server: &Server, id: &str, quotas: Value) -> String {
    let admin = server.admin_key();
    let body = json!({"id": id, "quotas": quotas});
    let created = server.send_json_with_key("POST", "/v1/admin/tenants", &body, admin);
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["quotas"], quotas, "shown as set");
    let path = format!("/v1/admin/tenants/{id}/keys");
    let issued = server.request_with_key("POST", &path, Some(admin));
    issued.json["key"].as_str().unwrap().to_owned()
}

/// Submits `job` with `key`.
fn submit(server: &Server, key: &str, job: Value) -> Response {
    server.send_json_with_key("POST", "/v1/jobs", &job, key)
}

/// Asserts that `response` is `status quota_exceeded` over `quota` of `limit`, with `used`.
fn assert_over(response: &Response, status: u16, quota: &str, limit: u64, used: u64) {
    assert_eq!(response.status, status, "{}", response.text);
    let error = &response.json["error"];
    assert_eq!(error["code"], "quota_exceeded", "{}", response.text);
    assert_eq!(
        error["quota"],
        json!({"name": quota, "limit": limit, "used": used}),
        "{}",
        response.text
    );
    assert!(
        error["message"].as_str().unwrap().contains(quota),
        "{}",
        response.text
    );
}

/// The value of the metric line that starts with `series`, in the host's `/metrics`.
fn metric(server: &Server, series: &str) -> Option<f64> {
    let text = server.get("/metrics").text;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn ceilings_and_sizes_are_refused_with_the_quota_named_and_others_are_untouched() {
    let server = hostiles_with(&[]);
    let uppercase = std::fs::read(fixtures::UPPERCASE).unwrap();
    let small = tenant_with(
        &server,
        "small",
        json!({
            "max_timeout_ms": 300,
            "max_memory_mib": 64,
            "max_fuel": 1_000_000_000_000u64,
            "max_task_bytes": uppercase.len() - 1,
            "max_tasks": 1,
        }),
    );

    // Per-job ceilings: more is refused; nothing asked gets the ceiling, not the default.
    let long = submit(
        &server,
        &small,
        json!({"task": "noop", "timeout_ms": 2_000}),
    );
    assert_over(&long, 403, "max_timeout_ms", 300, 2_000);
    let big = submit(&server, &small, json!({"task": "noop", "memory_mib": 128}));
    assert_over(&big, 403, "max_memory_mib", 64, 128);
    let fuel = submit(
        &server,
        &small,
        json!({"task": "noop", "fuel": 2_000_000_000_000u64}),
    );
    assert_over(&fuel, 403, "max_fuel", 1_000_000_000_000, 2_000_000_000_000);
    let looping = submit(
        &server,
        &small,
        json!({"task": "loop", "kind": "cpu", "wait_ms": 60_000}),
    );
    assert_eq!(
        looping.json["error"]["code"], "timeout",
        "stopped at the tenant's 300 ms, not the host's 30 s: {}",
        looping.text
    );
    let metered = submit(
        &server,
        &small,
        json!({"task": "fib", "input": {"n": 10}, "wait_ms": 60_000}),
    );
    assert_eq!(metered.json["status"], "succeeded", "{}", metered.text);
    assert!(
        metered.json["fuel_consumed"].as_u64().is_some(),
        "a tenant with a fuel ceiling has every job metered: {}",
        metered.text
    );

    // Uploads: component size, then the number of tasks (replacing one is no new task).
    let upload = |name: &str, component: &[u8]| {
        server.put_wasm_with_key(&format!("/v1/tasks/{name}"), component, &small)
    };
    assert_over(
        &upload("mine", &uppercase),
        403,
        "max_task_bytes",
        uppercase.len() as u64 - 1,
        uppercase.len() as u64,
    );
    let tiny = Hostile::default().component();
    assert_eq!(upload("one", &tiny).status, 201);
    assert_over(&upload("two", &tiny), 403, "max_tasks", 1, 1);
    assert_eq!(
        upload("one", &tiny).status,
        200,
        "a replacement is no new task"
    );

    // Another tenant is bound by the host's limits only.
    let other = submit(
        &server,
        server.key(),
        json!({"task": "noop", "timeout_ms": 2_000, "memory_mib": 128, "wait_ms": 60_000}),
    );
    assert_eq!(other.json["status"], "succeeded", "{}", other.text);
    assert_eq!(
        metric(
            &server,
            "taskhost_quota_refusals_total{tenant=\"small\",quota=\"max_timeout_ms\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &server,
            "taskhost_quota_refusals_total{tenant=\"small\",quota=\"max_tasks\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn queued_jobs_and_submission_rates_are_refused_with_retry_after() {
    let server = hostiles_with(&[]);
    let busy = tenant_with(&server, "busy", json!({"max_queued_jobs": 2}));
    let sleeping = json!({"task": "sleep", "input": {"ms": 60_000}});
    let batch = |count: usize| {
        let body = json!({"jobs": vec![sleeping.clone(); count], "max_concurrent": 1});
        server.send_json_with_key("POST", "/v1/batches", &body, &busy)
    };
    assert_over(&batch(3), 429, "max_queued_jobs", 2, 0);
    let accepted = batch(2);
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    // The first job runs; the second waits, queued, behind the batch's bound.
    let first = accepted.json["jobs"][0]["id"].as_str().unwrap();
    let started = server.request_with_key(
        "GET",
        &format!("/v1/jobs/{first}?wait_ms=60000&until=started"),
        Some(&busy),
    );
    assert_eq!(started.json["status"], "running", "{}", started.text);
    let refused = batch(2);
    assert_over(&refused, 429, "max_queued_jobs", 2, 1);
    assert_eq!(refused.retry_after.as_deref(), Some("1"), "{refused:?}");
    let one_more = submit(&server, &busy, json!({"task": "noop", "wait_ms": 60_000}));
    assert_eq!(
        one_more.json["status"], "succeeded",
        "within the quota: {}",
        one_more.text
    );
    let id = accepted.json["id"].as_str().unwrap();
    let cancelled = server.request_with_key("DELETE", &format!("/v1/batches/{id}"), Some(&busy));
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);

    // A rate of 1 a second with a burst of 2: of four submissions at once, some are refused.
    let quotas = json!({"quotas": {"submissions_per_second": 1, "submission_burst": 2}});
    let changed = server.send_json_with_key(
        "PATCH",
        "/v1/admin/tenants/busy",
        &quotas,
        server.admin_key(),
    );
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json["quotas"], quotas["quotas"]);
    let answers: Vec<Response> = (0..4)
        .map(|_| submit(&server, &busy, json!({"task": "noop"})))
        .collect();
    assert!(answers[..2].iter().all(|answer| answer.status == 202));
    let refused = answers
        .iter()
        .find(|answer| answer.status == 429)
        .expect("a submission past the burst is refused");
    assert_eq!(
        refused.json["error"]["quota"]["name"],
        "submissions_per_second"
    );
    assert_eq!(refused.json["error"]["quota"]["limit"], 1);
    assert_eq!(refused.retry_after.as_deref(), Some("1"), "{refused:?}");
    // Another tenant is not slowed.
    for _ in 0..4 {
        let other = submit(&server, server.key(), json!({"task": "noop"}));
        assert_eq!(other.status, 202, "{}", other.text);
    }
}
