//! The `taskhost` command line as people use it: the real binary against a real server.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use taskhost_tests::{Server, fixtures};

use crate::{server, server_with};

/// What one run of `taskhost` did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout as one JSON value.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self}"))
    }

    /// Stdout as JSON lines.
    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("{line}")))
            .collect()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "success: {}\nstdout:\n{}\nstderr:\n{}",
            self.success, self.stdout, self.stderr
        )
    }
}

/// Runs `taskhost ARGS` in `dir` with `TASKHOST_URL=url`, `TASKHOST_KEY=key` (unless
/// empty) and `stdin` as its input.
fn taskhost_in(dir: &Path, url: &str, key: &str, args: &[&str], stdin: &str) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskhost"));
    if !key.is_empty() {
        command.env("TASKHOST_KEY", key);
    }
    let mut child = command
        .args(args)
        .current_dir(dir)
        .env("TASKHOST_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting taskhost");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        // The command may not read all of it (or any): a broken pipe is fine.
        let _ = input.write_all(stdin.as_bytes());
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `taskhost ARGS` against `server`, with empty stdin.
fn taskhost(server: &Server, args: &[&str]) -> Run {
    taskhost_in(Path::new("."), server.url(), server.key(), args, "")
}

/// A URL where nothing listens.
fn nothing_listening() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

#[test]
fn a_task_is_pushed_listed_and_removed() {
    let tasks = tempfile::tempdir().unwrap();
    let server = Server::start(
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        tasks.path().to_str().unwrap(),
        &[],
    );
    // No key given: the CLI reads the data dir's, the default tenant's (its own tasks), or
    // with --shared the admin key (the tasks every tenant shares).
    let data_dir = server.data_dir();
    let taskhost = |server: &Server, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--data-dir", data_dir.to_str().unwrap()]);
        taskhost_in(Path::new("."), server.url(), "", &all, "")
    };
    let listed = taskhost(&server, &["task", "list"]);
    assert!(listed.success, "{listed}");
    assert_eq!(listed.stdout, "no tasks served\n");

    let pushed = taskhost(&server, &["task", "push", "shout", fixtures::UPPERCASE]);
    assert!(pushed.success, "{pushed}");
    let own = server.request_with_key("GET", "/v1/tasks/shout", Some(server.key()));
    let hash = own.json["hash"].as_str().unwrap().to_owned();
    assert_eq!(own.json["origin"], "tenant", "the default tenant's own");
    assert_eq!(server.get("/v1/tasks/shout").status, 404, "not shared");
    assert!(
        pushed.stdout.starts_with("created task shout (") && pushed.stdout.contains(&hash),
        "{pushed}"
    );
    let again = taskhost(&server, &["task", "push", "shout", fixtures::UPPERCASE]);
    assert!(again.stdout.starts_with("replaced task shout ("), "{again}");

    let table = taskhost(&server, &["task", "list"]);
    let lines: Vec<_> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    let header: Vec<_> = lines[0]
        .split("  ")
        .map(str::trim)
        .filter(|title| !title.is_empty())
        .collect();
    assert_eq!(
        header,
        ["NAME", "KIND", "SIZE", "HASH", "SERVING SINCE", "ORIGIN"],
        "{table}"
    );
    let row: Vec<_> = lines[1].split_whitespace().collect();
    assert_eq!(row[..3], ["shout", "cpu", "(imports)"], "{table}");
    assert_eq!(row[5], &hash[..12], "a hash prefix: {table}");
    assert_eq!(row.last(), Some(&"tenant"), "{table}");
    let json = taskhost(&server, &["task", "list", "--json"]).json();
    assert_eq!(json["tasks"][0]["name"], "shout");
    assert_eq!(json["tasks"][0]["hash"], hash.as_str());

    let removed = taskhost(&server, &["task", "rm", "shout"]);
    assert_eq!(removed.stdout, "deleted task shout\n", "{removed}");
    let gone = taskhost(&server, &["task", "rm", "shout"]);
    assert!(!gone.success, "{gone}");
    assert_eq!(
        gone.stderr,
        "error: no task named \"shout\" (unknown_task)\n"
    );
    let shared = taskhost(
        &server,
        &["task", "push", "--shared", "loud", fixtures::UPPERCASE],
    );
    assert!(shared.success, "{shared}");
    assert_eq!(server.get("/v1/tasks/loud").json["origin"], "shared");
    let shared_list = taskhost(&server, &["task", "list", "--shared", "--json"]).json();
    assert_eq!(shared_list["tasks"][0]["name"], "loud");
    let not_own = taskhost(&server, &["task", "rm", "loud"]);
    assert!(
        !not_own.success,
        "a tenant cannot delete a shared task: {not_own}"
    );
    let unshared = taskhost(&server, &["task", "rm", "--shared", "loud"]);
    assert!(unshared.success, "{unshared}");
    assert_eq!(server.get("/v1/tasks/loud").status, 404);

    let missing = taskhost(&server, &["task", "push", "shout", "no/such.wasm"]);
    assert!(
        missing
            .stderr
            .starts_with("error: cannot read no/such.wasm"),
        "{missing}"
    );
}

