//! The HTTP server against clients that would hold its connections: idle connections past
//! the default open-file limit, slow-loris headers, bodies that never end, more connections
//! than the cap. Each attack is met with its limit while other clients are served.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use serde_json::{Value, json};
use taskhost_tests::{Server, fixtures};

use crate::{run_job, server_with};

/// How long anything the tests wait for may take.
const BOUND: Duration = Duration::from_secs(20);

/// A connection to `server`.
fn connect(server: &Server) -> TcpStream {
    let address = server.url().strip_prefix("http://").unwrap();
    TcpStream::connect(address).expect("connecting to the server")
}

/// A response read off a raw connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    /// Header lines, names in lower case.
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self.headers.iter().filter(|(key, _)| key == name);
        found.next().map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads one response (with a `Content-Length`) from `stream`, waiting up to [`BOUND`].
fn read_response(stream: &mut TcpStream) -> Raw {
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let mut bytes = Vec::new();
    let mut byte = [0];
    while !bytes.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).expect("reading a response");
        assert_eq!(read, 1, "closed before the headers ended: {bytes:?}");
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers: Vec<_> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_lowercase(), value.trim().to_owned()))
        .collect();
    let mut response = Raw {
        status: status.parse().unwrap(),
        headers,
        body: String::new(),
    };
    let length = response.header("content-length").expect("a content-length");
    let mut body = vec![0; length.parse().unwrap()];
    stream.read_exact(&mut body).unwrap();
    response.body = String::from_utf8(body).unwrap();
    response
}

/// `GET path` on `stream`, kept alive.
fn get(stream: &mut TcpStream, path: &str) -> Raw {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: taskhost\r\n\r\n").unwrap();
    read_response(stream)
}

/// `GET path` on `stream` with API key `key`, kept alive.
fn get_with_key(stream: &mut TcpStream, path: &str, key: &str) -> Raw {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: taskhost\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    .unwrap();
    read_response(stream)
}

/// Waits (up to [`BOUND`]) for the server to close `stream`; returns how long that took. The
/// server may also reset it, when it closed with bytes of ours unread.
fn closed(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("still open after {BOUND:?}")
            }
            Err(_) => return start.elapsed(),
        }
    }
}

