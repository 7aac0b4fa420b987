//! What the HTTP server's connections are doing, counted as it happens, for `/v1/status`
//! (`http`) and `/metrics`: how many are open against the cap, how many were refused past
//! it, and how many were closed by each of the limits that bound a connection. A host
//! under a connection attack shows it here.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

/// The counters, shared by the accept loop and every connection.
#[derive(Debug)]
pub struct ConnectionStats {
    max_connections: usize,
    open: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    closed: [AtomicU64; Timeout::ALL.len()],
}

/// The limit that closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// Its request's headers did not come within the header timeout.
    Header,
    /// It stayed idle past the idle timeout.
    Idle,
    /// Its client read none of a response for the write timeout.
    Write,
    /// A request body came slower than the body rate.
    Body,
}

impl Timeout {
    const ALL: [Self; 4] = [Self::Header, Self::Idle, Self::Write, Self::Body];
}

/// The HTTP server's connections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HttpStatus {
    /// Connections open now.
    pub connections: usize,
    /// Most connections served at once (`--http-max-connections`).
    pub max_connections: usize,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections refused past the cap (answered `503 too_many_connections`).
    pub refused: u64,
    /// Connections closed by a limit, by limit.
    pub closed: ClosedCounts,
}

/// Connections closed by each limit since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClosedCounts {
    /// Headers not sent within `--http-header-timeout-ms`.
    pub header_timeout: u64,
    /// Idle past `--http-idle-timeout-ms`.
    pub idle_timeout: u64,
    /// A response not read for `--http-write-timeout-ms`.
    pub write_timeout: u64,
    /// A body slower than `--http-body-min-bytes-per-sec` (`408 body_timeout`).
    pub body_timeout: u64,
}

impl ConnectionStats {
    /// Counters for a server of at most `max_connections` connections.
    pub(crate) fn new(max_connections: usize) -> Self {
        Self {
            max_connections,
            open: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            closed: Default::default(),
        }
    }

    /// A connection was accepted; it counts as open until [`ended`](Self::ended).
    pub(crate) fn opened(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// An accepted connection ended.
    pub(crate) fn ended(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection past the cap was refused.
    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was closed by `limit`.
    pub(crate) fn closed(&self, limit: Timeout) {
        self.closed[limit as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn status(&self) -> HttpStatus {
        let closed = |limit: Timeout| self.closed[limit as usize].load(Ordering::Relaxed);
        HttpStatus {
            connections: self.open.load(Ordering::Relaxed),
            max_connections: self.max_connections,
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            closed: ClosedCounts {
                header_timeout: closed(Timeout::Header),
                idle_timeout: closed(Timeout::Idle),
                write_timeout: closed(Timeout::Write),
                body_timeout: closed(Timeout::Body),
            },
        }
    }
}
