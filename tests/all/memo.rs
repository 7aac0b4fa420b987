//! Memoized results (`"memoize": true`, or `#[task(memoize)]` in the task): a deterministic
//! task's result is reused for the same component and input instead of running again, and
//! never for a task that can observe the outside world.

use serde_json::{Value, json};
use taskhost_tests::Server;

use crate::{run_job, server, server_with, summary};

fn memo_status(server: &Server) -> Value {
    server.get("/v1/status").json["memo"].clone()
}

#[test]
fn a_memoized_job_reuses_the_first_result_without_running() {
    let server = server();
    // With a fuel budget, so the job runs metered code and reports its cost.
    let job = json!({"task": "fib", "input": {"n": 27}, "memoize": true, "fuel": 1_000_000_000});
    let first = run_job(&server, job.clone());
    assert_eq!(first["status"], "succeeded", "{first}");
    assert!(first.get("memoized_from").is_none(), "{first}");
    assert!(first["fuel_consumed"].as_u64().unwrap() > 0);
    assert_eq!(memo_status(&server)["misses"], 1);
    let completed_before = server.get("/v1/status").json["scheduler"]["completed"].clone();

    let second = run_job(&server, job);
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["memoized_from"], first["id"], "{second}");
    assert_eq!(second["output"], first["output"]);
    assert_eq!(second["log"], first["log"]);
    assert_eq!(
        second["cpu_ms"], 0.0,
        "a memoized job runs no code: {second}"
    );
    assert!(second.get("fuel_consumed").is_none(), "{second}");
    let memo = memo_status(&server);
    assert_eq!(
        (memo["hits"].as_u64(), memo["entries"].as_u64()),
        (Some(1), Some(1))
    );
    // It still passes through the queue, so the scheduler counts it as one job.
    assert_eq!(
        server.get("/v1/status").json["scheduler"]["completed"],
        completed_before.as_u64().unwrap() + 1
    );

    let other_input = run_job(
        &server,
        json!({"task": "fib", "input": {"n": 26}, "memoize": true}),
    );
    assert!(other_input.get("memoized_from").is_none(), "{other_input}");
    let not_asked = run_job(&server, json!({"task": "fib", "input": {"n": 27}}));
    assert!(
        not_asked.get("memoized_from").is_none(),
        "only jobs that ask are memoized: {not_asked}"
    );
}

#[test]
fn tasks_that_can_observe_the_outside_world_are_never_memoized() {
    let server = server();
    for (task, import) in [
        ("grep", "wasi:random/insecure-seed"),
        ("sleep", "wasi:clocks/monotonic-clock"),
        ("fetch", "wasi:http/outgoing-handler"),
    ] {
        let response = server.post_json(
            "/v1/jobs",
            &json!({"task": task, "input": {}, "memoize": true}),
        );
        assert_eq!(response.status, 422, "{task}: {}", response.text);
        assert_eq!(response.json["error"]["code"], "not_deterministic");
        let message = response.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(import), "{task}: {message}");
    }
    assert_eq!(memo_status(&server)["entries"], 0);
    let ran = run_job(&server, json!({"task": "sleep", "input": {"ms": 1}}));
    assert_eq!(
        ran["status"], "succeeded",
        "without memoize it runs as ever"
    );
}

#[test]
fn only_results_that_follow_from_the_input_are_reused() {
    let server = server();
    let failing = json!({"task": "fail", "input": {"mode": "error"}, "memoize": true});
    let first = run_job(&server, failing.clone());
    let again = run_job(&server, failing);
    assert_eq!(again["error"]["code"], "task_error");
    assert_eq!(again["memoized_from"], first["id"], "{again}");

    // A run stopped by its limits is not kept; nor is a kept run reused by a job whose
    // limits would have stopped it.
    let starved = json!({"task": "fib", "input": {"n": 25}, "fuel": 1000, "memoize": true});
    assert_eq!(
        run_job(&server, starved.clone())["error"]["code"],
        "fuel_exhausted"
    );
    let full = run_job(
        &server,
        json!({"task": "fib", "input": {"n": 25}, "memoize": true}),
    );
    assert!(full.get("memoized_from").is_none(), "{full}");
    let starved_again = run_job(&server, starved);
    assert_eq!(
        starved_again["error"]["code"], "fuel_exhausted",
        "{starved_again}"
    );
    assert!(starved_again.get("memoized_from").is_none());
}

#[test]
fn a_batch_memoizes_its_repeated_inputs_and_a_server_can_turn_memoization_off() {
    let server = server();
    let response = server.post_json(
        "/v1/batches",
        &json!({"task": "uppercase", "inputs": [{"text": "a"}, {"text": "a"}, {"text": "b"}],
                "memoize": true, "max_concurrent": 1, "wait_ms": 60_000}),
    );
    assert_eq!(response.status, 200, "{}", response.text);
    let jobs = response.json["jobs"].as_array().unwrap();
    assert!(jobs[0].get("memoized_from").is_none());
    assert_eq!(jobs[1]["memoized_from"], jobs[0]["id"]);
    assert_eq!(jobs[1]["output"], jobs[0]["output"]);
    assert!(jobs[2].get("memoized_from").is_none());

    let off = server_with(&["--memo-cache-mib", "0"]);
    let response = off.post_json(
        "/v1/jobs",
        &json!({"task": "fib", "input": {"n": 1}, "memoize": true}),
    );
    assert_eq!(response.status, 422, "{}", response.text);
    assert_eq!(response.json["error"]["code"], "memoization_off");
}

#[test]
fn a_task_that_declares_memoize_is_memoized_unless_a_job_says_otherwise() {
    let server = server();
    let tasks = server.loaded_tasks();
    let wordcount = summary(&tasks, "wordcount");
    assert_eq!(
        (&wordcount["memoize"], &wordcount["deterministic"]),
        (&json!(true), &json!(true)),
        "{wordcount}"
    );
    let grep = summary(&tasks, "grep");
    assert_eq!(
        (&grep["memoize"], &grep["deterministic"]),
        (&json!(false), &json!(false)),
        "{grep}"
    );

    let text = json!({"text": "one two\nthree"});
    let first = run_job(&server, json!({"task": "wordcount", "input": text}));
    assert_eq!(
        first["output"],
        json!({"lines": 2, "words": 3, "chars": 13})
    );
    assert!(first.get("memoized_from").is_none(), "{first}");
    let second = run_job(&server, json!({"task": "wordcount", "input": text}));
    assert_eq!(second["memoized_from"], first["id"], "{second}");
    assert_eq!(second["output"], first["output"]);
    let opted_out = run_job(
        &server,
        json!({"task": "wordcount", "input": text, "memoize": false}),
    );
    assert!(opted_out.get("memoized_from").is_none(), "{opted_out}");
    assert_eq!(opted_out["output"], first["output"]);

    // With memoization off, the declaration does not stop its jobs from running.
    let off = server_with(&["--memo-cache-mib", "0"]);
    let ran = run_job(&off, json!({"task": "wordcount", "input": text}));
    assert_eq!(ran["status"], "succeeded", "{ran}");
}
