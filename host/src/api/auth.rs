//! Authentication: every `/v1` request carries `Authorization: Bearer KEY`; the key's holder
//! (a tenant, or the operator) becomes the request's [`Caller`], for the handlers to act for.
//! A missing or unknown key is `401 unauthorized`, with `WWW-Authenticate: Bearer`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use super::ApiError;
use crate::host::{Host, Scope};
use crate::tenants::{Auth, Caller, TenantId};

/// What a request without a key is told.
const NO_KEY: &str = "this route needs an API key: send `Authorization: Bearer KEY` (a server \
                      started without tenants keeps its default tenant's key in \
                      DATA_DIR/default.key, which the taskhost CLI reads by itself)";

/// What a request with a key nobody holds is told (the same whether it never existed or was
/// revoked).
pub(super) const UNKNOWN_KEY: &str = "the API key is not valid: unknown or revoked";

/// Lets the request through with its [`Caller`](crate::tenants::Caller) as an extension, or
/// answers 401.
pub(super) async fn authenticate(
    Extension(host): Extension<Arc<Host>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request.headers().get(header::AUTHORIZATION);
    let caller = match header {
        None if host.auth() == Auth::Off => Caller::Anyone,
        None => return Err(ApiError::Unauthorized(NO_KEY)),
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .and_then(bearer_token)
                .ok_or(ApiError::Unauthorized(NO_KEY))?;
            host.authenticate(key)
                .ok_or(ApiError::Unauthorized(UNKNOWN_KEY))?
        }
    };
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// The token of an `Authorization: Bearer TOKEN` value (the scheme's name in any case, as
/// RFC 9110 has it).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The tenant a request acts for: its key's holder. Jobs and batches are tenants'; the admin
/// key, which manages the host, is refused with 403 on their routes.
pub(super) struct TenantCaller(pub TenantId);

impl<S: Send + Sync> FromRequestParts<S> for TenantCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match caller(parts, state).await? {
            Caller::Tenant(tenant) => Ok(Self(tenant)),
            Caller::Anyone => Ok(Self(TenantId::default_tenant())),
            Caller::Admin => Err(ApiError::Forbidden(
                "jobs and batches belong to tenants: send a tenant's key (the admin key \
                 manages the host: tenants, status, metrics)",
            )),
        }
    }
}

/// Whose tasks a request reads and writes: a tenant's key acts in that tenant's namespace
/// (its own uploads, over the shared tasks it has not shadowed); the admin key, and anyone
/// when authentication is off, in the shared one, the operator's.
pub(super) struct TasksCaller(Option<TenantId>);

impl TasksCaller {
    /// The namespace the request acts in.
    pub(super) fn scope(&self) -> Scope<'_> {
        match &self.0 {
            Some(tenant) => Scope::Tenant(tenant),
            None => Scope::Shared,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TasksCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match caller(parts, state).await? {
            Caller::Tenant(tenant) => Ok(Self(Some(tenant))),
            Caller::Admin | Caller::Anyone => Ok(Self(None)),
        }
    }
}

/// A request made with the admin key; any other caller is refused with 403.
pub(super) struct Admin;

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match caller(parts, state).await? {
            Caller::Admin | Caller::Anyone => Ok(Self),
            Caller::Tenant(_) => Err(ApiError::Forbidden(
                "this route takes the admin key (DATA_DIR/admin.key), not a tenant's: tenants, \
                 the host's metrics, and the tasks every tenant shares are the operator's",
            )),
        }
    }
}

/// The caller [`authenticate`] found (every authenticated route has one).
async fn caller<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Caller, ApiError> {
    let Extension(caller) = Extension::<Caller>::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::Internal)?;
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer_token("Bearer th_1"), Some("th_1"));
        assert_eq!(bearer_token("bearer th_1"), Some("th_1"));
        assert_eq!(bearer_token("BEARER  th_1 "), Some("th_1"));
        assert_eq!(bearer_token("Basic dXNlcg=="), None);
        assert_eq!(bearer_token("th_1"), None);
    }
}
