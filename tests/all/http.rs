//! Outgoing HTTP from tasks (`fetch`): only to allowed hosts, never past the job's deadline.

use serde_json::json;
use taskhost_tests::{Peer, tls};

use crate::{run_job, server, server_with};

#[test]
fn fetch_reaches_an_allowed_host() {
    let peer = Peer::start();
    let server = server_with(&["--allow-http-host", "127.0.0.1"]);
    let job = run_job(
        &server,
        json!({"task": "fetch", "input": {"url": peer.url("/hello")}}),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["kind"], "io", "a wasi:http task is IO-bound");
    assert_eq!(job["output"]["status"], 200);
    assert_eq!(job["output"]["body"], "hello from the peer");
    let headers = job["output"]["headers"].as_array().unwrap();
    assert!(headers.contains(&json!(["x-peer", "yes"])), "{job}");

    let posted = run_job(
        &server,
        json!({"task": "fetch", "input": {"url": peer.url("/echo"), "method": "POST", "body": "payload"}}),
    );
    assert_eq!(posted["output"]["body"], "POST payload", "{posted}");

    let status = server.get("/v1/status").json;
    assert_eq!(status["engine"]["http_allowed"], json!(["127.0.0.1"]));
}

#[test]
fn requests_are_denied_unless_the_host_and_port_are_allowed() {
    let peer = Peer::start();
    let other_port = format!("127.0.0.1:{}", peer.port().wrapping_add(1).max(1));
    for server in [server(), server_with(&["--allow-http-host", &other_port])] {
        let job = run_job(
            &server,
            json!({"task": "fetch", "input": {"url": peer.url("/hello")}}),
        );
        assert_eq!(job["error"]["code"], "task_error", "{job}");
        let message = job["error"]["message"].as_str().unwrap();
        assert!(message.contains("request denied"), "{job}");
        assert_eq!(
            run_job(&server, json!({"task": "noop"}))["status"],
            "succeeded"
        );
    }
}

/// A name other than `localhost` that /etc/hosts maps to `127.0.0.1` (most systems map their
/// own host name so).
fn loopback_alias() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next()? == "127.0.0.1").then_some(fields)
        })
        .flatten()
        .find(|name| !name.starts_with("localhost") && !name.contains(':'))
        .map(str::to_owned)
        .expect("this test needs a name other than localhost for 127.0.0.1 in /etc/hosts")
}

#[test]
fn an_allowed_name_that_resolves_to_loopback_is_refused_but_localhost_is_not() {
    let peer = Peer::start();
    let alias = loopback_alias();
    let server = server_with(&[
        "--allow-http-host",
        &alias,
        "--allow-http-host",
        "localhost",
    ]);
    let url = format!("http://{alias}:{}/hello", peer.port());
    let job = run_job(&server, json!({"task": "fetch", "input": {"url": url}}));
    assert_eq!(job["error"]["code"], "task_error", "{job}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("destination IP prohibited"), "{job}");
    let lines = job["log"]["lines"].as_array().unwrap();
    assert!(
        lines.iter().any(|line| {
            let message = line["message"].as_str().unwrap_or_default();
            message.contains("resolves to 127.0.0.1 (a loopback address)")
        }),
        "the job's log says which address and why: {job}"
    );
    assert!(
        server.log().contains("outgoing HTTP request refused"),
        "{}",
        server.log()
    );

    let url = format!("http://localhost:{}/hello", peer.port());
    let job = run_job(&server, json!({"task": "fetch", "input": {"url": url}}));
    assert_eq!(job["output"]["body"], "hello from the peer", "{job}");
}

#[test]
fn a_request_that_never_answers_is_stopped_at_the_job_deadline_on_either_path() {
    let peer = Peer::start();
    let server = server_with(&["--allow-http-host", "127.0.0.1"]);
    for kind in ["io", "cpu"] {
        let job = run_job(
            &server,
            json!({"task": "fetch", "kind": kind, "timeout_ms": 300, "input": {"url": peer.url("/hang")}}),
        );
        assert_eq!(job["error"]["code"], "timeout", "{job}");
        assert!(job["wall_ms"].as_f64().unwrap() < 30_000.0, "{job}");
    }
}

#[test]
fn a_cpu_job_waiting_on_a_clock_is_stopped_at_its_deadline() {
    let server = server_with(&["--workers", "1"]);
    let job = run_job(
        &server,
        json!({"task": "sleep", "kind": "cpu", "timeout_ms": 200, "input": {"ms": 600_000}}),
    );
    assert_eq!(job["error"]["code"], "timeout", "{job}");
    // The only engine thread is free again.
    let next = run_job(&server, json!({"task": "fib", "input": {"n": 10}}));
    assert_eq!(next["output"]["value"], 55);
}

#[test]
fn https_reaches_a_server_whose_ca_the_operator_added_and_no_other() {
    let peer = Peer::start_tls();
    let allow = format!("localhost:{}", peer.port());
    let url = format!("https://localhost:{}/hello", peer.port());
    let trusting = server_with(&["--allow-http-host", &allow, "--http-ca-file", tls::CA]);
    let job = run_job(&trusting, json!({"task": "fetch", "input": {"url": url}}));
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["output"]["body"], "hello from the peer");
    let status = trusting.get("/v1/status").json;
    assert_eq!(status["engine"]["http_added_cas"], 1, "{status}");

    // An IP address in the URL is verified against the certificate's IP addresses.
    let by_address = run_job(
        &server_with(&["--allow-http-host", "127.0.0.1", "--http-ca-file", tls::CA]),
        json!({"task": "fetch", "input": {"url": peer.url("/echo"), "method": "PUT", "body": "x"}}),
    );
    assert_eq!(by_address["output"]["body"], "PUT x", "{by_address}");

    // Without the CA, the Mozilla roots alone do not trust the peer's certificate.
    let default_trust = server_with(&["--allow-http-host", &allow]);
    let refused = run_job(
        &default_trust,
        json!({"task": "fetch", "input": {"url": url}}),
    );
    assert_eq!(refused["error"]["code"], "task_error", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.to_lowercase().contains("tls"), "{message}");
    assert_eq!(
        run_job(&default_trust, json!({"task": "noop"}))["status"],
        "succeeded"
    );
}