#[test]
fn job_submit_waits_for_the_result_and_fails_with_a_failed_job() {
    let server = server();
    let done = taskhost(
        &server,
        &[
            "job",
            "submit",
            "uppercase",
            r#"{"text": "hi there"}"#,
            "--wait",
        ],
    );
    assert!(done.success, "{done}");
    let job = done.json();
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["output"], json!({"upper": "HI THERE", "words": 2}));

    let failed = taskhost(
        &server,
        &["job", "submit", "fail", r#"{"mode": "panic"}"#, "--wait"],
    );
    assert!(!failed.success, "a failed job fails the command: {failed}");
    let job = failed.json();
    assert_eq!(job["error"]["code"], "panic", "{failed}");
    let id = job["id"].as_str().unwrap();
    assert!(
        failed
            .stderr
            .starts_with(&format!("error: job {id} failed: the task panicked"))
            && failed.stderr.ends_with("(panic)\n"),
        "{failed}"
    );

    // The input from stdin: absent or `-`; empty stdin is a null input.
    let url = server.url();
    let here = Path::new(".");
    let piped = r#"{"text": "from stdin"}"#;
    for args in [
        &["job", "submit", "uppercase", "--wait"][..],
        &["job", "submit", "uppercase", "-", "--wait"],
    ] {
        let run = taskhost_in(here, url, server.key(), args, piped);
        assert_eq!(run.json()["output"]["upper"], "FROM STDIN", "{run}");
    }
    let null = taskhost(&server, &["job", "submit", "uppercase", "--wait"]);
    assert_eq!(null.json()["error"]["code"], "invalid_input", "{null}");
    let bad = taskhost(&server, &["job", "submit", "uppercase", "{text"]);
    assert!(
        bad.stderr.starts_with("error: the input is not JSON"),
        "{bad}"
    );

    // Options reach the server.
    let fuel = taskhost(
        &server,
        &[
            "job",
            "submit",
            "fib",
            r#"{"n": 30}"#,
            "--fuel",
            "1000",
            "--wait",
        ],
    );
    assert_eq!(fuel.json()["error"]["code"], "fuel_exhausted", "{fuel}");
    let io = taskhost(
        &server,
        &["job", "submit", "noop", "--kind", "io", "--wait"],
    );
    assert_eq!(io.json()["kind"], "io", "{io}");
    let keyed = ["job", "submit", "noop", "--idempotency-key", "once"];
    let first = taskhost(&server, &keyed).json();
    let second = taskhost(&server, &keyed).json();
    assert_eq!(first["id"], second["id"], "submitted once");

    let unknown = taskhost(&server, &["job", "submit", "nope"]);
    assert!(!unknown.success);
    assert_eq!(
        unknown.stderr,
        "error: no task named \"nope\" (unknown_task)\n"
    );
}

