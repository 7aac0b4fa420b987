//! The admin API: tenants and their keys, managed with the admin key, kept in the data
//! directory across restarts; a revoked key is refused on the next request.

use serde_json::{Value, json};
use taskhost_tests::{Response, Server};

use crate::server;

/// `method path` with the admin key and a JSON `body` (or none).
fn admin(server: &Server, method: &str, path: &str, body: Option<Value>) -> Response {
    as_key(server, server.admin_key(), method, path, body)
}

/// `method path` with `key` and a JSON `body` (or none).
fn as_key(server: &Server, key: &str, method: &str, path: &str, body: Option<Value>) -> Response {
    match body {
        Some(body) => server.send_json_with_key(method, path, &body, key),
        None => server.request_with_key(method, path, Some(key)),
    }
}

/// Runs a job as the holder of `key`; the response.
fn run_as(server: &Server, key: &str) -> Response {
    let job = json!({"task": "uppercase", "input": {"text": "mine"}, "wait_ms": 60_000});
    as_key(server, key, "POST", "/v1/jobs", Some(job))
}

#[test]
fn the_admin_creates_tenants_and_issues_and_revokes_their_keys() {
    let server = server();
    let created = admin(
        &server,
        "POST",
        "/v1/admin/tenants",
        Some(json!({"id": "acme"})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["id"], "acme");
    assert_eq!(created.json["keys"], json!([]));
    let again = admin(
        &server,
        "POST",
        "/v1/admin/tenants",
        Some(json!({"id": "acme"})),
    );
    assert_eq!(
        (again.status, &again.json["error"]["code"]),
        (409, &json!("tenant_exists"))
    );
    let bad = admin(
        &server,
        "POST",
        "/v1/admin/tenants",
        Some(json!({"id": "Not_Valid"})),
    );
    assert_eq!(
        (bad.status, &bad.json["error"]["code"]),
        (400, &json!("invalid_tenant_id"))
    );

    let issued = admin(&server, "POST", "/v1/admin/tenants/acme/keys", None);
    assert_eq!(issued.status, 201, "{}", issued.text);
    let key = issued.json["key"].as_str().unwrap().to_owned();
    let key_id = issued.json["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("th_"), "{key}");
    let job = run_as(&server, &key);
    assert_eq!(job.status, 200, "{}", job.text);
    assert_eq!(job.json["output"]["upper"], "MINE");

    // The listing names the key by id, never the key itself.
    let list = admin(&server, "GET", "/v1/admin/tenants", None);
    assert_eq!(list.status, 200);
    let ids: Vec<&str> = list.json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tenant| tenant["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "default"]);
    assert!(!list.text.contains(&key[3..]), "{}", list.text);
    let acme = admin(&server, "GET", "/v1/admin/tenants/acme", None);
    assert_eq!(acme.json["keys"][0]["id"], key_id.as_str(), "{}", acme.text);

    // A tenant's key does not open the admin routes.
    let forbidden = as_key(&server, &key, "GET", "/v1/admin/tenants", None);
    assert_eq!(
        (forbidden.status, &forbidden.json["error"]["code"]),
        (403, &json!("forbidden"))
    );
    let forbidden = as_key(
        &server,
        server.key(),
        "POST",
        "/v1/admin/tenants/acme/keys",
        None,
    );
    assert_eq!(forbidden.status, 403, "{}", forbidden.text);

    // Revoked: refused from the next request on.
    let path = format!("/v1/admin/tenants/acme/keys/{key_id}");
    assert_eq!(admin(&server, "DELETE", &path, None).status, 204);
    assert_eq!(run_as(&server, &key).status, 401);
    let twice = admin(&server, "DELETE", &path, None);
    assert_eq!(
        (twice.status, &twice.json["error"]["code"]),
        (404, &json!("key_not_found"))
    );

    // A deleted tenant's keys stop working at once too.
    let other = admin(&server, "POST", "/v1/admin/tenants/acme/keys", None);
    let other = other.json["key"].as_str().unwrap().to_owned();
    assert_eq!(run_as(&server, &other).status, 200);
    assert_eq!(
        admin(&server, "DELETE", "/v1/admin/tenants/acme", None).status,
        204
    );
    assert_eq!(run_as(&server, &other).status, 401);
    let gone = admin(&server, "GET", "/v1/admin/tenants/acme", None);
    assert_eq!(
        (gone.status, &gone.json["error"]["code"]),
        (404, &json!("tenant_not_found"))
    );
}

#[test]
fn tenants_created_over_the_admin_api_survive_a_restart() {
    let server = server();
    admin(
        &server,
        "POST",
        "/v1/admin/tenants",
        Some(json!({"id": "kept"})),
    );
    let issued = admin(&server, "POST", "/v1/admin/tenants/kept/keys", None);
    let key = issued.json["key"].as_str().unwrap().to_owned();
    let (default_key, admin_key) = (server.key().to_owned(), server.admin_key().to_owned());

    let server = server.restart();
    assert_eq!(server.key(), default_key, "the default key is reused");
    assert_eq!(server.admin_key(), admin_key, "the admin key is reused");
    assert_eq!(
        run_as(&server, &key).status,
        200,
        "the issued key still works"
    );
    let kept = admin(&server, "GET", "/v1/admin/tenants/kept", None);
    assert_eq!(kept.status, 200, "{}", kept.text);
    assert_eq!(kept.json["keys"].as_array().unwrap().len(), 1);
}

#[test]
fn the_cli_manages_tenants_with_the_admin_key_of_the_data_dir() {
    let server = server();
    let data_dir = server.data_dir();
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_taskhost"))
            .args(args)
            .args([
                "--server",
                server.url(),
                "--data-dir",
                data_dir.to_str().unwrap(),
            ])
            .env_remove("TASKHOST_KEY")
            .output()
            .unwrap();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (
            output.status.success(),
            text(&output.stdout),
            text(&output.stderr),
        )
    };
    let (ok, stdout, stderr) = cli(&["tenant", "add", "acme", "--quota", "max_tasks=3"]);
    assert!(ok, "{stdout}{stderr}");
    let quotas_after = |args: &[&str]| {
        let (ok, quotas, stderr) = cli(args);
        assert!(ok, "{quotas}{stderr}");
        serde_json::from_str::<Value>(&quotas).unwrap()
    };
    assert_eq!(
        quotas_after(&["tenant", "quotas", "acme"]),
        json!({"max_tasks": 3})
    );
    assert_eq!(
        quotas_after(&["tenant", "quotas", "acme", "--quota", "weight=2"]),
        json!({"weight": 2}),
        "replaced whole"
    );
    assert_eq!(
        quotas_after(&["tenant", "quotas", "acme", "--clear"]),
        json!({})
    );
    let (ok, _, stderr) = cli(&["tenant", "quotas", "acme", "--quota", "max_task=1"]);
    assert!(
        !ok && stderr.contains("unknown field `max_task`"),
        "{stderr}"
    );
    let (ok, key, stderr) = cli(&["tenant", "key", "new", "acme"]);
    assert!(ok && key.trim().starts_with("th_"), "{key}{stderr}");
    assert!(stderr.contains("not shown again"), "{stderr}");
    assert_eq!(run_as(&server, key.trim()).status, 200);

    let (ok, table, _) = cli(&["tenant", "list"]);
    assert!(
        ok && table.contains("acme") && table.contains("default"),
        "{table}"
    );
    let key_id = admin(&server, "GET", "/v1/admin/tenants/acme", None).json["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(table.contains(&key_id), "{table}");
    assert!(cli(&["tenant", "key", "revoke", "acme", &key_id]).0);
    assert_eq!(run_as(&server, key.trim()).status, 401);
    let (ok, _, stderr) = cli(&["tenant", "rm", "nobody"]);
    assert!(!ok && stderr.contains("tenant_not_found"), "{stderr}");
    assert!(cli(&["tenant", "rm", "acme"]).0);
}

#[test]
fn tenants_declared_in_the_config_file_hold_their_keys_and_the_default_quotas_apply() {
    let generated = std::process::Command::new(env!("CARGO_BIN_EXE_taskhost"))
        .args(["tenant", "key", "generate"])
        .output()
        .unwrap();
    let key = String::from_utf8(generated.stdout)
        .unwrap()
        .trim()
        .to_owned();
    let hint = String::from_utf8(generated.stderr).unwrap();
    let hashes = hint
        .split("key_hashes = ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no hash in {hint:?}"));
    assert!(
        key.starts_with("th_") && !hint.contains(&key),
        "{key} {hint}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taskhost.toml");
    std::fs::write(
        &file,
        format!(
            "[default_quotas]\nmax_timeout_ms = 2000\n\n\
             [[tenants]]\nid = \"acme\"\nkey_hashes = {hashes}\nquotas = {{ max_memory_mib = 64 }}\n"
        ),
    )
    .unwrap();
    let server = crate::server_with(&["--config", file.to_str().unwrap()]);
    assert!(
        !server.data_dir().join("default.key").exists(),
        "no default tenant beside declared ones"
    );
    assert_eq!(run_as(&server, &key).status, 200, "the declared key works");

    let long = json!({"task": "noop", "timeout_ms": 5000});
    let refused = as_key(&server, &key, "POST", "/v1/jobs", Some(long));
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.json["error"]["quota"]["name"], "max_timeout_ms");
    assert_eq!(
        refused.json["error"]["quota"]["limit"], 2000,
        "the default quota"
    );
    let big = json!({"task": "noop", "memory_mib": 65});
    let refused = as_key(&server, &key, "POST", "/v1/jobs", Some(big));
    assert_eq!(
        refused.json["error"]["quota"]["name"], "max_memory_mib",
        "its own"
    );

    let shown = admin(&server, "GET", "/v1/admin/tenants/acme", None);
    assert_eq!(shown.json["origin"], "config", "{}", shown.text);
    let change = json!({"quotas": {}});
    let patched = admin(&server, "PATCH", "/v1/admin/tenants/acme", Some(change));
    assert_eq!(
        (patched.status, &patched.json["error"]["code"]),
        (409, &json!("tenant_declared")),
        "{}",
        patched.text
    );
    for (method, path) in [
        ("DELETE", "/v1/admin/tenants/acme"),
        ("POST", "/v1/admin/tenants/acme/keys"),
    ] {
        assert_eq!(
            admin(&server, method, path, None).status,
            409,
            "{method} {path}"
        );
    }
    let created = admin(
        &server,
        "POST",
        "/v1/admin/tenants",
        Some(json!({"id": "acme"})),
    );
    assert_eq!(created.json["error"]["code"], "tenant_exists");
    let server = server.restart();
    assert_eq!(run_as(&server, &key).status, 200, "after a restart too");
}

/// A new tenant `id` and a key of its.
fn tenant_with_key(server: &Server, id: &str) -> String {
    let created = admin(server, "POST", "/v1/admin/tenants", Some(json!({"id": id})));
    assert_eq!(created.status, 201, "{}", created.text);
    let issued = admin(
        server,
        "POST",
        &format!("/v1/admin/tenants/{id}/keys"),
        None,
    );
    issued.json["key"].as_str().unwrap().to_owned()
}

#[test]
fn a_tenant_cannot_see_wait_on_cancel_or_stream_another_tenants_jobs_and_batches() {
    let server = server();
    let other = tenant_with_key(&server, "other");
    // The default tenant's: a job that runs a while, and a batch.
    let job = server.post_json(
        "/v1/jobs",
        &json!({"task": "sleep", "input": {"ms": 20_000}}),
    );
    assert_eq!(job.status, 202, "{}", job.text);
    let id = job.json["id"].as_str().unwrap().to_owned();
    let batch = server.post_json("/v1/batches", &json!({"task": "noop", "inputs": [null]}));
    let batch = batch.json["id"].as_str().unwrap().to_owned();

    let missing_job = "01a207ca-450d-700d-aa08-3dfac68c4bfa";
    let missing_batch = "01a207ca-450d-700d-aa08-3dfac68c4bfb";
    let probes = [
        (
            "GET",
            format!("/v1/jobs/{id}"),
            format!("/v1/jobs/{missing_job}"),
        ),
        (
            "GET",
            format!("/v1/jobs/{id}?wait_ms=100"),
            format!("/v1/jobs/{missing_job}?wait_ms=100"),
        ),
        (
            "DELETE",
            format!("/v1/jobs/{id}"),
            format!("/v1/jobs/{missing_job}"),
        ),
        (
            "GET",
            format!("/v1/jobs/{id}/events"),
            format!("/v1/jobs/{missing_job}/events"),
        ),
        (
            "GET",
            format!("/v1/batches/{batch}"),
            format!("/v1/batches/{missing_batch}"),
        ),
        (
            "DELETE",
            format!("/v1/batches/{batch}"),
            format!("/v1/batches/{missing_batch}"),
        ),
    ];
    for (method, theirs, nobodys) in &probes {
        let refused = as_key(&server, &other, method, theirs, None);
        let missing = as_key(&server, &other, method, nobodys, None);
        assert_eq!(refused.status, 404, "{method} {theirs}: {}", refused.text);
        // Exactly as for an id nobody has: the same code, the same message but for the id.
        assert_eq!(refused.json["error"]["code"], missing.json["error"]["code"]);
        let message = |response: &Response, id: &str| {
            response.json["error"]["message"]
                .as_str()
                .unwrap()
                .replace(id, "ID")
        };
        assert_eq!(
            message(
                &refused,
                theirs.split('/').nth(3).unwrap().split('?').next().unwrap()
            ),
            message(
                &missing,
                nobodys
                    .split('/')
                    .nth(3)
                    .unwrap()
                    .split('?')
                    .next()
                    .unwrap()
            ),
        );
    }
    let listing = as_key(&server, &other, "GET", "/v1/jobs?status=running", None);
    assert_eq!(listing.json["jobs"], json!([]), "{}", listing.text);
    let listing = as_key(
        &server,
        &other,
        "GET",
        &format!("/v1/jobs?batch={batch}"),
        None,
    );
    assert_eq!(listing.json["jobs"], json!([]), "{}", listing.text);

    // Nothing happened to them: the owner still sees its job running, and cancels it.
    let mine = server.get(&format!("/v1/jobs/{id}"));
    assert_eq!(mine.json["status"], "running", "{}", mine.text);
    assert_eq!(mine.json["tenant"], "default");
    assert_eq!(server.delete(&format!("/v1/jobs/{id}")).status, 200);
    // The admin key is no tenant's: it is refused on the jobs' routes.
    let admin_job = as_key(
        &server,
        server.admin_key(),
        "GET",
        &format!("/v1/jobs/{id}"),
        None,
    );
    assert_eq!(
        (admin_job.status, &admin_job.json["error"]["code"]),
        (403, &json!("forbidden"))
    );
}

#[test]
fn idempotency_keys_and_memoized_results_are_per_tenant() {
    let server = server();
    let other = tenant_with_key(&server, "other");
    let job = json!({"task": "wordcount", "input": {"text": "a b a"}, "wait_ms": 60_000});
    let key = [("idempotency-key", "same-key")];
    let submit = |bearer: &str| {
        let auth = format!("Bearer {bearer}");
        let headers = [key[0], ("authorization", auth.as_str())];
        server.post_with_headers("/v1/jobs", "application/json", &job.to_string(), &headers)
    };
    let (mine, theirs) = (submit(server.key()), submit(&other));
    assert_eq!(
        (mine.status, theirs.status),
        (200, 200),
        "{} {}",
        mine.text,
        theirs.text
    );
    assert_ne!(
        mine.json["id"], theirs.json["id"],
        "one key, two tenants, two jobs"
    );
    assert_eq!(theirs.json["tenant"], "other");
    // wordcount declares memoize: each tenant's second run reuses its own first, never the
    // other's.
    assert!(
        theirs.json.get("memoized_from").is_none(),
        "{}",
        theirs.text
    );
    let fresh = json!({"task": "wordcount", "input": {"text": "a b a"}, "wait_ms": 60_000});
    let again = as_key(&server, &other, "POST", "/v1/jobs", Some(fresh));
    assert_eq!(
        again.json["memoized_from"], theirs.json["id"],
        "{}",
        again.text
    );
}

#[test]
fn a_tenant_s_status_shows_its_own_jobs_and_the_admin_s_the_whole_host() {
    let server = server();
    let other = tenant_with_key(&server, "other");
    let job = json!({"task": "noop", "input": null, "wait_ms": 60_000});
    for _ in 0..3 {
        assert_eq!(server.post_json("/v1/jobs", &job).status, 200);
    }
    assert_eq!(
        as_key(&server, &other, "POST", "/v1/jobs", Some(job)).status,
        200
    );

    let mine = as_key(&server, server.key(), "GET", "/v1/status", None);
    assert_eq!(mine.json["tenant"], "default", "{}", mine.text);
    assert_eq!(mine.json["jobs"]["succeeded"], 3, "{}", mine.text);
    assert!(
        mine.json.get("scheduler").is_none(),
        "no host internals: {}",
        mine.text
    );
    let theirs = as_key(&server, &other, "GET", "/v1/status", None);
    assert_eq!(theirs.json["jobs"]["succeeded"], 1, "{}", theirs.text);
    let host = as_key(&server, server.admin_key(), "GET", "/v1/status", None);
    assert_eq!(host.json["jobs"]["succeeded"], 4, "{}", host.text);
    assert!(host.json["scheduler"].is_object());
}

#[test]
fn deleting_a_tenant_cancels_its_unfinished_jobs() {
    let server = server();
    let doomed = tenant_with_key(&server, "doomed");
    let sleeper = json!({"task": "sleep", "input": {"ms": 60_000}});
    let submitted = as_key(&server, &doomed, "POST", "/v1/jobs", Some(sleeper));
    assert_eq!(submitted.status, 202, "{}", submitted.text);
    let id = submitted.json["id"].as_str().unwrap();
    let started = as_key(
        &server,
        &doomed,
        "GET",
        &format!("/v1/jobs/{id}?wait_ms=60000&until=started"),
        None,
    );
    assert_eq!(started.json["status"], "running", "{}", started.text);

    assert_eq!(
        admin(&server, "DELETE", "/v1/admin/tenants/doomed", None).status,
        204
    );
    // Stopped at once, not a minute later: each round is a request, for at most 30 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let jobs = &server.get("/v1/status").json["jobs"];
        if jobs["running"] == 0 {
            assert_eq!(jobs["failed"], 1, "{jobs}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running: {jobs}"
        );
    }
    // The default tenant's jobs run on.
    assert_eq!(run_as(&server, server.key()).status, 200);
}
