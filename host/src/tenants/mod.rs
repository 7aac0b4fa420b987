//! Who may call the API: tenants, each holding API keys, and the operator, holding the admin
//! key. The API authenticates each request once (`api::auth`) and works for the [`Caller`]
//! it found; nothing below knows keys.
//!
//! The data directory keeps what the host knows of tenants in `tenants.json` (ids and key
//! hashes, never keys). With none there, the first start creates the `default` tenant and
//! writes its key to `default.key` and the admin key to `admin.key` (both mode 0600), so
//! that a server started without configuration can be used at once: the CLI reads
//! `default.key` by itself. Later starts reuse them. Tenants may also be declared in the
//! config file (`declared`), which then creates no `default` tenant.

mod declared;
mod keys;
mod quotas;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

pub use declared::{DeclaredTenant, TenantsConfig};
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
    /// A tenant is both in the config file and in `tenants.json`.
    #[error(
        "tenant {} is declared in the config file and was also created over the admin API \
         (it is in {}): drop it from the config file, or delete it over the API first",
        id.as_str(), path.display()
    )]
    DeclaredTwice {
        /// The tenant.
        id: TenantId,
        /// `tenants.json`.
        path: PathBuf,
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
    /// Where it is kept: `api` (created over the admin API, which may change it) or `config`
    /// (declared in the config file, changed there).
    pub origin: TenantOrigin,
}

/// Where a tenant is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantOrigin {
    /// In the data directory, created over the admin API (or at the first start).
    Api,
    /// In the config file.
    Config,
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
            origin: TenantOrigin::Api,
        }
    }
}

impl TenantView {
    /// The view of `tenant`, declared in the config file read at `started_at`.
    fn declared(tenant: &DeclaredTenant, started_at: Timestamp) -> Self {
        Self {
            id: tenant.id.clone(),
            created_at: started_at,
            keys: tenant
                .key_hashes
                .iter()
                .map(|hash| KeyView {
                    id: KeyId::of_hash(hash),
                    created_at: started_at,
                })
                .collect(),
            quotas: tenant.quotas,
            origin: TenantOrigin::Config,
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
    /// The tenant is declared in the config file, where it is changed.
    #[error(
        "tenant {} is declared in the config file: change it there and restart the server",
        .0.as_str()
    )]
    Declared(TenantId),
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
    /// The tenants of the config file, and the default quotas.
    config: TenantsConfig,
    /// When the config file was read: the creation time shown for its tenants.
    started_at: Timestamp,
    state: RwLock<State>,
}

/// The tenants, who holds each key, and each tenant's quotas (its own over the defaults).
struct State {
    stored: Stored,
    callers: HashMap<KeyHash, Caller>,
    quotas: HashMap<TenantId, Quotas>,
}

impl State {
    fn new(stored: Stored, config: &TenantsConfig, admin: KeyHash) -> Self {
        let stored_keys = stored.tenants.iter().flat_map(|tenant| {
            let keys = tenant.keys.iter().map(|key| key.hash);
            keys.map(|hash| (hash, tenant.id.clone()))
        });
        let declared_keys = config.declared.iter().flat_map(|tenant| {
            let keys = tenant.key_hashes.iter().copied();
            keys.map(|hash| (hash, tenant.id.clone()))
        });
        let mut callers: HashMap<KeyHash, Caller> = stored_keys
            .chain(declared_keys)
            .map(|(hash, id)| (hash, Caller::Tenant(id)))
            .collect();
        callers.insert(admin, Caller::Admin);
        let stored_quotas = stored
            .tenants
            .iter()
            .map(|tenant| (&tenant.id, tenant.quotas));
        let declared_quotas = config
            .declared
            .iter()
            .map(|tenant| (&tenant.id, tenant.quotas));
        let quotas = stored_quotas
            .chain(declared_quotas)
            .map(|(id, quotas)| (id.clone(), quotas.or(config.default_quotas)))
            .collect();
        Self {
            stored,
            callers,
            quotas,
        }
    }
}

