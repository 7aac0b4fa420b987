//! One connection: hyper's HTTP/1.1 over it, with what bounds how long it may hold the
//! server's descriptor.
//!
//! A watchdog beside hyper follows what the connection is doing and closes it when it
//! overstays:
//! - a new connection must send a request's headers within the header timeout;
//! - after a response it may stay idle for the idle timeout, and once the next request's first
//!   byte has come, its headers must follow within the header timeout;
//! - while a request is served (from its headers until its response has been written: a long
//!   poll or an event stream may take long) nothing is timed but its body, which must keep
//!   arriving ([`super::body`]; a body cut that way answers `408 body_timeout` and closes),
//!   and its response, which the client must keep reading: a write that waits on the client
//!   for the write timeout closes the connection.
//!
//! After `max_requests` requests the response says `Connection: close` and the connection
//! ends; on shutdown it ends once its request in flight has been answered.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::body::{BodyRate, RateBody};
use super::stats::{ConnectionStats, Timeout};
use crate::api::ApiError;

/// What bounds every connection.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConnLimits {
    /// From a connection's start, or a request's first byte, to the end of its headers.
    pub(super) header_timeout: Duration,
    /// From a response to the next request's first byte.
    pub(super) idle_timeout: Duration,
    /// How long a write may wait on a client that does not read.
    pub(super) write_timeout: Duration,
    /// How fast request bodies must arrive.
    pub(super) body: BodyRate,
    /// Requests served on one connection before it is closed.
    pub(super) max_requests: u64,
}

/// Serves `router` on `stream` until the connection ends, overstays its limits (counted in
/// `stats`), or (once its request in flight is answered) `shutdown` is cancelled.
pub(super) async fn serve(
    stream: TcpStream,
    router: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
    stats: &ConnectionStats,
) {
    let activity = Arc::new(Activity::new(limits));
    let io = TokioIo::new(Watched {
        io: stream,
        activity: activity.clone(),
    });
    let service = Served {
        router: TowerToHyperService::new(router),
        activity: activity.clone(),
        limits,
    };
    let result = serve_connection(io, service, &activity, shutdown).await;
    if let Some(limit) = result {
        stats.closed(limit);
    }
}

/// Runs hyper's connection beside the watchdog; returns the limit that closed it, if one
/// did.
async fn serve_connection(
    io: TokioIo<Watched>,
    service: Served,
    activity: &Activity,
    shutdown: CancellationToken,
) -> Option<Timeout> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // The watchdog times headers; hyper's own timer would start at the end of a response.
    http.header_read_timeout(None)
        .max_header_size(super::MAX_HEADER_BYTES);
    let connection = http.serve_connection(io, service);
    tokio::pin!(connection);
    let watchdog = tokio::time::sleep_until(activity.next_check());
    tokio::pin!(watchdog);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended");
                }
                return activity.body_was_cut().then_some(Timeout::Body);
            }
            () = shutdown.cancelled(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            () = watchdog.as_mut() => {
                if let Some((limit, overstayed)) = activity.overstayed() {
                    tracing::debug!("closed a connection {overstayed}");
                    return Some(limit);
                }
                watchdog.as_mut().reset(activity.next_check());
            }
        }
    }
}

/// What a connection is doing, shared by its IO, its service and its watchdog.
///
/// Nothing wakes the watchdog when the phase changes (that would cost every request a wake-up
/// and a timer): it looks again at least every [`Activity::recheck`], which is no longer than
/// any timeout, so whenever a phase with a deadline starts, the watchdog looks before the
/// deadline and then sleeps until it.
struct Activity {
    phase: Mutex<Phase>,
    /// Whether the connection is idle, so its next read starts a request.
    idle: AtomicBool,
    /// Requests started on it.
    requests: AtomicU64,
    /// Set when the body of the request being served is cut for arriving too slowly.
    body_cut: Arc<AtomicBool>,
    /// Since when a write has waited on the client, as milliseconds after `started` plus
    /// one; 0 while writes go through.
    write_waiting_since: AtomicU64,
    started: Instant,
    limits: ConnLimits,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Between a response and the next request's first byte.
    Idle { until: Instant },
    /// Reading a request's headers.
    Headers { until: Instant },
    /// Serving a request: from its headers until its response has been written.
    Serving,
}

