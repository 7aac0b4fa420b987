//! Fuzz targets for what the server decodes from a request: job and batch bodies, query
//! strings, the `Idempotency-Key` and `Last-Event-ID` headers, task names, and an uploaded
//! component: the validator that looks at it before compiling, and the manifest it carries. `host/fuzz` runs them under libFuzzer (see the README's
//! "Fuzzing"); the unit tests below run each on the inputs at its edges, then on random
//! variations of them for a bounded time.
//!
//! Each target takes any bytes, decodes them as the server does, and checks that:
//! - nothing panics, and a refusal is a 4xx API error with a stable code;
//! - what is accepted is exactly what the OpenAPI document (the one `/openapi.json` serves)
//!   allows: its patterns, lengths and ranges are read from the document, not restated here;
//! - where a decoded value is written back (an event id, a key), it round-trips.
//!
//! The targets are compiled only with the `fuzzing` feature (and in tests): they are no part
//! of the library's API.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::IntoResponse;
use regex::Regex;
use serde_json::Value;

use super::ApiError;
use super::batches::{BatchBody, BatchWait};
use super::events::resume_position;
use super::jobs::{JobSpec, ListQuery, WaitQuery, idempotency_key, record_fields};
use super::tasks::TasksQuery;
use crate::engine::{CompileError, ComponentLimits, Manifest};
use crate::registry::is_valid_task_name;
use crate::tenants::TenantId;

/// What the document says of the inputs the targets decode.
struct Contract {
    task_name: Regex,
    idempotency_key: Text,
    last_event_id: Regex,
    limit: (u64, u64),
    fields: Regex,
    body_fields: Vec<String>,
}

/// A string parameter's pattern and length bounds.
struct Text {
    pattern: Regex,
    min_length: usize,
    max_length: usize,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let document = serde_json::to_value(super::routes().into_openapi()).expect("the document");
    let schemas = &document["components"]["schemas"];
    let parameter = |path: &str, method: &str, name: &str| -> Value {
        let parameters = document["paths"][path][method]["parameters"].as_array();
        let found = parameters.and_then(|list| list.iter().find(|p| p["name"] == name));
        found.unwrap_or_else(|| panic!("{method} {path} documents no {name}"))["schema"].clone()
    };
    let pattern = |schema: &Value| {
        let text = schema["pattern"].as_str().expect("a pattern");
        Regex::new(text).expect("the document's pattern is a regular expression")
    };
    let number = |value: &Value| value.as_u64().expect("a bound");
    let key = parameter("/v1/jobs", "post", "Idempotency-Key");
    let limit = parameter("/v1/jobs", "get", "limit");
    Contract {
        task_name: pattern(&schemas["TaskName"]),
        idempotency_key: Text {
            pattern: pattern(&key),
            min_length: number(&key["minLength"]) as usize,
            max_length: number(&key["maxLength"]) as usize,
        },
        last_event_id: pattern(&parameter("/v1/jobs/{id}/events", "get", "Last-Event-ID")),
        limit: (number(&limit["minimum"]), number(&limit["maximum"])),
        fields: pattern(&parameter("/v1/jobs", "get", "fields")),
        body_fields: schemas["JobSpec"]["properties"]
            .as_object()
            .expect("JobSpec's properties")
            .keys()
            .cloned()
            .collect(),
    }
});

/// A refusal is a client error with the API's error body.
fn assert_client_error(error: ApiError) {
    let response = error.into_response();
    assert!(response.status().is_client_error(), "{}", response.status());
}

/// The body of `POST /v1/jobs`: an accepted body is a JSON object of documented fields.
pub fn job_spec(data: &[u8]) {
    match Json::<JobSpec>::from_bytes(data) {
        Ok(Json(spec)) => {
            let object: serde_json::Map<String, Value> =
                serde_json::from_slice(data).expect("an accepted body is a JSON object");
            for field in object.keys() {
                assert!(CONTRACT.body_fields.contains(field), "undocumented {field}");
            }
            let task = spec.task.clone();
            assert_eq!(spec.into_request(TenantId::default()).task, task);
        }
        Err(rejection) => assert_client_error(rejection.into()),
    }
}

