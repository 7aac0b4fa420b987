//! The HTTP API: an axum router over [`Host`], and its OpenAPI 3.1 document at
//! `GET /openapi.json`, generated from the same registrations that route requests. Handlers
//! translate between HTTP and the host and nothing more; each resource has its module. Every
//! route but `/healthz`, `/readyz` and `/openapi.json` takes an API key (`auth`).
//!
//! | route | does |
//! | --- | --- |
//! | `GET /healthz` | `ok` while the server is up |
//! | `GET /readyz` | `ready` once every task found at start has loaded; `503 not_ready` before |
//! | `GET /openapi.json` | this API's OpenAPI 3.1 document |
//! | `GET /v1/tasks` | the tasks served, with hash, size, default kind, imports, how their code was obtained and since when; tasks loading; files that did not load. `?since=REVISION&wait_ms=N` waits for a change |
//! | `GET /v1/tasks/{name}` | one task |
//! | `PUT /v1/tasks/{name}` | upload a component (`application/wasm`): checked and compiled before it serves |
//! | `DELETE /v1/tasks/{name}` | delete a task and its file |
//! | `GET /v1/status` | every part's state (tasks, engine, cache, queue, engine threads, IO executor, job records, batches, memo) and health |
//! | `GET /metrics` | every metric, in the OpenMetrics text format, for Prometheus |
//! | `POST /v1/jobs` | (`Idempotency-Key` header: a retry returns the first job) submit `{"task", "input", "wait_ms"?, "timeout_ms"?, "fuel"?, "memory_mib"?, "max_output_kib"?, "kind"?, "memoize"?}`: 200 if finished within the wait, else 202; 429 when the queue is full |
//! | `GET /v1/jobs` | jobs, newest first: `?status=&task=&batch=` filter, `?limit=` (≤ 1000) and `?cursor=` page |
//! | `GET /v1/jobs/{id}` | a job's record; `?wait_ms=N` waits up to N ms for it to finish (`&until=started`: to start) |
//! | `DELETE /v1/jobs/{id}` | cancel a job; returns its final record |
//! | `GET /v1/jobs/{id}/events` | the job's events as Server-Sent Events: `queued`, `started`, `log` (each line), `progress`, `finished` (the final record); `Last-Event-ID` resumes |
//! | `POST /v1/batches` | submit many jobs at once (`jobs`, or `task` + `inputs`; `max_concurrent`): all accepted or none; records in order |
//! | `GET /v1/batches/{id}` | a batch and its jobs' records, in order; `?wait_ms=N` waits for it to finish |
//! | `DELETE /v1/batches/{id}` | cancel every unfinished job of a batch |
//! | `POST /v1/admin/tenants` | (admin key) create a tenant `{"id", "quotas"?}` |
//! | `GET /v1/admin/tenants` | (admin key) every tenant, with its keys' ids |
//! | `GET /v1/admin/tenants/{id}` | (admin key) one tenant |
//! | `PATCH /v1/admin/tenants/{id}` | (admin key) change a tenant: `{"quotas"}` replaces its quotas |
//! | `DELETE /v1/admin/tenants/{id}` | (admin key) delete a tenant; its keys stop working and its unfinished jobs are cancelled at once |
//! | `POST /v1/admin/tenants/{id}/keys` | (admin key) issue a key, shown once: `{"id", "key"}` |
//! | `DELETE /v1/admin/tenants/{id}/keys/{key_id}` | (admin key) revoke a key, at once |
//!
//! # Adding a route
//!
//! Registering a route and documenting it are one step, so no route is served undocumented:
//!
//! 1. Write the handler in its resource's module (a new module for a new concern) with
//!    `#[utoipa::path(method, path = "...", tag = "...", params(...), responses(...))]`: every
//!    status it can answer, errors as `body = ErrorBody` with their codes in the description,
//!    and a `content_type` for bodies that are not JSON (`text/event-stream` for Server-Sent
//!    Events, `text/plain; version=0.0.4` for Prometheus metrics).
//! 2. Add `.routes(routes!(module::handler))` in [`routes`]: `routes!` takes the path and the
//!    methods from that annotation. One `routes!` per path (a path's handlers go in the same
//!    one). Never `.route(...)`: it would serve a route the document does not show.
//! 3. Add a row to the table above (a unit test checks the table against the document).

mod admin;
mod auth;
mod batches;
mod error;
mod events;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzz;
mod jobs;
mod openapi;
mod status;
mod stream;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub(crate) use error::ApiError;

use crate::host::Host;

/// How long a request for a task that is still compiling for the first time waits for it
/// (capped by the host's maximum wait).
const WAIT_FOR_LOADING: Duration = Duration::from_secs(60);

/// The API's router, serving `host`.
pub fn router(host: Arc<Host>) -> Router {
    let (router, document) = routes().split_for_parts();
    router
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(Extension(openapi::Document::new(&document)))
        .layer(Extension(host.clone()))
        .with_state(host)
}

/// Every route with its OpenAPI operation: what is served and what is documented are one
/// list (see "Adding a route" in the module doc). `/healthz`, `/readyz` and `/openapi.json`
/// are public; every other route takes an API key (`auth`).
fn routes() -> OpenApiRouter<Arc<Host>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(status::healthz))
        .routes(routes!(status::readyz))
        .routes(routes!(openapi::openapi_json))
        .merge(authenticated_routes())
}

/// The routes that take an API key.
fn authenticated_routes() -> OpenApiRouter<Arc<Host>> {
    OpenApiRouter::new()
        .routes(routes!(tasks::list_tasks))
        .routes(routes!(
            tasks::get_task,
            tasks::upload_task,
            tasks::delete_task
        ))
        .routes(routes!(status::status))
        .routes(routes!(status::metrics))
        .routes(routes!(events::job_events))
        .routes(routes!(jobs::submit_job, jobs::list_jobs))
        .routes(routes!(jobs::get_job, jobs::cancel_job))
        .routes(
            routes!(batches::submit_batch).layer(DefaultBodyLimit::max(batches::MAX_BATCH_BODY)),
        )
        .routes(routes!(batches::get_batch, batches::cancel_batch))
        .routes(routes!(admin::create_tenant, admin::list_tenants))
        .routes(routes!(
            admin::get_tenant,
            admin::change_tenant,
            admin::delete_tenant
        ))
        .routes(routes!(admin::issue_key))
        .routes(routes!(admin::revoke_key))
        .route_layer(axum::middleware::from_fn(auth::authenticate))
}

/// 200 with `body` if its work is `done`, else 202 with `body` so far and a `Location` to
/// poll.
fn done_or_accepted(done: bool, location: String, body: impl IntoResponse) -> Response {
    if done {
        return (StatusCode::OK, body).into_response();
    }
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], body).into_response()
}

/// `Json` whose rejections are [`ApiError`]s, so bad bodies get the API's error shape.
struct ApiJson<T>(T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// `Path` whose rejections are [`ApiError`]s, so a path that does not decode (`/v1/jobs/%FF`:
/// invalid UTF-8) gets the API's error shape.
struct ApiPath<T>(T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    Path<T>: FromRequestParts<S, Rejection = PathRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}