impl Activity {
    fn new(limits: ConnLimits) -> Self {
        Self {
            phase: Mutex::new(Phase::Headers {
                until: Instant::now() + limits.header_timeout,
            }),
            idle: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            body_cut: Arc::new(AtomicBool::new(false)),
            write_waiting_since: AtomicU64::new(0),
            started: Instant::now(),
            limits,
        }
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
        self.idle
            .store(matches!(phase, Phase::Idle { .. }), Ordering::Relaxed);
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The longest the watchdog sleeps without looking.
    fn recheck(&self) -> Duration {
        self.limits
            .header_timeout
            .min(self.limits.idle_timeout)
            .min(self.limits.write_timeout)
    }

    /// When the watchdog looks next: at the deadline of what the connection is doing, or
    /// sooner.
    fn next_check(&self) -> Instant {
        let recheck = Instant::now() + self.recheck();
        match self.phase() {
            Phase::Idle { until } | Phase::Headers { until } => until.min(recheck),
            Phase::Serving => self.write_deadline().map_or(recheck, |at| at.min(recheck)),
        }
    }

    /// What the connection overstayed, if it has: the limit, and what it did.
    fn overstayed(&self) -> Option<(Timeout, &'static str)> {
        let now = Instant::now();
        match self.phase() {
            Phase::Idle { until } if until <= now => {
                Some((Timeout::Idle, "idle past the idle timeout"))
            }
            Phase::Headers { until } if until <= now => Some((
                Timeout::Header,
                "that did not send its headers within the header timeout",
            )),
            Phase::Serving if self.write_deadline().is_some_and(|at| at <= now) => Some((
                Timeout::Write,
                "that read none of its response within the write timeout",
            )),
            _ => None,
        }
    }

    /// Whether the body of the last request was cut for coming too slowly.
    fn body_was_cut(&self) -> bool {
        self.body_cut.load(Ordering::Relaxed)
    }

    /// When the write waiting on the client times out, if one is waiting.
    fn write_deadline(&self) -> Option<Instant> {
        match self.write_waiting_since.load(Ordering::Relaxed) {
            0 => None,
            since => {
                Some(self.started + Duration::from_millis(since - 1) + self.limits.write_timeout)
            }
        }
    }

    /// A write found the client's window full (`waiting`), or went through.
    fn write_polled<T>(&self, poll: &Poll<T>) {
        let waiting_since = self.write_waiting_since.load(Ordering::Relaxed);
        match (poll.is_pending(), waiting_since) {
            (true, 0) => {
                let since = self.started.elapsed().as_millis() as u64 + 1;
                self.write_waiting_since.store(since, Ordering::Relaxed);
            }
            (false, since) if since != 0 => self.write_waiting_since.store(0, Ordering::Relaxed),
            _ => {}
        }
    }

    /// Bytes came in: while idle, they start the next request.
    fn read_bytes(&self) {
        if self.idle.load(Ordering::Relaxed) {
            self.set(Phase::Headers {
                until: Instant::now() + self.limits.header_timeout,
            });
        }
    }

    /// A request's headers have come; returns how many requests the connection has started.
    fn start_request(&self) -> u64 {
        self.set(Phase::Serving);
        self.body_cut.store(false, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A response has been written.
    fn end_request(&self) {
        self.set(Phase::Idle {
            until: Instant::now() + self.limits.idle_timeout,
        });
    }
}

/// The connection's stream, telling its [`Activity`] when bytes come in.
struct Watched {
    io: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_bytes();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.activity.write_polled(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.activity.write_polled(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The router as hyper calls it on one connection: request bodies held to their rate,
/// requests counted, the end of each response told to the [`Activity`].
#[derive(Clone)]
struct Served {
    router: TowerToHyperService<Router>,
    activity: Arc<Activity>,
    limits: ConnLimits,
}

impl Service<Request<Incoming>> for Served {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let count = self.activity.start_request();
        let last = count >= self.limits.max_requests;
        let body_cut = self.activity.body_cut.clone();
        let rate = self.limits.body;
        let request = request.map(|body| Body::new(RateBody::new(body, rate, body_cut.clone())));
        let response = self.router.call(request);
        let activity = self.activity.clone();
        Box::pin(async move {
            let Ok(mut response) = response.await;
            let cut = body_cut.load(Ordering::Relaxed);
            if cut {
                response = ApiError::BodyTimeout {
                    min_bytes_per_sec: rate.min_bytes_per_sec,
                    window_ms: rate.window.as_millis() as u64,
                }
                .into_response();
            }
            if last || cut {
                let close = HeaderValue::from_static("close");
                response.headers_mut().insert(header::CONNECTION, close);
            }
            Ok(response.map(|body| Tracked { body, activity }))
        })
    }
}

/// A response body that tells the connection's [`Activity`] when hyper is done with it.
struct Tracked {
    body: Body,
    activity: Arc<Activity>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.activity.end_request();
    }
}
