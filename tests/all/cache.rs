//! The compiled-component cache: identity by content.

use std::path::Path;

use serde_json::json;
use taskhost_tests::{Server, fixtures};

use crate::{run_job, server_with};

/// A tasks directory of two components under three names: `uppercase` and `shout` (the
/// same bytes), and `fib`.
pub(crate) fn two_components_three_names() -> tempfile::TempDir {
    let tasks = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures::UPPERCASE, tasks.path().join("uppercase.wasm")).unwrap();
    std::fs::copy(fixtures::UPPERCASE, tasks.path().join("shout.wasm")).unwrap();
    std::fs::copy(fixtures::FIB, tasks.path().join("fib.wasm")).unwrap();
    tasks
}

#[test]
fn the_same_bytes_under_two_names_compile_once() {
    let tasks = two_components_three_names();
    let cache_dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        tasks.path().to_str().unwrap(),
        &[
            "--wait-for-tasks",
            "--cache-dir",
            cache_dir.path().to_str().unwrap(),
        ],
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

#[test]
fn a_restarted_server_loads_its_components_from_disk_and_replaces_corrupt_ones() {
    let cache_dir = tempfile::tempdir().unwrap();
    let flags = [
        "--cache-dir",
        cache_dir.path().to_str().unwrap(),
        "--wait-for-tasks",
    ];
    let tasks = {
        let first = server_with(&flags);
        let tasks = first.get("/v1/tasks").json["tasks"]
            .as_array()
            .unwrap()
            .len();
        let cache = first.get("/v1/status").json["cache"].clone();
        assert_eq!(cache["compiles"], tasks, "{cache}");
        assert_eq!(cache["disk_hits"], 0, "{cache}");
        tasks
    };

    let second = server_with(&flags);
    let cache = second.get("/v1/status").json["cache"].clone();
    assert_eq!(cache["compiles"], 0, "a restart compiles nothing: {cache}");
    assert_eq!(cache["disk_hits"], tasks, "{cache}");
    let job = run_job(&second, json!({"task": "fib", "input": {"n": 20}}));
    assert_eq!(job["output"]["value"], 6765);
    drop(second);

    // Damage one artifact: the next start rejects it, deletes it and compiles that one again.
    let artifact = std::fs::read_dir(cache_dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .unwrap();
    let mut bytes = std::fs::read(&artifact).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&artifact, bytes).unwrap();
    let third = server_with(&flags);
    let cache = third.get("/v1/status").json["cache"].clone();
    assert_eq!(cache["disk_rejected"], 1, "{cache}");
    assert_eq!(cache["compiles"], 1, "{cache}");
    assert_eq!(cache["disk_hits"], tasks - 1, "{cache}");
    assert!(third.log().contains("deleting a cached artifact"));
    let job = run_job(
        &third,
        json!({"task": "uppercase", "input": {"text": "ok"}}),
    );
    assert_eq!(job["output"]["upper"], "OK");
}
