//! Uploading tasks over HTTP: checked before they serve, stored beside dropped-in files.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::json;
use taskhost_tests::{Server, fixtures};

use crate::run_job;

/// A server over the tasks directory `tasks`, with extra `serve` flags.
pub(crate) fn server_over(tasks: &Path, flags: &[&str]) -> Server {
    Server::start(
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        tasks.to_str().unwrap(),
        flags,
    )
}

#[test]
fn an_uploaded_task_serves_and_a_deleted_one_is_gone() {
    let tasks = tempfile::tempdir().unwrap();
    let server = server_over(tasks.path(), &[]);
    let component = std::fs::read(fixtures::UPPERCASE).unwrap();

    let created = server.put("/v1/tasks/shout", "application/wasm", &component);
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["name"], "shout");
    assert_eq!(created.json["size"], component.len());
    assert!(
        tasks.path().join("shout.wasm").exists(),
        "stored in the tasks dir"
    );
    let job = run_job(&server, json!({"task": "shout", "input": {"text": "up"}}));
    assert_eq!(job["output"]["upper"], "UP");
    assert_eq!(job["hash"], created.json["hash"]);

    let again = server.put("/v1/tasks/shout", "application/wasm", &component);
    assert_eq!(
        again.status, 200,
        "a second upload replaces: {}",
        again.text
    );
    assert_eq!(
        server.get("/v1/tasks/shout").json["hash"],
        created.json["hash"]
    );

    let deleted = server.delete("/v1/tasks/shout");
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(!tasks.path().join("shout.wasm").exists());
    let gone = server.post_json("/v1/jobs", &json!({"task": "shout"}));
    assert_eq!(gone.json["error"]["code"], "unknown_task", "{}", gone.text);
    assert_eq!(server.delete("/v1/tasks/shout").status, 404);
}

#[test]
fn uploads_that_cannot_serve_are_refused_with_the_reason() {
    let tasks = tempfile::tempdir().unwrap();
    let server = server_over(tasks.path(), &["--max-upload-mib", "1"]);
    let refused = |name: &str, content_type: &str, body: &[u8]| {
        let response = server.put(&format!("/v1/tasks/{name}"), content_type, body);
        (
            response.status,
            response.json["error"]["code"].clone(),
            response.text,
        )
    };

    let (status, code, _) = refused("junk", "application/wasm", b"not wasm at all");
    assert_eq!((status, code), (400, json!("invalid_component")));
    let (status, code, text) = refused("core", "application/wasm", b"\0asm\x01\0\0\0");
    assert_eq!((status, code), (400, json!("invalid_component")));
    assert!(text.contains("core WebAssembly module"), "{text}");
    // An empty component is valid, but exports no `run`: not a task.
    let (status, code, text) = refused("empty", "application/wasm", b"\0asm\x0d\0\x01\0");
    assert_eq!((status, code), (422, json!("invalid_component")), "{text}");
    let (status, code, _) = refused("a.b", "application/wasm", b"\0asm\x0d\0\x01\0");
    assert_eq!((status, code), (400, json!("invalid_task_name")));
    let (status, code, _) = refused("plain", "text/plain", b"\0asm\x0d\0\x01\0");
    assert_eq!((status, code), (415, json!("unsupported_media_type")));
    // Refused from its Content-Length, before any of the body is sent.
    let mut stream = TcpStream::connect(server.url().trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "PUT /v1/tasks/huge HTTP/1.1\r\nhost: test\r\ncontent-type: application/wasm\r\n\
         authorization: Bearer {}\r\ncontent-length: {}\r\n\r\n",
        server.admin_key(),
        2 << 20
    )
    .unwrap();
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).unwrap();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");

    let list = server.loaded_tasks();
    assert!(list["tasks"].as_array().unwrap().is_empty(), "{list}");
    let files = std::fs::read_dir(tasks.path()).unwrap().count();
    assert_eq!(files, 0, "nothing refused was written");
}
