//! Configuration from a file, environment variables and flags, through the real binary:
//! `taskhost config check`, and `taskhost serve --config FILE`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use taskhost_tests::{Server, fixtures};

/// A config file with `text` in a fresh directory (kept alive by the returned guard).
fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taskhost.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// `taskhost ARGS` with the environment variables `env` and no other `TASKHOST_*` variable.
fn taskhost(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskhost"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("TASKHOST_")) {
        command.env_remove(name);
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running taskhost")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The line of `key` in `config check`'s output.
fn setting<'a>(stdout: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key} = ");
    stdout
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
}

#[test]
fn config_check_prints_each_setting_with_where_it_came_from() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("not-yet");
    let (_dir, file) = config_file(&format!(
        "tasks_dir = {:?}\n\
         data_dir = {data_dir:?}\n\
         max_queued = 5\n\
         max_wait_ms = 5\n\
         job_timeout_ms = 5\n\
         allow_http_hosts = [\"localhost:8080\"]\n",
        fixtures::TASKS_DIR
    ));
    let file = file.to_str().unwrap();
    let output = taskhost(
        &["config", "check", "--config", file, "--max-queued", "6"],
        &[
            ("TASKHOST_MAX_QUEUED", "7"),
            ("TASKHOST_MAX_WAIT_MS", "7"),
            ("TASKHOST_WAIT_FOR_TASKS", "1"),
            ("TASKHOST_PIN_WORKERS", "on"),
        ],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let from = |key, value: &str, source: &str| {
        let line = setting(&stdout, key);
        assert!(
            line.starts_with(&format!("{key} = {value} "))
                && line.ends_with(&format!("# {source}")),
            "{line}"
        );
    };
    from("max_queued", "6", "flag --max-queued");
    from("max_wait_ms", "7", "env TASKHOST_MAX_WAIT_MS");
    from("job_timeout_ms", "5", &format!("file {file}:5"));
    from(
        "allow_http_hosts",
        "[\"localhost:8080\"]",
        &format!("file {file}:6"),
    );
    from("max_upload_mib", "64", "default");
    // Switches take the usual spellings from the environment: 1/0, yes/no, on/off.
    from("wait_for_tasks", "true", "env TASKHOST_WAIT_FOR_TASKS");
    from("pin_workers", "true", "env TASKHOST_PIN_WORKERS");
    assert!(
        !data_dir.exists(),
        "config check created the data directory"
    );
}

#[test]
fn config_check_lists_every_problem_and_serve_refuses_the_same() {
    let (_dir, file) = config_file(&format!(
        "tasks_dir = {:?}\n\
         max_queue = 5\n\
         workers = \"four\"\n\
         max_queued = 0\n\
         http_ca_files = [\"/nonexistent/ca.pem\"]\n",
        fixtures::TASKS_DIR
    ));
    let file = file.to_str().unwrap();
    let flags = ["--config", file, "--max-wasm-stack-kib", "1"];
    let env = [("TASKHOST_MAX_UPLOAD_MIB", "0")];
    let output = taskhost(&[&["config", "check"], &flags[..]].concat(), &env);
    assert!(!output.status.success());
    assert_eq!(text(&output.stdout), "", "nothing printed but the problems");
    let stderr = text(&output.stderr);
    for problem in [
        format!("{file}:2: unknown setting `max_queue`: did you mean `max_queued`?"),
        format!("{file}:3: workers must be an integer, not a string"),
        format!("max_queued ({file}:4) is 0"),
        format!("http_ca_files ({file}:5): cannot read /nonexistent/ca.pem"),
        "--max-wasm-stack-kib is 1".into(),
        "TASKHOST_MAX_UPLOAD_MIB is 0".into(),
    ] {
        assert!(
            stderr.contains(&problem),
            "{problem:?} missing from:\n{stderr}"
        );
    }

    let served = taskhost(
        &[&["serve", "--listen", "127.0.0.1:0"], &flags[..]].concat(),
        &env,
    );
    assert!(!served.status.success());
    assert_eq!(text(&served.stdout), "", "serve listened");
    let served = text(&served.stderr);
    for problem in stderr.lines().filter(|line| line.starts_with("  - ")) {
        assert!(
            served.contains(problem),
            "{problem:?} missing from:\n{served}"
        );
    }
}

#[test]
fn a_file_that_is_not_toml_is_reported_with_its_line_and_column() {
    let (_dir, file) = config_file("max_queued = 5\nworkers = = 2\n");
    let file = file.to_str().unwrap();
    let output = taskhost(&["config", "check", "--config", file], &[]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("{file}:2:11: ")), "{stderr}");

    let missing = Path::new(file).with_file_name("missing.toml");
    let missing = missing.to_str().unwrap();
    let output = taskhost(&["config", "check"], &[("TASKHOST_CONFIG", missing)]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot read the config file {missing} (TASKHOST_CONFIG): "
        )),
        "{stderr}"
    );
}

#[test]
fn serve_runs_with_the_files_settings_under_its_flags() {
    // The file's listen address and tasks directory are overridden by the flags the test
    // server passes; its limits and fuel metering are not.
    let (_dir, file) = config_file(
        "listen = \"127.0.0.1:1\"\n\
         tasks_dir = \"/no/such/tasks\"\n\
         max_job_timeout_ms = 1000\n\
         job_timeout_ms = 300\n\
         fuel_metering = false\n",
    );
    let server = Server::start(
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        fixtures::TASKS_DIR,
        &["--config", file.to_str().unwrap()],
    );
    let status = server.get("/v1/status");
    assert_eq!(
        status.json["engine"]["fuel_metering"], "never",
        "{}",
        status.text
    );

    let refused = server.post_json("/v1/jobs", &json!({"task": "noop", "timeout_ms": 1001}));
    assert_eq!(refused.status, 400, "{}", refused.text);
    let message = refused.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("between 1 and 1000"), "{message}");

    // A job that never ends stops at the file's default deadline, not the built-in 30 s.
    let job = crate::run_job(&server, json!({"task": "loop"}));
    assert_eq!(job["error"]["code"], "timeout", "{job}");
    let wall_ms = job["wall_ms"].as_f64().unwrap();
    assert!((300.0..10_000.0).contains(&wall_ms), "{job}");
}
