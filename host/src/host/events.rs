//! A job's life as a stream of events (queued, started, log lines, progress, finished), for
//! clients that watch a job instead of polling it. A stream that starts late replays what
//! happened so far, and one resumed at an [`EventPosition`] skips what was seen before it.
//!
//! Progress is coalesced: a watcher gets at most one `progress` event per
//! [`PROGRESS_EVERY`], the latest report, so a task reporting in a tight loop costs each
//! watcher a few events a second rather than everything it can send. (Log lines are bounded
//! by the job's log limits.)

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::{LiveCursor, LogLine, Progress};
use crate::jobs::{JobRecord, JobWatch};
use crate::timestamp::Timestamp;

/// One step in a job's life.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum JobEvent {
    /// The job was accepted.
    Queued {
        /// When.
        queued_at: Timestamp,
    },
    /// The job started running.
    Started {
        /// When.
        started_at: Timestamp,
    },
    /// The job wrote a line to its log (SDK logger, stdout or stderr).
    Log(LogLine),
    /// The job reported its progress.
    Progress(Progress),
    /// The job finished: its final record, as `GET /v1/jobs/{id}` returns it.
    Finished(Box<JobRecord>),
}

impl JobEvent {
    /// The event's name: `queued`, `started`, `log`, `progress` or `finished`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Queued { .. } => "queued",
            Self::Started { .. } => "started",
            Self::Log(_) => "log",
            Self::Progress(_) => "progress",
            Self::Finished(_) => "finished",
        }
    }
}

/// How far a stream of events has come: how far in its life the job was, and how many of its
/// log lines were sent. Written as `q0`, `r12`, `f40` (queued, running, finished; lines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventPosition {
    started: bool,
    finished: bool,
    lines: usize,
}

impl EventPosition {
    /// Whether the stream had already ended here: nothing follows.
    pub fn is_final(&self) -> bool {
        self.finished
    }
}

impl fmt::Display for EventPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match (self.started, self.finished) {
            (_, true) => 'f',
            (true, false) => 'r',
            (false, false) => 'q',
        };
        write!(f, "{phase}{}", self.lines)
    }
}

/// A position that is not one this host writes.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an event id of this stream (ids look like q0, r12 or f40)")]
pub struct InvalidPosition(String);

impl FromStr for EventPosition {
    type Err = InvalidPosition;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPosition(text.to_owned());
        let mut chars = text.chars();
        let (started, finished) = match chars.next() {
            Some('q') => (false, false),
            Some('r') => (true, false),
            Some('f') => (true, true),
            _ => return Err(invalid()),
        };
        // 1 to 19 digits: `parse` would take a sign too (`q+1`), and 19 digits always fit (no
        // stream gets near 10^19 lines), so the API's pattern can say exactly what is taken.
        let digits = chars.as_str();
        if !(1..=19).contains(&digits.len()) || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(invalid());
        }
        let lines = digits.parse().map_err(|_| invalid())?;
        Ok(Self {
            started,
            finished,
            lines,
        })
    }
}

/// Least time between two `progress` events of one stream.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(50);

/// Follows one job, yielding its events in order until it finishes or the host stops.
pub struct JobEvents {
    watch: JobWatch,
    log_changes: watch::Receiver<()>,
    stopping: CancellationToken,
    /// Whether the `queued` event was sent (or skipped on resuming).
    queued_sent: bool,
    position: EventPosition,
    live: LiveCursor,
    pending: VecDeque<(JobEvent, EventPosition)>,
    /// The latest progress report, held back until `progress_due`.
    held_progress: Option<Progress>,
    /// When the next `progress` event may be sent.
    progress_due: Instant,
}

impl JobEvents {
    /// Events of the job `watch` follows, from `resume` on if given (else from the start);
    /// the stream ends early once `stopping` is cancelled.
    pub(super) fn new(
        watch: JobWatch,
        resume: Option<EventPosition>,
        stopping: CancellationToken,
    ) -> Self {
        let log_changes = watch.log.subscribe();
        let position = resume.unwrap_or_default();
        Self {
            watch,
            log_changes,
            stopping,
            queued_sent: resume.is_some(),
            position,
            live: LiveCursor {
                lines: position.lines,
                progress_reports: 0,
            },
            pending: VecDeque::new(),
            held_progress: None,
            progress_due: Instant::now(),
        }
    }

