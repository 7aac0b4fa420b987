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
//! - [`info!`], [`warn!`] and friends write to the job's log.
//! - [`http`] sends HTTP requests, to the hosts the host's operator allows.
//!
//! The function may also return a plain serializable value when it cannot fail.

// The generated bindings name this crate by its absolute path, from inside it too.
extern crate self as taskhost_sdk;

mod error;
pub mod http;
mod log;
mod run;

pub use error::TaskError;
pub use log::{Level, write_log};
/// Marks the function a task runs: `fn NAME(input: In) -> Result<Out, TaskError>` (or `-> Out`),
/// where `In: serde::de::DeserializeOwned` and `Out: serde::Serialize`. One per task crate.
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
