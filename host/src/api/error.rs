//! The one place errors become HTTP responses: `{"error": {"code", "message"}}` with a
//! stable code and the right status.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::batches::BatchId;
use crate::config::LimitError;
use crate::echo::{bounded, echo};
use crate::engine::CompileError;
use crate::host::{BatchError, CancelError, SubmitError};
use crate::jobs::JobId;
use crate::registry::UploadError;
use crate::scheduler::QueueFull;
use crate::tenants::{QuotaExceeded, TenantError};

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No task has this name; the message says why, if a file of that name did not load.
    #[error("{0}")]
    UnknownTask(String),
    /// The task's file is still compiling for the first time (past the wait for it).
    #[error("task {} is still loading; try again in a moment", echo(.0))]
    TaskLoading(String),
    /// No job has this id.
    #[error("no job with id {0}")]
    JobNotFound(JobId),
    /// No batch has this id.
    #[error("no batch with id {0}")]
    BatchNotFound(BatchId),
    /// The path does not hold a batch id.
    #[error("{} is not a batch id (batch ids are UUIDs)", echo(.0))]
    InvalidBatchId(String),
    /// One job of a batch cannot be submitted: the status and code are that job's error's.
    #[error("jobs[{index}]: {error}")]
    InBatch {
        /// Where the job is in the batch, from 0.
        index: usize,
        /// What is wrong with it.
        error: Box<ApiError>,
    },
    /// The job finished before it could be cancelled.
    #[error("job {0} already finished")]
    JobFinished(JobId),
    /// A requested limit is not allowed.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The queue is full; the response says when to retry.
    #[error(transparent)]
    QueueFull(#[from] QueueFull),
    /// The path does not hold a job id.
    #[error("{} is not a job id (job ids are UUIDs)", echo(.0))]
    InvalidJobId(String),
    /// A job asked for a memoized result that cannot be given.
    #[error("{message}")]
    NotMemoizable {
        /// `not_deterministic` (the task can observe the outside world) or
        /// `memoization_off`.
        code: ApiErrorCode,
        /// Why.
        message: String,
    },
    /// The `Last-Event-ID` header is not an id of the job's event stream.
    #[error("Last-Event-ID: {0}")]
    InvalidEventId(#[from] crate::host::InvalidPosition),
    /// The request body could not be read as the JSON this route expects.
    #[error("{message}")]
    Body {
        /// The HTTP status to answer.
        status: StatusCode,
        /// The stable code.
        code: ApiErrorCode,
        /// What was wrong.
        message: String,
    },
    /// The query string could not be read.
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    /// An idempotency key that cannot be used: reused for another request, or expired.
    #[error("{0}")]
    IdempotencyKey(String),
    /// The path does not hold a valid task name.
    #[error("{} is not a task name: use 1-64 of [A-Za-z0-9_-]", echo(.0))]
    InvalidTaskName(String),
    /// An uploaded component that cannot serve.
    #[error("{message}")]
    InvalidComponent {
        /// 400 when the bytes are no component, 422 when the component is not a task.
        status: StatusCode,
        /// What is wrong.
        message: String,
    },
    /// The host could not read or write its files.
    #[error("storage failed: {0}")]
    Storage(String),
    /// The host failed handling the request (a bug: it is logged).
    #[error("the host failed handling this request; it has been logged")]
    Internal,
    /// Tasks found at start are still loading.
    #[error("not ready: {0} task(s) still loading")]
    NotReady(usize),
    /// The path does not decode: invalid percent-encoding, or not UTF-8.
    #[error("{0}")]
    InvalidPath(String),
    /// The request body arrived slower than the server's minimum rate, or stopped.
    #[error(
        "the request body arrived at less than {min_bytes_per_sec} bytes per second over \
         {window_ms} ms (--http-body-min-bytes-per-sec, --http-body-timeout-ms); the \
         connection is closed"
    )]
    BodyTimeout {
        /// The minimum rate, in bytes per second.
        min_bytes_per_sec: u64,
        /// The window the rate is measured over, in milliseconds.
        window_ms: u64,
    },
    /// The server has as many connections open as it serves (`--http-max-connections`).
    #[error(
        "the server has {0} connections open, as many as it serves \
         (--http-max-connections); this one is closed: retry after Retry-After"
    )]
    TooManyConnections(usize),
    /// The request carries no API key, or one nobody holds.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The caller's key does not open this route.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The path or body does not hold a valid tenant id.
    #[error("{0}")]
    InvalidTenantId(String),
    /// A change to the tenants that cannot be made.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// Over one of the caller's quotas: `429` with `Retry-After` for a rate or a count that
    /// frees up, `403` for a size or a ceiling.
    #[error(transparent)]
    QuotaExceeded(#[from] QuotaExceeded),
    /// No route has this path.
    #[error("no such route; the API lives under /v1")]
    NoRoute,
    /// The route exists but not with this method.
    #[error("this route does not accept that method")]
    MethodNotAllowed,
}