    /// The next event and the position just after it; `None` once the job has finished (its
    /// `finished` event sent) or the host is stopping.
    pub async fn next(&mut self) -> Option<(JobEvent, EventPosition)> {
        loop {
            if let Some(next) = self.pending.pop_front() {
                return Some(next);
            }
            if self.position.finished {
                return None;
            }
            // Mark both as seen before reading them, so no change between is missed.
            self.watch.record.mark_unchanged();
            self.log_changes.mark_unchanged();
            self.collect();
            if !self.pending.is_empty() {
                continue;
            }
            // While progress is held back, the log is looked at again only when it is due:
            // a task reporting in a loop wakes its watchers once per PROGRESS_EVERY.
            let holding = self.held_progress.is_some();
            tokio::select! {
                changed = self.watch.record.changed() => {
                    if changed.is_err() {
                        // The record is gone (forgotten): what it last said is all there is.
                        self.collect();
                        self.position.finished = true;
                    }
                }
                _ = self.log_changes.changed(), if !holding => {}
                () = tokio::time::sleep_until(self.progress_due), if holding => {}
                () = self.stopping.cancelled() => return None,
            }
        }
    }

    /// Queues the events that happened since the last look.
    fn collect(&mut self) {
        let (status, queued_at, started_at) = {
            let record = self.watch.record.borrow();
            (record.status, record.queued_at, record.started_at)
        };
        if !self.queued_sent {
            self.queued_sent = true;
            self.push(JobEvent::Queued { queued_at });
        }
        if let Some(started_at) = started_at.filter(|_| !self.position.started) {
            self.position.started = true;
            self.push(JobEvent::Started { started_at });
        }
        let update = self.watch.log.update(&mut self.live);
        for line in update.lines {
            self.position.lines += 1;
            self.push(JobEvent::Log(line));
        }
        // A new report supersedes the one held back: kept, the older one would be sent
        // after it (once due, or with `finished`) as if the job had gone backwards.
        let held = self.held_progress.take();
        let progress = update.progress.or(held);
        if status.is_final() {
            self.finish(progress);
        } else if let Some(progress) = progress {
            let now = Instant::now();
            if now >= self.progress_due {
                self.progress_due = now + PROGRESS_EVERY;
                self.push(JobEvent::Progress(progress));
            } else {
                self.held_progress = Some(progress);
            }
        }
    }

    /// Queues the lines only the final log has (all of them, once the job's log has moved
    /// from the live buffer into its record), the last progress not yet seen, then
    /// `finished`.
    fn finish(&mut self, progress: Option<Progress>) {
        let record = self.watch.record.borrow().clone();
        let unseen = record
            .log
            .as_ref()
            .and_then(|log| log.lines.get(self.position.lines..))
            .unwrap_or_default()
            .to_vec();
        for line in unseen {
            self.position.lines += 1;
            self.push(JobEvent::Log(line));
        }
        if let Some(progress) = progress {
            self.push(JobEvent::Progress(progress));
        }
        self.position.finished = true;
        self.push(JobEvent::Finished(Box::new(record)));
    }

    fn push(&mut self, event: JobEvent) {
        self.pending.push_back((event, self.position));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_their_text() {
        for text in ["q0", "r12", "f40"] {
            let position: EventPosition = text.parse().unwrap();
            assert_eq!(position.to_string(), text);
        }
        assert!("f3".parse::<EventPosition>().unwrap().is_final());
        assert!(!"r3".parse::<EventPosition>().unwrap().is_final());
        for bad in [
            "",
            "x1",
            "r",
            "r-1",
            "r+1",
            "q1.5",
            "R1",
            "q 1",
            "q10000000000000000000",
        ] {
            assert!(bad.parse::<EventPosition>().is_err(), "{bad:?}");
        }
    }
}