impl Tenants {
    /// The tenants of `config` and of `data_dir` (created if missing): from its
    /// `tenants.json`, or, on a first start without tenants in `config`, the `default`
    /// tenant, its key written to `default.key`; and the admin key of `admin.key`, written
    /// first if missing.
    pub fn open(data_dir: &Path, config: TenantsConfig) -> Result<Self, TenantsError> {
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
                let stored = match config.declared.is_empty() {
                    true => first_start(data_dir)?,
                    false => Stored::default(),
                };
                write_stored(&file, &stored).map_err(io_error(&file))?;
                stored
            }
            Err(error) => return Err(io_error(&file)(error)),
        };
        let declared_twice = stored.tenants.iter().find(|tenant| {
            config
                .declared
                .iter()
                .any(|declared| declared.id == tenant.id)
        });
        if let Some(tenant) = declared_twice {
            return Err(TenantsError::DeclaredTwice {
                id: tenant.id.clone(),
                path: file,
            });
        }
        let admin_file = data_dir.join(ADMIN_KEY_FILE);
        let admin = read_or_create_key(&admin_file, ApiKey::new_admin_key)
            .map_err(io_error(&admin_file))?;
        Ok(Self {
            file,
            admin,
            state: RwLock::new(State::new(stored, &config, admin)),
            config,
            started_at: Timestamp::now(),
        })
    }

    /// Who holds `key`, if anyone does.
    pub fn authenticate(&self, key: &str) -> Option<Caller> {
        self.read().callers.get(&KeyHash::of(key)).cloned()
    }

    /// Every tenant, by id.
    pub fn list(&self) -> Vec<TenantView> {
        let declared = self.config.declared.iter();
        let declared = declared.map(|tenant| TenantView::declared(tenant, self.started_at));
        let mut tenants: Vec<TenantView> = self
            .read()
            .stored
            .tenants
            .iter()
            .map(TenantView::from)
            .chain(declared)
            .collect();
        tenants.sort_by(|one, other| one.id.as_str().cmp(other.id.as_str()));
        tenants
    }

    /// The tenant `id`.
    pub fn get(&self, id: &TenantId) -> Option<TenantView> {
        if let Some(tenant) = self.declared(id) {
            return Some(TenantView::declared(tenant, self.started_at));
        }
        let state = self.read();
        state
            .stored
            .tenants
            .iter()
            .find(|tenant| tenant.id == *id)
            .map(TenantView::from)
    }

    /// The quotas that bound the tenant `id`: its own, and the default quotas for those it
    /// does not set (none set if there is no such tenant).
    pub fn quotas(&self, id: &TenantId) -> Quotas {
        self.read().quotas.get(id).copied().unwrap_or_default()
    }

    /// The tenant `id` of the config file, if it is one.
    fn declared(&self, id: &TenantId) -> Option<&DeclaredTenant> {
        self.config.declared.iter().find(|tenant| tenant.id == *id)
    }

    /// Refused if the tenant `id` is one of the config file's, which only the file changes.
    fn changeable(&self, id: &TenantId) -> Result<(), TenantError> {
        match self.declared(id) {
            Some(_) => Err(TenantError::Declared(id.clone())),
            None => Ok(()),
        }
    }

    /// Creates the tenant `id` with `quotas`, and no keys yet.
    pub fn create(&self, id: TenantId, quotas: Quotas) -> Result<TenantView, TenantError> {
        if self.declared(&id).is_some() {
            return Err(TenantError::Exists(id));
        }
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
        self.changeable(id)?;
        self.change(|stored| {
            let tenant = tenant_mut(stored, id)?;
            tenant.quotas = quotas;
            Ok(TenantView::from(&*tenant))
        })
    }

    /// Deletes the tenant `id`: its keys are refused from the next request on.
    pub fn delete(&self, id: &TenantId) -> Result<(), TenantError> {
        self.changeable(id)?;
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
        self.changeable(id)?;
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
        self.changeable(id)?;
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
        *state = State::new(stored, &self.config, self.admin);
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
        let tenants = Tenants::open(dir.path(), TenantsConfig::default()).unwrap();
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

        let again = Tenants::open(dir.path(), TenantsConfig::default()).unwrap();
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
        let tenants = Tenants::open(dir.path(), TenantsConfig::default()).unwrap();
        let id = TenantId::try_from("acme".to_owned()).unwrap();
        let quotas = Quotas {
            max_tasks: Some(3),
            max_queued_jobs: Some(10),
            ..Quotas::default()
        };
        tenants.create(id.clone(), quotas).unwrap();
        assert_eq!(tenants.quotas(&id), quotas);
        let again = Tenants::open(dir.path(), TenantsConfig::default()).unwrap();
        assert_eq!(again.quotas(&id), quotas);
        let fewer = Quotas {
            max_tasks: Some(1),
            ..Quotas::default()
        };
        assert_eq!(again.set_quotas(&id, fewer).unwrap().quotas, fewer);
        assert_eq!(
            Tenants::open(dir.path(), TenantsConfig::default())
                .unwrap()
                .quotas(&id),
            fewer
        );
        let default = TenantId::default_tenant();
        assert!(again.quotas(&default).is_empty(), "none set");
        let missing = TenantId::try_from("nobody".to_owned()).unwrap();
        assert!(matches!(
            again.set_quotas(&missing, fewer),
            Err(TenantError::NotFound(_))
        ));
    }

    #[test]
    fn tenants_of_the_config_file_hold_their_keys_and_are_changed_only_there() {
        let dir = tempfile::tempdir().unwrap();
        let key = ApiKey::new_tenant_key().unwrap();
        let acme = TenantId::try_from("acme".to_owned()).unwrap();
        let config = TenantsConfig {
            declared: vec![DeclaredTenant {
                id: acme.clone(),
                key_hashes: vec![key.hash()],
                quotas: Quotas {
                    max_tasks: Some(2),
                    ..Quotas::default()
                },
            }],
            default_quotas: Quotas {
                max_tasks: Some(9),
                max_queued_jobs: Some(50),
                ..Quotas::default()
            },
        };
        let tenants = Tenants::open(dir.path(), config.clone()).unwrap();
        assert!(
            !dir.path().join(DEFAULT_KEY_FILE).exists(),
            "declared tenants replace the default one"
        );
        assert_eq!(
            tenants.authenticate(key.expose()),
            Some(Caller::Tenant(acme.clone()))
        );
        let view = tenants.get(&acme).unwrap();
        assert_eq!(view.origin, TenantOrigin::Config);
        assert_eq!(view.keys[0].id, KeyId::of_hash(&key.hash()));
        assert_eq!(tenants.list(), [view]);
        let effective = tenants.quotas(&acme);
        assert_eq!(
            (effective.max_tasks, effective.max_queued_jobs),
            (Some(2), Some(50)),
            "its own quota over the default one"
        );

        for refused in [
            tenants.set_quotas(&acme, Quotas::default()).map(drop),
            tenants.delete(&acme),
            tenants.issue_key(&acme).map(drop),
            tenants.revoke_key(&acme, "x"),
        ] {
            assert!(
                matches!(refused, Err(TenantError::Declared(_))),
                "{refused:?}"
            );
        }
        assert!(matches!(
            tenants.create(acme.clone(), Quotas::default()),
            Err(TenantError::Exists(_))
        ));
        let other = TenantId::try_from("other".to_owned()).unwrap();
        tenants.create(other.clone(), Quotas::default()).unwrap();
        assert_eq!(
            tenants.quotas(&other).max_queued_jobs,
            Some(50),
            "the default"
        );

        let error = Tenants::open(
            dir.path(),
            TenantsConfig {
                declared: vec![DeclaredTenant {
                    id: other,
                    key_hashes: Vec::new(),
                    quotas: Quotas::default(),
                }],
                ..config
            },
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            error.contains("tenant other is declared in the config file and was also created"),
            "{error}"
        );
    }

    #[test]
    fn a_damaged_tenants_file_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TENANTS_FILE), b"{\"tenants\": 7}").unwrap();
        let error = Tenants::open(dir.path(), TenantsConfig::default())
            .err()
            .unwrap()
            .to_string();
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