/// The stable code of an API error, `error.code` in its body: clients branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApiErrorCode {
    /// No task has the name.
    UnknownTask,
    /// The task is still compiling for the first time; retry after `Retry-After`.
    TaskLoading,
    /// No job has the id.
    JobNotFound,
    /// The job finished before it could be cancelled.
    JobFinished,
    /// No batch has the id.
    BatchNotFound,
    /// The path does not hold a batch id.
    InvalidBatchId,
    /// A requested limit is not allowed.
    InvalidLimit,
    /// The queue is full; retry after `Retry-After`.
    QueueFull,
    /// The path does not hold a job id.
    InvalidJobId,
    /// The `Last-Event-ID` header is not an id of the job's event stream.
    InvalidEventId,
    /// `memoize` was asked of a task that can observe the outside world.
    NotDeterministic,
    /// `memoize` was asked of a server with memoization turned off.
    MemoizationOff,
    /// The query string could not be read.
    InvalidQuery,
    /// Tasks found at start are still loading; retry after `Retry-After`.
    NotReady,
    /// The path does not hold a valid task name.
    InvalidTaskName,
    /// The uploaded component cannot serve.
    InvalidComponent,
    /// The host failed handling the request (logged).
    Internal,
    /// The `Idempotency-Key` was used for another request, or has expired.
    IdempotencyKeyConflict,
    /// The `Idempotency-Key` header is not 1 to 255 visible ASCII characters.
    InvalidIdempotencyKey,
    /// The body is not valid JSON.
    MalformedJson,
    /// The body is JSON, but not what the route expects.
    InvalidRequest,
    /// The body could not be read.
    InvalidBody,
    /// The body is larger than the route accepts.
    BodyTooLarge,
    /// The body's `Content-Type` is not what the route accepts.
    UnsupportedMediaType,
    /// The path does not decode: invalid percent-encoding, or not UTF-8.
    InvalidPath,
    /// The request body arrived too slowly, or stopped; the connection is closed.
    BodyTimeout,
    /// The server serves as many connections as it may; retry after `Retry-After`.
    TooManyConnections,
    /// The request carries no API key (`Authorization: Bearer KEY`), or one nobody holds.
    Unauthorized,
    /// The key does not open this route (a tenant's key on an admin route).
    Forbidden,
    /// Not a tenant id: 1 to 63 of `a-z`, `0-9` and `-`.
    InvalidTenantId,
    /// A tenant has this id already.
    TenantExists,
    /// No tenant has this id.
    TenantNotFound,
    /// The tenant has no key of this id.
    KeyNotFound,
    /// The tenant is declared in the config file, where it is changed (then restart).
    TenantDeclared,
    /// Over one of the tenant's quotas: the body's `quota` names it, its `limit` and what is
    /// `used`; `429` with `Retry-After` for rates and counts, `403` for sizes and ceilings.
    QuotaExceeded,
    /// No route has this path.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, ApiErrorCode) {
        use ApiErrorCode as Code;
        match self {
            Self::UnknownTask(_) => (StatusCode::NOT_FOUND, Code::UnknownTask),
            Self::TaskLoading(_) => (StatusCode::SERVICE_UNAVAILABLE, Code::TaskLoading),
            Self::JobNotFound(_) => (StatusCode::NOT_FOUND, Code::JobNotFound),
            Self::JobFinished(_) => (StatusCode::CONFLICT, Code::JobFinished),
            Self::BatchNotFound(_) => (StatusCode::NOT_FOUND, Code::BatchNotFound),
            Self::InvalidBatchId(_) => (StatusCode::BAD_REQUEST, Code::InvalidBatchId),
            Self::InBatch { error, .. } => error.status_and_code(),
            Self::Limit(_) => (StatusCode::BAD_REQUEST, Code::InvalidLimit),
            Self::QueueFull(_) => (StatusCode::TOO_MANY_REQUESTS, Code::QueueFull),
            Self::InvalidJobId(_) => (StatusCode::BAD_REQUEST, Code::InvalidJobId),
            Self::InvalidEventId(_) => (StatusCode::BAD_REQUEST, Code::InvalidEventId),
            Self::NotMemoizable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, *code),
            Self::Body { status, code, .. } => (*status, *code),
            Self::InvalidQuery(_) => (StatusCode::BAD_REQUEST, Code::InvalidQuery),
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, Code::NotReady),
            Self::InvalidTaskName(_) => (StatusCode::BAD_REQUEST, Code::InvalidTaskName),
            Self::InvalidComponent { status, .. } => (*status, Code::InvalidComponent),
            Self::Storage(_) | Self::Internal => {
                (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal)
            }
            Self::IdempotencyKey(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::IdempotencyKeyConflict,
            ),
            Self::InvalidPath(_) => (StatusCode::BAD_REQUEST, Code::InvalidPath),
            Self::BodyTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, Code::BodyTimeout),
            Self::TooManyConnections(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, Code::TooManyConnections)
            }
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, Code::Unauthorized),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, Code::Forbidden),
            Self::InvalidTenantId(_) => (StatusCode::BAD_REQUEST, Code::InvalidTenantId),
            Self::Tenant(TenantError::Exists(_)) => (StatusCode::CONFLICT, Code::TenantExists),
            Self::Tenant(TenantError::NotFound(_)) => (StatusCode::NOT_FOUND, Code::TenantNotFound),
            Self::Tenant(TenantError::Declared(_)) => (StatusCode::CONFLICT, Code::TenantDeclared),
            Self::Tenant(TenantError::KeyNotFound { .. }) => {
                (StatusCode::NOT_FOUND, Code::KeyNotFound)
            }
            Self::Tenant(TenantError::Storage(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal)
            }
            Self::QuotaExceeded(over) => match over.retry_after {
                Some(_) => (StatusCode::TOO_MANY_REQUESTS, Code::QuotaExceeded),
                None => (StatusCode::FORBIDDEN, Code::QuotaExceeded),
            },
            Self::NoRoute => (StatusCode::NOT_FOUND, Code::NotFound),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, Code::MethodNotAllowed),
        }
    }
}

