//! Resource exhaustion, tried as an attacker would: each hostile job gets a clear error (or
//! waits its turn) naming the limit, other clients' jobs keep completing, and the host's
//! memory comes back.

use serde_json::json;
use taskhost_tests::{Hostile, Server};

use crate::{
    MIB, assert_memory_came_back, assert_still_serving, finished, hostiles_with, run_job,
    server_with, started, submit, upload, wait_for_memory_to_come_back,
};

#[test]
fn a_job_s_memory_limit_bounds_all_of_its_memories_together() {
    let server = hostiles_with(&["--max-memory-limit-mib", "2048"]);
    // Two core instances with a memory each, each grown by 600 MiB.
    let hostile = Hostile {
        second_memory: true,
        grow_pages: Some(600 * 16),
        ..Hostile::default()
    };
    upload(&server, "two-memories", &hostile);

    let refused = run_job(&server, json!({"task": "two-memories", "memory_mib": 1024}));
    assert_eq!(refused["error"]["code"], "memory_limit", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("its limit is 1024 MiB"), "{message}");

    let allowed = run_job(&server, json!({"task": "two-memories", "memory_mib": 2048}));
    assert_eq!(allowed["status"], "succeeded", "{allowed}");
    let peak = allowed["peak_memory_bytes"].as_u64().unwrap();
    assert!(peak >= 1200 * MIB, "both memories are counted: {peak}");
    assert_still_serving(&server);
}

#[test]
fn an_output_over_the_limit_fails_its_job_with_the_size_named_and_costs_nothing_kept() {
    let server = hostiles_with(&[]);
    upload(
        &server,
        "big-output",
        &Hostile {
            output_bytes: Some(64 << 20),
            ..Hostile::default()
        },
    );
    upload(
        &server,
        "small-output",
        &Hostile {
            output_bytes: Some(3000),
            ..Hostile::default()
        },
    );
    assert_still_serving(&server);
    let baseline = server.rss_bytes();
    for _ in 0..6 {
        let job = run_job(&server, json!({"task": "big-output"}));
        assert_eq!(job["error"]["code"], "output_too_large", "{job}");
        let message = job["error"]["message"].as_str().unwrap();
        assert!(message.contains("67108864 bytes"), "{message}");
        assert!(message.contains("1024 KiB"), "{message}");
    }
    // The refused outputs were freed at once; the allocator hands their pages back to the
    // OS once the host is idle (a second without jobs), so wait for that, bounded.
    wait_for_memory_to_come_back("RSS", baseline, std::time::Duration::from_secs(30), || {
        server.rss_bytes()
    });

    // A job may ask for less than the host's ceiling, never more.
    let small = run_job(&server, json!({"task": "small-output"}));
    assert_eq!(small["status"], "succeeded", "{small}");
    let lower = run_job(
        &server,
        json!({"task": "small-output", "max_output_kib": 2}),
    );
    assert_eq!(lower["error"]["code"], "output_too_large", "{lower}");
    let above = server.post_json(
        "/v1/jobs",
        &json!({"task": "small-output", "max_output_kib": 1025}),
    );
    assert_eq!(above.status, 400, "{}", above.text);
    assert_eq!(
        above.json["error"]["code"], "invalid_limit",
        "{}",
        above.text
    );
    assert_still_serving(&server);
}

#[test]
fn a_burst_of_io_jobs_gives_its_memory_back_once_they_end() {
    let server = server_with(&[]);
    assert_still_serving(&server);
    let baseline = server.pss_bytes();
    // 2,000 IO jobs at once, each in an instance-pool slot of its own with its own async
    // stack, store and WASI context.
    let burst = 2000;
    let response = server.post_json(
        "/v1/batches",
        &json!({"task": "sleep", "inputs": vec![json!({"ms": 300}); burst],
                "memory_mib": 8, "max_concurrent": burst, "wait_ms": 120_000}),
    );
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        response.json["counts"]["succeeded"], burst,
        "{}",
        response.text
    );

    // Idle slots keep no more than their bounded share resident (each of the two pools,
    // one for fuel-metered code, half of --pool-keep-resident-mib) ...
    let engine = server.get("/v1/status").json["engine"].clone();
    let (pool, allocation) = (&engine["pool"], &engine["allocation"]);
    assert_eq!(allocation["max_resident_bytes"], 32 * MIB, "{allocation}");
    assert!(
        pool["warm_idle_memories"].as_u64().unwrap() >= 100,
        "{pool}"
    );
    assert!(
        pool["idle_resident_bytes"].as_u64().unwrap() <= 64 * MIB,
        "{pool}"
    );
    // ... and once the host is idle the rest of the burst's memory goes back too (polled:
    // the allocator gives freed memory back a second after the last job).
    wait_for_memory_to_come_back("PSS", baseline, std::time::Duration::from_secs(60), || {
        server.pss_bytes()
    });
    assert_still_serving(&server);
}

