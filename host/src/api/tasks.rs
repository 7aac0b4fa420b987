//! `/v1/tasks`: the tasks served, uploading and deleting them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::TasksCaller;
use super::error::{ApiErrorCode, ErrorBody};
use super::{ApiError, ApiPath, WAIT_FOR_LOADING};
use crate::cache::Source;
use crate::echo::echo;
use crate::engine::{Kind, KindSource};
use crate::host::Host;
use crate::registry::{Problem, TaskName, TaskVersion, is_valid_task_name};
use crate::timestamp::Timestamp;

/// `GET /v1/tasks`.
#[derive(Serialize, ToSchema)]
pub(super) struct TaskList {
    /// Grows with every change to the tasks; `?since=` it to wait for the next.
    revision: u64,
    /// The tasks served.
    tasks: Vec<TaskSummary>,
    /// Names whose files are still compiling for the first time.
    loading: BTreeSet<String>,
    /// Files that did not load, by name; the name serves its previous version, if any.
    problems: BTreeMap<String, Problem>,
}

/// The body of `PUT /v1/tasks/{name}`, in the document only: the handler reads the bytes as
/// they come, to refuse an oversized upload before it is whole.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary, content_media_type = "application/wasm")]
#[expect(dead_code, reason = "a schema only")]
struct ComponentBytes(Vec<u8>);

/// A task as it serves.
#[derive(Serialize, ToSchema)]
pub(super) struct TaskSummary {
    /// Its name.
    #[schema(value_type = TaskName)]
    name: String,
    /// Whose it is: `shared` (the operator's, seen by every tenant) or `tenant` (the
    /// caller's own upload, seen by no one else; it shadows a shared task of the name).
    origin: TaskOrigin,
    /// The blake3 hash of its component, in hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    hash: String,
    /// The size of its component, in bytes.
    size: usize,
    /// How its jobs run unless a job says otherwise.
    kind: Kind,
    /// Whether the task declares its kind or its imports decide it.
    kind_source: KindSource,
    /// The interfaces its component imports.
    imports: Vec<String>,
    /// Whether the same input always gives it the same result (it imports no clock,
    /// randomness or network function), so its results may be memoized.
    deterministic: bool,
    /// Whether its jobs are memoized unless they say otherwise (`#[task(memoize)]`).
    memoize: bool,
    /// Whether the compiled code was compiled here or loaded from the disk cache.
    source: Source,
    /// How long compiling or loading took, in milliseconds.
    load_ms: f64,
    /// When this version started serving.
    serving_since: Timestamp,
}

/// Whose a task is.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum TaskOrigin {
    /// The operator's: in the tasks directory, seen by every tenant.
    Shared,
    /// The caller's own upload.
    Tenant,
}

impl From<&TaskVersion> for TaskSummary {
    fn from(version: &TaskVersion) -> Self {
        let (kind, kind_source) = version.compiled.task.default_kind();
        Self {
            name: version.name.clone(),
            origin: match version.owner {
                None => TaskOrigin::Shared,
                Some(_) => TaskOrigin::Tenant,
            },
            hash: version.compiled.hash.to_hex().to_string(),
            size: version.size,
            kind,
            kind_source,
            imports: version.compiled.task.imports().to_vec(),
            deterministic: version.compiled.task.outside_world_imports().is_empty(),
            memoize: version.compiled.task.memoize_by_default(),
            source: version.compiled.source,
            load_ms: version.compiled.load_time.as_secs_f64() * 1e3,
            serving_since: version.serving_since,
        }
    }
}

/// `?since=REVISION&wait_ms=N`: answer once the tasks have changed since that revision.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct TasksQuery {
    /// With `wait_ms`: a `revision` to wait past.
    since: Option<u64>,
    /// With `since`: how long to wait for a change, in milliseconds (capped by the host).
    wait_ms: Option<u64>,
}

