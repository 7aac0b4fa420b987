//! Write [taskhost](https://example.invalid/taskhost) tasks in Rust.
//!
//! A task is one function from a serde input type to a serde output type, marked with
//! [`#[task]`](task). The SDK generates the WebAssembly component glue, decodes the job's JSON
//! input, encodes the output, and turns failures into job errors:
//!
//! ```ignore
//! use serde::{Deserialize, Serialize};
//! use taskhost_sdk::TaskError;
//!
//! #[derive(Deserialize)]
//! struct In { text: String }
//!
//! #[derive(Serialize)]
//! struct Out { upper: String, words: usize }
//!
//! #[taskhost_sdk::task]
//! fn run(input: In) -> Result<Out, TaskError> {
//!     taskhost_sdk::info!("uppercasing {} bytes", input.text.len());
//!     Ok(Out { upper: input.text.to_uppercase(), words: input.text.split_whitespace().count() })
//! }
//! ```
//!
//! - Input that does not deserialize into the argument type fails the job with
//!   `invalid_input` and serde's message; the function is not called.
//! - An `Err(TaskError)` fails the job with `task_error` and its message; `?` converts any
//!   `std::error::Error` into a [`TaskError`].
//! - A panic fails the job with `panic` and the panic message; the host keeps serving.
//! - [`info!`], [`warn!`] and friends write to the job's log; so do `println!` and `eprintln!`.
//! - [`progress`] reports how far the task has come, live, to whoever watches the job.
//! - [`http`] sends HTTP requests, to the hosts the host's operator allows.
//!
//! The function may also return a plain serializable value when it cannot fail.
//!
//! # Declaring how the task runs
//!
//! The host runs a job on a pinned engine thread (`cpu`) or on its async executor, where
//! waiting holds no thread (`io`). A job's request may choose; otherwise the task's own
//! declaration decides, and without one its imports do (a task that imports `wasi:io/poll`,
//! `wasi:http` or `wasi:sockets` counts as `io`). Declare the kind when the imports would
//! mislead, e.g. a computing task that also sleeps briefly with `std::thread::sleep`:
//!
//! ```ignore
//! #[taskhost_sdk::task(kind = "cpu")]
//! fn run(input: In) -> Out { /* ... */ }
//! ```
//!
//! `kind` is `"cpu"` or `"io"`; anything else is a compile error. The declaration is written
//! into the component (a custom section, `taskhost:task`, holding a small JSON manifest such
//! as `{"kind":"cpu"}`), so it goes wherever the `.wasm` file goes: the tasks directory, an
//! upload, the host's compilation cache. `GET /v1/tasks` shows each task's kind and whether
//! it was `declared` or came from its `imports`.
//!
//! # Memoized results
//!
//! A task whose result depends on its input alone can ask the host to remember results, so
//! that a job with the same input (and the same component) is answered without running:
//!
//! ```ignore
//! #[taskhost_sdk::task(memoize)]
//! fn run(input: In) -> Out { /* ... */ }
//! ```
//!
//! A job may still say `"memoize": false`. The host checks the promise when it loads the
//! component: a task that imports a clock, randomness or the network (`std::time`,
//! `std::collections::HashMap`'s random seed, [`http`]) could give another answer to the same
//! input, and declaring `memoize` on it makes the component fail to load, naming the imports.
//! (Use `BTreeMap`, or `HashMap` with a fixed hasher, instead of `HashMap`'s default.)

// The generated bindings name this crate by its absolute path, from inside it too.
extern crate self as taskhost_sdk;

mod error;
pub mod http;
mod log;
mod progress;
mod run;

pub use error::TaskError;
pub use log::{Level, write_log};
pub use progress::{progress, progress_message};
/// Marks the function a task runs: `fn NAME(input: In) -> Result<Out, TaskError>` (or `-> Out`),
/// where `In: serde::de::DeserializeOwned` and `Out: serde::Serialize`. One per task crate.
///
/// `#[task(kind = "cpu")]` or `#[task(kind = "io")]` declares how its jobs run unless a job
/// says otherwise (see [the crate docs](crate#declaring-how-the-task-runs)); `#[task(memoize)]`
/// has its results remembered (see [memoized results](crate#memoized-results)).
pub use taskhost_sdk_macro::task;

/// What the `#[task]` expansion refers to. Not a public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::run::run;
    pub use wit_bindgen;

    /// The generated component bindings of the `task` world in `wit/`.
    pub mod bindings {
        wit_bindgen::generate!({
            world: "task",
            path: "../wit",
            pub_export_macro: true,
            default_bindings_module: "::taskhost_sdk::__private::bindings",
            runtime_path: "::taskhost_sdk::__private::wit_bindgen::rt",
        });
    }

    pub use bindings::Guest;
    pub use bindings::export;
    pub use bindings::taskhost::task::types::TaskError as WireError;
}
