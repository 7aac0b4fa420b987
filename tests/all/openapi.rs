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

/// The schema of parameter `name` of `method path`.
fn parameter<'a>(document: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    let parameters = document["paths"][path][method]["parameters"].as_array();
    let found = parameters.and_then(|list| list.iter().find(|p| p["name"] == name));
    &found.unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))["schema"]
}

#[test]
fn the_document_states_the_bounds_the_server_enforces() {
    let (_server, _tasks, document) = server_and_document();
    let schemas = &document["components"]["schemas"];

    let limit = parameter(&document, "/v1/jobs", "get", "limit");
    assert_eq!(
        (&limit["minimum"], &limit["maximum"]),
        (&1.into(), &1000.into())
    );
    let cursor = parameter(&document, "/v1/jobs", "get", "cursor");
    assert!(
        cursor.to_string().contains("#/components/schemas/JobId"),
        "{cursor}"
    );

    let batch = &schemas["BatchBody"]["properties"];
    assert_eq!(batch["jobs"]["minItems"], 1);
    assert_eq!(batch["inputs"]["minItems"], 1);
    assert_eq!(batch["max_concurrent"]["minimum"], 1);
    assert_eq!(
        schemas["BatchRecord"]["properties"]["max_concurrent"]["minimum"],
        1
    );

    let key = parameter(&document, "/v1/jobs", "post", "Idempotency-Key");
    assert_eq!(
        (&key["minLength"], &key["maxLength"]),
        (&1.into(), &255.into())
    );
    assert_eq!(key["pattern"], "^[!-~]+$");
    assert_eq!(key["type"], "string", "a header sent is never null");
    let event_id = parameter(&document, "/v1/jobs/{id}/events", "get", "Last-Event-ID");
    assert_eq!(event_id["pattern"], "^[qrf][0-9]{1,19}$");
    assert_eq!(event_id["type"], "string");

    // An upload is binary, a component.
    let upload = &document["paths"]["/v1/tasks/{name}"]["put"]["requestBody"]["content"];
    let upload = resolve(&document, &upload["application/wasm"]["schema"]);
    assert_eq!(
        (
            &upload["type"],
            &upload["format"],
            &upload["contentMediaType"]
        ),
        (
            &"string".into(),
            &"binary".into(),
            &"application/wasm".into()
        )
    );

    // Task names: one schema, wherever a name is taken or given.
    assert_eq!(schemas["TaskName"]["pattern"], "^[A-Za-z0-9_-]{1,64}$");
    let task_name = "#/components/schemas/TaskName";
    assert_eq!(schemas["JobSpec"]["properties"]["task"]["$ref"], task_name);
    assert_eq!(
        schemas["JobRecord"]["properties"]["task"]["$ref"],
        task_name
    );
    assert_eq!(
        schemas["TaskSummary"]["properties"]["name"]["$ref"],
        task_name
    );
    assert!(
        batch["task"].to_string().contains("TaskName"),
        "{}",
        batch["task"]
    );
    for method in ["get", "put", "delete"] {
        let name = parameter(&document, "/v1/tasks/{name}", method, "name");
        assert_eq!(name["$ref"], task_name, "{method} /v1/tasks/{{name}}");
    }

    // Every integer the API reads or writes is unsigned, and says so.
    let mut formats = Vec::new();
    integer_formats(&document, &mut formats);
    assert!(!formats.is_empty());
    for (format, minimum, maximum) in &formats {
        assert!(["uint64", "uint32"].contains(&format.as_str()), "{format}");
        assert!(
            minimum.is_some_and(|m| m >= 0.0),
            "an integer with no minimum"
        );
        assert!(maximum.is_some(), "an integer with no maximum");
    }
    assert!(formats.iter().any(|(format, ..)| format == "uint64"));
    let spec = &schemas["JobSpec"]["properties"];
    assert_eq!(spec["timeout_ms"]["format"], "uint64");
    assert_eq!(spec["memory_mib"]["format"], "uint64");
    assert_eq!(spec["timeout_ms"]["maximum"], u64::MAX);
}

/// Whether `body` holds to `schema`, a schema of only `required`, `not` and `anyOf` (the
/// batch body's alternatives).
fn matches_shape(schema: &Value, body: &Value) -> bool {
    let object = schema.as_object().unwrap();
    object
        .iter()
        .all(|(keyword, value)| match keyword.as_str() {
            "required" => value
                .as_array()
                .unwrap()
                .iter()
                .all(|field| body.get(field.as_str().unwrap()).is_some()),
            "not" => !matches_shape(value, body),
            "anyOf" => value
                .as_array()
                .unwrap()
                .iter()
                .any(|s| matches_shape(s, body)),
            other => panic!("no test for the keyword {other}"),
        })
}

/// An integer schema's format ("" when none), minimum and maximum.
type IntegerSchema = (String, Option<f64>, Option<u64>);

