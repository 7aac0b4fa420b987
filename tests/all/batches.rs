//! Batches: many jobs in one request, all accepted or none, records in order, a bound on how
//! many run at once, cancellation.

use serde_json::{Value, json};

use crate::{server, server_with};

/// Submits a batch and waits (up to a minute) for it to finish; returns its record.
fn run_batch(server: &taskhost_tests::Server, mut batch: Value) -> Value {
    batch["wait_ms"] = 60_000.into();
    let response = server.post_json("/v1/batches", &batch);
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["status"], "finished");
    response.json
}

#[test]
fn a_thousand_job_batch_returns_every_result_in_order() {
    let server = server();
    let jobs: Vec<Value> = (0..1000)
        .map(|i| match i % 10 {
            0 => json!({"task": "fib", "input": {"n": i % 20}}),
            _ => json!({"task": "uppercase", "input": {"text": format!("item {i}")}}),
        })
        .collect();
    let batch = run_batch(&server, json!({"jobs": jobs, "max_concurrent": 64}));
    assert_eq!(batch["total"], 1000);
    assert_eq!(batch["counts"]["succeeded"], 1000, "{}", batch["counts"]);
    let records = batch["jobs"].as_array().unwrap();
    assert_eq!(records.len(), 1000);
    let fib = |n: u64| (0..n).fold((0u64, 1u64), |(a, b), _| (b, a + b)).0;
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["batch"], batch["id"]);
        let expected = match i % 10 {
            0 => json!({"value": fib(i as u64 % 20)}),
            _ => json!({"upper": format!("ITEM {i}"), "words": 2}),
        };
        assert_eq!(record["output"], expected, "job {i}: {record}");
    }

    // Its jobs are jobs like any other.
    let page = server.get(&format!(
        "/v1/jobs?batch={}&limit=1000",
        batch["id"].as_str().unwrap()
    ));
    assert_eq!(
        page.json["jobs"].as_array().unwrap().len(),
        1000,
        "{}",
        page.text
    );

    // The batch can be read again later, the same.
    let id = batch["id"].as_str().unwrap();
    let again = server.get(&format!("/v1/batches/{id}"));
    assert_eq!(again.status, 200);
    assert_eq!(again.json["jobs"], batch["jobs"]);
}

#[test]
fn max_concurrent_bounds_how_many_jobs_of_a_batch_run_at_once() {
    let server = server();
    let batch = run_batch(
        &server,
        json!({"task": "sleep", "inputs": vec![json!({"ms": 40}); 12], "max_concurrent": 3}),
    );
    assert_eq!(batch["counts"]["succeeded"], 12, "{batch}");
    // Each job ran over [started_at, finished_at): RFC 3339 times in one format sort as
    // text. At equal times an end comes before a start (the next job starts once one ends).
    let mut events: Vec<(String, i32)> = Vec::new();
    for job in batch["jobs"].as_array().unwrap() {
        events.push((job["started_at"].as_str().unwrap().to_owned(), 1));
        events.push((job["finished_at"].as_str().unwrap().to_owned(), -1));
    }
    events.sort();
    let (mut running, mut most) = (0, 0);
    for (_, change) in events {
        running += change;
        most = most.max(running);
    }
    assert_eq!(
        most, 3,
        "at most 3 at once, and 3 did run together: {batch}"
    );
}

#[test]
fn batch_limits_apply_to_jobs_that_set_none() {
    let server = server();
    let batch = run_batch(
        &server,
        json!({
            "fuel": 1000,
            "jobs": [
                {"task": "fib", "input": {"n": 25}},
                {"task": "fib", "input": {"n": 25}, "fuel": 1_000_000_000u64},
            ],
        }),
    );
    assert_eq!(
        batch["jobs"][0]["error"]["code"], "fuel_exhausted",
        "{batch}"
    );
    assert_eq!(batch["jobs"][1]["status"], "succeeded", "{batch}");
}