/// Whether `stream` is still open: nothing to read, and no end.
fn is_open(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let read = stream.read(&mut [0]);
    let open = matches!(read, Err(error) if error.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

/// `/healthz` and a real job both answer, each within `within`.
fn others_are_served(server: &Server, within: Duration) {
    let start = Instant::now();
    let health = server.get("/healthz");
    assert_eq!((health.status, health.text.as_str()), (200, "ok"));
    let job = run_job(
        server,
        json!({"task": "uppercase", "input": {"text": "still here"}}),
    );
    assert_eq!(job["output"]["upper"], "STILL HERE", "{job}");
    assert!(start.elapsed() < within, "took {:?}", start.elapsed());
}

/// Raises this process's soft open-file limit to `needed`, within the hard limit.
fn raise_own_open_file_limit(needed: u64) {
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|soft| soft >= needed) {
        return;
    }
    assert!(
        limit.maximum.is_none_or(|hard| hard >= needed),
        "this test needs {needed} open files; the hard limit is {:?}",
        limit.maximum
    );
    let raised = Rlimit {
        current: Some(needed),
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raising the open-file limit");
}

#[test]
fn idle_connections_past_the_usual_fd_limit_leave_health_and_jobs_answering() {
    const IDLE: usize = 1_100;
    raise_own_open_file_limit(4 * IDLE as u64);
    // Started under the common default of 1024 open files, which the server raises itself.
    let under_1024 = ["sh", "-c", "ulimit -Sn 1024 && exec \"$@\"", "sh"];
    let server = Server::start_wrapped(
        &under_1024,
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        fixtures::TASKS_DIR,
        // Long enough that the idle connections are all still held while others are served.
        &["--http-header-timeout-ms", "120000"],
    );
    let log = server.log();
    assert!(
        log.contains("raised the open-file limit") && log.contains("from=1024"),
        "{log}"
    );
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| connect(&server)).collect();
    // Accepted in order: a request behind them all is answered only once they all were.
    let mut last = connect(&server);
    assert_eq!(get(&mut last, "/healthz").status, 200);
    others_are_served(&server, Duration::from_secs(10));
    let open = idle.iter().filter(|stream| is_open(stream)).count();
    assert_eq!(
        open, IDLE,
        "the server closed idle connections it could hold"
    );
}

#[test]
fn slow_loris_connections_are_closed_after_the_header_timeout() {
    let server = server_with(&["--http-header-timeout-ms", "500"]);
    let mut silent = connect(&server);
    let dribblers: Vec<_> = (0..20)
        .map(|_| {
            let mut stream = connect(&server);
            stream.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            let mut writer = stream.try_clone().unwrap();
            // The attack: a header byte every 50 ms, never the blank line that ends them.
            std::thread::spawn(move || {
                while writer.write_all(b"x").is_ok() {
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            stream
        })
        .collect();
    others_are_served(&server, BOUND);
    for mut stream in dribblers {
        closed(&mut stream);
    }
    let silence = closed(&mut silent);
    assert!(silence < BOUND, "{silence:?}");
    others_are_served(&server, BOUND);
    // The status counts them, by the limit that closed them.
    let http = server.get("/v1/status").json["http"].clone();
    assert_eq!(http["closed"]["header_timeout"], 21, "{http}");
    let metrics = server.get("/metrics").text;
    assert!(
        metrics.contains(r#"taskhost_http_connections_closed_total{limit="header_timeout"} 21"#),
        "{metrics}"
    );
}

#[test]
fn a_connection_idle_after_a_response_is_closed_after_the_idle_timeout() {
    // The idle timeout is the longer: a kept-alive connection is not held to the header
    // timeout while it waits for its next request.
    let server = server_with(&[
        "--http-header-timeout-ms",
        "300",
        "--http-idle-timeout-ms",
        "1500",
    ]);
    let mut stream = connect(&server);
    assert_eq!(get(&mut stream, "/healthz").status, 200);
    let idle = closed(&mut stream);
    assert!(
        idle >= Duration::from_millis(1_000),
        "closed after {idle:?}: by the header timeout, not the idle timeout"
    );
}

#[test]
fn a_body_that_stops_is_cut_with_408_and_a_slow_live_one_passes() {
    let server = server_with(&[
        "--http-body-timeout-ms",
        "500",
        "--http-body-min-bytes-per-sec",
        "1000",
    ]);
    let mut stalled = connect(&server);
    write!(
        stalled,
        "POST /v1/jobs HTTP/1.1\r\nHost: taskhost\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nContent-Length: 1000000\r\n\r\n\
         {{\"task\": \"uppercase\", \"input\": {{\"text\": \"",
        server.key()
    )
    .unwrap();
    let start = Instant::now();
    let cut = read_response(&mut stalled);
    assert_eq!(cut.status, 408, "{cut:?}");
    assert_eq!(cut.json()["error"]["code"], "body_timeout", "{cut:?}");
    assert_eq!(cut.header("connection"), Some("close"), "{cut:?}");
    closed(&mut stalled);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );

    // 4 KB at about 4 KB/s: slow, but above the rate.
    let text = "a".repeat(4_000);
    let body = json!({"task": "uppercase", "input": {"text": text}, "wait_ms": 30_000});
    let body = body.to_string();
    let mut slow = connect(&server);
    write!(
        slow,
        "POST /v1/jobs HTTP/1.1\r\nHost: taskhost\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        server.key(),
        body.len()
    )
    .unwrap();
    for chunk in body.as_bytes().chunks(100) {
        slow.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(25));
    }
    let passed = read_response(&mut slow);
    assert_eq!(passed.status, 200, "{passed:?}");
    assert_eq!(passed.json()["output"]["upper"], text.to_uppercase());
    others_are_served(&server, BOUND);
}

#[test]
fn past_the_connection_cap_a_connection_gets_503_and_health_checks_still_answer() {
    let server = server_with(&["--http-max-connections", "8"]);
    // Each served once, so each is surely accepted, and then held open.
    let mut held: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = connect(&server);
            assert_eq!(get(&mut stream, "/healthz").status, 200);
            stream
        })
        .collect();
    let mut refused = connect(&server);
    let answer = get(&mut refused, "/v1/status");
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.json()["error"]["code"], "too_many_connections");
    assert_eq!(answer.header("retry-after"), Some("1"), "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    closed(&mut refused);
    let mut health = connect(&server);
    let answer = get(&mut health, "/healthz");
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    closed(&mut health);
    // The connections within the cap are served as before, and see themselves counted.
    for stream in &mut held {
        assert_eq!(
            get_with_key(stream, "/v1/status", server.admin_key()).status,
            200
        );
    }
    let http = get_with_key(&mut held[0], "/v1/status", server.admin_key()).json()["http"].clone();
    assert_eq!(http["connections"], 8, "{http}");
    assert_eq!(http["max_connections"], 8, "{http}");
    assert_eq!(http["refused"], 2, "{http}");
}

#[test]
fn a_connection_closes_after_its_last_allowed_request() {
    let server = server_with(&["--http-max-requests-per-connection", "3"]);
    let mut stream = connect(&server);
    for _ in 0..2 {
        let answer = get(&mut stream, "/healthz");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("connection"), None, "{answer:?}");
    }
    let last = get(&mut stream, "/healthz");
    assert_eq!(last.header("connection"), Some("close"), "{last:?}");
    closed(&mut stream);
}