/// The body of `POST /v1/batches`: an accepted body makes one job per item.
pub fn batch_body(data: &[u8]) {
    let body = match Json::<BatchBody>::from_bytes(data) {
        Ok(Json(body)) => body,
        Err(rejection) => return assert_client_error(rejection.into()),
    };
    let object: serde_json::Map<String, Value> =
        serde_json::from_slice(data).expect("an accepted body is a JSON object");
    let items = |field: &str| object.get(field).and_then(Value::as_array).map(Vec::len);
    match body.into_request(TenantId::default()) {
        Ok(request) => {
            let expected = items("jobs").or_else(|| items("inputs"));
            assert_eq!(Some(request.jobs.len()), expected);
        }
        Err(error) => assert_client_error(error),
    }
}

/// Query strings of every route: decoded or refused with `invalid_query`; a page size and
/// the fields of a listing are accepted exactly when the document's range and pattern hold.
pub fn query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // What hyper would not parse never reaches a handler.
    let Ok(uri) = format!("/?{text}").parse::<Uri>() else {
        return;
    };
    decode::<WaitQuery>(&uri);
    decode::<TasksQuery>(&uri);
    decode::<BatchWait>(&uri);
    if let Some(list) = decode::<ListQuery>(&uri) {
        let (min, max) = CONTRACT.limit;
        let documented = list
            .limit
            .is_none_or(|limit| (min..=max).contains(&(limit as u64)));
        match list.page_size() {
            Ok(_) => assert!(documented, "limit {:?} is outside the document", list.limit),
            Err(error) => {
                assert!(!documented, "limit {:?} is in the document", list.limit);
                assert_client_error(error);
            }
        }
        let fields = list.fields.as_deref();
        let documented = fields.is_none_or(|fields| CONTRACT.fields.is_match(fields));
        match record_fields(fields) {
            Ok(_) => assert!(documented, "fields {fields:?} are outside the document"),
            Err(error) => {
                assert!(!documented, "fields {fields:?} are in the document");
                assert_client_error(error);
            }
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(uri: &Uri) -> Option<T> {
    match Query::<T>::try_from_uri(uri) {
        Ok(Query(value)) => Some(value),
        Err(rejection) => {
            assert_client_error(rejection.into());
            None
        }
    }
}

/// A header of `name` holding `data`, if HTTP lets it be one.
fn header(name: &'static str, data: &[u8]) -> Option<HeaderMap> {
    let value = HeaderValue::from_bytes(data).ok()?;
    Some(HeaderMap::from_iter([(
        name.parse().expect("a header name"),
        value,
    )]))
}

/// `Idempotency-Key`: accepted exactly when the document's pattern and lengths hold, and kept
/// as sent.
pub fn idempotency(data: &[u8]) {
    let Some(headers) = header("idempotency-key", data) else {
        return;
    };
    let text = &CONTRACT.idempotency_key;
    let documented = std::str::from_utf8(data).is_ok_and(|key| {
        (text.min_length..=text.max_length).contains(&key.len()) && text.pattern.is_match(key)
    });
    match idempotency_key(&headers) {
        Ok(key) => {
            assert!(documented, "{data:?} is accepted but not documented");
            assert_eq!(key.as_deref().map(str::as_bytes), Some(data));
        }
        Err(error) => {
            assert!(!documented, "{data:?} is documented but refused");
            assert_client_error(error);
        }
    }
}

/// `Last-Event-ID`: accepted exactly when the document's pattern matches, and an accepted id
/// reads back as itself.
pub fn last_event_id(data: &[u8]) {
    let Some(headers) = header("last-event-id", data) else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let documented = CONTRACT.last_event_id.is_match(&text);
    match resume_position(&headers) {
        Ok(position) => {
            let position = position.expect("the header was sent");
            assert!(documented, "{text:?} is accepted but not documented");
            let written = position.to_string();
            assert_eq!(written.parse().ok(), Some(position));
            // The same id, but for leading zeros in its count.
            let count = text[1..].trim_start_matches('0');
            let count = if count.is_empty() { "0" } else { count };
            assert_eq!((&written[..1], &written[1..]), (&text[..1], count));
        }
        Err(error) => {
            assert!(!documented, "{text:?} is documented but refused");
            assert_client_error(error);
        }
    }
}

/// Task names: the registry takes exactly the names the document's `TaskName` pattern allows.
pub fn task_name(data: &[u8]) {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(
        is_valid_task_name(name),
        CONTRACT.task_name.is_match(name),
        "{name:?}"
    );
}

/// The manifest of an uploaded component: any bytes as a component, and any bytes as the
/// manifest section of a well-formed one. An accepted manifest is a JSON object.
pub fn upload_manifest(data: &[u8]) {
    let _ = Manifest::read(data);
    // A component whose core module carries `data` as its manifest section, as the SDK
    // writes it.
    let name = b"taskhost:task";
    let custom = section(0, &[&[name.len() as u8][..], name, data].concat());
    let module = [&b"\0asm\x01\0\0\0"[..], &custom].concat();
    let component = [&b"\0asm\x0d\0\x01\0"[..], &section(1, &module)].concat();
    if Manifest::read(&component).is_ok() {
        let object = serde_json::from_slice::<serde_json::Map<String, Value>>(data);
        assert!(object.is_ok(), "an accepted manifest is a JSON object");
    }
}

/// The upload validator (`ComponentLimits::check`) on any bytes, under the default limits and
/// under limits of 1 each: it never panics, what it accepts starts as a component does, what
/// passes the tight limits passes the default ones, and an over-limit refusal found more
/// than the limit.
pub fn upload_validator(data: &[u8]) {
    let tight = ComponentLimits {
        max_bytes: 1 << 20,
        max_functions: 1,
        max_function_bytes: 1,
        max_data_bytes: 1,
        max_imports: 1,
    };
    let default = ComponentLimits::default().check(data);
    let checked = tight.check(data);
    for result in [&default, &checked] {
        match result {
            Ok(()) => {
                let core_module = data.starts_with(b"\0asm\x01\0\0\0");
                assert!(data.starts_with(b"\0asm") && !core_module);
            }
            Err(CompileError::OverLimit(over)) => assert!(over.found > over.max, "{over}"),
            Err(_) => {}
        }
    }
    if checked.is_ok() {
        assert!(default.is_ok(), "passes tight limits, not the default ones");
    }
}

/// `contents` as wasm section `id`: the id, the length (unsigned LEB128), the bytes.
fn section(id: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    let mut length = contents.len();
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(contents);
    out
}

#[cfg(test)]
mod tests {
    //! Each target on the inputs at its edges, then on random variations of them for a bounded
    //! time: `TASKHOST_FUZZ_SECONDS` per target (1 by default). libFuzzer (host/fuzz) searches
    //! much further, guided by coverage.

    use std::time::{Duration, Instant, SystemTime};

    /// Pieces of the formats the targets read, spliced into inputs.
    const TOKENS: &[&[u8]] = &[
        b"\"",
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b",",
        b"null",
        b"true",
        b"0",
        b"-1",
        b"1e400",
        b"18446744073709551616",
        b"\"task\"",
        b"\"jobs\"",
        b"\"kind\"",
        b"\\u0000",
        b"&",
        b"=",
        b"%",
        b"%ff",
        b"+",
        b"limit=",
        b"q",
        b"\xff",
        b"\xc3\xa9",
        b" ",
    ];

    /// xorshift64: random enough to vary inputs, and needs no crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound.max(1) as u64) as usize
        }
    }

    /// `input` changed in one random way.
    fn mutate(input: &mut Vec<u8>, seeds: &[&[u8]], rng: &mut Rng) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if at < input.len() => input[at] ^= 1 << rng.below(8),
            1 => input.insert(at, rng.below(256) as u8),
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + rng.below(8)).min(input.len());
                input.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(16)).min(input.len());
                let copy = input[at..end].to_vec();
                input.splice(at..at, copy);
            }
            _ => {
                let other = seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
        }
    }

    /// Runs `target` on `seeds`, then on variations of them until the time is up.
    fn search(target: fn(&[u8]), seeds: &[&[u8]]) {
        let seconds = std::env::var("TASKHOST_FUZZ_SECONDS").ok();
        let seconds = seconds.and_then(|s| s.parse().ok()).unwrap_or(1.0);
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let start = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        let mut rng = Rng(start.as_nanos() as u64 | 1);
        seeds.iter().for_each(|seed| run(target, seed));
        while Instant::now() < deadline {
            let mut input = seeds[rng.below(seeds.len())].to_vec();
            for _ in 0..=rng.below(4) {
                mutate(&mut input, seeds, &mut rng);
            }
            run(target, &input);
        }
    }

    /// `target(input)`, saying which input made it panic.
    fn run(target: fn(&[u8]), input: &[u8]) {
        if let Err(panic) = std::panic::catch_unwind(|| target(input)) {
            eprintln!(
                "failing input: {input:?} ({:?})",
                String::from_utf8_lossy(input)
            );
            std::panic::resume_unwind(panic);
        }
    }

    #[test]
    fn job_bodies() {
        search(
            super::job_spec,
            &[
                br#"{"task":"fib","input":{"n":1},"timeout_ms":10,"kind":"io","memoize":true}"#,
                br#"{"task":"fib","unknown":1}"#,
                br#"{"task":1}"#,
                br#"{"task":"x","fuel":-1}"#,
                br#"{"task":"x","memory_mib":18446744073709551616}"#,
                br#"["task"]"#,
                b"{",
                b"",
                b"\xff",
            ],
        );
    }

    #[test]
    fn batch_bodies() {
        search(
            super::batch_body,
            &[
                br#"{"jobs":[{"task":"fib"},{"task":"fib","fuel":1}],"max_concurrent":1}"#,
                br#"{"task":"fib","inputs":[1,2,3],"timeout_ms":5}"#,
                br#"{"jobs":[],"max_concurrent":0}"#,
                br#"{"jobs":[{"task":"fib","wait_ms":1}]}"#,
                br#"{"jobs":[{"task":"fib"}],"task":"fib","inputs":[]}"#,
                br#"{"jobs":null,"task":"fib","inputs":[null]}"#,
                br#"{"task":"fib"}"#,
                b"{}",
                b"null",
            ],
        );
    }

    #[test]
    fn query_strings() {
        search(
            super::query,
            &[
                b"limit=0",
                b"limit=1",
                b"limit=1000",
                b"limit=1001",
                b"limit=-1",
                b"limit=18446744073709551616",
                b"status=failed&task=fib&batch=00000000-0000-7000-8000-000000000000&cursor=x",
                b"wait_ms=10&until=started",
                b"until=never",
                b"since=3&wait_ms=1",
                b"limit=1&limit=2",
                b"fields=output,%20log",
                b"fields=",
                b"fields=log,,output",
                b"%ff=1",
                b"unknown=1",
                b"",
            ],
        );
    }

    #[test]
    fn idempotency_keys() {
        let longest = [b'k'; 255];
        let too_long = [b'k'; 256];
        search(
            super::idempotency,
            &[
                b"a",
                b"order-17/retry",
                &longest,
                &too_long,
                b"",
                b"with space",
                b"tab\t",
                "é".as_bytes(),
                b"\x80latin1",
            ],
        );
    }

    #[test]
    fn event_ids() {
        search(
            super::last_event_id,
            &[
                b"q0",
                b"r12",
                b"f40",
                b"r007",
                b"r+1",
                b"r-1",
                b"r",
                b"",
                b"x1",
                b"q9999999999999999999",
                b"q10000000000000000000",
                b"r\xff1",
            ],
        );
    }

    #[test]
    fn task_names() {
        let longest = [b'n'; 64];
        let too_long = [b'n'; 65];
        search(
            super::task_name,
            &[
                b"fib",
                b"a_b-C9",
                &longest,
                &too_long,
                b"",
                b"a b",
                b"a.wasm",
                b"../x",
                b"fib\n",
                "é".as_bytes(),
            ],
        );
    }

    /// An example task's component, to vary.
    fn component() -> Vec<u8> {
        std::fs::read(taskhost_tests::fixtures::NOOP).expect("the noop task's component")
    }

    #[test]
    fn uploads() {
        search(
            super::upload_validator,
            &[
                &component(),
                b"\0asm\x0d\0\x01\0",
                b"\0asm\x01\0\0\0",
                b"(component)",
                b"",
            ],
        );
    }

    #[test]
    fn manifests() {
        let component = component();
        search(
            super::upload_manifest,
            &[
                &component,
                br#"{"kind":"io"}"#,
                br#"{"kind":"cpu","memoize":true}"#,
                b"{}",
                br#"{"kind":"gpu"}"#,
                br#"["io"]"#,
                b"\0asm\x0d\0\x01\0",
                b"\0asm\x01\0\0\0\0\x05\x04name",
            ],
        );
    }
}
