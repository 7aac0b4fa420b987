//! Instance allocation: the pool, and the fallback when its reservation is refused.

use std::path::Path;

use serde_json::json;
use taskhost_tests::{Server, fixtures};

use crate::{run_job, server};

#[test]
fn the_pool_is_used_by_default() {
    let server = server();
    let status = server.get("/v1/status").json;
    assert_eq!(
        status["engine"]["allocation"]["strategy"], "pooling",
        "{status}"
    );
    assert_eq!(
        run_job(&server, json!({"task": "noop"}))["status"],
        "succeeded"
    );
}

#[test]
fn a_refused_pool_reservation_falls_back_to_on_demand_and_serves() {
    // 64 GiB of address space: enough for a few instances, far too little for the pool.
    let limited = ["sh", "-c", "ulimit -v 67108864 && exec \"$@\"", "sh"];
    let server = Server::start_wrapped(
        &limited,
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        fixtures::TASKS_DIR,
        &["--workers", "1", "--io-threads", "1"],
    );
    let status = server.get("/v1/status").json;
    let allocation = &status["engine"]["allocation"];
    assert_eq!(allocation["strategy"], "on_demand", "{status}");
    assert!(allocation["fallback_reason"].as_str().is_some(), "{status}");
    assert!(
        server
            .log()
            .contains("falling back to on-demand allocation")
    );

    let job = run_job(
        &server,
        json!({"task": "uppercase", "input": {"text": "still works"}}),
    );
    assert_eq!(job["output"]["upper"], "STILL WORKS");
}
