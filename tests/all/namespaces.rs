//! Tenants' own tasks: a tenant uploads into a namespace nobody else sees, where a name
//! shadows the shared task of that name for that tenant alone; the compiled code stays
//! shared by content; uploads reload when their file changes, survive a restart, and go with
//! their tenant.

use serde_json::{Value, json};
use taskhost_tests::{Hostile, Response, Server, fixtures};

use crate::hostiles_with;

/// Creates the tenant `id`; one of its keys.
fn tenant(server: &Server, id: &str) -> String {
    let admin = server.admin_key();
    let created =
        server.send_json_with_key("POST", "/v1/admin/tenants", &json!({ "id": id }), admin);
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("/v1/admin/tenants/{id}/keys");
    let issued = server.request_with_key("POST", &path, Some(admin));
    assert_eq!(issued.status, 201, "{}", issued.text);
    issued.json["key"].as_str().unwrap().to_owned()
}

/// Uploads `component` as the task `name` with `key`.
fn upload(server: &Server, key: &str, name: &str, component: &[u8]) -> Response {
    server.put_wasm_with_key(&format!("/v1/tasks/{name}"), component, key)
}

/// Runs `task` on `{"text": text}` with `key`; the response.
fn run(server: &Server, key: &str, task: &str, text: &str) -> Response {
    let job = json!({"task": task, "input": {"text": text}, "wait_ms": 60_000});
    server.send_json_with_key("POST", "/v1/jobs", &job, key)
}

/// The task called `name` in the list `key` sees, if any.
fn listed(server: &Server, key: &str, name: &str) -> Option<Value> {
    let list = server.request_with_key("GET", "/v1/tasks", Some(key)).json;
    let tasks = list["tasks"].as_array().unwrap();
    tasks.iter().find(|task| task["name"] == name).cloned()
}

/// The code of the error in `response`, with its status.
fn error(response: &Response) -> (u16, &Value) {
    (response.status, &response.json["error"]["code"])
}

/// How many components the host has brought into memory: compiled, or loaded from the disk
/// cache (which test servers share).
fn compiles(server: &Server) -> u64 {
    let cache = &server.get("/v1/status").json["cache"];
    cache["compiles"].as_u64().unwrap() + cache["disk_hits"].as_u64().unwrap()
}

