//! The error a task returns when it cannot produce an output.

use std::fmt;

/// A failure the task reports: the job fails with code `task_error` (or `invalid_input`, see
/// [`TaskError::invalid_input`]) and this message.
///
/// `?` converts any [`std::error::Error`] into a `TaskError`, keeping its chain of causes in
/// the message.
pub struct TaskError {
    kind: Kind,
    message: String,
}

/// Which job error a [`TaskError`] becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    InvalidInput,
    Failed,
}

impl TaskError {
    /// A task failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Failed,
            message: message.into(),
        }
    }

    /// The input parsed but is not acceptable (a number out of range, say): the job fails
    /// with `invalid_input` rather than `task_error`.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::InvalidInput,
            message: message.into(),
        }
    }

    /// The message the job's error will carry.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }
}

impl<E: std::error::Error> From<E> for TaskError {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(message)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskError({:?}: {:?})", self.kind, self.message)
    }
}
