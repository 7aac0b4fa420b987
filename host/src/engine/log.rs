//! A job's log: the lines it logged through the SDK and what it wrote to stdout and stderr, in
//! the order they came, bounded in lines and bytes (what does not fit is dropped and the log
//! marked truncated).

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// How much of its log a job keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLimits {
    /// Most lines kept.
    pub max_lines: usize,
    /// Most bytes of text kept.
    pub max_bytes: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_lines: 1000,
            max_bytes: 64 << 10,
        }
    }
}

/// How important a log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
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

/// Where a line came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// The SDK's logger (`info!`, `warn!`, …): the line has a level.
    #[default]
    Log,
    /// The task's standard output.
    Stdout,
    /// The task's standard error.
    Stderr,
}

impl LogStream {
    fn is_log(&self) -> bool {
        *self == Self::Log
    }
}

/// One line of a job's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Where it came from; absent for the SDK's logger.
    #[serde(default, skip_serializing_if = "LogStream::is_log")]
    pub stream: LogStream,
    /// Its level, for lines of the SDK's logger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
    /// Its text (without the line break).
    pub message: String,
}

/// The lines a job logged, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLog {
    /// The lines kept.
    pub lines: Vec<LogLine>,
    /// Whether anything was dropped (or a line cut short) because the log was full.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A job's log as it is being written, shared by the store (the SDK's logger) and the job's
/// stdout and stderr streams.
#[derive(Clone, Debug)]
pub(crate) struct SharedLog(Arc<Mutex<LogBuffer>>);

#[derive(Debug)]
struct LogBuffer {
    log: JobLog,
    limits: LogLimits,
    /// Bytes of text kept so far.
    bytes: usize,
    /// Text written to stdout and stderr after their last line break.
    partial: [Vec<u8>; 2],
}

impl SharedLog {
    pub(crate) fn new(limits: LogLimits) -> Self {
        Self(Arc::new(Mutex::new(LogBuffer {
            log: JobLog::default(),
            limits,
            bytes: 0,
            partial: [Vec::new(), Vec::new()],
        })))
    }

    /// Adds a line of the SDK's logger.
    pub(crate) fn log(&self, level: LogLevel, message: String) {
        self.lock().push(LogStream::Log, Some(level), message);
    }

    /// Adds what the task wrote to stdout or stderr: each complete line becomes a log line;
    /// the rest waits for its line break (or the end of the job).
    pub(crate) fn write(&self, stream: LogStream, bytes: &[u8]) {
        let mut buffer = self.lock();
        let index = usize::from(stream == LogStream::Stderr);
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|byte| *byte == b'\n') {
            let mut line = std::mem::take(&mut buffer.partial[index]);
            line.extend_from_slice(&rest[..end]);
            buffer.push_bytes(stream, line);
            rest = &rest[end + 1..];
        }
        // A line longer than the whole log cannot be kept whole anyway.
        let room = buffer.limits.max_bytes + 1;
        let partial = &mut buffer.partial[index];
        partial.extend_from_slice(&rest[..rest.len().min(room.saturating_sub(partial.len()))]);
    }

    /// The log, with any unfinished stdout or stderr line as its last lines.
    pub(crate) fn finish(&self) -> JobLog {
        let mut buffer = self.lock();
        for (index, stream) in [LogStream::Stdout, LogStream::Stderr]
            .into_iter()
            .enumerate()
        {
            let line = std::mem::take(&mut buffer.partial[index]);
            if !line.is_empty() {
                buffer.push_bytes(stream, line);
            }
        }
        std::mem::take(&mut buffer.log)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogBuffer> {
        // A panic while holding it cannot leave the buffer inconsistent: keep using it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl LogBuffer {
    fn push_bytes(&mut self, stream: LogStream, mut line: Vec<u8>) {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let message = String::from_utf8(line)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        self.push(stream, None, message);
    }

    /// Appends a line, or as much of it as fits; marks the log truncated if anything did not.
    fn push(&mut self, stream: LogStream, level: Option<LogLevel>, mut message: String) {
        let room = self.limits.max_bytes - self.bytes;
        if self.log.lines.len() >= self.limits.max_lines || (room == 0 && !message.is_empty()) {
            self.log.truncated = true;
            return;
        }
        if message.len() > room {
            super::outcome::truncate_at_char(&mut message, room);
            self.log.truncated = true;
            // Full now: later lines are dropped, not cut to the bytes left.
            self.bytes = self.limits.max_bytes;
        } else {
            self.bytes += message.len();
        }
        self.log.lines.push(LogLine {
            stream,
            level,
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(max_lines: usize, max_bytes: usize) -> SharedLog {
        SharedLog::new(LogLimits {
            max_lines,
            max_bytes,
        })
    }

    fn messages(log: &JobLog) -> Vec<&str> {
        log.lines.iter().map(|line| line.message.as_str()).collect()
    }

    #[test]
    fn stdout_becomes_lines_in_order_with_the_sdk_log() {
        let shared = log(100, 1000);
        shared.write(LogStream::Stdout, b"one\ntw");
        shared.log(LogLevel::Info, "logged".into());
        shared.write(LogStream::Stdout, b"o\r\nthree");
        shared.write(LogStream::Stderr, b"oops\n");
        let log = shared.finish();
        assert_eq!(messages(&log), ["one", "logged", "two", "oops", "three"]);
        assert_eq!(log.lines[0].stream, LogStream::Stdout);
        assert_eq!(log.lines[1].level, Some(LogLevel::Info));
        assert_eq!(log.lines[3].stream, LogStream::Stderr);
        assert!(!log.truncated);
    }

    #[test]
    fn the_log_stops_at_its_line_bound_and_says_so() {
        let shared = log(3, 1000);
        for i in 0..10 {
            shared.write(LogStream::Stdout, format!("line {i}\n").as_bytes());
        }
        let log = shared.finish();
        assert_eq!(messages(&log), ["line 0", "line 1", "line 2"]);
        assert!(log.truncated);
    }

    #[test]
    fn a_line_past_the_byte_bound_is_cut_and_later_ones_dropped() {
        let shared = log(100, 10);
        shared.log(LogLevel::Info, "12345678".into());
        shared.write(LogStream::Stdout, "aé-long line\nnext\n".as_bytes());
        let log = shared.finish();
        // Two bytes were left: "a" fits, "é" (two bytes) would not.
        assert_eq!(messages(&log), ["12345678", "a"]);
        assert!(log.truncated);
    }

    #[test]
    fn an_endless_line_does_not_grow_without_bound() {
        let shared = log(100, 16);
        for _ in 0..1000 {
            shared.write(LogStream::Stdout, &[b'x'; 1024]);
        }
        let log = shared.finish();
        assert_eq!(log.lines[0].message.len(), 16);
        assert!(log.truncated);
    }

    #[test]
    fn invalid_utf8_is_kept_lossily() {
        let shared = log(100, 100);
        shared.write(LogStream::Stderr, b"bad \xff byte\n");
        assert_eq!(messages(&shared.finish()), ["bad \u{fffd} byte"]);
    }

    #[test]
    fn log_lines_serialize_without_defaults() {
        let line = LogLine {
            stream: LogStream::Log,
            level: Some(LogLevel::Warn),
            message: "m".into(),
        };
        assert_eq!(
            serde_json::to_value(line).unwrap(),
            serde_json::json!({"level": "warn", "message": "m"})
        );
    }
}
