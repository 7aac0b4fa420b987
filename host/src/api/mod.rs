//! The HTTP API: an axum router over [`Host`]. Handlers translate between HTTP and the host
//! and nothing more.
//!
//! | route | does |
//! | --- | --- |
//! | `GET /healthz` | `ok` while the server is up |
//! | `GET /readyz` | `ready` once every task found at start has loaded; `503 not_ready` before |
//! | `GET /v1/tasks` | the tasks served, with hash, size, default kind, imports, how their code was obtained and since when; tasks loading; files that did not load. `?since=REVISION&wait_ms=N` waits for a change |
//! | `GET /v1/tasks/{name}` | one task |
//! | `PUT /v1/tasks/{name}` | upload a component (`application/wasm`): checked and compiled before it serves |
//! | `DELETE /v1/tasks/{name}` | delete a task and its file |
//! | `GET /v1/status` | queue, engine threads and engine settings |
//! | `POST /v1/jobs` | (`Idempotency-Key` header: a retry returns the first job) submit `{"task", "input", "wait_ms"?, "timeout_ms"?, "fuel"?, "memory_mib"?, "kind"?}`: 200 if finished within the wait, else 202; 429 when the queue is full |
//! | `GET /v1/jobs` | jobs, newest first: `?status=&task=&batch=` filter, `?limit=` (≤ 1000) and `?cursor=` page |
//! | `GET /v1/jobs/{id}` | a job's record; `?wait_ms=N` waits up to N ms for it to finish (`&until=started`: to start) |
//! | `DELETE /v1/jobs/{id}` | cancel a job; returns its final record |
//! | `POST /v1/batches` | submit many jobs at once (`jobs`, or `task` + `inputs`; `max_concurrent`): all accepted or none; records in order |
//! | `GET /v1/batches/{id}` | a batch and its jobs' records, in order; `?wait_ms=N` waits for it to finish |
//! | `DELETE /v1/batches/{id}` | cancel every unfinished job of a batch |

mod batches;
mod error;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub use error::ApiError;

use crate::batches::BatchId;
use crate::cache::Source;
use crate::config::RequestedLimits;
use crate::engine::Kind;
use crate::host::{Host, JobRequest};
use crate::idempotency::MAX_KEY_LEN;
use crate::jobs::{JobFilter, JobId, JobRecord, JobStatus, Until};
use crate::registry::{Problem, TaskVersion, is_valid_task_name};
use crate::status::Status;
use crate::timestamp::Timestamp;

/// How long a request for a task that is still compiling for the first time waits for it
/// (capped by the host's maximum wait).
const WAIT_FOR_LOADING: Duration = Duration::from_secs(60);

/// The API's router, serving `host`.
pub fn router(host: Arc<Host>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/tasks", get(list_tasks))
        .route(
            "/v1/tasks/{name}",
            get(get_task).put(upload_task).delete(delete_task),
        )
        .route("/v1/jobs", post(submit_job).get(list_jobs))
        .route(
            "/v1/batches",
            post(batches::submit_batch).layer(DefaultBodyLimit::max(batches::MAX_BATCH_BODY)),
        )
        .route(
            "/v1/batches/{id}",
            get(batches::get_batch).delete(batches::cancel_batch),
        )
        .route("/v1/status", get(status))
        .route("/v1/jobs/{id}", get(get_job).delete(cancel_job))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(host)
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready for jobs once every task file found at start has loaded (or failed to).
async fn readyz(State(host): State<Arc<Host>>) -> Result<&'static str, ApiError> {
    match host.tasks_loading() {
        0 => Ok("ready"),
        loading => Err(ApiError::NotReady(loading)),
    }
}

/// `GET /v1/tasks`.
#[derive(Serialize)]
struct TaskList {
    /// Grows with every change to the tasks; `?since=` it to wait for the next.
    revision: u64,
    tasks: Vec<TaskSummary>,
    /// Names whose files are still compiling for the first time.
    loading: BTreeSet<String>,
    /// Files that did not load, by name; the name serves its previous version, if any.
    problems: BTreeMap<String, Problem>,
}