#[test]
fn a_huge_error_message_is_cut_and_marked() {
    let server = hostiles_with(&[]);
    upload(
        &server,
        "big-error",
        &Hostile {
            error_bytes: Some(100 << 20),
            ..Hostile::default()
        },
    );
    let job = run_job(&server, json!({"task": "big-error"}));
    assert_eq!(
        job["error"]["code"],
        "task_error",
        "{}",
        &job.to_string()[..200]
    );
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.len() < 4200, "{}", message.len());
    assert!(
        message.ends_with("[cut: 104857600 bytes in all]"),
        "{}",
        &message[message.len() - 60..]
    );
    assert_still_serving(&server);
}

#[test]
fn listings_leave_outputs_and_logs_out_unless_asked() {
    let server = server_with(&[]);
    for text in ["a", "b"] {
        run_job(
            &server,
            json!({"task": "uppercase", "input": {"text": text}}),
        );
    }
    let page = server.get("/v1/jobs").json;
    let jobs = page["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{page}");
    assert!(
        jobs.iter()
            .all(|job| job.get("output").is_none() && job.get("log").is_none()),
        "{page}"
    );
    let page = server.get("/v1/jobs?fields=output,log").json;
    assert!(
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|job| job["output"]["upper"].is_string() && job["log"].is_object()),
        "{page}"
    );
    let page = server.get("/v1/jobs?fields=output").json;
    assert!(page["jobs"][0].get("log").is_none(), "{page}");
    let bad = server.get("/v1/jobs?fields=input");
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(bad.json["error"]["code"], "invalid_query");
}

/// Uploads task `mib-output`, whose output is 1000 KiB, and runs `jobs` jobs of it.
fn mib_outputs(server: &Server, jobs: usize) {
    upload(
        server,
        "mib-output",
        &Hostile {
            output_bytes: Some(1000 << 10),
            ..Hostile::default()
        },
    );
    for _ in 0..jobs {
        let job = run_job(server, json!({"task": "mib-output"}));
        assert_eq!(job["status"], "succeeded", "{}", job["error"]);
    }
}

#[test]
fn listings_of_large_outputs_stream_and_cost_the_server_little_memory() {
    let server = hostiles_with(&[]);
    let jobs = 60;
    mib_outputs(&server, jobs);
    let peak_before = server.peak_rss_bytes();
    // Four listings at once, each of 60 MB of outputs: answered whole, each would cost the
    // server its size (and more while serialized).
    std::thread::scope(|scope| {
        let listings: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    server.get(&format!(
                        "/v1/jobs?task=mib-output&fields=output&limit={jobs}"
                    ))
                })
            })
            .collect();
        for listing in listings {
            let page = listing.join().unwrap();
            assert_eq!(page.status, 200);
            assert_eq!(page.header("content-type"), Some("application/json"));
            let records = page.json["jobs"].as_array().unwrap();
            assert_eq!(records.len(), jobs);
            assert!(records.iter().all(|job| job["output"].is_array()));
            assert!(
                page.text.len() > (jobs * 1000) << 10,
                "{} bytes",
                page.text.len()
            );
        }
    });
    assert_memory_came_back("peak RSS", peak_before, server.peak_rss_bytes());
    assert_still_serving(&server);
}

