//! `/v1/admin/tenants`: the operator manages tenants and their keys, with the admin key. A
//! key is shown once, when issued; a revoked key (or a deleted tenant's) is refused from the
//! next request on.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::ErrorBody;
use super::{ApiError, ApiJson, ApiPath};
use crate::host::Host;
use crate::tenants::{Quotas, TenantError, TenantId, TenantView};

/// The body of `POST /v1/admin/tenants`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTenant {
    /// The tenant's id: 1 to 63 of `a-z`, `0-9` and `-`.
    #[schema(pattern = "^[a-z0-9-]{1,63}$")]
    id: String,
    /// Its quotas; none set unless given.
    #[serde(default)]
    quotas: Quotas,
}

/// The body of `PATCH /v1/admin/tenants/{id}`: what to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantChange {
    /// Its quotas, replacing the ones it had (a quota left out is no longer set).
    quotas: Option<Quotas>,
}

/// `GET /v1/admin/tenants`.
#[derive(Serialize, ToSchema)]
pub(super) struct TenantList {
    /// Every tenant, by id.
    tenants: Vec<TenantView>,
}

/// A key just issued, shown this once.
#[derive(Serialize, ToSchema)]
pub(super) struct NewKey {
    /// The key's id, to revoke it by.
    id: String,
    /// The key: send it as `Authorization: Bearer KEY`. It is not shown again.
    key: String,
}

/// The tenant id in a path, or the error for one that is not.
fn tenant_id(id: String) -> Result<TenantId, ApiError> {
    TenantId::try_from(id).map_err(|error| ApiError::InvalidTenantId(error.to_string()))
}

/// Creates a tenant, with its quotas (if any) and no keys yet.
#[utoipa::path(
    post,
    path = "/v1/admin/tenants",
    tag = "admin",
    request_body = NewTenant,
    responses(
        (status = CREATED, description = "The tenant", body = TenantView),
        (status = BAD_REQUEST, description = "`invalid_tenant_id`, `malformed_json`, `invalid_request`", body = ErrorBody),
        (status = FORBIDDEN, description = "`forbidden`: not the admin key", body = ErrorBody),
        (status = CONFLICT, description = "`tenant_exists`", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "`unsupported_media_type`", body = ErrorBody),
    ),
)]
pub(super) async fn create_tenant(
    State(host): State<Arc<Host>>,
    _: Admin,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    let tenant = host.create_tenant(tenant_id(body.id)?, body.quotas)?;
    tracing::info!(tenant = tenant.id.as_str(), "tenant created");
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// Every tenant.
#[utoipa::path(
    get,
    path = "/v1/admin/tenants",
    tag = "admin",
    responses(
        (status = OK, description = "The tenants", body = TenantList),
        (status = FORBIDDEN, description = "`forbidden`: not the admin key", body = ErrorBody),
    ),
)]
pub(super) async fn list_tenants(State(host): State<Arc<Host>>, _: Admin) -> Json<TenantList> {
    Json(TenantList {
        tenants: host.tenants().list(),
    })
}

