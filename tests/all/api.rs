//! The HTTP surface: routes, error shapes and status codes.

use serde_json::json;

use crate::server;

/// Every API error has the shape `{"error": {"code", "message"}}`.
fn assert_error(response: &taskhost_tests::Response, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    assert_eq!(response.json["error"]["code"], code, "{}", response.text);
    let message = response.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !message.is_empty(),
        "an error needs a message: {}",
        response.text
    );
}

#[test]
fn an_unknown_task_is_404() {
    let server = server();
    let response = server.post_json("/v1/jobs", &json!({"task": "nope", "input": {}}));
    assert_error(&response, 404, "unknown_task");
    assert!(
        response.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
}

#[test]
fn malformed_json_is_400() {
    let server = server();
    let response = server.post("/v1/jobs", "application/json", r#"{"task": "uppercase", "#);
    assert_error(&response, 400, "malformed_json");
}

#[test]
fn a_body_of_the_wrong_shape_is_400() {
    let server = server();
    assert_error(
        &server.post_json("/v1/jobs", &json!({"input": {}})),
        400,
        "invalid_request",
    );
    let unknown_field = server.post_json("/v1/jobs", &json!({"task": "fib", "tsak": 1}));
    assert_error(&unknown_field, 400, "invalid_request");
    assert!(
        unknown_field.text.contains("tsak"),
        "{}",
        unknown_field.text
    );
}

#[test]
fn a_body_that_is_not_json_is_415() {
    let server = server();
    let response = server.post("/v1/jobs", "text/plain", r#"{"task": "fib"}"#);
    assert_error(&response, 415, "unsupported_media_type");
}

#[test]
fn unknown_and_malformed_job_ids() {
    let server = server();
    assert_error(
        &server.get("/v1/jobs/0190f0d2-7b4a-7c3e-8f00-000000000000"),
        404,
        "job_not_found",
    );
    assert_error(&server.get("/v1/jobs/not-a-uuid"), 400, "invalid_job_id");
    assert_error(&server.get("/v1/jobs/x?wait_ms=abc"), 400, "invalid_query");
}

#[test]
fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let server = server();
    assert_error(&server.get("/v2/jobs"), 404, "not_found");
    assert_error(&server.delete("/v1/jobs"), 405, "method_not_allowed");
}

#[test]
fn health_and_task_list() {
    let server = server();
    let health = server.get("/healthz");
    assert_eq!((health.status, health.text.as_str()), (200, "ok"));
    let tasks = server.loaded_tasks();
    let ready = server.get("/readyz");
    assert_eq!((ready.status, ready.text.as_str()), (200, "ready"));
    let names: Vec<_> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "alloc",
            "fail",
            "fetch",
            "fib",
            "grep",
            "loop",
            "noop",
            "print",
            "probe",
            "recurse",
            "sleep",
            "spin",
            "steps",
            "uppercase",
            "wordcount"
        ]
    );
    let kind_of = |name: &str| {
        let task = tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name);
        task.unwrap()["kind"].clone()
    };
    assert_eq!(kind_of("fib"), "cpu");
    assert_eq!(kind_of("sleep"), "io", "sleep imports wasi:io/poll");
    for task in tasks["tasks"].as_array().unwrap() {
        let source = task["source"].as_str().unwrap();
        assert!(["compiled", "disk"].contains(&source), "{task}");
        assert!(task["load_ms"].as_f64().unwrap() > 0.0, "{task}");
        assert!(
            task["serving_since"].as_str().unwrap().ends_with('Z'),
            "{task}"
        );
    }
}
