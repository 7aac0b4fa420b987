//! Flow control and lifecycle: the bounded queue, cancellation, fair spread across engine
//! threads, status counters, graceful shutdown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{run_job, server, server_with};

fn submit(server: &taskhost_tests::Server, job: Value) -> taskhost_tests::Response {
    server.post_json("/v1/jobs", &job)
}

#[test]
fn a_full_queue_answers_429_with_retry_after_and_every_accepted_job_completes() {
    let server = server_with(&["--workers", "1", "--max-queued", "2"]);
    // Occupy the only engine thread: the submission returns once it runs the loop.
    let running = server.post_json(
        "/v1/jobs?wait_ms=60000&until=started",
        &json!({"task": "loop", "timeout_ms": 60000}),
    );
    assert_eq!(running.status, 202, "{}", running.text);
    assert_eq!(running.json["status"], "running", "{}", running.text);
    let blocker_id = running.json["id"].as_str().unwrap().to_owned();

    let responses: Vec<_> = (0..6)
        .map(|n| submit(&server, json!({"task": "fib", "input": {"n": n}})))
        .collect();
    let accepted: Vec<_> = responses.iter().filter(|r| r.status == 202).collect();
    let refused: Vec<_> = responses.iter().filter(|r| r.status == 429).collect();
    assert_eq!((accepted.len(), refused.len()), (2, 4), "{responses:#?}");
    for response in &refused {
        assert_eq!(response.json["error"]["code"], "queue_full");
        let retry_after: u64 = response.retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
    }

    let status = server.get("/v1/status").json;
    assert_eq!(status["scheduler"]["queued"], 2, "{status}");
    assert_eq!(status["scheduler"]["rejected"], 4, "{status}");

    // Free the thread: every accepted job then completes.
    let cancelled = server.delete(&format!("/v1/jobs/{blocker_id}"));
    assert_eq!(
        cancelled.json["error"]["code"], "cancelled",
        "{}",
        cancelled.text
    );
    for response in accepted {
        let id = response.json["id"].as_str().unwrap();
        let done = server.get(&format!("/v1/jobs/{id}?wait_ms=60000")).json;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    let status = server.get("/v1/status").json;
    assert_eq!(status["scheduler"]["accepted"], 3, "{status}");
    assert_eq!(status["scheduler"]["completed"], 3, "{status}");
}

#[test]
fn a_running_job_is_cancelled_at_its_next_epoch_tick() {
    let server = server();
    let job = submit(&server, json!({"task": "loop", "timeout_ms": 60000}));
    let id = job.json["id"].as_str().unwrap();
    let running = server
        .get(&format!("/v1/jobs/{id}?wait_ms=60000&until=started"))
        .json;
    assert_eq!(running["status"], "running", "{running}");

    let cancelled = server.delete(&format!("/v1/jobs/{id}"));
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json["status"], "failed");
    assert_eq!(cancelled.json["error"]["code"], "cancelled");
    assert!(cancelled.json["wall_ms"].as_f64().unwrap() < 60_000.0);

    // Cancelling again is a conflict: the job has finished.
    let again = server.delete(&format!("/v1/jobs/{id}"));
    assert_eq!(
        (again.status, &again.json["error"]["code"]),
        (409, &json!("job_finished"))
    );
    assert_eq!(
        run_job(&server, json!({"task": "noop"}))["status"],
        "succeeded"
    );
}

#[test]
fn a_queued_job_is_cancelled_before_it_starts() {
    let server = server_with(&["--workers", "1"]);
    let blocker = submit(&server, json!({"task": "loop", "timeout_ms": 60000}));
    let blocker_id = blocker.json["id"].as_str().unwrap();
    let queued = submit(
        &server,
        json!({"task": "uppercase", "input": {"text": "never"}}),
    );
    let queued_id = queued.json["id"].as_str().unwrap();

    let cancelled = server.delete(&format!("/v1/jobs/{queued_id}")).json;
    assert_eq!(cancelled["error"]["code"], "cancelled", "{cancelled}");
    assert!(
        cancelled["error"]["message"]
            .as_str()
            .unwrap()
            .contains("before it started")
    );

    server.delete(&format!("/v1/jobs/{blocker_id}"));
    // The cancelled job never ran, even once the thread was free.
    let after = run_job(&server, json!({"task": "noop"}));
    assert_eq!(after["status"], "succeeded");
    let record = server.get(&format!("/v1/jobs/{queued_id}")).json;
    assert!(record.get("output").is_none(), "{record}");
}

#[test]
fn jobs_spread_fairly_across_engine_threads() {
    // Each job holds its engine thread for 50 ms of wall-clock time (a sleep run as a CPU
    // job), so how many each thread completes depends only on the scheduler handing work to
    // whichever thread is free, not on how much CPU other processes leave each core.
    let server = server_with(&["--workers", "2"]);
    let jobs = 40;
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let job = run_job(
                    &server,
                    json!({"task": "sleep", "input": {"ms": 50}, "kind": "cpu"}),
                );
                assert_eq!(job["status"], "succeeded", "{job}");
            });
        }
    });
    let status = server.get("/v1/status").json;
    let workers = status["scheduler"]["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    let completed: Vec<u64> = workers
        .iter()
        .map(|w| w["completed"].as_u64().unwrap())
        .collect();
    assert_eq!(completed.iter().sum::<u64>(), jobs, "{status}");
    for count in &completed {
        assert!(
            *count >= jobs / 4,
            "a worker did less than half its fair share: {completed:?}"
        );
    }
}

#[test]
fn graceful_shutdown_finishes_accepted_jobs() {
    let mut server = server_with(&["--workers", "1"]);
    let ids: Vec<String> = (0..4)
        .map(|_| {
            let response = submit(&server, json!({"task": "fib", "input": {"n": 27}}));
            assert_eq!(response.status, 202);
            response.json["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(
        server.terminate(Duration::from_secs(60)),
        "{}",
        server.log()
    );
    let log = server.log();
    assert!(log.contains("every accepted job finished"), "{log}");
}

#[test]
fn graceful_shutdown_cancels_what_outlives_the_drain_timeout() {
    let mut server = server_with(&["--workers", "1", "--drain-timeout-ms", "200"]);
    let looping = submit(&server, json!({"task": "loop", "timeout_ms": 60000}));
    assert_eq!(looping.status, 202);
    assert!(
        server.terminate(Duration::from_secs(60)),
        "{}",
        server.log()
    );
    let log = server.log();
    assert!(log.contains("cancelled=1"), "{log}");
}
