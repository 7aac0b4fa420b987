//! A job's kind: from the request, else from what the task declares, else from its imports.

use serde_json::json;
use taskhost_tests::fixtures;

use crate::upload::server_over;
use crate::{run_job, server, summary};

#[test]
fn a_declared_kind_wins_over_imports_and_a_request_over_both() {
    let server = server();
    let list = server.loaded_tasks();
    let kind = |name| {
        let task = summary(&list, name);
        (task["kind"].clone(), task["kind_source"].clone())
    };
    // spin imports wasi:io/poll, but declares cpu.
    assert!(
        summary(&list, "spin")["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|import| import.as_str().unwrap().starts_with("wasi:io/poll")),
        "{list}"
    );
    assert_eq!(kind("spin"), (json!("cpu"), json!("declared")));
    assert_eq!(kind("sleep"), (json!("io"), json!("declared")));
    assert_eq!(kind("fetch"), (json!("io"), json!("imports")));
    assert_eq!(kind("fib"), (json!("cpu"), json!("imports")));

    // Jobs the engine threads finished: CPU jobs only.
    let on_engine_threads = || -> u64 {
        let status = server.get("/v1/status").json;
        let workers = status["scheduler"]["workers"].as_array().unwrap().clone();
        workers
            .iter()
            .map(|w| w["completed"].as_u64().unwrap())
            .sum()
    };
    let input = json!({"ms": 5, "rest_ms": 5});
    let declared = run_job(&server, json!({"task": "spin", "input": input}));
    assert_eq!(declared["status"], "succeeded", "{declared}");
    assert_eq!(declared["kind"], "cpu", "{declared}");
    assert_eq!(on_engine_threads(), 1);

    let requested = run_job(
        &server,
        json!({"task": "spin", "input": input, "kind": "io"}),
    );
    assert_eq!(requested["status"], "succeeded", "{requested}");
    assert_eq!(requested["kind"], "io", "{requested}");
    assert_eq!(on_engine_threads(), 1, "the IO executor ran it");
}

/// `component` with one more `taskhost:task` manifest section, holding `data` (a custom
/// section may follow the others).
fn with_manifest(mut component: Vec<u8>, data: &[u8]) -> Vec<u8> {
    fn leb128(mut value: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                return out.push(byte);
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"taskhost:task";
    let mut contents = Vec::new();
    leb128(name.len(), &mut contents);
    contents.extend_from_slice(name);
    contents.extend_from_slice(data);
    component.push(0);
    leb128(contents.len(), &mut component);
    component.extend_from_slice(&contents);
    component
}

#[test]
fn a_malformed_manifest_is_refused_on_upload_and_from_the_tasks_directory() {
    let tasks = tempfile::tempdir().unwrap();
    let server = server_over(tasks.path(), &[]);
    // A component with nothing but a manifest, which says too much.
    let empty = b"\0asm\x0d\0\x01\0".to_vec();
    let refused = server.put(
        "/v1/tasks/odd",
        "application/wasm",
        &with_manifest(empty, br#"{"kind":"gpu"}"#),
    );
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json["error"]["code"], "invalid_component");
    let message = refused.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`taskhost:task` manifest is malformed")
            && message.contains("unknown variant `gpu`"),
        "{message}"
    );

    // `fib` declares `{}` already: a second manifest is one too many.
    let fib = std::fs::read(fixtures::FIB).unwrap();
    std::fs::write(tasks.path().join("odd.wasm"), with_manifest(fib, b"{}")).unwrap();
    let list = server.tasks_when(|list| list["problems"]["odd"].is_object());
    let error = list["problems"]["odd"]["error"].as_str().unwrap();
    assert!(
        error.contains("odd.wasm") && error.contains("2 `taskhost:task` manifest sections"),
        "{error}"
    );
}
