//! A reader of Server-Sent Events, for following a job's event stream.

use std::io::{BufRead, BufReader, Read};

use serde_json::Value;

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    /// Its name (`event:`).
    pub event: String,
    /// Its id (`id:`).
    pub id: String,
    /// Its data (`data:` lines joined), parsed as JSON.
    pub data: Value,
}

/// The events of an open `text/event-stream` response, read as they arrive.
pub struct EventStream {
    reader: BufReader<Box<dyn Read + Send>>,
}

impl EventStream {
    /// Reads events from `body`.
    pub fn new(body: Box<dyn Read + Send>) -> Self {
        Self {
            reader: BufReader::new(body),
        }
    }

    /// Every event until the stream ends.
    pub fn collect_all(self) -> Vec<SseEvent> {
        self.collect()
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventStream")
    }
}

impl Iterator for EventStream {
    type Item = SseEvent;

    /// The next event (keep-alive comments skipped); `None` once the server ends the stream.
    fn next(&mut self) -> Option<SseEvent> {
        let (mut event, mut id, mut data) = (String::new(), String::new(), Vec::new());
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data.join("\n")).expect("event data is JSON");
                return Some(SseEvent { event, id, data });
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = value.to_owned(),
                "id" => id = value.to_owned(),
                "data" => data.push(value.to_owned()),
                _ => {}
            }
        }
    }
}
