//! What the host agrees to compile, and compiling within bounds: a component too large or too
//! slow to compile is refused with the limit named, and the server, its memory and every other
//! upload are untouched.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use taskhost_tests::components::CoreModule;
use taskhost_tests::{Exposition, Server, fixtures};

use crate::upload::server_over;
use crate::{assert_memory_came_back, wait_for_memory_to_come_back};

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let parent = pid.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            // `pid (comm) state ppid ...`: the fields after the last `)`.
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rsplit(')').next().unwrap().split_whitespace().nth(1) == Some(&parent)
            })
        })
        .collect()
}

/// Uploads `component` as task `name`.
fn upload(server: &Server, name: &str, component: &[u8]) -> taskhost_tests::Response {
    server.put(&format!("/v1/tasks/{name}"), "application/wasm", component)
}

/// Asserts that `response` refused a component with `invalid_component`, its message
/// holding each of `words`.
fn assert_refused(response: &taskhost_tests::Response, words: &[&str]) {
    assert_eq!(response.status, 422, "{}", response.text);
    assert_eq!(response.json["error"]["code"], "invalid_component");
    let message = response.json["error"]["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "{word:?} missing from {message:?}");
    }
}

/// A fresh tasks directory holding only `uppercase`, a cache directory of its own, and a
/// server over them with `flags`.
struct Fixture {
    server: Server,
    cache: tempfile::TempDir,
    _tasks: tempfile::TempDir,
}

fn fixture(flags: &[&str]) -> Fixture {
    let tasks = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures::UPPERCASE, tasks.path().join("uppercase.wasm")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = ["--cache-dir", cache.path().to_str().unwrap()];
    // Compiled once with the default limits, so that `flags` apply to uploads alone.
    server_over(tasks.path(), &cache_dir).loaded_tasks();
    let server = server_over(tasks.path(), &[&cache_dir[..], flags].concat());
    let list = server.loaded_tasks();
    assert_eq!(super::summary(&list, "uppercase")["source"], "disk");
    Fixture {
        server,
        cache,
        _tasks: tasks,
    }
}

impl Fixture {
    /// Asserts that the server still serves: `/healthz`, and a job.
    fn assert_serving(&self) {
        assert_eq!(self.server.get("/healthz").status, 200);
        let job = crate::run_job(
            &self.server,
            serde_json::json!({"task": "uppercase", "input": {"text": "still here"}}),
        );
        assert_eq!(job["output"]["upper"], "STILL HERE", "{job}");
    }

    /// Asserts that no compile is left: no child process, no scratch file.
    fn assert_no_compile_left(&self) {
        assert_eq!(children(self.server.pid()), Vec::<u32>::new());
        let scratch: Vec<_> = std::fs::read_dir(self.cache.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".compile-"))
            .collect();
        assert!(scratch.is_empty(), "{scratch:?}");
    }
}

