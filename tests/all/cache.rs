//! The compiled-component cache: identity by content.

use std::path::Path;

use serde_json::json;
use taskhost_tests::{Server, fixtures};

use crate::run_job;

#[test]
fn the_same_bytes_under_two_names_compile_once() {
    let tasks = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures::UPPERCASE, tasks.path().join("uppercase.wasm")).unwrap();
    std::fs::copy(fixtures::UPPERCASE, tasks.path().join("shout.wasm")).unwrap();
    std::fs::copy(fixtures::FIB, tasks.path().join("fib.wasm")).unwrap();
    let server = Server::start(
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        tasks.path().to_str().unwrap(),
        &[],
    );

    let cache = server.get("/v1/status").json["cache"].clone();
    assert_eq!(cache["compiles"], 2, "{cache}");
    assert_eq!(cache["hits"], 1, "{cache}");
    assert_eq!(cache["entries"], 2, "{cache}");

    let tasks = server.get("/v1/tasks").json;
    let hash_of = |name: &str| {
        let list = tasks["tasks"].as_array().unwrap();
        list.iter().find(|t| t["name"] == name).unwrap()["hash"].clone()
    };
    assert_eq!(hash_of("uppercase"), hash_of("shout"));
    assert_ne!(hash_of("uppercase"), hash_of("fib"));

    for name in ["uppercase", "shout"] {
        let job = run_job(&server, json!({"task": name, "input": {"text": "same"}}));
        assert_eq!(job["output"]["upper"], "SAME");
        assert_eq!(
            job["hash"],
            hash_of("uppercase"),
            "each job names the hash it ran"
        );
    }
}