#[test]
fn a_client_that_stops_reading_its_response_is_closed_after_the_write_timeout() {
    use std::io::{Read, Write};
    let server = hostiles_with(&["--http-write-timeout-ms", "500"]);
    let jobs = 40;
    mib_outputs(&server, jobs);
    // A 40 MB listing, far more than the sockets' buffers hold, and a client that asks for
    // it and then reads nothing.
    let address = server.url().strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /v1/jobs?task=mib-output&fields=output&limit={jobs} HTTP/1.1\r\nHost: t\r\n\
         Authorization: Bearer {}\r\n\r\n",
        server.key()
    )
    .unwrap();
    let stalled = std::time::Duration::from_millis(2000);
    std::thread::sleep(stalled); // the attack: not reading, for 4 write timeouts
    assert_still_serving(&server);
    // What the server had written before it gave up is all there is.
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut received = Vec::new();
    let ended = stream.read_to_end(&mut received);
    assert!(
        received.len() < (jobs * 1000) << 10,
        "the whole listing came ({} bytes, {ended:?})",
        received.len()
    );
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&received[..received.len().min(200)])
    );
    let http = server.get("/v1/status").json["http"].clone();
    assert_eq!(http["closed"]["write_timeout"], 1, "{http}");
}

#[test]
fn a_job_whose_memory_does_not_fit_waits_for_it_and_the_status_says_so() {
    let server = server_with(&[
        "--max-jobs-memory-mib",
        "64",
        "--max-memory-limit-mib",
        "64",
        "--memory-limit-mib",
        "32",
    ]);
    let sleep = |ms: u64, memory_mib: u64| json!({"task": "sleep", "input": {"ms": ms}, "memory_mib": memory_mib, "timeout_ms": 120_000});
    let holder = submit(&server, sleep(120_000, 64));
    assert_eq!(started(&server, &holder)["status"], "running");
    let waiting = submit(&server, sleep(1, 32));

    let status = server.get("/v1/status").json;
    let admission = &status["scheduler"]["admission"];
    assert_eq!(admission["memory_reserved_bytes"], 64 * MIB, "{admission}");
    assert_eq!(admission["memory_free_bytes"], 0, "{admission}");
    assert_eq!(admission["waiting"]["memory"], 1, "{admission}");
    assert_eq!(
        server.get(&format!("/v1/jobs/{waiting}")).json["status"],
        "queued"
    );

    // Freed, the memory goes to the waiting job.
    assert_eq!(server.delete(&format!("/v1/jobs/{holder}")).status, 200);
    let done = finished(&server, &waiting);
    assert_eq!(done["status"], "succeeded", "{done}");
    let status = server.get("/v1/status").json;
    assert_eq!(
        status["scheduler"]["admission"]["memory_reserved_bytes"], 0,
        "{status}"
    );
}

#[test]
fn a_job_larger_than_the_host_s_job_memory_is_refused_at_start() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_taskhost"))
        .args(["config", "check", "--max-jobs-memory-mib", "512"])
        .arg("--data-dir")
        .arg(data_dir.path())
        .arg("--tasks-dir")
        .arg(taskhost_tests::fixtures::TASKS_DIR)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--max-jobs-memory-mib is 512"), "{stderr}");
}

#[test]
fn components_with_many_core_instances_wait_for_pool_slots_instead_of_trapping() {
    // 4 engine threads + 1 IO slot = 5 instance slots. Each job's component has 16 core
    // instances; the old pool (4 core instances per slot) had room for one such job at once.
    let server = hostiles_with(&["--workers", "4", "--max-io-jobs", "1"]);
    upload(
        &server,
        "many-instances",
        &Hostile {
            extra_instances: 14,
            spin: Some(20_000_000),
            ..Hostile::default()
        },
    );
    let ids: Vec<String> = (0..12)
        .map(|_| submit(&server, json!({"task": "many-instances"})))
        .collect();
    for id in &ids {
        let job = finished(&server, id);
        assert_eq!(job["status"], "succeeded", "{job}");
    }
}

#[test]
fn components_with_two_memories_wait_for_pool_memories_instead_of_trapping() {
    // 1 engine thread + 3 IO slots = 4 pool memories: two of these jobs fit at once.
    let server = hostiles_with(&["--workers", "1", "--max-io-jobs", "3"]);
    upload(
        &server,
        "two-memories",
        &Hostile {
            second_memory: true,
            spin: Some(50_000_000),
            ..Hostile::default()
        },
    );
    let ids: Vec<String> = (0..6)
        .map(|_| submit(&server, json!({"task": "two-memories", "kind": "io"})))
        .collect();
    let status = server.get("/v1/status").json;
    let admission = &status["scheduler"]["admission"];
    assert_eq!(admission["pool_memories"]["total"], 4, "{admission}");
    for id in &ids {
        let job = finished(&server, id);
        assert_eq!(job["status"], "succeeded", "{job}");
    }
}

