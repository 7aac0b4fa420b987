//! A real `taskhost serve` process on a free loopback port, and a small HTTP client for it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The compiled-component cache of test servers that do not choose their own.
const SHARED_CACHE_DIR: &str = concat!(env!("OUT_DIR"), "/cache");

/// How long a server may take to compile its tasks and start listening.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A `taskhost serve` process, killed when dropped.
pub struct Server {
    child: Option<Child>,
    base: String,
    /// Sends the `default` tenant's key with every request that has no `Authorization` (the
    /// admin key to `/v1/status` and `/metrics`, which give the whole host's state to it).
    agent: ureq::Agent,
    /// Sends no key but what a request has.
    anonymous: ureq::Agent,
    /// The `default` tenant's key, which the server wrote on its first start (empty if the
    /// config file declares tenants: then there is no `default` tenant).
    key: String,
    /// The admin key, which the server wrote on its first start.
    admin_key: String,
    data_dir: tempfile::TempDir,
    /// The command line it was started with, to start it again.
    command: Vec<String>,
}

/// An HTTP response: status, headers of interest, and the body as JSON (or `Value::Null` when
/// the body is not JSON; `text` has it as sent).
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, parsed as JSON.
    pub json: Value,
    /// The body as text.
    pub text: String,
}

impl Response {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Server {
    /// Starts `binary serve` on `127.0.0.1:0` with `tasks_dir`, a fresh data directory and
    /// the tests' shared cache directory (unless `extra_args` has `--cache-dir`), and waits
    /// for its `listening on` line. Extra flags go after the standard ones.
    pub fn start(binary: &Path, tasks_dir: &str, extra_args: &[&str]) -> Self {
        Self::start_wrapped(&[], binary, tasks_dir, extra_args)
    }

    /// Like [`Server::start`], but runs the server through `wrapper` (a command that ends by
    /// executing the server command it is given as its arguments, e.g. a shell that first
    /// sets a `ulimit`).
    pub fn start_wrapped(
        wrapper: &[&str],
        binary: &Path,
        tasks_dir: &str,
        extra_args: &[&str],
    ) -> Self {
        let data_dir = tempfile::tempdir().expect("creating a data dir");
        let mut command: Vec<String> = wrapper.iter().map(|arg| arg.to_string()).collect();
        command.push(binary.to_str().expect("a UTF-8 path").to_owned());
        command.extend(
            ["serve", "--listen", "127.0.0.1:0", "--tasks-dir", tasks_dir].map(String::from),
        );
        command.push("--data-dir".into());
        command.push(server_data(&data_dir).to_str().unwrap().to_owned());
        if !extra_args.contains(&"--cache-dir") {
            // Compiled components are shared between test servers (the cache is safe to
            // share); tests of the cache itself pass a directory of their own.
            command.extend(["--cache-dir".to_owned(), SHARED_CACHE_DIR.to_owned()]);
        }
        command.extend(extra_args.iter().map(|arg| arg.to_string()));
        Self::spawn(data_dir, command)
    }

    /// Stops the server (SIGKILL) and starts it again, with the same command line and data
    /// directory, on a new port.
    pub fn restart(mut self) -> Self {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        Self::spawn(data_dir, std::mem::take(&mut self.command))
    }

    /// Runs `command` (a server's), logging into `data_dir`, and waits for its `listening
    /// on` line.
    fn spawn(data_dir: tempfile::TempDir, command: Vec<String>) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.path().join("server.log"))
            .unwrap();
        let (program, args) = command.split_first().expect("a command");
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {program}: {error}"));