#[test]
fn a_batch_with_one_bad_job_is_refused_whole() {
    let server = server();
    let response = server.post_json(
        "/v1/batches",
        &json!({"jobs": [
            {"task": "uppercase", "input": {"text": "a"}},
            {"task": "no-such-task"},
        ]}),
    );
    assert_eq!(response.status, 404, "{}", response.text);
    assert_eq!(response.json["error"]["code"], "unknown_task");
    let message = response.json["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("jobs[1]: "), "{message}");
    let jobs = server.get("/v1/jobs");
    assert_eq!(jobs.json["jobs"], json!([]), "nothing was accepted");

    for (body, why) in [
        (json!({"jobs": []}), "at least one job"),
        (
            json!({"task": "fib"}),
            "either `jobs`, or `task` and `inputs`",
        ),
        (
            json!({"jobs": [{"task": "fib"}], "task": "fib", "inputs": [1]}),
            "either",
        ),
        (json!({"jobs": [{"task": "fib", "wait_ms": 5}]}), "wait_ms"),
        (
            json!({"jobs": [{"task": "fib"}], "max_concurrent": 0}),
            "at least 1",
        ),
        (
            json!({"jobs": [{"task": "fib"}], "colour": "red"}),
            "unknown field",
        ),
    ] {
        let response = server.post_json("/v1/batches", &body);
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        let message = response.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{body}: {message}");
    }
}

#[test]
fn a_batch_the_queue_cannot_hold_is_refused_and_nothing_is_lost() {
    let server = server_with(&["--workers", "1", "--max-queued", "4"]);
    let too_big = json!({"task": "uppercase", "inputs": vec![json!({"text": "x"}); 5]});
    let response = server.post_json("/v1/batches", &too_big);
    assert_eq!(response.status, 400, "{}", response.text);
    assert!(response.text.contains("--max-queued"), "{}", response.text);

    // One job holds the only engine thread; three wait.
    let blocker = server.post_json(
        "/v1/jobs",
        &json!({"task": "loop", "timeout_ms": 60_000, "kind": "cpu"}),
    );
    let blocker = blocker.json["id"].as_str().unwrap().to_owned();
    let started = server.get(&format!("/v1/jobs/{blocker}?wait_ms=30000&until=started"));
    assert_eq!(started.json["status"], "running");
    for _ in 0..3 {
        let queued = server.post_json("/v1/jobs", &json!({"task": "noop"}));
        assert_eq!(queued.status, 202, "{}", queued.text);
    }
    let two = json!({"task": "uppercase", "inputs": [{"text": "a"}, {"text": "b"}]});
    let refused = server.post_json("/v1/batches", &two);
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert!(refused.header("retry-after").is_some());
    let one = json!({"task": "uppercase", "inputs": [{"text": "a"}]});
    let accepted = server.post_json("/v1/batches", &one);
    assert_eq!(accepted.status, 202, "{}", accepted.text);

    server.delete(&format!("/v1/jobs/{blocker}"));
    let id = accepted.json["id"].as_str().unwrap();
    let done = server.get(&format!("/v1/batches/{id}?wait_ms=60000"));
    assert_eq!(
        done.json["jobs"][0]["output"]["upper"], "A",
        "{}",
        done.text
    );
    let status = server.get("/v1/status").json;
    assert_eq!(status["scheduler"]["accepted"], 5, "{status}");
    // The 2-job batch counts as two refused; the one too big for any queue never reached it.
    assert_eq!(status["scheduler"]["rejected"], 2, "{status}");
}

#[test]
fn cancelling_a_batch_stops_its_running_and_held_jobs() {
    let server = server();
    let response = server.post_json(
        "/v1/batches",
        &json!({"task": "loop", "inputs": [null, null, null, null], "max_concurrent": 1,
                "kind": "cpu", "timeout_ms": 60_000}),
    );
    assert_eq!(response.status, 202, "{}", response.text);
    assert!(response.header("location").is_some());
    let id = response.json["id"].as_str().unwrap();
    let first = response.json["jobs"][0]["id"].as_str().unwrap();
    let started = server.get(&format!("/v1/jobs/{first}?wait_ms=30000&until=started"));
    assert_eq!(started.json["status"], "running");
    let second = response.json["jobs"][1]["id"].as_str().unwrap();
    assert_eq!(
        server.get(&format!("/v1/jobs/{second}")).json["status"],
        "queued",
        "held back by max_concurrent"
    );

    let cancelled = server.delete(&format!("/v1/batches/{id}"));
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json["status"], "finished");
    assert_eq!(cancelled.json["counts"]["failed"], 4);
    for job in cancelled.json["jobs"].as_array().unwrap() {
        assert_eq!(job["error"]["code"], "cancelled", "{job}");
    }
    // The server goes on serving.
    let after = server.post_json(
        "/v1/jobs",
        &json!({"task": "uppercase", "input": {"text": "still here"}, "wait_ms": 30000}),
    );
    assert_eq!(after.json["status"], "succeeded", "{}", after.text);

    let missing = server.get("/v1/batches/01234567-89ab-7def-8123-456789abcdef");
    assert_eq!(missing.json["error"]["code"], "batch_not_found");
    let bad = server.get("/v1/batches/nope");
    assert_eq!(bad.json["error"]["code"], "invalid_batch_id");
}