#[derive(Serialize)]
struct TaskSummary {
    name: String,
    hash: String,
    size: usize,
    kind: Kind,
    imports: Vec<String>,
    /// Whether the compiled code was compiled here or loaded from the disk cache.
    source: Source,
    /// How long compiling or loading took, in milliseconds.
    load_ms: f64,
    /// When this version started serving.
    serving_since: Timestamp,
}

impl From<&TaskVersion> for TaskSummary {
    fn from(version: &TaskVersion) -> Self {
        Self {
            name: version.name.clone(),
            hash: version.compiled.hash.to_hex().to_string(),
            size: version.size,
            kind: version.compiled.task.default_kind(),
            imports: version.compiled.task.imports().to_vec(),
            source: version.compiled.source,
            load_ms: version.compiled.load_time.as_secs_f64() * 1e3,
            serving_since: version.serving_since,
        }
    }
}

/// `?since=REVISION&wait_ms=N`: answer once the tasks have changed since that revision.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksQuery {
    since: Option<u64>,
    wait_ms: Option<u64>,
}

async fn list_tasks(
    State(host): State<Arc<Host>>,
    query: Result<Query<TasksQuery>, QueryRejection>,
) -> Result<Json<TaskList>, ApiError> {
    let Query(query) = query?;
    let snapshot = match (query.since, query.wait_ms) {
        (Some(since), Some(wait)) => host.tasks_after(since, Duration::from_millis(wait)).await,
        _ => host.tasks(),
    };
    Ok(Json(TaskList {
        revision: snapshot.revision,
        tasks: snapshot
            .tasks
            .iter()
            .map(|v| TaskSummary::from(&**v))
            .collect(),
        loading: snapshot.loading,
        problems: snapshot.problems,
    }))
}

/// `PUT /v1/tasks/{name}` with a component as `application/wasm`: 201 if the task is new, 200
/// if it replaced a version; the task as `GET` shows it.
async fn upload_task(
    State(host): State<Arc<Host>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !is_valid_task_name(&name) {
        return Err(ApiError::InvalidTaskName(name));
    }
    let limit = host.max_upload_bytes();
    let too_large = || ApiError::Body {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "body_too_large",
        message: format!(
            "a component may be at most {} MiB (--max-upload-mib)",
            limit >> 20
        ),
    };
    // Refused from its declared length before any of it is read, when it says.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if content_type != Some("application/wasm") {
        return Err(ApiError::Body {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: "upload a component with Content-Type: application/wasm".into(),
        });
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    // Compiling takes a while: off the async threads.
    let upload = tokio::task::spawn_blocking(move || {
        host.upload_task(&name, &bytes)
            .map(|(version, replaced)| (TaskSummary::from(&*version), replaced))
    });
    let (summary, replaced) = upload.await.map_err(|_| ApiError::Internal)??;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(summary)).into_response())
}

/// `DELETE /v1/tasks/{name}`: 204, or 404 if there is no such task.
async fn delete_task(
    State(host): State<Arc<Host>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !is_valid_task_name(&name) {
        return Err(ApiError::InvalidTaskName(name));
    }
    match host.delete_task(&name) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::UnknownTask(format!("no task named {name:?}"))),
        Err(error) => Err(ApiError::Storage(error.to_string())),
    }
}

async fn get_task(
    State(host): State<Arc<Host>>,
    Path(name): Path<String>,
) -> Result<Json<TaskSummary>, ApiError> {
    host.wait_for_task(&name, WAIT_FOR_LOADING).await;
    host.task(&name)
        .map(|version| Json(TaskSummary::from(&*version)))
        .map_err(ApiError::from)
}

/// One job as a client asks for it: the body of `POST /v1/jobs`, and an item of a batch's
/// `jobs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobSpec {
    task: String,
    #[serde(default)]
    input: serde_json::Value,
    /// How long to wait for the job to finish before answering, in milliseconds (not in a
    /// batch's items: the batch has its own).
    wait_ms: Option<u64>,
    /// The job's deadline, in milliseconds.
    timeout_ms: Option<u64>,
    /// The job's fuel budget.
    fuel: Option<u64>,
    /// The job's memory limit, in MiB.
    memory_mib: Option<usize>,
    /// `cpu` or `io`; the task's default when absent.
    kind: Option<Kind>,
}