impl ApiError {
    /// The `Retry-After` hint of an error worth retrying.
    fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Self::QueueFull(full) => Some(full.retry_after.as_secs()),
            Self::TaskLoading(_) | Self::NotReady(_) | Self::TooManyConnections(_) => Some(1),
            Self::InBatch { error, .. } => error.retry_after_seconds(),
            // In whole seconds, rounded up: never earlier than it may pass.
            Self::QuotaExceeded(over) => over
                .retry_after
                .map(|wait| wait.as_secs() + u64::from(wait.subsec_nanos() > 0)),
            _ => None,
        }
    }
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "job_not_found", "message": "no job with id 019ab0c4-5f7e-7c3a-9d2e-4b1f0a6c8e21"}}))]
pub(super) struct ErrorBody {
    /// What went wrong.
    error: ErrorDetail,
}

/// An error's code and message.
#[derive(Serialize, ToSchema)]
pub(super) struct ErrorDetail {
    /// The stable code; each route's responses list the codes it can answer.
    code: ApiErrorCode,
    /// What went wrong, for people; may change between versions.
    message: String,
    /// With `quota_exceeded`: which quota, its limit and what is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<QuotaDetail>,
}

/// The quota a request is over.
#[derive(Serialize, ToSchema)]
pub(super) struct QuotaDetail {
    /// Its name, as the tenant's `quotas` has it.
    name: &'static str,
    /// Its limit.
    limit: u64,
    /// What is used, or for a ceiling what was asked.
    used: u64,
}