/// One tenant.
#[utoipa::path(
    get,
    path = "/v1/admin/tenants/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = OK, description = "The tenant", body = TenantView),
        (status = BAD_REQUEST, description = "`invalid_tenant_id`, `invalid_path`", body = ErrorBody),
        (status = FORBIDDEN, description = "`forbidden`: not the admin key", body = ErrorBody),
        (status = NOT_FOUND, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub(super) async fn get_tenant(
    State(host): State<Arc<Host>>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TenantView>, ApiError> {
    let id = tenant_id(id)?;
    match host.tenants().get(&id) {
        Some(tenant) => Ok(Json(tenant)),
        None => Err(TenantError::NotFound(id).into()),
    }
}

/// Changes a tenant: its quotas, from the next request on.
#[utoipa::path(
    patch,
    path = "/v1/admin/tenants/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The tenant's id")),
    request_body = TenantChange,
    responses(
        (status = OK, description = "The tenant as changed", body = TenantView),
        (status = BAD_REQUEST, description = "`invalid_tenant_id`, `invalid_path`, `malformed_json`, `invalid_request`", body = ErrorBody),
        (status = FORBIDDEN, description = "`forbidden`: not the admin key", body = ErrorBody),
        (status = NOT_FOUND, description = "`tenant_not_found`", body = ErrorBody),
        (status = CONFLICT, description = "`tenant_declared`: declared in the config file, changed there", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "`unsupported_media_type`", body = ErrorBody),
    ),
)]
pub(super) async fn change_tenant(
    State(host): State<Arc<Host>>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TenantChange>,
) -> Result<Json<TenantView>, ApiError> {
    let id = tenant_id(id)?;
    let tenant = match body.quotas {
        Some(quotas) => host.set_quotas(&id, quotas)?,
        None => host
            .tenants()
            .get(&id)
            .ok_or_else(|| TenantError::NotFound(id.clone()))?,
    };
    tracing::info!(tenant = id.as_str(), quotas = ?tenant.quotas, "tenant changed");
    Ok(Json(tenant))
}

/// Deletes a tenant: its keys are refused from the next request on, and its unfinished jobs
/// are cancelled.
#[utoipa::path(
    delete,
    path = "/v1/admin/tenants/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = BAD_REQUEST, description = "`invalid_tenant_id`, `invalid_path`", body = ErrorBody),
        (status = FORBIDDEN, description = "`forbidden`: not the admin key", body = ErrorBody),
        (status = NOT_FOUND, description = "`tenant_not_found`", body = ErrorBody),
        (status = CONFLICT, description = "`tenant_declared`: declared in the config file, changed there", body = ErrorBody),
    ),
)]
pub(super) async fn delete_tenant(
    State(host): State<Arc<Host>>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = tenant_id(id)?;
    let cancelled = host.delete_tenant(&id)?;
    tracing::info!(tenant = id.as_str(), cancelled, "tenant deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a tenant a new key, shown this once.
#[utoipa::path(
    post,
    path = "/v1/admin/tenants/{id}/keys",
    tag = "admin",
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = CREATED, description = "The key, shown this once", body = NewKey),
        (status = BAD_REQUEST, description = "`invalid_tenant_id`, `invalid_path`", body = ErrorBody),
        (status = FORBIDDEN, description = "`forbidden`: not the admin key", body = ErrorBody),
        (status = NOT_FOUND, description = "`tenant_not_found`", body = ErrorBody),
        (status = CONFLICT, description = "`tenant_declared`: declared in the config file, changed there", body = ErrorBody),
    ),
)]
pub(super) async fn issue_key(
    State(host): State<Arc<Host>>,
    _: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let id = tenant_id(id)?;
    let issued = host.tenants().issue_key(&id)?;
    tracing::info!(tenant = id.as_str(), key = %issued.id, "key issued");
    let key = NewKey {
        id: issued.id.to_string(),
        key: issued.key.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(key)))
}

/// Revokes one of a tenant's keys: refused from the next request on.
#[utoipa::path(
    delete,
    path = "/v1/admin/tenants/{id}/keys/{key_id}",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The tenant's id"),
        ("key_id" = String, Path, description = "The key's id"),
    ),
    responses(
        (status = NO_CONTENT, description = "Revoked"),
        (status = BAD_REQUEST, description = "`invalid_tenant_id`, `invalid_path`", body = ErrorBody),
        (status = FORBIDDEN, description = "`forbidden`: not the admin key", body = ErrorBody),
        (status = NOT_FOUND, description = "`tenant_not_found`, `key_not_found`", body = ErrorBody),
        (status = CONFLICT, description = "`tenant_declared`: declared in the config file, changed there", body = ErrorBody),
    ),
)]
pub(super) async fn revoke_key(
    State(host): State<Arc<Host>>,
    _: Admin,
    ApiPath((id, key)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = tenant_id(id)?;
    host.tenants().revoke_key(&id, &key)?;
    tracing::info!(tenant = id.as_str(), %key, "key revoked");
    Ok(StatusCode::NO_CONTENT)
}
