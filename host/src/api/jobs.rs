//! `/v1/jobs`: submitting jobs, listing them, a job's record, cancelling.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::TenantCaller;
use super::error::{ApiErrorCode, ErrorBody};
use super::stream::StreamedJson;
use super::{ApiError, ApiJson, ApiPath, WAIT_FOR_LOADING, done_or_accepted};
use crate::batches::BatchId;
use crate::config::RequestedLimits;
use crate::engine::Kind;
use crate::host::{Host, JobRequest, Scope};
use crate::idempotency::MAX_KEY_LEN;
use crate::jobs::{JobFilter, JobId, JobRecord, JobStatus, RecordFields, Until};
use crate::registry::TaskName;
use crate::tenants::TenantId;

/// One job as a client asks for it: the body of `POST /v1/jobs`, and an item of a batch's
/// `jobs`. Limits not given are the host's defaults.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct JobSpec {
    /// The name of the task to run.
    #[schema(value_type = TaskName)]
    pub(super) task: String,
    /// The task's input; `null` when absent.
    #[serde(default)]
    pub(super) input: serde_json::Value,
    /// How long to wait for the job to finish before answering, in milliseconds (not in a
    /// batch's items: the batch has its own).
    pub(super) wait_ms: Option<u64>,
    /// The job's deadline, in milliseconds.
    pub(super) timeout_ms: Option<u64>,
    /// The job's fuel budget.
    pub(super) fuel: Option<u64>,
    /// The job's memory limit, in MiB: its linear memories and tables together.
    pub(super) memory_mib: Option<usize>,
    /// The job's largest output, in KiB (at most the host's `--max-output-kib`, its
    /// default): a larger one fails the job with `output_too_large`.
    pub(super) max_output_kib: Option<usize>,
    /// `cpu` or `io`; the task's default when absent.
    pub(super) kind: Option<Kind>,
    /// Reuse the result of an earlier run on the same input (deterministic tasks only);
    /// `false` runs even a task that declares `memoize`. Absent: as the task declares.
    pub(super) memoize: Option<bool>,
}

impl JobSpec {
    /// The host's request for this job, `tenant`'s.
    pub(super) fn into_request(self, tenant: TenantId) -> JobRequest {
        JobRequest {
            tenant,
            task: self.task,
            input: self.input,
            limits: RequestedLimits {
                timeout_ms: self.timeout_ms,
                fuel: self.fuel,
                memory_mib: self.memory_mib,
                max_output_kib: self.max_output_kib,
            },
            kind: self.kind,
            memoize: self.memoize,
        }
    }
}

/// `?wait_ms=N`, accepted by both job routes, and `&until=started|finished` (the default).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct WaitQuery {
    /// How long to wait for the job, in milliseconds (capped by the host); a submission's
    /// body `wait_ms` wins over this.
    wait_ms: Option<u64>,
    /// What to wait for: the job to have `finished` (the default) or `started`.
    #[serde(default)]
    #[param(inline)]
    until: Until,
}

/// Submits a job; with a wait, answers once it has finished or the wait is over. With an
/// `Idempotency-Key`, a retry of the same request returns the first job.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    params(
        WaitQuery,
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "1 to 255 visible ASCII characters: a retry with the same key and body returns the first job instead of submitting another"),
    ),
    request_body = JobSpec,
    responses(
        (status = OK, description = "The job finished within the wait: its final record", body = JobRecord,
            headers(("Idempotent-Replayed" = String, description = "`true` when the key returned an earlier job"))),
        (status = ACCEPTED, description = "Accepted, not finished yet: the record so far", body = JobRecord,
            headers(
                ("Location" = String, description = "The job's URL, `/v1/jobs/{id}`, to poll"),
                ("Idempotent-Replayed" = String, description = "`true` when the key returned an earlier job"),
            )),
        (status = BAD_REQUEST, description = "`malformed_json`, `invalid_request`, `invalid_body`, `invalid_limit`, `invalid_idempotency_key`, `invalid_query`", body = ErrorBody),
        (status = NOT_FOUND, description = "`unknown_task`", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "`body_too_large`", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "`unsupported_media_type`: not `application/json`", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`idempotency_key_conflict`: the key was used for another request, or expired", body = ErrorBody),
        (status = FORBIDDEN, description = "`forbidden`: the admin key (jobs are tenants'); `quota_exceeded`: a limit above the tenant's ceiling", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "`queue_full`; `quota_exceeded`: the tenant's queued jobs or submission rate", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = SERVICE_UNAVAILABLE, description = "`task_loading`: the task is still compiling past the wait", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
)]
pub(super) async fn submit_job(
    State(host): State<Arc<Host>>,
    TenantCaller(tenant): TenantCaller,
    query: Result<Query<WaitQuery>, QueryRejection>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<JobSpec>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let key = idempotency_key(&headers)?;
    host.wait_for_task(Scope::Tenant(&tenant), &body.task, WAIT_FOR_LOADING)
        .await;
    let wait = body.wait_ms.or(query.wait_ms).unwrap_or(0);
    let request = body.into_request(tenant.clone());
    let (record, replayed) = match &key {
        Some(key) => host.submit_idempotent(key, request)?,
        None => (host.submit(request)?, false),
    };
    let record = if wait > 0 {
        host.wait_until(&tenant, record.id, query.until, Duration::from_millis(wait))
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
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
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
            code: ApiErrorCode::InvalidIdempotencyKey,
            message: format!("an Idempotency-Key is 1 to {MAX_KEY_LEN} visible ASCII characters"),
        })
}

/// Most jobs on one page of `GET /v1/jobs`.
const MAX_PAGE: usize = 1000;

