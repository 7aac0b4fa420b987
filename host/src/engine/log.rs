//! A job's log: the lines it logged through the SDK and what it wrote to stdout and stderr, in
//! the order they came, bounded in lines and bytes (what does not fit is dropped and the log
//! marked truncated), and the progress it last reported. Watchers see both live, while the
//! job runs.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Longest progress message kept, in bytes.
const MAX_PROGRESS_MESSAGE: usize = 1024;

/// How much of its log a job keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLimits {
    /// Most lines kept.
    pub max_lines: usize,
    /// Most bytes of text kept.
    pub max_bytes: usize,
}

impl LogLimits {
    /// The limits of `taskhost serve` without flags: 1000 lines, 64 KiB.
    pub const DEFAULT: Self = Self {
        max_lines: 1000,
        max_bytes: 64 << 10,
    };
}

impl Default for LogLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How important a log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLine {
    /// Where it came from; absent for the SDK's logger.
    #[serde(default, skip_serializing_if = "LogStream::is_log")]
    pub stream: LogStream,
    /// Its level, for lines of the SDK's logger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub level: Option<LogLevel>,
    /// Its text (without the line break).
    pub message: String,
}

/// The lines a job logged, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobLog {
    /// The lines kept.
    pub lines: Vec<LogLine>,
    /// Whether anything was dropped (or a line cut short) because the log was full.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl JobLog {
    /// Roughly the memory the lines take, in bytes: their text and a fixed cost per line.
    pub fn size_bytes(&self) -> usize {
        let per_line = std::mem::size_of::<LogLine>();
        self.lines
            .iter()
            .map(|line| line.message.len() + per_line)
            .sum()
    }
}

/// How far a job has come, as it last reported (`taskhost_sdk::progress`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Units of work done.
    pub done: u64,
    /// Units of work in all, when the task knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub total: Option<u64>,
    /// What it is doing, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<String>,
}

/// A job's log and progress as they are being written, shared by the store (the SDK's logger
/// and progress calls), the job's stdout and stderr streams, and whoever watches the job.
#[derive(Clone, Debug)]
pub struct LiveLog(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    buffer: Mutex<LogBuffer>,
    /// Bumped on every change, to wake watchers.
    changes: watch::Sender<()>,
}

#[derive(Debug)]
struct LogBuffer {
    log: JobLog,
    limits: LogLimits,
    /// Bytes of text kept so far.
    bytes: usize,
    /// Text written to stdout and stderr after their last line break.
    partial: [Vec<u8>; 2],
    progress: Option<Progress>,
    /// How many times progress was reported.
    progress_reports: u64,
    /// Whether the job has finished and its log moved into its outcome.
    finished: bool,
}

/// What a watcher has not seen yet of a [`LiveLog`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveUpdate {
    /// The lines after those already seen.
    pub lines: Vec<LogLine>,
    /// The latest progress, if it was reported since it was last seen.
    pub progress: Option<Progress>,
    /// Whether the job has finished: lines written after this point (an unfinished last
    /// line) are only in the job's final log.
    pub finished: bool,
}

/// Where a watcher is in a [`LiveLog`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveCursor {
    /// Lines seen.
    pub lines: usize,
    /// Progress reports seen.
    pub progress_reports: u64,
}

impl LiveLog {
    /// An empty log that keeps at most `limits`.
    pub fn new(limits: LogLimits) -> Self {
        Self(Arc::new(Shared {
            buffer: Mutex::new(LogBuffer {
                log: JobLog::default(),
                limits,
                bytes: 0,
                partial: [Vec::new(), Vec::new()],
                progress: None,
                progress_reports: 0,
                finished: false,
            }),
            changes: watch::Sender::new(()),
        }))
    }