#[test]
fn long_jobs_hold_only_their_lane_and_short_jobs_keep_running() {
    let server = server_with(&["--workers", "2"]);
    let looping = json!({"task": "loop", "timeout_ms": 300_000});
    let first = submit(&server, looping.clone());
    let second = submit(&server, looping);
    assert_eq!(started(&server, &first)["status"], "running");

    let status = server.get("/v1/status").json;
    let admission = &status["scheduler"]["admission"];
    assert_eq!(
        admission["long_jobs"],
        json!({"running": 1, "max": 1}),
        "{admission}"
    );
    assert_eq!(admission["waiting"]["long_job_lane"], 1, "{admission}");
    assert_eq!(
        server.get(&format!("/v1/jobs/{second}")).json["status"],
        "queued"
    );

    for n in 0..20 {
        let job = run_job(&server, json!({"task": "fib", "input": {"n": n}}));
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    for id in [&second, &first] {
        assert_eq!(server.delete(&format!("/v1/jobs/{id}")).status, 200);
    }
}

#[test]
fn a_task_at_its_thread_ceiling_leaves_the_next_free_thread_to_other_tasks() {
    // Two threads; a task may hold one while another task's job waits.
    let server = server_with(&["--workers", "2", "--max-task-threads", "1"]);
    let spin = |ms: u64| json!({"task": "loop", "timeout_ms": ms});
    // Three loops of one task: with nothing else waiting they take both threads.
    let loops: Vec<String> = [2_000, 20_000, 20_000]
        .map(|ms| submit(&server, spin(ms)))
        .into();
    assert_eq!(started(&server, &loops[1])["status"], "running");
    let other = submit(&server, json!({"task": "fib", "input": {"n": 10}}));
    let status = server.get("/v1/status").json;
    assert_eq!(
        status["scheduler"]["admission"]["waiting"]["engine_threads"], 2,
        "{status}"
    );
    // The first loop's thread frees at its deadline: it goes to fib, not the third loop.
    let fib = finished(&server, &other);
    assert_eq!(fib["status"], "succeeded", "{fib}");
    let third = server.get(&format!("/v1/jobs/{}", loops[2])).json;
    if let Some(third_started) = third["started_at"].as_str() {
        let fib_started = fib["started_at"].as_str().unwrap();
        assert!(third_started >= fib_started, "{third} started before {fib}");
    }
    for id in &loops {
        server.delete(&format!("/v1/jobs/{id}"));
    }
}

#[test]
fn a_call_for_more_random_bytes_than_a_job_may_ask_traps_and_a_small_one_passes() {
    let server = hostiles_with(&[]);
    let asking = |bytes| Hostile {
        random_bytes: Some(bytes),
        ..Hostile::default()
    };
    upload(&server, "random-bomb", &asking(64 << 20));
    upload(&server, "random-ok", &asking(4096));
    let bomb = run_job(&server, json!({"task": "random-bomb"}));
    assert_eq!(bomb["error"]["code"], "trap", "{bomb}");
    let ok = run_job(&server, json!({"task": "random-ok"}));
    assert_eq!(ok["status"], "succeeded", "{ok}");
    assert_still_serving(&server);
}

#[test]
fn a_job_holding_more_resources_than_its_table_allows_traps_and_fewer_pass() {
    let server = hostiles_with(&[]);
    let holding = |pollables| Hostile {
        pollables: Some(pollables),
        ..Hostile::default()
    };
    upload(&server, "hoarder", &holding(20_000));
    upload(&server, "holder", &holding(1_000));
    let hoarder = run_job(&server, json!({"task": "hoarder"}));
    assert_eq!(hoarder["error"]["code"], "trap", "{hoarder}");
    let message = hoarder["error"]["message"].as_str().unwrap();
    assert!(message.contains("resource table"), "{message}");
    let holder = run_job(&server, json!({"task": "holder"}));
    assert_eq!(holder["status"], "succeeded", "{holder}");
    assert_still_serving(&server);
}
