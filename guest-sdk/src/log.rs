//! Logging from a task into its job's log.

use std::fmt;

/// How important a log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Information for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the task handled.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one line to the job's log. The [`info!`](crate::info) family of macros call this.
///
/// Inside the host the line goes to the job's log; in a native build of the task (its unit
/// tests, say) it goes to stderr.
pub fn write_log(level: Level, message: fmt::Arguments<'_>) {
    let message = message.to_string();
    #[cfg(target_family = "wasm")]
    {
        use crate::__private::bindings::taskhost::task::host::{self, Level as Wire};
        let level = match level {
            Level::Trace => Wire::Trace,
            Level::Debug => Wire::Debug,
            Level::Info => Wire::Info,
            Level::Warn => Wire::Warn,
            Level::Error => Wire::Error,
        };
        host::log(level, &message);
    }
    #[cfg(not(target_family = "wasm"))]
    eprintln!("[{level:?}] {message}");
}

/// Writes a line to the job's log at trace level, with `format!` arguments.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::write_log($crate::Level::Trace, ::core::format_args!($($arg)+)) };
}

/// Writes a line to the job's log at debug level, with `format!` arguments.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::write_log($crate::Level::Debug, ::core::format_args!($($arg)+)) };
}

/// Writes a line to the job's log at info level, with `format!` arguments.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::write_log($crate::Level::Info, ::core::format_args!($($arg)+)) };
}

/// Writes a line to the job's log at warn level, with `format!` arguments.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::write_log($crate::Level::Warn, ::core::format_args!($($arg)+)) };
}

/// Writes a line to the job's log at error level, with `format!` arguments.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::write_log($crate::Level::Error, ::core::format_args!($($arg)+)) };
}
