//! How a job ended: its output or a typed error, what it logged, and what it cost.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::{Trap, WasmBacktrace};

use super::Limits;
use super::bindings::sync::TaskError;
use super::json::RawJson;
use super::limiter::MAX_TABLE_ELEMENTS;
use super::log::JobLog;
use super::state::HostState;
use super::stop::Stopped;

/// The result of running one job.
#[derive(Debug)]
pub struct Outcome {
    /// The task's JSON output, or why there is none.
    pub result: Result<RawJson, JobError>,
    /// What the task logged.
    pub log: JobLog,
    /// What the job cost.
    pub receipt: Receipt,
}

impl Outcome {
    /// The outcome of a job that failed before the task could run.
    pub fn failed(error: JobError) -> Self {
        Self {
            result: Err(error),
            log: JobLog::default(),
            receipt: Receipt::default(),
        }
    }
}

/// Resources one job used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Time from creating the store to the end of the call.
    pub wall: Duration,
    /// CPU time the job's thread(s) spent on it, host calls included.
    pub cpu: Duration,
    /// Wall-clock time spent in host calls (WASI, HTTP, logging, waits on clocks).
    pub host_calls: Duration,
    /// Fuel consumed, when the job ran fuel-metered code.
    pub fuel_consumed: Option<u64>,
    /// Largest size the job's linear memories and tables reached together, in bytes.
    pub peak_memory_bytes: usize,
}

impl Outcome {
    /// Roughly what keeping this outcome costs, in bytes: its output or error message and
    /// its log.
    pub fn size_bytes(&self) -> usize {
        let result = match &self.result {
            Ok(output) => output.len(),
            Err(error) => error.message.len(),
        };
        result + self.log.size_bytes()
    }
}

/// Why a job failed: a stable code and a human message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    /// What kind of failure this is; clients branch on this.
    pub code: ErrorCode,
    /// What happened, for people.
    pub message: String,
}

/// The closed set of reasons a job can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The input did not have the shape the task expects.
    InvalidInput,
    /// The task ran and returned an error.
    TaskError,
    /// The task panicked.
    Panic,
    /// The task trapped (e.g. `unreachable`, an out-of-bounds access).
    Trap,
    /// The job ran past its deadline and was stopped.
    Timeout,
    /// The job used all the fuel it was given.
    FuelExhausted,
    /// The task tried to grow its memory past its limit.
    MemoryLimit,
    /// The task's output was larger than the job's `max_output_kib`.
    OutputTooLarge,
    /// The task overflowed its wasm stack.
    StackOverflow,
    /// The job was cancelled before it finished.
    Cancelled,
    /// The code the job needs could not be compiled: a task's fuel-metered variant, compiled
    /// when the first job with a fuel budget arrives (`--fuel-metering on-demand`), did not
    /// compile (too large, too slow): the message says why.
    CompileFailed,
    /// The job could not be run by the host: the message says why.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [Self; 12] = [
        Self::InvalidInput,
        Self::TaskError,
        Self::Panic,
        Self::Trap,
        Self::Timeout,
        Self::FuelExhausted,
        Self::MemoryLimit,
        Self::OutputTooLarge,
        Self::StackOverflow,
        Self::Cancelled,
        Self::CompileFailed,
        Self::Internal,
    ];

    /// The code as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::TaskError => "task_error",
            Self::Panic => "panic",
            Self::Trap => "trap",
            Self::Timeout => "timeout",
            Self::FuelExhausted => "fuel_exhausted",
            Self::MemoryLimit => "memory_limit",
            Self::OutputTooLarge => "output_too_large",
            Self::StackOverflow => "stack_overflow",
            Self::Cancelled => "cancelled",
            Self::CompileFailed => "compile_failed",
            Self::Internal => "internal",
        }
    }
}

/// Longest error message a job keeps, in bytes; a longer one is cut and marked.
pub const MAX_ERROR_MESSAGE: usize = 4 * 1024;

/// Shortens `text` to at most `max` bytes without splitting a character.
pub(crate) fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// Cuts `message` to [`MAX_ERROR_MESSAGE`] bytes, saying where and how long it was.
pub(crate) fn cut_message(mut message: String) -> String {
    let length = message.len();
    if length > MAX_ERROR_MESSAGE {
        truncate_at_char(&mut message, MAX_ERROR_MESSAGE);
        message.push_str(&format!("… [cut: {length} bytes in all]"));
    }
    message
}

/// Turns the result of instantiating and calling a task into an outcome.
pub(crate) fn classify(
    result: wasmtime::Result<Result<String, TaskError>>,
    state: HostState,
    limits: Limits,
    receipt: Receipt,
) -> Outcome {
    let result = match result {
        Ok(Ok(output)) => checked_output(output, limits.max_output_bytes),
        Ok(Err(TaskError::InvalidInput(message))) => Err(JobError {
            code: ErrorCode::InvalidInput,
            message: cut_message(message),
        }),
        Ok(Err(TaskError::Failed(message))) => Err(JobError {
            code: ErrorCode::TaskError,
            message: cut_message(message),
        }),
        Err(error) => Err(classify_abort(&error, &state, limits, receipt)),
    };
    Outcome {
        result,
        log: state.log.finish(),
        receipt,
    }
}

