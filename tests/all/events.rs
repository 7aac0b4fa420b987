//! A job's events as Server-Sent Events (`GET /v1/jobs/{id}/events`): in order, live while
//! the job runs, replayed for a late watcher, resumed with `Last-Event-ID`, and ended when the
//! server stops.

use std::time::Duration;

use serde_json::json;
use taskhost_tests::SseEvent;

use crate::{run_job, server, submit};

fn names(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|event| event.event.as_str()).collect()
}

fn log_messages(events: &[SseEvent]) -> Vec<&str> {
    events
        .iter()
        .filter(|event| event.event == "log")
        .map(|event| event.data["message"].as_str().unwrap())
        .collect()
}

#[test]
fn a_watched_job_streams_its_life_in_order() {
    let server = server();
    let id = submit(
        &server,
        json!({"task": "steps", "input": {"steps": 3, "ms": 50}}),
    );
    let events = server
        .events(&format!("/v1/jobs/{id}/events"), None)
        .expect("an event stream")
        .collect_all();

    let names = names(&events);
    assert_eq!(names[..2], ["queued", "started"], "{events:#?}");
    assert_eq!(names.last(), Some(&"finished"), "{events:#?}");
    assert_eq!(
        log_messages(&events),
        ["step 1 done", "step 2 done", "step 3 done"]
    );
    // Progress reports may be coalesced when the watcher is slower than the task, never
    // reordered; the last one is always seen.
    let progress: Vec<u64> = events
        .iter()
        .filter(|event| event.event == "progress")
        .map(|event| event.data["done"].as_u64().unwrap())
        .collect();
    assert!(
        progress.is_sorted() && progress.last() == Some(&3),
        "{progress:?}"
    );
    assert_eq!(events[0].data["queued_at"].as_str().map(str::len), Some(24));

    let record = &events.last().unwrap().data;
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["output"], json!({"steps": 3}));
    assert_eq!(
        record["progress"],
        json!({"done": 3, "total": 3, "message": "step 3"})
    );
    let ids: Vec<&str> = events.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(ids[..2], ["q0", "r0"]);
    assert_eq!(ids.last(), Some(&"f3"));
}

#[test]
fn events_arrive_while_the_job_is_still_running() {
    let server = server();
    let id = submit(
        &server,
        json!({"task": "steps", "input": {"steps": 2, "ms": 1500}}),
    );
    let mut stream = server
        .events(&format!("/v1/jobs/{id}/events"), None)
        .expect("an event stream");
    let first_log = stream.by_ref().find(|event| event.event == "log").unwrap();
    assert_eq!(
        first_log.data,
        json!({"level": "info", "message": "step 1 done"})
    );
    let progress = stream.next().unwrap();
    assert_eq!(progress.event, "progress");
    assert_eq!(
        progress.data,
        json!({"done": 1, "total": 2, "message": "step 1"})
    );

    // The second step takes another 1.5 s: the job is still running, and its record shows
    // the progress so far.
    let record = server.get(&format!("/v1/jobs/{id}")).json;
    assert_eq!(record["status"], "running", "{record}");
    assert_eq!(record["progress"]["done"], 1, "{record}");

    let rest = stream.collect_all();
    assert_eq!(log_messages(&rest), ["step 2 done"]);
    assert_eq!(rest.last().unwrap().data["status"], "succeeded");
}

#[test]
fn a_late_watcher_gets_the_whole_story_and_a_reconnect_resumes_after_its_last_event() {
    let server = server();
    let record = run_job(
        &server,
        json!({"task": "steps", "input": {"steps": 3, "ms": 0}}),
    );
    let id = record["id"].as_str().unwrap();
    let path = format!("/v1/jobs/{id}/events");

    let all = server.events(&path, None).unwrap().collect_all();
    assert_eq!(
        names(&all),
        [
            "queued", "started", "log", "log", "log", "progress", "finished"
        ],
        "a finished job's stream replays its life, with its last progress"
    );
    assert_eq!(all.last().unwrap().data, record);

    let second_line = &all[3];
    assert_eq!(second_line.data["message"], "step 2 done");
    let resumed = server
        .events(&path, Some(&second_line.id))
        .unwrap()
        .collect_all();
    assert_eq!(names(&resumed), ["log", "progress", "finished"]);
    assert_eq!(log_messages(&resumed), ["step 3 done"]);

    let after_the_end = server.events(&path, Some("f3")).unwrap_err();
    assert_eq!(
        after_the_end.status, 204,
        "no more events: EventSource stops reconnecting"
    );
}

