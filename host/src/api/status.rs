//! The server's own state: liveness, readiness, `GET /v1/status` and `GET /metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};

use super::ApiError;
use super::auth::Admin;
use super::error::ErrorBody;
use crate::host::Host;
use crate::server::ConnectionStats;
use crate::status::{self, StatusView};
use crate::tenants::Caller;

/// Answers `ok` while the server is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "server",
    responses((status = OK, description = "`ok`", body = String, content_type = "text/plain; charset=utf-8")),
)]
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// Ready for jobs once every task file found at start has loaded (or failed to).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "server",
    responses(
        (status = OK, description = "`ready`", body = String, content_type = "text/plain; charset=utf-8"),
        (status = SERVICE_UNAVAILABLE, description = "`not_ready`: tasks found at start are still loading", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before asking again"))),
    ),
)]
pub(super) async fn readyz(State(host): State<Arc<Host>>) -> Result<&'static str, ApiError> {
    match host.tasks_loading() {
        0 => Ok("ready"),
        loading => Err(ApiError::NotReady(loading)),
    }
}

/// The host's state (the queue, the engine threads, the compiled-component cache, the
/// engine's settings...) for the admin key; for a tenant's key, its own jobs and the tasks.
#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "server",
    responses((status = OK, description = "The host's state (admin key), or the tenant's", body = StatusView)),
)]
pub(super) async fn status(
    State(host): State<Arc<Host>>,
    Extension(caller): Extension<Caller>,
    server: Option<Extension<Arc<ConnectionStats>>>,
) -> Json<StatusView> {
    Json(match caller {
        Caller::Admin | Caller::Anyone => {
            let status = host.status_with(server.map(|stats| stats.status()));
            StatusView::Host(Box::new(status))
        }
        Caller::Tenant(tenant) => StatusView::Tenant(host.tenant_status(&tenant)),
    })
}

/// Every metric, in the OpenMetrics text format, for Prometheus to scrape.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "server",
    responses((status = OK, description = "Job counts by task and outcome, latency histograms, queue depth, cache hits and compile times, fuel, and every part's state", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")),
)]
pub(super) async fn metrics(
    State(host): State<Arc<Host>>,
    _: Admin,
    server: Option<Extension<Arc<ConnectionStats>>>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, status::CONTENT_TYPE)],
        host.metrics_with(server.map(|stats| stats.status())),
    )
}