#[test]
fn jobs_are_waited_for_cancelled_fetched_and_listed() {
    let server = server();
    let submitted = taskhost(&server, &["job", "submit", "loop"]).json();
    let id = submitted["id"].as_str().unwrap().to_owned();

    let waited = taskhost(&server, &["job", "wait", &id, "--timeout-ms", "200"]);
    assert!(!waited.success, "{waited}");
    assert!(
        waited
            .stderr
            .starts_with(&format!("error: job {id} did not finish in time")),
        "{waited}"
    );
    assert!(!matches!(
        waited.json()["status"].as_str(),
        Some("succeeded" | "failed")
    ));

    let cancelled = taskhost(&server, &["job", "cancel", &id]);
    assert!(cancelled.success, "{cancelled}");
    assert_eq!(cancelled.json()["error"]["code"], "cancelled");
    let again = taskhost(&server, &["job", "cancel", &id]);
    assert_eq!(
        again.stderr,
        format!("error: job {id} already finished (job_finished)\n")
    );
    let waited = taskhost(&server, &["job", "wait", &id]);
    assert!(!waited.success, "the job failed: {waited}");
    assert_eq!(waited.json()["status"], "failed");
    let fetched = taskhost(&server, &["job", "get", &id]);
    assert!(fetched.success, "{fetched}");
    assert_eq!(fetched.json(), cancelled.json());
    let bad = taskhost(&server, &["job", "get", "nope"]);
    assert!(bad.stderr.contains("job ids are UUIDs"), "{bad}");

    let mut ids = Vec::new();
    for n in 0..3 {
        let input = format!(r#"{{"text": "{n}"}}"#);
        let run = taskhost(&server, &["job", "submit", "uppercase", &input, "--wait"]);
        ids.push(run.json()["id"].as_str().unwrap().to_owned());
    }
    ids.reverse(); // newest first
    let page = taskhost(
        &server,
        &["job", "list", "--task", "uppercase", "--limit", "2"],
    );
    let rows: Vec<_> = page.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{page}");
    assert!(
        rows[0].starts_with(&ids[0]) && rows[1].starts_with(&ids[1]),
        "{page}"
    );
    assert!(rows[0].contains("succeeded"), "{page}");
    assert!(page.stderr.contains("--all"), "says there is more: {page}");
    let all = [
        "job",
        "list",
        "--task",
        "uppercase",
        "--limit",
        "2",
        "--all",
        "--json",
    ];
    let all = taskhost(&server, &all).json();
    let listed: Vec<_> = all["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids, "every page, newest first");
    assert!(all.get("next_cursor").is_none(), "{all}");
    let failed = taskhost(&server, &["job", "list", "--status", "failed", "--json"]).json();
    assert_eq!(failed["jobs"][0]["id"], id.as_str(), "{failed}");
}

#[test]
fn a_batch_prints_every_result_in_input_order() {
    let server = server();
    // Slow and quick jobs interleaved: later lines finish before earlier ones.
    let lines: Vec<Value> = (0..200)
        .map(|i| match i % 4 {
            0 => json!({"task": "fib", "input": {"n": 25 + i % 3}}),
            _ => json!({"task": "uppercase", "input": {"text": format!("line {i}")}}),
        })
        .collect();
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let run = taskhost_in(
        Path::new("."),
        server.url(),
        server.key(),
        &["batch"],
        &input,
    );
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stderr, "200 jobs succeeded\n");
    let results = run.json_lines();
    assert_eq!(results.len(), 200);
    for (i, (line, result)) in lines.iter().zip(&results).enumerate() {
        assert_eq!(result["task"], line["task"], "line {}", i + 1);
        assert_eq!(result["status"], "succeeded", "{result}");
        if line["task"] == "uppercase" {
            assert_eq!(result["output"]["upper"], format!("LINE {i}"));
        }
    }

    // --task: each line is an input; FILE instead of stdin.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inputs.jsonl");
    std::fs::write(&file, "{\"n\": 10}\n{\"n\": 20}\n").unwrap();
    let run = taskhost(&server, &["batch", "--task", "fib", file.to_str().unwrap()]);
    let values: Vec<_> = run
        .json_lines()
        .iter()
        .map(|r| r["output"]["value"].clone())
        .collect();
    assert_eq!(values, [json!(55), json!(6765)], "{run}");
}

#[test]
fn a_batch_reports_lines_that_cannot_run_by_number_and_fails() {
    let server = server();
    let input = [
        r#"{"task": "uppercase", "input": {"text": "a"}}"#,
        "{not json",
        "",
        r#"{"task": "nope"}"#,
        r#"{"task": "fail", "input": {"mode": "error"}}"#,
        "[1, 2]",
        r#"{"task": "uppercase", "input": {"text": "b"}, "fuel": 10}"#,
        r#"{"task": "uppercase", "input": {"text": "c"}}"#,
    ]
    .join("\n");
    let run = taskhost_in(
        Path::new("."),
        server.url(),
        server.key(),
        &["batch", "--fuel", "100000000", "-"],
        &input,
    );
    assert!(!run.success, "{run}");
    let results = run.json_lines();
    assert_eq!(results.len(), 7, "one per non-blank line: {run}");
    assert_eq!(results[0]["output"]["upper"], "A");
    assert_eq!(results[1]["line"], 2);
    assert_eq!(results[1]["error"]["code"], "malformed_json");
    assert_eq!(results[2]["line"], 4, "the blank line 3 counts: {run}");
    assert_eq!(results[2]["error"]["code"], "unknown_task");
    assert_eq!(
        results[3]["error"]["code"], "task_error",
        "a job that ran and failed"
    );
    assert_eq!(results[4]["line"], 6);
    assert_eq!(results[4]["error"]["code"], "invalid_request");
    assert_eq!(
        results[5]["error"]["code"], "fuel_exhausted",
        "a line's own fields win"
    );
    assert_eq!(results[6]["output"]["upper"], "C");
    assert_eq!(
        run.stderr,
        "error: 2 of 7 jobs succeeded, 2 failed, 3 could not be submitted\n"
    );
}

#[test]
fn a_batch_waits_out_a_full_queue() {
    let server = server_with(&["--workers", "1", "--max-queued", "2"]);
    let input = "{\"n\": 20}\n".repeat(40);
    let run = taskhost_in(
        Path::new("."),
        server.url(),
        server.key(),
        &["batch", "--task", "fib", "--max-concurrent", "8"],
        &input,
    );
    assert!(run.success, "{run}");
    assert_eq!(run.json_lines().len(), 40);
    let rejected = server.get("/v1/status").json["scheduler"]["rejected"].clone();
    assert!(
        rejected.as_u64().unwrap() > 0,
        "the queue was never full: {rejected}"
    );
}

#[test]
fn an_unreachable_server_is_named_with_how_to_point_elsewhere() {
    let url = nothing_listening();
    let here = Path::new(".");
    for args in [&["job", "list"][..], &["task", "list"], &["batch"]] {
        let run = taskhost_in(here, &url, "", args, "{\"task\": \"noop\"}\n");
        assert!(!run.success, "{run}");
        assert!(
            run.stderr
                .contains(&format!("the server is not reachable at {url}"))
                && run.stderr.contains("--server URL or TASKHOST_URL"),
            "{run}"
        );
    }
    // --server wins over the environment.
    let server = server();
    let run = taskhost_in(
        here,
        &url,
        server.key(),
        &["job", "list", "--server", server.url()],
        "",
    );
    assert!(run.success, "{run}");
    let bad = taskhost_in(here, "nonsense", "", &["job", "list"], "");
    assert!(bad.stderr.contains("http://127.0.0.1:7070"), "{bad}");
}

/// A directory laid out like a checkout, as far as `taskhost new` looks: tasks/build.sh, the
/// tasks workspace, guest-sdk/.
fn fake_checkout() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::create_dir_all(root.path().join("tasks")).unwrap();
    std::fs::create_dir_all(root.path().join("guest-sdk")).unwrap();
    for file in ["tasks/build.sh", "tasks/Cargo.toml", "guest-sdk/Cargo.toml"] {
        std::fs::copy(real.join(file), root.path().join(file)).unwrap();
    }
    root
}