#[test]
fn a_failed_job_streams_its_error_and_bad_requests_are_refused() {
    let server = server();
    let failed = run_job(&server, json!({"task": "fail", "input": {"mode": "error"}}));
    let id = failed["id"].as_str().unwrap();
    let events = server
        .events(&format!("/v1/jobs/{id}/events"), None)
        .unwrap()
        .collect_all();
    let finished = events.last().unwrap();
    assert_eq!(finished.event, "finished");
    assert_eq!(finished.data["status"], "failed");
    assert_eq!(
        finished.data["error"]["code"], "task_error",
        "{}",
        finished.data
    );

    let unknown = server
        .events("/v1/jobs/01936f7c-0000-7000-8000-000000000000/events", None)
        .unwrap_err();
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json["error"]["code"], "job_not_found");
    let bad_id = server.events("/v1/jobs/nope/events", None).unwrap_err();
    assert_eq!(bad_id.json["error"]["code"], "invalid_job_id");
    let bad_resume = server
        .events(&format!("/v1/jobs/{id}/events"), Some("x7"))
        .unwrap_err();
    assert_eq!(bad_resume.status, 400);
    assert_eq!(bad_resume.json["error"]["code"], "invalid_event_id");
    assert!(
        bad_resume.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"x7\""),
        "{}",
        bad_resume.text
    );
}

#[test]
fn stopping_the_server_ends_open_streams_instead_of_waiting_for_their_jobs() {
    let mut server = crate::server_with(&["--drain-timeout-ms", "1000"]);
    let id = submit(
        &server,
        json!({"task": "loop", "input": null, "timeout_ms": 120_000}),
    );
    let mut stream = server
        .events(&format!("/v1/jobs/{id}/events"), None)
        .unwrap();
    assert_eq!(stream.next().unwrap().event, "queued");
    assert_eq!(stream.next().unwrap().event, "started");

    server.terminate(Duration::from_secs(60));
    let rest = stream.collect_all();
    assert!(
        rest.iter().all(|event| event.event != "finished"),
        "the stream ends when the server stops: {rest:#?}"
    );
}

#[test]
fn progress_reported_in_a_tight_loop_reaches_a_watcher_coalesced() {
    let server = server();
    let steps = 200_000;
    let submitted = std::time::Instant::now();
    let id = submit(
        &server,
        json!({"task": "steps", "input": {"steps": steps, "ms": 0}, "timeout_ms": 120_000}),
    );
    let events = server
        .events(&format!("/v1/jobs/{id}/events"), None)
        .expect("an event stream")
        .collect_all();
    let finished = events.last().unwrap();
    assert_eq!(finished.event, "finished", "{finished:?}");
    assert_eq!(finished.data["status"], "succeeded", "{:?}", finished.data);
    let progress: Vec<u64> = events
        .iter()
        .filter(|event| event.event == "progress")
        .map(|event| event.data["done"].as_u64().unwrap())
        .collect();
    assert_eq!(
        progress.last(),
        Some(&steps),
        "the last report is always sent"
    );
    assert!(
        progress.windows(2).all(|pair| pair[0] < pair[1]),
        "progress went backwards: {progress:?}"
    );
    // At most one progress event per 50 ms of watching, and the last (measured here, from
    // submission to the stream's end: on a loaded machine the job's own wall time can be
    // shorter than the time its watcher was sent events over).
    let watched_ms = submitted.elapsed().as_secs_f64() * 1000.0;
    assert!(
        (progress.len() as f64) <= watched_ms / 50.0 + 2.0,
        "{} progress events in {watched_ms} ms",
        progress.len()
    );
}
