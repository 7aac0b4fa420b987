//! Edges of the API found by hand: paths that do not decode, long input echoed in errors,
//! deleting a task that does not exist.

use std::time::{Duration, Instant};

use serde_json::json;
use taskhost_tests::fixtures;

use crate::server;
use crate::upload::server_over;

#[test]
fn a_path_that_does_not_decode_is_400_in_the_apis_shape() {
    let server = server();
    for path in [
        "/v1/jobs/%FF",
        "/v1/jobs/%FF/events",
        "/v1/tasks/%FF",
        "/v1/batches/%FF",
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 400, "{path}: {}", response.text);
        assert_eq!(
            response.json["error"]["code"], "invalid_path",
            "{path}: {}",
            response.text
        );
        let content_type = response.header("content-type");
        assert_eq!(content_type, Some("application/json"), "{path}");
    }
    let response = server.delete("/v1/tasks/%FF");
    assert_eq!(
        response.json["error"]["code"], "invalid_path",
        "{}",
        response.text
    );
}

#[test]
fn a_long_name_is_cut_where_errors_echo_it() {
    let server = server();
    let name = "a".repeat(100_000);
    let submitted = server.post_json("/v1/jobs", &json!({"task": name}));
    // Shorter in a path, which the client keeps to a few kilobytes.
    let name = "a".repeat(5_000);
    let fetched = server.get(&format!("/v1/tasks/{name}"));
    let deleted = server.delete(&format!("/v1/tasks/{name}"));
    let job = server.get(&format!("/v1/jobs/{name}"));
    for (response, status, code, length) in [
        (submitted, 404, "unknown_task", 100_000),
        (fetched, 404, "unknown_task", 5_000),
        (deleted, 400, "invalid_task_name", 5_000),
        (job, 400, "invalid_job_id", 5_000),
    ] {
        let start: String = response.text.chars().take(300).collect();
        assert_eq!(response.status, status, "{start}");
        assert_eq!(response.json["error"]["code"], code, "{start}");
        let message = response.json["error"]["message"].as_str().unwrap();
        assert!(message.len() < 500, "{} bytes: {start}", message.len());
        let marker = format!("\"… ({length} characters, cut)");
        assert!(message.contains(&marker), "{message}");
        assert!(message.contains(&"a".repeat(200)), "{message}");
    }
}

#[test]
fn deleting_a_task_that_does_not_exist_changes_nothing_and_wakes_no_one() {
    let server = server();
    let revision = server.loaded_tasks()["revision"].as_u64().unwrap();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let start = Instant::now();
            let list = server.get(&format!("/v1/tasks?since={revision}&wait_ms=1500"));
            (list, start.elapsed())
        });
        let response = server.delete("/v1/tasks/no-such-task");
        assert_eq!(response.status, 404, "{}", response.text);
        assert_eq!(response.json["error"]["code"], "unknown_task");
        let (list, waited) = waiter.join().unwrap();
        assert_eq!(list.json["revision"], revision, "{}", list.text);
        assert!(
            waited >= Duration::from_millis(1_400),
            "woken after {waited:?}"
        );
    });
}

#[test]
fn deleting_a_task_is_logged_as_uploading_is() {
    let tasks = tempfile::tempdir().unwrap();
    let server = server_over(tasks.path(), &[]);
    let component = std::fs::read(fixtures::UPPERCASE).unwrap();
    let created = server.put("/v1/tasks/doomed", "application/wasm", &component);
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(server.delete("/v1/tasks/doomed").status, 204);
    let log = server.log();
    let logged = |what: &str| {
        let mut lines = log.lines();
        lines.any(|line| line.contains(what) && line.contains("task=\"doomed\""))
    };
    assert!(logged("task uploaded"), "{log}");
    assert!(logged("task deleted"), "{log}");
}