#[test]
fn a_million_functions_are_refused_before_compiling_with_the_limit_named() {
    let fixture = fixture(&[]);
    let baseline = fixture.server.rss_bytes();
    // About 6 MB: the component that once took six minutes and 5.8 GB to compile.
    let component = CoreModule::functions(1_000_000, 0).component();
    let started = Instant::now();
    let refused = upload(&fixture.server, "many", &component);
    let took = started.elapsed();
    assert_refused(
        &refused,
        &["1000000 functions", "100000", "--max-functions"],
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_memory_came_back("RSS", baseline, fixture.server.rss_bytes());
    let compiles = &fixture.server.get("/v1/status").json["cache"]["compiles"];
    assert_eq!(compiles, 0, "nothing compiled");
    fixture.assert_serving();
    fixture.assert_no_compile_left();
}

#[test]
fn a_compile_past_its_deadline_is_stopped_and_the_server_serves_on() {
    let fixture = fixture(&["--compile-timeout-ms", "300"]);
    let baseline = fixture.server.rss_bytes();
    // Within every limit, but seconds of work for Cranelift.
    let component = CoreModule::functions(5_000, 100).component();
    let started = Instant::now();
    let refused = upload(&fixture.server, "slow", &component);
    assert_refused(&refused, &["300 ms", "--compile-timeout-ms"]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_memory_came_back("RSS", baseline, fixture.server.rss_bytes());
    fixture.assert_serving();
    fixture.assert_no_compile_left();
    assert!(!fixture.server.get("/v1/tasks").text.contains("slow"));
}

#[test]
fn a_compile_past_its_memory_is_stopped_with_the_limit_named() {
    let fixture = fixture(&["--compile-memory-mib", "256"]);
    let baseline = fixture.server.rss_bytes();
    // Within every validation limit (63 MB, 70,000 functions of 100 additions), but more
    // than 256 MiB of memory for Cranelift (the wasm, the code compiled so far, a context
    // per compiling thread). A single huge body compiles in less: bodies are capped.
    let component = CoreModule::functions(70_000, 100).component();
    let refused = upload(&fixture.server, "hungry", &component);
    assert_refused(&refused, &["256 MiB", "--compile-memory-mib"]);
    // The 63 MB upload's buffers go back to the OS once the host is idle.
    wait_for_memory_to_come_back("RSS", baseline, Duration::from_secs(30), || {
        fixture.server.rss_bytes()
    });
    fixture.assert_serving();
    fixture.assert_no_compile_left();
}

#[test]
fn an_artifact_over_its_cap_is_refused() {
    let fixture = fixture(&["--max-artifact-mib", "1"]);
    let component = CoreModule::functions(5_000, 100).component();
    let refused = upload(&fixture.server, "bulky", &component);
    assert_refused(&refused, &["1 MiB", "--max-artifact-mib"]);
    fixture.assert_serving();
    fixture.assert_no_compile_left();
}

#[test]
fn a_small_upload_completes_while_a_big_component_compiles() {
    // One compile at a time: the big component takes it, the small one runs beside it.
    let fixture = fixture(&["--compile-jobs", "1"]);
    let server = &fixture.server;
    let big = CoreModule::functions(20_000, 60).component();
    assert!(big.len() > taskhost::internals::SMALL_COMPONENT_BYTES);
    let small = std::fs::read(fixtures::NOOP).unwrap();
    let compiling = |status: &Value| status["cache"]["compiling"].as_u64().unwrap();
    std::thread::scope(|scope| {
        let big_upload = scope.spawn(|| upload(server, "big", &big));
        // Until the big compile has started: each round is a request, for at most a minute.
        let deadline = Instant::now() + Duration::from_secs(60);
        while compiling(&server.get("/v1/status").json) == 0 {
            assert!(Instant::now() < deadline, "the big compile never started");
            assert!(!big_upload.is_finished(), "the big upload ended first");
        }
        let created = upload(server, "small", &small);
        assert_eq!(created.status, 201, "{}", created.text);
        assert!(
            !big_upload.is_finished(),
            "the small upload waited for the big one"
        );
        assert_eq!(compiling(&server.get("/v1/status").json), 1);
        let metrics = Exposition::parse(&server.get("/metrics").text);
        assert_eq!(metrics.value("taskhost_compiles_running", &[]), 1.0);
        // The big one compiles, then fails to link: it is no task.
        assert_refused(&big_upload.join().unwrap(), &["taskhost:task world"]);
    });
    assert_eq!(server.get("/v1/tasks/small").status, 200);
}

#[test]
fn every_example_task_compiles_in_a_child_process() {
    let cache = tempfile::tempdir().unwrap();
    let server = server_over(
        Path::new(fixtures::TASKS_DIR),
        &["--cache-dir", cache.path().to_str().unwrap()],
    );
    let list = server.loaded_tasks();
    assert_eq!(list["problems"], serde_json::json!({}), "{list}");
    let tasks = list["tasks"].as_array().unwrap();
    let files = std::fs::read_dir(fixtures::TASKS_DIR).unwrap().count();
    assert_eq!(tasks.len(), files, "{list}");
    assert!(
        tasks.iter().all(|task| task["source"] == "compiled"),
        "{list}"
    );
    assert_eq!(children(server.pid()), Vec::<u32>::new());
}