/// The task's output, if it is at most `max_bytes` of JSON. The text is checked as it is,
/// never parsed into a tree; one that is too large is dropped at once.
fn checked_output(output: String, max_bytes: usize) -> Result<RawJson, JobError> {
    if output.len() > max_bytes {
        return Err(JobError {
            code: ErrorCode::OutputTooLarge,
            message: format!(
                "the task returned {} bytes of output; the job's limit is {} KiB \
                 (max_output_kib)",
                output.len(),
                max_bytes >> 10
            ),
        });
    }
    RawJson::parse(output).map_err(|error| JobError {
        code: ErrorCode::TaskError,
        message: format!("the task returned {error}"),
    })
}

/// Why the instance ended without returning, most specific reason first: the host stopped
/// it, it hit its memory limit, it panicked, or it trapped.
fn classify_abort(
    error: &wasmtime::Error,
    state: &HostState,
    limits: Limits,
    receipt: Receipt,
) -> JobError {
    let error_with = |code, message| JobError { code, message };
    if let Some(stopped) = error.downcast_ref::<Stopped>() {
        return match stopped {
            Stopped::Timeout => error_with(
                ErrorCode::Timeout,
                format!(
                    "the job ran past its deadline of {} ms and was stopped",
                    limits.timeout.as_millis()
                ),
            ),
            Stopped::Cancelled => error_with(
                ErrorCode::Cancelled,
                "the job was cancelled while running".into(),
            ),
        };
    }
    if let Some(desired) = state.limiter.refused_memory {
        return error_with(
            ErrorCode::MemoryLimit,
            format!(
                "the task tried to grow its memory to {} MiB; its limit is {} MiB",
                desired.div_ceil(1 << 20),
                limits.memory_bytes >> 20
            ),
        );
    }
    if let Some(elements) = state.limiter.refused_table_elements {
        return error_with(
            ErrorCode::MemoryLimit,
            format!(
                "the task tried to grow a table to {elements} elements; a table holds at most \
                 {MAX_TABLE_ELEMENTS}"
            ),
        );
    }
    if let Some(exhausted) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        // The scheduler reserves pool slots before a job starts, so this is a host bug.
        tracing::error!(%exhausted, "a job started without a free instance-pool slot");
        return error_with(
            ErrorCode::Internal,
            format!("the host had no instance-pool slot free for this job: {exhausted}"),
        );
    }
    if let Some(message) = &state.panic_message {
        return error_with(ErrorCode::Panic, format!("the task {message}"));
    }
    let Some(trap) = error.downcast_ref::<Trap>() else {
        return error_with(ErrorCode::Trap, cut_message(format!("{error:#}")));
    };
    let (code, mut message) = match trap {
        Trap::StackOverflow => (
            ErrorCode::StackOverflow,
            "the task overflowed its wasm stack (too deep a recursion?)".to_owned(),
        ),
        Trap::OutOfFuel => (
            ErrorCode::FuelExhausted,
            format!(
                "the job used all of its fuel ({} units)",
                receipt.fuel_consumed.unwrap_or_default()
            ),
        ),
        _ => (ErrorCode::Trap, trap.to_string()),
    };
    if let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() {
        message.push_str(&format!("\n{backtrace}"));
    }
    JobError {
        code,
        message: cut_message(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_never_splits_a_character() {
        let mut text = "aé".to_owned(); // 'é' is two bytes
        truncate_at_char(&mut text, 2);
        assert_eq!(text, "a");
    }

    #[test]
    fn long_messages_are_cut_and_say_so() {
        let short = "é".repeat(10);
        assert_eq!(cut_message(short.clone()), short);
        let cut = cut_message("é".repeat(MAX_ERROR_MESSAGE));
        assert!(cut.len() < MAX_ERROR_MESSAGE + 64, "{}", cut.len());
        assert!(
            cut.ends_with(&format!("… [cut: {} bytes in all]", 2 * MAX_ERROR_MESSAGE)),
            "{}",
            &cut[MAX_ERROR_MESSAGE - 8..]
        );
    }

    #[test]
    fn output_over_the_limit_is_refused_with_its_size_and_bad_json_is_a_task_error() {
        let error = checked_output("[0,0,0]".into(), 6).unwrap_err();
        assert_eq!(error.code, ErrorCode::OutputTooLarge);
        assert!(error.message.contains("7 bytes"), "{}", error.message);
        assert_eq!(
            checked_output("[0,0,0]".into(), 7).unwrap().get(),
            "[0,0,0]"
        );
        let error = checked_output("[0,".into(), 100).unwrap_err();
        assert_eq!(error.code, ErrorCode::TaskError);
    }

    #[test]
    fn every_code_is_listed_once_in_order_and_named_as_serialized() {
        for (index, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code as usize, index);
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn error_codes_serialize_in_snake_case() {
        let codes = [
            ErrorCode::InvalidInput,
            ErrorCode::TaskError,
            ErrorCode::StackOverflow,
            ErrorCode::OutputTooLarge,
        ];
        assert_eq!(
            serde_json::to_value(codes).unwrap(),
            serde_json::json!([
                "invalid_input",
                "task_error",
                "stack_overflow",
                "output_too_large"
            ])
        );
    }
}
