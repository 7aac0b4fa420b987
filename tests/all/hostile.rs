//! Hostile jobs, inputs and uploads that the host already stops, kept here so that they stay
//! stopped: each gets a clear error (its code, and a message naming what was refused) or the
//! documented behaviour, and the host keeps serving afterwards.
//!
//! The rest of the suite has the others: loops, fuel and memory bombs, deep recursion
//! (`limits`), refused uploads (`upload`), cut logs (`report`), coalesced progress (`events`),
//! HTTP to loopback and unlisted hosts (`http`), exhaustion of memory, pool slots, threads and
//! connections (`hardening`, `hardening_http`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};
use taskhost_tests::{Hostile, Server};

use crate::{
    MIB, assert_memory_came_back, assert_still_serving, hostiles_with, run_job, server,
    server_with, upload,
};

/// The job's error message.
fn message(job: &Value) -> &str {
    job["error"]["message"].as_str().unwrap_or_default()
}

#[test]
fn table_bombs_and_huge_initial_memories_fail_as_memory_limit() {
    let server = hostiles_with(&[]);
    for (name, hostile, refused) in [
        (
            "table-bomb",
            Hostile {
                table_grow: Some(10_000_000),
                ..Hostile::default()
            },
            "grow a table to 10000000 elements; a table holds at most 100000",
        ),
        (
            "big-memory",
            Hostile {
                initial_pages: Some(8192),
                ..Hostile::default()
            },
            "grow its memory to 512 MiB; its limit is 256 MiB",
        ),
    ] {
        upload(&server, name, &hostile);
        let job = run_job(&server, json!({"task": name}));
        assert_eq!(job["error"]["code"], "memory_limit", "{name}: {job}");
        assert!(message(&job).contains(refused), "{name}: {job}");
    }
    // Within the limit, the same shapes run.
    let fits = Hostile {
        table_grow: Some(1000),
        initial_table: 1000,
        initial_pages: Some(64),
        ..Hostile::default()
    };
    upload(&server, "fits", &fits);
    let job = run_job(&server, json!({"task": "fits"}));
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        job["peak_memory_bytes"].as_u64().unwrap() >= 4 * MIB,
        "{job}"
    );
    assert_still_serving(&server);
}

#[test]
fn instances_that_do_not_fit_the_pool_are_refused_at_upload_naming_what_is_too_big() {
    let server = hostiles_with(&[]);
    for (name, hostile, refused) in [
        (
            "globals",
            Hostile {
                globals: 100_000,
                ..Hostile::default()
            },
            "defined globals",
        ),
        (
            "huge-table",
            Hostile {
                initial_table: 10_000_000,
                ..Hostile::default()
            },
            "minimum element size of 10000000 which exceeds the limit of 100000",
        ),
        (
            "huge-memory",
            Hostile {
                initial_pages: Some(65_536),
                ..Hostile::default()
            },
            "minimum byte size of 4294967296",
        ),
    ] {
        let path = format!("/v1/tasks/{name}");
        let response = server.put(&path, "application/wasm", &hostile.component());
        assert_eq!(response.status, 422, "{name}: {}", response.text);
        assert_eq!(response.json["error"]["code"], "invalid_component");
        let message = response.json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("does not fit this host's instance pool"),
            "{message}"
        );
        assert!(message.contains(refused), "{name}: {message}");
        assert_eq!(server.get(&path).status, 404);
    }
    assert_still_serving(&server);
}

#[test]
fn without_a_pool_huge_initial_tables_and_memories_fail_as_memory_limit_and_globals_run() {
    let server = hostiles_with(&["--instance-allocation", "on-demand"]);
    upload(
        &server,
        "huge-table",
        &Hostile {
            initial_table: 10_000_000,
            ..Hostile::default()
        },
    );
    upload(
        &server,
        "huge-memory",
        &Hostile {
            initial_pages: Some(65_536),
            ..Hostile::default()
        },
    );
    for (name, refused) in [
        ("huge-table", "grow a table to 10000000 elements"),
        ("huge-memory", "grow its memory to 4096 MiB"),
    ] {
        let job = run_job(&server, json!({"task": name}));
        assert_eq!(job["error"]["code"], "memory_limit", "{name}: {job}");
        assert!(message(&job).contains(refused), "{name}: {job}");
    }
    upload(
        &server,
        "globals",
        &Hostile {
            globals: 100_000,
            ..Hostile::default()
        },
    );
    let job = run_job(&server, json!({"task": "globals"}));
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_still_serving(&server);
}