        let stdout = child.stdout.take().unwrap();
        // Reads the first line only; the rest of stdout is left unread (the server prints
        // nothing else there).
        let (first_line, read) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = first_line.send(line);
        });
        let line = read.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let base = match line.trim().strip_prefix("listening on ") {
            Some(url) => url.to_owned(),
            None => {
                let _ = child.kill();
                let log = std::fs::read_to_string(data_dir.path().join("server.log"));
                panic!(
                    "server did not start: first line {line:?}, log:\n{}",
                    log.unwrap_or_default()
                );
            }
        };
        let read_key = |file: &str| {
            let path = server_data(&data_dir).join(file);
            std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
        };
        // No `default` tenant (and no key) when the config file declares tenants.
        let key = std::fs::read_to_string(server_data(&data_dir).join("default.key"));
        let (key, admin_key) = (key.unwrap_or_default(), read_key("admin.key"));
        Self {
            child: Some(child),
            base,
            agent: agent(Some((&key, &admin_key))),
            anonymous: agent(None),
            key,
            admin_key,
            data_dir,
            command,
        }
    }

    /// The `default` tenant's API key, as `Authorization: Bearer` sends it.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The server's data directory (`--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        server_data(&self.data_dir)
    }

    /// The admin key, which the server wrote on its first start.
    pub fn admin_key(&self) -> &str {
        &self.admin_key
    }

    /// `method path` sent with `Authorization: Bearer key`, or with no `Authorization` at all.
    pub fn request_with_key(&self, method: &str, path: &str, key: Option<&str>) -> Response {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-length", "0");
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let request = request.body(()).expect("a valid request");
        self.answer(method, path, self.anonymous.run(request))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server stopped").id()
    }

    /// The server's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The CPU time the server's process has used so far (user and system).
    pub fn cpu_time(&self) -> Duration {
        let pid = self.child.as_ref().expect("server running").id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // Fields after the command (in parentheses, which may hold spaces): utime and stime
        // are the 14th and 15th, in clock ticks of Linux's fixed USER_HZ, 100 a second.
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// The server's resident memory now, in bytes (`VmRSS` of its process).
    pub fn rss_bytes(&self) -> u64 {
        self.proc_kib("status", "VmRSS:") << 10
    }

    /// The most memory the server has had resident since it started (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.proc_kib("status", "VmHWM:") << 10
    }

    /// The server's proportional set size, in bytes: its resident memory with each page
    /// counted once however many times it is mapped. (RSS counts an instance pool's memory
    /// image once per slot that maps it: thousands of times the same few physical pages.)
    pub fn pss_bytes(&self) -> u64 {
        self.proc_kib("smaps_rollup", "Pss:") << 10
    }

    /// The value, in KiB, of the `field` line of the server process's `/proc/PID/file`.
    fn proc_kib(&self, file: &str, field: &str) -> u64 {
        let pid = self.child.as_ref().expect("server running").id();
        let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/{file}"))
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        self.answer(
            "GET",
            path,
            self.agent.get(format!("{}{path}", self.base)).call(),
        )
    }

    /// `GET path` as Server-Sent Events, sending `Last-Event-ID: last_event_id` if given: the
    /// open stream, or the response when the server answers with something else.
    pub fn events(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<crate::EventStream, Box<Response>> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = self.answered("GET", path, request.call());
        let is_stream = response
            .headers()
            .get("content-type")
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        if response.status() == 200 && is_stream {
            Ok(crate::EventStream::new(Box::new(
                response.into_body().into_reader(),
            )))
        } else {
            Err(Box::new(into_response(response)))
        }
    }

    /// The task list (`GET /v1/tasks`) once no task is loading.
    pub fn loaded_tasks(&self) -> Value {
        self.tasks_when(|list| list["loading"].as_array().is_some_and(Vec::is_empty))
    }

    /// The task list (the shared tasks, as the operator sees them) once `ready` holds for it,
    /// following its changes with long polls, for up to two minutes.
    pub fn tasks_when(&self, ready: impl Fn(&Value) -> bool) -> Value {
        self.tasks_when_as(&self.admin_key, ready)
    }

    /// The task list the holder of `key` sees once `ready` holds for it, as
    /// [`tasks_when`](Self::tasks_when).
    pub fn tasks_when_as(&self, key: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut list = self.request_with_key("GET", "/v1/tasks", Some(key)).json;
        while !ready(&list) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the task list never became ready: {list}");
            let revision = &list["revision"];
            list = self
                .request_with_key(
                    "GET",
                    &format!("/v1/tasks?since={revision}&wait_ms={}", left.as_millis()),
                    Some(key),
                )
                .json;
        }
        list
    }

    /// `method path` with no body (any method, e.g. `PATCH` or `OPTIONS`).
    ///
    /// The empty body is declared (`Content-Length: 0`), as curl sends it; ureq would send a
    /// `PUT`, `POST` or `PATCH` body chunked, its end in a second write.
    pub fn request(&self, method: &str, path: &str) -> Response {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-length", "0")
            .body(())
            .expect("a valid request");
        self.answer(method, path, self.agent.run(request))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Response {
        self.answer(
            "DELETE",
            path,
            self.agent.delete(format!("{}{path}", self.base)).call(),
        )
    }

    /// `method path` with JSON `body`, sent with `Authorization: Bearer key`.
    pub fn send_json_with_key(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        key: &str,
    ) -> Response {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .body(body.to_string())
            .expect("a valid request");
        self.answer(method, path, self.anonymous.run(request))
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post(path, "application/json", &body.to_string())
    }

    /// `POST path` with any body and content type.
    pub fn post(&self, path: &str, content_type: &str, body: &str) -> Response {
        self.post_with_headers(path, content_type, body, &[])
    }

    /// `PUT path` with `body` as `content_type`.
    pub fn put(&self, path: &str, content_type: &str, body: &[u8]) -> Response {
        let request = self
            .agent
            .put(format!("{}{path}", self.base))
            .header("content-type", content_type);
        self.answer("PUT", path, request.send(body))
    }

    /// `PUT path` with a component (`application/wasm`), sent with `Authorization: Bearer
    /// key`.
    pub fn put_wasm_with_key(&self, path: &str, component: &[u8], key: &str) -> Response {
        let request = self
            .anonymous
            .put(format!("{}{path}", self.base))
            .header("content-type", "application/wasm")
            .header("authorization", format!("Bearer {key}"));
        self.answer("PUT", path, request.send(component))
    }

    /// `POST path` with a body of `content_type` and extra `headers`.
    pub fn post_with_headers(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.answer("POST", path, request.send(body))
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the server to exit; returns whether it
    /// exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let mut child = self.child.take().expect("server already stopped");
        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(signalled.success(), "kill -TERM failed");
        let (exited, exit) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = exited.send(child.wait());
        });
        match exit.recv_timeout(timeout) {
            Ok(Ok(status)) => status.success(),
            _ => panic!(
                "server did not exit within {timeout:?}; log:\n{}",
                self.log()
            ),
        }
    }

    /// The response to `method path`, read whole.
    fn answer(
        &self,
        method: &str,
        path: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Response {
        into_response(self.answered(method, path, result))
    }

    /// The response to `method path`; a request that got none fails the test with the
    /// server's log, which says why the server closed the connection or exited.
    fn answered(
        &self,
        method: &str,
        path: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> ureq::http::Response<ureq::Body> {
        result.unwrap_or_else(|error| {
            panic!(
                "{method} {path} got no response: {error}; server log:\n{}",
                self.log()
            )
        })
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("server.log")
    }
}

/// The server's data directory (`--data-dir`) in the test's directory `dir`.
fn server_data(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data")
}

/// The paths the test server's agent sends the admin key to: they show the whole host.
const ADMIN_PATHS: [&str; 2] = ["/v1/status", "/metrics"];

/// Whether the test server's agent sends the admin key to `path`: to [`ADMIN_PATHS`], and to
/// the tasks (the server's tasks are the operator's, shared by every tenant; a tenant's own
/// uploads are tested with its key, sent explicitly).
fn for_admin(path: &str) -> bool {
    ADMIN_PATHS.contains(&path) || path == "/v1/tasks" || path.starts_with("/v1/tasks/")
}

/// An agent for a test server, sending `keys` (if any: a tenant's, and the admin key where
/// [`for_admin`]) as `Authorization: Bearer` with every request that has no `Authorization`
/// of its own. A fresh connection per request: a server may close a connection after
/// answering a request whose body it did not read (a 415, say), and a pooled connection
/// closed that way fails the next request sent on it, before the server sees it.
fn agent(keys: Option<(&str, &str)>) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .max_idle_connections(0);
    let config = match keys {
        Some((tenant, admin)) => {
            let bearer = |key: &str| -> ureq::http::HeaderValue {
                format!("Bearer {key}")
                    .parse()
                    .expect("a key is a header value")
            };
            let (tenant, admin) = (bearer(tenant), bearer(admin));
            config.middleware(
                move |mut request: ureq::http::Request<ureq::SendBody>,
                      next: ureq::middleware::MiddlewareNext| {
                    let for_admin = for_admin(request.uri().path());
                    let headers = request.headers_mut();
                    if !headers.contains_key("authorization") {
                        let key = if for_admin { &admin } else { &tenant };
                        headers.insert("authorization", key.clone());
                    }
                    next.handle(request)
                },
            )
        }
        None => config,
    };
    config.build().into()
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn into_response(mut response: ureq::http::Response<ureq::Body>) -> Response {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let location = header("location");
    let retry_after = header("retry-after");
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    // However large: tests read listings of many megabytes.
    let text = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_string()
        .expect("reading the body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Response {
        status,
        location,
        retry_after,
        headers,
        json,
        text,
    }
}
