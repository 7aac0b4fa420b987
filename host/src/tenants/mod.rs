//! Who may call the API: tenants, each holding API keys, and the operator, holding the admin
//! key. The API authenticates each request once (`api::auth`) and works for the [`Caller`]
//! it found; nothing below knows keys.
//!
//! The data directory keeps what the host knows of tenants in `tenants.json` (ids and key
//! hashes, never keys). With none there, the first start creates the `default` tenant and
//! writes its key to `default.key` and the admin key to `admin.key` (both mode 0600), so
//! that a server started without configuration can be used at once: the CLI reads
//! `default.key` by itself. Later starts reuse them.

mod keys;
mod quotas;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

pub use keys::{ApiKey, KeyHash, KeyId};
pub use quotas::{QuotaExceeded, Quotas, SubmissionRates};

/// The file of the `default` tenant's key, in the data directory.
pub const DEFAULT_KEY_FILE: &str = "default.key";

/// The file of the admin key, in the data directory.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// The file of the tenants, in the data directory.
const TENANTS_FILE: &str = "tenants.json";

/// A tenant's id: 1 to 63 of `[a-z0-9-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// A tenant id that is not 1 to 63 of `[a-z0-9-]`.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a tenant id: use 1 to 63 of a-z, 0-9 and -")]
pub struct InvalidTenantId(String);

impl Default for TenantId {
    /// The `default` tenant, whose jobs an embedder that names no tenant submits.
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl TenantId {
    /// The tenant a server started without configuration creates.
    pub fn default_tenant() -> Self {
        Self("default".into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidTenantId;

    fn try_from(id: String) -> Result<Self, InvalidTenantId> {
        let valid = (1..=63).contains(&id.len())
            && id
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if valid {
            Ok(Self(id))
        } else {
            Err(InvalidTenantId(id))
        }
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> Self {
        id.0
    }
}

/// Who sent a request, as its key says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The operator, with the admin key.
    Admin,
    /// A tenant, with one of its keys.
    Tenant(TenantId),
    /// Anyone, without a key, on a server with authentication off ([`Auth::Off`]): the
    /// operator on admin routes, the `default` tenant on tenants' routes.
    Anyone,
}

/// Whether requests need API keys (`--auth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Auth {
    /// Every `/v1` request carries a key.
    #[default]
    Keys,
    /// A request without a key is let through as [`Caller::Anyone`]: for a machine of
    /// one's own. Refused beyond loopback unless confirmed, and warned of at every start.
    Off,
}

/// Errors from opening the tenants of a data directory.
#[derive(Debug, thiserror::Error)]
pub enum TenantsError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `tenants.json` is not what this host writes.
    #[error("{} is not a tenants file this host wrote ({reason}): fix it or move it away", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// What `tenants.json` holds.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    tenants: Vec<StoredTenant>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTenant {
    id: TenantId,
    #[serde(default = "Timestamp::now")]
    created_at: Timestamp,
    keys: Vec<StoredKey>,
    #[serde(default, skip_serializing_if = "Quotas::is_empty")]
    quotas: Quotas,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    id: KeyId,
    hash: KeyHash,
    #[serde(default = "Timestamp::now")]
    created_at: Timestamp,
}

/// A tenant as the admin API shows it: never its keys, only their ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    /// The tenant's id.
    #[schema(value_type = String, pattern = "^[a-z0-9-]{1,63}$")]
    pub id: TenantId,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its keys, by id.
    pub keys: Vec<KeyView>,
    /// Its quotas (those set; the others do not bound it beyond the host's limits).
    pub quotas: Quotas,
}

/// One of a tenant's keys, as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// The key's id, to revoke it by.
    #[schema(value_type = String)]
    pub id: KeyId,
    /// When it was issued.
    pub created_at: Timestamp,
}

impl From<&StoredTenant> for TenantView {
    fn from(tenant: &StoredTenant) -> Self {
        Self {
            id: tenant.id.clone(),
            created_at: tenant.created_at,
            keys: tenant
                .keys
                .iter()
                .map(|key| KeyView {
                    id: key.id.clone(),
                    created_at: key.created_at,
                })
                .collect(),
            quotas: tenant.quotas,
        }
    }
}