#[test]
fn deep_recursion_through_host_calls_overflows_the_stack_on_either_path() {
    let server = hostiles_with(&[]);
    upload(
        &server,
        "deep-calls",
        &Hostile {
            recurse_with_host_calls: Some(10_000_000),
            ..Hostile::default()
        },
    );
    upload(
        &server,
        "shallow-calls",
        &Hostile {
            recurse_with_host_calls: Some(1000),
            ..Hostile::default()
        },
    );
    for kind in ["cpu", "io"] {
        let deep = run_job(&server, json!({"task": "deep-calls", "kind": kind}));
        assert_eq!(deep["error"]["code"], "stack_overflow", "{kind}: {deep}");
        let shallow = run_job(&server, json!({"task": "shallow-calls", "kind": kind}));
        assert_eq!(shallow["status"], "succeeded", "{kind}: {shallow}");
    }
    assert_still_serving(&server);
}

#[test]
fn outputs_that_are_not_one_json_document_fail_as_task_errors() {
    let server = hostiles_with(&[]);
    let nested = |depth| [vec![b'['; depth], vec![b']'; depth]].concat();
    let returning = |text: &[u8]| Hostile {
        output_text: Some(text.to_vec()),
        ..Hostile::default()
    };
    for (name, text) in [
        ("text", b"hello".to_vec()),
        ("two-documents", b"1 2".to_vec()),
        ("unterminated", b"{\"a\": ".to_vec()),
    ] {
        upload(&server, name, &returning(&text));
        let job = run_job(&server, json!({"task": name}));
        assert_eq!(job["error"]["code"], "task_error", "{name}: {job}");
        assert!(
            message(&job).contains("malformed JSON"),
            "{name}: {}",
            message(&job)
        );
    }
    // A string that is not UTF-8 is refused where it leaves the component.
    upload(&server, "not-utf8", &returning(b"\"\xff\xfe\""));
    let job = run_job(&server, json!({"task": "not-utf8"}));
    assert_eq!(job["error"]["code"], "trap", "{job}");
    assert!(message(&job).contains("utf-8"), "{job}");

    upload(&server, "shallow", &returning(&nested(100)));
    let job = run_job(&server, json!({"task": "shallow"}));
    assert_eq!(
        job["output"],
        serde_json::from_slice::<Value>(&nested(100)).unwrap()
    );
    // Deeper than a record holding it could be read back (by serde_json, the CLI, most
    // clients): refused, the depth named.
    upload(&server, "deep", &returning(&nested(100_000)));
    let job = run_job(&server, json!({"task": "deep"}));
    assert_eq!(job["error"]["code"], "task_error", "{job}");
    assert!(message(&job).contains("more than 124"), "{}", message(&job));
    assert_still_serving(&server);
}

#[test]
fn a_component_importing_what_the_host_does_not_provide_is_refused_naming_the_import() {
    let server = hostiles_with(&[]);
    let hostile = Hostile {
        unknown_import: Some("evil:host/escape@1.0.0".into()),
        ..Hostile::default()
    };
    let response = server.put("/v1/tasks/escape", "application/wasm", &hostile.component());
    assert_eq!(response.status, 422, "{}", response.text);
    assert_eq!(response.json["error"]["code"], "invalid_component");
    let refused = response.json["error"]["message"].as_str().unwrap();
    assert!(refused.contains("evil:host/escape@1.0.0"), "{refused}");
    assert_eq!(server.get("/v1/tasks/escape").status, 404);
    assert_still_serving(&server);
}

