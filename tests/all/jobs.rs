//! Running jobs: outputs, task errors, panics, traps, and waiting.

use serde_json::json;

use crate::{run_job, server};

#[test]
fn uppercase_succeeds_with_its_output() {
    let server = server();
    let job = run_job(
        &server,
        json!({"task": "uppercase", "input": {"text": "hello wasm world"}}),
    );
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["task"], "uppercase");
    assert_eq!(
        job["output"],
        json!({"upper": "HELLO WASM WORLD", "words": 3})
    );
    assert_eq!(job["hash"].as_str().unwrap().len(), 64, "blake3 hex: {job}");
    // RFC 3339 timestamps in UTC sort as text: queued, then started, then finished.
    let at = |field: &str| {
        job[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {job}"))
    };
    assert!(at("queued_at").ends_with('Z'), "{job}");
    assert!(at("queued_at") <= at("started_at") && at("started_at") <= at("finished_at"));
    assert!(job.get("error").is_none());
    // The SDK's logger reached the job's log.
    assert_eq!(job["log"]["lines"][0]["level"], "debug");
    assert_eq!(job["log"]["lines"][0]["message"], "upper-casing 16 bytes");
}

#[test]
fn fib_computes_its_value() {
    let server = server();
    let job = run_job(&server, json!({"task": "fib", "input": {"n": 30}}));
    assert_eq!(job["output"], json!({"value": 832040}), "{job}");
}

#[test]
fn grep_finds_matches_and_refuses_a_bad_pattern() {
    let server = server();
    let job = run_job(
        &server,
        json!({"task": "grep", "input": {"pattern": r"\p{Greek}+", "text": "alpha α, beta βήτα"}}),
    );
    let found: Vec<_> = job["output"]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["α", "βήτα"], "{job}");

    let bad = run_job(
        &server,
        json!({"task": "grep", "input": {"pattern": "(", "text": ""}}),
    );
    assert_eq!(bad["error"]["code"], "invalid_input", "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad pattern")
    );
}

#[test]
fn a_task_error_fails_the_job_with_its_message() {
    let server = server();
    let job = run_job(&server, json!({"task": "fail", "input": {"mode": "error"}}));
    assert_eq!(job["status"], "failed");
    assert_eq!(
        job["error"],
        json!({"code": "task_error", "message": "failed on request"})
    );
    assert!(job.get("output").is_none());
}

#[test]
fn input_of_the_wrong_shape_fails_as_invalid_input() {
    let server = server();
    let job = run_job(&server, json!({"task": "uppercase", "input": {"txt": "x"}}));
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "invalid_input");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("missing field `text`"), "{message}");

    let job = run_job(&server, json!({"task": "fib", "input": {"n": 94}}));
    assert_eq!(job["error"]["code"], "invalid_input");
    assert_eq!(job["error"]["message"], "n must be at most 93, got 94");
}

#[test]
fn a_panic_fails_the_job_with_the_panic_message_and_the_host_keeps_serving() {
    let server = server();
    let job = run_job(&server, json!({"task": "fail", "input": {"mode": "panic"}}));
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "panic");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("panicked on request"), "{message}");
    assert!(message.contains("src/lib.rs"), "says where: {message}");

    let after = run_job(
        &server,
        json!({"task": "uppercase", "input": {"text": "still here"}}),
    );
    assert_eq!(after["status"], "succeeded", "{}", server.log());
}

#[test]
fn a_trap_fails_the_job_with_the_trap_message_and_the_host_keeps_serving() {
    let server = server();
    let job = run_job(&server, json!({"task": "fail", "input": {"mode": "trap"}}));
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "trap");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("unreachable"), "{message}");

    let after = run_job(&server, json!({"task": "fib", "input": {"n": 10}}));
    assert_eq!(after["output"], json!({"value": 55}));
}

#[test]
fn without_wait_the_job_is_accepted_and_can_be_awaited_by_id() {
    let server = server();
    let accepted = server.post_json("/v1/jobs", &json!({"task": "fib", "input": {"n": 25}}));
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    assert_eq!(accepted.json["status"], "queued");
    let id = accepted.json["id"].as_str().unwrap();
    assert_eq!(
        accepted.location.as_deref(),
        Some(format!("/v1/jobs/{id}").as_str())
    );

    let done = server.get(&format!("/v1/jobs/{id}?wait_ms=30000"));
    assert_eq!(done.status, 200);
    assert_eq!(done.json["status"], "succeeded");
    assert_eq!(done.json["output"], json!({"value": 75025}));
    assert_eq!(done.json["id"], id);

    // Once finished, a plain GET returns the same record.
    assert_eq!(server.get(&format!("/v1/jobs/{id}")).json, done.json);
}

