//! Fuel on demand (`--fuel-metering on-demand`, the default): jobs without a fuel budget run
//! code that counts nothing; the first job with a budget has its task's metered variant
//! compiled, once, while it waits queued; `always` meters every job.

use std::path::Path;

use serde_json::{Value, json};
use taskhost_tests::Server;

use crate::{finished, run_job, server_with, submit};

/// A server over the example tasks with its own cache directory (so that its compile counts
/// are its own), and `flags`.
fn server_with_cache(cache_dir: &Path, flags: &[&str]) -> Server {
    let mut all = vec![
        "--wait-for-tasks",
        "--cache-dir",
        cache_dir.to_str().unwrap(),
    ];
    all.extend_from_slice(flags);
    server_with(&all)
}

fn cache_status(server: &Server) -> Value {
    server.get("/v1/status").json["cache"].clone()
}

const BUDGETED_FIB: fn(u64) -> Value =
    |n| json!({"task": "fib", "input": {"n": n}, "fuel": 1_000_000_000u64});

#[test]
fn jobs_without_a_budget_count_no_fuel_and_the_first_budget_compiles_the_variant_once() {
    let cache_dir = tempfile::tempdir().unwrap();
    let server = server_with_cache(cache_dir.path(), &[]);
    assert_eq!(
        server.get("/v1/status").json["engine"]["fuel_metering"],
        "on-demand"
    );
    let unbudgeted = run_job(&server, json!({"task": "fib", "input": {"n": 20}}));
    assert_eq!(unbudgeted["output"]["value"], 6765, "{unbudgeted}");
    assert!(unbudgeted.get("fuel_consumed").is_none(), "{unbudgeted}");
    let compiles = cache_status(&server)["compiles"].as_u64().unwrap();

    // Eight budgeted jobs at once: they wait for one compile, then all run metered.
    let ids: Vec<String> = (0..8).map(|_| submit(&server, BUDGETED_FIB(20))).collect();
    let records: Vec<Value> = ids.iter().map(|id| finished(&server, id)).collect();
    let consumed = records[0]["fuel_consumed"].as_u64().unwrap();
    assert!(consumed > 10_000, "{}", records[0]);
    for record in &records {
        assert_eq!(record["output"]["value"], 6765, "{record}");
        assert_eq!(record["fuel_consumed"], consumed, "{record}");
    }
    let cache = cache_status(&server);
    assert_eq!(
        cache["compiles"],
        compiles + 1,
        "one variant compile: {cache}"
    );
    assert_eq!(cache["jobs_waiting_for_code"], 0, "{cache}");

    // Later budgets find the variant compiled; a budget too small stops the job.
    let starved = run_job(
        &server,
        json!({"task": "fib", "input": {"n": 30}, "fuel": 100_000}),
    );
    assert_eq!(starved["error"]["code"], "fuel_exhausted", "{starved}");
    assert_eq!(starved["fuel_consumed"], 100_000);
    assert_eq!(cache_status(&server)["compiles"], compiles + 1);
    drop(server);

    // A restart loads both variants from disk: nothing compiles.
    let restarted = server_with_cache(cache_dir.path(), &[]);
    let job = run_job(&restarted, BUDGETED_FIB(20));
    assert_eq!(job["fuel_consumed"], consumed, "{job}");
    let cache = cache_status(&restarted);
    assert_eq!(cache["compiles"], 0, "{cache}");
}

#[test]
fn a_batch_of_budgeted_jobs_held_back_by_its_bound_runs_metered() {
    let server = server_with(&[]);
    let body = json!({
        "task": "fib",
        "inputs": (0..6).map(|n| json!({"n": n + 10})).collect::<Vec<_>>(),
        "fuel": 1_000_000_000u64,
        "max_concurrent": 2,
    });
    let created = server.post_json("/v1/batches", &body);
    assert_eq!(created.status, 202, "{}", created.text);
    let id = created.json["id"].as_str().unwrap();
    let batch = server.get(&format!("/v1/batches/{id}?wait_ms=60000")).json;
    let jobs = batch["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 6, "{batch}");
    for job in jobs {
        assert_eq!(job["status"], "succeeded", "{job}");
        assert!(job["fuel_consumed"].as_u64().unwrap() > 0, "{job}");
    }
}

#[test]
fn always_meters_every_job() {
    let server = server_with(&["--fuel-metering", "always"]);
    let job = run_job(&server, json!({"task": "fib", "input": {"n": 15}}));
    assert_eq!(job["output"]["value"], 610);
    assert!(job["fuel_consumed"].as_u64().unwrap() > 0, "{job}");
}

#[test]
fn a_variant_that_cannot_compile_fails_its_jobs_clearly_and_the_host_serves_on() {
    let cache_dir = tempfile::tempdir().unwrap();
    let server = server_with_cache(cache_dir.path(), &[]);
    // A file where the cache directory was: the compiler has nowhere to write, as on a full
    // or broken disk.
    std::fs::remove_dir_all(cache_dir.path()).unwrap();
    std::fs::write(cache_dir.path(), b"").unwrap();

    let ids: Vec<String> = (0..3).map(|_| submit(&server, BUDGETED_FIB(10))).collect();
    for id in &ids {
        let record = finished(&server, id);
        assert_eq!(record["status"], "failed", "{record}");
        assert_eq!(record["error"]["code"], "compile_failed", "{record}");
        let message = record["error"]["message"].as_str().unwrap();
        assert!(message.contains("fuel-metered"), "{message}");
    }
    // Jobs without a budget run on, and the failure is not kept: once the disk is back, the
    // next budget compiles the variant.
    let unbudgeted = run_job(&server, json!({"task": "fib", "input": {"n": 10}}));
    assert_eq!(unbudgeted["output"]["value"], 55, "{unbudgeted}");
    std::fs::remove_file(cache_dir.path()).unwrap();
    std::fs::create_dir(cache_dir.path()).unwrap();
    let job = run_job(&server, BUDGETED_FIB(10));
    assert_eq!(job["output"]["value"], 55, "{job}");
    assert!(job["fuel_consumed"].as_u64().unwrap() > 0, "{job}");
}
