//! Serving the API over HTTP/1.1, so that no client can hold the server's connections or
//! descriptors for itself: the accept loop, a cap on connections, and what bounds each one.
//!
//! - At start the process's open-file soft limit is raised to its hard limit, and the cap on
//!   connections is sized from it (unless set), leaving a reserve of descriptors for the rest
//!   of the host and for answering past the cap.
//! - Past the cap, a connection gets one answer and is closed: `503 too_many_connections`
//!   with `Retry-After`, except `GET /healthz`, which answers as usual, so a health check
//!   still sees the server up. At most 64 (`REFUSING_AT_ONCE`) are answered at a time, each
//!   within 2 s (`REFUSAL_TIME`); past that they are closed unanswered.
//! - An accept that fails for want of descriptors or memory (`EMFILE`) waits 50 ms
//!   (`ACCEPT_BACKOFF`) before the next, instead of spinning.
//! - `conn`: one connection's timeouts (headers, idle) and request count; `body`: request
//!   bodies that must keep arriving.
//!
//! On shutdown the listener closes, idle connections close, and each busy one ends once its
//! request in flight is answered; [`Server::serve`] returns when all have.

mod body;
mod conn;
mod fds;
mod stats;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::body::BodyRate;
use self::conn::ConnLimits;
pub use self::stats::{ClosedCounts, ConnectionStats, HttpStatus};
use crate::api::ApiError;

/// Descriptors kept for everything but client connections (task files, the cache, the
/// watcher, tasks' outgoing HTTP, ...) when the cap on connections is sized from the limit.
pub(crate) const RESERVED_FDS: u64 = 256;
/// Most connections the cap sized from the open-file limit allows.
pub(crate) const MAX_DEFAULT_CONNECTIONS: usize = 10_000;
/// Most connections past the cap answered at once; more are closed unanswered.
pub(crate) const REFUSING_AT_ONCE: usize = 64;
/// Longest a connection past the cap is given to send its request and read the answer.
pub(crate) const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// Most bytes of a request's headers (its start line included); more are answered `431`
/// and the connection closed. Bounds what a connection can make the server buffer before its
/// request is even routed.
pub(crate) const MAX_HEADER_BYTES: usize = 64 << 10;
/// How long the accept loop waits after an accept failed for want of resources.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Settings of the HTTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// Most connections served at once; `None` sizes the cap from the open-file limit.
    pub max_connections: Option<usize>,
    /// From a connection's start, or a request's first byte, to the end of its headers.
    pub header_timeout: Duration,
    /// From a response to the next request's first byte.
    pub idle_timeout: Duration,
    /// How long writing a response may wait on a client that reads none of it.
    pub write_timeout: Duration,
    /// The window over which a request body's rate is measured.
    pub body_timeout: Duration,
    /// The rate a request body must keep, in bytes per second.
    pub body_min_bytes_per_sec: u64,
    /// Requests served on one connection before it is closed.
    pub max_requests_per_connection: u64,
}

impl ServerSettings {
    /// The settings of `taskhost serve` without flags.
    pub const DEFAULT: Self = Self {
        max_connections: None,
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(10),
        body_min_bytes_per_sec: 1024,
        max_requests_per_connection: 1000,
    };
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The HTTP server: bounds set and the open-file limit raised, ready to serve a listener.
#[derive(Debug)]
pub struct Server {
    limits: ConnLimits,
    max_connections: usize,
}

impl Server {
    /// Raises the process's open-file soft limit to its hard limit and sizes the cap on
    /// connections from it (unless `settings` set one), logging both. Call before the host
    /// opens its files.
    pub fn new(settings: &ServerSettings) -> Self {
        let open_files = fds::raise_open_file_limit();
        let available = open_files.saturating_sub(RESERVED_FDS + REFUSING_AT_ONCE as u64);
        let max_connections = match settings.max_connections {
            Some(max) => {
                if max as u64 > available {
                    tracing::warn!(
                        max_connections = max,
                        open_files,
                        "--http-max-connections leaves fewer than {RESERVED_FDS} descriptors \
                         for the rest of the host: past {available} connections it may run out"
                    );
                }
                max
            }
            None => usize::try_from(available / 2)
                .unwrap_or(usize::MAX)
                .clamp(1, MAX_DEFAULT_CONNECTIONS),
        };
        tracing::info!(max_connections, open_files, "connection cap");
        Self {
            limits: ConnLimits {
                header_timeout: settings.header_timeout,
                idle_timeout: settings.idle_timeout,
                write_timeout: settings.write_timeout,
                body: BodyRate {
                    window: settings.body_timeout,
                    min_bytes_per_sec: settings.body_min_bytes_per_sec,
                },
                max_requests: settings.max_requests_per_connection,
            },
            max_connections,
        }
    }

