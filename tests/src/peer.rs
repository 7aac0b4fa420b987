//! A small real HTTP/1.1 server on a free loopback port, for tasks to send requests to.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Serves, until dropped:
/// - `/hello`: `200`, body `hello from the peer`, header `x-peer: yes`;
/// - `/echo`: `200`, the request's method and body as `METHOD BODY`;
/// - `/hang`: reads the request and never answers (the connection stays open);
/// - anything else: `404`.
pub struct Peer {
    port: u16,
    /// Connections asked to hang, held open until the peer is dropped.
    hanging: Arc<Mutex<Vec<TcpStream>>>,
}

impl Peer {
    /// Starts the server on `127.0.0.1` and a free port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the peer");
        let port = listener.local_addr().unwrap().port();
        let hanging = Arc::new(Mutex::new(Vec::new()));
        let held = hanging.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let held = held.clone();
                std::thread::spawn(move || answer(stream, &held));
            }
        });
        Self { port, hanging }
    }

    /// The peer's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.hanging.lock().unwrap().clear();
    }
}

fn answer(stream: TcpStream, hanging: &Mutex<Vec<TcpStream>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, extra, text) = match path {
        "/hello" => (
            "200 OK",
            "x-peer: yes\r\n",
            "hello from the peer".to_owned(),
        ),
        "/echo" => (
            "200 OK",
            "",
            format!("{method} {}", String::from_utf8_lossy(&body)),
        ),
        "/hang" => {
            hanging.lock().unwrap().push(stream);
            return;
        }
        _ => ("404 Not Found", "", "no such path".to_owned()),
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{text}",
        text.len()
    );
}