/// Sends `POST path` declaring a body of `length` bytes and sending as much of it as the
/// server reads; returns the response's status line and body.
fn post_declared(server: &Server, path: &str, length: u64) -> (String, String) {
    let address = server.url().trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         authorization: Bearer {}\r\ncontent-length: {length}\r\n\r\n",
        server.key()
    )
    .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'['; 1 << 20];
        let mut sent = 0;
        while sent < length {
            let n = chunk.len().min((length - sent) as usize);
            if writer.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n as u64;
        }
        sent
    });
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut body_length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            body_length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; body_length];
    reader.read_exact(&mut body).unwrap();
    drop(reader);
    let sent = sender.join().unwrap();
    assert!(
        sent < length,
        "the server read the whole body ({sent} bytes)"
    );
    (status, String::from_utf8(body).unwrap())
}

#[test]
fn a_200_mb_input_is_refused_as_too_large_without_being_read() {
    let server = server();
    for path in ["/v1/jobs", "/v1/batches"] {
        let (status, body) = post_declared(&server, path, 200_000_000);
        assert!(status.starts_with("HTTP/1.1 413"), "{path}: {status}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "body_too_large", "{path}: {body}");
    }
    assert_still_serving(&server);
}

#[test]
fn deeply_nested_json_input_is_a_clear_400() {
    let server = server();
    let depth = 100_000;
    let input = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for (path, body) in [
        (
            "/v1/jobs",
            format!(r#"{{"task": "noop", "input": {input}}}"#),
        ),
        (
            "/v1/batches",
            format!(r#"{{"task": "noop", "inputs": [{input}]}}"#),
        ),
    ] {
        let response = server.post(path, "application/json", &body);
        assert_eq!(response.status, 400, "{path}: {}", response.text);
        assert_eq!(
            response.json["error"]["code"], "malformed_json",
            "{path}: {}",
            response.text
        );
        assert!(
            response.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("recursion limit"),
            "{path}: {}",
            response.text
        );
    }
    assert_still_serving(&server);
}

#[test]
fn a_probing_task_finds_no_environment_files_stdin_sockets_or_dns() {
    let server = server();
    // A listener the task is told to connect to: it must see no connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let job = run_job(
        &server,
        json!({"task": "probe", "input": {"port": port, "resolve": "localhost"}}),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    let found = &job["output"];
    assert_eq!(found["env"], json!([]), "{found}");
    assert_eq!(found["args"], json!([]), "{found}");
    for attempt in ["read_dir", "read_file", "write_file"] {
        assert!(found[attempt]["Err"].is_string(), "{attempt}: {found}");
    }
    assert_eq!(found["stdin"], json!({"Ok": 0}), "{found}");
    for attempt in ["tcp_connect", "udp_bind"] {
        let error = found[attempt]["Err"].as_str().unwrap_or_default();
        assert!(error.contains("access-denied"), "{attempt}: {found}");
    }
    let dns = found["dns"]["Err"].as_str().unwrap_or_default();
    assert!(dns.contains("permanent-resolver-failure"), "{found}");
    assert!(
        listener.accept().is_err(),
        "the task reached the listener: {found}"
    );
    assert_still_serving(&server);
}

#[test]
fn http_to_the_metadata_address_is_refused_even_under_an_allowed_name_that_is_it() {
    let url = |host: &str| format!("http://{host}/latest/meta-data/");
    // Not allowed: denied by name.
    let server = server();
    let job = run_job(
        &server,
        json!({"task": "fetch", "input": {"url": url("169.254.169.254")}}),
    );
    assert_eq!(job["error"]["code"], "task_error", "{job}");
    assert!(message(&job).contains("request denied"), "{job}");
    // 169.254.169.254 written as one decimal number: allowed as a name, and resolved by the
    // system to the link-local address, which no name may reach.
    let server = server_with(&["--allow-http-host", "2852039166"]);
    let job = run_job(
        &server,
        json!({"task": "fetch", "input": {"url": url("2852039166")}}),
    );
    assert_eq!(job["error"]["code"], "task_error", "{job}");
    assert!(message(&job).contains("destination IP prohibited"), "{job}");
    assert_still_serving(&server);
}

#[test]
fn huge_logs_and_log_lines_are_cut_at_the_default_bounds() {
    let server = server();
    let baseline = server.rss_bytes();
    // 100 MB to stdout in lines of 1 MiB, and 100,000 short lines to stderr.
    let job = run_job(
        &server,
        json!({"task": "print", "input": {"stdout": ["x".repeat(1 << 20)], "times": 100}}),
    );
    assert_eq!(job["status"], "succeeded", "{}", job["error"]);
    assert_eq!(job["log"]["truncated"], true);
    let kept: usize = job["log"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap().len())
        .sum();
    assert!(kept <= 64 << 10, "{kept} bytes of log kept");
    let job = run_job(
        &server,
        json!({"task": "print", "input": {"stderr": ["line"], "times": 100_000}}),
    );
    assert_eq!(job["status"], "succeeded", "{}", job["error"]);
    assert_eq!(job["log"]["truncated"], true);
    assert_eq!(job["log"]["lines"].as_array().unwrap().len(), 1000);
    assert_memory_came_back("RSS", baseline, server.rss_bytes());
    assert_still_serving(&server);
}

#[test]
fn ten_million_progress_calls_finish_and_the_record_keeps_the_last() {
    let server = hostiles_with(&[]);
    upload(
        &server,
        "progress-bomb",
        &Hostile {
            progress_calls: Some(10_000_000),
            ..Hostile::default()
        },
    );
    let job = run_job(
        &server,
        json!({"task": "progress-bomb", "timeout_ms": 120_000}),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    // It counts down: the last report is 1.
    assert_eq!(job["progress"], json!({"done": 1}), "{job}");
    assert_still_serving(&server);
}

#[test]
fn task_names_that_try_to_leave_the_tasks_directory_are_refused_and_write_nothing() {
    let tasks = tempfile::tempdir().unwrap();
    let inside = tasks.path().join("inside");
    std::fs::create_dir(&inside).unwrap();
    let server = crate::upload::server_over(&inside, &[]);
    let component = Hostile::default().component();
    for name in [
        "..%2Fescaped",
        "%2E%2E%2Fescaped",
        "..%5Cescaped",
        "%2Ftmp%2Fescaped",
        "escaped%00",
        "..",
        ".escaped",
        "a%2F..%2F..%2Fescaped",
    ] {
        let response = server.put(&format!("/v1/tasks/{name}"), "application/wasm", &component);
        assert_eq!(response.status, 400, "{name}: {}", response.text);
        assert_eq!(
            response.json["error"]["code"], "invalid_task_name",
            "{name}: {}",
            response.text
        );
    }
    let written: Vec<_> = std::fs::read_dir(tasks.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(written, ["inside"], "only the tasks directory");
    assert_eq!(std::fs::read_dir(&inside).unwrap().count(), 0);
    assert!(!std::path::Path::new("/tmp/escaped.wasm").exists());
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn malformed_components_are_refused_with_what_they_are() {
    let server = hostiles_with(&[]);
    let component = Hostile::default().component();
    let mut bad_section = component[..8].to_vec();
    // A section claiming 4 GiB.
    bad_section.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("truncated", component[..component.len() / 2].to_vec()),
        ("bad-section", bad_section),
        ("text", Hostile::default().text().into_bytes()),
    ] {
        let response = server.put(&format!("/v1/tasks/{name}"), "application/wasm", &bytes);
        assert_eq!(response.status, 400, "{name}: {}", response.text);
        assert_eq!(
            response.json["error"]["code"], "invalid_component",
            "{name}: {}",
            response.text
        );
    }
    assert_still_serving(&server);
}

#[test]
fn a_thousand_panicking_jobs_fail_with_the_panic_s_message_and_leave_no_memory_behind() {
    let server = server();
    let panics = |count: usize| {
        let response = server.post_json(
            "/v1/batches",
            &json!({"task": "fail", "inputs": vec![json!({"mode": "panic"}); count],
                    "wait_ms": 120_000}),
        );
        assert_eq!(response.status, 200, "{}", &response.text[..200]);
        let jobs = response.json["jobs"].as_array().unwrap().clone();
        assert_eq!(jobs.len(), count);
        for job in &jobs {
            assert_eq!(job["error"]["code"], "panic", "{job}");
            assert!(message(job).contains("panicked on request"), "{job}");
        }
    };
    panics(100);
    let baseline = server.pss_bytes();
    panics(1000);
    assert_memory_came_back("PSS", baseline, server.pss_bytes());
    assert_still_serving(&server);
}