    /// Most connections served at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets
    /// every connection finish its request in flight, and returns once all have closed.
    pub async fn serve(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let stats = Arc::new(ConnectionStats::new(self.max_connections));
        let router = router.layer(axum::Extension(stats.clone()));
        let open = Arc::new(Semaphore::new(self.max_connections));
        let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
        let stopping = CancellationToken::new();
        let (mut accept_warnings, mut cap_warnings) = (Throttle::default(), Throttle::default());
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) if is_transient(&error) => continue,
                    Err(error) => {
                        if accept_warnings.ready() {
                            tracing::warn!(%error, "cannot accept connections; retrying");
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            if let Ok(permit) = open.clone().try_acquire_owned() {
                let (router, limits, stopping) = (router.clone(), self.limits, stopping.clone());
                let stats = stats.clone();
                stats.opened();
                tokio::spawn(async move {
                    conn::serve(stream, router, limits, stopping, &stats).await;
                    stats.ended();
                    drop(permit);
                });
                continue;
            }
            stats.refused();
            if cap_warnings.ready() {
                tracing::warn!(
                    max_connections = self.max_connections,
                    "connection cap reached: refusing connections (--http-max-connections)"
                );
            }
            if let Ok(permit) = refusing.clone().try_acquire_owned() {
                let refusal = Refusal {
                    router: TowerToHyperService::new(router.clone()),
                    max_connections: self.max_connections,
                };
                tokio::spawn(async move {
                    refusal.answer(stream).await;
                    drop(permit);
                });
            }
        }
        drop(listener);
        stopping.cancel();
        all_returned(&open, self.max_connections).await;
        all_returned(&refusing, REFUSING_AT_ONCE).await;
        Ok(())
    }
}

/// Waits until all `permits` of `semaphore` are back: every connection holding one has ended.
async fn all_returned(semaphore: &Semaphore, permits: usize) {
    // The cap is checked to fit when the settings are.
    let permits = u32::try_from(permits).unwrap_or(u32::MAX);
    let _ = semaphore.acquire_many(permits).await;
}

/// Whether an accept error concerns only the connection it would have accepted.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Lets a warning through at most once a second.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    fn ready(&mut self) -> bool {
        let now = Instant::now();
        let ready = self
            .last
            .is_none_or(|last| now >= last + Duration::from_secs(1));
        if ready {
            self.last = Some(now);
        }
        ready
    }
}

/// The answer to a connection past the cap.
#[derive(Clone)]
struct Refusal {
    router: TowerToHyperService<Router>,
    max_connections: usize,
}

impl Refusal {
    /// Answers one request on `stream` (within [`REFUSAL_TIME`]) and closes it.
    async fn answer(self, stream: TcpStream) {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.keep_alive(false)
            .header_read_timeout(None)
            .max_header_size(MAX_HEADER_BYTES);
        let connection = http.serve_connection(TokioIo::new(stream), self);
        let _ = tokio::time::timeout(REFUSAL_TIME, connection).await;
    }
}

impl Service<Request<Incoming>> for Refusal {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>,
    >;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let health = request.uri().path() == "/healthz"
            && matches!(*request.method(), Method::GET | Method::HEAD);
        if health {
            let response = self.router.call(request.map(Body::new));
            return Box::pin(response);
        }
        let mut response = ApiError::TooManyConnections(self.max_connections).into_response();
        let close = HeaderValue::from_static("close");
        response.headers_mut().insert(header::CONNECTION, close);
        Box::pin(std::future::ready(Ok(response)))
    }
}
