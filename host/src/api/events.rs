//! `GET /v1/jobs/{id}/events`: a job's events as Server-Sent Events, so a client can watch a
//! job without polling.
//!
//! Each event has a name (`queued`, `started`, `log`, `progress`, `finished`), JSON data and an
//! id. A client that reconnects with the last id it saw in `Last-Event-ID` (browsers'
//! `EventSource` does this by itself) gets only what followed; once it has seen `finished`
//! the answer is `204 No Content`, which tells `EventSource` to stop reconnecting.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use super::auth::TenantCaller;
use super::error::ErrorBody;
use super::jobs::parse_job_id;
use super::{ApiError, ApiPath};
use crate::host::{EventPosition, Host, JobEvent};
use crate::jobs::JobId;

/// The header an SSE client sends on reconnecting, with the id of the last event it saw.
const LAST_EVENT_ID: &str = "last-event-id";

/// Streams the job's events until it finishes; keeps the connection alive with a comment
/// every 15 seconds while nothing happens.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/events",
    tag = "jobs",
    params(
        ("id" = JobId, Path, description = "The job's id"),
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^[qrf][0-9]{1,19}$",
            description = "The id of the last event seen (`q0`, `r12`, `f40`: a phase and a count of log lines): only later events are sent"),
    ),
    responses(
        (status = OK, description = "Server-Sent Events, each with an `id` (for `Last-Event-ID`) and JSON `data` whose schema the event's name chooses: `queued` {queued_at}, `started` {started_at}, `log` a `LogLine`, `progress` a `Progress`, `finished` a `JobRecord` (the final record; the stream ends after it)", body = String, content_type = "text/event-stream"),
        (status = NO_CONTENT, description = "`Last-Event-ID` was the `finished` event: nothing follows"),
        (status = BAD_REQUEST, description = "`invalid_job_id`, `invalid_path`, `invalid_event_id`", body = ErrorBody),
        (status = NOT_FOUND, description = "`job_not_found`", body = ErrorBody),
    ),
)]
pub(super) async fn job_events(
    State(host): State<Arc<Host>>,
    TenantCaller(tenant): TenantCaller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_job_id(id)?;
    let resume = resume_position(&headers)?;
    let events = host
        .events(&tenant, id, resume)
        .ok_or(ApiError::JobNotFound(id))?;
    if resume.is_some_and(|position| position.is_final()) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let stream = stream::unfold(events, |mut events| async move {
        let (event, position) = events.next().await?;
        Some((Ok::<_, Infallible>(sse_event(&event, position)), events))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Where the client's `Last-Event-ID` says to resume, if it sent one.
pub(super) fn resume_position(headers: &HeaderMap) -> Result<Option<EventPosition>, ApiError> {
    let position = headers
        .get(LAST_EVENT_ID)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).parse::<EventPosition>())
        .transpose()?;
    Ok(position)
}

fn sse_event(event: &JobEvent, position: EventPosition) -> Event {
    Event::default()
        .event(event.name())
        .id(position.to_string())
        .json_data(event)
        .expect("job events serialize")
}