/// `GET /v1/jobs?status=&task=&batch=&limit=&cursor=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only jobs in this state.
    status: Option<JobStatus>,
    /// Only jobs of this task.
    task: Option<String>,
    /// Only jobs of this batch.
    batch: Option<BatchId>,
    /// Jobs per page: 1 to 1000, 50 by default.
    #[param(minimum = 1, maximum = 1000, default = 50)]
    pub(super) limit: Option<usize>,
    /// Where the previous page ended (its `next_cursor`).
    #[param(value_type = Option<JobId>)]
    cursor: Option<String>,
    /// Large fields to include, comma-separated: `output`, `log`. Records leave them out
    /// by default, so a page costs the same whatever the jobs returned.
    #[param(pattern = r"^\s*(output|log)\s*(,\s*(output|log)\s*)*$")]
    pub(super) fields: Option<String>,
}

/// The `fields` of a listing: a comma-separated list of `output` and `log`.
pub(super) fn record_fields(fields: Option<&str>) -> Result<RecordFields, ApiError> {
    let mut chosen = RecordFields::default();
    for field in fields.into_iter().flat_map(|fields| fields.split(',')) {
        match field.trim() {
            "output" => chosen.output = true,
            "log" => chosen.log = true,
            other => {
                return Err(ApiError::InvalidQuery(format!(
                    "fields takes `output` and `log`, comma-separated; got `{other:.64}`"
                )));
            }
        }
    }
    Ok(chosen)
}

impl ListQuery {
    /// How many jobs the page holds: `limit`, 1 to 1000, 50 by default.
    pub(super) fn page_size(&self) -> Result<usize, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::InvalidQuery(format!(
                "limit must be 1 to {MAX_PAGE}, got {limit}"
            )));
        }
        Ok(limit)
    }
}

/// A page of jobs, newest first.
#[derive(Serialize, ToSchema)]
pub(super) struct JobPage {
    /// The jobs, newest first.
    jobs: Vec<JobRecord>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    next_cursor: Option<JobId>,
}

/// The jobs the host remembers, newest first, filtered and a page at a time.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    params(ListQuery),
    responses(
        (status = OK, description = "A page of jobs (without `output` and `log` unless `fields` asks)", body = JobPage),
        (status = BAD_REQUEST, description = "`invalid_query` (e.g. `limit` out of range), `invalid_job_id` (a `cursor` that is no job id)", body = ErrorBody),
    ),
)]
pub(super) async fn list_jobs(
    State(host): State<Arc<Host>>,
    TenantCaller(tenant): TenantCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<StreamedJson<JobRecord>, ApiError> {
    let Query(query) = query?;
    let limit = query.page_size()?;
    let before = query.cursor.map(parse_job_id).transpose()?;
    let fields = record_fields(query.fields.as_deref())?;
    let filter = JobFilter {
        tenant: None,
        status: query.status,
        task: query.task,
        batch: query.batch,
    };
    // One more than asked tells whether there is a next page.
    let mut jobs = host.jobs(&tenant, &filter, before, limit + 1, fields);
    let next_cursor = (jobs.len() > limit).then(|| {
        jobs.truncate(limit);
        jobs[limit - 1].id
    });
    let head = JobPage {
        jobs: Vec::new(),
        next_cursor,
    };
    Ok(StreamedJson::new(&head, "jobs", jobs))
}

/// A job's record; with `wait_ms`, once it has finished (or started, with `until=started`)
/// or the wait is over.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = JobId, Path, description = "The job's id"), WaitQuery),
    responses(
        (status = OK, description = "The job's record", body = JobRecord),
        (status = BAD_REQUEST, description = "`invalid_job_id`, `invalid_path`, `invalid_query`", body = ErrorBody),
        (status = NOT_FOUND, description = "`job_not_found`", body = ErrorBody),
    ),
)]
pub(super) async fn get_job(
    State(host): State<Arc<Host>>,
    TenantCaller(tenant): TenantCaller,
    ApiPath(id): ApiPath<String>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<JobRecord>, ApiError> {
    let Query(query) = query?;
    let id = parse_job_id(id)?;
    let record = match query.wait_ms {
        Some(wait) if wait > 0 => {
            host.wait_until(&tenant, id, query.until, Duration::from_millis(wait))
                .await
        }
        _ => host.job(&tenant, id),
    };
    record.map(Json).ok_or(ApiError::JobNotFound(id))
}

/// Cancels a job: a queued job fails with `cancelled` at once, a running one is stopped.
#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = JobId, Path, description = "The job's id")),
    responses(
        (status = OK, description = "The job's final record", body = JobRecord),
        (status = BAD_REQUEST, description = "`invalid_job_id`, `invalid_path`", body = ErrorBody),
        (status = NOT_FOUND, description = "`job_not_found`", body = ErrorBody),
        (status = CONFLICT, description = "`job_finished`: it finished before it could be cancelled", body = ErrorBody),
    ),
)]
pub(super) async fn cancel_job(
    State(host): State<Arc<Host>>,
    TenantCaller(tenant): TenantCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JobRecord>, ApiError> {
    let id = parse_job_id(id)?;
    Ok(Json(host.cancel(&tenant, id).await?))
}

pub(super) fn parse_job_id(id: String) -> Result<JobId, ApiError> {
    id.parse().map_err(|_| ApiError::InvalidJobId(id))
}

/// 200 with a finished job, else 202 with the record so far and where to poll.
fn job_response(record: JobRecord) -> Response {
    let location = format!("/v1/jobs/{}", record.id);
    done_or_accepted(record.status.is_final(), location, Json(record))
}