/// A key just issued: the only time it is shown.
#[derive(Debug)]
pub struct IssuedKey {
    /// Its id.
    pub id: KeyId,
    /// The key.
    pub key: ApiKey,
}

/// Errors from changing the tenants.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// A tenant has this id already.
    #[error("a tenant {} exists already", .0.as_str())]
    Exists(TenantId),
    /// No tenant has this id.
    #[error("no tenant {}", .0.as_str())]
    NotFound(TenantId),
    /// The tenant has no key of this id.
    #[error("tenant {} has no key {key}", tenant.as_str())]
    KeyNotFound {
        /// The tenant.
        tenant: TenantId,
        /// The key id asked for.
        key: String,
    },
    /// The change could not be written to the data directory (logged): nothing changed.
    #[error("the host could not write its tenants; nothing changed, and it has been logged")]
    Storage(#[source] io::Error),
}

/// The tenants and their keys, and the admin key. Changes are written to `tenants.json`
/// before they take effect; a revoked key is refused from the next request on.
pub struct Tenants {
    file: PathBuf,
    admin: KeyHash,
    state: RwLock<State>,
}

/// The tenants, who holds each key, and each tenant's quotas.
struct State {
    stored: Stored,
    callers: HashMap<KeyHash, Caller>,
    quotas: HashMap<TenantId, Quotas>,
}

impl State {
    fn new(stored: Stored, admin: KeyHash) -> Self {
        let mut callers: HashMap<KeyHash, Caller> = stored
            .tenants
            .iter()
            .flat_map(|tenant| {
                let caller = Caller::Tenant(tenant.id.clone());
                tenant
                    .keys
                    .iter()
                    .map(move |key| (key.hash, caller.clone()))
            })
            .collect();
        callers.insert(admin, Caller::Admin);
        let quotas = stored
            .tenants
            .iter()
            .map(|tenant| (tenant.id.clone(), tenant.quotas))
            .collect();
        Self {
            stored,
            callers,
            quotas,
        }
    }
}