    /// A receiver that wakes on every change after it is made.
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.0.changes.subscribe()
    }

    /// What changed since `cursor`, which moves past it.
    pub fn update(&self, cursor: &mut LiveCursor) -> LiveUpdate {
        let buffer = self.lock();
        let lines = buffer
            .log
            .lines
            .get(cursor.lines..)
            .unwrap_or_default()
            .to_vec();
        cursor.lines += lines.len();
        let progress = (buffer.progress_reports > cursor.progress_reports)
            .then(|| buffer.progress.clone())
            .flatten();
        cursor.progress_reports = buffer.progress_reports;
        LiveUpdate {
            lines,
            progress,
            finished: buffer.finished,
        }
    }

    /// The progress the job last reported.
    pub fn progress(&self) -> Option<Progress> {
        self.lock().progress.clone()
    }

    /// Adds a log line: the SDK's logger's, or the host's about the job (a refused request).
    pub(crate) fn log(&self, level: LogLevel, message: String) {
        self.change_unless_full(|buffer| buffer.push(LogStream::Log, Some(level), message));
    }

    /// Records the job's progress (its message cut to a bound).
    pub(crate) fn report_progress(&self, mut progress: Progress) {
        if let Some(message) = &mut progress.message {
            super::outcome::truncate_at_char(message, MAX_PROGRESS_MESSAGE);
        }
        self.change(|buffer| {
            buffer.progress = Some(progress);
            buffer.progress_reports += 1;
        });
    }

    /// Adds what the task wrote to stdout or stderr: each complete line becomes a log line;
    /// the rest waits for its line break (or the end of the job).
    pub(crate) fn write(&self, stream: LogStream, bytes: &[u8]) {
        self.change_unless_full(|buffer| buffer.write(stream, bytes));
    }

    /// The log, with any unfinished stdout or stderr line as its last lines. Watchers see the
    /// job as finished from now on.
    pub(crate) fn finish(&self) -> JobLog {
        self.change(|buffer| {
            for (index, stream) in [LogStream::Stdout, LogStream::Stderr]
                .into_iter()
                .enumerate()
            {
                let line = std::mem::take(&mut buffer.partial[index]);
                if !line.is_empty() {
                    buffer.push_bytes(stream, line);
                }
            }
            buffer.finished = true;
            std::mem::take(&mut buffer.log)
        })
    }

    /// Changes the buffer with `f` and wakes the watchers, unless the log is full: then what
    /// is written is dropped at once (no line is built, no watcher woken), so a task writing
    /// without end costs the host a lock per write.
    fn change_unless_full(&self, f: impl FnOnce(&mut LogBuffer)) {
        let mut buffer = self.lock();
        if buffer.is_full() {
            buffer.log.truncated = true;
            return;
        }
        f(&mut buffer);
        drop(buffer);
        self.0.changes.send_replace(());
    }

    /// Changes the buffer, then wakes the watchers.
    fn change<T>(&self, f: impl FnOnce(&mut LogBuffer) -> T) -> T {
        let result = f(&mut self.lock());
        self.0.changes.send_replace(());
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogBuffer> {
        // A panic while holding it cannot leave the buffer inconsistent: keep using it.
        self.0
            .buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl LogBuffer {
    /// Whether no more lines fit.
    fn is_full(&self) -> bool {
        self.log.lines.len() >= self.limits.max_lines || self.bytes >= self.limits.max_bytes
    }

    fn write(&mut self, stream: LogStream, bytes: &[u8]) {
        let index = usize::from(stream == LogStream::Stderr);
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|byte| *byte == b'\n') {
            let mut line = std::mem::take(&mut self.partial[index]);
            line.extend_from_slice(&rest[..end]);
            self.push_bytes(stream, line);
            rest = &rest[end + 1..];
        }
        // A line longer than the whole log cannot be kept whole anyway.
        let room = self.limits.max_bytes + 1;
        let partial = &mut self.partial[index];
        partial.extend_from_slice(&rest[..rest.len().min(room.saturating_sub(partial.len()))]);
    }

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

    fn log(max_lines: usize, max_bytes: usize) -> LiveLog {
        LiveLog::new(LogLimits {
            max_lines,
            max_bytes,
        })
    }

    fn messages(log: &JobLog) -> Vec<&str> {
        log.lines.iter().map(|line| line.message.as_str()).collect()
    }

    #[test]
    fn writes_to_a_full_log_are_dropped_without_waking_watchers() {
        let log = log(2, 1024);
        log.write(LogStream::Stdout, b"one\ntwo\n");
        let mut changes = log.subscribe();
        changes.mark_unchanged();
        for _ in 0..10_000 {
            log.write(LogStream::Stdout, b"more\n");
            log.log(LogLevel::Info, "and more".into());
        }
        assert!(!changes.has_changed().unwrap(), "no watcher woken");
        let finished = log.finish();
        assert_eq!(messages(&finished), ["one", "two"]);
        assert!(finished.truncated);
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
    fn a_watcher_sees_each_line_once_and_only_the_latest_progress() {
        let shared = log(100, 1000);
        let mut changes = shared.subscribe();
        let mut cursor = LiveCursor::default();
        shared.log(LogLevel::Info, "one".into());
        shared.report_progress(Progress {
            done: 1,
            ..Progress::default()
        });
        shared.report_progress(Progress {
            done: 2,
            total: Some(3),
            message: Some("x".repeat(5000)),
        });
        assert!(changes.has_changed().unwrap());
        let update = shared.update(&mut cursor);
        assert_eq!(
            messages(&JobLog {
                lines: update.lines,
                truncated: false
            }),
            ["one"]
        );
        let progress = update.progress.unwrap();
        assert_eq!((progress.done, progress.total), (2, Some(3)));
        assert_eq!(progress.message.unwrap().len(), MAX_PROGRESS_MESSAGE);
        assert!(!update.finished);

        changes.mark_unchanged();
        shared.write(LogStream::Stdout, b"two\nunfinished");
        assert!(changes.has_changed().unwrap());
        let update = shared.update(&mut cursor);
        assert_eq!(update.lines.len(), 1);
        assert_eq!(
            update.progress, None,
            "progress already seen is not repeated"
        );

        let log = shared.finish();
        assert_eq!(messages(&log), ["one", "two", "unfinished"]);
        let update = shared.update(&mut cursor);
        assert!(update.finished && update.lines.is_empty());
        assert_eq!(
            shared.progress().unwrap().done,
            2,
            "progress outlives the log"
        );
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
