//! Fixtures and helpers for taskhost's integration tests and benchmarks.
//!
//! The build script compiles every example task under `tasks/` to a component;
//! [`fixtures`] has their paths. [`components`] makes adversarial ones.

mod adversarial;
pub mod components;
mod exposition;
mod peer;
mod server;
mod sse;

pub use adversarial::Hostile;
pub use exposition::Exposition;
pub use peer::{Peer, tls};
pub use server::{Response, Server};
pub use sse::{EventStream, SseEvent};

/// Paths of the example tasks, built by this crate's build script.
pub mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}
