//! A small blocking client for the taskhost HTTP API: one method per route the CLI uses, job
//! records typed, and every failure a [`ClientError`] that says what to do about it.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use taskhost::jobs::{JobId, JobRecord, JobStatus, Kind, KindSource};
use taskhost::tenants::Quotas;

/// The longest one long poll asks the server to wait (the server may cap it lower, with
/// `--max-wait-ms`); waiting longer takes several.
const LONG_POLL: Duration = Duration::from_secs(60);

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest one request may take, from connecting to the last byte of the answer: a long
/// poll, or an upload the server compiles, with room to spare. A server that stops answering
/// is reported instead of waited for for ever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The largest response body read (a page of a thousand job records can be large).
const MAX_BODY_BYTES: u64 = 1 << 30;

/// A client of one taskhost server.
pub struct Client {
    /// The server's base URL, without a trailing `/`.
    base: String,
    agent: ureq::Agent,
}

/// Why a request did not get the answer the CLI wanted.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered at the server's address.
    #[error(
        "the server is not reachable at {url} ({reason}): start one with `taskhost serve`, or \
         point to yours with --server URL or TASKHOST_URL"
    )]
    Unreachable {
        /// The server's base URL.
        url: String,
        /// What the connection attempt ran into.
        reason: String,
    },
    /// The API answered with an error, in its `{"error": {"code", "message"}}` shape.
    #[error("{message} ({code})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The API's stable error code.
        code: String,
        /// What went wrong, for people.
        message: String,
        /// When to try again, if the server said (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The answer was not what a taskhost server sends.
    #[error("unexpected answer from {url}: {detail}; is --server a taskhost server?")]
    Unexpected {
        /// The URL asked.
        url: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// The request failed on its way (a name that does not resolve, a dropped connection,
    /// TLS).
    #[error("request to {url} failed: {cause}")]
    Transport {
        /// The URL asked.
        url: String,
        /// What failed.
        cause: ureq::Error,
    },
}

/// A key just issued (`POST /v1/admin/tenants/{id}/keys`).
#[derive(Debug, Deserialize)]
pub struct IssuedKey {
    /// Its id, to revoke it by.
    pub id: String,
    /// The key, shown this once.
    pub key: String,
}

/// A task as `GET /v1/tasks` and uploads show it: the fields the CLI uses.
#[derive(Debug, Deserialize)]
pub struct TaskSummary {
    /// The task's name.
    pub name: String,
    /// Whose it is: `shared` (the operator's) or `tenant` (the caller's own upload).
    pub origin: String,
    /// The blake3 hash of its component, in hex.
    pub hash: String,
    /// The component's size in bytes.
    pub size: u64,
    /// How its jobs run unless a job says otherwise.
    pub kind: Kind,
    /// Whether the task declares its kind or its imports decide it.
    pub kind_source: KindSource,
    /// When this version started serving (RFC 3339).
    pub serving_since: String,
}

/// What `PUT /v1/tasks/{name}` did.
pub struct Upload {
    /// The task as it now serves.
    pub task: TaskSummary,
    /// Whether it replaced an earlier version (else it is new).
    pub replaced: bool,
}

/// Which jobs `GET /v1/jobs` lists.
#[derive(Default)]
pub struct JobQuery {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this task.
    pub task: Option<String>,
    /// Jobs per page.
    pub limit: Option<usize>,
}

/// A page of `GET /v1/jobs`, newest first.
#[derive(Debug, Deserialize, Serialize)]
pub struct JobPage {
    /// The jobs on this page.
    pub jobs: Vec<JobRecord>,
    /// Where the next page starts; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<JobId>,
}

impl Client {
    /// A client of the server at `url` (e.g. `http://127.0.0.1:7070`), sending `key` (if
    /// any) as `Authorization: Bearer`.
    pub fn new(url: &str, key: Option<&str>) -> Self {
        Self::with_request_timeout(url, key, REQUEST_TIMEOUT)
    }