impl JobSpec {
    fn into_request(self) -> JobRequest {
        JobRequest {
            task: self.task,
            input: self.input,
            limits: RequestedLimits {
                timeout_ms: self.timeout_ms,
                fuel: self.fuel,
                memory_mib: self.memory_mib,
            },
            kind: self.kind,
        }
    }
}

/// `?wait_ms=N`, accepted by both job routes, and `&until=started|finished` (the default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    wait_ms: Option<u64>,
    #[serde(default)]
    until: Until,
}

async fn submit_job(
    State(host): State<Arc<Host>>,
    query: Result<Query<WaitQuery>, QueryRejection>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<JobSpec>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let key = idempotency_key(&headers)?;
    host.wait_for_task(&body.task, WAIT_FOR_LOADING).await;
    let wait = body.wait_ms.or(query.wait_ms).unwrap_or(0);
    let request = body.into_request();
    let (record, replayed) = match &key {
        Some(key) => host.submit_idempotent(key, request)?,
        None => (host.submit(request)?, false),
    };
    let record = if wait > 0 {
        host.wait(record.id, Duration::from_millis(wait))
            .await
            .unwrap_or(record)
    } else {
        record
    };
    let mut response = job_response(record);
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The `Idempotency-Key` header, if present: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|key| (1..=MAX_KEY_LEN).contains(&key.len()))
        .filter(|key| key.bytes().all(|byte| byte.is_ascii_graphic()))
        .map(|key| Some(key.to_owned()))
        .ok_or_else(|| ApiError::Body {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_idempotency_key",
            message: format!("an Idempotency-Key is 1 to {MAX_KEY_LEN} visible ASCII characters"),
        })
}

/// Most jobs on one page of `GET /v1/jobs`.
const MAX_PAGE: usize = 1000;

/// `GET /v1/jobs?status=&task=&limit=&cursor=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<JobStatus>,
    task: Option<String>,
    batch: Option<BatchId>,
    /// Jobs per page: 1 to `MAX_PAGE`, 50 by default.
    limit: Option<usize>,
    /// Where the previous page ended (its `next_cursor`).
    cursor: Option<String>,
}

/// A page of jobs, newest first.
#[derive(Serialize)]
struct JobPage {
    jobs: Vec<JobRecord>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<JobId>,
}

async fn list_jobs(
    State(host): State<Arc<Host>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    let before = query.cursor.map(parse_job_id).transpose()?;
    let filter = JobFilter {
        status: query.status,
        task: query.task,
        batch: query.batch,
    };
    // One more than asked tells whether there is a next page.
    let mut jobs = host.jobs(&filter, before, limit + 1);
    let next_cursor = (jobs.len() > limit).then(|| {
        jobs.truncate(limit);
        jobs[limit - 1].id
    });
    Ok(Json(JobPage { jobs, next_cursor }))
}

async fn get_job(
    State(host): State<Arc<Host>>,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<JobRecord>, ApiError> {
    let Query(query) = query?;
    let id = parse_job_id(id)?;
    let record = match query.wait_ms {
        Some(wait) if wait > 0 => {
            host.wait_until(id, query.until, Duration::from_millis(wait))
                .await
        }
        _ => host.job(id),
    };
    record.map(Json).ok_or(ApiError::JobNotFound(id))
}

async fn cancel_job(
    State(host): State<Arc<Host>>,
    Path(id): Path<String>,
) -> Result<Json<JobRecord>, ApiError> {
    let id = parse_job_id(id)?;
    Ok(Json(host.cancel(id).await?))
}

async fn status(State(host): State<Arc<Host>>) -> Json<Status> {
    Json(host.status())
}

fn parse_job_id(id: String) -> Result<JobId, ApiError> {
    id.parse().map_err(|_| ApiError::InvalidJobId(id))
}

/// 200 with a finished job, else 202 with the record so far and where to poll.
fn job_response(record: JobRecord) -> Response {
    let location = format!("/v1/jobs/{}", record.id);
    done_or_accepted(record.status.is_final(), location, record)
}

/// 200 with `body` if its work is `done`, else 202 with `body` so far and a `Location` to
/// poll.
fn done_or_accepted(done: bool, location: String, body: impl Serialize) -> Response {
    if done {
        return (StatusCode::OK, Json(body)).into_response();
    }
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
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
