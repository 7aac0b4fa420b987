//! Responses that carry many job records (a page of jobs, a batch), written as the client
//! reads them: a record is serialized only when the connection has room for it, so a
//! listing of a thousand records with megabyte outputs never sits whole in the server's
//! memory (four such listings at once used to cost gigabytes), and a client that stops
//! reading holds only the records' shared parts and one chunk.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::Serialize;
use serde_json::{Map, Value};

/// About how many bytes of records go into one chunk of the body.
const CHUNK_BYTES: usize = 64 << 10;

/// A JSON object whose one large field is an array of records, sent a chunk at a time.
pub(super) struct StreamedJson<T> {
    /// The object's text up to the array's first element: `{"other":…,"field":[`.
    opening: Vec<u8>,
    records: Vec<T>,
}

impl<T: Serialize + Send + 'static> StreamedJson<T> {
    /// The object `head` (whose `field`, if it has one, is left out) with `records` as its
    /// `field`, after its other fields.
    pub(super) fn new(head: &impl Serialize, field: &str, records: Vec<T>) -> Self {
        let mut fields = match serde_json::to_value(head) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        fields.remove(field);
        let mut opening = serde_json::to_vec(&fields).expect("a map of JSON values serializes");
        opening.pop(); // its closing brace
        if !fields.is_empty() {
            opening.push(b',');
        }
        serde_json::to_writer(&mut opening, field).expect("a string serializes");
        opening.extend_from_slice(b":[");
        Self { opening, records }
    }
}

impl<T: Serialize + Send + 'static> IntoResponse for StreamedJson<T> {
    fn into_response(self) -> Response {
        let Self { opening, records } = self;
        let mut records = records.into_iter().enumerate().peekable();
        let mut opening = Some(opening);
        let chunks = stream::iter(std::iter::from_fn(move || {
            let mut chunk = opening.take()?;
            while chunk.len() < CHUNK_BYTES {
                let Some((index, record)) = records.next() else {
                    chunk.extend_from_slice(b"]}");
                    return Some(Ok::<_, Infallible>(Bytes::from(chunk)));
                };
                if index > 0 {
                    chunk.push(b',');
                }
                // A record is strings, numbers and raw JSON already checked: it serializes.
                serde_json::to_writer(&mut chunk, &record).expect("a job record serializes");
            }
            if records.peek().is_some() {
                opening = Some(Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4));
            } else {
                chunk.extend_from_slice(b"]}");
            }
            Some(Ok(Bytes::from(chunk)))
        }));
        let mut response = Body::from_stream(chunks).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::json;

    async fn body_of(response: Response) -> (Value, usize) {
        let mut body = response.into_body();
        let (mut text, mut chunks) = (Vec::new(), 0);
        while let Some(frame) = body.frame().await {
            text.extend_from_slice(&frame.unwrap().into_data().unwrap());
            chunks += 1;
        }
        (serde_json::from_slice(&text).unwrap(), chunks)
    }

    #[tokio::test]
    async fn the_streamed_object_is_the_object_and_comes_in_chunks() {
        let records: Vec<Value> = (0..1000)
            .map(|i| json!({"i": i, "text": "x".repeat(1000)}))
            .collect();
        let head = json!({"next_cursor": "c", "jobs": []});
        let (body, chunks) =
            body_of(StreamedJson::new(&head, "jobs", records.clone()).into_response()).await;
        assert_eq!(body, json!({"next_cursor": "c", "jobs": records}));
        assert!(chunks >= 1_000_000 / CHUNK_BYTES, "{chunks} chunks");
    }

    #[tokio::test]
    async fn an_empty_listing_and_a_head_without_fields_are_still_objects() {
        let (body, _) =
            body_of(StreamedJson::new(&json!({}), "jobs", Vec::<Value>::new()).into_response())
                .await;
        assert_eq!(body, json!({"jobs": []}));
        let (body, _) =
            body_of(StreamedJson::new(&json!({"a": 1}), "jobs", vec![json!(1)]).into_response())
                .await;
        assert_eq!(body, json!({"a": 1, "jobs": [1]}));
    }
}