    /// A client whose requests each give up after `timeout`.
    fn with_request_timeout(url: &str, key: Option<&str>, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(timeout))
            .user_agent(concat!("taskhost/", env!("CARGO_PKG_VERSION")));
        let bearer: Option<ureq::http::HeaderValue> =
            key.and_then(|key| format!("Bearer {key}").parse().ok());
        let agent = match bearer {
            Some(bearer) => config.middleware(
                move |mut request: ureq::http::Request<ureq::SendBody>,
                      next: ureq::middleware::MiddlewareNext| {
                    let header = ureq::http::header::AUTHORIZATION;
                    request.headers_mut().insert(header, bearer.clone());
                    next.handle(request)
                },
            ),
            None => config,
        }
        .build()
        .into();
        Self {
            base: url.trim_end_matches('/').to_owned(),
            agent,
        }
    }

    /// Uploads `component` as task `name` (`PUT /v1/tasks/{name}`).
    pub fn upload_task(&self, name: &str, component: &[u8]) -> Result<Upload, ClientError> {
        let url = self.url(&format!("/v1/tasks/{name}"));
        let sent = self
            .agent
            .put(&url)
            .header("content-type", "application/wasm")
            .send(component);
        let (status, body) = self.receive(&url, sent)?;
        Ok(Upload {
            task: parse(&url, &body)?,
            replaced: status == 200,
        })
    }

    /// The task list (`GET /v1/tasks`) as the server sent it.
    pub fn tasks(&self) -> Result<Value, ClientError> {
        let url = self.url("/v1/tasks");
        let (_, body) = self.receive(&url, self.agent.get(&url).call())?;
        parse(&url, &body)
    }

    /// Deletes task `name` and its file (`DELETE /v1/tasks/{name}`).
    pub fn delete_task(&self, name: &str) -> Result<(), ClientError> {
        let url = self.url(&format!("/v1/tasks/{name}"));
        self.receive(&url, self.agent.delete(&url).call())?;
        Ok(())
    }

    /// Creates tenant `id` (`POST /v1/admin/tenants`).
    pub fn create_tenant(&self, id: &str, quotas: &Quotas) -> Result<Value, ClientError> {
        let url = self.url("/v1/admin/tenants");
        let body = serde_json::json!({"id": id, "quotas": quotas});
        let (_, body) = self.receive(&url, self.agent.post(&url).send_json(body))?;
        parse(&url, &body)
    }

    /// Tenant `id` (`GET /v1/admin/tenants/{id}`) as the server sent it.
    pub fn tenant(&self, id: &str) -> Result<Value, ClientError> {
        let url = self.url(&format!("/v1/admin/tenants/{id}"));
        let (_, body) = self.receive(&url, self.agent.get(&url).call())?;
        parse(&url, &body)
    }

    /// Replaces tenant `id`'s quotas (`PATCH /v1/admin/tenants/{id}`): the tenant after.
    pub fn set_quotas(&self, id: &str, quotas: &Quotas) -> Result<Value, ClientError> {
        let url = self.url(&format!("/v1/admin/tenants/{id}"));
        let body = serde_json::json!({"quotas": quotas});
        let (_, body) = self.receive(&url, self.agent.patch(&url).send_json(body))?;
        parse(&url, &body)
    }

    /// The tenants (`GET /v1/admin/tenants`) as the server sent them.
    pub fn tenants(&self) -> Result<Value, ClientError> {
        let url = self.url("/v1/admin/tenants");
        let (_, body) = self.receive(&url, self.agent.get(&url).call())?;
        parse(&url, &body)
    }

    /// Deletes tenant `id` (`DELETE /v1/admin/tenants/{id}`).
    pub fn delete_tenant(&self, id: &str) -> Result<(), ClientError> {
        let url = self.url(&format!("/v1/admin/tenants/{id}"));
        self.receive(&url, self.agent.delete(&url).call())?;
        Ok(())
    }

    /// Issues tenant `id` a key (`POST /v1/admin/tenants/{id}/keys`).
    pub fn issue_key(&self, id: &str) -> Result<IssuedKey, ClientError> {
        let url = self.url(&format!("/v1/admin/tenants/{id}/keys"));
        let sent = self.agent.post(&url).send_empty();
        let (_, body) = self.receive(&url, sent)?;
        parse(&url, &body)
    }

    /// Revokes key `key_id` of tenant `id` (`DELETE /v1/admin/tenants/{id}/keys/{key_id}`).
    pub fn revoke_key(&self, id: &str, key_id: &str) -> Result<(), ClientError> {
        let url = self.url(&format!("/v1/admin/tenants/{id}/keys/{key_id}"));
        self.receive(&url, self.agent.delete(&url).call())?;
        Ok(())
    }

    /// Submits a job (`POST /v1/jobs`) with `spec` as its body; with an idempotency `key`,
    /// a retry returns the first job. Answers at once with the record so far.
    pub fn submit(
        &self,
        spec: &impl Serialize,
        key: Option<&str>,
    ) -> Result<JobRecord, ClientError> {
        self.post_job(spec, key, Duration::ZERO)
    }

    /// Submits a job like [`Client::submit`] and waits until it finishes, however long that
    /// takes; returns its final record.
    pub fn run(&self, spec: &impl Serialize, key: Option<&str>) -> Result<JobRecord, ClientError> {
        let record = self.post_job(spec, key, LONG_POLL)?;
        if record.status.is_final() {
            return Ok(record);
        }
        self.wait(record.id, None)
    }

    /// Job `id`'s record (`GET /v1/jobs/{id}`).
    pub fn job(&self, id: JobId) -> Result<JobRecord, ClientError> {
        self.poll_job(id, Duration::ZERO)
    }

    /// Waits for job `id` to finish, with long polls, for at most `limit` (or for as long as
    /// it takes); returns its record then, finished or not.
    pub fn wait(&self, id: JobId, limit: Option<Duration>) -> Result<JobRecord, ClientError> {
        let deadline = limit.map(|limit| Instant::now() + limit);
        loop {
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let record = self.poll_job(id, left.unwrap_or(LONG_POLL).min(LONG_POLL))?;
            let expired = deadline.is_some_and(|deadline| Instant::now() >= deadline);
            if record.status.is_final() || expired {
                return Ok(record);
            }
        }
    }

    /// Cancels job `id` (`DELETE /v1/jobs/{id}`); returns its final record.
    pub fn cancel(&self, id: JobId) -> Result<JobRecord, ClientError> {
        let url = self.url(&format!("/v1/jobs/{id}"));
        let (_, body) = self.receive(&url, self.agent.delete(&url).call())?;
        parse(&url, &body)
    }

    /// One page of jobs (`GET /v1/jobs`), starting after `cursor` (a page's `next_cursor`).
    pub fn jobs(&self, query: &JobQuery, cursor: Option<JobId>) -> Result<JobPage, ClientError> {
        let url = self.url("/v1/jobs");
        let mut request = self.agent.get(&url);
        if let Some(status) = query.status {
            request = request.query("status", wire_name(status));
        }
        if let Some(task) = &query.task {
            request = request.query("task", task);
        }
        if let Some(limit) = query.limit {
            request = request.query("limit", limit.to_string());
        }
        if let Some(cursor) = cursor {
            request = request.query("cursor", cursor.to_string());
        }
        let (_, body) = self.receive(&url, request.call())?;
        parse(&url, &body)
    }

    /// `POST /v1/jobs`, waiting up to `wait` for the job to finish.
    fn post_job(
        &self,
        spec: &impl Serialize,
        key: Option<&str>,
        wait: Duration,
    ) -> Result<JobRecord, ClientError> {
        let url = self.url("/v1/jobs");
        let mut request = self.agent.post(&url);
        if !wait.is_zero() {
            request = request.query("wait_ms", wait.as_millis().to_string());
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let (_, body) = self.receive(&url, request.send_json(spec))?;
        parse(&url, &body)
    }

    /// `GET /v1/jobs/{id}`, waiting up to `wait` for the job to finish.
    fn poll_job(&self, id: JobId, wait: Duration) -> Result<JobRecord, ClientError> {
        let url = self.url(&format!("/v1/jobs/{id}"));
        let mut request = self.agent.get(&url);
        if !wait.is_zero() {
            request = request.query("wait_ms", wait.as_millis().to_string());
        }
        let (_, body) = self.receive(&url, request.call())?;
        parse(&url, &body)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The status and body of a successful answer; any other outcome as a [`ClientError`].
    fn receive(
        &self,
        url: &str,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let mut response = sent.map_err(|error| self.transport_error(url, error))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .map(Duration::from_secs);
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|error| self.transport_error(url, error))?;
        if status < 400 {
            return Ok((status, body));
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            error: ErrorDetail,
        }
        #[derive(Deserialize)]
        struct ErrorDetail {
            code: String,
            message: String,
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(ErrorBody { error }) => Err(ClientError::Api {
                status,
                code: error.code,
                message: error.message,
                retry_after,
            }),
            Err(_) => Err(ClientError::Unexpected {
                url: url.to_owned(),
                detail: format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            }),
        }
    }

    fn transport_error(&self, url: &str, error: ureq::Error) -> ClientError {
        let unreachable = match &error {
            ureq::Error::Io(io) => matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
            ),
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => true,
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
            _ => false,
        };
        if unreachable {
            ClientError::Unreachable {
                url: self.base.clone(),
                reason: error.to_string(),
            }
        } else {
            ClientError::Transport {
                url: url.to_owned(),
                cause: error,
            }
        }
    }
}

/// A body as `T`.
fn parse<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|error| ClientError::Unexpected {
        url: url.to_owned(),
        detail: error.to_string(),
    })
}

/// How the API writes a unit variant (e.g. `succeeded` for [`JobStatus::Succeeded`]).
pub fn wire_name(variant: impl Serialize) -> String {
    match serde_json::to_value(variant) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_never_answers_is_given_up_on() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let client = Client::with_request_timeout(&url, None, Duration::from_millis(200));
        let error = client.tasks().unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::Transport {
                    cause: ureq::Error::Timeout(_),
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
