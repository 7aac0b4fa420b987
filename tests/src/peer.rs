//! A small real HTTP/1.1 server on a free loopback port, for tasks to send requests to; plain
//! or over TLS, with the test certificates in `tests/tls`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Paths of the test certificates: a CA, and a certificate it signed for `localhost` and
/// `127.0.0.1` (`tests/tls/generate.sh` made them).
pub mod tls {
    /// The test CA's certificate (PEM).
    pub const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tls/ca.pem");
    /// The certificate for `localhost` and `127.0.0.1` (PEM).
    pub const LOCALHOST_CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tls/localhost.pem");
    /// Its private key (PEM, PKCS #8).
    pub const LOCALHOST_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tls/localhost.key");
}

/// Serves, until dropped:
/// - `/hello`: `200`, body `hello from the peer`, header `x-peer: yes`;
/// - `/echo`: `200`, the request's method and body as `METHOD BODY`;
/// - `/hang`: reads the request and never answers (the connection stays open);
/// - anything else: `404`.
pub struct Peer {
    port: u16,
    scheme: &'static str,
    /// Connections asked to hang, held open until the peer is dropped.
    hanging: Arc<Mutex<Vec<Box<dyn Send>>>>,
}

/// A connection the peer answers on: plain TCP or TLS over it.
trait Connection: Read + Write + Send + 'static {}
impl<T: Read + Write + Send + 'static> Connection for T {}

impl Peer {
    /// Starts the server on `127.0.0.1` and a free port, speaking plain HTTP.
    pub fn start() -> Self {
        Self::serve("http", |tcp| Some(Box::new(tcp)))
    }

    /// Starts the server on `127.0.0.1` and a free port, speaking HTTPS with the certificate
    /// for `localhost` that the test CA ([`tls::CA`]) signed.
    pub fn start_tls() -> Self {
        let chain = CertificateDer::pem_file_iter(tls::LOCALHOST_CERT)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(tls::LOCALHOST_KEY).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the test certificate and key");
        let config = Arc::new(config);
        Self::serve("https", move |tcp| {
            let session = rustls::ServerConnection::new(config.clone()).ok()?;
            Some(Box::new(rustls::StreamOwned::new(session, tcp)))
        })
    }

    fn serve(
        scheme: &'static str,
        wrap: impl Fn(TcpStream) -> Option<Box<dyn Connection>> + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the peer");
        let port = listener.local_addr().unwrap().port();
        let hanging = Arc::new(Mutex::new(Vec::new()));
        let held = hanging.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let Some(connection) = wrap(tcp) else {
                    continue;
                };
                let held = held.clone();
                std::thread::spawn(move || answer(connection, &held));
            }
        });
        Self {
            port,
            scheme,
            hanging,
        }
    }

    /// The peer's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `SCHEME://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.hanging.lock().unwrap().clear();
    }
}

fn answer(connection: Box<dyn Connection>, hanging: &Mutex<Vec<Box<dyn Send>>>) {
    let mut reader = BufReader::new(connection);
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
    if reader.read_exact(&mut body).is_err() {
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
            hanging.lock().unwrap().push(Box::new(reader));
            return;
        }
        _ => ("404 Not Found", "", "no such path".to_owned()),
    };
    let mut connection = reader.into_inner();
    let _ = write!(
        connection,
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{text}",
        text.len()
    );
    let _ = connection.flush();
}