impl ApiError {
    /// The quota this error is over, if it is over one.
    fn quota(&self) -> Option<QuotaDetail> {
        match self {
            Self::QuotaExceeded(over) => Some(QuotaDetail {
                name: over.quota,
                limit: over.limit,
                used: over.used,
            }),
            Self::InBatch { error, .. } => error.quota(),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: bounded(self.to_string()),
                quota: self.quota(),
            },
        };
        let retry_after = self.retry_after_seconds();
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if matches!(self, Self::Unauthorized(_)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"taskhost\""),
            );
        }
        response
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            unknown @ SubmitError::UnknownTask { .. } => Self::UnknownTask(unknown.to_string()),
            SubmitError::TaskLoading(name) => Self::TaskLoading(name),
            error @ (SubmitError::KeyReused(_) | SubmitError::KeyExpired(_)) => {
                Self::IdempotencyKey(error.to_string())
            }
            SubmitError::Limit(error) => Self::Limit(error),
            SubmitError::QueueFull(full) => Self::QueueFull(full),
            SubmitError::Quota(over) => Self::QuotaExceeded(over),
            error @ SubmitError::NotDeterministic { .. } => Self::NotMemoizable {
                code: ApiErrorCode::NotDeterministic,
                message: error.to_string(),
            },
            error @ SubmitError::MemoOff => Self::NotMemoizable {
                code: ApiErrorCode::MemoizationOff,
                message: error.to_string(),
            },
        }
    }
}

impl From<BatchError> for ApiError {
    fn from(error: BatchError) -> Self {
        match error {
            BatchError::Job { index, source } => Self::InBatch {
                index,
                error: Box::new(source.into()),
            },
            BatchError::QueueFull(full) => Self::QueueFull(full),
            BatchError::Quota(over) => Self::QuotaExceeded(over),
            invalid => Self::Body {
                status: StatusCode::BAD_REQUEST,
                code: ApiErrorCode::InvalidRequest,
                message: invalid.to_string(),
            },
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::Compile(compile) => {
                let status = match *compile {
                    CompileError::NotWasm(_)
                    | CompileError::CoreModule
                    | CompileError::Invalid(_)
                    | CompileError::Manifest(_) => StatusCode::BAD_REQUEST,
                    CompileError::CompilerUnavailable(_) => {
                        tracing::error!(error = %compile, "upload failed");
                        return Self::Internal;
                    }
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                Self::InvalidComponent {
                    status,
                    message: compile.to_string(),
                }
            }
            UploadError::Quota(over) => Self::QuotaExceeded(over),
            // Its key went with it.
            UploadError::TenantGone => Self::Unauthorized(super::auth::UNKNOWN_KEY),
            other => {
                tracing::error!(error = %other, "upload failed");
                Self::Storage(other.to_string())
            }
        }
    }
}

impl From<CancelError> for ApiError {
    fn from(error: CancelError) -> Self {
        match error {
            CancelError::NotFound(id) => Self::JobNotFound(id),
            CancelError::AlreadyFinished(record) => Self::JobFinished(record.id),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match &rejection {
            JsonRejection::JsonSyntaxError(_) => {
                (StatusCode::BAD_REQUEST, ApiErrorCode::MalformedJson)
            }
            JsonRejection::JsonDataError(_) => {
                (StatusCode::BAD_REQUEST, ApiErrorCode::InvalidRequest)
            }
            JsonRejection::MissingJsonContentType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ApiErrorCode::UnsupportedMediaType,
            ),
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, ApiErrorCode::BodyTooLarge)
            }
            _ => (rejection.status(), ApiErrorCode::InvalidBody),
        };
        Self::Body {
            status,
            code,
            message: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::InvalidQuery(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        if rejection.status().is_server_error() {
            // A route whose parameters do not fit its handler: a bug.
            tracing::error!(error = %rejection.body_text(), "path parameters");
            return Self::Internal;
        }
        Self::InvalidPath(rejection.body_text())
    }
}
