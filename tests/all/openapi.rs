//! `GET /openapi.json`: the document is OpenAPI 3.1, and it and the served routes agree.
//!
//! The axum router cannot list its routes, so the served set is not enumerated here. It
//! cannot hold a route the document lacks by construction: the router and the document come
//! from one list of registrations, each taking its path and methods from its handler's
//! `#[utoipa::path]` (see the api module doc). What is checked against the running server:
//! every documented operation is served and answers only statuses the document lists, and on
//! every documented path each other method is refused as `method_not_allowed`.

use std::path::Path;

use serde_json::Value;
use taskhost_tests::{Response, Server};

/// Methods probed on every documented path (axum answers `HEAD` wherever `GET` is served).
const METHODS: [&str; 6] = ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];

/// A server with no tasks (none is needed to see the routes), and its document.
fn server_and_document() -> (Server, tempfile::TempDir, Value) {
    let tasks = tempfile::tempdir().unwrap();
    let server = Server::start(
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        tasks.path().to_str().unwrap(),
        &[],
    );
    let response = server.get("/openapi.json");
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.header("content-type"), Some("application/json"));
    (server, tasks, response.json)
}

/// The schema `reference` (`#/components/schemas/NAME`) points to.
fn resolve<'a>(document: &'a Value, reference: &Value) -> &'a Value {
    let name = reference["$ref"]
        .as_str()
        .and_then(|path| path.strip_prefix("#/components/schemas/"))
        .unwrap_or_else(|| panic!("not a schema reference: {reference}"));
    &document["components"]["schemas"][name]
}

/// A concrete path for a templated one: a task name, or an id no job or batch has.
fn probe_path(template: &str) -> String {
    template
        .replace("{name}", "openapi-probe")
        .replace("{id}", "00000000-0000-7000-8000-000000000000")
}

/// The routing errors: what a route that is not served answers.
fn is_routing_error(response: &Response) -> bool {
    matches!(
        response.json["error"]["code"].as_str(),
        Some("not_found" | "method_not_allowed")
    )
}

#[test]
fn the_document_is_openapi_3_1_with_the_crates_title_and_version() {
    let (_server, _tasks, document) = server_and_document();
    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(document["info"]["title"], "taskhost");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(document["paths"].as_object().unwrap().len() >= 10);
}

#[test]
fn every_documented_operation_is_served_and_answers_documented_statuses_only() {
    let (server, _tasks, document) = server_and_document();
    let codes = &resolve(
        &document,
        &resolve(
            &document,
            &document["components"]["schemas"]["ErrorBody"]["properties"]["error"],
        )["properties"]["code"],
    )["enum"];
    for (template, item) in document["paths"].as_object().unwrap() {
        let path = probe_path(template);
        for method in METHODS {
            let response = server.request(method, &path);
            let Some(operation) = item.get(method.to_lowercase()) else {
                assert_eq!(
                    response.json["error"]["code"], "method_not_allowed",
                    "{method} {template} is served but not documented: {}",
                    response.text
                );
                continue;
            };
            assert!(
                !is_routing_error(&response),
                "{method} {template} is documented but not served: {}",
                response.text
            );
            let status = response.status.to_string();
            assert!(
                operation["responses"].get(&status).is_some(),
                "{method} {template} answered {status}, which its document does not list: {}",
                response.text
            );
            if let Some(code) = response.json["error"]["code"].as_str() {
                assert!(
                    codes.as_array().unwrap().iter().any(|c| c == code),
                    "error code {code} is not in the document's ApiErrorCode"
                );
            }
        }
    }
}

#[test]
fn the_schemas_and_responses_are_the_real_ones() {
    let (_server, _tasks, document) = server_and_document();
    let schemas = &document["components"]["schemas"];

    let record = &schemas["JobRecord"];
    assert!(
        record["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    let status = resolve(&document, &record["properties"]["status"]);
    assert_eq!(
        status["enum"],
        serde_json::json!(["queued", "running", "succeeded", "failed"])
    );
    let required = record["required"].as_array().unwrap();
    assert!(required.iter().any(|field| field == "queued_at"));
    assert!(!required.iter().any(|field| field == "output"));
    assert_eq!(
        resolve(&document, &record["properties"]["queued_at"])["format"],
        "date-time"
    );

    let detail = resolve(&document, &schemas["ErrorBody"]["properties"]["error"]);
    let codes = resolve(&document, &detail["properties"]["code"])["enum"]
        .as_array()
        .unwrap();
    for code in [
        "queue_full",
        "job_not_found",
        "not_found",
        "method_not_allowed",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} not in {codes:?}");
    }

    // Every error response of every operation is the one error body.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    let submit = &document["paths"]["/v1/jobs"]["post"];
    let headers = |status: &str| submit["responses"][status]["headers"].clone();
    assert!(headers("202").get("Location").is_some());
    assert!(headers("429").get("Retry-After").is_some());
    assert!(
        submit["responses"]["429"]["description"]
            .as_str()
            .unwrap()
            .contains("queue_full")
    );
    let parameters = submit["parameters"].as_array().unwrap();
    assert!(
        parameters
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
    );
    assert_eq!(
        submit["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/JobSpec"
    );
}
