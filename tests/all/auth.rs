//! API keys: every `/v1` route takes one; a server started without tenants creates the
//! `default` tenant and its key, which the CLI finds by itself.

use std::process::Command;

use serde_json::Value;

use crate::server;

#[test]
fn v1_routes_answer_401_without_a_valid_key_and_public_routes_need_none() {
    let server = server();
    let wrong = format!("th_{}", "0".repeat(64));
    for path in ["/v1/status", "/v1/jobs", "/v1/tasks", "/metrics"] {
        for key in [None, Some(wrong.as_str()), Some("")] {
            let refused = server.request_with_key("GET", path, key);
            assert_eq!(refused.status, 401, "{path} {key:?}: {}", refused.text);
            assert_eq!(
                refused.json["error"]["code"], "unauthorized",
                "{}",
                refused.text
            );
            assert_eq!(
                refused.header("www-authenticate"),
                Some("Bearer realm=\"taskhost\""),
                "{path}"
            );
            assert!(
                !refused.text.contains(&wrong),
                "a key is never echoed: {}",
                refused.text
            );
        }
        let message = server.request_with_key("GET", path, None).json["error"]["message"].clone();
        assert!(
            message.as_str().unwrap().contains("Authorization: Bearer"),
            "{message}"
        );
        // The default tenant's key opens it, but for the metrics (the operator's); the admin
        // key too, but for the jobs (tenants').
        let tenant = server.request_with_key("GET", path, Some(server.key()));
        let expected = if path == "/metrics" { 403 } else { 200 };
        assert_eq!(tenant.status, expected, "{path}: {}", tenant.text);
        let admin = server.request_with_key("GET", path, Some(server.admin_key()));
        let expected = if path == "/v1/jobs" { 403 } else { 200 };
        assert_eq!(admin.status, expected, "{path}: {}", admin.text);
        if path == "/metrics" {
            assert_eq!(tenant.status, 403, "the host's metrics are the operator's");
        }
    }
    // A submission without a key is refused before its body is read or a job made.
    let submitted = server.request_with_key("POST", "/v1/jobs", None);
    assert_eq!(submitted.status, 401, "{}", submitted.text);
    assert_eq!(
        server.get("/v1/status").json["scheduler"]["accepted"],
        0,
        "nothing was accepted"
    );

    // Once the tasks have loaded (`/readyz` answers 503 before), all three answer without a key.
    server.loaded_tasks();
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let open = server.request_with_key("GET", path, None);
        assert_eq!(open.status, 200, "{path}: {}", open.text);
    }
}

#[test]
fn the_first_start_writes_private_key_files_and_the_document_names_the_scheme() {
    use std::os::unix::fs::PermissionsExt;
    let server = server();
    for name in ["default.key", "admin.key", "tenants.json"] {
        let file = server.data_dir().join(name);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    assert!(server.key().starts_with("th_") && server.key().len() == 67);
    assert!(server.admin_key().starts_with("th_admin_"));
    let tenants = std::fs::read_to_string(server.data_dir().join("tenants.json")).unwrap();
    assert!(
        !tenants.contains(&server.key()[3..]),
        "only the key's hash is kept"
    );
    assert!(
        server.log().contains("default.key"),
        "the log says where the key is"
    );

    let document: Value = server.get("/openapi.json").json;
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let submit = &document["paths"]["/v1/jobs"]["post"];
    assert_eq!(submit["security"][0]["bearer"], serde_json::json!([]));
    assert!(submit["responses"]["401"].is_object(), "{submit}");
    assert!(
        document["paths"]["/healthz"]["get"]
            .get("security")
            .is_none()
    );
}

#[test]
fn the_cli_reads_the_default_key_of_the_data_dir_or_takes_one_given() {
    let server = server();
    let cli = |args: &[&str], key: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_taskhost"));
        command
            .args(["job", "list", "--server", server.url()])
            .args(args)
            .env_remove("TASKHOST_KEY")
            .env_remove("TASKHOST_DATA_DIR");
        if let Some(key) = key {
            command.env("TASKHOST_KEY", key);
        }
        command.output().unwrap()
    };
    let data_dir = server.data_dir();
    let found = cli(&["--data-dir", data_dir.to_str().unwrap()], None);
    assert!(found.status.success(), "{found:?}");
    assert!(cli(&[], Some(server.key())).status.success());

    let empty = tempfile::tempdir().unwrap();
    let keyless = cli(&["--data-dir", empty.path().to_str().unwrap()], None);
    assert!(!keyless.status.success());
    let stderr = String::from_utf8_lossy(&keyless.stderr);
    assert!(
        stderr.contains("unauthorized") && stderr.contains("default.key"),
        "{stderr}"
    );
}

#[test]
fn with_auth_off_a_keyless_request_acts_as_the_operator_and_the_default_tenant() {
    let server = crate::server_with(&["--auth", "off"]);
    assert!(
        server.log().contains("authentication is off"),
        "warned at start"
    );
    let job =
        serde_json::json!({"task": "uppercase", "input": {"text": "open"}, "wait_ms": 60_000});
    let anyone = |method: &str, path: &str| server.request_with_key(method, path, None);
    let submitted = server.send_json_with_key("POST", "/v1/jobs", &job, "");
    assert_eq!(submitted.status, 401, "an empty key is still a wrong key");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut keyless = agent
        .post(format!("{}/v1/jobs", server.url()))
        .header("content-type", "application/json")
        .send(job.to_string())
        .unwrap();
    assert_eq!(keyless.status(), 200);
    let record: serde_json::Value =
        serde_json::from_str(&keyless.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(record["output"]["upper"], "OPEN", "{record}");
    assert_eq!(record["tenant"], "default", "{record}");
    let listing = anyone("GET", "/v1/jobs");
    assert_eq!(
        listing.json["jobs"].as_array().unwrap().len(),
        1,
        "{}",
        listing.text
    );
    assert_eq!(anyone("GET", "/metrics").status, 200);
    assert!(anyone("GET", "/v1/status").json["scheduler"].is_object());
    assert_eq!(anyone("GET", "/v1/admin/tenants").status, 200);
    // A key, when sent, is still checked.
    let wrong = format!("th_{}", "1".repeat(64));
    assert_eq!(
        server
            .request_with_key("GET", "/v1/jobs", Some(&wrong))
            .status,
        401
    );
}

#[test]
fn auth_off_beyond_loopback_is_refused_unless_confirmed() {
    let check = |extra: &[&str]| {
        let data_dir = tempfile::tempdir().unwrap();
        Command::new(env!("CARGO_BIN_EXE_taskhost"))
            .args([
                "config",
                "check",
                "--auth",
                "off",
                "--listen",
                "0.0.0.0:7070",
            ])
            .args(["--tasks-dir", taskhost_tests::fixtures::TASKS_DIR])
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = check(&[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--auth is off on 0.0.0.0:7070")
            && stderr.contains("--auth-off-beyond-loopback"),
        "{stderr}"
    );
    let confirmed = check(&["--auth-off-beyond-loopback", "true"]);
    assert!(confirmed.status.success(), "{confirmed:?}");
}
