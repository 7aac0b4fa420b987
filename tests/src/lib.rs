//! Fixtures and helpers for taskhost's integration tests and benchmarks.
//!
//! The build script compiles every example task under `tasks/` to a component;
//! [`fixtures`] has their paths.

mod peer;
mod server;

pub use peer::Peer;
pub use server::{Response, Server};

/// Paths of the example tasks, built by this crate's build script.
pub mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}
