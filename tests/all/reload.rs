//! Hot reload: the tasks directory is watched; a saved, broken, removed or added file changes
//! what serves, and jobs already running finish on the version they started with.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use taskhost_tests::{Server, fixtures};

use crate::run_job;

/// A server over a tasks directory of its own holding `sleep` as task `work`.
struct Reloading {
    server: Server,
    tasks: tempfile::TempDir,
}

impl Reloading {
    fn start() -> Self {
        let tasks = tempfile::tempdir().unwrap();
        std::fs::copy(fixtures::SLEEP, tasks.path().join("work.wasm")).unwrap();
        let server = Server::start(
            Path::new(env!("CARGO_BIN_EXE_taskhost")),
            tasks.path().to_str().unwrap(),
            &[],
        );
        Self { server, tasks }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.tasks.path().join(file)
    }

    /// Saves `bytes` as `file` the way editors do: write a temporary file, rename it over.
    fn save(&self, file: &str, bytes: &[u8]) {
        let temporary = self.path(&format!(".{file}.tmp"));
        std::fs::write(&temporary, bytes).unwrap();
        std::fs::rename(&temporary, self.path(file)).unwrap();
    }

    /// The task list once `work` is no longer at `hash` (changed, broken or gone).
    fn after_change_from(&self, hash: &Value) -> Value {
        self.server.tasks_when(|list| {
            task(list, "work").is_none_or(|work| work["hash"] != *hash)
                || list["problems"].get("work").is_some()
        })
    }
}

fn task<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["name"] == name)
}

/// The `sleep` component made a different version of itself: the same code with a custom
/// section appended, so its bytes (and hash) differ.
fn sleep_version_2() -> Vec<u8> {
    let mut bytes = std::fs::read(fixtures::SLEEP).unwrap();
    let name = b"taskhost-test";
    let payload = b"version 2";
    bytes.push(0); // custom section
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    bytes
}

fn submit_sleep(server: &Server, ms: u64) -> String {
    let response = server.post_json("/v1/jobs", &json!({"task": "work", "input": {"ms": ms}}));
    assert_eq!(response.status, 202, "{}", response.text);
    response.json["id"].as_str().unwrap().to_owned()
}

fn finished(server: &Server, id: &str) -> Value {
    server.get(&format!("/v1/jobs/{id}?wait_ms=60000")).json
}

#[test]
fn a_saved_file_serves_its_new_version_while_running_jobs_finish_on_the_old() {
    let reloading = Reloading::start();
    let server = &reloading.server;
    let before = reloading.server.loaded_tasks();
    let old_hash = task(&before, "work").unwrap()["hash"].clone();

    let old_jobs: Vec<String> = (0..4).map(|_| submit_sleep(server, 3_000)).collect();
    for id in &old_jobs {
        let started = server
            .get(&format!("/v1/jobs/{id}?wait_ms=60000&until=started"))
            .json;
        assert_eq!(started["status"], "running", "{started}");
    }

    let version_2 = sleep_version_2();
    reloading.save("work.wasm", &version_2);
    let after = reloading.after_change_from(&old_hash);
    let work = task(&after, "work").unwrap();
    let new_hash = work["hash"].clone();
    assert_ne!(new_hash, old_hash, "{after}");
    assert_eq!(work["size"], version_2.len());
    assert!(after["problems"].as_object().unwrap().is_empty(), "{after}");

    let new_jobs: Vec<String> = (0..4).map(|_| submit_sleep(server, 10)).collect();
    for (ids, hash) in [(&old_jobs, &old_hash), (&new_jobs, &new_hash)] {
        for id in ids {
            let job = finished(server, id);
            assert_eq!(job["status"], "succeeded", "{job}");
            assert_eq!(job["hash"], *hash, "{job}");
        }
    }
}

#[test]
fn a_broken_file_leaves_the_old_version_serving_with_the_error_in_status() {
    let reloading = Reloading::start();
    let server = &reloading.server;
    let old_hash = task(&server.loaded_tasks(), "work").unwrap()["hash"].clone();

    // A copy caught half-way: truncated bytes fail validation.
    let bytes = std::fs::read(fixtures::SLEEP).unwrap();
    std::fs::write(reloading.path("work.wasm"), &bytes[..bytes.len() / 2]).unwrap();
    let after = reloading.after_change_from(&old_hash);
    assert_eq!(task(&after, "work").unwrap()["hash"], old_hash, "{after}");
    let problem = &after["problems"]["work"];
    assert!(
        problem["error"].as_str().unwrap().contains("work.wasm"),
        "{after}"
    );
    assert!(problem["since"].as_str().is_some(), "{after}");
    let status = server.get("/v1/status").json;
    assert_eq!(status["tasks"]["problems"]["work"], *problem, "{status}");

    let job = run_job(server, json!({"task": "work", "input": {"ms": 1}}));
    assert_eq!(
        (&job["status"], &job["hash"]),
        (&json!("succeeded"), &old_hash)
    );

    // The copy completes: the problem is gone and the same version serves.
    std::fs::write(reloading.path("work.wasm"), &bytes).unwrap();
    let fixed = server.tasks_when(|list| list["problems"].get("work").is_none());
    assert_eq!(task(&fixed, "work").unwrap()["hash"], old_hash);
}

#[test]
fn removed_added_and_renamed_files_remove_add_and_rename_tasks() {
    let reloading = Reloading::start();
    let server = &reloading.server;
    let old_hash = task(&server.loaded_tasks(), "work").unwrap()["hash"].clone();

    std::fs::remove_file(reloading.path("work.wasm")).unwrap();
    let after = reloading.after_change_from(&old_hash);
    assert!(task(&after, "work").is_none(), "{after}");
    let refused = server.post_json("/v1/jobs", &json!({"task": "work"}));
    assert_eq!(refused.status, 404, "{}", refused.text);
    assert_eq!(refused.json["error"]["code"], "unknown_task");

    // Moving a file in adds a task.
    let staged = tempfile::NamedTempFile::new_in(reloading.tasks.path()).unwrap();
    std::fs::copy(fixtures::UPPERCASE, staged.path()).unwrap();
    staged.persist(reloading.path("shout.wasm")).unwrap();
    server.tasks_when(|list| task(list, "shout").is_some());
    let job = run_job(server, json!({"task": "shout", "input": {"text": "new"}}));
    assert_eq!(job["output"]["upper"], "NEW");

    // Renaming a file renames the task.
    std::fs::rename(reloading.path("shout.wasm"), reloading.path("yell.wasm")).unwrap();
    let renamed =
        server.tasks_when(|list| task(list, "shout").is_none() && task(list, "yell").is_some());
    assert_eq!(renamed["tasks"].as_array().unwrap().len(), 1, "{renamed}");
    let job = run_job(server, json!({"task": "yell", "input": {"text": "moved"}}));
    assert_eq!(job["output"]["upper"], "MOVED");
}

#[test]
fn the_server_answers_at_once_and_a_job_waits_for_its_task_to_compile() {
    // A fresh data directory: every task compiles after the server starts listening.
    let server = crate::server();
    let job = run_job(
        &server,
        json!({"task": "uppercase", "input": {"text": "first"}}),
    );
    assert_eq!(job["output"]["upper"], "FIRST", "{job}");
    let status = server.get("/v1/status").json;
    assert_eq!(status["tasks"]["watching"], true, "{status}");
}
