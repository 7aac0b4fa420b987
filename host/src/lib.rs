//! taskhost: run untrusted tasks, compiled to WebAssembly components, in a sandbox, over HTTP.
//!
//! # Layout
//!
//! The path of a job, and where each step lives:
//!
//! ```text
//! client ─HTTP─▶ api ─▶ host (facade) ─▶ registry: name → TaskVersion ─▶ cache: hash → compiled
//!                          ├─▶ jobs: record (queued), waiters
//!                          └─▶ scheduler: engine thread ─▶ engine::run → Outcome
//!                                                             └─▶ jobs: finish record, wake waiters
//! ```
//!
//! - [`config`]: the server's settings from a config file, environment variables and flags,
//!   validated all at once.
//! - [`server`]: serving the router over HTTP/1.1: the accept loop, a cap on connections sized
//!   from the open-file limit, header, idle and body-rate timeouts, graceful shutdown.
//! - [`api`]: the axum router and its OpenAPI document (`/openapi.json`), one handler module per
//!   resource; one error type turns every failure into a JSON response.
//! - [`host`]: the embedding facade the API (or a Rust program) drives.
//! - [`jobs`]: job ids, records, status transitions and waiting.
//! - [`batches`]: many jobs submitted at once, kept in order, with a bound on how many run.
//! - [`idempotency`]: `Idempotency-Key`s, so a retried submission returns the first job.
//! - [`memo`]: memoized results of deterministic tasks, by component hash and input.
//! - [`scheduler`]: the bounded queue, and engine threads (pinned to cores) fed by
//!   crossbeam-deque work stealing; drain on shutdown.
//! - [`engine`]: the wasmtime engine, store limits, fuel, deadlines and cancellation (epoch
//!   ticks), and running one job.
//! - [`egress`]: outgoing HTTP from tasks: the allow-list, address checks, TLS roots; the
//!   engine's `wasi:http` hooks.
//! - [`registry`]: task names → versions, loaded from the tasks directory and reloaded as its
//!   files change.
//! - [`cache`]: compiled components by blake3 content hash, bounded, single-flight.
//! - [`compile`]: compiling within bounds: components checked before they compile, a
//!   bounded pool in two lanes by size, each compile in a child process (`taskhost compile`)
//!   with a deadline and a memory limit.
//! - [`metrics`]: counters and histograms of events (jobs finishing, components loading),
//!   recorded where they happen, without a lock on a job's path.
//! - [`status`]: the shape of `GET /v1/status`, gathered from each part's own status, each
//!   part's health, and the Prometheus export of `GET /metrics`.
//! - [`timestamp`]: wall-clock times as the API writes them.
//!
//! Dependencies point one way: `server` → `api` → `host` → (`registry` → `cache` → `compile`,
//! `jobs`, `scheduler`) → `engine`.

pub mod api;
pub mod batches;
pub mod cache;
pub mod compile;
pub mod config;
mod echo;
pub mod egress;
pub mod engine;
mod heap;
pub mod host;
mod id;
pub mod idempotency;
pub mod jobs;
pub mod memo;
pub mod metrics;
pub mod registry;
pub mod scheduler;
pub mod server;
pub mod status;
pub mod timestamp;

pub use config::{Config, ServeArgs};
pub use host::{Host, JobRequest};
