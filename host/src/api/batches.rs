//! `/v1/batches`: many jobs in one request, their records in order.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::TenantCaller;
use super::error::{ApiErrorCode, ErrorBody};
use super::jobs::JobSpec;
use super::stream::StreamedJson;
use super::{ApiError, ApiJson, ApiPath, WAIT_FOR_LOADING, done_or_accepted};
use crate::batches::{BatchId, BatchRecord, BatchStatus};
use crate::engine::Kind;
use crate::host::{BatchRequest, Host, JobRequest, Scope};
use crate::jobs::JobRecord;
use crate::registry::TaskName;
use crate::tenants::TenantId;

/// Largest body `POST /v1/batches` reads (a single job's body is limited to axum's 2 MiB).
pub(super) const MAX_BATCH_BODY: usize = 32 << 20;

/// The body of `POST /v1/batches`: `jobs`, or `task` with one input per job in `inputs`.
/// The limits given here apply to every job that does not set its own.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchBody {
    /// The jobs, each like the body of `POST /v1/jobs` (without `wait_ms`).
    #[schema(min_items = 1)]
    jobs: Option<Vec<JobSpec>>,
    /// With `inputs`: the task every job runs.
    #[schema(value_type = Option<TaskName>)]
    task: Option<String>,
    /// With `task`: one job per input.
    #[schema(min_items = 1)]
    inputs: Option<Vec<serde_json::Value>>,
    /// Most of the batch's jobs running at once.
    #[schema(minimum = 1)]
    max_concurrent: Option<usize>,
    /// How long to wait for every job to finish before answering, in milliseconds.
    wait_ms: Option<u64>,
    /// Each job's deadline, in milliseconds.
    timeout_ms: Option<u64>,
    /// Each job's fuel budget.
    fuel: Option<u64>,
    /// Each job's memory limit, in MiB.
    memory_mib: Option<usize>,
    /// Each job's largest output, in KiB.
    max_output_kib: Option<usize>,
    /// `cpu` or `io`; each task's default when absent.
    kind: Option<Kind>,
    /// Each job's `memoize`, for jobs that do not set it.
    memoize: Option<bool>,
}

/// What the document says of [`BatchBody`] beyond its fields (utoipa has no `not`): it names
/// its jobs in exactly one way, `jobs`, or `task` with `inputs`.
pub(super) fn batch_body_alternatives() -> serde_json::Value {
    serde_json::json!([
        {
            "required": ["jobs"],
            "not": {"anyOf": [{"required": ["task"]}, {"required": ["inputs"]}]},
        },
        {"required": ["task", "inputs"], "not": {"required": ["jobs"]}},
    ])
}

impl BatchBody {
    /// The jobs this body asks for, `tenant`'s, with the batch's limits filled in.
    pub(super) fn into_request(self, tenant: TenantId) -> Result<BatchRequest, ApiError> {
        let specs = match (self.jobs, self.task, self.inputs) {
            (Some(jobs), None, None) => jobs,
            (None, Some(task), Some(inputs)) => inputs
                .into_iter()
                .map(|input| JobSpec {
                    task: task.clone(),
                    input,
                    wait_ms: None,
                    timeout_ms: None,
                    fuel: None,
                    memory_mib: None,
                    max_output_kib: None,
                    kind: None,
                    memoize: None,
                })
                .collect(),
            _ => return Err(invalid("give either `jobs`, or `task` and `inputs`")),
        };
        let jobs = specs
            .into_iter()
            .enumerate()
            .map(|(index, mut spec)| {
                if spec.wait_ms.is_some() {
                    return Err(invalid(&format!(
                        "jobs[{index}]: wait_ms is the batch's, not a job's"
                    )));
                }
                spec.timeout_ms = spec.timeout_ms.or(self.timeout_ms);
                spec.fuel = spec.fuel.or(self.fuel);
                spec.memory_mib = spec.memory_mib.or(self.memory_mib);
                spec.max_output_kib = spec.max_output_kib.or(self.max_output_kib);
                spec.kind = spec.kind.or(self.kind);
                spec.memoize = spec.memoize.or(self.memoize);
                Ok(spec.into_request(tenant.clone()))
            })
            .collect::<Result<Vec<JobRequest>, ApiError>>()?;
        Ok(BatchRequest {
            tenant,
            jobs,
            max_concurrent: self.max_concurrent,
        })
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::Body {
        status: StatusCode::BAD_REQUEST,
        code: ApiErrorCode::InvalidRequest,
        message: message.to_owned(),
    }
}

/// `?wait_ms=N`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchWait {
    /// How long to wait for every job to finish, in milliseconds (capped by the host); a
    /// submission's body `wait_ms` wins over this.
    wait_ms: Option<u64>,
}