fn parse_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap();
    text.parse()
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn assert_parses_as_rust(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let file = syn::parse_file(&text).unwrap_or_else(|error| panic!("{error}: {text}"));
    assert!(text.contains("#[taskhost_sdk::task]"), "{text}");
    assert!(!file.items.is_empty());
}

#[test]
fn new_creates_a_task_crate_that_joins_the_tasks_workspace() {
    let checkout = fake_checkout();
    let root = checkout.path();
    // From anywhere in the checkout.
    let run = taskhost_in(&root.join("tasks"), "", "", &["new", "greet"], "");
    assert!(run.success, "{run}");
    assert!(run.stdout.contains("taskhost build greet"), "{run}");
    let crate_dir = root.join("tasks/greet");
    let manifest = parse_toml(&crate_dir.join("Cargo.toml"));
    assert_eq!(manifest["package"]["name"].as_str(), Some("greet"));
    assert_eq!(
        manifest["lib"]["crate-type"],
        toml::Value::from(vec!["cdylib"])
    );
    assert_parses_as_rust(&crate_dir.join("src/lib.rs"));
    // It joins the workspace (every directory is a member) and inherits what it provides.
    let workspace = parse_toml(&root.join("tasks/Cargo.toml"));
    let members = &workspace["workspace"]["members"];
    assert_eq!(*members, toml::Value::from(vec!["*"]), "{members}");
    for (name, dependency) in manifest["dependencies"].as_table().unwrap() {
        assert_eq!(dependency["workspace"].as_bool(), Some(true), "{name}");
        assert!(
            workspace["workspace"]["dependencies"].get(name).is_some(),
            "the tasks workspace provides {name}"
        );
    }

    let twice = taskhost_in(root, "", "", &["new", "greet"], "");
    assert!(!twice.success);
    assert!(twice.stderr.contains("already exists"), "{twice}");
    // Cargo names both libraries word_count: tasks/build.sh could not tell them apart.
    assert!(taskhost_in(root, "", "", &["new", "word-count"], "").success);
    let clash = taskhost_in(root, "", "", &["new", "word_count"], "");
    assert!(!clash.success, "{clash}");
    assert!(
        clash
            .stderr
            .contains("already builds a library named word_count"),
        "{clash}"
    );
    for (name, says) in [
        ("2fast", "cannot name a task"),
        ("a.b", "cannot name a task"),
        ("fn", "Rust keyword"),
    ] {
        let run = taskhost_in(root, "", "", &["new", name], "");
        assert!(!run.success && run.stderr.contains(says), "{name}: {run}");
    }
    let outside = tempfile::tempdir().unwrap();
    let lost = taskhost_in(outside.path(), "", "", &["new", "greet"], "");
    assert!(lost.stderr.contains("inside a taskhost checkout"), "{lost}");
}