#[test]
fn a_tenant_s_uploads_are_its_own_and_shadow_shared_names_for_it_alone() {
    let server = hostiles_with(&[]);
    let (alpha, beta) = (server.key().to_owned(), tenant(&server, "beta"));
    let wordcount = std::fs::read(fixtures::WORDCOUNT).unwrap();

    // Alpha's `uppercase` is its own upload of wordcount; beta still runs the shared one.
    let shadow = upload(&server, &alpha, "uppercase", &wordcount);
    assert_eq!(
        shadow.status, 201,
        "new in alpha's namespace: {}",
        shadow.text
    );
    assert_eq!(shadow.json["origin"], "tenant");
    let theirs = run(&server, &alpha, "uppercase", "two words");
    assert_eq!(
        theirs.json["output"],
        json!({"lines": 1, "words": 2, "chars": 9})
    );
    let shared = run(&server, &beta, "uppercase", "two words");
    assert_eq!(
        shared.json["output"]["upper"], "TWO WORDS",
        "{}",
        shared.text
    );
    let shared_wordcount = listed(&server, server.admin_key(), "wordcount").unwrap();
    let alpha_sees = listed(&server, &alpha, "uppercase").unwrap();
    assert_eq!(alpha_sees["origin"], "tenant");
    assert_eq!(alpha_sees["hash"], shared_wordcount["hash"]);
    assert_eq!(
        listed(&server, &beta, "uppercase").unwrap()["origin"],
        "shared"
    );
    assert_eq!(
        listed(&server, server.admin_key(), "uppercase").unwrap()["origin"],
        "shared",
        "the operator's list is the shared tasks"
    );

    // A new name is alpha's alone, however it is reached.
    let before = compiles(&server);
    let fresh = Hostile {
        output_bytes: Some(4321),
        ..Hostile::default()
    }
    .component();
    assert_eq!(upload(&server, &alpha, "shout", &fresh).status, 201);
    let hidden = server.request_with_key("GET", "/v1/tasks/shout", Some(&beta));
    assert_eq!(error(&hidden), (404, &json!("unknown_task")));
    let job = run(&server, &beta, "shout", "x");
    assert_eq!(error(&job), (404, &json!("unknown_task")), "{}", job.text);
    let deleted = server.request_with_key("DELETE", "/v1/tasks/shout", Some(&beta));
    assert_eq!(error(&deleted), (404, &json!("unknown_task")));
    assert!(listed(&server, &beta, "shout").is_none());
    assert!(listed(&server, server.admin_key(), "shout").is_none());
    assert_eq!(server.get("/v1/tasks/shout").status, 404);
    assert!(
        server
            .request_with_key("GET", "/v1/tasks/shout", Some(&alpha))
            .status
            == 200,
        "alpha's still"
    );

    // The same bytes under beta's name compile nothing more: compiled code is shared.
    assert_eq!(upload(&server, &beta, "mine", &fresh).status, 201);
    assert_eq!(
        compiles(&server),
        before + 1,
        "one compile for both uploads"
    );
    let beta_job = server.send_json_with_key(
        "POST",
        "/v1/jobs",
        &json!({"task": "mine", "wait_ms": 60_000}),
        &beta,
    );
    assert_eq!(beta_job.json["status"], "succeeded", "{}", beta_job.text);

    // Deleting alpha's `uppercase` uncovers the shared one; the shared one it cannot delete.
    let gone = server.request_with_key("DELETE", "/v1/tasks/uppercase", Some(&alpha));
    assert_eq!(gone.status, 204, "{}", gone.text);
    let again = run(&server, &alpha, "uppercase", "two words");
    assert_eq!(again.json["output"]["upper"], "TWO WORDS", "{}", again.text);
    let refused = server.request_with_key("DELETE", "/v1/tasks/uppercase", Some(&alpha));
    assert_eq!(error(&refused), (404, &json!("unknown_task")));
    assert_eq!(
        server.get("/v1/tasks/uppercase").status,
        200,
        "still shared"
    );
}

#[test]
fn a_tenant_s_uploads_reload_survive_a_restart_and_go_with_the_tenant() {
    let server = hostiles_with(&[]);
    let beta = tenant(&server, "beta");
    let uppercase = std::fs::read(fixtures::UPPERCASE).unwrap();
    let wordcount = std::fs::read(fixtures::WORDCOUNT).unwrap();
    assert_eq!(upload(&server, &beta, "mine", &uppercase).status, 201);
    let dir = server.data_dir().join("tenants/beta/tasks");
    assert!(dir.join("mine.wasm").is_file(), "kept in the tenant's data");

    // A file saved over the upload serves at once (hot reload), for beta alone.
    let wordcount_hash = listed(&server, server.admin_key(), "wordcount").unwrap()["hash"].clone();
    let saved = dir.join(".mine.wasm.saving");
    std::fs::write(&saved, &wordcount).unwrap();
    std::fs::rename(&saved, dir.join("mine.wasm")).unwrap();
    server.tasks_when_as(&beta, |list| {
        list["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|task| task["name"] == "mine" && task["hash"] == wordcount_hash)
    });
    let counted = run(&server, &beta, "mine", "a b c");
    assert_eq!(counted.json["output"]["words"], 3, "{}", counted.text);

    let server = server.restart();
    let after = server.request_with_key("GET", "/v1/tasks/mine", Some(&beta));
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(after.json["origin"], "tenant");
    assert_eq!(after.json["hash"], wordcount_hash);

    let deleted =
        server.request_with_key("DELETE", "/v1/admin/tenants/beta", Some(server.admin_key()));
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(
        !server.data_dir().join("tenants/beta").exists(),
        "a deleted tenant's uploads are deleted"
    );
    // A tenant made again under the same id starts empty.
    let beta = tenant(&server, "beta");
    let missing = server.request_with_key("GET", "/v1/tasks/mine", Some(&beta));
    assert_eq!(error(&missing), (404, &json!("unknown_task")));
}