impl Tenants {
    /// The tenants of `data_dir` (created if missing): from its `tenants.json`, or, on a
    /// first start, the `default` tenant, its key written to `default.key`; and the admin
    /// key of `admin.key`, written first if missing.
    pub fn open(data_dir: &Path) -> Result<Self, TenantsError> {
        let io_error = |path: &Path| {
            let path = path.to_owned();
            move |source| TenantsError::Io { path, source }
        };
        fs::create_dir_all(data_dir).map_err(io_error(data_dir))?;
        let file = data_dir.join(TENANTS_FILE);
        let stored = match fs::read(&file) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|error| TenantsError::Unreadable {
                    path: file.clone(),
                    reason: error.to_string(),
                })?
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let stored = first_start(data_dir)?;
                write_stored(&file, &stored).map_err(io_error(&file))?;
                stored
            }
            Err(error) => return Err(io_error(&file)(error)),
        };
        let admin_file = data_dir.join(ADMIN_KEY_FILE);
        let admin = read_or_create_key(&admin_file, ApiKey::new_admin_key)
            .map_err(io_error(&admin_file))?;
        Ok(Self {
            file,
            admin,
            state: RwLock::new(State::new(stored, admin)),
        })
    }

    /// Who holds `key`, if anyone does.
    pub fn authenticate(&self, key: &str) -> Option<Caller> {
        self.read().callers.get(&KeyHash::of(key)).cloned()
    }

    /// Every tenant, by id.
    pub fn list(&self) -> Vec<TenantView> {
        let mut tenants: Vec<TenantView> = self
            .read()
            .stored
            .tenants
            .iter()
            .map(TenantView::from)
            .collect();
        tenants.sort_by(|one, other| one.id.as_str().cmp(other.id.as_str()));
        tenants
    }

    /// The tenant `id`.
    pub fn get(&self, id: &TenantId) -> Option<TenantView> {
        let state = self.read();
        state
            .stored
            .tenants
            .iter()
            .find(|tenant| tenant.id == *id)
            .map(TenantView::from)
    }

    /// The quotas of the tenant `id` (none set if there is no such tenant).
    pub fn quotas(&self, id: &TenantId) -> Quotas {
        self.read().quotas.get(id).copied().unwrap_or_default()
    }

    /// Creates the tenant `id` with `quotas`, and no keys yet.
    pub fn create(&self, id: TenantId, quotas: Quotas) -> Result<TenantView, TenantError> {
        self.change(|stored| {
            if stored.tenants.iter().any(|tenant| tenant.id == id) {
                return Err(TenantError::Exists(id));
            }
            let tenant = StoredTenant {
                id,
                created_at: Timestamp::now(),
                keys: Vec::new(),
                quotas,
            };
            let view = TenantView::from(&tenant);
            stored.tenants.push(tenant);
            Ok(view)
        })
    }

    /// Replaces the quotas of the tenant `id`, from the next request on.
    pub fn set_quotas(&self, id: &TenantId, quotas: Quotas) -> Result<TenantView, TenantError> {
        self.change(|stored| {
            let tenant = tenant_mut(stored, id)?;
            tenant.quotas = quotas;
            Ok(TenantView::from(&*tenant))
        })
    }

    /// Deletes the tenant `id`: its keys are refused from the next request on.
    pub fn delete(&self, id: &TenantId) -> Result<(), TenantError> {
        self.change(|stored| {
            let before = stored.tenants.len();
            stored.tenants.retain(|tenant| tenant.id != *id);
            match stored.tenants.len() < before {
                true => Ok(()),
                false => Err(TenantError::NotFound(id.clone())),
            }
        })
    }

    /// Issues the tenant `id` a new key.
    pub fn issue_key(&self, id: &TenantId) -> Result<IssuedKey, TenantError> {
        let key = ApiKey::new_tenant_key().map_err(TenantError::Storage)?;
        let key_id = KeyId::new().map_err(TenantError::Storage)?;
        let hash = key.hash();
        self.change(|stored| {
            let tenant = tenant_mut(stored, id)?;
            tenant.keys.push(StoredKey {
                id: key_id.clone(),
                hash,
                created_at: Timestamp::now(),
            });
            Ok(())
        })?;
        Ok(IssuedKey { id: key_id, key })
    }

    /// Revokes the tenant `id`'s key `key`: refused from the next request on.
    pub fn revoke_key(&self, id: &TenantId, key: &str) -> Result<(), TenantError> {
        self.change(|stored| {
            let tenant = tenant_mut(stored, id)?;
            let before = tenant.keys.len();
            tenant.keys.retain(|stored| stored.id.to_string() != key);
            match tenant.keys.len() < before {
                true => Ok(()),
                false => Err(TenantError::KeyNotFound {
                    tenant: id.clone(),
                    key: key.to_owned(),
                }),
            }
        })
    }

    /// Applies `change` to a copy of the tenants, writes it, and only then makes it the
    /// tenants (so a failed write changes nothing).
    fn change<T>(
        &self,
        change: impl FnOnce(&mut Stored) -> Result<T, TenantError>,
    ) -> Result<T, TenantError> {
        let mut state = self.state.write().expect("tenants poisoned");
        let mut stored = state.stored.clone();
        let result = change(&mut stored)?;
        write_stored(&self.file, &stored).map_err(|error| {
            tracing::error!(file = %self.file.display(), %error, "could not write the tenants");
            TenantError::Storage(error)
        })?;
        *state = State::new(stored, self.admin);
        Ok(result)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().expect("tenants poisoned")
    }
}

/// The tenant `id` of `stored`, to change.
fn tenant_mut<'a>(
    stored: &'a mut Stored,
    id: &TenantId,
) -> Result<&'a mut StoredTenant, TenantError> {
    stored
        .tenants
        .iter_mut()
        .find(|tenant| tenant.id == *id)
        .ok_or_else(|| TenantError::NotFound(id.clone()))
}

/// Writes `stored` to `file`, readable by this user only.
fn write_stored(file: &Path, stored: &Stored) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(stored).expect("tenants serialize");
    write_private(file, &json)
}