#[test]
fn new_with_a_dir_elsewhere_creates_a_crate_of_its_own() {
    let checkout = fake_checkout();
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().join("hello-world");
    let run = taskhost_in(
        checkout.path(),
        "",
        "",
        &["new", "hello-world", "--dir", dir.to_str().unwrap()],
        "",
    );
    assert!(run.success, "{run}");
    let manifest = parse_toml(&dir.join("Cargo.toml"));
    assert_eq!(manifest["package"]["name"].as_str(), Some("hello-world"));
    assert!(manifest.contains_key("workspace"), "a workspace of its own");
    let sdk = manifest["dependencies"]["taskhost-sdk"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(
        Path::new(sdk),
        checkout.path().join("guest-sdk").canonicalize().unwrap()
    );
    assert_parses_as_rust(&dir.join("src/lib.rs"));
}

#[test]
fn build_runs_the_checkouts_build_script_and_says_what_is_wrong() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let run = taskhost_in(repo, "", "", &["build", "no-such-task"], "");
    assert!(!run.success);
    assert!(run.stderr.contains("no task named 'no-such-task'"), "{run}");
    let outside = tempfile::tempdir().unwrap();
    let run = taskhost_in(outside.path(), "", "", &["build"], "");
    assert!(run.stderr.contains("no tasks/build.sh in"), "{run}");
}
