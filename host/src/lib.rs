//! taskhost: run untrusted tasks, compiled to WebAssembly components, in a sandbox, over HTTP.
//!
//! # Embedding
//!
//! A program starts a [`Host`] from a [`Config`] (every setting's default is its `Default`;
//! [`ServeArgs::defaults`] gives the settings of `taskhost serve` to change and validate),
//! then submits [`JobRequest`]s and reads, awaits and cancels the [`jobs::JobRecord`]s they
//! make; [`api::router`] and [`server::Server`] serve the same host over HTTP. The public
//! modules hold what those take and return: [`config`] the settings, [`host`] the facade's
//! requests and errors, [`jobs`] the records, [`status`] the host's status. The rest of the
//! crate is private to it (the binary, benchmarks and tests reach a few parts through a
//! hidden `internals` module, which is no part of the API).
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
//! - [`host`]: the embedding facade the API (or a Rust program) drives; it hands accepted
//!   jobs to the scheduler once the code they run is compiled.
//! - [`jobs`]: job ids, records, status transitions and waiting.
//! - `batches`: many jobs submitted at once, kept in order, with a bound on how many run.
//! - `idempotency`: `Idempotency-Key`s, so a retried submission returns the first job.
//! - `memo`: memoized results of deterministic tasks, by component hash and input.
//! - `scheduler`: the bounded queue, and engine threads (pinned to cores if asked) fed by
//!   crossbeam-deque work stealing; drain on shutdown.
//! - `engine`: the wasmtime engines (code that counts fuel, and code that does not), store
//!   limits, fuel, deadlines and cancellation (epoch ticks), and running one job.
//! - `egress`: outgoing HTTP from tasks: the allow-list, address checks, TLS roots; the
//!   engine's `wasi:http` hooks.
//! - `registry`: task names → versions, loaded from the tasks directory and reloaded as its
//!   files change.
//! - `cache`: compiled components by blake3 content hash and kind of code, bounded,
//!   single-flight.
//! - `compile`: compiling within bounds: components checked before they compile, a
//!   bounded pool in two lanes by size, each compile in a child process (`taskhost compile`)
//!   with a deadline and a memory limit.
//! - `metrics`: counters and histograms of events (jobs finishing, components loading),
//!   recorded where they happen, without a lock on a job's path.
//! - [`status`]: the shape of `GET /v1/status`, gathered from each part's own status, each
//!   part's health, and the Prometheus export of `GET /metrics`.
//! - [`tenants`]: who may call the API: tenants and their API keys, the admin key; the
//!   `default` tenant of a server started without configuration.
//! - `timestamp`: wall-clock times as the API writes them.
//! - `atomic_file`: files written whole or not at all (the cache's, the tenants').
//!
//! Dependencies point one way: `server` → `api` → `host` → (`registry` → `cache` → `compile`,
//! `jobs`, `scheduler`) → `engine`.

// Every public item is documented, and every type the API returns can be named.
#![warn(missing_docs, unnameable_types)]

pub mod api;
mod atomic_file;
pub(crate) mod batches;
pub(crate) mod cache;
pub(crate) mod compile;
pub mod config;
mod echo;
pub(crate) mod egress;
pub(crate) mod engine;
mod heap;
pub mod host;
mod id;
pub(crate) mod idempotency;
pub mod jobs;
pub(crate) mod memo;
pub(crate) mod metrics;
pub(crate) mod registry;
pub(crate) mod scheduler;
pub mod server;
pub mod status;
pub mod tenants;
pub(crate) mod timestamp;

pub use config::{Config, ServeArgs};

/// What taskhost's own binary, benchmarks and tests use of its internals: the `taskhost
/// compile` child, the engine and the component cache measured on their own. No part of the
/// API: it may change at any time.
#[doc(hidden)]
pub mod internals {
    pub use crate::cache::{Compiled, ComponentCache, HashedWasm, Source};
    pub use crate::compile::{CompileArgs, SMALL_COMPONENT_BYTES, run_child};
    pub use crate::engine::{
        CompiledTask, EPOCH_TICK, JobControl, Limits, Metering, Outcome, Receipt, TaskEngine,
    };
    pub use crate::metrics::Metrics;
}
pub use host::{Host, JobRequest};