#[test]
fn wait_in_the_query_string_works_for_submissions_too() {
    let server = server();
    let response = server.post_json(
        "/v1/jobs?wait_ms=30000",
        &json!({"task": "uppercase", "input": {"text": "q"}}),
    );
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json["output"]["upper"], "Q");
}

#[test]
fn many_concurrent_jobs_all_complete_with_their_own_outputs() {
    let server = server();
    let outputs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|n| {
                let server = &server;
                scope.spawn(move || {
                    server
                        .post_json(
                            "/v1/jobs",
                            &json!({"task": "fib", "input": {"n": n % 20}, "wait_ms": 60000}),
                        )
                        .json
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let fib = |n: u64| (0..n).fold((0u64, 1u64), |(a, b), _| (b, a + b)).0;
    for (n, job) in outputs.iter().enumerate() {
        assert_eq!(job["output"]["value"], fib(n as u64 % 20), "job {n}: {job}");
    }
}

#[test]
fn a_retried_submission_with_an_idempotency_key_returns_the_first_job() {
    let server = server();
    let submit = |key: &str, n: u64| {
        let body = json!({"task": "fib", "input": {"n": n}, "wait_ms": 60_000}).to_string();
        server.post_with_headers(
            "/v1/jobs",
            "application/json",
            &body,
            &[("idempotency-key", key)],
        )
    };
    let first = submit("order-42", 20);
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let retry = submit("order-42", 20);
    assert_eq!(retry.json["id"], first.json["id"], "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json["output"]["value"], 6765);

    let other = submit("order-42", 21);
    assert_eq!(other.status, 422, "{}", other.text);
    assert_eq!(other.json["error"]["code"], "idempotency_key_conflict");
    let fresh = submit("order-43", 21);
    assert_ne!(fresh.json["id"], first.json["id"]);

    let bad = submit("with space", 1);
    assert_eq!(
        (bad.status, &bad.json["error"]["code"]),
        (400, &json!("invalid_idempotency_key"))
    );
    let status = server.get("/v1/status").json;
    assert_eq!(status["scheduler"]["accepted"], 2, "{status}");
}

#[test]
fn jobs_are_listed_newest_first_with_filters_and_pages() {
    let server = server();
    let mut submitted: Vec<String> = (0..5)
        .map(|n| run_job(&server, json!({"task": "fib", "input": {"n": n}}))["id"].to_string())
        .collect();
    let failed = run_job(&server, json!({"task": "fail", "input": {"mode": "error"}}));
    submitted.push(failed["id"].to_string());
    submitted.reverse();

    let mut listed = Vec::new();
    let mut path = "/v1/jobs?limit=4".to_owned();
    loop {
        let page = server.get(&path).json;
        let jobs = page["jobs"].as_array().unwrap();
        assert!(jobs.len() <= 4, "{page}");
        listed.extend(jobs.iter().map(|job| job["id"].to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/jobs?limit=4&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(listed, submitted, "every job once, newest first");

    let only_failed = server.get("/v1/jobs?status=failed").json;
    assert_eq!(
        only_failed["jobs"].as_array().unwrap().len(),
        1,
        "{only_failed}"
    );
    assert_eq!(only_failed["jobs"][0]["id"], failed["id"]);
    let only_fib = server.get("/v1/jobs?task=fib&status=succeeded").json;
    assert_eq!(only_fib["jobs"].as_array().unwrap().len(), 5, "{only_fib}");

    let too_many = server.get("/v1/jobs?limit=5000");
    assert_eq!(
        too_many.json["error"]["code"], "invalid_query",
        "{}",
        too_many.text
    );
    let bad_cursor = server.get("/v1/jobs?cursor=nope");
    assert_eq!(bad_cursor.json["error"]["code"], "invalid_job_id");
    let bad_status = server.get("/v1/jobs?status=sleeping");
    assert_eq!(bad_status.status, 400);
}