/// The tenants of a first start: `default`, with a new key written to `default.key`.
fn first_start(data_dir: &Path) -> Result<Stored, TenantsError> {
    let path = data_dir.join(DEFAULT_KEY_FILE);
    let key = ApiKey::new_tenant_key()
        .and_then(|key| write_private(&path, key.expose().as_bytes()).map(|()| key))
        .map_err(|source| TenantsError::Io {
            path: path.clone(),
            source,
        })?;
    tracing::info!(
        key_file = %path.display(),
        "no tenants yet: created tenant `default`; its API key is in the key file \
         (send it as `Authorization: Bearer KEY`; the taskhost CLI reads it by itself)"
    );
    Ok(Stored {
        tenants: vec![StoredTenant {
            id: TenantId::default_tenant(),
            created_at: Timestamp::now(),
            keys: vec![StoredKey {
                id: KeyId::new().map_err(|source| TenantsError::Io { path, source })?,
                hash: key.hash(),
                created_at: Timestamp::now(),
            }],
            quotas: Quotas::default(),
        }],
    })
}

/// The hash of the key in `path`, which is created with a new key from `new` if missing.
fn read_or_create_key(path: &Path, new: fn() -> io::Result<ApiKey>) -> io::Result<KeyHash> {
    match fs::read_to_string(path) {
        Ok(key) => Ok(KeyHash::of(key.trim())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let key = new()?;
            write_private(path, key.expose().as_bytes())?;
            Ok(key.hash())
        }
        Err(error) => Err(error),
    }
}

/// Writes `bytes` to `path` whole, readable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("file");
    let temporary = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    crate::atomic_file::write(&temporary, path, bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_first_start_creates_the_default_tenant_and_later_starts_reuse_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::open(dir.path()).unwrap();
        let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
        let (default_key, admin_key) = (read(DEFAULT_KEY_FILE), read(ADMIN_KEY_FILE));
        for name in [DEFAULT_KEY_FILE, ADMIN_KEY_FILE, TENANTS_FILE] {
            let mode = fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        assert!(
            !read(TENANTS_FILE).contains(&default_key),
            "only hashes are kept"
        );
        assert_eq!(
            tenants.authenticate(&default_key),
            Some(Caller::Tenant(TenantId::default_tenant()))
        );
        assert_eq!(tenants.authenticate(&admin_key), Some(Caller::Admin));
        assert_eq!(tenants.authenticate("th_0000"), None);
        assert_eq!(tenants.authenticate(""), None);

        let again = Tenants::open(dir.path()).unwrap();
        assert_eq!(read(DEFAULT_KEY_FILE), default_key);
        assert_eq!(
            again.authenticate(&default_key),
            Some(Caller::Tenant(TenantId::default_tenant()))
        );
        assert_eq!(again.authenticate(&admin_key), Some(Caller::Admin));
    }

    #[test]
    fn quotas_are_kept_across_restarts_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::open(dir.path()).unwrap();
        let id = TenantId::try_from("acme".to_owned()).unwrap();
        let quotas = Quotas {
            max_tasks: Some(3),
            max_queued_jobs: Some(10),
            ..Quotas::default()
        };
        tenants.create(id.clone(), quotas).unwrap();
        assert_eq!(tenants.quotas(&id), quotas);
        let again = Tenants::open(dir.path()).unwrap();
        assert_eq!(again.quotas(&id), quotas);
        let fewer = Quotas {
            max_tasks: Some(1),
            ..Quotas::default()
        };
        assert_eq!(again.set_quotas(&id, fewer).unwrap().quotas, fewer);
        assert_eq!(Tenants::open(dir.path()).unwrap().quotas(&id), fewer);
        let default = TenantId::default_tenant();
        assert!(again.quotas(&default).is_empty(), "none set");
        let missing = TenantId::try_from("nobody".to_owned()).unwrap();
        assert!(matches!(
            again.set_quotas(&missing, fewer),
            Err(TenantError::NotFound(_))
        ));
    }

    #[test]
    fn a_damaged_tenants_file_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TENANTS_FILE), b"{\"tenants\": 7}").unwrap();
        let error = Tenants::open(dir.path()).err().unwrap().to_string();
        assert!(
            error.contains("tenants.json") && error.contains("move it away"),
            "{error}"
        );
    }

    #[test]
    fn tenant_ids_are_short_lower_case_names() {
        for valid in ["default", "a", "team-42", &"x".repeat(63)] {
            assert!(TenantId::try_from(valid.to_owned()).is_ok(), "{valid}");
        }
        for invalid in ["", "Team", "a_b", "a/b", "ü", &"x".repeat(64)] {
            assert!(TenantId::try_from(invalid.to_owned()).is_err(), "{invalid}");
        }
    }
}