/// Every integer schema in `value`.
fn integer_formats(value: &Value, found: &mut Vec<IntegerSchema>) {
    match value {
        Value::Object(object) => {
            let integer = |t: &Value| t == "integer";
            let is_integer = match &object.get("type") {
                Some(Value::Array(types)) => types.iter().any(integer),
                Some(t) => integer(t),
                None => false,
            };
            if is_integer {
                let format = object.get("format").and_then(Value::as_str).unwrap_or("");
                let minimum = object.get("minimum").and_then(Value::as_f64);
                let maximum = object.get("maximum").and_then(Value::as_u64);
                found.push((format.to_owned(), minimum, maximum));
            }
            object.values().for_each(|v| integer_formats(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| integer_formats(v, found)),
        _ => {}
    }
}

#[test]
fn the_server_holds_to_the_documented_bounds_at_their_edges() {
    let server = crate::server();
    let code = |response: &Response| response.json["error"]["code"].clone();

    for (limit, status) in [(0, 400), (1, 200), (1000, 200), (1001, 400)] {
        let response = server.get(&format!("/v1/jobs?limit={limit}"));
        assert_eq!(response.status, status, "limit={limit}: {}", response.text);
        if status == 400 {
            assert_eq!(code(&response), "invalid_query");
        }
    }

    // The largest unsigned integer is taken, one more is not; `fields` as its pattern says.
    for (query, status) in [
        ("/v1/tasks?since=18446744073709551615", 200),
        ("/v1/tasks?since=18446744073709551616", 400),
        ("/v1/jobs?fields=output,%20log", 200),
        ("/v1/jobs?fields=", 400),
        ("/v1/jobs?fields=output,,log", 400),
    ] {
        let response = server.get(query);
        assert_eq!(response.status, status, "{query}: {}", response.text);
    }

    let batch = |body: Value| server.post_json("/v1/batches", &body);
    let job = serde_json::json!({"task": "noop"});
    for body in [
        serde_json::json!({"jobs": []}),
        serde_json::json!({"task": "noop", "inputs": []}),
        serde_json::json!({"jobs": [job], "max_concurrent": 0}),
    ] {
        let response = batch(body.clone());
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        assert_eq!(code(&response), "invalid_request", "{body}");
    }
    let smallest = batch(serde_json::json!({"jobs": [job], "max_concurrent": 1, "wait_ms": 60000}));
    assert_eq!(smallest.status, 200, "{}", smallest.text);

    // A batch names its jobs in exactly one way: the document's `oneOf` takes the bodies the
    // server takes, and no other.
    let document = server.get("/openapi.json").json;
    let alternatives = document["components"]["schemas"]["BatchBody"]["oneOf"]
        .as_array()
        .expect("BatchBody has a oneOf");
    let jobs = serde_json::json!([job]);
    let inputs = serde_json::json!([{}]);
    for fields in [
        &["jobs"][..],
        &["task", "inputs"],
        &["jobs", "task"],
        &["jobs", "inputs"],
        &["jobs", "task", "inputs"],
        &["task"],
        &["inputs"],
        &[],
    ] {
        let mut body = serde_json::json!({"wait_ms": 60000});
        for &field in fields {
            body[field] = match field {
                "jobs" => jobs.clone(),
                "task" => "noop".into(),
                _ => inputs.clone(),
            };
        }
        let matching = alternatives
            .iter()
            .filter(|a| matches_shape(a, &body))
            .count();
        let response = batch(body.clone());
        let taken = response.status == 200;
        assert!(
            taken || code(&response) == "invalid_request",
            "{body}: {}",
            response.text
        );
        assert_eq!(
            matching == 1,
            taken,
            "{fields:?}: the document and the server disagree"
        );
    }

    let submit = |key: &str| {
        let body = r#"{"task": "noop", "wait_ms": 60000}"#;
        server.post_with_headers(
            "/v1/jobs",
            "application/json",
            body,
            &[("idempotency-key", key)],
        )
    };
    for key in ["k".repeat(256), "with space".into()] {
        let response = submit(&key);
        assert_eq!(response.status, 400, "{}", response.text);
        assert_eq!(code(&response), "invalid_idempotency_key");
    }
    for key in ["k".repeat(255), "!".into(), "~".into()] {
        let response = submit(&key);
        assert_eq!(response.status, 200, "{key:?}: {}", response.text);
    }

    // A name off the pattern names no task; where one is being given, it is refused as such.
    let long = "n".repeat(65);
    for name in ["a.b", "a%20b", long.as_str()] {
        let response = server.put(&format!("/v1/tasks/{name}"), "application/wasm", b"\0asm");
        assert_eq!(response.status, 400, "{name}: {}", response.text);
        assert_eq!(code(&response), "invalid_task_name");
        let response = server.post_json("/v1/jobs", &serde_json::json!({"task": name}));
        assert_eq!(response.status, 404, "{name}: {}", response.text);
        assert_eq!(code(&response), "unknown_task");
    }

    // An event id off the pattern is refused; one on it is read (this job has no events).
    let job = "/v1/jobs/00000000-0000-7000-8000-000000000000/events";
    for (id, status, expected) in [
        ("r+1", 400, "invalid_event_id"),
        ("r12345678901234567890", 400, "invalid_event_id"),
        ("r1234567890123456789", 404, "job_not_found"),
        ("x1", 400, "invalid_event_id"),
        ("r1", 404, "job_not_found"),
    ] {
        let Err(response) = server.events(job, Some(id)) else {
            panic!("{id}: answered with a stream");
        };
        assert_eq!(response.status, status, "{id}: {}", response.text);
        assert_eq!(code(&response), expected, "{id}");
    }
}