/// The tasks the caller sees (a tenant: its own uploads and the shared tasks it has not
/// shadowed; the admin key: the shared tasks), those loading, and files that did not load;
/// with `since` and `wait_ms`,
/// answers once the tasks have changed since that revision (or the wait is over).
#[utoipa::path(
    get,
    path = "/v1/tasks",
    tag = "tasks",
    params(TasksQuery),
    responses(
        (status = OK, description = "The tasks", body = TaskList),
        (status = BAD_REQUEST, description = "`invalid_query`", body = ErrorBody),
    ),
)]
pub(super) async fn list_tasks(
    State(host): State<Arc<Host>>,
    caller: TasksCaller,
    query: Result<Query<TasksQuery>, QueryRejection>,
) -> Result<Json<TaskList>, ApiError> {
    let Query(query) = query?;
    let scope = caller.scope();
    let snapshot = match (query.since, query.wait_ms) {
        (Some(since), Some(wait)) => {
            host.tasks_after(scope, since, Duration::from_millis(wait))
                .await
        }
        _ => host.tasks(scope),
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

/// Uploads a component as `application/wasm` into the caller's namespace (a tenant's key: the
/// tenant's own, seen by no one else; the admin key: the shared tasks): checked and compiled
/// before it serves; 201 if
/// the task is new, 200 if it replaced a version; the task as `GET` shows it.
#[utoipa::path(
    put,
    path = "/v1/tasks/{name}",
    tag = "tasks",
    params(("name" = TaskName, Path, description = "The task's name")),
    request_body(description = "A WebAssembly component of the task world (binary, at most `--max-upload-mib`)", content = ComponentBytes, content_type = "application/wasm"),
    responses(
        (status = OK, description = "It replaced the task's previous version", body = TaskSummary),
        (status = CREATED, description = "A new task", body = TaskSummary),
        (status = BAD_REQUEST, description = "`invalid_task_name`, `invalid_path`; `invalid_component`: the bytes are no binary component (empty, text, a core module, malformed)", body = ErrorBody),
        (status = FORBIDDEN, description = "`quota_exceeded`: over the tenant's component size, number of tasks or stored bytes", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "`body_too_large`: past `--max-upload-mib`", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "`unsupported_media_type`: not `application/wasm`", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`invalid_component`: the component is not a task, or is over a limit of what this host compiles (size, functions, compile time or memory, ...: the message names it)", body = ErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "`internal`: the task's file could not be written, or the compiler could not be run", body = ErrorBody),
    ),
)]
pub(super) async fn upload_task(
    State(host): State<Arc<Host>>,
    caller: TasksCaller,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !is_valid_task_name(&name) {
        return Err(ApiError::InvalidTaskName(name));
    }
    let limit = host.max_upload_bytes();
    let too_large = || ApiError::Body {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: ApiErrorCode::BodyTooLarge,
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
            code: ApiErrorCode::UnsupportedMediaType,
            message: "upload a component with Content-Type: application/wasm".into(),
        });
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    // Compiling takes a while: off the async threads.
    let upload = tokio::task::spawn_blocking(move || {
        host.upload_task(caller.scope(), &name, &bytes)
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

/// Deletes a task of the caller's namespace and its file: 204, or 404 if it has no such task
/// (a tenant cannot delete a shared task).
#[utoipa::path(
    delete,
    path = "/v1/tasks/{name}",
    tag = "tasks",
    params(("name" = TaskName, Path, description = "The task's name")),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = BAD_REQUEST, description = "`invalid_task_name`, `invalid_path`", body = ErrorBody),
        (status = NOT_FOUND, description = "`unknown_task`", body = ErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "`internal`: the task's file could not be deleted", body = ErrorBody),
    ),
)]
pub(super) async fn delete_task(
    State(host): State<Arc<Host>>,
    caller: TasksCaller,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if !is_valid_task_name(&name) {
        return Err(ApiError::InvalidTaskName(name));
    }
    match host.delete_task(caller.scope(), &name) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::UnknownTask(format!(
            "no task named {}",
            echo(&name)
        ))),
        Err(error) => Err(ApiError::Storage(error.to_string())),
    }
}

/// One task; a task still compiling for the first time is waited for (up to a minute).
#[utoipa::path(
    get,
    path = "/v1/tasks/{name}",
    tag = "tasks",
    params(("name" = TaskName, Path, description = "The task's name")),
    responses(
        (status = OK, description = "The task", body = TaskSummary),
        (status = BAD_REQUEST, description = "`invalid_path`", body = ErrorBody),
        (status = NOT_FOUND, description = "`unknown_task` (the message says why, if its file did not load)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "`task_loading`: still compiling past the wait", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before asking again"))),
    ),
)]
pub(super) async fn get_task(
    State(host): State<Arc<Host>>,
    caller: TasksCaller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<TaskSummary>, ApiError> {
    let scope = caller.scope();
    host.wait_for_task(scope, &name, WAIT_FOR_LOADING).await;
    host.task(scope, &name)
        .map(|version| Json(TaskSummary::from(&*version)))
        .map_err(ApiError::from)
}