/// `POST /v1/batches`: 200 with the batch if it finished within the wait, else 202 with the
/// record so far and where to poll; all jobs are accepted, or none.
#[utoipa::path(
    post,
    path = "/v1/batches",
    tag = "batches",
    params(BatchWait),
    request_body = BatchBody,
    responses(
        (status = OK, description = "Every job finished within the wait: the final record", body = BatchRecord),
        (status = ACCEPTED, description = "Accepted, not finished yet: the record so far", body = BatchRecord,
            headers(("Location" = String, description = "The batch's URL, `/v1/batches/{id}`, to poll"))),
        (status = BAD_REQUEST, description = "`malformed_json`, `invalid_request`, `invalid_body`, `invalid_limit`, `invalid_query` (a job's error's message starts with `jobs[INDEX]:`)", body = ErrorBody),
        (status = NOT_FOUND, description = "`unknown_task`", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "`body_too_large`: past 32 MiB", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "`unsupported_media_type`: not `application/json`", body = ErrorBody),
        (status = FORBIDDEN, description = "`forbidden`: the admin key (batches are tenants'); `quota_exceeded`: a job's limit above the tenant's ceiling", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "`queue_full`: the queue has no room for every job; `quota_exceeded`: the tenant's queued jobs or submission rate", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = SERVICE_UNAVAILABLE, description = "`task_loading`: a task is still compiling past the wait", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
)]
pub(super) async fn submit_batch(
    State(host): State<Arc<Host>>,
    TenantCaller(tenant): TenantCaller,
    query: Result<Query<BatchWait>, QueryRejection>,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let wait = body.wait_ms.or(query.wait_ms).unwrap_or(0);
    let request = body.into_request(tenant.clone())?;
    let tasks: BTreeSet<&str> = request.jobs.iter().map(|job| job.task.as_str()).collect();
    for task in tasks {
        host.wait_for_task(Scope::Tenant(&tenant), task, WAIT_FOR_LOADING)
            .await;
    }
    let record = host.submit_batch(request)?;
    let record = match wait {
        0 => record,
        wait => host
            .wait_batch(&tenant, record.id, Duration::from_millis(wait))
            .await
            .unwrap_or(record),
    };
    Ok(batch_response(record))
}

/// `GET /v1/batches/{id}`, `?wait_ms=N` to wait for it to finish.
#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    tag = "batches",
    params(("id" = BatchId, Path, description = "The batch's id"), BatchWait),
    responses(
        (status = OK, description = "The batch and its jobs' records, in order", body = BatchRecord),
        (status = BAD_REQUEST, description = "`invalid_batch_id`, `invalid_path`, `invalid_query`", body = ErrorBody),
        (status = NOT_FOUND, description = "`batch_not_found`", body = ErrorBody),
    ),
)]
pub(super) async fn get_batch(
    State(host): State<Arc<Host>>,
    TenantCaller(tenant): TenantCaller,
    ApiPath(id): ApiPath<String>,
    query: Result<Query<BatchWait>, QueryRejection>,
) -> Result<StreamedJson<JobRecord>, ApiError> {
    let Query(query) = query?;
    let id = parse_batch_id(id)?;
    let record = match query.wait_ms {
        Some(wait) if wait > 0 => {
            host.wait_batch(&tenant, id, Duration::from_millis(wait))
                .await
        }
        _ => host.batch(&tenant, id),
    };
    record.map(streamed).ok_or(ApiError::BatchNotFound(id))
}

/// `DELETE /v1/batches/{id}`: cancels every job not finished; the batch's final record.
#[utoipa::path(
    delete,
    path = "/v1/batches/{id}",
    tag = "batches",
    params(("id" = BatchId, Path, description = "The batch's id")),
    responses(
        (status = OK, description = "The batch's final record", body = BatchRecord),
        (status = BAD_REQUEST, description = "`invalid_batch_id`, `invalid_path`", body = ErrorBody),
        (status = NOT_FOUND, description = "`batch_not_found`", body = ErrorBody),
    ),
)]
pub(super) async fn cancel_batch(
    State(host): State<Arc<Host>>,
    TenantCaller(tenant): TenantCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<StreamedJson<JobRecord>, ApiError> {
    let id = parse_batch_id(id)?;
    host.cancel_batch(&tenant, id)
        .await
        .map(streamed)
        .ok_or(ApiError::BatchNotFound(id))
}

fn parse_batch_id(id: String) -> Result<BatchId, ApiError> {
    id.parse().map_err(|_| ApiError::InvalidBatchId(id))
}

/// 200 with a finished batch, else 202 with the record so far and where to poll.
fn batch_response(record: BatchRecord) -> Response {
    let location = format!("/v1/batches/{}", record.id);
    done_or_accepted(
        record.status == BatchStatus::Finished,
        location,
        streamed(record),
    )
}

/// A batch's record, its jobs' records streamed.
fn streamed(mut record: BatchRecord) -> StreamedJson<JobRecord> {
    let jobs = std::mem::take(&mut record.jobs);
    StreamedJson::new(&record, "jobs", jobs)
}