#[test]
fn headers_past_64_kib_are_refused_and_the_connection_closed() {
    let server = server_with(&[]);
    let mut stream = connect(&server);
    let padding = "x".repeat(70 << 10);
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: taskhost\r\nX-Padding: {padding}\r\n\r\n"
    )
    .unwrap();
    let mut head = [0; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 431");
    closed(&mut stream);
    others_are_served(&server, BOUND);
}

#[test]
fn running_out_of_descriptors_neither_spins_the_accept_loop_nor_wedges_it() {
    raise_own_open_file_limit(1_000);
    // A limit the server cannot raise, and a cap it cannot keep: accepting fails (EMFILE)
    // once the connections take the descriptors left.
    let tight = ["sh", "-c", "ulimit -n 300 && exec \"$@\"", "sh"];
    let server = Server::start_wrapped(
        &tight,
        Path::new(env!("CARGO_BIN_EXE_taskhost")),
        fixtures::TASKS_DIR,
        &[
            "--http-max-connections",
            "1000",
            "--http-header-timeout-ms",
            "60000",
        ],
    );
    // The tasks load first: compiling them needs descriptors the connections will take.
    server.loaded_tasks();
    // As many as the limit: more than the server can accept, few enough that the rest fit in
    // the listener's queue (past it, connecting would stall on SYN retries).
    let held: Vec<TcpStream> = (0..300).map(|_| connect(&server)).collect();
    // Served only once accepting failed: the connections before it took every descriptor.
    let mut probe = connect(&server);
    write!(probe, "GET /healthz HTTP/1.1\r\nHost: taskhost\r\n\r\n").unwrap();
    let log = || server.log();
    let failing = Instant::now();
    while !log().contains("cannot accept connections") {
        assert!(
            failing.elapsed() < BOUND,
            "accepting never failed: {}",
            log()
        );
        std::thread::yield_now();
    }
    let before = server.cpu_time();
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_time() - before;
    assert!(
        used < window.elapsed() / 4,
        "the server used {used:?} of CPU in {:?} while it could not accept",
        window.elapsed()
    );
    // Descriptors come back as clients leave, and the server accepts again.
    drop(held);
    assert_eq!(read_response(&mut probe).status, 200);
    others_are_served(&server, BOUND);
}
